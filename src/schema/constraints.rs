//! Cross-column rules of a table (`constraints:` in the schema): a small language that a person
//! can review and privsynth can check without an LLM.
//!
//! ```yaml
//! constraints:
//!   - {kind: order, before: ADMITTED, after: DISCHARGED, status: reviewed}   # before <= after
//!   - {kind: range, column: AGE, min: 0, max: 110, status: reviewed}
//!   - {kind: forbid, when: {SEX: M, PREGNANT: "true"}, status: proposed}      # impossible combination
//!   - {kind: forbid, when: {AGE: [0, 15], MARITAL: M}}                         # [lo, hi] = a range
//! ```
//!
//! Rules are public knowledge (like the rest of the schema), so enforcing them is
//! post-processing and costs no privacy. `privsynth llm constraints` writes rules with
//! `status: proposed`; only rules a person flips to `reviewed` are enforced when sampling (by
//! rejection, see [`crate::synthetic`]). A rule naming an unknown column or value is a schema
//! error that names the rule.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Cell;
use super::domain::ColumnDomain;
use super::{ColumnType, Table, parse_point};

/// Review state of a rule. Only `reviewed` rules are enforced.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RuleStatus {
    /// Written by a tool (or a person) and not yet checked: recorded, not enforced.
    #[default]
    Proposed,
    /// Checked by a person: enforced when sampling.
    Reviewed,
    /// Checked and turned down: kept as a record, never enforced.
    Rejected,
}

/// One condition of a `forbid` rule: a value (equality) or an inclusive `[lo, hi]` range.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Equals(String),
    Between(String, String),
}

/// A cross-column rule.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Constraint {
    /// `before <= after` (`<` when strict) whenever both are present.
    Order {
        before: String,
        after: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        strict: bool,
        #[serde(default)]
        status: RuleStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// `min <= column <= max` whenever the column is present (either bound may be absent).
    Range {
        column: String,
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "opt_scalar",
            serialize_with = "write_opt_scalar"
        )]
        min: Option<String>,
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "opt_scalar",
            serialize_with = "write_opt_scalar"
        )]
        max: Option<String>,
        #[serde(default)]
        status: RuleStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// No record may match every condition at once.
    Forbid {
        when: BTreeMap<String, Condition>,
        #[serde(default)]
        status: RuleStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
}

impl Constraint {
    pub fn status(&self) -> RuleStatus {
        match self {
            Constraint::Order { status, .. } | Constraint::Range { status, .. } | Constraint::Forbid { status, .. } => {
                *status
            }
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Constraint::Order { .. } => "order",
            Constraint::Range { .. } => "range",
            Constraint::Forbid { .. } => "forbid",
        }
    }

    /// The columns the rule names.
    pub fn columns(&self) -> Vec<&str> {
        match self {
            Constraint::Order { before, after, .. } => vec![before, after],
            Constraint::Range { column, .. } => vec![column],
            Constraint::Forbid { when, .. } => when.keys().map(String::as_str).collect(),
        }
    }

    /// The rule in one line, for messages and prompts.
    pub fn describe(&self) -> String {
        match self {
            Constraint::Order { before, after, strict, .. } => {
                format!("{before} {} {after} (when both are present)", if *strict { "<" } else { "<=" })
            }
            Constraint::Range { column, min, max, .. } => match (min, max) {
                (Some(a), Some(b)) => format!("{a} <= {column} <= {b}"),
                (Some(a), None) => format!("{column} >= {a}"),
                (None, Some(b)) => format!("{column} <= {b}"),
                (None, None) => format!("{column}: no bound"),
            },
            Constraint::Forbid { when, .. } => {
                let parts: Vec<String> = when
                    .iter()
                    .map(|(c, v)| match v {
                        Condition::Equals(x) => format!("{c} = {x}"),
                        Condition::Between(a, b) => format!("{c} in [{a}, {b}]"),
                    })
                    .collect();
                format!("never {}", parts.join(" and "))
            }
        }
    }

