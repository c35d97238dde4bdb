//! `privsynth audit-privacy`: an empirical check of the privacy claim itself.
//!
//! The real pipeline (the library steps of `synth`: which rows count, the mechanism, the model
//! file, sampling) runs N times on a dataset D and N times on D' = D plus one canary unit, in
//! process and in parallel. Each output is reduced to membership scores of the canary:
//! - **white-box**, from the model file's released measurements: for every released marginal,
//!   the noisy value of the (compressed) cell the canary falls in, minus what D alone puts there
//!   (the auditor knows D), weighted by query weight / sigma^2. The noise of each release is
//!   Gaussian with the sigma the model file states, so this sum is the likelihood-ratio
//!   (Neyman-Pearson) statistic of "canary in" against "canary out" given the released
//!   structure; standardised, it is N(0, 1) without the canary and N(mu, 1) with it, mu being
//!   what the model file's own noise scales allow (nearly: MST's compression picks the cells
//!   it merges by their noisy counts, which shifts the merged cells' noise a little; on Adult
//!   at epsilon 1 the mean without the canary was -0.08, sd 1.02). The bound does not rely on
//!   this shape;
//! - **black-box**, from the synthetic records only: how many records carry the canary's value
//!   in each column, each column weighted by 1 / (1 + D's count of that value).
//!
//! From the two sets of scores, [`privsynth_privacy::audit::epsilon_lower_bound`] gives a
//! Clopper-Pearson lower bound on epsilon at the claimed delta (the test is chosen on half of
//! the runs, the bound computed on the other half; the two scores share the error probability
//! by a union bound). A bound above the claim proves a bug (exit 1).
//!
//! **What a sound audit can show.** At delta = 1e-9 a Gaussian mechanism's epsilon is set by
//! the far tail of its privacy loss (about 6 standard deviations out), which N runs cannot
//! observe: with a few thousand runs, tests see probabilities down to about 1/N. So even a
//! mechanism exactly at the claim yields a lower bound far below the claim. The report
//! states that ceiling (the median bound of the same procedure on ideal Gaussian scores of a
//! mechanism exactly at the claim, same N and confidence) beside the bound, and the
//! Gaussian-DP view of the runs (mu estimated from the white-box scores, and a Clopper-Pearson
//! lower bound on mu, against the mu of a Gaussian mechanism exactly at the claim), which is
//! where a tight audit shows (see benchmarks/README.md).
//!
//! The quick mode ([`one_run`]) is the one-run audit of Steinke, Nasr and Jagielski.
//!
//! The audit reads D and its reports describe it (the worst-case canary is built from D's
//! rarest values): run it on a public stand-in or on records sampled from a model file when
//! the reports are to be shared.

pub mod html;
pub mod linked;
pub mod one_run;

use polars::prelude::*;
use rand::{Rng, RngExt, SeedableRng};
use rayon::prelude::*;
use serde::Serialize;

use privsynth_privacy::Budget;
use privsynth_privacy::audit::{self as bounds, EpsilonBound, Test};

use crate::codec::{EncodedTable, TableCodec};
use crate::data::RawTable;
use crate::error::{Error, Result};
use crate::model::file::ModelFile;
use crate::pipeline::{FitOptions, Plan};
use crate::schema::{Schema, Table};

pub const FORMAT: &str = "privsynth-privacy-audit";
pub const VERSION: u32 = 1;

/// Which canary to plant.
#[derive(Debug, Clone)]
pub enum CanarySpec {
    /// Built from the public schema and D: in every modelled column the value D holds least
    /// often (ties: the last code), so its cells are as empty as D allows.
    WorstCase,
    /// A record given by the user, `column -> value` (columns left out take the worst case).
    Record(Vec<(String, String)>),
}

/// The audit's settings.
#[derive(Debug, Clone)]
pub struct Options {
    pub epsilon: f64,
    pub delta: f64,
    pub fit: FitOptions,
    /// Runs on D and runs on D' (each).
    pub runs: usize,
    /// 1 - confidence of every bound.
    pub alpha: f64,
    pub canary: CanarySpec,
    /// Rows of the canary unit (default: the schema's rows_per_unit, 1 without a unit).
    pub canary_rows: Option<usize>,
    /// Synthetic records per run for the black-box score (default: the model's DP total).
    pub synthetic_rows: Option<usize>,
    /// Seed of sampling (post-processing) and of the ceiling's simulation; DP noise is never
    /// seeded.
    pub seed: u64,
    /// Where D came from, echoed in the report.
    pub data_source: String,
}

