//! Linked tables sampled and written in blocks of persons (issue 19): with blocks far smaller
//! than the run, person keys stay unique, every event references a person of its own block and
//! every event-to-event reference a row of the same person, the output passes `schema check`
//! against the schema written beside it, the same seed gives the same files, and the LLM stage
//! writes the text columns of every block.

mod common;
#[path = "common/fake_llm.rs"]
mod fake_llm;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use common::{path_str, privsynth};
use fake_llm::FakeLlm;
use polars::prelude::*;
use privsynth::ehr::LinkedModel;
use privsynth::pipeline::Silent;
use privsynth::pipeline::output::{TableFormat, write_linked_in};

const SYNTHEA: &str = "data/ehr/synthea-111";
const SCHEMA: &str = "schemas/ehr/synthea-111.yaml";

/// A linked model fitted on the Synthea fixture (through `synth --model-out`).
fn fitted(dir: &Path) -> LinkedModel {
    let model = dir.join("m.json");
    let r = privsynth(&[
        "synth",
        SYNTHEA,
        "--schema",
        SCHEMA,
        "--epsilon",
        "2",
        "--mechanism",
        "mst",
        "--rows",
        "3",
        "-o",
        path_str(&dir.join("fit-out")),
        "--model-out",
        path_str(&model),
        "--ledger",
        path_str(&dir.join("l.jsonl")),
        "--seed",
        "1",
        "-q",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    LinkedModel::load(&model).unwrap()
}

fn how(format: TableFormat) -> privsynth::pipeline::output::Output {
    privsynth::pipeline::output::Output { format, header: true }
}

/// Write `persons` persons in blocks of `block` into `out`.
fn write(m: &LinkedModel, persons: usize, block: usize, seed: u64, out: &Path, format: TableFormat) -> Vec<String> {
    let llm = privsynth::llm::StageOptions::default();
    write_linked_in(m, "test model", Some(persons), seed, (out, how(format)), block, &Silent, (&llm, None)).unwrap()
}

/// A column of a written table as strings (missing: None).
fn strings(path: &Path, column: &str) -> Vec<Option<String>> {
    let raw = privsynth::data::read(path, &Default::default(), None).unwrap();
    let c = raw.df.column(column).unwrap().cast(&DataType::String).unwrap();
    c.str().unwrap().iter().map(|v| v.map(str::to_owned).filter(|s| !s.is_empty())).collect()
}

fn table_path(out: &Path, table: &str, format: TableFormat) -> PathBuf {
    out.join(format!("{table}.{}", format.extension()))
}

#[test]
fn blocks_keep_keys_unique_references_within_the_block_and_the_output_checks() {
    let dir = tempfile::tempdir().unwrap();
    let m = fitted(dir.path());
    let (persons, block) = (60, 7);
    for format in [TableFormat::Csv, TableFormat::Parquet] {
        let out = dir.path().join(format!("out-{}", format.extension()));
        let lines = write(&m, persons, block, 42, &out, format);
        assert!(lines.iter().any(|l| l.contains(&format!("{persons} person(s)"))), "{lines:?}");

        // Person keys: unique over the blocks; the block of a person is its row / block.
        let keys: Vec<String> =
            strings(&table_path(&out, "patients", format), "Id").into_iter().map(Option::unwrap).collect();
        assert_eq!(keys.len(), persons);
        let block_of: HashMap<&str, usize> = keys.iter().enumerate().map(|(i, k)| (k.as_str(), i / block)).collect();
        assert_eq!(block_of.len(), persons, "person keys repeat across blocks");

        // Events reference persons of their own block, blocks in order: the block of the
        // referenced person never goes down along the file, and each block with events shows.
        let mut encounter_person: HashMap<String, String> = HashMap::new();
        for t in ["encounters", "conditions", "medications"] {
            let path = table_path(&out, t, format);
            let refs: Vec<String> = strings(&path, "PATIENT").into_iter().map(Option::unwrap).collect();
            assert!(!refs.is_empty(), "{t} has rows");
            let blocks: Vec<usize> = refs.iter().map(|r| block_of[r.as_str()]).collect();
            assert!(blocks.windows(2).all(|w| w[0] <= w[1]), "{t}: an event references a person of another block");
            assert!(blocks.iter().collect::<HashSet<_>>().len() > 2, "{t}: events in several blocks");
            if t == "encounters" {
                let ids = strings(&path, "Id");
                encounter_person = ids.into_iter().map(Option::unwrap).zip(refs.iter().cloned()).collect();
                assert_eq!(encounter_person.len(), refs.len(), "encounter keys repeat across blocks");
            } else {
                // An event-to-event reference is a row of the same person.
                for (enc, p) in strings(&path, "ENCOUNTER").into_iter().zip(&refs) {
                    let enc = enc.expect("ENCOUNTER is not nullable");
                    assert_eq!(encounter_person.get(&enc), Some(p), "{t}: encounter of another person");
                }
            }
        }

        // Every block has the columns of the schema written beside the tables.
        let written = out.join("schema.yaml");
        let r = privsynth(&["schema", "check", path_str(&out), "--schema", path_str(&written)]);
        assert_eq!(r.code, 0, "{format:?}:\n{}{}", r.stdout, r.stderr);
    }
}

#[test]
fn blocks_are_deterministic_for_a_seed_and_one_block_is_the_whole_table_sample() {
    let dir = tempfile::tempdir().unwrap();
    let m = fitted(dir.path());
    let read_all = |out: &Path| -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(out)
            .unwrap()
            .flatten()
            .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
            .collect();
        files.sort();
        files
    };
    let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
    write(&m, 40, 9, 7, &a, TableFormat::Csv);
    write(&m, 40, 9, 7, &b, TableFormat::Csv);
    write(&m, 40, 9, 8, &c, TableFormat::Csv);
    assert_eq!(read_all(&a), read_all(&b), "same seed, same files");
    assert_ne!(read_all(&a), read_all(&c), "another seed, other files");

    // One block of every person draws exactly what the whole-table sampler draws.
    let one = dir.path().join("one");
    write(&m, 40, 40, 7, &one, TableFormat::Csv);
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(7);
    let whole = privsynth::ehr::sample::sample(&m, "test model", Some(40), &mut rng).unwrap();
    for (name, df) in whole.tables() {
        let path = table_path(&one, name, TableFormat::Csv);
        let written = privsynth::data::read(&path, &Default::default(), None).unwrap();
        assert_eq!(written.df.height(), df.height(), "{name}");
        let key = if name == "patients" { "Id" } else { "PATIENT" };
        let want: Vec<Option<String>> =
            df.column(key).unwrap().str().unwrap().iter().map(|v| v.map(str::to_owned)).collect();
        assert_eq!(strings(&path, key), want, "{name}");
    }
}

#[test]
fn the_llm_stage_writes_the_text_columns_of_every_block() {
    let dir = tempfile::tempdir().unwrap();
    let m = fitted(dir.path());
    let server = FakeLlm::start();
    let mut llm = privsynth::llm::StageOptions::default();
    llm.connect.url = Some(server.url.clone());
    llm.connect.model = Some("fake-model".into());
    llm.connect.cache = None;
    llm.batch = 25;
    let client = llm.prepare_linked().unwrap();
    let out = dir.path().join("out");
    let (persons, block) = (5, 2);
    write_linked_in(
        &m,
        "test model",
        Some(persons),
        3,
        (&out, how(TableFormat::Csv)),
        block,
        &Silent,
        (&llm, client.as_ref()),
    )
    .unwrap();
    // CITY and DESCRIPTION are text columns that may not be empty: written in every block.
    let city = strings(&out.join("patients.csv"), "CITY");
    assert_eq!(city.len(), persons);
    assert!(city.iter().all(Option::is_some), "{city:?}");
    let desc = strings(&out.join("encounters.csv"), "DESCRIPTION");
    assert!(!desc.is_empty() && desc.iter().all(Option::is_some));
    // The person prompts of three blocks (2 + 2 + 1 persons) are separate requests.
    let person_requests = server.requests().iter().filter(|r| r.body.contains("CITY")).count();
    assert!(person_requests >= 3, "{person_requests} requests name CITY");
    let r = privsynth(&["schema", "check", path_str(&out), "--schema", path_str(&out.join("schema.yaml"))]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}
