//! `privsynth llm constraints`: ask the model, from the public schema alone, for cross-column
//! rules, and add the ones that check out to the table as `status: proposed` for a person to
//! review. Each proposed rule is judged on its own: one naming an unknown column or value is
//! rejected as out of domain, one that does not make sense for its columns as invalid, and a
//! repeat of a rule already in the schema is skipped.

use std::collections::BTreeMap;

use serde_json::Value;

use super::client::Client;
use super::prompt;
use super::validate::{self, Reject, reason};
use crate::error::Result;
use crate::schema::constraints::{self, Condition, Constraint, RuleStatus};
use crate::schema::{ColumnType, Table};

/// What a proposal round produced.
#[derive(Debug, Clone, Default)]
pub struct Proposal {
    pub accepted: Vec<Constraint>,
    /// (reason, detail) of each rule turned down.
    pub rejected: Vec<(&'static str, String)>,
    /// Rules already in the schema (or proposed twice).
    pub duplicates: usize,
}

impl Proposal {
    pub fn summary(&self) -> Vec<String> {
        let mut by: BTreeMap<&str, usize> = BTreeMap::new();
        for (r, _) in &self.rejected {
            *by.entry(r).or_default() += 1;
        }
        let mut out = vec![format!(
            "llm constraints: {} rule(s) proposed for review, {} rejected ({}), {} duplicate(s) skipped",
            self.accepted.len(),
            self.rejected.len(),
            if by.is_empty() {
                "none".into()
            } else {
                by.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
            },
            self.duplicates
        )];
        for (r, d) in &self.rejected {
            out.push(format!("  rejected ({r}): {d}"));
        }
        out
    }
}

fn scalar(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn text(v: &Value, key: &str) -> std::result::Result<String, Reject> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| Reject::new(reason::SCHEMA, format!("{key} is missing")))
}

/// Turn one proposed item into a rule (not yet validated against the table).
fn rule_of(item: &Value, note: &str) -> std::result::Result<Constraint, Reject> {
    let why = item.get("reason").and_then(Value::as_str).unwrap_or_default().trim();
    let note = Some(if why.is_empty() {
        note.to_string()
    } else {
        format!("{note}: {}", why.chars().take(300).collect::<String>())
    });
    let status = RuleStatus::Proposed;
    match item.get("kind").and_then(Value::as_str) {
        Some("order") => Ok(Constraint::Order {
            before: text(item, "before")?,
            after: text(item, "after")?,
            strict: item.get("strict").and_then(Value::as_bool).unwrap_or(false),
            status,
            note,
        }),
        Some("range") => Ok(Constraint::Range {
            column: text(item, "column")?,
            min: scalar(item.get("min")),
            max: scalar(item.get("max")),
            status,
            note,
        }),
        Some("forbid") => {
            let mut when = BTreeMap::new();
            for c in item
                .get("when")
                .and_then(Value::as_array)
                .ok_or_else(|| Reject::new(reason::SCHEMA, "when is missing"))?
            {
                let col = text(c, "column")?;
                let cond = match (scalar(c.get("value")), scalar(c.get("min")), scalar(c.get("max"))) {
                    (Some(v), None, None) => Condition::Equals(v),
                    (None, Some(a), Some(b)) => Condition::Between(a, b),
                    _ => {
                        return Err(Reject::new(
                            reason::SCHEMA,
                            format!("condition on {col:?} needs a value or min and max"),
                        ));
                    }
                };
                if when.insert(col.clone(), cond).is_some() {
                    return Err(Reject::new(
                        reason::INVALID_RULE,
                        format!("column {col:?} appears twice in one forbid rule"),
                    ));
                }
            }
            Ok(Constraint::Forbid { when, status, note })
        }
        other => Err(Reject::new(
            reason::OUT_OF_DOMAIN,
            format!("unknown rule kind {:?} (expected order, range or forbid)", other.unwrap_or("")),
        )),
    }
}

/// Whether every column and category the rule names exists in the table.
fn in_domain(t: &Table, rule: &Constraint) -> std::result::Result<(), String> {
    let known = |c: &str| {
        if t.column(c).is_some_and(|c| c.is_modelled()) {
            Ok(())
        } else {
            Err(format!("{c:?} is not a modelled column"))
        }
    };
    match rule {
        Constraint::Order { before, after, .. } => known(before).and(known(after)),
        Constraint::Range { column, .. } => known(column),
        Constraint::Forbid { when, .. } => when.iter().try_for_each(|(c, cond)| {
            known(c)?;
            let col = t.column(c).expect("checked above");
            if let (ColumnType::Categorical, Condition::Equals(v)) = (col.kind, cond) {
                let cats = col.domain.as_ref().and_then(|d| d.categories.as_ref());
                if !cats.is_some_and(|k| k.iter().any(|k| k.trim() == v.trim())) {
                    return Err(format!("{v:?} is not a category of {c:?}"));
                }
            }
            Ok(())
        }),
    }
}

