//! Linked tables: a person table whose key is the privacy unit, event tables keyed to it (and
//! possibly to another event table), the public contribution bound of each event table and how
//! its dates are modelled. Everything here is public schema; the counting lives in `crate::ehr`.
//!
//! ```yaml
//! person: {table: patients, key: Id, birth: BIRTHDATE, death: DEATHDATE}
//! tables:
//!   - name: encounters
//!     primary_key: Id
//!     foreign_keys: [{column: PATIENT, references: patients}]
//!     events:
//!       rows_per_person: 50        # k: at most 50 rows per person are used, a random subset under a fresh secret key
//!       time: START                # the event's date or datetime
//!       end: STOP                  # optional: modelled as a duration after `time`
//!       duration: {bounds: [0, 1440], edges: [0, 15, 30, 60, 240, 1440]}
//!       duration_unit: minutes
//!       person_columns: [GENDER, BIRTHDATE]   # modelled jointly with each event
//!       summarise: [ENCOUNTERCLASS]            # the person's most frequent value joins the person model
//! ```

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::{Column, ColumnType, Domain, DomainSource, Role, Schema, Table};

/// The person table and its key: the privacy unit of every table in the schema.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Person {
    pub table: String,
    /// Key column of the person table (an identifier: never modelled, regenerated).
    pub key: String,
    /// Birth date column (date or datetime): event times are modelled as offsets from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth: Option<String>,
    /// Death date column (nullable): modelled as age at death, so it never precedes birth, and
    /// no synthetic event is dated after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub death: Option<String>,
    /// Public domain of the age at death in days (default `[0, 43830]`, 20 bins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub death_age: Option<Domain>,
}

/// A column holding the key of another table's row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ForeignKey {
    pub column: String,
    /// The referenced table (its `primary_key`, or the person key for the person table).
    pub references: String,
}

/// Unit of a duration column.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DurationUnit {
    #[default]
    Days,
    Hours,
    Minutes,
}

impl DurationUnit {
    pub fn seconds(self) -> i64 {
        match self {
            DurationUnit::Days => 86_400,
            DurationUnit::Hours => 3_600,
            DurationUnit::Minutes => 60,
        }
    }
}

/// How an event table is modelled.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Events {
    /// Public contribution bound k: at most this many rows per person are counted.
    pub rows_per_person: u32,
    /// The event's date or datetime column.
    pub time: String,
    /// Optional end column (date or datetime), modelled as a duration after `time`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// Domain of the duration (non-negative; default `[0, 365]` days, 12 bins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Domain>,
    #[serde(default)]
    pub duration_unit: DurationUnit,
    /// Domain of an event's offset in days from the person's first event in this table, also
    /// used for the person's span (last minus first); default `[0, 36525]`, 20 bins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<Domain>,
    /// Domain of the person's first event in days after birth; default `[0, 43830]`, 20 bins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<Domain>,
    /// Bins of the number of events per person (0..k); default one per value up to 16.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count_bins: Option<usize>,
    /// Columns of the person model (person columns or summaries such as `encounters.n`) that
    /// each event is modelled jointly with; events are drawn conditioned on them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub person_columns: Vec<String>,
    /// Categorical columns of this table whose most frequent value per person is added to the
    /// person model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub summarise: Vec<String>,
}

/// A public generator for a direct identifier's output values (nothing is learnt from the data).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Fake {
    Uuid,
    Ssn,
    FirstName,
    LastName,
    Address,
    Phone,
    Email,
}

fn domain(lo: i64, hi: i64, bins: usize) -> Domain {
    Domain {
        bounds: Some(vec![lo.to_string(), hi.to_string()]),
        bins: Some(bins),
        source: DomainSource::Public,
        ..Default::default()
    }
}