    /// The same rule ignoring status and note (to spot duplicates).
    pub fn same_rule(&self, other: &Constraint) -> bool {
        let strip = |c: &Constraint| {
            let mut c = c.clone();
            match &mut c {
                Constraint::Order { status, note, .. }
                | Constraint::Range { status, note, .. }
                | Constraint::Forbid { status, note, .. } => {
                    *status = RuleStatus::Proposed;
                    *note = None;
                }
            }
            c
        };
        strip(self) == strip(other)
    }
}

fn write_opt_scalar<S: Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        None => s.serialize_none(),
        Some(x) => write_scalar(x, s),
    }
}

/// A canonical number as a YAML number, anything else as a string.
fn write_scalar<S: Serializer>(x: &str, s: S) -> Result<S::Ok, S::Error> {
    match (x.parse::<i64>(), x.parse::<f64>()) {
        (Ok(i), _) if i.to_string() == x => s.serialize_i64(i),
        (_, Ok(f)) if f.is_finite() && f.to_string() == x => s.serialize_f64(f),
        _ => s.serialize_str(x),
    }
}

/// A YAML scalar (string, number or boolean), kept as text.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum Scalar {
    S(String),
    I(i64),
    F(f64),
    B(bool),
}

impl Scalar {
    pub(super) fn text(self) -> String {
        match self {
            Scalar::S(s) => s,
            Scalar::I(i) => i.to_string(),
            Scalar::F(f) => f.to_string(),
            Scalar::B(b) => b.to_string(),
        }
    }
}

fn opt_scalar<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<Scalar>::deserialize(d)?.map(Scalar::text))
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(Scalar),
            Two(Vec<Scalar>),
        }
        match Raw::deserialize(d)? {
            Raw::One(s) => Ok(Condition::Equals(s.text())),
            Raw::Two(v) if v.len() == 2 => {
                let mut it = v.into_iter().map(Scalar::text);
                let (a, b) = (it.next().unwrap_or_default(), it.next().unwrap_or_default());
                Ok(Condition::Between(a, b))
            }
            Raw::Two(v) => {
                Err(D::Error::custom(format!("a condition is a value or a [lo, hi] pair, got a list of {}", v.len())))
            }
        }
    }
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        struct W<'a>(&'a str);
        impl Serialize for W<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                write_scalar(self.0, s)
            }
        }
        match self {
            Condition::Equals(x) => write_scalar(x, s),
            Condition::Between(a, b) => {
                let mut seq = s.serialize_seq(Some(2))?;
                seq.serialize_element(&W(a))?;
                seq.serialize_element(&W(b))?;
                seq.end()
            }
        }
    }
}

/// A validated rule bound to column positions of a record.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// Position of the rule in the table's list (0-based).
    pub index: usize,
    pub rule: Constraint,
    test: Test,
}

#[derive(Debug, Clone)]
enum Test {
    Order { before: usize, after: usize, before_scale: f64, after_scale: f64, strict: bool },
    Range { column: usize, min: f64, max: f64 },
    Forbid(Vec<(usize, Match)>),
}

#[derive(Debug, Clone)]
enum Match {
    Category(String),
    Bool(bool),
    Between(f64, f64),
}

/// Seconds per unit of a column's numeric line, so dates and datetimes compare.
fn scale(kind: ColumnType) -> f64 {
    if kind == ColumnType::Date { 86_400.0 } else { 1.0 }
}

