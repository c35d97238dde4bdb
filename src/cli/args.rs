//! The command line's arguments (clap types), and their conversion into the library's plain
//! option structs. One style throughout: the data file is the positional `DATA`, the schema is
//! `--schema`, output goes to `-o/--output` (stdout when absent), randomness takes `--seed`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::mechanism::{Mechanism, aim};
use crate::model::estimate;
use crate::pipeline::audit::{AuditOptions, ReportFiles};
use crate::pipeline::output::TableFormat;
use crate::pipeline::release::LedgerOptions;
use crate::pipeline::{FitOptions, WorkloadSource};
use crate::propose::infer;
use crate::schema::{self, CsvFormat};

#[derive(Debug, Parser)]
#[command(
    name = "privsynth",
    version,
    about = "Differentially private synthetic data, with an audit of what was preserved and what could leak"
)]
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
    /// Fit a DP model of a table (AIM by default, or MST) and write it to a model file.
    Fit(FitArgs),
    /// Draw synthetic records from a model file (needs no real data).
    Sample(SampleArgs),
    /// Fit and sample in one step: a real table in, a DP synthetic table out.
    Synth(SynthArgs),
    /// Audit a synthetic table against the real train and holdout tables: fidelity,
    /// memorization, re-identification risk, and release gates (exit 1 if a gate fails).
    // --holdout is checked by the command (its error explains why it is needed), so clap's own
    // usage line would show it as optional.
    #[command(
        override_usage = "privsynth audit --train <TRAIN> --holdout <HOLDOUT> --synthetic <SYNTHETIC> --schema <SCHEMA> [OPTIONS]"
    )]
    Audit(AuditArgs),
    /// Audit the privacy claim itself: many in-process runs on D and on D plus a canary, and a
    /// lower bound on epsilon beside the claim (exit 1 if it exceeds the claim).
    AuditPrivacy(AuditPrivacyArgs),
    /// Inspect the privacy ledger: spending per dataset, chain verification.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// The LLM stage's own commands (constraint proposals).
    #[command(subcommand)]
    Llm(super::llm::LlmCommand),
    /// Print a shell completion script (e.g. `privsynth completions bash >
    /// /etc/bash_completion.d/privsynth`, or `source <(privsynth completions zsh)`).
    Completions(CompletionsArgs),
    /// Run a Ballista cluster for `--engine ballista://HOST:PORT` (needs the `engine-ballista`
    /// cargo feature): privsynth's own scheduler and executors, which decode its counting plan.
    #[cfg(feature = "engine-ballista")]
    #[command(subcommand)]
    Engine(EngineCommand),
}

