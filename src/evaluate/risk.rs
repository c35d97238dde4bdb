//! Re-identification: attacks an adversary holding the synthetic table could run, each measured
//! on train targets (rows the generator saw) and on holdout targets (the control: what the
//! synthetic table reveals about people it never saw), so that the residual risk is what the
//! generator leaked, not what the population's structure gives away.
//!
//! Built from the published ideas (no code ported): nearest-neighbour record linkage, attribute
//! inference by the closest record (correct-attribution style), predicate singling out (Cohen &
//! Nissim 2020), DiSCO/DiO (Raab et al. 2024) and SDNist's unique/apparent matches. Rates carry
//! Wilson intervals; residual risk R = (p_attack - p_control) / (1 - p_control). Ties in
//! nearest-neighbour searches are broken at random (seeded); a missing value is a value.

use std::collections::HashMap;

use rayon::prelude::*;
use serde::Serialize;

use super::distance::{self, RefMatrix, mix};
use super::frame::{Binned, Frame, Frames, Values, gower_scaled};

/// z for a 95% interval.
const Z: f64 = 1.959963984540054;

/// k successes in n attempts, with a Wilson 95% interval.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Rate {
    pub successes: usize,
    pub attempts: usize,
    /// Wilson centre (k + z^2/2) / (n + z^2).
    pub rate: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

impl Rate {
    pub fn wilson(k: usize, n: usize) -> Rate {
        debug_assert!(k <= n);
        let (kf, nf, z2) = (k as f64, n as f64, Z * Z);
        if n == 0 {
            return Rate { successes: 0, attempts: 0, rate: 0.0, ci_low: 0.0, ci_high: 1.0 };
        }
        let p = (kf + z2 / 2.0) / (nf + z2);
        let e = Z / (nf + z2) * (kf * (nf - kf) / nf + z2 / 4.0).sqrt();
        Rate { successes: k, attempts: n, rate: p, ci_low: (p - e).max(0.0), ci_high: (p + e).min(1.0), }
    }

    fn error(&self) -> f64 {
        (self.ci_high - self.ci_low) / 2.0
    }
}

/// An attack on train targets against the same attack on holdout targets.
#[derive(Debug, Clone, Serialize)]
pub struct AttackResult {
    pub attack: Rate,
    pub control: Rate,
    /// Success rate of guessing at random from the synthetic table (a sanity check: it never
    /// enters the risk).
    pub baseline: Option<f64>,
    /// Residual risk, clipped to [0, 1], with its interval.
    pub risk: f64,
    pub risk_ci_low: f64,
    pub risk_ci_high: f64,
    pub warnings: Vec<String>,
}

fn residual(attack: Rate, control: Rate, baseline: Option<f64>) -> AttackResult {
    let (pa, pc) = (attack.rate, control.rate);
    let (ea, ec) = (attack.error(), control.error());
    let mut warnings = Vec::new();
    let (r, er) = if pc < 1.0 {
        let r = (pa - pc) / (1.0 - pc);
        let er = ((ea / (1.0 - pc)).powi(2) + (ec * (pa - 1.0) / (1.0 - pc).powi(2)).powi(2)).sqrt();
        (r, er)
    } else {
        warnings.push("the control attack always succeeds: the risk cannot be separated from the population".into());
        (0.0, 1.0)
    };
    if let Some(b) = baseline {
        if b >= pa {
            warnings.push(format!(
                "the attack ({pa:.3}) does no better than guessing from the synthetic table ({b:.3}): it is too weak to show a risk"
            ));
        }
    }
    let clip = |x: f64| x.clamp(0.0, 1.0);
    AttackResult { attack, control, baseline, risk: clip(r), risk_ci_low: clip(r - er), risk_ci_high: clip(r + er), warnings }
}

/// Seeded sample of at most `k` indices of `0..n`.
fn sample(n: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by_key(|&i| mix(seed ^ (i as u64).wrapping_mul(0x2545_F491_4F6C_DD1D)));
    idx.truncate(k);
    idx
}

