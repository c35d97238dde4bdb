//! `schema infer FOLDER`: propose a linked schema from a folder of tables (`<table>.csv`).
//!
//! Each table is inferred as [`super::infer`] does. Then keys and links are read from the
//! data: a primary key is a column named like an id whose values are unique and present; a
//! foreign key is a column whose values lie in another table's primary key (up to a small
//! share of orphans, reported); the person table is the one named patients/person, else the
//! most referenced one. Event tables get a `rows_per_person` from a quantile of the data and the
//! first date column as `time`. All of it is read from the private data and is only a proposal
//! to review: the links, the bounds and the domains (`source: data`).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use polars::prelude::DataType;

use crate::data::TABLE_EXTENSIONS as EXTENSIONS;
use crate::data::{self, RawTable};
use crate::error::{Error, Result};
use crate::propose::infer::{self, Options, Proposal};
use crate::schema::linked::{Events, ForeignKey, Person};
use crate::schema::{Column, ColumnType, CsvFormat, FORMAT_VERSION, Role, Schema, Table};

/// Largest share of a column's values that may be missing from the referenced key.
pub const MAX_ORPHAN_SHARE: f64 = 0.05;
/// Quantile of rows per person proposed as the contribution bound.
pub const BOUND_QUANTILE: f64 = 0.95;

/// A proposed linked schema, its warnings, and the notes on keys and links found in the data.
pub struct LinkedProposal {
    pub proposal: Proposal,
    pub notes: Vec<String>,
}

fn id_like(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "id" || n.ends_with("_id") || (name.len() > 2 && (name.ends_with("Id") || name.ends_with("ID")))
}

fn singular(table: &str) -> String {
    let t = table.to_ascii_lowercase();
    t.strip_suffix('s').map(str::to_owned).unwrap_or(t)
}

fn is_date(c: &Column) -> bool {
    matches!(c.kind, ColumnType::Date | ColumnType::Datetime)
}

/// Non-missing values of a column, as text.
fn values(raw: &RawTable, name: &str) -> Result<Vec<Option<String>>> {
    let s = raw.series(name)?;
    let text = s
        .cast(&DataType::String)
        .map_err(|e| Error::column(&raw.file, name, format!("cannot be read as text: {e}")))?;
    let ca = text.str().map_err(|e| Error::column(&raw.file, name, format!("cannot be read as text: {e}")))?;
    Ok(ca
        .iter()
        .map(|v| v.map(str::trim).filter(|v| !v.is_empty() && !infer::MISSING_TOKENS.contains(v)).map(str::to_owned))
        .collect())
}

struct Found {
    table: Table,
    raw: RawTable,
}

/// Make a key column an identifier: keys are regenerated, never modelled.
fn as_key(t: &mut Table, name: &str) {
    if let Some(c) = t.columns.iter_mut().find(|c| c.name == name) {
        c.kind = ColumnType::Identifier;
        c.role = Role::Identifier;
        c.domain = None;
        c.precision = None;
        c.out_of_domain = None;
        c.missing_values.clear();
    }
}

type Link = (String, String, String, usize, usize); // table, column, references, values, orphans

/// Foreign keys: columns whose values lie in another table's primary key. A column named like
/// the key or the table is accepted on containment; other columns only when they hold opaque
/// identifiers that are not named like an id.
fn detect_foreign_keys(found: &[Found], pk: &HashMap<String, (String, HashSet<String>)>) -> Result<Vec<Link>> {
    let mut fks = vec![];
    for f in found {
        for c in &f.raw.column_names() {
            if pk.get(&f.table.name).is_some_and(|(k, _)| k == c) {
                continue;
            }
            let lc = c.to_ascii_lowercase();
            // Opaque: an identifier by content (e.g. UUIDs in Synthea's PATIENT), not by an id
            // name; id-named columns (`provider_id`) must match by name, or integer ids of
            // unrelated tables would match by chance.
            let opaque = !id_like(c) && f.table.column(c).is_some_and(|col| col.kind == ColumnType::Identifier);
            let named = |rt: &str, k: &str| {
                lc == k.to_ascii_lowercase() || lc == singular(rt) || lc == format!("{}_id", singular(rt))
            };
            if !opaque && !pk.iter().any(|(rt, (k, _))| *rt != f.table.name && named(rt, k)) {
                continue;
            }
            let v = values(&f.raw, c)?;
            let present: Vec<&String> = v.iter().flatten().collect();
            if present.is_empty() {
                continue;
            }
            let mut best: Option<(bool, f64, String, usize)> = None;
            let mut targets: Vec<_> = pk.iter().filter(|(rt, _)| **rt != f.table.name).collect();
            targets.sort_by(|a, b| a.0.cmp(b.0));
            for (rt, (k, keys)) in targets {
                let is_named = named(rt, k);
                if !is_named && !opaque {
                    continue;
                }
                let orphans = present.iter().filter(|x| !keys.contains(**x)).count();
                let share = orphans as f64 / present.len() as f64;
                if share > MAX_ORPHAN_SHARE {
                    continue;
                }
                if best.as_ref().is_none_or(|b| (is_named, -share) > (b.0, -b.1)) {
                    best = Some((is_named, share, rt.clone(), orphans));
                }
            }
            if let Some((_, _, rt, orphans)) = best {
                fks.push((f.table.name.clone(), c.clone(), rt, present.len(), orphans));
            }
        }
    }
    Ok(fks)
}

