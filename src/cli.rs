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
use crate::evaluate;
use crate::report;
use crate::model::file::ModelFile;
use crate::model::estimate;
use crate::mechanism::{Mechanism, aim};
use crate::pipeline;
use crate::error::{Error, Result, exit};
use crate::schema::{self, CsvFormat, Schema, check, from_domain, infer, infer_dp};
use privsynth_privacy::ledger::{self, DatasetRef, Ledger, Policy};
use privsynth_privacy::{Budget, PrivacyError};

#[derive(Debug, Parser)]
#[command(name = "privsynth", version, about = "Differentially private synthetic data, with an audit of what was preserved and what could leak")]
pub struct Cli {
    /// No progress display.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per run: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write, check and convert schema files (the public description of a table).
    #[command(subcommand)]
    Schema(SchemaCommand),
    /// Fit a DP model of a table (MST) and write it to a model file.
    Fit(FitArgs),
    /// Draw synthetic records from a model file (needs no real data).
    Sample(SampleArgs),
    /// Fit and sample in one step: a real table in, a DP synthetic table out.
    Synth(SynthArgs),
    /// Audit a synthetic table against the real train and holdout tables: fidelity,
    /// memorization, re-identification risk, and release gates (exit 1 if a gate fails).
    Audit(AuditArgs),
    /// Audit the privacy claim itself: many in-process runs on D and on D plus a canary, and a
    /// lower bound on epsilon beside the claim (exit 1 if it exceeds the claim).
    AuditPrivacy(crate::audit_privacy::command::Args),
    /// Inspect the privacy ledger: spending per dataset, chain verification.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// The LLM stage's own commands (constraint proposals).
    #[command(subcommand)]
    Llm(crate::llm::LlmCommand),
}

/// Audit settings shared by `audit` and `synth --audit-holdout`.
#[derive(Debug, Args)]
pub struct AuditOpts {
    /// Quasi-identifier columns, comma-separated (default: the schema's quasi_identifier roles).
    #[arg(long, value_delimiter = ',')]
    pub qi: Option<Vec<String>>,
    /// Secret column of the inference attack (default: the schema's first sensitive column).
    #[arg(long)]
    pub secret: Option<String>,
    /// Column sets of the linkage attack (default: the quasi-identifiers against the rest).
    #[arg(long, value_delimiter = ',', requires = "link_b")]
    pub link_a: Option<Vec<String>>,
    #[arg(long, value_delimiter = ',', requires = "link_a")]
    pub link_b: Option<Vec<String>>,
    /// Targets per attack (train and holdout each).
    #[arg(long, default_value_t = 2000)]
    pub attacks: usize,
    /// Write the JSON report here (schema: schemas/audit-report.schema.json).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the HTML report here.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Write JUnit XML (one test case per gate) here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Gates file (YAML); default: the built-in gates (schemas/audit-gates.yaml).
    #[arg(long)]
    pub gates: Option<PathBuf>,
    /// issue 17: the shadow-model membership-inference attack.
    #[command(flatten)]
    pub membership: evaluate::membership::Args,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The real rows the generator was fitted on.
    #[arg(long)]
    pub train: PathBuf,
    /// Real rows of the same population that the generator never saw (required: without them
    /// no measure can tell memorization from generalisation).
    #[arg(long)]
    pub holdout: Option<PathBuf>,
    /// The synthetic table.
    #[arg(long)]
    pub synthetic: PathBuf,
    /// Schema file (YAML).
    #[arg(long)]
    pub schema: PathBuf,
    /// Table of the schema (needed when it has several).
    #[arg(long)]
    pub table: Option<String>,
    /// Seed of every random choice of the audit (targets, tie-breaking, bootstrap, folds).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub opts: AuditOpts,
}

#[derive(Debug, Args)]
pub struct FitCommon {
    /// Data file (CSV, Parquet or Arrow IPC); for a linked schema, a folder holding one file
    /// per table (`<table>.csv`, .parquet or .arrow) or a list of `table=path`.
    pub data: PathBuf,
    /// More `table=path` items (linked schemas).
    #[arg(hide = true)]
    pub more: Vec<String>,
    /// Schema file (YAML).
    #[arg(long)]
    pub schema: PathBuf,
    /// Table of the schema (needed when it has several).
    #[arg(long)]
    pub table: Option<String>,
    /// Privacy budget epsilon.
    #[arg(long)]
    pub epsilon: f64,
    /// Privacy budget delta.
    #[arg(long, default_value_t = 1e-9)]
    pub delta: f64,
    /// Mechanism: aim (workload-adaptive rounds; the most accurate) or mst (a spanning tree
    /// of pairs; cheaper on wide or high-cardinality tables).
    #[arg(long, value_enum, default_value = "aim")]
    pub mechanism: Mechanism,
    /// Mirror-descent iterations of the final estimation (early stopping regularises noisy fits).
    #[arg(long, default_value_t = estimate::Options::default().max_iters)]
    pub iterations: usize,
    /// AIM workload: a YAML or JSON list of `{columns: [..], weight: w}`. Default: the schema's
    /// `workload`, else all --degree-way marginals of at most --max-cells cells.
    #[arg(long)]
    pub workload: Option<PathBuf>,
    /// AIM: order of the default workload's marginals (2 = pairs, 3 = triples).
    #[arg(long, default_value_t = 2)]
    pub degree: usize,
    /// AIM: largest default-workload marginal, in cells.
    #[arg(long, default_value_t = 10_000.0)]
    pub max_cells: f64,
    /// AIM: memory budget of the model in MB (junction-tree cells x 8 bytes, fill-in included),
    /// reached in proportion to the budget spent. Estimation holds a few copies of it.
    #[arg(long, default_value_t = aim::Options::default().max_model_mb)]
    pub max_model_mb: f64,
    /// AIM: nominal number of rounds (default 16 x columns).
    #[arg(long)]
    pub rounds: Option<usize>,
    /// Proceed although the schema holds values read from the data (`source: data` domains,
    /// `read_from_data` items); the result is then NOT differentially private with respect to
    /// them, and the model file and the ledger say so.
    #[arg(long)]
    pub allow_data_domains: bool,
    /// Also print exact counts of the real data to stderr: rows left out by the out-of-domain
    /// policy and by contribution bounding, persons above a bound, orphan rows. NOT
    /// differentially private: for the data holder's eyes; never send this output to a shared
    /// log. (`privsynth schema check` lists the rows themselves.)
    #[arg(long)]
    pub private_diagnostics: bool,
    #[command(flatten)]
    pub ledger: LedgerArgs,
    #[command(flatten)]
    pub csv: CsvArgs,
}