impl Compiled {
    /// Whether a record (cells in `columns` order, as given to [`compile`]) satisfies the rule.
    /// Missing values never violate a rule.
    pub fn holds(&self, row: &[Cell<'_>]) -> bool {
        let num = |i: usize| match row[i] {
            Cell::Point(v) => Some(v),
            _ => None,
        };
        match &self.test {
            Test::Order { before, after, before_scale, after_scale, strict } => match (num(*before), num(*after)) {
                (Some(a), Some(b)) => {
                    let (a, b) = (a * before_scale, b * after_scale);
                    if *strict { a < b } else { a <= b }
                }
                _ => true,
            },
            Test::Range { column, min, max } => num(*column).is_none_or(|v| v >= *min && v <= *max),
            Test::Forbid(conds) => !conds.iter().all(|(i, m)| match (m, &row[*i]) {
                (Match::Category(c), Cell::Label(t)) => c == t,
                (Match::Bool(b), Cell::Label(x)) => {
                    if *b {
                        *x == "true"
                    } else {
                        *x == "false"
                    }
                }
                (Match::Between(lo, hi), Cell::Point(v)) => v >= lo && v <= hi,
                _ => false,
            }),
        }
    }
}

/// Check a table's rules against its columns and bind them to positions in `columns` (the
/// order of the record cells the rules will see). Every problem names its rule.
pub fn compile(table: &Table, columns: &[String]) -> Result<Vec<Compiled>, Vec<String>> {
    let mut out = vec![];
    let mut problems = vec![];
    for (i, rule) in table.constraints.iter().enumerate() {
        match compile_one(table, columns, rule) {
            Ok(test) => out.push(Compiled { index: i, rule: rule.clone(), test }),
            Err(p) => problems.push(format!("constraint {} ({}: {}): {p}", i + 1, rule.kind(), rule.describe())),
        }
    }
    for (i, a) in table.constraints.iter().enumerate() {
        if table.constraints[..i].iter().any(|b| b.same_rule(a)) {
            problems.push(format!("constraint {} ({}: {}) repeats an earlier rule", i + 1, a.kind(), a.describe()));
        }
    }
    if problems.is_empty() { Ok(out) } else { Err(problems) }
}

/// Validate the rules of a table (positions bound to the modelled columns).
pub fn validate(table: &Table) -> Vec<String> {
    let cols: Vec<String> = table.columns.iter().filter(|c| c.is_modelled()).map(|c| c.name.clone()).collect();
    compile(table, &cols).err().unwrap_or_default()
}

fn compile_one(table: &Table, columns: &[String], rule: &Constraint) -> Result<Test, String> {
    let column = |name: &str| -> Result<(usize, &super::Column), String> {
        let c = table.column(name).ok_or_else(|| format!("{name:?} is not a column of table {:?}", table.name))?;
        if !c.is_modelled() {
            return Err(format!(
                "column {name:?} is not modelled (identifier or text), so no rule can be checked on it"
            ));
        }
        let pos = columns
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| format!("column {name:?} is not among the sampled columns"))?;
        Ok((pos, c))
    };
    let bounds = |c: &super::Column| -> Result<(f64, f64), String> {
        match ColumnDomain::build(c)? {
            ColumnDomain::Binned { lo, hi, .. } => Ok((lo, hi)),
            _ => Err(format!("column {:?} has no bounds", c.name)),
        }
    };
    let point = |c: &super::Column, v: &str| parse_point(c.kind, v).map_err(|e| format!("column {:?}: {e}", c.name));
    match rule {
        Constraint::Order { before, after, strict, .. } => {
            let (b, bc) = column(before)?;
            let (a, ac) = column(after)?;
            if before == after {
                return Err("before and after name the same column".into());
            }
            let numeric = |k| matches!(k, ColumnType::Integer | ColumnType::Float);
            let temporal = |k| matches!(k, ColumnType::Date | ColumnType::Datetime);
            if !((numeric(bc.kind) && numeric(ac.kind)) || (temporal(bc.kind) && temporal(ac.kind))) {
                return Err(format!(
                    "an order compares two numeric or two date/datetime columns; {before:?} is {} and {after:?} is {}",
                    bc.kind, ac.kind
                ));
            }
            Ok(Test::Order {
                before: b,
                after: a,
                before_scale: scale(bc.kind),
                after_scale: scale(ac.kind),
                strict: *strict,
            })
        }
        Constraint::Range { column: name, min, max, .. } => {
            let (i, c) = column(name)?;
            if !c.kind.is_bounded() {
                return Err(format!(
                    "a range applies to integer, float, date or datetime columns; {name:?} is {}",
                    c.kind
                ));
            }
            if min.is_none() && max.is_none() {
                return Err("a range needs min, max or both".into());
            }
            let lo = min.as_deref().map(|v| point(c, v)).transpose()?.unwrap_or(f64::NEG_INFINITY);
            let hi = max.as_deref().map(|v| point(c, v)).transpose()?.unwrap_or(f64::INFINITY);
            if lo > hi {
                return Err("min is above max".into());
            }
            let (dlo, dhi) = bounds(c)?;
            if hi < dlo || lo > dhi {
                return Err(format!("the range excludes every value of the column's domain ({})", describe_bounds(c)));
            }
            Ok(Test::Range { column: i, min: lo, max: hi })
        }
        Constraint::Forbid { when, .. } => {
            if when.is_empty() {
                return Err("a forbid rule needs at least one condition".into());
            }
            let mut conds = vec![];
            for (name, cond) in when {
                let (i, c) = column(name)?;
                let m = match (c.kind, cond) {
                    (ColumnType::Categorical, Condition::Equals(v)) => {
                        let ColumnDomain::Categorical { categories, .. } = ColumnDomain::build(c)? else {
                            return Err(format!("column {name:?} has no categories"));
                        };
                        let canon = categories
                            .iter()
                            .find(|k| k.trim() == v.trim() || matches!((k.trim().parse::<f64>(), v.trim().parse::<f64>()), (Ok(a), Ok(b)) if a == b))
                            .ok_or_else(|| format!("{v:?} is not a category of column {name:?}"))?;
                        Match::Category(canon.clone())
                    }
                    (ColumnType::Boolean, Condition::Equals(v)) => match v.trim().to_ascii_lowercase().as_str() {
                        "false" | "f" | "no" | "n" | "0" => Match::Bool(false),
                        "true" | "t" | "yes" | "y" | "1" => Match::Bool(true),
                        _ => return Err(format!("{v:?} is not true or false (column {name:?})")),
                    },
                    (ColumnType::Integer, Condition::Equals(v)) => {
                        let x = point(c, v)?;
                        Match::Between(x, x)
                    }
                    (k, Condition::Between(a, b)) if k.is_bounded() => {
                        let (a, b) = (point(c, a)?, point(c, b)?);
                        if a > b {
                            return Err(format!("column {name:?}: the range [lo, hi] has lo above hi"));
                        }
                        Match::Between(a, b)
                    }
                    (k, Condition::Between(..)) => {
                        return Err(format!("column {name:?} is {k}: give one value, not a range"));
                    }
                    (k, Condition::Equals(_)) => {
                        return Err(format!("column {name:?} is {k}: give a [lo, hi] range, not one value"));
                    }
                };
                conds.push((i, m));
            }
            Ok(Test::Forbid(conds))
        }
    }
}

