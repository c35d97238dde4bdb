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

use super::distance::{self, Index, RefMatrix, mix};
use super::frame::{Binned, Frame, Frames, Values, gower_scaled};

/// z for a 95% interval.
const Z: f64 = 1.959963984540054;

/// k successes in n attempts, with a Wilson 95% interval. Nearest-neighbour attacks count a
/// target's success as its probability under a uniformly random choice among equally near
/// synthetic rows (computed exactly, so `successes` may be fractional): the expectation of
/// random tie-breaking without its noise, and never index order.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Rate {
    pub successes: f64,
    pub attempts: usize,
    /// Wilson centre (k + z^2/2) / (n + z^2).
    pub rate: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

impl Rate {
    pub fn wilson(k: f64, n: usize) -> Rate {
        debug_assert!(k <= n as f64 + 1e-9);
        let (nf, z2) = (n as f64, Z * Z);
        let kf = k.clamp(0.0, nf);
        if n == 0 {
            return Rate { successes: 0.0, attempts: 0, rate: 0.0, ci_low: 0.0, ci_high: 1.0 };
        }
        let p = (kf + z2 / 2.0) / (nf + z2);
        let e = Z / (nf + z2) * (kf * (nf - kf) / nf + z2 / 4.0).sqrt();
        Rate { successes: kf, attempts: n, rate: p, ci_low: (p - e).max(0.0), ci_high: (p + e).min(1.0) }
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
    /// Residual risk, clipped to [0, 1], with its 95% interval. The default gates compare the
    /// interval's lower bound with their threshold: they fail when the attack works
    /// significantly better on train than on holdout people. Null when too few attempts were
    /// made to gate on (see `warnings`).
    pub risk: Option<f64>,
    pub risk_ci_low: Option<f64>,
    pub risk_ci_high: Option<f64>,
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
    if let Some(b) = baseline
        && b >= pa
    {
        warnings.push(format!(
                "the attack ({pa:.3}) does no better than guessing from the synthetic table ({b:.3}): it is too weak to show a risk"
            ));
    }
    let clip = |x: f64| x.clamp(0.0, 1.0);
    AttackResult {
        attack,
        control,
        baseline,
        risk: Some(clip(r)),
        risk_ci_low: Some(clip(r - er)),
        risk_ci_high: Some(clip(r + er)),
        warnings,
    }
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
        let mut v =
            gower_scaled(&f.columns[c], &[&f.train.cols[c], &f.holdout.cols[c], &f.synthetic.cols[c]]).into_iter();
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

/// Distance terms (target x distinct synthetic row x column) one nearest-neighbour search may
/// cost before targets are sampled: every target is scored when the tables allow (on Adult 16k,
/// all of them), which removes the sampling noise from the attack; larger tables get a seeded
/// sample of at least `--attacks` targets.
const SEARCH_BUDGET: f64 = 5.0e9;

/// Targets to score out of `rows`: all when `rows * cost` fits the budget, else a sample of at
/// least `attacks` (all rows when fewer).
fn target_count(rows: usize, attacks: usize, cost: f64) -> usize {
    if rows as f64 * cost <= SEARCH_BUDGET { rows } else { ((SEARCH_BUDGET / cost) as usize).max(attacks).min(rows) }
}

/// The synthetic rows grouped by their values on a column subset: the distinct value rows
/// laid out for the distance kernel, and the synthetic rows behind each. Equal rows are at
/// equal distance from any target, so searching the distinct rows finds every tied row.
struct Distinct {
    matrix: RefMatrix,
    /// For many distinct rows, an exact pivot index: a target whose nearest row is unique (the
    /// second-nearest distance is larger) needs no full scan.
    index: Option<Index>,
    members: Vec<Vec<u32>>,
    /// Per synthetic row, its distinct row.
    of_row: Vec<u32>,
    cols: usize,
}

/// Distinct rows from which a search goes through the pivot index first.
const INDEX_FROM: usize = 2000;

impl Distinct {
    fn new(cols: &[Vec<f32>], rows: usize) -> Distinct {
        let mut ids: HashMap<Vec<u32>, u32> = HashMap::with_capacity(rows);
        let mut members: Vec<Vec<u32>> = Vec::new();
        let mut reps: Vec<usize> = Vec::new();
        let mut of_row = Vec::with_capacity(rows);
        for i in 0..rows {
            let key: Vec<u32> = cols.iter().map(|c| c[i].to_bits()).collect();
            let id = *ids.entry(key).or_insert_with(|| {
                members.push(Vec::new());
                reps.push(i);
                (members.len() - 1) as u32
            });
            members[id as usize].push(i as u32);
            of_row.push(id);
        }
        let index = (reps.len() >= INDEX_FROM).then(|| {
            let distinct: Vec<Vec<f32>> = cols.iter().map(|c| reps.iter().map(|&i| c[i]).collect()).collect();
            Index::new(&refs(&distinct), 0x1D)
        });
        Distinct { matrix: RefMatrix::new(&refs(cols), &reps), index, members, of_row, cols: cols.len() }
    }

    /// Cost of one target's search, in distance terms.
    fn cost(&self) -> f64 {
        (self.members.len() * self.cols.max(1)) as f64
    }

    /// The distinct rows nearest to `q` (every one at the smallest distance), in id order.
    fn nearest(&self, q: &[f32], buf: &mut Vec<f32>) -> Vec<u32> {
        if let Some(ix) = &self.index {
            let (d1, d2, row) = distance::top2_one(q, ix, buf);
            if d2 > d1 && row != u32::MAX {
                return vec![row];
            }
        }
        buf.resize(self.matrix.rows(), 0.0);
        distance::all_distances(q, &self.matrix, buf);
        let best = buf.iter().copied().fold(f32::INFINITY, f32::min);
        buf.iter().enumerate().filter(|&(_, &x)| x == best).map(|(i, _)| i as u32).collect()
    }

    fn rows_of(&self, ids: &[u32]) -> usize {
        ids.iter().map(|&k| self.members[k as usize].len()).sum()
    }
}

fn row_of(cols: &[Vec<f32>], t: usize) -> Vec<f32> {
    cols.iter().map(|c| c[t]).collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct Linkage {
    pub columns_a: Vec<String>,
    pub columns_b: Vec<String>,
    pub neighbours: usize,
    /// Whether every train and holdout row was a target (else a seeded sample).
    pub all_targets: bool,
    #[serde(flatten)]
    pub result: AttackResult,
}

/// Nearest-neighbour linkage: a target's A-part and B-part are looked up separately in the
/// synthetic table; success when one synthetic row is among the k nearest of both. With one
/// neighbour, a target's success is the exact probability that a random choice among the
/// nearest rows on A and a random choice among the nearest rows on B pick the same row.
pub fn linkage(f: &Frames, a: &[usize], b: &[usize], k: usize, attacks: usize, seed: u64) -> Linkage {
    let sa = scaled(f, a);
    let sb = scaled(f, b);
    let (da, db) = (Distinct::new(&sa.synthetic, f.synthetic.rows), Distinct::new(&sb.synthetic, f.synthetic.rows));
    let cost = da.cost() + db.cost();
    let all_s: Vec<usize> = (0..f.synthetic.rows).collect();
    let (ra, rb) = if k > 1 {
        (Some(RefMatrix::new(&refs(&sa.synthetic), &all_s)), Some(RefMatrix::new(&refs(&sb.synthetic), &all_s)))
    } else {
        (None, None)
    };
    let mut all_targets = true;
    let mut run = |ta: &[Vec<f32>], tb: &[Vec<f32>], rows: usize, salt: u64| {
        let n = target_count(rows, attacks, cost);
        all_targets &= n == rows;
        let idx = sample(rows, n, seed ^ salt);
        let hits: f64 = match (&ra, &rb) {
            (Some(ra), Some(rb)) => {
                let na = knn(ta, &idx, ra, k, seed ^ 0x11);
                let nb = knn(tb, &idx, rb, k, seed ^ 0x22);
                na.iter().zip(&nb).filter(|(x, y)| x.iter().any(|i| y.contains(i))).count() as f64
            }
            _ => idx
                .par_iter()
                .map_init(Vec::new, |buf, &t| {
                    let near_a = da.nearest(&row_of(ta, t), buf);
                    let near_b = db.nearest(&row_of(tb, t), buf);
                    // Rows nearest on A whose B-part is among the nearest on B.
                    let both: usize = near_a
                        .iter()
                        .flat_map(|&g| &da.members[g as usize])
                        .filter(|&&s| near_b.binary_search(&db.of_row[s as usize]).is_ok())
                        .count();
                    both as f64 / (da.rows_of(&near_a) as f64 * db.rows_of(&near_b) as f64)
                })
                .sum(),
        };
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
        all_targets,
        result: residual(attack, control, Some(1.0 - miss)),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Inference {
    pub secret: String,
    pub known: Vec<String>,
    /// Numeric secrets: a guess succeeds within this relative tolerance.
    pub tolerance: Option<f64>,
    /// Whether every train and holdout row was a target (else a seeded sample).
    pub all_targets: bool,
    #[serde(flatten)]
    pub result: AttackResult,
}

/// Attribute inference: guess the secret as that of the nearest synthetic row on the known
/// columns. A target's success is the share of its nearest synthetic rows (all those at the
/// smallest distance) whose secret is right: the exact success probability of a random choice
/// among them.
pub fn inference(f: &Frames, known: &[usize], secret: usize, attacks: usize, seed: u64, tolerance: f64) -> Inference {
    let sk = scaled(f, known);
    let ds = Distinct::new(&sk.synthetic, f.synthetic.rows);
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
    let mut all_targets = true;
    let mut run = |targets: &[Vec<f32>], real: &Frame, salt: u64| {
        let n = target_count(real.rows, attacks, ds.cost());
        all_targets &= n == real.rows;
        let idx = sample(real.rows, n, seed ^ salt);
        let hits: f64 = idx
            .par_iter()
            .map_init(Vec::new, |buf, &t| {
                let near = ds.nearest(&row_of(targets, t), buf);
                let rows = near.iter().flat_map(|&g| &ds.members[g as usize]);
                let right = rows.clone().filter(|&&g| success(g as usize, real, t)).count();
                right as f64 / rows.count().max(1) as f64
            })
            .sum();
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
                .filter(|(j, t)| {
                    success((mix(seed ^ 0x8D ^ *j as u64) % f.synthetic.rows as u64) as usize, &f.train, **t)
                })
                .count();
            hits as f64 / idx.len().max(1) as f64
        }
    };
    Inference {
        secret: f.columns[secret].name.clone(),
        known: known.iter().map(|&c| f.columns[c].name.clone()).collect(),
        tolerance: f.columns[secret].is_numeric().then_some(tolerance),
        all_targets,
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

impl Cond {
    /// (column, kind, value bits): equal keys, equal conditions.
    fn key(&self) -> (usize, u8, u64) {
        match *self {
            Cond::Missing(c) => (c, 0, 0),
            Cond::Eq(c, w) => (c, 1, w),
            Cond::Le(c, v) => (c, 2, v.to_bits()),
            Cond::Ge(c, v) => (c, 3, v.to_bits()),
        }
    }
}

fn holds(fr: &Frame, row: usize, c: &Cond) -> bool {
    match *c {
        Cond::Missing(col) => fr.cols[col].is_missing(row),
        Cond::Eq(col, w) => fr.cols[col].word(row) == w,
        Cond::Le(col, v) => matches!(&fr.cols[col], Values::Num(x) if x[row] <= v),
        Cond::Ge(col, v) => matches!(&fr.cols[col], Values::Num(x) if x[row] >= v),
    }
}

/// Rows of a frame (all or a subset) indexed per column, so that a predicate is checked on the
/// rows of its most selective condition only: categories by value, numbers sorted.
struct RowIndex<'a> {
    fr: &'a Frame,
    cols: Vec<ColIndex>,
}

enum ColIndex {
    /// Rows per category code (code 0 = missing).
    Cat(Vec<Vec<u32>>),
    /// Non-missing rows sorted by value, their values, and the missing rows.
    Num { rows: Vec<u32>, values: Vec<f64>, missing: Vec<u32> },
}

impl<'a> RowIndex<'a> {
    fn new(fr: &'a Frame, rows: &[usize]) -> RowIndex<'a> {
        let cols = fr
            .cols
            .par_iter()
            .map(|v| match v {
                Values::Cat(x) => {
                    let k = rows.iter().map(|&r| x[r] as usize + 1).max().unwrap_or(1);
                    let mut by = vec![Vec::new(); k];
                    rows.iter().for_each(|&r| by[x[r] as usize].push(r as u32));
                    ColIndex::Cat(by)
                }
                Values::Num(x) => {
                    let (mut present, missing): (Vec<u32>, Vec<u32>) =
                        rows.iter().map(|&r| r as u32).partition(|&r| !x[r as usize].is_nan());
                    present.sort_by(|&a, &b| x[a as usize].total_cmp(&x[b as usize]));
                    let values = present.iter().map(|&r| x[r as usize]).collect();
                    ColIndex::Num { rows: present, values, missing }
                }
            })
            .collect();
        RowIndex { fr, cols }
    }

    /// The rows satisfying one condition.
    fn rows(&self, c: &Cond) -> &[u32] {
        let col = match *c {
            Cond::Missing(col) | Cond::Eq(col, _) | Cond::Le(col, _) | Cond::Ge(col, _) => col,
        };
        match (&self.cols[col], *c) {
            (ColIndex::Cat(by), Cond::Missing(_)) => by.first().map_or(&[], Vec::as_slice),
            (ColIndex::Cat(by), Cond::Eq(_, w)) => by.get(w as usize).map_or(&[], Vec::as_slice),
            (ColIndex::Cat(_), _) => &[],
            (ColIndex::Num { missing, .. }, Cond::Missing(_)) => missing,
            (ColIndex::Num { rows, values, .. }, Cond::Eq(_, w)) => {
                let v = f64::from_bits(w);
                let lo = values.partition_point(|&x| x < v);
                let hi = values.partition_point(|&x| x <= v);
                &rows[lo..hi.max(lo)]
            }
            (ColIndex::Num { rows, values, .. }, Cond::Le(_, v)) => &rows[..values.partition_point(|&x| x <= v)],
            (ColIndex::Num { rows, values, .. }, Cond::Ge(_, v)) => &rows[values.partition_point(|&x| x < v)..],
        }
    }

    /// Rows matching all conditions, counting up to 2.
    fn matches(&self, p: &[Cond]) -> usize {
        let Some(smallest) = p.iter().map(|c| self.rows(c)).min_by_key(|r| r.len()) else {
            return 0;
        };
        let mut n = 0;
        for &r in smallest {
            if p.iter().all(|c| holds(self.fr, r as usize, c)) {
                n += 1;
                if n == 2 {
                    break;
                }
            }
        }
        n
    }
}

/// Multivariate singling out makes up to this many random tries per requested predicate
/// (anonymeter caps its tries too): on Adult about one try in 200 singles out one synthetic row.
pub const TRIES_PER_PREDICATE: usize = 500;

/// Singling-out risk is computed from at least this many predicates, or not at all: with fewer,
/// the interval is too wide (about +-0.08 at 500) to gate on.
pub const MIN_PREDICATES: usize = 500;

#[derive(Debug, Clone, Serialize)]
pub struct SinglingOut {
    /// Predicates asked for (`--attacks`).
    pub requested: usize,
    /// Distinct predicates built from the synthetic table that single out one synthetic row,
    /// and run on train and holdout: the attempts of both rates.
    pub predicates: usize,
    /// Multivariate: random predicates tried to find them. Univariate: the candidates (every
    /// unique value, extreme and single null), of which `requested` are drawn.
    pub tries: usize,
    /// Below this many predicates the risk is not computed (null) and its gate is skipped.
    pub min_predicates: usize,
    /// Rows of train and holdout the predicates were run on (the larger is subsampled so that
    /// both are equal: a predicate singles out more easily in a smaller table).
    pub rows_compared: usize,
    #[serde(flatten)]
    pub result: AttackResult,
}

fn singling_out_run(f: &Frames, preds: &[Vec<Cond>], requested: usize, tries: usize, seed: u64) -> SinglingOut {
    let m = f.train.rows.min(f.holdout.rows);
    let t_rows = sample(f.train.rows, m, seed ^ 0x51);
    let h_rows = sample(f.holdout.rows, m, seed ^ 0x52);
    let (ti, hi) = rayon::join(|| RowIndex::new(&f.train, &t_rows), || RowIndex::new(&f.holdout, &h_rows));
    let hits = |ix: &RowIndex| preds.par_iter().filter(|p| ix.matches(p) == 1).count() as f64;
    let attack = Rate::wilson(hits(&ti), preds.len());
    let control = Rate::wilson(hits(&hi), preds.len());
    let mut result = residual(attack, control, None);
    if preds.len() < MIN_PREDICATES {
        result.warnings.push(format!(
            "only {} predicate(s) single out one synthetic row (asked for {requested}; at least {MIN_PREDICATES} are needed): \
             the risk is not computed and its gate is skipped",
            preds.len()
        ));
        (result.risk, result.risk_ci_low, result.risk_ci_high) = (None, None, None);
    }
    SinglingOut { requested, predicates: preds.len(), tries, min_predicates: MIN_PREDICATES, rows_compared: m, result }
}

/// Univariate singling out: `is null` (one null in the synthetic table), `<= min`, `>= max`,
/// `== v` for values unique in the synthetic table.
pub fn singling_out_univariate(f: &Frames, attacks: usize, seed: u64) -> SinglingOut {
    let s = &f.synthetic;
    let all: Vec<usize> = (0..s.rows).collect();
    let si = RowIndex::new(s, &all);
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
                    if si.matches(&[p]) == 1 {
                        preds.push(vec![p]);
                    }
                }
            }
        }
        let mut unique: Vec<u64> = count.into_iter().filter(|(_, n)| *n == 1).map(|(w, _)| w).collect();
        unique.sort_unstable();
        preds.extend(unique.into_iter().map(|w| vec![Cond::Eq(c, w)]));
    }
    let candidates = preds.len();
    let keep = sample(preds.len(), attacks, seed ^ 0x50);
    let preds: Vec<Vec<Cond>> = keep.into_iter().map(|i| preds[i].clone()).collect();
    singling_out_run(f, &preds, attacks, candidates, seed)
}

/// Multivariate singling out: three conditions from a random synthetic row (`>= v` above the
/// column's synthetic median, else `<= v`; `== v` for categories; `is null`), kept when they
/// single out one synthetic row and differ from those kept before. Tries continue until
/// `attacks` predicates are found or `TRIES_PER_PREDICATE * attacks` tries were made.
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
    let si = RowIndex::new(s, &all);
    let per = 3.min(d);
    let attempt = |k: u64| -> Option<Vec<Cond>> {
        let h = mix(seed ^ 0x60 ^ k.wrapping_mul(0x9E37_79B9));
        let row = (h % s.rows as u64) as usize;
        // `per` distinct columns drawn from the hash (no shuffle of all columns per try: the
        // tries run into the hundreds of thousands).
        let mut cols = [0usize; 3];
        let (mut k, mut j) = (0, 1u64);
        while k < per {
            let c = (mix(h ^ j.wrapping_mul(0xA24B_AED4_963E_E407)) % d as u64) as usize;
            j += 1;
            if !cols[..k].contains(&c) {
                cols[k] = c;
                k += 1;
            }
        }
        let mut p: Vec<Cond> = cols[..per]
            .iter()
            .map(|&c| match &s.cols[c] {
                v if v.is_missing(row) => Cond::Missing(c),
                Values::Num(x) if x[row] > medians[c] => Cond::Ge(c, x[row]),
                Values::Num(x) => Cond::Le(c, x[row]),
                v => Cond::Eq(c, v.word(row)),
            })
            .collect();
        p.sort_by_key(|c| c.key());
        (si.matches(&p) == 1).then_some(p)
    };
    let cap = attacks.saturating_mul(TRIES_PER_PREDICATE) as u64;
    let mut preds: Vec<Vec<Cond>> = Vec::with_capacity(attacks);
    let mut seen = std::collections::HashSet::new();
    let (mut next, mut tries) = (0u64, 0u64);
    while preds.len() < attacks && next < cap {
        // Batches sized from the success rate so far; results are taken in try order, so the
        // outcome does not depend on the batching or the threads.
        let rate =
            if tries == 0 { 0.05 } else { (preds.len() as f64 / tries as f64).max(1.0 / TRIES_PER_PREDICATE as f64) };
        // At least 1024 tries a batch, never past the cap (a small --attacks makes the cap smaller
        // than 1024, where `clamp` would panic).
        let batch = (((attacks - preds.len()) as f64 / rate * 1.2) as u64).max(1024).min(cap - next);
        let found: Vec<(u64, Vec<Cond>)> =
            (next..next + batch).into_par_iter().filter_map(|k| attempt(k).map(|p| (k, p))).collect();
        tries = next + batch;
        for (k, p) in found {
            if seen.insert(p.iter().map(Cond::key).collect::<Vec<_>>()) {
                preds.push(p);
                if preds.len() == attacks {
                    tries = k + 1;
                    break;
                }
            }
        }
        next += batch;
    }
    singling_out_run(f, &preds, attacks, tries as usize, seed)
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
        sgroups
            .entry(key(&bins.synthetic, i))
            .and_modify(|g| {
                if *g != Some(v) {
                    *g = None
                }
            })
            .or_insert(Some(v));
    }
    let measure = |t: &Vec<Vec<u32>>, n: usize| -> (f64, f64) {
        let mut groups: HashMap<Vec<u32>, Option<u32>> = HashMap::new();
        for i in 0..n {
            let v = t[secret][i];
            groups
                .entry(key(t, i))
                .and_modify(|g| {
                    if *g != Some(v) {
                        *g = None
                    }
                })
                .or_insert(Some(v));
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
    use crate::evaluate::frame::AuditColumn;
    use crate::schema::{ColumnType, Role};

    #[test]
    fn wilson_matches_the_formula() {
        let r = Rate::wilson(30.0, 100);
        // Centre (30 + 1.92) / (100 + 3.84) and half-width from the design note.
        assert!((r.rate - 0.30741).abs() < 1e-4, "{r:?}");
        assert!((r.ci_low - 0.2189).abs() < 1e-3 && (r.ci_high - 0.3959).abs() < 1e-3, "{r:?}");
        let z = Rate::wilson(0.0, 10);
        assert_eq!(z.ci_low, 0.0);
        assert!(z.ci_high > 0.2);
    }

    #[test]
    fn residual_risk_is_relative_to_the_control() {
        let a = Rate::wilson(600.0, 1000);
        let c = Rate::wilson(600.0, 1000);
        assert!(residual(a, c, None).risk.unwrap() < 1e-12);
        let a = Rate::wilson(800.0, 1000);
        let c = Rate::wilson(500.0, 1000);
        let r = residual(a, c, Some(0.5));
        let risk = r.risk.unwrap();
        assert!((risk - (a.rate - c.rate) / (1.0 - c.rate)).abs() < 1e-12);
        assert!(r.risk_ci_low.unwrap() < risk && risk < r.risk_ci_high.unwrap());
        // A baseline at or above the attack is flagged.
        assert!(!residual(c, c, Some(0.6)).warnings.is_empty());
    }

    fn cat(name: &str, k: usize) -> AuditColumn {
        AuditColumn {
            name: name.into(),
            kind: ColumnType::Categorical,
            role: Role::Attribute,
            labels: (0..=k).map(|i| format!("v{i}")).collect(),
            lo: f64::NAN,
            hi: f64::NAN,
        }
    }

    fn frame(cols: Vec<Vec<u32>>) -> Frame {
        Frame { file: "t".into(), rows: cols[0].len(), cols: cols.into_iter().map(Values::Cat).collect() }
    }

    /// Random categorical table: `d` columns of `k` values (codes 1..=k), `n` rows.
    fn random(n: usize, d: usize, k: u64, seed: u64) -> Frame {
        frame(
            (0..d)
                .map(|c| (0..n).map(|i| 1 + (mix(mix(seed) ^ mix((c as u64) << 32 | i as u64)) % k) as u32).collect())
                .collect(),
        )
    }

    #[test]
    fn inference_counts_ties_as_their_exact_success_probability() {
        // Known column q (2 values), secret s (2 values). The synthetic table has, for q = 1,
        // three rows with s = 1 and one with s = 2; for q = 2, one row of each.
        let columns = vec![cat("q", 2), cat("s", 2)];
        let synthetic = frame(vec![vec![1, 1, 1, 1, 2, 2], vec![1, 1, 1, 2, 1, 2]]);
        // Train targets: (q=1, s=1) and (q=2, s=2): success 3/4 and 1/2. Holdout: (q=1, s=2): 1/4.
        let train = frame(vec![vec![1, 2], vec![1, 2]]);
        let holdout = frame(vec![vec![1], vec![2]]);
        let f = Frames { columns, train, holdout, synthetic, synthetic_out_of_domain: vec![0, 0] };
        let r = inference(&f, &[0], 1, 10, 0, 0.05);
        assert!(r.all_targets);
        assert!((r.result.attack.successes - 1.25).abs() < 1e-12, "{:?}", r.result.attack);
        assert!((r.result.control.successes - 0.25).abs() < 1e-12, "{:?}", r.result.control);
        // The seed plays no part when every target is scored.
        let again = inference(&f, &[0], 1, 10, 99, 0.05);
        assert_eq!(again.result.attack.successes, r.result.attack.successes);
        // Linkage (A = q, B = s): a target links when the random nearest row on q is the random
        // nearest row on s. Train (1, 1): 3 of the 4 q-rows have s = 1, among the 4 s=1 rows:
        // 3 / (4 * 4). Train (2, 2): 1 / (2 * 2).
        let l = linkage(&f, &[0], &[1], 1, 10, 0);
        assert!((l.result.attack.successes - (3.0 / 16.0 + 1.0 / 4.0)).abs() < 1e-12, "{:?}", l.result.attack);
    }

    #[test]
    fn multivariate_singling_out_reaches_the_requested_number_or_says_so() {
        // 8 columns of 12 values over 3,000 rows: some 3-condition predicates (1,728 value
        // combinations per column triple) single out a row.
        let columns: Vec<AuditColumn> = (0..8).map(|c| cat(&format!("c{c}"), 12)).collect();
        let f = Frames {
            columns,
            train: random(3000, 8, 12, 1),
            holdout: random(3000, 8, 12, 2),
            synthetic: random(3000, 8, 12, 3),
            synthetic_out_of_domain: vec![0; 8],
        };
        let so = singling_out_multivariate(&f, 600, 0);
        assert_eq!(so.predicates, 600, "{} tries", so.tries);
        assert_eq!(so.requested, 600);
        assert!(so.tries >= 600 && so.tries <= 600 * TRIES_PER_PREDICATE);
        assert!(so.result.risk.is_some());
        // The same seed gives the same predicates whatever the batching.
        assert_eq!(singling_out_multivariate(&f, 600, 0).result.attack.successes, so.result.attack.successes);
        // Three binary columns: at most 8 distinct predicates (fewer single out one row); the
        // tries stop at the cap, the count says how many, and no risk is computed from them.
        let columns: Vec<AuditColumn> = (0..3).map(|c| cat(&format!("c{c}"), 2)).collect();
        let mut synthetic = random(40, 3, 2, 3);
        // One row unique on all three columns.
        for c in 0..3 {
            if let Values::Cat(v) = &mut synthetic.cols[c] {
                v.iter_mut().for_each(|x| *x = 1);
                v[0] = 2;
            }
        }
        let f = Frames {
            columns,
            train: random(40, 3, 2, 1),
            holdout: random(40, 3, 2, 2),
            synthetic,
            synthetic_out_of_domain: vec![0; 3],
        };
        let so = singling_out_multivariate(&f, 600, 0);
        assert_eq!(so.predicates, 1);
        assert_eq!(so.tries, 600 * TRIES_PER_PREDICATE);
        assert!(so.result.risk.is_none() && so.result.risk_ci_low.is_none());
        assert!(so.result.warnings.iter().any(|w| w.contains("at least 500")), "{:?}", so.result.warnings);
    }
}