impl Options {
    pub fn new(epsilon: f64, delta: f64, fit: FitOptions, runs: usize) -> Options {
        Options {
            epsilon,
            delta,
            fit,
            runs,
            alpha: 0.05,
            canary: CanarySpec::WorstCase,
            canary_rows: None,
            synthetic_rows: None,
            seed: 0,
            data_source: String::new(),
        }
    }

    fn check(&self) -> Result<()> {
        if !(self.epsilon > 0.0 && self.epsilon.is_finite()) {
            return Err(Error::Usage(format!("--epsilon must be a positive number, got {}", self.epsilon)));
        }
        if !(self.delta > 0.0 && self.delta < 1.0) {
            return Err(Error::Usage(format!("--delta must be in (0, 1), got {}", self.delta)));
        }
        if self.runs < 10 {
            return Err(Error::Usage(format!(
                "--runs must be at least 10 (half choose the test, half bound it), got {}",
                self.runs
            )));
        }
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(Error::Usage(format!("--confidence must be in (0, 1), got {}", 1.0 - self.alpha)));
        }
        if self.canary_rows == Some(0) {
            return Err(Error::Usage("--canary-rows must be at least 1".into()));
        }
        Ok(())
    }
}

/// The claim under audit.
#[derive(Debug, Clone, Serialize)]
pub struct Claim {
    pub epsilon: f64,
    pub delta: f64,
    pub rho: f64,
    pub mechanism: String,
    pub unit: Option<String>,
    pub rows_per_unit: u32,
    /// The mu of the Gaussian mechanism that is exactly (epsilon, delta)-DP.
    pub gaussian_mu: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CanaryInfo {
    pub kind: String,
    /// Rows of the canary unit in D'.
    pub rows: usize,
    /// Its value in every modelled column (as the schema writes it).
    pub values: Vec<(String, String)>,
}

/// The test a bound was computed with.
#[derive(Debug, Clone, Serialize)]
pub struct TestInfo {
    /// "above" (score > threshold) or "at-most" (score <= threshold).
    pub direction: String,
    pub threshold: f64,
    /// Whether the test's set is more likely with the canary (the usual case) or without.
    pub points_to_canary: bool,
}

fn test_info(t: Test, towards_with: bool) -> TestInfo {
    match t {
        Test::Above(x) => TestInfo { direction: "above".into(), threshold: x, points_to_canary: towards_with },
        Test::AtMost(x) => TestInfo { direction: "at-most".into(), threshold: x, points_to_canary: towards_with },
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Bound {
    /// Lower bound on epsilon at the claimed delta.
    pub epsilon: f64,
    pub confidence: f64,
    pub test: TestInfo,
    /// Runs the bound was computed on (without, with); the others chose the test.
    pub evaluated: (usize, usize),
    /// Hit rates of the test on those runs (without, with).
    pub rates: (f64, f64),
}

/// The score `f` of the runs without and with the canary: its values, the lower bound on
/// epsilon they give and their Gaussian-DP view, each at error probability `alpha`.
pub(crate) fn score<R>(
    name: &str,
    description: &str,
    (without, with): (&[R], &[R]),
    f: impl Fn(&R) -> f64,
    delta: f64,
    alpha: f64,
) -> Score {
    let a: Vec<f64> = without.iter().map(&f).collect();
    let b: Vec<f64> = with.iter().map(&f).collect();
    let bound = bounds::epsilon_lower_bound(&a, &b, delta, alpha);
    let gdp = gdp_view(&a, &b, alpha);
    Score { name: name.into(), description: description.into(), without: a, with: b, bound: bound_info(&bound), gdp }
}

pub(crate) fn bound_info(b: &EpsilonBound) -> Bound {
    Bound {
        epsilon: b.epsilon,
        confidence: b.confidence,
        test: test_info(b.test, b.towards_with),
        evaluated: b.evaluated,
        rates: b.rates,
    }
}

/// The Gaussian-DP view of one score.
#[derive(Debug, Clone, Serialize)]
pub struct GdpView {
    /// (mean with - mean without) / pooled sd: the mu of the runs if the scores are Gaussian
    /// (an estimate, not a bound), with a 95% normal interval.
    pub mu_estimate: f64,
    pub mu_interval: (f64, f64),
    /// Clopper-Pearson lower bound on the mechanism's Gaussian-DP mu (a bound: no shape
    /// assumed), at the report's confidence.
    pub mu_lower_bound: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Score {
    pub name: String,
    pub description: String,
    pub without: Vec<f64>,
    pub with: Vec<f64>,
    pub bound: Bound,
    pub gdp: GdpView,
}

/// What an ideal mechanism exactly at the claim would show under the same procedure.
#[derive(Debug, Clone, Serialize)]
pub struct Ceiling {
    /// Median lower bound on epsilon over simulated audits of Gaussian scores with the claim's
    /// mu (same runs, confidence and test selection).
    pub epsilon: f64,
    pub replicates: usize,
    /// The mu the white-box score can see at most: sqrt(sum of (rows / sigma)^2) over the
    /// releases the canary falls in, from the model files (mean over the runs with the canary).
    pub white_box_mu: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub exceeds_claim: bool,
    pub message: String,
}

/// The JSON report (`schemas/privacy-audit-report.schema.json`).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub format: String,
    pub version: u32,
    pub tool: String,
    pub note: String,
    pub data: String,
    pub claim: Claim,
    pub canary: CanaryInfo,
    pub runs: usize,
    pub synthetic_rows: Option<usize>,
    pub seed: u64,
    pub confidence: f64,
    pub scores: Vec<Score>,
    /// The largest bound over the scores.
    pub empirical_epsilon: f64,
    /// Absent in the quick mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ceiling: Option<Ceiling>,
    pub verdict: Verdict,
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub one_run: Option<one_run::OneRun>,
}

impl Report {
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self)
            .map_err(|e| Error::Internal(format!("cannot write the privacy audit report: {e}")))
    }

    pub fn exceeds_claim(&self) -> bool {
        self.verdict.exceeds_claim
    }

    /// A few lines for the terminal.
    pub fn summary(&self) -> String {
        let runs =
            if self.one_run.is_some() { "one run".to_string() } else { format!("{} + {} runs", self.runs, self.runs) };
        let mut s = format!(
            "privacy audit: {} at epsilon {} (delta {:.0e}), {runs}, canary: {} ({} row(s))\n",
            self.claim.mechanism.to_uppercase(),
            self.claim.epsilon,
            self.claim.delta,
            self.canary.kind,
            self.canary.rows
        );
        for sc in &self.scores {
            s += &format!(
                "  {:<10} epsilon >= {:.3} at {} confidence; Gaussian-DP mu: estimate {:.3} [{:.3}, {:.3}], lower bound {:.3}\n",
                sc.name,
                sc.bound.epsilon,
                percent(sc.bound.confidence),
                sc.gdp.mu_estimate,
                sc.gdp.mu_interval.0,
                sc.gdp.mu_interval.1,
                sc.gdp.mu_lower_bound
            );
        }
        if let Some(c) = &self.ceiling {
            s += &format!(
                "  claim: epsilon {} (mu {:.3} for a Gaussian mechanism exactly at the claim; the white-box score sees mu {:.3}); \
                 an ideal mechanism at the claim would show epsilon >= {:.3} with these runs\n",
                self.claim.epsilon, self.claim.gaussian_mu, c.white_box_mu, c.epsilon
            );
        }
        if let Some(o) = &self.one_run {
            s += &format!(
                "  one-run audit: {} canaries, {} of {} guesses right: epsilon >= {:.3}\n",
                o.canaries, o.correct, o.guesses, o.epsilon
            );
        }
        s += &format!("  {}\n", self.verdict.message);
        s
    }
}

/// A confidence as a percentage with the digits it needs (95%, 97.5%, 99.9999%).
pub fn percent(c: f64) -> String {
    let mut s = format!("{:.6}", 100.0 * c);
    while s.ends_with('0') {
        s.pop();
    }
    if s.ends_with('.') {
        s.pop();
    }
    s + "%"
}

/// The mu of the Gaussian mechanism that is exactly (epsilon, delta)-DP (bisection on
/// [`bounds::gdp_delta`], which grows with mu).
pub fn gaussian_mu_at(epsilon: f64, delta: f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    while bounds::gdp_delta(hi, epsilon) < delta && hi < 1e3 {
        lo = hi;
        hi *= 2.0;
    }
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if bounds::gdp_delta(mid, epsilon) < delta { lo = mid } else { hi = mid }
    }
    lo
}

