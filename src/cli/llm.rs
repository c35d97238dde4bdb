//! The `--llm-*` options of `synth` and `sample` and the `llm` subcommand, as clap argument
//! structs that convert into the LLM stage's plain option structs (src/llm/ does not depend on
//! the argument parser), and the real side of Private Evolution that `synth` hands the stage.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use crate::llm::client::Dialect;
use crate::llm::{ConnectOptions, StageOptions, constraints::ConstraintsOptions};

/// `privsynth llm ...` commands.
#[derive(Debug, Subcommand)]
pub enum LlmCommand {
    /// Ask the model, from the schema alone, for cross-column rules; they are added to the
    /// table as `status: proposed` for a person to review (only reviewed rules are enforced).
    Constraints(ConstraintsArgs),
}

/// How a server takes a JSON Schema for structured output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DialectArg {
    /// `response_format: {type: json_schema, json_schema: {name, strict: true, schema}}`
    /// (OpenAI; also accepted by vLLM, llama.cpp and Ollama >= 0.5).
    Openai,
    /// vLLM >= 0.12: `structured_outputs: {json: schema}`.
    Vllm,
    /// llama.cpp `llama-server`: `response_format: {type: json_object, schema}`.
    LlamaCpp,
    /// Ollama's OpenAI endpoint, with the schema also in the prompt.
    Ollama,
    /// Servers without schema enforcement: the schema in the prompt, the answer in a
    /// json-fenced block.
    PromptOnly,
}

impl From<DialectArg> for Dialect {
    fn from(d: DialectArg) -> Dialect {
        match d {
            DialectArg::Openai => Dialect::Openai,
            DialectArg::Vllm => Dialect::Vllm,
            DialectArg::LlamaCpp => Dialect::LlamaCpp,
            DialectArg::Ollama => Dialect::Ollama,
            DialectArg::PromptOnly => Dialect::PromptOnly,
        }
    }
}

/// How to reach a server (shared by `synth`, `sample` and `llm constraints`).
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Base URL of an OpenAI-compatible server, to which /chat/completions is appended (e.g.
    /// http://127.0.0.1:8080/v1). Without one there is no LLM stage. The API key, if any, is read
    /// from PRIVSYNTH_LLM_API_KEY.
    #[arg(long, env = "PRIVSYNTH_LLM_URL")]
    pub llm_url: Option<String>,
    /// Model name sent with each request.
    #[arg(long, env = "PRIVSYNTH_LLM_MODEL")]
    pub llm_model: Option<String>,
    /// How the server takes a JSON Schema for structured output.
    #[arg(long, value_enum, env = "PRIVSYNTH_LLM_DIALECT", default_value = "openai")]
    pub llm_dialect: DialectArg,
    /// Save every prompt and answer (JSON lines) for review.
    #[arg(long)]
    pub llm_transcript: Option<PathBuf>,
    /// Response cache (keyed by request hash; reruns with the same seed send nothing).
    #[arg(long, default_value = ".privsynth/llm-cache")]
    pub llm_cache: PathBuf,
    /// Do not read or write the response cache.
    #[arg(long)]
    pub llm_no_cache: bool,
    /// Most requests in flight (lowered automatically on HTTP 429).
    #[arg(long, default_value_t = 4)]
    pub llm_concurrency: usize,
    /// Timeout of one request, in seconds.
    #[arg(long, default_value_t = 120.0)]
    pub llm_timeout: f64,
    /// Sampling temperature.
    #[arg(long, default_value_t = 0.7)]
    pub llm_temperature: f64,
}

impl ConnectArgs {
    pub fn options(&self) -> ConnectOptions {
        ConnectOptions {
            url: self.llm_url.clone(),
            model: self.llm_model.clone(),
            dialect: self.llm_dialect.into(),
            api_key: std::env::var("PRIVSYNTH_LLM_API_KEY").ok().filter(|k| !k.is_empty()),
            transcript: self.llm_transcript.clone(),
            cache: (!self.llm_no_cache).then(|| self.llm_cache.clone()),
            concurrency: self.llm_concurrency,
            timeout: self.llm_timeout,
            temperature: self.llm_temperature,
        }
    }
}

/// The LLM stage of `synth` and `sample`.
#[derive(Debug, Clone, Args)]
pub struct StageArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Ask the model to flag implausible synthetic records (reported in the summary).
    #[arg(long)]
    pub llm_check: bool,
    /// Drop the records --llm-check flags.
    #[arg(long, requires = "llm_check")]
    pub llm_drop_flagged: bool,
    /// Longest text value in characters (a column's llm.max_chars may lower it).
    #[arg(long, default_value_t = 200)]
    pub llm_max_chars: usize,
    /// Records per request.
    #[arg(long, default_value_t = 10)]
    pub llm_batch: usize,
    /// Learn the text columns from the real texts with Private Evolution at this epsilon (on top
    /// of --epsilon; `synth` only): real texts are embedded locally and vote, under Gaussian
    /// noise, for the model's candidates, which are then varied. Recorded in the ledger.
    #[arg(long)]
    pub llm_pe_epsilon: Option<f64>,
    /// Vote-and-vary rounds of Private Evolution.
    #[arg(long, default_value_t = 3, requires = "llm_pe_epsilon")]
    pub llm_pe_iterations: usize,
    /// An OpenAI-compatible /embeddings server ON THIS MACHINE (loopback only: it receives the
    /// real texts), e.g. http://127.0.0.1:8081/v1; default: a local lexical embedding.
    #[arg(long, requires = "llm_pe_epsilon")]
    pub llm_pe_embed_url: Option<String>,
    /// Model name for the embedding server.
    #[arg(long, requires = "llm_pe_embed_url")]
    pub llm_pe_embed_model: Option<String>,
}

impl StageArgs {
    pub fn options(&self) -> StageOptions {
        StageOptions {
            connect: self.connect.options(),
            check: self.llm_check,
            drop_flagged: self.llm_drop_flagged,
            max_chars: self.llm_max_chars,
            batch: self.llm_batch,
            pe: self.llm_pe_epsilon.map(|epsilon| crate::llm::pe::PeOptions {
                epsilon,
                iterations: self.llm_pe_iterations,
                embed_url: self.llm_pe_embed_url.clone(),
                embed_model: self.llm_pe_embed_model.clone(),
            }),
        }
    }
}

/// `privsynth llm constraints`.
#[derive(Debug, Clone, Args)]
pub struct ConstraintsArgs {
    /// Schema file (YAML).
    #[arg(long)]
    pub schema: PathBuf,
    /// Table of the schema (needed when it has several).
    #[arg(long)]
    pub table: Option<String>,
    /// Write the schema with the proposed rules here (default: stdout). The schema is written
    /// anew from its parsed form, so comments are not kept: write to a new file and compare.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

impl ConstraintsArgs {
    pub fn options(&self) -> ConstraintsOptions {
        ConstraintsOptions {
            schema: self.schema.clone(),
            table: self.table.clone(),
            output: self.output.clone(),
            connect: self.connect.options(),
        }
    }
}

/// The real texts and the ledger target of `synth --llm-pe-epsilon`: read after the fit (the
/// train part when an audit holdout was set aside), recorded on the same dataset fingerprint.
pub fn pe_source(
    common: &super::args::FitCommon,
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
pub fn pe_check(common: &super::args::FitCommon) -> crate::error::Result<()> {
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
