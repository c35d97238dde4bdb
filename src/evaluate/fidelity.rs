//! Fidelity: how well the synthetic table reproduces the train table, each score beside the
//! holdout's own score against train (the ceiling a fresh real sample reaches).
//!
//! Column shapes (KS / TV complements), pair trends (contingency similarity on 10 equal-width
//! bins from train, correlation similarity), k-way TVD and SDNist's k-marginal score on train's
//! decile bins, and a tree-based detection AUC. Bins always come from train and are shared by all
//! three tables.

use std::collections::HashMap;

use rayon::prelude::*;
use serde::Serialize;

use super::distance::mix;
use super::frame::{Binned, Frames, Values};
use super::gbt;

/// A score of the synthetic table and, beside it, the holdout's (the ceiling).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Pair {
    pub synthetic: Option<f64>,
    pub holdout: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ColumnShape {
    pub column: String,
    /// `KSComplement` (numeric) or `TVComplement` (categorical).
    pub metric: &'static str,
    pub score: Pair,
    /// Share of missing cells in train, holdout and synthetic.
    pub missing_train: f64,
    pub missing_holdout: f64,
    pub missing_synthetic: f64,
    /// Synthetic cells holding a category outside the schema's domain.
    pub synthetic_out_of_domain: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct PairScore {
    pub columns: [String; 2],
    /// Contingency similarity on shared 10-bin grids.
    pub contingency: Pair,
    /// 2-way TVD on train's decile bins.
    pub tvd: Pair,
    /// Correlation similarity (numeric pairs), null when a column is constant.
    pub correlation: Option<Pair>,
    /// Pearson correlation in train (numeric pairs) or Cramér's V (otherwise), binned.
    pub real_association: Option<f64>,
    /// Whether the pair passes SDMetrics' trend threshold (|rho| > 0.5 or Cramér's V > 0.3).
    pub trend: bool,
}

/// One column's distribution in the three tables, on shared bins (for plots).
#[derive(Debug, Clone, Serialize)]
pub struct Distribution {
    pub column: String,
    pub bins: Vec<String>,
    pub train: Vec<f64>,
    pub holdout: Vec<f64>,
    pub synthetic: Vec<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Fidelity {
    pub column_shapes: Vec<ColumnShape>,
    pub distributions: Vec<Distribution>,
    /// Mean of column shapes.
    pub column_shapes_mean: Pair,
    pub pairs: Vec<PairScore>,
    /// Contingency similarity, mean over all pairs and over the trend pairs only.
    pub contingency_mean: Pair,
    pub contingency_trend_mean: Pair,
    pub trend_pairs: usize,
    /// Correlation similarity, mean over numeric pairs with a defined correlation.
    pub correlation_mean: Pair,
    /// Mean 2-way TVD over all pairs; `tvd2.synthetic - tvd2.holdout` is the excess over a
    /// fresh real sample.
    pub tvd2: Pair,
    pub tvd2_excess: Option<f64>,
    /// Mean 3-way TVD over all triples (or a seeded sample of `triples_sampled` of them).
    pub tvd3: Pair,
    pub tvd3_excess: Option<f64>,
    pub triples: usize,
    pub triples_sampled: bool,
    /// SDNist's 2-way k-marginal score, 1000 * (1 - mean TVD); the holdout is the ceiling.
    pub k_marginal: Pair,
    /// Detection AUC of gradient-boosted trees telling real (train) from the other table,
    /// stratified 3-fold cross-validated: 0.5 = indistinguishable.
    pub detection_auc: Pair,
    /// The detector and its settings, and per comparison the folds' AUCs and iterations kept.
    pub detection: DetectionInfo,
}

#[derive(Debug, Clone, Serialize)]
pub struct DetectionInfo {
    #[serde(flatten)]
    pub settings: gbt::Settings,
    pub synthetic: gbt::Detection,
    pub holdout: gbt::Detection,
}

/// Two-sample KS statistic on non-missing values.
fn ks(a: &[f64], b: &[f64]) -> Option<f64> {
    let mut x: Vec<f64> = a.iter().copied().filter(|v| !v.is_nan()).collect();
    let mut y: Vec<f64> = b.iter().copied().filter(|v| !v.is_nan()).collect();
    if x.is_empty() || y.is_empty() {
        return None;
    }
    x.sort_by(f64::total_cmp);
    y.sort_by(f64::total_cmp);
    let (n, m) = (x.len() as f64, y.len() as f64);
    let (mut i, mut j, mut d) = (0, 0, 0.0f64);
    while i < x.len() && j < y.len() {
        let v = if x[i] <= y[j] { x[i] } else { y[j] };
        while i < x.len() && x[i] <= v {
            i += 1;
        }
        while j < y.len() && y[j] <= v {
            j += 1;
        }
        d = d.max((i as f64 / n - j as f64 / m).abs());
    }
    Some(d)
}

/// Total variation distance between the joint distributions of binned columns.
pub fn joint_tvd(a: &[&[u32]], b: &[&[u32]], sizes: &[usize]) -> f64 {
    let (na, nb) = (a[0].len() as f64, b[0].len() as f64);
    let cells: usize = sizes.iter().product();
    let index = |cols: &[&[u32]], i: usize| cols.iter().zip(sizes).fold(0usize, |acc, (c, &s)| acc * s + c[i] as usize);
    if cells <= 1 << 22 {
        let mut p = vec![0.0f64; cells];
        for i in 0..a[0].len() {
            p[index(a, i)] += 1.0 / na;
        }
        for i in 0..b[0].len() {
            p[index(b, i)] -= 1.0 / nb;
        }
        0.5 * p.iter().map(|x| x.abs()).sum::<f64>()
    } else {
        let mut p: HashMap<usize, f64> = HashMap::new();
        for i in 0..a[0].len() {
            *p.entry(index(a, i)).or_default() += 1.0 / na;
        }
        for i in 0..b[0].len() {
            *p.entry(index(b, i)).or_default() -= 1.0 / nb;
        }
        0.5 * p.values().map(|x| x.abs()).sum::<f64>()
    }
}

/// Pearson correlation on pairwise-complete rows; None when a column is constant there.
fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let (mut n, mut sx, mut sy) = (0.0, 0.0, 0.0);
    for (&a, &b) in x.iter().zip(y) {
        if !a.is_nan() && !b.is_nan() {
            n += 1.0;
            sx += a;
            sy += b;
        }
    }
    if n < 2.0 {
        return None;
    }
    let (mx, my) = (sx / n, sy / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (&a, &b) in x.iter().zip(y) {
        if !a.is_nan() && !b.is_nan() {
            sxy += (a - mx) * (b - my);
            sxx += (a - mx) * (a - mx);
            syy += (b - my) * (b - my);
        }
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

/// Cramér's V of two binned columns.
fn cramers_v(a: &[u32], b: &[u32], sa: usize, sb: usize) -> Option<f64> {
    let n = a.len() as f64;
    let mut joint = vec![0.0f64; sa * sb];
    let (mut ra, mut rb) = (vec![0.0f64; sa], vec![0.0f64; sb]);
    for (&x, &y) in a.iter().zip(b) {
        joint[x as usize * sb + y as usize] += 1.0;
        ra[x as usize] += 1.0;
        rb[y as usize] += 1.0;
    }
    let ka = ra.iter().filter(|&&c| c > 0.0).count();
    let kb = rb.iter().filter(|&&c| c > 0.0).count();
    if ka < 2 || kb < 2 {
        return None;
    }
    let mut chi2 = 0.0;
    for i in 0..sa {
        for j in 0..sb {
            let e = ra[i] * rb[j] / n;
            if e > 0.0 {
                chi2 += (joint[i * sb + j] - e).powi(2) / e;
            }
        }
    }
    Some((chi2 / (n * (ka.min(kb) - 1) as f64)).sqrt())
}

fn mean(xs: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = xs.flatten().collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn mean_pair<'a>(items: impl Iterator<Item = &'a Pair> + Clone) -> Pair {
    Pair { synthetic: mean(items.clone().map(|p| p.synthetic)), holdout: mean(items.map(|p| p.holdout)) }
}

fn missing_rate(v: &Values) -> f64 {
    let n = match v {
        Values::Num(x) => x.len(),
        Values::Cat(c) => c.len(),
    };
    (0..n).filter(|&i| v.is_missing(i)).count() as f64 / n.max(1) as f64
}

/// Shares per bin (numbers: the equal-width bins; categories: the 15 most frequent in train,
/// then the rest together), missing last.
fn distribution(f: &Frames, wide: &Binned, c: usize) -> Distribution {
    let col = &f.columns[c];
    let size = wide.sizes[c];
    let shares = |codes: &[u32], map: &dyn Fn(u32) -> usize, k: usize| {
        let mut v = vec![0.0; k];
        for &x in codes {
            v[map(x)] += 1.0 / codes.len().max(1) as f64;
        }
        v
    };
    if col.is_numeric() {
        let labels = wide.binnings[c].bin_labels(col);
        let id = |x: u32| x as usize;
        return Distribution {
            column: col.name.clone(),
            bins: labels,
            train: shares(&wide.train[c], &id, size),
            holdout: shares(&wide.holdout[c], &id, size),
            synthetic: shares(&wide.synthetic[c], &id, size),
        };
    }
    let mut freq = vec![0usize; size];
    for &x in &wide.train[c] {
        freq[x as usize] += 1;
    }
    let mut top: Vec<usize> = (1..size).filter(|&k| freq[k] > 0).collect();
    top.sort_by(|&a, &b| freq[b].cmp(&freq[a]).then(a.cmp(&b)));
    top.truncate(15);
    let mut slot = vec![top.len(); size];
    for (i, &k) in top.iter().enumerate() {
        slot[k] = i;
    }
    slot[0] = top.len() + 1;
    let mut bins: Vec<String> = top.iter().map(|&k| col.label(k as u32).to_string()).collect();
    bins.push("(other)".into());
    bins.push("(missing)".into());
    let map = |x: u32| slot[x as usize];
    Distribution {
        column: col.name.clone(),
        train: shares(&wide.train[c], &map, bins.len()),
        holdout: shares(&wide.holdout[c], &map, bins.len()),
        synthetic: shares(&wide.synthetic[c], &map, bins.len()),
        bins,
    }
}

/// All fidelity metrics. `wide` = equal-width bins (pair trends), `deciles` = decile bins
/// (k-way TVD and detection features).
pub fn fidelity(f: &Frames, wide: &Binned, deciles: &Binned, seed: u64, max_triples: usize) -> Fidelity {
    let d = f.columns.len();
    let column_shapes: Vec<ColumnShape> = (0..d)
        .into_par_iter()
        .map(|c| {
            let col = &f.columns[c];
            let (metric, score) = match (&f.train.cols[c], &f.synthetic.cols[c], &f.holdout.cols[c]) {
                (Values::Num(t), Values::Num(s), Values::Num(h)) => {
                    ("KSComplement", Pair { synthetic: ks(t, s).map(|d| 1.0 - d), holdout: ks(t, h).map(|d| 1.0 - d) })
                }
                _ => {
                    let size = col.labels.len();
                    let tv = |x: &Vec<u32>| 1.0 - joint_tvd(&[&deciles.train[c]], &[x], &[size]);
                    (
                        "TVComplement",
                        Pair { synthetic: Some(tv(&deciles.synthetic[c])), holdout: Some(tv(&deciles.holdout[c])) },
                    )
                }
            };
            ColumnShape {
                column: col.name.clone(),
                metric,
                score,
                missing_train: missing_rate(&f.train.cols[c]),
                missing_holdout: missing_rate(&f.holdout.cols[c]),
                missing_synthetic: missing_rate(&f.synthetic.cols[c]),
                synthetic_out_of_domain: f.synthetic_out_of_domain[c],
            }
        })
        .collect();

    let pair_list: Vec<(usize, usize)> = (0..d).flat_map(|a| (a + 1..d).map(move |b| (a, b))).collect();
    let pairs: Vec<PairScore> = pair_list
        .par_iter()
        .map(|&(a, b)| {
            let cs = |x: &Vec<Vec<u32>>| {
                1.0 - joint_tvd(&[&wide.train[a], &wide.train[b]], &[&x[a], &x[b]], &[wide.sizes[a], wide.sizes[b]])
            };
            let tv = |x: &Vec<Vec<u32>>| {
                joint_tvd(
                    &[&deciles.train[a], &deciles.train[b]],
                    &[&x[a], &x[b]],
                    &[deciles.sizes[a], deciles.sizes[b]],
                )
            };
            let (correlation, real) = match (&f.train.cols[a], &f.train.cols[b]) {
                (Values::Num(ta), Values::Num(tb)) => {
                    let rt = pearson(ta, tb);
                    let sim = |fr: &super::frame::Frame| match (&fr.cols[a], &fr.cols[b]) {
                        (Values::Num(x), Values::Num(y)) => match (rt, pearson(x, y)) {
                            (Some(r0), Some(r1)) => Some(1.0 - (r0 - r1).abs() / 2.0),
                            _ => None,
                        },
                        _ => None,
                    };
                    (Some(Pair { synthetic: sim(&f.synthetic), holdout: sim(&f.holdout) }), rt)
                }
                _ => (None, cramers_v(&wide.train[a], &wide.train[b], wide.sizes[a], wide.sizes[b])),
            };
            let numeric_pair = correlation.is_some();
            let trend = match real {
                Some(r) if numeric_pair => r.abs() > 0.5,
                Some(v) => v > 0.3,
                None => false,
            };
            PairScore {
                columns: [f.columns[a].name.clone(), f.columns[b].name.clone()],
                contingency: Pair { synthetic: Some(cs(&wide.synthetic)), holdout: Some(cs(&wide.holdout)) },
                tvd: Pair { synthetic: Some(tv(&deciles.synthetic)), holdout: Some(tv(&deciles.holdout)) },
                correlation,
                real_association: real,
                trend,
            }
        })
        .collect();

    // 3-way TVD over all triples, or a seeded sample when there are too many.
    let total_triples = if d >= 3 { d * (d - 1) * (d - 2) / 6 } else { 0 };
    let mut triples: Vec<[usize; 3]> = Vec::new();
    if total_triples <= max_triples {
        for a in 0..d {
            for b in a + 1..d {
                for c in b + 1..d {
                    triples.push([a, b, c]);
                }
            }
        }
    } else {
        let mut seen = std::collections::HashSet::new();
        let mut k = 0u64;
        while triples.len() < max_triples {
            let mut t = [0usize; 3];
            for (j, x) in t.iter_mut().enumerate() {
                *x = (mix(seed ^ 0x7E1 ^ (k * 3 + j as u64)) % d as u64) as usize;
            }
            k += 1;
            t.sort_unstable();
            if t[0] != t[1] && t[1] != t[2] && seen.insert(t) {
                triples.push(t);
            }
        }
    }
    let tvd3s: Vec<Pair> = triples
        .par_iter()
        .map(|t| {
            fn cols<'a>(x: &'a [Vec<u32>], t: &[usize; 3]) -> [&'a [u32]; 3] {
                [x[t[0]].as_slice(), x[t[1]].as_slice(), x[t[2]].as_slice()]
            }
            let sizes = [deciles.sizes[t[0]], deciles.sizes[t[1]], deciles.sizes[t[2]]];
            Pair {
                synthetic: Some(joint_tvd(&cols(&deciles.train, t), &cols(&deciles.synthetic, t), &sizes)),
                holdout: Some(joint_tvd(&cols(&deciles.train, t), &cols(&deciles.holdout, t), &sizes)),
            }
        })
        .collect();

    let tvd2 = mean_pair(pairs.iter().map(|p| &p.tvd));
    let tvd3 = mean_pair(tvd3s.iter());
    let sub = |p: Pair| p.synthetic.zip(p.holdout).map(|(s, h)| s - h);
    let settings = gbt::Settings::default();
    let (det_s, det_h) = rayon::join(
        || gbt::detection(f, &f.synthetic, &f.train, &settings, seed),
        || gbt::detection(f, &f.holdout, &f.train, &settings, seed),
    );
    let detection_auc = Pair { synthetic: det_s.auc, holdout: det_h.auc };
    let corr: Vec<Pair> = pairs.iter().filter_map(|p| p.correlation).collect();
    let distributions = (0..d).map(|c| distribution(f, wide, c)).collect();
    Fidelity {
        distributions,
        column_shapes_mean: mean_pair(column_shapes.iter().map(|c| &c.score)),
        contingency_mean: mean_pair(pairs.iter().map(|p| &p.contingency)),
        contingency_trend_mean: mean_pair(pairs.iter().filter(|p| p.trend).map(|p| &p.contingency)),
        trend_pairs: pairs.iter().filter(|p| p.trend).count(),
        correlation_mean: mean_pair(corr.iter()),
        tvd2,
        tvd2_excess: sub(tvd2),
        tvd3,
        tvd3_excess: sub(tvd3),
        triples: triples.len(),
        triples_sampled: triples.len() < total_triples,
        k_marginal: Pair {
            synthetic: tvd2.synthetic.map(|t| 1000.0 * (1.0 - t)),
            holdout: tvd2.holdout.map(|t| 1000.0 * (1.0 - t)),
        },
        detection_auc,
        detection: DetectionInfo { settings, synthetic: det_s, holdout: det_h },
        column_shapes,
        pairs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ks_matches_hand_computation() {
        // F_a jumps at 1,2,3; F_b at 2,3,4: sup |F_a - F_b| = 1/3.
        assert!((ks(&[1.0, 2.0, 3.0], &[2.0, 3.0, 4.0]).unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(ks(&[1.0, f64::NAN], &[1.0]), Some(0.0));
        assert_eq!(ks(&[f64::NAN], &[1.0]), None);
    }

    #[test]
    fn tvd_and_association() {
        let a: Vec<u32> = vec![0, 0, 1, 1];
        let b: Vec<u32> = vec![0, 1, 0, 1];
        assert!((joint_tvd(&[&a], &[&b], &[2]) - 0.0).abs() < 1e-12);
        assert!((joint_tvd(&[&a, &a], &[&a, &b], &[2, 2]) - 0.5).abs() < 1e-12);
        assert!((cramers_v(&a, &a, 2, 2).unwrap() - 1.0).abs() < 1e-12);
        assert!(cramers_v(&a, &b, 2, 2).unwrap().abs() < 1e-12);
        assert_eq!(pearson(&[1.0, 1.0], &[1.0, 2.0]), None);
        assert!((pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 7.0]).unwrap() - 0.9933992677987828).abs() < 1e-12);
    }
}
