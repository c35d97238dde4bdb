//! The linked derivation streamed from files (issue 19): what [`super::derive`] builds for a
//! fit on every person, in memory that grows with the persons and the rows that count, never
//! with the raw cells of the event tables.
//!
//! - The person table is read in batches, only the columns the person model needs; its keys
//!   are mapped to person numbers (`u32`) once.
//! - Each event table is read in batches, only the columns its model needs. Per row only the
//!   person number, the time (days) and the codes of the table's own modelled columns (and the
//!   duration) are kept; contribution bounding runs in the stream
//!   ([`privsynth_privacy::bounding::BoundStream`], keyed on the person's key as
//!   [`super::derive`] is, so the same fresh key keeps the same rows).
//! - The person summaries (count, first, last, most frequent value) are built from the kept
//!   rows; the offset (days since the person's first row) and the `person.*` columns are coded
//!   last, from them.
//!
//! Rows that count are decided exactly as in [`super::derive`]: an event row of a known
//! person with a time is bounded, then rows whose cells do not fit the event model's policies
//! are left out. The encoding notes differ in what they count: the cells of the table's own
//! columns are noted over every row read, and the `person.*` columns once per person.

use std::collections::HashMap;
use std::path::Path;

use polars::prelude::*;

use super::{DeriveReport, Inputs, Summary, days, person_frame};
use crate::codec::{Cell, CodeColumn, ColumnCodec, EncodeNotes, EncodedBuilder, EncodedTable, TableCodec};
use crate::data::{self, RawTable};
use crate::error::{Error, Result};
use crate::schema::linked::derived;
use crate::schema::{Schema, Table};
use privsynth_privacy::Sensitive;
use privsynth_privacy::bounding::{BoundStream, SecretKey};

/// The model tables of a linked fit on every person, the event models already encoded.
pub struct Streamed {
    /// One row per person: the person model's columns (encoded by the caller).
    pub person: RawTable,
    /// Per event table (order of [`Schema::event_tables`]): the event model's rows that count,
    /// bounded, with the bound they satisfy.
    pub events: Vec<(String, EncodedTable)>,
    /// Per event table, what encoding did to cells that did not fit (exact counts).
    pub notes: Sensitive<Vec<(String, EncodeNotes)>>,
}

