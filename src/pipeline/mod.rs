//! The library layer of a single-table fit, which the command line, the tests and the
//! benchmarks all call: plain option structs, no argument parser.
//!
//! A fit has three steps, in this order:
//! 1. [`Plan::new`]: everything that can be checked without the data (schema, workload,
//!    options, values read from the data), so that usage errors come before any budget is
//!    charged;
//! 2. [`Plan::rows`]: which real rows count. Every decision here is stable under adding or
//!    removing one privacy unit and uses fresh secret randomness, never `--seed`:
//!    - cells that do not fit their column follow the column's out-of-domain policy (a dropped
//!      row is decided from that row alone);
//!    - the optional audit holdout takes each unit independently with probability `f`;
//!    - a table with a `privacy_unit` keeps at most `rows_per_unit` rows of each unit;
//! 3. [`Plan::fit`] and [`Plan::model`]: the mechanism on the encoded rows, and the model file
//!    with the guarantee it carries.
//!
//! [`Plan::fit_file`] runs the three steps inside the release protocol ([`release`]): the
//! command line, the Python package and the benchmarks call it, and print or show what it
//! returns. [`linked`] is the same for linked tables, [`output`] samples and writes, and
//! [`audit`] runs the data holder's audit.

pub mod audit;
pub mod frame;
pub mod lineage;
pub mod linked;
pub mod output;
pub mod propose;
pub mod release;

use std::path::PathBuf;

use privsynth_privacy::bounding::{self, ContributionBound, SecretKey};
use privsynth_privacy::{Budget, Sensitive};

use crate::codec::{EncodedTable, TableCodec};
use crate::data::{self, RawTable};
use crate::error::{Error, Result};
use crate::mechanism::{self, Mechanism, aim, mst};
use crate::model::estimate;
use crate::model::file::ModelFile;
use crate::schema::{self, OutOfDomain, Schema, Table};
use release::{LedgerOptions, Release};

/// What a long step tells its caller (a spinner on a terminal, a progress bar in a notebook,
/// nothing in a test). Messages name the step, never the data.
pub trait Observer: Sync {
    fn begin(&self, step: &str);
    fn end(&self);
}

/// An observer that shows nothing.
pub struct Silent;

impl Observer for Silent {
    fn begin(&self, _: &str) {}
    fn end(&self) {}
}

/// A step in progress; ends when dropped.
pub struct Step<'a>(&'a dyn Observer);

impl<'a> Step<'a> {
    pub fn start(obs: &'a dyn Observer, what: &str) -> Step<'a> {
        obs.begin(what);
        Step(obs)
    }
}

impl Drop for Step<'_> {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// The data and budget of one fit.
#[derive(Debug, Clone)]
pub struct FitRequest {
    /// The data file (CSV, Parquet or Arrow IPC).
    pub data: PathBuf,
    pub epsilon: f64,
    pub delta: f64,
    /// Set each unit aside with this probability for the data holder's audit.
    pub holdout: Option<f64>,
    pub ledger: LedgerOptions,
    /// The data holder asked for the exact counts of what was left out
    /// (`--private-diagnostics`). The local engine has them from its one pass; a query engine
    /// runs one more query for them, so only when asked.
    pub diagnostics: bool,
}

/// What a fit produced. The release holds the ledger's lock until it is dropped: write the
/// outputs first.
pub struct FitOutcome {
    pub model: ModelFile,
    pub release: Release,
    pub entry: privsynth_privacy::ledger::Entry,
    pub split: Option<Split>,
    /// Exact counts of what was left out, for the data holder (`--private-diagnostics`).
    pub notes: Sensitive<Vec<String>>,
    /// What to tell the user, in order (public facts and released values only).
    pub messages: Vec<String>,
}

/// Where AIM's workload comes from.
#[derive(Debug, Clone)]
pub enum WorkloadSource {
    /// A YAML or JSON file: a list of `{columns: [..], weight: w}`.
    File(PathBuf),
    /// The table's own `workload`, or, when it has none, every `degree`-way marginal of at
    /// most `max_cells` cells.
    Schema { degree: usize, max_cells: f64 },
}

/// The options of a fit (what `privsynth fit` takes besides data, schema and budget).
#[derive(Debug, Clone)]
pub struct FitOptions {
    pub mechanism: Mechanism,
    /// Mirror-descent iterations of the final estimation.
    pub iterations: usize,
    /// AIM only.
    pub workload: WorkloadSource,
    pub max_model_mb: f64,
    pub rounds: Option<usize>,
    /// Proceed although the schema holds values read from the data (recorded as outside the
    /// guarantee).
    pub allow_data_domains: bool,
    /// Where the marginals are counted ([`crate::engine`]).
    pub engine: crate::engine::Engine,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            mechanism: Mechanism::Aim,
            iterations: estimate::Options::default().max_iters,
            workload: WorkloadSource::Schema { degree: 2, max_cells: 10_000.0 },
            max_model_mb: aim::Options::default().max_model_mb,
            rounds: None,
            allow_data_domains: false,
            engine: crate::engine::Engine::Local,
        }
    }
}

