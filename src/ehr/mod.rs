//! Linked EHR tables with the person as privacy unit.
//!
//! The real tables are turned into one person table and one table per event table
//! ([`derive`]), which ordinary DP marginal models then fit:
//! - the **person model**: the person table's modelled columns (death as age at death) plus, per
//!   event table, bounded summaries of each person's events: their number, the days from birth
//!   to the first, the days from first to last, the most frequent value of chosen columns;
//! - one **event model** per event table: its own attributes, the days since the person's first
//!   event of that table, the duration (end minus start), and a few person columns.
//!
//! Every event table is first bounded to `rows_per_person` rows per person (a uniform random
//! subset per person under a fresh secret key, stable under adding or removing a person; see
//! `privsynth_privacy::bounding`), and its encoded rows carry that bound, so every mechanism
//! scales its sensitivity by it. Rows that cannot be attributed (a missing person key, a key
//! repeated in the person table beyond its first row, an event without a time or of no known
//! person) are left out, each decided from that row and its person alone, so no input makes a
//! run fail or succeed depending on one person's records. A person's rows in the person table and in each event table
//! are all released, so the costs add up (sequential composition); the budget is split evenly
//! between the models. Sampling and key regeneration are in [`sample`].

pub mod fake;
pub mod sample;
pub mod stream;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::codec::{Cell, ColumnCodec};
use crate::data::{self, RawTable};
use crate::error::{Error, Result};
use crate::model::file::ModelFile;
use crate::schema::linked::derived;
use crate::schema::{ColumnType, Domain, Schema, Table};
use privsynth_privacy::Sensitive;
use privsynth_privacy::bounding::{self, ContributionBound, SecretKey};

/// Where each table of a linked schema is read from.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// (table name, file), in schema order.
    pub files: Vec<(String, PathBuf)>,
}

impl Inputs {
    /// From one folder holding `<table>.csv` (or another of [`data::TABLE_EXTENSIONS`]) per table, or from a list of
    /// `table=path` items.
    pub fn resolve(schema: &Schema, specs: &[String]) -> Result<Inputs> {
        let mut files: Vec<(String, PathBuf)> = vec![];
        if specs.len() == 1 && !specs[0].contains('=') {
            let dir = Path::new(&specs[0]);
            if !dir.is_dir() {
                return Err(Error::data(
                    &specs[0],
                    "is not a folder: a linked schema needs a folder of tables (one file per table, named after it) or a list of table=path",
                ));
            }
            for t in &schema.tables {
                files.push((t.name.clone(), data::table_file(dir, &t.name)?));
            }
        } else {
            for s in specs {
                let Some((t, p)) = s.split_once('=') else {
                    return Err(Error::Usage(format!("{s:?}: expected table=path (or a single folder)")));
                };
                if files.iter().any(|(n, _)| n == t) {
                    return Err(Error::Usage(format!("{s:?}: table {t:?} is given twice; give one file per table")));
                }
                if schema.tables.iter().all(|x| x.name != t) {
                    let names: Vec<&str> = schema.tables.iter().map(|x| x.name.as_str()).collect();
                    return Err(Error::Usage(format!(
                        "{s:?}: the schema has no table {t:?}; it has: {}",
                        names.join(", ")
                    )));
                }
                files.push((t.to_string(), PathBuf::from(p)));
            }
            for t in &schema.tables {
                if files.iter().all(|(n, _)| *n != t.name) {
                    return Err(Error::Usage(format!("no file given for table {:?} (add {}=PATH)", t.name, t.name)));
                }
            }
        }
        Ok(Inputs { files })
    }

    pub fn path(&self, table: &str) -> &Path {
        self.files.iter().find(|(n, _)| n == table).map(|(_, p)| p.as_path()).expect("resolved for every table")
    }

    /// One fingerprint for the whole dataset: the SHA-256 of each table's name and file
    /// fingerprint, so the ledger's lifetime budget applies to the linked dataset as a whole.
    pub fn fingerprint(&self) -> Result<String> {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        let mut sorted = self.files.clone();
        sorted.sort();
        for (t, p) in &sorted {
            let f = privsynth_privacy::ledger::fingerprint_file(p).map_err(|e| Error::io(p, e))?;
            h.update(format!("{t}={f}\n").as_bytes());
        }
        Ok(format!("sha256:{}", h.finalize().iter().map(|b| format!("{b:02x}")).collect::<String>()))
    }
}

