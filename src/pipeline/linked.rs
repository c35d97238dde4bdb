//! The linked-table fit (person as privacy unit), as a library step: [`LinkedPlan::new`] checks
//! everything that needs no data, [`LinkedPlan::fit`] decides which rows count (person split,
//! contribution bounding under fresh secret keys), fits one model per table and returns the
//! linked model with every charge.
//!
//! **Budget split.** Every person may appear in the person model and in every event model, so
//! the models compose sequentially: each gets an equal share of the run's rho (see
//! [`LinkedPlan::fit`]).

use privsynth_privacy::bounding::{ContributionBound, SecretKey};
use privsynth_privacy::{Budget, Cost, Sensitive};

use super::release::{LedgerOptions, Release};
use super::{FitOptions, Observer, Step, resolve_workload};
use crate::codec::TableCodec;
use crate::ehr::{self, LinkedModel};
use crate::error::{Error, Result};
use crate::mechanism::{Mechanism, aim, mst};
use crate::model::estimate;
use crate::model::file::ModelFile;
use crate::schema::{OutOfDomain, Schema, Table};

/// One model of a linked fit: its name (person or event table), model table, codec, workload.
struct Part {
    name: String,
    table: Table,
    codec: TableCodec,
    workload: Option<aim::Workload>,
}

/// A linked fit checked against the schema before any data is read.
pub struct LinkedPlan {
    pub schema: Schema,
    parts: Vec<Part>,
    pub opts: FitOptions,
    pub outside_guarantee: Vec<String>,
    pub warnings: Vec<String>,
}

/// The result of a linked fit.
pub struct LinkedFit {
    pub model: LinkedModel,
    /// Every release, labelled with its model.
    pub charges: Vec<Cost>,
    /// The persons of the train and holdout parts (rows of the person table), when split.
    pub split: Option<(Vec<usize>, Vec<usize>)>,
    /// Exact counts of what was left out, for the data holder only.
    pub notes: Sensitive<Vec<String>>,
    /// Noise warnings per model (public: from released values).
    pub noise: Vec<(String, ModelFile)>,
}

/// What a linked fit from files produced. The release holds the ledger's lock until dropped.
pub struct LinkedOutcome {
    pub model: LinkedModel,
    pub release: Release,
    pub entry: privsynth_privacy::ledger::Entry,
    /// The real tables, for the audit of a holdout split (read whole only then: a fit on every
    /// person streams the files, see [`LinkedPlan::fit_streamed`]).
    pub tables: Option<ehr::Tables>,
    pub split: Option<(Vec<usize>, Vec<usize>)>,
    /// Exact counts of what was left out, for the data holder only.
    pub notes: Sensitive<Vec<String>>,
    /// What to tell the user (public facts and released values only).
    pub messages: Vec<String>,
}

impl LinkedPlan {
    /// The whole linked fit of a folder (or `table=path` list): authorize on the dataset's
    /// fingerprint, read the tables, fit every model, record the release.
    pub fn fit_files(
        &self,
        specs: &[String],
        epsilon: f64,
        delta: f64,
        holdout: Option<f64>,
        ledger: &LedgerOptions,
        obs: &dyn Observer,
    ) -> Result<LinkedOutcome> {
        let started = std::time::Instant::now();
        let inputs = ehr::Inputs::resolve(&self.schema, specs)?;
        let total = Budget::from_epsilon_delta(epsilon, delta).map_err(Error::Usage)?;
        let release = Release::authorize(ledger, inputs.fingerprint()?, &total)?;
        if holdout.is_none() {
            // Every person: the files are streamed, the fit keeps codes only.
            let fit = || {
                let _s = Step::start(
                    obs,
                    &format!(
                        "reading {} tables in batches and fitting {} model(s) with {}",
                        inputs.files.len(),
                        self.models(),
                        self.opts.mechanism.name().to_uppercase()
                    ),
                );
                self.fit_streamed(&inputs, epsilon, delta, crate::data::BATCH_ROWS)
            };
            return self.fit_released(release, None, fit, &specs.join(" "), (epsilon, delta, holdout), started);
        }
        let tables = {
            let _s = Step::start(obs, &format!("reading {} tables", inputs.files.len()));
            ehr::Tables::read(&self.schema, &inputs)?
        };
        let fit = || {
            let _s = Step::start(
                obs,
                &format!("fitting {} model(s) with {}", self.models(), self.opts.mechanism.name().to_uppercase()),
            );
            self.fit(&tables, epsilon, delta, holdout)
        };
        let fitted = fit()?;
        self.fit_released(release, Some(tables), || Ok(fitted), &specs.join(" "), (epsilon, delta, holdout), started)
    }

