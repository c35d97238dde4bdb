//! AIM (McKenna, Mullins, Sheldon & Miklau, PVLDB 2022): workload-adaptive selection of
//! marginals, as published, with the rounds made cheap.
//!
//! - Workload W: attribute sets with weights (default all 2-way marginals of at most
//!   `max_cells` cells, weight 1). Candidates are its downward closure, candidate r weighted
//!   w_r = sum over s in W of c_s * |r & s|.
//! - Budget rho over T = 16 d nominal rounds: each round measures with rho_m = 0.9 rho / T
//!   (sigma = sqrt(1 / (2 rho_m))) and selects with rho_s = 0.1 rho / T (eps = sqrt(8 rho_s)).
//!   All one-way marginals are measured first at sigma.
//! - A round: if less than two rounds' cost is left, this is the last round and it spends all
//!   that is left (0.1 selection, 0.9 measurement). Eligible candidates are those whose junction
//!   tree (built with fill-in, exactly as the model would be) has at most
//!   `max_model_mb * rho_used / rho` MB, or that lie inside a measured set. The exponential
//!   mechanism picks r with quality w_r (|M_r(D) - M_r(model)|_1 - sqrt(2/pi) sigma n_r),
//!   sensitivity max |w_r|; r is measured with the discrete Gaussian and the model refitted.
//!   If the refit moved M_r by at most the expected noise, sigma halves and eps doubles.
//!
//! What makes rounds cheap without touching the privacy analysis (the mechanism's inputs and
//! outputs are those of the paper): exact answers of every candidate are counted once; the fit
//! is carried across rounds in measurement-sized duals (so a changed tree needs no refit from
//! scratch) and warm-started in step size, with a few iterations per round and the full
//! estimation only at the end; size checks triangulate without building the tree; candidate
//! marginals are computed in parallel. On large models (a large budget or many rows make AIM
//! select large marginals) a round's refit and the final estimation are held to a number of
//! model cells times iterations, and the default size limit is a quarter of the reference's:
//! both only change post-processing and which candidates are eligible (public quantities), never
//! a charge.

use privsynth_privacy::{Budget, Released, Sensitive, mechanisms};
use rayon::prelude::*;

use super::{Fit, Mechanism, compress, no_compression};
use crate::error::{Error, Result};
use crate::marginals::{self, Counter};
use crate::model::estimate::{self, Duals, Measurement};
use crate::model::{GraphicalModel, JunctionTree, tree_cells};

/// Bytes per model cell in the size limit (one f64 potential, as in the reference).
const BYTES_PER_CELL: f64 = 8.0;

/// Refits stop when every measured marginal moves by less than this fraction of its expected
/// noise over `CHECK_EVERY` accepted steps (see `estimate::Options::settle`). On Adult (10 runs
/// each), 0.03 fits as well as 1,000 fixed iterations per round at epsilon 0.3 and 1, at a
/// third of the time; 0.1 and 0.3 lose accuracy at low epsilon (benchmarks/README.md).
const SETTLE: f64 = 0.03;

