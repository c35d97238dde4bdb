//! `privsynth audit` and `synth --audit-holdout` from the command line: reports, exit codes,
//! gates, and clear errors for bad input.

mod common;
use common::{path_str, privsynth};

const ADULT: &str = "data/adult/adult.csv";
const SCHEMA: &str = "schemas/adult.yaml";
const HEART: &str = "data/uci-heart-disease/processed.cleveland.data";
const HEART_SCHEMA: &str = "schemas/heart.yaml";

fn heart_split(dir: &std::path::Path) -> (String, String) {
    let text = std::fs::read_to_string(common::root().join(HEART)).unwrap();
    let rows: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    let (t, h) = (dir.join("train.data"), dir.join("holdout.data"));
    let half = rows.len() / 2;
    std::fs::write(&t, rows[..half].join("\n") + "\n").unwrap();
    std::fs::write(&h, rows[half..].join("\n") + "\n").unwrap();
    (path_str(&t).to_string(), path_str(&h).to_string())
}

#[test]
fn synth_with_audit_holdout_writes_valid_reports_and_charges_only_the_fit() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let r = privsynth(&[
        "synth",
        ADULT,
        "--schema",
        SCHEMA,
        "--epsilon",
        "1",
        "--mechanism",
        "mst",
        "-o",
        path_str(&p("s.csv")),
        "--ledger",
        path_str(&p("l.jsonl")),
        "--seed",
        "4",
        "--audit-holdout",
        "0.5",
        "--json",
        path_str(&p("a.json")),
        "--html",
        path_str(&p("a.html")),
        "--junit",
        path_str(&p("a.xml")),
        "-q",
    ]);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p("a.json")).unwrap()).unwrap();
    // DP noise is never seeded, so the verdict is not asserted as a whole; the exit code must
    // follow it, and a DP table must pass every memorization gate.
    assert_eq!(r.code, if report["verdict"] == "pass" { 0 } else { 1 }, "{}\n{}", r.stdout, r.stderr);
    for g in report["gates"].as_array().unwrap() {
        if g["metric"].as_str().unwrap().starts_with("memorization.") {
            assert_eq!(g["status"], "pass", "{}", r.stdout);
        }
    }
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::root().join("schemas/audit-report.schema.json")).unwrap(),
    )
    .unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    assert!(v.is_valid(&report), "{:?}", v.iter_errors(&report).map(|e| e.to_string()).collect::<Vec<_>>());
    // The split: the two parts partition the file's rows; each row is in the holdout with
    // probability 1/2, independently (Binomial(32561, 0.5): sd 90; 6.6 sd allowed).
    let (tr, ho) =
        (report["inputs"]["train"]["rows"].as_u64().unwrap(), report["inputs"]["holdout"]["rows"].as_u64().unwrap());
    assert_eq!(tr + ho, 32_561);
    assert!(ho.abs_diff(16_280) <= 600, "holdout {ho}");
    // A DP synthetic table copies nothing beyond the natural rate.
    assert!(report["memorization"]["exact_match"]["excess"].as_f64().unwrap().abs() < 0.005);
    // JUnit: one test case per gate.
    let junit = std::fs::read_to_string(p("a.xml")).unwrap();
    let gates = report["gates"].as_array().unwrap().len();
    assert_eq!(junit.matches("<testcase ").count(), gates);
    assert!(junit.starts_with("<?xml"));
    let failed = report["gates"].as_array().unwrap().iter().filter(|g| g["status"] == "fail").count();
    assert!(junit.contains(&format!("failures=\"{failed}\"")));
    // HTML: self-contained, says what it is, has its plots.
    let html = std::fs::read_to_string(p("a.html")).unwrap();
    assert!(html.contains("For the data holder only") && html.matches("<svg").count() >= 15);
    assert!(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"));
    // Readable on a laptop and on paper (issue 23 item 7): viewport, narrow-screen and print rules.
    assert!(html.contains("<meta name=\"viewport\""), "no viewport meta");
    assert!(html.contains("@media (max-width:900px)") && html.contains("overflow-x:auto"), "no narrow-screen rules");
    assert!(html.contains("@media print") && html.contains("break-inside:avoid"), "no print rules");
    // The ledger records one fit that names the holdout.
    let entries = privsynth_privacy::ledger::Ledger::new(p("l.jsonl")).entries().unwrap();
    assert_eq!(entries.len(), 1);
    assert!(entries[0].command.contains("--audit-holdout 0.5"), "{}", entries[0].command);
}

