//! Dense factors over attribute subsets, in log space where it matters.
//!
//! A factor holds one value per cell of its attributes' joint domain, attributes in ascending
//! order, the last varying fastest. Every operation rests on one primitive, [`index_map`]: for
//! each cell of a factor, the cell of a factor over a subset of its attributes. Broadcasting
//! (expand) reads through it, marginalisation (sum, log-sum-exp) accumulates through it.

use std::fmt;

use rayon::prelude::*;

#[derive(Clone, PartialEq)]
pub struct Factor {
    pub attrs: Vec<usize>,
    pub shape: Vec<usize>,
    pub values: Vec<f64>,
}

impl fmt::Debug for Factor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Factor({:?}, shape {:?})", self.attrs, self.shape)
    }
}

/// For each cell of a factor over `attrs` (sizes `shape`), the index of the cell of a factor
/// over `sub` (a subset of `attrs`, ascending) with the same values on `sub`.
pub fn index_map(attrs: &[usize], shape: &[usize], sub: &[usize]) -> Vec<u32> {
    // Stride in the sub-factor of each dimension of the big one (0 if absent).
    let mut sub_stride = vec![0usize; attrs.len()];
    let mut s = 1usize;
    for (j, &a) in attrs.iter().enumerate().rev() {
        if sub.contains(&a) {
            sub_stride[j] = s;
            s *= shape[j];
        }
    }
    index_map_strided(shape, &sub_stride)
}

/// For each cell of a factor of `shape` (row-major), the sum of its digits times `strides`.
fn index_map_strided(shape: &[usize], strides: &[usize]) -> Vec<u32> {
    let cells: usize = shape.iter().product();
    let mut out = Vec::with_capacity(cells);
    let d = shape.len();
    if d == 0 {
        out.push(0);
        return out;
    }
    // Odometer over the big factor's cells, innermost dimension as a tight loop.
    let inner = shape[d - 1];
    let inner_stride = strides[d - 1];
    let mut counter = vec![0usize; d];
    let mut base = 0usize;
    loop {
        for k in 0..inner {
            out.push((base + k * inner_stride) as u32);
        }
        // Advance the outer dimensions.
        let mut j = d - 1;
        loop {
            if j == 0 {
                return out;
            }
            j -= 1;
            counter[j] += 1;
            base += strides[j];
            if counter[j] < shape[j] {
                break;
            }
            base -= strides[j] * shape[j];
            counter[j] = 0;
        }
    }
}

fn row_major_strides(shape: &[usize]) -> Vec<usize> {
    let mut st = vec![0; shape.len()];
    let mut s = 1;
    for j in (0..shape.len()).rev() {
        st[j] = s;
        s *= shape[j];
    }
    st
}

