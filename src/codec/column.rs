//! How one column is encoded and decoded: a cell of a file (text, or a typed Parquet/IPC
//! value) becomes a code of the column's domain under its out-of-domain policy, and a code
//! becomes a value again (the category, or a uniform draw from the bin at the column's
//! precision).

use std::collections::HashSet;

use chrono::{NaiveDate, NaiveDateTime};
use polars::prelude::*;
use rand::{Rng, RngExt};

use crate::error::{Error, Result};
use crate::schema::domain::ColumnDomain;
use crate::schema::{self, Cell, ColumnType, OutOfDomain, Table, days_from_epoch};

/// How one column is encoded and decoded.
#[derive(Debug, Clone)]
pub struct ColumnCodec {
    pub name: String,
    pub kind: ColumnType,
    pub nullable: bool,
    pub policy: OutOfDomain,
    pub domain: ColumnDomain,
    missing: HashSet<String>,
    format: Option<String>,
    /// `Some` (UTC) when the column's values are instants: read with their offset, written
    /// with the zone.
    timezone: Option<String>,
}

/// Why a cell could not be encoded as it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// Not a value of the column's type.
    Type,
    /// Outside the declared domain and the policy neither clips nor nulls it.
    OutOfDomain,
    /// Missing in a column that is not nullable.
    Null,
}

/// What happened to a cell that is not simply in the domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    Problem(Problem),
    /// Outside the domain, moved to the nearest bound (policy `clip`).
    Clipped,
    /// Outside the domain, made missing (policy `null`).
    Nulled,
}

impl ColumnCodec {
    pub fn new(table: &Table, c: &schema::Column) -> std::result::Result<ColumnCodec, String> {
        Ok(ColumnCodec {
            name: c.name.clone(),
            kind: c.kind,
            nullable: c.nullable,
            policy: table.policy(c),
            domain: ColumnDomain::build(c)?,
            missing: table.missing_tokens(c).map(|s| s.trim().to_string()).collect(),
            format: c.format.clone(),
            timezone: c.timezone.clone(),
        })
    }

    /// Codes including the null code.
    pub fn size(&self) -> usize {
        self.domain.n_values() + self.nullable as usize
    }

    pub fn null_code(&self) -> Option<u32> {
        self.nullable.then(|| self.domain.n_values() as u32)
    }

    /// What the column expects, for messages.
    pub fn expected(&self) -> String {
        match &self.domain {
            ColumnDomain::Categorical { categories, .. } => {
                let shown: Vec<&str> = categories.iter().take(8).map(String::as_str).collect();
                let more =
                    if categories.len() > 8 { format!(", ... ({} in all)", categories.len()) } else { String::new() };
                format!("one of [{}{more}]", shown.join(", "))
            }
            ColumnDomain::Boolean => "true/false (also t/f, yes/no, y/n, 1/0)".into(),
            ColumnDomain::Binned { kind, lo, hi, .. } => {
                let fmt = |v: f64| match kind {
                    ColumnType::Date => schema::date_from_days(v as i64).map(|d| d.to_string()).unwrap_or_default(),
                    ColumnType::Datetime => chrono::DateTime::from_timestamp(v as i64, 0)
                        .map(|d| d.naive_utc().to_string())
                        .unwrap_or_default(),
                    _ => v.to_string(),
                };
                let what = match kind {
                    ColumnType::Integer => "an integer",
                    ColumnType::Float => "a number",
                    ColumnType::Date => "a date",
                    _ if self.timezone.is_some() => {
                        "a datetime with its UTC offset (2024-03-01T09:30:00Z or 2024-03-01T10:30:00+01:00; \
                         the column has timezone: UTC, so a value without an offset is ambiguous)"
                    }
                    _ => "a datetime",
                };
                format!("{what} in [{}, {}]", fmt(*lo), fmt(*hi))
            }
        }
    }