/// Scaled columns `cols` of the three frames, for distance searches over a column subset.
struct Scaled {
    train: Vec<Vec<f32>>,
    holdout: Vec<Vec<f32>>,
    synthetic: Vec<Vec<f32>>,
}

fn scaled(f: &Frames, cols: &[usize]) -> Scaled {
    let mut out = Scaled { train: Vec::new(), holdout: Vec::new(), synthetic: Vec::new() };
    for &c in cols {
        let mut v = gower_scaled(&f.columns[c], &[&f.train.cols[c], &f.holdout.cols[c], &f.synthetic.cols[c]]).into_iter();
        out.train.push(v.next().unwrap_or_default());
        out.holdout.push(v.next().unwrap_or_default());
        out.synthetic.push(v.next().unwrap_or_default());
    }
    out
}

fn refs(v: &[Vec<f32>]) -> Vec<&[f32]> {
    v.iter().map(Vec::as_slice).collect()
}

/// The k nearest synthetic rows (on the scaled columns) of each target row.
fn knn(targets: &[Vec<f32>], idx: &[usize], synth: &RefMatrix, k: usize, seed: u64) -> Vec<Vec<usize>> {
    let d = targets.len();
    idx.par_iter()
        .map_init(Vec::new, |buf, &t| {
            let row: Vec<f32> = (0..d).map(|c| targets[c][t]).collect();
            distance::knn_one(&row, synth, k, seed, t as u64, buf)
        })
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct Linkage {
    pub columns_a: Vec<String>,
    pub columns_b: Vec<String>,
    pub neighbours: usize,
    #[serde(flatten)]
    pub result: AttackResult,
}

/// Nearest-neighbour linkage: a target's A-part and B-part are looked up separately in the
/// synthetic table; success when one synthetic row is among the k nearest of both.
pub fn linkage(f: &Frames, a: &[usize], b: &[usize], k: usize, attacks: usize, seed: u64) -> Linkage {
    let sa = scaled(f, a);
    let sb = scaled(f, b);
    let all_s: Vec<usize> = (0..f.synthetic.rows).collect();
    let ra = RefMatrix::new(&refs(&sa.synthetic), &all_s);
    let rb = RefMatrix::new(&refs(&sb.synthetic), &all_s);
    let run = |ta: &[Vec<f32>], tb: &[Vec<f32>], rows: usize, salt: u64| {
        let idx = sample(rows, attacks, seed ^ salt);
        let na = knn(ta, &idx, &ra, k, seed ^ 0x11);
        let nb = knn(tb, &idx, &rb, k, seed ^ 0x22);
        let hits = na.iter().zip(&nb).filter(|(x, y)| x.iter().any(|i| y.contains(i))).count();
        Rate::wilson(hits, idx.len())
    };
    let attack = run(&sa.train, &sb.train, f.train.rows, 0x7A);
    let control = run(&sa.holdout, &sb.holdout, f.holdout.rows, 0x7B);
    // Two independent random k-subsets of n rows meet with 1 - C(n-k, k) / C(n, k).
    let n = f.synthetic.rows as f64;
    let kk = k.min(f.synthetic.rows) as f64;
    let miss: f64 = (0..kk as usize).map(|i| (n - kk - i as f64).max(0.0) / (n - i as f64)).product();
    Linkage {
        columns_a: a.iter().map(|&c| f.columns[c].name.clone()).collect(),
        columns_b: b.iter().map(|&c| f.columns[c].name.clone()).collect(),
        neighbours: k,
        result: residual(attack, control, Some(1.0 - miss)),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Inference {
    pub secret: String,
    pub known: Vec<String>,
    /// Numeric secrets: a guess succeeds within this relative tolerance.
    pub tolerance: Option<f64>,
    #[serde(flatten)]
    pub result: AttackResult,
}

/// Attribute inference: guess the secret as that of the nearest synthetic row on the known
/// columns.
pub fn inference(f: &Frames, known: &[usize], secret: usize, attacks: usize, seed: u64, tolerance: f64) -> Inference {
    let sk = scaled(f, known);
    let rs = RefMatrix::new(&refs(&sk.synthetic), &(0..f.synthetic.rows).collect::<Vec<_>>());
    let success = |g: usize, real: &Frame, t: usize| -> bool {
        match (&f.synthetic.cols[secret], &real.cols[secret]) {
            (Values::Cat(s), Values::Cat(r)) => s[g] == r[t],
            (Values::Num(s), Values::Num(r)) => {
                let (g, t) = (s[g], r[t]);
                match (g.is_nan(), t.is_nan()) {
                    (true, true) => true,
                    (false, false) => (g - t).abs() <= tolerance * t.abs().max(1e-9),
                    _ => false,
                }
            }
            _ => false,
        }
    };
    let run = |targets: &[Vec<f32>], real: &Frame, salt: u64| {
        let idx = sample(real.rows, attacks, seed ^ salt);
        let nn = knn(targets, &idx, &rs, 1, seed ^ 0x33);
        let hits = idx.iter().zip(&nn).filter(|(t, g)| g.first().is_some_and(|&g| success(g, real, **t))).count();
        Rate::wilson(hits, idx.len())
    };
    let attack = run(&sk.train, &f.train, 0x8A);
    let control = run(&sk.holdout, &f.holdout, 0x8B);
    // Baseline: the secret of a random synthetic row. Exact for categories (sum_v p_S p_T),
    // estimated with seeded draws for numbers.
    let baseline = match (&f.synthetic.cols[secret], &f.train.cols[secret]) {
        (Values::Cat(s), Values::Cat(t)) => {
            let k = f.columns[secret].labels.len().max(1);
            let (mut ps, mut pt) = (vec![0.0; k], vec![0.0; k]);
            s.iter().for_each(|&c| ps[c as usize] += 1.0 / s.len() as f64);
            t.iter().for_each(|&c| pt[c as usize] += 1.0 / t.len() as f64);
            ps.iter().zip(&pt).map(|(a, b)| a * b).sum()
        }
        _ => {
            let idx = sample(f.train.rows, attacks, seed ^ 0x8C);
            let hits = idx
                .iter()
                .enumerate()
                .filter(|(j, t)| success((mix(seed ^ 0x8D ^ *j as u64) % f.synthetic.rows as u64) as usize, &f.train, **t))
                .count();
            hits as f64 / idx.len().max(1) as f64
        }
    };
    Inference {
        secret: f.columns[secret].name.clone(),
        known: known.iter().map(|&c| f.columns[c].name.clone()).collect(),
        tolerance: f.columns[secret].is_numeric().then_some(tolerance),
        result: residual(attack, control, Some(baseline)),
    }
}

/// A condition of a singling-out predicate.
#[derive(Debug, Clone, Copy)]
enum Cond {
    Missing(usize),
    Eq(usize, u64),
    Le(usize, f64),
    Ge(usize, f64),
}

fn holds(fr: &Frame, row: usize, c: &Cond) -> bool {
    match *c {
        Cond::Missing(col) => fr.cols[col].is_missing(row),
        Cond::Eq(col, w) => fr.cols[col].word(row) == w,
        Cond::Le(col, v) => matches!(&fr.cols[col], Values::Num(x) if x[row] <= v),
        Cond::Ge(col, v) => matches!(&fr.cols[col], Values::Num(x) if x[row] >= v),
    }
}

/// Rows of `fr` matching all conditions, counting up to 2.
fn matches(fr: &Frame, rows: &[usize], p: &[Cond]) -> usize {
    let mut n = 0;
    for &r in rows {
        if p.iter().all(|c| holds(fr, r, c)) {
            n += 1;
            if n == 2 {
                break;
            }
        }
    }
    n
}

#[derive(Debug, Clone, Serialize)]
pub struct SinglingOut {
    /// Predicates built from the synthetic table that single out one synthetic row.
    pub predicates: usize,
    /// Rows of train and holdout the predicates were run on (the larger is subsampled so that
    /// both are equal: a predicate singles out more easily in a smaller table).
    pub rows_compared: usize,
    #[serde(flatten)]
    pub result: AttackResult,
}

fn singling_out_run(f: &Frames, preds: &[Vec<Cond>], seed: u64) -> SinglingOut {
    let m = f.train.rows.min(f.holdout.rows);
    let t_rows = sample(f.train.rows, m, seed ^ 0x51);
    let h_rows = sample(f.holdout.rows, m, seed ^ 0x52);
    let hits = |fr: &Frame, rows: &[usize]| preds.par_iter().filter(|p| matches(fr, rows, p) == 1).count();
    let attack = Rate::wilson(hits(&f.train, &t_rows), preds.len());
    let control = Rate::wilson(hits(&f.holdout, &h_rows), preds.len());
    SinglingOut { predicates: preds.len(), rows_compared: m, result: residual(attack, control, None) }
}

/// Univariate singling out: `is null` (one null in the synthetic table), `<= min`, `>= max`,
/// `== v` for values unique in the synthetic table.
pub fn singling_out_univariate(f: &Frames, attacks: usize, seed: u64) -> SinglingOut {
    let s = &f.synthetic;
    let mut preds: Vec<Vec<Cond>> = Vec::new();
    for (c, v) in s.cols.iter().enumerate() {
        let mut count: HashMap<u64, usize> = HashMap::new();
        let mut nulls = 0;
        for i in 0..s.rows {
            if v.is_missing(i) {
                nulls += 1;
            } else {
                *count.entry(v.word(i)).or_default() += 1;
            }
        }
        if nulls == 1 {
            preds.push(vec![Cond::Missing(c)]);
        }
        if let Values::Num(x) = v {
            let vals = x.iter().filter(|v| !v.is_nan());
            if let (Some(lo), Some(hi)) = (vals.clone().copied().reduce(f64::min), vals.copied().reduce(f64::max)) {
                for p in [Cond::Le(c, lo), Cond::Ge(c, hi)] {
                    if matches(s, &(0..s.rows).collect::<Vec<_>>(), &[p]) == 1 {
                        preds.push(vec![p]);
                    }
                }
            }
        }
        let mut unique: Vec<u64> = count.into_iter().filter(|(_, n)| *n == 1).map(|(w, _)| w).collect();
        unique.sort_unstable();
        preds.extend(unique.into_iter().map(|w| vec![Cond::Eq(c, w)]));
    }
    let keep = sample(preds.len(), attacks, seed ^ 0x50);
    let preds: Vec<Vec<Cond>> = keep.into_iter().map(|i| preds[i].clone()).collect();
    singling_out_run(f, &preds, seed)
}

/// Multivariate singling out: three conditions from a random synthetic row (`>= v` above the
/// column's synthetic median, else `<= v`; `== v` for categories; `is null`), kept when they
/// single out one synthetic row.
pub fn singling_out_multivariate(f: &Frames, attacks: usize, seed: u64) -> SinglingOut {
    let s = &f.synthetic;
    let d = s.cols.len();
    let medians: Vec<f64> = s
        .cols
        .iter()
        .map(|v| match v {
            Values::Num(x) => {
                let mut y: Vec<f64> = x.iter().copied().filter(|v| !v.is_nan()).collect();
                y.sort_by(f64::total_cmp);
                y.get(y.len() / 2).copied().unwrap_or(f64::NAN)
            }
            Values::Cat(_) => f64::NAN,
        })
        .collect();
    let all: Vec<usize> = (0..s.rows).collect();
    let per = 3.min(d);
    let tries = 20 * attacks;
    let candidates: Vec<Vec<Cond>> = (0..tries as u64)
        .into_par_iter()
        .filter_map(|k| {
            let h = mix(seed ^ 0x60 ^ k.wrapping_mul(0x9E37_79B9));
            let row = (h % s.rows as u64) as usize;
            let mut cols: Vec<usize> = (0..d).collect();
            cols.sort_by_key(|&c| mix(h ^ c as u64));
            let p: Vec<Cond> = cols[..per]
                .iter()
                .map(|&c| match &s.cols[c] {
                    v if v.is_missing(row) => Cond::Missing(c),
                    Values::Num(x) if x[row] > medians[c] => Cond::Ge(c, x[row]),
                    Values::Num(x) => Cond::Le(c, x[row]),
                    v => Cond::Eq(c, v.word(row)),
                })
                .collect();
            (matches(s, &all, &p) == 1).then_some(p)
        })
        .collect();
    let preds: Vec<Vec<Cond>> = candidates.into_iter().take(attacks).collect();
    singling_out_run(f, &preds, seed)
}

#[derive(Debug, Clone, Serialize)]
pub struct Disco {
    pub quasi_identifiers: Vec<String>,
    pub secret: String,
    /// DiO: share of real rows whose quasi-identifier group (in the real table) has one secret
    /// value: disclosive in the original, whatever was synthesised.
    pub dio_train: f64,
    pub dio_holdout: f64,
    /// DiSCO: share of real rows whose quasi-identifiers appear in the synthetic table, where
    /// all those synthetic rows share one secret value and it is the real row's.
    pub disco_train: f64,
    pub disco_holdout: f64,
    /// `disco_train - disco_holdout`.
    pub excess: f64,
}

/// DiSCO and DiO on binned values (train's decile bins for numbers).
pub fn disco(f: &Frames, bins: &Binned, qi: &[usize], secret: usize) -> Disco {
    let key = |t: &Vec<Vec<u32>>, i: usize| -> Vec<u32> { qi.iter().map(|&c| t[c][i]).collect() };
    // Per synthetic QI group: its single secret value, or None when it has several.
    let mut sgroups: HashMap<Vec<u32>, Option<u32>> = HashMap::new();
    for i in 0..f.synthetic.rows {
        let v = bins.synthetic[secret][i];
        sgroups.entry(key(&bins.synthetic, i)).and_modify(|g| if *g != Some(v) { *g = None }).or_insert(Some(v));
    }
    let measure = |t: &Vec<Vec<u32>>, n: usize| -> (f64, f64) {
        let mut groups: HashMap<Vec<u32>, Option<u32>> = HashMap::new();
        for i in 0..n {
            let v = t[secret][i];
            groups.entry(key(t, i)).and_modify(|g| if *g != Some(v) { *g = None }).or_insert(Some(v));
        }
        let (mut dio, mut disco) = (0usize, 0usize);
        for i in 0..n {
            let k = key(t, i);
            if groups.get(&k).is_some_and(|g| g.is_some()) {
                dio += 1;
            }
            if sgroups.get(&k).is_some_and(|g| *g == Some(t[secret][i])) {
                disco += 1;
            }
        }
        (dio as f64 / n as f64, disco as f64 / n as f64)
    };
    let (dio_t, disco_t) = measure(&bins.train, f.train.rows);
    let (dio_h, disco_h) = measure(&bins.holdout, f.holdout.rows);
    Disco {
        quasi_identifiers: qi.iter().map(|&c| f.columns[c].name.clone()).collect(),
        secret: f.columns[secret].name.clone(),
        dio_train: dio_t,
        dio_holdout: dio_h,
        disco_train: disco_t,
        disco_holdout: disco_h,
        excess: disco_t - disco_h,
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ApparentSide {
    /// Rows unique on the quasi-identifiers in the real table that match a row unique on them
    /// in the synthetic table.
    pub matches: usize,
    /// `matches` as a share of the real table's rows.
    pub share: f64,
    /// Of those, the share whose other columns all agree too (a leaked record).
    pub full_agreement: f64,
    /// Histogram of the share of other columns that agree, in tenths (last bin = all agree).
    pub agreement_histogram: Vec<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApparentMatch {
    pub quasi_identifiers: Vec<String>,
    /// Rows unique on the quasi-identifiers in train / holdout.
    pub unique_train: usize,
    pub unique_holdout: usize,
    pub train: ApparentSide,
    pub holdout: ApparentSide,
}

/// SDNist's apparent match on exact quasi-identifier values.
pub fn apparent_match(f: &Frames, qi: &[usize]) -> ApparentMatch {
    let others: Vec<usize> = (0..f.columns.len()).filter(|c| !qi.contains(c)).collect();
    let uniques = |fr: &Frame| -> HashMap<Vec<u64>, usize> {
        let mut m: HashMap<Vec<u64>, (usize, usize)> = HashMap::new();
        for i in 0..fr.rows {
            m.entry(fr.key(i, qi)).and_modify(|e| e.0 += 1).or_insert((1, i));
        }
        m.into_iter().filter(|(_, (n, _))| *n == 1).map(|(k, (_, i))| (k, i)).collect()
    };
    let us = uniques(&f.synthetic);
    let side = |fr: &Frame, u: &HashMap<Vec<u64>, usize>| -> ApparentSide {
        let mut hist = vec![0usize; 11];
        let mut full = 0;
        let mut n = 0;
        for (k, &i) in u {
            if let Some(&j) = us.get(k) {
                n += 1;
                let agree = others.iter().filter(|&&c| fr.cols[c].word(i) == f.synthetic.cols[c].word(j)).count();
                let share = if others.is_empty() { 1.0 } else { agree as f64 / others.len() as f64 };
                hist[(share * 10.0).floor() as usize] += 1;
                if agree == others.len() {
                    full += 1;
                }
            }
        }
        ApparentSide {
            matches: n,
            share: n as f64 / fr.rows as f64,
            full_agreement: if n == 0 { 0.0 } else { full as f64 / n as f64 },
            agreement_histogram: hist,
        }
    };
    let (ut, uh) = (uniques(&f.train), uniques(&f.holdout));
    ApparentMatch {
        quasi_identifiers: qi.iter().map(|&c| f.columns[c].name.clone()).collect(),
        unique_train: ut.len(),
        unique_holdout: uh.len(),
        train: side(&f.train, &ut),
        holdout: side(&f.holdout, &uh),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_the_formula() {
        let r = Rate::wilson(30, 100);
        // Centre (30 + 1.92) / (100 + 3.84) and half-width from the design note.
        assert!((r.rate - 0.30741).abs() < 1e-4, "{r:?}");
        assert!((r.ci_low - 0.2189).abs() < 1e-3 && (r.ci_high - 0.3959).abs() < 1e-3, "{r:?}");
        let z = Rate::wilson(0, 10);
        assert_eq!(z.ci_low, 0.0);
        assert!(z.ci_high > 0.2);
    }

    #[test]
    fn residual_risk_is_relative_to_the_control() {
        let a = Rate::wilson(600, 1000);
        let c = Rate::wilson(600, 1000);
        assert!(residual(a, c, None).risk < 1e-12);
        let a = Rate::wilson(800, 1000);
        let c = Rate::wilson(500, 1000);
        let r = residual(a, c, Some(0.5));
        assert!((r.risk - (a.rate - c.rate) / (1.0 - c.rate)).abs() < 1e-12);
        assert!(r.risk_ci_low < r.risk && r.risk < r.risk_ci_high);
        // A baseline at or above the attack is flagged.
        assert!(!residual(c, c, Some(0.6)).warnings.is_empty());
    }
}