/// The real tables, read and checked against the schema. Private data.
pub struct Tables {
    raw: HashMap<String, RawTable>,
}

impl Tables {
    pub fn read(schema: &Schema, inputs: &Inputs) -> Result<Tables> {
        let mut raw = HashMap::new();
        for t in &schema.tables {
            raw.insert(t.name.clone(), data::read_for_table(inputs.path(&t.name), t)?);
        }
        Ok(Tables { raw })
    }

    /// Tables already in memory, by table name (issue 17: the privacy audit adds a canary
    /// person to real tables).
    pub fn from_raw(raw: HashMap<String, RawTable>) -> Tables {
        Tables { raw }
    }

    /// One table as read.
    pub fn raw(&self, table: &str) -> Option<&RawTable> {
        self.raw.get(table)
    }

    /// The table `name`, as read.
    pub fn get(&self, name: &str) -> Result<&RawTable> {
        self.raw.get(name).ok_or_else(|| Error::Internal(format!("table {name} was not read")))
    }

    /// Split the persons (rows of the person table, by key) into a train and a holdout part:
    /// each key independently in the holdout with probability `fraction`, drawn under the fresh
    /// secret `key`, so the split is stable under adding or removing a person and does not
    /// depend on `--seed`. Rows without a key go to neither part (derive leaves them out).
    pub fn split_persons(&self, schema: &Schema, fraction: f64, key: &SecretKey) -> Result<(Vec<usize>, Vec<usize>)> {
        let p = schema.person.as_ref().ok_or_else(|| Error::Usage("the schema has no `person` table".into()))?;
        let pt = schema.person_table().ok_or_else(|| Error::Internal("person table".into()))?;
        let (mut train, mut hold) = (vec![], vec![]);
        for (row, k) in keys(&self.raw[&pt.name], &p.key)?.iter().enumerate() {
            if let Some(k) = k {
                if key.bernoulli(k.as_bytes(), fraction) { hold.push(row) } else { train.push(row) }
            }
        }
        Ok((train, hold))
    }
}

/// What deriving did to the rows: exact counts of the real data, so [`derive`] returns it as a
/// `Sensitive` value, printed only when the data holder asks (`--private-diagnostics`).
#[derive(Debug, Default, Clone)]
pub struct DeriveReport {
    /// Person-table rows without a key, and rows repeating an earlier row's key.
    pub missing_keys: usize,
    pub repeated_keys: usize,
    /// Per event table: rows whose person key is not in the person table.
    pub orphans: Vec<(String, usize)>,
    /// Per event table: rows dropped by contribution bounding, and persons who had more.
    pub bounded: Vec<(String, usize, usize)>,
    /// Per event table: rows without a time.
    pub no_time: Vec<(String, usize)>,
}

impl DeriveReport {
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![];
        if self.missing_keys > 0 {
            out.push(format!("person table: {} row(s) without a person key were left out", self.missing_keys));
        }
        if self.repeated_keys > 0 {
            out.push(format!("person table: {} row(s) repeating an earlier row's person key were left out (the first row of each key is the person)", self.repeated_keys));
        }
        for (t, n) in self.orphans.iter().filter(|x| x.1 > 0) {
            out.push(format!("{t}: {n} row(s) reference no person of the person table and were left out (`privsynth schema check` lists them)"));
        }
        for (t, n, p) in self.bounded.iter().filter(|x| x.1 > 0) {
            out.push(format!(
                "{t}: contribution bounding left out {n} row(s) of {p} person(s) with more rows than the bound"
            ));
        }
        for (t, n) in self.no_time.iter().filter(|x| x.1 > 0) {
            out.push(format!("{t}: {n} row(s) without a time were left out"));
        }
        out
    }
}