    /// [`LinkedPlan::fit_files`] for tables in memory (the Python package's dict of frames, by
    /// table name): the dataset is known to the ledger by the fingerprints of the frames'
    /// content ([`super::frame::frame_fingerprint`]) and named `name`.
    #[allow(clippy::too_many_arguments)]
    pub fn fit_frames(
        &self,
        frames: std::collections::HashMap<String, crate::data::RawTable>,
        name: &str,
        epsilon: f64,
        delta: f64,
        holdout: Option<f64>,
        ledger: &LedgerOptions,
        obs: &dyn Observer,
    ) -> Result<LinkedOutcome> {
        use sha2::{Digest, Sha256};
        let started = std::time::Instant::now();
        let total = Budget::from_epsilon_delta(epsilon, delta).map_err(Error::Usage)?;
        let tables = super::frame::linked_tables(&self.schema, frames)?;
        let fingerprint = {
            let _s = Step::start(obs, "fingerprinting the data frames");
            let mut h = Sha256::new();
            for t in &self.schema.tables {
                let f = super::frame::frame_fingerprint(tables.get(&t.name)?)?;
                h.update(format!("{}={f}\n", t.name).as_bytes());
            }
            format!("sha256-frames:{}", h.finalize().iter().map(|b| format!("{b:02x}")).collect::<String>())
        };
        let release = Release::authorize(ledger, fingerprint, &total)?;
        let fitted = {
            let _s = Step::start(
                obs,
                &format!("fitting {} model(s) with {}", self.models(), self.opts.mechanism.name().to_uppercase()),
            );
            self.fit(&tables, epsilon, delta, holdout)?
        };
        self.fit_released(release, Some(tables), || Ok(fitted), name, (epsilon, delta, holdout), started)
    }

    /// The linked fit after the policy admitted it: run `fit`, record the release.
    fn fit_released(
        &self,
        release: Release,
        tables: Option<ehr::Tables>,
        fit: impl FnOnce() -> Result<LinkedFit>,
        name: &str,
        (_epsilon, delta, holdout): (f64, f64, Option<f64>),
        started: std::time::Instant,
    ) -> Result<LinkedOutcome> {
        let fitted = fit()?;
        let (unit, bounds) = (self.unit(), self.bounds());
        let bounds_text = bounds.iter().map(|(t, k)| format!("{t}={k}")).collect::<Vec<_>>().join(",");
        let command = format!(
            "synth (linked) --mechanism {}; privacy unit {unit}; rows per person {bounds_text}{}{}",
            self.opts.mechanism.name(),
            holdout.map(|f| format!("; --audit-holdout {f}")).unwrap_or_default(),
            if self.opts.allow_data_domains { "; --allow-data-domains" } else { "" }
        );
        let max_bound = bounds.iter().map(|b| b.1).max().unwrap_or(1);
        let entry = release.record_guarantee(
            &command,
            name,
            Some((unit.clone(), max_bound)),
            &fitted.charges,
            &self.outside_guarantee,
            Some((fitted.model.privacy.epsilon, delta)),
        )?;
        let mut messages: Vec<String> =
            fitted.noise.iter().flat_map(|(name, m)| m.noise_warnings(Some(name))).collect();
        messages.push(format!(
            "fit: {} model(s) ({} per table, person as unit {unit}; rows per person {bounds_text}), {:.1} s; spent epsilon {:.3}, delta {:.1e} (rho {:.6}); ledger entry {} in {}",
            self.models(),
            self.opts.mechanism.name().to_uppercase(),
            started.elapsed().as_secs_f64(),
            fitted.model.privacy.epsilon,
            delta,
            fitted.model.privacy.rho,
            entry.seq,
            release.ledger().path().display()
        ));
        messages.extend(release.dataset_total(delta));
        Ok(LinkedOutcome {
            model: fitted.model,
            release,
            entry,
            tables,
            split: fitted.split,
            notes: fitted.notes,
            messages,
        })
    }