pub fn infer_folder(dir: &Path, csv: &CsvFormat, max_categories: usize) -> Result<LinkedProposal> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(Error::data(
            dir.display().to_string(),
            format!("holds no table files (.{})", EXTENSIONS.join(", .")),
        ));
    }
    let mut warnings = vec![];
    let mut found: Vec<Found> = vec![];
    for p in &paths {
        let name = p.file_stem().and_then(|s| s.to_str()).unwrap_or("table").to_string();
        let raw = data::read_as(p, csv, None, data::Show::Header)?;
        let prop = infer::infer(&raw, &Options { table_name: name.clone(), csv: csv.clone(), max_categories })?;
        warnings.extend(prop.warnings.into_iter().map(|w| format!("table {name:?}: {w}")));
        let table =
            prop.schema.tables.into_iter().next().ok_or_else(|| Error::Internal("infer gave no table".into()))?;
        found.push(Found { table, raw });
    }
    let mut notes = vec![];

    // Primary keys: id-like, unique, present in every row. Prefer `id`, then `<table>_id`.
    let mut pk: HashMap<String, (String, HashSet<String>)> = HashMap::new();
    for f in &found {
        let mut best: Option<(u8, String, HashSet<String>)> = None;
        for c in &f.raw.column_names() {
            if !id_like(c) {
                continue;
            }
            let v = values(&f.raw, c)?;
            let set: HashSet<String> = v.iter().flatten().cloned().collect();
            if v.iter().any(Option::is_none) || set.len() != v.len() {
                continue;
            }
            let lc = c.to_ascii_lowercase();
            let rank = if lc == "id" {
                0
            } else if lc == format!("{}_id", singular(&f.table.name))
                || lc == format!("{}_id", f.table.name.to_ascii_lowercase())
            {
                1
            } else {
                2
            };
            if best.as_ref().is_none_or(|b| rank < b.0) {
                best = Some((rank, c.clone(), set));
            }
        }
        if let Some((_, c, set)) = best {
            pk.insert(f.table.name.clone(), (c, set));
        }
    }

    let fks = detect_foreign_keys(&found, &pk)?;

    // The person table: named so, else the most referenced.
    let named = found
        .iter()
        .map(|f| f.table.name.as_str())
        .find(|n| ["patients", "patient", "person", "persons", "people"].contains(&n.to_ascii_lowercase().as_str()));
    let person_table = match named.filter(|n| pk.contains_key(*n)) {
        Some(n) => n.to_string(),
        None => {
            let mut refs: HashMap<&str, usize> = HashMap::new();
            for (_, _, r, _, _) in &fks {
                *refs.entry(r.as_str()).or_default() += 1;
            }
            match refs.into_iter().max_by_key(|(n, c)| (*c, std::cmp::Reverse(*n))) {
                Some((n, _)) => n.to_string(),
                None => {
                    return Err(Error::data(
                        dir.display().to_string(),
                        "no table references another by key (no column's values lie in another table's id column), so no linked schema can be proposed; infer each file on its own",
                    ));
                }
            }
        }
    };
    let person_key = pk[&person_table].0.clone();
    // A table keyed by the person key (OMOP `death.person_id`: same name, values among the
    // persons') extends the person: that key is its link to the person table, not its own key.
    let persons = pk[&person_table].1.clone();
    pk.retain(|t, (k, keys)| *t == person_table || *k != person_key || !keys.is_subset(&persons));
    let fks = detect_foreign_keys(&found, &pk)?;

    let person_key_values = persons;
    let mut tables = vec![];
    for f in &found {
        let mut t = f.table.clone();
        let name = t.name.clone();
        if let Some((k, _)) = pk.get(&name) {
            t.primary_key = Some(k.clone());
            let k = k.clone();
            as_key(&mut t, &k);
        }
        if name == person_table {
            tables.push(t);
            continue;
        }
        let my_fks: Vec<&Link> = fks.iter().filter(|x| x.0 == name).collect();
        let to_person = my_fks.iter().find(|x| x.2 == person_table);
        let time = t.columns.iter().find(|c| is_date(c)).map(|c| c.name.clone());
        match (to_person, time) {
            (Some(link), Some(time)) => {
                // Rows per person, over persons with at least one row.
                let v = values(&f.raw, &link.1)?;
                let mut per: HashMap<&str, u32> = HashMap::new();
                for x in v.iter().flatten().filter(|x| person_key_values.contains(*x)) {
                    *per.entry(x.as_str()).or_default() += 1;
                }
                let mut counts: Vec<u32> = per.values().copied().collect();
                counts.sort_unstable();
                let q = counts.get(((counts.len() as f64 * BOUND_QUANTILE).ceil() as usize).saturating_sub(1)).copied().unwrap_or(1).clamp(1, 10_000);
                let end = t
                    .columns
                    .iter()
                    .filter(|c| is_date(c) && c.name != time)
                    .find(|c| {
                        let n = c.name.to_ascii_lowercase();
                        n.contains("stop") || n.contains("end")
                    })
                    .map(|c| c.name.clone());
                notes.push(format!(
                    "{name}: rows_per_person {q} is the {:.0}th percentile of rows per person IN THE DATA (max {}): a data-derived value, replace it with a public choice",
                    BOUND_QUANTILE * 100.0,
                    counts.last().copied().unwrap_or(0)
                ));
                t.read_from_data.push("rows_per_person".into());
                t.events = Some(Events {
                    rows_per_person: q,
                    time,
                    end,
                    duration: None,
                    duration_unit: Default::default(),
                    offset: None,
                    first: None,
                    count_bins: None,
                    person_columns: vec![],
                    summarise: vec![],
                });
                for (_, c, r, n, orphans) in &my_fks {
                    t.foreign_keys.push(ForeignKey { column: c.clone(), references: r.clone() });
                    let c = c.clone();
                    as_key(&mut t, &c);
                    let rk = &pk[r].0;
                    notes.push(format!("{name}.{c} -> {r}.{rk}: {n} values, {orphans} orphan(s) ({:.1}%) in the data", 100.0 * *orphans as f64 / *n as f64));
                }
            }
            (Some(_), None) => notes.push(format!("{name}: references {person_table} but has no date column, so it cannot be an event table; no links proposed")),
            (None, _) => notes.push(format!("{name}: no column references {person_table}; left unlinked")),
        }
        tables.push(t);
    }
    // A link to a table that ended up without `events` is dropped (validation requires events).
    let events: HashSet<String> = tables.iter().filter(|t| t.events.is_some()).map(|t| t.name.clone()).collect();
    for t in &mut tables {
        let before = t.foreign_keys.len();
        t.foreign_keys.retain(|fk| fk.references == person_table || events.contains(&fk.references));
        if t.foreign_keys.len() < before {
            notes.push(format!("{}: links to tables without events were left out", t.name));
        }
    }
    let pt =
        tables.iter().find(|t| t.name == person_table).ok_or_else(|| Error::Internal("person table lost".into()))?;
    let date_named = |w: &str| {
        pt.columns.iter().find(|c| is_date(c) && c.name.to_ascii_lowercase().contains(w)).map(|c| c.name.clone())
    };
    let person = Person {
        table: person_table.clone(),
        key: person_key,
        birth: date_named("birth"),
        death: date_named("death"),
        death_age: None,
    };
    let schema = Schema { version: FORMAT_VERSION, person: Some(person), dp_inference: None, tables };
    schema.validate(&dir.display().to_string())?;
    Ok(LinkedProposal { proposal: Proposal { schema, warnings }, notes })
}

/// Render a linked proposal as commented YAML for review.
pub fn render(p: &LinkedProposal, data: &str) -> Result<String> {
    let mut out = format!(
        "# Linked schema proposed by `privsynth schema infer` from the folder {data}.\n\
         # READ FROM THE PRIVATE DATA, REVIEW ALL OF IT BEFORE USE:\n\
         # - the keys, the links and the person table were found by looking at the values;\n\
         # - every `rows_per_person` is a quantile of the real rows per person. A bound taken from\n\
         #   the data discloses it just like a min/max does: replace each with a public choice\n\
         #   (what a person's record can plausibly hold), and argue it in a comment;\n\
         # - domains marked `source: data` were read from the data: replace them with public\n\
         #   knowledge and set `source: public` before DP fitting.\n\
         # Then add `duration`/`duration_unit`, `person_columns` and `summarise` where wanted.\n\
         # Found in the data:\n"
    );
    for n in &p.notes {
        out.push_str(&format!("# - {}\n", n.replace('\n', " ")));
    }
    for w in &p.proposal.warnings {
        out.push_str(&format!("# - {}\n", w.replace('\n', " ")));
    }
    out.push_str(&p.proposal.schema.to_yaml()?);
    Ok(out)
}
