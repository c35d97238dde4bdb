//! Sampling linked tables from a [`LinkedModel`]: persons first, then each event table's rows
//! drawn from its model *conditioned* on the person's columns, with keys regenerated.
//!
//! - The number of a person's events, the days from birth to the first and from first to last
//!   come from the person's record; each event's offset from the first is drawn from the event
//!   model and kept within the person's span, so intervals stay plausible. Dates are built
//!   forward from birth (events never precede it); a person whose events would run past their
//!   death has them scaled into the lifetime; an end is the start plus a non-negative duration,
//!   never after death.
//! - Conditioning is exact for the model: for each distinct combination of person columns the
//!   event model's potentials are restricted to it and records are drawn from what remains.
//! - Keys are fresh UUIDs from the seeded generator, so no real key can appear. A foreign key to
//!   another event table takes the same person's row of that table that most recently started
//!   at or before the event (else their earliest), so integrity holds by construction.
//! - Direct identifiers come from [`super::fake`] when the schema asks; otherwise they are left
//!   out. Everything here is post-processing of the DP models.

use std::collections::HashMap;

use polars::prelude::*;
use rand::RngExt;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::{LinkedModel, days, fake};
use crate::codec::TableCodec;
use crate::data::RawTable;
use crate::error::{Error, Result};
use crate::mechanism;
use crate::model::GraphicalModel;
use crate::model::factor::index_map;
use crate::model::sample;
use crate::schema::linked::derived;
use crate::schema::{ColumnType, Table};

/// The file a linked output folder's schema is written to, beside the tables.
pub const OUTPUT_SCHEMA: &str = "schema.yaml";

/// What sampling did, per event table.
#[derive(Debug, Default, Clone)]
pub struct SampleReport {
    pub persons: usize,
    /// (table, rows written, rows moved into the person's lifetime, rows dropped for want of a parent row)
    pub tables: Vec<(String, usize, usize, usize)>,
}

impl SampleReport {
    /// Add the report of another block of persons.
    pub fn add(&mut self, other: &SampleReport) {
        self.persons += other.persons;
        for (t, n, c, d) in &other.tables {
            match self.tables.iter_mut().find(|x| &x.0 == t) {
                Some(x) => (x.1, x.2, x.3) = (x.1 + n, x.2 + c, x.3 + d),
                None => self.tables.push((t.clone(), *n, *c, *d)),
            }
        }
    }

    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!("{} person(s)", self.persons)];
        for (t, n, clamped, dropped) in &self.tables {
            let mut s = format!("{t}: {n} row(s)");
            if *clamped > 0 {
                s.push_str(&format!(
                    ", {clamped} row(s) of persons whose sampled events ran past their death rescaled into the lifetime"
                ));
            }
            if *dropped > 0 {
                s.push_str(&format!(", {dropped} dropped: the person has no row to reference in the parent table"));
            }
            out.push(s);
        }
        out
    }
}

/// Fill missing values by copying a random present one (post-processing of synthetic values).
fn fill_from_others(v: &mut [Option<f64>], rng: &mut StdRng) {
    let present: Vec<f64> = v.iter().flatten().copied().collect();
    if present.is_empty() {
        return;
    }
    for x in v.iter_mut().filter(|x| x.is_none()) {
        *x = Some(present[rng.random_range(0..present.len())]);
    }
}

/// The schema bounds of a date or datetime column in days since the epoch (datetimes with a
/// fraction); unbounded ends are infinite. Synthetic times are kept inside them, so that the
/// output passes `schema check` against the schema it was made from.
fn day_bounds(c: Option<&crate::schema::Column>) -> (f64, f64) {
    let Some(c) = c else { return (f64::NEG_INFINITY, f64::INFINITY) };
    let scale = if c.kind == ColumnType::Datetime { 86_400.0 } else { 1.0 };
    let b = c.domain.as_ref().and_then(|d| d.bounds.as_ref());
    let at = |i: usize, dflt: f64| {
        b.and_then(|b| b.get(i)).and_then(|v| crate::schema::parse_point(c.kind, v).ok()).map_or(dflt, |v| v / scale)
    };
    (at(0, f64::NEG_INFINITY), at(1, f64::INFINITY))
}

