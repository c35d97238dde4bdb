//! The published JSON Schema of the schema format agrees with the Rust types: every schema the
//! tool accepts or writes validates, and invalid ones are rejected by both.

mod common;
use common::{path_str, privsynth, root};

use privsynth::schema::Schema;

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(root().join("schemas/schema-format.schema.json")).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

fn as_json(yaml: &str) -> serde_json::Value {
    serde_yaml_ng::from_str(yaml).unwrap()
}

fn errors(v: &jsonschema::Validator, yaml: &str) -> Vec<String> {
    v.iter_errors(&as_json(yaml)).map(|e| format!("{} at {}", e, e.instance_path())).collect()
}

#[test]
fn bundled_and_generated_schemas_validate() {
    let v = validator();
    let mut texts = vec![];
    for f in [
        "adult.yaml",
        "adult-pgm.yaml",
        "heart.yaml",
        "synthea-patients.yaml",
        "ehr/synthea-111.yaml",
        "ehr/omop-27.yaml",
        "ehr/synthea27-ma.yaml",
    ] {
        let t = std::fs::read_to_string(root().join("schemas").join(f)).unwrap();
        Schema::from_yaml(&t, f).unwrap();
        texts.push((f.to_string(), t));
    }
    let r = privsynth(&["schema", "from-domain", "data/private-pgm/adult-domain.json"]);
    texts.push(("from-domain".into(), r.stdout));
    let dir = tempfile::tempdir().unwrap();
    for data in ["data/adult/adult.csv", "data/synthea/patients.csv", "data/ehr/synthea-111", "data/ehr/omop-27"] {
        let out = dir.path().join("p.yaml");
        assert_eq!(privsynth(&["schema", "infer", data, "-o", path_str(&out)]).code, 0);
        texts.push((data.to_string(), std::fs::read_to_string(&out).unwrap()));
    }
    for (name, t) in texts {
        let e = errors(&v, &t);
        assert!(e.is_empty(), "{name} does not validate against schema-format.schema.json:\n{}", e.join("\n"));
    }
}

#[test]
fn invalid_schemas_are_rejected_by_both() {
    let v = validator();
    for bad in [
        "version: 1\ntables: [{name: t, columns: [{name: a, type: number}]}]",
        "version: 1\ntables: [{name: t, colums: []}]",
        "version: 1\ntables: [{name: t, columns: [{name: a, type: categorical}]}]",
        "version: 1\ntables: [{name: t, columns: [{name: a, type: categorical, out_of_domain: clip, domain: {categories: [x]}}]}]",
        "version: 1\ntables: [{name: t, columns: [{name: a, type: float, domain: {bounds: [0, 1]}}]}]",
        "version: 1\ntables: [{name: t, columns: [{name: a, type: integer, role: boss, domain: {bounds: [0, 1]}}]}]",
        "version: 1\ntables: [{name: t, columns: [{name: a, type: date, domain: {bounds: [2020-01-01, 2021-01-01], granularity: fortnight}}]}]",
        "version: 1\ntables: [{name: t, columns: [{name: a, type: categorical, out_of_domain: null, domain: {categories: [x]}}]}]",
        "version: 1\ntables: [{name: t, columns: [{name: a, type: categorical, fake: ssn, domain: {categories: [x]}}]}]",
        "version: 1\ntables: [{name: t, columns: [{name: a, type: identifier, fake: passport}]}]",
        "version: 1\nperson: {table: t}\ntables: [{name: t, columns: [{name: a, type: identifier}]}]",
        "version: 1\nperson: {table: p, key: id}\ntables: [{name: p, columns: [{name: id, type: identifier}]}, {name: e, foreign_keys: [{column: pid, references: p}], events: {rows_per_person: 0, time: d}, columns: [{name: pid, type: identifier}, {name: d, type: date, domain: {bounds: [\"2000-01-01\", \"2001-01-01\"], granularity: year}}]}]",
        "version: 1\nperson: {table: p, key: id}\ntables: [{name: p, columns: [{name: id, type: identifier}]}, {name: e, foreign_keys: [{column: pid, references: p}], events: {rows_per_person: 5, time: d, duration_unit: weeks}, columns: [{name: pid, type: identifier}, {name: d, type: date, domain: {bounds: [\"2000-01-01\", \"2001-01-01\"], granularity: year}}]}]",
    ] {
        assert!(Schema::from_yaml(bad, "bad").is_err(), "Rust accepts {bad}");
        assert!(!errors(&v, bad).is_empty(), "JSON Schema accepts {bad}");
    }
}

