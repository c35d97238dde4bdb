//! Noise and selection mechanisms, built only on OpenDP's samplers (discrete Gaussian on count
//! vectors, exponential mechanism / report-noisy-max, DP domain discovery). Each charges the
//! accountant before it returns. Filled by the DP-core issue; no mechanism exists yet, so no
//! part of privsynth can release anything.