/// A date (days) or datetime (days with fraction) column as a typed series; a datetime column
/// with `timezone: UTC` keeps its zone.
fn time_series(c: &crate::schema::Column, v: &[Option<f64>]) -> Result<Series> {
    let name = c.name.as_str();
    if c.kind == ColumnType::Datetime {
        let ms: Vec<Option<i64>> = v.iter().map(|x| x.map(|d| (d * 86_400.0).round() as i64 * 1000)).collect();
        let tz = c.timezone.as_ref().map(|_| polars::prelude::TimeZone::UTC);
        // Physical milliseconds (a `cast` would drop the zone without polars' `timezones`).
        Ok(Series::new(name.into(), ms).into_datetime(TimeUnit::Milliseconds, tz))
    } else {
        let d: Vec<Option<i32>> = v.iter().map(|x| x.map(|d| d.floor() as i32)).collect();
        Series::new(name.into(), d).cast(&DataType::Date).map_err(Error::polars)
    }
}

fn ints(df: &DataFrame, name: &str) -> Result<Vec<Option<i64>>> {
    let s = df.column(name).map_err(Error::polars)?.cast(&DataType::Int64).map_err(Error::polars)?;
    Ok(s.i64().map_err(Error::polars)?.iter().collect())
}

/// The model restricted to `evidence` (attribute, compressed code): cells that disagree get
/// zero mass, so sampling it draws from the conditional distribution.
fn condition(gm: &GraphicalModel, evidence: &[(usize, u32)]) -> GraphicalModel {
    let mut m = GraphicalModel { tree: gm.tree.clone(), potentials: gm.potentials.clone(), total: gm.total };
    for &(a, v) in evidence {
        let Some(c) = m.tree.clique_containing(&[a]) else { continue };
        let f = &mut m.potentials[c];
        let map = index_map(&f.attrs, &f.shape, &[a]);
        for (x, &i) in f.values.iter_mut().zip(&map) {
            if i != v {
                // exp(-1e4) is exactly 0 in f64, and sums stay finite.
                *x -= 1e4;
            }
        }
    }
    m
}

/// Output tables (schema order) and what happened. Only [`sample`] makes one, so its tables
/// hold synthetic records only (the LLM stage builds its prompts from them).
pub struct Output {
    pub(crate) tables: Vec<(String, DataFrame)>,
    pub report: SampleReport,
}

impl Output {
    /// The tables, in schema order.
    pub fn tables(&self) -> &[(String, DataFrame)] {
        &self.tables
    }

    pub fn into_tables(self) -> Vec<(String, DataFrame)> {
        self.tables
    }

    fn frame(&self, table: &str) -> Result<&DataFrame> {
        self.tables
            .iter()
            .find(|(n, _)| n == table)
            .map(|(_, df)| df)
            .ok_or_else(|| Error::Internal(format!("no synthetic table {table:?}")))
    }

