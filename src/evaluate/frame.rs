//! The audit's view of the three tables (train, holdout, synthetic): values, not DP codes.
//!
//! Every modelled column of the schema becomes either numeric (integers, floats, dates and
//! datetimes on their numeric line; missing = NaN) or categorical (categories and booleans coded
//! through one dictionary shared by the three tables, so equal labels get equal codes; code 0 is
//! missing, a value of its own). Values outside the schema's domain are kept as they are: the
//! audit describes whatever a synthetic file holds. This module also holds the two binnings the
//! fidelity metrics share (always from the train table, never binned per table) and the Gower
//! scaling the distance code uses.

use std::collections::HashMap;

use rayon::prelude::*;

use crate::codec::{Cell, ColumnCodec};
use crate::data::RawTable;
use crate::error::{Error, Result};
use crate::schema::{self, ColumnType, Role, Table};

/// One audited column, described from the train table.
#[derive(Debug, Clone)]
pub struct AuditColumn {
    pub name: String,
    pub kind: ColumnType,
    pub role: Role,
    /// Categorical codes -> labels (code 0 = missing, label ""). Empty for numeric columns.
    pub labels: Vec<String>,
    /// Train's range of a numeric column (NaN when train has no value).
    pub lo: f64,
    pub hi: f64,
}

impl AuditColumn {
    pub fn is_numeric(&self) -> bool {
        self.kind.is_bounded()
    }

    /// A value as a person reads it (dates as dates).
    pub fn show(&self, v: f64) -> String {
        if v.is_nan() {
            return "(missing)".into();
        }
        match self.kind {
            ColumnType::Date => {
                schema::date_from_days(v as i64).map(|d| d.to_string()).unwrap_or_else(|| v.to_string())
            }
            ColumnType::Datetime => chrono::DateTime::from_timestamp(v as i64, 0)
                .map(|d| d.naive_utc().to_string())
                .unwrap_or_else(|| v.to_string()),
            _ if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
            // Bin edges are arbitrary reals: a few significant digits read better.
            _ => {
                let digits = (4 - v.abs().log10().floor() as i32).clamp(0, 10) as usize;
                let t = format!("{v:.digits$}");
                if t.contains('.') { t.trim_end_matches('0').trim_end_matches('.').to_string() } else { t }
            }
        }
    }

    /// A bin edge of bins `width` wide: numbers with the same decimals on every edge of a
    /// column (`decimals_for(width)`), so that "[49.4, 53.0)" and "[53.0, 56.6)" line up and
    /// no edge shows more digits than the bins resolve; dates and times as `show`.
    pub fn show_edge(&self, v: f64, width: f64) -> String {
        match self.kind {
            ColumnType::Date | ColumnType::Datetime => self.show(v),
            _ if v.is_nan() => self.show(v),
            _ => {
                let d = decimals_for(width);
                let t = format!("{v:.d$}");
                // "-0.0" reads as a different number from "0.0".
                if t.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') {
                    t.trim_start_matches('-').to_string()
                } else {
                    t
                }
            }
        }
    }
    /// A categorical code as a person reads it.
    pub fn label(&self, code: u32) -> &str {
        match code {
            0 => "(missing)",
            c => self.labels.get(c as usize).map_or("?", String::as_str),
        }
    }
}

/// Decimals that show a step of `width` with two significant digits (width 3.6 -> 1 decimal,
/// 26.8 -> 0, 0.062 -> 3): the one rounding rule for bin edges in the reports.
pub fn decimals_for(width: f64) -> usize {
    if !(width.is_finite() && width > 0.0) {
        return 0;
    }
    (1 - width.log10().floor() as i32).clamp(0, 10) as usize
}

/// One column's values in one table.
#[derive(Debug, Clone)]
pub enum Values {
    /// NaN = missing.
    Num(Vec<f64>),
    /// Codes into the column's shared labels; 0 = missing.
    Cat(Vec<u32>),
}

impl Values {
    pub fn is_missing(&self, i: usize) -> bool {
        match self {
            Values::Num(v) => v[i].is_nan(),
            Values::Cat(c) => c[i] == 0,
        }
    }

    /// A canonical 64-bit word per cell: equal words iff equal values (NaN = NaN, -0 = 0).
    pub fn word(&self, i: usize) -> u64 {
        match self {
            Values::Num(v) => canonical_bits(v[i]),
            Values::Cat(c) => c[i] as u64,
        }
    }
}

/// Bits of a float with one NaN and one zero.
pub fn canonical_bits(x: f64) -> u64 {
    if x.is_nan() {
        u64::MAX
    } else if x == 0.0 {
        0
    } else {
        x.to_bits()
    }
}