/// A table with text-column LLM specs and every kind of rule.
const WITH_LLM_AND_RULES: &str = r#"
version: 1
tables:
  - name: visits
    columns:
      - {name: sex, type: categorical, domain: {categories: [F, M]}}
      - {name: pregnant, type: boolean}
      - {name: age, type: integer, domain: {bounds: [0, 110], bins: 11}}
      - {name: admitted, type: date, domain: {bounds: ["2020-01-01", "2020-12-31"], granularity: month}}
      - {name: discharged, type: date, nullable: true, domain: {bounds: ["2020-01-01", "2021-01-31"], granularity: month}}
      - name: reason
        type: text
        description: Reason for the visit, as the admitting clinician noted it.
        llm: {prompt: "Write the {name}: {description}", max_chars: 120, context: [sex, age]}
      - {name: note, type: text, nullable: true, llm: {}}
    constraints:
      - {kind: order, before: admitted, after: discharged, status: reviewed}
      - {kind: order, before: admitted, after: discharged, strict: true, status: rejected, note: same-day discharges happen}
      - {kind: range, column: age, min: 12, status: proposed}
      - {kind: range, column: admitted, max: "2020-11-30"}
      - {kind: forbid, when: {sex: M, pregnant: true}, note: "proposed by a model: biology"}
      - {kind: forbid, when: {age: [0, 11], pregnant: true}, status: reviewed}
"#;

#[test]
fn llm_specs_and_constraints_validate_as_written_by_the_tool() {
    let v = validator();
    let s = Schema::from_yaml(WITH_LLM_AND_RULES, "rules.yaml").unwrap();
    let written = s.to_yaml().unwrap();
    assert_eq!(Schema::from_yaml(&written, "written").unwrap(), s, "round trip");
    for (name, text) in [("hand-written", WITH_LLM_AND_RULES), ("written by the tool", written.as_str())] {
        let e = errors(&v, text);
        assert!(e.is_empty(), "{name} does not validate:\n{}", e.join("\n"));
    }
    let bad_cases = [
        (
            "      - {kind: range, column: age, min: 12, status: proposed}",
            "      - {kind: between, column: age, min: 12}",
        ),
        ("      - {kind: range, column: age, min: 12, status: proposed}", "      - {kind: range, column: age}"),
        (
            "      - {kind: range, column: age, min: 12, status: proposed}",
            "      - {kind: range, column: age, min: 12, status: approved}",
        ),
        (
            "      - {kind: range, column: age, min: 12, status: proposed}",
            "      - {kind: forbid, when: {age: [0, 5, 9]}}",
        ),
        ("      - {kind: range, column: age, min: 12, status: proposed}", "      - {kind: forbid, when: {}}"),
        ("      - {kind: range, column: age, min: 12, status: proposed}", "      - {kind: order, before: admitted}"),
        (
            "{name: note, type: text, nullable: true, llm: {}}",
            "{name: note, type: categorical, domain: {categories: [a]}, llm: {}}",
        ),
        ("{name: note, type: text, nullable: true, llm: {}}", "{name: note, type: text, role: identifier, llm: {}}"),
        ("{name: note, type: text, nullable: true, llm: {}}", "{name: note, type: text, llm: {max_chars: 0}}"),
        ("{name: note, type: text, nullable: true, llm: {}}", "{name: note, type: text, llm: {temperature: 1}}"),
        ("{name: pregnant, type: boolean}", "{name: pregnant, type: boolean, domain: {categories: [y, n]}}"),
    ];
    for (from, to) in bad_cases {
        let bad = WITH_LLM_AND_RULES.replace(from, to);
        assert_ne!(bad, WITH_LLM_AND_RULES, "{to}");
        assert!(Schema::from_yaml(&bad, "bad").is_err(), "Rust accepts {to}");
        assert!(!errors(&v, &bad).is_empty(), "JSON Schema accepts {to}");
    }
    // What only privsynth can check: columns and values the rules name, placeholders.
    for (from, to, needle) in [
        (
            "{kind: forbid, when: {sex: M, pregnant: true}",
            "{kind: forbid, when: {sex: X, pregnant: true}",
            "constraint 5 (forbid",
        ),
        (
            "before: admitted, after: discharged, status: reviewed",
            "before: admitted, after: dischrged, status: reviewed",
            "constraint 1 (order",
        ),
        ("Write the {name}: {description}", "Write the {column}", "unknown placeholder \"{column}\""),
        ("context: [sex, age]", "context: [sex, reason]", "llm.context: \"reason\" is not a modelled column"),
    ] {
        let bad = WITH_LLM_AND_RULES.replace(from, to);
        assert_ne!(bad, WITH_LLM_AND_RULES, "{to}");
        let e = Schema::from_yaml(&bad, "bad").unwrap_err().to_string();
        assert!(e.contains(needle), "expected {needle:?} in {e}");
    }
}