    pub fn new(schema: &Schema, opts: FitOptions, origin: &str) -> Result<LinkedPlan> {
        if opts.engine != crate::engine::Engine::Local {
            return Err(Error::Usage(format!(
                "--engine {}: linked tables are counted locally (the query engines count one table's file)",
                opts.engine.name()
            )));
        }
        let mut warnings = vec![];
        let mut outside_guarantee = vec![];
        if let Some(w) = schema.ensure_public_domains(origin, opts.allow_data_domains)? {
            warnings.push(w);
            outside_guarantee.push(format!(
                "values read from the data were allowed (--allow-data-domains): {}",
                schema.read_from_data().join(", ")
            ));
        }
        let p = schema.person.clone().ok_or_else(|| Error::Usage(format!("{origin} names no `person` table")))?;
        let mut tables: Vec<(String, Table)> =
            vec![(p.table.clone(), schema.person_model_table().ok_or_else(|| Error::Internal("person model".into()))?)];
        for t in schema.event_tables() {
            tables.push((
                t.name.clone(),
                schema.event_model_table(t).ok_or_else(|| Error::Internal("event model".into()))?,
            ));
        }
        let strict: Vec<String> = tables
            .iter()
            .flat_map(|(n, t)| {
                t.columns
                    .iter()
                    .filter(|c| c.is_modelled() && t.policy(c) == OutOfDomain::Error)
                    .map(move |c| format!("{n}.{}", c.name))
            })
            .collect();
        if !strict.is_empty() {
            warnings.push(format!(
                "warning: out_of_domain: error (strict) on {}: whether the run succeeds depends on the data, which the DP guarantee does not cover",
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
        // Codecs and workloads first: their errors are usage errors, before anything is charged.
        let mut parts = vec![];
        for (name, table) in tables {
            let codec = TableCodec::new(&table)?;
            let workload = match opts.mechanism {
                Mechanism::Aim => {
                    Some(resolve_workload(&opts.workload, &table, &codec, origin).map_err(|e| match e {
                        Error::Usage(m) => Error::Usage(format!("model of {name}: {m}")),
                        other => other,
                    })?)
                }
                Mechanism::Mst => None,
            };
            parts.push(Part { name, table, codec, workload });
        }
        Ok(LinkedPlan { schema: schema.clone(), parts, opts, outside_guarantee, warnings })
    }

    /// Number of models (person model plus one per event table).
    pub fn models(&self) -> usize {
        self.parts.len()
    }

    /// The privacy unit, `person_table.key`.
    pub fn unit(&self) -> String {
        self.schema.person.as_ref().map(|p| format!("{}.{}", p.table, p.key)).unwrap_or_default()
    }

    /// Contribution bound of each event table.
    pub fn bounds(&self) -> Vec<(String, u32)> {
        self.schema
            .event_tables()
            .iter()
            .map(|t| (t.name.clone(), t.events.as_ref().map_or(1, |e| e.rows_per_person)))
            .collect()
    }

    /// Fit the linked model on the real tables at (epsilon, delta), after setting a share
    /// `holdout` of the persons aside when asked.
    pub fn fit(&self, tables: &ehr::Tables, epsilon: f64, delta: f64, holdout: Option<f64>) -> Result<LinkedFit> {
        Budget::from_epsilon_delta(epsilon, delta).map_err(Error::Usage)?;
        // Which rows count: the holdout split and contribution bounding each draw a fresh
        // secret key, stable under adding or removing a person, never derived from --seed.
        let key = || SecretKey::fresh().map_err(Error::from);
        let split = match holdout {
            Some(f) => Some(tables.split_persons(&self.schema, f, &key()?)?),
            None => None,
        };
        let (derived, report) =
            ehr::derive(&self.schema, tables, split.as_ref().map(|s| s.0.as_slice()), Some(&key()?))?;
        let mut notes = report.disclose_to_data_holder().lines();
        let mut encoded = vec![];
        for (i, part) in self.parts.iter().enumerate() {
            let (rows, bound) = if i == 0 {
                (&derived.person, ContributionBound::ROW_IS_UNIT)
            } else {
                (&derived.events[i - 1].rows, derived.bounds[i - 1])
            };
            // Rows are dropped by the columns' policies, never added, so the bound still
            // holds. An empty table is fitted too (its model is noise), so that no person's
            // presence decides whether the run succeeds.
            let all = part.codec.encode_all(rows)?;
            notes.extend(
                all.notes()
                    .disclose_to_data_holder()
                    .lines()
                    .into_iter()
                    .map(|l| format!("model of {}: {l}", part.name)),
            );
            encoded.push(all.select(&all.valid_rows(), bound)?);
        }
        drop(derived);
        self.fit_encoded(encoded, notes, split, epsilon, delta)
    }

    /// [`LinkedPlan::fit`] on every person, streamed from the files (no holdout split): the
    /// event tables are read in batches of `batch_rows` rows and only the codes of the rows
    /// that count are kept (see [`ehr::stream`]).
    pub fn fit_streamed(&self, inputs: &ehr::Inputs, epsilon: f64, delta: f64, batch_rows: usize) -> Result<LinkedFit> {
        let (derived, report) = {
            let key = SecretKey::fresh().map_err(Error::from)?;
            ehr::stream::derive_streamed(&self.schema, inputs, &key, batch_rows)?
        };
        let mut notes = report.disclose_to_data_holder().lines();
        let all = self.parts[0].codec.encode_all(&derived.person)?;
        notes.extend(
            all.notes()
                .disclose_to_data_holder()
                .lines()
                .into_iter()
                .map(|l| format!("model of {}: {l}", self.parts[0].name)),
        );
        let mut encoded = vec![all.select(&all.valid_rows(), ContributionBound::ROW_IS_UNIT)?];
        drop(all);
        for (t, n) in derived.notes.disclose_to_data_holder() {
            notes.extend(n.lines().into_iter().map(|l| format!("model of {t}: {l}")));
        }
        for (part, (t, e)) in self.parts[1..].iter().zip(derived.events) {
            if part.name != t || part.codec.names() != e.names() {
                return Err(Error::Internal(format!(
                    "streamed event model {t} does not match the plan's {}",
                    part.name
                )));
            }
            encoded.push(e);
        }
        self.fit_encoded(encoded, notes, None, epsilon, delta)
    }

    /// Fit one model per part on its encoded rows (person model first), splitting the budget.
    fn fit_encoded(
        &self,
        encoded: Vec<crate::codec::EncodedTable>,
        notes: Vec<String>,
        split: Option<(Vec<usize>, Vec<usize>)>,
        epsilon: f64,
        delta: f64,
    ) -> Result<LinkedFit> {
        let mut total = Budget::from_epsilon_delta(epsilon, delta).map_err(Error::Usage)?;
        if encoded.len() != self.parts.len() {
            return Err(Error::Internal("one encoded table per model".into()));
        }
        // The budget split: sequential composition over the models, an equal share each.
        let share = total.rho_total() / self.parts.len() as f64;
        let mut charges: Vec<Cost> = vec![];
        let mut models: Vec<ModelFile> = vec![];
        let mut rho_spent = 0.0;
        for (part, encoded) in self.parts.iter().zip(encoded) {
            let mut budget = total.part(&format!("the model of {}", part.name), share * (1.0 - 1e-12))?;
            let final_fit = estimate::Options { max_iters: self.opts.iterations, ..Default::default() };
            let fitted = match &part.workload {
                Some(w) => {
                    let o = aim::Options {
                        rounds: self.opts.rounds,
                        max_model_mb: self.opts.max_model_mb,
                        estimate: final_fit,
                        ..Default::default()
                    };
                    aim::fit(&encoded, w, &mut budget, o)?.0
                }
                None => mst::fit(&encoded, &mut budget, final_fit)?,
            };
            rho_spent += budget.rho_spent();
            let spent = (privsynth_privacy::accountant::epsilon_for(budget.rho_spent(), delta), delta);
            let mut model = fitted.model_file(&part.table, &part.codec, budget.charges(), spent);
            model.privacy.unit = Some(self.unit());
            model.privacy.outside_guarantee = self.outside_guarantee.clone();
            models.push(model);
            charges.extend(budget.charges().iter().cloned().map(|mut c| {
                c.label = format!("{}: {}", part.name, c.label);
                c
            }));
        }
        let noise: Vec<(String, ModelFile)> =
            self.parts.iter().map(|p| p.name.clone()).zip(models.iter().cloned()).collect();
        let mut models = models.into_iter();
        let person = models.next().ok_or_else(|| Error::Internal("no person model".into()))?;
        let model = LinkedModel {
            format: ehr::LINKED_FORMAT.into(),
            version: 1,
            schema: self.schema.clone(),
            person,
            events: self
                .schema
                .event_tables()
                .iter()
                .zip(models)
                .map(|(t, m)| ehr::EventModel {
                    table: t.name.clone(),
                    rows_per_person: t.events.as_ref().map_or(1, |e| e.rows_per_person),
                    model: m,
                })
                .collect(),
            privacy: ehr::LinkedPrivacy {
                unit: self.unit(),
                definition: "zCDP".into(),
                epsilon: privsynth_privacy::accountant::epsilon_for(rho_spent, delta),
                delta,
                rho: rho_spent,
                contribution_bounds: self.bounds(),
                outside_guarantee: self.outside_guarantee.clone(),
            },
        };
        Ok(LinkedFit { model, charges, split, notes: Sensitive::new(notes), noise })
    }
}