/// The sum over `f`'s attributes outside `out` of `f` times the product of `msgs`, kept over
/// `out` (a subset of `f`'s attributes) and every attribute of a message that `f` lacks. The
/// product over the union is never formed: `f`'s cells are walked once per assignment of the
/// attributes only messages have (so memory is the result's, and time `f`'s size times theirs).
pub fn contract(f: &Factor, msgs: &[&Factor], out: &[usize], sizes: &[usize]) -> Factor {
    let mut carried: Vec<usize> =
        msgs.iter().flat_map(|m| m.attrs.iter().copied()).filter(|a| !f.attrs.contains(a)).collect();
    carried.sort_unstable();
    carried.dedup();
    let mut rattrs: Vec<usize> =
        out.iter().copied().filter(|a| f.attrs.contains(a)).chain(carried.iter().copied()).collect();
    rattrs.sort_unstable();
    rattrs.dedup();
    let rshape: Vec<usize> = rattrs.iter().map(|&a| sizes[a]).collect();
    // The stride in `target` (attributes and their strides) of each attribute of `src`; 0 if absent.
    let strides_in = |target: &[usize], st: &[usize], src: &[usize]| -> Vec<usize> {
        src.iter().map(|a| target.iter().position(|b| b == a).map_or(0, |p| st[p])).collect()
    };
    let rst = row_major_strides(&rshape);
    let r_map = index_map_strided(&f.shape, &strides_in(&rattrs, &rst, &f.attrs));
    let r_q = strides_in(&rattrs, &rst, &carried);
    let mst: Vec<Vec<usize>> = msgs.iter().map(|m| row_major_strides(&m.shape)).collect();
    let m_maps: Vec<Vec<u32>> =
        msgs.iter().zip(&mst).map(|(m, st)| index_map_strided(&f.shape, &strides_in(&m.attrs, st, &f.attrs))).collect();
    let m_q: Vec<Vec<usize>> = msgs.iter().zip(&mst).map(|(m, st)| strides_in(&m.attrs, st, &carried)).collect();
    let qshape: Vec<usize> = carried.iter().map(|&a| sizes[a]).collect();
    let mut values = vec![0.0; rshape.iter().product()];
    let mut digits = vec![0usize; carried.len()];
    let dot = |d: &[usize], st: &[usize]| -> usize { d.iter().zip(st).map(|(x, s)| x * s).sum() };
    loop {
        let r_off = dot(&digits, &r_q);
        let m_off: Vec<usize> = m_q.iter().map(|st| dot(&digits, st)).collect();
        match msgs.len() {
            0 => f.values.iter().zip(&r_map).for_each(|(v, &i)| values[i as usize + r_off] += v),
            1 => {
                let (m, map, o) = (&msgs[0].values, &m_maps[0], m_off[0]);
                for ((v, &i), &k) in f.values.iter().zip(&r_map).zip(map) {
                    values[i as usize + r_off] += v * m[k as usize + o];
                }
            }
            _ => {
                for (j, (v, &i)) in f.values.iter().zip(&r_map).enumerate() {
                    let p: f64 = msgs
                        .iter()
                        .zip(&m_maps)
                        .zip(&m_off)
                        .map(|((m, map), o)| m.values[map[j] as usize + o])
                        .product();
                    values[i as usize + r_off] += v * p;
                }
            }
        }
        // Next assignment of the carried attributes.
        let mut j = digits.len();
        loop {
            if j == 0 {
                return Factor::new(rattrs, rshape, values);
            }
            j -= 1;
            digits[j] += 1;
            if digits[j] < qshape[j] {
                break;
            }
            digits[j] = 0;
        }
    }
}

/// The projection of a dense factor over `attrs` (sizes `shape`) onto a subset `sub` of its
/// attributes, walked without materialising an index map (a map costs 4 bytes per cell of the
/// big factor, several times over on large cliques): the big factor's axes are merged into runs
/// that lie wholly inside or wholly outside `sub`, and an odometer steps through all but the
/// innermost run. The innermost run is then either summed out (stride 0) or contiguous in the
/// small factor (stride 1), so every operation has a tight inner loop.
#[derive(Debug, Clone)]
pub struct Proj {
    /// Merged axes, outermost first: (extent, stride in the small factor; 0 when summed out).
    dims: Vec<(usize, usize)>,
    small: usize,
}

/// Factors at least this large are walked by both cores (rayon), in chunks of whole runs.
const PAR_CELLS: usize = 1 << 17;

impl Proj {
    pub fn new(attrs: &[usize], shape: &[usize], sub: &[usize]) -> Proj {
        let mut stride = vec![0usize; attrs.len()];
        let mut s = 1usize;
        for j in (0..attrs.len()).rev() {
            if sub.contains(&attrs[j]) {
                stride[j] = s;
                s *= shape[j];
            }
        }
        let mut dims: Vec<(usize, usize)> = vec![];
        for (&n, &st) in shape.iter().zip(&stride) {
            if n == 1 {
                continue;
            }
            if let Some(last) = dims.last_mut() {
                // An outer axis merges with this one when both are summed out, or both are kept
                // and adjacent in the small factor too.
                if (last.1 == 0 && st == 0) || (st != 0 && last.1 == st * n) {
                    last.0 *= n;
                    last.1 = st;
                    continue;
                }
            }
            dims.push((n, st));
        }
        if dims.is_empty() {
            dims.push((1, 0));
        }
        // A factor that is one long run is cut into runs of m cells, so that it can be shared
        // between threads.
        if dims.len() == 1 && dims[0].0 >= 2 * PAR_CELLS {
            let (n, st) = dims[0];
            if let Some(m) = (256..=8192).rev().find(|m| n % m == 0) {
                dims = vec![(n / m, st * m), (m, st)];
            }
        }
        Proj { dims, small: s }
    }

