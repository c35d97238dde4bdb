//! A column's declared domain resolved into its values: categories by their list, numbers,
//! dates and datetimes as bins on a numeric line (the number, days since 1970-01-01, or seconds
//! since 1970-01-01T00:00:00), with the grid of representable values inside each bin. Building
//! one runs every check the schema format cannot express (bounds order, edges, sizes); the
//! codec (`crate::codec`) turns cells into codes over it and back.

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate};

use super::{ColumnType, Granularity, MAX_DOMAIN_SIZE, days_from_epoch, period_start};
use crate::schema;

/// The values of one column's domain, without the null code.
#[derive(Debug, Clone)]
pub enum ColumnDomain {
    Categorical {
        categories: Vec<String>,
        lookup: HashMap<String, u32>,
        /// Categories that read as numbers, so that `4.0` in a file matches category `4`.
        numeric: Vec<(f64, u32)>,
    },
    Boolean,
    /// Bins on the numeric line. `edges` has one more entry than there are bins; bins are
    /// half-open except that a float column's last bin is closed at `hi`. With a grid (integers,
    /// days, seconds, or a float `precision`), `grid[i]` is the inclusive range of grid indices
    /// `k` (value `k * step`) inside bin `i`; decoding draws from it.
    Binned {
        kind: ColumnType,
        lo: f64,
        hi: f64,
        edges: Vec<f64>,
        grid: Option<Grid>,
    },
}

/// Grid of representable values of a binned column: `k * step`, computed as `k / per_unit` when
/// the step is a decimal fraction so that values are the nearest doubles to the decimals.
#[derive(Debug, Clone)]
pub struct Grid {
    pub(crate) step: f64,
    pub(crate) per_unit: f64,
    pub(crate) ranges: Vec<(i64, i64)>,
}

impl Grid {
    pub(crate) fn value(&self, k: i64) -> f64 {
        if self.per_unit > 1.0 { k as f64 / self.per_unit } else { k as f64 * self.step }
    }

    /// Smallest k with value(k) >= x (or > x when `strict`).
    fn first_at_or_above(&self, x: f64, strict: bool) -> i64 {
        let mut k = (x / self.step).floor() as i64 - 1;
        while self.value(k) < x || (strict && self.value(k) == x) {
            k += 1;
        }
        k
    }
}

impl ColumnDomain {
    /// Build a column's domain from the schema, checking that it is usable.
    pub fn build(c: &schema::Column) -> std::result::Result<ColumnDomain, String> {
        let d = c.domain.clone().unwrap_or_default();
        let need_none = |what: &str, present: bool| -> std::result::Result<(), String> {
            if present { Err(format!("a {} column takes no `{what}`", c.kind)) } else { Ok(()) }
        };
        let domain = match c.kind {
            ColumnType::Categorical => {
                for (w, p) in [
                    ("bounds", d.bounds.is_some()),
                    ("bins", d.bins.is_some()),
                    ("edges", d.edges.is_some()),
                    ("granularity", d.granularity.is_some()),
                ] {
                    need_none(w, p)?;
                }
                let categories = d.categories.ok_or("a categorical column needs `domain: {categories: [...]}`")?;
                if categories.is_empty() {
                    return Err("the category list is empty".into());
                }
                let mut lookup = HashMap::with_capacity(categories.len());
                let mut numeric = Vec::new();
                for (i, cat) in categories.iter().enumerate() {
                    if lookup.insert(cat.trim().to_string(), i as u32).is_some() {
                        return Err(format!("category {cat:?} is listed twice"));
                    }
                    if let Ok(v) = cat.trim().parse::<f64>() {
                        numeric.push((v, i as u32));
                    }
                }
                ColumnDomain::Categorical { categories, lookup, numeric }
            }
            ColumnType::Boolean => {
                if c.domain.is_some() {
                    return Err("a boolean column takes no domain (it is always false/true)".into());
                }
                ColumnDomain::Boolean
            }
            ColumnType::Integer | ColumnType::Float | ColumnType::Date | ColumnType::Datetime => {
                need_none("categories", d.categories.is_some())?;
                binned(c, &d)?
            }
            ColumnType::Text | ColumnType::Identifier => return Err(format!("a {} column is not encoded", c.kind)),
        };
        let size = domain.n_values() + c.nullable as usize;
        if size > MAX_DOMAIN_SIZE {
            return Err(format!(
                "the domain has {size} codes; at most {MAX_DOMAIN_SIZE} are supported. Use coarser bins, \
                 group rare categories (or a code hierarchy), or declare the column as text or identifier"
            ));
        }
        Ok(domain)
    }