/// The model tables, built from real (or, for the audit, synthetic) linked tables.
pub struct Derived {
    /// One row per person: the person model's columns.
    pub person: RawTable,
    /// Per event table, the bound its rows satisfy (`ROW_IS_UNIT` when not bounded: the audit).
    pub bounds: Vec<ContributionBound>,
    /// Per event table (schema order of [`Schema::event_tables`]): its model rows and the
    /// person (row of `person`) of each.
    pub events: Vec<EventRows>,
}

pub struct EventRows {
    pub table: String,
    pub rows: RawTable,
    pub units: Vec<usize>,
}

/// A column of `table` read as points on its numeric line, in days (dates) or days with a
/// fraction (datetimes). The domain is not checked: these are times of events, not codes.
pub(crate) fn days(table: &Table, column: &str, raw: &RawTable) -> Result<Vec<Option<f64>>> {
    let mut c = table.column(column).ok_or_else(|| Error::Internal(format!("no column {column}")))?.clone();
    let datetime = c.kind == ColumnType::Datetime;
    // Parsing only: a wide domain, never used to code anything.
    let (lo, hi) = if datetime { ("1000-01-01T00:00:00", "3000-12-31T00:00:00") } else { ("1000-01-01", "3000-12-31") };
    c.domain = Some(Domain { bounds: Some(vec![lo.into(), hi.into()]), bins: Some(1), ..Default::default() });
    c.nullable = true;
    let codec = ColumnCodec::new(table, &c)
        .map_err(|e| Error::schema(format!("table {:?}", table.name), format!("column {column:?}: {e}")))?;
    let mut out = Vec::with_capacity(raw.df.height());
    let s = raw.series(column)?;
    let r = codec
        .read_cells(s, |cell| {
            out.push(match cell {
                Cell::Point(v) => Some(if datetime { v / 86_400.0 } else { v }),
                _ => None,
            })
        })
        .map_err(|_| Error::unreadable_column(&raw.file, column, c.kind, s.dtype()))?;
    if let Err(row) = r {
        return Err(Error::Data {
            file: raw.file.clone(),
            row: Some(raw.first_row() + row + 1),
            line: raw.line_of(row),
            column: Some(column.into()),
            message: if c.timezone.is_some() {
                "the value is not a datetime with its UTC offset (2024-03-01T09:30:00Z or \
                 2024-03-01T10:30:00+01:00): the column has timezone: UTC, so a value without an offset is ambiguous"
                    .to_string()
            } else {
                format!("the value is not a {} (ISO 8601 unless the schema gives a format)", c.kind)
            },
        });
    }
    Ok(out)
}

/// Key values of a column as text (`None` = missing).
pub(crate) fn keys(raw: &RawTable, column: &str) -> Result<Vec<Option<String>>> {
    let s = raw
        .series(column)?
        .cast(&DataType::String)
        .map_err(|e| Error::column(&raw.file, column, format!("cannot be read as text: {e}")))?;
    let ca = s.str().map_err(Error::polars)?;
    Ok(ca.iter().map(|v| v.map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)).collect())
}

fn take_series(s: &Series, idx: &[usize]) -> Result<Series> {
    let ca = IdxCa::from_vec("idx".into(), idx.iter().map(|&i| i as IdxSize).collect());
    s.take(&ca).map_err(Error::polars)
}

/// One event table's summaries per person (position in the person selection), over its rows
/// that count: the person model's derived columns are made from them.
pub(crate) struct Summary {
    pub table: String,
    pub count: Vec<i64>,
    pub first: Vec<Option<f64>>,
    pub last: Vec<Option<f64>>,
    pub tops: Vec<(String, Vec<Option<String>>)>,
}

