//! The optional LLM stage: text columns, constraint proposals and a plausibility pass, with
//! prompts built only from the public schema, DP-released statistics and synthetic records, so
//! whatever the model writes is post-processing and costs no privacy budget.
//!
//! - [`prompt`]: the typed prompt builder (the only place a request can be made);
//! - [`client`]: one client for any OpenAI-compatible server (dialects, retries, AIMD limiter,
//!   counters, transcript); [`cache`]: responses by request hash; [`validate`]: the answer check;
//! - [`text`], [`check`], [`constraints`]: the three uses; [`linked`]: text columns of linked
//!   tables (persons and their events); [`pe`]: Private Evolution, text columns learnt from
//!   real texts under DP (embedded locally by [`embed`] and only counted).
//!
//! Without a server configured, text columns are left empty with a warning and everything else
//! works as before.

pub mod cache;
pub mod check;
pub mod client;
pub mod constraints;
pub mod embed;
pub mod linked;
pub mod pe;
pub mod prompt;
pub mod text;
pub mod validate;

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::model::file::ModelFile;
use crate::synthetic::{SyntheticTable, text_columns};
use client::{Client, Dialect, Endpoint, Options};
use prompt::ReleasedStats;

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

impl crate::synthetic::AcceptedText for ModelText {
    fn into_string(self) -> String {
        self.0
    }
}

/// How to reach a server (shared by `synth`, `sample` and `llm constraints`); the command line
/// fills it from its `--llm-*` options (src/cli/llm.rs).
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Base URL of an OpenAI-compatible server, to which /chat/completions is appended. Without
    /// one there is no LLM stage.
    pub url: Option<String>,
    /// Model name sent with each request.
    pub model: Option<String>,
    pub dialect: Dialect,
    /// Sent as a bearer token (the command line reads it from PRIVSYNTH_LLM_API_KEY).
    pub api_key: Option<String>,
    /// Save every prompt and answer (JSON lines) for review.
    pub transcript: Option<PathBuf>,
    /// Response cache (keyed by request hash); `None`: no cache.
    pub cache: Option<PathBuf>,
    /// Most requests in flight (lowered automatically on HTTP 429).
    pub concurrency: usize,
    /// Timeout of one request, in seconds.
    pub timeout: f64,
    pub temperature: f64,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            url: None,
            model: None,
            dialect: Dialect::Openai,
            api_key: None,
            transcript: None,
            cache: Some(PathBuf::from(".privsynth/llm-cache")),
            concurrency: 4,
            timeout: 120.0,
            temperature: 0.7,
        }
    }
}

/// The LLM stage of `synth` and `sample`.
#[derive(Debug, Clone)]
pub struct StageOptions {
    pub connect: ConnectOptions,
    /// Ask the model to flag implausible synthetic records (reported in the summary).
    pub check: bool,
    /// Drop the records the check flags.
    pub drop_flagged: bool,
    /// Longest text value in characters (a column's llm.max_chars may lower it).
    pub max_chars: usize,
    /// Records per request.
    pub batch: usize,
    /// Learn the text columns from the real texts with Private Evolution (`synth` only).
    pub pe: Option<pe::PeOptions>,
}

impl Default for StageOptions {
    fn default() -> Self {
        StageOptions {
            connect: ConnectOptions::default(),
            check: false,
            drop_flagged: false,
            max_chars: 200,
            batch: 10,
            pe: None,
        }
    }
}

impl ConnectOptions {
    /// The client, or `None` when no server is configured. Checks every option first.
    pub fn client(&self) -> Result<Option<Client>> {
        let Some(url) = self.url.as_deref().map(str::trim).filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Error::Usage(format!("--llm-url must start with http:// or https://, got {url:?}")));
        }
        let model = self.model.as_deref().map(str::trim).filter(|m| !m.is_empty()).ok_or_else(|| {
            Error::Usage("an LLM server is configured (--llm-url / PRIVSYNTH_LLM_URL) but no model: pass --llm-model or set PRIVSYNTH_LLM_MODEL".into())
        })?;
        if !(1..=64).contains(&self.concurrency) {
            return Err(Error::Usage(format!("--llm-concurrency must be between 1 and 64, got {}", self.concurrency)));
        }
        if !(self.timeout.is_finite() && self.timeout > 0.0 && self.timeout <= 3600.0) {
            return Err(Error::Usage(format!(
                "--llm-timeout must be a number of seconds in (0, 3600], got {}",
                self.timeout
            )));
        }
        if !(0.0..=2.0).contains(&self.temperature) {
            return Err(Error::Usage(format!("--llm-temperature must be between 0 and 2, got {}", self.temperature)));
        }
        let endpoint = Endpoint {
            base_url: url.trim_end_matches('/').to_string(),
            model: model.to_string(),
            api_key: self.api_key.clone().filter(|k| !k.is_empty()),
            dialect: self.dialect,
        };
        let opts = Options {
            concurrency: self.concurrency,
            timeout: Duration::from_secs_f64(self.timeout),
            cache: self.cache.clone(),
            transcript: self.transcript.clone(),
            ..Options::default()
        };
        Ok(Some(Client::new(endpoint, opts)))
    }
}

