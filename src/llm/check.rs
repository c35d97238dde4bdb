//! The plausibility pass (`--llm-check`): the model reviews synthetic records in batches and
//! flags impossible or very unlikely ones. Flagged records are reported, and dropped only with
//! `--llm-drop-flagged`. Validation here is against public rules only; nothing consults real
//! data, so dropping is post-processing.

use serde_json::Value;

use super::client::Client;
use super::prompt::{self, ReleasedStats};
use super::validate::{Reject, reason};
use crate::error::Result;
use crate::synthetic::{SyntheticRow, SyntheticTable};

/// What the check found.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    pub records: usize,
    /// Records with an accepted verdict.
    pub checked: usize,
    /// (record index, reason) of records flagged implausible.
    pub flagged: Vec<(usize, String)>,
    pub dropped: bool,
}

impl CheckReport {
    /// Summary lines: the share flagged and the first few reasons.
    pub fn summary(&self) -> Vec<String> {
        let share = 100.0 * self.flagged.len() as f64 / self.checked.max(1) as f64;
        let mut out = vec![format!(
            "llm check: {} of {} checked record(s) flagged implausible ({share:.1}%); {} record(s) unchecked; flagged records {}",
            self.flagged.len(),
            self.checked,
            self.records - self.checked,
            if self.dropped { "dropped (--llm-drop-flagged)" } else { "kept (pass --llm-drop-flagged to drop them)" }
        )];
        for (i, why) in self.flagged.iter().take(10) {
            out.push(format!("  record {}: {why}", i + 1));
        }
        if self.flagged.len() > 10 {
            out.push(format!("  ... and {} more (all are in the transcript)", self.flagged.len() - 10));
        }
        out
    }
}

fn parse(v: &Value, rows: &[SyntheticRow]) -> std::result::Result<Vec<(bool, String)>, Reject> {
    rows.iter()
        .map(|r| {
            let id = prompt::row_id(r);
            let o = v.get(&id).ok_or_else(|| Reject::new(reason::SCHEMA, format!("record {id} is missing")))?;
            let ok = o
                .get("plausible")
                .and_then(Value::as_bool)
                .ok_or_else(|| Reject::new(reason::SCHEMA, format!("{id}.plausible is not a boolean")))?;
            let why = o.get("reason").and_then(Value::as_str).unwrap_or_default().trim().to_string();
            Ok((ok, why))
        })
        .collect()
}

/// Check every record; drop the flagged ones when `drop` is set.
pub fn check(
    client: &Client,
    synth: &mut SyntheticTable,
    stats: &ReleasedStats,
    batch: usize,
    temperature: f64,
    drop: bool,
) -> Result<CheckReport> {
    let rows = synth.rows()?;
    let mut report = CheckReport { records: rows.len(), ..Default::default() };
    let batches: Vec<&[SyntheticRow]> = rows.chunks(batch.max(1)).collect();
    let table = synth.table().clone();
    let answers = client.run_all("check", batches.clone(), |chunk| {
        let req = prompt::check_request(&table, stats, chunk, temperature)?;
        client.ask(&req, |v| parse(v, chunk))
    })?;
    let mut flags = vec![false; rows.len()];
    for (chunk, answer) in batches.iter().zip(answers) {
        let Some(verdicts) = answer else { continue };
        report.checked += chunk.len();
        for (r, (ok, why)) in chunk.iter().zip(verdicts) {
            if !ok {
                flags[r.index()] = true;
                report.flagged.push((r.index(), if why.is_empty() { "(no reason given)".into() } else { why }));
            }
        }
    }
    if drop && !report.flagged.is_empty() {
        synth.drop_rows(&flags)?;
    }
    report.dropped = drop;
    Ok(report)
}
