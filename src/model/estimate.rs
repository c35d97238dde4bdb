//! Private-PGM estimation: fit the model's potentials so that its marginals agree with the noisy
//! measurements, by mirror descent with an Armijo line search.
//!
//! Loss: L(mu) = sum_i ||w_i * mu_{C_i} - y_i||^2 / (2 sigma_i^2) * sigma_min^2, the negative
//! log-likelihood of Gaussian measurements. We weight by 1/sigma^2 (maximum likelihood); the
//! reference implementation divides by sigma instead, which under-weights precise measurements
//! when noise scales differ. The constant sigma_min^2 only sets the step-size scale (Lipschitz
//! constant 1 in counts, so the first step is 2/N). `w_i` are per-cell query weights (1, or
//! 1/sqrt(k) on a cell that merges k compressed values).

use super::GraphicalModel;
use super::factor::{Factor, index_map};

/// A noisy measurement of a marginal: `y ~ w * mu_attrs + N(0, sigma^2)` per cell.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Measurement {
    /// Attributes, ascending.
    pub attrs: Vec<usize>,
    /// Per-cell query weight; empty means 1 everywhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weights: Vec<f64>,
    pub y: Vec<f64>,
    pub sigma: f64,
}

/// The total N from the measurements of full (unweighted) marginals: each gives sum(y) with
/// variance sigma^2 * cells; take the inverse-variance mean, at least 1. The true row count is
/// never used.
pub fn estimate_total(ms: &[Measurement]) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for m in ms.iter().filter(|m| m.weights.is_empty()) {
        let var = m.sigma * m.sigma * m.y.len() as f64;
        num += m.y.iter().sum::<f64>() / var;
        den += 1.0 / var;
    }
    if den == 0.0 { 1.0 } else { (num / den).max(1.0) }
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Iteration cap. On noisy measurements stopping early regularises: on Adult (MST, 10
    /// seeds) 1,000 iterations fit as well as or better than 3,000 or 10,000 at epsilon 0.3, 1
    /// and 3 (benchmarks/README.md). Stopping at the noise level (Morozov) stopped too early.
    pub max_iters: usize,
    /// Stop when the relative loss improvement over `window` iterations falls below this.
    pub tol: f64,
    /// Iterations over which `tol` is judged.
    pub window: usize,
    /// Also stop when, over the last `window` accepted steps, every measured marginal moved by
    /// at most this fraction of its noise's expected L1 norm (sqrt(2/pi) sigma per cell): the
    /// fit has settled well below what the measurements can tell apart.
    pub settle: Option<f64>,
    /// First step size; `None` starts at 2/N (Lipschitz constant 1 in counts). A warm start
    /// passes the step the previous fit ended with.
    pub step: Option<f64>,
}

impl Default for Options {
    fn default() -> Self {
        Options { max_iters: 1000, tol: 1e-7, window: 50, settle: None, step: None }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub iterations: usize,
    pub loss: f64,
    /// The step size the line search ended with.
    pub step: f64,
}

/// The potentials as a sum over measurements: mirror descent only ever adds a multiple of each
/// measurement's residual (broadcast to its clique) to the potentials, so accumulating those
/// multiples per measurement ("duals", one value per measured cell) represents the fit
/// independently of the junction tree. That lets AIM carry a fit across rounds whose tree
/// changes, at the cost of a few measurement-sized vectors.
#[derive(Debug, Clone, Default)]
pub struct Duals(pub Vec<Vec<f64>>);

impl Duals {
    /// Log-potentials on `model`'s tree: minus the sum of each measurement's dual broadcast to
    /// the clique holding it.
    pub fn potentials(&self, model: &GraphicalModel, ms: &[Measurement]) -> Vec<Factor> {
        let t = &model.tree;
        let mut pot: Vec<Factor> = t.cliques.iter().map(|c| Factor::constant(c, &t.sizes, 0.0)).collect();
        for (m, g) in ms.iter().zip(&self.0) {
            let c =
                t.clique_containing(&m.attrs).expect("every measured set lies in a clique of the tree built from them");
            for (v, &i) in pot[c].values.iter_mut().zip(&index_map(&t.cliques[c], &t.shape(c), &m.attrs)) {
                *v -= g[i as usize];
            }
        }
        pot
    }
}

/// Where each measurement lives in the tree: its clique, and where its marginal is read from
/// (the clique, or a measured superset in the same clique, which is much smaller) through `map`.
struct Placed<'a> {
    index: usize,
    m: &'a Measurement,
    clique: usize,
    source: Option<usize>,
    map: Vec<u32>,
    scale: f64,
}

