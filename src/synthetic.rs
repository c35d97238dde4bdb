//! The synthetic table: records drawn from a model file and decoded through the schema, with the
//! table's reviewed constraints enforced by rejection, plus the text columns the LLM stage
//! writes.
//!
//! It is the only source of [`SyntheticRow`], the record type prompts accept: its fields are
//! private and the only constructor samples from a [`ModelFile`] (which holds DP releases and
//! their post-processing only), so a real record cannot be dressed up as a synthetic one. Text
//! cells can only be set from [`AcceptedText`], implemented only by `llm::ModelText`, which only
//! the LLM stage's validators create.
//! Rejection against public rules is post-processing and costs no privacy.

use polars::prelude::*;
use rand::rngs::StdRng;

use crate::codec::TableCodec;
use crate::error::{Error, Result};
use crate::mechanism;
use crate::model::file::ModelFile;
use crate::model::sample;
use crate::schema::constraints::{self, Compiled, RuleStatus};
use crate::schema::{Cell, ColumnType, Role, Table};

/// Draws at most this many records per requested record, and at least `MIN_DRAW_BUDGET` in
/// all, before the rules are declared unsatisfiable in practice. The floor matters for small
/// requests: a noisy model of a small table can pass a sound rule 1 time in 200, and 100k
/// draws cost well under a second.
const MAX_DRAWS_PER_ROW: usize = 100;
const MIN_DRAW_BUDGET: usize = 100_000;

/// Above this rejected share the summary warns that the rules, not the model, shape the output.
const HEAVY_REJECTION: f64 = 0.9;

/// Text a model wrote and a validator accepted. Implemented only by `llm::ModelText` (which only
/// the LLM stage's validators create); the trait lives here so that this floor does not import
/// the LLM stage above it. Implementing it elsewhere would let other text into synthetic cells.
pub trait AcceptedText {
    fn into_string(self) -> String;
}

/// Synthetic records: the decoded modelled columns and the text columns.
pub struct SyntheticTable {
    table: Table,
    frame: DataFrame,
    /// Per text column (schema order): its values, null until the LLM stage writes them.
    text: Vec<(String, Vec<Option<String>>)>,
}

/// One synthetic record as prompts see it: column name and value as text (`None` = missing).
#[derive(Debug, Clone)]
pub struct SyntheticRow {
    index: usize,
    values: Vec<(String, Option<String>)>,
}

impl SyntheticRow {
    /// Position of the record in its table (0-based).
    pub fn index(&self) -> usize {
        self.index
    }

    pub fn values(&self) -> &[(String, Option<String>)] {
        &self.values
    }

    pub fn get(&self, column: &str) -> Option<&str> {
        self.values.iter().find(|(c, _)| c == column).and_then(|(_, v)| v.as_deref())
    }

    /// A record drawn by a sampler of DP models. Only the samplers call this: this module and
    /// the linked sampler (`ehr::sample::Output`), whose tables come from a `LinkedModel`.
    pub(crate) fn sampled(index: usize, values: Vec<(String, Option<String>)>) -> SyntheticRow {
        SyntheticRow { index, values }
    }
}

/// What rejection sampling did.
#[derive(Debug, Clone, Default)]
pub struct Rejections {
    /// Reviewed rules enforced.
    pub enforced: usize,
    /// Rules present but not enforced (proposed or rejected), listed as `N (kind)`.
    pub not_enforced: Vec<String>,
    pub drawn: usize,
    pub rejected: usize,
    /// Per enforced rule (1-based position and description): records it rejected.
    pub by_rule: Vec<(usize, String, usize)>,
}

impl Rejections {
    /// The lines for the run summary.
    pub fn summary(&self) -> Vec<String> {
        let mut out = vec![];
        if self.enforced > 0 {
            let rules: Vec<String> = self.by_rule.iter().map(|(i, d, n)| format!("constraint {i} ({d}) {n}")).collect();
            out.push(format!(
                "constraints: {} reviewed rule(s) enforced by rejection; {} of {} drawn records rejected ({:.1}%): {}",
                self.enforced,
                self.rejected,
                self.drawn,
                100.0 * self.rejected as f64 / self.drawn.max(1) as f64,
                rules.join(", ")
            ));
            if self.rejected as f64 > HEAVY_REJECTION * self.drawn as f64 {
                out.push(format!(
                    "warning: over {:.0}% of the model's records broke a reviewed rule: the rules, not the fitted marginals, shape these records \
                     (the model disagrees with them; a larger epsilon or a coarser domain may help)",
                    100.0 * HEAVY_REJECTION
                ));
            }
        }
        if !self.not_enforced.is_empty() {
            out.push(format!(
                "note: {} constraint(s) not enforced because their status is not `reviewed`: {}",
                self.not_enforced.len(),
                self.not_enforced.join(", ")
            ));
        }
        out
    }
}