/// A fit checked against the schema before any data is read.
pub struct Plan {
    pub table: Table,
    pub codec: TableCodec,
    /// AIM's workload in code indices (`None` for MST).
    pub workload: Option<aim::Workload>,
    pub opts: FitOptions,
    /// What the release's guarantee does not cover, from public facts (schema and options):
    /// values read from the data that the override let through, strict out-of-domain policies.
    pub outside_guarantee: Vec<String>,
    /// Warnings to print (public: derived from the schema and the options).
    pub warnings: Vec<String>,
}

impl Plan {
    /// Check a single-table fit: the table, the values read from the data, the workload and
    /// the options. `origin` names the schema file in messages.
    pub fn new(schema: &Schema, table: Table, opts: FitOptions, origin: &str) -> Result<Plan> {
        let mut warnings = vec![];
        let mut outside_guarantee = vec![];
        if let Some(w) = schema.ensure_public_domains(origin, opts.allow_data_domains)? {
            warnings.push(w);
            outside_guarantee.push(format!(
                "values read from the data were allowed (--allow-data-domains): {}",
                schema.read_from_data().join(", ")
            ));
        }
        let strict: Vec<&str> = table
            .columns
            .iter()
            .filter(|c| c.is_modelled() && table.policy(c) == OutOfDomain::Error)
            .map(|c| c.name.as_str())
            .collect();
        if !strict.is_empty() {
            warnings.push(format!(
                "warning: out_of_domain: error (strict) on {}: a cell that does not fit stops the run, so whether it \
                 succeeds depends on the data, which the DP guarantee does not cover. Use drop, clip or null for a \
                 guarantee that holds whatever the data holds.",
                strict.join(", ")
            ));
            outside_guarantee.push(format!(
                "out_of_domain: error on {}: whether the run succeeded depends on the data",
                strict.join(", ")
            ));
        }
        if opts.iterations == 0 {
            return Err(Error::Usage("--iterations must be at least 1".into()));
        }
        opts.engine.check_available()?;
        let codec = TableCodec::new(&table)?;
        let workload = match opts.mechanism {
            Mechanism::Aim => {
                if !(opts.max_model_mb > 0.0 && opts.max_model_mb.is_finite()) {
                    return Err(Error::Usage(format!(
                        "--max-model-mb must be a positive number of MB, got {}",
                        opts.max_model_mb
                    )));
                }
                if opts.rounds == Some(0) {
                    return Err(Error::Usage("--rounds must be at least 1".into()));
                }
                Some(resolve_workload(&opts.workload, &table, &codec, origin)?)
            }
            Mechanism::Mst => None,
        };
        Ok(Plan { table, codec, workload, opts, outside_guarantee, warnings })
    }

    /// The whole fit of a data file: authorize, read, choose the rows, fit, build the model
    /// file and record the release. `schema` is the file the table came from (for the cost of a
    /// DP-inferred schema).
    pub fn fit_file(&self, schema: &Schema, req: &FitRequest, obs: &dyn Observer) -> Result<FitOutcome> {
        self.fit_file_as("fit", schema, req, obs)
    }

