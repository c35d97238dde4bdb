//! OpenLineage run events for releases (`--openlineage FILE|URL`), so that the governance tools
//! that track lineage (Marquez, DataHub, OpenMetadata, ...) see every synthetic release: the real
//! data in, the synthetic data and model out, and a custom run facet with the guarantee and the
//! ledger entry that recorded it. Everything in the event is public: paths, the released
//! guarantee, the ledger's hash; no count or value of the data.

use std::path::{Path, PathBuf};

use privsynth_privacy::ledger::Entry;
use serde_json::{Value, json};

use crate::error::{Error, Result};

/// The OpenLineage spec version whose RunEvent this writes.
const SCHEMA_URL: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
/// The custom facet's own schema (in this repository).
const FACET_SCHEMA_URL: &str =
    "https://github.com/privsynth/privsynth/blob/main/schemas/openlineage-privacy-facet.schema.json";
const PRODUCER: &str = concat!("https://github.com/privsynth/privsynth/tree/v", env!("CARGO_PKG_VERSION"));

/// A released run: the command, its ledger entry, what it read and wrote.
pub struct Run<'a> {
    /// `synth`, `fit`, ...: the job's name is `<command>.<dataset name>`.
    pub command: &'a str,
    pub entry: &'a Entry,
    /// The ledger file holding `entry`.
    pub ledger: &'a Path,
    pub inputs: Vec<PathBuf>,
    pub outputs: Vec<PathBuf>,
}

/// The run's OpenLineage RunEvent (eventType COMPLETE). The runId is a UUID made of the ledger
/// entry's run id and the first 64 bits of its hash, so an event names its ledger entry.
pub fn run_event(run: &Run) -> Value {
    let e = run.entry;
    let hi = u64::from_str_radix(&e.run_id, 16).unwrap_or(0);
    let lo = e.hash.get(..16).and_then(|h| u64::from_str_radix(h, 16).ok()).unwrap_or(0);
    let run_id = uuid::Uuid::from_u64_pair(hi, lo).hyphenated().to_string();
    let dataset = |p: &PathBuf| {
        let abs = std::path::absolute(p).unwrap_or_else(|_| p.clone());
        json!({"namespace": "file", "name": abs.display().to_string()})
    };
    let (epsilon, delta) = e.guarantee.map_or((None, None), |g| (Some(g.epsilon), Some(g.delta)));
    let name =
        Path::new(&e.dataset.name).file_name().map_or(e.dataset.name.clone(), |n| n.to_string_lossy().to_string());
    json!({
        "eventType": "COMPLETE",
        "eventTime": e.time,
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
        "run": {
            "runId": run_id,
            "facets": {
                "privsynth_privacy": {
                    "_producer": PRODUCER,
                    "_schemaURL": FACET_SCHEMA_URL,
                    "privacyUnit": e.dataset.privacy_unit.clone().unwrap_or_else(|| "row".into()),
                    "rowsPerUnit": e.dataset.rows_per_unit,
                    "epsilon": epsilon,
                    "delta": delta,
                    "rho": e.rho,
                    "mechanismDelta": e.delta,
                    "outsideGuarantee": e.outside_guarantee,
                    "datasetFingerprint": e.dataset.fingerprint,
                    "ledger": std::path::absolute(run.ledger).unwrap_or_else(|_| run.ledger.to_path_buf()).display().to_string(),
                    "ledgerEntrySeq": e.seq,
                    "ledgerEntryHash": e.hash,
                    "ledgerRunId": e.run_id,
                    "command": e.command,
                }
            }
        },
        "job": {"namespace": "privsynth", "name": format!("{}.{name}", run.command)},
        "inputs": run.inputs.iter().map(dataset).collect::<Vec<_>>(),
        "outputs": run.outputs.iter().map(dataset).collect::<Vec<_>>(),
    })
}

/// Send `event` to `target`: an `http(s)://` URL gets it POSTed as JSON (OpenLineage's HTTP
/// transport, e.g. `http://marquez:5000/api/v1/lineage`); anything else is a file, to which it
/// is appended as one line (the file transport's JSON lines).
pub fn emit(target: &str, event: &Value) -> Result<()> {
    let body = event.to_string();
    if target.starts_with("http://") || target.starts_with("https://") {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(std::time::Duration::from_secs(30)))
            .http_status_as_error(false)
            .user_agent(concat!("privsynth/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let r = agent.post(target).header("Content-Type", "application/json").send(body.as_str());
        return match r {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(Error::Usage(format!(
                "the OpenLineage endpoint {target} answered HTTP {} (the release is recorded in the ledger)",
                r.status().as_u16()
            ))),
            Err(e) => Err(Error::Usage(format!(
                "the OpenLineage endpoint {target} could not be reached: {e} (the release is recorded in the ledger)"
            ))),
        };
    }
    let path = Path::new(target);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|e| Error::io(path, e))?;
    std::io::Write::write_all(&mut f, format!("{body}\n").as_bytes()).map_err(|e| Error::io(path, e))
}