/// Text columns the LLM stage writes: type text, not identifiers.
/// Make a synthetic table fit its schema table as written: a column the run did not produce
/// (an identifier without a fake generator, a text column that stayed empty without the LLM
/// stage, any column without a single value) is left out of `df` and of `table`, whose
/// description then says which and why. Returns that reason when anything was left out; the
/// changed `table` is the output's own schema, which `schema check` passes on `df`.
pub fn conform(table: &mut Table, df: &mut DataFrame) -> Option<String> {
    let (mut absent, mut empty) = (vec![], vec![]);
    for c in &table.columns {
        match df.column(&c.name) {
            Err(_) => absent.push(c.name.clone()),
            // Columns without a value: text without the LLM stage, and a modelled nullable
            // column that happened to be drawn all-null (`schema check` reports an all-missing
            // column as a finding); the description written beside the output names each.
            Ok(col) if df.height() > 0 && col.null_count() == df.height() => empty.push(c.name.clone()),
            Ok(_) => {}
        }
    }
    for c in &empty {
        let _ = df.drop_in_place(c);
    }
    let mut why = vec![];
    if !absent.is_empty() {
        why.push(format!("{} (identifiers without a `fake` generator)", absent.join(", ")));
    }
    if !empty.is_empty() {
        why.push(format!(
            "{} (no value generated: text columns need the LLM stage; a modelled column was drawn all-missing)",
            empty.join(", ")
        ));
    }
    if why.is_empty() {
        return None;
    }
    let why = why.join("; ");
    table.columns.retain(|c| !absent.contains(&c.name) && !empty.contains(&c.name));
    // Keys that are not written no longer describe the output (a single table's identifiers).
    let kept = |n: &String| table.columns.iter().any(|c| &c.name == n);
    if table.privacy_unit.as_ref().is_some_and(|u| !kept(u)) {
        table.privacy_unit = None;
        table.rows_per_unit = None;
    }
    if table.primary_key.as_ref().is_some_and(|k| !kept(k)) {
        table.primary_key = None;
    }
    let fks = std::mem::take(&mut table.foreign_keys);
    table.foreign_keys = fks.into_iter().filter(|f| kept(&f.column)).collect();
    // Workload entries and constraints name modelled columns, and a nullable one drawn
    // all-missing is left out: what names a column that is not written goes too.
    table.workload.retain(|w| w.columns.iter().all(kept));
    table.constraints.retain(|r| r.columns().iter().all(|c| table.columns.iter().any(|k| k.name == *c)));
    let note = format!("privsynth output: column(s) of the source schema not produced: {why}.");
    table.description = Some(match table.description.take() {
        Some(d) => format!("{d} {note}"),
        None => note,
    });
    Some(why)
}

pub fn text_columns(table: &Table) -> Vec<&crate::schema::Column> {
    table.columns.iter().filter(|c| c.kind == ColumnType::Text && c.role != Role::Identifier).collect()
}

/// A model file prepared for drawing records (the model calibrated once, the rules compiled),
/// so that a large table can be drawn in batches; [`Drawer::report`] adds up what rejection
/// did over all of them.
pub struct Drawer<'m> {
    model: &'m ModelFile,
    origin: String,
    sampler: sample::Sampler,
    codec: TableCodec,
    names: Vec<String>,
    rules: Vec<Compiled>,
    pub report: Rejections,
}