    /// [`Plan::fit_file`] for the command `command` (`fit` or `synth`), as the ledger records it.
    pub fn fit_file_as(
        &self,
        command: &str,
        schema: &Schema,
        req: &FitRequest,
        obs: &dyn Observer,
    ) -> Result<FitOutcome> {
        let started = std::time::Instant::now();
        if let Some(f) = req.holdout
            && !(f > 0.0 && f < 1.0)
        {
            return Err(Error::Usage(format!("--audit-holdout must be a fraction between 0 and 1, got {f}")));
        }
        let budget = Budget::from_epsilon_delta(req.epsilon, req.delta).map_err(Error::Usage)?;
        // A query engine's combinations are checked before the ledger is touched.
        self.check_engine(req)?;
        let release = match req.data.is_dir() {
            // A folder of Parquet parts (a query engine's; `check_engine` refused it for local).
            true => Release::authorize_parts(&req.ledger, &crate::engine::table_parts(&req.data)?, &budget)?,
            false => Release::authorize_file(&req.ledger, &req.data, &budget)?,
        };
        if self.opts.engine != crate::engine::Engine::Local {
            let counter = self.engine_counter(&req.data)?;
            let notes = match req.diagnostics {
                true => counter.left_out()?.ok_or_else(|| Error::Internal("the engine's left-out counts".into()))?,
                false => Sensitive::new(vec![]),
            };
            return self.fit_released(command, schema, req, release, budget, &*counter, None, notes, started, obs);
        }
        let rows = {
            let _s = Step::start(obs, &format!("reading {}", req.data.display()));
            match req.holdout {
                // The audit needs the real rows of both parts, so a holdout run reads the table.
                Some(_) => {
                    let raw = data::read_for_table(&req.data, &self.table)?;
                    self.rows(&raw, req.holdout)?
                }
                None => self.rows_streamed(&req.data, data::BATCH_ROWS)?,
            }
        };
        let notes = rows.notes.map(|n| n.lines());
        self.fit_released(command, schema, req, release, budget, &rows.encoded, rows.split, notes, started, obs)
    }

    /// The combinations a query engine does not support, refused before anything is charged.
    fn check_engine(&self, req: &FitRequest) -> Result<()> {
        let engine = &self.opts.engine;
        if *engine == crate::engine::Engine::Local {
            if req.data.is_dir() && crate::engine::table_parts(&req.data).is_ok() {
                return Err(Error::Usage(format!(
                    "{} is a folder of Parquet part files: the local engine reads one data file. Count it with \
                     --engine datafusion or --engine ballista://HOST:PORT (a privsynth built with the \
                     engine-datafusion / engine-ballista feature), or concatenate the parts into one file",
                    req.data.display()
                )));
            }
            return Ok(());
        }
        engine.check_available()?;
        if req.holdout.is_some() {
            return Err(Error::Usage(format!(
                "--engine {}: --audit-holdout needs the real rows of both parts in this process; use --engine local \
                 for an audited run",
                engine.name()
            )));
        }
        if req.data.is_dir() {
            return crate::engine::table_parts_for(&req.data, engine).map(|_| ());
        }
        match data::Format::of(&req.data) {
            data::Format::Parquet | data::Format::Csv => Ok(()),
            f => Err(Error::Usage(format!(
                "--engine {}: {} is {f:?}; the query engines read Parquet and CSV files",
                engine.name(),
                req.data.display()
            ))),
        }
    }

    /// The counter of the chosen query engine over `path`.
    #[allow(unused_variables)]
    pub fn engine_counter(&self, path: &std::path::Path) -> Result<Box<dyn crate::marginals::Counter>> {
        self.opts.engine.check_available()?;
        #[cfg(feature = "engine-datafusion")]
        {
            Ok(Box::new(crate::engine::datafusion::DataFusionCounter::open(
                &self.table,
                &self.codec,
                path,
                self.rows_per_unit(),
                &self.opts.engine,
            )?))
        }
        #[cfg(not(feature = "engine-datafusion"))]
        Err(Error::Internal("no query engine in this build".into()))
    }

    /// [`Plan::fit_file`] for a table already in memory (a data frame handed over by the Python
    /// package): the ledger knows the dataset by the fingerprint of its content
    /// ([`frame::frame_fingerprint`]) and `req.data` names it in the ledger and messages.
    pub fn fit_frame(
        &self,
        schema: &Schema,
        raw: RawTable,
        req: &FitRequest,
        obs: &dyn Observer,
    ) -> Result<FitOutcome> {
        let started = std::time::Instant::now();
        let budget = Budget::from_epsilon_delta(req.epsilon, req.delta).map_err(Error::Usage)?;
        if self.opts.engine != crate::engine::Engine::Local {
            return Err(Error::Usage(format!(
                "--engine {}: a data frame in memory is counted locally; give the query engine a Parquet or CSV file",
                self.opts.engine.name()
            )));
        }
        let raw = frame::frame_for_table(raw, &self.table)?;
        let fingerprint = {
            let _s = Step::start(obs, "fingerprinting the data frame");
            frame::frame_fingerprint(&raw)?
        };
        let release = Release::authorize(&req.ledger, fingerprint, &budget)?;
        let rows = self.rows(&raw, req.holdout)?;
        drop(raw);
        let notes = rows.notes.map(|n| n.lines());
        self.fit_released("fit", schema, req, release, budget, &rows.encoded, rows.split, notes, started, obs)
    }