fn describe_bounds(c: &super::Column) -> String {
    c.domain.as_ref().and_then(|d| d.bounds.as_ref()).map(|b| b.join(" to ")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Schema;

    const BASE: &str = r#"
version: 1
tables:
  - name: t
    columns:
      - {name: sex, type: categorical, domain: {categories: [F, M]}}
      - {name: pregnant, type: boolean}
      - {name: age, type: integer, domain: {bounds: [0, 110], bins: 11}}
      - {name: admitted, type: date, domain: {bounds: ["2020-01-01", "2020-12-31"], granularity: month}}
      - {name: discharged, type: datetime, nullable: true, domain: {bounds: ["2020-01-01T00:00:00", "2021-01-31T00:00:00"], granularity: day}}
      - {name: note, type: text}
"#;

    fn with(rules: &str) -> std::result::Result<Schema, String> {
        Schema::from_yaml(&format!("{BASE}    constraints:\n{rules}"), "s.yaml").map_err(|e| e.to_string())
    }

    #[test]
    fn rules_parse_round_trip_and_evaluate() {
        let s = with(
            "      - {kind: order, before: admitted, after: discharged, status: reviewed}\n\
             \x20     - {kind: range, column: age, min: 16, status: reviewed}\n\
             \x20     - {kind: forbid, when: {sex: M, pregnant: true}, note: biology}\n\
             \x20     - {kind: forbid, when: {age: [0, 11], pregnant: yes}, status: rejected}\n",
        )
        .unwrap();
        let again = Schema::from_yaml(&s.to_yaml().unwrap(), "again").unwrap();
        assert_eq!(s, again, "YAML round trip keeps the rules");
        let t = s.table(None).unwrap();
        assert_eq!(t.constraints[2].status(), RuleStatus::Proposed, "default status");
        let cols: Vec<String> = ["sex", "pregnant", "age", "admitted", "discharged"].map(String::from).to_vec();
        let rules = compile(t, &cols).unwrap();
        let day = 86_400.0;
        let row = |sex: &'static str, preg: bool, age: f64, adm: f64, dis: Option<f64>| {
            vec![
                Cell::Label(sex),
                Cell::Label(if preg { "true" } else { "false" }),
                Cell::Point(age),
                Cell::Point(adm),
                dis.map_or(Cell::Missing, Cell::Point),
            ]
        };
        let ok = row("F", true, 30.0, 18_300.0, Some(18_300.0 * day + 3600.0));
        assert!(rules.iter().all(|r| r.holds(&ok)));
        // Discharge (a datetime) before admission (a date): the order rule fails; a missing discharge never does.
        assert!(!rules[0].holds(&row("F", false, 30.0, 18_300.0, Some(18_299.0 * day))));
        assert!(rules[0].holds(&row("F", false, 30.0, 18_300.0, None)));
        assert!(!rules[1].holds(&row("F", false, 15.0, 18_300.0, None)));
        assert!(!rules[2].holds(&row("M", true, 30.0, 18_300.0, None)));
        assert!(rules[2].holds(&row("M", false, 30.0, 18_300.0, None)));
        assert!(
            !rules[3].holds(&row("F", true, 11.0, 18_300.0, None))
                && rules[3].holds(&row("F", true, 12.0, 18_300.0, None))
        );
    }

    #[test]
    fn bad_rules_are_named() {
        for (rule, needle) in [
            ("{kind: order, before: admitted, after: dischargd}", "\"dischargd\" is not a column"),
            ("{kind: order, before: age, after: admitted}", "two numeric or two date"),
            ("{kind: range, column: note, max: 3}", "not modelled"),
            ("{kind: range, column: age}", "needs min, max or both"),
            ("{kind: range, column: age, min: 200}", "excludes every value"),
            ("{kind: range, column: age, min: 50, max: 40}", "min is above max"),
            ("{kind: forbid, when: {sex: X}}", "\"X\" is not a category of column \"sex\""),
            ("{kind: forbid, when: {pregnant: maybe}}", "not true or false"),
            ("{kind: forbid, when: {admitted: 2020-01-01}}", "give a [lo, hi] range"),
            ("{kind: forbid, when: {}}", "at least one condition"),
            ("{kind: forbid, when: {sex: [F, M]}}", "give one value"),
        ] {
            let e = with(&format!("      - {rule}\n")).unwrap_err();
            assert!(e.contains("constraint 1") && e.contains(needle), "{rule}: expected {needle:?} in {e}");
        }
        let e = with("      - {kind: range, column: age, min: 1}\n      - {kind: range, column: age, min: 1, status: reviewed}\n").unwrap_err();
        assert!(e.contains("constraint 2") && e.contains("repeats"), "{e}");
        let e = with("      - {kind: range, column: age, minimum: 1}\n").unwrap_err();
        assert!(e.contains("minimum"), "unknown fields are refused: {e}");
    }
}
