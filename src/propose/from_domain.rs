//! `schema from-domain`: a private-pgm style `domain.json` (column -> size, values coded
//! `0..size-1`) as a schema, so privsynth runs on the benchmark tables the peers use.

use std::path::Path;

use super::infer;
use crate::error::{Error, Result};
use crate::schema::{Column, ColumnType, CsvFormat, Domain, DomainSource, Schema, Table};

/// Convert a domain file. Its sizes are published with the benchmark, so they are public.
pub fn from_domain_file(path: &Path, table_name: &str) -> Result<Schema> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
        .map_err(|e| Error::data(&origin, format!("is not a JSON object of column -> domain size: {e}")))?;
    if map.is_empty() {
        return Err(Error::data(&origin, "lists no columns"));
    }
    let columns = map
        .iter()
        .map(|(name, v)| {
            let size = v.as_u64().filter(|&s| s >= 1).ok_or_else(|| {
                Error::column(&origin, name, format!("domain size must be a positive integer, got {v}"))
            })?;
            Ok(Column {
                name: name.clone(),
                kind: ColumnType::Integer,
                role: infer::role_by_name(name).unwrap_or_default(),
                nullable: false,
                description: Some(format!("Code 0..{} of a discretised attribute (from {origin}).", size - 1)),
                unit: None,
                missing_values: vec![],
                out_of_domain: None,
                format: None,
                precision: None,
                domain: Some(Domain {
                    bounds: Some(vec!["0".into(), (size - 1).to_string()]),
                    source: DomainSource::Public,
                    ..Domain::default()
                }),
                llm: None,
                timezone: None,
                fake: None,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let table = Table::new(
        table_name,
        Some(format!("Integer-coded table described by {origin}.")),
        CsvFormat::default(),
        columns,
    );
    let schema = Schema::single(table, &origin)?;
    Ok(schema)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_sizes_in_file_order() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("domain.json");
        std::fs::write(&p, r#"{"zeta": 3, "age": 85, "sex": 2}"#).unwrap();
        let s = from_domain_file(&p, "t").unwrap();
        let t = s.table(None).unwrap();
        let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["zeta", "age", "sex"]);
        let codec = crate::codec::TableCodec::new(t).unwrap();
        assert_eq!(codec.columns.iter().map(|c| c.size()).collect::<Vec<_>>(), [3, 85, 2]);
        std::fs::write(&p, r#"{"a": 0}"#).unwrap();
        assert!(from_domain_file(&p, "t").unwrap_err().to_string().contains("positive integer"));
    }
}
