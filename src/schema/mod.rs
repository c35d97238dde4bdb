//! The public schema: what privsynth may assume without spending privacy budget.
//!
//! A schema file is YAML that a data steward can read. It lists tables and, per column, the
//! type, the disclosure role, the public domain (categories or bounds plus binning) and how to
//! treat values outside it. Everything in a schema is public by definition, so anything read from
//! the private data to fill it (`schema infer`) is marked `source: data` and refused for DP
//! fitting until a person has reviewed it (see [`Schema::ensure_public_domains`]).
//!
//! Loading validates the whole file and reports every problem with the column it concerns.

pub mod constraints;
pub mod domain;
pub mod linked;

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use chrono::{Datelike, NaiveDate, NaiveDateTime};
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{Error, Result};

/// Version of the schema file format written by this build.
pub const FORMAT_VERSION: u32 = 1;

/// Largest `rows_per_unit` accepted: noise scales with the bound, so beyond this no marginal
/// keeps any signal.
pub const MAX_ROWS_PER_UNIT: u32 = 100_000;

/// Largest number of codes (including the null code) a modelled column may have. Larger domains
/// make marginals sparse and models huge; the fix is coarser bins or a code hierarchy.
pub const MAX_DOMAIN_SIZE: usize = 4096;

/// A schema file: one or more tables.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    /// Format version of the file (currently 1).
    pub version: u32,
    /// Linked tables: the person table whose key is the privacy unit of every table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<linked::Person>,
    /// Set by `schema infer --dp-epsilon`: the DP release that proposed this schema, so that a
    /// fit can add its cost to the guarantee it prints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dp_inference: Option<DpInference>,
    pub tables: Vec<Table>,
}

/// The DP release behind a schema proposed by `schema infer --dp-epsilon`. The run id finds its
/// ledger entry (the ledger, not the schema, holds the dataset's fingerprint).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DpInference {
    pub run_id: String,
    /// The guarantee it printed, and its zCDP cost and approximate mechanisms' delta.
    pub epsilon: f64,
    pub delta: f64,
    pub rho: f64,
    #[serde(default)]
    pub mechanism_delta: f64,
}

/// One table of a schema.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Table {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Column holding the privacy unit (e.g. `person_id`); absent = one row is one unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy_unit: Option<String>,
    /// Public bound on the rows one unit contributes (required with `privacy_unit`): each unit
    /// keeps at most this many rows, chosen at random, and every sensitivity scales with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_per_unit: Option<u32>,
    /// Fields that `schema infer` read from the private data (`age.nullable`,
    /// `fare.precision`, `encounters.rows_per_person`, ...). Like a `source: data` domain, each
    /// is a disclosure until a person has reviewed it; DP fitting refuses the table while the
    /// list is not empty. Delete an item once its value is a public choice.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read_from_data: Vec<String>,
    /// Tokens read as missing in every column (an empty field is always missing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_values: Vec<String>,
    /// Default treatment of values outside a column's declared domain.
    #[serde(default)]
    pub out_of_domain: OutOfDomain,
    /// How to read the file when it is CSV.
    #[serde(default, skip_serializing_if = "CsvFormat::is_default")]
    pub csv: CsvFormat,
    pub columns: Vec<Column>,
    /// The marginals that matter most to the data's users, with weights: AIM spends its budget
    /// where these are worst reproduced. Empty = all 2-way marginals under a cell limit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workload: Vec<WorkloadEntry>,
    /// Cross-column rules ([`constraints`]); only `status: reviewed` ones are enforced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<constraints::Constraint>,
    /// Key of the table's rows (linked schemas; regenerated in the output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_key: Option<String>,
    /// Columns referencing other tables' rows (linked schemas; regenerated in the output).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub foreign_keys: Vec<linked::ForeignKey>,
    /// How an event table of a linked schema is bounded and modelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<linked::Events>,
}

/// One workload marginal: a set of modelled columns and its weight.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WorkloadEntry {
    pub columns: Vec<String>,
    #[serde(default = "default_weight")]
    pub weight: f64,
}

fn default_weight() -> f64 {
    1.0
}

