//! Drawing records from a fitted model.
//!
//! Columns are generated in reverse elimination order of the junction tree. Each column is
//! conditioned on the already generated attributes of its *elimination clique* (a subset of a
//! junction-tree maximal clique), which makes the draw exact for the model. Within each group
//! of rows sharing those parent values, the expected counts of the column's values are rounded
//! randomly (floors plus remainders drawn without replacement in proportion to the fractional
//! parts) and the resulting values are shuffled afresh for that column and group.
//!
//! This avoids both sampling bugs of mbi 1.1.x: conditioning on measurement cliques instead of
//! junction-tree cliques (separator attributes drawn independently), and reusing one rank per
//! group for sibling columns (conditionally independent siblings made comonotone).

use rand::Rng;
use rand::RngExt;
use rand::seq::SliceRandom;

use super::GraphicalModel;
use super::factor::index_map;

/// Randomised rounding of non-negative expected counts `e` (summing to `n`) to integers that sum
/// to exactly `n`.
pub fn round_counts(e: &[f64], n: usize, rng: &mut impl Rng) -> Vec<usize> {
    let total: f64 = e.iter().sum();
    let scaled: Vec<f64> = if total > 0.0 {
        e.iter().map(|x| x.max(0.0) * n as f64 / total).collect()
    } else {
        vec![n as f64 / e.len() as f64; e.len()]
    };
    let mut out: Vec<usize> = scaled.iter().map(|x| x.floor() as usize).collect();
    let mut left = n.saturating_sub(out.iter().sum());
    let mut frac: Vec<f64> = scaled.iter().zip(&out).map(|(x, f)| x - *f as f64).collect();
    while left > 0 {
        let sum: f64 = frac.iter().sum();
        let i = if sum > 0.0 {
            let mut u = rng.random::<f64>() * sum;
            let mut pick = frac.len() - 1;
            for (j, f) in frac.iter().enumerate() {
                if u < *f {
                    pick = j;
                    break;
                }
                u -= f;
            }
            pick
        } else {
            rng.random_range(0..out.len())
        };
        out[i] += 1;
        frac[i] = 0.0;
        left -= 1;
    }
    out
}

/// A model prepared for drawing: the conditional table of every column given its parents,
/// computed once (calibration included), so that records can be drawn in many batches.
pub struct Sampler {
    sizes: Vec<usize>,
    /// In drawing order: (column, parents, conditional table of `n_configs x k`).
    steps: Vec<(usize, Vec<usize>, Vec<f64>)>,
}

impl Sampler {
    pub fn new(model: &GraphicalModel) -> Sampler {
        let t = &model.tree;
        let beliefs = model.calibrate();
        let mut steps = Vec::with_capacity(t.sizes.len());
        for &v in t.order.iter().rev() {
            let clique = &t.elim_clique[v];
            let parents: Vec<usize> = clique.iter().copied().filter(|&a| a != v).collect();
            // Joint of (parents, v) from the calibrated clique that contains it.
            let c = t.clique_containing(clique).expect("an elimination clique lies in a maximal clique");
            let joint = beliefs.0[c].sum_to(clique);
            let k = t.sizes[v];
            // Cells of `joint` are over `clique` ascending; find v's position to read conditionals.
            let parent_map = index_map(&joint.attrs, &joint.shape, &parents);
            let v_map = index_map(&joint.attrs, &joint.shape, &[v]);
            let n_configs: usize = parents.iter().map(|&a| t.sizes[a]).product();
            let mut cond = vec![0.0; n_configs * k];
            for ((p, &pi), &vi) in joint.values.iter().zip(&parent_map).zip(&v_map) {
                cond[pi as usize * k + vi as usize] += p;
            }
            steps.push((v, parents, cond));
        }
        Sampler { sizes: t.sizes.clone(), steps }
    }

    /// Cells of its conditional tables (what holding it costs, 8 bytes a cell).
    pub fn cells(&self) -> usize {
        self.steps.iter().map(|s| s.2.len()).sum()
    }

