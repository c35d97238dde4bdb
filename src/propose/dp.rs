//! `schema infer --dp-epsilon`: a schema proposal that is differentially private end to end.
//!
//! Every decision that depends on the data is post-processing of values released by the privacy
//! crate, charged to one budget and written to the ledger:
//! 1. a census per column (discrete Gaussian over counts of values that are present, parse as
//!    integer / float / boolean / date / datetime, have at most 0-3 decimals, match identifier
//!    patterns, look like free text, or equal a public missing-value token) decides types,
//!    identifiers, precision and missing tokens;
//! 2. DP quantiles over a public candidate grid give numeric and date bounds (values outside them
//!    are clipped);
//! 3. DP partition selection (Gaussian noise plus a threshold, which needs delta) gives category
//!    lists; a column whose released categories cover too little of it becomes text.
//!
//! Roles come from column names, which are public. Every modelled column is nullable, since a DP
//! release cannot certify that a column has no missing values.

use std::collections::HashMap;

use polars::prelude::*;
use privsynth_privacy::{Budget, Cost, Sensitive, mechanisms};

use crate::data::RawTable;
use crate::error::{Error, Result};
use crate::propose::infer::{self, ADDRESS, DEFAULT_BINS, EMAIL, MISSING_TOKENS, PHONE, SSN, UUID, fmt_num};
use crate::schema::{self, Column, ColumnType, Domain, DomainSource, Granularity, OutOfDomain, Role, Schema, Table};

/// Share of the budget spent on the type census; the rest goes to domains.
const CENSUS_SHARE: f64 = 0.1;
/// A type is chosen when at least this share of present values have it.
const TYPE_SHARE: f64 = 0.98;
/// Bounds are the TAIL and 1 - TAIL quantiles; values beyond them are clipped.
const TAIL: f64 = 0.01;

/// Per-value features counted by the census, in this order, followed by one count per public
/// missing-value token.
const FEATURES: &[&str] = &[
    "present",
    "integer",
    "float",
    "boolean",
    "date",
    "datetime",
    "decimals<=0",
    "decimals<=1",
    "decimals<=2",
    "decimals<=3",
    "uuid",
    "ssn",
    "email",
    "phone",
    "address",
    "free_text",
    "negative",
    "abs>=1e1",
    "abs>=1e2",
    "abs>=1e3",
    "abs>=1e4",
    "abs>=1e5",
    "abs>=1e6",
    "abs>=1e7",
    "abs>=1e8",
    "abs>=1e9",
];
const NEGATIVE: usize = 16;
/// Index of the feature "|value| >= 10^k", k in 1..=9.
fn abs_ge(k: usize) -> usize {
    NEGATIVE + k
}

fn features(v: &str) -> [bool; 26] {
    let num = v.parse::<f64>().ok().filter(|x| x.is_finite());
    let decimals = num.map(|_| v.split_once('.').map_or(0, |(_, f)| f.trim_end_matches('0').len()));
    let lower = v.to_ascii_lowercase();
    [
        true,
        num.is_some_and(|x| x.fract() == 0.0),
        num.is_some(),
        matches!(lower.as_str(), "true" | "false" | "t" | "f" | "yes" | "no" | "y" | "n"),
        v.len() == 10 && schema::parse_date_iso(v).is_some(),
        v.len() > 10 && schema::parse_datetime_iso(v).is_some(),
        decimals.is_some_and(|d| d == 0),
        decimals.is_some_and(|d| d <= 1),
        decimals.is_some_and(|d| d <= 2),
        decimals.is_some_and(|d| d <= 3),
        UUID.is_match(v),
        SSN.is_match(v),
        EMAIL.is_match(v),
        num.is_none() && PHONE.is_match(v),
        ADDRESS.is_match(v),
        v.len() >= 30 && v.matches(' ').count() >= 3,
        num.is_some_and(|x| x < 0.0),
        num.is_some_and(|x| x.abs() >= 1e1),
        num.is_some_and(|x| x.abs() >= 1e2),
        num.is_some_and(|x| x.abs() >= 1e3),
        num.is_some_and(|x| x.abs() >= 1e4),
        num.is_some_and(|x| x.abs() >= 1e5),
        num.is_some_and(|x| x.abs() >= 1e6),
        num.is_some_and(|x| x.abs() >= 1e7),
        num.is_some_and(|x| x.abs() >= 1e8),
        num.is_some_and(|x| x.abs() >= 1e9),
    ]
}

