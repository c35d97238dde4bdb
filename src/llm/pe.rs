//! Private Evolution for text columns with real values (Lin et al., "Differentially Private
//! Synthetic Data via Foundation Model APIs 1: Images", ICLR 2024; Xie et al., "Aug-PE", ICML
//! 2024): the model only ever sees the schema, DP statistics, synthetic records and earlier
//! synthetic texts; the real texts are embedded inside the trusted boundary and only counted.
//!
//! For each text column, with one candidate per synthetic record:
//! 1. candidates are written from the schema, the released statistics and the record (the
//!    schema-only text stage);
//! 2. T times: every real text votes for its nearest candidate (cosine of [`super::embed`]
//!    embeddings); the vote histogram is released with discrete Gaussian noise
//!    ([`privsynth_privacy::mechanisms::gaussian_counts`], charged before drawing); each record
//!    then takes a parent drawn in proportion to the clipped noisy votes and asks the model for
//!    a variation of the parent's text fitted to the record.
//!
//! Sensitivity: a privacy unit (a row, or a person with at most k rows) casts at most k votes,
//! one per text, so adding or removing it changes the histogram by a vector of non-negative
//! integers summing to at most k, whose L2 norm is at most k (all k on one candidate). Each of
//! the T x C releases (C columns) gets rho_PE / (T C); the scale is the smallest that the OpenDP
//! privacy map prices at that rho for L2 sensitivity k. By zCDP composition the PE release
//! costs rho_PE, and with the tabular fit rho_fit + rho_PE; both are ledger entries on the same
//! dataset, so the ledger's running total is the composed cost.

use rand::RngExt;
use rand::rngs::StdRng;

use privsynth_privacy::bounding::{self, SecretKey};
use privsynth_privacy::ledger::{DatasetRef, Ledger, Policy};
use privsynth_privacy::mechanisms::{gaussian_counts, gaussian_rho, gaussian_scale};
use privsynth_privacy::{Budget, Cost, Sensitive};

use super::ModelText;
use super::client::Client;
use super::embed::{Embedder, dot};
use super::prompt::{self, ReleasedStats, TextColumn};
use super::text;
use crate::data::RawTable;
use crate::error::{Error, Result};
use crate::schema::Table;
use crate::synthetic::SyntheticRow;

/// What the command line asks of Private Evolution.
#[derive(Debug, Clone)]
pub struct PeOptions {
    /// Epsilon of the PE release (at the run's delta), on top of the tabular fit's.
    pub epsilon: f64,
    /// Votes (and variation rounds) per text column.
    pub iterations: usize,
    /// A loopback OpenAI-compatible server for embeddings (`None`: the local lexical embedding).
    pub embed_url: Option<String>,
    pub embed_model: Option<String>,
}

/// The real texts of the columns PE learns, at most `rows_per_unit` per privacy unit (a random
/// subset under a fresh secret key). Only the vote counts them.
pub struct RealTexts {
    /// Per column: per unit, its texts.
    columns: Vec<(String, Sensitive<Vec<Vec<String>>>)>,
    rows_per_unit: u32,
}

