//! Detection: can gradient-boosted trees tell the real (train) rows from another table's rows?
//!
//! A small histogram gradient-boosting classifier (logistic loss, depth-limited trees, splits on
//! binned features: an ordered threshold for numbers, a subset of categories ordered by gradient
//! ratio for categories), scored by stratified 3-fold cross-validated AUC. Trees see interactions,
//! so lost dependence between columns shows as an AUC well above 0.5, which a main-effects
//! propensity model misses. Each class is capped at `max_rows_per_class` rows (a seeded sample):
//! the AUC is an estimate, and unlike DCR it is not diluted by sampling.

use rayon::prelude::*;
use serde::Serialize;

use super::distance::mix;
use super::frame::{Frame, Frames, Values};

#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub trees: usize,
    pub depth: usize,
    pub learning_rate: f64,
    /// Quantile bins per numeric column (from the pooled rows); categories beyond the
    /// `bins - 2` most frequent share one bin.
    pub bins: usize,
    pub min_leaf: usize,
    pub folds: usize,
    pub max_rows_per_class: usize,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings { trees: 50, depth: 3, learning_rate: 0.2, bins: 32, min_leaf: 20, folds: 3, max_rows_per_class: 10_000 }
    }
}

const LAMBDA: f64 = 1.0;

/// Binned features of the pooled rows, column-major.
struct Features {
    bins: Vec<Vec<u8>>,
    /// Whether a feature's bins are ordered (numbers) or unordered (categories).
    ordered: Vec<bool>,
    nbins: Vec<usize>,
}

fn features(frames: &Frames, parts: &[(&Frame, &[usize])], s: &Settings) -> Features {
    let nb = s.bins.clamp(4, 64);
    let mut out = Features { bins: Vec::new(), ordered: Vec::new(), nbins: Vec::new() };
    for c in 0..frames.columns.len() {
        match &parts[0].0.cols[c] {
            Values::Num(_) => {
                let mut pooled: Vec<f64> = Vec::new();
                for (fr, idx) in parts {
                    if let Values::Num(x) = &fr.cols[c] {
                        pooled.extend(idx.iter().map(|&i| x[i]).filter(|v| !v.is_nan()));
                    }
                }
                pooled.sort_by(f64::total_cmp);
                let mut cuts: Vec<f64> = Vec::new();
                if !pooled.is_empty() {
                    for q in 1..nb - 1 {
                        let v = pooled[q * (pooled.len() - 1) / (nb - 1)];
                        if cuts.last() != Some(&v) {
                            cuts.push(v);
                        }
                    }
                }
                let missing = cuts.len() as u8 + 1;
                let mut col = Vec::new();
                for (fr, idx) in parts {
                    if let Values::Num(x) = &fr.cols[c] {
                        col.extend(idx.iter().map(|&i| {
                            let v = x[i];
                            if v.is_nan() { missing } else { cuts.partition_point(|&c| c < v) as u8 }
                        }));
                    }
                }
                out.bins.push(col);
                out.ordered.push(true);
                out.nbins.push(cuts.len() + 2);
            }
            Values::Cat(_) => {
                let k = frames.columns[c].labels.len().max(1);
                let mut freq = vec![0usize; k];
                for (fr, idx) in parts {
                    if let Values::Cat(x) = &fr.cols[c] {
                        for &i in idx.iter() {
                            freq[x[i] as usize] += 1;
                        }
                    }
                }
                let mut by: Vec<usize> = (0..k).collect();
                by.sort_by(|&a, &b| freq[b].cmp(&freq[a]).then(a.cmp(&b)));
                let mut map = vec![(nb - 1) as u8; k];
                for (r, &code) in by.iter().take(nb - 1).enumerate() {
                    map[code] = r as u8;
                }
                let mut col = Vec::new();
                for (fr, idx) in parts {
                    if let Values::Cat(x) = &fr.cols[c] {
                        col.extend(idx.iter().map(|&i| map[x[i] as usize]));
                    }
                }
                out.bins.push(col);
                out.ordered.push(false);
                out.nbins.push(nb);
            }
        }
    }
    out
}

#[derive(Debug, Clone)]
enum Node {
    Leaf(f64),
    Split { feature: usize, left_mask: u64, left: usize, right: usize },
}

struct Tree(Vec<Node>);

