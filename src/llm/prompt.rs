//! Prompts, built only from what may leave the trusted boundary.
//!
//! The builders take the public schema ([`Table`]), [`ReleasedStats`] (noisy one-way
//! distributions read from a model file, whose measurements are DP releases) and
//! [`SyntheticRow`]s (which only the sampler creates). No builder accepts a raw table, an
//! encoded table, exact counts or a `Sensitive` value, and a [`ChatRequest`] can only be made
//! here, so the client can send nothing else. A schema whose domains were read from the data
//! (`source: data`) is refused: such a domain is not public.
//!
//! ```compile_fail,E0451
//! // A request cannot be assembled outside this module (private fields)...
//! use privsynth::llm::prompt::{ChatRequest, Purpose};
//! let v = serde_json::Value::Null;
//! let r = ChatRequest { purpose: Purpose::Text, system: String::new(), user: String::new(), schema: v.clone(), envelope: v, max_tokens: 1, temperature: 0.0 };
//! ```
//!
//! ```compile_fail,E0451
//! // ...nor a synthetic row from arbitrary values...
//! let row = privsynth::synthetic::SyntheticRow { index: 0, values: vec![] };
//! ```
//!
//! ```compile_fail,E0308
//! // ...and a builder does not take sensitive values.
//! use privsynth::llm::prompt::{ReleasedStats, text_request};
//! use privsynth::synthetic::SyntheticRow;
//! fn leak(t: &privsynth::schema::Table, s: &ReleasedStats, raw: privsynth_privacy::Sensitive<Vec<SyntheticRow>>) {
//!     let _ = text_request(t, s, &raw, &[], 0.7);
//! }
//! ```

use serde_json::{Map, Value, json};

use crate::codec::{ColumnCodec, ColumnDomain};
use crate::error::{Error, Result};
use crate::model::file::ModelFile;
use crate::schema::constraints::RuleStatus;
use crate::schema::{Column, ColumnType, DomainSource, Role, Table};
use crate::synthetic::{SyntheticRow, text_columns};

/// Most values of a column listed in its noisy distribution.
const TOP_VALUES: usize = 12;
/// Most categories listed in a column's description.
const MAX_LISTED_CATEGORIES: usize = 40;

/// What a request is for (also the name of its response schema).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Text,
    /// Private Evolution's variations of earlier synthetic texts.
    Variation,
    Check,
    Constraints,
}

impl Purpose {
    pub fn name(self) -> &'static str {
        match self {
            Purpose::Text => "text_columns",
            Purpose::Variation => "text_variations",
            Purpose::Check => "plausibility_check",
            Purpose::Constraints => "constraint_proposals",
        }
    }
}

/// A chat request built from public and DP-released inputs only.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    purpose: Purpose,
    system: String,
    user: String,
    /// The JSON Schema the answer must follow (sent to the server in its dialect).
    schema: Value,
    /// What every answer is validated against by the client (the schema itself, or a looser
    /// envelope when parts of the answer are judged one by one).
    envelope: Value,
    max_tokens: u32,
    temperature: f64,
}

impl ChatRequest {
    pub fn purpose(&self) -> Purpose {
        self.purpose
    }
    pub fn system(&self) -> &str {
        &self.system
    }
    pub fn user(&self) -> &str {
        &self.user
    }
    pub fn schema(&self) -> &Value {
        &self.schema
    }
    pub fn envelope(&self) -> &Value {
        &self.envelope
    }
    pub fn max_tokens(&self) -> u32 {
        self.max_tokens
    }
    pub fn temperature(&self) -> f64 {
        self.temperature
    }
}

/// One column's noisy one-way distribution.
#[derive(Debug, Clone)]
struct ColumnStats {
    name: String,
    /// Noise standard deviation per cell, in records.
    sigma: f64,
    /// zCDP cost of this release alone, at the model's contribution bound (L2 sensitivity k).
    rho: f64,
    /// Values and their shares, largest first.
    shares: Vec<(String, f64)>,
}

/// Noisy one-way distributions from a model file's released measurements.
#[derive(Debug, Clone)]
pub struct ReleasedStats {
    mechanism: String,
    epsilon: f64,
    delta: f64,
    total: f64,
    columns: Vec<ColumnStats>,
}

