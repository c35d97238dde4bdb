//! Empirical lower bounds on epsilon: the check a data steward can run on a claimed guarantee.
//!
//! Run a release many times on a dataset D and on a neighbour D' (D plus one unit), reduce each
//! output to a number (a distinguishing statistic, larger meaning "the unit looks present"), and
//! ask how well a threshold test tells the two apart. (epsilon, delta)-DP implies, for every set
//! S of outputs, P[M(D') in S] <= e^eps P[M(D) in S] + delta and the same with D and D'
//! swapped, so
//!
//!   eps >= ln((P[M(D') in S] - delta) / P[M(D) in S])
//!
//! for every S. With Clopper-Pearson bounds on the two probabilities (a one-sided lower bound on
//! the numerator's, an upper bound on the denominator's) the result is a lower bound that holds
//! with the stated confidence. If it exceeds the claimed epsilon, the implementation is broken.
//!
//! The threshold and the direction of the test are chosen on one half of the runs and the bound
//! is computed on the other half, so choosing the best test does not inflate the bound.

use statrs::distribution::{Beta, ContinuousCDF};

/// One-sided Clopper-Pearson bounds for `k` successes in `n` trials: the lower and the upper
/// bound, each holding with probability at least `1 - alpha`.
pub fn clopper_pearson(k: usize, n: usize, alpha: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let lo =
        if k == 0 { 0.0 } else { Beta::new(k as f64, (n - k + 1) as f64).map(|b| b.inverse_cdf(alpha)).unwrap_or(0.0) };
    let hi = if k >= n {
        1.0
    } else {
        Beta::new((k + 1) as f64, (n - k) as f64).map(|b| b.inverse_cdf(1.0 - alpha)).unwrap_or(1.0)
    };
    (lo, hi)
}

/// Which outputs a test calls "the unit is present".
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Test {
    /// statistic > threshold
    Above(f64),
    /// statistic <= threshold
    AtMost(f64),
}

impl Test {
    fn hits(&self, x: f64) -> bool {
        match *self {
            Test::Above(t) => x > t,
            Test::AtMost(t) => x <= t,
        }
    }
}

/// The outcome of an audit of two sets of runs.
#[derive(Debug, Clone, PartialEq)]
pub struct EpsilonBound {
    /// The lower bound on epsilon (0 when the runs show no distinction).
    pub epsilon: f64,
    /// Confidence of the bound (1 - alpha).
    pub confidence: f64,
    /// The test the bound was computed with, and which dataset it points to (`true`: outputs of
    /// D' fall in the set more often).
    pub test: Test,
    pub towards_with: bool,
    /// Runs used for the bound (the other half chose the test), per dataset.
    pub evaluated: (usize, usize),
    /// Observed hit rates of the test on the evaluation halves (without, with).
    pub rates: (f64, f64),
}

fn bound_of(
    test: Test,
    towards_with: bool,
    without: &[f64],
    with: &[f64],
    delta: f64,
    alpha: f64,
) -> (f64, (f64, f64)) {
    let k0 = without.iter().filter(|&&x| test.hits(x)).count();
    let k1 = with.iter().filter(|&&x| test.hits(x)).count();
    let (num_k, num_n, den_k, den_n) =
        if towards_with { (k1, with.len(), k0, without.len()) } else { (k0, without.len(), k1, with.len()) };
    // Both one-sided bounds hold together with probability >= 1 - alpha (union bound).
    let (num_lo, _) = clopper_pearson(num_k, num_n, alpha / 2.0);
    let (_, den_hi) = clopper_pearson(den_k, den_n, alpha / 2.0);
    let eps = if num_lo - delta > 0.0 && den_hi > 0.0 { ((num_lo - delta) / den_hi).ln().max(0.0) } else { 0.0 };
    let rate = |k: usize, n: usize| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    (eps, (rate(k0, without.len()), rate(k1, with.len())))
}

