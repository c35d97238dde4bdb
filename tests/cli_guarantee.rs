//! The printed guarantee is the one that holds: a table's privacy unit is bounded and recorded,
//! exact counts stay out of default output, values read from the data are refused or recorded
//! as outside the guarantee, and a DP-inferred schema's cost is added to the figure shown.

mod common;
use common::{path_str, privsynth};

use privsynth::model::file::ModelFile;
use privsynth_privacy::ledger::Ledger;

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const UNIT_SCHEMA: &str = "version: 1
tables:
  - name: visits
    privacy_unit: pid
    rows_per_unit: 3
    columns:
      - {name: pid, type: identifier, role: identifier}
      - {name: ward, type: categorical, domain: {categories: [A, B, C]}}
      - {name: age, type: integer, domain: {bounds: [0, 99], bins: 10}}
";

/// 60 persons with 1..=6 visits each; every 10th visit has an age outside the domain.
fn visits() -> String {
    let mut text = String::from("pid,ward,age\n");
    let mut n = 0;
    for p in 0..60 {
        for v in 0..(1 + p % 6) {
            n += 1;
            let age = if n % 10 == 0 { 130 } else { 20 + (p + v) % 60 };
            text.push_str(&format!("p{p},{},{age}\n", ["A", "B", "C"][(p + v) % 3]));
        }
    }
    text
}

#[test]
fn a_privacy_unit_needs_a_public_bound_which_scales_every_sensitivity_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let data = write(dir.path(), "visits.csv", &visits());
    let ledger = dir.path().join("l.jsonl");
    let model = dir.path().join("m.json");
    // Without rows_per_unit the schema is refused, saying what to add; nothing is charged.
    let unbounded = write(dir.path(), "unbounded.yaml", &UNIT_SCHEMA.replace("    rows_per_unit: 3\n", ""));
    let r = privsynth(&[
        "fit",
        path_str(&data),
        "--schema",
        path_str(&unbounded),
        "--epsilon",
        "1",
        "-o",
        path_str(&model),
        "--ledger",
        path_str(&ledger),
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("privacy_unit \"pid\"") && r.stderr.contains("rows_per_unit: K"), "{}", r.stderr);
    assert!(!ledger.exists() && !model.exists());
    // With the bound: every release states sensitivity 3, and the model and ledger say so.
    let schema = write(dir.path(), "s.yaml", UNIT_SCHEMA);
    for mech in ["mst", "aim"] {
        let r = privsynth(&[
            "fit",
            path_str(&data),
            "--schema",
            path_str(&schema),
            "--epsilon",
            "1",
            "--mechanism",
            mech,
            "-o",
            path_str(&model),
            "--ledger",
            path_str(&ledger),
            "-q",
        ]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stderr.contains("privacy unit pid, at most 3 row(s) per unit"), "{}", r.stderr);
        let m = ModelFile::load(&model).unwrap();
        assert_eq!((m.privacy.unit.as_deref(), m.privacy.rows_per_unit), (Some("pid"), 3));
        for c in &m.privacy.releases {
            match c.mechanism.as_str() {
                "discrete_gaussian" => assert_eq!(c.sensitivity, 3.0, "{mech}: {}", c.label),
                // Selection scores move by the weight times the rows a unit can add.
                _ => assert!(c.sensitivity >= 3.0, "{mech}: {} states {}", c.label, c.sensitivity),
            }
        }
    }
    let entries = Ledger::new(&ledger).entries().unwrap();
    assert_eq!(entries.len(), 2);
    assert!(
        entries.iter().all(|e| e.dataset.privacy_unit.as_deref() == Some("pid") && e.dataset.rows_per_unit == Some(3))
    );
}

