//! MST (McKenna, Miklau & Sheldon, JPC 2021), step by step as published.
//!
//! Budget rho split in thirds:
//! 1. measure all d one-way marginals (discrete Gaussian, cost rho/3 over the d);
//! 2. compress each attribute's domain: values whose noisy count is below 3 noise standard
//!    deviations merge into one rare value (post-processing); the merged cell's measurement is
//!    the sum of its noisy cells over sqrt(k), with query weight 1/sqrt(k);
//! 3. select a spanning tree with the exponential mechanism (rho/3 over d-1 rounds): score of a
//!    pair = L1 distance between its exact 2-way counts and the independence model's estimate
//!    (sensitivity 1); Kruskal-style, only pairs joining two components are candidates;
//! 4. measure the d-1 tree marginals (rho/3);
//! 5. estimate a graphical model from all measurements (Private-PGM mirror descent).
//!
//! Sampling and undoing the compression happen in [`crate::model::sample`] and [`super::expand`];
//! unlike the reference, which expands a merged value uniformly, the expansion follows the
//! one-way releases of the merged values ([`super::expansion`]).

use privsynth_privacy::{Budget, mechanisms};

use crate::error::{Error, Result};
use crate::marginals::{self, Counter};
use crate::model::estimate::{self, Measurement};
use crate::model::{GraphicalModel, JunctionTree};

use super::{Fit, Mechanism, compress};