    /// The records of `table` as prompts see them: every non-identifier column of the row
    /// (modelled values, event times, text written so far) and, for an event table, the
    /// non-identifier columns of its person's record as `person.COLUMN`.
    pub fn records(&self, schema: &crate::schema::Schema, table: &str) -> Result<Vec<crate::synthetic::SyntheticRow>> {
        let p = schema.person.as_ref().ok_or_else(|| Error::Internal("no person table".into()))?;
        let t = schema
            .tables
            .iter()
            .find(|t| t.name == table)
            .ok_or_else(|| Error::Internal(format!("no table {table:?}")))?;
        let shown = |t: &Table| -> Vec<String> {
            t.columns
                .iter()
                .filter(|c| c.role != crate::schema::Role::Identifier && c.kind != ColumnType::Identifier)
                .map(|c| c.name.clone())
                .collect()
        };
        let strings = |df: &DataFrame, names: &[String]| -> Result<Vec<(String, Vec<Option<String>>)>> {
            names
                .iter()
                .filter(|n| df.column(n).is_ok())
                .map(|n| {
                    let s = df.column(n).map_err(Error::polars)?.cast(&DataType::String).map_err(Error::polars)?;
                    Ok((n.clone(), s.str().map_err(Error::polars)?.iter().map(|x| x.map(str::to_owned)).collect()))
                })
                .collect()
        };
        let df = self.frame(table)?;
        let own = strings(df, &shown(t))?;
        let mut person: Vec<(String, Vec<Option<String>>)> = vec![];
        let mut person_row: Vec<Option<usize>> = vec![None; df.height()];
        if t.name != p.table {
            let pt = schema.person_table().ok_or_else(|| Error::Internal("no person table".into()))?;
            let pdf = self.frame(&pt.name)?;
            person = strings(pdf, &shown(pt))?.into_iter().map(|(n, v)| (format!("person.{n}"), v)).collect();
            let fk = t
                .foreign_keys
                .iter()
                .find(|f| f.references == pt.name)
                .ok_or_else(|| Error::Internal(format!("table {table:?} has no key to the person table")))?;
            let keys = pdf.column(&p.key).map_err(Error::polars)?.cast(&DataType::String).map_err(Error::polars)?;
            let at: HashMap<&str, usize> =
                keys.str().map_err(Error::polars)?.iter().enumerate().filter_map(|(i, k)| Some((k?, i))).collect();
            let refs = df.column(&fk.column).map_err(Error::polars)?.cast(&DataType::String).map_err(Error::polars)?;
            for (i, k) in refs.str().map_err(Error::polars)?.iter().enumerate() {
                person_row[i] = k.and_then(|k| at.get(k).copied());
            }
        }
        Ok((0..df.height())
            .map(|i| {
                let mut values: Vec<(String, Option<String>)> =
                    own.iter().map(|(n, v)| (n.clone(), v[i].clone())).collect();
                values.extend(person.iter().map(|(n, v)| (n.clone(), person_row[i].and_then(|r| v[r].clone()))));
                crate::synthetic::SyntheticRow::sampled(i, values)
            })
            .collect())
    }

    /// Make the tables fit `schema` as written ([`crate::synthetic::conform`] per table).
    /// Returns the output's own schema, which `schema check` passes, and a warning per table
    /// that lost columns. Call it after the LLM stage.
    pub fn conform(&mut self, schema: &crate::schema::Schema) -> Result<(crate::schema::Schema, Vec<String>)> {
        let mut out_schema = schema.clone();
        let mut warnings = vec![];
        for (name, df) in &mut self.tables {
            let Some(t) = out_schema.tables.iter_mut().find(|t| &t.name == name) else { continue };
            if let Some(why) = crate::synthetic::conform(t, df) {
                warnings.push(format!(
                    "table {name}: column(s) not in the output: {why}; the {} beside the tables says so",
                    OUTPUT_SCHEMA
                ));
            }
        }
        forget_dropped_references(&mut out_schema);
        // The schema written beside the output must pass `schema check`; a reference left
        // dangling here is a bug in this function, not in the user's schema.
        out_schema
            .validate(OUTPUT_SCHEMA)
            .map_err(|e| Error::Internal(format!("the output's own schema does not validate: {e}")))?;
        Ok((out_schema, warnings))
    }

    /// Make the tables of a later block have the columns of `first`'s tables, in its order and
    /// of its types (the columns [`Output::conform`] kept in the first block).
    pub fn select_like(&mut self, first: &[(String, polars::prelude::Schema)]) -> Result<()> {
        for (name, df) in &mut self.tables {
            let Some((_, want)) = first.iter().find(|(n, _)| n == name) else { continue };
            let cols = want
                .iter()
                .map(|(c, dt)| {
                    let col = df.column(c).map_err(|_| {
                        Error::Internal(format!("a later block of {name} has no column {c} (the first had it)"))
                    })?;
                    if col.dtype() == dt { Ok(col.clone()) } else { col.cast(dt).map_err(Error::polars) }
                })
                .collect::<Result<Vec<Column>>>()?;
            *df = DataFrame::new(df.height(), cols).map_err(Error::polars)?;
        }
        Ok(())
    }

