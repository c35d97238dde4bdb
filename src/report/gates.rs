//! Gates: pass/fail rules on audit metrics, from a YAML file or the built-in defaults
//! (`schemas/audit-gates.yaml`, which also says why each default was chosen).
//!
//! A gate names a metric by its dotted path in the JSON report (any number in it), a threshold
//! and a direction. A metric that is null (an attack that could not run) makes its gate
//! `skipped` unless the gate is `required`; a path that names nothing is a usage error.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

/// The built-in gates.
pub const DEFAULT_GATES: &str = include_str!("../../schemas/audit-gates.yaml");

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Pass when the metric is at most the threshold.
    AtMost,
    /// Pass when the metric is at least the threshold.
    AtLeast,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    pub metric: String,
    pub threshold: f64,
    pub direction: Direction,
    /// Why the gate exists, shown in the reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// Fail (rather than skip) when the metric is undefined.
    #[serde(default)]
    pub required: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateFile {
    pub version: u32,
    pub gates: Vec<Gate>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct GateResult {
    #[serde(flatten)]
    pub gate: Gate,
    pub value: Option<f64>,
    pub status: Status,
    pub message: String,
}

/// Parse a gates file (or the defaults when `path` is None); `origin` names it in errors.
pub fn load(path: Option<&Path>) -> Result<(Vec<Gate>, String)> {
    let (text, origin) = match path {
        Some(p) => (std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?, p.display().to_string()),
        None => (DEFAULT_GATES.to_string(), "the built-in gates (schemas/audit-gates.yaml)".to_string()),
    };
    let file: GateFile = serde_yaml_ng::from_str(&text)
        .map_err(|e| Error::schema(&origin, format!("is not a valid gates file: {e}")))?;
    if file.version != 1 {
        return Err(Error::schema(&origin, format!("has version {}; this privsynth reads version 1", file.version)));
    }
    for (i, g) in file.gates.iter().enumerate() {
        if !g.threshold.is_finite() {
            return Err(Error::schema(
                &origin,
                format!("gate {} ({}): the threshold must be a finite number", i + 1, g.metric),
            ));
        }
        if g.metric.trim().is_empty() {
            return Err(Error::schema(&origin, format!("gate {}: the metric is empty", i + 1)));
        }
    }
    Ok((file.gates, origin))
}

/// Look a dotted path up: Ok(Some) a number, Ok(None) undefined (null on the way), Err when the
/// path names nothing in the report.
fn lookup(report: &Value, path: &str) -> std::result::Result<Option<f64>, String> {
    let mut v = report;
    for part in path.split('.') {
        v = match v {
            Value::Null => return Ok(None),
            Value::Object(m) => m.get(part).ok_or_else(|| format!("no field {part:?}"))?,
            Value::Array(a) => a
                .get(part.parse::<usize>().map_err(|_| format!("{part:?} is not an index"))?)
                .ok_or("index out of range")?,
            _ => return Err(format!("{part:?} is below a number")),
        };
    }
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(n.as_f64()),
        _ => Err("names a section, not a number".into()),
    }
}

/// Every numeric path in a report, for error messages.
pub fn metric_paths(v: &Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                metric_paths(x, &p, out);
            }
        }
        Value::Number(_) | Value::Null if !prefix.is_empty() => out.push(prefix.to_string()),
        _ => {}
    }
}

/// Evaluate gates against the report's JSON; an unknown metric is a usage error.
pub fn evaluate(gates: &[Gate], report: &Value, origin: &str) -> Result<Vec<GateResult>> {
    gates
        .iter()
        .map(|g| {
            let value = lookup(report, &g.metric).map_err(|why| {
                let mut known = Vec::new();
                metric_paths(report, "", &mut known);
                let near: Vec<&String> = known.iter().filter(|k| k.starts_with(g.metric.split('.').next().unwrap_or(""))).take(25).collect();
                Error::Usage(format!(
                    "{origin}: gate metric {:?} is not in the audit report ({why}). Metrics under that section include: {}",
                    g.metric,
                    near.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                ))
            })?;
            let (status, message) = match value {
                None if g.required => (Status::Fail, "undefined, and the gate is required".to_string()),
                None => (Status::Skipped, "undefined for these tables (see the report's skipped list)".to_string()),
                Some(v) => {
                    let ok = match g.direction {
                        Direction::AtMost => v <= g.threshold,
                        Direction::AtLeast => v >= g.threshold,
                    };
                    let rel = match g.direction {
                        Direction::AtMost => "<=",
                        Direction::AtLeast => ">=",
                    };
                    if ok {
                        (Status::Pass, format!("{v:.4} {rel} {}", g.threshold))
                    } else {
                        (Status::Fail, format!("{v:.4} is not {rel} {}", g.threshold))
                    }
                }
            };
            Ok(GateResult { gate: g.clone(), value, status, message })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_paths_resolve() {
        let (gates, _) = load(None).unwrap();
        assert!(gates.len() >= 5);
        let report = serde_json::json!({"a": {"b": 0.2, "c": null}, "l": [1.0]});
        let g = |m: &str, t: f64, d: Direction| Gate {
            metric: m.into(),
            threshold: t,
            direction: d,
            why: None,
            required: false,
        };
        let r = evaluate(
            &[
                g("a.b", 0.3, Direction::AtMost),
                g("a.b", 0.3, Direction::AtLeast),
                g("a.c", 0.0, Direction::AtMost),
                g("l.0", 1.0, Direction::AtLeast),
            ],
            &report,
            "t",
        )
        .unwrap();
        let st: Vec<Status> = r.iter().map(|r| r.status).collect();
        assert_eq!(st, vec![Status::Pass, Status::Fail, Status::Skipped, Status::Pass]);
        assert!(evaluate(&[g("a.x", 0.0, Direction::AtMost)], &report, "t").is_err());
        let req = Gate { required: true, ..g("a.c", 0.0, Direction::AtMost) };
        assert_eq!(evaluate(&[req], &report, "t").unwrap()[0].status, Status::Fail);
    }
}
