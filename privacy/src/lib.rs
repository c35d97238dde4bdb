//! privsynth-privacy: the small, separately reviewable core that owns every privacy-relevant
//! step of privsynth. The rest of the project obtains noise, budget and released values only
//! through this crate.
//!
//! Modules:
//! - [`accountant`]: privacy budgets in rho-zCDP and their conversion to and from (epsilon, delta).
//! - [`mechanisms`]: noise and selection, built on OpenDP's samplers (DP-core issue).
//! - [`released`]: the `Released<T>` type that marks values safe to leave the process (DP-core issue).
//! - [`bounding`]: contribution bounding for privacy units with many rows (DP-core issue).
//! - [`ledger`]: the append-only, hash-chained record of releases (DP-core issue).

pub mod accountant;
pub mod bounding;
pub mod ledger;
pub mod mechanisms;
pub mod released;