    /// A short public description of a code for prompts and reports: the category, `false` /
    /// `true`, a bin as `lo to hi` (its first and last representable values), or `(missing)`.
    pub fn label(&self, code: u32) -> String {
        if Some(code) == self.null_code() {
            return "(missing)".into();
        }
        let i = code as usize;
        match &self.domain {
            ColumnDomain::Categorical { categories, .. } => categories.get(i).cloned().unwrap_or_default(),
            ColumnDomain::Boolean => (code == 1).to_string(),
            ColumnDomain::Binned { kind, edges, grid, .. } => {
                let show = |v: f64| match kind {
                    ColumnType::Date => {
                        schema::date_from_days(v.floor() as i64).map(|d| d.to_string()).unwrap_or_default()
                    }
                    ColumnType::Datetime => chrono::DateTime::from_timestamp(v.floor() as i64, 0)
                        .map(|d| d.naive_utc().to_string())
                        .unwrap_or_default(),
                    _ => format!("{}", (v * 1e6).round() / 1e6),
                };
                let (a, b) = match (grid, i + 1 < edges.len()) {
                    (_, false) => return String::new(),
                    (Some(g), _) => (g.value(g.ranges[i].0), g.value(g.ranges[i].1)),
                    (None, _) => (edges[i], edges[i + 1]),
                };
                if a == b { show(a) } else { format!("{} to {}", show(a), show(b)) }
            }
        }
    }

    /// A datetime column with a time zone: a value it cannot place in time (no offset, or not a
    /// datetime) is refused whatever the out-of-domain policy, since dropping or nulling it
    /// would silently lose or shift instants.
    pub fn zoned(&self) -> bool {
        self.timezone.is_some()
    }

    /// Parse a text cell onto the numeric line of a binned column.
    fn parse_point(&self, s: &str) -> Option<f64> {
        match self.kind {
            ColumnType::Integer => s.parse::<f64>().ok().filter(|v| v.is_finite() && v.fract() == 0.0),
            ColumnType::Float => s.parse::<f64>().ok().filter(|v| v.is_finite()),
            ColumnType::Date => match &self.format {
                Some(f) => NaiveDate::parse_from_str(s, f).ok(),
                None => schema::parse_date_iso(s),
            }
            .map(|d| days_from_epoch(d) as f64),
            ColumnType::Datetime => match (&self.format, &self.timezone) {
                (Some(f), _) => NaiveDateTime::parse_from_str(s, f).ok(),
                (None, Some(_)) => schema::parse_datetime_utc(s),
                (None, None) => schema::parse_datetime_iso(s),
            }
            .map(|d| d.and_utc().timestamp() as f64),
            _ => None,
        }
    }

    /// Code of a point on the numeric line, applying the out-of-domain policy.
    fn code_point(&self, v: f64) -> std::result::Result<(u32, Option<Note>), Problem> {
        if let Some(c) = self.domain.bin_of(v) {
            return Ok((c, None));
        }
        let ColumnDomain::Binned { lo, hi, .. } = &self.domain else { return Err(Problem::Type) };
        match self.policy {
            OutOfDomain::Error | OutOfDomain::Drop => Err(Problem::OutOfDomain),
            OutOfDomain::Null => Ok((self.null_code().ok_or(Problem::OutOfDomain)?, Some(Note::Nulled))),
            OutOfDomain::Clip => {
                let c = self.domain.bin_of(v.clamp(*lo, *hi)).ok_or(Problem::OutOfDomain)?;
                Ok((c, Some(Note::Clipped)))
            }
        }
    }

    fn code_null(&self) -> std::result::Result<(u32, Option<Note>), Problem> {
        self.null_code().map(|c| (c, None)).ok_or(Problem::Null)
    }

    /// Code of a text cell.
    fn code_text(&self, s: Option<&str>) -> std::result::Result<(u32, Option<Note>), Problem> {
        let Some(s) = s.map(str::trim).filter(|s| !s.is_empty() && !self.missing.contains(*s)) else {
            return self.code_null();
        };
        match &self.domain {
            ColumnDomain::Categorical { lookup, numeric, .. } => {
                if let Some(c) = lookup.get(s) {
                    return Ok((*c, None));
                }
                if let Ok(v) = s.parse::<f64>()
                    && let Some((_, c)) = numeric.iter().find(|(n, _)| *n == v)
                {
                    return Ok((*c, None));
                }
                match self.policy {
                    OutOfDomain::Null => Ok((self.null_code().ok_or(Problem::OutOfDomain)?, Some(Note::Nulled))),
                    _ => Err(Problem::OutOfDomain),
                }
            }
            ColumnDomain::Boolean => match s.to_ascii_lowercase().as_str() {
                "false" | "f" | "no" | "n" | "0" => Ok((0, None)),
                "true" | "t" | "yes" | "y" | "1" => Ok((1, None)),
                _ => Err(Problem::Type),
            },
            ColumnDomain::Binned { .. } => self.parse_point(s).ok_or(Problem::Type).and_then(|v| self.code_point(v)),
        }
    }