/// One table as the audit sees it.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The file it came from.
    pub file: String,
    pub rows: usize,
    pub cols: Vec<Values>,
}

impl Frame {
    /// The canonical words of a row over `cols`, for exact matching.
    pub fn key(&self, row: usize, cols: &[usize]) -> Vec<u64> {
        cols.iter().map(|&c| self.cols[c].word(row)).collect()
    }

    /// Rows `idx` of this frame, in that order.
    pub fn select(&self, idx: &[usize]) -> Frame {
        let cols = self
            .cols
            .iter()
            .map(|v| match v {
                Values::Num(x) => Values::Num(idx.iter().map(|&i| x[i]).collect()),
                Values::Cat(x) => Values::Cat(idx.iter().map(|&i| x[i]).collect()),
            })
            .collect();
        Frame { file: self.file.clone(), rows: idx.len(), cols }
    }
}

/// The three tables over the same columns.
#[derive(Debug, Clone)]
pub struct Frames {
    pub columns: Vec<AuditColumn>,
    pub train: Frame,
    pub holdout: Frame,
    pub synthetic: Frame,
    /// Per column, cells of the synthetic table outside the schema's categories.
    pub synthetic_out_of_domain: Vec<usize>,
}

/// Cells of one column in one table, before the shared dictionary is applied.
enum Read {
    Num(Vec<f64>),
    Cat(Vec<u32>),
}

