//! Every answer is checked, whatever the server promised: the JSON is extracted from the reply
//! (a json-fenced block or a reasoning preamble is tolerated), then validated against the JSON
//! Schema of the request.
//!
//! The validator covers the subset of JSON Schema the stage emits (type, enum, const,
//! properties, required, additionalProperties, items, minItems, maxItems, minLength, maxLength,
//! minimum, maximum, anyOf, format date / date-time); a test checks it agrees with the
//! `jsonschema` crate on that subset. A failed `enum` or `const` is reported as out of domain (a
//! hallucinated category), anything else as a schema violation.

use serde_json::Value;

/// Why an answer (or part of one) was not used. `reason` is a stable counter name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub reason: &'static str,
    pub detail: String,
}

impl Reject {
    pub fn new(reason: &'static str, detail: impl Into<String>) -> Reject {
        Reject { reason, detail: detail.into() }
    }
}

/// Counter names of rejections.
pub mod reason {
    pub const TRUNCATED: &str = "truncated";
    pub const EMPTY: &str = "empty";
    pub const INVALID_JSON: &str = "invalid_json";
    pub const SCHEMA: &str = "schema";
    pub const OUT_OF_DOMAIN: &str = "out_of_domain";
    pub const INVALID_RULE: &str = "invalid_rule";
    pub const BAD_RESPONSE: &str = "bad_response";
}

/// The JSON value in a model's reply: the whole reply, a ```json fenced block, or the outermost
/// object after any `<think>` section or chatter.
pub fn extract_json(content: &str) -> Result<Value, Reject> {
    let mut text = content.trim();
    if let Some(end) = text.find("</think>") {
        text = text[end + "</think>".len()..].trim();
    }
    if text.is_empty() {
        return Err(Reject::new(reason::EMPTY, "the answer is empty"));
    }
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return Ok(v);
    }
    if let Some(start) = text.find("```") {
        let body = &text[start + 3..];
        let body = body.strip_prefix("json").unwrap_or(body);
        if let Some(end) = body.find("```")
            && let Ok(v) = serde_json::from_str::<Value>(body[..end].trim())
        {
            return Ok(v);
        }
    }
    if let (Some(a), Some(b)) = (text.find('{'), text.rfind('}'))
        && a < b
        && let Ok(v) = serde_json::from_str::<Value>(&text[a..=b])
    {
        return Ok(v);
    }
    let err = serde_json::from_str::<Value>(text).err().map(|e| e.to_string()).unwrap_or_default();
    Err(Reject::new(reason::INVALID_JSON, format!("the answer is not JSON ({err})")))
}

/// Validate `v` against `schema`; the error names the JSON path.
pub fn validate(schema: &Value, v: &Value) -> Result<(), Reject> {
    check(schema, v, "$").map_err(|f| Reject::new(f.reason, format!("{}: {}", f.path, f.detail)))
}

struct Failure {
    reason: &'static str,
    path: String,
    detail: String,
    depth: usize,
}