/// A standard normal draw (Box-Muller), for the ceiling's simulation only.
fn normal(rng: &mut impl Rng) -> f64 {
    let u: f64 = rng.random::<f64>().max(1e-300);
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// Median bound of the procedure on `reps` simulated audits of N(0,1) against N(mu,1).
pub fn ceiling(mu: f64, runs: usize, delta: f64, alpha: f64, reps: usize, seed: u64) -> f64 {
    let mut out: Vec<f64> = (0..reps)
        .into_par_iter()
        .map(|r| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ (0xCE11_0000 + r as u64));
            let a: Vec<f64> = (0..runs).map(|_| normal(&mut rng)).collect();
            let b: Vec<f64> = (0..runs).map(|_| mu + normal(&mut rng)).collect();
            bounds::epsilon_lower_bound(&a, &b, delta, alpha).epsilon
        })
        .collect();
    out.sort_by(f64::total_cmp);
    out[out.len() / 2]
}

/// The Gaussian-DP view of one score's runs.
pub fn gdp_view(without: &[f64], with: &[f64], alpha: f64) -> GdpView {
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let var = |v: &[f64], m: f64| v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len().max(2) - 1) as f64;
    let (m0, m1) = (mean(without), mean(with));
    let sd = (0.5 * (var(without, m0) + var(with, m1))).sqrt();
    let (mu, half) = if sd > 0.0 {
        let mu = (m1 - m0) / sd;
        // Standard error of a standardised mean difference (two samples of n).
        let n = without.len().min(with.len()).max(1) as f64;
        (mu, 1.96 * (2.0 / n + mu * mu / (4.0 * n)).sqrt())
    } else {
        (0.0, 0.0)
    };
    let (lb, _, _) = bounds::gdp_mu_lower_bound(without, with, alpha);
    GdpView { mu_estimate: mu, mu_interval: (mu - half, mu + half), mu_lower_bound: lb }
}

