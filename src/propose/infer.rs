//! `schema infer`: propose a schema from a data file.
//!
//! Types come from the values; roles from column names and content (personal names, SSN-like
//! numbers, e-mail addresses, phone numbers, street addresses, UUIDs, free text). Every domain
//! read here is marked `source: data`: a category list or a min/max taken from private data is a
//! disclosure, so DP fitting refuses it until a person has reviewed it.

use std::collections::HashSet;
use std::sync::LazyLock;

use polars::prelude::*;
use regex::Regex;

use crate::data::RawTable;
use crate::error::{Error, Result};
use crate::schema::{
    self, Column, ColumnType, CsvFormat, Domain, DomainSource, Granularity, MAX_DOMAIN_SIZE, Role, Schema, Table,
};

/// Tokens commonly used for "missing" in exported tables.
pub(crate) const MISSING_TOKENS: &[&str] = &["?", "NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None"];

/// Categorical columns with more distinct values than this become text (or identifiers).
pub const DEFAULT_MAX_CATEGORIES: usize = 200;

/// Equal-width bins proposed for wide numeric ranges.
pub(crate) const DEFAULT_BINS: usize = 32;

pub struct Options {
    pub table_name: String,
    pub csv: CsvFormat,
    pub max_categories: usize,
}

/// A proposed schema and what the user should know about it.
pub struct Proposal {
    pub schema: Schema,
    pub warnings: Vec<String>,
}

fn re(p: &str) -> Regex {
    Regex::new(p).expect("constant regex")
}

