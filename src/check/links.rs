//! `schema check` on a folder of linked tables: every table as [`super::check`] does, plus
//! referential integrity (null and duplicate primary keys, foreign-key values missing from the
//! referenced table) and how many rows the contribution bounds would drop.
//!
//! Like the single-table check, this is an audit the data holder runs on their own data: it
//! prints key values of offending rows (keys are identifiers, but the report is not meant to
//! leave with a release).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use polars::prelude::DataType;
use serde::Serialize;

use super::{self as check, CheckReport};
use crate::data::{self, RawTable};
use crate::error::{Error, Result};
use crate::schema::{CsvFormat, Schema, Table};

#[derive(Debug, Serialize)]
pub struct LinkedReport {
    pub folder: String,
    pub tables: Vec<CheckReport>,
    pub primary_keys: Vec<KeyReport>,
    pub foreign_keys: Vec<ForeignKeyReport>,
    /// Rows beyond each event table's contribution bound (dropped by bounding; not findings).
    pub bounds: Vec<BoundReport>,
    /// Files of the folder that are no table of the schema (not read).
    pub other_files: Vec<String>,
    /// Total findings of the tables and the links; zero means the folder fits the schema.
    pub findings: usize,
}

#[derive(Debug, Serialize)]
pub struct KeyReport {
    pub table: String,
    pub column: String,
    pub file: String,
    pub rows: usize,
    pub nulls: usize,
    /// Rows whose key value already appeared on an earlier row.
    pub duplicates: usize,
    pub examples: Vec<KeyExample>,
}

#[derive(Debug, Serialize)]
pub struct ForeignKeyReport {
    pub table: String,
    pub column: String,
    pub references: String,
    pub referenced_column: String,
    pub file: String,
    pub rows: usize,
    /// Rows whose value is not a key of the referenced table.
    pub orphans: usize,
    /// Rows with no value: they reference no row at all.
    pub missing: usize,
    /// Whether the schema allows missing values in the column.
    pub nullable: bool,
    /// Missing values counted as findings here: in a nullable key to the person table (such a
    /// row belongs to no person). In a column that is not nullable the column check counts them.
    #[serde(skip)]
    missing_findings: usize,
    pub examples: Vec<KeyExample>,
}

#[derive(Debug, Serialize)]
pub struct BoundReport {
    pub table: String,
    pub rows_per_person: u32,
    pub persons: usize,
    pub persons_above: usize,
    pub rows: usize,
    /// Rows beyond the bound, summed over persons: what bounding drops.
    pub rows_dropped: usize,
    pub max_rows_of_a_person: usize,
}

#[derive(Debug, Serialize)]
pub struct KeyExample {
    pub row: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub value: String,
    pub problem: String,
}

impl KeyReport {
    pub fn findings(&self) -> usize {
        self.nulls + self.duplicates
    }
}

impl ForeignKeyReport {
    pub fn findings(&self) -> usize {
        self.orphans + self.missing_findings
    }
}

/// A column's values as text, missing values (empty, or a missing token) as `None`.
fn key_values(raw: &RawTable, table: &Table, column: &str) -> Result<Vec<Option<String>>> {
    let col = table
        .column(column)
        .ok_or_else(|| Error::Internal(format!("validated schema lacks {}.{column}", table.name)))?;
    let tokens: HashSet<&str> = table.missing_tokens(col).collect();
    let s = raw.series(column)?;
    let text = s
        .cast(&DataType::String)
        .map_err(|e| Error::column(&raw.file, column, format!("cannot be read as text: {e}")))?;
    let ca = text.str().map_err(|e| Error::column(&raw.file, column, format!("cannot be read as text: {e}")))?;
    Ok(ca
        .iter()
        .map(|v| v.map(str::trim).filter(|v| !v.is_empty() && !tokens.contains(v)).map(str::to_owned))
        .collect())
}

/// The key column of a table: its primary key, or the person key for the person table.
fn key_of<'a>(schema: &'a Schema, t: &'a Table) -> Option<&'a str> {
    t.primary_key.as_deref().or_else(|| schema.person.as_ref().filter(|p| p.table == t.name).map(|p| p.key.as_str()))
}

