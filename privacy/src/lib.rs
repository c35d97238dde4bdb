//! privsynth-privacy: the small, separately reviewable core that owns every privacy-relevant
//! step of privsynth. The rest of the project obtains noise, budget and released values only
//! through this crate. Threat model and review guide: `privacy/README.md`.
//!
//! Modules:
//! - [`accountant`]: privacy budgets in rho-zCDP and their conversion to and from (epsilon, delta).
//! - [`mechanisms`]: noise and selection, built on OpenDP's samplers (the only place noise is drawn).
//! - [`released`]: `Sensitive<T>` (private, unprintable) and `Released<T>` (safe to leave the process).
//! - [`bounding`]: which rows count: contribution bounding and the holdout split, under a fresh
//!   secret key, stable under adding or removing a unit.
//! - [`audit`]: empirical lower bounds on epsilon from runs on neighbouring datasets.
//! - [`ledger`]: the append-only, hash-chained record of releases, and lifetime-budget policies.

pub mod accountant;
pub mod audit;
pub mod bounding;
pub mod ledger;
pub mod mechanisms;
pub mod released;

pub use accountant::{Budget, BudgetExceeded};
pub use released::{Cost, Released, Sensitive};

/// Errors of the privacy core.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    #[error(transparent)]
    Budget(#[from] BudgetExceeded),
    #[error("invalid mechanism parameters: {0}")]
    Invalid(String),
    #[error("OpenDP: {0}")]
    OpenDp(String),
    /// The ledger's content cannot be trusted (edited, reordered, forged, unreadable lines).
    #[error("ledger {path}: {message}")]
    Ledger { path: String, message: String },
    /// The ledger's file cannot be opened, locked or written (permissions, disk).
    #[error("ledger {path}: {message}")]
    LedgerIo { path: String, message: String },
}