/// D and what the audit knows about it.
pub struct Prepared {
    pub plan: Plan,
    pub d: RawTable,
    pub d_prime: RawTable,
    pub canary: Vec<u32>,
    pub canary_info: CanaryInfo,
    /// D's rows that count (one reference draw, fixed before the runs): what D alone puts in
    /// each cell, for the white-box score.
    pub reference: EncodedTable,
    /// D's count of the canary's value in each column (black-box weights).
    pub column_counts: Vec<f64>,
    /// Rows of the canary that count (at most the unit bound).
    pub canary_weight: f64,
}

/// Every column of `df` as text (how a CSV is read), so rows can be appended whatever the
/// source format.
pub fn as_text(df: &DataFrame) -> Result<DataFrame> {
    let cols: Vec<Column> = df
        .columns()
        .iter()
        .map(|c| c.cast(&DataType::String).map_err(|e| Error::Internal(format!("column {:?} as text: {e}", c.name()))))
        .collect::<Result<_>>()?;
    DataFrame::new(df.height(), cols).map_err(|e| Error::Internal(e.to_string()))
}

/// Codes of D's rarest value per column (ties: the last code).
fn rarest(reference: &EncodedTable) -> Vec<u32> {
    (0..reference.sizes().len())
        .map(|a| {
            let mut counts = vec![0usize; reference.sizes()[a]];
            for c in reference.codes(a) {
                counts[c as usize] += 1;
            }
            let min = counts.iter().copied().min().unwrap_or(0);
            counts.iter().rposition(|&n| n == min).unwrap_or(0) as u32
        })
        .collect()
}

/// Rows of D' = D plus `rows` rows of the canary unit.
pub fn with_canary(plan: &Plan, d: &RawTable, codes: &[u32], rows: usize, seed: u64) -> Result<RawTable> {
    with_canaries(plan, d, std::slice::from_ref(&codes.to_vec()), rows, seed)
}