impl RealTexts {
    /// The non-blank values of `columns` in `raw`, grouped by the table's privacy unit (each row
    /// its own unit without one) and bounded to the table's `rows_per_unit`. Rows without a unit
    /// key are left out.
    pub fn from_raw(raw: &RawTable, table: &Table, columns: &[String]) -> Result<RealTexts> {
        let k = if table.privacy_unit.is_some() { table.rows_per_unit.unwrap_or(1) } else { 1 };
        let n = raw.df.height();
        let units: Vec<Option<Vec<u8>>> = match &table.privacy_unit {
            Some(u) => crate::ehr::keys(raw, u)?.into_iter().map(|k| k.map(String::into_bytes)).collect(),
            None => (0..n).map(|i| Some((i as u64).to_le_bytes().to_vec())).collect(),
        };
        let with_unit: Vec<usize> = (0..n).filter(|&i| units[i].is_some()).collect();
        let keys: Vec<&[u8]> = with_unit.iter().map(|&i| units[i].as_deref().unwrap_or_default()).collect();
        let kept = bounding::keep_rows(&keys, k, &SecretKey::fresh().map_err(internal)?).map_err(internal)?.kept;
        let mut out = vec![];
        for c in columns {
            let s = raw
                .df
                .column(c)
                .map_err(|e| Error::Internal(e.to_string()))?
                .cast(&polars::prelude::DataType::String)
                .map_err(|e| Error::Internal(e.to_string()))?;
            let values: Vec<Option<&str>> = s.str().map_err(|e| Error::Internal(e.to_string()))?.iter().collect();
            let mut by_unit: std::collections::HashMap<&[u8], Vec<String>> = std::collections::HashMap::new();
            for &j in &kept {
                let i = with_unit[j];
                if let Some(t) = values[i].map(str::trim).filter(|t| !t.is_empty()) {
                    by_unit.entry(keys[j]).or_default().push(t.to_string());
                }
            }
            out.push((c.clone(), Sensitive::new(by_unit.into_values().collect())));
        }
        Ok(RealTexts { columns: out, rows_per_unit: k })
    }

    pub fn rows_per_unit(&self) -> u32 {
        self.rows_per_unit
    }
}

/// The PE release planned before anything is drawn: its cost is known in advance, so it is
/// recorded in the ledger before the first vote.
#[derive(Debug, Clone)]
pub struct PePlan {
    pub epsilon: f64,
    pub delta: f64,
    pub iterations: usize,
    pub columns: Vec<String>,
    /// L2 sensitivity of one vote histogram (rows per unit).
    pub sensitivity: i64,
    /// Noise standard deviation of every vote histogram.
    pub scale: f64,
    /// One cost per release, in the order they are drawn.
    pub costs: Vec<Cost>,
}

impl PePlan {
    pub fn new(opts: &PeOptions, delta: f64, columns: Vec<String>, rows_per_unit: u32) -> Result<PePlan> {
        if !(opts.epsilon > 0.0 && opts.epsilon.is_finite()) {
            return Err(Error::Usage(format!("--llm-pe-epsilon must be positive, got {}", opts.epsilon)));
        }
        if !(1..=20).contains(&opts.iterations) {
            return Err(Error::Usage(format!("--llm-pe-iterations must be between 1 and 20, got {}", opts.iterations)));
        }
        if columns.is_empty() {
            return Err(Error::Usage("--llm-pe-epsilon: the table has no text column to learn".into()));
        }
        let total = Budget::from_epsilon_delta(opts.epsilon, delta).map_err(Error::Usage)?.rho_total();
        let releases = opts.iterations * columns.len();
        let rho = total / releases as f64;
        let sensitivity = rows_per_unit.max(1) as i64;
        let scale = gaussian_scale(rho, sensitivity).map_err(|e| Error::Internal(e.to_string()))?;
        let rho_at = gaussian_rho(scale, sensitivity).map_err(|e| Error::Internal(e.to_string()))?;
        let mut costs = vec![];
        for c in &columns {
            for t in 1..=opts.iterations {
                costs.push(Cost {
                    label: label(c, t),
                    mechanism: "discrete_gaussian".into(),
                    sensitivity: sensitivity as f64,
                    scale,
                    rho: rho_at,
                    delta: 0.0,
                });
            }
        }
        Ok(PePlan { epsilon: opts.epsilon, delta, iterations: opts.iterations, columns, sensitivity, scale, costs })
    }

    pub fn rho(&self) -> f64 {
        self.costs.iter().map(|c| c.rho).sum()
    }
}

fn label(column: &str, iteration: usize) -> String {
    format!("private evolution votes {column} iteration {iteration}")
}

fn internal(e: privsynth_privacy::PrivacyError) -> Error {
    Error::Internal(e.to_string())
}

