//! `fit`, `sample` and `synth`: check the arguments, call the pipeline, print what it returns.

use super::args::{FitArgs, FitCommon, SampleArgs, SynthArgs};
use super::audit::{print_report, print_reports};
use super::output::{Files, Spinner, private_diagnostics, say, write_model};
use crate::data;
use crate::ehr::LinkedModel;
use crate::error::{Error, Result, exit};
use crate::model::file::ModelFile;
use crate::pipeline::linked::LinkedPlan;
use crate::pipeline::{FitRequest, Plan, audit, output};
use crate::report;
use crate::schema::Schema;

/// The single-table plan of a fit: the schema's table with the command line's CSV dialect.
fn plan(a: &FitCommon) -> Result<(Schema, Plan)> {
    let schema = Schema::load(&a.schema)?;
    if schema.is_linked() {
        return Err(Error::Usage(format!(
            "{} is a linked schema (person table {:?}): use `privsynth synth FOLDER --schema ... -o OUT_FOLDER` (with --model-out to keep the model)",
            a.schema.display(),
            schema.person.as_ref().map_or("", |p| p.table.as_str())
        )));
    }
    if let Some(extra) = a.more.first() {
        return Err(Error::Usage(format!("unexpected argument {extra:?}: a single-table schema reads one data file")));
    }
    let mut table = schema.table(a.table.as_deref())?.clone();
    table.csv = a.csv.resolve(Some(&table.csv));
    let plan = Plan::new(&schema, table, a.options(), &a.schema.display().to_string())?;
    say(&plan.warnings);
    Ok((schema, plan))
}

/// The files a linked run writes into its output folder.
fn table_files(schema: &Schema, how: output::Output) -> Vec<String> {
    let ext = how.format.extension();
    schema.tables.iter().map(|t| format!("{}.{ext}", t.name)).chain([output::OUTPUT_SCHEMA.to_string()]).collect()
}

/// Send the release's OpenLineage event when `--openlineage` asks for it.
fn lineage(
    c: &FitCommon,
    command: &str,
    entry: &privsynth_privacy::ledger::Entry,
    outputs: &[Option<&std::path::Path>],
) -> Result<()> {
    let Some(target) = &c.openlineage else { return Ok(()) };
    let inputs =
        c.specs().iter().map(|s| std::path::PathBuf::from(s.split_once('=').map_or(s.as_str(), |x| x.1))).collect();
    let run = crate::pipeline::lineage::Run {
        command,
        entry,
        ledger: &c.ledger.ledger,
        inputs,
        outputs: outputs.iter().flatten().map(|p| p.to_path_buf()).collect(),
    };
    crate::pipeline::lineage::emit(target, &crate::pipeline::lineage::run_event(&run))
}

fn request(a: &FitCommon, holdout: Option<f64>) -> FitRequest {
    FitRequest {
        data: a.data.clone(),
        epsilon: a.epsilon,
        delta: a.delta,
        holdout,
        ledger: a.ledger.options(),
        diagnostics: a.private_diagnostics,
    }
}

/// The inputs every fit reads (the data itself is added by the caller).
fn fit_files<'a>(c: &'a FitCommon) -> Files<'a> {
    Files {
        inputs: vec![c.schema.as_path()],
        optional: vec![Some(c.ledger.ledger.as_path()), c.ledger.policy.as_deref(), c.workload.as_deref()],
        ..Default::default()
    }
}

pub fn fit(a: FitArgs, obs: &Spinner) -> Result<i32> {
    let mut files = fit_files(&a.common);
    files.inputs.push(&a.common.data);
    files.outputs.push(Some(&a.output));
    files.check()?;
    let (schema, plan) = plan(&a.common)?;
    let out = plan.fit_file(&schema, &request(&a.common, None), obs)?;
    say(&out.messages);
    private_diagnostics(a.common.private_diagnostics, out.notes);
    write_model(&out.model.to_json()?, &a.output)?;
    lineage(&a.common, "fit", &out.entry, &[Some(&a.output)])?;
    Ok(exit::OK)
}

