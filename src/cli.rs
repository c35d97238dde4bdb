//! The command line: argument definitions and what each command does.
//!
//! One style throughout: the data file is the positional `DATA`, the schema is `--schema`,
//! output goes to `-o/--output` (stdout when absent), randomness takes `--seed`, and `--json`
//! switches a report to machine-readable output. Exit codes are in [`crate::error::exit`].

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::data;
use crate::error::{Error, Result, exit};
use crate::schema::{self, CsvFormat, Schema, check, from_domain, infer};

#[derive(Debug, Parser)]
#[command(name = "privsynth", version, about = "Differentially private synthetic data, with an audit of what was preserved and what could leak")]
pub struct Cli {
    /// No progress display.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write, check and convert schema files (the public description of a table).
    #[command(subcommand)]
    Schema(SchemaCommand),
}

#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Propose a schema from a data file. Domains read from the data are marked `source: data`
    /// and must be reviewed before DP fitting.
    Infer(InferArgs),
    /// Validate a data file against a schema: type errors, out-of-domain values, nulls.
    /// Exit 0 when clean, 1 with findings.
    Check(CheckArgs),
    /// Convert a private-pgm style domain.json (column -> size) into a schema.
    FromDomain(FromDomainArgs),
}

#[derive(Debug, Args)]
pub struct CsvArgs {
    /// CSV field delimiter (one character, or "\t").
    #[arg(long, value_parser = schema::parse_delimiter)]
    pub delimiter: Option<u8>,
    /// The CSV file has no header line.
    #[arg(long)]
    pub no_header: bool,
}

impl CsvArgs {
    /// The dialect: command-line flags override the schema's.
    fn resolve(&self, from_schema: Option<&CsvFormat>) -> CsvFormat {
        let base = from_schema.cloned().unwrap_or_default();
        CsvFormat { delimiter: self.delimiter.unwrap_or(base.delimiter), header: base.header && !self.no_header }
    }
}

#[derive(Debug, Args)]
pub struct InferArgs {
    /// Data file (CSV, Parquet or Arrow IPC).
    pub data: PathBuf,
    /// Write the schema here (default: stdout).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Table name (default: the file name without extension).
    #[arg(long)]
    pub name: Option<String>,
    /// Text columns with more distinct values become text or identifiers, not categories.
    #[arg(long, default_value_t = infer::DEFAULT_MAX_CATEGORIES)]
    pub max_categories: usize,
    #[command(flatten)]
    pub csv: CsvArgs,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Data file (CSV, Parquet or Arrow IPC).
    pub data: PathBuf,
    /// Schema file (YAML).
    #[arg(long)]
    pub schema: PathBuf,
    /// Table of the schema to check against (needed when it has several).
    #[arg(long)]
    pub table: Option<String>,
    /// Offending rows shown per column.
    #[arg(long, default_value_t = 5)]
    pub examples: usize,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub csv: CsvArgs,
}

#[derive(Debug, Args)]
pub struct FromDomainArgs {
    /// A private-pgm style domain file: {"column": size, ...}, values coded 0..size-1.
    pub domain: PathBuf,
    /// Write the schema here (default: stdout).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Table name (default: the file name without extension and without "-domain").
    #[arg(long)]
    pub name: Option<String>,
}

/// A spinner on stderr while long work runs; invisible when stderr is not a terminal.
struct Progress(ProgressBar);

impl Progress {
    fn start(quiet: bool, msg: String) -> Progress {
        let pb = if quiet || !std::io::stderr().is_terminal() { ProgressBar::hidden() } else { ProgressBar::new_spinner() };
        pb.set_style(ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").unwrap_or_else(|_| ProgressStyle::default_spinner()));
        pb.set_message(msg);
        pb.enable_steady_tick(std::time::Duration::from_millis(120));
        Progress(pb)
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

fn stem(p: &Path) -> String {
    p.file_stem().and_then(|s| s.to_str()).unwrap_or("table").to_string()
}

/// Write text to a file atomically, or to stdout.
fn emit(text: &str, output: Option<&Path>) -> Result<()> {
    match output {
        Some(p) => data::write_atomic(p, |f| std::io::Write::write_all(f, text.as_bytes())),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

/// Run a parsed command; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Schema(SchemaCommand::Infer(a)) => {
            let csv = a.csv.resolve(None);
            let raw = {
                let _p = Progress::start(cli.quiet, format!("reading {}", a.data.display()));
                data::read(&a.data, &csv, None)?
            };
            let opts = infer::Options { table_name: a.name.unwrap_or_else(|| stem(&a.data)), csv, max_categories: a.max_categories };
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
        Command::Schema(SchemaCommand::Check(a)) => {
            let schema = Schema::load(&a.schema)?;
            let table = schema.table(a.table.as_deref())?;
            let mut table = table.clone();
            table.csv = a.csv.resolve(Some(&table.csv));
            let from_data = schema.data_domain_columns();
            if !from_data.is_empty() {
                eprintln!(
                    "note: {} domain(s) in {} were read from the private data (source: data): {}. Checking \
                     against them is fine, but DP fitting will refuse this schema until each is reviewed \
                     and marked `source: public`: a DP guarantee does NOT hold for domains read from the data.",
                    from_data.len(),
                    a.schema.display(),
                    from_data.join(", ")
                );
            }
            let report = {
                let _p = Progress::start(cli.quiet, format!("checking {}", a.data.display()));
                let raw = data::read_for_table(&a.data, &table)?;
                check::check(&raw, &table, a.examples)?
            };
            if a.json {
                let text = serde_json::to_string_pretty(&report).map_err(|e| Error::Internal(e.to_string()))?;
                println!("{text}");
            } else {
                print!("{}", report.render());
            }
            Ok(if report.findings == 0 { exit::OK } else { exit::FINDINGS })
        }
        Command::Schema(SchemaCommand::FromDomain(a)) => {
            let name = a.name.unwrap_or_else(|| stem(&a.domain).trim_end_matches("-domain").trim_end_matches("_domain").to_string());
            let schema = from_domain::from_domain_file(&a.domain, &name)?;
            let text = format!(
                "# Schema converted by `privsynth schema from-domain` from {}.\n{}",
                a.domain.display(),
                schema.to_yaml()?
            );
            emit(&text, a.output.as_deref())?;
            Ok(exit::OK)
        }
    }
}