    /// Set a text column of `table` from validated model output (one value per row).
    pub fn set_text(
        &mut self,
        table: &str,
        column: &str,
        values: Vec<Option<impl crate::synthetic::AcceptedText>>,
    ) -> Result<()> {
        let df = self
            .tables
            .iter_mut()
            .find(|(n, _)| n == table)
            .map(|(_, df)| df)
            .ok_or_else(|| Error::Internal(format!("no synthetic table {table:?}")))?;
        if values.len() != df.height() {
            return Err(Error::Internal(format!("{} text values for {} rows of {table:?}", values.len(), df.height())));
        }
        let v: Vec<Option<String>> =
            values.into_iter().map(|x| x.map(crate::synthetic::AcceptedText::into_string)).collect();
        df.with_column(Series::new(column.into(), v).into_column()).map_err(Error::polars)?;
        Ok(())
    }
}

/// Persons drawn per block by [`LinkedSampler`] when linked tables are written block by block
/// ([`crate::pipeline::output::write_linked`]): memory is that of a few blocks (a block of the
/// benchmark's EHR tables is about 350,000 event rows), whatever the number of persons asked.
pub const BLOCK_PERSONS: usize = 1 << 12;

/// Cells of conditioned event samplers kept between blocks (8 bytes a cell): the conditioned
/// models of the commonest person groups are prepared once; beyond it they are prepared again
/// for each block (the output is the same either way).
const CACHED_SAMPLER_CELLS: usize = 1 << 22;

/// The number of persons to draw: `persons`, or the person model's DP estimate.
pub fn persons_to_draw(m: &LinkedModel, persons: Option<usize>) -> Result<usize> {
    let n = persons.unwrap_or(m.person.total.round().max(1.0) as usize);
    if n == 0 {
        return Err(Error::Usage("the number of persons must be at least 1".into()));
    }
    Ok(n)
}

/// One event model prepared for drawing.
struct EventPrep {
    table: usize,
    codec: TableCodec,
    model: GraphicalModel,
    /// The event model's person columns: (event attribute, person attribute, person code to
    /// compressed event code).
    evid: Vec<(usize, usize, Vec<u32>)>,
    /// Samplers of the model conditioned on a person group, kept between blocks.
    samplers: HashMap<Vec<u32>, sample::Sampler>,
    cached_cells: usize,
}

/// A linked model prepared for drawing persons and their events block after block
/// ([`LinkedSampler::block`]); each block's persons are fresh, with fresh keys, and their
/// events reference them only. Drawing all persons in one block is [`sample`].
pub struct LinkedSampler<'m> {
    m: &'m LinkedModel,
    origin: String,
    pcodec: TableCodec,
    person: sample::Sampler,
    events: Vec<EventPrep>,
}