impl Tree {
    fn predict(&self, x: &Features, row: usize) -> f64 {
        let mut n = 0;
        loop {
            match &self.0[n] {
                Node::Leaf(v) => return *v,
                Node::Split { feature, left_mask, left, right } => {
                    n = if left_mask >> x.bins[*feature][row] & 1 == 1 { *left } else { *right };
                }
            }
        }
    }
}

/// Best split of one node: (gain, feature, mask of bins going left).
fn best_split(x: &Features, rows: &[usize], g: &[f64], h: &[f64], min_leaf: usize) -> Option<(f64, usize, u64)> {
    let (gs, hs): (f64, f64) = rows.iter().fold((0.0, 0.0), |(a, b), &r| (a + g[r], b + h[r]));
    let parent = gs * gs / (hs + LAMBDA);
    let mut best: Option<(f64, usize, u64)> = None;
    for f in 0..x.bins.len() {
        let nb = x.nbins[f];
        let mut hg = vec![0.0f64; nb];
        let mut hh = vec![0.0f64; nb];
        let mut hc = vec![0usize; nb];
        let col = &x.bins[f];
        for &r in rows {
            let b = col[r] as usize;
            hg[b] += g[r];
            hh[b] += h[r];
            hc[b] += 1;
        }
        let mut order: Vec<usize> = (0..nb).filter(|&b| hc[b] > 0).collect();
        if order.len() < 2 {
            continue;
        }
        if !x.ordered[f] {
            order.sort_by(|&a, &b| (hg[a] / (hh[a] + LAMBDA)).total_cmp(&(hg[b] / (hh[b] + LAMBDA))));
        }
        let (mut gl, mut hl, mut cl, mut mask) = (0.0, 0.0, 0usize, 0u64);
        for &b in &order[..order.len() - 1] {
            gl += hg[b];
            hl += hh[b];
            cl += hc[b];
            mask |= 1 << b;
            let cr = rows.len() - cl;
            if cl < min_leaf || cr < min_leaf {
                continue;
            }
            let (gr, hr) = (gs - gl, hs - hl);
            let gain = gl * gl / (hl + LAMBDA) + gr * gr / (hr + LAMBDA) - parent;
            if gain > 1e-9 && best.is_none_or(|(bg, _, _)| gain > bg) {
                // Unordered features: bins absent from this node go right.
                best = Some((gain, f, mask));
            }
        }
    }
    best
}

fn grow(x: &Features, rows: Vec<usize>, g: &[f64], h: &[f64], s: &Settings, depth: usize, nodes: &mut Vec<Node>) -> usize {
    let id = nodes.len();
    nodes.push(Node::Leaf(0.0));
    let split = if depth < s.depth && rows.len() >= 2 * s.min_leaf { best_split(x, &rows, g, h, s.min_leaf) } else { None };
    match split {
        None => {
            let (gs, hs): (f64, f64) = rows.iter().fold((0.0, 0.0), |(a, b), &r| (a + g[r], b + h[r]));
            nodes[id] = Node::Leaf(-s.learning_rate * gs / (hs + LAMBDA));
        }
        Some((_, feature, left_mask)) => {
            let (l, r): (Vec<usize>, Vec<usize>) = rows.into_iter().partition(|&row| left_mask >> x.bins[feature][row] & 1 == 1);
            let left = grow(x, l, g, h, s, depth + 1, nodes);
            let right = grow(x, r, g, h, s, depth + 1, nodes);
            nodes[id] = Node::Split { feature, left_mask, left, right };
        }
    }
    id
}

/// Fit on `train` rows, return scores (log-odds) for `test` rows.
fn fit_predict(x: &Features, y: &[bool], train: &[usize], test: &[usize], s: &Settings) -> Vec<f64> {
    let pos = train.iter().filter(|&&r| y[r]).count() as f64;
    let p0 = (pos / train.len() as f64).clamp(1e-6, 1.0 - 1e-6);
    let base = (p0 / (1.0 - p0)).ln();
    let mut f = vec![base; y.len()];
    let mut g = vec![0.0; y.len()];
    let mut h = vec![0.0; y.len()];
    let mut trees = Vec::new();
    for _ in 0..s.trees {
        for &r in train {
            let p = 1.0 / (1.0 + (-f[r]).exp());
            g[r] = p - y[r] as u8 as f64;
            h[r] = (p * (1.0 - p)).max(1e-12);
        }
        let mut nodes = Vec::new();
        grow(x, train.to_vec(), &g, &h, s, 0, &mut nodes);
        let tree = Tree(nodes);
        for &r in train {
            f[r] += tree.predict(x, r);
        }
        trees.push(tree);
    }
    test.iter().map(|&r| base + trees.iter().map(|t| t.predict(x, r)).sum::<f64>()).collect()
}