impl Events {
    pub fn offset_domain(&self) -> Domain {
        self.offset.clone().unwrap_or_else(|| domain(0, 36_525, 20))
    }
    pub fn first_domain(&self) -> Domain {
        self.first.clone().unwrap_or_else(|| domain(0, 43_830, 20))
    }
    pub fn duration_domain(&self) -> Domain {
        self.duration.clone().unwrap_or_else(|| domain(0, 365, 12))
    }
    pub fn count_domain(&self) -> Domain {
        let k = self.rows_per_person as usize;
        domain(0, k as i64, self.count_bins.unwrap_or(if k < 16 { k + 1 } else { 16 }))
    }
}

impl Person {
    pub fn death_age_domain(&self) -> Domain {
        self.death_age.clone().unwrap_or_else(|| domain(0, 43_830, 20))
    }
}

/// Names of the derived columns, shared by the model, the sampler and the audit.
pub mod derived {
    pub fn count(table: &str) -> String {
        format!("{table}.n")
    }
    pub fn first(table: &str) -> String {
        format!("{table}.first_days")
    }
    pub fn span(table: &str) -> String {
        format!("{table}.span_days")
    }
    pub fn top(table: &str, column: &str) -> String {
        format!("{table}.top.{column}")
    }
    pub fn death_age(death: &str) -> String {
        format!("{death}.age_days")
    }
    /// In an event model: days since the person's first event of the table.
    pub const OFFSET: &str = "offset_days";
    pub fn duration(end: &str) -> String {
        format!("{end}.duration")
    }
    pub fn person(column: &str) -> String {
        format!("person.{column}")
    }
}

fn int_column(name: String, domain: Domain, nullable: bool, description: String) -> Column {
    Column {
        name,
        kind: ColumnType::Integer,
        role: Role::Attribute,
        nullable,
        description: Some(description),
        unit: None,
        missing_values: vec![],
        out_of_domain: Some(super::OutOfDomain::Clip),
        format: None,
        precision: None,
        domain: Some(domain),
        llm: None,
        timezone: None,
        fake: None,
    }
}

impl Schema {
    pub fn is_linked(&self) -> bool {
        self.person.is_some()
    }

    /// Event tables in an order where every referenced event table comes first.
    pub fn event_tables(&self) -> Vec<&Table> {
        let mut out: Vec<&Table> = vec![];
        let mut left: Vec<&Table> = self.tables.iter().filter(|t| t.events.is_some()).collect();
        while !left.is_empty() {
            let before = left.len();
            left.retain(|t| {
                let ready = t.foreign_keys.iter().all(|fk| {
                    self.person.as_ref().is_some_and(|p| p.table == fk.references)
                        || out.iter().any(|o| o.name == fk.references)
                        || fk.references == t.name
                });
                if ready {
                    out.push(t);
                }
                !ready
            });
            if left.len() == before {
                // A cycle: validation reports it; keep the declared order.
                out.append(&mut left);
            }
        }
        out
    }

    pub fn person_table(&self) -> Option<&Table> {
        let p = self.person.as_ref()?;
        self.tables.iter().find(|t| t.name == p.table)
    }

    /// The person model's table: the person table's modelled columns (death as age at death)
    /// plus, per event table, the bounded summaries of each person's events.
    pub fn person_model_table(&self) -> Option<Table> {
        let p = self.person.as_ref()?;
        let base = self.person_table()?;
        let mut cols: Vec<Column> = vec![];
        for c in &base.columns {
            if Some(&c.name) == p.death.as_ref() && p.birth.is_some() {
                cols.push(int_column(
                    derived::death_age(&c.name),
                    p.death_age_domain(),
                    true,
                    format!("age at death in days ({})", c.name),
                ));
            } else if c.is_modelled() {
                cols.push(c.clone());
            }
        }
        for t in self.event_tables() {
            let e = t.events.as_ref().expect("event table");
            cols.push(int_column(
                derived::count(&t.name),
                e.count_domain(),
                false,
                format!("rows of {} per person, at most {}", t.name, e.rows_per_person),
            ));
            if p.birth.is_some() {
                cols.push(int_column(
                    derived::first(&t.name),
                    e.first_domain(),
                    true,
                    format!("days from birth to the person's first {} row", t.name),
                ));
            }
            cols.push(int_column(
                derived::span(&t.name),
                e.offset_domain(),
                true,
                format!("days from the person's first to last {} row", t.name),
            ));
            for s in &e.summarise {
                if let Some(c) = t.column(s) {
                    let mut c = c.clone();
                    c.name = derived::top(&t.name, s);
                    c.nullable = true;
                    c.role = Role::Attribute;
                    c.description = Some(format!("the person's most frequent {s} in {}", t.name));
                    cols.push(c);
                }
            }
        }
        Some(model_table(base, cols))
    }