/// Share of the budget for the first one-way marginals, from which the domain is compressed.
/// On coded Adult (3 runs each) a third beat AIM's own 1/(16 d) per marginal at epsilon 0.3, 1
/// and 3 (benchmarks/README.md).
pub const ONE_WAY_SHARE: f64 = 0.33;
/// Where the one-way noise exceeds this fraction of the row count, they get `SMALL_DATA_SHARE`
/// of the budget in all (Cleveland heart, 303 rows, and 1,300 rows of Adult; benchmarks/README.md).
pub const SMALL_DATA_RATIO: f64 = 0.05;
pub const SMALL_DATA_SHARE: f64 = 0.7;
/// Momentum of AIM's fits: about a third of the iterations to settle, at a lower loss.
pub const MOMENTUM: f64 = 0.9;
const CHECK_EVERY: usize = 25;
/// The default model size limit. The reference's 80 MB let AIM grow junction trees of 6 to 7
/// million cells on Adult with 32-bin numeric columns at epsilon 3 (49 rounds, 50 to 500
/// CPU-seconds and up to 1 GB); at 20 MB the same runs take a fifth of the time at about the
/// same TVD (benchmarks/README.md).
pub const MAX_MODEL_MB: f64 = 20.0;
/// A round's refit only steers the next selection (and the annealing test, which a refit cut
/// short skips: `Options::anneal_cut`); the final estimation fits the model in full. On a large
/// model (millions of cells late in a run at a large budget) hundreds of iterations per round
/// were most of the time, so a round's refit gets at most this many cell-iterations. On 32-bin
/// Adult at epsilon 3 (5 runs each) 1e7 fit as well as 2e7 (mean 2-way TVD 0.0167 against
/// 0.0169) in 86% of the CPU time; coded Adult at epsilon 1 never reaches it (benchmarks/README.md).
pub const ROUND_WORK: f64 = 1e7;
/// The final estimation's work, in model cells times iterations, at most (but never fewer
/// than `MIN_FINAL_ITERS` iterations). On 10M rows at epsilon 1 the settling rule is far below
/// the counts' scale and the final fit ran its full 1,000 iterations on a 2.4M-cell model, most
/// of the run; the 2-way TVD there is 0.005 (benchmarks/README.md).
pub const FINAL_WORK: f64 = 5e8;
pub const MIN_FINAL_ITERS: usize = 100;
/// The rounds' refit work (cell-iterations, in all) after which a cut refit may anneal again
/// (`Options::cut_hold_work`). On 32-bin Adult at epsilon 3 the rounds do 6.7e8 to 8.1e8 (10 runs).
pub const CUT_HOLD_WORK: f64 = 1e9;
/// The fewest iterations a round's refit gets, whatever the model's size.
pub const MIN_ROUND_ITERS: usize = 10;

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Nominal rounds T (default 16 d).
    pub rounds: Option<usize>,
    /// Model size limit in MB (2^20 bytes at 8 bytes a cell, over the junction tree's maximal
    /// cliques), reached in proportion to the budget spent.
    pub max_model_mb: f64,
    /// Mirror-descent iterations per round (warm-started), at most.
    pub round_iters: usize,
    /// Work of a round's refit, in model cells times iterations, at most (but never fewer than
    /// `MIN_ROUND_ITERS` iterations): a refit on a large model stops sooner. `None`: no limit.
    pub round_work: Option<f64>,
    /// Share of the budget spent on the one-way marginals measured first, split evenly between
    /// them. `None`: AIM's own, each at one round's measurement budget (0.9 rho / T).
    pub one_way_share: Option<f64>,
    /// With `one_way_share`: when the one-way releases' noise is large against the row count
    /// they estimate ([`noise_to_signal`] above `ratio`), measure them again to reach `share`
    /// of the budget in all before the rounds.
    pub small_data: Option<SmallData>,
    /// Merge the values whose noisy one-way count stays under 3 noise deviations into one rare
    /// value before the rounds (MST's domain compression, post-processing of the one-way
    /// releases); the rounds then measure and model the compressed domain.
    pub compress: bool,
    /// Heavy-ball momentum of every mirror-descent fit AIM runs (`estimate::Options::momentum`).
    pub momentum: f64,
    /// Carry the fit from round to round (the default). Off, every round refits from the
    /// uniform model with `round_iters` iterations, as the Python implementations do; kept to
    /// measure what the warm start saves.
    pub warm_start: bool,
    /// End a round's refit once every measured marginal has settled (moves by less than this
    /// fraction of its expected noise over a check interval). `None`: always `round_iters`.
    pub settle: Option<f64>,
    /// Let a round whose refit `round_work` cut short anneal (the paper's test, taken on
    /// whatever the refit reached). Off (the default), such a round keeps its noise scale: the
    /// test asks whether the refit moved the measured marginal by less than the noise, and a
    /// refit stopped after a few iterations on a large model has not absorbed the measurement,
    /// so it anneals too early. On 32-bin Adult at epsilon 3 the early annealing ended runs
    /// with a last round of about a third of the rounds' budget on one marginal, and cost 0.001
    /// of mean 2-way TVD (benchmarks/README.md). Post-processing of released values either way.
    pub anneal_cut: bool,
    /// Without `anneal_cut`: once the rounds' refits have done this many cell-iterations in
    /// all, a cut refit anneals again as in the paper. A table so large that every refit is
    /// cut and none settles (Adult resampled to 10M rows) would otherwise never anneal and run
    /// all 16 d rounds on a model of millions of cells (240 rounds and 114 CPU s in a dev
    /// build, though at a better 2-way TVD: 0.0047 against 0.0068). `None`: no such limit.
    pub cut_hold_work: Option<f64>,
    /// The final estimation.
    pub estimate: estimate::Options,
    /// Work of the final estimation, in model cells times iterations, at most (but never fewer
    /// than `MIN_FINAL_ITERS` iterations, nor more than `estimate.max_iters`). `None`: no limit.
    pub final_work: Option<f64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            rounds: None,
            max_model_mb: MAX_MODEL_MB,
            round_iters: 1000,
            round_work: Some(ROUND_WORK),
            warm_start: true,
            settle: Some(SETTLE),
            one_way_share: Some(ONE_WAY_SHARE),
            small_data: Some(SmallData { ratio: SMALL_DATA_RATIO, share: SMALL_DATA_SHARE }),
            compress: true,
            momentum: MOMENTUM,
            anneal_cut: false,
            cut_hold_work: Some(CUT_HOLD_WORK),
            estimate: estimate::Options::default(),
            final_work: Some(FINAL_WORK),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct SmallData {
    pub ratio: f64,
    pub share: f64,
}

