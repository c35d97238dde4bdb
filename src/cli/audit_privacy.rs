//! The `privsynth audit-privacy` command: arguments and what it does (the CLI only dispatches
//! here).

use std::io::IsTerminal;

use super::args::AuditPrivacyArgs as Args;
use crate::audit_privacy::{CanarySpec, Options};
use crate::data;
use crate::error::{Error, Result, exit};
use crate::model::file::ModelFile;
use crate::pipeline::FitOptions;
use crate::schema::Schema;

/// Run the command; exit 1 when the empirical lower bound exceeds the claim.
pub fn run(a: Args, quiet: bool) -> Result<i32> {
    let schema = Schema::load(&a.schema)?;
    let fit = FitOptions { mechanism: a.mechanism.into(), iterations: a.iterations, ..Default::default() };
    let mut opts = Options::new(a.epsilon, a.delta, fit, a.runs);
    opts.alpha = 1.0 - a.confidence;
    opts.canary_rows = a.canary_rows;
    opts.synthetic_rows = a.rows;
    opts.seed = a.seed;
    let origin = a.schema.display().to_string();
    if schema.is_linked() {
        if a.one_run.is_some() || a.canary_record.is_some() || a.canary_rows.is_some() {
            return Err(Error::Usage("on linked tables the canary is the worst-case person with the maximum events: --one-run, --canary-record and --canary-rows apply to single tables".into()));
        }
        let (d, source) = match (&a.data, &a.from_model) {
            (Some(p), None) => {
                let inputs = crate::ehr::Inputs::resolve(&schema, &[p.display().to_string()])?;
                (crate::ehr::Tables::read(&schema, &inputs)?, p.display().to_string())
            }
            (None, Some(m)) => crate::audit_privacy::linked::sample_tables(&crate::ehr::LinkedModel::load(m)?, &m.display().to_string(), a.model_rows, a.seed)?,
            _ => return Err(Error::Usage("give the data D (a folder of linked tables) or --from-model MODEL to sample D from a linked model file".into())),
        };
        opts.data_source = source;
        let p = crate::audit_privacy::linked::prepare(&schema, d, &opts, &origin)?;
        for w in &p.plan.warnings {
            eprintln!("{w}");
        }
        let report = crate::audit_privacy::linked::run(&p, &opts, &|_| {})?;
        return write_reports(&a, report);
    }
    let table = schema.table(a.table.as_deref())?.clone();
    let (d, source) = match (&a.data, &a.from_model) {
        (Some(p), None) => (data::read_for_table(p, &table)?, p.display().to_string()),
        (None, Some(m)) => {
            let model = ModelFile::load(m)?;
            if model.table.name != table.name {
                return Err(Error::Usage(format!(
                    "{} models table {:?}, not {:?}",
                    m.display(),
                    model.table.name,
                    table.name
                )));
            }
            let d = crate::audit_privacy::sample_data(&model, &m.display().to_string(), a.model_rows, a.seed)?;
            let s = d.file.clone();
            (d, s)
        }
        _ => {
            return Err(Error::Usage(
                "give the data D (a table file) or --from-model MODEL to sample D from a model file".into(),
            ));
        }
    };
    opts.data_source = source;
    if let Some(items) = &a.canary_record {
        let pairs = items
            .iter()
            .map(|it| match it.split_once('=') {
                Some((c, v)) if !c.trim().is_empty() => Ok((c.trim().to_string(), v.to_string())),
                _ => Err(Error::Usage(format!("--canary-record: {it:?} is not column=value"))),
            })
            .collect::<Result<Vec<_>>>()?;
        opts.canary = CanarySpec::Record(pairs);
    }
    let p = crate::audit_privacy::prepare(&schema, table, d, &opts, &origin)?;
    for w in &p.plan.warnings {
        eprintln!("{w}");
    }
    let report = match a.one_run {
        Some(m) => crate::audit_privacy::run_quick(&p, &opts, m)?,
        None => {
            let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
                let b = indicatif::ProgressBar::new(2 * a.runs as u64);
                b.set_style(
                    indicatif::ProgressStyle::with_template("{spinner} {msg} {pos}/{len} runs ({eta} left)")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                b.set_message("auditing the claim");
                b
            });
            let r = crate::audit_privacy::run(&p, &opts, &|done| {
                if let Some(b) = &bar {
                    b.set_position(done as u64);
                }
            });
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            r?
        }
    };
    write_reports(&a, report)
}

fn write_reports(a: &Args, report: crate::audit_privacy::Report) -> Result<i32> {
    if let Some(path) = &a.json {
        let text = report.to_json()?;
        data::write_atomic(path, |f| std::io::Write::write_all(f, text.as_bytes()))?;
    }
    if let Some(path) = &a.html {
        let text = crate::audit_privacy::html::render(&report);
        data::write_atomic(path, |f| std::io::Write::write_all(f, text.as_bytes()))?;
    }
    print!("{}", report.summary());
    eprintln!(
        "audit-privacy: {:.1} s; the report describes D and is for the data holder unless D is public or sampled from a model file",
        report.seconds
    );
    Ok(if report.exceeds_claim() { exit::FINDINGS } else { exit::OK })
}