    /// The model table of an event table: its own modelled columns (time and end excluded),
    /// the offset from the person's first event, the duration, and the person columns.
    pub fn event_model_table(&self, t: &Table) -> Option<Table> {
        let e = t.events.as_ref()?;
        let person = self.person_model_table()?;
        let mut cols: Vec<Column> = vec![];
        for c in &t.columns {
            if c.name == e.time || Some(&c.name) == e.end.as_ref() || !c.is_modelled() {
                continue;
            }
            cols.push(c.clone());
        }
        cols.push(int_column(
            derived::OFFSET.into(),
            e.offset_domain(),
            false,
            format!("days since the person's first {} row", t.name),
        ));
        if let Some(end) = &e.end {
            let unit = format!("{:?}", e.duration_unit).to_lowercase();
            cols.push(int_column(
                derived::duration(end),
                e.duration_domain(),
                true,
                format!("{end} minus {} in {unit}", e.time),
            ));
        }
        for pc in &e.person_columns {
            if let Some(c) = person.column(pc) {
                let mut c = c.clone();
                c.name = derived::person(pc);
                cols.push(c);
            }
        }
        Some(model_table(t, cols))
    }
}

/// A model table: `base` with `columns`, and none of the source table's workload, rules, keys,
/// event block or unit, which describe the source table, not the model's rows (the schema's
/// `read_from_data` items are checked on the whole schema before any model is fitted).
fn model_table(base: &Table, columns: Vec<Column>) -> Table {
    Table {
        columns,
        workload: vec![],
        constraints: vec![],
        primary_key: None,
        foreign_keys: vec![],
        events: None,
        privacy_unit: None,
        rows_per_unit: None,
        read_from_data: vec![],
        ..base.clone()
    }
}

