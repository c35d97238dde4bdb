//! The discrete domain: every modelled column becomes codes `0..k` (plus a null code).
//!
//! [`column`] codes one column (categories by their list; numbers, dates and datetimes by the
//! bins of the schema's domain); [`TableCodec`] codes a table's modelled columns. Decoding turns
//! a code back into a value: the category, or a uniform draw from the bin at the column's
//! precision (integers, whole days, whole seconds, or `precision` decimals). The encoded table is
//! the only form of the real data that the counting code sees.

pub mod column;

use polars::prelude::*;
use rand::{Rng, RngExt};
use rayon::prelude::*;

use privsynth_privacy::Sensitive;
use privsynth_privacy::bounding::ContributionBound;

use crate::data::RawTable;
use crate::error::{Error, Result};
pub use crate::schema::Cell;
pub use crate::schema::domain::ColumnDomain;
use crate::schema::{OutOfDomain, Table};
pub use column::{ColumnCodec, Note, Problem};

/// The codecs of a table's modelled columns, in schema order.
#[derive(Debug, Clone)]
pub struct TableCodec {
    pub table: String,
    pub columns: Vec<ColumnCodec>,
}

/// One column of codes, stored in the narrowest integer its domain allows (one byte for up to
/// 256 codes, two for up to 65,536): a 100M-row table of small domains takes 100 MB a column.
#[derive(Clone)]
pub enum CodeColumn {
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
}

impl CodeColumn {
    /// An empty column for codes below `size`, with room for `cap` rows.
    pub fn for_size(size: usize, cap: usize) -> CodeColumn {
        if size <= 1 << 8 {
            CodeColumn::U8(Vec::with_capacity(cap))
        } else if size <= 1 << 16 {
            CodeColumn::U16(Vec::with_capacity(cap))
        } else {
            CodeColumn::U32(Vec::with_capacity(cap))
        }
    }

    /// Codes below `size` (the caller's domain), stored narrowly.
    pub fn from_codes(size: usize, codes: &[u32]) -> CodeColumn {
        let mut c = CodeColumn::for_size(size, codes.len());
        c.extend(codes.iter().copied());
        c
    }

    pub fn len(&self) -> usize {
        match self {
            CodeColumn::U8(v) => v.len(),
            CodeColumn::U16(v) => v.len(),
            CodeColumn::U32(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Append codes; each must be below the column's size (checked by the caller's codec).
    pub fn extend(&mut self, codes: impl Iterator<Item = u32>) {
        match self {
            CodeColumn::U8(v) => v.extend(codes.map(|c| c as u8)),
            CodeColumn::U16(v) => v.extend(codes.map(|c| c as u16)),
            CodeColumn::U32(v) => v.extend(codes),
        }
    }

    /// Keep the rows `kept` (ascending), in place.
    pub fn retain_rows(&mut self, kept: &[usize]) {
        fn keep<T: Copy>(v: &mut Vec<T>, kept: &[usize]) {
            for (j, &i) in kept.iter().enumerate() {
                v[j] = v[i];
            }
            v.truncate(kept.len());
            v.shrink_to_fit();
        }
        match self {
            CodeColumn::U8(v) => keep(v, kept),
            CodeColumn::U16(v) => keep(v, kept),
            CodeColumn::U32(v) => keep(v, kept),
        }
    }

    /// The code of row `i`.
    pub fn get(&self, i: usize) -> u32 {
        match self {
            CodeColumn::U8(v) => v[i] as u32,
            CodeColumn::U16(v) => v[i] as u32,
            CodeColumn::U32(v) => v[i],
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        match self {
            CodeColumn::U8(v) => v.len(),
            CodeColumn::U16(v) => v.len() * 2,
            CodeColumn::U32(v) => v.len() * 4,
        }
    }
}

/// The encoded real data: one code column per modelled column, over the rows that count, with
/// the contribution bound those rows satisfy.
///
/// Codes are stored compactly ([`CodeColumn`]) and shared: [`EncodedTable::remap`] (MST's
/// domain compression) makes a view with a code map per column instead of a second copy.
/// Holds private data, so it is deliberately neither `Serialize` nor printable beyond its shape.
pub struct EncodedTable {
    names: Vec<String>,
    sizes: Vec<usize>,
    store: std::sync::Arc<Vec<CodeColumn>>,
    /// Per column, stored code -> code of this view (`None`: the stored codes themselves).
    maps: Option<std::sync::Arc<Vec<Vec<u32>>>>,
    /// Number of codes of the stored columns (before `maps`).
    base_sizes: Vec<usize>,
    rows: usize,
    /// Most rows one privacy unit contributes (1 when a row is a unit; k after contribution
    /// bounding). Every mechanism scales its sensitivity by it.
    bound: ContributionBound,
}

impl std::fmt::Debug for EncodedTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EncodedTable({} columns, domain sizes {:?})", self.names.len(), self.sizes)
    }
}

impl EncodedTable {
    /// A table from its code columns (in `names` order, equal lengths), whose rows satisfy
    /// `bound` (the linked streamed derivation assembles its event models column by column).
    pub fn from_columns(
        names: Vec<String>,
        sizes: Vec<usize>,
        store: Vec<CodeColumn>,
        bound: ContributionBound,
    ) -> Result<Self> {
        let rows = store.first().map_or(0, CodeColumn::len);
        if names.len() != store.len() || sizes.len() != store.len() || store.iter().any(|c| c.len() != rows) {
            return Err(Error::Internal("code columns of different lengths or count".into()));
        }
        Ok(EncodedTable::from_store(names, sizes, store, bound))
    }

