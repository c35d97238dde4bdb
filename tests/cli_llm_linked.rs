//! The LLM stage on linked tables, against the loopback fake server: text columns of the
//! person table and of every event table written per synthetic row, each event's prompt
//! conditioned on its own synthetic values and its synthetic person's record, and the canary
//! test of the DP boundary on the linked path (markers planted in the real person and event
//! tables never reach a request, the transcript, the outputs, the model file or a message). The
//! fake's answers are schema-valid noise: nothing here is a quality result.

mod common;
#[path = "common/fake_llm.rs"]
mod fake_llm;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::{path_str, privsynth, root};
use fake_llm::FakeLlm;
use privsynth::schema::CsvFormat;
use serde_json::Value;

const SYNTHEA: &str = "data/ehr/synthea-111";
const SCHEMA: &str = "schemas/ehr/synthea-111.yaml";

/// Markers planted in the real tables: person text and identifiers, event text and a number.
const MARKERS: [&str; 6] =
    ["Zqxcanarytown", "Canaryfirst9931", "Canarylast7719", "Canaryreason4417", "Canarydesc8820", "7777123.45"];

fn leaks(text: &str) -> Vec<&'static str> {
    MARKERS.iter().copied().filter(|m| text.contains(m)).collect()
}

/// Replace the named columns of the first `n` plain rows (no quoted fields) of a CSV file.
fn plant(from: &Path, to: &Path, n: usize, cells: &[(&str, &str)]) {
    let text = std::fs::read_to_string(from).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let header: Vec<String> = lines[0].split(',').map(str::to_owned).collect();
    let mut done = 0;
    for line in lines.iter_mut().skip(1) {
        if done == n {
            break;
        }
        if line.contains('"') || line.split(',').count() != header.len() {
            continue;
        }
        let mut f: Vec<String> = line.split(',').map(str::to_owned).collect();
        for (c, v) in cells {
            f[header.iter().position(|h| h == c).unwrap()] = (*v).to_string();
        }
        *line = f.join(",");
        done += 1;
    }
    assert_eq!(done, n);
    std::fs::write(to, lines.join("\n") + "\n").unwrap();
}

/// The Synthea extract with markers in patients and encounters.
fn planted(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    for e in std::fs::read_dir(root().join(SYNTHEA)).unwrap().flatten() {
        std::fs::copy(e.path(), data.join(e.file_name())).unwrap();
    }
    let src = root().join(SYNTHEA);
    plant(
        &src.join("patients.csv"),
        &data.join("patients.csv"),
        8,
        &[("CITY", MARKERS[0]), ("FIRST", MARKERS[1]), ("LAST", MARKERS[2])],
    );
    plant(
        &src.join("encounters.csv"),
        &data.join("encounters.csv"),
        40,
        &[("REASONDESCRIPTION", MARKERS[3]), ("DESCRIPTION", MARKERS[4]), ("TOTAL_CLAIM_COST", MARKERS[5])],
    );
    data
}

/// Rows of a CSV file as column -> value (empty = None).
fn read_csv(p: &Path) -> Vec<HashMap<String, Option<String>>> {
    let raw = privsynth::data::read(p, &CsvFormat::default(), None).unwrap();
    let names = raw.column_names();
    let cols: Vec<Vec<Option<String>>> = names
        .iter()
        .map(|n| {
            let c = raw.df.column(n).unwrap().cast(&polars::prelude::DataType::String).unwrap();
            c.str().unwrap().iter().map(|v| v.map(str::to_owned).filter(|s| !s.is_empty())).collect()
        })
        .collect();
    (0..raw.df.height()).map(|i| names.iter().zip(&cols).map(|(n, c)| (n.clone(), c[i].clone())).collect()).collect()
}

fn everything(server: &FakeLlm, files: &[PathBuf], stderr: &str) -> String {
    let mut all: String = server.requests().iter().map(|r| format!("{} {}\n{}\n", r.method, r.path, r.body)).collect();
    for f in files {
        all += &std::fs::read_to_string(f).unwrap();
    }
    all + stderr
}

