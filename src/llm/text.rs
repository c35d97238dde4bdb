//! Text columns: written for each synthetic record in batches, conditioned on the record's
//! modelled values, the public column descriptions and the released statistics. A batch whose
//! answers keep failing is left empty (null) and counted, and the run goes on.

use serde_json::Value;

use super::ModelText;
use super::client::Client;
use super::prompt::{self, ReleasedStats, TextColumn};
use super::validate::{Reject, reason};
use crate::error::Result;
use crate::synthetic::{SyntheticRow, SyntheticTable};

/// What the text pass did.
#[derive(Debug, Clone, Default)]
pub struct TextReport {
    pub columns: Vec<String>,
    pub records: usize,
    /// Records whose text columns were written.
    pub written: usize,
    pub batches: usize,
    /// Batches given up (their cells are left empty).
    pub given_up: usize,
}

impl TextReport {
    pub fn summary(&self) -> String {
        format!(
            "llm text: {} of {} record(s) written ({}) in {} batch(es); {} batch(es) given up, their cells left empty",
            self.written,
            self.records,
            self.columns.join(", "),
            self.batches,
            self.given_up
        )
    }
}

pub(crate) type Batch = Vec<Vec<Option<ModelText>>>;

/// Judge a text answer: one object per record id, each column a non-blank string within its
/// limit (or null where allowed). The envelope check already enforced the shape.
pub(crate) fn parse(v: &Value, rows: &[SyntheticRow], cols: &[TextColumn]) -> std::result::Result<Batch, Reject> {
    let mut out = vec![];
    for r in rows {
        let id = prompt::row_id(r);
        let obj = v.get(&id).ok_or_else(|| Reject::new(reason::SCHEMA, format!("record {id} is missing")))?;
        let mut cells = vec![];
        for c in cols {
            let cell = match obj.get(c.name()) {
                Some(Value::String(s)) => {
                    let t = s.trim();
                    if t.is_empty() {
                        return Err(Reject::new(reason::SCHEMA, format!("{id}.{}: the text is blank", c.name())));
                    }
                    if t.chars().count() > c.max_chars() {
                        return Err(Reject::new(
                            reason::SCHEMA,
                            format!("{id}.{}: longer than {} characters", c.name(), c.max_chars()),
                        ));
                    }
                    if t.chars().any(|ch| ch.is_control() && ch != '\n' && ch != '\t') {
                        return Err(Reject::new(reason::SCHEMA, format!("{id}.{}: control characters", c.name())));
                    }
                    Some(ModelText::accepted(t.to_string()))
                }
                Some(Value::Null) if c.nullable() => None,
                _ => return Err(Reject::new(reason::SCHEMA, format!("{id}.{}: not a string", c.name()))),
            };
            cells.push(cell);
        }
        out.push(cells);
    }
    Ok(out)
}

/// Write the table's text columns.
pub fn fill(
    client: &Client,
    synth: &mut SyntheticTable,
    stats: &ReleasedStats,
    max_chars: usize,
    batch: usize,
    temperature: f64,
) -> Result<TextReport> {
    let cols = TextColumn::of_table(synth.table(), max_chars);
    if cols.is_empty() || synth.is_empty() {
        return Ok(TextReport {
            columns: cols.iter().map(|c| c.name().to_string()).collect(),
            records: synth.len(),
            ..Default::default()
        });
    }
    let rows = synth.rows()?;
    let table = synth.table().clone();
    let (columns, report) = write(client, &table, stats, &rows, &cols, batch, temperature)?;
    for (c, values) in cols.iter().zip(columns) {
        synth.set_text(c.name(), values)?;
    }
    Ok(report)
}

/// Write the text columns `cols` of `rows` (records of `table`, the public description the
/// prompts show), in batches: per column, one value per record (null where a batch was given
/// up).
pub fn write(
    client: &Client,
    table: &crate::schema::Table,
    stats: &ReleasedStats,
    rows: &[SyntheticRow],
    cols: &[TextColumn],
    batch: usize,
    temperature: f64,
) -> Result<(Vec<Vec<Option<ModelText>>>, TextReport)> {
    let mut report = TextReport {
        columns: cols.iter().map(|c| c.name().to_string()).collect(),
        records: rows.len(),
        ..Default::default()
    };
    let mut columns: Vec<Vec<Option<ModelText>>> = vec![Vec::with_capacity(rows.len()); cols.len()];
    if cols.is_empty() || rows.is_empty() {
        return Ok((columns, report));
    }
    let batches: Vec<&[SyntheticRow]> = rows.chunks(batch.max(1)).collect();
    report.batches = batches.len();
    let answers = client.run_all("text", batches.clone(), |chunk| {
        let req = prompt::text_request(table, stats, chunk, cols, temperature)?;
        client.ask(&req, |v| parse(v, chunk, cols))
    })?;
    for (chunk, answer) in batches.iter().zip(answers) {
        match answer {
            Some(b) => {
                report.written += chunk.len();
                for cells in b {
                    for (col, cell) in columns.iter_mut().zip(cells) {
                        col.push(cell);
                    }
                }
            }
            None => {
                report.given_up += 1;
                for col in columns.iter_mut() {
                    col.extend(std::iter::repeat_n(None, chunk.len()));
                }
            }
        }
    }
    Ok((columns, report))
}
