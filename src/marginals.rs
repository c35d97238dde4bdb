//! Marginal counts of the encoded table: how many rows fall in each cell of an attribute subset.
//!
//! Counts are exact and private, so they come out wrapped in [`Sensitive`]: they can be combined
//! with released values (scores, errors) but reach a file or a log line only through a mechanism
//! of the privacy crate. Many subsets are counted in parallel, each in one pass over its columns.

use privsynth_privacy::Sensitive;
use rayon::prelude::*;

use crate::codec::EncodedTable;

/// Cell index layout of a marginal: attributes in the given order, the last varying fastest.
pub fn strides(sizes: &[usize]) -> Vec<usize> {
    let mut s = vec![1; sizes.len()];
    for i in (0..sizes.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * sizes[i + 1];
    }
    s
}

fn count_one(data: &EncodedTable, attrs: &[usize]) -> Vec<i64> {
    let sizes: Vec<usize> = attrs.iter().map(|&a| data.sizes()[a]).collect();
    let cells: usize = sizes.iter().product();
    let mut counts = vec![0i64; cells];
    match attrs {
        [] => counts[0] = data.rows() as i64,
        [a] => {
            for &c in data.codes(*a) {
                counts[c as usize] += 1;
            }
        }
        [a, b] => {
            let k = sizes[1];
            for (&x, &y) in data.codes(*a).iter().zip(data.codes(*b)) {
                counts[x as usize * k + y as usize] += 1;
            }
        }
        _ => {
            let st = strides(&sizes);
            let mut idx = vec![0usize; data.rows()];
            for (&a, &s) in attrs.iter().zip(&st) {
                for (i, &c) in idx.iter_mut().zip(data.codes(a)) {
                    *i += c as usize * s;
                }
            }
            for i in idx {
                counts[i] += 1;
            }
        }
    }
    counts
}

/// Exact counts of one attribute subset.
pub fn count(data: &EncodedTable, attrs: &[usize]) -> Sensitive<Vec<i64>> {
    Sensitive::new(count_one(data, attrs))
}

/// Exact counts of many subsets (in the order given), in parallel.
pub fn count_many(data: &EncodedTable, subsets: &[Vec<usize>]) -> Sensitive<Vec<Vec<i64>>> {
    Sensitive::new(subsets.par_iter().map(|s| count_one(data, s)).collect())
}

/// Average total variation distance between two tables' marginals over the given subsets:
/// 0.5 * L1 of the normalised count vectors. Both tables are the data holder's (a real table and
/// a synthetic one), so this is an evaluation, not a release.
pub fn mean_tvd(real: &EncodedTable, synth: &EncodedTable, subsets: &[Vec<usize>]) -> f64 {
    let tvds: Vec<f64> = subsets
        .par_iter()
        .map(|s| {
            let (x, y) = (count_one(real, s), count_one(synth, s));
            let (nx, ny) = (real.rows().max(1) as f64, synth.rows().max(1) as f64);
            0.5 * x.iter().zip(&y).map(|(&a, &b)| (a as f64 / nx - b as f64 / ny).abs()).sum::<f64>()
        })
        .collect();
    tvds.iter().sum::<f64>() / tvds.len().max(1) as f64
}

/// All subsets of `0..d` of size `k`, in lexicographic order.
pub fn subsets(d: usize, k: usize) -> Vec<Vec<usize>> {
    fn rec(start: usize, d: usize, k: usize, cur: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if cur.len() == k {
            out.push(cur.clone());
            return;
        }
        for i in start..d {
            cur.push(i);
            rec(i + 1, d, k, cur, out);
            cur.pop();
        }
    }
    let mut out = vec![];
    rec(0, d, k, &mut vec![], &mut out);
    out
}