fn fail(reason: &'static str, path: &str, detail: String) -> Failure {
    Failure { reason, path: path.to_string(), detail, depth: path.matches(['.', '[']).count() }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn has_type(v: &Value, t: &str) -> bool {
    let actual = type_name(v);
    actual == t || (t == "number" && actual == "integer")
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 { format!("{}...", s.chars().take(60).collect::<String>()) } else { s }
}

fn check(schema: &Value, v: &Value, path: &str) -> Result<(), Failure> {
    let Some(s) = schema.as_object() else { return Ok(()) };
    if let Some(t) = s.get("type") {
        let ok = match t {
            Value::String(t) => has_type(v, t),
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).any(|t| has_type(v, t)),
            _ => true,
        };
        if !ok {
            return Err(fail(reason::SCHEMA, path, format!("expected {t}, got {}", type_name(v))));
        }
    }
    if let Some(c) = s.get("const")
        && c != v
    {
        return Err(fail(reason::OUT_OF_DOMAIN, path, format!("{} is not {}", short(v), short(c))));
    }
    if let Some(Value::Array(e)) = s.get("enum")
        && !e.contains(v)
    {
        return Err(fail(reason::OUT_OF_DOMAIN, path, format!("{} is not one of the allowed values", short(v))));
    }
    if let Some(Value::Array(branches)) = s.get("anyOf") {
        let mut best: Option<Failure> = None;
        for b in branches {
            match check(b, v, path) {
                Ok(()) => {
                    best = None;
                    break;
                }
                Err(f) => {
                    if best.as_ref().is_none_or(|x| f.depth > x.depth) {
                        best = Some(f);
                    }
                }
            }
        }
        if let Some(f) = best {
            return Err(f);
        }
    }
    match v {
        Value::String(x) => {
            let n = x.chars().count() as u64;
            if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
                && n > max
            {
                return Err(fail(reason::SCHEMA, path, format!("{n} characters, at most {max} allowed")));
            }
            if let Some(min) = s.get("minLength").and_then(Value::as_u64)
                && n < min
            {
                return Err(fail(reason::SCHEMA, path, format!("{n} characters, at least {min} needed")));
            }
            match s.get("format").and_then(Value::as_str) {
                Some("date") if crate::schema::parse_date_iso(x).is_none() || x.trim().len() != 10 => {
                    return Err(fail(reason::SCHEMA, path, format!("{} is not a date (YYYY-MM-DD)", short(v))));
                }
                Some("date-time") if crate::schema::parse_datetime_iso(x).is_none() => {
                    return Err(fail(reason::SCHEMA, path, format!("{} is not a date-time", short(v))));
                }
                _ => {}
            }
        }
        Value::Number(x) => {
            let f = x.as_f64().unwrap_or(f64::NAN);
            if s.get("minimum").and_then(Value::as_f64).is_some_and(|m| f < m)
                || s.get("maximum").and_then(Value::as_f64).is_some_and(|m| f > m)
            {
                return Err(fail(reason::SCHEMA, path, format!("{f} is outside the allowed range")));
            }
        }
        Value::Array(items) => {
            if let Some(min) = s.get("minItems").and_then(Value::as_u64)
                && (items.len() as u64) < min
            {
                return Err(fail(reason::SCHEMA, path, format!("{} item(s), at least {min} needed", items.len())));
            }
            if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
                && items.len() as u64 > max
            {
                return Err(fail(reason::SCHEMA, path, format!("{} item(s), at most {max} allowed", items.len())));
            }
            if let Some(item) = s.get("items") {
                for (i, x) in items.iter().enumerate() {
                    check(item, x, &format!("{path}[{i}]"))?;
                }
            }
        }
        Value::Object(map) => {
            let props = s.get("properties").and_then(Value::as_object);
            if let Some(Value::Array(req)) = s.get("required") {
                for r in req.iter().filter_map(Value::as_str) {
                    if !map.contains_key(r) {
                        return Err(fail(reason::SCHEMA, path, format!("the required key {r:?} is missing")));
                    }
                }
            }
            for (k, x) in map {
                let sub = format!("{path}.{k}");
                match props.and_then(|p| p.get(k)) {
                    Some(ps) => check(ps, x, &sub)?,
                    None => match s.get("additionalProperties") {
                        Some(Value::Bool(false)) => {
                            return Err(fail(reason::SCHEMA, path, format!("unexpected key {k:?}")));
                        }
                        Some(extra @ Value::Object(_)) => check(extra, x, &sub)?,
                        _ => {}
                    },
                }
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_is_found_in_fences_and_after_reasoning() {
        assert_eq!(extract_json(" {\"a\": 1} ").unwrap(), json!({"a": 1}));
        assert_eq!(
            extract_json("Sure! Here it is:\n```json\n{\"a\": [1, 2]}\n```\nAnything else?").unwrap(),
            json!({"a": [1, 2]})
        );
        assert_eq!(extract_json("<think>{not this}</think>\n{\"b\": true}").unwrap(), json!({"b": true}));
        assert_eq!(extract_json("The answer is {\"c\": null}.").unwrap(), json!({"c": null}));
        assert_eq!(extract_json("{\"a\": 1").unwrap_err().reason, reason::INVALID_JSON);
        assert_eq!(extract_json("  ").unwrap_err().reason, reason::EMPTY);
    }

    #[test]
    fn violations_are_classified_and_located() {
        let s = json!({
            "type": "object", "additionalProperties": false, "required": ["r1"],
            "properties": {"r1": {"type": "object", "additionalProperties": false, "required": ["sex", "note"],
                "properties": {"sex": {"enum": ["F", "M"]}, "note": {"type": ["string", "null"], "maxLength": 5}}}}
        });
        assert!(validate(&s, &json!({"r1": {"sex": "F", "note": null}})).is_ok());
        let e = validate(&s, &json!({"r1": {"sex": "X", "note": "ok"}})).unwrap_err();
        assert_eq!((e.reason, e.detail.starts_with("$.r1.sex")), (reason::OUT_OF_DOMAIN, true), "{e:?}");
        let e = validate(&s, &json!({"r1": {"sex": "F", "note": "too long"}})).unwrap_err();
        assert_eq!(e.reason, reason::SCHEMA);
        assert!(e.detail.contains("at most 5"), "{e:?}");
        assert!(validate(&s, &json!({"r1": {"sex": "F"}})).unwrap_err().detail.contains("\"note\" is missing"));
        assert!(
            validate(&s, &json!({"r1": {"sex": "F", "note": null}, "r9": {}}))
                .unwrap_err()
                .detail
                .contains("unexpected key \"r9\"")
        );
        assert!(validate(&json!({"type": "string", "format": "date"}), &json!("2020-02-30")).is_err());
        assert!(validate(&json!({"type": "string", "format": "date"}), &json!("2020-02-29")).is_ok());
    }

    /// The subset validator and the `jsonschema` crate agree on valid and mutated instances of
    /// the schemas the stage emits.
    #[test]
    fn agrees_with_jsonschema_on_the_emitted_subset() {
        let schema = json!({
            "type": "object", "additionalProperties": false, "required": ["rules"],
            "properties": {"rules": {"type": "array", "minItems": 1, "maxItems": 3, "items": {"anyOf": [
                {"type": "object", "additionalProperties": false, "required": ["kind", "column", "min"],
                 "properties": {"kind": {"const": "range"}, "column": {"enum": ["age", "bmi"]}, "min": {"type": ["number", "null"], "minimum": 0, "maximum": 200}}},
                {"type": "object", "additionalProperties": false, "required": ["kind", "text"],
                 "properties": {"kind": {"const": "note"}, "text": {"type": "string", "minLength": 1, "maxLength": 8}}}
            ]}}}
        });
        let reference = jsonschema::validator_for(&schema).unwrap();
        let cases = [
            json!({"rules": [{"kind": "range", "column": "age", "min": 3}]}),
            json!({"rules": [{"kind": "range", "column": "age", "min": null}, {"kind": "note", "text": "abc"}]}),
            json!({"rules": [{"kind": "range", "column": "weight", "min": 3}]}),
            json!({"rules": [{"kind": "range", "column": "age", "min": -1}]}),
            json!({"rules": [{"kind": "range", "column": "age", "min": 201.5}]}),
            json!({"rules": [{"kind": "range", "column": "age", "min": "3"}]}),
            json!({"rules": [{"kind": "range", "column": "age"}]}),
            json!({"rules": [{"kind": "note", "text": ""}]}),
            json!({"rules": [{"kind": "note", "text": "123456789"}]}),
            json!({"rules": [{"kind": "note", "text": "ok", "extra": 1}]}),
            json!({"rules": []}),
            json!({"rules": [{"kind": "note", "text": "a"}, {"kind": "note", "text": "b"}, {"kind": "note", "text": "c"}, {"kind": "note", "text": "d"}]}),
            json!({"rules": {"kind": "note"}}),
            json!({"rule": []}),
            json!([1, 2]),
            json!({"rules": [{"kind": "other", "text": "a"}]}),
        ];
        for c in &cases {
            assert_eq!(validate(&schema, c).is_ok(), reference.is_valid(c), "disagreement on {c}");
        }
    }
}
