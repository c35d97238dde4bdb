//! The ledger: an append-only, hash-chained JSON-lines file of every release, and lifetime
//! budget policies checked against it before a run reads any data.
//!
//! Each line is one [`Entry`]: what was released (dataset fingerprint, privacy unit, total rho
//! and delta, the mechanisms with sensitivities and scales), by which tool version, when, in
//! which run. `hash` is SHA-256 over the previous entry's hash and this entry's JSON without
//! its hash, so editing, deleting or reordering any line breaks the chain at that line. (A
//! chain cannot reveal that its newest lines were cut off; keep the ledger where it is backed
//! up, and compare `ledger show`'s head hash with a copy kept elsewhere for that.)
//!
//! Spending per dataset composes in zCDP: rho adds, mechanism deltas add. A [`Policy`] caps the
//! lifetime (epsilon, delta) per dataset; [`Ledger::authorize`] refuses a run that would exceed
//! it.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::PrivacyError;
use crate::accountant::{Budget, epsilon_for, rho_for};
use crate::released::Cost;

/// The chain's start: the `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The data set a release was computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetRef {
    /// `sha256:<hex>` of the data file's bytes.
    pub fingerprint: String,
    /// A human-readable name (file name or table), for display only.
    pub name: String,
    /// Privacy unit column, or `None` for one row per unit.
    pub privacy_unit: Option<String>,
    /// Rows kept per unit by contribution bounding, if any.
    pub rows_per_unit: Option<u32>,
}

/// One release. Every field is under the hash: a line with a field this type does not know is
/// rejected rather than read with the field dropped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub seq: u64,
    pub time: String,
    pub run_id: String,
    pub tool_version: String,
    pub command: String,
    pub dataset: DatasetRef,
    pub rho: f64,
    /// delta of approximate mechanisms in this release (the zCDP conversion delta is not spent).
    pub delta: f64,
    pub mechanisms: Vec<Cost>,
    /// What the release's guarantee does not cover (values read from the data allowed by
    /// override, strict policies); absent when it covers everything.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outside_guarantee: Vec<String>,
    /// The (epsilon, delta) guarantee the run reported to the user (delta includes the zCDP
    /// conversion's, unlike `delta` above). Absent in entries written before it was recorded,
    /// which serialise, hash and verify as they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guarantee: Option<Guarantee>,
    pub prev: String,
    pub hash: String,
}

/// An (epsilon, delta)-DP guarantee as reported.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guarantee {
    pub epsilon: f64,
    pub delta: f64,
}

/// Lifetime caps per dataset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Cap for datasets not listed below.
    #[serde(default)]
    pub default: Option<Limit>,
    /// Caps by dataset fingerprint (`sha256:...`).
    #[serde(default)]
    pub datasets: BTreeMap<String, Limit>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    pub epsilon: f64,
    pub delta: f64,
}

impl Policy {
    pub fn load(path: &Path) -> Result<Policy, PrivacyError> {
        let err = |m: String| PrivacyError::Ledger { path: path.display().to_string(), message: m };
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read the policy: {e}")))?;
        let p: Policy = serde_yaml_ng::from_str(&text).map_err(|e| err(format!("is not a valid policy: {e}")))?;
        for (name, l) in p.default.iter().map(|l| ("default", l)).chain(p.datasets.iter().map(|(k, l)| (k.as_str(), l)))
        {
            if !(l.epsilon > 0.0 && l.epsilon.is_finite() && l.delta > 0.0 && l.delta < 1.0) {
                return Err(err(format!("limit {name}: need a finite epsilon > 0 and 0 < delta < 1")));
            }
        }
        Ok(p)
    }

    pub fn limit_for(&self, fingerprint: &str) -> Option<Limit> {
        self.datasets.get(fingerprint).copied().or(self.default)
    }
}

/// What a dataset has spent so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Spent {
    pub name: String,
    pub releases: usize,
    pub rho: f64,
    pub delta: f64,
}

impl Spent {
    /// The (epsilon, delta) of the composed releases, converting rho at `delta_total - delta`.
    pub fn epsilon_at(&self, delta_total: f64) -> Option<f64> {
        let conv = delta_total - self.delta;
        (conv > 0.0).then(|| if self.rho > 0.0 { epsilon_for(self.rho, conv) } else { 0.0 })
    }
}

/// Why a run may not start.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal(pub String);

/// A ledger file.
#[derive(Debug, Clone)]
pub struct Ledger {
    path: PathBuf,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `sha256:<hex>` of a file's bytes (streamed; the records are not parsed).
pub fn fingerprint_file(path: &Path) -> std::io::Result<String> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex(&h.finalize())))
}