    /// Points of a typed (Parquet, IPC) number, date or datetime column on the numeric line;
    /// None when the column is text (CSV) and must be parsed cell by cell.
    fn native_points(&self, s: &Series) -> PolarsResult<Option<Vec<Option<f64>>>> {
        Ok(match (self.kind, s.dtype()) {
            (ColumnType::Integer | ColumnType::Float, dt) if dt.is_primitive_numeric() => {
                Some(s.cast(&DataType::Float64)?.f64()?.iter().collect())
            }
            (ColumnType::Date, DataType::Date | DataType::Datetime(_, _)) => {
                Some(s.cast(&DataType::Date)?.cast(&DataType::Int32)?.i32()?.iter().map(|d| d.map(f64::from)).collect())
            }
            // A zone-less timestamp (or a date) in a column with a time zone is ambiguous: refused,
            // reported by the caller as a column it cannot read.
            (ColumnType::Datetime, DataType::Datetime(_, None) | DataType::Date) if self.zoned() => {
                polars::prelude::polars_bail!(ComputeError: "a timestamp without a time zone in a column with timezone: UTC")
            }
            (ColumnType::Datetime, DataType::Datetime(_, _) | DataType::Date) => {
                let ms = s.cast(&DataType::Datetime(TimeUnit::Milliseconds, None))?.cast(&DataType::Int64)?;
                Some(ms.i64()?.iter().map(|m| m.map(|m| m.div_euclid(1000) as f64)).collect())
            }
            _ => None,
        })
    }