/// Check the linked structure: keys, references, bounds and derived columns.
pub fn validate(schema: &Schema, problems: &mut Vec<String>) {
    let by_name: HashMap<&str, &Table> = schema.tables.iter().map(|t| (t.name.as_str(), t)).collect();
    let is_date =
        |t: &Table, c: &str| t.column(c).is_some_and(|c| matches!(c.kind, ColumnType::Date | ColumnType::Datetime));
    let Some(p) = &schema.person else {
        for t in &schema.tables {
            if t.events.is_some() || !t.foreign_keys.is_empty() {
                problems.push(format!(
                    "table {:?} has events or foreign_keys but the schema names no `person` table",
                    t.name
                ));
            }
        }
        return;
    };
    let Some(pt) = by_name.get(p.table.as_str()) else {
        problems.push(format!("person.table {:?} is not a table of the schema", p.table));
        return;
    };
    if pt.column(&p.key).is_none() {
        problems.push(format!("person.key {:?} is not a column of table {:?}", p.key, p.table));
    }
    for (what, c) in [("birth", &p.birth), ("death", &p.death)] {
        if let Some(c) = c
            && !is_date(pt, c)
        {
            problems.push(format!("person.{what} {c:?} is not a date or datetime column of table {:?}", p.table));
        }
    }
    if pt.events.is_some() {
        problems.push(format!("the person table {:?} cannot have `events`", p.table));
    }
    for t in &schema.tables {
        let tn = &t.name;
        if let Some(k) = &t.primary_key
            && t.column(k).is_none()
        {
            problems.push(format!("table {tn:?}: primary_key {k:?} is not one of its columns"));
        }
        for fk in &t.foreign_keys {
            if t.column(&fk.column).is_none() {
                problems.push(format!("table {tn:?}: foreign key column {:?} is not one of its columns", fk.column));
            }
            match by_name.get(fk.references.as_str()) {
                None => problems.push(format!("table {tn:?}: foreign key {:?} references {:?}, which is not a table of the schema", fk.column, fk.references)),
                Some(r) if r.name != p.table && r.primary_key.is_none() => {
                    problems.push(format!("table {tn:?}: foreign key {:?} references {:?}, which has no primary_key", fk.column, fk.references))
                }
                Some(r) if r.name != p.table && r.events.is_none() => {
                    problems.push(format!("table {tn:?}: foreign key {:?} references {:?}, which is neither the person table nor an event table", fk.column, fk.references))
                }
                _ => {}
            }
        }
        let Some(e) = &t.events else {
            if t.name != p.table && !t.foreign_keys.is_empty() {
                problems.push(format!(
                    "table {tn:?} has foreign keys but no `events` block (rows_per_person and time are needed)"
                ));
            }
            continue;
        };
        if !t.foreign_keys.iter().any(|fk| fk.references == p.table) {
            problems.push(format!("event table {tn:?} needs a foreign key to the person table {:?}", p.table));
        }
        if e.rows_per_person == 0 || e.rows_per_person > 10_000 {
            problems.push(format!("table {tn:?}: events.rows_per_person must be between 1 and 10000"));
        }
        if !is_date(t, &e.time) {
            problems.push(format!("table {tn:?}: events.time {:?} is not a date or datetime column", e.time));
        }
        if let Some(end) = &e.end {
            if !is_date(t, end) {
                problems.push(format!("table {tn:?}: events.end {end:?} is not a date or datetime column"));
            }
        } else if e.duration.is_some() {
            problems.push(format!("table {tn:?}: events.duration needs events.end"));
        }
        for s in &e.summarise {
            if !t.column(s).is_some_and(|c| c.kind == ColumnType::Categorical && c.is_modelled()) {
                problems.push(format!("table {tn:?}: events.summarise {s:?} is not a modelled categorical column"));
            }
        }
        for fk in &t.foreign_keys {
            if t.column(&fk.column).is_some_and(Column::is_modelled) {
                problems.push(format!(
                    "table {tn:?}: foreign key {:?} must have role identifier (keys are regenerated, never modelled)",
                    fk.column
                ));
            }
        }
    }
    for t in &schema.tables {
        if let Some(k) = &t.primary_key
            && t.column(k).is_some_and(Column::is_modelled)
        {
            problems.push(format!(
                "table {:?}: primary_key {k:?} must have role identifier (keys are regenerated, never modelled)",
                t.name
            ));
        }
    }
    if pt.column(&p.key).is_some_and(Column::is_modelled) {
        problems.push(format!("person.key {:?} must have role identifier", p.key));
    }
    // Derived columns: their domains and the person columns events are modelled with.
    if let Some(person) = schema.person_model_table() {
        let mut seen = HashSet::new();
        for c in &person.columns {
            if !seen.insert(c.name.as_str()) {
                problems.push(format!(
                    "person model: column {:?} appears twice (a column named like a derived summary?)",
                    c.name
                ));
            }
            if let Err(e) = super::domain::ColumnDomain::build(c) {
                problems.push(format!("person model, column {:?}: {e}", c.name));
            }
        }
        for t in schema.event_tables() {
            let e = t.events.as_ref().expect("event table");
            for pc in &e.person_columns {
                if person.column(pc).is_none() {
                    let known: Vec<&str> = person.columns.iter().map(|c| c.name.as_str()).collect();
                    problems.push(format!(
                        "table {:?}: events.person_columns {pc:?} is not a column of the person model; it has: {}",
                        t.name,
                        known.join(", ")
                    ));
                }
            }
            if let Some(m) = schema.event_model_table(t) {
                for c in &m.columns {
                    if let Err(err) = super::domain::ColumnDomain::build(c) {
                        problems.push(format!("table {:?}, derived column {:?}: {err}", t.name, c.name));
                    }
                }
            }
        }
    }
}
