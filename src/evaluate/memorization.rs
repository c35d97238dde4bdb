//! Memorization: did the generator copy rows or values of the train table?
//!
//! Every measure is taken against train and, as the reference for what a fresh sample of the
//! same population shows, against the holdout: exact row matches (canonical row keys), Gower
//! distance to the closest record (DCR) and the nearest/second-nearest ratio (NNDR) over the full
//! tables, the share of synthetic rows closer to train than to holdout with a bootstrap interval,
//! and the re-emission of values that single out one real row.

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;
use serde::Serialize;

use super::distance::{self, Index, Queries, mix};
use super::frame::{Frame, Frames, Values, gower_scaled};

#[derive(Debug, Clone, Serialize)]
pub struct ExactMatch {
    /// Share of synthetic rows equal to some train row.
    pub synthetic_in_train: f64,
    /// Share of synthetic rows equal to some holdout row (the natural-duplicate baseline).
    pub synthetic_in_holdout: f64,
    /// `synthetic_in_train - synthetic_in_holdout`.
    pub excess: f64,
    /// Share of synthetic rows found in train but not in the holdout.
    pub in_train_not_holdout: f64,
    /// Share of synthetic rows that repeat an earlier synthetic row.
    pub synthetic_duplicates: f64,
    /// Share of holdout rows equal to some train row (natural duplicates in the population).
    pub holdout_in_train: f64,
    /// SDNist UEM: share of rows unique within train that appear in the synthetic table, and the
    /// same for rows unique within the holdout.
    pub unique_train_reproduced: f64,
    pub unique_holdout_reproduced: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Histogram {
    /// Upper edges of the bins (Gower distance); the first bin holds exactly 0.
    pub edges: Vec<f64>,
    pub synthetic_to_train: Vec<usize>,
    pub synthetic_to_holdout: Vec<usize>,
    pub holdout_to_train: Vec<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Dcr {
    /// Share of synthetic rows strictly closer to train than to the holdout.
    pub closer_to_train: f64,
    /// Share at equal distance (reported apart; SDMetrics counts them as holdout).
    pub ties: f64,
    /// What a generator that did not memorize gives: n_train / (n_train + n_holdout).
    pub expected: f64,
    /// `closer_to_train - expected`.
    pub excess: f64,
    /// `ci_low - expected`: above 0 means significantly more synthetic rows sit closer to
    /// train than chance allows.
    pub ci_low_excess: f64,
    /// 95% interval of `closer_to_train`: share +- 1.96 sd, with the variance from resampling
    /// the synthetic rows (`sd_synthetic`) plus that from which real rows were train and which
    /// holdout (`sd_split`).
    pub ci_low: f64,
    pub ci_high: f64,
    /// Standard deviation of the share over bootstrap resamples of the synthetic rows.
    pub sd_synthetic: f64,
    pub bootstrap_replicates: usize,
    /// Standard deviation of the share over random splits of the real rows into train and
    /// holdout (of the same sizes), the synthetic rows fixed: synthetic rows whose nearest real
    /// row is the same are one observation, not many (near-identical synthetic persons would
    /// otherwise give a falsely narrow interval). Exact for a split drawn without replacement.
    pub sd_split: f64,
    /// How many independent synthetic rows the share is worth: 1 / sum of squared shares of the
    /// synthetic rows per nearest real row (the synthetic row count when no two share one).
    pub effective_rows: f64,
    /// SDMetrics-style DCROverfittingProtection: min(2 (1 - share), 1), ties as holdout.
    pub sdmetrics_score: f64,
    /// Share of synthetic rows at distance 0 from train / from the holdout.
    pub zero_to_train: f64,
    pub zero_to_holdout: f64,
    /// 1st percentile of the holdout's DCR to train, and the share of synthetic rows closer to
    /// train than that. The share is null (its gate skipped) when the holdout has fewer than
    /// `MIN_HOLDOUT_FOR_P1` rows: a 1st percentile of fewer rows is its minimum or below, and a
    /// fresh real sample of 37 persons put 14% of its rows under it.
    pub holdout_p1: f64,
    pub below_holdout_p1: Option<f64>,
    pub median_synthetic_to_train: f64,
    pub median_synthetic_to_holdout: f64,
    /// Median DCR of the holdout to train: a fresh real sample's typical distance.
    pub median_holdout_to_train: f64,
    /// Median nearest/second-nearest ratio of synthetic rows against train and against the
    /// holdout (memorized rows have NNDR near 0 against train only).
    pub nndr_median_train: f64,
    pub nndr_median_holdout: f64,
    pub histogram: Histogram,
    /// Which rows were measured: every statistic above is over the measured rows.
    pub sampling: Sampling,
}

/// How many rows the distance statistics measured, and the error that adds (see
/// [`Neighbours`]).
#[derive(Debug, Clone, Serialize)]
pub struct Sampling {
    pub synthetic_rows: usize,
    pub synthetic_measured: usize,
    pub holdout_rows: usize,
    pub holdout_measured: usize,
    /// Standard deviation of the measured share closer to train around the share over every
    /// synthetic row, from drawing `synthetic_measured` of `synthetic_rows` without replacement:
    /// sqrt(p (1 - p) / m * (N - m) / (N - 1)) at the measured share p (0 when all are measured).
    /// The bootstrap term of the 95% interval (`sd_synthetic`) already covers it: it resamples
    /// the measured rows.
    pub sd_sampling: f64,
    /// One sentence for the report.
    pub method: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RareColumn {
    pub column: String,
    pub train_rare: usize,
    pub train_reemitted: usize,
    pub holdout_rare: usize,
    pub holdout_reemitted: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct RareValues {
    /// Values that single out one train row (occur once in train; numeric minima and maxima),
    /// over all columns, and how many the synthetic table emits verbatim.
    pub train_rare: usize,
    pub train_reemitted: usize,
    pub rate_train: f64,
    /// The same for the holdout (the rate a generator reaches without seeing the rows).
    pub holdout_rare: usize,
    pub holdout_reemitted: usize,
    pub rate_holdout: f64,
    /// `rate_train - rate_holdout`.
    pub excess: f64,
    pub columns: Vec<RareColumn>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Memorization {
    pub exact_match: ExactMatch,
    pub dcr: Dcr,
    pub rare_values: RareValues,
}

fn keys(fr: &Frame) -> Vec<Vec<u64>> {
    let cols: Vec<usize> = (0..fr.cols.len()).collect();
    (0..fr.rows).into_par_iter().map(|i| fr.key(i, &cols)).collect()
}

fn counts(keys: &[Vec<u64>]) -> HashMap<&[u64], usize> {
    let mut m: HashMap<&[u64], usize> = HashMap::with_capacity(keys.len());
    for k in keys {
        *m.entry(k.as_slice()).or_default() += 1;
    }
    m
}

pub fn exact_match(f: &Frames) -> ExactMatch {
    let (kt, kh, ks) = (keys(&f.train), keys(&f.holdout), keys(&f.synthetic));
    let (ct, ch, cs) = (counts(&kt), counts(&kh), counts(&ks));
    let ns = ks.len() as f64;
    let share = |pred: &dyn Fn(&[u64]) -> bool| ks.iter().filter(|k| pred(k)).count() as f64 / ns;
    let in_t = share(&|k| ct.contains_key(k));
    let in_h = share(&|k| ch.contains_key(k));
    let mut seen = HashSet::with_capacity(ks.len());
    let dups = ks.iter().filter(|k| !seen.insert(k.as_slice())).count() as f64 / ns;
    let uem = |c: &HashMap<&[u64], usize>| {
        let unique: Vec<&&[u64]> = c.iter().filter(|(_, n)| **n == 1).map(|(k, _)| k).collect();
        if unique.is_empty() {
            0.0
        } else {
            unique.iter().filter(|k| cs.contains_key(**k)).count() as f64 / unique.len() as f64
        }
    };
    ExactMatch {
        synthetic_in_train: in_t,
        synthetic_in_holdout: in_h,
        excess: in_t - in_h,
        in_train_not_holdout: share(&|k| ct.contains_key(k) && !ch.contains_key(k)),
        synthetic_duplicates: dups,
        holdout_in_train: kh.iter().filter(|k| ct.contains_key(k.as_slice())).count() as f64 / kh.len() as f64,
        unique_train_reproduced: uem(&ct),
        unique_holdout_reproduced: uem(&ch),
    }
}

fn median(v: &mut [f64]) -> f64 {
    quantile(v, 0.5)
}

/// Quantile by linear interpolation (sorts `v`).
fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let pos = q * (v.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos - pos.floor());
    if i + 1 < v.len() { v[i] * (1.0 - frac) + v[i + 1] * frac } else { v[i] }
}

/// Nearest-neighbour distances (Gower, mean over columns; nearest and second nearest) of
/// synthetic rows to train and to the holdout, and of holdout rows to train, over the full
/// tables; and the nearest train and holdout row of each synthetic row.
///
/// Beyond `max_queries` synthetic (or holdout) rows, the distances are measured for a simple
/// random sample (seeded, without replacement) of `max_queries` of them, each against the
/// **full** train and holdout tables (audit-metrics.md: subsampling the references dilutes
/// copies; sampling the queried rows only adds the sampling error of a mean, which
/// [`dcr`]'s interval includes and [`Sampling`] states).
pub struct Neighbours {
    pub s_t: Vec<(f64, f64)>,
    pub s_h: Vec<(f64, f64)>,
    pub h_t: Vec<(f64, f64)>,
    pub s_t_row: Vec<u32>,
    pub s_h_row: Vec<u32>,
    /// Synthetic and holdout rows measured (all when the table has at most `max_queries`).
    pub synthetic_measured: usize,
    pub holdout_measured: usize,
}

/// Queried rows measured at most by default: every table up to 50,000 rows (the audit's
/// benchmarks and tests) is measured exactly; beyond, 50,000 synthetic rows put the share closer
/// to train within +-0.0044 (95%, binomial sd at most 0.5 / sqrt(50,000)) of its full-table
/// value, and a 1M x 20 audit's distance step stays in CPU-minutes (benchmarks/README.md).
pub const MAX_QUERIES: usize = 50_000;

/// The rows measured of a table of `n` rows: all, or a seeded simple random sample of `max`
/// (ascending).
fn measured(n: usize, max: usize, seed: u64) -> Vec<usize> {
    if n <= max {
        return (0..n).collect();
    }
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut v = rand::seq::index::sample(&mut rng, n, max).into_vec();
    v.sort_unstable();
    v
}

pub fn neighbours(f: &Frames, seed: u64, max_queries: usize) -> Neighbours {
    let d = f.columns.len();
    let scaled: Vec<Vec<Vec<f32>>> = f
        .columns
        .par_iter()
        .enumerate()
        .map(|(c, col)| gower_scaled(col, &[&f.train.cols[c], &f.holdout.cols[c], &f.synthetic.cols[c]]))
        .collect();
    let table = |k: usize| -> Vec<&[f32]> { scaled.iter().map(|s| s[k].as_slice()).collect() };
    let (t, h, s) = (table(0), table(1), table(2));
    let order = distance::discriminating_order(&t, seed);
    fn reorder<'a>(cols: &[&'a [f32]], order: &[usize]) -> Vec<&'a [f32]> {
        order.iter().map(|&c| cols[c]).collect()
    }
    let (t, h, s) = (reorder(&t, &order), reorder(&h, &order), reorder(&s, &order));
    let rt = Index::new(&t, seed ^ 1);
    let rh = Index::new(&h, seed ^ 2);
    let max_queries = max_queries.max(1);
    let (sm, hm) = (
        measured(f.synthetic.rows, max_queries, seed ^ 0x005E_ED5A),
        measured(f.holdout.rows, max_queries, seed ^ 0x005E_ED40),
    );
    let qs = Queries::new(&s, &sm);
    let qh = Queries::new(&h, &hm);
    let scale = |v: &[(f32, f32, u32)]| {
        v.iter().map(|&(a, b, _)| (a as f64 / d as f64, b as f64 / d as f64)).collect::<Vec<_>>()
    };
    let rows = |v: &[(f32, f32, u32)]| v.iter().map(|x| x.2).collect::<Vec<_>>();
    let (st, sh, ht) = (distance::top2_index(&qs, &rt), distance::top2_index(&qs, &rh), distance::top2_index(&qh, &rt));
    Neighbours {
        s_t: scale(&st),
        s_h: scale(&sh),
        h_t: scale(&ht),
        s_t_row: rows(&st),
        s_h_row: rows(&sh),
        synthetic_measured: sm.len(),
        holdout_measured: hm.len(),
    }
}

/// Holdout rows needed before the share below the holdout's 1st percentile is computed: with
/// 300 rows the sample minimum is below the true 1st percentile with probability 1 - 0.99^300
/// = 95%, so the empirical percentile stands for a real one.
pub const MIN_HOLDOUT_FOR_P1: usize = 300;

pub fn dcr(f: &Frames, nb: &Neighbours, seed: u64, replicates: usize) -> Dcr {
    let n = nb.s_t.len();
    let nf = n as f64;
    let closer: Vec<u8> = nb.s_t.iter().zip(&nb.s_h).map(|(t, h)| (t.0 < h.0) as u8).collect();
    let ties = nb.s_t.iter().zip(&nb.s_h).filter(|(t, h)| t.0 == h.0).count() as f64 / nf;
    let share = closer.iter().map(|&c| c as f64).sum::<f64>() / nf;
    let expected = f.train.rows as f64 / (f.train.rows + f.holdout.rows) as f64;
    let boots: Vec<f64> = (0..replicates)
        .into_par_iter()
        .map(|r| {
            let base = mix(seed ^ 0xB007 ^ (r as u64) << 20);
            let mut k = 0u64;
            for j in 0..n as u64 {
                k += closer[(mix(base ^ j) % n as u64) as usize] as u64;
            }
            k as f64 / nf
        })
        .collect();
    let mean_boot = boots.iter().sum::<f64>() / boots.len().max(1) as f64;
    let sd_synthetic =
        (boots.iter().map(|b| (b - mean_boot).powi(2)).sum::<f64>() / (boots.len().max(2) - 1) as f64).sqrt();
    // Group the synthetic rows by their nearest real row (train or holdout): under a random
    // split each real row is in train with probability p, so the share's variance is
    // p (1 - p) [sum w^2 - (1 - sum w^2) / (N - 1)] with w the groups' shares of the rows.
    let nt = f.train.rows;
    let mut per_real: HashMap<u32, u32> = HashMap::with_capacity(n);
    for i in 0..n {
        let r = if nb.s_t[i].0 <= nb.s_h[i].0 { nb.s_t_row[i] } else { nb.s_h_row[i].saturating_add(nt as u32) };
        *per_real.entry(r).or_default() += 1;
    }
    let sum_w2: f64 = per_real.values().map(|&c| (c as f64 / nf).powi(2)).sum();
    let big_n = (f.train.rows + f.holdout.rows) as f64;
    let var_split = (expected * (1.0 - expected) * (sum_w2 - (1.0 - sum_w2) / (big_n - 1.0).max(1.0))).max(0.0);
    let half = 1.959963984540054 * (sd_synthetic.powi(2) + var_split).sqrt();
    let (ci_low, ci_high) = ((share - half).max(0.0), (share + half).min(1.0));
    let big_s = f.synthetic.rows;
    let sd_sampling = if n < big_s && big_s > 1 {
        (share * (1.0 - share) / nf * (big_s - n) as f64 / (big_s - 1) as f64).sqrt()
    } else {
        0.0
    };
    let method = if n < big_s || nb.holdout_measured < f.holdout.rows {
        format!(
            "distances measured for a seeded random sample of {n} of {big_s} synthetic rows and {} of {} holdout rows, each against the full train and holdout tables; shares, medians and percentiles are over the sample, and the 95% interval includes its sampling error (sd {sd_sampling:.4})",
            nb.holdout_measured, f.holdout.rows
        )
    } else {
        "exact: every synthetic and holdout row measured against the full train and holdout tables".to_string()
    };
    let mut ht: Vec<f64> = nb.h_t.iter().map(|x| x.0).collect();
    let p1 = quantile(&mut ht.clone(), 0.01);
    let mut st: Vec<f64> = nb.s_t.iter().map(|x| x.0).collect();
    let mut sh: Vec<f64> = nb.s_h.iter().map(|x| x.0).collect();
    let nndr = |v: &[(f64, f64)]| {
        let mut r: Vec<f64> = v
            .iter()
            .map(|&(a, b)| {
                if b > 0.0 && b.is_finite() {
                    a / b
                } else if a == 0.0 {
                    0.0
                } else {
                    1.0
                }
            })
            .collect();
        median(&mut r)
    };
    // Histogram: an exact-zero bin, then 20 bins up to the largest distance seen (at least 0.05).
    let top = st.iter().chain(&sh).chain(&ht).copied().fold(0.05f64, f64::max);
    let mut edges = vec![0.0];
    edges.extend((1..=20).map(|i| top * i as f64 / 20.0));
    let hist = |v: &[f64]| {
        let mut h = vec![0usize; edges.len()];
        for &x in v {
            let b = if x == 0.0 { 0 } else { edges.partition_point(|&e| e < x).min(edges.len() - 1) };
            h[b] += 1;
        }
        h
    };
    let histogram = Histogram {
        synthetic_to_train: hist(&st),
        synthetic_to_holdout: hist(&sh),
        holdout_to_train: hist(&ht),
        edges: edges.clone(),
    };
    Dcr {
        closer_to_train: share,
        ties,
        expected,
        excess: share - expected,
        ci_low_excess: ci_low - expected,
        ci_low,
        ci_high,
        sd_synthetic,
        bootstrap_replicates: replicates,
        sd_split: var_split.sqrt(),
        effective_rows: 1.0 / sum_w2.max(f64::MIN_POSITIVE),
        sdmetrics_score: (2.0 * (1.0 - share)).min(1.0),
        zero_to_train: st.iter().filter(|&&x| x == 0.0).count() as f64 / nf,
        zero_to_holdout: sh.iter().filter(|&&x| x == 0.0).count() as f64 / nf,
        holdout_p1: p1,
        below_holdout_p1: (f.holdout.rows >= MIN_HOLDOUT_FOR_P1)
            .then(|| st.iter().filter(|&&x| x < p1).count() as f64 / nf),
        median_synthetic_to_train: median(&mut st),
        median_synthetic_to_holdout: median(&mut sh),
        median_holdout_to_train: median(&mut ht),
        nndr_median_train: nndr(&nb.s_t),
        nndr_median_holdout: nndr(&nb.s_h),
        histogram,
        sampling: Sampling {
            synthetic_rows: f.synthetic.rows,
            synthetic_measured: nb.synthetic_measured,
            holdout_rows: f.holdout.rows,
            holdout_measured: nb.holdout_measured,
            sd_sampling,
            method,
        },
    }
}

/// Distinct values of a column that single out one row of `real` (occur once; or the minimum or
/// maximum of a numeric column), and how many of them `synthetic` emits verbatim.
fn rare(real: &Values, synthetic: &Values) -> (usize, usize) {
    let n = match real {
        Values::Num(x) => x.len(),
        Values::Cat(c) => c.len(),
    };
    let mut count: HashMap<u64, usize> = HashMap::new();
    for i in 0..n {
        if !real.is_missing(i) {
            *count.entry(real.word(i)).or_default() += 1;
        }
    }
    let mut rare: HashSet<u64> = count.iter().filter(|(_, c)| **c == 1).map(|(w, _)| *w).collect();
    if let Values::Num(x) = real {
        let vals = x.iter().filter(|v| !v.is_nan());
        if let (Some(lo), Some(hi)) = (vals.clone().copied().reduce(f64::min), vals.copied().reduce(f64::max)) {
            rare.insert(super::frame::canonical_bits(lo));
            rare.insert(super::frame::canonical_bits(hi));
        }
    }
    let m = match synthetic {
        Values::Num(x) => x.len(),
        Values::Cat(c) => c.len(),
    };
    let emitted: HashSet<u64> = (0..m).filter(|&i| !synthetic.is_missing(i)).map(|i| synthetic.word(i)).collect();
    // `col == v`, `col <= min` and `col >= max` single out one row exactly when v occurs once.
    let reemitted = rare.iter().filter(|w| emitted.contains(*w) && count.get(*w) == Some(&1)).count();
    (rare.len(), reemitted)
}

pub fn rare_values(f: &Frames) -> RareValues {
    let columns: Vec<RareColumn> = (0..f.columns.len())
        .into_par_iter()
        .map(|c| {
            let (tr, te) = rare(&f.train.cols[c], &f.synthetic.cols[c]);
            let (hr, he) = rare(&f.holdout.cols[c], &f.synthetic.cols[c]);
            RareColumn {
                column: f.columns[c].name.clone(),
                train_rare: tr,
                train_reemitted: te,
                holdout_rare: hr,
                holdout_reemitted: he,
            }
        })
        .collect();
    let sum = |g: fn(&RareColumn) -> usize| columns.iter().map(g).sum::<usize>();
    let (tr, te, hr, he) =
        (sum(|c| c.train_rare), sum(|c| c.train_reemitted), sum(|c| c.holdout_rare), sum(|c| c.holdout_reemitted));
    let rate = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    RareValues {
        train_rare: tr,
        train_reemitted: te,
        rate_train: rate(te, tr),
        holdout_rare: hr,
        holdout_reemitted: he,
        rate_holdout: rate(he, hr),
        excess: rate(te, tr) - rate(he, hr),
        columns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate() {
        assert_eq!(quantile(&mut [3.0, 1.0, 2.0], 0.5), 2.0);
        assert_eq!(quantile(&mut [1.0, 2.0], 0.5), 1.5);
        assert!(quantile(&mut [], 0.5).is_nan());
    }

    fn numeric_frames(train: Frame, holdout: Frame, synthetic: Frame) -> Frames {
        let d = train.cols.len();
        let columns = (0..d)
            .map(|c| super::super::frame::AuditColumn {
                name: format!("x{c}"),
                kind: crate::schema::ColumnType::Float,
                role: crate::schema::Role::Attribute,
                labels: vec![],
                lo: 0.0,
                hi: 1.0,
            })
            .collect();
        Frames { columns, train, holdout, synthetic, synthetic_out_of_domain: vec![0; d] }
    }

    fn uniform(n: usize, d: usize, seed: u64) -> Frame {
        let cols = (0..d)
            .map(|c| {
                Values::Num(
                    (0..n)
                        .map(|i| (mix(mix(seed) ^ mix((c as u64) << 32 | i as u64)) >> 11) as f64 / (1u64 << 53) as f64)
                        .collect(),
                )
            })
            .collect();
        Frame { file: "t".into(), rows: n, cols }
    }

    #[test]
    fn near_identical_synthetic_rows_are_one_observation_not_many() {
        // Train 800 and holdout 200 real rows; the synthetic table is 500 copies of one fresh
        // point with tiny jitter: they all share one nearest real row, so "closer to train" is
        // all or nothing (p = 0.8) and says nothing about memorization. The interval must be
        // wide enough that the gate (ci_low - expected <= 0.02) passes, whichever way it fell.
        let (t, h) = (uniform(800, 4, 1), uniform(200, 4, 2));
        let one = uniform(1, 4, 3);
        let jitter = uniform(500, 4, 4);
        let cols = (0..4)
            .map(|c| match (&one.cols[c], &jitter.cols[c]) {
                (Values::Num(p), Values::Num(j)) => Values::Num(j.iter().map(|&e| p[0] + 1e-6 * e).collect()),
                _ => unreachable!(),
            })
            .collect();
        let s = Frame { file: "s".into(), rows: 500, cols };
        let f = numeric_frames(t, h, s);
        let d = dcr(&f, &neighbours(&f, 0, MAX_QUERIES), 0, 200);
        assert!(d.closer_to_train == 0.0 || d.closer_to_train == 1.0, "{}", d.closer_to_train);
        assert!(d.effective_rows < 1.5, "{}", d.effective_rows);
        assert!(d.sd_split > 0.35 && d.ci_low_excess <= 0.02, "{d:?}");
        // A fresh sample of the same population: about 500 independent rows, and the interval
        // covers the expected share (a 1.5 sd margin each side: fails about 1 time in 7 for a
        // random seed; this seed is fixed).
        let f = numeric_frames(uniform(800, 4, 1), uniform(200, 4, 2), uniform(500, 4, 5));
        let d = dcr(&f, &neighbours(&f, 0, MAX_QUERIES), 0, 200);
        assert!(d.effective_rows > 250.0, "{}", d.effective_rows);
        assert!(d.ci_low < d.expected && d.expected < d.ci_high, "{d:?}");
        assert!((d.sd_split - (0.8f64 * 0.2 / d.effective_rows).sqrt()).abs() < 0.01, "{d:?}");
    }

    #[test]
    fn subsampled_share_is_within_its_stated_error_of_the_exact_share() {
        // 20,000 synthetic rows, a quarter of them copies of train rows (so the exact share
        // closer to train is about 0.25 + 0.75 * 0.5, not the null 0.5); train and holdout
        // 3,000 rows each. The exact share measures every synthetic row; the subsample measures
        // 2,000 of them against the full train and holdout.
        let (t, h) = (uniform(3000, 4, 11), uniform(3000, 4, 12));
        let fresh = uniform(20_000, 4, 13);
        let cols = (0..4)
            .map(|c| match (&t.cols[c], &fresh.cols[c]) {
                (Values::Num(tv), Values::Num(fv)) => {
                    Values::Num((0..20_000).map(|i| if i % 4 == 0 { tv[(i / 4) % 3000] } else { fv[i] }).collect())
                }
                _ => unreachable!(),
            })
            .collect();
        let f = numeric_frames(t, h, Frame { file: "s".into(), rows: 20_000, cols });
        let exact = dcr(&f, &neighbours(&f, 0, usize::MAX), 0, 200);
        assert_eq!(exact.sampling.synthetic_measured, 20_000);
        assert_eq!(exact.sampling.sd_sampling, 0.0);
        assert!(exact.sampling.method.starts_with("exact"));
        assert!(exact.closer_to_train > 0.55, "{}", exact.closer_to_train);
        for seed in [1u64, 2, 3] {
            let sub = dcr(&f, &neighbours(&f, seed, 2000), seed, 1000);
            let s = &sub.sampling;
            assert_eq!((s.synthetic_rows, s.synthetic_measured, s.holdout_measured), (20_000, 2000, 2000));
            assert!(s.method.contains("2000 of 20000 synthetic rows"), "{}", s.method);
            // sd_sampling is the sd of a mean of 2,000 of 20,000 rows drawn without replacement
            // (p near 0.62: about 0.0103); 3.29 sd is the two-sided 99.9% normal interval, so a
            // random seed fails this about 1 time in 1,000 (3 seeds: 0.3%). These seeds are fixed.
            assert!(s.sd_sampling > 0.009 && s.sd_sampling < 0.0115, "{}", s.sd_sampling);
            assert!(
                (sub.closer_to_train - exact.closer_to_train).abs() <= 3.29 * s.sd_sampling,
                "seed {seed}: {} vs exact {} (sd {})",
                sub.closer_to_train,
                exact.closer_to_train,
                s.sd_sampling
            );
            // The reported 95% interval resamples the measured rows, so it is at least as wide
            // as the sampling error alone.
            assert!(sub.sd_synthetic >= 0.9 * s.sd_sampling, "{} vs {}", sub.sd_synthetic, s.sd_sampling);
        }
    }

    #[test]
    fn rare_values_count_singletons_and_extremes() {
        // Train: 1 once, 2 twice, 5 once (max); min 1 is also a singleton.
        let t = Values::Num(vec![1.0, 2.0, 2.0, 5.0, f64::NAN]);
        let s = Values::Num(vec![5.0, 2.0, 7.0]);
        // Rare set {1, 5}; the synthetic table emits 5 (singles out a row) and 2 (not rare).
        assert_eq!(rare(&t, &s), (2, 1));
        // A non-unique maximum is in the rare set but does not single anyone out.
        let t = Values::Num(vec![1.0, 9.0, 9.0]);
        assert_eq!(rare(&t, &Values::Num(vec![9.0, 1.0])), (2, 1));
    }
}