/// A lower bound on epsilon at `delta` from statistics of runs without and with the unit, at
/// confidence `1 - alpha`. Even-numbered runs choose the test (every threshold halfway between
/// observed values, both directions, both sets and their complements); odd-numbered runs bound it.
pub fn epsilon_lower_bound(without: &[f64], with: &[f64], delta: f64, alpha: f64) -> EpsilonBound {
    let half = |v: &[f64], r: usize| -> Vec<f64> {
        v.iter().enumerate().filter(|(i, _)| i % 2 == r).map(|(_, x)| *x).collect()
    };
    let (cal0, cal1) = (half(without, 0), half(with, 0));
    let (ev0, ev1) = (half(without, 1), half(with, 1));
    let mut seen: Vec<f64> = cal0.iter().chain(&cal1).copied().filter(|x| x.is_finite()).collect();
    seen.sort_by(f64::total_cmp);
    seen.dedup();
    // Thresholds halfway between observed values generalise to the other half of the runs;
    // one at an observed extreme would sit on the edge of the evaluation runs' values.
    let cuts: Vec<f64> = seen.windows(2).map(|w| 0.5 * (w[0] + w[1])).collect();
    let mut best = (Test::Above(f64::INFINITY), true, -1.0);
    for &t in &cuts {
        for test in [Test::Above(t), Test::AtMost(t)] {
            for towards_with in [true, false] {
                // Choose on the calibration half by the same bound (at the same alpha), which
                // favours tests with both power and enough runs in the denominator.
                let (e, _) = bound_of(test, towards_with, &cal0, &cal1, delta, alpha);
                let score = e + 1e-9 * (rate_gap(test, &cal0, &cal1));
                if score > best.2 {
                    best = (test, towards_with, score);
                }
            }
        }
    }
    let (test, towards_with, _) = best;
    let (epsilon, rates) = bound_of(test, towards_with, &ev0, &ev1, delta, alpha);
    EpsilonBound { epsilon, confidence: 1.0 - alpha, test, towards_with, evaluated: (ev0.len(), ev1.len()), rates }
}

