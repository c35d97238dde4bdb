//! Which rows count: contribution bounding and the holdout split, both stable under adding or
//! removing one privacy unit, and both driven by a fresh secret key.
//!
//! **Stability.** A row's fate depends only on its own unit: the unit's key, the row's ordinal
//! among that unit's rows (in file order) and a secret key. Adding or removing one unit
//! therefore changes which rows of *that* unit count and nothing else, which is what the
//! neighbouring relation of the guarantee (add or remove all rows of one unit) needs. Keying on
//! a row's position in the file instead would re-draw every later unit's rows when one unit is
//! removed (the bug this design replaces).
//!
//! **Secrecy.** The key is 256 bits from the operating system's CSPRNG, drawn afresh for every
//! run, never printed, never stored and never derived from `--seed` (which is printed and meant
//! for reproducible post-processing). An adversary who knew the key could predict which of a
//! unit's rows are kept; without it the choice is a uniform random k-subset per unit.
//!
//! **Hash.** BLAKE3 in keyed mode (a pseudorandom function under its 256-bit key) over the
//! length-prefixed unit key and the ordinal.
//!
//! After bounding, adding or removing one unit changes at most `k` rows, so a count vector's L1,
//! L2 and L-infinity sensitivities are at most `k` (all `k` rows may fall in one cell). The bound
//! travels as a [`ContributionBound`] value, which only [`keep_rows`] / [`BoundStream`] (or the
//! row-is-unit case) can make, to the mechanisms that scale their sensitivity by it; the one
//! exception is [`ContributionBound::kept_in_plan`], for a counting engine that applies the same
//! keyed selection inside its own query plan (privsynth's DataFusion engine, whose equality
//! with the local selection `tests/engine.rs` checks on random tables).

use std::collections::HashMap;

use crate::PrivacyError;

/// A fresh secret key for row selection. Deliberately neither `Debug`, `Display`, `Clone` nor
/// `Serialize`: it lives in memory for one run and is dropped with it.
pub struct SecretKey([u8; 32]);

impl SecretKey {
    /// 256 fresh bits from the operating system.
    pub fn fresh() -> Result<SecretKey, PrivacyError> {
        let mut k = [0u8; 32];
        getrandom::fill(&mut k)
            .map_err(|e| PrivacyError::Invalid(format!("the operating system's random source failed: {e}")))?;
        Ok(SecretKey(k))
    }