    /// The fit after the policy admitted it: choose the rows, fit, build the model file and
    /// record the release.
    #[allow(clippy::too_many_arguments)]
    fn fit_released(
        &self,
        command: &str,
        schema: &Schema,
        req: &FitRequest,
        release: Release,
        mut budget: Budget,
        counter: &dyn crate::marginals::Counter,
        split: Option<Split>,
        notes: Sensitive<Vec<String>>,
        started: std::time::Instant,
        obs: &dyn Observer,
    ) -> Result<FitOutcome> {
        // Nothing is recorded before `release.record`.
        let mechanism = self.opts.mechanism.name().to_uppercase();
        let fitted = {
            let _s = Step::start(obs, &format!("fitting {mechanism} at epsilon {}", req.epsilon));
            self.fit(counter, &mut budget)?
        };
        let mut messages = vec![];
        if let (Some(trace), Some(w)) = (&fitted.aim, &self.workload) {
            let last = trace.rounds.last();
            messages.push(format!(
                "AIM: {} rounds over a workload of {} marginal(s); model {:.1} MB (limit {:.0} MB), {} annealing step(s)",
                trace.rounds.len(),
                w.len(),
                last.map_or(0.0, |r| r.model_cells * 8.0 / (1 << 20) as f64),
                self.opts.max_model_mb,
                trace.rounds.iter().filter(|r| r.annealed).count()
            ));
        }
        let mut model = self.model(&fitted, &budget, req.delta);
        let inference = schema_inference(schema, &release, &mut model)?;
        let unit = self.table.privacy_unit.clone().map(|u| (u, self.rows_per_unit()));
        let mut command = format!("{command} --mechanism {}", self.opts.mechanism.name());
        if self.opts.engine != crate::engine::Engine::Local {
            command.push_str(&format!(" --engine {}", self.opts.engine.name()));
        }
        if let Some(f) = req.holdout {
            command.push_str(&format!(" --audit-holdout {f}"));
        }
        if self.opts.allow_data_domains {
            command.push_str(" --allow-data-domains");
        }
        let entry = release.record_guarantee(
            &command,
            &req.data.display().to_string(),
            unit.clone(),
            budget.charges(),
            &self.outside_guarantee,
            Some((model.privacy.epsilon, model.privacy.delta)),
        )?;
        let by_order = fitted.fit.measured_by_order();
        let measured =
            by_order.iter().enumerate().map(|(k, n)| format!("{n} {}-way", k + 1)).collect::<Vec<_>>().join(", ");
        let unit_text = match &unit {
            Some((u, k)) => format!("privacy unit {u}, at most {k} row(s) per unit"),
            None => "privacy unit: one row".to_string(),
        };
        messages.push(format!(
            "fit: {mechanism} over {} columns, marginals measured: {measured}; {} mirror-descent iterations, {:.1} s; \
             {unit_text}; spent epsilon {:.3}, delta {:.1e} (rho {:.6}); ledger entry {} in {}",
            model.columns.len(),
            fitted.fit.stats.iterations,
            started.elapsed().as_secs_f64(),
            model.privacy.epsilon,
            model.privacy.delta,
            budget.rho_spent(),
            entry.seq,
            release.ledger().path().display()
        ));
        messages.extend(inference);
        messages.extend(release.dataset_total(req.delta));
        messages.extend(model.noise_warnings(None));
        let texts: Vec<&str> = crate::synthetic::text_columns(&self.table).iter().map(|c| c.name.as_str()).collect();
        let dropped: Vec<&str> = self
            .table
            .columns
            .iter()
            .filter(|c| !c.is_modelled() && !texts.contains(&c.name.as_str()))
            .map(|c| c.name.as_str())
            .collect();
        if !dropped.is_empty() {
            messages
                .push(format!("not modelled (identifiers; left out of the synthetic data): {}", dropped.join(", ")));
        }
        if !texts.is_empty() {
            messages.push(format!(
                "not modelled (text; written by the LLM stage, or left empty without one): {}",
                texts.join(", ")
            ));
        }
        Ok(FitOutcome { model, release, entry, split, notes, messages })
    }

