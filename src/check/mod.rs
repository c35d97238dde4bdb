//! `schema check`: validate a data file against a schema, column by column.
//!
//! This is an audit the data holder runs on their own data, so it shows offending values; its
//! output is for the data holder and is not meant to leave with a release.

pub mod links;

use serde::Serialize;

use crate::codec::{Note, Problem, TableCodec};
use crate::data::RawTable;
use crate::error::Result;
use crate::schema::{ColumnType, Role, Table};

#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub file: String,
    pub table: String,
    pub rows: usize,
    pub columns: Vec<ColumnReport>,
    /// Columns in the file that the schema does not declare (never read further).
    pub undeclared_columns: Vec<String>,
    /// Total findings; zero means the file fits the schema.
    pub findings: usize,
}

#[derive(Debug, Serialize)]
pub struct ColumnReport {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ColumnType,
    pub role: Role,
    pub expected: String,
    pub nulls: usize,
    pub type_errors: usize,
    /// Out of domain with policy `error`.
    pub out_of_domain: usize,
    /// Missing in a column that is not nullable.
    pub null_violations: usize,
    /// Out of domain, handled by the schema's policy (not findings).
    pub clipped: usize,
    pub nulled: usize,
    /// The whole column is missing.
    pub all_null: bool,
    pub examples: Vec<Example>,
}

impl ColumnReport {
    pub fn findings(&self) -> usize {
        self.type_errors + self.out_of_domain + self.null_violations + self.all_null as usize
    }
}

#[derive(Debug, Serialize)]
pub struct Example {
    pub row: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub value: String,
    pub problem: &'static str,
}

/// Longest value shown in an example; longer ones are cut (a report must stay readable).
const MAX_SHOWN: usize = 80;

fn shorten(v: &str) -> String {
    match v.char_indices().nth(MAX_SHOWN) {
        None => v.to_string(),
        Some((i, _)) => format!("{}... ({} characters)", &v[..i], v.chars().count()),
    }
}

/// Check every declared column; keep up to `max_examples` offending rows per column. A file
/// without data rows is an error (a table to check or fit has rows).
pub fn check(raw: &RawTable, table: &Table, max_examples: usize) -> Result<CheckReport> {
    if raw.df.height() == 0 {
        return Err(crate::error::Error::data(&raw.file, "has no data rows"));
    }
    check_rows(raw, table, max_examples)
}

/// [`check`] that takes a table without data rows as fitting (an event table of a linked
/// extract in which no person has an event of its kind: a death table of a small draw).
pub fn check_rows(raw: &RawTable, table: &Table, max_examples: usize) -> Result<CheckReport> {
    let codec = TableCodec::new(table)?;
    let rows = raw.df.height();
    let mut columns = Vec::with_capacity(table.columns.len());
    for col in &table.columns {
        let s = raw.series(&col.name)?;
        let mut r = ColumnReport {
            name: col.name.clone(),
            kind: col.kind,
            role: col.role,
            expected: String::new(),
            nulls: 0,
            type_errors: 0,
            out_of_domain: 0,
            null_violations: 0,
            clipped: 0,
            nulled: 0,
            all_null: false,
            examples: vec![],
        };
        let example = |row: usize, problem: &'static str| Example {
            row: row + 1,
            line: raw.line_of(row),
            // A missing cell shows as an empty value, not as polars' "null".
            value: match s.get(row) {
                Ok(polars::prelude::AnyValue::Null) | Err(_) => String::new(),
                Ok(_) => shorten(&s.str_value(row).map(|v| v.into_owned()).unwrap_or_default()),
            },
            problem,
        };
        if let Some(c) = codec.columns.iter().find(|c| c.name == col.name) {
            r.expected = c.expected();
            let codes = c
                .encode_series(s, |row, note| {
                    let problem = match note {
                        Note::Clipped => {
                            r.clipped += 1;
                            return true;
                        }
                        Note::Nulled => {
                            r.nulled += 1;
                            return true;
                        }
                        Note::Problem(Problem::Type) => {
                            r.type_errors += 1;
                            "not of the column's type"
                        }
                        Note::Problem(Problem::OutOfDomain) => {
                            r.out_of_domain += 1;
                            "outside the declared domain"
                        }
                        Note::Problem(Problem::Null) => {
                            r.null_violations += 1;
                            "missing in a column that is not nullable"
                        }
                    };
                    if r.examples.len() < max_examples {
                        r.examples.push(example(row, problem));
                    }
                    true
                })
                .map_err(|e| crate::error::Error::column(&raw.file, &col.name, format!("cannot be read: {e}")))?;
            let null_code = c.null_code();
            r.nulls = r.null_violations + codes.iter().filter(|&&k| Some(k) == null_code).count() - r.nulled;
        } else {
            r.expected = format!("{} (not modelled)", col.kind);
            r.nulls = s.null_count();
            if !col.nullable && r.nulls > 0 {
                r.null_violations = r.nulls;
                let null_mask = s.is_null();
                let rows_null = null_mask.iter().enumerate().filter(|(_, n)| *n == Some(true)).take(max_examples);
                r.examples.extend(rows_null.map(|(row, _)| example(row, "missing in a column that is not nullable")));
            }
        }
        r.all_null = rows > 0 && r.nulls == rows;
        columns.push(r);
    }
    let undeclared_columns = raw.column_names().into_iter().filter(|n| table.column(n).is_none()).collect();
    let findings = columns.iter().map(ColumnReport::findings).sum();
    Ok(CheckReport { file: raw.file.clone(), table: table.name.clone(), rows, columns, undeclared_columns, findings })
}

impl CheckReport {
    /// Plain-text rendering for a terminal.
    pub fn render(&self) -> String {
        let mut out = format!(
            "{}: table {:?}, {} rows, {} columns checked\n",
            self.file,
            self.table,
            self.rows,
            self.columns.len()
        );
        for c in &self.columns {
            let status = if c.findings() == 0 { "ok" } else { "FINDINGS" };
            out.push_str(&format!(
                "  {:<24} {:<11} {:<8} nulls {:>7}  type errors {:>6}  out of domain {:>6}  null violations {:>6}",
                c.name,
                c.kind.to_string(),
                status,
                c.nulls,
                c.type_errors,
                c.out_of_domain,
                c.null_violations
            ));
            if c.clipped + c.nulled > 0 {
                out.push_str(&format!("  (by policy: {} clipped, {} made null)", c.clipped, c.nulled));
            }
            out.push('\n');
            if c.all_null {
                out.push_str("      every value is missing: there is nothing to model in this column\n");
            }
            for e in &c.examples {
                let at = match e.line {
                    Some(l) => format!("row {} (line {l})", e.row),
                    None => format!("row {}", e.row),
                };
                out.push_str(&format!(
                    "      {}, {at}, column {:?}: value {:?} is {}; expected {}\n",
                    self.file, c.name, e.value, e.problem, c.expected
                ));
            }
        }
        if !self.undeclared_columns.is_empty() {
            out.push_str(&format!("  not in the schema (ignored): {}\n", self.undeclared_columns.join(", ")));
        }
        out.push_str("  (this report shows values of the real data: it is for the data holder, not for release)\n");
        out.push_str(&if self.findings == 0 {
            "result: the file fits the schema\n".to_string()
        } else {
            format!("result: {} finding(s)\n", self.findings)
        });
        out
    }
}
