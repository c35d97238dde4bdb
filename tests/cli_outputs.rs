//! What `synth` and `sample` write is what was asked for, and what other tools read: the format is
//! decided from -o/--format before anything is charged, CSV files carry a header line, Parquet and
//! Arrow IPC files use the Arrow types every reader knows (no view types).

mod common;
use common::{path_str, privsynth};

use std::path::Path;

const HEART: &str = "data/uci-heart-disease/processed.cleveland.data";
const HEART_SCHEMA: &str = "schemas/heart.yaml";

/// `synth` of the (headerless) heart table with MST at epsilon 1, written to `out`.
fn synth_heart(out: &Path, ledger: &Path, extra: &[&str]) -> common::Run {
    let mut args = vec![
        "synth",
        HEART,
        "--schema",
        HEART_SCHEMA,
        "--epsilon",
        "1",
        "--mechanism",
        "mst",
        "--seed",
        "3",
        "--rows",
        "303",
        "--ledger",
        path_str(ledger),
        "-q",
        "-o",
        path_str(out),
    ];
    args.extend_from_slice(extra);
    privsynth(&args)
}

fn ledger_lines(p: &Path) -> usize {
    std::fs::read_to_string(p).map(|t| t.lines().filter(|l| !l.trim().is_empty()).count()).unwrap_or(0)
}