    /// Read a column's cells as values rather than codes, for the audit: numbers, dates and
    /// datetimes on their numeric line, categories by their canonical label (so `4.0` reads as
    /// category `4`), values outside the domain as they are (the audit must see whatever a
    /// synthetic file holds). Returns the 0-based row of the first cell that is not of the
    /// column's type instead of the values.
    pub fn read_cells(
        &self,
        s: &Series,
        mut cell: impl FnMut(Cell<'_>),
    ) -> PolarsResult<std::result::Result<(), usize>> {
        let numeric_kind = self.kind.is_bounded();
        let native = if numeric_kind { self.native_points(s)? } else { None };
        if let Some(points) = native {
            for (row, v) in points.into_iter().enumerate() {
                match v {
                    None => cell(Cell::Missing),
                    Some(v) if v.is_finite() => cell(Cell::Point(v)),
                    Some(_) => return Ok(Err(row)),
                }
            }
            return Ok(Ok(()));
        }
        if let DataType::Boolean = s.dtype() {
            for v in s.bool()?.iter() {
                cell(match v {
                    None => Cell::Missing,
                    Some(b) => Cell::Label(if b { "true" } else { "false" }),
                });
            }
            return Ok(Ok(()));
        }
        let text = s.cast(&DataType::String)?;
        for (row, v) in text.str()?.iter().enumerate() {
            let Some(v) = v.map(str::trim).filter(|v| !v.is_empty() && !self.missing.contains(*v)) else {
                cell(Cell::Missing);
                continue;
            };
            match &self.domain {
                ColumnDomain::Categorical { categories, lookup, numeric } => {
                    let known = lookup.get(v).copied().or_else(|| {
                        let x = v.parse::<f64>().ok()?;
                        numeric.iter().find(|(n, _)| *n == x).map(|(_, c)| *c)
                    });
                    cell(Cell::Label(match known {
                        Some(c) => categories[c as usize].as_str(),
                        None => v,
                    }))
                }
                ColumnDomain::Boolean => match v.to_ascii_lowercase().as_str() {
                    "false" | "f" | "no" | "n" | "0" => cell(Cell::Label("false")),
                    "true" | "t" | "yes" | "y" | "1" => cell(Cell::Label("true")),
                    _ => return Ok(Err(row)),
                },
                ColumnDomain::Binned { .. } => match self.parse_point(v) {
                    Some(x) => cell(Cell::Point(x)),
                    None => return Ok(Err(row)),
                },
            }
        }
        Ok(Ok(()))
    }

    /// Encode a column, calling `note` for every cell that is not plainly in the domain.
    /// `note` returns false to stop early. Cells with a problem get code 0.
    pub fn encode_series(&self, s: &Series, mut note: impl FnMut(usize, Note) -> bool) -> PolarsResult<Vec<u32>> {
        let mut codes = Vec::with_capacity(s.len());
        let mut push = |row: usize, r: std::result::Result<(u32, Option<Note>), Problem>| -> bool {
            match r {
                Ok((c, n)) => {
                    codes.push(c);
                    n.is_none_or(|n| note(row, n))
                }
                Err(p) => {
                    codes.push(0);
                    note(row, Note::Problem(p))
                }
            }
        };
        // Typed columns (Parquet, IPC) are read natively onto the numeric line.
        let native = if matches!(self.domain, ColumnDomain::Binned { .. }) { self.native_points(s)? } else { None };
        if let Some(points) = native {
            for (row, v) in points.into_iter().enumerate() {
                let r = match v {
                    None => self.code_null(),
                    Some(v) if !v.is_finite() || (self.kind == ColumnType::Integer && v.fract() != 0.0) => {
                        Err(Problem::Type)
                    }
                    Some(v) => self.code_point(v),
                };
                if !push(row, r) {
                    break;
                }
            }
        } else if let (ColumnDomain::Boolean, DataType::Boolean) = (&self.domain, s.dtype()) {
            for (row, v) in s.bool()?.iter().enumerate() {
                let r = match v {
                    None => self.code_null(),
                    Some(b) => Ok((b as u32, None)),
                };
                if !push(row, r) {
                    break;
                }
            }
        } else {
            let text = s.cast(&DataType::String)?;
            for (row, v) in text.str()?.iter().enumerate() {
                if !push(row, self.code_text(v)) {
                    break;
                }
            }
        }
        Ok(codes)
    }

    /// Decode codes into a typed polars column.
    pub fn decode(&self, codes: &[u32], rng: &mut impl Rng) -> Result<Column> {
        let bad = |c: u32| {
            Error::Internal(format!("code {c} out of range for column {:?} ({} codes)", self.name, self.size()))
        };
        let is_null = |c: u32| Some(c) == self.null_code();
        let name = PlSmallStr::from(self.name.as_str());
        let series = match &self.domain {
            ColumnDomain::Categorical { categories, .. } => {
                let v = codes
                    .iter()
                    .map(|&c| {
                        if is_null(c) {
                            Ok(None)
                        } else {
                            categories.get(c as usize).map(|s| Some(s.as_str())).ok_or_else(|| bad(c))
                        }
                    })
                    .collect::<Result<Vec<_>>>()?;
                Series::new(name, v)
            }
            ColumnDomain::Boolean => {
                let v = codes
                    .iter()
                    .map(|&c| match c {
                        _ if is_null(c) => Ok(None),
                        0 | 1 => Ok(Some(c == 1)),
                        _ => Err(bad(c)),
                    })
                    .collect::<Result<Vec<_>>>()?;
                Series::new(name, v)
            }
            ColumnDomain::Binned { kind, edges, grid, .. } => {
                let n = edges.len() - 1;
                let mut v: Vec<Option<f64>> = Vec::with_capacity(codes.len());
                for &c in codes {
                    if is_null(c) {
                        v.push(None);
                        continue;
                    }
                    let i = c as usize;
                    if i >= n {
                        return Err(bad(c));
                    }
                    v.push(Some(match grid {
                        Some(g) => g.value(rng.random_range(g.ranges[i].0..=g.ranges[i].1)),
                        None => edges[i] + (edges[i + 1] - edges[i]) * rng.random::<f64>(),
                    }));
                }
                match kind {
                    ColumnType::Integer => Series::new(name, v.iter().map(|x| x.map(|x| x as i64)).collect::<Vec<_>>()),
                    ColumnType::Float => Series::new(name, v),
                    ColumnType::Date => Series::new(name, v.iter().map(|x| x.map(|x| x as i32)).collect::<Vec<_>>())
                        .cast(&DataType::Date)
                        .map_err(Error::polars)?,
                    // Milliseconds set as the physical values (`cast` would drop the zone: polars'
                    // `timezones` feature, which it needs, is not built).
                    _ => Series::new(name, v.iter().map(|x| x.map(|x| x as i64 * 1000)).collect::<Vec<_>>())
                        .into_datetime(
                            TimeUnit::Milliseconds,
                            self.timezone.as_ref().map(|_| polars::prelude::TimeZone::UTC),
                        ),
                }
            }
        };
        Ok(series.into())
    }
}