#[test]
fn audit_gates_exit_codes_and_junit_failures() {
    let dir = tempfile::tempdir().unwrap();
    let (train, holdout) = heart_split(dir.path());
    let p = |n: &str| dir.path().join(n);
    let base = ["audit", "--schema", HEART_SCHEMA, "--train", &train, "--holdout", &holdout];
    // A copy of train as "synthetic" fails (exit 1) and JUnit shows the failures.
    let (j, c, g, h) = (p("j.xml"), p("c.json"), p("gates.yaml"), p("h.json"));
    let mut args = base.to_vec();
    args.extend(["--synthetic", &train, "--junit", path_str(&j), "--json", path_str(&c), "-q"]);
    let r = privsynth(&args);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("GATES FAILED"));
    let junit = std::fs::read_to_string(p("j.xml")).unwrap();
    assert!(junit.contains("<failure") && junit.contains("memorization.exact_match.excess"));
    // The holdout as "synthetic" passes (exit 0), with a gates file of one's own.
    std::fs::write(
        p("gates.yaml"),
        "version: 1\ngates:\n  - {metric: memorization.exact_match.excess, direction: at_most, threshold: 0.01}\n  - {metric: reidentification.inference.risk, direction: at_most, threshold: 0.2, required: true}\n",
    )
    .unwrap();
    let mut args = base.to_vec();
    args.extend(["--synthetic", &holdout, "--gates", path_str(&g), "--seed", "9", "--json", path_str(&h)]);
    let r = privsynth(&args);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p("h.json")).unwrap()).unwrap();
    assert_eq!(report["gates"].as_array().unwrap().len(), 2);
    assert_eq!(report["inputs"]["seed"], 9);
    assert_eq!(report["inputs"]["secret"], "num");
}