    /// The contribution bound the schema declares (1 row per unit without a `privacy_unit`).
    pub fn rows_per_unit(&self) -> u32 {
        if self.table.privacy_unit.is_some() { self.table.rows_per_unit.unwrap_or(1) } else { 1 }
    }

    /// Decide which rows of `raw` count: encode under the out-of-domain policies, set the audit
    /// holdout aside (each unit with probability `holdout`), and bound each unit's rows.
    pub fn rows(&self, raw: &RawTable, holdout: Option<f64>) -> Result<Rows> {
        if let Some(f) = holdout
            && !(f > 0.0 && f < 1.0)
        {
            return Err(Error::Usage(format!("--audit-holdout must be a fraction between 0 and 1, got {f}")));
        }
        let encoding = self.codec.encode_all(raw)?;
        let unit_keys: Option<Vec<Option<String>>> = match &self.table.privacy_unit {
            Some(u) => Some(crate::ehr::keys(raw, u)?),
            None => None,
        };
        let mut notes = RowNotes { encode: encoding.notes().disclose_to_data_holder(), ..Default::default() };
        // The unit of row i: its key, or the row itself.
        let unit_of = |i: usize| -> Option<Vec<u8>> {
            match &unit_keys {
                Some(k) => k[i].as_ref().map(|s| s.as_bytes().to_vec()),
                None => Some((i as u64).to_le_bytes().to_vec()),
            }
        };
        let split_key = holdout.map(|_| SecretKey::fresh()).transpose()?;
        let (mut train, mut hold) = (vec![], vec![]);
        for i in 0..encoding.len() {
            let Some(unit) = unit_of(i) else {
                notes.no_unit += 1;
                continue;
            };
            match (&split_key, holdout) {
                (Some(k), Some(f)) if k.bernoulli(&unit, f) => hold.push(i),
                _ => train.push(i),
            }
        }
        let fit_rows: Vec<usize> = train.iter().copied().filter(|&i| encoding.is_valid(i)).collect();
        let (kept, bound) = match &unit_keys {
            Some(keys) => {
                let units: Vec<&[u8]> = fit_rows.iter().map(|&i| keys[i].as_deref().unwrap_or("").as_bytes()).collect();
                let b = bounding::keep_rows(&units, self.rows_per_unit(), &SecretKey::fresh()?)?;
                notes.bounded = fit_rows.len() - b.kept.len();
                (b.kept.iter().map(|&j| fit_rows[j]).collect::<Vec<_>>(), b.bound)
            }
            None => (fit_rows, ContributionBound::ROW_IS_UNIT),
        };
        let encoded = encoding.select(&kept, bound)?;
        // The audit compares the synthetic rows with the rows that fit the schema on each side.
        let valid = |v: &[usize]| v.iter().copied().filter(|&i| encoding.is_valid(i)).collect::<Vec<_>>();
        let split = match holdout {
            None => None,
            Some(_) => Some(Split {
                train: raw.take(&valid(&train), format!("{} (train part)", raw.file))?,
                holdout: raw.take(&valid(&hold), format!("{} (holdout part, never fitted)", raw.file))?,
            }),
        };
        Ok(Rows { encoded, split, notes: Sensitive::new(notes) })
    }

    /// [`Plan::rows`] of a data file without a holdout, read in batches of `batch_rows`: each
    /// batch is encoded under the out-of-domain policies and only the codes of its valid rows
    /// are kept (one or two bytes a cell); contribution bounding runs in the stream
    /// ([`bounding::BoundStream`], the same rows as [`bounding::keep_rows`]), holding per unit
    /// its key and at most `rows_per_unit` (draw, row) pairs. Only the identifier column of a
    /// `privacy_unit` and the modelled columns are read.
    pub fn rows_streamed(&self, path: &std::path::Path, batch_rows: usize) -> Result<Rows> {
        self.rows_streamed_with_key(path, batch_rows, &SecretKey::fresh()?)
    }