    /// Cells of the small factor.
    pub fn small_len(&self) -> usize {
        self.small
    }

    fn run_len(&self) -> usize {
        self.dims[self.dims.len() - 1].0
    }

    fn n_runs(&self) -> usize {
        self.dims[..self.dims.len() - 1].iter().map(|d| d.0).product()
    }

    /// Runs per chunk when the work is worth sharing between threads.
    fn chunk_runs(&self) -> Option<usize> {
        let (runs, len) = (self.n_runs(), self.run_len());
        let threads = rayon::current_num_threads();
        (threads > 1 && runs * len >= PAR_CELLS && runs >= 2).then(|| runs.div_ceil(4 * threads).max(1))
    }

    /// Calls `f(offset, len, base, stride)` for `count` runs from run `start`: each is `len`
    /// consecutive cells of the big factor from `offset` (counted from run `start`'s first
    /// cell), whose cells map to small cells `base + k * stride` (stride 0 or 1).
    #[inline]
    fn runs_from(&self, start: usize, count: usize, mut f: impl FnMut(usize, usize, usize, usize)) {
        let k = self.dims.len();
        let (len, inner) = self.dims[k - 1];
        let outer = &self.dims[..k - 1];
        let mut counter = vec![0usize; outer.len()];
        let mut base = 0usize;
        let mut rem = start;
        for j in (0..outer.len()).rev() {
            counter[j] = rem % outer[j].0;
            rem /= outer[j].0;
            base += counter[j] * outer[j].1;
        }
        let mut offset = 0usize;
        for _ in 0..count {
            f(offset, len, base, inner);
            offset += len;
            let mut j = outer.len();
            while j > 0 {
                j -= 1;
                counter[j] += 1;
                base += outer[j].1;
                if counter[j] < outer[j].0 {
                    break;
                }
                base -= outer[j].1 * outer[j].0;
                counter[j] = 0;
            }
        }
    }

    /// Apply `op` to every run of `big` (mutably), on both cores when large.
    fn for_runs_mut(&self, big: &mut [f64], op: impl Fn(&mut [f64], usize, usize) + Sync) {
        let len = self.run_len();
        match self.chunk_runs() {
            Some(cr) => big.par_chunks_mut(cr * len).enumerate().for_each(|(k, chunk)| {
                self.runs_from(k * cr, chunk.len() / len, |o, n, b, st| op(&mut chunk[o..o + n], b, st));
            }),
            None => self.runs_from(0, self.n_runs(), |o, n, b, st| op(&mut big[o..o + n], b, st)),
        }
    }

    /// Reduce every run of `big` into a small-sized accumulator starting from `init`, on both
    /// cores when large (each chunk its own accumulator, merged by `merge`).
    fn reduce_runs(
        &self,
        big: &[f64],
        small: &mut [f64],
        init: f64,
        op: impl Fn(&[f64], &mut [f64], usize, usize) + Sync,
        merge: impl Fn(&mut f64, f64),
    ) {
        let len = self.run_len();
        match self.chunk_runs() {
            Some(cr) => {
                let parts: Vec<Vec<f64>> = big
                    .par_chunks(cr * len)
                    .enumerate()
                    .map(|(k, chunk)| {
                        let mut acc = vec![init; small.len()];
                        self.runs_from(k * cr, chunk.len() / len, |o, n, b, st| op(&chunk[o..o + n], &mut acc, b, st));
                        acc
                    })
                    .collect();
                for p in parts {
                    small.iter_mut().zip(p).for_each(|(s, v)| merge(s, v));
                }
            }
            None => self.runs_from(0, self.n_runs(), |o, n, b, st| op(&big[o..o + n], small, b, st)),
        }
    }

    /// `small[i] += sum of big cells mapping to i`.
    pub fn sum_into(&self, big: &[f64], small: &mut [f64]) {
        self.reduce_runs(
            big,
            small,
            0.0,
            |src, acc, b, st| {
                if st == 0 {
                    acc[b] += src.iter().sum::<f64>();
                } else {
                    acc[b..b + src.len()].iter_mut().zip(src).for_each(|(s, v)| *s += v);
                }
            },
            |s, v| *s += v,
        );
    }