impl StageOptions {
    /// Check the options and reach the server, before any budget is spent.
    pub fn prepare(&self) -> Result<Option<Client>> {
        if self.max_chars == 0 || self.max_chars > 10_000 {
            return Err(Error::Usage(format!("--llm-max-chars must be between 1 and 10000, got {}", self.max_chars)));
        }
        if self.batch == 0 || self.batch > 200 {
            return Err(Error::Usage(format!("--llm-batch must be between 1 and 200, got {}", self.batch)));
        }
        if let Some(p) = &self.pe {
            // The same checks as the plan's, before any budget is spent.
            pe::PePlan::new(p, 1e-6, vec!["check".into()], 1)?;
            embed::Embedder::new(p.embed_url.as_deref(), p.embed_model.as_deref(), Duration::from_secs(1))?;
        }
        let client = self.connect.client()?;
        if self.pe.is_some() && client.is_none() {
            return Err(Error::Usage("--llm-pe-epsilon needs an LLM server: pass --llm-url and --llm-model".into()));
        }
        match &client {
            None if self.check => {
                return Err(Error::Usage("--llm-check needs an LLM server: pass --llm-url and --llm-model (or set PRIVSYNTH_LLM_URL and PRIVSYNTH_LLM_MODEL)".into()));
            }
            None if self.connect.transcript.is_some() => {
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

    /// Private Evolution of every text column: plan, record in the ledger, then vote and vary.
    fn evolve(
        &self,
        client: &Client,
        p: &pe::PeOptions,
        real: &pe::Source,
        synth: &mut SyntheticTable,
        stats: &ReleasedStats,
    ) -> Result<Vec<String>> {
        use rand::SeedableRng;
        let table = synth.table().clone();
        let cols = prompt::TextColumn::of_table(&table, self.max_chars);
        let names: Vec<String> = cols.iter().map(|c| c.name().to_string()).collect();
        let plan = pe::PePlan::new(p, real.delta, names, real.texts.rows_per_unit())?;
        let embedder = embed::Embedder::new(
            p.embed_url.as_deref(),
            p.embed_model.as_deref(),
            Duration::from_secs_f64(self.connect.timeout),
        )?;
        let seq = real.ledger.record(&plan, &real.command)?;
        let mut lines = vec![format!(
            "llm pe: Private Evolution of {} over {} iteration(s), epsilon {:.3} at delta {:.1e} (rho {:.6}; L2 sensitivity {} per vote histogram, noise sd {:.2}); embeddings: {}; ledger entry {seq} in {}",
            plan.columns.join(", "),
            plan.iterations,
            plan.epsilon,
            plan.delta,
            plan.rho(),
            plan.sensitivity,
            plan.scale,
            embedder.describe(),
            real.ledger.ledger.path().display()
        )];
        let rows = synth.rows()?;
        let cx = pe::Context {
            client,
            embedder: &embedder,
            table: &table,
            stats,
            rows: &rows,
            batch: self.batch,
            temperature: self.connect.temperature,
        };
        let mut budget = privsynth_privacy::Budget::from_rho(plan.rho()).map_err(Error::Usage)?;
        // Which candidate each record varies is post-processing of the noisy votes.
        let mut rng = rand::rngs::StdRng::seed_from_u64(rand::random());
        for c in &cols {
            let (values, report) = pe::evolve(&cx, c, &real.texts, &plan, &mut budget, &mut rng)?;
            synth.set_text(c.name(), values)?;
            lines.push(report.summary(plan.scale));
        }
        if budget.charges() != plan.costs.as_slice() {
            return Err(Error::Internal(
                "the Private Evolution charges differ from the release recorded in the ledger".into(),
            ));
        }
        // The composed cost: every release on this dataset (the fit's and this one, and any
        // earlier), as the ledger adds them up in zCDP.
        if let Ok(Some(spent)) = real.ledger.ledger.spending().map(|mut m| m.remove(&real.ledger.dataset.fingerprint))
            && let Some(eps) = spent.epsilon_at(real.delta)
        {
            lines.push(format!(
                    "llm pe: dataset total in the ledger with this release: rho {:.6} over {} release(s), epsilon {eps:.3} at delta {:.1e} (zCDP composition)",
                    spent.rho, spent.releases, real.delta
                ));
        }
        Ok(lines)
    }

    /// [`StageOptions::prepare`] for a linked schema, whose stage writes text columns only.
    pub fn prepare_linked(&self) -> Result<Option<Client>> {
        if self.pe.is_some() {
            return Err(Error::Usage("--llm-pe-epsilon does not run on linked tables yet: drop it (text columns are then written from the schema and DP statistics)".into()));
        }
        if self.check {
            return Err(Error::Usage(
                "--llm-check does not run on linked tables yet (text columns do): drop --llm-check".into(),
            ));
        }
        self.prepare()
    }

    /// Start the stage on a linked sample drawn block by block: [`LinkedStage::block`] writes
    /// the text columns of every table of each block, [`LinkedStage::finish`] writes the
    /// transcript and the summary (call it also when a block failed, with that error).
    pub fn start_linked<'c>(
        &self,
        client: Option<&'c Client>,
        model: &crate::ehr::LinkedModel,
        quiet: bool,
    ) -> LinkedStage<'c> {
        let texts: Vec<String> = model
            .schema
            .tables
            .iter()
            .flat_map(|t| text_columns(t).into_iter().map(|c| format!("{}.{}", t.name, c.name)))
            .collect();
        match client {
            None if !texts.is_empty() => eprintln!(
                "warning: no LLM configured (--llm-url / PRIVSYNTH_LLM_URL), so the text column(s) {} are left empty",
                texts.join(", ")
            ),
            Some(c) => c.show_progress(!quiet),
            None => {}
        }
        LinkedStage {
            client,
            max_chars: self.max_chars,
            batch: self.batch,
            temperature: self.connect.temperature,
            transcript: self.connect.transcript.clone(),
            reports: vec![],
        }
    }

    /// Run the stage on freshly sampled records: text columns, then the optional check. The
    /// transcript is written even when the stage stops with an error.
    ///
    /// With Private Evolution asked for, `real` holds the real texts (only `synth` has them).
    /// What [`StageOptions::run`] says without a client: text columns are left empty.
    pub fn warn_without_llm(&self, model: &ModelFile) {
        let texts: Vec<String> = text_columns(&model.table).iter().map(|c| c.name.clone()).collect();
        if !texts.is_empty() {
            eprintln!(
                "warning: no LLM configured (--llm-url / PRIVSYNTH_LLM_URL), so the text column(s) {} are left empty",
                texts.join(", ")
            );
        }
    }

    /// Whether the stage needs the whole synthetic table in memory even without a client
    /// (Private Evolution, which `run` refuses without real texts).
    pub fn needs_table(&self) -> bool {
        self.pe.is_some()
    }

    pub fn run(
        &self,
        client: Option<&Client>,
        model: &ModelFile,
        synth: &mut SyntheticTable,
        quiet: bool,
        real: Option<&pe::Source>,
    ) -> Result<()> {
        if self.pe.is_some() && real.is_none() {
            return Err(Error::Usage(
                "--llm-pe-epsilon learns from the real texts, which only `synth` reads: use it with synth".into(),
            ));
        }
        let texts: Vec<String> = text_columns(&model.table).iter().map(|c| c.name.clone()).collect();
        let Some(client) = client else {
            self.warn_without_llm(model);
            return Ok(());
        };
        client.show_progress(!quiet);
        let t = self.connect.temperature;
        let result = (|| -> Result<Vec<String>> {
            let stats = ReleasedStats::from_model(model)?;
            let mut lines = vec![];
            match (&self.pe, real) {
                (Some(p), Some(real)) if !texts.is_empty() => {
                    lines.extend(self.evolve(client, p, real, synth, &stats)?)
                }
                _ if !texts.is_empty() => {
                    lines.push(text::fill(client, synth, &stats, self.max_chars, self.batch, t)?.summary())
                }
                _ => {}
            }
            if self.check {
                lines.extend(check::check(client, synth, &stats, self.batch, t, self.drop_flagged)?.summary());
            }
            Ok(lines)
        })();
        let written = client.write_transcript();
        eprintln!("{}", client.summary());
        for l in result? {
            eprintln!("{l}");
        }
        written?;
        if let Some(p) = &self.connect.transcript {
            eprintln!("llm: transcript of every prompt and answer in {}", p.display());
        }
        Ok(())
    }
}

/// The LLM stage of a linked sample drawn block by block ([`StageOptions::start_linked`]).
pub struct LinkedStage<'c> {
    client: Option<&'c Client>,
    max_chars: usize,
    batch: usize,
    temperature: f64,
    transcript: Option<PathBuf>,
    /// What was written per table, added up over the blocks.
    reports: Vec<(String, text::TextReport)>,
}