#[cfg(feature = "engine-ballista")]
#[derive(Debug, clap::Subcommand)]
pub enum EngineCommand {
    /// One machine: a scheduler (on localhost, a free port) and N executors in this process;
    /// prints `ballista://HOST:PORT` and serves until stopped.
    Cluster {
        /// Executors to start with the scheduler (0: start them with `privsynth engine executor`).
        #[arg(long, default_value_t = 2)]
        executors: usize,
        /// Tasks each executor runs at once.
        #[arg(long, default_value_t = 1)]
        vcores: usize,
    },
    /// A cluster's scheduler, listening on HOST:PORT (`0.0.0.0:50050` for every interface);
    /// serves until stopped. Start executors with `privsynth engine executor`.
    Scheduler {
        /// The address to listen on, HOST:PORT.
        #[arg(long, default_value = "127.0.0.1:50050")]
        bind: String,
    },
    /// One executor, serving the scheduler at HOST:PORT; serves until stopped.
    Executor {
        /// The scheduler: HOST:PORT (as `privsynth engine scheduler` or `engine cluster` printed it).
        #[arg(long)]
        scheduler: String,
        /// Where its Arrow Flight service (results and shuffle data, read by the client and the
        /// other executors) listens: HOST[:PORT], port 50051 if none.
        #[arg(long, default_value = "127.0.0.1")]
        bind: String,
        /// The name or address other machines reach this executor by (default: the --bind
        /// address; bound to 0.0.0.0, the address the scheduler sees it connect from).
        #[arg(long)]
        external_host: Option<String>,
        /// Tasks this executor runs at once.
        #[arg(long, default_value_t = 1)]
        vcores: usize,
        /// Where it keeps shuffle files (default: a temporary directory).
        #[arg(long)]
        work_dir: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
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
    /// Columns the linkage attacker knows about a target and matches on (with --link-b; default:
    /// the quasi-identifiers against the rest).
    #[arg(long, value_delimiter = ',', requires = "link_b")]
    pub link_a: Option<Vec<String>>,
    /// The columns the linkage attacker tries to learn by matching on --link-a (given with it).
    #[arg(long, value_delimiter = ',', requires = "link_a")]
    pub link_b: Option<Vec<String>>,
    /// Singling-out predicates, and the least number of targets per linkage or inference attack
    /// (train and holdout each; every row is a target when the tables are small enough).
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
    /// The shadow-model membership-inference attack.
    #[command(flatten)]
    pub membership: MembershipArgs,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The real rows the generator was fitted on.
    #[arg(long)]
    pub train: PathBuf,
    /// Required. Real rows of the same population that the generator never saw: without them no
    /// measure can tell memorization from generalisation.
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
    pub mechanism: MechanismArg,
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
    /// Where the marginals are counted: `local` (this process), `datafusion` (Apache DataFusion
    /// over the Parquet/CSV file: encode, bound and GROUP BY in one query plan) or
    /// `ballista://HOST:PORT` (the same plan on a Ballista cluster). The query engines need a
    /// privsynth built with the `engine-datafusion` / `engine-ballista` cargo feature.
    #[arg(long, default_value = "local", value_parser = parse_engine)]
    pub engine: crate::engine::Engine,
    /// Also print exact counts of the real data to stderr: rows left out by the out-of-domain
    /// policy and by contribution bounding, persons above a bound, orphan rows. NOT
    /// differentially private: for the data holder's eyes; never send this output to a shared
    /// log. (`privsynth schema check` lists the rows themselves.)
    #[arg(long)]
    pub private_diagnostics: bool,
    /// Send an OpenLineage run event for the release, after the outputs are written: appended as
    /// one JSON line to this file, or POSTed to this http(s) URL (e.g. Marquez's
    /// /api/v1/lineage). Its `privsynth_privacy` run facet carries the privacy unit, epsilon,
    /// delta, rho and the ledger entry's hash.
    #[arg(long, value_name = "FILE|URL")]
    pub openlineage: Option<String>,
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
    /// Output file: .csv, .tsv, .parquet or .arrow (for a linked model: a folder).
    #[arg(short, long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub out: OutputArgs,
    /// Seed of the sampler (post-processing only; DP noise is never seeded).
    #[arg(long)]
    pub seed: Option<u64>,
    #[command(flatten)]
    pub llm: super::llm::StageArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum OutFormat {
    Csv,
    Parquet,
    /// Arrow IPC (Feather v2).
    Arrow,
}

/// How the synthetic tables are written (`sample` and `synth`).
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Format of the output (default: from the output's extension; for a linked schema, whose
    /// output is a folder, CSV). Unknown extensions are refused before anything is charged.
    #[arg(long, value_enum)]
    pub format: Option<OutFormat>,
    /// Write CSV output without a header line (by default every CSV file has one, also when the
    /// input had none; `schema check` and the audit recognise it).
    #[arg(long)]
    pub no_output_header: bool,
}

impl OutputArgs {
    /// The format and header of a single table written to `path`, or a usage error.
    pub fn single(&self, path: &std::path::Path) -> crate::error::Result<crate::data::Output> {
        let format = crate::data::Format::for_output(path, self.format.map(Into::into))?;
        Ok(crate::data::Output { format, header: !self.no_output_header })
    }

    /// The format and header of the tables of a linked output folder (CSV unless --format).
    pub fn folder(&self) -> crate::data::Output {
        crate::data::Output { format: self.format.map_or(TableFormat::Csv, Into::into), header: !self.no_output_header }
    }
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    #[command(flatten)]
    pub common: FitCommon,
    /// Output file: .csv, .tsv, .parquet or .arrow (for a linked schema: a folder).
    #[arg(short, long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub out: OutputArgs,
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
    #[command(flatten)]
    pub audit: AuditOpts,
    #[command(flatten)]
    pub llm: super::llm::StageArgs,
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
    /// Print as JSON (to stdout, or with `--json=FILE` to that file, like the JSON reports of
    /// `audit` and `synth`).
    #[arg(long, num_args = 0..=1, require_equals = true, value_name = "FILE")]
    pub json: Option<Option<PathBuf>>,
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
    pub fn resolve(&self, from_schema: Option<&CsvFormat>) -> CsvFormat {
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
    /// Print the report as JSON (to stdout, or with `--json=FILE` to that file, like the JSON
    /// reports of `audit` and `synth`).
    #[arg(long, num_args = 0..=1, require_equals = true, value_name = "FILE")]
    pub json: Option<Option<PathBuf>>,
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

fn parse_engine(s: &str) -> std::result::Result<crate::engine::Engine, String> {
    crate::engine::Engine::parse(s).map_err(|e| e.to_string())
}

impl FitCommon {
    /// The library's fit options.
    pub fn options(&self) -> FitOptions {
        FitOptions {
            mechanism: self.mechanism.into(),
            iterations: self.iterations,
            workload: match &self.workload {
                Some(p) => WorkloadSource::File(p.clone()),
                None => WorkloadSource::Schema { degree: self.degree, max_cells: self.max_cells },
            },
            max_model_mb: self.max_model_mb,
            rounds: self.rounds,
            allow_data_domains: self.allow_data_domains,
            engine: self.engine.clone(),
        }
    }

    /// DATA and any further `table=path` items.
    pub fn specs(&self) -> Vec<String> {
        std::iter::once(self.data.display().to_string()).chain(self.more.iter().cloned()).collect()
    }
}

impl LedgerArgs {
    pub fn options(&self) -> LedgerOptions {
        LedgerOptions { ledger: self.ledger.clone(), policy: self.policy.clone() }
    }
}

impl AuditOpts {
    pub fn options(&self, seed: u64) -> AuditOptions {
        AuditOptions {
            qi: self.qi.clone(),
            secret: self.secret.clone(),
            link_a: self.link_a.clone(),
            link_b: self.link_b.clone(),
            attacks: self.attacks,
            seed,
            membership: Some(self.membership.options()),
        }
    }

    pub fn files(&self) -> ReportFiles {
        ReportFiles { json: self.json.clone(), html: self.html.clone(), junit: self.junit.clone() }
    }

    /// Whether any report or gate option was given.
    pub fn any(&self) -> bool {
        self.json.is_some() || self.html.is_some() || self.junit.is_some() || self.gates.is_some()
    }
}

impl From<OutFormat> for TableFormat {
    fn from(f: OutFormat) -> TableFormat {
        match f {
            OutFormat::Csv => TableFormat::Csv,
            OutFormat::Parquet => TableFormat::Parquet,
            OutFormat::Arrow => TableFormat::Ipc,
        }
    }
}

/// `--mechanism` (the library's `Mechanism` knows nothing of argument parsing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MechanismArg {
    Aim,
    Mst,
}

impl From<MechanismArg> for Mechanism {
    fn from(m: MechanismArg) -> Mechanism {
        match m {
            MechanismArg::Aim => Mechanism::Aim,
            MechanismArg::Mst => Mechanism::Mst,
        }
    }
}

/// `audit --membership-*`: the shadow-model membership-inference attack.
#[derive(Debug, Clone, clap::Args)]
pub struct MembershipArgs {
    /// Run the shadow-model membership-inference attack with this model file's mechanism and
    /// budget (the model the synthetic table was sampled from). Costs 4 x targets x shadows
    /// fits.
    #[arg(long)]
    pub membership_model: Option<PathBuf>,
    /// Train targets of the attack (and as many holdout controls).
    #[arg(long, default_value_t = 3)]
    pub membership_targets: usize,
    /// Shadow fits per target to train the attack (and as many fresh ones to test it).
    #[arg(long, default_value_t = 20)]
    pub membership_shadows: usize,
    /// Rows of each shadow dataset (default: the train table's, at most the holdout's - 1).
    #[arg(long)]
    pub membership_rows: Option<usize>,
}

impl MembershipArgs {
    pub fn options(&self) -> crate::evaluate::membership::Args {
        crate::evaluate::membership::Args {
            membership_model: self.membership_model.clone(),
            membership_targets: self.membership_targets,
            membership_shadows: self.membership_shadows,
            membership_rows: self.membership_rows,
        }
    }
}

/// `privsynth audit-privacy`.
#[derive(Debug, clap::Args)]
pub struct AuditPrivacyArgs {
    /// D: the table the runs are fitted on (the user's table or a public stand-in; for a
    /// linked schema, a folder of tables). Leave it out and give --from-model to audit on
    /// records sampled from a model file instead, so the audit touches no real data.
    pub data: Option<PathBuf>,
    /// Schema file (YAML).
    #[arg(long)]
    pub schema: PathBuf,
    /// Table of the schema (needed when it has several).
    #[arg(long)]
    pub table: Option<String>,
    /// The claimed epsilon (the budget each run spends).
    #[arg(long)]
    pub epsilon: f64,
    /// The claimed delta.
    #[arg(long, default_value_t = 1e-9)]
    pub delta: f64,
    #[arg(long, value_enum, default_value = "aim")]
    pub mechanism: MechanismArg,
    /// Runs on D, and as many on D plus the canary.
    #[arg(long, default_value_t = 1000)]
    pub runs: usize,
    /// Confidence of the lower bounds.
    #[arg(long, default_value_t = 0.95)]
    pub confidence: f64,
    /// A canary record instead of the worst case: `column=value` items, comma-separated
    /// (columns left out take the worst case).
    #[arg(long, value_delimiter = ',')]
    pub canary_record: Option<Vec<String>>,
    /// Rows of the canary unit (default: the schema's rows_per_unit; more rows test that the
    /// bound is enforced).
    #[arg(long)]
    pub canary_rows: Option<usize>,
    /// Sample D from this model file (needs no real data).
    #[arg(long, conflicts_with = "data")]
    pub from_model: Option<PathBuf>,
    /// Records to sample with --from-model (default: the model's DP total).
    #[arg(long, requires = "from_model")]
    pub model_rows: Option<usize>,
    /// Quick mode: the one-run audit (Steinke, Nasr and Jagielski 2023) with this many canaries,
    /// each included with probability 1/2, and one fit.
    #[arg(long)]
    pub one_run: Option<usize>,
    /// Synthetic records per run for the black-box score (default: the model's DP total).
    #[arg(long)]
    pub rows: Option<usize>,
    /// Mirror-descent iterations of each run's final estimation.
    #[arg(long, default_value_t = crate::model::estimate::Options::default().max_iters)]
    pub iterations: usize,
    /// Seed of sampling and of the audit's own random choices (DP noise is never seeded).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write the JSON report here (schema: schemas/privacy-audit-report.schema.json).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the HTML report here.
    #[arg(long)]
    pub html: Option<PathBuf>,
}