#[test]
fn linked_text_columns_are_conditioned_on_the_event_and_its_person_and_no_marker_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let data = planted(dir.path());
    let all_real: String =
        std::fs::read_dir(&data).unwrap().flatten().map(|e| std::fs::read_to_string(e.path()).unwrap()).collect();
    assert_eq!(leaks(&all_real).len(), MARKERS.len(), "the markers are really in the input");
    let server = FakeLlm::start();
    let (out, model, transcript, ledger) =
        (dir.path().join("out"), dir.path().join("m.json"), dir.path().join("t.jsonl"), dir.path().join("l.jsonl"));
    let r = privsynth(&[
        "synth",
        path_str(&data),
        "--schema",
        SCHEMA,
        "--epsilon",
        "2",
        "--mechanism",
        "mst",
        "--rows",
        "4",
        "-o",
        path_str(&out),
        "--model-out",
        path_str(&model),
        "--ledger",
        path_str(&ledger),
        "--seed",
        "11",
        "--llm-url",
        &server.url,
        "--llm-model",
        "fake-model",
        "--llm-no-cache",
        "--llm-batch",
        "25",
        "--llm-transcript",
        path_str(&transcript),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);

    let patients = read_csv(&out.join("patients.csv"));
    let enc = read_csv(&out.join("encounters.csv"));
    assert_eq!(patients.len(), 4);
    assert!(!enc.is_empty());
    // Text columns are written: the person's (CITY not nullable) and each event's (DESCRIPTION
    // not nullable; REASONDESCRIPTION nullable, so some may be null).
    assert!(patients.iter().all(|p| p["CITY"].is_some()), "every person's CITY written");
    assert!(enc.iter().all(|e| e["DESCRIPTION"].is_some()), "every encounter's DESCRIPTION written:\n{}", r.stderr);
    assert!(enc.iter().filter(|e| e["REASONDESCRIPTION"].is_some()).count() * 2 > enc.len());
    assert!(r.stderr.contains("encounters: llm text:") && r.stderr.contains("patients: llm text:"), "{}", r.stderr);

    // Each encounter request shows, per record, the event's own synthetic values and its
    // synthetic person's: the same values as the written tables hold.
    let by_key: HashMap<String, &HashMap<String, Option<String>>> =
        patients.iter().map(|p| (p["Id"].clone().unwrap(), p)).collect();
    let mut checked = 0;
    for c in server.chats() {
        let b: Value = serde_json::from_str(&c.body).unwrap();
        let system = b.pointer("/messages/0/content").and_then(Value::as_str).unwrap();
        if !system.contains("Table \"encounters\"") {
            continue;
        }
        assert!(system.contains("person.GENDER") && system.contains("Differentially private statistics"), "{system}");
        let user = b.pointer("/messages/1/content").and_then(Value::as_str).unwrap();
        let records: serde_json::Map<String, Value> = serde_json::from_str(&user[user.find('{').unwrap()..]).unwrap();
        for (id, rec) in records {
            let i: usize = id[1..].parse::<usize>().unwrap() - 1;
            let row = &enc[i];
            let person = by_key[row["PATIENT"].as_deref().unwrap()];
            assert_eq!(rec["ENCOUNTERCLASS"].as_str(), row["ENCOUNTERCLASS"].as_deref(), "{id}: the event's own value");
            assert_eq!(rec["person.GENDER"].as_str(), person["GENDER"].as_deref(), "{id}: its person's value");
            assert_eq!(rec["person.RACE"].as_str(), person["RACE"].as_deref(), "{id}: its person's value");
            assert!(rec.get("PATIENT").is_none() && rec.get("Id").is_none(), "keys are not shown");
            checked += 1;
        }
    }
    assert_eq!(checked, enc.len(), "every encounter was asked for once");

    // `sample` on the linked model file runs the same stage.
    let again = dir.path().join("again");
    let s = privsynth(&[
        "sample",
        path_str(&model),
        "-o",
        path_str(&again),
        "--rows",
        "2",
        "--seed",
        "3",
        "--llm-url",
        &server.url,
        "--llm-model",
        "fake-model",
        "--llm-no-cache",
    ]);
    assert_eq!(s.code, 0, "{}", s.stderr);
    assert!(read_csv(&again.join("patients.csv")).iter().all(|p| p["CITY"].is_some()), "{}", s.stderr);

    let mut files = vec![transcript, model];
    files.extend(std::fs::read_dir(&out).unwrap().flatten().map(|e| e.path()));
    files.extend(std::fs::read_dir(&again).unwrap().flatten().map(|e| e.path()));
    let all = everything(&server, &files, &(r.stderr.clone() + &s.stderr));
    assert!(leaks(&all).is_empty(), "markers of the real tables left the boundary: {:?}", leaks(&all));
}

#[test]
fn linked_llm_check_is_refused_before_any_budget_is_spent() {
    let dir = tempfile::tempdir().unwrap();
    let server = FakeLlm::start();
    let ledger = dir.path().join("l.jsonl");
    let r = privsynth(&[
        "synth",
        SYNTHEA,
        "--schema",
        SCHEMA,
        "--epsilon",
        "1",
        "-o",
        path_str(&dir.path().join("o")),
        "--ledger",
        path_str(&ledger),
        "--llm-url",
        &server.url,
        "--llm-model",
        "fake-model",
        "--llm-check",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--llm-check does not run on linked tables") && !ledger.exists(), "{}", r.stderr);
}
