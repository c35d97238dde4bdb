//! Fuzzing with proptest: the schema loader, the CSV structure pass (and the reader after it)
//! and the model-file loader take arbitrary and mutated input and return a result, never
//! panic. The suite runs a few hundred cases (PROPTEST_CASES raises it:
//! `benchmarks/run_fuzz.sh` runs tens of thousands).

use proptest::prelude::*;

use privsynth::data;
use privsynth::model::file::ModelFile;
use privsynth::schema::{CsvFormat, Schema};

const SCHEMA: &str = "version: 1
tables:
  - name: t
    missing_values: ['?']
    columns:
      - {name: a, type: integer, domain: {bounds: [0, 99], bins: 10}}
      - {name: b, type: categorical, nullable: true, domain: {categories: [x, y, z]}}
      - {name: c, type: float, precision: 2, domain: {bounds: [-1.5, 2.5], edges: [-1.5, 0, 2.5]}}
      - {name: d, type: date, format: '%d/%m/%Y', domain: {bounds: ['2020-01-01', '2020-12-31'], granularity: month}}
      - {name: e, type: text, llm: {prompt: 'note on {name}', max_chars: 40}}
    workload: [{columns: [a, b], weight: 2}]
    constraints:
      - {kind: range, column: a, min: 1, max: 90, status: reviewed}
      - {kind: forbid, when: {b: x, a: [0, 5]}, status: proposed}
";

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A text with some of its bytes replaced, some slices cut and some repeated.
fn mutated(base: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let len = base.len();
    prop::collection::vec((0..len, any::<u8>(), 0u8..4), 0..12).prop_map(move |edits| {
        let mut b = base.as_bytes().to_vec();
        for (at, byte, op) in edits {
            let at = at.min(b.len().saturating_sub(1));
            match op {
                0 if !b.is_empty() => b[at] = byte,
                1 if !b.is_empty() => {
                    let end = (at + byte as usize % 16).min(b.len());
                    b.drain(at..end);
                }
                2 => {
                    let end = (at + byte as usize % 16).min(b.len());
                    let piece = b[at..end].to_vec();
                    b.splice(at..at, piece);
                }
                _ => b.insert(at.min(b.len()), byte),
            }
        }
        b
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn schema_loader_never_panics(bytes in prop_oneof![mutated(SCHEMA), prop::collection::vec(any::<u8>(), 0..400)]) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = Schema::from_yaml(&text, "fuzz.yaml");
    }

    #[test]
    fn csv_structure_pass_and_reader_never_panic(
        bytes in prop_oneof![
            mutated("a,b,c\n1,x,\"q\"\"r\"\n2,y,\"multi\nline\"\r\n3,z,\n"),
            prop::collection::vec(prop::sample::select(vec![b'a', b'1', b',', b'"', b'\n', b'\r', b';', b' ', 0xc3, 0xa9, 0xff]), 0..200),
        ],
        header in any::<bool>(),
    ) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f.csv");
        std::fs::write(&p, &bytes).unwrap();
        let csv = CsvFormat { delimiter: b',', header };
        if data::scan_csv(&p, &csv, data::Show::Nothing).is_ok() {
            let _ = data::read(&p, &csv, None);
        }
    }
}

/// A real model file, fitted once.
fn model_json() -> &'static str {
    static MODEL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    MODEL.get_or_init(|| {
        use privsynth::pipeline::{FitOptions, Plan};
        use privsynth::mechanism::Mechanism;
        let s = Schema::from_yaml("version: 1\ntables: [{name: t, columns: [{name: a, type: integer, domain: {bounds: [0, 9]}}, {name: b, type: categorical, domain: {categories: [x, y]}}]}]", "m").unwrap();
        let plan = Plan::new(&s, s.tables[0].clone(), FitOptions { mechanism: Mechanism::Mst, iterations: 20, ..Default::default() }, "m").unwrap();
        let df = polars::prelude::df!["a" => ["1", "2", "3", "4"], "b" => ["x", "y", "x", "y"]].unwrap();
        let raw = data::RawTable::in_memory("m.csv", df);
        let rows = plan.rows(&raw, None).unwrap();
        let mut budget = privsynth_privacy::Budget::from_epsilon_delta(1.0, 1e-9).unwrap();
        let fitted = plan.fit(&rows.encoded, &mut budget).unwrap();
        plan.model(&fitted, &budget, 1e-9).to_json().unwrap()
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn model_loader_never_panics(edits in prop::collection::vec((0usize..100_000, prop::sample::select(vec!["0", "-1", "1e300", "NaN", "[]", "[0,9]", "\"x\"", "null", "4096", "18446744073709551615"])), 1..4)) {
        // Replace numbers and arrays of the model with hostile values, then load and sample.
        let mut text = model_json().to_string();
        for (at, value) in edits {
            let starts: Vec<usize> = text.char_indices().filter(|(_, c)| c.is_ascii_digit() || *c == '[').map(|(i, _)| i).collect();
            let i = starts[at % starts.len()];
            let end = text[i..].find([',', '}', ']']).map_or(text.len(), |e| i + e.max(1));
            text.replace_range(i..end, value);
        }
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.json");
        std::fs::write(&p, &text).unwrap();
        if let Ok(m) = ModelFile::load(&p) {
            let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1);
            let _ = privsynth::synthetic::SyntheticTable::sample(&m, "fuzz", 20, &mut rng);
        }
    }
}

#[test]
fn the_seeds_are_valid() {
    // Mutations of valid inputs reach the deeper checks; the seeds themselves must load.
    Schema::from_yaml(SCHEMA, "seed.yaml").unwrap();
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("m.json");
    std::fs::write(&p, model_json()).unwrap();
    ModelFile::load(&p).unwrap();
}