impl<'m> LinkedSampler<'m> {
    pub fn new(m: &'m LinkedModel, origin: &str) -> Result<LinkedSampler<'m>> {
        let schema = &m.schema;
        schema.person.as_ref().ok_or_else(|| Error::data(origin, "has no person table"))?;
        schema.person_table().ok_or_else(|| Error::data(origin, "has no person table"))?;
        let pcodec = TableCodec::new(&m.person.table)?;
        let person = sample::Sampler::new(&m.person.model(origin)?);
        let mut events = vec![];
        for em in &m.events {
            let table = schema
                .tables
                .iter()
                .position(|t| t.name == em.table)
                .ok_or_else(|| Error::data(origin, format!("has no table {:?}", em.table)))?;
            if schema.tables[table].events.is_none() {
                return Err(Error::data(origin, format!("table {:?} has no events block", em.table)));
            }
            let codec = TableCodec::new(&em.model.table)?;
            // Evidence: the event model's person columns, by the person's code (compressed).
            let evid: Vec<(usize, usize, Vec<u32>)> = codec
                .columns
                .iter()
                .enumerate()
                .filter_map(|(ei, c)| {
                    let pc = c.name.strip_prefix("person.")?;
                    let pi = pcodec.columns.iter().position(|x| x.name == pc)?;
                    let groups = &em.model.compression[ei];
                    let mut inv = vec![0u32; codec.columns[ei].size()];
                    for (g, members) in groups.iter().enumerate() {
                        for &o in members {
                            inv[o as usize] = g as u32;
                        }
                    }
                    Some((ei, pi, inv))
                })
                .collect();
            events.push(EventPrep {
                table,
                codec,
                model: em.model.model(origin)?,
                evid,
                samplers: HashMap::new(),
                cached_cells: 0,
            });
        }
        Ok(LinkedSampler { m, origin: origin.to_string(), pcodec, person, events })
    }

    /// Draw `n` persons and their events.
    pub fn block(&mut self, n: usize, rng: &mut StdRng) -> Result<Output> {
        let (m, origin) = (self.m, self.origin.as_str());
        let schema = &m.schema;
        let p = schema.person.as_ref().ok_or_else(|| Error::data(origin, "has no person table"))?;
        let pt = schema.person_table().ok_or_else(|| Error::data(origin, "has no person table"))?;
        let pm_table = &m.person.table;
        let pcodec = &self.pcodec;
        if n == 0 {
            return Err(Error::Usage("the number of persons must be at least 1".into()));
        }
        let pcodes = mechanism::expand(&m.person.compression, &m.person.expansion, self.person.draw(n, rng), rng);
        let pdf = pcodec.decode(&pcodes, rng)?;
        let praw = RawTable::in_memory("synthetic persons", pdf.clone());
        let mut birth: Vec<Option<f64>> = match &p.birth {
            Some(b) => days(pm_table, b, &praw)?,
            None => vec![None; n],
        };
        fill_from_others(&mut birth, rng);
        // A death after the schema's last date has not happened yet within the data's window: none
        // (or the last date, when the column may not be empty).
        let death_col = p.death.as_ref().and_then(|d| pt.column(d));
        let (death_lo, death_hi) = day_bounds(death_col);
        let death_nullable = death_col.is_some_and(|c| c.nullable);
        let death: Vec<Option<f64>> = match (&p.death, &p.birth) {
            (Some(d), Some(_)) => ints(&pdf, &derived::death_age(d))?
                .iter()
                .zip(&birth)
                .map(|(a, b)| Some(b.as_ref()? + *a.as_ref()? as f64))
                .map(|d| match d {
                    Some(d) if d > death_hi + 1.0 && death_nullable => None,
                    Some(d) => Some(d.clamp(death_lo, death_hi.max(death_lo))),
                    None => None,
                })
                .collect(),
            _ => vec![None; n],
        };
        // Keys are held once each, as polars string columns; foreign keys are `take`s of them
        // (views into the same buffers), not a copy of the key per row and per reference (which
        // took a quarter of the peak memory of a 10k-person fit + sample).
        let person_keys = Series::new(p.key.as_str().into(), (0..n).map(|_| fake::uuid(rng)).collect::<Vec<String>>());

        let mut report = SampleReport { persons: n, ..Default::default() };
        let mut out: HashMap<String, DataFrame> = HashMap::new();
        // Per generated event table with a primary key: its key column, and each person's rows as
        // (time, row of the key column), sorted.
        let mut parents: HashMap<String, (Series, Vec<Vec<(f64, IdxSize)>>)> = HashMap::new();

        // Persons.
        {
            let mut cols: Vec<Column> = vec![];
            for c in &pt.columns {
                let s = if c.name == p.key {
                    person_keys.clone()
                } else if Some(&c.name) == p.death.as_ref() && p.birth.is_some() {
                    time_series(c, &death)?
                } else if c.is_modelled() {
                    pdf.column(&c.name).map_err(Error::polars)?.as_materialized_series().clone()
                } else if let Some(k) = c.fake {
                    Series::new(c.name.as_str().into(), (0..n).map(|_| fake::value(k, rng)).collect::<Vec<_>>())
                } else if c.kind == ColumnType::Text {
                    Series::full_null(c.name.as_str().into(), n, &DataType::String)
                } else {
                    continue;
                };
                cols.push(s.into());
            }
            out.insert(pt.name.clone(), DataFrame::new(n, cols).map_err(Error::polars)?);
        }

        for (em, prep) in m.events.iter().zip(&mut self.events) {
            let t: &Table = &schema.tables[prep.table];
            let e = t
                .events
                .as_ref()
                .ok_or_else(|| Error::data(origin, format!("table {:?} has no events block", t.name)))?;
            let k = e.rows_per_person as i64;
            let ecodec = &prep.codec;
            let counts: Vec<usize> =
                ints(&pdf, &derived::count(&t.name))?.iter().map(|c| c.unwrap_or(0).clamp(0, k) as usize).collect();
            let mut first: Vec<Option<f64>> = if p.birth.is_some() {
                ints(&pdf, &derived::first(&t.name))?.iter().map(|x| x.map(|x| x as f64)).collect()
            } else {
                vec![Some(0.0); n]
            };
            fill_from_others(&mut first, rng);
            let span: Vec<Option<i64>> = ints(&pdf, &derived::span(&t.name))?;

            let evid = &prep.evid;
            let mut by_key: HashMap<Vec<u32>, Vec<usize>> = HashMap::new();
            for u in (0..n).filter(|&u| counts[u] > 0) {
                let key: Vec<u32> = evid.iter().map(|(_, pi, inv)| inv[pcodes[*pi][u] as usize]).collect();
                by_key.entry(key).or_default().push(u);
            }
            let mut groups: Vec<(Vec<u32>, Vec<usize>)> = by_key.into_iter().collect();
            groups.sort(); // HashMap order is random; the output must not depend on it.
            let d = ecodec.columns.len();
            let mut codes: Vec<Vec<u32>> = vec![vec![]; d];
            let mut units: Vec<usize> = vec![];
            for (key, members) in &groups {
                let need: usize = members.iter().map(|&u| counts[u]).sum();
                let fresh;
                let sampler = match prep.samplers.get(key) {
                    Some(s) => s,
                    None => {
                        let evidence: Vec<(usize, u32)> =
                            evid.iter().zip(key).map(|((ei, _, _), &v)| (*ei, v)).collect();
                        let s = sample::Sampler::new(&condition(&prep.model, &evidence));
                        if prep.cached_cells + s.cells() <= CACHED_SAMPLER_CELLS {
                            prep.cached_cells += s.cells();
                            prep.samplers.entry(key.clone()).or_insert(s)
                        } else {
                            fresh = s;
                            &fresh
                        }
                    }
                };
                let drawn = mechanism::expand(&em.model.compression, &em.model.expansion, sampler.draw(need, rng), rng);
                // Rows are handed out to persons in a random order.
                let mut order: Vec<usize> = (0..need).collect();
                order.shuffle(rng);
                for (col, v) in codes.iter_mut().zip(drawn) {
                    col.extend(order.iter().map(|&r| v[r]));
                }
                for &u in members {
                    units.extend(std::iter::repeat_n(u, counts[u]));
                }
            }
            let edf = ecodec.decode(&codes, rng)?;
            drop(codes);
            let rows = edf.height();
            let offset = ints(&edf, derived::OFFSET)?;
            let tkind = t.column(&e.time).map_or(ColumnType::Date, |c| c.kind);
            let mut time: Vec<f64> = Vec::with_capacity(rows);
            let mut last: Vec<f64> = vec![f64::NEG_INFINITY; n];
            for (i, &u) in units.iter().enumerate() {
                let mut o = offset[i].unwrap_or(0).max(0);
                if let Some(s) = span[u] {
                    o = o.min(s.max(0));
                }
                let mut x = birth[u].unwrap_or(0.0) + first[u].unwrap_or(0.0) + o as f64;
                if tkind == ColumnType::Datetime {
                    // The time of day is not modelled: drawn uniformly (post-processing).
                    x = x.floor() + rng.random::<f64>();
                }
                last[u] = last[u].max(x);
                time.push(x);
            }
            // A person whose events would run past their death, or past the schema's last date of
            // the event's time, has their event times scaled into the lifetime (birth to the earlier
            // of the two), keeping order and relative spacing; piling them all on one day would be
            // less plausible. Then every time is kept inside the schema's bounds.
            let (lo, hi) = day_bounds(t.column(&e.time));
            // The last instant of the upper bound's day for datetimes, the day itself for dates.
            let hi = if tkind == ColumnType::Datetime { hi } else { hi.floor() };
            let mut clamped = 0;
            for (i, &u) in units.iter().enumerate() {
                let cap = death[u].map_or(hi, |dd| dd.min(hi));
                if let Some(b) = birth[u]
                    && last[u] > cap
                    && last[u] > b
                {
                    time[i] = b + (time[i] - b) * ((cap - b).max(0.0) / (last[u] - b));
                    clamped += 1;
                }
                time[i] = time[i].min(cap).max(lo);
            }
            let end: Option<Vec<Option<f64>>> = match &e.end {
                Some(end) => {
                    let dur = ints(&edf, &derived::duration(end))?;
                    let unit = e.duration_unit.seconds() as f64 / 86_400.0;
                    let (_, end_hi) = day_bounds(t.column(end));
                    Some(
                        dur.iter()
                            .zip(&time)
                            .zip(&units)
                            .map(|((d, &x), &u)| {
                                let y = x + d.as_ref()?.max(&0).to_owned() as f64 * unit;
                                Some(death[u].map_or(y, |dd| y.min(dd.max(x))).min(end_hi.max(x)))
                            })
                            .collect(),
                    )
                }
                None => None,
            };
            // Foreign keys to other event tables: the same person's latest row started by then.
            let mut keep = vec![true; rows];
            let mut fk_values: Vec<(String, Series)> = vec![];
            for fk in &t.foreign_keys {
                if fk.references == pt.name {
                    let idx = IdxCa::from_vec("idx".into(), units.iter().map(|&u| u as IdxSize).collect());
                    fk_values.push((fk.column.clone(), person_keys.take(&idx).map_err(Error::polars)?));
                    continue;
                }
                let Some((par_keys, par)) = parents.get(&fk.references) else {
                    return Err(Error::schema(
                        origin,
                        format!("table {:?} references {:?}, which is not sampled before it", t.name, fk.references),
                    ));
                };
                let nullable = t.column(&fk.column).is_some_and(|c| c.nullable);
                let mut v: Vec<Option<IdxSize>> = Vec::with_capacity(rows);
                for (i, &u) in units.iter().enumerate() {
                    let rows_of = &par[u];
                    let pick = match rows_of.partition_point(|(s, _)| *s <= time[i] + 1e-9) {
                        0 => rows_of.first(),
                        j => rows_of.get(j - 1),
                    };
                    match pick {
                        Some(&(_, row)) => v.push(Some(row)),
                        None if nullable => v.push(None),
                        None => {
                            keep[i] = false;
                            v.push(None);
                        }
                    }
                }
                let idx: IdxCa = v.into_iter().collect();
                fk_values.push((fk.column.clone(), par_keys.take(&idx).map_err(Error::polars)?));
            }
            let own_keys: Option<Series> = t
                .primary_key
                .as_ref()
                .map(|k| Series::new(k.as_str().into(), (0..rows).map(|_| fake::uuid(rng)).collect::<Vec<String>>()));
            let mut cols: Vec<Column> = vec![];
            for c in &t.columns {
                let name = c.name.as_str();
                let s = if let Some(keys) = own_keys.as_ref().filter(|_| Some(&c.name) == t.primary_key.as_ref()) {
                    keys.clone()
                } else if let Some((_, v)) = fk_values.iter().find(|(f, _)| f == name) {
                    v.clone().with_name(name.into())
                } else if name == e.time {
                    time_series(c, &time.iter().map(|&x| Some(x)).collect::<Vec<_>>())?
                } else if Some(&c.name) == e.end.as_ref() {
                    time_series(c, end.as_deref().unwrap_or(&[]))?
                } else if c.is_modelled() {
                    edf.column(name).map_err(Error::polars)?.as_materialized_series().clone()
                } else if let Some(f) = c.fake {
                    Series::new(name.into(), (0..rows).map(|_| fake::value(f, rng)).collect::<Vec<_>>())
                } else if c.kind == ColumnType::Text {
                    Series::full_null(name.into(), rows, &DataType::String)
                } else {
                    continue;
                };
                cols.push(s.into());
            }
            let df = DataFrame::new(rows, cols).map_err(Error::polars)?;
            let mask: BooleanChunked = keep.iter().copied().collect();
            let df = df.filter(&mask).map_err(Error::polars)?;
            let dropped = rows - df.height();
            if let Some(keys) = own_keys {
                let mut per: Vec<Vec<(f64, IdxSize)>> = vec![vec![]; n];
                for (i, &u) in units.iter().enumerate() {
                    if keep[i] {
                        per[u].push((time[i], i as IdxSize));
                    }
                }
                for v in &mut per {
                    v.sort_by(|a, b| a.0.total_cmp(&b.0));
                }
                parents.insert(t.name.clone(), (keys, per));
            }
            report.tables.push((t.name.clone(), df.height(), clamped, dropped));
            out.insert(t.name.clone(), df);
        }
        let tables = schema.tables.iter().filter_map(|t| out.remove(&t.name).map(|df| (t.name.clone(), df))).collect();
        Ok(Output { tables, report })
    }
}

/// Draw `persons` synthetic persons (default: the DP estimate of their number) and their events,
/// all in one block (every table whole in memory; [`LinkedSampler`] draws block by block).
pub fn sample(m: &LinkedModel, origin: &str, persons: Option<usize>, rng: &mut StdRng) -> Result<Output> {
    let n = persons_to_draw(m, persons)?;
    LinkedSampler::new(m, origin)?.block(n, rng)
}

/// After [`crate::synthetic::conform`] has left columns out of the output tables, drop the
/// linked schema's references to them: the person's birth or death date (a nullable death date
/// drawn missing for every synthetic person), an event table's end column, its `summarise`
/// columns, and `person_columns` that are no longer columns of the person model.
fn forget_dropped_references(schema: &mut crate::schema::Schema) {
    let has = |schema: &crate::schema::Schema, table: &str, col: &str| {
        schema.tables.iter().find(|t| t.name == table).is_some_and(|t| t.column(col).is_some())
    };
    if let Some(p) = schema.person.clone() {
        let mut q = p.clone();
        if q.birth.as_ref().is_some_and(|b| !has(schema, &p.table, b)) {
            q.birth = None;
        }
        if q.death.as_ref().is_some_and(|d| !has(schema, &p.table, d)) {
            q.death = None;
            q.death_age = None;
        }
        schema.person = Some(q);
    }
    for i in 0..schema.tables.len() {
        let name = schema.tables[i].name.clone();
        let Some(mut e) = schema.tables[i].events.clone() else { continue };
        if e.end.as_ref().is_some_and(|c| !has(schema, &name, c)) {
            e.end = None;
            e.duration = None;
        }
        e.summarise.retain(|c| has(schema, &name, c));
        schema.tables[i].events = Some(e);
    }
    let person_model = schema.person_model_table();
    for t in &mut schema.tables {
        if let Some(e) = &mut t.events {
            e.person_columns.retain(|c| person_model.as_ref().is_some_and(|m| m.column(c).is_some()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A death date (or an event's end) drawn missing for every synthetic row is left out of
    /// the output; the schema written beside it must then not name it (CI caught the output
    /// schema failing `schema check` with "person.death is not a date column").
    #[test]
    fn references_to_columns_left_out_are_dropped_and_the_output_schema_validates() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/ehr/synthea-111.yaml");
        let mut schema = crate::schema::Schema::load(std::path::Path::new(path)).unwrap();
        for t in &mut schema.tables {
            t.columns.retain(|c| c.name != "DEATHDATE" && c.name != "STOP");
        }
        assert!(schema.validate("test").is_err(), "the references dangle before the fix-up");
        forget_dropped_references(&mut schema);
        schema.validate("test").unwrap();
        let p = schema.person.as_ref().unwrap();
        assert_eq!((p.death.as_deref(), p.birth.as_deref()), (None, Some("BIRTHDATE")));
        assert!(schema.tables.iter().filter_map(|t| t.events.as_ref()).all(|e| e.end.is_none()));
    }
}