/// Rows of D plus `rows` rows of each canary unit (canary j keyed `audit-canary-j` when the
/// table has a privacy unit; other non-modelled columns empty).
pub fn with_canaries(plan: &Plan, d: &RawTable, canaries: &[Vec<u32>], rows: usize, seed: u64) -> Result<RawTable> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let d_cols = plan.codec.columns.len();
    let cols: Vec<Vec<u32>> =
        (0..d_cols).map(|a| canaries.iter().flat_map(|c| std::iter::repeat_n(c[a], rows)).collect()).collect();
    let decoded = as_text(&plan.codec.decode(&cols, &mut rng)?)?;
    let text = as_text(&d.df)?;
    let unit = plan.table.privacy_unit.clone();
    let mut prefix = "audit-canary".to_string();
    if let Some(Ok(s)) = unit.as_ref().map(|u| text.column(u).and_then(|c| c.str().cloned())) {
        while s.iter().any(|v| v.is_some_and(|v| v.starts_with(prefix.as_str()))) {
            prefix.push('_');
        }
    }
    let total = rows * canaries.len();
    let extra: Vec<Column> = text
        .columns()
        .iter()
        .map(|c| {
            let name = c.name().to_string();
            if let Ok(v) = decoded.column(&name) {
                return v.clone();
            }
            let fill: Vec<Option<String>> = if Some(&name) == unit.as_ref() {
                (0..total).map(|i| Some(format!("{prefix}-{}", i / rows))).collect()
            } else {
                vec![None; total]
            };
            Column::new(name.as_str().into(), fill)
        })
        .collect();
    let extra = DataFrame::new(total, extra).map_err(|e| Error::Internal(e.to_string()))?;
    let mut out = text;
    out.vstack_mut(&extra).map_err(|e| Error::Internal(format!("cannot add the canary to the data: {e}")))?;
    Ok(RawTable::in_memory(&format!("{} plus the canary", d.file), out))
}