/// Check workload entries against a table: modelled columns, no repeats, finite weight >= 0.
pub fn validate_workload(t: &Table, entries: &[WorkloadEntry]) -> std::result::Result<(), String> {
    for (i, e) in entries.iter().enumerate() {
        if e.columns.is_empty() {
            return Err(format!("workload entry {} has no columns", i + 1));
        }
        for (j, c) in e.columns.iter().enumerate() {
            match t.column(c) {
                None => return Err(format!("workload entry {}: {c:?} is not a column of table {:?}", i + 1, t.name)),
                Some(col) if !col.is_modelled() => {
                    return Err(format!("workload entry {}: column {c:?} is not modelled (identifier or text)", i + 1));
                }
                _ => {}
            }
            if e.columns[..j].contains(c) {
                return Err(format!("workload entry {}: column {c:?} is repeated", i + 1));
            }
        }
        if !(e.weight.is_finite() && e.weight >= 0.0) {
            return Err(format!("workload entry {}: weight must be a finite number >= 0, got {}", i + 1, e.weight));
        }
    }
    Ok(())
}

/// CSV dialect of a table's file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CsvFormat {
    #[serde(default = "default_delimiter", with = "delimiter_serde")]
    pub delimiter: u8,
    /// False when the file has no header line: columns are then taken in schema order.
    #[serde(default = "default_true")]
    pub header: bool,
}

impl Default for CsvFormat {
    fn default() -> Self {
        CsvFormat { delimiter: b',', header: true }
    }
}

impl CsvFormat {
    fn is_default(&self) -> bool {
        *self == CsvFormat::default()
    }
}

fn default_delimiter() -> u8 {
    b','
}
fn default_true() -> bool {
    true
}

mod delimiter_serde {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(d: &u8, s: S) -> Result<S::Ok, S::Error> {
        let text = if *d == b'\t' { "\\t".to_string() } else { (*d as char).to_string() };
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_delimiter(&s).map_err(D::Error::custom)
    }
}

/// Parse a delimiter given as a single ASCII character or `\t` / `tab`.
pub fn parse_delimiter(s: &str) -> std::result::Result<u8, String> {
    match s {
        "\\t" | "\t" | "tab" => Ok(b'\t'),
        _ if s.len() == 1 && s.is_ascii() && s != "\"" && s != "\n" => Ok(s.as_bytes()[0]),
        _ => Err(format!("delimiter must be one ASCII character or \"\\t\", got {s:?}")),
    }
}

/// One column of a table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ColumnType,
    #[serde(default)]
    pub role: Role,
    #[serde(default)]
    pub nullable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Column-specific missing-value tokens, added to the table's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_values: Vec<String>,
    /// Overrides the table's out-of-domain policy for this column.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "policy_or_null")]
    pub out_of_domain: Option<OutOfDomain>,
    /// strftime format of date/datetime values in text files (default: ISO 8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Datetime columns only: `UTC` says the values are instants. Every input value must carry
    /// its offset (`Z` or `+HH:MM`; it is converted to UTC), a value without one is refused as
    /// ambiguous, and outputs keep the zone (Parquet/IPC timestamps with time zone "UTC", CSV
    /// values ending in `Z`). Without it a datetime column is wall-clock time (a trailing `Z`
    /// is accepted and dropped, as before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Decimal places of decoded float values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<Domain>,
    /// How the LLM stage writes this column (text columns only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<TextSpec>,
    /// Output values of a direct identifier from a public generator (linked schemas; without
    /// it, identifiers other than keys are left out of the output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fake: Option<linked::Fake>,
}

/// How the LLM stage writes a text column. All of it is public and goes into prompts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct TextSpec {
    /// Instruction for the model; `{name}`, `{description}` and `{unit}` are filled in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Longest value in characters (default: `--llm-max-chars`; the smaller of the two applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_chars: Option<usize>,
    /// Modelled columns the value depends on (default: all of them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<String>,
}

/// A cell as a value rather than a code, as the audit reads files and as rules see synthetic
/// records: numbers, dates and datetimes on their numeric line, categories and booleans by
/// label.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    Missing,
    /// A number, date (days since 1970-01-01) or datetime (seconds since 1970-01-01T00:00:00).
    Point(f64),
    /// A category (canonical label when it is in the domain) or a boolean (`true`/`false`).
    Label(&'a str),
}

/// Placeholders a text column's prompt template may use.
pub const PROMPT_PLACEHOLDERS: [&str; 3] = ["{name}", "{description}", "{unit}"];

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    Categorical,
    Integer,
    Float,
    Date,
    Datetime,
    Boolean,
    /// Free text: not encoded into the discrete domain (filled later by the LLM stage).
    Text,
    /// A key or direct identifier: never modelled.
    Identifier,
}

