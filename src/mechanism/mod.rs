//! Mechanisms that select and measure marginals under the budget, then estimate a model from
//! them: [`mst`] (a spanning tree of pairs) and [`aim`] (workload-adaptive rounds). Both return
//! a [`Fit`], whose every part is a DP release or post-processing of one.

pub mod aim;
pub mod mst;

use privsynth_privacy::{Cost, Released};
use rand::Rng;
use rand::RngExt;

use crate::codec::TableCodec;
use crate::model::GraphicalModel;
use crate::model::estimate::{self, Measurement};
use crate::model::file::{self, ModelFile};
use crate::schema::Table;

/// Which mechanism to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Aim,
    Mst,
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Aim => "aim",
            Mechanism::Mst => "mst",
        }
    }
}

/// A fitted model and what it was fitted from.
pub struct Fit {
    pub mechanism: Mechanism,
    /// The contribution bound of the rows it was fitted on (every sensitivity scaled by it).
    pub bound: privsynth_privacy::bounding::ContributionBound,
    /// Per attribute: for each (compressed) code, the original codes it stands for. Identity
    /// when the mechanism does not compress.
    pub compression: Vec<Vec<Vec<u32>>>,
    /// Per attribute and compressed code, the share of each original code it stands for (from
    /// the one-way releases; see [`expansion`]). Empty: uniform.
    pub expansion: Vec<Vec<Vec<f64>>>,
    /// Measurements on the (compressed) domain, as released.
    pub measurements: Vec<Released<Measurement>>,
    /// The attribute sets the mechanism selected (MST's tree edges; AIM's rounds in order).
    pub selected: Vec<Vec<usize>>,
    pub model: GraphicalModel,
    pub stats: estimate::Stats,
}

impl Fit {
    /// Package the fit as a model file: the public table, the codec's columns and domain sizes,
    /// the released measurements and what they cost (`charges`, and `spent` as (epsilon,
    /// delta)).
    pub fn model_file(&self, table: &Table, codec: &TableCodec, charges: &[Cost], spent: (f64, f64)) -> ModelFile {
        let measurements: Vec<Measurement> = self.measurements.iter().map(Released::value).cloned().collect();
        ModelFile {
            format: file::FORMAT.into(),
            version: file::VERSION,
            tool: concat!("privsynth ", env!("CARGO_PKG_VERSION")).into(),
            mechanism: self.mechanism.name().into(),
            table: table.clone(),
            columns: codec.names(),
            sizes: codec.sizes(),
            compression: self.compression.clone(),
            expansion: self.expansion.clone(),
            measurements,
            structure: self.selected.clone(),
            cliques: self.model.tree.cliques.clone(),
            potentials: self.model.potentials.iter().map(|p| p.values.clone()).collect(),
            total: self.model.total,
            privacy: file::Privacy {
                epsilon: spent.0,
                delta: spent.1,
                rho: charges.iter().map(|c| c.rho).sum(),
                releases: charges.to_vec(),
                unit: None,
                rows_per_unit: self.bound.rows_per_unit(),
                outside_guarantee: vec![],
                schema_inference: None,
                with_schema_inference: None,
            },
        }
    }

    /// Number of measured marginals of each order (index 0: one-way).
    pub fn measured_by_order(&self) -> Vec<usize> {
        let mut n = vec![];
        for m in &self.measurements {
            let k = m.value().attrs.len();
            if n.len() < k {
                n.resize(k, 0);
            }
            n[k - 1] += 1;
        }
        n
    }
}

/// Undo domain compression: a merged code becomes one of its original codes, drawn in
/// proportion to `shares` (per attribute, per compressed code, per original code: [`expansion`];
/// where missing or empty, uniformly, as MST's reference implementation does).
pub fn expand(
    compression: &[Vec<Vec<u32>>],
    shares: &[Vec<Vec<f64>>],
    codes: Vec<Vec<u32>>,
    rng: &mut impl Rng,
) -> Vec<Vec<u32>> {
    codes
        .into_iter()
        .zip(compression)
        .enumerate()
        .map(|(a, (col, groups))| {
            if groups.iter().all(|g| g.len() == 1) {
                return col.into_iter().map(|c| groups[c as usize][0]).collect();
            }
            // Cumulative shares per group, for an inverse-CDF draw.
            let cum: Vec<Option<Vec<f64>>> = groups
                .iter()
                .enumerate()
                .map(|(g, members)| {
                    let w = shares.get(a).and_then(|s| s.get(g)).filter(|w| w.len() == members.len())?;
                    let total: f64 = w.iter().map(|x| x.max(0.0)).sum();
                    (total > 0.0 && total.is_finite()).then(|| {
                        let mut acc = 0.0;
                        w.iter()
                            .map(|x| {
                                acc += x.max(0.0) / total;
                                acc
                            })
                            .collect()
                    })
                })
                .collect();
            col.into_iter()
                .map(|c| {
                    let g = &groups[c as usize];
                    if g.len() == 1 {
                        return g[0];
                    }
                    match &cum[c as usize] {
                        Some(cum) => {
                            let u: f64 = rng.random();
                            g[cum.iter().position(|&x| u < x).unwrap_or(g.len() - 1)]
                        }
                        None => g[rng.random_range(0..g.len())],
                    }
                })
                .collect()
        })
        .collect()
}