/// A weighted workload: the marginals the user wants preserved.
pub type Workload = Vec<(Vec<usize>, f64)>;

/// All `degree`-way marginals with at most `max_cells` cells, weight 1.
pub fn default_workload(sizes: &[usize], degree: usize, max_cells: f64) -> Workload {
    let degree = degree.clamp(1, sizes.len().max(1));
    marginals::subsets(sizes.len(), degree)
        .into_iter()
        .filter(|s| s.iter().map(|&a| sizes[a] as f64).product::<f64>() <= max_cells)
        .map(|s| (s, 1.0))
        .collect()
}

/// The downward closure of the workload with AIM's weights, smaller sets first.
pub fn candidates(workload: &Workload) -> Workload {
    let mut sets: Vec<Vec<usize>> = vec![];
    for (s, _) in workload {
        for mask in 1u64..(1 << s.len()) {
            let r: Vec<usize> = (0..s.len()).filter(|i| mask >> i & 1 == 1).map(|i| s[i]).collect();
            sets.push(r);
        }
    }
    sets.sort_by(|a, b| a.len().cmp(&b.len()).then(a.cmp(b)));
    sets.dedup();
    sets.into_iter()
        .map(|r| {
            let w = workload.iter().map(|(s, c)| c * r.iter().filter(|a| s.contains(a)).count() as f64).sum();
            (r, w)
        })
        .collect()
}

/// What one round did (all public: derived from released values and the schema).
#[derive(Debug, Clone)]
pub struct Round {
    pub selected: Vec<usize>,
    pub sigma: f64,
    pub epsilon: f64,
    pub eligible: usize,
    /// Junction-tree size after the round, in cells, and the limit it was held to.
    pub model_cells: f64,
    pub limit_cells: f64,
    pub annealed: bool,
    pub iterations: usize,
}

/// The rounds of a fit, for diagnostics and tests, and where the time went (seconds).
#[derive(Debug, Default)]
pub struct Trace {
    pub rounds: Vec<Round>,
    pub filter_seconds: f64,
    pub score_seconds: f64,
    pub fit_seconds: f64,
}

fn cells_of(sizes: &[usize], attrs: &[usize]) -> f64 {
    attrs.iter().map(|&a| sizes[a] as f64).product()
}

/// Iterations of a round's refit: `iters`, or fewer on a model so large that they would exceed
/// `work` cell-iterations (at least `MIN_ROUND_ITERS`).
pub fn round_cap(iters: usize, work: Option<f64>, cells: f64) -> usize {
    work_cap(iters, work, cells, MIN_ROUND_ITERS)
}