    /// `small[i] = max(small[i], big cells mapping to i)`.
    pub fn max_into(&self, big: &[f64], small: &mut [f64]) {
        self.reduce_runs(
            big,
            small,
            f64::NEG_INFINITY,
            |src, acc, b, st| {
                if st == 0 {
                    acc[b] = src.iter().copied().fold(acc[b], f64::max);
                } else {
                    acc[b..b + src.len()].iter_mut().zip(src).for_each(|(s, v)| *s = s.max(*v));
                }
            },
            |s, v| *s = s.max(v),
        );
    }

    /// `big[j] += scale * small[map(j)]` (broadcast).
    pub fn add_from(&self, big: &mut [f64], small: &[f64], scale: f64) {
        self.for_runs_mut(big, |dst, b, st| {
            if st == 0 {
                let x = scale * small[b];
                dst.iter_mut().for_each(|v| *v += x);
            } else {
                let n = dst.len();
                dst.iter_mut().zip(&small[b..b + n]).for_each(|(v, s)| *v += scale * s);
            }
        });
    }

    /// `big[j] *= small[map(j)]`.
    pub fn mul_from(&self, big: &mut [f64], small: &[f64]) {
        self.for_runs_mut(big, |dst, b, st| {
            if st == 0 {
                let x = small[b];
                dst.iter_mut().for_each(|v| *v *= x);
            } else {
                let n = dst.len();
                dst.iter_mut().zip(&small[b..b + n]).for_each(|(v, s)| *v *= s);
            }
        });
    }

    /// In place `big[j] = exp(big[j] - shift[map(j)])` (0 where the shift is -inf), and
    /// `sum[i] += ` the new values mapping to i.
    pub fn exp_shift_sum(&self, big: &mut [f64], shift: &[f64], sum: &mut [f64]) {
        self.for_runs_mut(big, |dst, b, st| {
            if st == 0 {
                let m = shift[b];
                if m == f64::NEG_INFINITY {
                    dst.iter_mut().for_each(|v| *v = 0.0);
                } else {
                    dst.iter_mut().for_each(|v| *v = (*v - m).exp());
                }
            } else {
                let n = dst.len();
                for (v, &m) in dst.iter_mut().zip(&shift[b..b + n]) {
                    *v = if m == f64::NEG_INFINITY { 0.0 } else { (*v - m).exp() };
                }
            }
        });
        self.sum_into(big, sum);
    }
}

impl Factor {
    pub fn new(attrs: Vec<usize>, shape: Vec<usize>, values: Vec<f64>) -> Factor {
        debug_assert!(attrs.windows(2).all(|w| w[0] < w[1]), "attributes ascending");
        debug_assert_eq!(shape.iter().product::<usize>(), values.len());
        Factor { attrs, shape, values }
    }

    /// A constant factor over `attrs`, sizes taken from the model's domain `sizes`.
    pub fn constant(attrs: &[usize], sizes: &[usize], v: f64) -> Factor {
        let shape: Vec<usize> = attrs.iter().map(|&a| sizes[a]).collect();
        let n = shape.iter().product();
        Factor::new(attrs.to_vec(), shape, vec![v; n])
    }

    pub fn size(&self) -> usize {
        self.values.len()
    }

    /// Broadcast to a superset of attributes.
    pub fn expand(&self, attrs: &[usize], sizes: &[usize]) -> Factor {
        let shape: Vec<usize> = attrs.iter().map(|&a| sizes[a]).collect();
        let map = index_map(attrs, &shape, &self.attrs);
        Factor::new(attrs.to_vec(), shape, map.iter().map(|&i| self.values[i as usize]).collect())
    }

    fn sub_shape(&self, keep: &[usize]) -> Vec<usize> {
        self.attrs.iter().zip(&self.shape).filter(|(a, _)| keep.contains(a)).map(|(_, &s)| s).collect()
    }

    /// Sum out every attribute not in `keep` (linear space).
    pub fn sum_to(&self, keep: &[usize]) -> Factor {
        let keep: Vec<usize> = self.attrs.iter().copied().filter(|a| keep.contains(a)).collect();
        let shape = self.sub_shape(&keep);
        let p = Proj::new(&self.attrs, &self.shape, &keep);
        let mut out = vec![0.0; p.small_len()];
        p.sum_into(&self.values, &mut out);
        Factor::new(keep, shape, out)
    }

