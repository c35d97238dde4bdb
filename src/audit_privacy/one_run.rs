//! The quick mode: the one-run audit of Steinke, Nasr and Jagielski ("Privacy auditing with
//! one (1) training run", NeurIPS 2023). `m` canary units, each a random record of the
//! schema's domain, are each added to D independently with probability 1/2; one fit; every
//! canary gets the white-box score of its own cells (centred for the other canaries, which are
//! in with probability 1/2); the auditor guesses "in" for the k highest scores and "out" for
//! the k lowest and abstains on the rest. If the release is (epsilon, delta)-DP, the number
//! of right guesses is dominated by Binomial(2k, e^eps / (1 + e^eps)) (plus a delta term), which
//! gives the bound. k runs over a fixed grid, each at confidence 1 - alpha / |grid|, so taking
//! the largest bound is sound.
//!
//! One fit costs one run, so this is cheap, but the canaries share cells with each other and
//! the bound is far looser than the N-run audit's: it is a smoke test for gross bugs.

use rand::{RngExt, SeedableRng};
use serde::Serialize;

use privsynth_privacy::Budget;
use privsynth_privacy::audit as bounds;

use super::{Options, Prepared, with_canaries};
use crate::data::RawTable;
use crate::error::{Error, Result};
use crate::model::file::ModelFile;

#[derive(Debug, Clone, Serialize)]
pub struct OneRun {
    pub canaries: usize,
    /// How many were in D' (each with probability 1/2).
    pub included: usize,
    /// Guesses made (k "in" + k "out") and how many were right, for the best k.
    pub guesses: usize,
    pub correct: usize,
    /// Lower bound on epsilon at the claimed delta.
    pub epsilon: f64,
    pub confidence: f64,
    /// The k tried (guesses per side).
    pub grid: Vec<usize>,
}

/// Per canary: its white-box z score in one model file. `cells_taken` adds, per measurement,
/// what the other canaries put in each cell on average (rows / 2 each).
fn scores(model: &ModelFile, reference: &crate::codec::EncodedTable, canaries: &[Vec<u32>], rows: f64) -> Vec<f64> {
    let (maps, sizes) = super::compression_maps(model);
    let small = reference.remap(&maps, &sizes);
    let mut s = vec![0.0; canaries.len()];
    let mut v = vec![0.0; canaries.len()];
    for m in &model.measurements {
        if m.sigma <= 0.0 {
            continue;
        }
        let msizes: Vec<usize> = m.attrs.iter().map(|&a| sizes[a]).collect();
        let st = crate::marginals::strides(&msizes);
        // What D alone puts in each cell (the auditor's knowledge of D).
        let x = crate::marginals::count(&small, &m.attrs).disclose_to_data_holder();
        let cell_of =
            |c: &[u32]| -> usize { m.attrs.iter().zip(&st).map(|(&a, &k)| maps[a][c[a] as usize] as usize * k).sum() };
        let mut per_cell = vec![0usize; x.len()];
        let cells: Vec<usize> = canaries.iter().map(|c| cell_of(c)).collect();
        for &c in &cells {
            per_cell[c] += 1;
        }
        for (i, &c) in cells.iter().enumerate() {
            let w = if m.weights.is_empty() { 1.0 } else { m.weights[c] };
            let others = per_cell[c] as f64 - 1.0;
            let expected = x[c] as f64 + rows * others / 2.0;
            // The other canaries in the cell are each in with probability 1/2: their count
            // adds variance w^2 rows^2 others / 4 to the noise's (inverse-variance weights).
            let var = m.sigma * m.sigma + w * w * rows * rows * others / 4.0;
            s[i] += w * (m.y[c] - w * expected) / var;
            v[i] += w * w / var;
        }
    }
    s.iter().zip(&v).map(|(&a, &b)| if b > 0.0 { a / b.sqrt() } else { 0.0 }).collect()
}

/// The one-run audit with `m` canaries on the prepared D.
pub fn run(p: &Prepared, opts: &Options, m: usize) -> Result<OneRun> {
    if m < 20 {
        return Err(Error::Usage(format!("--one-run needs at least 20 canaries, got {m}")));
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(opts.seed ^ 0x0001_2023);
    let sizes = p.reference.sizes().to_vec();
    let canaries: Vec<Vec<u32>> =
        (0..m).map(|_| sizes.iter().map(|&k| rng.random_range(0..k as u32)).collect()).collect();
    let included: Vec<bool> = (0..m).map(|_| rng.random_bool(0.5)).collect();
    let rows = opts.canary_rows.unwrap_or(p.plan.rows_per_unit() as usize);
    // D' = D plus every included canary (each its own unit).
    let chosen_canaries: Vec<Vec<u32>> =
        canaries.iter().zip(&included).filter(|(_, b)| **b).map(|(c, _)| c.clone()).collect();
    let data: RawTable = with_canaries(&p.plan, &p.d, &chosen_canaries, rows, opts.seed)?;
    let chosen = p.plan.rows(&data, None)?;
    let mut budget = Budget::from_epsilon_delta(opts.epsilon, opts.delta).map_err(Error::Usage)?;
    let fitted = p.plan.fit(&chosen.encoded, &mut budget)?;
    let model = p.plan.model(&fitted, &budget, opts.delta);
    let weight = rows.min(p.plan.rows_per_unit() as usize) as f64;
    let z = scores(&model, &p.reference, &canaries, weight);
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| z[b].total_cmp(&z[a]));
    let grid: Vec<usize> = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5]
        .iter()
        .map(|f| ((f * m as f64 / 2.0).round() as usize).max(1))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let alpha = opts.alpha / grid.len() as f64;
    let mut best = (0.0, 0, 0);
    for &k in &grid {
        let k = k.min(m / 2);
        let right = order[..k].iter().filter(|&&i| included[i]).count()
            + order[m - k..].iter().filter(|&&i| !included[i]).count();
        let e = bounds::one_run_epsilon_lower_bound(m, 2 * k, right, opts.delta, alpha);
        if e > best.0 || best.1 == 0 {
            best = (e, 2 * k, right);
        }
    }
    Ok(OneRun {
        canaries: m,
        included: included.iter().filter(|&&b| b).count(),
        guesses: best.1,
        correct: best.2,
        epsilon: best.0,
        confidence: 1.0 - opts.alpha,
        grid,
    })
}