/// `iters`, or fewer where they would exceed `work` cell-iterations on `cells` (at least `min`).
fn work_cap(iters: usize, work: Option<f64>, cells: f64, min: usize) -> usize {
    match work {
        Some(w) if cells > 0.0 => iters.min(((w / cells) as usize).max(min)),
        _ => iters,
    }
}

/// Whether `r` lies inside one of the measured `sets` (then the model's graph is unchanged).
fn inside(sets: &[Vec<usize>], r: &[usize]) -> bool {
    sets.iter().any(|s| r.iter().all(|a| s.contains(a)))
}

fn l1(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum()
}

fn measurement(r: Released<Vec<i64>>, attrs: &[usize], sigma: f64) -> Released<Measurement> {
    let attrs = attrs.to_vec();
    r.map(move |y| Measurement { attrs, weights: vec![], y: y.into_iter().map(|v| v as f64).collect(), sigma })
}

/// The expected L1 norm of the noise of the one-way releases, averaged over the attributes,
/// against the total they estimate: above about 0.05, AIM's rounds gain less than more precise
/// one-way marginals would (benchmarks/README.md). Released values only.
pub fn noise_to_signal(one_way: &[Measurement]) -> f64 {
    let total = estimate::estimate_total(one_way);
    let l1: f64 = one_way.iter().map(|m| (2.0 / std::f64::consts::PI).sqrt() * m.sigma * m.y.len() as f64).sum::<f64>()
        / one_way.len().max(1) as f64;
    l1 / total
}

/// Two releases of the same marginal as one: the inverse-variance mean, with its noise scale.
fn combine(a: Measurement, b: Measurement) -> Measurement {
    let (wa, wb) = (1.0 / (a.sigma * a.sigma), 1.0 / (b.sigma * b.sigma));
    let y = a.y.iter().zip(&b.y).map(|(x, z)| (wa * x + wb * z) / (wa + wb)).collect();
    Measurement { attrs: a.attrs, weights: a.weights, y, sigma: (wa + wb).sqrt().recip() }
}

/// AIM's quality of a candidate: its weight times (the L1 error of the model's estimate minus
/// the expected L1 norm of Gaussian noise at `sigma` over its cells). A large marginal is only
/// worth measuring if its error exceeds what measuring it would add.
pub fn quality(weight: f64, exact: &[i64], estimate: &[f64], sigma: f64) -> f64 {
    let err: f64 = exact.iter().zip(estimate).map(|(&x, e)| (x as f64 - e).abs()).sum();
    weight * (err - (2.0 / std::f64::consts::PI).sqrt() * sigma * estimate.len() as f64)
}

/// Select one candidate with the exponential mechanism at `eps` (cost eps^2/8): P(r) is
/// proportional to exp(eps q_r / (2 max |w|)), as adding or removing a row moves each L1 error
/// by at most 1, so q_r by at most |w_r|.
///
/// `unit_rows` is the most rows one privacy unit contributes: the L1 errors then move by up to
/// that many, and so does the sensitivity.
#[allow(clippy::too_many_arguments)]
pub fn select(
    budget: &mut Budget,
    exact: Sensitive<Vec<&[i64]>>,
    estimates: &[Vec<f64>],
    weights: &[f64],
    sigma: f64,
    eps: f64,
    unit_rows: i64,
    label: &str,
) -> Result<Released<usize>> {
    let sensitivity = weights.iter().fold(0.0_f64, |m, w| m.max(w.abs())).max(f64::MIN_POSITIVE) * unit_rows as f64;
    let scores = exact.map(|x| {
        x.iter().zip(estimates).zip(weights).map(|((x, e), &w)| quality(w, x, e, sigma)).collect::<Vec<f64>>()
    });
    Ok(mechanisms::exponential(budget, scores, sensitivity, eps, label)?)
}