/// The person model's rows: the person table's modelled columns (of the selected persons,
/// `praw`), death as age at death, and each event table's summaries.
pub(crate) fn person_frame(
    schema: &Schema,
    praw: &RawTable,
    birth: Option<&[Option<f64>]>,
    death: Option<&[Option<f64>]>,
    summaries: &[&Summary],
) -> Result<RawTable> {
    let p = schema.person.as_ref().ok_or_else(|| Error::Usage("the schema has no `person` table".into()))?;
    let pt = schema.person_table().ok_or_else(|| Error::Internal("person table".into()))?;
    let person_model = schema.person_model_table().ok_or_else(|| Error::Internal("person model".into()))?;
    let n = praw.df.height();
    let mut cols: Vec<Column> = vec![];
    for c in &person_model.columns {
        let name = c.name.as_str();
        let series: Series = if pt.column(name).is_some() && Some(name) != p.death.as_deref() {
            praw.series(name)?.clone()
        } else if let (Some(_), Some(death), Some(birth)) =
            (p.death.as_ref().filter(|d| name == derived::death_age(d)), death, birth)
        {
            let v: Vec<Option<i64>> =
                death.iter().zip(birth).map(|(d, b)| Some((d.as_ref()? - b.as_ref()?).floor() as i64)).collect();
            Series::new(name.into(), v)
        } else {
            aggregate_column(name, summaries, birth, n)?
        };
        cols.push(series.with_name(name.into()).into());
    }
    fn aggregate_column(name: &str, aggs: &[&Summary], birth: Option<&[Option<f64>]>, n: usize) -> Result<Series> {
        for a in aggs {
            let t = a.table.as_str();
            if name == derived::count(t) {
                return Ok(Series::new(name.into(), a.count.clone()));
            }
            if name == derived::first(t) {
                let b = birth.ok_or_else(|| Error::Internal("first without birth".into()))?;
                let v: Vec<Option<i64>> = (0..n).map(|i| Some((a.first[i]? - b[i]?).floor() as i64)).collect();
                return Ok(Series::new(name.into(), v));
            }
            if name == derived::span(t) {
                let v: Vec<Option<i64>> = (0..n).map(|i| Some((a.last[i]? - a.first[i]?).floor() as i64)).collect();
                return Ok(Series::new(name.into(), v));
            }
            for (s, top) in &a.tops {
                if name == derived::top(t, s) {
                    return Ok(Series::new(name.into(), top.clone()));
                }
            }
        }
        Err(Error::Internal(format!("no derivation for person-model column {name}")))
    }
    let person_df = DataFrame::new(n, cols).map_err(Error::polars)?;
    Ok(RawTable::in_memory(&format!("{} (person model: one row per person)", praw.file), person_df))
}