impl ReleasedStats {
    /// Read the one-way measurements of a model file (DP releases: noisy counts with their noise
    /// scale). Per column the most precise one is used; negative noisy counts count as zero.
    pub fn from_model(model: &ModelFile) -> Result<ReleasedStats> {
        let mut columns = vec![];
        for (a, name) in model.columns.iter().enumerate() {
            let Some(col) = model.table.column(name) else { continue };
            let codec =
                ColumnCodec::new(&model.table, col).map_err(|e| Error::Internal(format!("column {name:?}: {e}")))?;
            let groups = &model.compression[a];
            let best = model
                .measurements
                .iter()
                .filter(|m| {
                    m.attrs == [a]
                        && m.y.len() == groups.len()
                        && (m.weights.is_empty() || m.weights.len() == m.y.len())
                })
                .min_by(|x, y| x.sigma.total_cmp(&y.sigma));
            let Some(m) = best else { continue };
            let counts: Vec<f64> =
                m.y.iter().enumerate().map(|(i, y)| (y / m.weights.get(i).copied().unwrap_or(1.0)).max(0.0)).collect();
            let sum: f64 = counts.iter().sum();
            if !(sum > 0.0 && sum.is_finite()) {
                continue;
            }
            let mut shares: Vec<(String, f64)> = groups
                .iter()
                .zip(&counts)
                .map(|(g, c)| {
                    let label = match g.as_slice() {
                        [one] => codec.label(*one),
                        few if few.len() <= 3 => few.iter().map(|&x| codec.label(x)).collect::<Vec<_>>().join(" / "),
                        many => format!("{} rare values together", many.len()),
                    };
                    (label, c / sum)
                })
                .collect();
            shares.sort_by(|x, y| y.1.total_cmp(&x.1));
            // A unit moves each count by up to k rows: rho = k^2 / (2 sigma^2).
            let k = model.privacy.rows_per_unit.max(1) as f64;
            columns.push(ColumnStats {
                name: name.clone(),
                sigma: m.sigma,
                rho: k * k / (2.0 * m.sigma * m.sigma),
                shares,
            });
        }
        Ok(ReleasedStats {
            mechanism: model.mechanism.clone(),
            epsilon: model.privacy.epsilon,
            delta: model.privacy.delta,
            total: model.total,
            columns,
        })
    }

    /// The statistics of the given columns as prompt text (empty when there are none).
    pub fn describe(&self, columns: &[&str]) -> String {
        let lines: Vec<String> = self
            .columns
            .iter()
            .filter(|c| columns.contains(&c.name.as_str()))
            .map(|c| {
                let mut parts: Vec<String> =
                    c.shares.iter().take(TOP_VALUES).map(|(l, s)| format!("{l} {:.1}%", 100.0 * s)).collect();
                let rest: f64 = c.shares.iter().skip(TOP_VALUES).map(|x| x.1).sum();
                if c.shares.len() > TOP_VALUES {
                    parts.push(format!("other values {:.1}%", 100.0 * rest));
                }
                format!(
                    "- {}: {} (Gaussian noise sd {:.1} records per value, rho {:.2e})",
                    c.name,
                    parts.join(", "),
                    c.sigma,
                    c.rho
                )
            })
            .collect();
        if lines.is_empty() {
            return String::new();
        }
        format!(
            "Differentially private statistics of the real table (noisy one-way distributions released by the {} mechanism; \
             the whole model spent epsilon {:.3}, delta {:.1e}; about {:.0} records, itself a noisy estimate). \
             Shares come from noisy counts, so small shares may be noise:\n{}\n",
            self.mechanism.to_uppercase(),
            self.epsilon,
            self.delta,
            self.total,
            lines.join("\n")
        )
    }
}

/// A text column as the stage writes it: instruction and limits from the schema and the
/// command line.
#[derive(Debug, Clone)]
pub struct TextColumn {
    name: String,
    instruction: String,
    max_chars: usize,
    nullable: bool,
    context: Vec<String>,
}

