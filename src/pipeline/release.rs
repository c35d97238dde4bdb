//! The release protocol every command that spends budget follows, in this order:
//!
//! 1. **authorize**: the ledger's policy check of the run's whole budget on the dataset's
//!    fingerprint, before any record is read ([`Release::authorize`]);
//! 2. **lock**: the ledger's exclusive lock is taken first and held by the [`Release`] until it
//!    is dropped, after the run's outputs are written, so two runs cannot both spend the same
//!    remaining budget;
//! 3. **charge**: the mechanisms charge the run's `Budget` as they draw (privacy crate);
//! 4. **append**: one ledger entry per run ([`Release::record`]), written before any output, so
//!    that a failed write over-counts the spending, never under-counts it.

use std::path::{Path, PathBuf};

use privsynth_privacy::Budget;
use privsynth_privacy::Cost;
use privsynth_privacy::ledger::{self, DatasetRef, Entry, Guarantee, Ledger, LedgerLock, Policy};

use crate::error::{Error, Result};

/// Where the ledger is and which policy caps it.
#[derive(Debug, Clone)]
pub struct LedgerOptions {
    pub ledger: PathBuf,
    /// Lifetime limits; without one, spending is recorded but not capped.
    pub policy: Option<PathBuf>,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        LedgerOptions { ledger: PathBuf::from(".privsynth/ledger.jsonl"), policy: None }
    }
}

impl LedgerOptions {
    /// The policy file, read and checked (a bad file is a usage error).
    pub fn policy(&self) -> Result<Option<Policy>> {
        self.policy.as_ref().map(|p| Policy::load(p).map_err(|e| Error::Usage(e.to_string()))).transpose()
    }
}

/// A run the policy admitted. Holds the ledger's lock until dropped.
pub struct Release {
    ledger: Ledger,
    _lock: LedgerLock,
    fingerprint: String,
}

impl Release {
    /// Lock the ledger and check that spending `budget`'s whole total on the dataset with this
    /// fingerprint stays within the policy (exit 3 otherwise). Nothing is read before this.
    pub fn authorize(opts: &LedgerOptions, fingerprint: String, budget: &Budget) -> Result<Release> {
        let ledger = Ledger::new(&opts.ledger);
        let lock = ledger.lock()?;
        let policy = opts.policy()?.unwrap_or_default();
        if let Err(refusal) = ledger.authorize(&policy, &fingerprint, budget)? {
            return Err(Error::Budget(refusal.0));
        }
        Ok(Release { ledger, _lock: lock, fingerprint })
    }

    /// [`Release::authorize`] for the dataset in one file (fingerprinted by its bytes).
    pub fn authorize_file(opts: &LedgerOptions, data: &Path, budget: &Budget) -> Result<Release> {
        if data.is_dir() {
            return Err(Error::data(
                data.display().to_string(),
                "is a folder, not a data file (a folder of tables needs a linked schema)",
            ));
        }
        let fingerprint = ledger::fingerprint_file(data).map_err(|e| {
            Error::data(
                data.display().to_string(),
                match e.kind() {
                    std::io::ErrorKind::NotFound => "does not exist".to_string(),
                    _ => format!("cannot be read: {e}"),
                },
            )
        })?;
        Release::authorize(opts, fingerprint, budget)
    }

    /// [`Release::authorize_file`] for a table stored as Parquet part files (the folder
    /// holding `parts`, in table order): the dataset is the fingerprint of the parts'
    /// contents in that order (the folder's or the parts' names do not enter it: renaming keeps
    /// the dataset, a changed, added or reordered part makes another).
    pub fn authorize_parts(opts: &LedgerOptions, parts: &[PathBuf], budget: &Budget) -> Result<Release> {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"privsynth table parts v1\n");
        for part in parts {
            let f = ledger::fingerprint_file(part)
                .map_err(|e| Error::data(part.display().to_string(), format!("cannot be read: {e}")))?;
            h.update(f.as_bytes());
            h.update(b"\n");
        }
        let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Release::authorize(opts, format!("sha256:{hex}"), budget)
    }

    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Append the run's entry: what was released (`charges`), on which dataset and unit, and
    /// what its guarantee does not cover.
    pub fn record(
        &self,
        command: &str,
        name: &str,
        unit: Option<(String, u32)>,
        charges: &[Cost],
        outside_guarantee: &[String],
    ) -> Result<Entry> {
        self.record_guarantee(command, name, unit, charges, outside_guarantee, None)
    }

    /// [`Release::record`] with the (epsilon, delta) guarantee the run reports to the user.
    pub fn record_guarantee(
        &self,
        command: &str,
        name: &str,
        unit: Option<(String, u32)>,
        charges: &[Cost],
        outside_guarantee: &[String],
        guarantee: Option<(f64, f64)>,
    ) -> Result<Entry> {
        let (privacy_unit, rows_per_unit) = match unit {
            Some((u, k)) => (Some(u), Some(k)),
            None => (None, None),
        };
        let dataset =
            DatasetRef { fingerprint: self.fingerprint.clone(), name: name.to_string(), privacy_unit, rows_per_unit };
        let guarantee = guarantee.map(|(epsilon, delta)| Guarantee { epsilon, delta });
        Ok(self.ledger.append_guaranteed(
            command,
            dataset,
            charges,
            &ledger::new_run_id(),
            outside_guarantee,
            guarantee,
        )?)
    }

    /// The dataset's spending across the ledger, when it has more than this run: the figure a
    /// lifetime policy caps.
    pub fn dataset_total(&self, delta: f64) -> Option<String> {
        let s = self.ledger.spending().ok()?.remove(&self.fingerprint)?;
        (s.releases > 1).then(|| {
            let eps = s.epsilon_at(delta + s.delta).map_or("n/a".to_string(), |e| format!("{e:.3}"));
            format!(
                "ledger: {} release(s) on this dataset so far, together epsilon {eps} at delta {:.1e} (rho {:.6})",
                s.releases,
                delta + s.delta,
                s.rho
            )
        })
    }
}
