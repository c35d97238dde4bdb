//! End-to-end: linked EHR schemas, `schema check` on a folder of tables and `schema infer` on a
//! folder, on the bundled EHR fixtures (data/ehr/).

mod common;
use common::{privsynth, root};

use privsynth::schema::{ColumnType, Role, Schema};

/// (schema, data folder) of every bundled linked schema.
const LINKED: &[(&str, &str)] = &[
    ("schemas/ehr/synthea-111.yaml", "data/ehr/synthea-111"),
    ("schemas/ehr/omop-27.yaml", "data/ehr/omop-27"),
    ("schemas/ehr/synthea27-ma.yaml", "data/ehr/synthea27-ma"),
];

#[test]
fn bundled_linked_schemas_load_and_are_public() {
    for (schema, _) in LINKED {
        let s = Schema::load(&root().join(schema)).unwrap_or_else(|e| panic!("{schema}: {e}"));
        assert!(s.is_linked(), "{schema}");
        assert_eq!(s.ensure_public_domains(schema, false).unwrap(), None, "{schema}: a domain is not public");
        let person = s.person.as_ref().unwrap();
        for t in &s.tables {
            // Every key is an identifier, and so is every column named like an id.
            for c in &t.columns {
                let keyish = c.name == "Id"
                    || c.name.ends_with("_id")
                    || ["PATIENT", "ENCOUNTER", "SSN", "FIRST", "LAST", "ADDRESS", "ZIP", "LAT", "LON"]
                        .contains(&c.name.as_str());
                let concept = c.name.ends_with("concept_id");
                if keyish && !concept {
                    assert!(!c.is_modelled(), "{schema}: {}.{} is modelled", t.name, c.name);
                }
            }
            if t.name != person.table {
                let e = t.events.as_ref().unwrap_or_else(|| panic!("{schema}: {} has no events", t.name));
                assert!(e.rows_per_person >= 1);
            }
        }
        // Fabricated direct identifiers get public generators.
        if let Some(p) = s.tables.iter().find(|t| t.name == "patients") {
            for c in ["SSN", "FIRST", "LAST", "ADDRESS"] {
                let col = p.column(c).unwrap();
                assert!(
                    col.fake.is_some() && col.role == Role::Identifier && col.kind == ColumnType::Identifier,
                    "{schema}: {c}"
                );
            }
        }
    }
}

#[test]
fn every_table_file_passes_the_single_table_check() {
    for (schema, dir) in LINKED {
        let s = Schema::load(&root().join(schema)).unwrap();
        for t in &s.tables {
            let file = format!("{dir}/{}.csv", t.name);
            let r = privsynth(&["schema", "check", &file, "--schema", schema, "--table", &t.name, "--json"]);
            let report: serde_json::Value =
                serde_json::from_str(&r.stdout).unwrap_or_else(|_| panic!("{file}: {}", r.stderr));
            // Known findings of the 27 MA patients: SUFFIX is empty in every row; 75
            // observations have no ENCOUNTER.
            let expected = match file.as_str() {
                "data/ehr/synthea27-ma/patients.csv" => 1,
                "data/ehr/synthea27-ma/observations.csv" => 75,
                _ => 0,
            };
            assert_eq!(report["findings"], expected, "{file} against {schema}:\n{}", r.stdout);
        }
    }
}

