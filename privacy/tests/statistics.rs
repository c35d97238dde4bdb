//! Statistical tests of the mechanisms: the noise has the claimed scale, selection follows the
//! exponential mechanism, and an empirical privacy audit stays within the claimed epsilon — and
//! catches a mechanism that claims more noise than it adds.
//!
//! OpenDP draws from the operating system's CSPRNG and cannot be seeded (by design), so these
//! tests are not replayable; each bound below has a false-failure probability of at most 1e-6.

use privsynth_privacy::accountant::epsilon_for;
use privsynth_privacy::{Budget, Sensitive, audit, mechanisms};
use statrs::distribution::{ChiSquared, ContinuousCDF};

const ALPHA: f64 = 1e-6;

fn unlimited() -> Budget {
    Budget::from_rho(1e12).unwrap()
}

#[test]
fn discrete_gaussian_variance_matches_the_scale() {
    for (scale, n) in [(10.0, 40_000usize), (3.0, 20_000)] {
        let mut b = unlimited();
        let out = mechanisms::gaussian_counts(&mut b, Sensitive::new(vec![1000i64; n]), 1, scale, "v").unwrap();
        let x: Vec<f64> = out.value().iter().map(|&v| (v - 1000) as f64).collect();
        let mean = x.iter().sum::<f64>() / n as f64;
        let s2 = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        // (n-1) s^2 / sigma^2 ~ chi^2(n-1); the discrete Gaussian's variance equals sigma^2 to
        // within 1e-100 at these scales.
        let chi = ChiSquared::new((n - 1) as f64).unwrap();
        let (lo, hi) = (chi.inverse_cdf(ALPHA / 2.0), chi.inverse_cdf(1.0 - ALPHA / 2.0));
        let stat = (n - 1) as f64 * s2 / (scale * scale);
        assert!(
            stat > lo && stat < hi,
            "scale {scale}: sample variance {s2:.2}, statistic {stat:.0} outside [{lo:.0}, {hi:.0}]"
        );
        // Mean zero: |mean| within 5 standard errors.
        assert!(mean.abs() < 5.0 * scale / (n as f64).sqrt(), "mean {mean}");
    }
}

#[test]
fn exponential_mechanism_frequencies_match_theory() {
    // Scores 0..3, sensitivity 1, epsilon 2: P(r) = exp(q_r) / sum exp(q).
    let scores = vec![0.0, 1.0, 2.0, 3.0];
    let z: f64 = scores.iter().map(|q: &f64| q.exp()).sum();
    let p: Vec<f64> = scores.iter().map(|q| q.exp() / z).collect();
    let n = 20_000;
    let mut counts = [0usize; 4];
    let mut b = unlimited();
    for _ in 0..n {
        let r = mechanisms::exponential(&mut b, Sensitive::new(scores.clone()), 1.0, 2.0, "sel").unwrap();
        counts[*r.value()] += 1;
    }
    let chi2: f64 = counts.iter().zip(&p).map(|(&o, &pi)| (o as f64 - n as f64 * pi).powi(2) / (n as f64 * pi)).sum();
    let crit = ChiSquared::new(3.0).unwrap().inverse_cdf(1.0 - ALPHA);
    assert!(
        chi2 < crit,
        "chi2 {chi2:.1} >= {crit:.1}; counts {counts:?}, expected {:?}",
        p.iter().map(|x| x * n as f64).collect::<Vec<_>>()
    );
    assert!((b.rho_spent() - n as f64 * 0.5).abs() < 1e-6, "each selection costs eps^2/8 = 0.5");
}

/// A lower bound on epsilon at `delta` from samples of M(D) and M(D') (the crate's audit:
/// threshold chosen on half the runs, Clopper-Pearson bound on the other half).
fn epsilon_lower_bound(on_d: &[i64], on_d_prime: &[i64], delta: f64) -> f64 {
    let f = |v: &[i64]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
    audit::epsilon_lower_bound(&f(on_d), &f(on_d_prime), delta, ALPHA).epsilon
}

/// Run a "count" release on neighbouring data sets (count 0 and count 1, sensitivity 1).
fn run_counts(scale: f64, n: usize) -> (Vec<i64>, Vec<i64>) {
    let mut b = unlimited();
    let d = mechanisms::gaussian_counts(&mut b, Sensitive::new(vec![0i64; n]), 1, scale, "d").unwrap().into_value();
    let d1 = mechanisms::gaussian_counts(&mut b, Sensitive::new(vec![1i64; n]), 1, scale, "d'").unwrap().into_value();
    (d, d1)
}

#[test]
fn empirical_epsilon_stays_within_the_claim_and_catches_under_noise() {
    let delta = 1e-6;
    let claimed_scale = 4.0;
    let rho = 0.5 / (claimed_scale * claimed_scale); // what OpenDP's map charges at scale 4
    let mut b = unlimited();
    let charged = mechanisms::gaussian_counts(&mut b, Sensitive::new(vec![0]), 1, claimed_scale, "c").unwrap();
    assert!((charged.cost()[0].rho - rho).abs() < 1e-12);
    let claimed_eps = epsilon_for(rho, delta);
    let n = 50_000;

    let (d, d1) = run_counts(claimed_scale, n);
    let honest = epsilon_lower_bound(&d, &d1, delta);
    assert!(honest <= claimed_eps, "the honest mechanism shows eps >= {honest:.3} > claimed {claimed_eps:.3}");

    // A buggy mechanism: charges for scale 4 but adds noise of scale 1 (true eps ~5.2 at 1e-6).
    let (d, d1) = run_counts(claimed_scale / 4.0, n);
    let buggy = epsilon_lower_bound(&d, &d1, delta);
    assert!(
        buggy > claimed_eps,
        "the audit misses an under-noised mechanism: lower bound {buggy:.3} <= claimed {claimed_eps:.3}"
    );
    eprintln!("claimed eps {claimed_eps:.3}; audit lower bound honest {honest:.3}, under-noised {buggy:.3}");
}