#[derive(Debug, Args)]
pub struct FitArgs {
    #[command(flatten)]
    pub common: FitCommon,
    /// Model file to write (JSON).
    #[arg(short, long)]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct SampleArgs {
    /// Model file written by `fit` or `synth --model-out`.
    pub model: PathBuf,
    /// Number of records (default: the model's DP estimate of the table's size).
    #[arg(long)]
    pub rows: Option<usize>,
    /// Output file: .csv, .parquet or .arrow.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Seed of the sampler (post-processing only; DP noise is never seeded).
    #[arg(long)]
    pub seed: Option<u64>,
    #[command(flatten)]
    pub llm: crate::llm::StageArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum OutFormat {
    Csv,
    Parquet,
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    #[command(flatten)]
    pub common: FitCommon,
    /// Output file: .csv, .parquet or .arrow.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Number of records (default: the DP estimate of the table's size).
    #[arg(long)]
    pub rows: Option<usize>,
    /// Also write the model file here.
    #[arg(long)]
    pub model_out: Option<PathBuf>,
    /// Seed of the sampler and of the audit's random choices (post-processing only: DP noise,
    /// contribution bounding and the holdout split always use fresh secret randomness).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Set aside each privacy unit (row, or person) with this probability before fitting (the
    /// mechanism never sees them), then audit the synthetic output against them; exit 1 if a
    /// gate fails. The split is drawn afresh each run and is not reproducible by design.
    #[arg(long)]
    pub audit_holdout: Option<f64>,
    /// Format of the tables written for a linked schema (the output is then a folder).
    #[arg(long, value_enum, default_value = "csv")]
    pub format: OutFormat,
    #[command(flatten)]
    pub audit: AuditOpts,
    #[command(flatten)]
    pub llm: crate::llm::StageArgs,
}

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Print the spending per dataset and verify the hash chain (exit 1 if tampered).
    Show(LedgerShowArgs),
}