impl LinkedStage<'_> {
    /// Write the text columns of one block (nothing without a client).
    pub fn block(&mut self, model: &crate::ehr::LinkedModel, out: &mut crate::ehr::sample::Output) -> Result<()> {
        let Some(client) = self.client else { return Ok(()) };
        for (t, r) in linked::fill(client, model, out, self.max_chars, self.batch, self.temperature)? {
            match self.reports.iter_mut().find(|x| x.0 == t) {
                Some((_, acc)) => {
                    acc.records += r.records;
                    acc.written += r.written;
                    acc.batches += r.batches;
                    acc.given_up += r.given_up;
                }
                None => self.reports.push((t, r)),
            }
        }
        Ok(())
    }

    /// Write the transcript and say what the stage did; returns `result` (the blocks' outcome)
    /// unless writing the transcript failed.
    pub fn finish(self, result: Result<()>) -> Result<()> {
        let Some(client) = self.client else { return result };
        let written = client.write_transcript();
        eprintln!("{}", client.summary());
        result?;
        for (t, r) in &self.reports {
            eprintln!("{t}: {}", r.summary());
        }
        written?;
        if let Some(p) = &self.transcript {
            eprintln!("llm: transcript of every prompt and answer in {}", p.display());
        }
        Ok(())
    }
}
