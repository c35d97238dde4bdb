//! Privacy budgets in rho-zero-concentrated DP (zCDP), and their conversion to and from
//! (epsilon, delta)-DP.
//!
//! The conversion is the optimal one of Canonne, Kamath and Steinke ("The Discrete Gaussian for
//! Differential Privacy", NeurIPS 2020, Proposition 12 / Corollary 13), the same the peers use
//! (private-pgm's `cdp2adp.py`, SmartNoise Synth): a rho-zCDP mechanism is (epsilon, delta)-DP for
//!
//!   delta = inf_{alpha > 1} exp((alpha-1)(alpha*rho - epsilon)) / (alpha-1) * (1 - 1/alpha)^alpha
//!
//! `rho_for(epsilon, delta)` inverts it by bisection: the largest rho whose delta at epsilon does
//! not exceed the target, so the budget never overstates what a user allowed.

/// delta of a rho-zCDP mechanism at a given epsilon (CKS20 Corollary 13).
pub fn delta_for(rho: f64, epsilon: f64) -> f64 {
    assert!(rho >= 0.0 && epsilon >= 0.0, "rho and epsilon must be non-negative");
    if rho == 0.0 {
        return 0.0;
    }
    // The exponent is convex in alpha; find its minimiser by bisection on the derivative.
    let (mut lo, mut hi) = (1.01_f64, (epsilon + 1.0) / (2.0 * rho) + 2.0);
    let deriv = |a: f64| (2.0 * a - 1.0) * rho - epsilon + (-1.0 / a).ln_1p();
    for _ in 0..1000 {
        let mid = 0.5 * (lo + hi);
        if deriv(mid) < 0.0 { lo = mid } else { hi = mid }
    }
    let a = 0.5 * (lo + hi);
    let log_delta = (a - 1.0) * (a * rho - epsilon) + a * (-1.0 / a).ln_1p() - (a - 1.0).ln();
    log_delta.exp().min(1.0)
}

/// Smallest epsilon at which a rho-zCDP mechanism is (epsilon, delta)-DP.
pub fn epsilon_for(rho: f64, delta: f64) -> f64 {
    assert!(rho >= 0.0 && delta > 0.0 && delta < 1.0, "need rho >= 0 and 0 < delta < 1");
    let (mut lo, mut hi) = (0.0_f64, rho + 2.0 * (rho * (1.0 / delta).ln()).sqrt());
    for _ in 0..1000 {
        let mid = 0.5 * (lo + hi);
        if delta_for(rho, mid) <= delta { hi = mid } else { lo = mid }
    }
    hi
}

/// Largest rho whose (epsilon, delta) guarantee is within the given one.
pub fn rho_for(epsilon: f64, delta: f64) -> f64 {
    assert!(epsilon > 0.0 && delta > 0.0 && delta < 1.0, "need epsilon > 0 and 0 < delta < 1");
    let (mut lo, mut hi) = (0.0_f64, epsilon + 1.0);
    for _ in 0..1000 {
        let mid = 0.5 * (lo + hi);
        if delta_for(mid, epsilon) <= delta { lo = mid } else { hi = mid }
    }
    lo
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_published_conversions() {
        // private-pgm's cdp2adp.cdp_rho, evaluated in Python: the budgets of the MST/AIM benchmarks.
        for (e, want) in [(1.0, 0.014973057673588523), (0.3, 0.0014767453611007348), (3.0, 0.12058242891101999)] {
            let got = rho_for(e, 1e-9);
            assert!((got - want).abs() < 1e-12, "eps {e}: {got} vs {want}");
        }
        // The conversion round-trips.
        for (e, d) in [(0.3, 1e-9), (1.0, 1e-6), (3.0, 1e-9), (10.0, 1e-5)] {
            let rho = rho_for(e, d);
            assert!((epsilon_for(rho, d) - e).abs() < 1e-6 * e.max(1.0), "eps {e}, delta {d}");
            assert!(delta_for(rho, e) <= d);
        }
        // CKS is tighter than the classic bound eps = rho + 2 sqrt(rho ln(1/delta)).
        let rho = 0.5;
        assert!(epsilon_for(rho, 1e-6) < rho + 2.0 * (rho * 1e6f64.ln()).sqrt());
        assert_eq!(delta_for(0.0, 1.0), 0.0);
    }
}
