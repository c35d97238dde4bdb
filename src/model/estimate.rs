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
use super::factor::{Factor, Proj};

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
    /// Heavy-ball momentum on the duals (0: plain mirror descent). A step with momentum is kept
    /// only if it lowers the loss; otherwise the momentum restarts from zero.
    pub momentum: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options { max_iters: 1000, tol: 1e-7, window: 50, settle: None, step: None, momentum: 0.0 }
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
/// changes, at the cost of a few measurement-sized vectors; and mirror descent itself needs no
/// copy of the potentials besides the one belief propagation works in.
#[derive(Debug, Clone, Default)]
pub struct Duals(pub Vec<Vec<f64>>);

impl Duals {
    /// Log-potentials on `model`'s tree: minus the sum of each measurement's dual broadcast to
    /// the clique holding it.
    pub fn potentials(&self, model: &GraphicalModel, ms: &[Measurement]) -> Vec<Factor> {
        let t = &model.tree;
        let placed = place(model, ms);
        let mut pot: Vec<Factor> = t.cliques.iter().map(|c| Factor::constant(c, &t.sizes, 0.0)).collect();
        let vals =
            placed.iter().map(|p| self.0.get(p.index).cloned().unwrap_or_else(|| vec![0.0; p.m.y.len()])).collect();
        broadcast(&placed, vals, &mut pot, -1.0);
        pot
    }
}

/// Where each measurement lives in the tree: its clique, and where its marginal is read from
/// (the clique, or a measured superset in the same clique, which is much smaller) through `proj`.
struct Placed<'a> {
    index: usize,
    m: &'a Measurement,
    clique: usize,
    source: Option<usize>,
    proj: Proj,
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
        let proj = match source {
            Some(j) => {
                let sup = &placed[j].m.attrs;
                Proj::new(sup, &sup.iter().map(|&a| t.sizes[a]).collect::<Vec<_>>(), &m.attrs)
            }
            None => Proj::new(&t.cliques[c], &t.shape(c), &m.attrs),
        };
        placed.push(Placed { index: i, m, clique: c, source, proj, scale: (smin / m.sigma).powi(2) });
    }
    placed
}

/// Each measurement's marginal (placement order) of the clique values `mu` times `scale`.
fn marginals(placed: &[Placed], mu: &[Factor], scale: f64) -> Vec<Vec<f64>> {
    let mut margs: Vec<Vec<f64>> = Vec::with_capacity(placed.len());
    for p in placed {
        let mut marg = vec![0.0; p.m.y.len()];
        match p.source {
            Some(j) => p.proj.sum_into(&margs[j], &mut marg),
            None => {
                p.proj.sum_into(&mu[p.clique].values, &mut marg);
                marg.iter_mut().for_each(|v| *v *= scale);
            }
        }
        margs.push(marg);
    }
    margs
}

/// The loss at the measurements' marginals, and each measurement's gradient on its own cells
/// (in counts, placement order).
fn loss_parts(placed: &[Placed], margs: &[Vec<f64>]) -> (f64, Vec<Vec<f64>>) {
    let mut loss = 0.0;
    let parts = placed
        .iter()
        .zip(margs)
        .map(|(p, marg)| {
            let w = |i: usize| if p.m.weights.is_empty() { 1.0 } else { p.m.weights[i] };
            (0..marg.len())
                .map(|i| {
                    let r = w(i) * marg[i] - p.m.y[i];
                    loss += 0.5 * p.scale * r * r;
                    p.scale * w(i) * r
                })
                .collect()
        })
        .collect();
    (loss, parts)
}

/// Add `sign` times each measurement's `vals` (placement order), broadcast to its clique, to
/// `out`. Nested measurements are folded into their sources first, so each clique is walked once
/// per measurement that is not inside another of the same clique.
fn broadcast(placed: &[Placed], vals: Vec<Vec<f64>>, out: &mut [Factor], sign: f64) {
    let mut tot = vals;
    for k in (0..placed.len()).rev() {
        let p = &placed[k];
        let g = std::mem::take(&mut tot[k]);
        match p.source {
            Some(j) => p.proj.add_from(&mut tot[j], &g, 1.0),
            None => p.proj.add_from(&mut out[p.clique].values, &g, sign),
        }
    }
}

/// Fit `model`'s potentials to the measurements (warm start: the current potentials).
pub fn mirror_descent(model: &mut GraphicalModel, ms: &[Measurement], opts: Options) -> Stats {
    mirror_descent_dual(model, ms, &mut Duals::default(), opts)
}