    /// [`Plan::rows_streamed`] under a given bounding key: for checking that another counting
    /// engine keeps exactly the same rows under the same key. A release always draws a fresh
    /// key ([`Plan::rows_streamed`]).
    pub fn rows_streamed_with_key(&self, path: &std::path::Path, batch_rows: usize, key: &SecretKey) -> Result<Rows> {
        let mut columns = self.codec.names();
        if let Some(u) = self.table.privacy_unit.as_ref().filter(|u| !columns.contains(u)) {
            columns.push(u.clone());
        }
        let mut notes = RowNotes::default();
        let mut builder = crate::codec::EncodedBuilder::new(&self.codec);
        let mut stream = match &self.table.privacy_unit {
            Some(_) => Some(bounding::BoundStream::new(self.rows_per_unit(), key)?),
            None => None,
        };
        data::read_batches(path, &self.table, &columns, data::Show::Nothing, batch_rows, |batch| {
            let encoding = self.codec.encode_all(&batch)?;
            notes.encode.add(&encoding.notes().disclose_to_data_holder());
            let mut take = Vec::with_capacity(encoding.len());
            match (&self.table.privacy_unit, &mut stream) {
                (Some(u), Some(stream)) => {
                    let keys = crate::ehr::keys(&batch, u)?;
                    for (i, key) in keys.iter().enumerate() {
                        match key {
                            None => notes.no_unit += 1,
                            Some(k) if encoding.is_valid(i) => {
                                stream.push(k.as_bytes());
                                take.push(i);
                            }
                            Some(_) => {}
                        }
                    }
                }
                _ => take.extend((0..encoding.len()).filter(|&i| encoding.is_valid(i))),
            }
            builder.push(&encoding, &take)
        })?;
        let bound = match stream {
            Some(stream) => {
                let b = stream.finish();
                notes.bounded = builder.len() - b.kept.len();
                builder.retain(&b.kept);
                b.bound
            }
            None => ContributionBound::ROW_IS_UNIT,
        };
        Ok(Rows { encoded: builder.finish(bound), split: None, notes: Sensitive::new(notes) })
    }

    /// Run the mechanism on the rows that count.
    pub fn fit(&self, encoded: &dyn crate::marginals::Counter, budget: &mut Budget) -> Result<Fitted> {
        let final_fit = estimate::Options { max_iters: self.opts.iterations, ..Default::default() };
        match &self.workload {
            Some(w) => {
                let opts = aim::Options {
                    rounds: self.opts.rounds,
                    max_model_mb: self.opts.max_model_mb,
                    estimate: final_fit,
                    ..Default::default()
                };
                let (fit, trace) = aim::fit(encoded, w, budget, opts)?;
                Ok(Fitted { fit, aim: Some(trace) })
            }
            None => Ok(Fitted { fit: mst::fit(encoded, budget, final_fit)?, aim: None }),
        }
    }

    /// The model file of a fit: released values only, with the guarantee it carries.
    pub fn model(&self, fitted: &Fitted, budget: &Budget, delta: f64) -> ModelFile {
        let (eps, del) = budget.spent_epsilon_delta().unwrap_or((0.0, delta));
        let mut model = fitted.fit.model_file(&self.table, &self.codec, budget.charges(), (eps, del));
        model.privacy.unit = self.table.privacy_unit.clone();
        model.privacy.rows_per_unit = self.rows_per_unit();
        model.privacy.outside_guarantee = self.outside_guarantee.clone();
        model
    }
}

