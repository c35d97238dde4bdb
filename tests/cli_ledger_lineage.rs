//! The ledger as other tools read it (issue 23 item 6): each entry carries the command that ran
//! and the (epsilon, delta) it reported, `ledger show --json` gives the epsilon the text prints,
//! no lock file is left behind, and `--openlineage` writes a RunEvent whose privacy facet names
//! the ledger entry.

mod common;
use common::{path_str, privsynth};

const HEART: &str = "data/uci-heart-disease/processed.cleveland.data";

fn synth(dir: &std::path::Path, extra: &[&str]) -> common::Run {
    let (out, ledger) = (dir.join("h.csv"), dir.join("led/ledger.jsonl"));
    let mut args = vec![
        "synth",
        HEART,
        "--schema",
        "schemas/heart.yaml",
        "--epsilon",
        "0.8",
        "--delta",
        "1e-7",
        "--mechanism",
        "mst",
        "--ledger",
        path_str(&ledger),
        "-q",
        "-o",
        path_str(&out),
    ];
    args.extend_from_slice(extra);
    privsynth(&args)
}

#[test]
fn entries_record_the_command_and_the_reported_guarantee() {
    let dir = tempfile::tempdir().unwrap();
    let lineage = dir.path().join("lineage/events.jsonl");
    let r = synth(dir.path(), &["--openlineage", path_str(&lineage)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ledger = dir.path().join("led/ledger.jsonl");
    let text = std::fs::read_to_string(&ledger).unwrap();
    let e: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert!(e["command"].as_str().unwrap().starts_with("synth "), "{}", e["command"]);
    let g = &e["guarantee"];
    assert!((g["epsilon"].as_f64().unwrap() - 0.8).abs() < 1e-6, "{g}");
    assert_eq!(g["delta"].as_f64().unwrap(), 1e-7, "the delta the run reports");
    // No lock file beside the ledger: the lock is on the ledger itself.
    let names: Vec<String> = std::fs::read_dir(dir.path().join("led"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(names, vec!["ledger.jsonl".to_string()]);
    // The chain verifies, and the JSON gives the epsilon the text prints.
    let show = privsynth(&["ledger", "show", "--ledger", path_str(&ledger)]);
    assert_eq!(show.code, 0, "{}", show.stderr);
    let json = privsynth(&["ledger", "show", "--ledger", path_str(&ledger), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let spent = v["datasets"][0]["epsilon_spent"].as_f64().expect("epsilon_spent without a policy");
    assert!(show.stdout.contains(&format!("epsilon {spent:.4} at delta")), "{spent} vs\n{}", show.stdout);

    // One OpenLineage RunEvent line with the privacy facet of this entry.
    let ev: serde_json::Value = serde_json::from_str(std::fs::read_to_string(&lineage).unwrap().trim()).unwrap();
    assert_eq!(ev["eventType"], "COMPLETE");
    assert!(ev["schemaURL"].as_str().unwrap().contains("openlineage.io/spec/"));
    let run_id = ev["run"]["runId"].as_str().unwrap();
    assert_eq!(run_id.len(), 36, "a UUID: {run_id}");
    let f = &ev["run"]["facets"]["privsynth_privacy"];
    assert_eq!(f["ledgerEntryHash"], e["hash"]);
    assert_eq!(f["ledgerEntrySeq"], e["seq"]);
    assert_eq!(f["epsilon"], g["epsilon"]);
    assert_eq!(f["delta"], g["delta"]);
    assert_eq!(f["rho"], e["rho"]);
    assert_eq!(f["privacyUnit"], "row");
    assert!(ev["inputs"][0]["name"].as_str().unwrap().ends_with("processed.cleveland.data"));
    assert!(ev["outputs"][0]["name"].as_str().unwrap().ends_with("h.csv"));
    // The facet matches its published schema.
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::root().join("schemas/openlineage-privacy-facet.schema.json")).unwrap(),
    )
    .unwrap();
    let errors: Vec<String> =
        jsonschema::validator_for(&schema).unwrap().iter_errors(f).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    // A second release appends a second event.
    assert_eq!(synth(dir.path(), &["--openlineage", path_str(&lineage)]).code, 0);
    assert_eq!(std::fs::read_to_string(&lineage).unwrap().lines().count(), 2);
}

#[test]
fn fit_is_recorded_as_fit() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("l.jsonl");
    let r = privsynth(&[
        "fit",
        HEART,
        "--schema",
        "schemas/heart.yaml",
        "--epsilon",
        "1",
        "--mechanism",
        "mst",
        "--ledger",
        path_str(&ledger),
        "-q",
        "-o",
        path_str(&dir.path().join("m.json")),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let e: serde_json::Value = serde_json::from_str(std::fs::read_to_string(&ledger).unwrap().trim()).unwrap();
    assert!(e["command"].as_str().unwrap().starts_with("fit "), "{}", e["command"]);
}

#[test]
fn ledger_show_into_a_closed_pipe_ends_quietly() {
    // `ledger show | head -1`: the reader goes away; no panic, no error message.
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..3 {
        assert_eq!(synth(dir.path(), &[]).code, 0);
    }
    let ledger = dir.path().join("led/ledger.jsonl");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_privsynth"))
        .args(["ledger", "show", "--ledger", path_str(&ledger)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // closed before privsynth writes
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{stderr}");
}
