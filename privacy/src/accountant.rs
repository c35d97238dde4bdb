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
//!
//! Composition: zCDP costs add (also for adaptively chosen mechanisms). Approximate mechanisms
//! (thresholded counts) cost (rho, delta'); their delta' adds to the conversion's delta. A
//! [`Budget`] created from (epsilon, delta) therefore sets part of delta aside for them.

use crate::released::Cost;

/// delta of a rho-zCDP mechanism at a given epsilon (CKS20 Corollary 13).
pub fn delta_for(rho: f64, epsilon: f64) -> f64 {
    assert!(rho >= 0.0 && epsilon >= 0.0, "rho and epsilon must be non-negative");
    if rho == 0.0 {
        return 0.0;
    }
    // The exponent is convex in alpha; find its minimiser by bisection on the derivative.
    // Any alpha > 1 gives a valid bound, so an imprecise search only errs on the safe side.
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

/// Why a charge was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "privacy budget exceeded: {what} needs rho {rho_needed:.6} (delta {delta_needed:.2e}) but only rho {rho_left:.6} (delta {delta_left:.2e}) is left"
)]
pub struct BudgetExceeded {
    pub what: String,
    pub rho_needed: f64,
    pub rho_left: f64,
    pub delta_needed: f64,
    pub delta_left: f64,
}

/// A privacy budget that every mechanism charges before it returns.
#[derive(Debug, Clone)]
pub struct Budget {
    rho_total: f64,
    /// delta used to convert the zCDP total back to (epsilon, delta).
    delta_conversion: f64,
    /// delta set aside for approximate mechanisms.
    delta_mechanisms: f64,
    rho_spent: f64,
    delta_spent: f64,
    charges: Vec<Cost>,
}

/// Largest epsilon a budget accepts.
pub const MAX_EPSILON: f64 = 1000.0;

/// Relative slack for floating-point rounding when comparing a charge to what is left.
const SLACK: f64 = 1e-12;

impl Budget {
    /// A budget of (epsilon, delta)-DP, all of delta used by the zCDP conversion.
    pub fn from_epsilon_delta(epsilon: f64, delta: f64) -> Result<Budget, String> {
        Budget::with_mechanism_delta(epsilon, delta, 0.0)
    }

    /// A budget of (epsilon, delta)-DP of which `delta_mechanisms` is set aside for approximate
    /// mechanisms; the rest converts the zCDP total.
    pub fn with_mechanism_delta(epsilon: f64, delta: f64, delta_mechanisms: f64) -> Result<Budget, String> {
        if !(epsilon > 0.0 && epsilon <= MAX_EPSILON) {
            return Err(format!(
                "epsilon must be positive and at most {MAX_EPSILON} (beyond it there is no meaningful guarantee, and the conversion to zCDP loses precision), got {epsilon}"
            ));
        }
        if !(delta > 0.0 && delta < 1.0) {
            return Err(format!("delta must be in (0, 1), got {delta}"));
        }
        if !(0.0..delta).contains(&delta_mechanisms) {
            return Err(format!("the delta set aside for mechanisms ({delta_mechanisms}) must be in [0, delta)"));
        }
        let delta_conversion = delta - delta_mechanisms;
        Ok(Budget {
            rho_total: rho_for(epsilon, delta_conversion),
            delta_conversion,
            delta_mechanisms,
            rho_spent: 0.0,
            delta_spent: 0.0,
            charges: vec![],
        })
    }

    /// A budget given directly in rho (pure zCDP; no approximate mechanisms allowed).
    pub fn from_rho(rho: f64) -> Result<Budget, String> {
        if !(rho > 0.0 && rho.is_finite()) {
            return Err(format!("rho must be positive and finite, got {rho}"));
        }
        Ok(Budget {
            rho_total: rho,
            delta_conversion: 0.0,
            delta_mechanisms: 0.0,
            rho_spent: 0.0,
            delta_spent: 0.0,
            charges: vec![],
        })
    }

    pub fn rho_total(&self) -> f64 {
        self.rho_total
    }
    pub fn rho_spent(&self) -> f64 {
        self.rho_spent
    }
    pub fn rho_remaining(&self) -> f64 {
        (self.rho_total - self.rho_spent).max(0.0)
    }
    pub fn delta_remaining(&self) -> f64 {
        (self.delta_mechanisms - self.delta_spent).max(0.0)
    }
    /// Every charge so far, in order.
    pub fn charges(&self) -> &[Cost] {
        &self.charges
    }

