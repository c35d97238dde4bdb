//! Noise and selection, built only on OpenDP's samplers. This file is the only place in
//! privsynth where noise is drawn.
//!
//! Every function here builds an OpenDP measurement, asks its privacy map for the cost at the
//! stated sensitivity, charges the [`Budget`] (refusing without drawing anything if the budget
//! is short), and only then invokes the measurement. Scales for a target cost are found by
//! bisection on the same privacy map, so no cost formula is copied beside OpenDP's.
//!
//! | function | OpenDP measurement | privacy |
//! |---|---|---|
//! | [`gaussian_counts`] | `make_gaussian` on `Vec<i64>` (discrete Gaussian, CKS20) | rho-zCDP, L2 sensitivity |
//! | [`exponential`] | `make_noisy_max` with Gumbel noise (exponential mechanism) | rho = eps^2/8 (bounded range) |
//! | [`quantiles`] | `make_private_quantile` (Smith11 scores, exponential mechanism) | rho-zCDP per quantile |
//! | [`threshold_counts`] | `make_gaussian_threshold` (partition selection, Rogers23) | (rho, delta) approximate zCDP |

use std::collections::HashMap;

use opendp::domains::{AtomDomain, MapDomain, VectorDomain};
use opendp::error::Fallible;
use opendp::measurements::{make_gaussian, make_gaussian_threshold, make_noisy_max, make_private_quantile};
use opendp::measures::{Approximate, ZeroConcentratedDivergence};
use opendp::metrics::{AbsoluteDistance, L0PInfDistance, L2Distance, LInfDistance, SymmetricDistance};

use crate::PrivacyError;
use crate::accountant::Budget;
use crate::released::{Cost, Released, Sensitive};

type Result<T> = std::result::Result<T, PrivacyError>;

fn od<T>(r: Fallible<T>) -> Result<T> {
    r.map_err(|e| PrivacyError::OpenDp(e.to_string()))
}

/// Smallest scale whose cost (decreasing in the scale) is at most `target`, by bisection in log
/// space on the mechanism's own privacy map.
fn scale_for(target: f64, cost_at: impl Fn(f64) -> Result<f64>) -> Result<f64> {
    if !(target > 0.0 && target.is_finite()) {
        return Err(PrivacyError::Invalid(format!("target cost must be positive, got {target}")));
    }
    let (mut lo, mut hi) = (1e-6_f64, 1.0_f64);
    while cost_at(hi)? > target {
        lo = hi;
        hi *= 2.0;
        if hi > 1e15 {
            return Err(PrivacyError::Invalid(format!("no noise scale reaches cost {target}")));
        }
    }
    for _ in 0..100 {
        let mid = (lo * hi).sqrt();
        if cost_at(mid)? <= target {
            hi = mid
        } else {
            lo = mid
        }
        if hi / lo < 1.0 + 1e-12 {
            break;
        }
    }
    Ok(hi)
}

fn gaussian_measurement(
    scale: f64,
) -> Result<
    opendp::core::Measurement<VectorDomain<AtomDomain<i64>>, L2Distance<i64>, ZeroConcentratedDivergence, Vec<i64>>,
> {
    od(make_gaussian::<_, _, ZeroConcentratedDivergence>(
        VectorDomain::new(AtomDomain::<i64>::default()),
        L2Distance::<i64>::default(),
        scale,
        None,
    ))
}

/// Noise scale (standard deviation) of the discrete Gaussian that costs `rho` at the given L2
/// sensitivity, per OpenDP's privacy map.
pub fn gaussian_scale(rho: f64, l2_sensitivity: i64) -> Result<f64> {
    scale_for(rho, |s| od(gaussian_measurement(s)?.map(&l2_sensitivity)))
}

/// The zCDP cost of [`gaussian_counts`] at this scale and L2 sensitivity, per OpenDP's privacy
/// map: what a release planned in advance records in the ledger before it draws.
pub fn gaussian_rho(scale: f64, l2_sensitivity: i64) -> Result<f64> {
    od(gaussian_measurement(scale)?.map(&l2_sensitivity))
}

/// Release a vector of integer counts with discrete Gaussian noise of the given scale.
/// `l2_sensitivity`: the largest L2 change of the whole vector when one privacy unit is added or
/// removed (1 for a marginal of one-row units; k with k rows per unit).
pub fn gaussian_counts(
    budget: &mut Budget,
    counts: Sensitive<Vec<i64>>,
    l2_sensitivity: i64,
    scale: f64,
    label: &str,
) -> Result<Released<Vec<i64>>> {
    let m = gaussian_measurement(scale)?;
    let rho = od(m.map(&l2_sensitivity))?;
    let cost = Cost {
        label: label.into(),
        mechanism: "discrete_gaussian".into(),
        sensitivity: l2_sensitivity as f64,
        scale,
        rho,
        delta: 0.0,
    };
    budget.charge(cost.clone())?;
    let noisy = od(m.invoke(&counts.into_inner()))?;
    Ok(Released::new(noisy, cost))
}