/// Run MST on an encoded table, spending `budget`'s remaining rho.
pub fn fit(data: &dyn Counter, budget: &mut Budget, opts: estimate::Options) -> Result<Fit> {
    let d = data.sizes().len();
    if d == 0 {
        return Err(Error::Usage("the schema has no modelled columns".into()));
    }
    // The budget split: thirds for the one-way marginals, the tree selection and the tree
    // marginals (everything to the one-way marginals with a single attribute).
    let rho = budget.rho_remaining() * (1.0 - 1e-12);
    let rho_one = if d == 1 { rho } else { rho / 3.0 };
    let rho_select = rho / 3.0;
    // Sensitivity of every count vector and of the pair scores: rows one unit contributes.
    let k = data.unit_rows();
    // An engine that pays per scan counts the one-way marginals and every pair together.
    let mut wanted: Vec<Vec<usize>> = (0..d).map(|a| vec![a]).collect();
    wanted.extend(marginals::subsets(d, 2));
    data.prefetch(&wanted)?;
    // 1. One-way marginals.
    let mut one_way = budget.part("MST one-way marginals", rho_one)?;
    let s1 = mechanisms::gaussian_scale(rho_one / d as f64 * (1.0 - 1e-9), k)?;
    let mut raw_one_way = Vec::with_capacity(d);
    for a in 0..d {
        let r =
            mechanisms::gaussian_counts(&mut one_way, data.count(&[a])?, k, s1, &format!("1-way {}", data.names()[a]))?;
        raw_one_way.push(r.map(|y| Measurement {
            attrs: vec![a],
            weights: vec![],
            y: y.into_iter().map(|v| v as f64).collect(),
            sigma: s1,
        }));
    }

    drop(one_way);

    // 2. Compression (post-processing of the one-way releases).
    let (compression, maps, mut measurements) = compress(&raw_one_way);
    let expansion = super::expansion(&raw_one_way, &compression);
    let sizes: Vec<usize> = compression.iter().map(Vec::len).collect();
    let small = data.remap(&maps, &sizes);
    let total = estimate::estimate_total(&raw_one_way.iter().map(|m| m.value().clone()).collect::<Vec<_>>());

    let mut edges = vec![];
    if d > 1 {
        // 3. Independence model from the one-way measurements, then tree selection.
        let singles: Vec<Vec<usize>> = (0..d).map(|a| vec![a]).collect();
        let mut indep = GraphicalModel::uniform(JunctionTree::build(&sizes, &singles), total);
        let ones: Vec<Measurement> = measurements.iter().map(|m| m.value().clone()).collect();
        estimate::mirror_descent(
            &mut indep,
            &ones,
            estimate::Options { max_iters: 1000, tol: 1e-6, ..Default::default() },
        );
        let b = indep.calibrate();
        let pairs = marginals::subsets(d, 2);
        let estimates: Vec<Vec<f64>> = pairs.iter().map(|p| indep.marginal(&b, p).values).collect();
        // Score of a pair: L1 distance of its exact counts from the independence estimate.
        let scores = small.count_many(&pairs)?.map(|exact| {
            exact
                .iter()
                .zip(&estimates)
                .map(|(x, est)| x.iter().zip(est).map(|(&a, &b)| (a as f64 - b).abs()).sum::<f64>())
                .collect::<Vec<f64>>()
        });
        let mut select = budget.part("MST tree selection", rho_select)?;
        let eps_em = (8.0 * rho_select * (1.0 - 1e-9) / (d - 1) as f64).sqrt();
        let mut comp: Vec<usize> = (0..d).collect();
        fn find(c: &mut [usize], x: usize) -> usize {
            let mut r = x;
            while c[r] != r {
                r = c[r];
            }
            c[x] = r;
            r
        }
        for round in 0..d - 1 {
            let cand: Vec<usize> =
                (0..pairs.len()).filter(|&i| find(&mut comp, pairs[i][0]) != find(&mut comp, pairs[i][1])).collect();
            let round_scores = scores.as_ref().map(|s| cand.iter().map(|&i| s[i]).collect::<Vec<f64>>());
            let pick = mechanisms::exponential(
                &mut select,
                round_scores,
                k as f64,
                eps_em,
                &format!("tree edge {}", round + 1),
            )?;
            let (a, b) = (pairs[cand[*pick.value()]][0], pairs[cand[*pick.value()]][1]);
            let (ra, rb) = (find(&mut comp, a), find(&mut comp, b));
            comp[ra] = rb;
            edges.push((a, b));
        }
        drop(select);
        // 4. Measure the tree's marginals with what is left, split evenly.
        let left = budget.rho_remaining();
        let mut tree = budget.part("MST tree marginals", left)?;
        let s2 = mechanisms::gaussian_scale(left / (d - 1) as f64 * (1.0 - 1e-9), k)?;
        for &(a, b) in &edges {
            let label = format!("2-way {},{}", data.names()[a], data.names()[b]);
            let r = mechanisms::gaussian_counts(&mut tree, small.count(&[a, b])?, k, s2, &label)?;
            measurements.push(r.map(|y| Measurement {
                attrs: vec![a, b],
                weights: vec![],
                y: y.into_iter().map(|v| v as f64).collect(),
                sigma: s2,
            }));
        }
    }

    // 5. Estimation on the compressed domain; N from every unweighted full-marginal measurement.
    let all: Vec<Measurement> = measurements.iter().map(|m| m.value().clone()).collect();
    let for_total: Vec<Measurement> = raw_one_way
        .iter()
        .map(|m| m.value().clone())
        .chain(all.iter().filter(|m| m.attrs.len() == 2).cloned())
        .collect();
    let total = estimate::estimate_total(&for_total);
    let sets: Vec<Vec<usize>> =
        (0..d).map(|a| vec![a]).chain(edges.iter().map(|&(a, b)| vec![a.min(b), a.max(b)])).collect();
    let mut model = GraphicalModel::uniform(JunctionTree::build(&sizes, &sets), total);
    let stats = estimate::mirror_descent(&mut model, &all, opts);
    let selected = edges.iter().map(|&(a, b)| vec![a.min(b), a.max(b)]).collect();
    Ok(Fit {
        mechanism: Mechanism::Mst,
        bound: data.bound(),
        compression,
        expansion,
        measurements,
        selected,
        model,
        stats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::EncodedTable;
    use rand::{RngExt, SeedableRng};

    /// Bounded rows (each unit contributes up to k) cost the same rho with k times the noise
    /// scale, and every release states sensitivity k.
    #[test]
    fn contribution_bound_scales_sensitivity_and_noise() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let codes: Vec<Vec<u32>> = (0..3).map(|_| (0..2000).map(|_| rng.random_range(0..4u32)).collect()).collect();
        let names = vec!["a".to_string(), "b".into(), "c".into()];
        let run = |k: u32| {
            // The bound comes from bounding (here: 2000 units of one row each, bound k).
            let units: Vec<[u8; 8]> = (0..2000u64).map(u64::to_le_bytes).collect();
            let key = privsynth_privacy::bounding::SecretKey::fresh().unwrap();
            let bound = privsynth_privacy::bounding::keep_rows(&units, k, &key).unwrap().bound;
            let data = EncodedTable::from_synthetic(names.clone(), vec![4, 4, 4], codes.clone()).with_bound(bound);
            let mut budget = Budget::from_rho(0.05).unwrap();
            fit(&data, &mut budget, estimate::Options { max_iters: 50, ..Default::default() }).unwrap();
            (budget.charges().to_vec(), budget.rho_spent())
        };
        let (one, rho1) = run(1);
        let (five, rho5) = run(5);
        assert!((rho1 - rho5).abs() < 1e-9 && (rho5 - 0.05).abs() < 1e-6, "same rho: {rho1} {rho5}");
        assert_eq!(one.len(), five.len());
        for (a, b) in one.iter().zip(&five) {
            assert_eq!(a.sensitivity, 1.0);
            assert_eq!(b.sensitivity, 5.0, "{}", b.label);
            assert!((a.rho - b.rho).abs() < 1e-9, "{}", b.label);
            if b.mechanism == "discrete_gaussian" {
                assert!((b.scale / a.scale - 5.0).abs() < 1e-3, "{}: scale {} vs {}", b.label, b.scale, a.scale);
            } else {
                // The exponential mechanism's scale 2 * sensitivity / epsilon.
                assert!((b.scale / a.scale - 5.0).abs() < 1e-9, "{}", b.label);
            }
        }
    }
}