/// Unique column names, in first-seen order.
fn unique(names: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    for n in names {
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

/// Read the columns `columns` of a whole table in batches and stack them (for the person
/// table: one row per person, only the needed columns).
fn read_columns(path: &Path, table: &Table, columns: &[String], batch_rows: usize) -> Result<RawTable> {
    let mut df: Option<DataFrame> = None;
    data::read_batches(path, table, columns, data::Show::Nothing, batch_rows, |b| {
        match &mut df {
            None => df = Some(b.df),
            Some(d) => {
                d.vstack_mut(&b.df).map_err(Error::polars)?;
            }
        }
        Ok(())
    })?;
    let df = match df {
        Some(mut d) => {
            d.rechunk_mut();
            d
        }
        None => DataFrame::empty_with_schema(
            &columns
                .iter()
                .map(|c| Field::new(c.as_str().into(), DataType::String))
                .collect::<polars::prelude::Schema>(),
        ),
    };
    Ok(RawTable::in_memory(&path.display().to_string(), df))
}

/// Code a whole column of values (in chunks) with one column's codec: codes and whether each
/// cell fits, with the notes. Under the `error` policy the first bad value stops the run.
fn code_values(
    table: &Table,
    codec: &ColumnCodec,
    s: &Series,
    notes: &mut EncodeNotes,
) -> Result<(Vec<u32>, Vec<bool>)> {
    let one = TableCodec { table: table.name.clone(), columns: vec![codec.clone()] };
    let mut codes = Vec::with_capacity(s.len());
    let mut valid = Vec::with_capacity(s.len());
    const CHUNK: usize = 1 << 20;
    let mut at = 0;
    while at < s.len() {
        let part = s.slice(at as i64, CHUNK.min(s.len() - at));
        let df = DataFrame::new(part.len(), vec![part.into()]).map_err(Error::polars)?;
        let enc =
            one.encode_all(&RawTable::in_memory(&format!("{} (derived column {})", table.name, codec.name), df))?;
        // By column name: `notes` holds the table's other columns too.
        for (name, c, u, d) in enc.notes().disclose_to_data_holder().columns {
            match notes.columns.iter_mut().find(|x| x.0 == name) {
                Some(x) => (x.1, x.2, x.3) = (x.1 + c, x.2 + u, x.3 + d),
                None => notes.columns.push((name, c, u, d)),
            }
        }
        codes.extend_from_slice(enc.column_codes(0));
        valid.extend((0..enc.len()).map(|i| enc.is_valid(i)));
        at += CHUNK;
    }
    Ok((codes, valid))
}

/// [`super::derive`] for a fit on every person, streamed from the files (see the module
/// documentation). `key` is the fresh secret key of contribution bounding.
pub fn derive_streamed(
    schema: &Schema,
    inputs: &Inputs,
    key: &SecretKey,
    batch_rows: usize,
) -> Result<(Streamed, Sensitive<DeriveReport>)> {
    let p = schema.person.as_ref().ok_or_else(|| Error::Usage("the schema has no `person` table".into()))?;
    let pt = schema.person_table().ok_or_else(|| Error::Internal("person table".into()))?;
    let person_model = schema.person_model_table().ok_or_else(|| Error::Internal("person model".into()))?;
    let mut report = DeriveReport::default();

    // The person table: key, birth, death and the person model's own columns.
    let needed = unique(
        [Some(p.key.clone()), p.birth.clone(), p.death.clone()].into_iter().flatten().chain(
            person_model
                .columns
                .iter()
                .filter(|c| pt.column(&c.name).is_some() && Some(&c.name) != p.death.as_ref())
                .map(|c| c.name.clone()),
        ),
    );
    let full = read_columns(inputs.path(&pt.name), pt, &needed, batch_rows)?;
    let all_keys = super::keys(&full, &p.key)?;
    // A person is the first row of each key (as in `derive`); person number = position among them.
    let mut index: HashMap<&str, u32> = HashMap::with_capacity(all_keys.len());
    let mut selected: Vec<usize> = Vec::with_capacity(all_keys.len());
    for (row, k) in all_keys.iter().enumerate() {
        match k {
            None => report.missing_keys += 1,
            Some(k) if index.contains_key(k.as_str()) => report.repeated_keys += 1,
            Some(k) => {
                let number = u32::try_from(selected.len())
                    .map_err(|_| Error::data(&full.file, "has more than 4,294,967,295 persons"))?;
                index.insert(k.as_str(), number);
                selected.push(row);
            }
        }
    }
    let praw = if selected.len() == full.df.height() {
        RawTable::in_memory(&full.file, full.df.clone())
    } else {
        full.take(&selected, full.file.clone())?
    };
    drop(full);
    let n = selected.len();
    let birth = match &p.birth {
        Some(b) => Some(days(pt, b, &praw)?),
        None => None,
    };
    let death = match &p.death {
        Some(d) => Some(days(pt, d, &praw)?),
        None => None,
    };

    /// An event table's rows that count, before the offset and person columns are coded.
    struct Kept {
        table: Table,
        model: Table,
        partial: (Vec<String>, Vec<usize>, Vec<CodeColumn>),
        valid: Vec<bool>,
        units: Vec<u32>,
        times: Vec<f64>,
        bound: privsynth_privacy::bounding::ContributionBound,
        notes: EncodeNotes,
    }
    let mut kept_tables: Vec<Kept> = vec![];
    let mut summaries: Vec<Summary> = vec![];
    for t in schema.event_tables() {
        let e = t.events.as_ref().expect("event table");
        let model = schema.event_model_table(t).ok_or_else(|| Error::Internal("event model".into()))?;
        let fk = t.foreign_keys.iter().find(|f| f.references == pt.name).expect("validated: an FK to the person table");
        let duration = e.end.as_ref().map(|end| derived::duration(end));
        // The model's columns coded batch by batch: the table's own and the duration.
        let mut partial_table = model.clone();
        partial_table.columns.retain(|c| c.name != derived::OFFSET && !c.name.starts_with("person."));
        let partial = TableCodec::new(&partial_table)?;
        let own: Vec<String> =
            partial_table.columns.iter().map(|c| c.name.clone()).filter(|c| Some(c) != duration.as_ref()).collect();
        let columns = unique(
            [fk.column.clone(), e.time.clone()]
                .into_iter()
                .chain(e.end.clone())
                .chain(e.summarise.iter().cloned())
                .chain(own),
        );
        let summarise: Vec<ColumnCodec> = e
            .summarise
            .iter()
            .map(|s| {
                let col = t.column(s).expect("validated");
                ColumnCodec::new(t, col)
                    .map_err(|m| Error::schema(format!("table {:?}", t.name), format!("column {s:?}: {m}")))
            })
            .collect::<Result<_>>()?;
        // Labels of the summarised columns, numbered as first seen.
        let mut labels: Vec<(HashMap<String, u32>, Vec<String>)> = vec![Default::default(); summarise.len()];
        let mut label_of: Vec<Vec<u32>> = vec![vec![]; summarise.len()];
        let mut stream = BoundStream::new(e.rows_per_person, key)?;
        let mut builder = EncodedBuilder::new(&partial);
        let (mut valid, mut units, mut times) = (vec![], vec![], vec![]);
        let (mut orphans, mut no_time) = (0usize, 0usize);
        let mut notes = EncodeNotes::default();
        data::read_batches(inputs.path(&t.name), t, &columns, data::Show::Nothing, batch_rows, |mut batch| {
            let time = days(t, &e.time, &batch)?;
            let fks = batch
                .series(&fk.column)?
                .cast(&DataType::String)
                .map_err(|err| Error::column(&batch.file, &fk.column, format!("cannot be read as text: {err}")))?;
            let mut cand: Vec<usize> = vec![];
            for (r, k) in fks.str().map_err(Error::polars)?.iter().enumerate() {
                let k = k.map(str::trim).filter(|k| !k.is_empty());
                let Some((k, &u)) = k.and_then(|k| index.get_key_value(k)) else {
                    orphans += 1;
                    continue;
                };
                let Some(x) = time[r] else {
                    no_time += 1;
                    continue;
                };
                stream.push(k.as_bytes());
                cand.push(r);
                units.push(u);
                times.push(x);
            }
            if let (Some(end), Some(name)) = (&e.end, &duration) {
                let unit = e.duration_unit.seconds() as f64 / 86_400.0;
                let ends = days(t, end, &batch)?;
                let v: Vec<Option<i64>> = ends
                    .iter()
                    .zip(&time)
                    .map(|(end, x)| Some(((end.as_ref()? - x.as_ref()?) / unit).floor() as i64))
                    .collect();
                batch.df.with_column(Series::new(name.as_str().into(), v).into()).map_err(Error::polars)?;
            }
            // The whole batch is coded, so that a strict error names the file's row and line.
            let enc = partial.encode_all(&batch)?;
            notes.add(&enc.notes().disclose_to_data_holder());
            builder.push_any(&enc, &cand);
            valid.extend(cand.iter().map(|&r| enc.is_valid(r)));
            for ((codec, (ids, names)), out) in summarise.iter().zip(&mut labels).zip(&mut label_of) {
                let s = batch.series(&codec.name)?;
                let mut all: Vec<u32> = Vec::with_capacity(s.len());
                let _ = codec
                    .read_cells(s, |c| {
                        all.push(match c {
                            Cell::Label(l) => match ids.get(l) {
                                Some(&i) => i,
                                None => {
                                    let i = names.len() as u32;
                                    ids.insert(l.to_string(), i);
                                    names.push(l.to_string());
                                    i
                                }
                            },
                            _ => u32::MAX,
                        })
                    })
                    .map_err(Error::polars)?;
                out.extend(cand.iter().map(|&r| all.get(r).copied().unwrap_or(u32::MAX)));
            }
            Ok(())
        })?;
        report.orphans.push((t.name.clone(), orphans));
        report.no_time.push((t.name.clone(), no_time));
        let rows = stream.rows();
        let bounded = stream.finish();
        let mut per = vec![0u32; n];
        for &u in &units {
            per[u as usize] += 1;
        }
        let over = per.iter().filter(|&&c| c > e.rows_per_person).count();
        drop(per);
        report.bounded.push((t.name.clone(), rows - bounded.kept.len(), over));
        fn keep_in<T: Copy>(v: &mut Vec<T>, kept: &[usize]) {
            for (j, &i) in kept.iter().enumerate() {
                v[j] = v[i];
            }
            v.truncate(kept.len());
            v.shrink_to_fit();
        }
        keep_in(&mut units, &bounded.kept);
        keep_in(&mut times, &bounded.kept);
        keep_in(&mut valid, &bounded.kept);
        for l in &mut label_of {
            keep_in(l, &bounded.kept);
        }
        builder.retain(&bounded.kept);

        // The person summaries over the rows that count.
        let mut count = vec![0i64; n];
        let mut first: Vec<Option<f64>> = vec![None; n];
        let mut last: Vec<Option<f64>> = vec![None; n];
        for (&u, &x) in units.iter().zip(&times) {
            let u = u as usize;
            count[u] += 1;
            first[u] = Some(first[u].map_or(x, |f: f64| f.min(x)));
            last[u] = Some(last[u].map_or(x, |l: f64| l.max(x)));
        }
        let mut tops = vec![];
        for ((codec, (_, names)), ids) in summarise.iter().zip(&labels).zip(&label_of) {
            // (person, label) pairs sorted, then the longest run per person; ties go to the first
            // label in sort order (as in `derive`), so the result does not depend on row order.
            let mut pairs: Vec<u64> = units
                .iter()
                .zip(ids)
                .filter(|(_, l)| **l != u32::MAX)
                .map(|(&u, &l)| ((u as u64) << 32) | l as u64)
                .collect();
            pairs.sort_unstable();
            let mut top: Vec<Option<String>> = vec![None; n];
            let mut best: Vec<(usize, u32)> = vec![(0, u32::MAX); n];
            let mut i = 0;
            while i < pairs.len() {
                let mut j = i;
                while j < pairs.len() && pairs[j] == pairs[i] {
                    j += 1;
                }
                let (u, l) = ((pairs[i] >> 32) as usize, (pairs[i] & 0xFFFF_FFFF) as u32);
                let (c, b) = best[u];
                if j - i > c || (j - i == c && names[l as usize] < names[b as usize]) {
                    best[u] = (j - i, l);
                }
                i = j;
            }
            for (u, (c, l)) in best.into_iter().enumerate() {
                if c > 0 {
                    top[u] = Some(names[l as usize].clone());
                }
            }
            tops.push((codec.name.clone(), top));
        }
        summaries.push(Summary { table: t.name.clone(), count, first, last, tops });
        kept_tables.push(Kept {
            table: t.clone(),
            model,
            partial: builder.into_columns(),
            valid,
            units,
            times,
            bound: bounded.bound,
            notes,
        });
    }

    let refs: Vec<&Summary> = summaries.iter().collect();
    let person = person_frame(schema, &praw, birth.as_deref(), death.as_deref(), &refs)?;
    drop(praw);

    // The event models, column by column in model order: the offset and person columns coded
    // from the summaries, then the rows that do not fit left out.
    let mut events = vec![];
    let mut all_notes = vec![];
    for (k, s) in kept_tables.into_iter().zip(&summaries) {
        let Kept { table, model, partial, mut valid, units, times, bound, mut notes } = k;
        let full = TableCodec::new(&model)?;
        let (pnames, _, pcols) = partial;
        let mut pcols: Vec<Option<CodeColumn>> = pcols.into_iter().map(Some).collect();
        let mut store: Vec<CodeColumn> = Vec::with_capacity(full.columns.len());
        for codec in &full.columns {
            let name = codec.name.as_str();
            if name == derived::OFFSET {
                let v: Vec<i64> = units
                    .iter()
                    .zip(&times)
                    .map(|(&u, &x)| (x - s.first[u as usize].unwrap_or(x)).floor() as i64)
                    .collect();
                let (codes, ok) = code_values(&model, codec, &Series::new(name.into(), v), &mut notes)?;
                for (a, b) in valid.iter_mut().zip(&ok) {
                    *a &= *b;
                }
                store.push(CodeColumn::from_codes(codec.size(), &codes));
            } else if let Some(pc) = name.strip_prefix("person.") {
                let series = person.series(pc)?.clone().with_name(name.into());
                let (codes, ok) = code_values(&model, codec, &series, &mut notes)?;
                for (a, &u) in valid.iter_mut().zip(&units) {
                    *a &= ok[u as usize];
                }
                let mut c = CodeColumn::for_size(codec.size(), units.len());
                c.extend(units.iter().map(|&u| codes[u as usize]));
                store.push(c);
            } else {
                let i = pnames
                    .iter()
                    .position(|p| p == name)
                    .ok_or_else(|| Error::Internal(format!("no coded column {name}")))?;
                store.push(pcols[i].take().ok_or_else(|| Error::Internal(format!("column {name} twice")))?);
            }
        }
        drop(units);
        drop(times);
        let fit: Vec<usize> = (0..valid.len()).filter(|&i| valid[i]).collect();
        notes.rows_dropped = valid.len() - fit.len();
        for c in &mut store {
            c.retain_rows(&fit);
        }
        events.push((table.name.clone(), EncodedTable::from_columns(full.names(), full.sizes(), store, bound)?));
        all_notes.push((table.name.clone(), notes));
    }
    Ok((Streamed { person, events, notes: Sensitive::new(all_notes) }, Sensitive::new(report)))
}