/// Shares for [`expand`] from the one-way releases (post-processing of released values): within
/// a merged group of k values, the noisy counts shrunk toward the group's mean by the
/// positive-part James-Stein factor (Efron-Morris, for shrinking toward an estimated mean:
/// 1 - (k - 3) sigma^2 / sum (y - mean)^2, at least 0), clipped at zero. Where the counts vary
/// no more than their noise, the shares are uniform (as MST's reference expands); where the
/// group carries signal (Adult's tails of age, hours, capital gain), they follow it. Empty
/// (uniform) where no shrunk count is positive.
///
/// Why not the clipped counts themselves: on a column whose values all drown in the noise
/// (126 birth years over 111 records) they spread the mass on noise spikes, TVD 0.60 against
/// uniform's 0.40 in a simulation at sigma 10; shrinkage stays near uniform there (0.45) and
/// keeps three quarters of their gain on coded Adult's merged tails (benchmarks/README.md).
pub fn expansion(one_way: &[Released<Measurement>], compression: &[Vec<Vec<u32>>]) -> Vec<Vec<Vec<f64>>> {
    one_way
        .iter()
        .zip(compression)
        .map(|(m, groups)| {
            let (y, sigma) = (&m.value().y, m.value().sigma);
            groups
                .iter()
                .map(|g| {
                    if g.len() == 1 {
                        return vec![];
                    }
                    let ys: Vec<f64> = g.iter().map(|&o| y.get(o as usize).copied().unwrap_or(0.0)).collect();
                    shrunk_shares(&ys, sigma)
                })
                .collect()
        })
        .collect()
}

/// The James-Stein shares of one merged group's noisy counts `y` (noise scale `sigma`); empty
/// when none is positive.
fn shrunk_shares(y: &[f64], sigma: f64) -> Vec<f64> {
    let k = y.len() as f64;
    let mean = y.iter().sum::<f64>() / k;
    let spread: f64 = y.iter().map(|v| (v - mean) * (v - mean)).sum();
    let keep = if spread > 0.0 { (1.0 - (k - 3.0).max(0.0) * sigma * sigma / spread).max(0.0) } else { 0.0 };
    let w: Vec<f64> = y.iter().map(|v| (mean + keep * (v - mean)).max(0.0)).collect();
    let total: f64 = w.iter().sum();
    if total > 0.0 && total.is_finite() { w } else { vec![] }
}

/// MST's domain compression, as post-processing of one-way releases: per attribute, the values
/// whose noisy count is at least `3 sigma` are kept, the others merged into one rare value
/// (when more than one). Returns per attribute the groups (compressed code -> original codes)
/// and the map (original code -> compressed code), and the one-way measurements on the
/// compressed domain: a merged cell is the sum of its k noisy cells over sqrt(k), with query
/// weight 1/sqrt(k), so its noise stays that of one cell.
pub(crate) fn compress(
    one_way: &[Released<Measurement>],
) -> (Vec<Vec<Vec<u32>>>, Vec<Vec<u32>>, Vec<Released<Measurement>>) {
    let mut compression = Vec::with_capacity(one_way.len());
    let mut maps = Vec::with_capacity(one_way.len());
    let mut measurements = Vec::with_capacity(one_way.len());
    for m in one_way {
        let (y, s1) = (&m.value().y, m.value().sigma);
        let keep: Vec<u32> = (0..y.len() as u32).filter(|&i| y[i as usize] >= 3.0 * s1).collect();
        let rare: Vec<u32> = (0..y.len() as u32).filter(|&i| y[i as usize] < 3.0 * s1).collect();
        let mut groups: Vec<Vec<u32>> = keep.iter().map(|&i| vec![i]).collect();
        if !rare.is_empty() {
            groups.push(rare.clone());
        }
        let mut map = vec![0u32; y.len()];
        for (g, members) in groups.iter().enumerate() {
            for &o in members {
                map[o as usize] = g as u32;
            }
        }
        let merged = rare.len() > 1;
        let groups_for_m = groups.clone();
        measurements.push(m.clone().map(move |m| {
            let mut ys = Vec::with_capacity(groups_for_m.len());
            let mut ws = Vec::with_capacity(groups_for_m.len());
            for g in &groups_for_m {
                let k = g.len() as f64;
                ys.push(g.iter().map(|&o| m.y[o as usize]).sum::<f64>() / k.sqrt());
                ws.push(1.0 / k.sqrt());
            }
            Measurement { attrs: m.attrs, weights: if merged { ws } else { vec![] }, y: ys, sigma: m.sigma }
        }));
        compression.push(groups);
        maps.push(map);
    }
    (compression, maps, measurements)
}