    /// Number of codes, not counting the null code.
    pub fn n_values(&self) -> usize {
        match self {
            ColumnDomain::Categorical { categories, .. } => categories.len(),
            ColumnDomain::Boolean => 2,
            ColumnDomain::Binned { edges, .. } => edges.len() - 1,
        }
    }

    /// The code of a point on the numeric line, or `None` when it lies outside the bounds.
    pub(crate) fn bin_of(&self, v: f64) -> Option<u32> {
        let ColumnDomain::Binned { lo, hi, edges, .. } = self else { return None };
        if !(v >= *lo && v <= *hi) {
            return None;
        }
        let n = edges.len() - 1;
        // First edge strictly above v, minus one; v == hi of a closed last bin stays in the last bin.
        let i = edges[1..].partition_point(|e| *e <= v);
        Some(i.min(n - 1) as u32)
    }
}

/// Largest magnitude of a bound: grid indices (value / step) stay exact integers in a double
/// (below 2^53) for every precision allowed.
const MAX_POINT: f64 = 1e15;
/// Most decimals of a float column's grid.
const MAX_PRECISION: u32 = 9;

fn binned(c: &schema::Column, d: &schema::Domain) -> std::result::Result<ColumnDomain, String> {
    let kind = c.kind;
    let b = d.bounds.as_ref().ok_or_else(|| format!("a {kind} column needs `domain: {{bounds: [lo, hi]}}`"))?;
    if b.len() != 2 {
        return Err(format!("bounds must be [lo, hi], got {} value(s)", b.len()));
    }
    let lo = schema::parse_point(kind, &b[0])?;
    let hi = schema::parse_point(kind, &b[1])?;
    if !(lo < hi) {
        return Err(format!("the lower bound {} is not below the upper bound {}", b[0], b[1]));
    }
    // Values are drawn inside bins on this line, so its width and its grid must be exact
    // doubles: bounds such as +-1e308 would make every drawn value infinite or NaN.
    if !((hi - lo).is_finite() && lo.abs() <= MAX_POINT && hi.abs() <= MAX_POINT) {
        return Err(format!(
            "bounds must lie within +-{MAX_POINT:e} (so that values inside them are exact), got [{}, {}]",
            b[0], b[1]
        ));
    }
    if c.precision.is_some_and(|p| p > MAX_PRECISION) {
        return Err(format!("precision must be at most {MAX_PRECISION} decimals"));
    }
    let choices = d.bins.is_some() as u8 + d.edges.is_some() as u8 + d.granularity.is_some() as u8;
    if choices > 1 {
        return Err("give only one of `bins`, `edges` and `granularity`".into());
    }
    // Grid step: integers and calendar points are whole units; floats have an optional precision.
    let step = match kind {
        ColumnType::Float => c.precision.map(|p| 10f64.powi(-(p as i32))),
        _ => Some(1.0),
    };
    if matches!(kind, ColumnType::Integer) && (lo.fract() != 0.0 || hi.fract() != 0.0) {
        return Err("integer bounds must be whole numbers".into());
    }
    // Half-open bins on a grid end one step past `hi`; plain floats end at `hi` (closed).
    let end = match step {
        Some(s) if kind != ColumnType::Float => hi + s,
        _ => hi,
    };
    let too_many = |n: f64| n > MAX_DOMAIN_SIZE as f64;
    let edges: Vec<f64> = if let Some(n) = d.bins {
        if n == 0 || too_many(n as f64) {
            return Err(format!("bins must be between 1 and {MAX_DOMAIN_SIZE}, got {n}"));
        }
        let w = (end - lo) / n as f64;
        (0..=n).map(|i| if i == n { end } else { lo + w * i as f64 }).collect()
    } else if let Some(e) = &d.edges {
        let mut v = e.iter().map(|s| schema::parse_point(kind, s)).collect::<std::result::Result<Vec<_>, _>>()?;
        if v.len() < 2 {
            return Err("edges need at least two values".into());
        }
        if v.windows(2).any(|w| w[0] >= w[1]) {
            return Err("edges must be strictly increasing".into());
        }
        if v[0] != lo || v[v.len() - 1] != hi {
            return Err("the first and last edges must equal the bounds".into());
        }
        if let Some(last) = v.last_mut() {
            *last = end;
        }
        v
    } else if let Some(g) = d.granularity {
        calendar_edges(kind, lo, hi, g)?
    } else {
        match kind {
            ColumnType::Integer if too_many(hi - lo + 1.0) => {
                return Err(format!(
                    "an integer column without bins gets one code per value, and [{}, {}] has {} values \
                     (at most {MAX_DOMAIN_SIZE}); add `bins` or `edges`",
                    b[0],
                    b[1],
                    hi - lo + 1.0
                ));
            }
            ColumnType::Integer => (0..=((hi - lo) as usize + 1)).map(|i| lo + i as f64).collect(),
            _ => {
                return Err(format!(
                    "a {kind} column needs `bins` or `edges`{}",
                    if kind == ColumnType::Float { "" } else { " or `granularity`" }
                ));
            }
        }
    };
    if too_many((edges.len() - 1) as f64) {
        return Err(format!("the binning gives {} bins; at most {MAX_DOMAIN_SIZE} are supported", edges.len() - 1));
    }
    if let Some(step) = step {
        // Grid indices of the bounds must be exact integers (|index| < 2^53).
        if !((lo / step).abs() < 9.0e15 && (end / step).abs() < 9.0e15) {
            return Err(format!(
                "bounds [{}, {}] are too wide for the column's resolution ({step}); use fewer decimals or narrower bounds",
                b[0], b[1]
            ));
        }
    }
    // Every bin must hold at least one grid point, else its code could never be decoded.
    let grid = match step {
        None => None,
        Some(step) => {
            let per_unit = (1.0 / step).round();
            let mut g = Grid { step, per_unit, ranges: Vec::with_capacity(edges.len() - 1) };
            let n = edges.len() - 1;
            for i in 0..n {
                let k0 = g.first_at_or_above(edges[i], false);
                let closed = kind == ColumnType::Float && i == n - 1;
                let k1 = g.first_at_or_above(edges[i + 1], closed) - 1;
                if k0 > k1 {
                    return Err(format!(
                        "the bin [{}, {}) holds no value at the column's resolution ({step}); use fewer bins",
                        edges[i],
                        edges[i + 1]
                    ));
                }
                g.ranges.push((k0, k1));
            }
            Some(g)
        }
    };
    Ok(ColumnDomain::Binned { kind, lo, hi, edges, grid })
}