/// A DP proposal: the schema, warnings, and the costs to record in the ledger.
pub struct DpProposal {
    pub schema: Schema,
    pub warnings: Vec<String>,
    pub costs: Vec<Cost>,
}

/// Public candidates for numeric bounds below 10^`max_exp` in magnitude (the census says where
/// the values lie): every integer up to 100, then two significant digits (0.0010 .. 9.9e9);
/// negatives only when the census found them. Few candidates outside the data keep the
/// quantile mechanism from drifting to them.
fn numeric_grid(integers_only: bool, max_exp: i32, negatives: bool) -> Vec<f64> {
    let limit = 10f64.powi(max_exp);
    let mut g: Vec<f64> = (0..=100).map(f64::from).filter(|v| *v < limit).collect();
    let first = if integers_only { 1 } else { -4 };
    for e in first..max_exp - 1 {
        for m in 10..100 {
            // Divide by a power of ten for decimals, so candidates are the doubles nearest them.
            let v = if e < 0 { m as f64 / 10f64.powi(-e) } else { m as f64 * 10f64.powi(e) };
            if !integers_only || v.fract() == 0.0 {
                g.push(v);
            }
        }
    }
    if negatives {
        let neg: Vec<f64> = g.iter().filter(|v| **v > 0.0).map(|v| -v).collect();
        g.extend(neg);
    }
    g.sort_by(f64::total_cmp);
    g.dedup();
    g
}

/// Public candidates for date bounds: 1 January of every year 1800-2199, as days (or seconds).
fn calendar_grid(unit: f64) -> Vec<f64> {
    (1800..2200)
        .filter_map(|y| chrono::NaiveDate::from_ymd_opt(y, 1, 1))
        .map(|d| schema::days_from_epoch(d) as f64 * unit)
        .collect()
}

fn text_values(s: &Series) -> PolarsResult<Vec<Option<String>>> {
    Ok(s.cast(&DataType::String)?.str()?.iter().map(|v| v.map(|v| v.trim().to_string())).collect())
}

/// The budget of a DP inference at (epsilon, delta): half of delta is set aside for the
/// category lists' partition selection (an approximate mechanism), the other half converts the
/// zCDP total. Within the zCDP part, [`CENSUS_SHARE`] goes to the type census and the rest is
/// shared evenly by the columns' domains.
pub fn budget(epsilon: f64, delta: f64) -> Result<Budget> {
    Budget::with_mechanism_delta(epsilon, delta, delta / 2.0).map_err(Error::Usage)
}