impl TextColumn {
    /// The text columns of a table; `max_chars` caps every column's own limit.
    pub fn of_table(table: &Table, max_chars: usize) -> Vec<TextColumn> {
        text_columns(table)
            .into_iter()
            .map(|c| {
                let spec = c.llm.clone().unwrap_or_default();
                // The description is already in the column list of the prompt.
                let template = spec.prompt.unwrap_or_else(|| {
                    "Write a plausible {name} for this record, as the column's description says.".into()
                });
                let instruction = template
                    .replace("{name}", &c.name)
                    .replace("{description}", &collapse(c.description.as_deref().unwrap_or("")))
                    .replace("{unit}", c.unit.as_deref().unwrap_or(""));
                let context = if spec.context.is_empty() {
                    table.columns.iter().filter(|x| x.is_modelled()).map(|x| x.name.clone()).collect()
                } else {
                    spec.context.clone()
                };
                TextColumn {
                    name: c.name.clone(),
                    instruction,
                    max_chars: spec.max_chars.map_or(max_chars, |m| m.min(max_chars)),
                    nullable: c.nullable,
                    context,
                }
            })
            .collect()
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn max_chars(&self) -> usize {
        self.max_chars
    }
    pub fn nullable(&self) -> bool {
        self.nullable
    }
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The id of a record in prompts and answers.
pub fn row_id(row: &SyntheticRow) -> String {
    format!("r{}", row.index() + 1)
}

/// Refuse schemas with domains read from the private data: they are not public.
fn ensure_public(table: &Table) -> Result<()> {
    let from_data: Vec<&str> = table
        .columns
        .iter()
        .filter(|c| c.is_modelled() && c.domain.as_ref().is_some_and(|d| d.source == DomainSource::Data))
        .map(|c| c.name.as_str())
        .collect();
    if from_data.is_empty() {
        return Ok(());
    }
    Err(Error::schema(
        format!("table {:?}", table.name),
        format!(
            "has domains read from the private data (source: data): {}. They are not public, so they may not be sent to an LLM. \
             Review each and mark it `source: public`, or run without the LLM stage.",
            from_data.join(", ")
        ),
    ))
}

/// The public description of a table: name, description, columns with types, units,
/// descriptions and domains, and the reviewed rules.
fn describe_table(table: &Table) -> String {
    let mut s = format!("Table {:?}", table.name);
    if let Some(d) = &table.description {
        s += &format!(": {}", collapse(d));
    }
    s += "\nColumns:\n";
    for c in table.columns.iter().filter(|c| c.role != Role::Identifier && c.kind != ColumnType::Identifier) {
        s += &describe_column(table, c);
        s.push('\n');
    }
    let rules: Vec<String> = table
        .constraints
        .iter()
        .filter(|r| r.status() == RuleStatus::Reviewed)
        .map(|r| format!("- {}", r.describe()))
        .collect();
    if !rules.is_empty() {
        s += &format!("Rules that hold for every record:\n{}\n", rules.join("\n"));
    }
    s
}

fn describe_column(table: &Table, c: &Column) -> String {
    let mut s = format!("- {} ({}", c.name, c.kind);
    if let Some(u) = &c.unit {
        s += &format!(", unit {u}");
    }
    if c.nullable {
        s += ", may be missing";
    }
    s.push(')');
    if let Some(d) = &c.description {
        s += &format!(": {}", collapse(d));
    }
    if c.kind == ColumnType::Text {
        return s + " [free text]";
    }
    if let Ok(codec) = ColumnCodec::new(table, c) {
        match &codec.domain {
            ColumnDomain::Categorical { categories, .. } => {
                let shown: Vec<&str> = categories.iter().take(MAX_LISTED_CATEGORIES).map(String::as_str).collect();
                let more = if categories.len() > shown.len() {
                    format!(", ... ({} in all)", categories.len())
                } else {
                    String::new()
                };
                s += &format!(" [one of: {}{more}]", shown.join(", "));
            }
            ColumnDomain::Boolean => s += " [true or false]",
            ColumnDomain::Binned { .. } => {
                let n = codec.domain.n_values() as u32;
                let first = codec.label(0);
                let last = codec.label(n.saturating_sub(1));
                let lo = first.split(" to ").next().unwrap_or_default().to_string();
                let hi = last.rsplit(" to ").next().unwrap_or_default().to_string();
                s += &format!(" [from {lo} to {hi}]");
            }
        }
    }
    s
}

/// A record's values for the prompt: the named columns, missing values as null.
fn record_json(row: &SyntheticRow, columns: &[&str]) -> Value {
    let mut m = Map::new();
    for (name, v) in row.values() {
        if columns.contains(&name.as_str()) {
            m.insert(name.clone(), v.as_ref().map_or(Value::Null, |s| Value::String(s.clone())));
        }
    }
    Value::Object(m)
}

fn rows_json(rows: &[SyntheticRow], columns: &[&str]) -> String {
    let mut m = Map::new();
    for r in rows {
        m.insert(row_id(r), record_json(r, columns));
    }
    serde_json::to_string_pretty(&Value::Object(m)).unwrap_or_default()
}

/// An object schema keyed by record id.
fn keyed_by_rows(rows: &[SyntheticRow], item: Value) -> Value {
    let ids: Vec<String> = rows.iter().map(row_id).collect();
    let props: Map<String, Value> = ids.iter().map(|id| (id.clone(), item.clone())).collect();
    json!({"type": "object", "additionalProperties": false, "required": ids, "properties": props})
}

const PREAMBLE: &str = "The records below are synthetic: they were sampled from a differentially private model of a real table and \
                        describe no real person. Everything you are shown is public (the table's schema) or differentially private.";

/// Ask for the text columns of a batch of records, conditioned on each record's values.
pub fn text_request(
    table: &Table,
    stats: &ReleasedStats,
    rows: &[SyntheticRow],
    columns: &[TextColumn],
    temperature: f64,
) -> Result<ChatRequest> {
    ensure_public(table)?;
    let mut context: Vec<&str> = vec![];
    for c in columns {
        for x in &c.context {
            if !context.contains(&x.as_str()) {
                context.push(x);
            }
        }
    }
    let mut props = Map::new();
    for c in columns {
        let t = if c.nullable { json!(["string", "null"]) } else { json!("string") };
        props.insert(c.name.clone(), json!({"type": t, "minLength": 1, "maxLength": c.max_chars}));
    }
    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    let item = json!({"type": "object", "additionalProperties": false, "required": names, "properties": props});
    let schema = keyed_by_rows(rows, item);
    let asks: Vec<String> = columns
        .iter()
        .map(|c| {
            format!(
                "- {}: {} At most {} characters.{}",
                c.name,
                c.instruction,
                c.max_chars,
                if c.nullable { " Use null when it does not apply." } else { "" }
            )
        })
        .collect();
    let system = format!(
        "You write the free-text columns of synthetic records. {PREAMBLE} Write values that are plausible for each record \
         given its other values, the column descriptions and the statistics. Never copy these instructions into a value.\n\n{}\n{}\nWrite these columns for every record:\n{}\n\n\
         Answer with one JSON object that has a key per record id, each holding an object with exactly these columns. No other text.",
        describe_table(table),
        stats.describe(&context),
        asks.join("\n")
    );
    let user = format!("Records (id: values sampled from the model):\n{}", rows_json(rows, &context));
    // A cap, not a target: the answer's longest form in characters (ids, column names, texts
    // at their limit, punctuation), since a token is at least one byte. Against llama-server a
    // budget of max_chars / 3 tokens per text truncated answers: codes, numbers and the names
    // of the keys tokenise at one to two characters per token, not three.
    let per_row: usize = columns.iter().map(|c| c.name.len() + c.max_chars + 8).sum::<usize>();
    let max_tokens =
        rows.iter().map(|r| row_id(r).len() + 8 + per_row).sum::<usize>().saturating_add(64).clamp(256, 32_768) as u32;
    Ok(ChatRequest { purpose: Purpose::Text, system, user, envelope: schema.clone(), schema, max_tokens, temperature })
}

/// Header of the earlier texts in a variation prompt (Private Evolution).
pub const VARIATION_HEADER: &str = "Earlier texts to vary (synthetic, id: text):";

/// Ask for one text column of a batch of records as variations of earlier texts (Private
/// Evolution's variation step): `parents[i]` is the synthetic text that record `rows[i]` varies.
/// The earlier texts are [`crate::llm::ModelText`], model output a validator accepted, chosen
/// by a DP vote; no real text can be one.
pub fn variation_request(
    table: &Table,
    stats: &ReleasedStats,
    rows: &[SyntheticRow],
    column: &TextColumn,
    parents: &[&crate::llm::ModelText],
    temperature: f64,
) -> Result<ChatRequest> {
    if parents.len() != rows.len() {
        return Err(Error::Internal(format!("{} earlier texts for {} records", parents.len(), rows.len())));
    }
    let mut req = text_request(table, stats, rows, std::slice::from_ref(column), temperature)?;
    req.system += &format!(
        "\nEach record comes with an earlier text for {}. Write a variation of it for the record: keep its kind of content, style, \
         vocabulary and length, change some details, and make it fit the record's values.",
        column.name
    );
    let mut m = Map::new();
    for (r, p) in rows.iter().zip(parents) {
        m.insert(row_id(r), Value::String(p.as_str().to_string()));
    }
    req.user +=
        &format!("\n{VARIATION_HEADER}\n{}", serde_json::to_string_pretty(&Value::Object(m)).unwrap_or_default());
    req.purpose = Purpose::Variation;
    Ok(req)
}

/// Longest reason a plausibility answer may give.
pub const REASON_CHARS: usize = 200;

/// Ask whether each record of a batch is plausible.
pub fn check_request(
    table: &Table,
    stats: &ReleasedStats,
    rows: &[SyntheticRow],
    temperature: f64,
) -> Result<ChatRequest> {
    ensure_public(table)?;
    let shown: Vec<&str> = table
        .columns
        .iter()
        .filter(|c| c.is_modelled() || c.kind == ColumnType::Text && c.role != Role::Identifier)
        .map(|c| c.name.as_str())
        .collect();
    let item = json!({
        "type": "object", "additionalProperties": false, "required": ["plausible", "reason"],
        "properties": {"plausible": {"type": "boolean"}, "reason": {"type": "string", "maxLength": REASON_CHARS}}
    });
    let schema = keyed_by_rows(rows, item);
    let system = format!(
        "You review synthetic records for plausibility. {PREAMBLE}\n\n{}\n{}\n\
         For each record, answer plausible: false only when a combination of its values is impossible or very unlikely for a real \
         record of this table (for example an order of dates that cannot happen, or values that contradict each other), with a short \
         reason (at most {REASON_CHARS} characters). Unusual but possible records are plausible; use an empty reason for them. \
         Answer with one JSON object that has a key per record id. No other text.",
        describe_table(table),
        stats.describe(&shown)
    );
    let user = format!("Records (id: values):\n{}", rows_json(rows, &shown));
    let max_tokens = (rows.len() * 80 + 64).clamp(256, 32_768) as u32;
    Ok(ChatRequest { purpose: Purpose::Check, system, user, envelope: schema.clone(), schema, max_tokens, temperature })
}

/// Most rules one proposal may hold.
pub const MAX_RULES: usize = 20;

/// Ask for cross-column rules, from the schema alone (no statistics, no records).
pub fn constraints_request(table: &Table, temperature: f64) -> Result<ChatRequest> {
    ensure_public(table)?;
    let modelled: Vec<&Column> = table.columns.iter().filter(|c| c.is_modelled()).collect();
    let names = |f: &dyn Fn(ColumnType) -> bool| -> Vec<String> {
        modelled.iter().filter(|c| f(c.kind)).map(|c| c.name.clone()).collect()
    };
    let numeric = names(&|k| matches!(k, ColumnType::Integer | ColumnType::Float));
    let dates = names(&|k| k == ColumnType::Date);
    let datetimes = names(&|k| k == ColumnType::Datetime);
    let reason = json!({"type": "string", "maxLength": 300});
    let mut branches = vec![];
    let orderable: Vec<String> = if numeric.len() >= 2 || dates.len() + datetimes.len() >= 2 {
        numeric.iter().chain(&dates).chain(&datetimes).cloned().collect()
    } else {
        vec![]
    };
    if !orderable.is_empty() {
        branches.push(json!({
            "type": "object", "additionalProperties": false, "required": ["kind", "before", "after", "strict", "reason"],
            "properties": {"kind": {"const": "order"}, "before": {"enum": orderable}, "after": {"enum": orderable}, "strict": {"type": "boolean"}, "reason": reason}
        }));
    }
    for (cols, bound) in [
        (&numeric, json!({"type": ["number", "null"]})),
        (&dates, json!({"type": ["string", "null"], "format": "date"})),
        (&datetimes, json!({"type": ["string", "null"], "format": "date-time"})),
    ] {
        if !cols.is_empty() {
            branches.push(json!({
                "type": "object", "additionalProperties": false, "required": ["kind", "column", "min", "max", "reason"],
                "properties": {"kind": {"const": "range"}, "column": {"enum": cols}, "min": bound, "max": bound, "reason": reason}
            }));
        }
    }
    let mut conditions = vec![];
    for c in &modelled {
        let cond = match c.kind {
            ColumnType::Categorical => {
                let cats = c.domain.as_ref().and_then(|d| d.categories.clone()).unwrap_or_default();
                json!({"type": "object", "additionalProperties": false, "required": ["column", "value"], "properties": {"column": {"const": c.name}, "value": {"enum": cats}}})
            }
            ColumnType::Boolean => {
                json!({"type": "object", "additionalProperties": false, "required": ["column", "value"], "properties": {"column": {"const": c.name}, "value": {"enum": ["true", "false"]}}})
            }
            k => {
                let bound = match k {
                    ColumnType::Date => json!({"type": "string", "format": "date"}),
                    ColumnType::Datetime => json!({"type": "string", "format": "date-time"}),
                    _ => json!({"type": "number"}),
                };
                json!({"type": "object", "additionalProperties": false, "required": ["column", "min", "max"], "properties": {"column": {"const": c.name}, "min": bound, "max": bound}})
            }
        };
        conditions.push(cond);
    }
    if !conditions.is_empty() {
        branches.push(json!({
            "type": "object", "additionalProperties": false, "required": ["kind", "when", "reason"],
            "properties": {"kind": {"const": "forbid"}, "when": {"type": "array", "minItems": 1, "maxItems": 3, "items": {"anyOf": conditions}}, "reason": reason}
        }));
    }
    let schema = json!({
        "type": "object", "additionalProperties": false, "required": ["constraints"],
        "properties": {"constraints": {"type": "array", "maxItems": MAX_RULES, "items": {"anyOf": branches}}}
    });
    let envelope = json!({
        "type": "object", "required": ["constraints"],
        "properties": {"constraints": {"type": "array", "maxItems": MAX_RULES, "items": {"type": "object"}}}
    });
    let existing: Vec<String> =
        table.constraints.iter().map(|r| format!("- {} ({:?})", r.describe(), r.status())).collect();
    let system = format!(
        "You help a data steward write cross-column rules for a table, from its public description alone. Propose rules that hold for \
         every valid record because of what the columns mean: impossible combinations of values (kind forbid, with up to three \
         conditions: a category, or a [min, max] range), tighter valid ranges than the declared domain (kind range), and orderings \
         (kind order: before <= after, or < when strict; for example a discharge date is never before the admission date). \
         Do not guess at frequencies; propose nothing that merely is rare. At most {MAX_RULES} rules, each with a short reason. \
         A person will review every rule before it is used. Answer with a JSON object {{\"constraints\": [...]}}. No other text."
    );
    let user = format!(
        "{}{}",
        describe_table(table),
        if existing.is_empty() {
            String::new()
        } else {
            format!("Rules already written (do not repeat them):\n{}\n", existing.join("\n"))
        }
    );
    Ok(ChatRequest { purpose: Purpose::Constraints, system, user, schema, envelope, max_tokens: 4096, temperature })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::estimate::Measurement;
    use crate::model::file::{ModelFile, Privacy};
    use crate::schema::Schema;

    const SCHEMA: &str = r#"
version: 1
tables:
  - name: t
    columns:
      - {name: dx, type: categorical, domain: {categories: [a, b, c, d, e]}}
      - {name: age, type: integer, domain: {bounds: [0, 99], bins: 2}}
      - {name: note, type: text, description: "A short note.", llm: {prompt: "Note on {name} ({unit}): {description}", max_chars: 500}}
"#;

    fn model(table: &Table) -> ModelFile {
        ModelFile {
            format: "privsynth-model".into(),
            version: 1,
            tool: "test".into(),
            mechanism: "mst".into(),
            table: table.clone(),
            columns: vec!["dx".into(), "age".into()],
            sizes: vec![5, 2],
            // dx: a and b kept, c/d/e merged into one rare value.
            compression: vec![vec![vec![0], vec![1], vec![2, 3, 4]], vec![vec![0], vec![1]]],
            expansion: vec![],
            measurements: vec![
                // A merged cell is measured with weight 1/sqrt(3): y = w * count + noise.
                Measurement {
                    attrs: vec![0],
                    weights: vec![1.0, 1.0, 1.0 / 3f64.sqrt()],
                    y: vec![50.0, -4.0, 30.0 / 3f64.sqrt()],
                    sigma: 2.0,
                },
                Measurement { attrs: vec![1], weights: vec![], y: vec![10.0, 30.0], sigma: 5.0 },
                Measurement { attrs: vec![1], weights: vec![], y: vec![20.0, 20.0], sigma: 9.0 },
                Measurement { attrs: vec![0, 1], weights: vec![], y: vec![1.0; 6], sigma: 1.0 },
            ],
            structure: vec![],
            cliques: vec![],
            potentials: vec![],
            total: 80.0,
            privacy: Privacy {
                epsilon: 1.0,
                delta: 1e-9,
                rho: 0.01,
                releases: vec![],
                unit: None,
                rows_per_unit: 1,
                outside_guarantee: vec![],
                schema_inference: None,
                with_schema_inference: None,
            },
        }
    }

    #[test]
    fn statistics_are_the_released_one_way_measurements() {
        let s = Schema::from_yaml(SCHEMA, "s").unwrap();
        let t = s.table(None).unwrap();
        let text = ReleasedStats::from_model(&model(t)).unwrap().describe(&["dx", "age"]);
        // dx: counts 50, 0 (negative noise floored), 30 (the merged cell, un-weighted) -> 62.5%, 37.5%, 0%.
        assert!(text.contains("- dx: a 62.5%, c / d / e 37.5%, b 0.0% (Gaussian noise sd 2.0"), "{text}");
        // age: the more precise of two measurements (sigma 5), bins labelled by their values.
        assert!(
            text.contains(
                "- age: 50 to 99 75.0%, 0 to 49 25.0% (Gaussian noise sd 5.0 records per value, rho 2.00e-2)"
            ),
            "{text}"
        );
        assert!(text.contains("epsilon 1.000, delta 1.0e-9") && text.contains("about 80 records"), "{text}");
        assert_eq!(
            ReleasedStats::from_model(&model(t)).unwrap().describe(&["age"]).matches("\n- ").count(),
            1,
            "only the columns asked for"
        );
        // With a contribution bound of 4 rows per unit, the same noise buys 16 times the rho.
        let mut bounded = model(t);
        bounded.privacy.rows_per_unit = 4;
        let text = ReleasedStats::from_model(&bounded).unwrap().describe(&["age"]);
        assert!(text.contains("(Gaussian noise sd 5.0 records per value, rho 3.20e-1)"), "{text}");
    }

    #[test]
    fn templates_limits_and_the_data_domain_refusal() {
        let s = Schema::from_yaml(SCHEMA, "s").unwrap();
        let t = s.table(None).unwrap();
        let cols = TextColumn::of_table(t, 200);
        assert_eq!(cols.len(), 1);
        assert_eq!(cols[0].instruction, "Note on note (): A short note.");
        assert_eq!(cols[0].max_chars(), 200, "the command line caps the column's own limit");
        assert_eq!(cols[0].context, ["dx", "age"]);
        let mut leaky = t.clone();
        leaky.columns[0].domain.as_mut().unwrap().source = DomainSource::Data;
        let e = constraints_request(&leaky, 0.0).unwrap_err().to_string();
        assert!(e.contains("dx") && e.contains("may not be sent"), "{e}");
        let r = constraints_request(t, 0.0).unwrap();
        assert!(r.user().contains("[one of: a, b, c, d, e]") && !r.system().contains("statistics"));
    }
}