/// Run AIM on an encoded table over `workload`, spending `budget`'s remaining rho.
pub fn fit(data: &dyn Counter, workload: &Workload, budget: &mut Budget, opts: Options) -> Result<(Fit, Trace)> {
    let sizes = data.sizes().to_vec();
    let d = sizes.len();
    if d == 0 {
        return Err(Error::Usage("the schema has no modelled columns".into()));
    }
    if let Some((s, _)) =
        workload.iter().find(|(s, c)| s.is_empty() || s.iter().any(|&a| a >= d) || !(c.is_finite() && *c >= 0.0))
    {
        return Err(Error::Usage(format!("workload set {s:?} is empty, out of range or has a negative weight")));
    }
    if !(opts.max_model_mb > 0.0) {
        return Err(Error::Usage("the model size limit must be positive".into()));
    }
    // An engine that pays per scan counts the one-way marginals and every candidate together
    // (the compressed view below counts from the same full-code counts).
    let mut wanted: Vec<Vec<usize>> = (0..d).map(|a| vec![a]).collect();
    wanted.extend(candidates(workload).into_iter().map(|(s, _)| s));
    data.prefetch(&wanted)?;
    let rho = budget.rho_remaining();
    let unit = data.unit_rows();
    let spent0 = budget.rho_spent();
    let rounds = opts.rounds.unwrap_or(16 * d).max(1);
    let max_cells = opts.max_model_mb * (1 << 20) as f64 / BYTES_PER_CELL;
    let mut rho_m = 0.9 * rho / rounds as f64;
    let mut rho_s = 0.1 * rho / rounds as f64;

    // Every one-way marginal first (all attributes, so that each is modelled).
    let share = opts.one_way_share.filter(|f| *f > 0.0 && *f < 1.0);
    let sigma1 = match share {
        Some(f) => mechanisms::gaussian_scale(f * rho / d as f64, unit),
        None => mechanisms::gaussian_scale(rho_m, unit),
    }?;
    // The budget split: the one-way marginals get their share (up to the small-data top-up's,
    // of which what is not used returns), the rounds what is left.
    let top_up = opts.small_data.filter(|t| t.share < 1.0 && share.is_some_and(|f| t.share > f));
    let one_way_rho = match (share, top_up) {
        (Some(_), Some(t)) => t.share * rho,
        (Some(f), None) => f * rho,
        (None, _) => d as f64 * rho_m,
    };
    let mut one_way = budget.part("AIM one-way marginals", one_way_rho.min(rho))?;
    let mut raw_one_way: Vec<Released<Measurement>> = Vec::with_capacity(d);
    for a in 0..d {
        let r = mechanisms::gaussian_counts(
            &mut one_way,
            data.count(&[a])?,
            unit,
            sigma1,
            &format!("aim 1-way {}", data.names()[a]),
        )?;
        raw_one_way.push(measurement(r, &[a], sigma1));
    }
    // Small data: where the one-way noise is large against the (DP) row count, the budget is
    // better spent on the one-way marginals than on rounds. Decided from released values only.
    if let (Some(f), Some(top)) = (share, opts.small_data.filter(|s| s.share < 1.0)) {
        let ones: Vec<Measurement> = raw_one_way.iter().map(|m| m.value().clone()).collect();
        if top.share > f && noise_to_signal(&ones) > top.ratio {
            let sigma2 = mechanisms::gaussian_scale((top.share - f) * rho / d as f64, unit)?;
            let first = std::mem::take(&mut raw_one_way);
            for (a, m1) in first.into_iter().enumerate() {
                let r = mechanisms::gaussian_counts(
                    &mut one_way,
                    data.count(&[a])?,
                    unit,
                    sigma2,
                    &format!("aim 1-way {} (small data)", data.names()[a]),
                )?;
                // Both releases in one: their inverse-variance mean (post-processing).
                raw_one_way.push(m1.zip(measurement(r, &[a], sigma2), combine));
            }
        }
    }
    drop(one_way);
    if share.is_some() {
        // The rounds share what is left.
        let left = budget.rho_remaining();
        rho_m = 0.9 * left / rounds as f64;
        rho_s = 0.1 * left / rounds as f64;
    }
    let mut sigma: f64;
    // The total is estimated from the raw one-way releases and the later full marginals.
    let mut for_total: Vec<Measurement> = raw_one_way.iter().map(|m| m.value().clone()).collect();
    let mut expansion = vec![];
    let (compression, mut measurements, compressed) = if opts.compress {
        let (groups, maps, ms) = compress(&raw_one_way);
        expansion = super::expansion(&raw_one_way, &groups);
        let sizes_c: Vec<usize> = groups.iter().map(Vec::len).collect();
        let small = (sizes_c != sizes).then(|| data.remap(&maps, &sizes_c));
        (groups, ms, small)
    } else {
        (no_compression(&sizes), raw_one_way, None)
    };
    let data: &dyn Counter = compressed.as_deref().unwrap_or(data);
    let sizes = data.sizes().to_vec();
    let cands = candidates(workload);
    let cand_sets: Vec<Vec<usize>> = cands.iter().map(|(s, _)| s.clone()).collect();
    // Exact answers of every candidate, counted once (private; only scores leave, through the
    // exponential mechanism).
    let answers = data.count_many(&cand_sets)?;
    let values = |ms: &[Released<Measurement>]| -> Vec<Measurement> { ms.iter().map(|m| m.value().clone()).collect() };
    let mut sets: Vec<Vec<usize>> = (0..d).map(|a| vec![a]).collect();
    let total = estimate::estimate_total(&for_total);
    let mut model = GraphicalModel::uniform(JunctionTree::build(&sizes, &sets), total);
    let mut duals = Duals::default();
    let mut ms = values(&measurements);
    let mut stats = estimate::mirror_descent_dual(
        &mut model,
        &ms,
        &mut duals,
        estimate::Options { max_iters: 1000, tol: 1e-6, momentum: opts.momentum, ..Default::default() },
    );
    let mut trace = Trace::default();

    let mut last = false;
    let mut calibrated = None;
    // Cell-iterations of the rounds' refits so far.
    let mut refit_work = 0.0;
    while !last {
        let left = budget.rho_remaining();
        if left < 2.0 * (rho_m + rho_s) {
            last = true;
            rho_s = 0.1 * left;
            rho_m = left - rho_s;
        }
        let used = budget.rho_spent() - spent0 + rho_m + rho_s;
        let limit = max_cells * (used / rho).min(1.0);
        sigma = mechanisms::gaussian_scale(rho_m * (1.0 - 1e-12), unit)?;
        let eps = (8.0 * rho_s).sqrt();

        // Size filter: the tree the model would really have, fill-in included.
        let clock = std::time::Instant::now();
        let eligible: Vec<usize> = (0..cands.len())
            .into_par_iter()
            .filter(|&i| {
                let r = &cand_sets[i];
                inside(&sets, r) || {
                    let mut with = sets.clone();
                    with.push(r.clone());
                    tree_cells(&sizes, &with) <= limit
                }
            })
            .collect();
        trace.filter_seconds += clock.elapsed().as_secs_f64();
        let clock = std::time::Instant::now();
        // Quality of each eligible candidate (the beliefs of the last refit, when there was one).
        let beliefs = calibrated.take().unwrap_or_else(|| model.calibrate());
        let queries: Vec<&[usize]> = eligible.iter().map(|&i| cand_sets[i].as_slice()).collect();
        let estimates: Vec<Vec<f64>> = model.marginals(&beliefs, &queries).into_iter().map(|f| f.values).collect();
        let bias = (2.0 / std::f64::consts::PI).sqrt() * sigma;
        let weights: Vec<f64> = eligible.iter().map(|&i| cands[i].1).collect();
        let exact = answers.as_ref().map(|x| eligible.iter().map(|&i| x[i].as_slice()).collect::<Vec<&[i64]>>());
        let round_no = trace.rounds.len() + 1;
        let pick =
            select(budget, exact, &estimates, &weights, sigma, eps, unit, &format!("aim round {round_no} selection"))?;
        let k = *pick.value();
        trace.score_seconds += clock.elapsed().as_secs_f64();
        let clock = std::time::Instant::now();
        let (ci, r) = (eligible[k], cand_sets[eligible[k]].clone());
        let names: Vec<&str> = r.iter().map(|&a| data.names()[a].as_str()).collect();
        // The last round measures with exactly what the selection left.
        if last {
            sigma = mechanisms::gaussian_scale(budget.rho_remaining(), unit)?;
        }
        let exact = answers.as_ref().map(|x| x[ci].clone());
        let y = mechanisms::gaussian_counts(
            budget,
            exact,
            unit,
            sigma,
            &format!("aim round {round_no} {}", names.join(",")),
        )?;
        measurements.push(measurement(y, &r, sigma));
        ms.push(measurements.last().expect("just pushed").value().clone());
        for_total.push(ms[ms.len() - 1].clone());

        // Refit, warm: a new set changes the tree; the duals carry the fit over.
        let before = estimates[k].clone();
        if !inside(&sets, &r) {
            sets.push(r.clone());
            let tree = JunctionTree::build(&sizes, &sets);
            model = GraphicalModel { tree, potentials: vec![], total: model.total };
            model.potentials = duals.potentials(&model, &ms);
        }
        model.total = estimate::estimate_total(&for_total);
        // Refit until every measured marginal has settled well below its noise level.
        let mut iterations = 0;
        let mut max_iters_used = usize::MAX;
        if !opts.warm_start && !last {
            duals = Duals::default();
            model = GraphicalModel::uniform(model.tree.clone(), model.total);
        }
        if !last {
            let (settle, step) = if opts.warm_start { (opts.settle, Some(stats.step)) } else { (None, None) };
            let max_iters = round_cap(opts.round_iters, opts.round_work, model.tree.total_cells());
            max_iters_used = max_iters;
            stats = estimate::mirror_descent_dual(
                &mut model,
                &ms,
                &mut duals,
                estimate::Options { max_iters, tol: 0.0, window: CHECK_EVERY, settle, step, momentum: opts.momentum },
            );
            iterations = stats.iterations;
        }
        let after = if last {
            before.clone()
        } else {
            let b = model.calibrate();
            let after = model.marginal(&b, &r).values;
            calibrated = Some(b);
            after
        };
        // A refit its work limit cut short has not absorbed the measurement: its small move
        // says nothing about the noise, so it does not anneal (see `Options::anneal_cut`).
        // Past `cut_hold_work` cell-iterations of refits in all, the paper's test is taken as
        // it is again, so that a very large table's run ends in a bounded number of rounds.
        let held = opts.cut_hold_work.is_none_or(|w| refit_work <= w);
        refit_work += iterations as f64 * model.tree.total_cells();
        let cut = held && !last && max_iters_used < opts.round_iters && iterations >= max_iters_used;
        trace.fit_seconds += clock.elapsed().as_secs_f64();
        let annealed = !last && (opts.anneal_cut || !cut) && l1(&after, &before) <= bias * cells_of(&sizes, &r);
        if annealed {
            rho_m *= 4.0;
            rho_s *= 4.0;
        }
        trace.rounds.push(Round {
            selected: r,
            sigma,
            epsilon: eps,
            eligible: eligible.len(),
            model_cells: model.tree.total_cells(),
            limit_cells: limit,
            annealed,
            iterations,
        });
    }
    // The final estimation.
    let clock = std::time::Instant::now();
    let cells = model.tree.total_cells();
    let final_opts = estimate::Options {
        max_iters: work_cap(opts.estimate.max_iters, opts.final_work, cells, MIN_FINAL_ITERS),
        step: Some(stats.step),
        settle: opts.estimate.settle.or(Some(SETTLE)),
        window: CHECK_EVERY,
        momentum: opts.momentum,
        ..opts.estimate
    };
    let stats = estimate::mirror_descent_dual(&mut model, &ms, &mut duals, final_opts);
    trace.fit_seconds += clock.elapsed().as_secs_f64();
    let selected = trace.rounds.iter().map(|r| r.selected.clone()).collect();
    Ok((
        Fit {
            mechanism: Mechanism::Aim,
            bound: data.bound(),
            compression,
            expansion,
            measurements,
            selected,
            model,
            stats,
        },
        trace,
    ))
}