    fn from_store(names: Vec<String>, sizes: Vec<usize>, store: Vec<CodeColumn>, bound: ContributionBound) -> Self {
        let rows = store.first().map_or(0, CodeColumn::len);
        EncodedTable {
            names,
            base_sizes: sizes.clone(),
            sizes,
            store: std::sync::Arc::new(store),
            maps: None,
            rows,
            bound,
        }
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }
    /// Number of codes of each column (including its null code).
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }
    /// Row count of the real table; private (only DP estimates of it may be released).
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Most rows one privacy unit contributes: the L1/L2 sensitivity of a count vector.
    pub fn unit_rows(&self) -> i64 {
        self.bound.count_sensitivity()
    }
    pub fn bound(&self) -> ContributionBound {
        self.bound
    }
    /// Declare the bound the rows satisfy. The bound is a value only contribution bounding
    /// makes (or the row-is-unit bound), so a caller cannot state a smaller one than was applied.
    pub fn with_bound(mut self, bound: ContributionBound) -> EncodedTable {
        self.bound = bound;
        self
    }
    /// Codes of column `i`, copied out (for tests and evaluation; the counting code reads
    /// [`EncodedTable::column`] and [`EncodedTable::lookup`]).
    pub fn codes(&self, i: usize) -> Vec<u32> {
        let col = &self.store[i];
        match &self.maps {
            None => (0..self.rows).map(|r| col.get(r)).collect(),
            Some(m) => (0..self.rows).map(|r| m[i][col.get(r) as usize]).collect(),
        }
    }
    /// The code of column `i` in row `r` (one cell; [`EncodedTable::codes`] copies a column).
    pub fn code(&self, i: usize, r: usize) -> u32 {
        let c = self.store[i].get(r);
        match &self.maps {
            None => c,
            Some(m) => m[i][c as usize],
        }
    }
    /// The stored codes of column `i`, before the view's map ([`EncodedTable::lookup`]).
    /// For the counting code only.
    pub fn column(&self, i: usize) -> &CodeColumn {
        &self.store[i]
    }
    /// Column `i`'s stored code -> code of this table, times `scale`: the lookup table the
    /// counting kernels add up into cell indices.
    pub fn lookup(&self, i: usize, scale: usize) -> Vec<usize> {
        match &self.maps {
            None => (0..self.base_sizes[i]).map(|c| c * scale).collect(),
            Some(m) => m[i].iter().map(|&c| c as usize * scale).collect(),
        }
    }
    /// Bytes of codes held (shared between a table and its remapped views).
    pub fn bytes(&self) -> usize {
        self.store.iter().map(CodeColumn::bytes).sum()
    }

    /// The table with each column's codes mapped through `maps[i]` (new sizes `sizes`), e.g.
    /// to merge rare values. A view over the same codes (no copy); as private as the input.
    pub fn remap(&self, maps: &[Vec<u32>], sizes: &[usize]) -> EncodedTable {
        let composed: Vec<Vec<u32>> = match &self.maps {
            None => maps.to_vec(),
            Some(old) => old.iter().zip(maps).map(|(o, m)| o.iter().map(|&c| m[c as usize]).collect()).collect(),
        };
        EncodedTable {
            names: self.names.clone(),
            sizes: sizes.to_vec(),
            store: self.store.clone(),
            maps: Some(std::sync::Arc::new(composed)),
            base_sizes: self.base_sizes.clone(),
            rows: self.rows,
            bound: self.bound,
        }
    }

    /// A table of codes that are not private (synthetic records), for evaluation.
    pub fn from_synthetic(names: Vec<String>, sizes: Vec<usize>, codes: Vec<Vec<u32>>) -> EncodedTable {
        let store = codes.iter().zip(&sizes).map(|(c, &s)| CodeColumn::from_codes(s, c)).collect();
        EncodedTable::from_store(names, sizes, store, ContributionBound::ROW_IS_UNIT)
    }
}

