//! `schema infer --dp-epsilon` inside the release protocol: authorize on the file, read it,
//! release the proposal under DP, record the charges, and return the schema text with its
//! cost attached (so that a later fit can print the guarantee of both).

use std::path::Path;

use super::release::{LedgerOptions, Release};
use super::{Observer, Step};
use crate::data;
use crate::error::Result;
use crate::propose::{dp, infer};
use crate::schema;

/// The proposal's YAML (with a header saying what it cost), what to tell the user, and the
/// release (holding the ledger's lock until the text is written).
pub fn infer_dp_file(
    path: &Path,
    opts: &infer::Options,
    epsilon: f64,
    delta: f64,
    ledger: &LedgerOptions,
    obs: &dyn Observer,
) -> Result<(String, Vec<String>, Release)> {
    let budget = dp::budget(epsilon, delta)?;
    let release = Release::authorize_file(ledger, path, &budget)?;
    let raw = {
        let _s = Step::start(obs, &format!("reading {}", path.display()));
        data::read(path, &opts.csv, None)?
    };
    infer_dp_released(raw, opts, epsilon, budget, release)
}

/// [`infer_dp_file`] for a table in memory (a data frame from the Python package), known to
/// the ledger by the fingerprint of its content; `raw.file` names it.
pub fn infer_dp_frame(
    raw: data::RawTable,
    opts: &infer::Options,
    epsilon: f64,
    delta: f64,
    ledger: &LedgerOptions,
    obs: &dyn Observer,
) -> Result<(String, Vec<String>, Release)> {
    let budget = dp::budget(epsilon, delta)?;
    let raw = super::frame::check_frame(raw)?;
    let fingerprint = {
        let _s = Step::start(obs, "fingerprinting the data frame");
        super::frame::frame_fingerprint(&raw)?
    };
    let release = Release::authorize(ledger, fingerprint, &budget)?;
    infer_dp_released(raw, opts, epsilon, budget, release)
}

fn infer_dp_released(
    raw: data::RawTable,
    opts: &infer::Options,
    epsilon: f64,
    mut budget: privsynth_privacy::Budget,
    release: Release,
) -> Result<(String, Vec<String>, Release)> {
    let path = std::path::PathBuf::from(&raw.file);
    let proposal = dp::infer_dp(&raw, opts, &mut budget)?;
    let entry = release.record("schema infer --dp-epsilon", &path.display().to_string(), None, &proposal.costs, &[])?;
    let (spent_eps, spent_delta) = budget.spent_epsilon_delta().unwrap_or_default();
    let mut proposed = proposal.schema.clone();
    proposed.dp_inference = Some(schema::DpInference {
        run_id: entry.run_id.clone(),
        epsilon: spent_eps,
        delta: spent_delta,
        rho: budget.rho_spent(),
        mechanism_delta: proposal.costs.iter().map(|c| c.delta).sum(),
    });
    let text = format!(
        "# Schema proposed by `privsynth schema infer --dp-epsilon {epsilon}` from {}.\n\
         # Differentially private: epsilon {spent_eps:.3}, delta {spent_delta:.1e} (ledger {}, entry {}).\n\
         # Domains are marked `source: dp`; review types and roles before use.\n{}",
        path.display(),
        release.ledger().path().display(),
        entry.seq,
        proposed.to_yaml()?
    );
    let mut messages: Vec<String> = proposal.warnings.iter().map(|w| format!("warning: {w}")).collect();
    messages.push(format!(
        "spent epsilon {spent_eps:.3}, delta {spent_delta:.1e} (rho {:.6}) in {} release(s); recorded in {}",
        budget.rho_spent(),
        budget.charges().len(),
        release.ledger().path().display()
    ));
    Ok((text, messages, release))
}