/// Add the cost of the DP inference that proposed the schema (if it did) to the model file,
/// and say whether the ledger charged it to the same data. Returns the lines to print.
fn schema_inference(schema: &Schema, release: &Release, model: &mut ModelFile) -> Result<Vec<String>> {
    use crate::model::file::Spend;
    let Some(d) = &schema.dp_inference else { return Ok(vec![]) };
    let entries = release.ledger().entries()?;
    let found = entries.iter().find(|e| e.run_id == d.run_id);
    // zCDP costs add; the approximate mechanisms' delta adds to the conversion deltas.
    let rho = model.privacy.rho + d.rho;
    let delta = model.privacy.delta + d.delta;
    let conversion = (delta - d.mechanism_delta).clamp(f64::MIN_POSITIVE, 0.5);
    let combined = Spend { epsilon: privsynth_privacy::accountant::epsilon_for(rho, conversion), delta, rho };
    model.privacy.schema_inference = Some(Spend { epsilon: d.epsilon, delta: d.delta, rho: d.rho });
    model.privacy.with_schema_inference = Some(combined);
    let together = format!(
        "this model and the schema's DP inference together: epsilon {:.3} at delta {:.1e} (rho {:.6})",
        combined.epsilon, combined.delta, combined.rho
    );
    Ok(vec![match found {
        Some(e) if e.dataset.fingerprint == release.fingerprint() => {
            format!(
                "schema: proposed under DP from this same data (ledger entry {}, epsilon {:.3}); {together}",
                e.seq, d.epsilon
            )
        }
        Some(e) => format!(
            "schema: proposed under DP from another file (ledger entry {}; the fingerprints differ), so its epsilon {:.3} \
             is charged to that file. If both files describe the same people, {together}",
            e.seq, d.epsilon
        ),
        None => format!(
            "schema: proposed under DP (epsilon {:.3}) in a run that is not in {}; its cost is not in this ledger. If that \
             run read the same people, {together}",
            d.epsilon,
            release.ledger().path().display()
        ),
    }])
}

/// A mechanism's fit, with AIM's per-round trace (released values and timings only).
pub struct Fitted {
    pub fit: mechanism::Fit,
    pub aim: Option<aim::Trace>,
}

/// The real rows of a `synth --audit-holdout` run: the part fitted and the part kept apart.
pub struct Split {
    pub train: RawTable,
    pub holdout: RawTable,
}

/// The rows of one fit.
pub struct Rows {
    /// The encoded rows that count, with their contribution bound.
    pub encoded: EncodedTable,
    /// The holdout split, when one was asked for (for the data holder's audit).
    pub split: Option<Split>,
    /// What was left out and why: exact counts, for the data holder only.
    pub notes: Sensitive<RowNotes>,
}

/// Exact counts of rows left out of a fit.
#[derive(Debug, Clone, Default)]
pub struct RowNotes {
    pub encode: crate::codec::EncodeNotes,
    /// Rows without a privacy-unit key.
    pub no_unit: usize,
    /// Rows beyond the contribution bound.
    pub bounded: usize,
}

impl RowNotes {
    pub fn lines(&self) -> Vec<String> {
        let mut out = self.encode.lines();
        if self.no_unit > 0 {
            out.push(format!("{} row(s) without a privacy-unit key were left out", self.no_unit));
        }
        if self.bounded > 0 {
            out.push(format!("{} row(s) beyond rows_per_unit were left out by contribution bounding", self.bounded));
        }
        out
    }
}

/// AIM's workload in code indices: from a file, else the table's, else the default.
pub fn resolve_workload(
    source: &WorkloadSource,
    table: &Table,
    codec: &TableCodec,
    schema_origin: &str,
) -> Result<aim::Workload> {
    let (entries, origin, default) = match source {
        WorkloadSource::File(path) => {
            let origin = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
            let entries: Vec<schema::WorkloadEntry> = serde_yaml_ng::from_str(&text).map_err(|e| {
                Error::Usage(format!("{origin}: not a workload (a list of {{columns: [..], weight: w}}): {e}"))
            })?;
            (entries, origin, None)
        }
        WorkloadSource::Schema { degree, max_cells } => {
            (table.workload.clone(), format!("{schema_origin} (table {})", table.name), Some((*degree, *max_cells)))
        }
    };
    schema::validate_workload(table, &entries).map_err(|e| Error::Usage(format!("{origin}: {e}")))?;
    let sizes = codec.sizes();
    if entries.is_empty() {
        let (degree, max_cells) = default.ok_or_else(|| Error::Usage(format!("{origin}: the workload is empty")))?;
        if degree == 0 {
            return Err(Error::Usage("--degree must be at least 1".into()));
        }
        let w = aim::default_workload(&sizes, degree, max_cells);
        if w.is_empty() {
            return Err(Error::Usage(format!(
                "no {degree}-way marginal has at most {max_cells} cells: raise --max-cells or give a --workload"
            )));
        }
        return Ok(w);
    }
    let index = |name: &str| {
        codec
            .columns
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| Error::Internal(format!("workload column {name:?} has no codec")))
    };
    entries
        .iter()
        .map(|e| {
            let mut s: Vec<usize> = e.columns.iter().map(|c| index(c)).collect::<Result<_>>()?;
            s.sort_unstable();
            Ok((s, e.weight))
        })
        .collect()
}