#[test]
fn an_output_format_it_cannot_write_is_refused_before_any_charge() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.jsonl");
    for (name, extra, says) in [
        ("out.json", &[][..], "does not write .json"),
        ("out.arrows", &[][..], "does not write .arrows"),
        ("out", &[][..], "no extension"),
        ("out.csv", &["--format", "parquet"][..], "--format asks for Parquet"),
    ] {
        let out = dir.path().join(name);
        let r = synth_heart(&out, &ledger, extra);
        assert_eq!(r.code, 2, "{name}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{name}: {}", r.stderr);
        if extra.is_empty() {
            assert!(r.stderr.contains(".csv, .tsv, .parquet"), "the supported extensions are listed: {}", r.stderr);
        }
        assert!(!out.exists(), "{name} was written");
        assert_eq!(ledger_lines(&ledger), 0, "{name}: the ledger was charged for a refused output");
    }
    // `sample` refuses the same names (it charges nothing, but writes nothing either).
    let model = dir.path().join("m.json");
    let r = privsynth(&[
        "fit",
        HEART,
        "--schema",
        HEART_SCHEMA,
        "--epsilon",
        "1",
        "--mechanism",
        "mst",
        "--ledger",
        path_str(&ledger),
        "-q",
        "-o",
        path_str(&model),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = privsynth(&["sample", path_str(&model), "-o", path_str(&dir.path().join("s.json")), "-q"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("does not write .json"), "{}", r.stderr);
}

#[test]
fn format_is_honoured_for_a_single_table() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.jsonl");
    for (name, format, magic) in
        [("p", "parquet", &b"PAR1"[..]), ("a", "arrow", &b"ARROW1"[..]), ("same.parquet", "parquet", &b"PAR1"[..])]
    {
        let out = dir.path().join(name);
        let r = synth_heart(&out, &ledger, &["--format", format]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let bytes = std::fs::read(&out).unwrap();
        assert!(bytes.starts_with(magic), "{name} is not {format}");
    }
    for (name, magic) in [("x.feather", &b"ARROW1"[..]), ("x.pq", &b"PAR1"[..])] {
        let out = dir.path().join(name);
        assert_eq!(synth_heart(&out, &ledger, &[]).code, 0);
        assert!(std::fs::read(&out).unwrap().starts_with(magic), "{name}");
    }
    // A .tsv output is tab-separated, whatever the input's delimiter.
    let tsv = dir.path().join("x.tsv");
    assert_eq!(synth_heart(&tsv, &ledger, &[]).code, 0);
    let text = std::fs::read_to_string(&tsv).unwrap();
    assert!(text.lines().next().unwrap().starts_with("age\tsex\t"), "{}", &text[..60]);
    // And reads back as tab-separated, though the schema's dialect has commas.
    let r = privsynth(&["schema", "check", path_str(&tsv), "--schema", HEART_SCHEMA]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

#[test]
fn csv_output_has_a_header_also_for_headerless_input_and_still_checks() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.jsonl");
    let out = dir.path().join("heart.csv");
    let r = synth_heart(&out, &ledger, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text = std::fs::read_to_string(&out).unwrap();
    let schema = privsynth::schema::Schema::load(&common::root().join(HEART_SCHEMA)).unwrap();
    let names: Vec<&str> = schema.tables[0].columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(text.lines().next().unwrap(), names.join(","));
    // The schema says "no header"; the check and the audit's reader recognise privsynth's own.
    let r = privsynth(&["schema", "check", path_str(&out), "--schema", HEART_SCHEMA]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("303 rows"), "{}", r.stdout);
    // Asked not to, it writes none, and the file reads as the input did.
    let bare = dir.path().join("bare.csv");
    assert_eq!(synth_heart(&bare, &ledger, &["--no-output-header"]).code, 0);
    let text = std::fs::read_to_string(&bare).unwrap();
    assert!(!text.starts_with("age"), "{}", &text[..40]);
    assert_eq!(text.lines().count(), 303);
    let r = privsynth(&["schema", "check", path_str(&bare), "--schema", HEART_SCHEMA]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

/// The Arrow types of every column of a Parquet footer or an IPC file.
fn arrow_types(path: &Path) -> Vec<(String, polars_arrow::datatypes::ArrowDataType)> {
    let mut f = std::fs::File::open(path).unwrap();
    let schema = if path.extension().is_some_and(|e| e == "parquet") {
        // The footer's ARROW:schema as written (Polars' own reader converts it on reading).
        use base64::Engine;
        let meta = polars_parquet::read::read_metadata(&mut f).unwrap();
        let kv = meta.key_value_metadata.as_ref().expect("key-value metadata");
        let encoded = kv.iter().find(|k| k.key == "ARROW:schema").and_then(|k| k.value.clone()).unwrap();
        let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
        let message = if bytes[..4] == [255; 4] { &bytes[8..] } else { &bytes[..] };
        polars_arrow::io::ipc::read::deserialize_schema(message).unwrap().0
    } else {
        (*polars_arrow::io::ipc::read::read_file_metadata(&mut f).unwrap().schema).clone()
    };
    schema.iter_values().map(|fld| (fld.name.to_string(), fld.dtype.clone())).collect()
}

#[test]
fn parquet_and_ipc_carry_no_view_types() {
    use polars_arrow::datatypes::ArrowDataType as A;
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.jsonl");
    for name in ["t.parquet", "t.arrow"] {
        let out = dir.path().join(name);
        // Synthea patients: text, categories, dates and numbers.
        let r = privsynth(&[
            "synth",
            "data/ehr/synthea-111/patients.csv",
            "--schema",
            "schemas/synthea-patients.yaml",
            "--epsilon",
            "1",
            "--mechanism",
            "mst",
            "--ledger",
            path_str(&ledger),
            "-q",
            "-o",
            path_str(&out),
        ]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let types = arrow_types(&out);
        assert!(types.len() > 5, "{types:?}");
        for (col, t) in &types {
            assert!(!matches!(t, A::Utf8View | A::BinaryView), "{name}: column {col} is written as {t:?}");
        }
        // pyarrow <= 14 reads large_string, not string_view (issue 23).
        assert!(types.iter().any(|(_, t)| *t == A::LargeUtf8), "{name}: {types:?}");
        assert!(types.iter().any(|(_, t)| *t == A::Date32), "{name}: {types:?}");
    }
}

#[test]
fn linked_output_passes_schema_check_against_the_schema_written_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.jsonl");
    for (schema, format) in [("schemas/ehr/synthea-111.yaml", "csv"), ("schemas/ehr/omop-27.yaml", "arrow")] {
        let data = schema.trim_start_matches("schemas/").trim_end_matches(".yaml");
        let out = dir.path().join(format!("out-{format}"));
        let r = privsynth(&[
            "synth",
            &format!("data/{data}"),
            "--schema",
            schema,
            "--epsilon",
            "1",
            "--mechanism",
            "mst",
            "--format",
            format,
            "--seed",
            "5",
            "--ledger",
            path_str(&ledger),
            "-q",
            "-o",
            path_str(&out),
        ]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let written = out.join("schema.yaml");
        // Dates within the schema's bounds, no all-null column, every column the schema names.
        let r = privsynth(&["schema", "check", path_str(&out), "--schema", path_str(&written)]);
        assert_eq!(r.code, 0, "{schema}:\n{}{}", r.stdout, r.stderr);
        // The written schema is the source schema less what was not produced, and says so.
        let src = privsynth::schema::Schema::load(&common::root().join(schema)).unwrap();
        let w = privsynth::schema::Schema::load(&written).unwrap();
        assert_eq!(src.tables.len(), w.tables.len());
        for (a, b) in src.tables.iter().zip(&w.tables) {
            for c in &b.columns {
                assert_eq!(Some(c), a.column(&c.name), "{}.{} changed", a.name, c.name);
            }
            let gone: Vec<&str> =
                a.columns.iter().filter(|c| b.column(&c.name).is_none()).map(|c| c.name.as_str()).collect();
            for g in &gone {
                assert!(b.description.as_deref().unwrap_or("").contains(g), "{}: {g} dropped silently", a.name);
            }
            // A modelled column goes only when it was drawn all-missing (a nullable column of a
            // small table), and the description says so.
            for g in gone.iter().filter(|g| a.column(g).unwrap().is_modelled()) {
                assert!(a.column(g).unwrap().nullable, "{}: non-nullable {g} dropped", a.name);
            }
        }
    }
}

#[test]
fn single_table_output_without_identifiers_has_its_schema_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.csv");
    let r = privsynth(&[
        "synth",
        "data/ehr/synthea-111/patients.csv",
        "--schema",
        "schemas/synthea-patients.yaml",
        "--epsilon",
        "1",
        "--mechanism",
        "mst",
        "--ledger",
        path_str(&dir.path().join("l.jsonl")),
        "-q",
        "-o",
        path_str(&out),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let beside = dir.path().join("p.schema.yaml");
    assert!(r.stderr.contains("p.schema.yaml"), "{}", r.stderr);
    let r = privsynth(&["schema", "check", path_str(&out), "--schema", path_str(&beside)]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    // A table whose every column is produced needs no second schema.
    let heart = dir.path().join("h.csv");
    assert_eq!(synth_heart(&heart, &dir.path().join("l2.jsonl"), &[]).code, 0);
    assert!(!dir.path().join("h.schema.yaml").exists());
}

#[test]
fn linked_junit_reports_and_stdout_blocks_are_named_by_table() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let junit = dir.path().join("a.xml");
    let r = privsynth(&[
        "synth",
        "data/ehr/synthea-111",
        "--schema",
        "schemas/ehr/synthea-111.yaml",
        "--epsilon",
        "1",
        "--mechanism",
        "mst",
        "--seed",
        "5",
        "--audit-holdout",
        "0.25",
        "--junit",
        path_str(&junit),
        "--attacks",
        "200",
        "--ledger",
        path_str(&dir.path().join("l.jsonl")),
        "-q",
        "-o",
        path_str(&out),
    ]);
    assert!(r.code == 0 || r.code == 1, "{}", r.stderr);
    let mut suites = std::collections::HashSet::new();
    let mut classes = std::collections::HashSet::new();
    let mut files = 0;
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let Some(scope) = name.strip_prefix("a.").and_then(|n| n.strip_suffix(".xml")) else { continue };
        files += 1;
        let x = std::fs::read_to_string(&p).unwrap();
        let suite = x.split("<testsuite name=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
        let class = x.split("classname=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
        assert!(suite.starts_with("privsynth-audit."), "{scope}: {suite}");
        assert!(r.stdout.contains(&format!("== audit: {scope} ==")), "stdout block of {scope} not labelled");
        suites.insert(suite);
        classes.insert(class);
    }
    assert!(files >= 3, "{files} JUnit files");
    assert_eq!(suites.len(), files, "suite names collide: {suites:?}");
    assert_eq!(classes.len(), files, "class names collide: {classes:?}");
}

#[test]
fn a_small_attacks_count_audits_without_a_crash() {
    // `--attacks 2` gave the singling-out search a cap of 1,000 tries, under its batch floor of
    // 1,024: `clamp(1024, 1000)` panicked (found by tests/clients/check_outputs.py).
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("h.csv");
    let r = synth_heart(&out, &dir.path().join("l.jsonl"), &["--audit-holdout", "0.3", "--attacks", "2"]);
    assert!(r.code == 0 || r.code == 1, "{}", r.stderr);
    assert!(r.stdout.contains("singling"), "{}", r.stdout);
}

/// A datetime column with `timezone: UTC` (issue 23): values with `Z` or an offset are read as
/// the instants they name, every output keeps the zone (Parquet and IPC: timestamp with time
/// zone "UTC"; CSV: values ending in `Z`) and passes `schema check`; a value without an offset
/// is refused before anything is charged, naming file, row and column but not the value.
#[test]
fn a_datetime_column_with_a_time_zone_keeps_it_in_every_output() {
    use polars_arrow::datatypes::ArrowDataType as A;
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let mut rows = vec!["ts,grp".to_string()];
    for i in 0..300 {
        let (d, h) = (1 + i % 28, i % 24);
        rows.push(if i % 2 == 0 {
            format!("2024-03-{d:02}T{h:02}:15:00Z,a")
        } else {
            format!("2024-03-{d:02} {h:02}:15:00+01:00,b")
        });
    }
    std::fs::write(p("t.csv"), rows.join("\n") + "\n").unwrap();
    std::fs::write(
        p("s.yaml"),
        "version: 1\ntables:\n  - name: t\n    columns:\n      - name: ts\n        type: datetime\n        timezone: UTC\n        \
         domain: {bounds: [\"2024-02-01T00:00:00Z\", \"2024-05-01T00:00:00Z\"], bins: 16}\n      - name: grp\n        \
         type: categorical\n        domain: {categories: [a, b]}\n",
    )
    .unwrap();
    let ledger = p("l.jsonl");
    for ext in ["csv", "parquet", "arrow"] {
        let out = p(&format!("o.{ext}"));
        let r = privsynth(&[
            "synth",
            path_str(&p("t.csv")),
            "--schema",
            path_str(&p("s.yaml")),
            "--epsilon",
            "1",
            "-o",
            path_str(&out),
            "--ledger",
            path_str(&ledger),
            "-q",
        ]);
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        let check = privsynth(&["schema", "check", path_str(&out), "--schema", path_str(&p("s.yaml"))]);
        assert_eq!(check.code, 0, "{ext}: {}{}", check.stdout, check.stderr);
        if ext == "csv" {
            let text = std::fs::read_to_string(&out).unwrap();
            let values: Vec<&str> = text.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
            assert!(!values.is_empty() && values.iter().all(|v| v.ends_with('Z') && v.len() == 20), "{text}");
        } else {
            let types = arrow_types(&out);
            let ts = &types.iter().find(|(n, _)| n == "ts").unwrap().1;
            assert!(matches!(ts, A::Timestamp(_, Some(tz)) if tz.as_str() == "UTC"), "{ext}: ts is {ts:?}");
        }
    }
    // A value without an offset in the middle of the file: refused, nothing charged or written.
    rows.insert(6, "2024-03-05T10:00:00,a".into());
    std::fs::write(p("naive.csv"), rows.join("\n") + "\n").unwrap();
    let before = std::fs::read_to_string(&ledger).unwrap();
    let r = privsynth(&[
        "synth",
        path_str(&p("naive.csv")),
        "--schema",
        path_str(&p("s.yaml")),
        "--epsilon",
        "1",
        "-o",
        path_str(&p("n.csv")),
        "--ledger",
        path_str(&ledger),
        "-q",
    ]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("naive.csv, row 6") && r.stderr.contains("column \"ts\""), "{}", r.stderr);
    assert!(r.stderr.contains("offset") && !r.stderr.contains("2024-03-05T10:00:00"), "{}", r.stderr);
    assert!(!p("n.csv").exists());
    assert_eq!(std::fs::read_to_string(&ledger).unwrap(), before, "charged for a refused input");
    // The schema refuses a zone other than UTC and a zone on a column that is not a datetime.
    for (bad, want) in [
        ("timezone: Europe/Paris", "is not supported"),
        ("timezone: UTC\n        format: \"%Y\"", "do not go together"),
    ] {
        let y = std::fs::read_to_string(p("s.yaml")).unwrap().replace("timezone: UTC", bad);
        std::fs::write(p("bad.yaml"), y).unwrap();
        let r = privsynth(&["schema", "check", path_str(&p("t.csv")), "--schema", path_str(&p("bad.yaml"))]);
        assert_eq!(r.code, 2, "{bad}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains(want), "{bad}: {}", r.stderr);
    }
}
