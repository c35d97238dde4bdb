//! `schema infer`, `schema check` and `schema from-domain`.

use std::path::Path;

use super::args::{CheckArgs, FromDomainArgs, InferArgs, SchemaCommand};
use super::output::{Files, Spinner, emit, say, stem};
use crate::check;
use crate::data;
use crate::error::{Error, Result, exit};
use crate::pipeline::{Observer, Step};
use crate::propose::{self, from_domain, infer};
use crate::schema::Schema;

pub fn run(c: SchemaCommand, obs: &Spinner) -> Result<i32> {
    match &c {
        SchemaCommand::Infer(a) => Files {
            inputs: vec![&a.data],
            optional: vec![a.dp_epsilon.map(|_| a.ledger.ledger.as_path()), a.ledger.policy.as_deref()],
            outputs: vec![a.output.as_deref()],
            ..Default::default()
        }
        .check()?,
        SchemaCommand::Check(a) => Files {
            inputs: vec![&a.data, &a.schema],
            outputs: vec![a.json.as_ref().and_then(|j| j.as_deref())],
            ..Default::default()
        }
        .check()?,
        SchemaCommand::FromDomain(a) => {
            Files { inputs: vec![&a.domain], outputs: vec![a.output.as_deref()], ..Default::default() }.check()?
        }
    }
    match c {
        SchemaCommand::Infer(a) if a.dp_epsilon.is_some() => infer_private(a, obs),
        SchemaCommand::Infer(a) if a.data.is_dir() => infer_folder(a, obs),
        SchemaCommand::Infer(a) => infer_file(a, obs),
        SchemaCommand::Check(a) if a.data.is_dir() => check_folder(a, obs),
        SchemaCommand::Check(a) => check_file(a, obs),
        SchemaCommand::FromDomain(a) => from_domain(a),
    }
}

fn step<'a>(obs: &'a Spinner, what: String) -> Step<'a> {
    Step::start(obs as &dyn Observer, &what)
}

fn infer_folder(a: InferArgs, obs: &Spinner) -> Result<i32> {
    if a.name.is_some() {
        return Err(Error::Usage(
            "--name names the table of one file; the tables of a folder are named after their files".into(),
        ));
    }
    let csv = a.csv.resolve(None);
    let proposal = {
        let _s = step(obs, format!("reading the tables in {}", a.data.display()));
        propose::linked::infer_folder(&a.data, &csv, a.max_categories)?
    };
    emit(&propose::linked::render(&proposal, &a.data.display().to_string())?, a.output.as_deref())?;
    for n in &proposal.notes {
        eprintln!("note: {n}");
    }
    for w in &proposal.proposal.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(o) = &a.output {
        eprintln!(
            "wrote {} ({} tables); the keys, links and rows_per_person bounds were read from the data: review them before use",
            o.display(),
            proposal.proposal.schema.tables.len()
        );
    }
    Ok(exit::OK)
}

fn infer_file(a: InferArgs, obs: &Spinner) -> Result<i32> {
    let csv = a.csv.resolve(None);
    let raw = {
        let _s = step(obs, format!("reading {}", a.data.display()));
        data::read_as(&a.data, &csv, None, data::Show::Header)?
    };
    let opts =
        infer::Options { table_name: a.name.unwrap_or_else(|| stem(&a.data)), csv, max_categories: a.max_categories };
    let proposal = infer::infer(&raw, &opts)?;
    emit(&infer::render(&proposal, &a.data.display().to_string())?, a.output.as_deref())?;
    for w in &proposal.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(o) = &a.output {
        eprintln!("wrote {} ({} columns); review it before use", o.display(), proposal.schema.tables[0].columns.len());
    }
    Ok(exit::OK)
}

fn infer_private(a: InferArgs, obs: &Spinner) -> Result<i32> {
    let opts = infer::Options {
        table_name: a.name.clone().unwrap_or_else(|| stem(&a.data)),
        csv: a.csv.resolve(None),
        max_categories: a.max_categories,
    };
    let (text, messages, release) = crate::pipeline::propose::infer_dp_file(
        &a.data,
        &opts,
        a.dp_epsilon.unwrap_or_default(),
        a.dp_delta,
        &a.ledger.options(),
        obs,
    )?;
    emit(&text, a.output.as_deref())?;
    drop(release);
    say(&messages);
    Ok(exit::OK)
}

/// The note about values read from the data, if the schema has any: checking against them is
/// fine; fitting is not.
fn note_data_values(schema: &Schema, path: &Path) {
    let from_data = schema.read_from_data();
    if !from_data.is_empty() {
        eprintln!(
            "note: {} value(s) in {} were read from the private data: {}. Checking against them is fine, but DP \
             fitting will refuse this schema until each is reviewed (domains marked `source: public`, \
             `read_from_data` emptied): a DP guarantee does NOT hold for values read from the data.",
            from_data.len(),
            path.display(),
            from_data.join(", ")
        );
    }
}

fn check_file(a: CheckArgs, obs: &Spinner) -> Result<i32> {
    let schema = Schema::load(&a.schema)?;
    let mut table = schema.table(a.table.as_deref())?.clone();
    table.csv = a.csv.resolve(Some(&table.csv));
    note_data_values(&schema, &a.schema);
    let report = {
        let _s = step(obs, format!("checking {}", a.data.display()));
        let raw = data::read_table_as(&a.data, &table, data::Show::Header)?;
        check::check(&raw, &table, a.examples)?
    };
    print_check(a.json, &report, report.findings)
}

/// `schema check FOLDER`: every table of a linked schema and the links between them.
fn check_folder(a: CheckArgs, obs: &Spinner) -> Result<i32> {
    let schema = Schema::load(&a.schema)?;
    if let Some(t) = &a.table {
        return Err(Error::Usage(format!(
            "{} is a folder, which is checked as a whole; to check only table {t:?}, give its file (e.g. {})",
            a.data.display(),
            a.data.join(format!("{t}.csv")).display()
        )));
    }
    note_data_values(&schema, &a.schema);
    let report = {
        let _s = step(obs, format!("checking the tables in {}", a.data.display()));
        check::links::check_folder(&a.data, &schema, |c| a.csv.resolve(Some(c)), a.examples)?
    };
    print_check(a.json, &report, report.findings)
}

trait Render {
    fn render(&self) -> String;
}

impl Render for check::CheckReport {
    fn render(&self) -> String {
        check::CheckReport::render(self)
    }
}

impl Render for check::links::LinkedReport {
    fn render(&self) -> String {
        check::links::LinkedReport::render(self)
    }
}

fn print_check<R: serde::Serialize + Render>(
    json: Option<Option<std::path::PathBuf>>,
    report: &R,
    findings: usize,
) -> Result<i32> {
    if let Some(to) = json {
        let text = serde_json::to_string_pretty(report).map_err(|e| Error::Internal(e.to_string()))? + "\n";
        super::output::emit(&text, to.as_deref())?;
    } else {
        print!("{}", report.render());
    }
    Ok(if findings == 0 { exit::OK } else { exit::FINDINGS })
}

fn from_domain(a: FromDomainArgs) -> Result<i32> {
    let name =
        a.name.unwrap_or_else(|| stem(&a.domain).trim_end_matches("-domain").trim_end_matches("_domain").to_string());
    let schema = from_domain::from_domain_file(&a.domain, &name)?;
    let text = format!(
        "# Schema converted by `privsynth schema from-domain` from {}.\n{}",
        a.domain.display(),
        schema.to_yaml()?
    );
    emit(&text, a.output.as_deref())?;
    Ok(exit::OK)
}