/// Choose the index of the best score with the exponential mechanism (Gumbel-max form):
/// P(r) proportional to exp(epsilon * q_r / (2 * sensitivity)), where `sensitivity` bounds how
/// much any single score changes when one privacy unit is added or removed. Costs
/// rho = epsilon^2 / 8 under the bounded-range analysis (OpenDP's zCDP map for noisy max).
pub fn exponential(
    budget: &mut Budget,
    scores: Sensitive<Vec<f64>>,
    sensitivity: f64,
    epsilon: f64,
    label: &str,
) -> Result<Released<usize>> {
    if !(sensitivity > 0.0 && epsilon > 0.0) {
        return Err(PrivacyError::Invalid(format!(
            "sensitivity and epsilon must be positive ({sensitivity}, {epsilon})"
        )));
    }
    let scale = 2.0 * sensitivity / epsilon;
    let m = od(make_noisy_max(
        VectorDomain::new(AtomDomain::<f64>::new_non_nan()),
        LInfDistance::<f64>::new(false), // scores may move in either direction
        ZeroConcentratedDivergence,
        scale,
        false,
    ))?;
    let rho = od(m.map(&sensitivity))?;
    let cost = Cost { label: label.into(), mechanism: "exponential".into(), sensitivity, scale, rho, delta: 0.0 };
    let scores = scores.into_inner();
    if scores.is_empty() || scores.iter().any(|s| !s.is_finite()) {
        return Err(PrivacyError::Invalid(format!("{label}: scores must be finite and non-empty")));
    }
    budget.charge(cost.clone())?;
    let idx = od(m.invoke(&scores))?;
    Ok(Released::new(idx, cost))
}

/// Release quantiles `alphas` of private values, each chosen among public `candidates`, for a
/// total cost of `rho` split evenly. `rows_per_unit` bounds how many values one privacy unit
/// contributes.
pub fn quantiles(
    budget: &mut Budget,
    values: Sensitive<Vec<f64>>,
    rows_per_unit: u32,
    candidates: &[f64],
    alphas: &[f64],
    rho: f64,
    label: &str,
) -> Result<Released<Vec<f64>>> {
    if candidates.len() < 2 || candidates.iter().any(|c| !c.is_finite()) {
        return Err(PrivacyError::Invalid(format!("{label}: need at least two finite candidates")));
    }
    let values = values.into_inner();
    if values.iter().any(|v| v.is_nan()) {
        return Err(PrivacyError::Invalid(format!("{label}: values must not be NaN")));
    }
    let per = rho / alphas.len() as f64;
    let build = |alpha: f64, scale: f64| {
        od(make_private_quantile(
            VectorDomain::new(AtomDomain::<f64>::new_non_nan()),
            SymmetricDistance,
            ZeroConcentratedDivergence,
            candidates.to_vec(),
            alpha,
            scale,
        ))
    };
    // Build and charge every quantile before drawing any, so a refusal draws nothing.
    let mut planned = Vec::with_capacity(alphas.len());
    for &alpha in alphas {
        let scale = scale_for(per, |s| od(build(alpha, s)?.map(&rows_per_unit)))?;
        let m = build(alpha, scale)?;
        let cost = Cost {
            label: format!("{label} q{alpha}"),
            mechanism: "quantile".into(),
            sensitivity: rows_per_unit as f64,
            scale,
            rho: od(m.map(&rows_per_unit))?,
            delta: 0.0,
        };
        planned.push((m, cost));
    }
    let total = Cost {
        label: label.into(),
        mechanism: "quantile".into(),
        sensitivity: rows_per_unit as f64,
        scale: planned.first().map_or(0.0, |p| p.1.scale),
        rho: planned.iter().map(|p| p.1.rho).sum(),
        delta: 0.0,
    };
    budget.charge(total.clone())?;
    let out = planned.iter().map(|(m, _)| od(m.invoke(&values))).collect::<Result<Vec<f64>>>()?;
    Ok(Released::new(out, total))
}