    /// Divide by a factor over a subset of this one's attributes; a cell over a zero of the
    /// divisor becomes 0 (it is 0 already wherever the divisor is a marginal of this factor).
    pub fn div_sub(&mut self, other: &Factor) {
        let inv: Vec<f64> = other.values.iter().map(|&v| if v > 0.0 { 1.0 / v } else { 0.0 }).collect();
        Proj::new(&self.attrs, &self.shape, &other.attrs).mul_from(&mut self.values, &inv);
    }

    /// Log-sum-exp out every attribute not in `keep` (log space), through a precomputed map.
    pub fn logsumexp_with(&self, keep: &[usize], map: &[u32]) -> Factor {
        let keep: Vec<usize> = self.attrs.iter().copied().filter(|a| keep.contains(a)).collect();
        let shape = self.sub_shape(&keep);
        let n: usize = shape.iter().product();
        let mut max = vec![f64::NEG_INFINITY; n];
        for (v, &i) in self.values.iter().zip(map) {
            let m = &mut max[i as usize];
            if *v > *m {
                *m = *v;
            }
        }
        let mut sum = vec![0.0; n];
        for (v, &i) in self.values.iter().zip(map) {
            let m = max[i as usize];
            if m > f64::NEG_INFINITY {
                sum[i as usize] += (v - m).exp();
            }
        }
        let values = sum.iter().zip(&max).map(|(s, m)| if *m == f64::NEG_INFINITY { *m } else { m + s.ln() }).collect();
        Factor::new(keep, shape, values)
    }

    pub fn logsumexp_to(&self, keep: &[usize]) -> Factor {
        let keep_sorted: Vec<usize> = self.attrs.iter().copied().filter(|a| keep.contains(a)).collect();
        let map = index_map(&self.attrs, &self.shape, &keep_sorted);
        self.logsumexp_with(&keep_sorted, &map)
    }

    /// log of the sum of exp of all values.
    pub fn logsumexp(&self) -> f64 {
        let m = self.values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if m == f64::NEG_INFINITY {
            return m;
        }
        m + self.values.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
    }

    /// Pointwise sum with a factor over a subset of this one's attributes (log-space product).
    pub fn add_sub(&mut self, other: &Factor, map: &[u32]) {
        for (v, &i) in self.values.iter_mut().zip(map) {
            *v += other.values[i as usize];
        }
    }

    /// Pointwise `self + other` over the union of attributes.
    pub fn add(&self, other: &Factor, sizes: &[usize]) -> Factor {
        let mut attrs: Vec<usize> = self.attrs.iter().chain(&other.attrs).copied().collect();
        attrs.sort_unstable();
        attrs.dedup();
        let mut out = self.expand(&attrs, sizes);
        let map = index_map(&out.attrs, &out.shape, &other.attrs);
        out.add_sub(other, &map);
        out
    }