/// Build the model tables from linked tables.
///
/// `persons` selects rows of the person table (all when `None`; a train or holdout part
/// otherwise): event rows of other persons are left out silently. `bound` bounds every event
/// table to its `rows_per_person` under that secret key (for fitting); without it every row is
/// kept (for the audit, whose counts are clipped by the derived columns' domains anyway).
pub fn derive(
    schema: &Schema,
    tables: &Tables,
    persons: Option<&[usize]>,
    bound: Option<&SecretKey>,
) -> Result<(Derived, Sensitive<DeriveReport>)> {
    let p = schema.person.as_ref().ok_or_else(|| Error::Usage("the schema has no `person` table".into()))?;
    let pt = schema.person_table().ok_or_else(|| Error::Internal("person table".into()))?;
    let full = &tables.raw[&pt.name];
    let all_keys = keys(full, &p.key)?;
    let mut report = DeriveReport::default();
    // A person is the first row of each key; a row without a key or repeating one is left out
    // (both decided by that person's own rows). `schema check` lists them for the data holder.
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(all_keys.len());
    let mut is_person = vec![false; all_keys.len()];
    for (row, k) in all_keys.iter().enumerate() {
        match k {
            None => report.missing_keys += 1,
            Some(k) if index.contains_key(k.as_str()) => report.repeated_keys += 1,
            Some(k) => {
                index.insert(k.as_str(), row);
                is_person[row] = true;
            }
        }
    }
    let selected: Vec<usize> = match persons {
        Some(p) => p.iter().copied().filter(|&r| is_person.get(r).copied().unwrap_or(false)).collect(),
        None => (0..full.df.height()).filter(|&r| is_person[r]).collect(),
    };
    // Position of each person table row in the selection.
    let mut pos = vec![usize::MAX; full.df.height()];
    for (i, &r) in selected.iter().enumerate() {
        pos[r] = i;
    }
    let praw = full.take(&selected, full.file.clone())?;
    let n = selected.len();
    let birth = match &p.birth {
        Some(b) => Some(days(pt, b, &praw)?),
        None => None,
    };
    let death = match &p.death {
        Some(d) => Some(days(pt, d, &praw)?),
        None => None,
    };

    struct Agg {
        summary: Summary,
        rows: Vec<usize>,
        units: Vec<usize>,
        times: Vec<f64>,
        ends: Option<Vec<Option<f64>>>,
    }
    let mut aggs: Vec<Agg> = vec![];
    let mut bounds = vec![];
    for t in schema.event_tables() {
        let e = t.events.as_ref().expect("event table");
        let raw = &tables.raw[&t.name];
        let fk = t.foreign_keys.iter().find(|f| f.references == pt.name).expect("validated: an FK to the person table");
        let fks = keys(raw, &fk.column)?;
        let time = days(t, &e.time, raw)?;
        let (mut orphans, mut no_time) = (0, 0);
        let mut rows = vec![];
        let mut units = vec![];
        for (r, k) in fks.iter().enumerate() {
            let Some(&prow) = k.as_deref().and_then(|k| index.get(k)) else {
                orphans += 1;
                continue;
            };
            if pos[prow] == usize::MAX {
                continue;
            }
            if time[r].is_none() {
                no_time += 1;
                continue;
            }
            rows.push(r);
            units.push(pos[prow]);
        }
        report.orphans.push((t.name.clone(), orphans));
        report.no_time.push((t.name.clone(), no_time));
        match bound {
            Some(key) => {
                // Keyed on the person's key and the row's ordinal among that person's rows, not
                // on positions in the files, so other persons' rows do not move the choice.
                let unit_keys: Vec<&[u8]> =
                    units.iter().map(|&u| all_keys[selected[u]].as_deref().unwrap_or("").as_bytes()).collect();
                let kept = bounding::keep_rows(&unit_keys, e.rows_per_person, key)?;
                let mut per = vec![0usize; n];
                for &u in &units {
                    per[u] += 1;
                }
                let over = per.iter().filter(|&&c| c > e.rows_per_person as usize).count();
                report.bounded.push((t.name.clone(), rows.len() - kept.kept.len(), over));
                rows = kept.kept.iter().map(|&i| rows[i]).collect();
                units = kept.kept.iter().map(|&i| units[i]).collect();
                bounds.push(kept.bound);
            }
            None => bounds.push(ContributionBound::ROW_IS_UNIT),
        }
        let times: Vec<f64> = rows.iter().map(|&r| time[r].expect("filtered")).collect();
        let ends = match &e.end {
            Some(end) => {
                let all = days(t, end, raw)?;
                Some(rows.iter().map(|&r| all[r]).collect::<Vec<_>>())
            }
            None => None,
        };
        let mut count = vec![0i64; n];
        let mut first: Vec<Option<f64>> = vec![None; n];
        let mut last: Vec<Option<f64>> = vec![None; n];
        for (&u, &x) in units.iter().zip(&times) {
            count[u] += 1;
            first[u] = Some(first[u].map_or(x, |f: f64| f.min(x)));
            last[u] = Some(last[u].map_or(x, |l: f64| l.max(x)));
        }
        let mut tops = vec![];
        for s in &e.summarise {
            let col = t.column(s).expect("validated");
            let codec = ColumnCodec::new(t, col)
                .map_err(|m| Error::schema(format!("table {:?}", t.name), format!("column {s:?}: {m}")))?;
            let series = take_series(raw.series(s)?, &rows)?;
            let mut labels: Vec<Option<String>> = Vec::with_capacity(rows.len());
            let _ = codec
                .read_cells(&series, |c| {
                    labels.push(match c {
                        Cell::Label(l) => Some(l.to_string()),
                        _ => None,
                    })
                })
                .map_err(Error::polars)?;
            let mut counts: Vec<HashMap<&str, usize>> = vec![HashMap::new(); n];
            for (&u, l) in units.iter().zip(&labels) {
                if let Some(l) = l {
                    *counts[u].entry(l.as_str()).or_default() += 1;
                }
            }
            // Most frequent; ties go to the first label in sort order, so the result does not
            // depend on row order.
            let top: Vec<Option<String>> = counts
                .iter()
                .map(|m| m.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))).map(|(l, _)| l.to_string()))
                .collect();
            tops.push((s.clone(), top));
        }
        aggs.push(Agg {
            summary: Summary { table: t.name.clone(), count, first, last, tops },
            rows,
            units,
            times,
            ends,
        });
    }

    let summaries: Vec<&Summary> = aggs.iter().map(|a| &a.summary).collect();
    let person = person_frame(schema, &praw, birth.as_deref(), death.as_deref(), &summaries)?;

    let mut events = vec![];
    for (t, a) in schema.event_tables().into_iter().zip(aggs) {
        let e = t.events.as_ref().expect("event table");
        let model = schema.event_model_table(t).ok_or_else(|| Error::Internal("event model".into()))?;
        let raw = &tables.raw[&t.name];
        let mut cols: Vec<Column> = vec![];
        for c in &model.columns {
            let name = c.name.as_str();
            let series = if name == derived::OFFSET {
                let v: Vec<i64> = a
                    .units
                    .iter()
                    .zip(&a.times)
                    .map(|(&u, &x)| (x - a.summary.first[u].unwrap_or(x)).floor() as i64)
                    .collect();
                Series::new(name.into(), v)
            } else if e.end.as_deref().is_some_and(|end| name == derived::duration(end)) {
                let unit = e.duration_unit.seconds() as f64 / 86_400.0;
                let ends = a.ends.as_ref().expect("end");
                let v: Vec<Option<i64>> = ends
                    .iter()
                    .zip(&a.times)
                    .map(|(end, &x)| end.map(|end| ((end - x) / unit).floor() as i64))
                    .collect();
                Series::new(name.into(), v)
            } else if let Some(pc) = name.strip_prefix("person.") {
                take_series(person.series(pc)?, &a.units)?
            } else {
                take_series(raw.series(name)?, &a.rows)?
            };
            cols.push(series.with_name(name.into()).into());
        }
        let df = DataFrame::new(a.rows.len(), cols).map_err(Error::polars)?;
        events.push(EventRows {
            table: t.name.clone(),
            rows: RawTable::in_memory(&format!("{} (event model, bounded)", raw.file), df),
            units: a.units,
        });
    }
    Ok((Derived { person, bounds, events }, Sensitive::new(report)))
}