/// The identity compression for the given domain sizes.
pub fn no_compression(sizes: &[usize]) -> Vec<Vec<Vec<u32>>> {
    sizes.iter().map(|&k| (0..k as u32).map(|c| vec![c]).collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// A merged group whose counts vary far more than their noise keeps them (James-Stein
    /// keeps nearly all the spread), negative ones clipped; one whose counts vary like the noise
    /// alone is expanded uniformly.
    #[test]
    fn shares_follow_counts_with_signal_and_stay_uniform_on_noise() {
        let y = [120.0, 0.0, 60.0, -3.0, 30.0, 2.0];
        let w = shrunk_shares(&y, 1.0);
        let mean = y.iter().sum::<f64>() / 6.0;
        let spread: f64 = y.iter().map(|v| (v - mean) * (v - mean)).sum();
        let keep = 1.0 - 3.0 / spread;
        assert!(keep > 0.99, "{keep}");
        for (s, v) in w.iter().zip(&y) {
            assert!((s - (mean + keep * (v - mean)).max(0.0)).abs() < 1e-12, "{w:?}");
        }
        assert_eq!(w[3], 0.0, "a negative count gets no share: {w:?}");
        // Counts spread like noise of scale 10 (squares summing to 350 over 8 values, below
        // (8 - 3) * 100): no shrunk count differs from the mean, uniform.
        let noise = [10.0, -5.0, 5.0, -10.0, 5.0, -5.0, 5.0, -5.0];
        let w = shrunk_shares(&noise.map(|v| v + 20.0), 10.0);
        assert!(w.iter().all(|s| (s - 20.0).abs() < 1e-12), "{w:?}");
        // No positive count at all: no shares (uniform).
        assert!(shrunk_shares(&[-4.0, -1.0, -7.0, -2.0], 1.0).is_empty());
        // Two or three values: no shrinkage (k - 3 <= 0), the clipped counts.
        assert_eq!(shrunk_shares(&[9.0, -1.0, 3.0], 100.0), vec![9.0, 0.0, 3.0]);
    }

    /// `expand` draws a merged code's originals in proportion to the shares, uniformly without
    /// them, and never draws an original with share zero. 40,000 draws: a proportion's standard
    /// error is at most 0.0025, the tolerance 0.015 six of them (false failure < 1e-8).
    #[test]
    fn expand_draws_in_proportion_to_the_shares() {
        let compression = vec![vec![vec![0], vec![1, 2, 3]], vec![vec![0], vec![1, 2, 3]]];
        let shares = vec![vec![vec![], vec![3.0, 1.0, 0.0]], vec![]];
        let n = 40_000;
        let codes = vec![vec![1u32; n], vec![1u32; n]];
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let out = expand(&compression, &shares, codes, &mut rng);
        let freq = |col: &[u32], v: u32| col.iter().filter(|&&c| c == v).count() as f64 / n as f64;
        for (col, want) in [(0, [0.75, 0.25, 0.0]), (1, [1.0 / 3.0; 3])] {
            for (v, p) in [1u32, 2, 3].into_iter().zip(want) {
                let got = freq(&out[col], v);
                assert!((got - p).abs() < 0.015, "column {col} value {v}: {got} against {p}");
            }
        }
        assert_eq!(freq(&out[0], 3), 0.0);
        // Unmerged codes map to their original.
        let out = expand(&compression, &shares, vec![vec![0; 5], vec![0; 5]], &mut rng);
        assert!(out.iter().all(|c| c.iter().all(|&v| v == 0)));
    }
}