/// Place the measurements, in an order where every superset comes before the sets read from it.
fn place<'a>(model: &GraphicalModel, ms: &'a [Measurement]) -> Vec<Placed<'a>> {
    let smin = ms.iter().map(|m| m.sigma).fold(f64::INFINITY, f64::min);
    let t = &model.tree;
    let clique: Vec<usize> = ms
        .iter()
        .map(|m| {
            t.clique_containing(&m.attrs).expect("every measured set lies in a clique of the tree built from them")
        })
        .collect();
    let mut order: Vec<usize> = (0..ms.len()).collect();
    order.sort_by_key(|&i| (clique[i], std::cmp::Reverse(ms[i].y.len()), i));
    let mut placed: Vec<Placed> = Vec::with_capacity(ms.len());
    for i in order {
        let m = &ms[i];
        let c = clique[i];
        let source = (0..placed.len())
            .filter(|&j| placed[j].clique == c && m.attrs.iter().all(|a| placed[j].m.attrs.contains(a)))
            .min_by_key(|&j| placed[j].m.y.len());
        let map = match source {
            Some(j) => {
                let sup = &placed[j].m.attrs;
                index_map(sup, &sup.iter().map(|&a| t.sizes[a]).collect::<Vec<_>>(), &m.attrs)
            }
            None => index_map(&t.cliques[c], &t.shape(c), &m.attrs),
        };
        placed.push(Placed { index: i, m, clique: c, source, map, scale: (smin / m.sigma).powi(2) });
    }
    placed
}

/// Loss, gradient (per clique, in counts) at clique marginals `mu`, and each measurement's part
/// of the gradient on its own cells (indexed like the measurements).
fn loss_grad(placed: &[Placed], mu: &[Factor]) -> (f64, Vec<Factor>, Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let mut loss = 0.0;
    let mut margs: Vec<Vec<f64>> = Vec::with_capacity(placed.len());
    let mut parts: Vec<Vec<f64>> = vec![vec![]; placed.len()];
    for p in placed {
        let from: &[f64] = match p.source {
            Some(j) => &margs[j],
            None => &mu[p.clique].values,
        };
        let mut marg = vec![0.0; p.m.y.len()];
        for (v, &i) in from.iter().zip(&p.map) {
            marg[i as usize] += v;
        }
        let w = |i: usize| if p.m.weights.is_empty() { 1.0 } else { p.m.weights[i] };
        let mut g = vec![0.0; marg.len()];
        for i in 0..marg.len() {
            let r = w(i) * marg[i] - p.m.y[i];
            loss += 0.5 * p.scale * r * r;
            g[i] = p.scale * w(i) * r;
        }
        parts[p.index] = g;
        margs.push(marg);
    }
    // Push gradients up: subsets into their sources (later entries first), then into cliques.
    let mut grad: Vec<Factor> =
        mu.iter().map(|f| Factor::new(f.attrs.clone(), f.shape.clone(), vec![0.0; f.size()])).collect();
    let mut tot: Vec<Vec<f64>> = placed.iter().map(|p| parts[p.index].clone()).collect();
    for k in (0..placed.len()).rev() {
        let p = &placed[k];
        let g = std::mem::take(&mut tot[k]);
        let into: &mut [f64] = match p.source {
            Some(j) => &mut tot[j],
            None => &mut grad[p.clique].values,
        };
        for (v, &i) in into.iter_mut().zip(&p.map) {
            *v += g[i as usize];
        }
    }
    (loss, grad, parts, margs)
}