#[test]
fn audit_refuses_bad_input_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (train, holdout) = heart_split(dir.path());
    let p = |n: &str| dir.path().join(n);
    // No holdout: a usage error that says why it is needed.
    let r = privsynth(&["audit", "--schema", HEART_SCHEMA, "--train", &train, "--synthetic", &holdout]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--holdout is required") && r.stderr.contains("memorization"), "{}", r.stderr);
    // A synthetic cell of the wrong type names the file, row and column.
    let text = std::fs::read_to_string(&holdout).unwrap();
    let bad: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| if i == 4 { format!("sixty{}", &l[l.find(',').unwrap()..]) } else { l.to_string() })
        .collect();
    std::fs::write(p("bad.data"), bad.join("\n")).unwrap();
    let json = p("never.json");
    let audit = |synthetic: &str, more: &[&str]| {
        let mut args = vec!["audit", "--schema", HEART_SCHEMA, "--train", &train, "--holdout", &holdout];
        args.extend(["--synthetic", synthetic]);
        args.extend(more);
        privsynth(&args)
    };
    let r = audit(path_str(&p("bad.data")), &["--json", path_str(&json)]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("bad.data") && r.stderr.contains("row 5") && r.stderr.contains("age"), "{}", r.stderr);
    assert!(!json.exists(), "a failed run must leave no report");
    // Gates: an unknown metric and a malformed file are usage errors, before any report.
    for (body, want) in [
        (
            "version: 1\ngates:\n  - {metric: memorization.exact.excess, direction: at_most, threshold: 0.1}\n",
            "memorization.exact.excess",
        ),
        (
            "version: 1\ngates:\n  - {metric: fidelity.tvd2_excess, direction: below, threshold: 0.1}\n",
            "not a valid gates file",
        ),
        ("version: 2\ngates: []\n", "version 2"),
    ] {
        std::fs::write(p("g.yaml"), body).unwrap();
        let r = audit(&holdout, &["--gates", path_str(&p("g.yaml")), "--json", path_str(&json)]);
        assert_eq!(r.code, 2, "{body}: {}", r.stderr);
        assert!(r.stderr.contains(want), "{body}: {}", r.stderr);
        assert!(!json.exists());
    }
    // Unknown columns for the threat model.
    let r = audit(&holdout, &["--qi", "age,nope"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("\"nope\""), "{}", r.stderr);
    // synth: a fraction outside (0, 1), and report flags without an audit.
    let out = p("s.csv");
    let r = privsynth(&[
        "synth",
        HEART,
        "--schema",
        HEART_SCHEMA,
        "--epsilon",
        "1",
        "-o",
        path_str(&out),
        "--audit-holdout",
        "1.5",
        "--ledger",
        path_str(&p("l.jsonl")),
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--audit-holdout"));
    let r = privsynth(&[
        "synth",
        HEART,
        "--schema",
        HEART_SCHEMA,
        "--epsilon",
        "1",
        "-o",
        path_str(&out),
        "--json",
        path_str(&json),
        "--ledger",
        path_str(&p("l.jsonl")),
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--audit-holdout"));
    assert!(!out.exists() && !p("l.jsonl").exists(), "usage errors come before anything is charged or written");
}

const SYNTHEA: &str = "data/ehr/synthea-111";
const SYNTHEA_SCHEMA: &str = "schemas/ehr/synthea-111.yaml";

/// Linked `synth` leaves out of its output a nullable modelled column its draw made
/// all-missing (patients.DEATHDATE on a small draw) and writes beside the tables a schema
/// without it (`ehr::sample::Output::conform`). The linked audit of such an output failed with
/// "DEATHDATE.age_days is not in the file": it encoded the synthetic person model table with the
/// source schema. The case is built here without noise: the bundled Synthea tables with
/// DEATHDATE removed, and beside them the schema `synth` writes then.
fn synthea_output_without_deathdate(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    use polars::prelude::*;
    let schema = privsynth::schema::Schema::load(&common::root().join(SYNTHEA_SCHEMA)).unwrap();
    let (hold, synth) = (dir.join("holdout"), dir.join("synthetic"));
    for d in [&hold, &synth] {
        std::fs::create_dir(d).unwrap();
    }
    for t in &schema.tables {
        let file = format!("{}.csv", t.name);
        let src = common::root().join(SYNTHEA).join(&file);
        std::fs::copy(&src, hold.join(&file)).unwrap();
        let mut df = CsvReadOptions::default()
            .with_infer_schema_length(Some(0))
            .try_into_reader_with_file_path(Some(src))
            .unwrap()
            .finish()
            .unwrap();
        if t.name == "patients" {
            df = df.drop("DEATHDATE").unwrap();
        }
        CsvWriter::new(std::fs::File::create(synth.join(&file)).unwrap()).finish(&mut df).unwrap();
    }
    let mut out = schema.clone();
    for t in &mut out.tables {
        t.columns.retain(|c| c.name != "DEATHDATE");
    }
    let p = out.person.as_mut().unwrap();
    (p.death, p.death_age) = (None, None);
    let person_model = out.person_model_table().unwrap();
    for e in out.tables.iter_mut().filter_map(|t| t.events.as_mut()) {
        e.person_columns.retain(|c| person_model.column(c).is_some());
    }
    out.validate("the output's schema").unwrap();
    std::fs::write(synth.join("schema.yaml"), out.to_yaml().unwrap()).unwrap();
    (hold, synth)
}

#[test]
fn linked_audit_of_an_output_that_left_out_a_column_drawn_all_missing() {
    let dir = tempfile::tempdir().unwrap();
    let (hold, synth) = synthea_output_without_deathdate(dir.path());
    let json = dir.path().join("a.json");
    let audit = |more: &[&str]| {
        let mut args = vec!["audit", "--train", SYNTHEA, "--holdout", path_str(&hold), "--synthetic", path_str(&synth)];
        args.extend(["--schema", SYNTHEA_SCHEMA, "--attacks", "50"]);
        args.extend(more);
        privsynth(&args)
    };
    let r = audit(&["--json", path_str(&json)]);
    assert!(r.code == 0 || r.code == 1, "{}", r.stderr);
    assert!(r.stdout.contains("== audit: person =="), "{}", r.stdout);
    let person: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("a.person.json")).unwrap()).unwrap();
    assert!(person["inputs"]["synthetic"]["rows"].as_u64().unwrap() > 0);
    // Compared on the columns both sides have; the report names the one left out.
    let death = "DEATHDATE.age_days";
    assert_eq!(person["inputs"]["columns_left_out"], serde_json::json!([death]), "{person:#}");
    let columns: Vec<&str> =
        person["inputs"]["columns"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert!(!columns.contains(&death) && columns.contains(&"BIRTHDATE"), "{columns:?}");
    assert!(r.stdout.contains(&format!("the synthetic output left them out: drawn missing for every row): {death}")));
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::root().join("schemas/audit-report.schema.json")).unwrap(),
    )
    .unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = v.iter_errors(&person).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // The event tables lost nothing: their reports name nothing left out.
    let encounters: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("a.encounters.json")).unwrap()).unwrap();
    assert!(encounters["inputs"].get("columns_left_out").is_none(), "{:#}", encounters["inputs"]);
    // A threat model naming the left-out column is refused, naming it.
    let r = audit(&["--qi", &format!("GENDER,{death}")]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains(death) && r.stderr.contains("not in the synthetic output"), "{}", r.stderr);
}
