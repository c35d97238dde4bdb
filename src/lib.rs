//! privsynth: differentially private synthetic data for sensitive tables.
//!
//! Modules follow the data's path: the public [`schema`], reading real records ([`data`]), their
//! encoding into a small discrete [`domain`], counting [`marginals`], and the graphical [`model`]
//! that is estimated from noisy marginals and sampled. Noise, accounting and the ledger live in the
//! separate `privsynth-privacy` crate. The [`cli`] ties the commands together; [`error`] holds
//! the messages and exit codes users see.

pub mod cli;
pub mod data;
pub mod domain;
pub mod error;
pub mod marginals;
pub mod model;
pub mod mst;
pub mod schema;