/// Fit `model`'s potentials to the measurements (warm start: the current potentials).
pub fn mirror_descent(model: &mut GraphicalModel, ms: &[Measurement], opts: Options) -> Stats {
    mirror_descent_dual(model, ms, &mut Duals::default(), opts)
}

/// Mirror descent that also accumulates each measurement's share of the potentials in `duals`
/// (extended with zeros for measurements it has not seen). With `model`'s potentials set from
/// `duals`, this continues an earlier fit exactly, even on a different tree.
pub fn mirror_descent_dual(model: &mut GraphicalModel, ms: &[Measurement], duals: &mut Duals, opts: Options) -> Stats {
    let placed = place(model, ms);
    duals.0.truncate(ms.len());
    for m in &ms[duals.0.len()..] {
        duals.0.push(vec![0.0; m.y.len()]);
    }
    let eval = |m: &GraphicalModel| -> (Vec<Factor>, f64, Vec<Factor>, Vec<Vec<f64>>, Vec<Vec<f64>>) {
        let mu = m.clique_marginals();
        let (l, g, parts, margs) = loss_grad(&placed, &mu);
        (mu, l, g, parts, margs)
    };
    // The settling yardstick of each measurement: the expected L1 norm of its noise, in the
    // units of the model's marginal (sigma / w per cell).
    let yardstick: Vec<f64> = placed
        .iter()
        .map(|p| {
            (2.0 / std::f64::consts::PI).sqrt()
                * p.m.sigma
                * if p.m.weights.is_empty() { p.m.y.len() as f64 } else { p.m.weights.iter().map(|w| 1.0 / w).sum() }
        })
        .collect();
    let (mut mu, mut loss, mut grad, mut parts, mut margs) = eval(model);
    let mut checked = margs.clone();
    // A warm step is kept unless it collapsed (a converged fit ends on failed line searches);
    // below 1/64 of the Lipschitz step 2/N it only slows the next fit down.
    let safe = 2.0 / model.total;
    let mut alpha = opts.step.map_or(safe, |s| s.max(safe / 64.0));
    let mut history = vec![loss];
    let mut iterations = 0;
    let mut trial = model.clone();
    while iterations < opts.max_iters {
        iterations += 1;
        for ((t, p), g) in trial.potentials.iter_mut().zip(&model.potentials).zip(&grad) {
            for ((tv, pv), gv) in t.values.iter_mut().zip(&p.values).zip(&g.values) {
                *tv = pv - alpha * gv;
            }
        }
        let (mu_new, loss_new, grad_new, parts_new, margs_new) = eval(&trial);
        let dot: f64 = grad
            .iter()
            .zip(&mu)
            .zip(&mu_new)
            .map(|((g, a), b)| {
                g.values.iter().zip(&a.values).zip(&b.values).map(|((g, a), b)| g * (a - b)).sum::<f64>()
            })
            .sum();
        if loss - loss_new >= 0.5 * alpha * dot {
            std::mem::swap(&mut model.potentials, &mut trial.potentials);
            for (d, g) in duals.0.iter_mut().zip(&parts) {
                d.iter_mut().zip(g).for_each(|(d, g)| *d += alpha * g);
            }
            (mu, loss, grad, parts, margs) = (mu_new, loss_new, grad_new, parts_new, margs_new);
            alpha *= 1.01;
            history.push(loss);
            let n = history.len();
            let w = opts.window.max(1);
            if n > w && history[n - 1 - w] - loss <= opts.tol * history[n - 1 - w].abs().max(1e-300) {
                break;
            }
            if let Some(f) = opts.settle.filter(|_| (n - 1) % w == 0) {
                let settled = margs
                    .iter()
                    .zip(&checked)
                    .zip(&yardstick)
                    .all(|((a, b), y)| a.iter().zip(b).map(|(x, z)| (x - z).abs()).sum::<f64>() <= f * y);
                if settled {
                    break;
                }
                checked.clone_from(&margs);
            }
        } else {
            alpha *= 0.5;
            // No step improves the loss in floating point: converged.
            if alpha < safe * 1e-9 {
                break;
            }
        }
    }
    Stats { iterations, loss, step: alpha }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::JunctionTree;

    #[test]
    fn recovers_consistent_marginals_when_noise_is_tiny() {
        // A chain 0-1-2 with known pairwise counts from a real joint.
        let sizes = [2, 3, 2];
        let joint = [5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0, 55.0, 60.0]; // 2x3x2
        let j = Factor::new(vec![0, 1, 2], vec![2, 3, 2], joint.to_vec());
        let m01 = j.sum_to(&[0, 1]);
        let m12 = j.sum_to(&[1, 2]);
        let m0 = j.sum_to(&[0]);
        let ms = vec![
            Measurement { attrs: vec![0, 1], weights: vec![], y: m01.values.clone(), sigma: 1e-3 },
            Measurement { attrs: vec![1, 2], weights: vec![], y: m12.values.clone(), sigma: 1e-3 },
            Measurement { attrs: vec![0], weights: vec![], y: m0.values.clone(), sigma: 1e-3 },
        ];
        let total = estimate_total(&ms);
        assert!((total - 390.0).abs() < 1e-6);
        let tree = JunctionTree::build(&sizes, &ms.iter().map(|m| m.attrs.clone()).collect::<Vec<_>>());
        let mut model = GraphicalModel::uniform(tree, total);
        let stats = mirror_descent(&mut model, &ms, Options { max_iters: 5000, tol: 1e-12, ..Default::default() });
        let b = model.calibrate();
        for (want, attrs) in [(&m01, vec![0, 1]), (&m12, vec![1, 2])] {
            let got = model.marginal(&b, &attrs);
            for (x, y) in want.values.iter().zip(&got.values) {
                assert!((x - y).abs() < 0.05, "{attrs:?}: {x} vs {y} after {stats:?}");
            }
        }
    }

    #[test]
    fn weighted_measurements_and_warm_start() {
        // One attribute with 3 values; a compressed-style measurement of cells {0} and {1,2}
        // merged with weight 1/sqrt(2).
        let sizes = [3];
        let w = 1.0 / 2f64.sqrt();
        let ms = vec![
            Measurement { attrs: vec![0], weights: vec![], y: vec![50.0, 30.0, 20.0], sigma: 1.0 },
            Measurement { attrs: vec![0], weights: vec![1.0, w, w], y: vec![50.0, 30.0 * w, 20.0 * w], sigma: 1.0 },
        ];
        let tree = JunctionTree::build(&sizes, &[vec![0]]);
        let mut model = GraphicalModel::uniform(tree, 100.0);
        let first = mirror_descent(&mut model, &ms, Options::default());
        let again = mirror_descent(&mut model, &ms, Options::default());
        assert!(again.iterations < first.iterations, "warm start converges faster: {first:?} then {again:?}");
        let b = model.calibrate();
        let m = model.marginal(&b, &[0]);
        for (x, y) in m.values.iter().zip([50.0, 30.0, 20.0]) {
            assert!((x - y).abs() < 0.1, "{:?}", m.values);
        }
    }

    #[test]
    fn duals_carry_a_fit_to_another_tree() {
        // Fit on a chain, then rebuild the potentials from the duals on the tree of a larger
        // model (one more set): the distribution must be the same.
        let sizes = [2, 3, 2, 2];
        let ms = vec![
            Measurement { attrs: vec![0, 1], weights: vec![], y: vec![10.0, 20.0, 5.0, 7.0, 30.0, 8.0], sigma: 2.0 },
            Measurement { attrs: vec![1, 2], weights: vec![], y: vec![9.0, 8.0, 40.0, 10.0, 6.0, 7.0], sigma: 1.0 },
            Measurement { attrs: vec![3], weights: vec![], y: vec![50.0, 30.0], sigma: 3.0 },
        ];
        let sets: Vec<Vec<usize>> = ms.iter().map(|m| m.attrs.clone()).collect();
        let mut model = GraphicalModel::uniform(JunctionTree::build(&sizes, &sets), 80.0);
        let mut duals = Duals::default();
        mirror_descent_dual(&mut model, &ms, &mut duals, Options { max_iters: 200, ..Default::default() });
        assert_eq!(duals.0.len(), 3);
        let again = duals.potentials(&model, &ms);
        for (a, b) in again.iter().zip(&model.potentials) {
            for (x, y) in a.values.iter().zip(&b.values) {
                assert!((x - y).abs() < 1e-9, "same tree: {x} vs {y}");
            }
        }
        let bigger: Vec<Vec<usize>> = sets.iter().cloned().chain([vec![0, 2, 3]]).collect();
        let mut other = GraphicalModel::uniform(JunctionTree::build(&sizes, &bigger), 80.0);
        other.potentials = duals.potentials(&other, &ms);
        let (b1, b2) = (model.calibrate(), other.calibrate());
        for q in [vec![0, 1], vec![1, 2], vec![3], vec![0, 2, 3]] {
            let (x, y) = (model.marginal(&b1, &q), other.marginal(&b2, &q));
            for (x, y) in x.values.iter().zip(&y.values) {
                assert!((x - y).abs() < 1e-8, "{q:?}: {x} vs {y}");
            }
        }
    }
}

