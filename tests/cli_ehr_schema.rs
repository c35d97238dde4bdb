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
                let keyish = c.name == "Id" || c.name.ends_with("_id") || ["PATIENT", "ENCOUNTER", "SSN", "FIRST", "LAST", "ADDRESS", "ZIP", "LAT", "LON"].contains(&c.name.as_str());
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
                assert!(col.fake.is_some() && col.role == Role::Identifier && col.kind == ColumnType::Identifier, "{schema}: {c}");
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
            let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap_or_else(|_| panic!("{file}: {}", r.stderr));
            // The one known finding: SUFFIX is empty in every row of the 27 MA patients.
            let expected = if file == "data/ehr/synthea27-ma/patients.csv" { 1 } else { 0 };
            assert_eq!(report["findings"], expected, "{file} against {schema}:\n{}", r.stdout);
        }
    }
}
