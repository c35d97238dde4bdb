//! Marginal counts of the encoded table: how many rows fall in each cell of an attribute subset.
//!
//! Counts are exact and private, so they come out wrapped in [`Sensitive`]: they can be combined
//! with released values (scores, errors) but reach a file or a log line only through a mechanism
//! of the privacy crate. Many subsets are counted in parallel, each in one pass over its columns.
//!
//! This is the counting seam: encoded rows in ([`EncodedTable`], compact code columns), exact
//! count vectors out as [`Sensitive`] values. A counting backend elsewhere (a query engine over
//! the same encoded batches) would replace [`count`] and [`count_many`] and nothing else.

use privsynth_privacy::Sensitive;
use privsynth_privacy::bounding::ContributionBound;
use rayon::prelude::*;

use crate::codec::{CodeColumn, EncodedTable};
use crate::error::Result;

/// What the mechanisms count on: the bounded, encoded rows of one table, wherever they are.
/// [`EncodedTable`] (codes in this process's memory) is the local engine; a query engine over
/// the data files (`crate::engine`) is another. Every count leaves as a [`Sensitive`] value;
/// an engine fails with an error rather than return a partial count.
pub trait Counter: Sync {
    /// The modelled columns, in code order.
    fn names(&self) -> &[String];
    /// Codes per column (null code included), after any [`Counter::remap`].
    fn sizes(&self) -> &[usize];
    /// The contribution bound the counted rows satisfy.
    fn bound(&self) -> ContributionBound;
    /// Rows one unit can contribute: the sensitivity of each count vector.
    fn unit_rows(&self) -> i64 {
        self.bound().count_sensitivity()
    }
    /// Exact counts of many attribute subsets (cells laid out as [`strides`], in the order of
    /// each subset's attributes).
    fn count_many(&self, subsets: &[Vec<usize>]) -> Result<Sensitive<Vec<Vec<i64>>>>;
    /// Exact counts of one attribute subset.
    fn count(&self, attrs: &[usize]) -> Result<Sensitive<Vec<i64>>> {
        Ok(self.count_many(&[attrs.to_vec()])?.map(|mut v| v.pop().unwrap_or_default()))
    }
    /// The same rows with each column's codes mapped through `maps[i]` onto `0..sizes[i]`.
    fn remap(&self, maps: &[Vec<u32>], sizes: &[usize]) -> Box<dyn Counter + '_>;
    /// Counts the caller will ask for soon: an engine that pays per scan counts them together
    /// (a no-op for the local engine).
    fn prefetch(&self, _subsets: &[Vec<usize>]) -> Result<()> {
        Ok(())
    }
    /// The exact counts of the rows the data left out (out-of-domain policy, no unit key,
    /// contribution bounding), for the data holder (`--private-diagnostics`), when the counter
    /// finds them itself: a query engine, by one more scan. None when the caller has them from
    /// reading (the local engine).
    fn left_out(&self) -> Result<Option<Sensitive<Vec<String>>>> {
        Ok(None)
    }
}

impl Counter for EncodedTable {
    fn names(&self) -> &[String] {
        EncodedTable::names(self)
    }
    fn sizes(&self) -> &[usize] {
        EncodedTable::sizes(self)
    }
    fn bound(&self) -> ContributionBound {
        EncodedTable::bound(self)
    }
    fn count_many(&self, subsets: &[Vec<usize>]) -> Result<Sensitive<Vec<Vec<i64>>>> {
        Ok(count_many(self, subsets))
    }
    fn count(&self, attrs: &[usize]) -> Result<Sensitive<Vec<i64>>> {
        Ok(count(self, attrs))
    }
    fn remap(&self, maps: &[Vec<u32>], sizes: &[usize]) -> Box<dyn Counter + '_> {
        Box::new(EncodedTable::remap(self, maps, sizes))
    }
}

/// Cell index layout of a marginal: attributes in the given order, the last varying fastest.
pub fn strides(sizes: &[usize]) -> Vec<usize> {
    let mut s = vec![1; sizes.len()];
    for i in (0..sizes.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * sizes[i + 1];
    }
    s
}

/// Rows per block of the counting kernel: the block's cell indices stay in L1 cache.
const BLOCK: usize = 2048;

/// Rows per parallel part of one marginal's count (each part counts into its own vector).
const PART: usize = 1 << 20;

/// Cell index of each row of `rows`: `idx[r] (+)= lut[code]`.
fn add_codes(col: &CodeColumn, rows: std::ops::Range<usize>, lut: &[usize], idx: &mut [usize], first: bool) {
    #[inline(always)]
    fn go<T: Copy + Into<u32>>(codes: &[T], lut: &[usize], idx: &mut [usize], first: bool) {
        if first {
            for (i, &c) in idx.iter_mut().zip(codes) {
                *i = lut[c.into() as usize];
            }
        } else {
            for (i, &c) in idx.iter_mut().zip(codes) {
                *i += lut[c.into() as usize];
            }
        }
    }
    match col {
        CodeColumn::U8(v) => go(&v[rows], lut, idx, first),
        CodeColumn::U16(v) => go(&v[rows], lut, idx, first),
        CodeColumn::U32(v) => go(&v[rows], lut, idx, first),
    }
}