/// Tie-break among tests with equal bounds (often all 0 on few runs): prefer the largest gap.
fn rate_gap(test: Test, a: &[f64], b: &[f64]) -> f64 {
    let r = |v: &[f64]| v.iter().filter(|&&x| test.hits(x)).count() as f64 / v.len().max(1) as f64;
    (r(a) - r(b)).abs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clopper_pearson_matches_known_values() {
        // 0 of 100 at one-sided 5%: upper bound 1 - 0.05^(1/100) = 0.0295.
        let (lo, hi) = clopper_pearson(0, 100, 0.05);
        assert_eq!(lo, 0.0);
        assert!((hi - (1.0 - 0.05f64.powf(0.01))).abs() < 1e-9, "{hi}");
        // n of n: lower bound 0.05^(1/n).
        let (lo, hi) = clopper_pearson(50, 50, 0.05);
        assert!((lo - 0.05f64.powf(1.0 / 50.0)).abs() < 1e-9 && hi == 1.0);
        // Symmetry: the lower bound for k equals 1 - the upper bound for n - k.
        let (lo, _) = clopper_pearson(30, 100, 0.01);
        let (_, hi) = clopper_pearson(70, 100, 0.01);
        assert!((lo - (1.0 - hi)).abs() < 1e-9);
    }

    #[test]
    fn separated_runs_give_a_large_bound_and_identical_runs_none() {
        let without: Vec<f64> = (0..400).map(|i| (i % 10) as f64).collect();
        let with: Vec<f64> = (0..400).map(|i| 100.0 + (i % 10) as f64).collect();
        let b = epsilon_lower_bound(&without, &with, 1e-6, 0.05);
        // 0/200 vs 200/200 at one-sided 2.5%: ln(0.9817 / 0.0183) = 3.98.
        assert!(b.epsilon > 3.9 && b.epsilon < 4.1, "{b:?}");
        let same = epsilon_lower_bound(&without, &without, 1e-6, 0.05);
        assert_eq!(same.epsilon, 0.0, "{same:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// The claim audit's further bounds (`privsynth audit-privacy`): the Gaussian-DP view of the same
// runs, and the one-run bound of Steinke, Nasr and Jagielski.

use statrs::distribution::{Binomial, Discrete, DiscreteCDF, Normal};

fn probit(p: f64) -> f64 {
    Normal::new(0.0, 1.0).map(|n| n.inverse_cdf(p.clamp(1e-300, 1.0 - 1e-16))).unwrap_or(0.0)
}

/// A lower bound on the Gaussian-DP parameter mu (Dong, Roth and Su 2022) of the mechanism:
/// every mu-GDP mechanism has TPR <= Phi(Phi^-1(FPR) + mu) for every test, so
/// mu >= Phi^-1(TPR_lo) - Phi^-1(FPR_hi) with Clopper-Pearson bounds, at confidence 1 - alpha.
/// The test is chosen on the even-numbered runs and bounded on the odd-numbered ones, as in
/// [`epsilon_lower_bound`]. Returns (mu lower bound, the test, towards_with).
pub fn gdp_mu_lower_bound(without: &[f64], with: &[f64], alpha: f64) -> (f64, Test, bool) {
    let half = |v: &[f64], r: usize| -> Vec<f64> {
        v.iter().enumerate().filter(|(i, _)| i % 2 == r).map(|(_, x)| *x).collect()
    };
    let (cal0, cal1) = (half(without, 0), half(with, 0));
    let (ev0, ev1) = (half(without, 1), half(with, 1));
    let mu_of = |test: Test, towards_with: bool, a: &[f64], b: &[f64]| -> f64 {
        let k0 = a.iter().filter(|&&x| test.hits(x)).count();
        let k1 = b.iter().filter(|&&x| test.hits(x)).count();
        let (tk, tn, fk, fn_) = if towards_with { (k1, b.len(), k0, a.len()) } else { (k0, a.len(), k1, b.len()) };
        let (tpr_lo, _) = clopper_pearson(tk, tn, alpha / 2.0);
        let (_, fpr_hi) = clopper_pearson(fk, fn_, alpha / 2.0);
        if tpr_lo <= 0.0 || fpr_hi >= 1.0 { 0.0 } else { (probit(tpr_lo) - probit(fpr_hi)).max(0.0) }
    };
    let mut seen: Vec<f64> = cal0.iter().chain(&cal1).copied().filter(|x| x.is_finite()).collect();
    seen.sort_by(f64::total_cmp);
    seen.dedup();
    let mut best = (Test::Above(f64::INFINITY), true, -1.0);
    for w in seen.windows(2) {
        let t = 0.5 * (w[0] + w[1]);
        for test in [Test::Above(t), Test::AtMost(t)] {
            for towards_with in [true, false] {
                let m = mu_of(test, towards_with, &cal0, &cal1) + 1e-9 * rate_gap(test, &cal0, &cal1);
                if m > best.2 {
                    best = (test, towards_with, m);
                }
            }
        }
    }
    let (test, towards_with, _) = best;
    (mu_of(test, towards_with, &ev0, &ev1), test, towards_with)
}

/// The mu of a Gaussian mechanism with zCDP cost `rho` at sensitivity 1 (sum of 1/sigma^2
/// over its releases is 2 rho): the trade-off curve an audit of a pure Gaussian release at the
/// claim would trace.
pub fn gaussian_mu(rho: f64) -> f64 {
    (2.0 * rho).sqrt()
}

/// The delta(epsilon) of a mu-GDP mechanism (Dong, Roth and Su, Corollary 2.13).
pub fn gdp_delta(mu: f64, epsilon: f64) -> f64 {
    if mu <= 0.0 {
        return 0.0;
    }
    let n = Normal::new(0.0, 1.0).expect("standard normal");
    (n.cdf(-epsilon / mu + mu / 2.0) - epsilon.exp() * n.cdf(-epsilon / mu - mu / 2.0)).max(0.0)
}

/// p-value of `v` or more correct guesses out of `r` (among `m` canaries, each included with
/// probability 1/2) if the mechanism is (epsilon, delta)-DP: Steinke, Nasr and Jagielski,
/// "Privacy auditing with one (1) training run" (NeurIPS 2023), Theorem 5.2:
/// P[Binomial(r, q) >= v] + 2 m delta max_i P[v > Binomial(r, q) >= v - i] / i, q = e^eps/(1+e^eps).
pub fn one_run_p_value(m: usize, r: usize, v: usize, epsilon: f64, delta: f64) -> f64 {
    if v == 0 || r == 0 {
        return 1.0;
    }
    let q = 1.0 / (1.0 + (-epsilon).exp());
    let Ok(b) = Binomial::new(q, r as u64) else { return 1.0 };
    // P[X >= v] = 1 - P[X <= v - 1]
    let beta = b.sf((v - 1) as u64);
    let (mut worst, mut sum) = (0.0f64, 0.0f64);
    for i in 1..=v {
        sum += b.pmf((v - i) as u64);
        worst = worst.max(sum / i as f64);
    }
    (beta + worst * delta * 2.0 * m as f64).min(1.0)
}

/// The largest epsilon that the one-run audit rejects at level `alpha` (0 when none): the
/// mechanism is not (epsilon, delta)-DP for any smaller epsilon, with confidence 1 - alpha.
pub fn one_run_epsilon_lower_bound(m: usize, r: usize, v: usize, delta: f64, alpha: f64) -> f64 {
    if one_run_p_value(m, r, v, 0.0, delta) >= alpha {
        return 0.0;
    }
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    while one_run_p_value(m, r, v, hi, delta) < alpha && hi < 64.0 {
        lo = hi;
        hi *= 2.0;
    }
    for _ in 0..50 {
        let mid = 0.5 * (lo + hi);
        if one_run_p_value(m, r, v, mid, delta) < alpha { lo = mid } else { hi = mid }
    }
    lo
}

#[cfg(test)]
mod claim_tests {
    use super::*;

    #[test]
    fn one_run_bound_matches_randomized_response() {
        // All r guesses right: P[Bin(r, q) = r] = q^r < alpha gives q > alpha^(1/r), so with
        // delta = 0, eps = ln(q / (1 - q)) at q = alpha^(1/r). r = 100, alpha = 0.05: q = 0.97049,
        // eps = 3.4929.
        let e = one_run_epsilon_lower_bound(1000, 100, 100, 0.0, 0.05);
        let q = 0.05f64.powf(0.01);
        assert!((e - (q / (1.0 - q)).ln()).abs() < 1e-6, "{e}");
        // Half right is what a coin gives: no bound.
        assert_eq!(one_run_epsilon_lower_bound(1000, 100, 50, 0.0, 0.05), 0.0);
        // delta only weakens the bound.
        assert!(
            one_run_epsilon_lower_bound(1000, 100, 95, 1e-4, 0.05)
                < one_run_epsilon_lower_bound(1000, 100, 95, 0.0, 0.05)
        );
    }

    #[test]
    fn gdp_delta_of_the_gaussian_mechanism() {
        // mu = 1: delta(eps = 1) = Phi(-0.5) - e Phi(-1.5) = 0.30854 - 2.71828 * 0.066807 = 0.12693.
        assert!((gdp_delta(1.0, 1.0) - 0.126936).abs() < 1e-5, "{}", gdp_delta(1.0, 1.0));
    }

    #[test]
    fn mu_bound_of_separated_and_identical_runs() {
        let without: Vec<f64> = (0..2000).map(|i| probit((i as f64 + 0.5) / 2000.0)).collect();
        let with: Vec<f64> = without.iter().map(|x| x + 3.0).collect();
        let (mu, _, _) = gdp_mu_lower_bound(&without, &with, 0.05);
        assert!(mu > 2.0 && mu < 3.0, "{mu}");
        let (none, _, _) = gdp_mu_lower_bound(&without, &without, 0.05);
        assert_eq!(none, 0.0);
    }
}