/// Encoded rows appended batch by batch (the streaming reader's accumulator): only codes are
/// kept, never the raw cells.
pub struct EncodedBuilder {
    names: Vec<String>,
    sizes: Vec<usize>,
    store: Vec<CodeColumn>,
}

impl EncodedBuilder {
    pub fn new(codec: &TableCodec) -> EncodedBuilder {
        let sizes = codec.sizes();
        EncodedBuilder {
            names: codec.names(),
            store: sizes.iter().map(|&s| CodeColumn::for_size(s, 0)).collect(),
            sizes,
        }
    }

    /// Rows appended so far.
    pub fn len(&self) -> usize {
        self.store.first().map_or(0, CodeColumn::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Append the rows `idx` of a batch's encoding (valid rows only; checked).
    pub fn push(&mut self, enc: &Encoding, idx: &[usize]) -> Result<()> {
        if let Some(&bad) = idx.iter().find(|&&i| !enc.valid.get(i).copied().unwrap_or(false)) {
            return Err(Error::Internal(format!(
                "row {} was selected for counting but does not fit the schema",
                bad + 1
            )));
        }
        for (col, codes) in self.store.iter_mut().zip(&enc.codes) {
            col.extend(idx.iter().map(|&i| codes[i]));
        }
        Ok(())
    }

    /// Append the rows `idx` of a batch's encoding whether they fit or not (a bad cell's code is
    /// 0): for callers that decide which rows count before knowing which fit, and remove the
    /// rows that do not fit with [`EncodedBuilder::retain`] before [`EncodedBuilder::finish`].
    pub fn push_any(&mut self, enc: &Encoding, idx: &[usize]) {
        for (col, codes) in self.store.iter_mut().zip(&enc.codes) {
            col.extend(idx.iter().map(|&i| codes[i]));
        }
    }

    /// The code columns appended so far (in the codec's order), with their names and sizes.
    pub fn into_columns(self) -> (Vec<String>, Vec<usize>, Vec<CodeColumn>) {
        (self.names, self.sizes, self.store)
    }

    /// Keep only the rows `kept` (ascending indices of appended rows), in place.
    pub fn retain(&mut self, kept: &[usize]) {
        for c in &mut self.store {
            c.retain_rows(kept);
        }
    }

    /// The table, whose rows satisfy `bound`.
    pub fn finish(mut self, bound: ContributionBound) -> EncodedTable {
        for c in &mut self.store {
            match c {
                CodeColumn::U8(v) => v.shrink_to_fit(),
                CodeColumn::U16(v) => v.shrink_to_fit(),
                CodeColumn::U32(v) => v.shrink_to_fit(),
            }
        }
        EncodedTable::from_store(self.names, self.sizes, self.store, bound)
    }
}

/// What encoding did to cells that did not fit, per column: exact counts of the real data, so
/// they stay [`Sensitive`] and reach the data holder only on request.
#[derive(Debug, Clone, Default)]
pub struct EncodeNotes {
    /// (column, clipped, nulled, dropped): cells moved to a bound, made missing, or whose row was
    /// left out.
    pub columns: Vec<(String, usize, usize, usize)>,
    /// Rows left out (a row with several bad cells counts once).
    pub rows_dropped: usize,
}

impl EncodeNotes {
    /// Add another batch's notes (same columns, same order).
    pub fn add(&mut self, other: &EncodeNotes) {
        if self.columns.is_empty() {
            self.columns = other.columns.iter().map(|(n, _, _, _)| (n.clone(), 0, 0, 0)).collect();
        }
        for (a, b) in self.columns.iter_mut().zip(&other.columns) {
            a.1 += b.1;
            a.2 += b.2;
            a.3 += b.3;
        }
        self.rows_dropped += other.rows_dropped;
    }

    /// One line per column that had cells outside the domain, for the data holder.
    pub fn lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .columns
            .iter()
            .filter(|c| c.1 + c.2 + c.3 > 0)
            .map(|(n, c, u, d)| format!("column {n:?}: {c} cell(s) clipped, {u} made missing, {d} dropped their row"))
            .collect();
        if self.rows_dropped > 0 {
            out.push(format!("{} row(s) left out of the fit in all (out_of_domain policy)", self.rows_dropped));
        }
        out
    }
}

/// Every row of a raw table coded, and which rows fit (the others are left out by the
/// `drop` policy). Rows are chosen from it by [`Encoding::select`] once bounding has decided
/// which count.
pub struct Encoding {
    names: Vec<String>,
    sizes: Vec<usize>,
    codes: Vec<Vec<u32>>,
    valid: Vec<bool>,
    notes: EncodeNotes,
}

impl Encoding {
    /// Rows of the raw table (valid or not).
    pub fn len(&self) -> usize {
        self.valid.len()
    }
    pub fn is_empty(&self) -> bool {
        self.valid.is_empty()
    }
    /// Whether row `i` fit the schema (or was clipped or nulled into it).
    pub fn is_valid(&self, i: usize) -> bool {
        self.valid[i]
    }
    /// The rows `idx` (indices of valid raw rows), which satisfy `bound`.
    pub fn select(&self, idx: &[usize], bound: ContributionBound) -> Result<EncodedTable> {
        if let Some(&bad) = idx.iter().find(|&&i| !self.valid.get(i).copied().unwrap_or(false)) {
            return Err(Error::Internal(format!(
                "row {} was selected for counting but does not fit the schema",
                bad + 1
            )));
        }
        let store = self
            .codes
            .iter()
            .zip(&self.sizes)
            .map(|(col, &s)| {
                let mut c = CodeColumn::for_size(s, idx.len());
                c.extend(idx.iter().map(|&i| col[i]));
                c
            })
            .collect();
        Ok(EncodedTable::from_store(self.names.clone(), self.sizes.clone(), store, bound))
    }
    /// The codes of column `i` for every row (0 for a bad cell of an invalid row).
    pub fn column_codes(&self, i: usize) -> &[u32] {
        &self.codes[i]
    }
    /// Every valid row, each its own unit.
    pub fn valid_rows(&self) -> Vec<usize> {
        (0..self.valid.len()).filter(|&i| self.valid[i]).collect()
    }
    /// The exact notes, kept sensitive.
    pub fn notes(&self) -> Sensitive<EncodeNotes> {
        Sensitive::new(self.notes.clone())
    }
}

impl TableCodec {
    /// The modelled columns' names, in code order.
    pub fn names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }

    /// The modelled columns' numbers of codes (null code included), in code order.
    pub fn sizes(&self) -> Vec<usize> {
        self.columns.iter().map(ColumnCodec::size).collect()
    }

    pub fn new(table: &Table) -> Result<TableCodec> {
        let columns = table
            .columns
            .iter()
            .filter(|c| c.is_modelled())
            .map(|c| {
                ColumnCodec::new(table, c)
                    .map_err(|m| Error::schema(format!("table {:?}", table.name), format!("column {:?}: {m}", c.name)))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(TableCodec { table: table.name.clone(), columns })
    }

    /// Encode every row of a table under each column's out-of-domain policy: `drop` (and
    /// `clip` for cells that cannot be clipped) marks the row invalid, `null` codes the cell as
    /// missing, `error` stops at the first cell that does not fit. The error names the file,
    /// row and column but not the value (see [`crate::error`]).
    pub fn encode_all(&self, raw: &RawTable) -> Result<Encoding> {
        let rows = raw.df.height();
        let per_column = self
            .columns
            .par_iter()
            .map(|c| {
                let s = raw.series(&c.name)?;
                let mut first: Option<(usize, Problem)> = None;
                let mut bad: Vec<(usize, Problem)> = vec![];
                let (mut clipped, mut nulled) = (0usize, 0usize);
                let strict = c.policy == OutOfDomain::Error;
                let mut codes = c
                    .encode_series(s, |row, n| match n {
                        Note::Problem(p) if strict || (p == Problem::Type && c.zoned()) => {
                            first = Some((row, p));
                            false
                        }
                        Note::Problem(p) => {
                            bad.push((row, p));
                            true
                        }
                        Note::Clipped => {
                            clipped += 1;
                            true
                        }
                        Note::Nulled => {
                            nulled += 1;
                            true
                        }
                    })
                    .map_err(|_| Error::unreadable_column(&raw.file, &c.name, c.kind, s.dtype()))?;
                if let Some((row, p)) = first {
                    if p == Problem::Type && c.zoned() {
                        return Err(Error::Data {
                            file: raw.file.clone(),
                            row: Some(raw.first_row() + row + 1),
                            line: raw.line_of(row),
                            column: Some(c.name.clone()),
                            message: format!(
                                "the value is not {}. A column with a time zone refuses such values whatever \
                                 its out-of-domain policy (mixed or zone-less times would shift silently). (The \
                                 value is not shown here; run `privsynth schema check` to list the offending \
                                 values, then add the offsets or remove `timezone` from the schema.)",
                                c.expected()
                            ),
                        });
                    }
                    let what = match p {
                        Problem::Type => format!("the value is not {}", c.expected()),
                        Problem::OutOfDomain => format!("the value is outside the declared domain ({})", c.expected()),
                        Problem::Null => "the value is missing but the column is not nullable".into(),
                    };
                    return Err(Error::Data {
                        file: raw.file.clone(),
                        row: Some(raw.first_row() + row + 1),
                        line: raw.line_of(row),
                        column: Some(c.name.clone()),
                        message: format!(
                            "{what}, and the column's out-of-domain policy is `error` (strict: outside the DP \
                             guarantee). (The value is not shown here; run `privsynth schema check` to list the \
                             offending values, then fix the data or the schema, or choose `drop`, `clip` or `null`.)"
                        ),
                    });
                }
                // A cell of the wrong type under the `null` policy becomes missing like a value
                // outside the domain; every other problem leaves its row out.
                let mut dropped: Vec<usize> = Vec::with_capacity(bad.len());
                for (row, p) in bad {
                    match (p, c.policy, c.null_code()) {
                        (Problem::Type, OutOfDomain::Null, Some(null)) => {
                            codes[row] = null;
                            nulled += 1;
                        }
                        _ => dropped.push(row),
                    }
                }
                Ok((codes, dropped, clipped, nulled))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut valid = vec![true; rows];
        let mut columns = Vec::with_capacity(self.columns.len());
        let mut codes = Vec::with_capacity(self.columns.len());
        for (c, (col_codes, dropped, clipped, nulled)) in self.columns.iter().zip(per_column) {
            for &r in &dropped {
                valid[r] = false;
            }
            columns.push((c.name.clone(), clipped, nulled, dropped.len()));
            codes.push(col_codes);
        }
        let rows_dropped = valid.iter().filter(|v| !**v).count();
        Ok(Encoding {
            names: self.names(),
            sizes: self.sizes(),
            codes,
            valid,
            notes: EncodeNotes { columns, rows_dropped },
        })
    }

    /// Encode the rows of a table that fit (see [`TableCodec::encode_all`]), each row its own
    /// unit: for tables without a privacy-unit column, and for synthetic or derived rows.
    pub fn encode(&self, raw: &RawTable) -> Result<EncodedTable> {
        let all = self.encode_all(raw)?;
        all.select(&all.valid_rows(), ContributionBound::ROW_IS_UNIT)
    }

    /// Decode code columns (in codec order) into a data frame.
    pub fn decode(&self, codes: &[Vec<u32>], rng: &mut impl Rng) -> Result<DataFrame> {
        if codes.len() != self.columns.len() {
            return Err(Error::Internal(format!("{} code columns for {} codecs", codes.len(), self.columns.len())));
        }
        let height = codes.first().map_or(0, Vec::len);
        // Columns are decoded in parallel, each with its own generator seeded from `rng`, so
        // the result depends on the seed only, not on the threads.
        let seeds: Vec<u64> = self.columns.iter().map(|_| rng.random()).collect();
        let cols = self
            .columns
            .par_iter()
            .zip(codes)
            .zip(seeds)
            .map(|((c, v), seed)| c.decode(v, &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed)))
            .collect::<Result<Vec<_>>>()?;
        DataFrame::new(height, cols).map_err(Error::polars)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Schema;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    /// Every kind of column and binning the schema supports.
    const ALL_KINDS: &str = r#"
version: 1
tables:
  - name: t
    missing_values: ["?"]
    columns:
      - {name: cat, type: categorical, nullable: true, domain: {categories: [a, b, "4"]}}
      - {name: flag, type: boolean}
      - {name: n_each, type: integer, domain: {bounds: [-3, 7]}}
      - {name: n_bins, type: integer, nullable: true, domain: {bounds: [0, 100], bins: 7}, out_of_domain: clip}
      - {name: n_edges, type: integer, domain: {bounds: [0, 99999], edges: [0, 1, 1000, 5000, 99999]}}
      - {name: x, type: float, domain: {bounds: [0, 1], bins: 10}}
      - {name: x_prec, type: float, precision: 1, domain: {bounds: [0, 6.2], bins: 4}, out_of_domain: clip}
      - {name: x_edges, type: float, precision: 2, domain: {bounds: [-1.5, 2.5], edges: [-1.5, 0, 0.25, 2.5]}}
      - {name: d_month, type: date, domain: {bounds: [2019-11-15, 2021-02-03], granularity: month}}
      - {name: d_year, type: date, nullable: true, domain: {bounds: [1900-01-01, 2025-12-31], granularity: year}, out_of_domain: null}
      - {name: d_bins, type: date, format: "%d/%m/%Y", domain: {bounds: [2020-01-01, 2020-12-31], bins: 5}}
      - {name: d_week, type: date, domain: {bounds: [2024-01-03, 2024-03-01], granularity: week}}
      - {name: ts_hour, type: datetime, domain: {bounds: ["2024-01-01T00:00:00", "2024-01-02T23:59:59"], granularity: hour}}
      - {name: ts_quarter, type: datetime, domain: {bounds: ["2020-02-10T12:00:00", "2023-01-01T00:00:00"], granularity: quarter}}
      - {name: id, type: identifier, role: identifier}
      - {name: note, type: text}
"#;

    fn codec() -> TableCodec {
        let s = Schema::from_yaml(ALL_KINDS, "kinds.yaml").unwrap();
        TableCodec::new(s.table(None).unwrap()).unwrap()
    }

    fn raw(df: DataFrame) -> RawTable {
        RawTable::for_tests("mem.csv", df)
    }

    #[test]
    fn domain_sizes_follow_the_schema() {
        let c = codec();
        let sizes: Vec<(String, usize)> = c.columns.iter().map(|c| (c.name.clone(), c.size())).collect();
        let get = |n: &str| sizes.iter().find(|(m, _)| m == n).unwrap().1;
        assert_eq!(get("cat"), 4); // 3 categories + null
        assert_eq!(get("flag"), 2);
        assert_eq!(get("n_each"), 11);
        assert_eq!(get("n_bins"), 8);
        assert_eq!(get("n_edges"), 4);
        assert_eq!(get("d_month"), 16); // Nov 2019 .. Feb 2021
        assert_eq!(get("d_year"), 127); // 126 years + null
        assert_eq!(get("d_week"), 9); // Mon 2024-01-01 .. week of 2024-02-26
        assert_eq!(get("ts_hour"), 48);
        assert_eq!(get("ts_quarter"), 13); // 2020Q1 .. 2022Q4, plus the single second of 2023Q1 the bound includes
        assert!(c.columns.iter().all(|c| c.name != "id" && c.name != "note"), "identifiers and text are not encoded");
    }

    /// Decode random codes, re-encode the values: every decoded value lies in its code's bin
    /// (so the codes come back unchanged) and inside the schema's bounds.
    #[test]
    fn decode_then_encode_is_the_identity_on_codes() {
        let c = codec();
        let mut rng = StdRng::seed_from_u64(7);
        let n = 5000;
        let codes: Vec<Vec<u32>> =
            c.columns.iter().map(|col| (0..n).map(|_| rng.random_range(0..col.size() as u32)).collect()).collect();
        let df = c.decode(&codes, &mut rng).unwrap();
        assert_eq!(df.height(), n);
        let enc = c.encode(&raw(df.clone())).unwrap();
        for (i, col) in c.columns.iter().enumerate() {
            assert_eq!(enc.codes(i), &codes[i][..], "column {}", col.name);
            assert!(enc.codes(i).iter().all(|&k| (k as usize) < col.size()));
        }
        // Values also respect precision: at most one decimal for x_prec.
        let xp = df.column("x_prec").unwrap().f64().unwrap().clone();
        for v in xp.into_no_null_iter() {
            assert!((v * 10.0 - (v * 10.0).round()).abs() < 1e-9 && (0.0..=6.2).contains(&v), "{v}");
        }
        // Bins are drawn from uniformly: each of the 11 integers of n_each appears, and no integer
        // inside a 15-value bin of n_bins is starved.
        let ne = df.column("n_each").unwrap().i64().unwrap().clone();
        let distinct: std::collections::HashSet<i64> = ne.into_no_null_iter().collect();
        assert_eq!(distinct.len(), 11);
    }

    #[test]
    fn decoded_values_cover_the_whole_bin_uniformly() {
        // n_bins bin 0 is [0, 101/7) -> integers 0..=14: 15 values, each ~1/15 of draws.
        let c = codec();
        let col = c.columns.iter().find(|c| c.name == "n_bins").unwrap();
        let mut rng = StdRng::seed_from_u64(11);
        let draws = 30_000;
        let out = col.decode(&vec![0u32; draws], &mut rng).unwrap();
        let mut counts = [0usize; 15];
        for v in out.i64().unwrap().into_no_null_iter() {
            counts[v as usize] += 1;
        }
        // Chi-square with 14 df: the 0.999 quantile is 36.12.
        let e = draws as f64 / 15.0;
        let chi2: f64 = counts.iter().map(|&o| (o as f64 - e).powi(2) / e).sum();
        assert!(chi2 < 36.12, "chi2 {chi2}, counts {counts:?}");
    }

    #[test]
    fn text_cells_are_coded_by_the_schema() {
        let c = codec();
        let df = df![
            "cat" => [Some("a"), Some(" b "), Some("4.0"), Some("?"), None],
            "flag" => ["yes", "F", "1", "false", "T"],
            "n_each" => ["-3", "7", "7.0", "0", "1"],
            "n_bins" => ["0", "100", "250", "-5", ""],
            "n_edges" => ["0", "1", "999", "1000", "99999"],
            "x" => ["0", "1", "0.999", "0.1", "0.5"],
            "x_prec" => ["0", "6.2", "9", "3.1", "1.55"],
            "x_edges" => ["-1.5", "0", "0.25", "2.5", "0.2499"],
            "d_month" => ["2019-11-15", "2019-12-01", "2021-02-03", "2020-01-31", "2020-02-01"],
            "d_year" => ["1900-01-01", "2025-12-31", "1850-06-01", "", "1999-12-31"],
            "d_bins" => ["01/01/2020", "31/12/2020", "15/06/2020", "01/03/2020", "30/12/2020"],
            "d_week" => ["2024-01-03", "2024-01-07", "2024-01-08", "2024-03-01", "2024-02-26"],
            "ts_hour" => ["2024-01-01T00:00:00", "2024-01-01 00:59:59", "2024-01-01T01:00:00Z", "2024-01-02T23:59:59", "2024-01-02"],
            "ts_quarter" => ["2020-02-10T12:00:00", "2020-04-01T00:00:00", "2022-12-31T23:59:59", "2023-01-01T00:00:00", "2021-07-01"],
        ]
        .unwrap();
        let enc = c.encode(&raw(df)).unwrap();
        let col = |n: &str| enc.codes(enc.names().iter().position(|m| m == n).unwrap()).to_vec();
        assert_eq!(col("cat"), [0, 1, 2, 3, 3]);
        assert_eq!(col("flag"), [1, 0, 1, 0, 1]);
        assert_eq!(col("n_each"), [0, 10, 10, 3, 4]);
        assert_eq!(col("n_bins"), [0, 6, 6, 0, 7]); // clipped high and low; empty is the null code
        assert_eq!(col("n_edges"), [0, 1, 1, 2, 3]);
        assert_eq!(col("x"), [0, 9, 9, 1, 5]);
        assert_eq!(col("x_prec"), [0, 3, 3, 2, 1]); // 1.55 is the first edge: bins are [lo, hi)
        assert_eq!(col("x_edges"), [0, 1, 2, 2, 1]);
        assert_eq!(col("d_month"), [0, 1, 15, 2, 3]);
        assert_eq!(col("d_year"), [0, 125, 126, 126, 99]); // out of domain -> null (policy), empty -> null
        assert_eq!(col("d_bins"), [0, 4, 2, 0, 4]);
        assert_eq!(col("d_week"), [0, 0, 1, 8, 8]);
        assert_eq!(col("ts_hour"), [0, 0, 1, 47, 24]);
        assert_eq!(col("ts_quarter"), [0, 1, 11, 12, 6]);
    }

    #[test]
    fn first_bad_cell_is_named_without_its_value() {
        let c = codec();
        let mut cols: Vec<polars::prelude::Column> = c
            .columns
            .iter()
            .map(|col| {
                let v = c
                    .decode(&c.columns.iter().map(|_| vec![0u32; 3]).collect::<Vec<_>>(), &mut StdRng::seed_from_u64(1))
                    .unwrap();
                v.column(&col.name).unwrap().cast(&DataType::String).unwrap()
            })
            .collect();
        let i = cols.iter().position(|s| s.name() == "n_each").unwrap();
        cols[i] = Series::new("n_each".into(), ["1", "2", "secret-value"]).into();
        // Decoding writes ISO dates; this column reads its own format.
        let j = cols.iter().position(|s| s.name() == "d_bins").unwrap();
        cols[j] = Series::new("d_bins".into(), ["01/01/2020"; 3]).into();
        let df = DataFrame::new(3, cols).unwrap();
        // Default policy (drop): the row is left out and counted in the notes.
        let all = c.encode_all(&raw(df.clone())).unwrap();
        assert_eq!(all.valid_rows(), [0, 1], "{:?}", all.notes().disclose_to_data_holder());
        let notes = all.notes().disclose_to_data_holder();
        assert_eq!(notes.rows_dropped, 1);
        assert!(notes.columns.iter().any(|(n, _, _, d)| n == "n_each" && *d == 1));
        assert_eq!(c.encode(&raw(df.clone())).unwrap().rows(), 2);
        // Strict policy: the first bad cell stops the run, named without its value.
        let strict = Schema::from_yaml(
            &ALL_KINDS.replace("  - name: t\n", "  - name: t\n    out_of_domain: error\n"),
            "kinds.yaml",
        )
        .unwrap();
        let c = TableCodec::new(strict.table(None).unwrap()).unwrap();
        let e = c.encode(&raw(df)).unwrap_err().to_string();
        assert!(
            e.contains("mem.csv")
                && e.contains("row 3")
                && e.contains("\"n_each\"")
                && e.contains("an integer in [-3, 7]"),
            "{e}"
        );
        assert!(!e.contains("secret-value"), "values must not leak into errors: {e}");
    }

    #[test]
    fn policies_decide_each_row_alone() {
        // A wrong type: drop leaves the row out, null makes the cell missing, clip drops it
        // (a word cannot be clipped); missing in a non-nullable column drops the row.
        let s = Schema::from_yaml(
            "version: 1\ntables: [{name: t, columns: [\
             {name: d, type: integer, domain: {bounds: [0, 9]}},\
             {name: n, type: integer, nullable: true, out_of_domain: null, domain: {bounds: [0, 9]}},\
             {name: c, type: integer, out_of_domain: clip, domain: {bounds: [0, 9]}}]}]",
            "s",
        )
        .unwrap();
        let c = TableCodec::new(s.table(None).unwrap()).unwrap();
        let df = df![
            "d" => [Some("1"), Some("x"), Some("2"), Some("3"), None],
            "n" => ["1", "2", "y", "40", "5"],
            "c" => ["1", "2", "3", "99", "4"],
        ]
        .unwrap();
        let all = c.encode_all(&raw(df)).unwrap();
        assert_eq!(all.valid_rows(), [0, 2, 3]);
        let enc = all.select(&all.valid_rows(), ContributionBound::ROW_IS_UNIT).unwrap();
        assert_eq!(enc.codes(1), [1, 10, 10], "wrong type and out of domain -> null code");
        assert_eq!(enc.codes(2), [1, 3, 9], "99 clipped to 9");
        let notes = all.notes().disclose_to_data_holder();
        assert_eq!(
            notes.columns,
            vec![("d".to_string(), 0, 0, 2), ("n".to_string(), 0, 2, 0), ("c".to_string(), 1, 0, 0)]
        );
        // Selecting a row that does not fit is a bug, refused.
        assert!(all.select(&[1], ContributionBound::ROW_IS_UNIT).is_err());
    }

    #[test]
    fn native_typed_columns_encode_like_text() {
        let s = Schema::from_yaml(
            "version: 1\ntables: [{name: t, columns: [\
             {name: n, type: integer, domain: {bounds: [0, 9]}},\
             {name: d, type: date, domain: {bounds: [2020-01-01, 2020-12-31], granularity: month}},\
             {name: b, type: boolean}]}]",
            "s",
        )
        .unwrap();
        let c = TableCodec::new(s.table(None).unwrap()).unwrap();
        let dates = Series::new("d".into(), [18262i32, 18293, 18627]).cast(&DataType::Date).unwrap(); // 2020-01-01, 2020-02-01, 2020-12-31
        let df = DataFrame::new(
            3,
            vec![
                Series::new("n".into(), [0i64, 5, 9]).into(),
                dates.into(),
                Series::new("b".into(), [true, false, true]).into(),
            ],
        )
        .unwrap();
        let enc = c.encode(&raw(df)).unwrap();
        assert_eq!(enc.codes(0), [0, 5, 9]);
        assert_eq!(enc.codes(1), [0, 1, 11]);
        assert_eq!(enc.codes(2), [1, 0, 1]);
        let bad = DataFrame::new(
            1,
            vec![
                Series::new("n".into(), [2.5f64]).into(),
                Series::new("d".into(), [18262i32]).cast(&DataType::Date).unwrap().into(),
                Series::new("b".into(), [true]).into(),
            ],
        )
        .unwrap();
        // 2.5 is not an integer: the row is dropped under the default policy.
        assert_eq!(c.encode(&raw(bad)).unwrap().rows(), 0);
    }

    #[test]
    fn unusable_domains_are_refused() {
        for (yaml, needle) in [
            ("{name: a, type: integer, domain: {bounds: [0, 100000]}}", "one code per value"),
            ("{name: a, type: integer, domain: {bounds: [0, 3], bins: 8}}", "holds no value"),
            ("{name: a, type: float, precision: 0, domain: {bounds: [0, 1], bins: 4}}", "holds no value"),
            ("{name: a, type: date, domain: {bounds: [1900-01-01, 2020-01-01], granularity: day}}", "more than 4096"),
            ("{name: a, type: integer, domain: {bounds: [0, 10], edges: [0, 5, 5, 10]}}", "strictly increasing"),
            ("{name: a, type: integer, domain: {bounds: [0, 10], edges: [1, 10]}}", "equal the bounds"),
            ("{name: a, type: integer, domain: {bounds: [0, 10], bins: 2, granularity: day}}", "only one of"),
            ("{name: a, type: boolean, domain: {categories: [x]}}", "takes no domain"),
            ("{name: a, type: date, domain: {bounds: [2020-01-01, 2020-02-30], granularity: day}}", "is not a date"),
        ] {
            let text = format!("version: 1\ntables: [{{name: t, columns: [{yaml}]}}]");
            let e = Schema::from_yaml(&text, "s.yaml").unwrap_err().to_string();
            assert!(e.contains(needle), "{yaml}: expected {needle:?} in {e}");
        }
        let many: Vec<String> = (0..10_000).map(|i| format!("c{i}")).collect();
        let text = format!(
            "version: 1\ntables: [{{name: t, columns: [{{name: a, type: categorical, domain: {{categories: [{}]}}}}]}}]",
            many.join(",")
        );
        let e = Schema::from_yaml(&text, "s.yaml").unwrap_err().to_string();
        assert!(e.contains("10000 codes") && e.contains("column \"a\""), "{e}");
    }
}