/// Check the schema and D, build the canary and D'.
pub fn prepare(schema: &Schema, table: Table, d: RawTable, opts: &Options, origin: &str) -> Result<Prepared> {
    opts.check()?;
    let plan = Plan::new(schema, table, opts.fit.clone(), origin)?;
    let reference = plan.rows(&d, None)?.encoded;
    let worst = rarest(&reference);
    let names: Vec<String> = plan.codec.columns.iter().map(|c| c.name.clone()).collect();
    let (canary, kind) = match &opts.canary {
        CanarySpec::WorstCase => (worst, "worst case (D's rarest value in every column)".to_string()),
        CanarySpec::Record(values) => {
            let mut codes = worst;
            for (col, value) in values {
                let Some(a) = names.iter().position(|n| n == col) else {
                    return Err(Error::Usage(format!(
                        "--canary-record: {col:?} is not a modelled column of table {:?} (modelled: {})",
                        plan.table.name,
                        names.join(", ")
                    )));
                };
                let s = Series::new(col.as_str().into(), [value.as_str()]);
                let one = RawTable::in_memory(
                    "--canary-record",
                    DataFrame::new(1, vec![s.into()]).map_err(|e| Error::Internal(e.to_string()))?,
                );
                let mut t = plan.table.clone();
                t.columns.retain(|c| &c.name == col);
                t.privacy_unit = None;
                let enc = TableCodec::new(&t)?.encode(&one)?;
                if enc.rows() != 1 {
                    return Err(Error::Usage(format!(
                        "--canary-record: the value given for {col:?} does not fit its domain ({})",
                        plan.codec.columns[a].expected()
                    )));
                }
                codes[a] = enc.codes(0)[0];
            }
            (codes, "user-given record (other columns: worst case)".to_string())
        }
    };
    let bound = plan.rows_per_unit() as usize;
    let rows = opts.canary_rows.unwrap_or(bound);
    let d_prime = with_canary(&plan, &d, &canary, rows, opts.seed)?;
    // The canary's rows must encode to the canary (a decode/encode round trip).
    let check = plan.codec.encode(&RawTable::in_memory("canary", d_prime.df.slice(d.df.height() as i64, rows)))?;
    if check.rows() != rows || (0..names.len()).any(|a| check.codes(a).iter().any(|&c| c != canary[a])) {
        return Err(Error::Internal("the canary's rows do not encode back to the canary".into()));
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(opts.seed);
    let shown = as_text(&plan.codec.decode(&canary.iter().map(|&c| vec![c]).collect::<Vec<_>>(), &mut rng)?)?;
    let values = names
        .iter()
        .map(|n| {
            let v = shown
                .column(n)
                .ok()
                .and_then(|c| c.str().ok().and_then(|s| s.get(0).map(str::to_string)))
                .unwrap_or_else(|| "(missing)".into());
            (n.clone(), v)
        })
        .collect();
    let column_counts =
        (0..names.len()).map(|a| reference.codes(a).iter().filter(|&&c| c == canary[a]).count() as f64).collect();
    Ok(Prepared {
        canary_weight: rows.min(bound) as f64,
        plan,
        d,
        d_prime,
        canary,
        canary_info: CanaryInfo { kind, rows, values },
        reference,
        column_counts,
    })
}

/// Per column of `model`: the group of each code of the column's domain in the model's
/// compressed domain, and the number of groups (the maps and sizes of [`EncodedTable::remap`]).
pub(crate) fn compression_maps(model: &ModelFile) -> (Vec<Vec<u32>>, Vec<usize>) {
    let maps = (0..model.compression.len())
        .map(|a| {
            let mut m = vec![0u32; model.sizes[a]];
            for (g, members) in model.compression[a].iter().enumerate() {
                for &o in members {
                    m[o as usize] = g as u32;
                }
            }
            m
        })
        .collect();
    (maps, model.compression.iter().map(Vec::len).collect())
}

/// The white-box statistic of one model file for the canary `canary` (codes), standardised:
/// sum over released measurements of w (y - w x) / sigma^2 at the canary's cell (x: what the
/// reference rows put there), over sqrt(sum w^2 / sigma^2). Returns (z, mu the releases
/// allow for `weight` canary rows).
pub fn white_box(model: &ModelFile, reference: &EncodedTable, canary: &[u32], weight: f64) -> (f64, f64) {
    let d = model.compression.len();
    // Per column: the canary's group, and which reference rows share it.
    let group: Vec<u32> =
        (0..d).map(|a| model.compression[a].iter().position(|g| g.contains(&canary[a])).unwrap_or(0) as u32).collect();
    let (maps, _) = compression_maps(model);
    let masks: Vec<Vec<bool>> =
        (0..d).map(|a| reference.codes(a).iter().map(|&c| maps[a][c as usize] == group[a]).collect()).collect();
    let (mut s, mut v) = (0.0, 0.0);
    for m in &model.measurements {
        if m.sigma <= 0.0 {
            continue;
        }
        let sizes: Vec<usize> = m.attrs.iter().map(|&a| model.compression[a].len()).collect();
        let st = crate::marginals::strides(&sizes);
        let cell: usize = m.attrs.iter().zip(&st).map(|(&a, &k)| group[a] as usize * k).sum();
        if cell >= m.y.len() {
            continue;
        }
        let w = if m.weights.is_empty() { 1.0 } else { m.weights[cell] };
        let x = (0..reference.rows()).filter(|&i| m.attrs.iter().all(|&a| masks[a][i])).count() as f64;
        let s2 = m.sigma * m.sigma;
        s += w * (m.y[cell] - w * x) / s2;
        v += w * w / s2;
    }
    if v <= 0.0 {
        return (0.0, 0.0);
    }
    (s / v.sqrt(), weight * v.sqrt())
}

/// The scores of one run.
#[derive(Debug, Clone, Copy)]
struct RunScores {
    white: f64,
    black: f64,
    mu: f64,
}

fn run_once(p: &Prepared, data: &RawTable, opts: &Options, seed: u64) -> Result<RunScores> {
    // The library steps of `synth`: which rows count, the mechanism, the model file, sampling.
    let (model, codes) = synth_codes(&p.plan, data, opts.epsilon, opts.delta, opts.synthetic_rows, seed)?;
    let (white, mu) = white_box(&model, &p.reference, &p.canary, p.canary_weight);
    let black = codes
        .iter()
        .enumerate()
        .map(|(a, col)| col.iter().filter(|&&c| c == p.canary[a]).count() as f64 / (1.0 + p.column_counts[a]))
        .sum();
    Ok(RunScores { white, black, mu })
}

/// Records drawn from a model file as `sample` draws them, as code columns (the values a
/// decode writes fall in the same cells): `rows` of them (default: the model's DP total).
pub fn sample_codes(model: &ModelFile, rows: Option<usize>, seed: u64) -> Result<Vec<Vec<u32>>> {
    let rows = rows.unwrap_or(model.total.round().max(1.0) as usize);
    let gm = model.model("the fitted model")?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let codes = crate::model::sample::sample(&gm, rows, &mut rng);
    Ok(crate::mechanism::expand(&model.compression, &model.expansion, codes, &mut rng))
}

/// One in-process `synth` reduced to what the audits score: the model file and `rows`
/// synthetic records as code columns.
pub fn synth_codes(
    plan: &Plan,
    raw: &RawTable,
    epsilon: f64,
    delta: f64,
    rows: Option<usize>,
    seed: u64,
) -> Result<(ModelFile, Vec<Vec<u32>>)> {
    let chosen = plan.rows(raw, None)?;
    let mut budget = Budget::from_epsilon_delta(epsilon, delta).map_err(Error::Usage)?;
    let fitted = plan.fit(&chosen.encoded, &mut budget)?;
    let model = plan.model(&fitted, &budget, delta);
    let codes = sample_codes(&model, rows, seed)?;
    Ok((model, codes))
}

/// Run the audit: N runs on D and N on D' in parallel, scores, bounds, verdict.
pub fn run(p: &Prepared, opts: &Options, progress: &(dyn Fn(usize) + Sync)) -> Result<Report> {
    let started = std::time::Instant::now();
    let n = opts.runs;
    let done = std::sync::atomic::AtomicUsize::new(0);
    let all: Vec<RunScores> = (0..2 * n)
        .into_par_iter()
        .map(|i| {
            let data = if i < n { &p.d } else { &p.d_prime };
            let r = run_once(p, data, opts, opts.seed.wrapping_add(i as u64));
            progress(done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1);
            r
        })
        .collect::<Result<_>>()?;
    let (without, with) = all.split_at(n);
    // Two scores share the error probability (union bound).
    let alpha = opts.alpha / 2.0;
    let mk = |name: &str, description: &str, f: fn(&RunScores) -> f64| {
        score(name, description, (without, with), f, opts.delta, alpha)
    };
    let scores = vec![
        mk(
            "white-box",
            "likelihood-ratio statistic of the model file's released noisy counts at the canary's cells, standardised (N(0,1) without the canary)",
            |r| r.white,
        ),
        mk(
            "black-box",
            "synthetic records carrying the canary's value, per column, weighted by 1 / (1 + D's count of that value)",
            |r| r.black,
        ),
    ];
    let white_box_mu = with.iter().map(|r| r.mu).sum::<f64>() / n as f64;
    let mu_claim = gaussian_mu_at(opts.epsilon, opts.delta);
    let ceiling_eps = ceiling(mu_claim, n, opts.delta, alpha, 25, opts.seed);
    let empirical = scores.iter().map(|s| s.bound.epsilon).fold(0.0, f64::max);
    Ok(finish(
        p,
        opts,
        scores,
        empirical,
        mu_claim,
        Some(Ceiling { epsilon: ceiling_eps, replicates: 25, white_box_mu }),
        started,
        None,
    ))
}

#[allow(clippy::too_many_arguments)]
fn finish(
    p: &Prepared,
    opts: &Options,
    scores: Vec<Score>,
    empirical: f64,
    mu_claim: f64,
    ceiling: Option<Ceiling>,
    started: std::time::Instant,
    one_run: Option<one_run::OneRun>,
) -> Report {
    let unit = (p.plan.table.privacy_unit.clone(), p.plan.rows_per_unit());
    finish_with(opts, unit, p.canary_info.clone(), scores, empirical, mu_claim, ceiling, started, one_run)
}

/// The report of an audit: the claim, the verdict (exceeds when a bound is above the claim).
#[allow(clippy::too_many_arguments)]
pub(crate) fn finish_with(
    opts: &Options,
    (unit, rows_per_unit): (Option<String>, u32),
    canary: CanaryInfo,
    scores: Vec<Score>,
    empirical: f64,
    mu_claim: f64,
    ceiling: Option<Ceiling>,
    started: std::time::Instant,
    one_run: Option<one_run::OneRun>,
) -> Report {
    let rho = privsynth_privacy::accountant::rho_for(opts.epsilon, opts.delta);
    let conf = percent(1.0 - opts.alpha);
    let exceeds = empirical > opts.epsilon || one_run.as_ref().is_some_and(|o| o.epsilon > opts.epsilon);
    let message = if exceeds {
        format!(
            "FAILED: the empirical lower bound on epsilon ({:.3}) exceeds the claimed epsilon {} at {conf} confidence: the implementation does not keep its promise (a bug; do not release with this claim)",
            empirical.max(one_run.as_ref().map_or(0.0, |o| o.epsilon)),
            opts.epsilon
        )
    } else {
        format!(
            "passed: no evidence against the claim (lower bound {:.3} <= epsilon {} at {conf} confidence). An audit can refute a claim, never prove it",
            empirical.max(one_run.as_ref().map_or(0.0, |o| o.epsilon)),
            opts.epsilon
        )
    };
    Report {
        format: FORMAT.into(),
        version: VERSION,
        tool: concat!("privsynth ", env!("CARGO_PKG_VERSION")).into(),
        note: "This report describes the audit's data D (the canary is built from its rarest values): it is for the data holder unless D is a public stand-in or was sampled from a model file".into(),
        data: opts.data_source.clone(),
        claim: Claim {
            epsilon: opts.epsilon,
            delta: opts.delta,
            rho,
            mechanism: opts.fit.mechanism.name().into(),
            unit,
            rows_per_unit,
            gaussian_mu: mu_claim,
        },
        canary,
        runs: opts.runs,
        synthetic_rows: opts.synthetic_rows,
        seed: opts.seed,
        confidence: 1.0 - opts.alpha,
        scores,
        empirical_epsilon: empirical,
        ceiling,
        verdict: Verdict { exceeds_claim: exceeds, message },
        seconds: started.elapsed().as_secs_f64(),
        one_run,
    }
}

/// The quick mode: the one-run audit with `m` canaries (see [`one_run`]).
pub fn run_quick(p: &Prepared, opts: &Options, m: usize) -> Result<Report> {
    let started = std::time::Instant::now();
    let o = one_run::run(p, opts, m)?;
    let mu_claim = gaussian_mu_at(opts.epsilon, opts.delta);
    let mut r = finish(p, opts, vec![], o.epsilon, mu_claim, None, started, Some(o));
    r.runs = 1;
    r.canary = CanaryInfo {
        kind: format!("{m} random records of the schema's domain, each in D' with probability 1/2"),
        rows: r.canary.rows,
        values: vec![],
    };
    Ok(r)
}

/// D sampled from a model file: `rows` records (default: its DP total) drawn with `seed`, as
/// text, so the audit need not touch real data.
pub fn sample_data(model: &ModelFile, origin: &str, rows: Option<usize>, seed: u64) -> Result<RawTable> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0xDA7A);
    let n = rows.unwrap_or(model.total.round().max(1.0) as usize);
    let (t, _) = crate::synthetic::SyntheticTable::sample(model, origin, n, &mut rng)?;
    let mut df = as_text(&t.into_frame()?)?;
    // Each sampled record is its own unit.
    if let Some(u) = &model.table.privacy_unit {
        let keys: Vec<String> = (0..n).map(|i| format!("sampled-{i}")).collect();
        df.with_column(Column::new(u.as_str().into(), keys)).map_err(|e| Error::Internal(e.to_string()))?;
    }
    Ok(RawTable::in_memory(&format!("{n} records sampled from {origin}"), df))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_claims_gaussian_mu_is_exactly_at_the_claim() {
        // Dong, Roth and Su: mu = 1 gives delta(eps = 1) = 0.126936, so the inverse returns 1.
        assert!((gaussian_mu_at(1.0, 0.126936) - 1.0).abs() < 1e-4);
        let mu = gaussian_mu_at(1.0, 1e-9);
        assert!((bounds::gdp_delta(mu, 1.0) / 1e-9 - 1.0).abs() < 1e-6, "{mu}");
        // zCDP's rho(1, 1e-9) = 0.01497 gives sqrt(2 rho) = 0.173: the GDP mu is a little larger
        // (the zCDP conversion is not tight for one Gaussian).
        assert!(mu > 0.173 && mu < 0.19, "{mu}");
    }

    #[test]
    fn the_ceiling_follows_the_separation() {
        // Gaussian scores 6 sd apart separate 500 + 500 evaluation runs completely.
        assert!(ceiling(6.0, 1000, 1e-9, 0.05, 5, 1) > 4.0);
        assert_eq!(ceiling(0.0, 1000, 1e-9, 0.05, 5, 1), 0.0);
        assert_eq!(percent(0.95), "95%");
        assert_eq!(percent(0.999999), "99.9999%");
    }
}
