//! Dense factors over attribute subsets, in log space where it matters.
//!
//! A factor holds one value per cell of its attributes' joint domain, attributes in ascending
//! order, the last varying fastest. Every operation rests on one primitive, [`index_map`]: for
//! each cell of a factor, the cell of a factor over a subset of its attributes. Broadcasting
//! (expand) reads through it, marginalisation (sum, log-sum-exp) accumulates through it.

use std::fmt;

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
    let cells: usize = shape.iter().product();
    let mut out = Vec::with_capacity(cells);
    let d = attrs.len();
    if d == 0 {
        out.push(0);
        return out;
    }
    // Odometer over the big factor's cells, innermost dimension as a tight loop.
    let inner = shape[d - 1];
    let inner_stride = sub_stride[d - 1];
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
            base += sub_stride[j];
            if counter[j] < shape[j] {
                break;
            }
            base -= sub_stride[j] * shape[j];
            counter[j] = 0;
        }
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
        let mut out = vec![0.0; shape.iter().product()];
        for (v, &i) in self.values.iter().zip(&index_map(&self.attrs, &self.shape, &keep)) {
            out[i as usize] += v;
        }
        Factor::new(keep, shape, out)
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