#[cfg(test)]
mod grad_check {
    use super::*;
    use crate::model::JunctionTree;

    #[test]
    fn gradient_matches_finite_differences() {
        let sizes = [3, 3, 3, 2];
        let ms = vec![
            Measurement { attrs: vec![0], weights: vec![], y: vec![5.0, 7.0, 9.0], sigma: 2.0 },
            Measurement { attrs: vec![3], weights: vec![], y: vec![5.0, 7.0], sigma: 2.0 },
            Measurement { attrs: vec![0, 1, 2], weights: vec![], y: (0..27).map(|i| i as f64).collect(), sigma: 1.0 },
            Measurement { attrs: vec![1, 2], weights: vec![], y: (0..9).map(|i| 2.0 * i as f64).collect(), sigma: 1.5 },
            Measurement {
                attrs: vec![0, 1, 2],
                weights: vec![],
                y: (0..27).map(|i| 30.0 - i as f64).collect(),
                sigma: 0.5,
            },
            Measurement { attrs: vec![2], weights: vec![], y: vec![1.0, 2.0, 3.0], sigma: 1.0 },
        ];
        let tree = JunctionTree::build(&sizes, &ms.iter().map(|m| m.attrs.clone()).collect::<Vec<_>>());
        let model = GraphicalModel::uniform(tree, 100.0);
        let placed = place(&model, &ms);
        let mu: Vec<Factor> = model.clique_marginals();
        let (l0, g, _, _) = loss_grad(&placed, &mu);
        for c in 0..mu.len() {
            for cell in 0..mu[c].size() {
                let mut m2 = mu.clone();
                m2[c].values[cell] += 1e-4;
                let (l1, _, _, _) = loss_grad(&placed, &m2);
                let fd = (l1 - l0) / 1e-4;
                assert!(
                    (fd - g[c].values[cell]).abs() < 1e-3 * (1.0 + fd.abs()),
                    "clique {c} cell {cell}: {fd} vs {}",
                    g[c].values[cell]
                );
            }
        }
    }
}