    pub fn exp(&self) -> Factor {
        Factor::new(self.attrs.clone(), self.shape.clone(), self.values.iter().map(|v| v.exp()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force: value of the sub-factor cell matching a big cell, via explicit digits.
    fn digits(mut i: usize, shape: &[usize]) -> Vec<usize> {
        let mut d = vec![0; shape.len()];
        for j in (0..shape.len()).rev() {
            d[j] = i % shape[j];
            i /= shape[j];
        }
        d
    }

    #[test]
    fn index_map_matches_brute_force() {
        let attrs = [1, 3, 4, 7];
        let shape = [3, 2, 4, 5];
        for sub in [vec![], vec![1], vec![4], vec![3, 7], vec![1, 4, 7], vec![1, 3, 4, 7]] {
            let map = index_map(&attrs, &shape, &sub);
            let sub_shape: Vec<usize> =
                attrs.iter().zip(&shape).filter(|(a, _)| sub.contains(a)).map(|(_, s)| *s).collect();
            for (i, &m) in map.iter().enumerate() {
                let d = digits(i, &shape);
                let sd: Vec<usize> = attrs.iter().zip(&d).filter(|(a, _)| sub.contains(a)).map(|(_, x)| *x).collect();
                let mut want = 0;
                for (x, s) in sd.iter().zip(&sub_shape) {
                    want = want * s + x;
                }
                assert_eq!(m as usize, want, "sub {sub:?} cell {i}");
            }
        }
    }

    /// Every strided walk gives what the same operation through `index_map` gives, for every
    /// subset of attributes, including size-1 axes and a summed-out innermost axis.
    #[test]
    fn projections_agree_with_index_maps() {
        let attrs = [1, 3, 4, 7, 9];
        let shape = [3, 1, 4, 5, 2];
        let n: usize = shape.iter().product();
        let big: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
        for mask in 0..32u32 {
            let sub: Vec<usize> = (0..5).filter(|j| mask >> j & 1 == 1).map(|j| attrs[j]).collect();
            let map = index_map(&attrs, &shape, &sub);
            let p = Proj::new(&attrs, &shape, &sub);
            let k = p.small_len();
            assert_eq!(k, *map.iter().max().unwrap() as usize + 1, "{sub:?}");
            let small: Vec<f64> = (0..k).map(|i| (i as f64 * 0.91).cos()).collect();
            let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12 || x == y);
            let (mut want, mut got) = (vec![0.0; k], vec![0.0; k]);
            big.iter().zip(&map).for_each(|(v, &i)| want[i as usize] += v);
            p.sum_into(&big, &mut got);
            assert!(close(&want, &got), "sum {sub:?}");
            let (mut want, mut got) = (vec![f64::NEG_INFINITY; k], vec![f64::NEG_INFINITY; k]);
            big.iter().zip(&map).for_each(|(v, &i)| want[i as usize] = want[i as usize].max(*v));
            p.max_into(&big, &mut got);
            assert!(close(&want, &got), "max {sub:?}");
            let want: Vec<f64> = big.iter().zip(&map).map(|(v, &i)| v + 2.0 * small[i as usize]).collect();
            let mut got = big.clone();
            p.add_from(&mut got, &small, 2.0);
            assert!(close(&want, &got), "add {sub:?}");
            let want: Vec<f64> = big.iter().zip(&map).map(|(v, &i)| v * small[i as usize]).collect();
            let mut got = big.clone();
            p.mul_from(&mut got, &small);
            assert!(close(&want, &got), "mul {sub:?}");
            // A -inf shift zeroes its cells.
            let mut shift = small.clone();
            shift[0] = f64::NEG_INFINITY;
            let mut want_sum = vec![0.0; k];
            let want: Vec<f64> = big
                .iter()
                .zip(&map)
                .map(|(v, &i)| {
                    let x = if i == 0 { 0.0 } else { (v - shift[i as usize]).exp() };
                    want_sum[i as usize] += x;
                    x
                })
                .collect();
            let (mut got, mut got_sum) = (big.clone(), vec![0.0; k]);
            p.exp_shift_sum(&mut got, &shift, &mut got_sum);
            assert!(close(&want, &got) && close(&want_sum, &got_sum), "exp {sub:?}");
        }
    }

    /// Factors large enough to be shared between threads (and one long run, cut into runs)
    /// give what `index_map` gives.
    #[test]
    fn large_projections_agree_with_index_maps() {
        for (attrs, shape) in [(vec![0, 1, 2], vec![37, 5, 1024]), (vec![3], vec![1 << 18])] {
            let n: usize = shape.iter().product();
            let big: Vec<f64> = (0..n).map(|i| ((i % 1013) as f64 * 0.37).sin()).collect();
            for sub in [vec![], vec![attrs[0]], vec![*attrs.last().unwrap()], attrs.clone()] {
                let map = index_map(&attrs, &shape, &sub);
                let p = Proj::new(&attrs, &shape, &sub);
                let k = p.small_len();
                let small: Vec<f64> = (0..k).map(|i| (i as f64 * 0.91).cos()).collect();
                let (mut want, mut got) = (vec![0.0; k], vec![0.0; k]);
                big.iter().zip(&map).for_each(|(v, &i)| want[i as usize] += v);
                p.sum_into(&big, &mut got);
                assert!(want.iter().zip(&got).all(|(x, y)| (x - y).abs() < 1e-9 * (1.0 + x.abs())), "sum {sub:?}");
                let (mut want, mut got) = (vec![f64::NEG_INFINITY; k], vec![f64::NEG_INFINITY; k]);
                big.iter().zip(&map).for_each(|(v, &i)| want[i as usize] = want[i as usize].max(*v));
                p.max_into(&big, &mut got);
                assert_eq!(want, got, "max {sub:?}");
                let want: Vec<f64> = big.iter().zip(&map).map(|(v, &i)| v * small[i as usize]).collect();
                let mut got = big.clone();
                p.mul_from(&mut got, &small);
                assert_eq!(want, got, "mul {sub:?}");
            }
        }
    }

    /// `contract` equals forming the product over the union and summing, with messages that
    /// carry attributes the factor lacks, share some with it, or none.
    #[test]
    fn contraction_equals_the_product_summed() {
        let sizes = [2, 3, 4, 2, 3];
        let f =
            Factor::new(vec![0, 1, 2], vec![2, 3, 4], (0..24).map(|i| 0.1 + (i as f64 * 0.37).sin().abs()).collect());
        let m1 = Factor::new(vec![1, 3], vec![3, 2], (0..6).map(|i| 0.5 + (i as f64 * 0.91).cos().abs()).collect());
        let m2 = Factor::new(vec![2, 4], vec![4, 3], (0..12).map(|i| 0.2 + (i as f64 * 0.53).sin().abs()).collect());
        let m3 = Factor::new(vec![0], vec![2], vec![0.3, 1.7]);
        for (msgs, out) in [
            (vec![], vec![0]),
            (vec![&m1], vec![0, 1]),
            (vec![&m1, &m2], vec![2]),
            (vec![&m1, &m2, &m3], vec![]),
            (vec![&m3], vec![0, 2]),
        ] {
            let got = contract(&f, &msgs, &out, &sizes);
            let mut prod = f.clone();
            for m in &msgs {
                let mut attrs: Vec<usize> = prod.attrs.iter().chain(&m.attrs).copied().collect();
                attrs.sort_unstable();
                attrs.dedup();
                let mut e = prod.expand(&attrs, &sizes);
                let map = index_map(&e.attrs, &e.shape, &m.attrs);
                e.values.iter_mut().zip(&map).for_each(|(v, &i)| *v *= m.values[i as usize]);
                prod = e;
            }
            let carried: Vec<usize> =
                msgs.iter().flat_map(|m| m.attrs.clone()).filter(|a| !f.attrs.contains(a)).collect();
            let keep: Vec<usize> = out.iter().chain(&carried).copied().collect();
            let want = prod.sum_to(&keep);
            assert_eq!(got.attrs, want.attrs, "{out:?}");
            for (x, y) in got.values.iter().zip(&want.values) {
                assert!((x - y).abs() < 1e-12 * (1.0 + y.abs()), "{out:?}: {:?} vs {:?}", got.values, want.values);
            }
        }
    }

    #[test]
    fn algebra_agrees_with_brute_force() {
        let sizes = [2, 3, 4];
        let a = Factor::new(vec![0, 1], vec![2, 3], (0..6).map(|i| (i as f64 * 0.37).sin()).collect());
        let b = Factor::new(vec![1, 2], vec![3, 4], (0..12).map(|i| (i as f64 * 0.91).cos()).collect());
        let ab = a.add(&b, &sizes);
        assert_eq!(ab.attrs, vec![0, 1, 2]);
        for i in 0..24 {
            let d = digits(i, &[2, 3, 4]);
            let want = a.values[d[0] * 3 + d[1]] + b.values[d[1] * 4 + d[2]];
            assert!((ab.values[i] - want).abs() < 1e-12);
        }
        // log-sum-exp over attribute 1 equals log of summed exps.
        let m = ab.logsumexp_to(&[0, 2]);
        for x in 0..2 {
            for z in 0..4 {
                let want: f64 = (0..3).map(|y| ab.values[x * 12 + y * 4 + z].exp()).sum::<f64>().ln();
                assert!((m.values[x * 4 + z] - want).abs() < 1e-12);
            }
        }
        let s = ab.exp().sum_to(&[2]);
        assert!((s.values.iter().sum::<f64>() - ab.exp().values.iter().sum::<f64>()).abs() < 1e-9);
        assert!((ab.logsumexp() - ab.exp().values.iter().sum::<f64>().ln()).abs() < 1e-12);
    }
}