#[derive(Debug, Args)]
pub struct LedgerArgs {
    /// Ledger file (JSON lines, append-only).
    #[arg(long, env = "PRIVSYNTH_LEDGER", default_value = ".privsynth/ledger.jsonl")]
    pub ledger: PathBuf,
    /// Lifetime budget policy (YAML); without one, spending is recorded but not capped.
    #[arg(long)]
    pub policy: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LedgerShowArgs {
    #[command(flatten)]
    pub ledger: LedgerArgs,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Propose a schema from a data file. Domains read from the data are marked `source: data`
    /// and must be reviewed before DP fitting.
    Infer(InferArgs),
    /// Validate a data file against a schema: type errors, out-of-domain values, nulls. With a
    /// linked schema and a folder of `<table>.csv` files: every table, plus keys and links.
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
    /// Data file (CSV, Parquet or Arrow IPC), or a folder of such files (one table each): then a
    /// linked schema is proposed, with keys, links and bounds read from the data for review.
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
    /// Infer under differential privacy with this epsilon: types, bounds and categories become
    /// DP releases charged to the ledger, so no domain is read from the data in the clear.
    #[arg(long)]
    pub dp_epsilon: Option<f64>,
    /// delta of the DP inference (half of it pays for category lists).
    #[arg(long, default_value_t = 1e-9, requires = "dp_epsilon")]
    pub dp_delta: f64,
    #[command(flatten)]
    pub ledger: LedgerArgs,
    #[command(flatten)]
    pub csv: CsvArgs,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Data file (CSV, Parquet or Arrow IPC), or, for a schema with a `person` table, a folder
    /// holding one file per table named after it (`<table>.csv`).
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
        Command::Schema(SchemaCommand::Infer(a)) if a.dp_epsilon.is_some() => infer_private(a, cli.quiet),
        Command::Schema(SchemaCommand::Infer(a)) if a.data.is_dir() => {
            if a.name.is_some() {
                return Err(Error::Usage("--name names the table of one file; the tables of a folder are named after their files".into()));
            }
            let csv = a.csv.resolve(None);
            let proposal = {
                let _p = Progress::start(cli.quiet, format!("reading the tables in {}", a.data.display()));
                schema::infer_linked::infer_folder(&a.data, &csv, a.max_categories)?
            };
            emit(&schema::infer_linked::render(&proposal, &a.data.display().to_string())?, a.output.as_deref())?;
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
        Command::Ledger(LedgerCommand::Show(a)) => ledger_show(a),
        Command::AuditPrivacy(a) => crate::audit_privacy::command::run(a, cli.quiet),
        Command::Fit(a) => {
            let (model, _lock, _) = fit(&a.common, cli.quiet, None)?;
            let json = model.to_json()?;
            data::write_atomic(&a.output, |f| std::io::Write::write_all(f, json.as_bytes()))?;
            eprintln!("wrote model {}", a.output.display());
            Ok(exit::OK)
        }
        Command::Sample(a) => {
            if crate::ehr::LinkedModel::is_linked_file(&a.model) {
                use rand::SeedableRng;
                if a.llm.prepare()?.is_some() {
                    return Err(Error::Usage("the LLM stage does not run on linked tables yet: drop the --llm-* options".into()));
                }
                let m = crate::ehr::LinkedModel::load(&a.model)?;
                for w in &m.privacy.outside_guarantee {
                    eprintln!("warning: this model's DP guarantee does not cover everything: {w}");
                }
                let seed = a.seed.unwrap_or_else(rand::random);
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
                let format = if data::Format::of(&a.output) == data::Format::Parquet { OutFormat::Parquet } else { OutFormat::Csv };
                write_linked(&m, &a.model.display().to_string(), a.rows, &mut rng, &a.output, format, cli.quiet)?;
                return Ok(exit::OK);
            }
            let model = ModelFile::load(&a.model)?;
            for w in model.guarantee_warnings() {
                eprintln!("{w}");
            }
            let llm = a.llm.prepare()?;
            sample_and_write(&model, &a.model.display().to_string(), a.rows, a.seed, &a.output, cli.quiet, &a.llm, llm.as_ref())?;
            Ok(exit::OK)
        }
        Command::Llm(crate::llm::LlmCommand::Constraints(a)) => crate::llm::constraints::run(&a),
        Command::Synth(a) => {
            let seed = a.seed.unwrap_or_else(rand::random);
            let holdout = match a.audit_holdout {
                None => {
                    if a.audit.json.is_some() || a.audit.html.is_some() || a.audit.junit.is_some() || a.audit.gates.is_some() {
                        return Err(Error::Usage(
                            "--json, --html, --junit and --gates report an audit: add --audit-holdout FRACTION (e.g. 0.2)".into(),
                        ));
                    }
                    None
                }
                Some(f) if f > 0.0 && f < 1.0 => Some(f),
                Some(f) => return Err(Error::Usage(format!("--audit-holdout must be a fraction between 0 and 1, got {f}"))),
            };
            // A bad gates file is a usage error before anything is read or charged.
            let gate_list = if holdout.is_some() { Some(report::gates::load(a.audit.gates.as_deref())?) } else { None };
            let schema = Schema::load(&a.common.schema)?;
            if schema.is_linked() {
                if a.llm.prepare()?.is_some() {
                    return Err(Error::Usage(
                        "the LLM stage does not run on linked tables yet: drop the --llm-* options (text columns are then left empty)".into(),
                    ));
                }
                let run = LinkedRun {
                    common: &a.common,
                    output: &a.output,
                    persons: a.rows,
                    model_out: a.model_out.as_deref(),
                    seed,
                    holdout,
                    format: a.format,
                };
                return synth_linked(&schema, run, gate_list.map(|g| (&a.audit, g)), cli.quiet);
            }
            // The LLM options are checked and the server reached before any budget is spent.
            let llm = a.llm.prepare()?;
            if llm.is_some() && a.common.allow_data_domains {
                return Err(Error::Usage(
                    "--allow-data-domains cannot be combined with the LLM stage: domains read from the data are not public and may not be sent to an LLM".into(),
                ));
            }
            let (model, _lock, split) = fit(&a.common, cli.quiet, holdout)?;
            if let Some(p) = &a.model_out {
                let json = model.to_json()?;
                data::write_atomic(p, |f| std::io::Write::write_all(f, json.as_bytes()))?;
                eprintln!("wrote model {}", p.display());
            }
            sample_and_write(&model, "the fitted model", a.rows, Some(seed), &a.output, cli.quiet, &a.llm, llm.as_ref()).map_err(|e| match e {
                Error::Usage(m) if llm.is_some() && a.model_out.is_none() => Error::Usage(format!(
                    "{m}\nnote: the model was fitted and its budget spent; with --model-out MODEL, `privsynth sample MODEL` can retry the LLM stage without spending again"
                )),
                other => other,
            })?;
            match (split, gate_list) {
                (Some(split), Some(gates)) => {
                    if split.train.df.height() == 0 || split.holdout.df.height() == 0 {
                        eprintln!("audit: skipped: the random holdout split left one part without rows (the synthetic data were written)");
                        return Ok(exit::OK);
                    }
                    let synthetic = data::read_for_table(&a.output, &modelled(&model.table))?;
                    audit_and_report(&model.table, &split.train, &split.holdout, &synthetic, &a.audit, seed, gates, cli.quiet)
                }
                _ => Ok(exit::OK),
            }
        }
        Command::Audit(a) => {
            let Some(holdout) = &a.holdout else {
                return Err(Error::Usage(
                    "--holdout is required: real rows of the same population that the generator never saw. Without \
                     them no measure can tell memorization from generalisation (a copy of the training data scores \
                     best on every fidelity metric). Keep a holdout when fitting, or let `synth --audit-holdout \
                     FRACTION` set one aside and audit in one step."
                        .into(),
                ));
            };
            let gates = report::gates::load(a.opts.gates.as_deref())?;
            let schema = Schema::load(&a.schema)?;
            if schema.is_linked() {
                // Folders of linked tables: one audit per event table and one per person.
                use crate::ehr;
                let real = |dir: &Path| -> Result<ehr::Derived> {
                    let inputs = ehr::Inputs::resolve(&schema, &[dir.display().to_string()])?;
                    Ok(ehr::derive(&schema, &ehr::Tables::read(&schema, &inputs)?, None, None)?.0)
                };
                let (tr, ho, sy) = {
                    let _p = Progress::start(cli.quiet, "reading train, holdout and synthetic tables".into());
                    (real(&a.train)?, real(holdout)?, derive_synthetic(&schema, &a.synthetic)?)
                };
                return audit_linked(&schema, (&tr, &ho, &sy), &a.opts, a.seed, gates, cli.quiet);
            }
            let table = schema.table(a.table.as_deref())?.clone();
            let (train, hold, synthetic) = {
                let _p = Progress::start(cli.quiet, "reading train, holdout and synthetic tables".into());
                (
                    data::read_for_table(&a.train, &table)?,
                    data::read_for_table(holdout, &table)?,
                    data::read_for_table(&a.synthetic, &modelled(&table))?,
                )
            };
            audit_and_report(&table, &train, &hold, &synthetic, &a.opts, a.seed, gates, cli.quiet)
        }
        Command::Schema(SchemaCommand::Check(a)) if a.data.is_dir() => check_linked(a, cli.quiet),
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

/// The table restricted to its modelled columns: what a synthetic file holds.
fn modelled(table: &schema::Table) -> schema::Table {
    let mut t = table.clone();
    t.columns.retain(|c| c.is_modelled());
    t
}

/// Run the audit, write the reports asked for, print a summary; exit 1 when a gate fails.
#[allow(clippy::too_many_arguments)]
fn audit_and_report(
    table: &schema::Table,
    train: &data::RawTable,
    holdout: &data::RawTable,
    synthetic: &data::RawTable,
    o: &AuditOpts,
    seed: u64,
    (gate_list, gates_source): (Vec<report::gates::Gate>, String),
    quiet: bool,
) -> Result<i32> {
    let started = std::time::Instant::now();
    if o.attacks == 0 {
        return Err(Error::Usage("--attacks must be at least 1".into()));
    }
    let frames = evaluate::frame::Frames::load(table, train, holdout, synthetic)?;
    let opts = evaluate::Options {
        qi: o.qi.clone(),
        secret: o.secret.clone(),
        link_a: o.link_a.clone(),
        link_b: o.link_b.clone(),
        seed,
        attacks: o.attacks,
        ..Default::default()
    };
    let audit = {
        let _p = Progress::start(quiet, "auditing".into());
        let mut audit = evaluate::run(&frames, &opts)?;
        audit.membership = evaluate::membership::run_if_asked(&o.membership, train, holdout, synthetic, seed)?;
        audit
    };
    let report = report::Report::new(audit, &gate_list, gates_source)?;
    if let Some(p) = &o.json {
        let text = report.to_json()?;
        data::write_atomic(p, |f| std::io::Write::write_all(f, text.as_bytes()))?;
    }
    if let Some(p) = &o.html {
        let text = report::html::render(&report);
        data::write_atomic(p, |f| std::io::Write::write_all(f, text.as_bytes()))?;
    }
    if let Some(p) = &o.junit {
        let text = report.to_junit();
        data::write_atomic(p, |f| std::io::Write::write_all(f, text.as_bytes()))?;
    }
    print!("{}", report::summary(&report));
    let written: Vec<String> = [&o.json, &o.html, &o.junit].iter().filter_map(|p| p.as_ref().map(|p| p.display().to_string())).collect();
    eprintln!(
        "audit: {} in {:.1} s{}; the reports describe real data and are for the data holder",
        if report.passed() { "all gates passed" } else { "GATES FAILED: do not release this synthetic table as it is" },
        started.elapsed().as_secs_f64(),
        if written.is_empty() { String::new() } else { format!("; wrote {}", written.join(", ")) }
    );
    Ok(if report.passed() { exit::OK } else { exit::FINDINGS })
}

fn privacy_error(e: PrivacyError) -> Error {
    match e {
        PrivacyError::Budget(b) => Error::Budget(b.to_string()),
        // A ledger that cannot be read or verified cannot vouch for the budget: refuse.
        PrivacyError::Ledger { .. } => Error::Budget(format!("refused: {e}")),
        other => Error::Internal(other.to_string()),
    }
}

/// Open and lock the ledger, and check the run against the policy before any data are read.
/// The lock is held until the returned guard drops, after the run's entry is appended.
fn authorize(args: &LedgerArgs, data: &Path, budget: &Budget) -> Result<(Ledger, ledger::LedgerLock, String)> {
    let fingerprint = ledger::fingerprint_file(data).map_err(|e| {
        Error::data(data.display().to_string(), match e.kind() {
            std::io::ErrorKind::NotFound => "does not exist".to_string(),
            _ => format!("cannot be read: {e}"),
        })
    })?;
    let (ledger, lock) = authorize_fingerprint(args, &fingerprint, budget)?;
    Ok((ledger, lock, fingerprint))
}

/// Print the note about domains read from the data, if the schema has any.
fn note_data_domains(schema: &Schema, path: &Path) {
    let from_data = schema.data_domain_columns();
    if !from_data.is_empty() {
        eprintln!(
            "note: {} domain(s) in {} were read from the private data (source: data): {}. Checking \
             against them is fine, but DP fitting will refuse this schema until each is reviewed \
             and marked `source: public`: a DP guarantee does NOT hold for domains read from the data.",
            from_data.len(),
            path.display(),
            from_data.join(", ")
        );
    }
}

/// `schema check FOLDER`: every table of a linked schema and the links between them.
fn check_linked(a: CheckArgs, quiet: bool) -> Result<i32> {
    let schema = Schema::load(&a.schema)?;
    if let Some(t) = &a.table {
        return Err(Error::Usage(format!(
            "{} is a folder, which is checked as a whole; to check only table {t:?}, give its file (e.g. {})",
            a.data.display(),
            a.data.join(format!("{t}.csv")).display()
        )));
    }
    note_data_domains(&schema, &a.schema);
    let report = {
        let _p = Progress::start(quiet, format!("checking the tables in {}", a.data.display()));
        schema::links_check::check_folder(&a.data, &schema, |c| a.csv.resolve(Some(c)), a.examples)?
    };
    if a.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| Error::Internal(e.to_string()))?;
        println!("{text}");
    } else {
        print!("{}", report.render());
    }
    Ok(if report.findings == 0 { exit::OK } else { exit::FINDINGS })
}

fn infer_private(a: InferArgs, quiet: bool) -> Result<i32> {
    let eps = a.dp_epsilon.unwrap_or_default();
    let mut budget = Budget::with_mechanism_delta(eps, a.dp_delta, a.dp_delta / 2.0).map_err(Error::Usage)?;
    let (ledger, _lock, fingerprint) = authorize(&a.ledger, &a.data, &budget)?;
    let csv = a.csv.resolve(None);
    let raw = {
        let _p = Progress::start(quiet, format!("reading {}", a.data.display()));
        data::read(&a.data, &csv, None)?
    };
    let table_name = a.name.clone().unwrap_or_else(|| stem(&a.data));
    let opts = infer::Options { table_name: table_name.clone(), csv, max_categories: a.max_categories };
    let proposal = infer_dp::infer_dp(&raw, &opts, &mut budget)?;
    let run_id = ledger::new_run_id();
    let dataset = DatasetRef { fingerprint, name: a.data.display().to_string(), privacy_unit: None, rows_per_unit: None };
    let entry = ledger.append("schema infer --dp-epsilon", dataset, &proposal.costs, &run_id).map_err(privacy_error)?;
    let (spent_eps, spent_delta) = budget.spent_epsilon_delta().unwrap_or_default();
    // The schema carries its own cost, so a fit on it can print the guarantee of both.
    let mut proposed = proposal.schema.clone();
    proposed.dp_inference = Some(schema::DpInference {
        run_id: run_id.clone(),
        epsilon: spent_eps,
        delta: spent_delta,
        rho: budget.rho_spent(),
        mechanism_delta: proposal.costs.iter().map(|c| c.delta).sum(),
    });
    let text = format!(
        "# Schema proposed by `privsynth schema infer --dp-epsilon {eps}` from {}.\n\
         # Differentially private: epsilon {spent_eps:.3}, delta {spent_delta:.1e} (ledger {}, entry {}).\n\
         # Domains are marked `source: dp`; review types and roles before use.\n{}",
        a.data.display(),
        ledger.path().display(),
        entry.seq,
        proposed.to_yaml()?
    );
    emit(&text, a.output.as_deref())?;
    for w in &proposal.warnings {
        eprintln!("warning: {w}");
    }
    eprintln!(
        "spent epsilon {spent_eps:.3}, delta {spent_delta:.1e} (rho {:.6}) in {} release(s); recorded in {}",
        budget.rho_spent(),
        budget.charges().len(),
        ledger.path().display()
    );
    Ok(exit::OK)
}

fn ledger_show(a: LedgerShowArgs) -> Result<i32> {
    let ledger = Ledger::new(&a.ledger.ledger);
    let policy = match &a.ledger.policy {
        Some(p) => Some(Policy::load(p).map_err(|e| Error::Usage(e.to_string()))?),
        None => None,
    };
    let entries = match ledger.entries() {
        Ok(e) => e,
        Err(e @ PrivacyError::Ledger { .. }) => {
            eprintln!("{e}");
            return Ok(exit::FINDINGS);
        }
        Err(e) => return Err(privacy_error(e)),
    };
    let spending = ledger.spending().map_err(privacy_error)?;
    if a.json {
        let rows: Vec<serde_json::Value> = spending
            .iter()
            .map(|(fp, s)| {
                let limit = policy.as_ref().and_then(|p| p.limit_for(fp));
                serde_json::json!({
                    "fingerprint": fp, "name": s.name, "releases": s.releases, "rho": s.rho, "delta": s.delta,
                    "limit": limit.map(|l| serde_json::json!({"epsilon": l.epsilon, "delta": l.delta})),
                    "epsilon_spent": limit.and_then(|l| s.epsilon_at(l.delta)),
                })
            })
            .collect();
        let out = serde_json::json!({
            "ledger": ledger.path().display().to_string(), "entries": entries.len(), "verified": true,
            "head": entries.last().map(|e| e.hash.clone()), "capped": policy.is_some(), "datasets": rows,
        });
        println!("{}", serde_json::to_string_pretty(&out).map_err(|e| Error::Internal(e.to_string()))?);
        return Ok(exit::OK);
    }
    println!("ledger {}: {} release(s), hash chain verified", ledger.path().display(), entries.len());
    if let Some(head) = entries.last() {
        println!("head {} (keep a copy elsewhere to detect truncation)", head.hash);
    }
    match &policy {
        None => println!("no policy given: spending is recorded but NOT capped (pass --policy FILE to cap it)"),
        Some(_) => println!("policy: {}", a.ledger.policy.as_ref().map(|p| p.display().to_string()).unwrap_or_default()),
    }
    for (fp, s) in &spending {
        let limit = policy.as_ref().and_then(|p| p.limit_for(fp));
        let spent = match limit {
            Some(l) => format!(
                "epsilon {} of {} at delta {:e}",
                s.epsilon_at(l.delta).map_or("n/a".to_string(), |e| format!("{e:.4}")),
                l.epsilon,
                l.delta
            ),
            None => format!("epsilon {:.4} at delta {:.1e} (no limit)", s.epsilon_at(1e-9 + s.delta).unwrap_or(f64::NAN), 1e-9 + s.delta),
        };
        println!("  {} ({fp}): {} release(s), rho {:.6}, mechanism delta {:.1e}; {spent}", s.name, s.releases, s.rho, s.delta);
    }
    Ok(exit::OK)
}

/// The pipeline's options from the command line.
fn fit_options(a: &FitCommon) -> pipeline::FitOptions {
    pipeline::FitOptions {
        mechanism: a.mechanism,
        iterations: a.iterations,
        workload: match &a.workload {
            Some(p) => pipeline::WorkloadSource::File(p.clone()),
            None => pipeline::WorkloadSource::Schema { degree: a.degree, max_cells: a.max_cells },
        },
        max_model_mb: a.max_model_mb,
        rounds: a.rounds,
        allow_data_domains: a.allow_data_domains,
    }
}

/// Print exact diagnostics when, and only when, the data holder asked for them.
fn private_diagnostics(asked: bool, scope: &str, lines: privsynth_privacy::Sensitive<Vec<String>>) {
    if !asked {
        return;
    }
    for l in lines.disclose_to_data_holder() {
        eprintln!("private diagnostics (exact counts of the real data, NOT differentially private): {scope}{l}");
    }
}

/// Fit a model: check the schema and options, authorise against the policy (before reading),
/// read, decide which rows count, run the mechanism, and record the release in the ledger. The
/// ledger lock is held until the caller has written its outputs.
fn fit(a: &FitCommon, quiet: bool, holdout: Option<f64>) -> Result<(ModelFile, ledger::LedgerLock, Option<pipeline::Split>)> {
    let started = std::time::Instant::now();
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
    // Everything that can be checked without the data comes before the budget is touched.
    let plan = pipeline::Plan::new(&schema, table, fit_options(a), &a.schema.display().to_string())?;
    for w in &plan.warnings {
        eprintln!("{w}");
    }
    let mut budget = Budget::from_epsilon_delta(a.epsilon, a.delta).map_err(Error::Usage)?;
    let (ledger, lock, fingerprint) = authorize(&a.ledger, &a.data, &budget)?;
    let rows = {
        let _p = Progress::start(quiet, format!("reading {}", a.data.display()));
        let raw = data::read_for_table(&a.data, &plan.table)?;
        plan.rows(&raw, holdout)?
    };
    let fitted = {
        let _p = Progress::start(quiet, format!("fitting {} at epsilon {}", a.mechanism.name().to_uppercase(), a.epsilon));
        plan.fit(&rows.encoded, &mut budget)?
    };
    if let (Some(trace), Some(w)) = (&fitted.aim, &plan.workload) {
        let last = trace.rounds.last();
        eprintln!(
            "AIM: {} rounds over a workload of {} marginal(s); model {:.1} MB (limit {:.0} MB), {} annealing step(s)",
            trace.rounds.len(),
            w.len(),
            last.map_or(0.0, |r| r.model_cells * 8.0 / (1 << 20) as f64),
            a.max_model_mb,
            trace.rounds.iter().filter(|r| r.annealed).count()
        );
    }
    let mut model = plan.model(&fitted, &budget, a.delta);
    let spent = (model.privacy.epsilon, model.privacy.delta);
    let inference = schema_inference(&schema, &ledger, &fingerprint, &mut model)?;
    // Record the release before anything leaves: a failed write then over-counts, never under.
    let unit = plan.table.privacy_unit.clone();
    let dataset = DatasetRef { fingerprint: fingerprint.clone(), name: a.data.display().to_string(), privacy_unit: unit.clone(), rows_per_unit: unit.as_ref().map(|_| plan.rows_per_unit()) };
    let mut command = format!("fit --mechanism {}", a.mechanism.name());
    if let Some(f) = holdout {
        command.push_str(&format!(" --audit-holdout {f}"));
    }
    if a.allow_data_domains {
        command.push_str(" --allow-data-domains");
    }
    let entry = ledger.append_release(&command, dataset, budget.charges(), &ledger::new_run_id(), &plan.outside_guarantee).map_err(privacy_error)?;
    let texts: Vec<&str> = crate::synthetic::text_columns(&plan.table).iter().map(|c| c.name.as_str()).collect();
    let dropped: Vec<&str> = plan.table.columns.iter().filter(|c| !c.is_modelled() && !texts.contains(&c.name.as_str())).map(|c| c.name.as_str()).collect();
    let by_order = fitted.fit.measured_by_order();
    let measured = by_order.iter().enumerate().map(|(k, n)| format!("{n} {}-way", k + 1)).collect::<Vec<_>>().join(", ");
    let unit_text = match &unit {
        Some(u) => format!("privacy unit {u}, at most {} row(s) per unit", plan.rows_per_unit()),
        None => "privacy unit: one row".to_string(),
    };
    eprintln!(
        "fit: {} over {} columns, marginals measured: {measured}; {} mirror-descent iterations, {:.1} s; \
         {unit_text}; spent epsilon {:.3}, delta {:.1e} (rho {:.6}); ledger entry {} in {}",
        a.mechanism.name().to_uppercase(),
        model.columns.len(),
        fitted.fit.stats.iterations,
        started.elapsed().as_secs_f64(),
        spent.0,
        spent.1,
        budget.rho_spent(),
        entry.seq,
        ledger.path().display()
    );
    for l in inference {
        eprintln!("{l}");
    }
    report_dataset_total(&ledger, &fingerprint, a.delta);
    warn_noise(&model, None);
    if !dropped.is_empty() {
        eprintln!("not modelled (identifiers; left out of the synthetic data): {}", dropped.join(", "));
    }
    if !texts.is_empty() {
        eprintln!("not modelled (text; written by the LLM stage, or left empty without one): {}", texts.join(", "));
    }
    private_diagnostics(a.private_diagnostics, "", rows.notes.map(|n| n.lines()));
    Ok((model, lock, rows.split))
}

/// The dataset's spending across the ledger (every release on its fingerprint, this one
/// included): the figure a lifetime policy caps.
fn report_dataset_total(ledger: &Ledger, fingerprint: &str, delta: f64) {
    if let Ok(Some(s)) = ledger.spending().map(|mut m| m.remove(fingerprint)) {
        if s.releases > 1 {
            let eps = s.epsilon_at(delta + s.delta).map_or("n/a".to_string(), |e| format!("{e:.3}"));
            eprintln!("ledger: {} release(s) on this dataset so far, together epsilon {eps} at delta {:.1e} (rho {:.6})", s.releases, delta + s.delta, s.rho);
        }
    }
}

/// Add the cost of the DP inference that proposed the schema (if it did) to the model file,
/// and say whether the ledger charged it to the same data. Returns the lines to print.
fn schema_inference(schema: &Schema, ledger: &Ledger, fingerprint: &str, model: &mut ModelFile) -> Result<Vec<String>> {
    use crate::model::file::Spend;
    let Some(d) = &schema.dp_inference else { return Ok(vec![]) };
    let entries = ledger.entries().map_err(privacy_error)?;
    let found = entries.iter().find(|e| e.run_id == d.run_id);
    // zCDP costs add; the approximate mechanisms' delta adds to the conversion deltas.
    let rho = model.privacy.rho + d.rho;
    let delta = model.privacy.delta + d.delta;
    let conversion = (delta - d.mechanism_delta).max(f64::MIN_POSITIVE);
    let combined = Spend { epsilon: privsynth_privacy::accountant::epsilon_for(rho, conversion.min(0.5)), delta, rho };
    model.privacy.schema_inference = Some(Spend { epsilon: d.epsilon, delta: d.delta, rho: d.rho });
    model.privacy.with_schema_inference = Some(combined);
    let together = format!("this model and the schema's DP inference together: epsilon {:.3} at delta {:.1e} (rho {:.6})", combined.epsilon, combined.delta, combined.rho);
    Ok(vec![match found {
        Some(e) if e.dataset.fingerprint == fingerprint => format!(
            "schema: proposed under DP from this same data (ledger entry {}, epsilon {:.3}); {together}",
            e.seq, d.epsilon
        ),
        Some(e) => format!(
            "schema: proposed under DP from another file (ledger entry {}; the fingerprints differ), so its epsilon {:.3} \
             is charged to that file. If both files describe the same people, {together}",
            e.seq, d.epsilon
        ),
        None => format!(
            "schema: proposed under DP (epsilon {:.3}) in a run that is not in {}; its cost is not in this ledger. If that \
             run read the same people, {together}",
            d.epsilon,
            ledger.path().display()
        ),
    }])
}

/// Say which columns' one-way distributions the noise outweighs (its expected L1 mass is above
/// the estimated record count), so nobody reads their synthetic distribution as data. Released
/// values only: noise scales, public domain sizes and the DP total.
fn warn_noise(model: &ModelFile, scope: Option<&str>) {
    let scope = scope.map(|s| format!("{s}: ")).unwrap_or_default();
    let uniform = model.uniform_columns();
    if !uniform.is_empty() {
        eprintln!(
            "warning: {scope}no value of {} stood out of the noise, so each is drawn uniformly over its schema domain",
            uniform.join(", ")
        );
    }
    let flagged = model.noise_dominated(1.0);
    if flagged.is_empty() {
        return;
    }
    let list: Vec<String> = flagged.iter().take(8).map(|(c, r)| format!("{c} ({r:.1}x)")).collect();
    let more = if flagged.len() > 8 { format!(" and {} more", flagged.len() - 8) } else { String::new() };
    eprintln!(
        "warning: {}the noise outweighs the data in the one-way marginals of {}{more} (expected noise mass over the ~{:.0} records): \
         their synthetic distributions are close to arbitrary. A larger epsilon, coarser domains or more records would help.",
        scope,
        list.join(", "),
        model.total
    );
}

#[allow(clippy::too_many_arguments)]
fn sample_and_write(
    model: &ModelFile,
    origin: &str,
    rows: Option<usize>,
    seed: Option<u64>,
    output: &Path,
    quiet: bool,
    llm_args: &crate::llm::StageArgs,
    llm: Option<&crate::llm::client::Client>,
) -> Result<()> {
    use rand::SeedableRng;
    let started = std::time::Instant::now();
    let rows = rows.unwrap_or(model.total.round() as usize);
    if rows == 0 {
        return Err(Error::Usage("--rows must be at least 1".into()));
    }
    let seed = seed.unwrap_or_else(rand::random);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (mut synth, rejections) = {
        let _p = Progress::start(quiet, format!("sampling {rows} rows"));
        crate::synthetic::SyntheticTable::sample(model, origin, rows, &mut rng)?
    };
    for line in rejections.summary() {
        eprintln!("{line}");
    }
    llm_args.run(llm, model, &mut synth, quiet)?;
    let mut df = synth.into_frame()?;
    data::write(&mut df, output, &model.table.csv)?;
    eprintln!("sample: wrote {} rows x {} columns to {} in {:.1} s (seed {seed})", df.height(), df.width(), output.display(), started.elapsed().as_secs_f64());
    Ok(())
}

/// Options of `synth` for a linked schema, beyond the single-table ones.
struct LinkedRun<'a> {
    common: &'a FitCommon,
    output: &'a Path,
    persons: Option<usize>,
    model_out: Option<&'a Path>,
    seed: u64,
    holdout: Option<f64>,
    format: OutFormat,
}

