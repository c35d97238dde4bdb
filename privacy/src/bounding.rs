//! Contribution bounding: keep at most k rows per privacy unit, chosen by a seeded hash, so that
//! sensitivities scale with k. Filled by the DP-core issue (used by the EHR issue).
