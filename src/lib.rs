//! privsynth: differentially private synthetic data for sensitive tables.
//!
//! Modules follow the data's path (ARCHITECTURE.md draws it): the public [`schema`] (and
//! [`propose`] to draft one, [`check`] to validate a file against one), reading real records
//! ([`data`]), their encoding into a small discrete domain ([`codec`]), counting [`marginals`],
//! the [`mechanism`]s that select and measure marginals (MST, AIM), and the graphical [`model`]
//! estimated from them and sampled into a [`synthetic`] table, whose text columns the optional
//! [`llm`] stage writes from DP-safe prompts; linked EHR tables ([`ehr`]) reduce to the same
//! steps with the person as unit. The [`evaluate`] step audits a synthetic table against train
//! and holdout data and [`report`] writes the result (JSON, JUnit, HTML) and applies the release
//! gates; [`privacy_audit`] checks the guarantee itself empirically. Noise, accounting, which
//! rows count and the ledger live in the separate `privsynth-privacy` crate. The [`pipeline`]
//! runs these steps inside the release protocol for the [`cli`], the tests and the benchmarks;
//! [`error`] holds the messages and exit codes users see.

pub mod audit_privacy;
pub mod check;
pub mod cli;
pub mod codec;
pub mod data;
pub mod ehr;
pub mod engine;
pub mod error;
pub mod evaluate;
pub mod llm;
pub mod marginals;
pub mod mechanism;
pub mod model;
pub mod paths;
pub mod pipeline;
pub mod privacy_audit;
pub mod propose;
pub mod report;
pub mod schema;
pub mod synthetic;