/// The meaning of an entry, checked beside its hash (a recomputed hash proves nothing about a
/// forged entry): non-negative finite costs, a delta below 1, and mechanisms that add up to the
/// entry's totals.
fn check_entry(e: &Entry) -> Result<(), String> {
    let fine = |x: f64| x.is_finite() && x >= 0.0;
    if !(fine(e.rho) && fine(e.delta) && e.delta < 1.0) {
        return Err(format!("its cost (rho {}, delta {}) is not a non-negative finite number", e.rho, e.delta));
    }
    if let Some(m) =
        e.mechanisms.iter().find(|m| !(fine(m.rho) && fine(m.delta) && fine(m.sensitivity) && fine(m.scale)))
    {
        return Err(format!("release {:?} has a negative or non-finite cost, sensitivity or scale", m.label));
    }
    let (rho, delta): (f64, f64) =
        (e.mechanisms.iter().map(|m| m.rho).sum(), e.mechanisms.iter().map(|m| m.delta).sum());
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-300);
    if !(close(rho, e.rho) && close(delta, e.delta)) {
        return Err("its releases do not add up to its totals".into());
    }
    if e.dataset.rows_per_unit == Some(0) {
        return Err("its rows per unit is 0".into());
    }
    Ok(())
}

fn entry_hash(e: &Entry) -> String {
    let mut unsealed = e.clone();
    unsealed.hash = String::new();
    let body = serde_json::to_string(&unsealed).expect("entries serialise");
    let mut h = Sha256::new();
    h.update(e.prev.as_bytes());
    h.update(b"\n");
    h.update(body.as_bytes());
    hex(&h.finalize())
}

impl Ledger {
    pub fn new(path: impl Into<PathBuf>) -> Ledger {
        Ledger { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, message: String) -> PrivacyError {
        PrivacyError::Ledger { path: self.path.display().to_string(), message }
    }

    fn io_err(&self, message: String) -> PrivacyError {
        PrivacyError::LedgerIo { path: self.path.display().to_string(), message }
    }

    /// Read every entry and verify the chain. A missing file is an empty ledger.
    pub fn entries(&self) -> Result<Vec<Entry>, PrivacyError> {
        let f = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(self.io_err(format!("cannot be read: {e}"))),
        };
        let mut out: Vec<Entry> = Vec::new();
        for (i, line) in BufReader::new(f).lines().enumerate() {
            let line = line.map_err(|e| self.err(format!("line {}: cannot be read: {e}", i + 1)))?;
            if line.trim().is_empty() {
                continue;
            }
            let tampered = |what: &str| {
                self.err(format!("TAMPERED at line {}: {what}; the spending it records cannot be trusted", i + 1))
            };
            let e: Entry = serde_json::from_str(&line).map_err(|_| tampered("not a ledger entry"))?;
            let prev = out.last().map_or(GENESIS, |p| p.hash.as_str());
            if e.seq != out.len() as u64 {
                return Err(tampered(&format!(
                    "sequence number {} where {} was expected (a line was removed, added or moved)",
                    e.seq,
                    out.len()
                )));
            }
            if e.prev != prev {
                return Err(tampered("it does not follow the previous entry (a line was removed, added or moved)"));
            }
            if entry_hash(&e) != e.hash {
                return Err(tampered("its content does not match its hash (the line was edited)"));
            }
            if let Err(what) = check_entry(&e) {
                return Err(tampered(&what));
            }
            out.push(e);
        }
        Ok(out)
    }

    /// Spending per dataset fingerprint.
    pub fn spending(&self) -> Result<BTreeMap<String, Spent>, PrivacyError> {
        let mut m: BTreeMap<String, Spent> = BTreeMap::new();
        for e in self.entries()? {
            let s = m.entry(e.dataset.fingerprint.clone()).or_default();
            s.name = e.dataset.name.clone();
            s.releases += 1;
            s.rho += e.rho;
            s.delta += e.delta;
        }
        Ok(m)
    }