/// Ask for rules for `table` and sort them into accepted, rejected and duplicates.
/// `Ok(None)`: no usable answer.
pub fn propose(client: &Client, table: &Table, temperature: f64) -> Result<Option<Proposal>> {
    let req = prompt::constraints_request(table, temperature)?;
    let item_schema = req.schema().pointer("/properties/constraints/items").cloned().unwrap_or(Value::Null);
    let note = format!("proposed by {} via privsynth llm constraints", client.endpoint().model);
    client.ask(&req, |v| {
        let mut p = Proposal::default();
        let mut seen: Vec<Constraint> = table.constraints.clone();
        for (i, item) in v.get("constraints").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let label = format!("rule {} {}", i + 1, item.to_string().chars().take(160).collect::<String>());
            let rule = match rule_of(item, &note) {
                Ok(r) => r,
                Err(r) => {
                    p.rejected.push((r.reason, format!("{label}: {}", r.detail)));
                    continue;
                }
            };
            if let Err(d) = in_domain(table, &rule) {
                p.rejected.push((reason::OUT_OF_DOMAIN, format!("{label}: {d}")));
                continue;
            }
            if let Err(r) = validate::validate(&item_schema, item) {
                p.rejected.push((r.reason, format!("{label}: {}", r.detail)));
                continue;
            }
            if seen.iter().any(|s| s.same_rule(&rule)) {
                p.duplicates += 1;
                continue;
            }
            let mut probe = table.clone();
            probe.constraints = vec![rule.clone()];
            if let Some(problem) = constraints::validate(&probe).into_iter().next() {
                p.rejected.push((reason::INVALID_RULE, format!("{label}: {problem}")));
                continue;
            }
            seen.push(rule.clone());
            p.accepted.push(rule);
        }
        Ok(p)
    })
}

/// What `privsynth llm constraints` takes.
#[derive(Debug, Clone)]
pub struct ConstraintsOptions {
    /// Schema file (YAML).
    pub schema: std::path::PathBuf,
    /// Table of the schema (needed when it has several).
    pub table: Option<String>,
    /// Where to write the schema with the proposed rules (`None`: stdout).
    pub output: Option<std::path::PathBuf>,
    pub connect: super::ConnectOptions,
}

/// Run `llm constraints`: propose, validate, write the schema for review.
pub fn run(a: &ConstraintsOptions) -> Result<i32> {
    use crate::error::{Error, exit};
    let origin = a.schema.display().to_string();
    let mut schema = crate::schema::Schema::load(&a.schema)?;
    let name = schema.table(a.table.as_deref())?.name.clone();
    let client = a.connect.client()?.ok_or_else(|| {
        Error::Usage("llm constraints needs an LLM server: pass --llm-url and --llm-model (or set PRIVSYNTH_LLM_URL and PRIVSYNTH_LLM_MODEL)".into())
    })?;
    if let Some(note) = client.preflight()? {
        eprintln!("{note}");
    }
    let table =
        schema.tables.iter_mut().find(|t| t.name == name).ok_or_else(|| Error::Internal("table vanished".into()))?;
    let result = propose(&client, table, a.connect.temperature);
    let written = client.write_transcript();
    eprintln!("{}", client.summary());
    let proposal = result?.ok_or_else(|| {
        Error::Usage(format!(
            "no usable answer from the LLM server at {} (see the counters above and --llm-transcript)",
            client.endpoint().base_url
        ))
    })?;
    written?;
    for l in proposal.summary() {
        eprintln!("{l}");
    }
    let added = proposal.accepted.len();
    table.constraints.extend(proposal.accepted);
    schema.validate(&origin)?;
    let text = format!(
        "# {origin} with {added} cross-column rule(s) proposed by `privsynth llm constraints` (model {} at {}).\n\
         # Proposed rules are NOT enforced: review each, then set `status: reviewed` (enforced when sampling)\n\
         # or `status: rejected`.\n{}",
        client.endpoint().model,
        client.endpoint().base_url,
        schema.to_yaml()?
    );
    match &a.output {
        Some(p) => {
            crate::data::write_atomic(p, |f| std::io::Write::write_all(f, text.as_bytes()))?;
            eprintln!("wrote {} ({added} proposed rule(s) to review)", p.display());
        }
        None => print!("{text}"),
    }
    Ok(exit::OK)
}
