//! The ledger: an append-only, hash-chained JSON-lines file of every release (dataset
//! fingerprint, privacy unit, rho, delta, mechanisms, tool version, time, run id), with a
//! lifetime budget policy per dataset. Filled by the DP-core issue.
