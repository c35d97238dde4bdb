//! End-to-end: the three schema commands on every bundled table.

mod common;
use common::{path_str, privsynth};

use privsynth::schema::{ColumnType, DomainSource, Role, Schema};

const BUNDLED: &[(&str, &str)] = &[
    ("data/adult/adult.csv", "schemas/adult.yaml"),
    ("data/adult/adult_test.csv", "schemas/adult.yaml"),
    ("data/private-pgm/adult.csv", "schemas/adult-pgm.yaml"),
    ("data/uci-heart-disease/processed.cleveland.data", "schemas/heart.yaml"),
    ("data/synthea/patients.csv", "schemas/synthea-patients.yaml"),
];

#[test]
fn bundled_tables_fit_their_schemas() {
    for (data, schema) in BUNDLED {
        let r = privsynth(&["schema", "check", data, "--schema", schema, "--json"]);
        assert_eq!(r.code, 0, "{data} against {schema}:\n{}\n{}", r.stdout, r.stderr);
        let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(report["findings"], 0);
        assert!(report["rows"].as_u64().unwrap() > 100);
        // Bundled schemas state public domains only: no override warning.
        assert!(!r.stderr.contains("source: data"), "{}", r.stderr);
        let s = Schema::load(&common::root().join(schema)).unwrap();
        assert_eq!(s.ensure_public_domains(schema, false).unwrap(), None);
    }
}

#[test]
fn check_reports_known_nulls_of_adult() {
    let r = privsynth(&["schema", "check", "data/adult/adult.csv", "--schema", "schemas/adult.yaml", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let nulls = |name: &str| {
        report["columns"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap()["nulls"].as_u64().unwrap()
    };
    // Documented in data/SOURCES.md: the `?` cells of the UCI file, mapped to empty.
    assert_eq!((nulls("workclass"), nulls("occupation"), nulls("native_country"), nulls("age")), (1836, 1843, 583, 0));
}

#[test]
fn infer_proposes_a_reviewable_schema_for_every_bundled_table() {
    let dir = tempfile::tempdir().unwrap();
    for (data, _) in BUNDLED {
        let out = dir.path().join("proposed.yaml");
        let mut args = vec!["schema", "infer", data, "-o", path_str(&out)];
        if data.ends_with(".data") {
            args.push("--no-header");
        }
        let r = privsynth(&args);
        assert_eq!(r.code, 0, "{data}: {}", r.stderr);
        assert!(
            r.stderr.contains("source: data") && r.stderr.contains("review"),
            "the leak warning is printed: {}",
            r.stderr
        );
        let s = Schema::load(&out).unwrap();
        let t = s.table(None).unwrap();
        // Every domain read from the data is marked, and DP fitting refuses the schema.
        assert!(t.columns.iter().filter_map(|c| c.domain.as_ref()).all(|d| d.source == DomainSource::Data));
        assert!(s.ensure_public_domains("proposed.yaml", false).is_err());
        // The proposal describes the data it came from.
        let r = privsynth(&["schema", "check", data, "--schema", path_str(&out)]);
        assert_eq!(r.code, 0, "{data} fails its own inferred schema:\n{}", r.stdout);
        assert!(r.stderr.contains("DP guarantee does NOT hold"), "check warns about data domains: {}", r.stderr);
    }
}

#[test]
fn infer_finds_types_and_identifiers() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("patients.yaml");
    let r = privsynth(&["schema", "infer", "data/synthea/patients.csv", "-o", path_str(&out)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let s = Schema::load(&out).unwrap();
    let t = s.table(None).unwrap();
    let col = |n: &str| t.column(n).unwrap();
    for id in ["Id", "SSN", "FIRST", "LAST", "ADDRESS", "LAT", "LON", "PASSPORT", "DRIVERS"] {
        assert_eq!((col(id).kind, col(id).role), (ColumnType::Identifier, Role::Identifier), "{id}");
    }
    assert_eq!(col("BIRTHDATE").kind, ColumnType::Date);
    assert_eq!(col("BIRTHDATE").role, Role::QuasiIdentifier);
    assert!(col("DEATHDATE").nullable);
    assert_eq!(col("GENDER").kind, ColumnType::Categorical);
    assert_eq!(col("HEALTHCARE_EXPENSES").kind, ColumnType::Float);
    assert_eq!(col("INCOME").kind, ColumnType::Integer);
    assert!(r.stderr.contains("SSN-like") && r.stderr.contains("UUIDs"), "{}", r.stderr);

    let out = dir.path().join("heart.yaml");
    let r = privsynth(&[
        "schema",
        "infer",
        "data/uci-heart-disease/processed.cleveland.data",
        "--no-header",
        "-o",
        path_str(&out),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let s = Schema::load(&out).unwrap();
    let t = s.table(None).unwrap();
    assert_eq!(t.columns.len(), 14);
    // "63.0" is an integer; "2.3" a float with one decimal; `?` is a missing token.
    assert_eq!(t.columns[0].kind, ColumnType::Integer);
    assert_eq!((t.columns[9].kind, t.columns[9].precision), (ColumnType::Float, Some(1)));
    assert_eq!((t.columns[11].nullable, t.columns[11].missing_values.clone()), (true, vec!["?".to_string()]));
}

#[test]
fn from_domain_converts_private_pgm_adult() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pgm.yaml");
    let r = privsynth(&["schema", "from-domain", "data/private-pgm/adult-domain.json", "-o", path_str(&out)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let s = Schema::load(&out).unwrap();
    let t = s.table(None).unwrap();
    assert_eq!(t.name, "adult");
    assert_eq!(t.columns.len(), 14);
    let codec = privsynth::codec::TableCodec::new(t).unwrap();
    let sizes: Vec<usize> = codec.columns.iter().map(|c| c.size()).collect();
    assert_eq!(sizes, [85, 9, 100, 16, 7, 15, 6, 5, 2, 100, 100, 99, 42, 2]);
    let r = privsynth(&["schema", "check", "data/private-pgm/adult.csv", "--schema", path_str(&out)]);
    assert_eq!(r.code, 0, "{}", r.stdout);
}

#[test]
fn check_finds_and_locates_bad_cells() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("bad.csv");
    let text = std::fs::read_to_string(common::root().join("data/adult/adult.csv")).unwrap();
    let mut lines: Vec<String> = text.lines().take(50).map(str::to_string).collect();
    lines[10] = lines[10].replacen(|c: char| c.is_ascii_digit(), "x", 1); // age "x9" on data row 10
    let mut fields: Vec<&str> = lines[20].split(',').collect();
    fields[1] = "Privat"; // workclass: not a category
    lines[20] = fields.join(",");
    lines[30] = lines[30].replace(",Male,", ",,"); // sex missing
    std::fs::write(&data, lines.join("\n") + "\n").unwrap();
    let r = privsynth(&["schema", "check", path_str(&data), "--schema", "schemas/adult.yaml"]);
    assert_eq!(r.code, 1, "findings exit 1:\n{}", r.stdout);
    for needle in [
        "row 10 (line 11), column \"age\": value",
        "is not of the column's type; expected an integer in [17, 90]",
        "row 20 (line 21), column \"workclass\": value \"Privat\" is outside the declared domain",
        "row 30 (line 31), column \"sex\"",
        "missing in a column that is not nullable",
        "result: 3 finding(s)",
    ] {
        assert!(r.stdout.contains(needle), "missing {needle:?} in:\n{}", r.stdout);
    }
}