/// Release the counts of keys whose noisy count clears a threshold (DP partition selection):
/// keys present in the data are the private part, so this needs delta. Discrete Gaussian noise
/// at the scale that costs `rho`, and the smallest threshold whose delta is at most `delta`.
/// One privacy unit contributes at most `rows_per_unit` rows, each to one key.
pub fn threshold_counts(
    budget: &mut Budget,
    counts: Sensitive<HashMap<String, i64>>,
    rows_per_unit: u32,
    rho: f64,
    delta: f64,
    label: &str,
) -> Result<Released<HashMap<String, i64>>> {
    let k = rows_per_unit as i64;
    let d_in = (rows_per_unit, k, k); // (keys touched, L2, L-infinity)
    let build = |scale: f64, threshold: i64| {
        od(make_gaussian_threshold::<_, _, Approximate<ZeroConcentratedDivergence>>(
            MapDomain::new(AtomDomain::<String>::default(), AtomDomain::<i64>::default()),
            L0PInfDistance::<2, _>(AbsoluteDistance::<i64>::default()),
            scale,
            threshold,
            None,
        ))
    };
    let scale = scale_for(rho, |s| Ok(od(build(s, i64::MAX / 4)?.map(&d_in))?.0))?;
    // delta falls as the threshold rises: double, then bisect to the smallest that suffices.
    let delta_at = |t: i64| -> Result<f64> { Ok(od(build(scale, t)?.map(&d_in))?.1) };
    let mut hi = 1i64.max(k);
    while delta_at(hi)? > delta {
        hi = hi
            .checked_mul(2)
            .ok_or_else(|| PrivacyError::Invalid(format!("{label}: no threshold reaches delta {delta}")))?;
    }
    let mut lo = 0i64;
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if delta_at(mid)? <= delta { hi = mid } else { lo = mid }
    }
    let m = build(scale, hi)?;
    let (rho_used, delta_used) = od(m.map(&d_in))?;
    let cost = Cost {
        label: label.into(),
        mechanism: "gaussian_threshold".into(),
        sensitivity: k as f64,
        scale,
        rho: rho_used,
        delta: delta_used,
    };
    budget.charge(cost.clone())?;
    let kept = od(m.invoke(&counts.into_inner()))?;
    Ok(Released::new(kept, cost))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_cost_is_opendps_map() {
        // rho = (sensitivity / scale)^2 / 2 for the discrete Gaussian (CKS20).
        let s = gaussian_scale(0.5, 1).unwrap();
        assert!((s - 1.0).abs() < 1e-9, "{s}");
        let s = gaussian_scale(0.01, 3).unwrap();
        assert!((s - 3.0 / (0.02f64).sqrt()).abs() / s < 1e-9, "{s}");
        let mut b = Budget::from_rho(1.0).unwrap();
        let r = gaussian_counts(&mut b, Sensitive::new(vec![10, 20, 30]), 2, 4.0, "m").unwrap();
        assert_eq!(r.value().len(), 3);
        assert!((r.cost()[0].rho - (2.0f64 / 4.0).powi(2) / 2.0).abs() < 1e-12);
        assert_eq!(b.rho_spent(), r.cost()[0].rho);
    }

    #[test]
    fn exponential_costs_eps_squared_over_8() {
        let mut b = Budget::from_rho(1.0).unwrap();
        for eps in [0.1, 0.5, 2.0] {
            let r = exponential(&mut b, Sensitive::new(vec![0.0, 5.0, 1.0]), 1.0, eps, "sel").unwrap();
            assert!((r.cost()[0].rho - eps * eps / 8.0).abs() < 1e-12, "eps {eps}: {}", r.cost()[0].rho);
        }
    }

    #[test]
    fn refused_charges_draw_nothing() {
        let mut b = Budget::from_rho(0.01).unwrap();
        let e = gaussian_counts(&mut b, Sensitive::new(vec![1]), 1, 1.0, "too much").unwrap_err();
        assert!(matches!(e, PrivacyError::Budget(_)), "{e}");
        assert_eq!(b.rho_spent(), 0.0);
        assert!(b.charges().is_empty());
    }

    #[test]
    fn quantiles_land_near_the_truth() {
        let mut b = Budget::from_rho(1.0).unwrap();
        let values: Vec<f64> = (0..10_000).map(|i| (i % 100) as f64).collect();
        let candidates: Vec<f64> = (0..=200).map(|i| i as f64).collect();
        let r = quantiles(&mut b, Sensitive::new(values), 1, &candidates, &[0.05, 0.5, 0.95], 0.3, "age").unwrap();
        let q = r.value();
        assert!((q[0] - 5.0).abs() <= 3.0 && (q[1] - 50.0).abs() <= 3.0 && (q[2] - 95.0).abs() <= 3.0, "{q:?}");
        assert!((b.rho_spent() - 0.3).abs() < 1e-9, "{}", b.rho_spent());
    }

    #[test]
    fn threshold_keeps_frequent_keys_only() {
        let mut b = Budget::with_mechanism_delta(3.0, 1e-6, 5e-7).unwrap();
        let counts: HashMap<String, i64> =
            [("common", 5000), ("rare", 1), ("mid", 400)].iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let r = threshold_counts(&mut b, Sensitive::new(counts), 1, 0.05, 4e-7, "cats").unwrap();
        assert!(r.value().contains_key("common") && r.value().contains_key("mid"));
        assert!(!r.value().contains_key("rare"), "a count of 1 never clears a threshold set for delta 4e-7");
        let c = &r.cost()[0];
        assert!(c.rho <= 0.05 * (1.0 + 1e-9) && c.delta <= 4e-7 && c.delta > 0.0, "{c:?}");
    }
}