    /// The (epsilon, delta) guarantee of what has been spent, or `None` for a pure-rho budget.
    pub fn spent_epsilon_delta(&self) -> Option<(f64, f64)> {
        (self.delta_conversion > 0.0).then(|| {
            let eps = if self.rho_spent > 0.0 { epsilon_for(self.rho_spent, self.delta_conversion) } else { 0.0 };
            (eps, self.delta_conversion + self.delta_spent)
        })
    }

    /// Charge a cost, or refuse it without changing anything.
    pub(crate) fn charge(&mut self, cost: Cost) -> Result<(), BudgetExceeded> {
        let rho_ok = self.rho_spent + cost.rho <= self.rho_total * (1.0 + SLACK);
        let delta_ok = self.delta_spent + cost.delta <= self.delta_mechanisms * (1.0 + SLACK);
        if !(rho_ok && delta_ok) || !cost.rho.is_finite() || cost.rho < 0.0 || cost.delta < 0.0 {
            return Err(BudgetExceeded {
                what: cost.label,
                rho_needed: cost.rho,
                rho_left: self.rho_remaining(),
                delta_needed: cost.delta,
                delta_left: self.delta_remaining(),
            });
        }
        self.rho_spent += cost.rho;
        self.delta_spent += cost.delta;
        self.charges.push(cost);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(rho: f64, delta: f64) -> Cost {
        Cost { label: "t".into(), mechanism: "test".into(), sensitivity: 1.0, scale: 1.0, rho, delta }
    }

    #[test]
    fn matches_published_conversions() {
        // private-pgm's cdp2adp.cdp_rho evaluated in Python, and the design note's table.
        for (e, want) in [(1.0, 0.014973057673588523), (0.3, 0.0014767453611007348), (3.0, 0.12058242891101999)] {
            let got = rho_for(e, 1e-9);
            assert!((got - want).abs() < 1e-12, "eps {e}: {got} vs {want}");
        }
        assert!((rho_for(10.0, 1e-9) - 1.0907857).abs() < 1e-6);
        // The conversion round-trips.
        for (e, d) in [(0.3, 1e-9), (1.0, 1e-6), (3.0, 1e-9), (10.0, 1e-5)] {
            let rho = rho_for(e, d);
            assert!((epsilon_for(rho, d) - e).abs() < 1e-6 * e.max(1.0), "eps {e}, delta {d}");
            assert!(delta_for(rho, e) <= d);
        }
        // CKS is tighter than the classic bound eps = rho + 2 sqrt(rho ln(1/delta)) (design note:
        // eps 1 -> 1.129 by the closed form).
        let rho = rho_for(1.0, 1e-9);
        let closed = rho + 2.0 * (rho * 1e9f64.ln()).sqrt();
        assert!((closed - 1.129).abs() < 1e-3 && epsilon_for(rho, 1e-9) < closed);
        assert_eq!(delta_for(0.0, 1.0), 0.0);
    }

    #[test]
    fn charges_compose_and_refuse_beyond_the_total() {
        let mut b = Budget::from_epsilon_delta(1.0, 1e-9).unwrap();
        let total = b.rho_total();
        for _ in 0..3 {
            b.charge(cost(total / 3.0, 0.0)).unwrap();
        }
        assert!((b.rho_spent() - total).abs() < 1e-15);
        let (eps, delta) = b.spent_epsilon_delta().unwrap();
        assert!((eps - 1.0).abs() < 1e-6 && delta == 1e-9, "{eps} {delta}");
        let before = b.charges().len();
        let e = b.charge(cost(total * 1e-6, 0.0)).unwrap_err();
        assert_eq!(e.rho_left, 0.0);
        assert_eq!(b.charges().len(), before, "a refused charge changes nothing");
    }

    #[test]
    fn mechanism_delta_is_set_aside_and_capped() {
        let mut b = Budget::with_mechanism_delta(1.0, 1e-6, 5e-7).unwrap();
        assert_eq!(b.rho_total(), rho_for(1.0, 5e-7));
        b.charge(cost(0.001, 4e-7)).unwrap();
        assert!(b.charge(cost(0.001, 2e-7)).is_err(), "delta beyond the reserve");
        let (_, delta) = b.spent_epsilon_delta().unwrap();
        assert!((delta - 9e-7).abs() < 1e-18);
        assert!(Budget::from_rho(0.5).unwrap().charge(cost(0.1, 1e-9)).is_err(), "pure zCDP budget has no delta");
        for bad in [(0.0, 1e-6), (1.0, 0.0), (1.0, 1.0), (f64::INFINITY, 1e-6)] {
            assert!(Budget::from_epsilon_delta(bad.0, bad.1).is_err());
        }
    }
}