    /// Draw `rows` records: one code vector per attribute.
    pub fn draw(&self, rows: usize, rng: &mut impl Rng) -> Vec<Vec<u32>> {
        let mut codes: Vec<Vec<u32>> = vec![vec![]; self.sizes.len()];
        for (v, parents, cond) in &self.steps {
            let k = self.sizes[*v];
            let n_configs = cond.len() / k.max(1);
            // Group rows by parent configuration.
            let config: Vec<usize> = if parents.is_empty() {
                vec![0; rows]
            } else {
                let mut idx = vec![0usize; rows];
                let mut stride = 1;
                for &a in parents.iter().rev() {
                    for (i, &c) in idx.iter_mut().zip(&codes[a]) {
                        *i += c as usize * stride;
                    }
                    stride *= self.sizes[a];
                }
                idx
            };
            let mut groups: Vec<Vec<usize>> = vec![vec![]; n_configs];
            for (r, &g) in config.iter().enumerate() {
                groups[g].push(r);
            }
            let mut col = vec![0u32; rows];
            for (g, members) in groups.iter().enumerate() {
                if members.is_empty() {
                    continue;
                }
                let counts = round_counts(&cond[g * k..(g + 1) * k], members.len(), rng);
                let mut values: Vec<u32> =
                    counts.iter().enumerate().flat_map(|(x, &n)| std::iter::repeat_n(x as u32, n)).collect();
                values.shuffle(rng);
                for (&r, &x) in members.iter().zip(&values) {
                    col[r] = x;
                }
            }
            codes[*v] = col;
        }
        codes
    }
}

/// Draw `rows` records: one code vector per attribute.
pub fn sample(model: &GraphicalModel, rows: usize, rng: &mut impl Rng) -> Vec<Vec<u32>> {
    Sampler::new(model).draw(rows, rng)
}

/// Records per batch when a table is sampled and written in batches: memory is that of one
/// batch (about 10 bytes a cell), whatever the number of rows requested.
pub const BATCH_ROWS: usize = 1 << 18;

/// Most records one sampling run draws, and most cells (records x columns), when the records
/// are held in memory together (the LLM stage works on the whole table); sampled and written
/// in batches ([`BATCH_ROWS`]), a run has no such limit.
pub const MAX_ROWS: usize = 1_000_000_000;
pub const MAX_CELLS: usize = 2_000_000_000;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::JunctionTree;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use statrs::distribution::{ChiSquared, ContinuousCDF};

    fn empirical(codes: &[Vec<u32>], attrs: &[usize], sizes: &[usize]) -> Vec<f64> {
        let shape: Vec<usize> = attrs.iter().map(|&a| sizes[a]).collect();
        let mut out = vec![0.0; shape.iter().product()];
        for r in 0..codes[0].len() {
            let mut i = 0;
            for (&a, &s) in attrs.iter().zip(&shape) {
                i = i * s + codes[a][r] as usize;
            }
            out[i] += 1.0;
        }
        out
    }

    #[test]
    fn rounding_is_exact_and_unbiased() {
        let mut rng = StdRng::seed_from_u64(3);
        let e = [0.5, 1.25, 2.25];
        let mut sum = [0.0; 3];
        for _ in 0..20_000 {
            let r = round_counts(&e, 4, &mut rng);
            assert_eq!(r.iter().sum::<usize>(), 4);
            for (s, x) in sum.iter_mut().zip(&r) {
                *s += *x as f64 / 20_000.0;
            }
        }
        for (s, x) in sum.iter().zip(e) {
            assert!((s - x).abs() < 0.02, "{sum:?}");
        }
    }

    /// Samples reproduce the model's marginals within sampling error (chi-square), including
    /// pairs that share no clique, and siblings are not made comonotone.
    #[test]
    fn samples_follow_the_model() {
        // Star: 0 is the parent of 1, 2, 3 (siblings); 3-4 a chain.
        let sizes = vec![3, 4, 4, 3, 5];
        let sets = vec![vec![0, 1], vec![0, 2], vec![0, 3], vec![3, 4]];
        let tree = JunctionTree::build(&sizes, &sets);
        let mut m = GraphicalModel::uniform(tree, 1.0);
        let mut rng = StdRng::seed_from_u64(9);
        for p in &mut m.potentials {
            p.values.iter_mut().for_each(|v| *v = rng.random_range(-1.5..1.5));
        }
        let n = 40_000;
        let codes = sample(&m, n, &mut rng);
        let b = m.calibrate();
        // Chi-square goodness of fit for several marginals; Bonferroni over them.
        let queries = [vec![0, 1], vec![1, 2], vec![2, 3], vec![1, 4], vec![0, 2, 3]];
        for q in &queries {
            let p = m.marginal(&b, q);
            let obs = empirical(&codes, q, &sizes);
            let chi2: f64 =
                obs.iter().zip(&p.values).map(|(o, pe)| (o - pe * n as f64).powi(2) / (pe * n as f64)).sum();
            let dof = (p.size() - 1) as f64;
            let crit = ChiSquared::new(dof).unwrap().inverse_cdf(1.0 - 1e-4 / queries.len() as f64);
            assert!(chi2 < crit, "marginal {q:?}: chi2 {chi2:.1} >= {crit:.1}");
        }
    }
}