    /// Check, before any data are read, that spending `budget`'s whole total on the dataset
    /// stays within the policy's lifetime limit.
    pub fn authorize(
        &self,
        policy: &Policy,
        fingerprint: &str,
        budget: &Budget,
    ) -> Result<Result<(), Refusal>, PrivacyError> {
        let Some(limit) = policy.limit_for(fingerprint) else { return Ok(Ok(())) };
        let spent = self.spending()?.remove(fingerprint).unwrap_or_default();
        let delta_after = spent.delta + budget.delta_remaining();
        let rho_cap = if delta_after < limit.delta { rho_for(limit.epsilon, limit.delta - delta_after) } else { 0.0 };
        let rho_after = spent.rho + budget.rho_total();
        if rho_after <= rho_cap * (1.0 + 1e-12) {
            return Ok(Ok(()));
        }
        let eps_now = spent.epsilon_at(limit.delta).map_or("n/a".into(), |e| format!("{e:.4}"));
        Ok(Err(Refusal(format!(
            "refused by the privacy policy: the lifetime limit for dataset {fingerprint} is epsilon {} at delta {:e}; \
             {} earlier release(s) spent rho {:.6} (epsilon {eps_now}) and this run asks for rho {:.6} more, \
             which would exceed the limit (at most rho {:.6} in all). Nothing was read or released.",
            limit.epsilon,
            limit.delta,
            spent.releases,
            spent.rho,
            budget.rho_total(),
            rho_cap
        ))))
    }

    /// Take the ledger's exclusive lock, blocking until it is free. The lock is on the ledger
    /// file itself (created empty if missing), so every name of the file (a symlink, a hard
    /// link, a relative or absolute path) shares one lock, and no lock file is left behind.
    /// Hold it from [`Ledger::authorize`] until [`Ledger::append`], so that two concurrent runs
    /// cannot both be admitted against the same remaining budget.
    pub fn lock(&self) -> Result<LedgerLock, PrivacyError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|err| self.io_err(format!("cannot create its folder: {err}")))?;
        }
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| self.io_err(format!("cannot be opened: {e}")))?;
        f.lock().map_err(|e| self.io_err(format!("cannot be locked: {e}")))?;
        Ok(LedgerLock(f))
    }

    /// Append a release; verifies the chain first and refuses to extend a tampered one.
    pub fn append(
        &self,
        command: &str,
        dataset: DatasetRef,
        costs: &[Cost],
        run_id: &str,
    ) -> Result<Entry, PrivacyError> {
        self.append_release(command, dataset, costs, run_id, &[])
    }

    /// Append a release whose guarantee does not cover everything (`outside_guarantee` says
    /// what), so the ledger shows it beside the spending.
    pub fn append_release(
        &self,
        command: &str,
        dataset: DatasetRef,
        costs: &[Cost],
        run_id: &str,
        outside_guarantee: &[String],
    ) -> Result<Entry, PrivacyError> {
        self.append_guaranteed(command, dataset, costs, run_id, outside_guarantee, None)
    }

    /// [`Ledger::append_release`] with the (epsilon, delta) the run reports, recorded in the
    /// entry beside its zCDP cost.
    pub fn append_guaranteed(
        &self,
        command: &str,
        dataset: DatasetRef,
        costs: &[Cost],
        run_id: &str,
        outside_guarantee: &[String],
        guarantee: Option<Guarantee>,
    ) -> Result<Entry, PrivacyError> {
        let existing = self.entries()?;
        let mut e = Entry {
            seq: existing.len() as u64,
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            run_id: run_id.to_string(),
            tool_version: concat!("privsynth ", env!("CARGO_PKG_VERSION")).to_string(),
            command: command.to_string(),
            dataset,
            rho: costs.iter().map(|c| c.rho).sum(),
            delta: costs.iter().map(|c| c.delta).sum(),
            mechanisms: costs.to_vec(),
            outside_guarantee: outside_guarantee.to_vec(),
            guarantee,
            prev: existing.last().map_or(GENESIS.to_string(), |p| p.hash.clone()),
            hash: String::new(),
        };
        e.hash = entry_hash(&e);
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|err| self.io_err(format!("cannot create its folder: {err}")))?;
        }
        let line = serde_json::to_string(&e).map_err(|err| self.err(err.to_string()))? + "\n";
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|err| self.io_err(format!("cannot be opened for append: {err}")))?;
        // One write of one line: an append either lands whole or, if interrupted, leaves a
        // partial last line that the next verification reports.
        f.write_all(line.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|err| self.io_err(format!("cannot be written: {err}")))?;
        Ok(e)
    }
}

/// The ledger's exclusive lock; released when dropped.
pub struct LedgerLock(File);