#[test]
fn exact_counts_reach_stderr_only_when_the_data_holder_asks() {
    let dir = tempfile::tempdir().unwrap();
    let data = write(dir.path(), "visits.csv", &visits());
    let schema = write(dir.path(), "s.yaml", UNIT_SCHEMA);
    let ledger = dir.path().join("l.jsonl");
    let args = |out: &str| {
        vec![
            "fit".to_string(),
            path_str(&data).into(),
            "--schema".into(),
            path_str(&schema).into(),
            "--epsilon".into(),
            "1".into(),
            "--mechanism".into(),
            "mst".into(),
            "-o".into(),
            path_str(&dir.path().join(out)).into(),
            "--ledger".into(),
            path_str(&ledger).into(),
            "-q".into(),
        ]
    };
    let run = |a: Vec<String>| privsynth(&a.iter().map(String::as_str).collect::<Vec<_>>());
    // 21 ages of 130 are dropped (the default policy), rows beyond 3 per person are bounded away.
    let r = run(args("a.json"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    for leak in ["dropped", "left out by", "21 ", "130"] {
        assert!(!r.stderr.contains(leak), "{leak:?} in default output:\n{}", r.stderr);
    }
    let mut a = args("b.json");
    a.push("--private-diagnostics".into());
    let r = run(a);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("NOT differentially private"), "{}", r.stderr);
    assert!(
        r.stderr.contains("column \"age\": 0 cell(s) clipped, 0 made missing, 21 dropped their row"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("left out by contribution bounding"), "{}", r.stderr);
    assert!(!r.stderr.contains("130"), "no cell value even here:\n{}", r.stderr);
}

#[test]
fn values_read_from_the_data_are_refused_or_recorded_as_outside_the_guarantee() {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("heart.yaml");
    let heart = "data/uci-heart-disease/processed.cleveland.data";
    let r = privsynth(&["schema", "infer", heart, "--no-header", "-o", path_str(&schema)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text = std::fs::read_to_string(&schema).unwrap();
    assert!(text.contains("read_from_data:") && text.contains("column_1.nullable"), "{text}");
    // Reviewing the domains alone is not enough: the nullability, tokens and precision read
    // from the data are refused too.
    let reviewed = write(dir.path(), "reviewed.yaml", &text.replace("source: data", "source: public"));
    let (ledger, model) = (dir.path().join("l.jsonl"), dir.path().join("m.json"));
    let fit = |s: &std::path::Path, extra: &[&str]| {
        let mut a = vec![
            "fit",
            heart,
            "--no-header",
            "--schema",
            path_str(s),
            "--epsilon",
            "1",
            "--mechanism",
            "mst",
            "-o",
            path_str(&model),
            "--ledger",
            path_str(&ledger),
            "-q",
        ];
        a.extend(extra);
        privsynth(&a)
    };
    let r = fit(&reviewed, &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("column_1.nullable") && r.stderr.contains("read_from_data"), "{}", r.stderr);
    assert!(!ledger.exists());
    // The override proceeds, and the release says what its guarantee does not cover.
    let r = fit(&reviewed, &["--allow-data-domains"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = ModelFile::load(&model).unwrap();
    assert!(
        m.privacy
            .outside_guarantee
            .iter()
            .any(|w| w.contains("--allow-data-domains") && w.contains("column_1.nullable")),
        "{:?}",
        m.privacy.outside_guarantee
    );
    let e = &Ledger::new(&ledger).entries().unwrap()[0];
    assert!(e.command.contains("--allow-data-domains") && !e.outside_guarantee.is_empty(), "{e:?}");
    let r = privsynth(&["sample", path_str(&model), "-o", path_str(&dir.path().join("s.csv")), "--rows", "50", "-q"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("does not cover everything") && r.stderr.contains("--allow-data-domains"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_dp_inferred_schema_adds_its_cost_to_the_guarantee_shown() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, schema, model) = (dir.path().join("l.jsonl"), dir.path().join("s.yaml"), dir.path().join("m.json"));
    let adult = "data/adult/adult.csv";
    let r = privsynth(&[
        "schema",
        "infer",
        adult,
        "--dp-epsilon",
        "0.5",
        "--ledger",
        path_str(&ledger),
        "-o",
        path_str(&schema),
        "-q",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = privsynth(&[
        "fit",
        adult,
        "--schema",
        path_str(&schema),
        "--epsilon",
        "1",
        "--mechanism",
        "mst",
        "-o",
        path_str(&model),
        "--ledger",
        path_str(&ledger),
        "-q",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("proposed under DP from this same data") && r.stderr.contains("together: epsilon"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("ledger: 2 release(s) on this dataset so far"), "{}", r.stderr);
    let m = ModelFile::load(&model).unwrap();
    let (inf, both) = (m.privacy.schema_inference.unwrap(), m.privacy.with_schema_inference.unwrap());
    assert!((inf.epsilon - 0.5).abs() < 0.01, "{inf:?}");
    // zCDP adds: the combined epsilon is more than either, less than their sum.
    assert!(
        both.epsilon > m.privacy.epsilon
            && both.epsilon > inf.epsilon
            && both.epsilon < m.privacy.epsilon + inf.epsilon,
        "{both:?}"
    );
    assert!((both.rho - (m.privacy.rho + inf.rho)).abs() < 1e-12);
    // Fitting another file on the same schema says that the fingerprints differ.
    let r = privsynth(&[
        "fit",
        "data/adult/adult_test.csv",
        "--schema",
        path_str(&schema),
        "--epsilon",
        "1",
        "--mechanism",
        "mst",
        "-o",
        path_str(&model),
        "--ledger",
        path_str(&ledger),
        "-q",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("from another file") && r.stderr.contains("fingerprints differ"), "{}", r.stderr);
}