/// Area under the ROC curve (Mann-Whitney, ties counted half).
pub fn auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut i) = (0.0, 0);
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += idx[i..=j].iter().filter(|&&k| labels[k]).count() as f64 * avg;
        i = j + 1;
    }
    let np = labels.iter().filter(|&&l| l).count() as f64;
    let nn = labels.len() as f64 - np;
    (np > 0.0 && nn > 0.0).then(|| (rank_sum - np * (np + 1.0) / 2.0) / (np * nn))
}

/// Seeded sample of at most `k` of `0..n`.
fn sample(n: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by_key(|&i| mix(seed ^ (i as u64).wrapping_mul(0x2545_F491_4F6C_DD1D)));
    idx.truncate(k);
    idx.sort_unstable();
    idx
}

/// Mean cross-validated AUC of telling `other` (label 1) from `real` (label 0).
pub fn detection_auc(frames: &Frames, other: &Frame, real: &Frame, s: &Settings, seed: u64) -> Option<f64> {
    let ri = sample(real.rows, s.max_rows_per_class, seed ^ 0xA1);
    let oi = sample(other.rows, s.max_rows_per_class, seed ^ 0xB2);
    if ri.len() < s.folds || oi.len() < s.folds {
        return None;
    }
    let x = features(frames, &[(real, &ri), (other, &oi)], s);
    let n = ri.len() + oi.len();
    let y: Vec<bool> = (0..n).map(|i| i >= ri.len()).collect();
    // Stratified folds: each class shuffled, then dealt round-robin.
    let mut fold = vec![0usize; n];
    for (range, salt) in [(0..ri.len(), 1u64), (ri.len()..n, 2u64)] {
        let mut rows: Vec<usize> = range.collect();
        rows.sort_by_key(|&i| mix(seed ^ salt ^ (i as u64).wrapping_mul(0x9E37)));
        for (k, r) in rows.into_iter().enumerate() {
            fold[r] = k % s.folds;
        }
    }
    let aucs: Vec<Option<f64>> = (0..s.folds)
        .into_par_iter()
        .map(|k| {
            let train: Vec<usize> = (0..n).filter(|&i| fold[i] != k).collect();
            let test: Vec<usize> = (0..n).filter(|&i| fold[i] == k).collect();
            let scores = fit_predict(&x, &y, &train, &test, s);
            let labels: Vec<bool> = test.iter().map(|&i| y[i]).collect();
            auc(&scores, &labels)
        })
        .collect();
    let v: Vec<f64> = aucs.into_iter().flatten().collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_known_rankings() {
        assert_eq!(auc(&[0.1, 0.2, 0.3, 0.4], &[false, false, true, true]), Some(1.0));
        assert_eq!(auc(&[0.4, 0.3, 0.2, 0.1], &[false, false, true, true]), Some(0.0));
        assert_eq!(auc(&[0.5, 0.5, 0.5, 0.5], &[false, true, false, true]), Some(0.5));
        assert_eq!(auc(&[0.5], &[true]), None);
    }

    #[test]
    fn trees_learn_an_interaction_a_main_effects_model_cannot() {
        // y = x0 XOR x1: each feature alone carries no signal.
        let n = 4000;
        let x0: Vec<u8> = (0..n).map(|i| (mix(i as u64) & 1) as u8).collect();
        let x1: Vec<u8> = (0..n).map(|i| (mix(i as u64 ^ 0xFF) & 1) as u8).collect();
        let y: Vec<bool> = (0..n).map(|i| x0[i] != x1[i]).collect();
        let x = Features { bins: vec![x0, x1], ordered: vec![false, true], nbins: vec![2, 2] };
        let train: Vec<usize> = (0..n).filter(|i| i % 3 != 0).collect();
        let test: Vec<usize> = (0..n).filter(|i| i % 3 == 0).collect();
        let s = Settings { trees: 20, ..Default::default() };
        let scores = fit_predict(&x, &y, &train, &test, &s);
        let labels: Vec<bool> = test.iter().map(|&i| y[i]).collect();
        assert!(auc(&scores, &labels).unwrap() > 0.99);
    }
}