impl<'m> Drawer<'m> {
    pub fn new(model: &'m ModelFile, origin: &str) -> Result<Drawer<'m>> {
        let gm = model.model(origin)?;
        let codec = TableCodec::new(&model.table)?;
        let (names, sizes) = (codec.names(), codec.sizes());
        if names != model.columns || sizes != model.sizes {
            return Err(Error::data(origin, "is inconsistent: its columns do not match its schema"));
        }
        let all = constraints::compile(&model.table, &names).map_err(|p| {
            Error::schema(
                format!("{origin} (table {:?})", model.table.name),
                format!("has invalid constraints:\n  - {}", p.join("\n  - ")),
            )
        })?;
        let (rules, other): (Vec<Compiled>, Vec<Compiled>) =
            all.into_iter().partition(|c| c.rule.status() == RuleStatus::Reviewed);
        let report = Rejections {
            enforced: rules.len(),
            not_enforced: other
                .iter()
                .map(|c| {
                    format!(
                        "{} ({}, {})",
                        c.index + 1,
                        c.rule.kind(),
                        if c.rule.status() == RuleStatus::Rejected { "rejected" } else { "proposed" }
                    )
                })
                .collect(),
            by_rule: rules.iter().map(|c| (c.index + 1, c.rule.describe(), 0)).collect(),
            ..Default::default()
        };
        Ok(Drawer {
            model,
            origin: origin.to_string(),
            sampler: sample::Sampler::new(&gm),
            codec,
            names,
            rules,
            report,
        })
    }

    fn draw(&self, n: usize, rng: &mut StdRng) -> Result<DataFrame> {
        let codes = self.sampler.draw(n, rng);
        let codes = mechanism::expand(&self.model.compression, &self.model.expansion, codes, rng);
        self.codec.decode(&codes, rng)
    }

    /// Draw `rows` records that pass the reviewed rules (up to [`MAX_DRAWS_PER_ROW`] draws a
    /// record, at least [`MIN_DRAW_BUDGET`]).
    pub fn table(&mut self, rows: usize, rng: &mut StdRng) -> Result<SyntheticTable> {
        let model = self.model;
        let origin = self.origin.as_str();
        let mut frame = self.draw(rows, rng)?;
        let mut drawn = rows;
        if !self.rules.is_empty() {
            let mut keep = passing(&frame, &self.names, &self.rules, &mut self.report.by_rule)?;
            let mut kept = frame.filter(&keep).map_err(Error::polars)?;
            let budget = (MAX_DRAWS_PER_ROW * rows).max(MIN_DRAW_BUDGET);
            while kept.height() < rows {
                if drawn >= budget {
                    let worst = self
                        .report
                        .by_rule
                        .iter()
                        .max_by_key(|r| r.2)
                        .map(|(i, d, n)| format!("constraint {i} ({d}) rejected {n}"))
                        .unwrap_or_default();
                    return Err(Error::schema(
                        format!("{origin} (table {:?})", model.table.name),
                        format!(
                            "has reviewed constraints that the model's records almost never satisfy: after {} draws only {} of {rows} records passed; {worst}. \
                             Check the rule (set its status back to `proposed` to stop enforcing it).",
                            drawn,
                            kept.height()
                        ),
                    ));
                }
                // Draw what is missing, scaled by the acceptance rate so far (at least 64).
                let rate = (kept.height() as f64 / drawn as f64).max(1e-3);
                let need = rows - kept.height();
                let n = ((need as f64 / rate * 1.2).ceil() as usize).max(64).min(budget - drawn);
                let more = self.draw(n, rng)?;
                drawn += n;
                keep = passing(&more, &self.names, &self.rules, &mut self.report.by_rule)?;
                let more = more.filter(&keep).map_err(Error::polars)?;
                kept.vstack_mut(&more).map_err(Error::polars)?;
            }
            // Records that passed but are beyond `rows` were not rejected, just not needed.
            self.report.rejected += drawn - kept.height();
            frame = kept.slice(0, rows);
        }
        self.report.drawn += drawn;
        let text = text_columns(&model.table).into_iter().map(|c| (c.name.clone(), vec![None; rows])).collect();
        Ok(SyntheticTable { table: model.table.clone(), frame, text })
    }
}

impl SyntheticTable {
    /// Draw `rows` records from a model file, enforcing the reviewed constraints of its table.
    pub fn sample(
        model: &ModelFile,
        origin: &str,
        rows: usize,
        rng: &mut StdRng,
    ) -> Result<(SyntheticTable, Rejections)> {
        let mut d = Drawer::new(model, origin)?;
        let t = d.table(rows, rng)?;
        Ok((t, d.report))
    }