/// The real side of a PE run: the texts, where the release is recorded, the run's delta and
/// the command line for the ledger.
pub struct Source {
    pub texts: RealTexts,
    pub ledger: LedgerTarget,
    pub delta: f64,
    pub command: String,
}

/// Where the PE release is recorded.
pub struct LedgerTarget {
    pub ledger: Ledger,
    pub policy: Policy,
    pub dataset: DatasetRef,
}

impl LedgerTarget {
    /// Authorise the plan against the policy and record it, before any vote is drawn (a failed
    /// run then over-counts, never under).
    pub fn record(&self, plan: &PePlan, command: &str) -> Result<u64> {
        let budget = Budget::from_rho(plan.rho()).map_err(Error::Usage)?;
        match self
            .ledger
            .authorize(&self.policy, &self.dataset.fingerprint, &budget)
            .map_err(|e| Error::Usage(e.to_string()))?
        {
            Ok(()) => {}
            Err(refusal) => return Err(Error::Budget(refusal.0)),
        }
        let entry = self
            .ledger
            .append_release(command, self.dataset.clone(), &plan.costs, &privsynth_privacy::ledger::new_run_id(), &[])
            .map_err(|e| Error::Usage(e.to_string()))?;
        Ok(entry.seq)
    }
}

/// What one column's evolution did (released values only).
#[derive(Debug, Clone, Default)]
pub struct PeReport {
    pub column: String,
    /// Per iteration: the noisy vote total (clipped at zero) and the distinct parents drawn.
    pub iterations: Vec<(f64, usize)>,
    /// Records whose final text is missing (a batch given up).
    pub missing: usize,
}

impl PeReport {
    pub fn summary(&self, scale: f64) -> String {
        let its: Vec<String> = self
            .iterations
            .iter()
            .enumerate()
            .map(|(i, (v, p))| format!("{}: noisy votes {v:.0}, {p} parents", i + 1))
            .collect();
        format!(
            "llm pe {}: {} iteration(s) (noise sd {scale:.2} votes per candidate): {}; {} record(s) left empty",
            self.column,
            self.iterations.len(),
            its.join("; "),
            self.missing
        )
    }
}

/// The nearest candidate of each real text: the vote histogram (exact counts; sensitive).
fn votes(real: &Sensitive<Vec<Vec<Vec<f32>>>>, candidates: &[Option<Vec<f32>>]) -> Sensitive<Vec<i64>> {
    real.as_ref().map(|units| {
        let mut h = vec![0i64; candidates.len()];
        for unit in units.iter() {
            for r in unit {
                let best = candidates
                    .iter()
                    .enumerate()
                    .filter_map(|(j, c)| c.as_ref().map(|c| (j, dot(r, c))))
                    .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
                if let Some((j, _)) = best {
                    h[j] += 1;
                }
            }
        }
        h
    })
}

/// Draw one parent per record, in proportion to the clipped noisy votes (uniform over the
/// written candidates when every count is zero). Post-processing of the release.
fn parents(noisy: &[i64], written: &[bool], n: usize, rng: &mut StdRng) -> Vec<Option<usize>> {
    let w: Vec<f64> = noisy.iter().zip(written).map(|(&v, &ok)| if ok { v.max(0) as f64 } else { 0.0 }).collect();
    let total: f64 = w.iter().sum();
    let pool: Vec<usize> = (0..noisy.len()).filter(|&j| written[j]).collect();
    (0..n)
        .map(|_| {
            if pool.is_empty() {
                return None;
            }
            if total <= 0.0 {
                return Some(pool[rng.random_range(0..pool.len())]);
            }
            let mut x = rng.random::<f64>() * total;
            for (j, &wj) in w.iter().enumerate() {
                if wj > 0.0 {
                    if x < wj {
                        return Some(j);
                    }
                    x -= wj;
                }
            }
            pool.last().copied()
        })
        .collect()
}