/// `synth` on linked tables: person-level DP models of the person table and of each event
/// table, linked synthetic tables written as a folder, and optionally an audit per table and
/// per person.
fn synth_linked(schema: &Schema, r: LinkedRun, audit: Option<(&AuditOpts, (Vec<report::gates::Gate>, String))>, quiet: bool) -> Result<i32> {
    use crate::ehr;
    use rand::SeedableRng;
    let a = r.common;
    let started = std::time::Instant::now();
    if a.table.is_some() || a.workload.is_some() {
        return Err(Error::Usage("--table and --workload do not apply to a linked schema (every table is modelled; each model uses the default workload)".into()));
    }
    let plan = pipeline::linked::LinkedPlan::new(schema, fit_options(a), &a.schema.display().to_string())?;
    for w in &plan.warnings {
        eprintln!("{w}");
    }
    let mut specs: Vec<String> = vec![a.data.display().to_string()];
    specs.extend(a.more.iter().cloned());
    let inputs = ehr::Inputs::resolve(schema, &specs)?;
    let total = Budget::from_epsilon_delta(a.epsilon, a.delta).map_err(Error::Usage)?;
    let fingerprint = inputs.fingerprint()?;
    let (ledger, _lock) = authorize_fingerprint(&a.ledger, &fingerprint, &total)?;
    let tables = {
        let _p = Progress::start(quiet, format!("reading {} tables", inputs.files.len()));
        ehr::Tables::read(schema, &inputs)?
    };
    let fitted = {
        let _p = Progress::start(quiet, format!("fitting {} model(s) with {}", plan.models(), a.mechanism.name().to_uppercase()));
        plan.fit(&tables, a.epsilon, a.delta, r.holdout)?
    };
    for (name, m) in &fitted.noise {
        warn_noise(m, Some(name));
    }
    let linked = fitted.model;
    let (unit, bounds) = (linked.privacy.unit.clone(), linked.privacy.contribution_bounds.clone());
    let bounds_text = bounds.iter().map(|(t, k)| format!("{t}={k}")).collect::<Vec<_>>().join(",");
    let dataset = DatasetRef { fingerprint, name: specs.join(" "), privacy_unit: Some(unit.clone()), rows_per_unit: bounds.iter().map(|b| b.1).max() };
    let command = format!(
        "synth (linked) --mechanism {}; privacy unit {unit}; rows per person {bounds_text}{}{}",
        a.mechanism.name(),
        r.holdout.map(|f| format!("; --audit-holdout {f}")).unwrap_or_default(),
        if a.allow_data_domains { "; --allow-data-domains" } else { "" }
    );
    let entry = ledger.append_release(&command, dataset, &fitted.charges, &ledger::new_run_id(), &plan.outside_guarantee).map_err(privacy_error)?;
    eprintln!(
        "fit: {} model(s) ({} per table, person as unit {unit}; rows per person {bounds_text}), {:.1} s; spent epsilon {:.3}, delta {:.1e} (rho {:.6}); ledger entry {} in {}",
        plan.models(),
        a.mechanism.name().to_uppercase(),
        started.elapsed().as_secs_f64(),
        linked.privacy.epsilon,
        a.delta,
        linked.privacy.rho,
        entry.seq,
        ledger.path().display()
    );
    private_diagnostics(a.private_diagnostics, "", fitted.notes);
    if let Some(path) = r.model_out {
        let json = linked.to_json()?;
        data::write_atomic(path, |f| std::io::Write::write_all(f, json.as_bytes()))?;
        eprintln!("wrote model {}", path.display());
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(r.seed);
    write_linked(&linked, "the fitted model", r.persons, &mut rng, r.output, r.format, quiet)?;
    let Some((opts, gates)) = audit else { return Ok(exit::OK) };
    let Some((train, hold)) = fitted.split else { return Err(Error::Internal("an audit without a holdout split".into())) };
    let (tr, _) = ehr::derive(schema, &tables, Some(&train), None)?;
    let (ho, _) = ehr::derive(schema, &tables, Some(&hold), None)?;
    let sy = derive_synthetic(schema, r.output)?;
    audit_linked(schema, (&tr, &ho, &sy), opts, r.seed, gates, quiet)
}

/// Sample a linked model and write its tables into `output` (a folder), atomically: the tables
/// are written into a temporary folder beside it, which then replaces it.
fn write_linked(m: &crate::ehr::LinkedModel, origin: &str, persons: Option<usize>, rng: &mut rand::rngs::StdRng, output: &Path, format: OutFormat, quiet: bool) -> Result<()> {
    let started = std::time::Instant::now();
    let out = {
        let _p = Progress::start(quiet, "sampling linked tables".into());
        crate::ehr::sample::sample(m, origin, persons, rng)?
    };
    if output.is_file() {
        return Err(Error::Usage(format!("{} is a file; a linked schema writes a folder of tables", output.display())));
    }
    let parent = output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let tmp = tempfile::Builder::new().prefix(".privsynth-").tempdir_in(parent).map_err(|e| Error::io(parent, e))?;
    let ext = match format {
        OutFormat::Csv => "csv",
        OutFormat::Parquet => "parquet",
    };
    for (name, df) in out.tables {
        let mut df = df;
        let csv = m.schema.tables.iter().find(|t| t.name == name).map(|t| t.csv.clone()).unwrap_or_default();
        data::write(&mut df, &tmp.path().join(format!("{name}.{ext}")), &csv)?;
    }
    if output.exists() {
        // Replace the tables this run writes; other files in the folder stay.
        for entry in std::fs::read_dir(tmp.path()).map_err(|e| Error::io(tmp.path(), e))? {
            let entry = entry.map_err(|e| Error::io(tmp.path(), e))?;
            let to = output.join(entry.file_name());
            std::fs::rename(entry.path(), &to).map_err(|e| Error::io(&to, e))?;
        }
    } else {
        let kept = tmp.keep();
        std::fs::rename(&kept, output).map_err(|e| Error::io(output, e))?;
    }
    for l in out.report.lines() {
        eprintln!("sample: {l}");
    }
    eprintln!("sample: wrote {} table(s) to {} in {:.1} s", m.schema.tables.len(), output.display(), started.elapsed().as_secs_f64());
    Ok(())
}

/// The schema of what `synth` writes for a linked schema: identifiers without a generator
/// are left out; keys, modelled, fake and text columns stay.
fn output_schema(schema: &Schema) -> Schema {
    let mut s = schema.clone();
    let p = s.person.clone();
    for t in &mut s.tables {
        let keys: Vec<String> = t.primary_key.iter().cloned().chain(t.foreign_keys.iter().map(|f| f.column.clone())).chain(p.as_ref().filter(|p| p.table == t.name).map(|p| p.key.clone())).collect();
        t.columns.retain(|c| c.is_modelled() || keys.contains(&c.name) || c.fake.is_some() || c.kind == schema::ColumnType::Text);
    }
    s
}

/// Read the synthetic linked tables `synth` wrote (a folder) and derive their model tables.
fn derive_synthetic(schema: &Schema, synthetic: &Path) -> Result<crate::ehr::Derived> {
    use crate::ehr;
    let out_schema = output_schema(schema);
    let inputs = ehr::Inputs::resolve(&out_schema, &[synthetic.display().to_string()])?;
    let synth = ehr::Tables::read(&out_schema, &inputs)?;
    Ok(ehr::derive(&out_schema, &synth, None, None)?.0)
}

/// Audit linked tables: each event table (its model columns) and the person level (each
/// person's record with the summaries of their events), against the holdout persons. Report
/// files get the scope before their extension (`audit.person.json`, `audit.encounters.json`).
fn audit_linked(
    schema: &Schema,
    (tr, ho, sy): (&crate::ehr::Derived, &crate::ehr::Derived, &crate::ehr::Derived),
    opts: &AuditOpts,
    seed: u64,
    (gates, source): (Vec<report::gates::Gate>, String),
    quiet: bool,
) -> Result<i32> {
    if opts.membership.membership_model.is_some() {
        return Err(Error::Usage("--membership-model runs on single tables; linked schemas are not supported yet".into()));
    }
    let mut scopes: Vec<(String, schema::Table, &data::RawTable, &data::RawTable, &data::RawTable)> = vec![];
    let pm = schema.person_model_table().ok_or_else(|| Error::Internal("person model".into()))?;
    scopes.push(("person".into(), pm, &tr.person, &ho.person, &sy.person));
    for (i, t) in schema.event_tables().into_iter().enumerate() {
        let m = schema.event_model_table(t).ok_or_else(|| Error::Internal("event model".into()))?;
        scopes.push((t.name.clone(), m, &tr.events[i].rows, &ho.events[i].rows, &sy.events[i].rows));
    }
    let mut worst = exit::OK;
    for (scope, table, t, h, s) in scopes {
        if t.df.height() == 0 || h.df.height() == 0 || s.df.height() == 0 {
            eprintln!("audit {scope}: skipped (no rows in train, holdout or synthetic)");
            continue;
        }
        eprintln!("== audit: {scope} ==");
        let suffixed = |p: &Option<PathBuf>| {
            p.as_ref().map(|p| {
                let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("out");
                p.with_extension(format!("{scope}.{ext}"))
            })
        };
        let o = AuditOpts {
            qi: if scope == "person" { opts.qi.clone() } else { None },
            secret: if scope == "person" { opts.secret.clone() } else { None },
            link_a: None,
            link_b: None,
            attacks: opts.attacks,
            json: suffixed(&opts.json),
            html: suffixed(&opts.html),
            junit: suffixed(&opts.junit),
            gates: opts.gates.clone(),
            membership: evaluate::membership::Args { membership_model: None, membership_targets: 0, membership_shadows: 0, membership_rows: None },
        };
        let code = audit_and_report(&table, t, h, s, &o, seed, (gates.clone(), source.clone()), quiet)?;
        worst = worst.max(code);
    }
    Ok(worst)
}

/// Authorise a release against the ledger's policy for a dataset fingerprint.
fn authorize_fingerprint(args: &LedgerArgs, fingerprint: &str, budget: &Budget) -> Result<(Ledger, ledger::LedgerLock)> {
    let ledger = Ledger::new(&args.ledger);
    let lock = ledger.lock().map_err(privacy_error)?;
    let policy = match &args.policy {
        Some(p) => Policy::load(p).map_err(|e| Error::Usage(e.to_string()))?,
        None => Policy::default(),
    };
    if let Err(refusal) = ledger.authorize(&policy, fingerprint, budget).map_err(privacy_error)? {
        return Err(Error::Budget(refusal.0));
    }
    Ok((ledger, lock))
}