impl ColumnType {
    /// Columns with numeric bounds (numbers, dates and datetimes on their numeric line).
    pub fn is_bounded(self) -> bool {
        matches!(self, ColumnType::Integer | ColumnType::Float | ColumnType::Date | ColumnType::Datetime)
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_owned));
        f.write_str(s.as_deref().unwrap_or("?"))
    }
}

/// Disclosure role of a column.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Direct identifier: never modelled; regenerated or dropped.
    Identifier,
    /// Could single a person out in combination with other columns (age, sex, postcode, ...).
    QuasiIdentifier,
    /// The secret an attacker would want to learn (diagnosis, income, ...).
    Sensitive,
    #[default]
    Attribute,
}

/// What to do with a cell that does not fit its column: outside the declared domain, not of
/// the column's type, or missing in a column that is not nullable. In YAML, an unquoted `null`
/// is the `null` policy (not "unset"), so `out_of_domain: null` means what it says.
///
/// `drop`, `clip` and `null` keep a DP fit total: each decides about one row from that row
/// alone, so adding or removing a unit cannot turn a successful run into a failed one. `error`
/// is the strict choice, outside the guarantee: whether the run fails then depends on the data.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OutOfDomain {
    /// Leave the row out of the fit (counted only in the data holder's diagnostics).
    #[default]
    Drop,
    /// Move numbers and dates to the nearest bound (bounded columns only); cells that are not
    /// of the column's type, or missing in a non-nullable column, drop their row.
    Clip,
    /// Treat the value as missing (nullable columns only).
    Null,
    /// Stop with an error naming file, row and column. Outside the DP guarantee: one added
    /// record can turn a successful run into a failure.
    Error,
}

impl<'de> Deserialize<'de> for OutOfDomain {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(policy_or_null(d)?.unwrap_or(OutOfDomain::Null))
    }
}

/// `error` / `clip` / `null` as text, or a YAML null read as the `null` policy.
fn policy_or_null<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<OutOfDomain>, D::Error> {
    use serde::de::Error as _;
    match Option::<String>::deserialize(d)?.as_deref() {
        None | Some("null") => Ok(Some(OutOfDomain::Null)),
        Some("drop") => Ok(Some(OutOfDomain::Drop)),
        Some("error") => Ok(Some(OutOfDomain::Error)),
        Some("clip") => Ok(Some(OutOfDomain::Clip)),
        Some(other) => {
            Err(D::Error::custom(format!("unknown out_of_domain policy {other:?}; expected drop, clip, null or error")))
        }
    }
}

/// Where a domain came from.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DomainSource {
    /// Public knowledge (a data dictionary, a standard, a reviewed proposal).
    #[default]
    Public,
    /// Read from the private data by `schema infer`: a leak until a person reviews it.
    Data,
    /// Derived from the private data by a DP mechanism, charged to the ledger.
    Dp,
}

/// A public domain: a category list, or bounds with a binning rule.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Domain {
    /// Categories (categorical columns); numbers and booleans are accepted and kept as text.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "scalars",
        serialize_with = "write_scalars"
    )]
    pub categories: Option<Vec<String>>,
    /// `[lo, hi]` (numbers, or ISO dates/datetimes), both inclusive.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "scalars",
        serialize_with = "write_scalars"
    )]
    pub bounds: Option<Vec<String>>,
    /// Number of equal-width bins between the bounds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bins: Option<usize>,
    /// Explicit ascending bin edges; the first and last are the bounds.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "scalars",
        serialize_with = "write_scalars"
    )]
    pub edges: Option<Vec<String>>,
    /// Calendar bins for dates and datetimes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granularity: Option<Granularity>,
    #[serde(default)]
    pub source: DomainSource,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

/// Write list items that are canonical numbers as YAML numbers, everything else as strings.
fn write_scalars<S: serde::Serializer>(v: &Option<Vec<String>>, s: S) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let Some(v) = v else { return s.serialize_none() };
    let mut seq = s.serialize_seq(Some(v.len()))?;
    for item in v {
        match (item.parse::<i64>(), item.parse::<f64>()) {
            (Ok(i), _) if i.to_string() == *item => seq.serialize_element(&i)?,
            (_, Ok(f)) if f.is_finite() && f.to_string() == *item => seq.serialize_element(&f)?,
            _ => seq.serialize_element(item)?,
        }
    }
    seq.end()
}

