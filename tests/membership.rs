//! The shadow-model membership-inference attack of the data audit (TAPAS style): it tells
//! members from non-members when the generator barely protects them (epsilon 1000 on a small
//! table) and cannot at a small epsilon; `audit --membership-model` reports it beside the
//! holdout control, valid against the audit report's schema.

mod common;
use common::{path_str, privsynth};

use privsynth::data;
use privsynth::evaluate::membership::{Options, attack};
use privsynth::mechanism::Mechanism;
use privsynth::pipeline::{FitOptions, Plan};
use privsynth::schema::Schema;

const HEART: &str = "data/uci-heart-disease/processed.cleveland.data";
const HEART_SCHEMA: &str = "schemas/heart.yaml";

fn split(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let text = std::fs::read_to_string(common::root().join(HEART)).unwrap();
    let rows: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    let (t, h) = (dir.join("train.data"), dir.join("holdout.data"));
    let half = rows.len() / 2;
    std::fs::write(&t, rows[..half].join("\n") + "\n").unwrap();
    std::fs::write(&h, rows[half..].join("\n") + "\n").unwrap();
    (t, h)
}

#[test]
fn the_attack_separates_members_only_when_the_budget_is_huge() {
    let dir = tempfile::tempdir().unwrap();
    let (t, h) = split(dir.path());
    let schema = Schema::load(&common::root().join(HEART_SCHEMA)).unwrap();
    let table = schema.tables[0].clone();
    let (train, holdout) = (data::read_for_table(&t, &table).unwrap(), data::read_for_table(&h, &table).unwrap());
    let plan = Plan::new(
        &schema,
        table,
        FitOptions { mechanism: Mechanism::Mst, iterations: 200, ..Default::default() },
        "heart.yaml",
    )
    .unwrap();
    let opts = Options { targets: 2, shadows: 30, shadow_rows: None, seed: 1 };
    // The synthetic table only matters for the release step; the holdout stands in for it.
    let auc = |eps: f64| {
        let m = attack(&plan, &train, &holdout, &holdout, eps, 1e-9, &opts).unwrap();
        eprintln!(
            "epsilon {eps}: train AUC {:.3} advantage {:.3}; holdout AUC {:.3}",
            m.train.auc, m.train.advantage, m.holdout.auc
        );
        assert_eq!(m.targets.len(), 4);
        assert_eq!(m.shadows_per_target, 60);
        (m.train.auc + m.holdout.auc) / 2.0
    };
    // With almost no noise, a target's own cells move by one row when it is in: its outliers
    // stand out. Mean AUC over 4 targets x (15 + 15) fresh shadows; measured about 0.9.
    let open = auc(1000.0);
    assert!(open > 0.75, "the attack misses an unprotected release: AUC {open}");
    // At epsilon 0.1 the noise (sigma in the tens of rows) hides one row: AUC near 0.5. The
    // mean of 4 AUCs of 15 x 15 has sd about 0.054 under the null; 0.75 is 4.6 sd out (false
    // failure about 2e-6). Measured: about 0.55.
    let closed = auc(0.1);
    assert!(closed < 0.75, "the attack separates members at epsilon 0.1: AUC {closed}");
}

#[test]
fn audit_reports_the_attack_beside_the_holdout_control() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let (t, h) = split(dir.path());
    let (model, synth) = (p("m.json"), p("s.csv"));
    let schema = common::root().join(HEART_SCHEMA);
    let f = privsynth(&[
        "fit",
        path_str(&t),
        "--schema",
        path_str(&schema),
        "--epsilon",
        "1",
        "--mechanism",
        "mst",
        "-o",
        path_str(&model),
        "--ledger",
        path_str(&p("l.jsonl")),
        "-q",
    ]);
    assert_eq!(f.code, 0, "{}", f.stderr);
    let s = privsynth(&["sample", path_str(&model), "-o", path_str(&synth), "--seed", "1", "-q"]);
    assert_eq!(s.code, 0, "{}", s.stderr);
    let r = privsynth(&[
        "audit",
        "--train",
        path_str(&t),
        "--holdout",
        path_str(&h),
        "--synthetic",
        path_str(&synth),
        "--schema",
        path_str(&schema),
        "--membership-model",
        path_str(&model),
        "--membership-targets",
        "2",
        "--membership-shadows",
        "6",
        "--json",
        path_str(&p("a.json")),
        "--html",
        path_str(&p("a.html")),
        "-q",
    ]);
    assert!(r.code == 0 || r.code == 1, "{}", r.stderr);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p("a.json")).unwrap()).unwrap();
    let s: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::root().join("schemas/audit-report.schema.json")).unwrap(),
    )
    .unwrap();
    let v = jsonschema::validator_for(&s).unwrap();
    assert!(v.is_valid(&report), "{:?}", v.iter_errors(&report).map(|e| e.to_string()).collect::<Vec<_>>());
    let m = &report["membership"];
    assert_eq!(m["mechanism"], "mst");
    assert_eq!(m["targets"].as_array().unwrap().len(), 4);
    for side in ["train", "holdout"] {
        let a = m[side]["auc"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&a), "{side} AUC {a}");
    }
    assert!(std::fs::read_to_string(p("a.html")).unwrap().contains("Membership inference (shadow models)"));
    // Without the option the report has no membership section.
    let r = privsynth(&[
        "audit",
        "--train",
        path_str(&t),
        "--holdout",
        path_str(&h),
        "--synthetic",
        path_str(&synth),
        "--schema",
        path_str(&schema),
        "--json",
        path_str(&p("b.json")),
        "-q",
    ]);
    assert!(r.code == 0 || r.code == 1, "{}", r.stderr);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p("b.json")).unwrap()).unwrap();
    assert!(report.get("membership").is_none());
}
