//! Contribution bounding: keep at most `k` rows per privacy unit, chosen by a seeded hash.
//!
//! After bounding, adding or removing one unit changes at most `k` rows, so a count vector's L1,
//! L2 and L-infinity sensitivities are at most `k` (all `k` rows may fall in one cell), and a
//! unit touches at most `k` keys of a grouped count. The hash (XXH3 with the seed, over the unit
//! key and the row's position) makes the choice reproducible for a seed and independent of the
//! data values, so it does not favour any kind of row.

use std::collections::HashMap;

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// At most this many rows per privacy unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContributionBound {
    pub rows_per_unit: u32,
}

impl ContributionBound {
    /// L2 sensitivity of a count vector over the bounded rows.
    pub fn count_l2_sensitivity(&self) -> i64 {
        self.rows_per_unit as i64
    }
}

/// Indices (ascending) of the rows kept when each unit keeps at most `bound.rows_per_unit` rows.
pub fn keep_rows<K: AsRef<[u8]>>(units: &[K], bound: ContributionBound, seed: u64) -> Vec<usize> {
    let k = bound.rows_per_unit as usize;
    let mut by_unit: HashMap<&[u8], Vec<(u64, usize)>> = HashMap::new();
    let mut buf = Vec::new();
    for (i, u) in units.iter().enumerate() {
        buf.clear();
        buf.extend_from_slice(u.as_ref());
        buf.push(0xff); // separator: unit bytes never collide with the position suffix
        buf.extend_from_slice(&(i as u64).to_le_bytes());
        by_unit.entry(u.as_ref()).or_default().push((xxh3_64_with_seed(&buf, seed), i));
    }
    let mut kept: Vec<usize> = Vec::with_capacity(units.len().min(by_unit.len() * k));
    for rows in by_unit.values_mut() {
        if rows.len() > k {
            rows.select_nth_unstable(k);
            rows.truncate(k);
        }
        kept.extend(rows.iter().map(|r| r.1));
    }
    kept.sort_unstable();
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_at_most_k_per_unit_reproducibly() {
        let units: Vec<String> = (0..10_000).map(|i| format!("p{}", i % 100)).collect();
        let b = ContributionBound { rows_per_unit: 7 };
        let kept = keep_rows(&units, b, 42);
        assert_eq!(kept.len(), 700);
        let mut per: HashMap<&str, usize> = HashMap::new();
        for &i in &kept {
            *per.entry(units[i].as_str()).or_default() += 1;
        }
        assert!(per.values().all(|&n| n == 7) && per.len() == 100);
        assert_eq!(kept, keep_rows(&units, b, 42), "same seed, same rows");
        assert_ne!(kept, keep_rows(&units, b, 43), "another seed, other rows");
        // Units with fewer rows keep them all.
        let few = vec!["a", "b", "b"];
        assert_eq!(keep_rows(&few, ContributionBound { rows_per_unit: 5 }, 1), vec![0, 1, 2]);
    }

    #[test]
    fn choice_is_unbiased_over_positions() {
        // Each of a unit's 10 rows is kept with probability k/10 over seeds.
        let units = vec!["u"; 10];
        let mut hits = [0usize; 10];
        for seed in 0..4000 {
            for i in keep_rows(&units, ContributionBound { rows_per_unit: 3 }, seed) {
                hits[i] += 1;
            }
        }
        // Expected 1200 each; binomial sd ~29; allow 5 sd.
        assert!(hits.iter().all(|&h| (h as f64 - 1200.0).abs() < 145.0), "{hits:?}");
    }
}