#[test]
fn folder_check_reports_missing_encounters_of_ma_observations() {
    let r = privsynth(&["schema", "check", "data/ehr/synthea27-ma", "--schema", "schemas/ehr/synthea27-ma.yaml"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains(
            "observations.ENCOUNTER -> encounters.Id: 990 rows, 0 orphan(s) (0.0%), 75 missing (7.6%)  FINDINGS"
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("data/ehr/synthea27-ma/observations.csv, row 11 (line 12), column \"ENCOUNTER\""),
        "{}",
        r.stdout
    );
    let r =
        privsynth(&["schema", "check", "data/ehr/synthea27-ma", "--schema", "schemas/ehr/synthea27-ma.yaml", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let fk = v["foreign_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["table"] == "observations" && f["column"] == "ENCOUNTER")
        .unwrap();
    assert_eq!((fk["missing"].as_u64(), fk["orphans"].as_u64()), (Some(75), Some(0)));
    assert_eq!(v["findings"], 76);
}

#[test]
fn folder_check_of_clean_fixtures_exits_0() {
    for (schema, dir) in [LINKED[0], LINKED[1]] {
        let r = privsynth(&["schema", "check", dir, "--schema", schema]);
        assert_eq!(r.code, 0, "{dir}:\n{}\n{}", r.stdout, r.stderr);
        assert!(r.stdout.contains("result: the tables fit the schema and their links hold"), "{}", r.stdout);
    }
    // Rows beyond a contribution bound are reported, not counted as findings.
    let r =
        privsynth(&["schema", "check", "data/ehr/synthea-111", "--schema", "schemas/ehr/synthea-111.yaml", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let enc = v["bounds"].as_array().unwrap().iter().find(|b| b["table"] == "encounters").unwrap();
    assert_eq!(
        (enc["persons"].as_u64(), enc["rows"].as_u64(), enc["max_rows_of_a_person"].as_u64()),
        (Some(111), Some(7584), Some(761))
    );
    assert!(enc["persons_above"].as_u64().unwrap() > 0);
}

/// An event table without rows (no person died in a small draw: `synth` on the 27-person OMOP
/// fixture wrote such a `death` table now and then) fits the schema; a person table without
/// rows does not. Failed before with "death.csv: has no data rows".
#[test]
fn folder_check_takes_an_event_table_without_rows() {
    let d = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(root().join("data/ehr/omop-27")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, d.path().join(p.file_name().unwrap())).unwrap();
    }
    let header_only = |name: &str| {
        let f = d.path().join(name);
        let text = std::fs::read_to_string(&f).unwrap();
        std::fs::write(&f, format!("{}\n", text.lines().next().unwrap())).unwrap();
    };
    header_only("death.csv");
    let dir = d.path().to_str().unwrap();
    let r = privsynth(&["schema", "check", dir, "--schema", "schemas/ehr/omop-27.yaml"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("result: the tables fit the schema and their links hold"), "{}", r.stdout);
    header_only("person.csv");
    let r = privsynth(&["schema", "check", dir, "--schema", "schemas/ehr/omop-27.yaml"]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("person.csv") && r.stderr.contains("has no data rows"), "{}", r.stderr);
}

/// A copy of the MA fixture with edited files, in a temp folder.
fn edited_ma(edit: impl Fn(&str, String) -> String) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for f in ["patients", "encounters", "observations"] {
        let text = std::fs::read_to_string(root().join(format!("data/ehr/synthea27-ma/{f}.csv"))).unwrap();
        std::fs::write(d.path().join(format!("{f}.csv")), edit(f, text)).unwrap();
    }
    d
}

#[test]
fn folder_check_finds_orphans_and_duplicate_keys() {
    let first_enc = "57f2562b-445c-f11c-ba40-edc55af3c84f";
    let second_enc = "0622440b-ab3a-87bf-b0d7-f8145ac11cc5";
    let d = edited_ma(|f, text| match f {
        // Line 3 of encounters gets the key of line 2: one duplicate key.
        "encounters" => text.replacen(second_enc, first_enc, 1),
        // Observations that named the second encounter now name no existing one: orphans.
        "observations" => text.replace(second_enc, "00000000-0000-0000-0000-000000000000"),
        _ => text,
    });
    let dir = d.path().to_str().unwrap();
    let r = privsynth(&["schema", "check", dir, "--schema", "schemas/ehr/synthea27-ma.yaml"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("encounters.Id primary key: 604 rows, 0 missing, 1 duplicate  FINDINGS"), "{}", r.stdout);
    assert!(r.stdout.contains("encounters.csv, row 2 (line 3), column \"Id\": value \"57f2562b-445c-f11c-ba40-edc55af3c84f\" is a duplicate primary key"), "{}", r.stdout);
    assert!(r.stdout.contains("observations.csv, row 1 (line 2), column \"ENCOUNTER\": value \"00000000-0000-0000-0000-000000000000\" is not a encounters.Id value (an orphan)"), "{}", r.stdout);
}

#[test]
fn folder_check_bad_inputs_exit_2_naming_what_is_wrong() {
    // A table file missing from the folder.
    let d = edited_ma(|_, t| t);
    std::fs::remove_file(d.path().join("observations.csv")).unwrap();
    let dir = d.path().to_str().unwrap();
    let r = privsynth(&["schema", "check", dir, "--schema", "schemas/ehr/synthea27-ma.yaml"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("observations.csv")
            && r.stderr.contains("does not exist")
            && r.stderr.contains("\"observations\""),
        "{}",
        r.stderr
    );
    // A key column missing from a table file.
    let d = edited_ma(|f, t| if f == "encounters" { t.replacen("Id,START", "Key,START", 1) } else { t });
    let r = privsynth(&["schema", "check", d.path().to_str().unwrap(), "--schema", "schemas/ehr/synthea27-ma.yaml"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("encounters.csv") && r.stderr.contains("Id"), "{}", r.stderr);
    // A foreign key to a table the schema does not have.
    let text = std::fs::read_to_string(root().join("schemas/ehr/synthea27-ma.yaml")).unwrap();
    let bad = text.replace("{column: ENCOUNTER, references: encounters}", "{column: ENCOUNTER, references: visits}");
    assert_ne!(bad, text);
    let s = d.path().join("bad.yaml");
    std::fs::write(&s, bad).unwrap();
    let r = privsynth(&["schema", "check", "data/ehr/synthea27-ma", "--schema", s.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("table \"observations\": foreign key \"ENCOUNTER\" references \"visits\", which is not a table of the schema"), "{}", r.stderr);
    // A folder with a single-table schema, and a folder with --table.
    let r = privsynth(&["schema", "check", "data/ehr/synthea27-ma", "--schema", "schemas/synthea-patients.yaml"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("names no `person` table"), "{}", r.stderr);
    let r = privsynth(&[
        "schema",
        "check",
        "data/ehr/synthea27-ma",
        "--schema",
        "schemas/ehr/synthea27-ma.yaml",
        "--table",
        "patients",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("synthea27-ma/patients.csv"), "{}", r.stderr);
}

#[test]
fn folder_infer_proposes_the_synthea_links_for_review() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("s.yaml");
    let r = privsynth(&["schema", "infer", "data/ehr/synthea-111", "-o", out.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("READ FROM THE PRIVATE DATA") && text.contains("IN THE DATA"), "{text}");
    let s = Schema::from_yaml(&text, "proposal").unwrap();
    let p = s.person.as_ref().unwrap();
    assert_eq!(
        (p.table.as_str(), p.key.as_str(), p.birth.as_deref(), p.death.as_deref()),
        ("patients", "Id", Some("BIRTHDATE"), Some("DEATHDATE"))
    );
    let links = |t: &str| -> Vec<(String, String)> {
        s.tables
            .iter()
            .find(|x| x.name == t)
            .unwrap()
            .foreign_keys
            .iter()
            .map(|f| (f.column.clone(), f.references.clone()))
            .collect()
    };
    let l = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(links("encounters"), vec![l("PATIENT", "patients")]);
    for t in ["conditions", "medications", "procedures"] {
        assert_eq!(links(t), vec![l("PATIENT", "patients"), l("ENCOUNTER", "encounters")], "{t}");
    }
    let enc = s.tables.iter().find(|x| x.name == "encounters").unwrap();
    assert_eq!(enc.primary_key.as_deref(), Some("Id"));
    let e = enc.events.as_ref().unwrap();
    assert_eq!((e.time.as_str(), e.end.as_deref()), ("START", Some("STOP")));
    // The bound is a data quantile: said so, and domains stay marked as read from the data.
    assert!(
        text.contains(&format!("encounters: rows_per_person {} is the 95th percentile", e.rows_per_person)),
        "{text}"
    );
    assert!(!s.data_domain_columns().is_empty());
    assert!(s.ensure_public_domains("proposal", false).is_err());
    // The proposal is usable as it stands by `schema check`.
    let r = privsynth(&["schema", "check", "data/ehr/synthea-111", "--schema", out.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
}

#[test]
fn folder_infer_on_omop_links_by_key_names_not_by_chance() {
    let r = privsynth(&["schema", "infer", "data/ehr/omop-27"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let s = Schema::from_yaml(&r.stdout, "proposal").unwrap();
    assert_eq!(s.person.as_ref().unwrap().table, "person");
    for t in &s.tables {
        for fk in &t.foreign_keys {
            // Integer ids (provider_id, *_concept_id) lie inside 1..n keys by chance: only
            // person_id and visit_occurrence_id are links.
            assert!(
                ["person_id", "visit_occurrence_id"].contains(&fk.column.as_str()),
                "{}.{} -> {}",
                t.name,
                fk.column,
                fk.references
            );
        }
    }
    let death = s.tables.iter().find(|t| t.name == "death").unwrap();
    assert_eq!(death.primary_key, None);
    assert_eq!(death.events.as_ref().unwrap().rows_per_person, 1);
}

#[test]
fn folder_infer_bad_inputs_exit_2() {
    let d = tempfile::tempdir().unwrap();
    let r = privsynth(&["schema", "infer", d.path().to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("holds no table files"), "{}", r.stderr);
    // Unlinked tables: nothing to propose.
    std::fs::write(d.path().join("a.csv"), "x,y\n1,2\n3,4\n").unwrap();
    std::fs::write(d.path().join("b.csv"), "u,v\n5,6\n7,8\n").unwrap();
    let r = privsynth(&["schema", "infer", d.path().to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no table references another"), "{}", r.stderr);
}