/// A fitted linked model: the person model and one model per event table, with the schema.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkedModel {
    pub format: String,
    pub version: u32,
    pub schema: Schema,
    pub person: ModelFile,
    pub events: Vec<EventModel>,
    pub privacy: LinkedPrivacy,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventModel {
    pub table: String,
    pub rows_per_person: u32,
    pub model: ModelFile,
}

/// The whole release's guarantee, for the person as unit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkedPrivacy {
    pub unit: String,
    pub definition: String,
    pub epsilon: f64,
    pub delta: f64,
    pub rho: f64,
    /// Rows per person each event table contributes at most.
    pub contribution_bounds: Vec<(String, u32)>,
    /// What the guarantee does not cover (see the single-table model file).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outside_guarantee: Vec<String>,
}

pub const LINKED_FORMAT: &str = "privsynth-linked-model";

impl LinkedModel {
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|e| Error::Internal(format!("cannot write the model: {e}")))
    }

    pub fn load(path: &Path) -> Result<LinkedModel> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let m: LinkedModel = serde_json::from_str(&text)
            .map_err(|e| Error::data(path.display().to_string(), format!("is not a linked model file: {e}")))?;
        if m.format != LINKED_FORMAT || m.version != 1 {
            return Err(Error::data(
                path.display().to_string(),
                format!("is format {} version {}, expected {LINKED_FORMAT} version 1", m.format, m.version),
            ));
        }
        m.schema.validate(&path.display().to_string())?;
        Ok(m)
    }

    /// Whether a file is a linked model (by its format field), without parsing it all.
    pub fn is_linked_file(path: &Path) -> bool {
        use std::io::Read;
        // The format field is written first; a model file can be large, so read its head only.
        let mut head = Vec::with_capacity(200);
        std::fs::File::open(path).and_then(|f| f.take(200).read_to_end(&mut head)).is_ok()
            && String::from_utf8_lossy(&head).contains(LINKED_FORMAT)
    }
}