/// Calendar-aligned bin edges between `lo` and `hi` (inclusive) for dates (days) or datetimes
/// (seconds).
fn calendar_edges(kind: ColumnType, lo: f64, hi: f64, g: Granularity) -> std::result::Result<Vec<f64>, String> {
    let fixed = match g {
        Granularity::Second => Some(1.0),
        Granularity::Minute => Some(60.0),
        Granularity::Hour => Some(3600.0),
        _ => None,
    };
    let unit = if kind == ColumnType::Datetime { 86_400.0 } else { 1.0 };
    let mut edges = vec![lo];
    let end = hi + 1.0;
    if let Some(w) = fixed {
        if kind != ColumnType::Datetime {
            return Err("second/minute/hour granularity applies to datetime columns".into());
        }
        let mut e = (lo / w).floor() * w + w;
        while e < end {
            if edges.len() > MAX_DOMAIN_SIZE {
                return Err(format!("the granularity gives more than {MAX_DOMAIN_SIZE} bins; use a coarser one"));
            }
            edges.push(e);
            e += w;
        }
    } else {
        let to_date = |v: f64| schema::date_from_days((v / unit).floor() as i64).ok_or("bound out of calendar range");
        let mut d = period_start(to_date(lo)?, g);
        loop {
            d = match g {
                Granularity::Day => d.succ_opt(),
                Granularity::Week => d.checked_add_signed(chrono::Duration::days(7)),
                Granularity::Month => d.checked_add_months(chrono::Months::new(1)),
                Granularity::Quarter => d.checked_add_months(chrono::Months::new(3)),
                _ => NaiveDate::from_ymd_opt(d.year() + 1, 1, 1),
            }
            .ok_or("date out of calendar range")?;
            let e = days_from_epoch(d) as f64 * unit;
            if e >= end {
                break;
            }
            if edges.len() > MAX_DOMAIN_SIZE {
                return Err(format!("the granularity gives more than {MAX_DOMAIN_SIZE} bins; use a coarser one"));
            }
            edges.push(e);
        }
    }
    edges.push(end);
    Ok(edges)
}