/// Counts of `attrs` over the rows `rows`, into `counts` (cells laid out as [`strides`]).
fn count_rows(
    data: &EncodedTable,
    attrs: &[usize],
    luts: &[Vec<usize>],
    rows: std::ops::Range<usize>,
    counts: &mut [i64],
) {
    if let [a] = attrs {
        // One column: count straight from its codes.
        fn go<T: Copy + Into<u32>>(codes: &[T], lut: &[usize], counts: &mut [i64]) {
            for &c in codes {
                counts[lut[c.into() as usize]] += 1;
            }
        }
        match data.column(*a) {
            CodeColumn::U8(v) => go(&v[rows], &luts[0], counts),
            CodeColumn::U16(v) => go(&v[rows], &luts[0], counts),
            CodeColumn::U32(v) => go(&v[rows], &luts[0], counts),
        }
        return;
    }
    let mut idx = [0usize; BLOCK];
    let mut start = rows.start;
    while start < rows.end {
        let end = (start + BLOCK).min(rows.end);
        let block = &mut idx[..end - start];
        for (j, (&a, lut)) in attrs.iter().zip(luts).enumerate() {
            add_codes(data.column(a), start..end, lut, block, j == 0);
        }
        for &i in block.iter() {
            counts[i] += 1;
        }
        start = end;
    }
}

fn count_one(data: &EncodedTable, attrs: &[usize]) -> Vec<i64> {
    let sizes: Vec<usize> = attrs.iter().map(|&a| data.sizes()[a]).collect();
    let cells: usize = sizes.iter().product();
    let mut counts = vec![0i64; cells];
    if attrs.is_empty() {
        counts[0] = data.rows() as i64;
        return counts;
    }
    let st = strides(&sizes);
    let luts: Vec<Vec<usize>> = attrs.iter().zip(&st).map(|(&a, &s)| data.lookup(a, s)).collect();
    let rows = data.rows();
    // Large tables are counted in parts in parallel when the parts' vectors are small.
    if rows > 2 * PART && cells <= 1 << 16 {
        let parts: Vec<Vec<i64>> = (0..rows.div_ceil(PART))
            .into_par_iter()
            .map(|p| {
                let mut c = vec![0i64; cells];
                count_rows(data, attrs, &luts, p * PART..((p + 1) * PART).min(rows), &mut c);
                c
            })
            .collect();
        for p in parts {
            for (a, b) in counts.iter_mut().zip(p) {
                *a += b;
            }
        }
    } else {
        count_rows(data, attrs, &luts, 0..rows, &mut counts);
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    /// Counts of the compact kernel equal a plain count over the codes, for 1- to 3-way
    /// subsets, one- and two-byte columns, a remapped view and a table large enough to be
    /// counted in parallel parts.
    #[test]
    fn kernel_counts_equal_plain_counts() {
        let mut rng = StdRng::seed_from_u64(5);
        let sizes = vec![3usize, 300, 17, 2];
        let n = 2 * PART + 12_345;
        let codes: Vec<Vec<u32>> =
            sizes.iter().map(|&k| (0..n).map(|_| rng.random_range(0..k as u32)).collect()).collect();
        let names: Vec<String> = (0..sizes.len()).map(|i| format!("c{i}")).collect();
        let t = EncodedTable::from_synthetic(names, sizes.clone(), codes.clone());
        let plain = |codes: &[Vec<u32>], sizes: &[usize], attrs: &[usize]| {
            let sub: Vec<usize> = attrs.iter().map(|&a| sizes[a]).collect();
            let st = strides(&sub);
            let mut c = vec![0i64; sub.iter().product()];
            for r in 0..codes[0].len() {
                c[attrs.iter().zip(&st).map(|(&a, &s)| codes[a][r] as usize * s).sum::<usize>()] += 1;
            }
            c
        };
        let subsets = vec![vec![0], vec![1], vec![1, 2], vec![0, 1, 3], vec![3, 2]];
        let got = count_many(&t, &subsets);
        for (s, g) in subsets.iter().zip(got.disclose_to_data_holder().iter()) {
            assert_eq!(g, &plain(&codes, &sizes, s), "{s:?}");
        }
        // A remapped view: column 1 folded mod 7, column 2 into halves.
        let maps: Vec<Vec<u32>> = vec![
            (0..3).collect(),
            (0..300).map(|c| c % 7).collect(),
            (0..17).map(|c| c / 9).collect(),
            (0..2).collect(),
        ];
        let small_sizes = vec![3, 7, 2, 2];
        let view = t.remap(&maps, &small_sizes);
        let mapped: Vec<Vec<u32>> =
            codes.iter().zip(&maps).map(|(c, m)| c.iter().map(|&x| m[x as usize]).collect()).collect();
        for s in &subsets {
            assert_eq!(&count(&view, s).disclose_to_data_holder(), &plain(&mapped, &small_sizes, s), "{s:?}");
        }
        assert_eq!(view.codes(1), mapped[1]);
        assert_eq!(t.bytes(), n * 5, "one byte a cell, two for the 300-code column");
    }
}
