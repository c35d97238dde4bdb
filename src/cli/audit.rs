//! `audit`: a synthetic table (or folder of linked tables) against the real train and holdout
//! data; prints the summary and exits 1 when a gate fails.

use std::path::Path;

use super::args::AuditArgs;
use super::output::{Files, Spinner};
use crate::data;
use crate::error::{Error, Result, exit};
use crate::pipeline::audit::{self, ReportFiles};
use crate::pipeline::{Observer, Step};
use crate::report::{self, Report};
use crate::schema::Schema;

pub fn run(a: AuditArgs, obs: &Spinner) -> Result<i32> {
    let Some(holdout) = &a.holdout else {
        return Err(Error::Usage(
            "--holdout is required: real rows of the same population that the generator never saw. Without \
             them no measure can tell memorization from generalisation (a copy of the training data scores \
             best on every fidelity metric). Keep a holdout when fitting, or let `synth --audit-holdout \
             FRACTION` set one aside and audit in one step."
                .into(),
        ));
    };
    let started = std::time::Instant::now();
    let gates = report::gates::load(a.opts.gates.as_deref())?;
    let schema = Schema::load(&a.schema)?;
    let (opts, files) = (a.opts.options(a.seed), a.opts.files());
    let scoped: Vec<ReportFiles> = match &schema.person {
        Some(_) => std::iter::once("person".to_string())
            .chain(schema.event_tables().iter().map(|t| t.name.clone()))
            .map(|s| files.scoped(&s))
            .collect(),
        None => vec![files.clone()],
    };
    let mut check = Files {
        inputs: vec![&a.train, holdout.as_path(), &a.synthetic, &a.schema],
        optional: vec![a.opts.gates.as_deref()],
        ..Default::default()
    };
    for f in &scoped {
        check.outputs.extend([f.json.as_deref(), f.html.as_deref(), f.junit.as_deref()]);
    }
    check.check()?;
    if same_file(&a.train, holdout) {
        return Err(Error::Usage(format!(
            "--train and --holdout are the same file ({}): the audit compares the rows the generator saw with rows it never saw",
            holdout.display()
        )));
    }
    if schema.is_linked() {
        // Folders of linked tables: one audit per event table and one per person.
        let (tr, ho, sy) = {
            let _s = Step::start(obs as &dyn Observer, "reading train, holdout and synthetic tables");
            (
                audit::derive_real(&schema, &a.train)?,
                audit::derive_real(&schema, Path::new(holdout))?,
                audit::derive_synthetic(&schema, &a.synthetic)?,
            )
        };
        let reports = audit::audit_linked(&schema, (&tr, &ho, &sy), &opts, &gates, &files, obs)?;
        return Ok(print_reports(&reports, &files, started));
    }
    let table = schema.table(a.table.as_deref())?.clone();
    let read = |p: &Path, t: &crate::schema::Table| data::read_table_as(p, t, data::Show::Header);
    let (train, hold, synthetic) = {
        let _s = Step::start(obs as &dyn Observer, "reading train, holdout and synthetic tables");
        (read(&a.train, &table)?, read(holdout, &table)?, read(&a.synthetic, &audit::modelled(&table))?)
    };
    let r = audit::audit(&table, &train, &hold, &synthetic, &opts, &gates, &files, obs)?;
    Ok(print_report(&r, &files, started))
}

/// Whether two paths name one file (or folder).
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Print an audit's summary and verdict; the exit code follows the gates.
pub fn print_report(r: &Report, files: &ReportFiles, started: std::time::Instant) -> i32 {
    print!("{}", report::summary(r));
    let written = files.written();
    eprintln!(
        "audit: {} in {:.1} s{}; the reports describe real data and are for the data holder",
        if r.passed() { "all gates passed" } else { "GATES FAILED: do not release this synthetic table as it is" },
        started.elapsed().as_secs_f64(),
        if written.is_empty() { String::new() } else { format!("; wrote {}", written.join(", ")) }
    );
    if r.passed() { exit::OK } else { exit::FINDINGS }
}

/// Print each scope of a linked audit; the worst exit code wins.
pub fn print_reports(reports: &[(String, Option<Report>)], files: &ReportFiles, started: std::time::Instant) -> i32 {
    let mut worst = exit::OK;
    for (scope, r) in reports {
        match r {
            None => eprintln!("audit {scope}: skipped (no rows in train, holdout or synthetic)"),
            Some(r) => {
                // On stdout, with the summary it labels (a log of stdout alone stays readable).
                println!("== audit: {scope} ==");
                worst = worst.max(print_report(r, &files.scoped(scope), started));
            }
        }
    }
    worst
}