pub fn sample(a: SampleArgs, obs: &Spinner) -> Result<i32> {
    let seed = a.seed.unwrap_or_else(rand::random);
    let linked = LinkedModel::is_linked_file(&a.model);
    let mut files = Files { inputs: vec![&a.model], ..Default::default() };
    let beside = output::schema_beside(&a.output);
    if !linked {
        files.outputs.extend([Some(a.output.as_path()), Some(beside.as_path())]);
    }
    files.check()?;
    // The output's format is decided before anything is written (a refused name costs nothing).
    let how = if linked { None } else { Some(a.out.single(&a.output)?) };
    let llm_opts = a.llm.options();
    if linked {
        if let Some(persons) = a.rows {
            output::check_rows(persons, 1)?;
        }
        let llm = llm_opts.prepare_linked()?;
        let m = LinkedModel::load(&a.model)?;
        let mut how = a.out.folder();
        if a.out.format.is_none() && data::Format::known(&a.output) == Some(data::Format::Parquet) {
            // A folder named like `out.parquet` gets Parquet tables, as before --format existed.
            how.format = data::Format::Parquet;
        }
        let mut folder = Files { inputs: vec![&a.model], ..Default::default() };
        folder.folder = Some((&a.output, table_files(&m.schema, how)));
        folder.check()?;
        for w in &m.privacy.outside_guarantee {
            eprintln!("warning: this model's DP guarantee does not cover everything: {w}");
        }
        say(&output::write_linked(
            &m,
            &a.model.display().to_string(),
            a.rows,
            seed,
            &a.output,
            how,
            obs,
            (&llm_opts, llm.as_ref()),
        )?);
        return Ok(exit::OK);
    }
    let model = ModelFile::load(&a.model)?;
    say(&model.guarantee_warnings());
    let llm = llm_opts.prepare()?;
    let how = how.ok_or_else(|| Error::Internal("a single-table output without a format".into()))?;
    sample_and_write(
        &model,
        &a.model.display().to_string(),
        a.rows,
        seed,
        (&a.output, how),
        &llm_opts,
        llm.as_ref(),
        None,
        obs,
    )
}

