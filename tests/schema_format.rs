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
    for f in ["adult.yaml", "adult-pgm.yaml", "heart.yaml", "synthea-patients.yaml"] {
        let t = std::fs::read_to_string(root().join("schemas").join(f)).unwrap();
        Schema::from_yaml(&t, f).unwrap();
        texts.push((f.to_string(), t));
    }
    let r = privsynth(&["schema", "from-domain", "data/private-pgm/adult-domain.json"]);
    texts.push(("from-domain".into(), r.stdout));
    let dir = tempfile::tempdir().unwrap();
    for data in ["data/adult/adult.csv", "data/synthea/patients.csv"] {
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
    ] {
        assert!(Schema::from_yaml(bad, "bad").is_err(), "Rust accepts {bad}");
        assert!(!errors(&v, bad).is_empty(), "JSON Schema accepts {bad}");
    }
}
