//! End-to-end: DP schema inference charged to the ledger, policy refusal (exit 3) before any
//! data are read, ledger verification and tamper detection.

mod common;
use common::{path_str, privsynth};

use privsynth::schema::{DomainSource, Schema};
use privsynth_privacy::accountant::rho_for;
use privsynth_privacy::ledger::Ledger;

const ADULT: &str = "data/adult/adult.csv";

#[test]
fn dp_infer_is_charged_and_its_schema_fits() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.jsonl");
    let out = dir.path().join("adult-dp.yaml");
    let r = privsynth(&[
        "schema",
        "infer",
        ADULT,
        "--dp-epsilon",
        "1",
        "--dp-delta",
        "1e-9",
        "--ledger",
        path_str(&ledger),
        "-o",
        path_str(&out),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("spent epsilon 1.000"), "{}", r.stderr);

    // Every domain is a DP release, so the schema is usable for DP fitting without review.
    let s = Schema::load(&out).unwrap();
    let t = s.table(None).unwrap();
    assert!(t.columns.iter().filter_map(|c| c.domain.as_ref()).all(|d| d.source == DomainSource::Dp));
    assert_eq!(s.ensure_public_domains("adult-dp.yaml", false).unwrap(), None);
    let kind = |n: &str| t.column(n).unwrap().kind.to_string();
    assert_eq!(
        ["age", "workclass", "fnlwgt", "sex", "income"].map(kind),
        ["integer", "categorical", "integer", "categorical", "categorical"]
    );
    // DP bounds land near the truth (age 17..90; the 1st/99th percentiles are 17 and 74).
    let age = t.column("age").unwrap().domain.as_ref().unwrap().bounds.clone().unwrap();
    let (lo, hi): (f64, f64) = (age[0].parse().unwrap(), age[1].parse().unwrap());
    assert!((10.0..=25.0).contains(&lo) && (60.0..=90.0).contains(&hi), "age bounds {lo}..{hi}");
    // Frequent categories survive partition selection.
    let sex = t.column("sex").unwrap().domain.as_ref().unwrap().categories.clone().unwrap();
    assert_eq!(sex, ["Female", "Male"]);
    // The data fit the DP schema (out-of-range values are clipped or nulled by its policies).
    let r = privsynth(&["schema", "check", ADULT, "--schema", path_str(&out)]);
    assert_eq!(r.code, 0, "{}", r.stdout);

    // One ledger entry, whose mechanisms add up to the run's cost, within the budget.
    let entries = Ledger::new(&ledger).entries().unwrap();
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert!(e.dataset.fingerprint.starts_with("sha256:") && e.command.contains("dp-epsilon"));
    let sum: f64 = e.mechanisms.iter().map(|m| m.rho).sum();
    assert!((sum - e.rho).abs() < 1e-12);
    assert!(e.rho <= rho_for(1.0, 5e-10) * (1.0 + 1e-9), "rho {} over the budget", e.rho);
    assert!(e.delta <= 5e-10 && e.delta > 0.0, "mechanism delta {}", e.delta);
    assert!(e.mechanisms.iter().any(|m| m.mechanism == "discrete_gaussian"));
    assert!(e.mechanisms.iter().any(|m| m.mechanism == "quantile"));
    assert!(e.mechanisms.iter().any(|m| m.mechanism == "gaussian_threshold"));
}

#[test]
fn policy_refuses_with_exit_3_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.jsonl");
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, "default: {epsilon: 1.2, delta: 1.0e-9}\n").unwrap();
    let out = dir.path().join("s.yaml");
    let args = |eps: &'static str| {
        vec![
            "schema",
            "infer",
            ADULT,
            "--dp-epsilon",
            eps,
            "--ledger",
            path_str(&ledger),
            "--policy",
            path_str(&policy),
            "-o",
            path_str(&out),
        ]
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>()
    };
    let run = |eps| privsynth(&args(eps).iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(run("1").code, 0);
    std::fs::remove_file(&out).unwrap();
    // eps 1 + eps 1 composes to about 1.47 in zCDP: over the lifetime 1.2.
    let r = run("1");
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("refused by the privacy policy") && r.stderr.contains("Nothing was read"),
        "{}",
        r.stderr
    );
    assert!(!out.exists(), "a refused run writes nothing");
    assert_eq!(Ledger::new(&ledger).entries().unwrap().len(), 1, "a refused run records nothing");
    // A small second run still fits.
    assert_eq!(run("0.3").code, 0);
    let r = privsynth(&["ledger", "show", "--ledger", path_str(&ledger), "--policy", path_str(&policy), "--json"]);
    assert_eq!(r.code, 0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["entries"], 2);
    let spent = v["datasets"][0]["epsilon_spent"].as_f64().unwrap();
    assert!(spent > 1.0 && spent <= 1.2, "{spent}");
}

#[test]
fn ledger_show_detects_tampering_and_blocks_runs() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.jsonl");
    for _ in 0..2 {
        assert_eq!(
            privsynth(&["schema", "infer", ADULT, "--dp-epsilon", "0.5", "--ledger", path_str(&ledger)]).code,
            0
        );
    }
    let r = privsynth(&["ledger", "show", "--ledger", path_str(&ledger)]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("2 release(s), hash chain verified") && r.stdout.contains("NOT capped"), "{}", r.stdout);
    // Lower the recorded spending of the first release.
    let text = std::fs::read_to_string(&ledger).unwrap();
    let first = text.lines().next().unwrap();
    let v: serde_json::Value = serde_json::from_str(first).unwrap();
    let rho = v["rho"].as_f64().unwrap();
    let forged = text.replacen(&format!("\"rho\":{rho}"), "\"rho\":0.0", 1);
    assert_ne!(forged, text);
    std::fs::write(&ledger, forged).unwrap();
    let r = privsynth(&["ledger", "show", "--ledger", path_str(&ledger)]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("TAMPERED at line 1"), "{}", r.stderr);
    // A run against a tampered ledger is refused.
    let r = privsynth(&["schema", "infer", ADULT, "--dp-epsilon", "0.5", "--ledger", path_str(&ledger)]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("TAMPERED"), "{}", r.stderr);
}

#[test]
fn ledger_location_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("env-ledger.jsonl");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_privsynth"))
        .args(["schema", "infer", ADULT, "--dp-epsilon", "0.5"])
        .current_dir(common::root())
        .env("PRIVSYNTH_LEDGER", &ledger)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(Ledger::new(&ledger).entries().unwrap().len(), 1);
}

#[test]
fn bad_privacy_parameters_are_usage_errors() {
    for args in [
        vec!["schema", "infer", ADULT, "--dp-epsilon", "0"],
        vec!["schema", "infer", ADULT, "--dp-epsilon", "1", "--dp-delta", "2"],
        vec!["schema", "infer", ADULT, "--dp-delta", "1e-9"],
    ] {
        let r = privsynth(&args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
    }
}