/// Accept a YAML list whose items are strings, numbers or booleans, keeping each as text.
fn scalars<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Vec<String>>, D::Error> {
    let v: Option<Vec<constraints::Scalar>> = Option::deserialize(d)?;
    Ok(v.map(|v| v.into_iter().map(constraints::Scalar::text).collect()))
}

impl Column {
    /// Columns that get a discrete code: everything but identifiers and free text.
    pub fn is_modelled(&self) -> bool {
        self.role != Role::Identifier && !matches!(self.kind, ColumnType::Identifier | ColumnType::Text)
    }
}

impl Table {
    /// A table with default settings (no privacy-unit column, no bound, rows that do not fit
    /// dropped).
    pub fn new(name: &str, description: Option<String>, csv: CsvFormat, columns: Vec<Column>) -> Table {
        Table {
            name: name.to_string(),
            description,
            privacy_unit: None,
            rows_per_unit: None,
            read_from_data: vec![],
            missing_values: vec![],
            out_of_domain: OutOfDomain::Drop,
            csv,
            columns,
            workload: vec![],
            constraints: vec![],
            primary_key: None,
            foreign_keys: vec![],
            events: None,
        }
    }

    /// The out-of-domain policy in force for a column.
    pub fn policy(&self, col: &Column) -> OutOfDomain {
        col.out_of_domain.unwrap_or(self.out_of_domain)
    }

    /// Missing-value tokens in force for a column.
    pub fn missing_tokens<'a>(&'a self, col: &'a Column) -> impl Iterator<Item = &'a str> {
        self.missing_values.iter().chain(col.missing_values.iter()).map(String::as_str)
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

impl Schema {
    /// A schema of one table, validated (`origin` names the source in messages).
    pub fn single(table: Table, origin: &str) -> Result<Schema> {
        let schema = Schema { version: FORMAT_VERSION, person: None, dp_inference: None, tables: vec![table] };
        schema.validate(origin)?;
        Ok(schema)
    }

    /// Read and validate a schema file.
    pub fn load(path: &Path) -> Result<Schema> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Schema::from_yaml(&text, &path.display().to_string())
    }

    /// Parse and validate schema text; `origin` names the file in messages.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Schema> {
        check_yaml_shape(text).map_err(|m| Error::schema(origin, m))?;
        let schema: Schema = serde_yaml_ng::from_str(text).map_err(|e| {
            let at = e.location().map(|l| format!(" (line {}, column {})", l.line(), l.column()));
            Error::schema(origin, format!("is not a valid schema{}: {e}", at.unwrap_or_default()))
        })?;
        schema.validate(origin)?;
        Ok(schema)
    }

    pub fn to_yaml(&self) -> Result<String> {
        serde_yaml_ng::to_string(self).map_err(|e| Error::Internal(format!("cannot write schema: {e}")))
    }

    /// Pick a table by name, or the only one.
    pub fn table(&self, name: Option<&str>) -> Result<&Table> {
        match name {
            Some(n) => self.tables.iter().find(|t| t.name == n).ok_or_else(|| {
                let names: Vec<&str> = self.tables.iter().map(|t| t.name.as_str()).collect();
                Error::Usage(format!("the schema has no table {n:?}; it has: {}", names.join(", ")))
            }),
            None if self.tables.len() == 1 => Ok(&self.tables[0]),
            None => {
                let names: Vec<&str> = self.tables.iter().map(|t| t.name.as_str()).collect();
                Err(Error::Usage(format!(
                    "the schema has {} tables ({}); choose one with --table",
                    names.len(),
                    names.join(", ")
                )))
            }
        }
    }