/// Mirror descent that also accumulates each measurement's share of the potentials in `duals`
/// (extended with zeros for measurements it has not seen). With `model`'s potentials set from
/// `duals`, this continues an earlier fit exactly, even on a different tree.
///
/// The iterate is kept as the duals alone (plus whatever part of the starting potentials they do
/// not explain): each trial step builds its log-potentials from them into one buffer, and
/// belief propagation turns that buffer into probabilities in place. Memory is one copy of the
/// model (two when starting from potentials the duals do not explain), where keeping potentials,
/// a trial, marginals and gradients as dense factors took about ten.
pub fn mirror_descent_dual(model: &mut GraphicalModel, ms: &[Measurement], duals: &mut Duals, opts: Options) -> Stats {
    let placed = place(model, ms);
    duals.0.truncate(ms.len());
    for m in &ms[duals.0.len()..] {
        duals.0.push(vec![0.0; m.y.len()]);
    }
    let t = &model.tree;
    let total = model.total;
    let zeros = || -> Vec<Factor> { t.cliques.iter().map(|c| Factor::constant(c, &t.sizes, 0.0)).collect() };
    // The duals (placement order), optionally moved by `a` times `parts` plus `vel`.
    let dual_vals = |duals: &Duals, step: Option<(f64, &[Vec<f64>], Option<&[Vec<f64>]>)>| -> Vec<Vec<f64>> {
        placed
            .iter()
            .enumerate()
            .map(|(k, p)| match step {
                Some((a, parts, None)) => duals.0[p.index].iter().zip(&parts[k]).map(|(d, g)| d + a * g).collect(),
                Some((a, parts, Some(vel))) => {
                    duals.0[p.index].iter().zip(&parts[k]).zip(&vel[k]).map(|((d, g), v)| d + a * g + v).collect()
                }
                None => duals.0[p.index].clone(),
            })
            .collect()
    };
    // What the starting potentials hold beyond the duals (nothing when they were built from them).
    let mut buf = zeros();
    broadcast(&placed, dual_vals(duals, None), &mut buf, -1.0);
    let base: Option<Vec<Factor>> = {
        let mut b = std::mem::take(&mut model.potentials);
        let mut any = false;
        if b.len() == buf.len() {
            for (x, y) in b.iter_mut().zip(&buf) {
                for (u, v) in x.values.iter_mut().zip(&y.values) {
                    *u -= v;
                    any |= u.abs() > 1e-9 * (1.0 + v.abs());
                }
            }
        }
        any.then_some(b)
    };
    let eval = |duals: &Duals,
                step: Option<(f64, &[Vec<f64>], Option<&[Vec<f64>]>)>,
                buf: &mut Vec<Factor>|
     -> (f64, Vec<Vec<f64>>, Vec<Vec<f64>>) {
        for (i, f) in buf.iter_mut().enumerate() {
            match &base {
                Some(b) => f.values.copy_from_slice(&b[i].values),
                None => f.values.fill(0.0),
            }
        }
        broadcast(&placed, dual_vals(duals, step), buf, -1.0);
        t.probabilities_in_place(buf);
        let margs = marginals(&placed, buf, total);
        let (loss, parts) = loss_parts(&placed, &margs);
        (loss, parts, margs)
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
    let (mut loss, mut parts, mut margs) = eval(duals, None, &mut buf);
    let mut checked = margs.clone();
    // A warm step is kept unless it collapsed (a converged fit ends on failed line searches);
    // below 1/64 of the Lipschitz step 2/N it only slows the next fit down.
    let safe = 2.0 / total;
    let mut alpha = opts.step.map_or(safe, |s| s.max(safe / 64.0));
    let mut history = vec![loss];
    let mut iterations = 0;
    // The last accepted move of the duals, scaled by the momentum (placement order).
    let mut vel: Option<Vec<Vec<f64>>> = None;
    while iterations < opts.max_iters {
        iterations += 1;
        let with_momentum = vel.is_some();
        let (loss_new, parts_new, margs_new) = eval(duals, Some((alpha, &parts, vel.as_deref())), &mut buf);
        // <gradient, mu - mu_new> over the cliques, computed on the measurements' cells: the
        // gradient is a sum of broadcasts, and a broadcast's inner product is its projection's.
        let dot: f64 = parts
            .iter()
            .zip(&margs)
            .zip(&margs_new)
            .map(|((g, a), b)| g.iter().zip(a).zip(b).map(|((g, a), b)| g * (a - b)).sum::<f64>())
            .sum();
        let accept = if with_momentum { loss_new < loss } else { loss - loss_new >= 0.5 * alpha * dot };
        if accept {
            let beta = opts.momentum;
            let mut moved: Vec<Vec<f64>> = Vec::with_capacity(placed.len());
            for (k, (p, g)) in placed.iter().zip(&parts).enumerate() {
                let v: Vec<f64> = match &vel {
                    Some(vel) => g.iter().zip(&vel[k]).map(|(g, v)| alpha * g + v).collect(),
                    None => g.iter().map(|g| alpha * g).collect(),
                };
                duals.0[p.index].iter_mut().zip(&v).for_each(|(d, v)| *d += v);
                moved.push(v.into_iter().map(|v| beta * v).collect());
            }
            vel = (beta > 0.0).then_some(moved);
            (loss, parts, margs) = (loss_new, parts_new, margs_new);
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
        } else if with_momentum {
            // Restart: the next trial is a plain step.
            vel = None;
        } else {
            alpha *= 0.5;
            // No step improves the loss in floating point: converged.
            if alpha < safe * 1e-9 {
                break;
            }
        }
    }
    // The fitted potentials, rebuilt from the duals in the buffer.
    for (i, f) in buf.iter_mut().enumerate() {
        match &base {
            Some(b) => f.values.copy_from_slice(&b[i].values),
            None => f.values.fill(0.0),
        }
    }
    broadcast(&placed, dual_vals(duals, None), &mut buf, -1.0);
    model.potentials = buf;
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

    /// With momentum the fit reaches the same marginals, in fewer iterations.
    #[test]
    fn momentum_recovers_the_same_marginals_faster() {
        let sizes = [4, 5, 3];
        let joint: Vec<f64> = (0..60).map(|i| 1.0 + ((i * 7) % 11) as f64).collect();
        let j = Factor::new(vec![0, 1, 2], vec![4, 5, 3], joint);
        let ms: Vec<Measurement> = [vec![0, 1], vec![1, 2], vec![0]]
            .iter()
            .map(|s| Measurement { attrs: s.clone(), weights: vec![], y: j.sum_to(s).values, sigma: 1e-3 })
            .collect();
        let tree = JunctionTree::build(&sizes, &ms.iter().map(|m| m.attrs.clone()).collect::<Vec<_>>());
        let total = estimate_total(&ms);
        let run = |momentum: f64| {
            let mut model = GraphicalModel::uniform(tree.clone(), total);
            let stats = mirror_descent(
                &mut model,
                &ms,
                Options { max_iters: 20_000, tol: 1e-12, window: 50, momentum, ..Default::default() },
            );
            let b = model.calibrate();
            let err: f64 = ms
                .iter()
                .map(|m| model.marginal(&b, &m.attrs).values.iter().zip(&m.y).map(|(x, y)| (x - y).abs()).sum::<f64>())
                .sum();
            (stats.iterations, err)
        };
        let (plain, plain_err) = run(0.0);
        let (fast, fast_err) = run(0.9);
        assert!(plain_err < 0.5 && fast_err < 0.5, "L1 errors {plain_err} and {fast_err}");
        assert!(fast < plain, "momentum took {fast} iterations, plain {plain}");
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

    /// The gradient the fit steps along (the measurements' parts broadcast to the cliques) is
    /// the loss's gradient in the clique marginals, nested and repeated measurements included.
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
            Measurement { attrs: vec![2], weights: vec![1.0, 0.5, 0.7], y: vec![1.0, 2.0, 3.0], sigma: 1.0 },
        ];
        let tree = JunctionTree::build(&sizes, &ms.iter().map(|m| m.attrs.clone()).collect::<Vec<_>>());
        let model = GraphicalModel::uniform(tree, 100.0);
        let placed = place(&model, &ms);
        let mu: Vec<Factor> = model.clique_marginals();
        let loss = |mu: &[Factor]| loss_parts(&placed, &marginals(&placed, mu, 1.0));
        let (l0, parts) = loss(&mu);
        let mut g: Vec<Factor> =
            mu.iter().map(|f| Factor::new(f.attrs.clone(), f.shape.clone(), vec![0.0; f.size()])).collect();
        broadcast(&placed, parts, &mut g, 1.0);
        for c in 0..mu.len() {
            for cell in 0..mu[c].size() {
                let mut m2 = mu.clone();
                m2[c].values[cell] += 1e-4;
                let (l1, _) = loss(&m2);
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