/// Check every table of a linked schema, read from `dir`, and the links between them.
/// `csv` overrides each table's dialect (command-line flags); `examples` rows are shown per
/// finding kind.
pub fn check_folder(
    dir: &Path,
    schema: &Schema,
    csv: impl Fn(&CsvFormat) -> CsvFormat,
    examples: usize,
) -> Result<LinkedReport> {
    let person = schema.person.as_ref().ok_or_else(|| {
        Error::Usage(format!(
            "{} is a folder, but the schema names no `person` table: check one table file with --table",
            dir.display()
        ))
    })?;
    if !dir.is_dir() {
        return Err(Error::data(dir.display().to_string(), "is not a folder"));
    }
    // Every file is found before any is read, so a missing one fails fast.
    let files: Vec<(PathBuf, Table)> = schema
        .tables
        .iter()
        .map(|t| {
            let mut t = t.clone();
            t.csv = csv(&t.csv);
            crate::data::table_file(dir, &t.name).map(|p| (p, t))
        })
        .collect::<Result<_>>()?;
    let mut raws: HashMap<String, (RawTable, Table)> = HashMap::new();
    let mut tables = vec![];
    for (path, t) in files {
        let raw = data::read_table_as(&path, &t, data::Show::Header)?;
        // An event table may hold no rows (no person had such an event); the person table may not.
        tables.push(match t.name == person.table {
            true => check::check(&raw, &t, examples)?,
            false => check::check_rows(&raw, &t, examples)?,
        });
        raws.insert(t.name.clone(), (raw, t));
    }
    let mut other_files: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            let ext = p.extension().and_then(|s| s.to_str()).unwrap_or("").to_ascii_lowercase();
            crate::data::TABLE_EXTENSIONS.contains(&ext.as_str()) && !schema.tables.iter().any(|t| t.name == stem)
        })
        .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned))
        .collect();
    other_files.sort();

    // Primary keys: values, nulls, duplicates.
    let mut keys: HashMap<String, HashSet<String>> = HashMap::new();
    let mut primary_keys = vec![];
    for t in &schema.tables {
        let Some(k) = key_of(schema, t) else { continue };
        let (raw, table) = &raws[&t.name];
        let values = key_values(raw, table, k)?;
        let mut r = KeyReport {
            table: t.name.clone(),
            column: k.to_string(),
            file: raw.file.clone(),
            rows: values.len(),
            nulls: 0,
            duplicates: 0,
            examples: vec![],
        };
        let mut seen = HashSet::with_capacity(values.len());
        for (row, v) in values.iter().enumerate() {
            let problem = match v {
                None => {
                    r.nulls += 1;
                    "a missing primary key".to_string()
                }
                Some(v) if !seen.insert(v.clone()) => {
                    r.duplicates += 1;
                    "a duplicate primary key (an earlier row has it)".to_string()
                }
                Some(_) => continue,
            };
            if r.examples.len() < examples {
                r.examples.push(KeyExample {
                    row: row + 1,
                    line: raw.line_of(row),
                    value: v.clone().unwrap_or_default(),
                    problem,
                });
            }
        }
        keys.insert(t.name.clone(), seen);
        primary_keys.push(r);
    }

    // Foreign keys: values missing from the referenced table's keys.
    let mut foreign_keys = vec![];
    // Per event table: rows per person, counted on its key to the person table.
    let mut per_person: HashMap<String, HashMap<String, usize>> = HashMap::new();
    for t in &schema.tables {
        let (raw, table) = &raws[&t.name];
        for fk in &t.foreign_keys {
            let Some(target) = schema.tables.iter().find(|r| r.name == fk.references) else { continue };
            let Some(target_key) = key_of(schema, target) else { continue };
            let Some(known) = keys.get(&target.name) else { continue };
            let to_person = target.name == person.table;
            let values = key_values(raw, table, &fk.column)?;
            let mut r = ForeignKeyReport {
                table: t.name.clone(),
                column: fk.column.clone(),
                references: target.name.clone(),
                referenced_column: target_key.to_string(),
                file: raw.file.clone(),
                rows: values.len(),
                orphans: 0,
                missing: 0,
                nullable: table.column(&fk.column).is_some_and(|c| c.nullable),
                missing_findings: 0,
                examples: vec![],
            };
            let counts = per_person.entry(t.name.clone()).or_default();
            for (row, v) in values.iter().enumerate() {
                let problem = match v {
                    None => {
                        r.missing += 1;
                        r.missing_findings += (to_person && r.nullable) as usize;
                        format!("missing: the row references no {} row", target.name)
                    }
                    Some(v) if !known.contains(v) => {
                        r.orphans += 1;
                        format!("not a {}.{} value (an orphan)", target.name, target_key)
                    }
                    Some(v) => {
                        if to_person {
                            *counts.entry(v.clone()).or_default() += 1;
                        }
                        continue;
                    }
                };
                if r.examples.len() < examples {
                    r.examples.push(KeyExample {
                        row: row + 1,
                        line: raw.line_of(row),
                        value: v.clone().unwrap_or_default(),
                        problem,
                    });
                }
            }
            foreign_keys.push(r);
        }
    }

    let persons = keys.get(&person.table).map_or(0, HashSet::len);
    let mut bounds = vec![];
    for t in schema.event_tables() {
        let Some(e) = &t.events else { continue };
        let k = e.rows_per_person as usize;
        let counts = per_person.get(&t.name);
        let it = || counts.into_iter().flat_map(|c| c.values().copied());
        bounds.push(BoundReport {
            table: t.name.clone(),
            rows_per_person: e.rows_per_person,
            persons,
            persons_above: it().filter(|&n| n > k).count(),
            rows: raws[&t.name].0.df.height(),
            rows_dropped: it().map(|n| n.saturating_sub(k)).sum(),
            max_rows_of_a_person: it().max().unwrap_or(0),
        });
    }

    let findings = tables.iter().map(|t| t.findings).sum::<usize>()
        + primary_keys.iter().map(KeyReport::findings).sum::<usize>()
        + foreign_keys.iter().map(ForeignKeyReport::findings).sum::<usize>();
    Ok(LinkedReport {
        folder: dir.display().to_string(),
        tables,
        primary_keys,
        foreign_keys,
        bounds,
        other_files,
        findings,
    })
}