    pub fn len(&self) -> usize {
        self.frame.height()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The public schema table the records follow.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// Every record with every output column as text (text columns as written so far).
    pub fn rows(&self) -> Result<Vec<SyntheticRow>> {
        let mut cols: Vec<(String, Vec<Option<String>>)> = vec![];
        for c in &self.table.columns {
            if let Some((_, v)) = self.text.iter().find(|(n, _)| *n == c.name) {
                cols.push((c.name.clone(), v.clone()));
            } else if let Ok(col) = self.frame.column(&c.name) {
                let s = col.cast(&DataType::String).map_err(Error::polars)?;
                let v: Vec<Option<String>> =
                    s.str().map_err(Error::polars)?.iter().map(|x| x.map(str::to_owned)).collect();
                cols.push((c.name.clone(), v));
            }
        }
        Ok((0..self.len())
            .map(|i| SyntheticRow { index: i, values: cols.iter().map(|(n, v)| (n.clone(), v[i].clone())).collect() })
            .collect())
    }

    /// Set a text column from validated model output (one value per record).
    pub fn set_text<T: AcceptedText>(&mut self, column: &str, values: Vec<Option<T>>) -> Result<()> {
        let n = self.len();
        let slot = self
            .text
            .iter_mut()
            .find(|(c, _)| c == column)
            .ok_or_else(|| Error::Internal(format!("{column:?} is not a text column")))?;
        if values.len() != n {
            return Err(Error::Internal(format!("{} text values for {n} records", values.len())));
        }
        slot.1 = values.into_iter().map(|v| v.map(AcceptedText::into_string)).collect();
        Ok(())
    }

    /// Drop the records whose flag is true.
    pub fn drop_rows(&mut self, drop: &[bool]) -> Result<()> {
        if drop.len() != self.len() {
            return Err(Error::Internal(format!("{} flags for {} records", drop.len(), self.len())));
        }
        let keep: BooleanChunked = drop.iter().map(|d| !d).collect();
        self.frame = self.frame.filter(&keep).map_err(Error::polars)?;
        for (_, v) in &mut self.text {
            let old = std::mem::take(v);
            *v = old.into_iter().zip(drop).filter(|(_, d)| !**d).map(|(x, _)| x).collect();
        }
        Ok(())
    }

    /// The output table: modelled and text columns in schema order (identifiers are not written).
    pub fn into_frame(self) -> Result<DataFrame> {
        let height = self.len();
        let mut cols: Vec<Column> = vec![];
        for c in &self.table.columns {
            if let Some((_, v)) = self.text.iter().find(|(n, _)| *n == c.name) {
                cols.push(Series::new(c.name.as_str().into(), v.clone()).into());
            } else if let Ok(col) = self.frame.column(&c.name) {
                cols.push(col.clone());
            }
        }
        DataFrame::new(height, cols).map_err(Error::polars)
    }
}

/// Rows of `frame` that satisfy every rule; counts each rule's rejections.
fn passing(
    frame: &DataFrame,
    names: &[String],
    rules: &[Compiled],
    counts: &mut [(usize, String, usize)],
) -> Result<BooleanChunked> {
    let columns: Vec<&Column> = names.iter().map(|n| frame.column(n).map_err(Error::polars)).collect::<Result<_>>()?;
    let cells: Vec<Vec<Cell<'_>>> = columns.iter().map(|c| cells_of(c)).collect::<Result<_>>()?;
    let mut row = vec![Cell::Missing; names.len()];
    let mut keep = Vec::with_capacity(frame.height());
    for r in 0..frame.height() {
        for (slot, col) in row.iter_mut().zip(&cells) {
            *slot = col[r];
        }
        let mut ok = true;
        for (rule, count) in rules.iter().zip(counts.iter_mut()) {
            if !rule.holds(&row) {
                count.2 += 1;
                ok = false;
            }
        }
        keep.push(ok);
    }
    Ok(keep.into_iter().collect())
}

/// A decoded column as rule cells: numbers and dates on the schema's numeric line.
fn cells_of(col: &Column) -> Result<Vec<Cell<'_>>> {
    let num = |v: Option<f64>| v.map_or(Cell::Missing, Cell::Point);
    Ok(match col.dtype() {
        DataType::String => {
            col.str().map_err(Error::polars)?.iter().map(|v| v.map_or(Cell::Missing, Cell::Label)).collect()
        }
        DataType::Boolean => col
            .bool()
            .map_err(Error::polars)?
            .iter()
            .map(|v| v.map_or(Cell::Missing, |b| Cell::Label(if b { "true" } else { "false" })))
            .collect(),
        DataType::Date => col
            .cast(&DataType::Int32)
            .map_err(Error::polars)?
            .i32()
            .map_err(Error::polars)?
            .iter()
            .map(|v| num(v.map(f64::from)))
            .collect(),
        DataType::Datetime(_, _) => {
            let ms = col
                .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
                .map_err(Error::polars)?
                .cast(&DataType::Int64)
                .map_err(Error::polars)?;
            ms.i64().map_err(Error::polars)?.iter().map(|v| num(v.map(|m| m.div_euclid(1000) as f64))).collect()
        }
        _ => {
            col.cast(&DataType::Float64).map_err(Error::polars)?.f64().map_err(Error::polars)?.iter().map(num).collect()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A text column without values, a modelled nullable column drawn all-null and an absent
    /// identifier go; a modelled column with values stays; the description names each.
    #[test]
    fn conform_drops_what_has_no_value_and_says_so() {
        let yaml = "version: 1
tables:
  - name: t
    columns:
      - {name: id, type: identifier, role: identifier}
      - {name: a, type: categorical, nullable: true, domain: {categories: [x, y]}}
      - {name: note, type: text, nullable: true}
";
        let schema = crate::schema::Schema::from_yaml(yaml, "t.yaml").unwrap();
        let mut table = schema.tables[0].clone();
        let mut df = df!(
            "a" => [Some("x"), None],
            "note" => [None::<&str>, None],
        )
        .unwrap();
        let why = conform(&mut table.clone(), &mut df.clone()).unwrap();
        let mut t = table.clone();
        conform(&mut t, &mut df).unwrap();
        let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a"], "{why}");
        assert!(df.column("a").is_ok() && df.column("note").is_err());
        assert!(why.contains("id") && why.contains("note"), "{why}");
        assert!(t.description.unwrap_or_default().contains("not produced"));
        // Drawn all-missing, a modelled column goes too, and is named.
        let mut df = df!("a" => [None::<&str>, None], "note" => [None::<&str>, None]).unwrap();
        let why = conform(&mut table, &mut df).unwrap();
        assert!(table.columns.is_empty() && why.contains("a, note"), "{why}");
    }

    /// A workload entry or a rule that names a column drawn all-missing goes with it, so the
    /// schema written beside the output still validates.
    #[test]
    fn conform_drops_the_workload_and_rules_of_a_column_left_out() {
        let yaml = "version: 1
tables:
  - name: t
    workload:
      - {columns: [a, b]}
      - {columns: [b, c]}
    constraints:
      - {kind: order, before: b, after: c, status: reviewed}
      - {kind: range, column: a, min: 0, max: 5}
    columns:
      - {name: a, type: integer, nullable: true, domain: {bounds: [0, 9], bins: 3}}
      - {name: b, type: integer, domain: {bounds: [0, 9], bins: 3}}
      - {name: c, type: integer, domain: {bounds: [0, 9], bins: 3}}
";
        let schema = crate::schema::Schema::from_yaml(yaml, "t.yaml").unwrap();
        let mut out = schema.clone();
        let mut df = df!("a" => [None::<i64>, None], "b" => [1i64, 2], "c" => [3i64, 4]).unwrap();
        conform(&mut out.tables[0], &mut df).unwrap();
        let t = &out.tables[0];
        assert_eq!(t.workload.len(), 1);
        assert_eq!(t.workload[0].columns, ["b", "c"]);
        assert_eq!(t.constraints.len(), 1);
        assert_eq!(t.constraints[0].columns(), ["b", "c"]);
        out.validate("out.yaml").unwrap();
    }

    #[test]
    fn the_summary_warns_when_the_rules_shape_the_output() {
        let r = |drawn, rejected| Rejections {
            enforced: 1,
            drawn,
            rejected,
            by_rule: vec![(1, "A <= B".into(), rejected)],
            ..Default::default()
        };
        let heavy = r(1000, 950).summary();
        assert!(
            heavy[0].contains("950 of 1000 drawn records rejected (95.0%): constraint 1 (A <= B) 950"),
            "{heavy:?}"
        );
        assert!(
            heavy.iter().any(|l| l.starts_with("warning: over 90% of the model's records broke a reviewed rule")),
            "{heavy:?}"
        );
        let light = r(1000, 500).summary();
        assert_eq!(light.len(), 1, "{light:?}");
    }
}