    /// Check every rule the types cannot express. Reports all problems at once.
    pub fn validate(&self, origin: &str) -> Result<()> {
        let mut problems = Vec::new();
        if self.version != FORMAT_VERSION {
            problems
                .push(format!("version {} is not supported (this build reads version {FORMAT_VERSION})", self.version));
        }
        if self.tables.is_empty() {
            problems.push("it declares no tables".into());
        }
        let mut table_names = HashSet::new();
        for t in &self.tables {
            if !table_names.insert(&t.name) {
                problems.push(format!("table {:?} is declared twice", t.name));
            }
            validate_table(t, &mut problems);
        }
        linked::validate(self, &mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::schema(origin, format!("has {} problem(s):\n  - {}", problems.len(), problems.join("\n  - "))))
        }
    }

    /// Refuse values read from the private data (`source: data` domains and the
    /// `read_from_data` fields of `schema infer`) unless `allow` is set.
    ///
    /// A category list, a min/max, a nullability flag, a precision or a rows-per-person bound
    /// taken from the data is itself a disclosure, so a DP guarantee cannot hold for a schema
    /// that contains one. Returns the warning to print when the override is used.
    pub fn ensure_public_domains(&self, origin: &str, allow: bool) -> Result<Option<String>> {
        let items = self.read_from_data();
        if items.is_empty() {
            return Ok(None);
        }
        let msg = format!(
            "{} value(s) in {origin} were read from the private data: {}. Categories, bounds, \
             flags or bounds taken from the data reveal values of real records, so a DP guarantee \
             does not hold for them.",
            items.len(),
            items.join(", ")
        );
        if allow {
            Ok(Some(format!(
                "WARNING: {msg} Proceeding because the override was given; the \
                             release is NOT differentially private with respect to these values."
            )))
        } else {
            Err(Error::schema(
                origin,
                format!(
                    "cannot be used for DP fitting: {msg} Review each (replace it with public \
                     knowledge such as a data dictionary); then set a domain's `source: public` \
                     and delete reviewed items from the table's `read_from_data` list, or pass \
                     --allow-data-domains to proceed knowingly."
                ),
            ))
        }
    }

    /// Everything in the schema read from the private data: `table.column (domain)` for
    /// modelled columns with `source: data`, and each table's `read_from_data` items.
    pub fn read_from_data(&self) -> Vec<String> {
        let mut out: Vec<String> = self.data_domain_columns().into_iter().map(|c| format!("{c} (domain)")).collect();
        for t in &self.tables {
            out.extend(
                t.read_from_data.iter().map(|i| {
                    if i.starts_with(&format!("{}.", t.name)) { i.clone() } else { format!("{}.{i}", t.name) }
                }),
            );
        }
        out
    }

    /// `table.column` names of modelled columns whose domain was read from the data.
    pub fn data_domain_columns(&self) -> Vec<String> {
        self.tables
            .iter()
            .flat_map(|t| {
                t.columns.iter().filter(|c| c.is_modelled()).filter_map(move |c| {
                    c.domain
                        .as_ref()
                        .filter(|d| d.source == DomainSource::Data)
                        .map(|_| format!("{}.{}", t.name, c.name))
                })
            })
            .collect()
    }
}

/// Largest schema file, deepest nesting and widest indentation accepted. A schema is a page of
/// YAML; a file far beyond these is not one, and parsing it could take minutes (deep nesting
/// costs the parser quadratic time) or much memory.
const MAX_SCHEMA_BYTES: usize = 16 << 20;
const MAX_YAML_DEPTH: usize = 64;
const MAX_YAML_INDENT: usize = 256;

/// Refuse text whose size or nesting no schema has, before the YAML parser sees it.
fn check_yaml_shape(text: &str) -> std::result::Result<(), String> {
    if text.len() > MAX_SCHEMA_BYTES {
        return Err(format!("is {} bytes; a schema file is at most {MAX_SCHEMA_BYTES}", text.len()));
    }
    for (i, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start_matches([' ', '-']).len();
        if indent > MAX_YAML_INDENT {
            return Err(format!("line {}: indented {indent} columns deep; a schema nests far less", i + 1));
        }
    }
    let (mut depth, mut deepest, mut quote) = (0usize, 0usize, None::<char>);
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (None, ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
        if deepest > MAX_YAML_DEPTH {
            return Err(format!("nests brackets more than {MAX_YAML_DEPTH} deep; a schema nests far less"));
        }
    }
    Ok(())
}

