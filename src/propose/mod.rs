//! Proposing a schema for review: from a data file ([`infer`]: values read from the data, each
//! marked as such), under differential privacy ([`dp`]: types, bounds and categories as DP
//! releases charged to the ledger), from a folder of linked tables ([`linked`]: keys, links and
//! bounds), or from a private-pgm domain file ([`from_domain`]).

pub mod dp;
pub mod from_domain;
pub mod infer;
pub mod linked;