impl Drop for LedgerLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// A run id: 64 random bits from the operating system (nothing derived from the data), in hex.
pub fn new_run_id() -> String {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        // Ids only need to be distinct; fall back to the clock and process id.
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        b = (now as u64 ^ ((std::process::id() as u64) << 32)).to_le_bytes();
    }
    format!("{:016x}", u64::from_le_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds(fp: &str) -> DatasetRef {
        DatasetRef { fingerprint: fp.into(), name: "adult.csv".into(), privacy_unit: None, rows_per_unit: None }
    }

    fn cost(rho: f64, delta: f64) -> Cost {
        Cost { label: "m".into(), mechanism: "discrete_gaussian".into(), sensitivity: 1.0, scale: 10.0, rho, delta }
    }

    #[test]
    fn entries_with_any_float_verify() {
        // The hash covers the re-serialised entry, so floats must survive a JSON round trip
        // exactly (serde_json's float_roundtrip); an AIM run's costs once failed without it.
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::new(dir.path().join("l.jsonl"));
        let mut state = 0x9E3779B97F4A7C15u64;
        let costs: Vec<Cost> = (0..2000)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let x = f64::from_bits(0x3F00_0000_0000_0000 | (state >> 12));
                Cost { scale: 1.0 / x, ..cost(x * 1e-3, 0.0) }
            })
            .collect();
        l.append("fit", ds("sha256:aa"), &costs, "r").unwrap();
        l.append("fit", ds("sha256:aa"), &costs[..10], "r").unwrap();
        assert_eq!(l.entries().unwrap().len(), 2);
    }

    #[test]
    fn appends_chain_and_sum() {
        let d = tempfile::tempdir().unwrap();
        let l = Ledger::new(d.path().join("sub/ledger.jsonl"));
        assert!(l.entries().unwrap().is_empty());
        l.append("fit", ds("sha256:a"), &[cost(0.01, 0.0), cost(0.02, 1e-7)], "r1").unwrap();
        l.append("fit", ds("sha256:b"), &[cost(0.5, 0.0)], "r2").unwrap();
        l.append("fit", ds("sha256:a"), &[cost(0.03, 0.0)], "r3").unwrap();
        let e = l.entries().unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].prev, GENESIS);
        assert_eq!(e[1].prev, e[0].hash);
        let s = l.spending().unwrap();
        assert_eq!(s["sha256:a"].releases, 2);
        assert!((s["sha256:a"].rho - 0.06).abs() < 1e-12 && (s["sha256:a"].delta - 1e-7).abs() < 1e-20);
    }

    #[test]
    fn detects_edits_deletions_and_reordering() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ledger.jsonl");
        let l = Ledger::new(&p);
        for i in 0..3 {
            l.append("fit", ds("sha256:a"), &[cost(0.01 * (i + 1) as f64, 0.0)], "r").unwrap();
        }
        let original = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = original.lines().collect();
        let cases = [
            ("edit", original.replacen("\"rho\":0.02", "\"rho\":0.002", 1), "line 2", "edited"),
            ("delete", format!("{}\n{}\n", lines[0], lines[2]), "line 2", "removed"),
            ("swap", format!("{}\n{}\n{}\n", lines[1], lines[0], lines[2]), "line 1", "sequence"),
            ("garbage", format!("{original}{{not json\n"), "line 4", "not a ledger entry"),
        ];
        for (name, text, at, what) in cases {
            std::fs::write(&p, &text).unwrap();
            let e = l.entries().unwrap_err().to_string();
            assert!(e.contains("TAMPERED") && e.contains(at) && e.contains(what), "{name}: {e}");
            assert!(
                l.append("fit", ds("sha256:a"), &[cost(0.01, 0.0)], "r").is_err(),
                "{name}: no append to a tampered ledger"
            );
        }
        std::fs::write(&p, &original).unwrap();
        assert_eq!(l.entries().unwrap().len(), 3);
    }

    /// A forger who recomputes the hash: an entry with a negative cost (which would lift the
    /// policy's cap), releases that do not add up, or a field outside the hash is refused.
    #[test]
    fn forged_entries_with_a_recomputed_hash_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ledger.jsonl");
        let l = Ledger::new(&p);
        l.append("fit", ds("sha256:a"), &[cost(0.05, 0.0)], "r").unwrap();
        let good = l.entries().unwrap();
        let forge = |mutate: &dyn Fn(&mut Entry)| {
            let mut e = good[0].clone();
            e.seq = 1;
            e.prev = good[0].hash.clone();
            mutate(&mut e);
            e.hash = entry_hash(&e);
            let text = std::fs::read_to_string(&p).unwrap().lines().next().unwrap().to_string();
            std::fs::write(&p, format!("{text}\n{}\n", serde_json::to_string(&e).unwrap())).unwrap();
            l.entries().map(|_| ()).unwrap_err().to_string()
        };
        let e = forge(&|e| {
            e.rho = -1.0;
            e.mechanisms[0].rho = -1.0;
        });
        assert!(e.contains("TAMPERED") && e.contains("non-negative"), "{e}");
        let e = forge(&|e| e.rho = 0.0);
        assert!(e.contains("do not add up"), "{e}");
        // A field the entry type does not know would sit outside the hash: refused.
        let mut line = serde_json::to_value(&good[0]).unwrap();
        line["credit"] = serde_json::json!(10.0);
        std::fs::write(&p, format!("{line}\n")).unwrap();
        assert!(l.entries().unwrap_err().to_string().contains("not a ledger entry"));
    }

    #[test]
    fn an_infinite_policy_limit_is_refused_at_load() {
        let d = tempfile::tempdir().unwrap();
        let pol = d.path().join("policy.yaml");
        std::fs::write(&pol, "default: {epsilon: .inf, delta: 1.0e-9}\n").unwrap();
        assert!(Policy::load(&pol).unwrap_err().to_string().contains("finite"));
    }

    #[test]
    fn policy_refuses_runs_beyond_the_lifetime_limit() {
        let d = tempfile::tempdir().unwrap();
        let l = Ledger::new(d.path().join("ledger.jsonl"));
        let pol = d.path().join("policy.yaml");
        std::fs::write(
            &pol,
            "default: {epsilon: 2.0, delta: 1.0e-9}\ndatasets:\n  \"sha256:strict\": {epsilon: 0.5, delta: 1.0e-9}\n",
        )
        .unwrap();
        let policy = Policy::load(&pol).unwrap();
        let run = Budget::from_epsilon_delta(1.0, 1e-9).unwrap();
        // Strict dataset: 1.0 > 0.5 at once.
        assert!(l.authorize(&policy, "sha256:strict", &run).unwrap().is_err());
        // Default epsilon 2: eps-1 runs are accepted while their rho (zCDP composition) fits
        // within rho(2): n runs with n * rho(1) <= rho(2) < (n + 1) * rho(1).
        let fits = (rho_for(2.0, 1e-9) / run.rho_total()).floor() as usize;
        assert!(fits >= 3, "zCDP composes better than epsilon addition (2 runs)");
        for i in 0..=fits {
            let ok = l.authorize(&policy, "sha256:x", &run).unwrap();
            assert_eq!(ok.is_ok(), i < fits, "run {i}: {ok:?}");
            if ok.is_ok() {
                l.append("fit", ds("sha256:x"), &[cost(run.rho_total(), 0.0)], "r").unwrap();
            }
        }
        let refusal = l.authorize(&policy, "sha256:x", &run).unwrap().unwrap_err();
        assert!(
            refusal.0.contains(&format!("{fits} earlier release(s)")) && refusal.0.contains("Nothing was read"),
            "{}",
            refusal.0
        );
        // No policy entry, no default: not capped.
        assert!(l.authorize(&Policy::default(), "sha256:x", &run).unwrap().is_ok());
        // The lock is exclusive: a second holder waits until the first is dropped.
        let guard = l.lock().unwrap();
        let l2 = l.clone();
        let waiter = std::thread::spawn(move || {
            let t = std::time::Instant::now();
            let _g = l2.lock().unwrap();
            t.elapsed()
        });
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(guard);
        assert!(waiter.join().unwrap() >= std::time::Duration::from_millis(250));
        std::fs::write(&pol, "default: {epsilon: -1, delta: 1.0e-9}\n").unwrap();
        assert!(Policy::load(&pol).is_err());
    }

    #[test]
    fn entries_without_a_guarantee_keep_their_old_form_and_verify_beside_new_ones() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::new(dir.path().join("l.jsonl"));
        let cost = [cost(0.1, 0.0)];
        l.append("fit", ds("sha256:a"), &cost, "r1").unwrap();
        let old_line = std::fs::read_to_string(l.path()).unwrap();
        assert!(!old_line.contains("guarantee"), "an entry without one is written as before: {old_line}");
        let g = Guarantee { epsilon: 1.5, delta: 1e-9 };
        let e = l.append_guaranteed("synth", ds("sha256:a"), &cost, "r2", &[], Some(g)).unwrap();
        let entries = l.entries().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].guarantee, None);
        assert_eq!(entries[1].guarantee, Some(g));
        assert_eq!(entries[1].hash, e.hash);
        // The guarantee is under the hash: changing it breaks the chain.
        let text = std::fs::read_to_string(l.path()).unwrap().replace("\"epsilon\":1.5", "\"epsilon\":0.5");
        std::fs::write(l.path(), text).unwrap();
        assert!(l.entries().is_err());
    }
}
