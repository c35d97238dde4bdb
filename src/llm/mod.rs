//! The optional LLM stage: text columns, constraint proposals and a plausibility pass, with
//! prompts built only from the public schema, DP-released statistics and synthetic records, so
//! whatever the model writes is post-processing and costs no privacy budget.
//!
//! - [`prompt`]: the typed prompt builder (the only place a request can be made);
//! - [`client`]: one client for any OpenAI-compatible server (dialects, retries, AIMD limiter,
//!   counters, transcript); [`cache`]: responses by request hash; [`validate`]: the answer check;
//! - [`text`], [`check`], [`constraints`]: the three uses.
//!
//! Without a server configured, text columns are left empty with a warning and everything else
//! works as before.

pub mod cache;
pub mod check;
pub mod client;
pub mod constraints;
pub mod prompt;
pub mod text;
pub mod validate;

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::error::{Error, Result};
use crate::model::file::ModelFile;
use crate::synthetic::{SyntheticTable, text_columns};
use client::{Client, Dialect, Endpoint, Options};
use prompt::ReleasedStats;

/// `privsynth llm ...` commands.
#[derive(Debug, clap::Subcommand)]
pub enum LlmCommand {
    /// Ask the model, from the schema alone, for cross-column rules; they are added to the
    /// table as `status: proposed` for a person to review (only reviewed rules are enforced).
    Constraints(constraints::ConstraintsArgs),
}

/// Text a model wrote and a validator accepted. Only this module creates one, so a synthetic
/// table's text cells hold nothing else.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelText(String);

impl ModelText {
    pub(in crate::llm) fn accepted(s: String) -> ModelText {
        ModelText(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
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
    pub llm_dialect: Dialect,
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
}

impl ConnectArgs {
    /// The client, or `None` when no server is configured. Checks every option first.
    pub fn client(&self) -> Result<Option<Client>> {
        let Some(url) = self.llm_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Error::Usage(format!("--llm-url must start with http:// or https://, got {url:?}")));
        }
        let model = self.llm_model.as_deref().map(str::trim).filter(|m| !m.is_empty()).ok_or_else(|| {
            Error::Usage("an LLM server is configured (--llm-url / PRIVSYNTH_LLM_URL) but no model: pass --llm-model or set PRIVSYNTH_LLM_MODEL".into())
        })?;
        if !(1..=64).contains(&self.llm_concurrency) {
            return Err(Error::Usage(format!(
                "--llm-concurrency must be between 1 and 64, got {}",
                self.llm_concurrency
            )));
        }
        if !(self.llm_timeout.is_finite() && self.llm_timeout > 0.0 && self.llm_timeout <= 3600.0) {
            return Err(Error::Usage(format!(
                "--llm-timeout must be a number of seconds in (0, 3600], got {}",
                self.llm_timeout
            )));
        }
        if !(0.0..=2.0).contains(&self.llm_temperature) {
            return Err(Error::Usage(format!(
                "--llm-temperature must be between 0 and 2, got {}",
                self.llm_temperature
            )));
        }
        let endpoint = Endpoint {
            base_url: url.trim_end_matches('/').to_string(),
            model: model.to_string(),
            api_key: std::env::var("PRIVSYNTH_LLM_API_KEY").ok().filter(|k| !k.is_empty()),
            dialect: self.llm_dialect,
        };
        let opts = Options {
            concurrency: self.llm_concurrency,
            timeout: Duration::from_secs_f64(self.llm_timeout),
            cache: (!self.llm_no_cache).then(|| self.llm_cache.clone()),
            transcript: self.llm_transcript.clone(),
            ..Options::default()
        };
        Ok(Some(Client::new(endpoint, opts)))
    }
}

impl StageArgs {
    /// Check the options and reach the server, before any budget is spent.
    pub fn prepare(&self) -> Result<Option<Client>> {
        if self.llm_max_chars == 0 || self.llm_max_chars > 10_000 {
            return Err(Error::Usage(format!(
                "--llm-max-chars must be between 1 and 10000, got {}",
                self.llm_max_chars
            )));
        }
        if self.llm_batch == 0 || self.llm_batch > 200 {
            return Err(Error::Usage(format!("--llm-batch must be between 1 and 200, got {}", self.llm_batch)));
        }
        let client = self.connect.client()?;
        match &client {
            None if self.llm_check => {
                return Err(Error::Usage("--llm-check needs an LLM server: pass --llm-url and --llm-model (or set PRIVSYNTH_LLM_URL and PRIVSYNTH_LLM_MODEL)".into()));
            }
            None if self.connect.llm_transcript.is_some() => {
                return Err(Error::Usage(
                    "--llm-transcript needs an LLM server: pass --llm-url and --llm-model".into(),
                ));
            }
            Some(c) => {
                if let Some(note) = c.preflight()? {
                    eprintln!("{note}");
                }
            }
            None => {}
        }
        Ok(client)
    }

    /// Run the stage on freshly sampled records: text columns, then the optional check. The
    /// transcript is written even when the stage stops with an error.
    pub fn run(
        &self,
        client: Option<&Client>,
        model: &ModelFile,
        synth: &mut SyntheticTable,
        quiet: bool,
    ) -> Result<()> {
        let texts: Vec<String> = text_columns(&model.table).iter().map(|c| c.name.clone()).collect();
        let Some(client) = client else {
            if !texts.is_empty() {
                eprintln!(
                    "warning: no LLM configured (--llm-url / PRIVSYNTH_LLM_URL), so the text column(s) {} are left empty",
                    texts.join(", ")
                );
            }
            return Ok(());
        };
        client.show_progress(!quiet);
        let t = self.connect.llm_temperature;
        let result = (|| -> Result<Vec<String>> {
            let stats = ReleasedStats::from_model(model)?;
            let mut lines = vec![];
            if !texts.is_empty() {
                lines.push(text::fill(client, synth, &stats, self.llm_max_chars, self.llm_batch, t)?.summary());
            }
            if self.llm_check {
                lines.extend(check::check(client, synth, &stats, self.llm_batch, t, self.llm_drop_flagged)?.summary());
            }
            Ok(lines)
        })();
        let written = client.write_transcript();
        eprintln!("{}", client.summary());
        for l in result? {
            eprintln!("{l}");
        }
        written?;
        if let Some(p) = &self.connect.llm_transcript {
            eprintln!("llm: transcript of every prompt and answer in {}", p.display());
        }
        Ok(())
    }
}