fn pct(a: usize, b: usize) -> String {
    if b == 0 { "0%".into() } else { format!("{:.1}%", 100.0 * a as f64 / b as f64) }
}

impl LinkedReport {
    /// Plain-text rendering for a terminal.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for t in &self.tables {
            // The per-table footer (privacy note, result) is said once at the end instead.
            for line in t.render().lines().filter(|l| !l.starts_with("  (this report") && !l.starts_with("result:")) {
                out.push_str(line);
                out.push('\n');
            }
        }
        if !self.other_files.is_empty() {
            out.push_str(&format!(
                "{}: not tables of the schema (not read): {}\n",
                self.folder,
                self.other_files.join(", ")
            ));
        }
        out.push_str("links:\n");
        let example = |out: &mut String, file: &str, column: &str, e: &KeyExample| {
            let at = match e.line {
                Some(l) => format!("row {} (line {l})", e.row),
                None => format!("row {}", e.row),
            };
            out.push_str(&format!("      {file}, {at}, column {column:?}: value {:?} is {}\n", e.value, e.problem));
        };
        for k in &self.primary_keys {
            let status = if k.findings() == 0 { "ok" } else { "FINDINGS" };
            out.push_str(&format!(
                "  {}.{} primary key: {} rows, {} missing, {} duplicate  {status}\n",
                k.table, k.column, k.rows, k.nulls, k.duplicates
            ));
            for e in &k.examples {
                example(&mut out, &k.file, &k.column, e);
            }
        }
        for f in &self.foreign_keys {
            let status = match (f.findings(), f.missing, f.nullable) {
                (0, 0, _) => "ok",
                (0, _, true) => "ok (the column is nullable)",
                (0, _, false) => "FINDINGS (missing values: counted in the column check)",
                _ => "FINDINGS",
            };
            out.push_str(&format!(
                "  {}.{} -> {}.{}: {} rows, {} orphan(s) ({})",
                f.table,
                f.column,
                f.references,
                f.referenced_column,
                f.rows,
                f.orphans,
                pct(f.orphans, f.rows)
            ));
            out.push_str(&format!(", {} missing ({})", f.missing, pct(f.missing, f.rows)));
            out.push_str(&format!("  {status}\n"));
            for e in &f.examples {
                example(&mut out, &f.file, &f.column, e);
            }
        }
        if !self.bounds.is_empty() {
            out.push_str(
                "contribution bounds (rows of a person beyond the bound are dropped before fitting; not findings):\n",
            );
            for b in &self.bounds {
                out.push_str(&format!(
                    "  {}: rows_per_person {}: {} of {} persons ({}) above it, at most {} rows; {} of {} rows ({}) would be dropped\n",
                    b.table,
                    b.rows_per_person,
                    b.persons_above,
                    b.persons,
                    pct(b.persons_above, b.persons),
                    b.max_rows_of_a_person,
                    b.rows_dropped,
                    b.rows,
                    pct(b.rows_dropped, b.rows)
                ));
            }
        }
        out.push_str("  (this report shows values of the real data, keys included: it is for the data holder, not for release)\n");
        out.push_str(&if self.findings == 0 {
            "result: the tables fit the schema and their links hold\n".to_string()
        } else {
            format!("result: {} finding(s)\n", self.findings)
        });
        out
    }
}