pub(crate) static SSN: LazyLock<Regex> = LazyLock::new(|| re(r"^\d{3}-\d{2}-\d{4}$"));
pub(crate) static EMAIL: LazyLock<Regex> = LazyLock::new(|| re(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$"));
pub(crate) static PHONE: LazyLock<Regex> =
    LazyLock::new(|| re(r"^\+?\(?\d{1,4}\)?[-. ]?\(?\d{2,4}\)?[-. ]\d{3,4}[-. ]?\d{0,4}$"));
pub(crate) static UUID: LazyLock<Regex> =
    LazyLock::new(|| re(r"^(?i)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"));
pub(crate) static ADDRESS: LazyLock<Regex> =
    LazyLock::new(|| re(r"^\d+[A-Za-z]?\s+[A-Za-z][A-Za-z.'-]*(\s+[A-Za-z0-9.'#-]+)+$"));
static PERSON_NAME: LazyLock<Regex> = LazyLock::new(|| re(r"^[A-Z][a-z'-]+\d*$"));

/// Role suggested by a column's name alone.
pub fn role_by_name(name: &str) -> Option<Role> {
    let n = name.to_ascii_lowercase();
    let words: Vec<&str> = n.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let has = |list: &[&str]| words.iter().any(|w| list.contains(w));
    if has(&[
        "id",
        "uuid",
        "guid",
        "ssn",
        "mrn",
        "email",
        "mail",
        "phone",
        "telephone",
        "fax",
        "first",
        "last",
        "firstname",
        "lastname",
        "surname",
        "name",
        "maiden",
        "prefix",
        "suffix",
        "address",
        "street",
        "passport",
        "drivers",
        "license",
        "lat",
        "lon",
        "lng",
        "latitude",
        "longitude",
        "ip",
        "birthplace",
    ]) || (name.len() > 2 && (name.ends_with("Id") || name.ends_with("ID")))
    {
        return Some(Role::Identifier);
    }
    if has(&[
        "age",
        "sex",
        "gender",
        "race",
        "ethnicity",
        "zip",
        "zipcode",
        "postcode",
        "postal",
        "birthdate",
        "dob",
        "birth",
        "county",
        "city",
        "state",
        "marital",
        "country",
        "nationality",
        "education",
        "occupation",
        "fips",
    ]) {
        return Some(Role::QuasiIdentifier);
    }
    if has(&[
        "income",
        "salary",
        "wage",
        "diagnosis",
        "dx",
        "condition",
        "disease",
        "hiv",
        "outcome",
        "expenses",
        "cost",
        "gain",
        "loss",
    ]) {
        return Some(Role::Sensitive);
    }
    None
}

/// Propose a schema for a table that was read as text (CSV) or typed (Parquet/IPC).
pub fn infer(raw: &RawTable, opts: &Options) -> Result<Proposal> {
    let mut warnings = Vec::new();
    let mut columns = Vec::new();
    let rows = raw.df.height();
    if rows == 0 {
        return Err(Error::data(&raw.file, "has no data rows; there is nothing to infer from"));
    }
    for name in raw.column_names() {
        let s = raw.series(&name)?;
        let (col, warn) = infer_column(&name, s, rows, opts)
            .map_err(|e| Error::column(&raw.file, &name, format!("cannot be read: {e}")))?;
        warnings.extend(warn.into_iter().map(|w| format!("column {name:?}: {w}")));
        columns.push(col);
    }
    let n_data = columns.iter().filter(|c| c.domain.as_ref().is_some_and(|d| d.source == DomainSource::Data)).count();
    if n_data > 0 {
        warnings.push(format!(
            "{n_data} domain(s) were read from the data and are marked `source: data`. Category lists and \
             min/max values taken from private data disclose real records, and DP fitting refuses them. \
             Replace each with public knowledge (a data dictionary, a coding standard, plausible bounds), \
             then set `source: public`."
        ));
    }
    let read_from_data = read_from_data(&columns);
    if !read_from_data.is_empty() {
        warnings.push(format!(
            "{} field(s) were read from the data and are listed under `read_from_data` (nullability, missing-value \
             tokens, precision): each discloses something about real records, and DP fitting refuses the table \
             until you have reviewed them and emptied the list",
            read_from_data.len()
        ));
    }
    let mut table = Table::new(&opts.table_name, None, opts.csv.clone(), columns);
    table.read_from_data = read_from_data;
    let schema = Schema::single(table, &raw.file)?;
    Ok(Proposal { schema, warnings })
}

/// The fields of proposed columns whose values were read from the data rather than chosen:
/// whether a modelled column had a missing value, which missing-value tokens occurred, the
/// decimals of a float column. (Domains carry their own `source: data`.)
fn read_from_data(columns: &[Column]) -> Vec<String> {
    let mut out = vec![];
    for c in columns.iter().filter(|c| c.is_modelled()) {
        out.push(format!("{}.nullable", c.name));
        if !c.missing_values.is_empty() {
            out.push(format!("{}.missing_values", c.name));
        }
        if c.precision.is_some() {
            out.push(format!("{}.precision", c.name));
        }
    }
    out
}

fn infer_column(name: &str, s: &Series, rows: usize, opts: &Options) -> PolarsResult<(Column, Vec<String>)> {
    let mut warn = Vec::new();
    let mut col = Column {
        name: name.to_string(),
        kind: ColumnType::Text,
        role: Role::Attribute,
        nullable: false,
        description: None,
        unit: None,
        missing_values: vec![],
        out_of_domain: None,
        format: None,
        precision: None,
        domain: None,
        llm: None,
        timezone: None,
        fake: None,
    };
    let text = s.cast(&DataType::String)?;
    let mut values: Vec<&str> = Vec::with_capacity(rows);
    let mut tokens: HashSet<&str> = HashSet::new();
    let mut nulls = 0usize;
    for v in text.str()?.iter() {
        match v.map(str::trim) {
            None | Some("") => nulls += 1,
            Some(v) if MISSING_TOKENS.contains(&v) => {
                tokens.insert(v);
                nulls += 1;
            }
            Some(v) => values.push(v),
        }
    }
    col.nullable = nulls > 0;
    let name_role = role_by_name(name);
    if values.is_empty() {
        col.nullable = true;
        warn.push(
            "every value is missing; proposed as text (not modelled). Drop the column or declare its type".into(),
        );
        return Ok((col, warn));
    }
    let distinct: HashSet<&str> = values.iter().copied().collect();
    let share = |re: &Regex| values.iter().filter(|v| re.is_match(v)).count() as f64 / values.len() as f64;
    let mostly = |re: &Regex| share(re) >= 0.9;

    // Direct identifiers by content come first: they are never modelled.
    let content_id = if mostly(&UUID) {
        Some("UUIDs")
    } else if mostly(&SSN) {
        Some("SSN-like numbers")
    } else if mostly(&EMAIL) {
        Some("e-mail addresses")
    } else if mostly(&ADDRESS) {
        Some("street addresses")
    } else if values.iter().all(|v| v.parse::<f64>().is_err()) && mostly(&PHONE) {
        Some("phone numbers")
    } else if distinct.len() > 50 && distinct.len() * 2 > values.len() && mostly(&PERSON_NAME) {
        Some("personal names")
    } else {
        None
    };
    if let Some(what) = content_id {
        col.kind = ColumnType::Identifier;
        col.role = Role::Identifier;
        warn.push(format!("looks like {what}: marked identifier (never modelled)"));
        return Ok((col, warn));
    }

    // Numbers beyond 1e15 (e.g. SNOMED codes) are codes, not quantities: a binned domain could
    // not represent them exactly, so they are proposed as categories or text.
    let numeric: Vec<f64> =
        values.iter().filter_map(|v| v.parse::<f64>().ok().filter(|x| x.is_finite() && x.abs() <= 1e15)).collect();
    let all_numeric = numeric.len() == values.len();
    let is_bool = distinct.len() <= 2
        && distinct.iter().all(|v| {
            matches!(v.to_ascii_lowercase().as_str(), "true" | "false" | "t" | "f" | "yes" | "no" | "y" | "n")
        });
    let dates: Option<Vec<i64>> = values
        .iter()
        .map(|v| schema::parse_date_iso(v).filter(|_| v.len() == 10).map(schema::days_from_epoch))
        .collect();
    let datetimes: Option<Vec<i64>> = if dates.is_none() {
        values
            .iter()
            .map(|v| schema::parse_datetime_iso(v).filter(|_| v.len() > 10).map(|d| d.and_utc().timestamp()))
            .collect()
    } else {
        None
    };
    col.missing_values = tokens.iter().map(|t| t.to_string()).collect();
    col.missing_values.sort();

    let data_domain = |d: Domain| Some(Domain { source: DomainSource::Data, ..d });
    if is_bool {
        col.kind = ColumnType::Boolean;
    } else if all_numeric {
        let (lo, hi) = numeric.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
        let integral = numeric.iter().all(|x| x.fract() == 0.0);
        if integral {
            col.kind = ColumnType::Integer;
            let span = hi - lo + 1.0;
            // A constant column still needs lo < hi.
            col.domain = data_domain(Domain {
                bounds: Some(vec![fmt_num(lo), fmt_num(hi.max(lo + 1.0))]),
                bins: (span > 100.0).then_some(DEFAULT_BINS),
                ..Domain::default()
            });
        } else {
            col.kind = ColumnType::Float;
            let decimals = values
                .iter()
                .map(|v| v.split_once('.').map_or(0, |(_, f)| f.trim_end_matches('0').len()))
                .max()
                .unwrap_or(0);
            col.precision = Some(decimals.min(6) as u32);
            col.domain = data_domain(Domain {
                bounds: Some(vec![fmt_num(lo), fmt_num(if hi > lo { hi } else { lo + 1.0 })]),
                bins: Some(DEFAULT_BINS),
                ..Domain::default()
            });
        }
    } else if let Some(days) = dates {
        col.kind = ColumnType::Date;
        let (lo, hi) = (days.iter().min().copied().unwrap_or(0), days.iter().max().copied().unwrap_or(0));
        let span = hi - lo;
        let g = if span <= 366 {
            Granularity::Day
        } else if span <= 366 * 20 {
            Granularity::Month
        } else {
            Granularity::Year
        };
        let fmt = |d: i64| schema::date_from_days(d).map(|d| d.to_string()).unwrap_or_default();
        col.domain = data_domain(Domain {
            bounds: Some(vec![fmt(lo), fmt(hi.max(lo + 1))]),
            granularity: Some(g),
            ..Domain::default()
        });
    } else if let Some(secs) = datetimes {
        col.kind = ColumnType::Datetime;
        let (lo, hi) = (secs.iter().min().copied().unwrap_or(0), secs.iter().max().copied().unwrap_or(0));
        let span_days = (hi - lo) / 86_400;
        let g = if span_days <= 2 {
            Granularity::Hour
        } else if span_days <= 366 * 10 {
            Granularity::Month
        } else {
            Granularity::Year
        };
        let fmt = |t: i64| {
            chrono::DateTime::from_timestamp(t, 0)
                .map(|d| d.naive_utc().format("%Y-%m-%dT%H:%M:%S").to_string())
                .unwrap_or_default()
        };
        col.domain = data_domain(Domain {
            bounds: Some(vec![fmt(lo), fmt(hi.max(lo + 1))]),
            granularity: Some(g),
            ..Domain::default()
        });
    } else {
        let avg_len = values.iter().map(|v| v.len()).sum::<usize>() as f64 / values.len() as f64;
        let avg_spaces = values.iter().map(|v| v.matches(' ').count()).sum::<usize>() as f64 / values.len() as f64;
        if distinct.len() <= opts.max_categories.min(MAX_DOMAIN_SIZE - 1) && distinct.len() < values.len() {
            col.kind = ColumnType::Categorical;
            let mut cats: Vec<String> = distinct.iter().map(|s| s.to_string()).collect();
            cats.sort();
            col.domain = data_domain(Domain { categories: Some(cats), ..Domain::default() });
        } else if avg_len >= 30.0 && avg_spaces >= 3.0 {
            col.kind = ColumnType::Text;
            warn.push(
                "looks like free text: proposed as text (not modelled here; generated later from public context)"
                    .into(),
            );
        } else if distinct.len() == values.len() {
            col.kind = ColumnType::Identifier;
            col.role = Role::Identifier;
            warn.push("every value is unique: marked identifier (never modelled)".into());
        } else {
            col.kind = ColumnType::Text;
            warn.push(format!(
                "{} distinct values: too many for a small discrete domain (limit {}). Proposed as text; group \
                 it into a public category list or code hierarchy to model it",
                distinct.len(),
                opts.max_categories
            ));
        }
    }
    if col.kind != ColumnType::Identifier {
        col.role = name_role.unwrap_or_default();
        if col.role == Role::Identifier {
            col.kind = ColumnType::Identifier;
            col.domain = None;
            col.precision = None;
            col.missing_values.clear();
            warn.push("the name suggests a key or direct identifier: marked identifier (never modelled)".into());
        }
    }
    if col.kind == ColumnType::Text && col.role == Role::Identifier {
        col.kind = ColumnType::Identifier;
    }
    Ok((col, warn))
}

pub(crate) fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{}", v as i64) } else { format!("{v}") }
}

/// Render a proposal as commented YAML for review.
pub fn render(p: &Proposal, data: &str) -> Result<String> {
    let mut out = format!(
        "# Schema proposed by `privsynth schema infer` from {data}.\n\
         # Review every column. Domains marked `source: data` were read from the private data:\n\
         # replace them with public knowledge and set `source: public` before DP fitting.\n"
    );
    for w in &p.warnings {
        out.push_str(&format!("# - {}\n", w.replace('\n', " ")));
    }
    out.push_str(&p.schema.to_yaml()?);
    Ok(out)
}