/// Infer a schema with DP, spending `budget` (whose delta reserve pays for category lists).
pub fn infer_dp(raw: &RawTable, opts: &infer::Options, budget: &mut Budget) -> Result<DpProposal> {
    let names = raw.column_names();
    let cols: Vec<Vec<Option<String>>> = names
        .iter()
        .map(|n| {
            raw.series(n)
                .and_then(|s| text_values(s).map_err(|_| Error::unreadable_column(&raw.file, n, "text", s.dtype())))
        })
        .collect::<Result<_>>()?;
    let is_missing = |v: &Option<String>| v.as_deref().is_none_or(|v| v.is_empty() || MISSING_TOKENS.contains(&v));

    // 1. Census: one vector over all columns; a row adds at most 1 to each entry.
    let width = FEATURES.len() + MISSING_TOKENS.len();
    let mut counts = vec![0i64; width * cols.len()];
    for (c, values) in cols.iter().enumerate() {
        let base = c * width;
        for v in values {
            match v.as_deref() {
                Some(v) if MISSING_TOKENS.contains(&v) => {
                    let t = MISSING_TOKENS.iter().position(|t| *t == v).unwrap_or(0);
                    counts[base + FEATURES.len() + t] += 1;
                }
                Some(v) if !v.is_empty() => {
                    for (i, f) in features(v).iter().enumerate() {
                        counts[base + i] += *f as i64;
                    }
                }
                _ => {}
            }
        }
    }
    // A value sets at most every feature, a missing token exactly one token count and nothing else.
    let l2 = ((FEATURES.len() * cols.len()) as f64).sqrt().ceil() as i64;
    // The budget split: CENSUS_SHARE of rho for the census, the rest (and the delta reserve)
    // for the domains.
    let rho_census = CENSUS_SHARE * budget.rho_remaining();
    let scale = mechanisms::gaussian_scale(rho_census * (1.0 - 1e-9), l2)?;
    let census = {
        let mut part = budget.part("the schema census", rho_census)?;
        mechanisms::gaussian_counts(&mut part, Sensitive::new(counts), l2, scale, "schema census")?
    };
    let noisy = census.value();

    // Types and roles from the census (post-processing).
    let mut warnings = vec![];
    let mut columns: Vec<Column> = Vec::with_capacity(cols.len());
    let mut present_of = Vec::with_capacity(cols.len());
    for (c, name) in names.iter().enumerate() {
        let f = &noisy[c * width..(c + 1) * width];
        let present = f[0] as f64;
        present_of.push(present);
        let share = |i: usize| if present > 0.0 { f[i] as f64 / present } else { 0.0 };
        // Nearly all present values have feature i: allow TYPE_SHARE and the noise of two counts.
        let all = |i: usize| f[i] as f64 >= TYPE_SHARE * present - 3.0 * std::f64::consts::SQRT_2 * scale;
        let mut col = Column {
            name: name.clone(),
            kind: ColumnType::Categorical,
            role: infer::role_by_name(name).unwrap_or_default(),
            nullable: true,
            description: None,
            unit: None,
            missing_values: MISSING_TOKENS
                .iter()
                .enumerate()
                .filter(|(t, _)| f[FEATURES.len() + t] as f64 >= 3.0 * scale)
                .map(|(_, t)| t.to_string())
                .collect(),
            out_of_domain: None,
            format: None,
            precision: None,
            domain: None,
            llm: None,
            timezone: None,
            fake: None,
        };
        let ident = [
            (10, "UUIDs"),
            (11, "SSN-like numbers"),
            (12, "e-mail addresses"),
            (13, "phone numbers"),
            (14, "street addresses"),
        ]
        .into_iter()
        .find(|(i, _)| share(*i) >= 0.9);
        if present < 10.0 * std::f64::consts::SQRT_2 * scale {
            col.kind = ColumnType::Text;
            warnings.push(format!(
                "column {name:?}: too few values for a DP proposal at this epsilon (noise scale {scale:.0} per count); \
                 proposed as text (not modelled): declare its type and a public domain by hand"
            ));
        } else if let Some((_, what)) = ident {
            (col.kind, col.role) = (ColumnType::Identifier, Role::Identifier);
            warnings.push(format!("column {name:?}: looks like {what}: marked identifier (never modelled)"));
        } else if col.role == Role::Identifier {
            col.kind = ColumnType::Identifier;
        } else if all(3) {
            col.kind = ColumnType::Boolean;
        } else if all(1) {
            col.kind = ColumnType::Integer;
        } else if all(2) {
            col.kind = ColumnType::Float;
            col.precision = (6..=9).find(|&i| all(i)).map(|i| (i - 6) as u32);
        } else if all(4) {
            col.kind = ColumnType::Date;
        } else if all(5) {
            col.kind = ColumnType::Datetime;
        } else if share(15) >= 0.5 {
            col.kind = ColumnType::Text;
            warnings.push(format!("column {name:?}: looks like free text: proposed as text (not modelled here)"));
        }
        if col.kind.is_bounded() {
            col.out_of_domain = Some(OutOfDomain::Clip);
        }
        columns.push(col);
    }

    // 2-3. Domains: the rest of rho evenly over columns that need one; delta over category lists.
    let needs: Vec<usize> = (0..columns.len())
        .filter(|&c| columns[c].kind == ColumnType::Categorical || columns[c].kind.is_bounded())
        .collect();
    let n_cat = needs.iter().filter(|&&c| columns[c].kind == ColumnType::Categorical).count();
    let (rho_domains, delta_domains) =
        (budget.rho_remaining() * (1.0 - 1e-12), budget.delta_remaining() * (1.0 - 1e-12));
    let mut domains = budget.part_with_delta("the schema domains", rho_domains, delta_domains)?;
    let rho_each = rho_domains / needs.len().max(1) as f64 * (1.0 - 1e-9);
    let delta_each = delta_domains / n_cat.max(1) as f64 * (1.0 - 1e-9);
    for c in needs {
        let name = names[c].clone();
        let col = &mut columns[c];
        let present: Vec<&str> = cols[c].iter().filter(|v| !is_missing(v)).filter_map(|v| v.as_deref()).collect();
        match col.kind {
            ColumnType::Categorical => {
                let mut counts: HashMap<String, i64> = HashMap::new();
                for v in &present {
                    *counts.entry(v.to_string()).or_default() += 1;
                }
                let kept = mechanisms::threshold_counts(
                    &mut domains,
                    Sensitive::new(counts),
                    1,
                    rho_each,
                    delta_each,
                    &format!("categories {name}"),
                )?;
                let covered: i64 = kept.value().values().sum();
                let mut cats: Vec<String> = kept.value().keys().cloned().collect();
                cats.sort();
                if cats.is_empty() || (covered as f64) < 0.8 * present_of[c] || cats.len() > opts.max_categories {
                    col.kind = ColumnType::Text;
                    warnings.push(format!(
                        "column {name:?}: the {} categories released under DP cover too little of the column (or exceed {}): \
                         proposed as text; group it into a public list or code hierarchy to model it",
                        cats.len(),
                        opts.max_categories
                    ));
                } else {
                    col.out_of_domain = Some(OutOfDomain::Null); // rare values become missing
                    col.domain = Some(Domain { categories: Some(cats), source: DomainSource::Dp, ..Domain::default() });
                }
            }
            kind => {
                let (unit, points): (f64, Vec<f64>) = match kind {
                    ColumnType::Date => (
                        1.0,
                        present
                            .iter()
                            .filter_map(|v| schema::parse_date_iso(v))
                            .map(|d| schema::days_from_epoch(d) as f64)
                            .collect(),
                    ),
                    ColumnType::Datetime => (
                        86_400.0,
                        present
                            .iter()
                            .filter_map(|v| schema::parse_datetime_iso(v))
                            .map(|d| d.and_utc().timestamp() as f64)
                            .collect(),
                    ),
                    _ => {
                        (0.0, present.iter().filter_map(|v| v.parse::<f64>().ok()).filter(|x| x.is_finite()).collect())
                    }
                };
                let grid = if unit > 0.0 {
                    calendar_grid(unit)
                } else {
                    // Widen the grid to negatives or another decade only on clear evidence (more
                    // than TAIL of the values, beyond twice the census noise); else clip.
                    let f = &noisy[c * width..(c + 1) * width];
                    let clearly = |i: usize| f[i] as f64 > TAIL * present_of[c] + 2.0 * scale;
                    let max_exp = (1..=9).find(|&k| !clearly(abs_ge(k))).unwrap_or(10) as i32;
                    numeric_grid(kind == ColumnType::Integer, max_exp, clearly(NEGATIVE))
                };
                if present_of[c] < 2000.0 {
                    warnings.push(format!(
                        "column {name:?}: few rows; DP bounds from so few values are coarse, review them"
                    ));
                }
                let q = mechanisms::quantiles(
                    &mut domains,
                    Sensitive::new(points),
                    1,
                    &grid,
                    &[TAIL, 1.0 - TAIL],
                    rho_each,
                    &format!("bounds {name}"),
                )?;
                let (lo, mut hi) = (q.value()[0], q.value()[1]);
                if hi <= lo {
                    // The released quantiles coincide: widen to the next candidate.
                    hi = grid.iter().copied().find(|g| *g > lo).unwrap_or(lo + 1.0);
                }
                let mut d = Domain { source: DomainSource::Dp, ..Domain::default() };
                match kind {
                    ColumnType::Integer => {
                        d.bounds = Some(vec![fmt_num(lo.round()), fmt_num(hi.round())]);
                        d.bins = (hi - lo + 1.0 > 100.0).then_some(DEFAULT_BINS);
                    }
                    ColumnType::Float => {
                        d.bounds = Some(vec![fmt_num(lo), fmt_num(hi)]);
                        d.bins = Some(DEFAULT_BINS);
                    }
                    _ => {
                        let days = |v: f64| (v / unit.max(1.0)).floor() as i64;
                        let span = days(hi) - days(lo);
                        d.granularity = Some(if span <= 366 {
                            Granularity::Day
                        } else if span <= 366 * 20 {
                            Granularity::Month
                        } else {
                            Granularity::Year
                        });
                        let fmt = |v: f64| match kind {
                            ColumnType::Date => {
                                schema::date_from_days(v as i64).map(|d| d.to_string()).unwrap_or_default()
                            }
                            _ => chrono::DateTime::from_timestamp(v as i64, 0)
                                .map(|d| d.naive_utc().format("%Y-%m-%dT%H:%M:%S").to_string())
                                .unwrap_or_default(),
                        };
                        d.bounds = Some(vec![fmt(lo), fmt(hi)]);
                    }
                }
                col.domain = Some(d);
            }
        }
    }

    drop(domains);
    let (eps, delta) = budget.spent_epsilon_delta().unwrap_or((f64::NAN, f64::NAN));
    let description = format!(
        "Proposed by `privsynth schema infer` under differential privacy (epsilon {eps:.3}, delta {delta:.1e}); \
         types, bounds and categories are post-processing of DP releases recorded in the ledger."
    );
    let schema = Schema::single(Table::new(&opts.table_name, Some(description), opts.csv.clone(), columns), &raw.file)?;
    Ok(DpProposal { schema, warnings, costs: budget.charges().to_vec() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_are_public_and_sorted() {
        let g = numeric_grid(true, 7, false);
        assert!(g.windows(2).all(|w| w[0] < w[1]));
        assert!(
            g.contains(&17.0) && g.contains(&90.0) && g.contains(&1_500_000.0) && g.iter().all(|v| v.fract() == 0.0)
        );
        assert!(g.iter().all(|v| *v >= 0.0 && *v < 1e7));
        assert_eq!(numeric_grid(true, 2, false).len(), 100); // 0..=99
        let f = numeric_grid(false, 1, true);
        assert!(f.contains(&0.0012) && f.contains(&6.2) && f.contains(&-6.2) && !f.contains(&10.0));
        let c = calendar_grid(1.0);
        assert_eq!(c.len(), 400);
    }

    #[test]
    fn features_classify_values() {
        let f = features("2.50");
        assert!(f[2] && !f[1] && f[7] && !f[6]);
        assert!(features("2024-05-01")[4] && features("2024-05-01T10:00:00Z")[5]);
        // Identifier patterns may overlap (an SSN also reads as a phone number); the census
        // checks them in priority order.
        assert!(features("999-12-3456")[11] && features("(402) 555-0134")[13] && !features("(402) 555-0134")[11]);
        assert!(features("-1500")[16] && features("-1500")[abs_ge(3)] && !features("-1500")[abs_ge(4)]);
    }
}
