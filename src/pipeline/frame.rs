//! Tables handed over in memory (a data frame from the Python package) rather than read from a
//! file: the checks a file reader makes on the header, the column types privsynth reads, and
//! the fingerprint that names the dataset in the ledger.

use std::collections::HashMap;

use polars::prelude::*;
use sha2::{Digest, Sha256};

use crate::data::RawTable;
use crate::ehr;
use crate::error::{Error, Result};
use crate::schema::{Schema, Table};

/// Whether privsynth reads a column of this type (what a Parquet or IPC file may hold).
fn readable(dt: &DataType) -> bool {
    dt.is_primitive_numeric()
        || matches!(
            dt,
            DataType::Boolean
                | DataType::String
                | DataType::Date
                | DataType::Datetime(_, _)
                | DataType::Null
                | DataType::Categorical(_, _)
                | DataType::Enum(_, _)
                | DataType::Decimal(_, _)
        )
}

/// Check a frame's header and column types: unique, non-empty names; only types privsynth
/// reads. Categorical columns become text (the schema decides the categories). Errors name the
/// column, never a value.
pub fn check_frame(raw: RawTable) -> Result<RawTable> {
    let mut seen = std::collections::HashSet::new();
    let mut columns = Vec::with_capacity(raw.df.width());
    for (i, c) in raw.df.columns().iter().enumerate() {
        let name = c.name().as_str();
        if name.trim().is_empty() {
            return Err(Error::data(&raw.file, format!("column {} has an empty name", i + 1)));
        }
        if !seen.insert(name.to_string()) {
            return Err(Error::column(&raw.file, name, "appears twice; column names must be unique"));
        }
        if !readable(c.dtype()) {
            return Err(Error::column(
                &raw.file,
                name,
                format!(
                    "has type {} which privsynth does not read (use numbers, text, booleans, categories, dates or datetimes)",
                    c.dtype()
                ),
            ));
        }
        columns.push(match c.dtype() {
            DataType::Categorical(_, _) | DataType::Enum(_, _) => {
                c.cast(&DataType::String).map_err(|_| Error::unreadable_column(&raw.file, name, "text", c.dtype()))?
            }
            _ => c.clone(),
        });
    }
    let df = DataFrame::new(raw.df.height(), columns).map_err(Error::polars)?;
    Ok(RawTable::in_memory(&raw.file, df))
}

/// A checked frame for a table of a schema: every column the schema names must be there.
pub fn frame_for_table(raw: RawTable, table: &Table) -> Result<RawTable> {
    let raw = check_frame(raw)?;
    let have = raw.column_names();
    let missing: Vec<&str> =
        table.columns.iter().map(|c| c.name.as_str()).filter(|n| !have.iter().any(|h| h == n)).collect();
    if let Some(first) = missing.first() {
        return Err(Error::Data {
            file: raw.file.clone(),
            row: None,
            line: None,
            column: Some(first.to_string()),
            message: format!(
                "{} column(s) named in the schema for table {:?} are absent from the frame: {}",
                missing.len(),
                table.name,
                missing.join(", ")
            ),
        });
    }
    Ok(raw)
}

/// The ledger's name for a table in memory: a SHA-256 over its column names and cells, each
/// cell as text (categorical cells by their label), so that the same table arriving as a
/// pandas, polars or Arrow frame, in one chunk or many, is one dataset. A file is fingerprinted
/// by its bytes instead, so a frame and the file it was read from are two datasets in the
/// ledger (as a CSV file and its Parquet copy are).
pub fn frame_fingerprint(raw: &RawTable) -> Result<String> {
    let mut h = Sha256::new();
    h.update(b"privsynth frame v1\0");
    h.update((raw.df.width() as u64).to_le_bytes());
    h.update((raw.df.height() as u64).to_le_bytes());
    for c in raw.df.columns() {
        let name = c.name().as_bytes();
        h.update((name.len() as u64).to_le_bytes());
        h.update(name);
        let text =
            c.cast(&DataType::String).map_err(|_| Error::unreadable_column(&raw.file, c.name(), "text", c.dtype()))?;
        for v in text.str().map_err(Error::polars)?.iter() {
            match v {
                None => h.update([0u8]),
                Some(v) => {
                    h.update([1u8]);
                    h.update((v.len() as u64).to_le_bytes());
                    h.update(v.as_bytes());
                }
            }
        }
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("sha256-frame:{hex}"))
}

/// Linked tables handed over in memory (the Python package's dict of frames), one per table of
/// the schema, each checked as a file would be ([`frame_for_table`]).
pub fn linked_tables(schema: &Schema, mut frames: HashMap<String, RawTable>) -> Result<ehr::Tables> {
    let mut raw = HashMap::new();
    for t in &schema.tables {
        let f = frames.remove(&t.name).ok_or_else(|| {
            Error::Usage(format!("the linked schema's table {:?} has no frame; give one per table", t.name))
        })?;
        raw.insert(t.name.clone(), frame_for_table(f, t)?);
    }
    if let Some(extra) = frames.keys().next() {
        return Err(Error::Usage(format!("frame {extra:?} is not a table of the linked schema")));
    }
    Ok(ehr::Tables::from_raw(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(df: DataFrame) -> RawTable {
        RawTable::in_memory("frame", df)
    }

    #[test]
    fn fingerprint_ignores_chunks_and_categorical_storage_but_not_content() {
        let a = df!("x" => ["a", "b", "c"], "n" => [1i64, 2, 3]).unwrap();
        let mut b = df!("x" => ["a"], "n" => [1i64]).unwrap();
        b.vstack_mut(&df!("x" => ["b", "c"], "n" => [2i64, 3]).unwrap()).unwrap();
        let mut c = a.clone();
        c.with_column(c.column("x").unwrap().cast(&DataType::from_categories(Categories::global())).unwrap().clone())
            .unwrap();
        let d = df!("x" => ["a", "b", "d"], "n" => [1i64, 2, 3]).unwrap();
        let e = df!("x" => [Some("a"), Some("b"), None], "n" => [1i64, 2, 3]).unwrap();
        let f = |df: &DataFrame| frame_fingerprint(&raw(df.clone())).unwrap();
        assert_eq!(f(&a), f(&b));
        assert_eq!(f(&a), f(&c));
        assert_ne!(f(&a), f(&d));
        assert_ne!(f(&a), f(&e));
    }

    #[test]
    fn unreadable_column_is_named() {
        let list = Series::new("l".into(), [Series::new("".into(), [1i32])]);
        let df = DataFrame::new(1, vec![Series::new("x".into(), [1i32]).into(), list.into()]).unwrap();
        match check_frame(raw(df)) {
            Err(Error::Data { column: Some(c), .. }) => assert_eq!(c, "l"),
            other => panic!("expected a column error, got {:?}", other.err()),
        }
    }
}
