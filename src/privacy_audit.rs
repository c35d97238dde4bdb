//! Empirical audit of the whole pipeline's guarantee: run the real synthesis path many times on
//! a dataset D and on a neighbour D' (D plus one unit), reduce each synthetic output to a score
//! (for example the number of synthetic rows in the canary's rare cell), and bound epsilon from
//! below with `privsynth_privacy::audit::epsilon_lower_bound`. A bound above the claimed epsilon
//! means the implementation does not keep its promise.
//!
//! The runs go through the same library steps as `privsynth synth` (which rows count, the
//! mechanism, the model file, sampling), in process and in parallel, without files or ledger.

use polars::prelude::DataFrame;
use rand::SeedableRng;
use rayon::prelude::*;

use privsynth_privacy::Budget;

use crate::data::RawTable;
use crate::ehr;
use crate::error::{Error, Result};
use crate::pipeline::Plan;
use crate::pipeline::linked::LinkedPlan;

/// Scores of `runs` releases on each of `d` and `d_prime` (run in parallel on the cores).
///
/// Each run is itself parallel inside (counting, encoding), and a worker waiting on its own
/// inner jobs may steal another whole run onto its stack; the runs get their own pool with
/// large stacks so that such chains cannot overflow.
pub fn neighbour_runs<D: Sync>(
    runs: usize,
    d: &D,
    d_prime: &D,
    release: impl Fn(&D, usize) -> Result<f64> + Sync,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let pool = rayon::ThreadPoolBuilder::new()
        .stack_size(256 << 20)
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the audit's threads: {e}")))?;
    pool.install(|| {
        let without = (0..runs).into_par_iter().map(|i| release(d, i)).collect::<Result<Vec<f64>>>()?;
        let with = (0..runs).into_par_iter().map(|i| release(d_prime, i)).collect::<Result<Vec<f64>>>()?;
        Ok((without, with))
    })
}

/// One single-table `synth` in process: which rows count (with an optional holdout share),
/// the mechanism at (epsilon, delta), the model file, and `rows` synthetic records sampled with
/// `seed` (post-processing).
pub fn synth_table(
    plan: &Plan,
    raw: &RawTable,
    epsilon: f64,
    delta: f64,
    holdout: Option<f64>,
    rows: usize,
    seed: u64,
) -> Result<DataFrame> {
    let chosen = plan.rows(raw, holdout)?;
    let mut budget = Budget::from_epsilon_delta(epsilon, delta).map_err(Error::Usage)?;
    let fitted = plan.fit(&chosen.encoded, &mut budget)?;
    let model = plan.model(&fitted, &budget, delta);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (synth, _) = crate::synthetic::SyntheticTable::sample(&model, "the fitted model", rows, &mut rng)?;
    synth.into_frame()
}

/// One linked `synth` in process: the linked fit at (epsilon, delta) and `persons` synthetic
/// persons with their events, sampled with `seed`.
pub fn synth_linked(
    plan: &LinkedPlan,
    tables: &ehr::Tables,
    epsilon: f64,
    delta: f64,
    persons: usize,
    seed: u64,
) -> Result<Vec<(String, DataFrame)>> {
    let fitted = plan.fit(tables, epsilon, delta, None)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    Ok(ehr::sample::sample(&fitted.model, "the fitted model", Some(persons), &mut rng)?.tables)
}

/// Number of rows of `df` whose `column` reads as `value` (text comparison), a typical score.
pub fn count_value(df: &DataFrame, column: &str, value: &str) -> Result<f64> {
    let s = df
        .column(column)
        .map_err(|_| Error::Internal(format!("no column {column:?} in the synthetic output")))?
        .cast(&polars::prelude::DataType::String)
        .map_err(|e| Error::Internal(e.to_string()))?;
    let ca = s.str().map_err(|e| Error::Internal(e.to_string()))?;
    Ok(ca.iter().filter(|v| *v == Some(value)).count() as f64)
}
