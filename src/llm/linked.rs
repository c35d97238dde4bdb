//! Text columns of linked tables: each table's text columns are written per synthetic row
//! through the same typed prompt builder as a single table. A person's are conditioned on the
//! person's synthetic record; an event's (a visit reason, a note) on the event's own synthetic
//! values and its synthetic person's record, shown as `person.COLUMN`. Statistics are the
//! one-way releases of the table's own model (the person model, or the event model, whose
//! person columns carry the same `person.` names). Nothing else reaches a prompt: the rows come
//! from [`crate::ehr::sample::Output`], which only the linked sampler makes.

use super::client::Client;
use super::prompt::{ReleasedStats, TextColumn};
use super::text::{self, TextReport};
use crate::ehr::LinkedModel;
use crate::ehr::sample::Output;
use crate::error::{Error, Result};
use crate::schema::{Schema, Table};

/// The public description an event table's prompts show: the table's own columns plus its
/// person table's modelled columns as `person.COLUMN` (context only: they are never written).
pub fn prompt_table(schema: &Schema, t: &Table) -> Result<Table> {
    let p = schema.person.as_ref().ok_or_else(|| Error::Internal("no person table".into()))?;
    if t.name == p.table {
        return Ok(t.clone());
    }
    let pt = schema.person_table().ok_or_else(|| Error::Internal("no person table".into()))?;
    let mut out = t.clone();
    for c in pt.columns.iter().filter(|c| c.is_modelled()) {
        let mut c = c.clone();
        c.name = format!("person.{}", c.name);
        c.description = Some(format!(
            "The person's {} (table {}){}",
            &c.name["person.".len()..],
            pt.name,
            c.description.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
        ));
        c.llm = None;
        out.columns.push(c);
    }
    // The person table's rules are about the person's columns under their own names.
    Ok(out)
}

/// Write the text columns of every table of a linked sample: the person table first, then the
/// event tables in sampling order. One report per table that has text columns.
pub fn fill(
    client: &Client,
    model: &LinkedModel,
    out: &mut Output,
    max_chars: usize,
    batch: usize,
    temperature: f64,
) -> Result<Vec<(String, TextReport)>> {
    let schema = &model.schema;
    let pt = schema.person_table().ok_or_else(|| Error::Internal("no person table".into()))?;
    let mut reports = vec![];
    let mut order: Vec<(&Table, &crate::model::file::ModelFile)> = vec![(pt, &model.person)];
    for em in &model.events {
        let t = schema
            .tables
            .iter()
            .find(|t| t.name == em.table)
            .ok_or_else(|| Error::Internal(format!("no table {:?}", em.table)))?;
        order.push((t, &em.model));
    }
    for (t, m) in order {
        let table = prompt_table(schema, t)?;
        let cols = TextColumn::of_table(&table, max_chars);
        if cols.is_empty() {
            continue;
        }
        let stats = ReleasedStats::from_model(m)?;
        let rows = out.records(schema, &t.name)?;
        let (values, report) = text::write(client, &table, &stats, &rows, &cols, batch, temperature)?;
        for (c, v) in cols.iter().zip(values) {
            out.set_text(&t.name, c.name(), v)?;
        }
        reports.push((t.name.clone(), report));
    }
    Ok(reports)
}