/// Sample, run the LLM stage if configured, write, and say what was written.
#[allow(clippy::too_many_arguments)]
fn sample_and_write(
    model: &ModelFile,
    origin: &str,
    rows: Option<usize>,
    seed: u64,
    (to, how): (&std::path::Path, output::Output),
    llm_args: &crate::llm::StageOptions,
    llm: Option<&crate::llm::client::Client>,
    pe: Option<&crate::llm::pe::Source>,
    obs: &Spinner,
) -> Result<i32> {
    let started = std::time::Instant::now();
    let (height, width) = if llm.is_none() && pe.is_none() && !llm_args.needs_table() {
        // No LLM stage: drawn and written in batches, in memory independent of --rows.
        let (lines, written) = output::sample_to_file(model, origin, rows, seed, (to, how), obs)?;
        say(&lines);
        llm_args.warn_without_llm(model);
        written
    } else {
        let (mut synth, lines) = output::sample_table(model, origin, rows, seed, obs)?;
        say(&lines);
        llm_args.run(llm, model, &mut synth, obs.quiet(), pe)?;
        let (height, width, lines) = output::write_table(synth, model, to, how)?;
        say(&lines);
        (height, width)
    };
    eprintln!(
        "sample: wrote {height} rows x {width} columns to {} in {:.1} s (seed {seed})",
        to.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(exit::OK)
}

pub fn synth(a: SynthArgs, obs: &Spinner) -> Result<i32> {
    let seed = a.seed.unwrap_or_else(rand::random);
    let holdout = match a.audit_holdout {
        None if a.audit.any() => {
            return Err(Error::Usage(
                "--json, --html, --junit and --gates report an audit: add --audit-holdout FRACTION (e.g. 0.2)".into(),
            ));
        }
        None => None,
        Some(f) if f > 0.0 && f < 1.0 => Some(f),
        Some(f) => return Err(Error::Usage(format!("--audit-holdout must be a fraction between 0 and 1, got {f}"))),
    };
    // A bad gates file is a usage error before anything is read or charged.
    let gates = holdout.map(|_| report::gates::load(a.audit.gates.as_deref())).transpose()?;
    let schema = Schema::load(&a.common.schema)?;
    let beside = output::schema_beside(&a.output);
    let mut files = fit_files(&a.common);
    files.optional.push(a.audit.gates.as_deref());
    files.outputs.push(a.model_out.as_deref());
    let specs = a.common.specs();
    let spec_paths: Vec<std::path::PathBuf> =
        specs.iter().map(|s| std::path::PathBuf::from(s.split_once('=').map_or(s.as_str(), |x| x.1))).collect();
    files.inputs.extend(spec_paths.iter().map(|p| p.as_path()));
    let scoped: Vec<audit::ReportFiles> = match &schema.person {
        Some(_) => std::iter::once("person".to_string())
            .chain(schema.event_tables().iter().map(|t| t.name.clone()))
            .map(|s| a.audit.files().scoped(&s))
            .collect(),
        None => vec![a.audit.files()],
    };
    for f in &scoped {
        files.outputs.extend([f.json.as_deref(), f.html.as_deref(), f.junit.as_deref()]);
    }
    if schema.is_linked() {
        files.folder = Some((&a.output, table_files(&schema, a.out.folder())));
    } else {
        files.outputs.extend([Some(a.output.as_path()), Some(beside.as_path())]);
    }
    files.check()?;
    // The output's format is decided before anything is read or charged (after the files'
    // checks, whose messages say more about a device or a folder given as output).
    let how = if schema.is_linked() { a.out.folder() } else { a.out.single(&a.output)? };
    if schema.is_linked() {
        return synth_linked(&schema, &a, seed, holdout, gates, how, obs);
    }
    // The LLM options are checked and the server reached before any budget is spent.
    let llm_opts = a.llm.options();
    let llm = llm_opts.prepare()?;
    if a.llm.llm_pe_epsilon.is_some() {
        pe_check(&a.common)?;
    }
    if llm.is_some() && a.common.allow_data_domains {
        return Err(Error::Usage(
            "--allow-data-domains cannot be combined with the LLM stage: domains read from the data are not public and may not be sent to an LLM".into(),
        ));
    }
    let (schema, plan) = plan(&a.common)?;
    if let Some(rows) = a.rows {
        output::check_rows(rows, plan.table.columns.len())?;
    }
    let out = plan.fit_file_as("synth", &schema, &request(&a.common, holdout), obs)?;
    say(&out.messages);
    private_diagnostics(a.common.private_diagnostics, out.notes);
    if let Some(p) = &a.model_out {
        write_model(&out.model.to_json()?, p)?;
    }
    // Private Evolution reads the real texts of the rows the fit could use.
    let pe = match &a.llm.llm_pe_epsilon {
        Some(_) => Some(pe_source(&a.common, &out.model.table, out.split.as_ref().map(|s| &s.train))?),
        None => None,
    };
    sample_and_write(&out.model, "the fitted model", a.rows, seed, (&a.output, how), &llm_opts, llm.as_ref(), pe.as_ref(), obs).map_err(|e| match e {
        Error::Usage(m) if llm.is_some() && a.model_out.is_none() => Error::Usage(format!(
            "{m}\nnote: the model was fitted and its budget spent; with --model-out MODEL, `privsynth sample MODEL` can retry the LLM stage without spending again"
        )),
        other => other,
    })?;
    lineage(&a.common, "synth", &out.entry, &[Some(&a.output), a.model_out.as_deref()])?;
    drop(out.release);
    let (Some(split), Some(gates)) = (out.split, gates) else { return Ok(exit::OK) };
    if split.train.df.height() == 0 || split.holdout.df.height() == 0 {
        eprintln!(
            "audit: skipped: the random holdout split left one part without rows (the synthetic data were written)"
        );
        return Ok(exit::OK);
    }
    let started = std::time::Instant::now();
    let synthetic = data::read_for_table(&a.output, &audit::modelled(&out.model.table))?;
    let files = a.audit.files();
    let r = audit::audit(
        &out.model.table,
        &split.train,
        &split.holdout,
        &synthetic,
        &a.audit.options(seed),
        &gates,
        &files,
        obs,
    )?;
    Ok(print_report(&r, &files, started))
}

fn synth_linked(
    schema: &Schema,
    a: &SynthArgs,
    seed: u64,
    holdout: Option<f64>,
    gates: Option<audit::Gates>,
    how: output::Output,
    obs: &Spinner,
) -> Result<i32> {
    let c = &a.common;
    // The LLM options are checked and the server reached before any budget is spent.
    let llm_opts = a.llm.options();
    let llm = llm_opts.prepare_linked()?;
    if llm.is_some() && c.allow_data_domains {
        return Err(Error::Usage(
            "--allow-data-domains cannot be combined with the LLM stage: domains read from the data are not public and may not be sent to an LLM".into(),
        ));
    }
    if c.table.is_some() || c.workload.is_some() {
        return Err(Error::Usage("--table and --workload do not apply to a linked schema (every table is modelled; each model uses the default workload)".into()));
    }
    let plan = LinkedPlan::new(schema, c.options(), &c.schema.display().to_string())?;
    say(&plan.warnings);
    if let Some(persons) = a.rows {
        // Persons are drawn and written in blocks (memory does not grow with them), so only
        // the person count itself is limited.
        output::check_rows(persons, 1)?;
    }
    let out = plan.fit_files(&c.specs(), c.epsilon, c.delta, holdout, &c.ledger.options(), obs)?;
    say(&out.messages);
    private_diagnostics(c.private_diagnostics, out.notes);
    if let Some(path) = &a.model_out {
        write_model(&out.model.to_json()?, path)?;
    }
    say(&output::write_linked(
        &out.model,
        "the fitted model",
        a.rows,
        seed,
        &a.output,
        how,
        obs,
        (&llm_opts, llm.as_ref()),
    )?);
    lineage(c, "synth", &out.entry, &[Some(&a.output), a.model_out.as_deref()])?;
    drop(out.release);
    let Some(gates) = gates else { return Ok(exit::OK) };
    let Some((train, hold)) = &out.split else {
        return Err(Error::Internal("an audit without a holdout split".into()));
    };
    let started = std::time::Instant::now();
    let tables = out.tables.as_ref().ok_or_else(|| Error::Internal("an audit without the real tables".into()))?;
    let (tr, _) = crate::ehr::derive(schema, tables, Some(train), None)?;
    let (ho, _) = crate::ehr::derive(schema, tables, Some(hold), None)?;
    let sy = audit::derive_synthetic(schema, &a.output)?;
    let files = a.audit.files();
    let reports = audit::audit_linked(schema, (&tr, &ho, &sy), &a.audit.options(seed), &gates, &files, obs)?;
    Ok(print_reports(&reports, &files, started))
}

/// The real texts and the ledger target of `synth --llm-pe-epsilon`: read after the fit (the
/// train part when an audit holdout was set aside), recorded on the same dataset fingerprint.
pub fn pe_source(
    common: &FitCommon,
    table: &crate::schema::Table,
    train: Option<&crate::data::RawTable>,
) -> crate::error::Result<crate::llm::pe::Source> {
    use crate::error::Error;
    use privsynth_privacy::ledger::{self, DatasetRef, Ledger, Policy};
    let owned;
    let raw = match train {
        Some(t) => t,
        None => {
            owned = crate::data::read_for_table(&common.data, table)?;
            &owned
        }
    };
    let columns: Vec<String> = crate::synthetic::text_columns(table).iter().map(|c| c.name.clone()).collect();
    let texts = crate::llm::pe::RealTexts::from_raw(raw, table, &columns)?;
    let fingerprint = ledger::fingerprint_file(&common.data).map_err(|e| Error::io(&common.data, e))?;
    let policy = match &common.ledger.policy {
        Some(p) => Policy::load(p).map_err(|e| Error::Usage(e.to_string()))?,
        None => Policy::default(),
    };
    let unit = table.privacy_unit.clone();
    let dataset = DatasetRef {
        fingerprint,
        name: common.data.display().to_string(),
        privacy_unit: unit.clone(),
        rows_per_unit: unit.map(|_| texts.rows_per_unit()),
    };
    Ok(crate::llm::pe::Source {
        texts,
        ledger: crate::llm::pe::LedgerTarget { ledger: Ledger::new(&common.ledger.ledger), policy, dataset },
        delta: common.delta,
        command: "synth --llm-pe-epsilon (Private Evolution votes on the text columns)".into(),
    })
}

/// Before any budget is spent: `--llm-pe-epsilon` needs a text column to learn.
pub fn pe_check(common: &FitCommon) -> crate::error::Result<()> {
    let schema = crate::schema::Schema::load(&common.schema)?;
    let table = schema.table(common.table.as_deref())?;
    if crate::synthetic::text_columns(table).is_empty() {
        return Err(crate::error::Error::Usage(format!(
            "--llm-pe-epsilon learns text columns from the real texts, but table {:?} has no text column",
            table.name
        )));
    }
    Ok(())
}
