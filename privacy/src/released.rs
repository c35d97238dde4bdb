//! What may leave the process, and what may not.
//!
//! - [`Sensitive<T>`] wraps anything computed from the real data (exact counts, selection scores,
//!   raw values). It implements neither `Debug`, `Display` nor `Serialize`, so it cannot reach a
//!   log line, an error message or a file by accident; only this crate's mechanisms unwrap it.
//! - [`Released<T>`] is the output of a mechanism, with the [`Cost`] that produced it. Only this
//!   crate constructs one. Post-processing (`map`) keeps it released: DP is closed under
//!   post-processing. Model files, shared reports and LLM prompts take `Released` values or
//!   public schema data, nothing else.
//! - Exact diagnostics for the data holder (rows dropped, persons above a bound) stay
//!   `Sensitive` until the holder asks for them; [`Sensitive::disclose_to_data_holder`] is the
//!   only way to print one, and it is called only behind an explicit flag.

use serde::{Deserialize, Serialize};

/// A value derived from private data. Unwrapped only by this crate's mechanisms.
pub struct Sensitive<T>(T);

impl<T> Sensitive<T> {
    /// Mark a value as derived from private data.
    pub fn new(value: T) -> Sensitive<T> {
        Sensitive(value)
    }

    /// Compute on the private value; the result stays sensitive.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Sensitive<U> {
        Sensitive(f(self.0))
    }

    /// Combine with another sensitive value; the result stays sensitive.
    pub fn zip<U, V>(self, other: Sensitive<U>, f: impl FnOnce(T, U) -> V) -> Sensitive<V> {
        Sensitive(f(self.0, other.0))
    }

    /// Borrow for computing a derived sensitive value.
    pub fn as_ref(&self) -> Sensitive<&T> {
        Sensitive(&self.0)
    }

    pub(crate) fn into_inner(self) -> T {
        self.0
    }

    /// The one deliberate way out that is not a mechanism: hand the exact value to the data
    /// holder who asked for it (`--private-diagnostics`, `schema check`, the audit). Never call
    /// it on a path that writes a release or a default log line; the name is meant to be found
    /// by review (`grep disclose_to_data_holder`).
    pub fn disclose_to_data_holder(self) -> T {
        self.0
    }
}

/// The privacy cost of one release, as its mechanism's privacy map computed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cost {
    /// What was released, for the ledger (e.g. `marginal age,sex`).
    pub label: String,
    /// Mechanism name (`discrete_gaussian`, `exponential`, `quantile`, `gaussian_threshold`).
    pub mechanism: String,
    /// Sensitivity the caller stated (L2 for Gaussian counts, L-infinity of scores for selection,
    /// rows per privacy unit for quantiles and thresholds).
    pub sensitivity: f64,
    /// Noise scale (standard deviation for the Gaussian, Gumbel/exponential scale for selection).
    pub scale: f64,
    /// zCDP cost.
    pub rho: f64,
    /// Additional delta of an approximate mechanism (0 for pure zCDP mechanisms).
    pub delta: f64,
}

/// A value released by a DP mechanism of this crate, with its cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Released<T> {
    value: T,
    cost: Vec<Cost>,
}

impl<T> Released<T> {
    pub(crate) fn new(value: T, cost: Cost) -> Released<T> {
        Released { value, cost: vec![cost] }
    }

    pub fn value(&self) -> &T {
        &self.value
    }

    pub fn into_value(self) -> T {
        self.value
    }

    /// The costs of the releases this value was computed from.
    pub fn cost(&self) -> &[Cost] {
        &self.cost
    }

    /// Post-processing: a function of a released value is released.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Released<U> {
        Released { value: f(self.value), cost: self.cost }
    }

    /// Post-processing of two released values; their costs are both recorded.
    pub fn zip<U, V>(self, other: Released<U>, f: impl FnOnce(T, U) -> V) -> Released<V> {
        let mut cost = self.cost;
        cost.extend(other.cost);
        Released { value: f(self.value, other.value), cost }
    }
}