fn validate_table(t: &Table, problems: &mut Vec<String>) {
    let tn = &t.name;
    if t.columns.is_empty() {
        problems.push(format!("table {tn:?} has no columns"));
    }
    let mut seen = HashSet::new();
    for c in &t.columns {
        if !seen.insert(c.name.as_str()) {
            problems.push(format!("table {tn:?}: column {:?} is declared twice", c.name));
        }
    }
    match (&t.privacy_unit, t.rows_per_unit) {
        (Some(u), k) => {
            match t.column(u) {
                None => problems.push(format!("table {tn:?}: privacy_unit {u:?} is not one of its columns")),
                Some(c) if c.is_modelled() => problems.push(format!(
                    "table {tn:?}: privacy_unit {u:?} must be a key (type: identifier or role: identifier), not a modelled column"
                )),
                Some(_) => {}
            }
            match k {
                None => problems.push(format!(
                    "table {tn:?}: privacy_unit {u:?} needs a public bound on the rows one unit contributes: add \
                     `rows_per_unit: K` (e.g. 1 when each unit has one row; for repeated rows choose K from public \
                     knowledge such as the study protocol, not from the data). Each unit then keeps at most K rows, \
                     chosen at random, and every sensitivity scales with K"
                )),
                Some(0) => problems.push(format!("table {tn:?}: rows_per_unit must be at least 1")),
                Some(k) if k > MAX_ROWS_PER_UNIT => {
                    problems.push(format!("table {tn:?}: rows_per_unit {k} is above {MAX_ROWS_PER_UNIT}; noise grows with it, so such a bound leaves no signal"))
                }
                _ => {}
            }
        }
        (None, Some(_)) => {
            problems.push(format!("table {tn:?}: rows_per_unit applies only with a privacy_unit column"))
        }
        (None, None) => {}
    }
    for c in &t.columns {
        if let Err(p) = validate_column(t, c) {
            problems.push(format!("table {tn:?}, column {:?}: {p}", c.name));
        }
    }
    if let Err(p) = validate_workload(t, &t.workload) {
        problems.push(format!("table {tn:?}: {p}"));
    }
    problems.extend(constraints::validate(t).into_iter().map(|p| format!("table {tn:?}: {p}")));
}

fn validate_column(t: &Table, c: &Column) -> std::result::Result<(), String> {
    if c.fake.is_some() && c.is_modelled() {
        return Err("`fake` applies to identifiers only (modelled columns are sampled)".into());
    }
    if let Some(spec) = &c.llm {
        validate_text_spec(t, c, spec)?;
    }
    let policy = t.policy(c);
    if policy == OutOfDomain::Null && !c.nullable && c.is_modelled() {
        return Err("out_of_domain: null needs `nullable: true`".into());
    }
    if !c.is_modelled() {
        return Ok(());
    }
    let bounded = c.kind.is_bounded();
    if policy == OutOfDomain::Clip && !bounded {
        return Err(format!(
            "out_of_domain: clip applies to bounded columns, not to a {} column; use error or null",
            c.kind
        ));
    }
    if c.precision.is_some() && c.kind != ColumnType::Float {
        return Err("precision applies to float columns only".into());
    }
    if c.format.is_some() && !matches!(c.kind, ColumnType::Date | ColumnType::Datetime) {
        return Err("format applies to date and datetime columns only".into());
    }
    if let Some(tz) = &c.timezone {
        if c.kind != ColumnType::Datetime {
            return Err("timezone applies to datetime columns only".into());
        }
        if tz != "UTC" {
            return Err(format!(
                "timezone {tz:?} is not supported: the one time zone is \"UTC\" (values in other zones are converted to it by their offset)"
            ));
        }
        if c.format.is_some() {
            return Err("timezone and format do not go together: a column with timezone: UTC reads ISO 8601 values with an offset (2024-03-01T09:30:00Z, 2024-03-01 10:30:00+01:00)".into());
        }
    }
    if let Some(f) = &c.format {
        use chrono::format::{Item, StrftimeItems};
        if StrftimeItems::new(f).any(|i| matches!(i, Item::Error)) {
            return Err(format!("format {f:?} is not a valid strftime pattern (e.g. \"%d/%m/%Y\")"));
        }
        // The pattern must read back what it writes, or synthetic files would not pass their own check.
        let probe =
            chrono::NaiveDate::from_ymd_opt(2001, 2, 3).and_then(|d| d.and_hms_opt(4, 5, 6)).ok_or("a probe date")?;
        let written = probe.format(f).to_string();
        let reads = match c.kind {
            ColumnType::Date => chrono::NaiveDate::parse_from_str(&written, f).is_ok(),
            _ => chrono::NaiveDateTime::parse_from_str(&written, f).is_ok(),
        };
        if !reads {
            return Err(format!(
                "format {f:?} does not read back the dates it writes (a {} needs every part: year, month, day{})",
                c.kind,
                if c.kind == ColumnType::Datetime { ", hour, minute" } else { "" }
            ));
        }
    }
    // Building the domain runs every remaining check (bounds order, edges, sizes).
    domain::ColumnDomain::build(c).map(|_| ())
}

