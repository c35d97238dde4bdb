//! privsynth: differentially private synthetic data for sensitive tables.
//!
//! Modules follow the data's path: the public [`schema`], reading real records ([`data`]), their
//! encoding into a small discrete [`domain`], counting [`marginals`], the [`mechanism`]s that
//! select and measure marginals (MST, AIM), and the graphical [`model`] estimated from them and
//! sampled into a [`synthetic`] table, whose text columns the optional [`llm`] stage writes from
//! DP-safe prompts; the [`evaluate`] step audits a synthetic table against train and holdout data
//! and [`report`] writes the result (JSON, JUnit, HTML) and applies the release gates. Noise,
//! accounting and the ledger live in the separate `privsynth-privacy` crate.
//! The [`pipeline`] runs a fit (which rows count, the mechanism, the model file) for the
//! [`cli`], the tests and the benchmarks; [`error`] holds the messages and exit codes users see.

pub mod audit_privacy;
pub mod cli;
pub mod data;
pub mod domain;
pub mod ehr;
pub mod error;
pub mod evaluate;
pub mod llm;
pub mod marginals;
pub mod mechanism;
pub mod model;
pub mod pipeline;
pub mod privacy_audit;
pub mod report;
pub mod schema;
pub mod synthetic;