    /// 64 pseudorandom bits for the `ordinal`-th row of `unit`.
    fn draw(&self, unit: &[u8], ordinal: u64) -> u64 {
        let mut h = blake3::Hasher::new_keyed(&self.0);
        h.update(&(unit.len() as u64).to_le_bytes());
        h.update(unit);
        h.update(&ordinal.to_le_bytes());
        let out = h.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&out.as_bytes()[..8]);
        u64::from_le_bytes(first)
    }

    /// The keyed draw of the `ordinal`-th row (0-based, in file order among the unit's rows
    /// that fit the schema) of `unit`: what [`keep_rows`] ranks a unit's rows by. For a
    /// counting engine that bounds inside its own query plan (the same rows as `keep_rows`:
    /// the `k` smallest (draw, file position) pairs of each unit). The value is as secret as the
    /// key: it must stay inside the counting plan.
    pub fn row_draw(&self, unit: &[u8], ordinal: u64) -> u64 {
        self.draw(unit, ordinal)
    }

    /// The key's bytes, for a distributed counting engine whose executors apply the bound
    /// inside their plan (they must compute [`SecretKey::row_draw`]). The bytes travel only in
    /// the query plan to those executors, never to a file or a log.
    pub fn to_engine_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// The key an executor received from [`SecretKey::to_engine_bytes`].
    pub fn from_engine_bytes(bytes: [u8; 32]) -> SecretKey {
        SecretKey(bytes)
    }

    /// Whether `unit` falls in a share `p` of all units (independently per unit, with
    /// probability `p` each, given a fresh key).
    pub fn bernoulli(&self, unit: &[u8], p: f64) -> bool {
        // 53 bits make a uniform double in [0, 1).
        ((self.draw(unit, u64::MAX) >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// At most this many rows per privacy unit. Made only by [`keep_rows`] / [`BoundStream`] (after
/// they kept at most that many rows per unit), as [`ContributionBound::ROW_IS_UNIT`] for tables
/// whose rows are their units, or by [`ContributionBound::kept_in_plan`] for a counting engine
/// that keeps the same rows inside its query plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContributionBound {
    rows_per_unit: u32,
}

impl ContributionBound {
    /// Each row is its own unit: sensitivity 1.
    pub const ROW_IS_UNIT: ContributionBound = ContributionBound { rows_per_unit: 1 };

    pub fn rows_per_unit(&self) -> u32 {
        self.rows_per_unit
    }

    /// The bound of a counting engine that keeps, inside its own query plan, the rows
    /// [`keep_rows`] keeps under `key` (each unit's `k` rows of smallest
    /// [`SecretKey::row_draw`]): for engines whose rows never reach this process. Taking the
    /// key ties the bound to the keyed selection that makes it hold.
    pub fn kept_in_plan(k: u32, _key: &SecretKey) -> Result<ContributionBound, PrivacyError> {
        if k == 0 {
            return Err(PrivacyError::Invalid("a contribution bound must keep at least one row per unit".into()));
        }
        Ok(ContributionBound { rows_per_unit: k })
    }

    /// L1/L2/L-infinity sensitivity of a count vector over the bounded rows.
    pub fn count_sensitivity(&self) -> i64 {
        self.rows_per_unit as i64
    }
}

/// The rows that count after bounding, and the bound they satisfy.
#[derive(Debug, Clone)]
pub struct Bounded {
    /// Indices (ascending) into the slice given to [`keep_rows`].
    pub kept: Vec<usize>,
    pub bound: ContributionBound,
}

/// Keep at most `k` rows of each unit (`units[i]` is the key of row `i`'s unit): those with the
/// `k` smallest keyed draws over (unit key, ordinal of the row within its unit). A uniform
/// random k-subset per unit, independent of every other unit's rows.
pub fn keep_rows<K: AsRef<[u8]>>(units: &[K], k: u32, key: &SecretKey) -> Result<Bounded, PrivacyError> {
    if k == 0 {
        return Err(PrivacyError::Invalid("a contribution bound must keep at least one row per unit".into()));
    }
    let mut by_unit: HashMap<&[u8], Vec<(u64, usize)>> = HashMap::new();
    for (i, u) in units.iter().enumerate() {
        let rows = by_unit.entry(u.as_ref()).or_default();
        let ordinal = rows.len() as u64;
        rows.push((key.draw(u.as_ref(), ordinal), i));
    }
    let k = k as usize;
    let mut kept: Vec<usize> = Vec::with_capacity(units.len().min(by_unit.len().saturating_mul(k)));
    for rows in by_unit.values_mut() {
        if rows.len() > k {
            rows.select_nth_unstable(k);
            rows.truncate(k);
        }
        kept.extend(rows.iter().map(|r| r.1));
    }
    kept.sort_unstable();
    Ok(Bounded { kept, bound: ContributionBound { rows_per_unit: k as u32 } })
}

/// [`keep_rows`] over a stream of rows, for tables read in batches: rows are pushed in file
/// order and the result is the same set `keep_rows` gives on the whole slice (under the same
/// key). Memory per unit: its key, its row count and at most `k` (draw, row) pairs, so about
/// `100 + 16 k` bytes a unit rather than a key per row.
pub struct BoundStream<'k> {
    key: &'k SecretKey,
    k: usize,
    units: HashMap<Box<[u8]>, UnitRows>,
    rows: usize,
}

struct UnitRows {
    seen: u64,
    /// The `k` smallest (draw, row) so far, as a max-heap.
    kept: std::collections::BinaryHeap<(u64, usize)>,
}

impl<'k> BoundStream<'k> {
    pub fn new(k: u32, key: &'k SecretKey) -> Result<BoundStream<'k>, PrivacyError> {
        if k == 0 {
            return Err(PrivacyError::Invalid("a contribution bound must keep at least one row per unit".into()));
        }
        Ok(BoundStream { key, k: k as usize, units: HashMap::new(), rows: 0 })
    }

    /// The next row (its index is the number of rows pushed before it) of unit `unit`.
    pub fn push(&mut self, unit: &[u8]) {
        let row = self.rows;
        self.rows += 1;
        let state = match self.units.get_mut(unit) {
            Some(s) => s,
            None => self
                .units
                .entry(unit.into())
                .or_insert_with(|| UnitRows { seen: 0, kept: std::collections::BinaryHeap::new() }),
        };
        let d = (self.key.draw(unit, state.seen), row);
        state.seen += 1;
        if state.kept.len() < self.k {
            state.kept.push(d);
        } else if state.kept.peek().is_some_and(|top| d < *top) {
            state.kept.pop();
            state.kept.push(d);
        }
    }

    /// Rows pushed so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The rows kept (ascending indices into the pushed rows) and their bound.
    pub fn finish(self) -> Bounded {
        let mut kept: Vec<usize> = self.units.into_values().flat_map(|u| u.kept.into_iter().map(|d| d.1)).collect();
        kept.sort_unstable();
        Bounded { kept, bound: ContributionBound { rows_per_unit: self.k as u32 } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretKey {
        SecretKey::fresh().unwrap()
    }

    #[test]
    fn keeps_at_most_k_per_unit() {
        let units: Vec<String> = (0..10_000).map(|i| format!("p{}", i % 100)).collect();
        let b = keep_rows(&units, 7, &key()).unwrap();
        assert_eq!(b.bound.rows_per_unit(), 7);
        assert_eq!(b.kept.len(), 700);
        let mut per: HashMap<&str, usize> = HashMap::new();
        for &i in &b.kept {
            *per.entry(units[i].as_str()).or_default() += 1;
        }
        assert!(per.values().all(|&n| n == 7) && per.len() == 100);
        // Units with fewer rows keep them all.
        let few = vec!["a", "b", "b"];
        assert_eq!(keep_rows(&few, 5, &key()).unwrap().kept, vec![0, 1, 2]);
        assert!(keep_rows(&few, 0, &key()).is_err());
    }

    /// The streamed bound keeps exactly the rows the whole-slice bound keeps, under one key.
    #[test]
    fn streaming_bound_equals_keep_rows() {
        let k = key();
        let units: Vec<String> = (0..20_000).map(|i| format!("u{}", (i * 7919) % 613)).collect();
        for bound in [1u32, 3, 40, 100] {
            let whole = keep_rows(&units, bound, &k).unwrap();
            let mut s = BoundStream::new(bound, &k).unwrap();
            for u in &units {
                s.push(u.as_bytes());
            }
            assert_eq!(s.rows(), units.len());
            let streamed = s.finish();
            assert_eq!(streamed.kept, whole.kept, "k = {bound}");
            assert_eq!(streamed.bound, whole.bound);
        }
        assert!(BoundStream::new(0, &k).is_err());
    }

    /// An engine that ranks each unit's rows by `row_draw` (ordinal in file order) and keeps the
    /// `k` smallest (ties by position) keeps exactly `keep_rows`'s rows, also under a key rebuilt
    /// from its engine bytes (what a remote executor holds).
    #[test]
    fn row_draw_ranking_equals_keep_rows() {
        let k = key();
        let shipped = SecretKey::from_engine_bytes(k.to_engine_bytes());
        let units: Vec<String> = (0..5000).map(|i| format!("u{}", (i * 31) % 97)).collect();
        for bound in [1u32, 4, 60] {
            let mut seen: HashMap<&str, u64> = HashMap::new();
            let mut ranked: HashMap<&str, Vec<(u64, usize)>> = HashMap::new();
            for (i, u) in units.iter().enumerate() {
                let o = seen.entry(u).or_default();
                ranked.entry(u).or_default().push((shipped.row_draw(u.as_bytes(), *o), i));
                *o += 1;
            }
            let mut kept: Vec<usize> = ranked
                .into_values()
                .flat_map(|mut v| {
                    v.sort_unstable();
                    v.into_iter().take(bound as usize).map(|d| d.1)
                })
                .collect();
            kept.sort_unstable();
            assert_eq!(kept, keep_rows(&units, bound, &k).unwrap().kept, "k = {bound}");
            assert_eq!(ContributionBound::kept_in_plan(bound, &k).unwrap().rows_per_unit(), bound);
        }
        assert!(ContributionBound::kept_in_plan(0, &k).is_err());
    }

    #[test]
    fn fresh_keys_differ() {
        let units: Vec<String> = (0..1000).map(|i| format!("p{}", i % 10)).collect();
        // Two fresh keys choose the same 10 x 3 rows out of 10 x 100 with probability ~1e-48.
        assert_ne!(keep_rows(&units, 3, &key()).unwrap().kept, keep_rows(&units, 3, &key()).unwrap().kept);
    }

    /// The property the guarantee needs: removing one unit leaves every other unit's kept rows
    /// as they were (same key). Keyed on file positions, removing unit "u0" (whose rows come
    /// first) would re-draw everyone else's.
    #[test]
    fn removing_a_unit_does_not_change_other_units_rows() {
        let k = key();
        let units: Vec<String> = (0..3000).map(|i| format!("u{}", (i * 7) % 50)).collect();
        let with = keep_rows(&units, 4, &k).unwrap();
        let (rest_idx, rest): (Vec<usize>, Vec<&String>) =
            units.iter().enumerate().filter(|(_, u)| u.as_str() != "u0").unzip();
        let without = keep_rows(&rest, 4, &k).unwrap();
        let kept_with: Vec<usize> = with.kept.iter().copied().filter(|&i| units[i] != "u0").collect();
        let kept_without: Vec<usize> = without.kept.iter().map(|&j| rest_idx[j]).collect();
        assert_eq!(kept_with, kept_without);
    }

    #[test]
    fn choice_is_uniform_over_a_units_rows() {
        // Each of a unit's 10 rows is kept with probability k/10 over fresh keys.
        let units = vec!["u"; 10];
        let mut hits = [0usize; 10];
        for _ in 0..4000 {
            for i in keep_rows(&units, 3, &key()).unwrap().kept {
                hits[i] += 1;
            }
        }
        // Expected 1200 each; binomial sd ~29; 5 sd (false failure < 1e-5 over the 10 rows).
        assert!(hits.iter().all(|&h| (h as f64 - 1200.0).abs() < 145.0), "{hits:?}");
    }

    #[test]
    fn bernoulli_share_and_consistency() {
        let k = key();
        let n = 20_000;
        let inside = (0..n).filter(|i| k.bernoulli(format!("p{i}").as_bytes(), 0.2)).count();
        // Binomial(20000, 0.2): sd ~56.6; 6 sd.
        assert!((inside as f64 - 4000.0).abs() < 340.0, "{inside}");
        // The same unit always lands on the same side under one key.
        let first: Vec<bool> = (0..200).map(|i| k.bernoulli(format!("q{i}").as_bytes(), 0.5)).collect();
        let again: Vec<bool> = (0..200).map(|i| k.bernoulli(format!("q{i}").as_bytes(), 0.5)).collect();
        assert_eq!(first, again);
    }
}