/// Everything one evolution needs besides the column and its real texts.
pub struct Context<'a> {
    pub client: &'a Client,
    pub embedder: &'a Embedder,
    pub table: &'a Table,
    pub stats: &'a ReleasedStats,
    pub rows: &'a [SyntheticRow],
    pub batch: usize,
    pub temperature: f64,
}

/// Evolve one text column: the final texts (one per record) and what happened. Charges
/// `budget` once per iteration, before each draw.
pub fn evolve(
    cx: &Context,
    column: &TextColumn,
    real: &RealTexts,
    plan: &PePlan,
    budget: &mut Budget,
    rng: &mut StdRng,
) -> Result<(Vec<Option<ModelText>>, PeReport)> {
    let name = column.name();
    let texts = real
        .columns
        .iter()
        .find(|(c, _)| c == name)
        .map(|(_, t)| t)
        .ok_or_else(|| Error::Internal(format!("no real texts for {name:?}")))?;
    // Embedded once, inside the boundary.
    let mut failed = None;
    let real_emb: Sensitive<Vec<Vec<Vec<f32>>>> = texts.as_ref().map(|units| {
        let flat: Vec<&str> = units.iter().flatten().map(String::as_str).collect();
        match cx.embedder.embed(&flat) {
            Ok(e) => {
                let mut e = e.into_iter();
                units.iter().map(|u| u.iter().map(|_| e.next().unwrap_or_default()).collect()).collect()
            }
            Err(err) => {
                failed = Some(err);
                vec![]
            }
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    let cols = std::slice::from_ref(column);
    let (mut current, _) = text::write(cx.client, cx.table, cx.stats, cx.rows, cols, cx.batch, cx.temperature)?;
    let mut current: Vec<Option<ModelText>> = current.pop().unwrap_or_default();
    let mut report = PeReport { column: name.to_string(), ..Default::default() };
    for t in 1..=plan.iterations {
        let written: Vec<bool> = current.iter().map(Option::is_some).collect();
        let cand_texts: Vec<&str> = current.iter().flatten().map(ModelText::as_str).collect();
        let mut cand_emb = cx.embedder.embed(&cand_texts)?.into_iter();
        let candidates: Vec<Option<Vec<f32>>> =
            current.iter().map(|c| c.as_ref().and_then(|_| cand_emb.next())).collect();
        let counts = votes(&real_emb, &candidates);
        let noisy = gaussian_counts(budget, counts, plan.sensitivity, plan.scale, &label(name, t))
            .map_err(|e| Error::Budget(e.to_string()))?
            .into_value();
        let chosen = parents(&noisy, &written, cx.rows.len(), rng);
        let distinct = {
            let mut d: Vec<usize> = chosen.iter().flatten().copied().collect();
            d.sort_unstable();
            d.dedup();
            d.len()
        };
        report.iterations.push((noisy.iter().map(|&v| v.max(0) as f64).sum(), distinct));
        current = vary(cx, column, &current, &chosen)?;
    }
    report.missing = current.iter().filter(|c| c.is_none()).count();
    Ok((current, report))
}

/// One variation round: record i rewrites the text of its parent (records without a parent,
/// or whose batch is given up, are left empty).
fn vary(
    cx: &Context,
    column: &TextColumn,
    current: &[Option<ModelText>],
    chosen: &[Option<usize>],
) -> Result<Vec<Option<ModelText>>> {
    let jobs: Vec<Vec<(usize, &ModelText)>> = {
        let with: Vec<(usize, &ModelText)> =
            chosen.iter().enumerate().filter_map(|(i, p)| Some((i, current[(*p)?].as_ref()?))).collect();
        with.chunks(cx.batch.max(1)).map(<[_]>::to_vec).collect()
    };
    let cols = std::slice::from_ref(column);
    let answers = cx.client.run_all("variations", jobs.clone(), |job| {
        let rows: Vec<SyntheticRow> = job.iter().map(|(i, _)| cx.rows[*i].clone()).collect();
        let parents: Vec<&ModelText> = job.iter().map(|(_, p)| *p).collect();
        let req = prompt::variation_request(cx.table, cx.stats, &rows, column, &parents, cx.temperature)?;
        cx.client.ask(&req, |v| text::parse(v, &rows, cols))
    })?;
    let mut out: Vec<Option<ModelText>> = vec![None; current.len()];
    for (job, answer) in jobs.iter().zip(answers) {
        if let Some(batch) = answer {
            for ((i, _), mut cells) in job.iter().zip(batch) {
                out[*i] = cells.pop().flatten();
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn votes_go_to_the_nearest_written_candidate() {
        let e = |s: &str| super::super::embed::hashed(s);
        let real =
            Sensitive::new(vec![vec![e("chest pain cardiology"), e("chest pain again")], vec![e("well child visit")]]);
        let cands = vec![Some(e("well child vaccination visit")), None, Some(e("chest pain referral"))];
        assert_eq!(votes(&real, &cands).disclose_to_data_holder(), vec![1, 0, 2]);
    }

    #[test]
    fn parents_follow_the_clipped_noisy_votes() {
        let mut rng = StdRng::seed_from_u64(1);
        let p = parents(&[30, -5, 10, 0], &[true, true, true, false], 4000, &mut rng);
        let share = |j| p.iter().filter(|x| **x == Some(j)).count() as f64 / 4000.0;
        // Expected 0.75 and 0.25; 4000 draws: sd 0.007, so 0.05 is > 7 sd (false failure < 1e-11).
        assert!((share(0) - 0.75).abs() < 0.05 && (share(2) - 0.25).abs() < 0.05, "{} {}", share(0), share(2));
        assert_eq!(share(1) + share(3), 0.0, "negative counts and unwritten candidates are never drawn");
        let p = parents(&[0, -3], &[true, true], 1000, &mut rng);
        assert!(
            p.iter().all(Option::is_some) && p.contains(&Some(0)) && p.contains(&Some(1)),
            "all zero: uniform over the written"
        );
    }

    /// The plan's noise scale is the accountant's for its rho at sensitivity k, the costs sum to
    /// the PE budget, and the budget charged by the real mechanism matches the plan entry by entry.
    #[test]
    fn plan_scale_and_charges_match_the_accountant() {
        let opts = PeOptions { epsilon: 2.0, iterations: 3, embed_url: None, embed_model: None };
        let plan = PePlan::new(&opts, 1e-6, vec!["note".into(), "reason".into()], 4).unwrap();
        let total = Budget::from_epsilon_delta(2.0, 1e-6).unwrap().rho_total();
        let per = total / 6.0;
        assert_eq!(plan.sensitivity, 4);
        assert!((plan.scale - gaussian_scale(per, 4).unwrap()).abs() < 1e-12);
        // Discrete Gaussian: rho = k^2 / (2 sigma^2) (CKS20); OpenDP rounds its map upwards.
        let exact = 16.0 / (2.0 * plan.scale * plan.scale);
        assert!(
            plan.costs[0].rho >= exact * (1.0 - 1e-12) && plan.costs[0].rho < exact * (1.0 + 1e-4),
            "{} vs {exact}",
            plan.costs[0].rho
        );
        assert!(plan.costs[0].rho <= per * (1.0 + 1e-12), "the scale is priced within its share");
        assert!(plan.rho() <= total * (1.0 + 1e-9) && plan.rho() > total * 0.999, "{} vs {total}", plan.rho());
        let mut budget = Budget::from_rho(plan.rho()).unwrap();
        for c in &plan.costs {
            gaussian_counts(&mut budget, Sensitive::new(vec![3, 0, 1]), plan.sensitivity, plan.scale, &c.label)
                .unwrap();
        }
        assert_eq!(
            budget.charges(),
            plan.costs.as_slice(),
            "the ledger entry recorded before drawing is what was charged"
        );
        assert!(
            gaussian_counts(&mut budget, Sensitive::new(vec![1]), 4, plan.scale, "one more").is_err(),
            "nothing beyond the plan"
        );
    }
}