impl Frames {
    /// Read the modelled columns of `table` from the three tables. A cell that is not of its
    /// column's type is an error naming the file, row and column.
    pub fn load(table: &Table, train: &RawTable, holdout: &RawTable, synthetic: &RawTable) -> Result<Frames> {
        let cols: Vec<&schema::Column> = table.columns.iter().filter(|c| c.is_modelled()).collect();
        if cols.is_empty() {
            return Err(Error::schema(&table.name, "has no modelled columns to audit (all are identifiers or text)"));
        }
        for (raw, what) in [(train, "train"), (holdout, "holdout"), (synthetic, "synthetic")] {
            if raw.df.height() == 0 {
                return Err(Error::data(
                    &raw.file,
                    format!("has no data rows; the {what} table of an audit needs rows"),
                ));
            }
        }
        let per_column: Vec<(AuditColumn, [Values; 3], usize)> = cols
            .par_iter()
            .map(|c| {
                let codec = ColumnCodec::new(table, c)
                    .map_err(|m| Error::schema(&table.name, format!("column {:?}: {m}", c.name)))?;
                let numeric = c.kind.is_bounded();
                let known: std::collections::HashSet<&str> = match &codec.domain {
                    crate::codec::ColumnDomain::Categorical { categories, .. } => {
                        categories.iter().map(String::as_str).collect()
                    }
                    _ => ["true", "false"].into_iter().collect(),
                };
                let mut labels: Vec<String> = vec![String::new()];
                let mut dict: HashMap<String, u32> = HashMap::new();
                let mut out_of_domain = 0usize;
                let mut read = |raw: &RawTable, count_ood: bool| -> Result<Read> {
                    let s = raw.series(&c.name)?;
                    let mut nums = Vec::new();
                    let mut cats = Vec::new();
                    let mut kind_error = false;
                    let res = codec
                        .read_cells(s, |cell| match cell {
                            Cell::Missing if numeric => nums.push(f64::NAN),
                            Cell::Missing => cats.push(0),
                            Cell::Point(x) => nums.push(x),
                            // Only a boolean-typed file column gives labels for a numeric column.
                            Cell::Label(_) if numeric => kind_error = true,
                            Cell::Label(l) => {
                                let code = match dict.get(l) {
                                    Some(&k) => k,
                                    None => {
                                        let k = labels.len() as u32;
                                        labels.push(l.to_string());
                                        dict.insert(l.to_string(), k);
                                        k
                                    }
                                };
                                if count_ood && !known.contains(l) {
                                    out_of_domain += 1;
                                }
                                cats.push(code)
                            }
                        })
                        .map_err(|e| Error::column(&raw.file, &c.name, format!("cannot be read: {e}")))?;
                    if let Err(row) = res {
                        return Err(Error::Data {
                            file: raw.file.clone(),
                            row: Some(row + 1),
                            line: raw.line_of(row),
                            column: Some(c.name.clone()),
                            message: format!("the value is not {}", codec.expected()),
                        });
                    }
                    if kind_error {
                        return Err(Error::column(&raw.file, &c.name, "holds text where numbers were expected"));
                    }
                    Ok(if numeric { Read::Num(nums) } else { Read::Cat(cats) })
                };
                let t = read(train, false)?;
                let h = read(holdout, false)?;
                let s = read(synthetic, true)?;
                let to_values = |r: Read| match r {
                    Read::Num(v) => Values::Num(v),
                    Read::Cat(v) => Values::Cat(v),
                };
                let (lo, hi) = match &t {
                    Read::Num(v) => v.iter().filter(|x| !x.is_nan()).fold((f64::NAN, f64::NAN), |(lo, hi), &x| {
                        (if lo.is_nan() || x < lo { x } else { lo }, if hi.is_nan() || x > hi { x } else { hi })
                    }),
                    Read::Cat(_) => (f64::NAN, f64::NAN),
                };
                let col = AuditColumn {
                    name: c.name.clone(),
                    kind: c.kind,
                    role: c.role,
                    labels: if numeric { Vec::new() } else { labels },
                    lo,
                    hi,
                };
                Ok((col, [to_values(t), to_values(h), to_values(s)], out_of_domain))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut columns = Vec::new();
        let (mut t, mut h, mut s) = (Vec::new(), Vec::new(), Vec::new());
        let mut ood = Vec::new();
        for (col, [a, b, c], o) in per_column {
            columns.push(col);
            t.push(a);
            h.push(b);
            s.push(c);
            ood.push(o);
        }
        let frame = |raw: &RawTable, cols: Vec<Values>| Frame { file: raw.file.clone(), rows: raw.df.height(), cols };
        Ok(Frames {
            columns,
            train: frame(train, t),
            holdout: frame(holdout, h),
            synthetic: frame(synthetic, s),
            synthetic_out_of_domain: ood,
        })
    }

    /// Indices of the named columns; an unknown or unaudited name is a usage error.
    pub fn indices(&self, names: &[String], flag: &str) -> Result<Vec<usize>> {
        names
            .iter()
            .map(|n| {
                self.columns.iter().position(|c| &c.name == n).ok_or_else(|| {
                    let known: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
                    Error::Usage(format!(
                        "{flag}: column {n:?} is not an audited column (identifier and text columns are not audited). Audited: {}",
                        known.join(", ")
                    ))
                })
            })
            .collect()
    }
}

/// Numeric bin edges taken from the train table, shared by every table binned with them.
#[derive(Debug, Clone)]
pub enum Binning {
    /// `edges` are interior cut points; a value's bin = number of edges <= value; missing gets
    /// the bin after the last (never shared with the maximum).
    Cuts(Vec<f64>),
    /// Categorical: the code itself (missing = code 0, its own bin).
    Codes(usize),
}

impl Binning {
    /// 10 equal-width bins over train's range, outer edges open (SDMetrics' pair trends,
    /// with the bins shared as intended).
    pub fn equal_width(col: &AuditColumn, n: usize) -> Binning {
        if !col.is_numeric() {
            return Binning::Codes(col.labels.len());
        }
        if !(col.hi > col.lo) {
            return Binning::Cuts(Vec::new());
        }
        let w = (col.hi - col.lo) / n as f64;
        Binning::Cuts((1..n).map(|i| col.lo + w * i as f64).collect())
    }

    /// Cuts at train's deciles (deduplicated), as SDNist's k-marginal bins.
    pub fn deciles(col: &AuditColumn, train: &Values) -> Binning {
        match train {
            Values::Cat(_) => Binning::Codes(col.labels.len()),
            Values::Num(v) => {
                let mut x: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
                x.sort_by(f64::total_cmp);
                let mut cuts: Vec<f64> = Vec::new();
                if !x.is_empty() {
                    for q in 1..10 {
                        let c = x[((q as f64 / 10.0) * (x.len() - 1) as f64).round() as usize];
                        if cuts.last() != Some(&c) && c > x[0] {
                            cuts.push(c);
                        }
                    }
                }
                Binning::Cuts(cuts)
            }
        }
    }

    /// Number of bins including the missing bin.
    pub fn size(&self) -> usize {
        match self {
            Binning::Cuts(c) => c.len() + 2,
            Binning::Codes(n) => (*n).max(1),
        }
    }

    pub fn bin(&self, v: &Values) -> Vec<u32> {
        match (self, v) {
            (Binning::Codes(_), Values::Cat(c)) => c.clone(),
            (Binning::Cuts(cuts), Values::Num(x)) => x
                .iter()
                .map(|&x| if x.is_nan() { cuts.len() as u32 + 1 } else { cuts.partition_point(|&c| c <= x) as u32 })
                .collect(),
            // Kinds agree by construction (one column, one kind).
            (Binning::Codes(_), Values::Num(x)) => vec![0; x.len()],
            (Binning::Cuts(_), Values::Cat(c)) => vec![0; c.len()],
        }
    }

    /// Interval labels for plots.
    pub fn bin_labels(&self, col: &AuditColumn) -> Vec<String> {
        match self {
            Binning::Codes(n) => (0..*n as u32).map(|c| col.label(c).to_string()).collect(),
            Binning::Cuts(cuts) => {
                let mut out = Vec::new();
                // One rounding rule for every edge of the column: the smallest gap between
                // cuts sets the decimals (equal-width bins: their width).
                let width = cuts.windows(2).map(|w| w[1] - w[0]).fold(f64::INFINITY, f64::min);
                let width = if width.is_finite() { width } else { (col.hi - col.lo).abs() };
                for i in 0..=cuts.len() {
                    out.push(match (i.checked_sub(1).map(|j| cuts[j]), cuts.get(i)) {
                        (None, Some(b)) => format!("< {}", col.show_edge(*b, width)),
                        (Some(a), Some(b)) => format!("[{}, {})", col.show_edge(a, width), col.show_edge(*b, width)),
                        (Some(a), None) => format!(">= {}", col.show_edge(a, width)),
                        (None, None) => "all".to_string(),
                    });
                }
                out.push("(missing)".into());
                out
            }
        }
    }
}

/// Binned copies of the three frames under one binning per column.
pub struct Binned {
    pub sizes: Vec<usize>,
    pub train: Vec<Vec<u32>>,
    pub holdout: Vec<Vec<u32>>,
    pub synthetic: Vec<Vec<u32>>,
    pub binnings: Vec<Binning>,
}

impl Binned {
    pub fn new(f: &Frames, binnings: Vec<Binning>) -> Binned {
        let bin = |fr: &Frame| fr.cols.par_iter().zip(&binnings).map(|(v, b)| b.bin(v)).collect::<Vec<_>>();
        Binned {
            sizes: binnings.iter().map(Binning::size).collect(),
            train: bin(&f.train),
            holdout: bin(&f.holdout),
            synthetic: bin(&f.synthetic),
            binnings,
        }
    }
}

/// Values scaled for Gower distance, as one f32 per cell, so that the distance of two rows is
/// `mean_c min(|a_c - b_c|, 1)` for every column kind:
/// - numeric: (x - lo_T) / range_T, so `|a - b|` is the range-normalised difference (train's
///   range for every reference, unlike SDMetrics); a column constant in train compares by
///   equality;
/// - categorical: 2 x code, so different codes differ by at least 2 (clipped to 1);
/// - missing: a far sentinel, so missing vs missing is 0 and missing vs a value is 1.
///
/// `tables` are the same column in several tables; they are scaled alike.
pub fn gower_scaled(col: &AuditColumn, tables: &[&Values]) -> Vec<Vec<f32>> {
    const MISSING: f32 = 1.0e30;
    let range = col.hi - col.lo;
    // Equality-only numeric columns: distinct values (over all tables) -> distinct even ranks.
    let mut distinct: Vec<u64> = Vec::new();
    if !(range > 0.0) {
        for v in tables {
            if let Values::Num(x) = v {
                distinct.extend(x.iter().filter(|x| !x.is_nan()).map(|&x| canonical_bits(x)));
            }
        }
        distinct.sort_unstable();
        distinct.dedup();
    }
    tables
        .iter()
        .map(|v| match v {
            Values::Cat(c) => c.iter().map(|&c| if c == 0 { MISSING } else { 2.0 * c as f32 }).collect(),
            Values::Num(x) if range > 0.0 => {
                x.iter().map(|&x| if x.is_nan() { MISSING } else { ((x - col.lo) / range) as f32 }).collect()
            }
            Values::Num(x) => x
                .iter()
                .map(|&x| match distinct.binary_search(&canonical_bits(x)) {
                    _ if x.is_nan() => MISSING,
                    Ok(r) => 2.0 * r as f32,
                    Err(_) => MISSING,
                })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::decimals_for;

    #[test]
    fn bin_edge_decimals_show_two_significant_digits_of_the_width() {
        assert_eq!(decimals_for(3.6), 1);
        assert_eq!(decimals_for(26.8), 0);
        assert_eq!(decimals_for(10.0), 0);
        assert_eq!(decimals_for(0.62), 2);
        assert_eq!(decimals_for(0.027), 3);
        assert_eq!(decimals_for(1e-30), 10);
        assert_eq!(decimals_for(0.0), 0);
        assert_eq!(decimals_for(f64::NAN), 0);
    }
}