fn validate_text_spec(t: &Table, c: &Column, spec: &TextSpec) -> std::result::Result<(), String> {
    if c.kind != ColumnType::Text || c.role == Role::Identifier {
        return Err("`llm` applies to text columns only (identifiers are never generated)".into());
    }
    if spec.max_chars.is_some_and(|n| n == 0 || n > 10_000) {
        return Err("llm.max_chars must be between 1 and 10000".into());
    }
    for name in &spec.context {
        if !t.column(name).is_some_and(Column::is_modelled) {
            return Err(format!("llm.context: {name:?} is not a modelled column of table {:?}", t.name));
        }
    }
    if let Some(p) = &spec.prompt {
        let mut rest = p.as_str();
        while let Some(i) = rest.find('{') {
            let tail = &rest[i..];
            match PROMPT_PLACEHOLDERS.iter().find(|ph| tail.starts_with(**ph)) {
                Some(ph) => rest = &tail[ph.len()..],
                None => {
                    let end = tail.find('}').map_or(tail.len(), |j| j + 1);
                    return Err(format!(
                        "llm.prompt: unknown placeholder {:?}; known: {}",
                        &tail[..end.min(40)],
                        PROMPT_PLACEHOLDERS.join(", ")
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Parse a bound or edge of a column into the numeric line used for binning:
/// the number itself, days since 1970-01-01 for dates, seconds for datetimes.
pub fn parse_point(kind: ColumnType, s: &str) -> std::result::Result<f64, String> {
    match kind {
        ColumnType::Integer | ColumnType::Float => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("{s:?} is not a finite number")),
        ColumnType::Date => parse_date_iso(s)
            .map(|d| days_from_epoch(d) as f64)
            .ok_or_else(|| format!("{s:?} is not a date (YYYY-MM-DD)")),
        ColumnType::Datetime => parse_datetime_iso(s)
            .map(|d| d.and_utc().timestamp() as f64)
            .ok_or_else(|| format!("{s:?} is not a datetime (YYYY-MM-DDTHH:MM:SS)")),
        _ => Err(format!("a {kind} column has no numeric bounds")),
    }
}

pub fn days_from_epoch(d: NaiveDate) -> i64 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid constant date")).num_days()
}

pub fn date_from_days(days: i64) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(1970, 1, 1)?.checked_add_signed(chrono::Duration::try_days(days)?)
}

/// ISO 8601 date, also accepting a datetime whose date part is taken.
pub fn parse_date_iso(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().or_else(|| parse_datetime_iso(s).map(|d| d.date()))
}

/// ISO 8601 datetime with `T` or space, optional fraction and optional `Z`; a bare date is
/// midnight.
pub fn parse_datetime_iso(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    let s = s.strip_suffix('Z').unwrap_or(s);
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, f) {
            return Some(d);
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0))
}

/// ISO 8601 datetime with an offset (`Z`, `+HH:MM`, `+HHMM` or `+HH`), `T` or space, optional
/// fraction, as the UTC instant it names; None without an offset (ambiguous for a column with
/// a time zone) or when it is not a datetime.
pub fn parse_datetime_utc(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    let owned;
    let s = match s.strip_suffix('Z').or_else(|| s.strip_suffix('z')) {
        Some(rest) => {
            owned = format!("{rest}+00:00");
            owned.as_str()
        }
        None => s,
    };
    for f in ["%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M%#z", "%Y-%m-%d %H:%M%#z"] {
        if let Ok(d) = chrono::DateTime::parse_from_str(s, f) {
            return Some(d.naive_utc());
        }
    }
    None
}

/// Start of the calendar period containing `d` at a date granularity.
pub fn period_start(d: NaiveDate, g: Granularity) -> NaiveDate {
    match g {
        Granularity::Week => d - chrono::Duration::days(d.weekday().num_days_from_monday() as i64),
        Granularity::Month => d.with_day(1).unwrap_or(d),
        Granularity::Quarter => NaiveDate::from_ymd_opt(d.year(), (d.month0() / 3) * 3 + 1, 1).unwrap_or(d),
        Granularity::Year => NaiveDate::from_ymd_opt(d.year(), 1, 1).unwrap_or(d),
        _ => d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_with_an_offset_read_as_utc_instants_and_without_one_are_refused() {
        let at = |s: &str| parse_datetime_utc(s).map(|d| d.to_string());
        assert_eq!(at("2024-03-01T09:30:00Z").as_deref(), Some("2024-03-01 09:30:00"));
        assert_eq!(at("2024-03-01 10:30:00+01:00").as_deref(), Some("2024-03-01 09:30:00"));
        assert_eq!(at("2024-03-01T04:30:00.5-0500").as_deref(), Some("2024-03-01 09:30:00.500"));
        assert_eq!(at("2024-03-01T00:30+09").as_deref(), Some("2024-02-29 15:30:00"));
        assert_eq!(at("2024-03-01T09:30:00"), None);
        assert_eq!(at("2024-03-01"), None);
        assert_eq!(at("not a time Z"), None);
    }

    const GOOD: &str = r#"
version: 1
tables:
  - name: t
    missing_values: ["?"]
    columns:
      - {name: id, type: identifier, role: identifier}
      - name: sex
        type: categorical
        role: quasi_identifier
        domain: {categories: [F, M]}
      - name: age
        type: integer
        domain: {bounds: [0, 120], bins: 12}
        out_of_domain: clip
      - name: grade
        type: categorical
        nullable: true
        domain: {categories: [1, 2, 3], source: data}
"#;

    #[test]
    fn parses_and_validates() {
        let s = Schema::from_yaml(GOOD, "good.yaml").unwrap();
        let t = s.table(None).unwrap();
        assert_eq!(t.columns.len(), 4);
        assert_eq!(t.columns[3].domain.as_ref().unwrap().categories.as_ref().unwrap(), &["1", "2", "3"]);
        assert_eq!(t.policy(&t.columns[2]), OutOfDomain::Clip);
        assert_eq!(t.policy(&t.columns[1]), OutOfDomain::Drop, "the default keeps a DP fit total");
        // YAML round trip keeps everything.
        let again = Schema::from_yaml(&s.to_yaml().unwrap(), "again").unwrap();
        assert_eq!(s, again);
    }

    #[test]
    fn data_domains_are_refused_unless_overridden() {
        let s = Schema::from_yaml(GOOD, "good.yaml").unwrap();
        let err = s.ensure_public_domains("good.yaml", false).unwrap_err().to_string();
        assert!(err.contains("t.grade") && err.contains("source: public"), "{err}");
        let warn = s.ensure_public_domains("good.yaml", true).unwrap().unwrap();
        assert!(warn.contains("NOT differentially private"));
        let reviewed = GOOD.replace("source: data", "source: public");
        let s = Schema::from_yaml(&reviewed, "r.yaml").unwrap();
        assert_eq!(s.ensure_public_domains("r.yaml", false).unwrap(), None);
    }

    #[test]
    fn reports_every_problem_with_its_column() {
        let bad = r#"
version: 1
tables:
  - name: t
    privacy_unit: pid
    columns:
      - {name: a, type: integer, domain: {bounds: [10, 1]}}
      - {name: a, type: categorical, domain: {categories: [x, x]}}
      - {name: c, type: categorical, out_of_domain: clip, domain: {categories: [x]}}
      - {name: d, type: float, domain: {bounds: [0, 1]}}
      - {name: e, type: categorical, out_of_domain: null, domain: {categories: [x]}}
"#;
        let err = Schema::from_yaml(bad, "bad.yaml").unwrap_err().to_string();
        for needle in [
            "bad.yaml",
            "privacy_unit \"pid\"",
            "column \"a\" is declared twice",
            "lower bound",
            "category \"x\" is listed twice",
            "clip applies to bounded columns",
            "column \"d\": a float column needs `bins` or `edges`",
            "needs `nullable: true`",
        ] {
            assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
        }
    }

    #[test]
    fn unknown_fields_and_types_are_named() {
        let err = Schema::from_yaml("version: 1\ntables: [{name: t, columns: [{name: a, type: number}]}]", "x.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.yaml") && err.contains("number"), "{err}");
        let err = Schema::from_yaml("version: 1\ntables: [{name: t, colums: []}]", "x.yaml").unwrap_err().to_string();
        assert!(err.contains("colums"), "{err}");
    }

    #[test]
    fn dates_and_periods() {
        assert_eq!(parse_point(ColumnType::Date, "1970-01-11").unwrap(), 10.0);
        assert_eq!(parse_point(ColumnType::Datetime, "1970-01-01T00:01:00Z").unwrap(), 60.0);
        let d = NaiveDate::from_ymd_opt(2024, 5, 17).unwrap();
        assert_eq!(period_start(d, Granularity::Quarter), NaiveDate::from_ymd_opt(2024, 4, 1).unwrap());
        assert_eq!(period_start(d, Granularity::Week), NaiveDate::from_ymd_opt(2024, 5, 13).unwrap());
        assert_eq!(date_from_days(days_from_epoch(d)), Some(d));
    }
}
