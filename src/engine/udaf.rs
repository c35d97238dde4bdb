//! `privsynth_counts(c_a, c_b, ...)`: a DataFusion aggregate function that counts many
//! attribute subsets of the encoded code columns in one pass over the rows, with no row
//! expansion (GROUPING SETS repeat each row once per set). Used by the counting plan
//! ([`super::datafusion`]); travels to Ballista executors through the codecs of
//! [`super::ballista`] as its subsets and domain sizes.
//!
//! The function's arguments are the code columns a query uses (UInt32, never null in the
//! counted rows); it holds each subset as positions into its arguments and each argument's
//! full domain size. The accumulator keeps, per subset, a dense vector of cell counts (cell =
//! the mixed-radix index of the subset's codes, its last column fastest, as
//! [`crate::marginals::strides`]) when the subset has at most [`DENSE_CELLS`] cells, else a map
//! of the cells seen. Partial states and the result are one binary blob of all subsets
//! ([`encode`]): the only thing that leaves an executor is counts. A code outside its
//! column's domain, or a null code, is an internal error (never a silent wrong count), and no
//! message carries a code or a count.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType as ArrowType, Field, FieldRef, UInt32Type};
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility};

use super::udf::{DfResult, INTERNAL};

/// A subset with at most this many cells is counted into a dense vector (8 bytes a cell per
/// partition), a larger one into a map of the cells its rows fall in.
pub const DENSE_CELLS: usize = 1 << 20;

/// Cells one query counts at most (a sparse subset counts as [`DENSE_CELLS`]): an accumulator
/// per partition holds up to 16 MB of dense counts, and its state (varint counts, 1 to 5
/// bytes a cell) stays under Ballista's default 16 MB gRPC message. Subsets beyond it go in
/// further queries. A sparse subset's state grows with the distinct cells a partition sees
/// instead (a few bytes each), so privsynth's Ballista sessions and executors take messages
/// up to `engine::ballista::MAX_MESSAGE_BYTES` (1 GiB); a state past that fails the query with
/// Ballista's error (not tested at that size here), never with a wrong count.
pub const CELLS_PER_QUERY: usize = 1 << 21;

/// The name the function is registered and shipped under.
const NAME: &str = "privsynth_counts";

fn internal(m: &str) -> DataFusionError {
    DataFusionError::Execution(format!("{INTERNAL}the counting function: {m}"))
}

/// The cells of a subset of columns with domain `sizes`; None past u128 (counted sparse with
/// a u128 cell index, so such a subset cannot be counted).
fn cells_of(sizes: impl IntoIterator<Item = usize>) -> Option<u128> {
    sizes.into_iter().try_fold(1u128, |n, s| n.checked_mul(s as u128))
}

/// What a query's budget of [`CELLS_PER_QUERY`] charges for a subset of domain `sizes`.
pub fn query_cells(sizes: impl IntoIterator<Item = usize>) -> usize {
    match cells_of(sizes) {
        Some(c) if c <= DENSE_CELLS as u128 => c as usize,
        _ => DENSE_CELLS,
    }
}

/// The counting function over `sizes.len()` code columns (their full domain sizes), counting
/// `subsets` (each: positions into the columns, in the order its cells are indexed).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub(super) struct CountsUdaf {
    subsets: Vec<Vec<usize>>,
    sizes: Vec<usize>,
    #[serde(skip, default = "any_signature")]
    signature: Signature,
}

fn any_signature() -> Signature {
    Signature::variadic_any(Volatility::Immutable)
}

impl CountsUdaf {
    /// Checks that every subset's positions are in range and its cells fit the index.
    pub(super) fn new(subsets: Vec<Vec<usize>>, sizes: Vec<usize>) -> DfResult<CountsUdaf> {
        if sizes.is_empty() {
            return Err(internal("no argument columns"));
        }
        for s in &subsets {
            if s.iter().any(|&p| p >= sizes.len()) {
                return Err(internal("a subset names a column it is not given"));
            }
            if cells_of(s.iter().map(|&p| sizes[p])).is_none() {
                return Err(internal("a subset has more cells than a 128-bit index holds"));
            }
        }
        Ok(CountsUdaf { subsets, sizes, signature: any_signature() })
    }

    pub(super) fn udaf(self) -> AggregateUDF {
        AggregateUDF::new_from_impl(self)
    }

    fn accumulator(&self) -> CountsAccumulator {
        CountsAccumulator::new(&self.subsets, &self.sizes)
    }

    /// The counts in a result blob: per subset, (codes in the subset's order, count) of its
    /// non-empty cells.
    pub(super) fn decode_result(&self, blob: &[u8]) -> DfResult<Vec<Vec<(Vec<u32>, u64)>>> {
        let mut acc = self.accumulator();
        acc.merge(blob)?;
        Ok(acc.subsets.iter().map(Subset::sparse).collect())
    }
}

impl AggregateUDFImpl for CountsUdaf {
    fn name(&self) -> &str {
        NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[ArrowType]) -> DfResult<ArrowType> {
        Ok(ArrowType::Binary)
    }
    fn accumulator(&self, _: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        Ok(Box::new(CountsUdaf::accumulator(self)))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(format_state_name(args.name, "counts"), ArrowType::Binary, true))])
    }
}

/// Serialize the counting function into `buf` (JSON: subsets and sizes); false for another.
pub fn encode_udaf(node: &AggregateUDF, buf: &mut Vec<u8>) -> DfResult<bool> {
    let any: &dyn Any = node.inner().as_ref();
    let Some(u) = any.downcast_ref::<CountsUdaf>() else { return Ok(false) };
    serde_json::to_writer(buf, u).map_err(|e| internal(&e.to_string()))?;
    Ok(true)
}

/// Rebuild the counting function from [`encode_udaf`]'s bytes; None for another function.
pub fn decode_udaf(name: &str, buf: &[u8]) -> DfResult<Option<Arc<AggregateUDF>>> {
    if name != NAME {
        return Ok(None);
    }
    let u: CountsUdaf = serde_json::from_slice(buf).map_err(|e| internal(&format!("cannot decode it: {e}")))?;
    Ok(Some(Arc::new(CountsUdaf::new(u.subsets, u.sizes)?.udaf())))
}

#[derive(Debug)]
enum Cells {
    Dense(Vec<u64>),
    Sparse(HashMap<u128, u64>),
}

#[derive(Debug)]
struct Subset {
    /// Positions of its columns among the arguments.
    cols: Vec<usize>,
    /// Their domain sizes.
    sizes: Vec<usize>,
    cells: u128,
    counts: Cells,
}

impl Subset {
    fn add(&mut self, cell: u128, n: u64) -> DfResult<()> {
        if cell >= self.cells {
            return Err(internal("a partial state has a cell outside its subset"));
        }
        match &mut self.counts {
            Cells::Dense(v) => v[cell as usize] += n,
            Cells::Sparse(m) => *m.entry(cell).or_insert(0) += n,
        }
        Ok(())
    }

    /// Non-empty cells in index order.
    fn nonzero(&self) -> Vec<(u128, u64)> {
        match &self.counts {
            Cells::Dense(v) => v.iter().enumerate().filter(|(_, n)| **n > 0).map(|(c, n)| (c as u128, *n)).collect(),
            Cells::Sparse(m) => {
                let mut v: Vec<(u128, u64)> = m.iter().map(|(c, n)| (*c, *n)).collect();
                v.sort_unstable();
                v
            }
        }
    }

    fn sparse(&self) -> Vec<(Vec<u32>, u64)> {
        self.nonzero()
            .into_iter()
            .map(|(mut cell, n)| {
                let mut codes = vec![0u32; self.sizes.len()];
                for (j, &s) in self.sizes.iter().enumerate().rev() {
                    codes[j] = (cell % s as u128) as u32;
                    cell /= s as u128;
                }
                (codes, n)
            })
            .collect()
    }
}

/// Per subset, the counts of the rows seen (see the module docs).
#[derive(Debug)]
pub(super) struct CountsAccumulator {
    sizes: Vec<usize>,
    subsets: Vec<Subset>,
    /// Cell indices of a batch's rows (reused between batches).
    scratch: Vec<usize>,
}

impl CountsAccumulator {
    fn new(subsets: &[Vec<usize>], sizes: &[usize]) -> CountsAccumulator {
        let subsets = subsets
            .iter()
            .map(|cols| {
                let sz: Vec<usize> = cols.iter().map(|&p| sizes[p]).collect();
                // `CountsUdaf::new` checked that the product fits.
                let cells = cells_of(sz.iter().copied()).unwrap_or(u128::MAX);
                let counts = match cells <= DENSE_CELLS as u128 {
                    true => Cells::Dense(vec![0; cells as usize]),
                    false => Cells::Sparse(HashMap::new()),
                };
                Subset { cols: cols.clone(), sizes: sz, cells, counts }
            })
            .collect();
        CountsAccumulator { sizes: sizes.to_vec(), subsets, scratch: vec![] }
    }

    /// Add a blob of counts ([`encode`]'s) of the same subsets.
    fn merge(&mut self, blob: &[u8]) -> DfResult<()> {
        let mut r = Reader { buf: blob, at: 0 };
        if r.varint()? != self.subsets.len() as u128 {
            return Err(internal("a partial state of other subsets"));
        }
        for s in &mut self.subsets {
            match r.byte()? {
                DENSE => {
                    if s.cells > DENSE_CELLS as u128 {
                        return Err(internal("a dense partial state of a sparse subset"));
                    }
                    for c in 0..s.cells {
                        let n = r.count()?;
                        if n > 0 {
                            s.add(c, n)?;
                        }
                    }
                }
                SPARSE => {
                    let k = r.varint()?;
                    let mut cell = 0u128;
                    for i in 0..k {
                        let step = r.varint()?;
                        // Cells are strictly increasing: each step after the first is at least 1.
                        if i > 0 && step == 0 {
                            return Err(internal("a partial state repeats a cell"));
                        }
                        cell = cell.checked_add(step).ok_or_else(|| internal("a partial state overflows"))?;
                        s.add(cell, r.count()?)?;
                    }
                }
                _ => return Err(internal("a partial state of an unknown kind")),
            }
        }
        if r.at != blob.len() {
            return Err(internal("a partial state has trailing bytes"));
        }
        Ok(())
    }
}

const DENSE: u8 = 0;
const SPARSE: u8 = 1;

/// All subsets' counts as one blob: the number of subsets, then per subset either `DENSE`
/// and a count per cell, or `SPARSE`, the number of non-empty cells and (step from the
/// previous cell, count) pairs; numbers as LEB128 varints (most counts are small; a hand-written
/// varint, as the format is a dozen lines and private to this function).
fn encode(subsets: &[Subset]) -> Vec<u8> {
    let mut out = vec![];
    put(&mut out, subsets.len() as u128);
    for s in subsets {
        let nz = s.nonzero();
        // Dense costs a byte or more a cell, sparse about three a non-empty cell.
        match (&s.counts, nz.len().saturating_mul(3) as u128 >= s.cells) {
            (Cells::Dense(v), true) => {
                out.push(DENSE);
                v.iter().for_each(|&n| put(&mut out, n as u128));
            }
            _ => {
                out.push(SPARSE);
                put(&mut out, nz.len() as u128);
                let mut prev = 0u128;
                for (c, n) in nz {
                    put(&mut out, c - prev);
                    put(&mut out, n as u128);
                    prev = c;
                }
            }
        }
    }
    out
}

fn put(out: &mut Vec<u8>, mut v: u128) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> DfResult<u8> {
        let b = *self.buf.get(self.at).ok_or_else(|| internal("a partial state is cut short"))?;
        self.at += 1;
        Ok(b)
    }
    fn varint(&mut self) -> DfResult<u128> {
        let mut v = 0u128;
        for shift in (0..128).step_by(7) {
            let b = self.byte()?;
            v |= ((b & 0x7f) as u128) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(internal("a partial state has an overlong number"))
    }
    fn count(&mut self) -> DfResult<u64> {
        u64::try_from(self.varint()?).map_err(|_| internal("a partial state has an overlong count"))
    }
}

impl Accumulator for CountsAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        if values.len() != self.sizes.len() {
            return Err(internal("called with other columns than it was planned with"));
        }
        let cols = values.iter().map(|v| cast(v, &ArrowType::UInt32)).collect::<Result<Vec<ArrayRef>, _>>()?;
        let codes: Vec<&[u32]> = cols.iter().map(|c| c.as_primitive::<UInt32Type>().values().as_ref()).collect();
        // Every code in range (and none null) before anything is counted.
        for ((c, a), &size) in codes.iter().zip(&cols).zip(&self.sizes) {
            if a.null_count() > 0 {
                return Err(internal("a counted row has a null code"));
            }
            if c.iter().any(|&v| v as usize >= size) {
                return Err(internal("a code is outside its column's domain"));
            }
        }
        let rows = values[0].len();
        for s in &mut self.subsets {
            match &mut s.counts {
                Cells::Dense(v) => {
                    // Mixed-radix cell indices a column at a time, then one scatter.
                    let cells = &mut self.scratch;
                    cells.clear();
                    cells.resize(rows, 0);
                    for (&p, &size) in s.cols.iter().zip(&s.sizes) {
                        for (c, &x) in cells.iter_mut().zip(codes[p]) {
                            *c = *c * size + x as usize;
                        }
                    }
                    for &c in cells.iter() {
                        v[c] += 1;
                    }
                }
                Cells::Sparse(m) => {
                    for r in 0..rows {
                        let cell = s
                            .cols
                            .iter()
                            .zip(&s.sizes)
                            .fold(0u128, |c, (&p, &size)| c * size as u128 + codes[p][r] as u128);
                        *m.entry(cell).or_insert(0) += 1;
                    }
                }
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let blobs = states.first().ok_or_else(|| internal("no partial state"))?;
        let blobs = cast(blobs, &ArrowType::Binary)?;
        for blob in blobs.as_binary::<i32>().iter().flatten() {
            self.merge(blob)?;
        }
        Ok(())
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Binary(Some(encode(&self.subsets)))])
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        Ok(ScalarValue::Binary(Some(encode(&self.subsets))))
    }

    fn size(&self) -> usize {
        let cells: usize = self
            .subsets
            .iter()
            .map(|s| match &s.counts {
                Cells::Dense(v) => v.capacity() * 8,
                Cells::Sparse(m) => m.capacity() * 40,
            })
            .sum();
        std::mem::size_of_val(self) + cells + self.scratch.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{BinaryArray, UInt32Array};

    fn batch(cols: &[Vec<u32>]) -> Vec<ArrayRef> {
        cols.iter().map(|c| Arc::new(UInt32Array::from(c.clone())) as ArrayRef).collect()
    }

    /// Counts of `subsets` by brute force over the rows (columns `cols`).
    fn brute(cols: &[Vec<u32>], subsets: &[Vec<usize>]) -> Vec<Vec<(Vec<u32>, u64)>> {
        subsets
            .iter()
            .map(|s| {
                let mut m: std::collections::BTreeMap<Vec<u32>, u64> = Default::default();
                for r in 0..cols[0].len() {
                    *m.entry(s.iter().map(|&p| cols[p][r]).collect()).or_insert(0) += 1;
                }
                m.into_iter().collect()
            })
            .collect()
    }

    /// Update two accumulators with two halves of the rows, merge their states into a third:
    /// the same counts as one accumulator over all rows, and as counting by hand; for a dense
    /// subset, a sparse one (more cells than `DENSE_CELLS`), the empty subset and one in
    /// reverse column order.
    #[test]
    fn partial_states_merge_to_the_counts_of_all_rows() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        // Columns 2 and 3 make a subset of 2^22 cells: counted sparse.
        let sizes = vec![3usize, 7, 1 << 11, 1 << 11];
        let rows = 5_000;
        let cols: Vec<Vec<u32>> =
            sizes.iter().map(|&s| (0..rows).map(|_| rng.random_range(0..s as u32)).collect()).collect();
        let subsets = vec![vec![], vec![0], vec![1, 0], vec![0, 1, 2], vec![2, 3], vec![3, 2, 0]];
        let udaf = CountsUdaf::new(subsets.clone(), sizes.clone()).unwrap();
        assert!(matches!(udaf.accumulator().subsets[4].counts, Cells::Sparse(_)));
        assert!(matches!(udaf.accumulator().subsets[3].counts, Cells::Dense(_)));
        let half = |lo: usize, hi: usize| -> Vec<Vec<u32>> { cols.iter().map(|c| c[lo..hi].to_vec()).collect() };
        let (mut a, mut b, mut all) = (udaf.accumulator(), udaf.accumulator(), udaf.accumulator());
        a.update_batch(&batch(&half(0, 1_700))).unwrap();
        a.update_batch(&batch(&half(1_700, 2_000))).unwrap();
        b.update_batch(&batch(&half(2_000, rows))).unwrap();
        all.update_batch(&batch(&cols)).unwrap();
        let states: Vec<Option<Vec<u8>>> = vec![
            a.state().unwrap().pop().and_then(|s| if let ScalarValue::Binary(b) = s { b } else { None }),
            None,
            b.state().unwrap().pop().and_then(|s| if let ScalarValue::Binary(b) = s { b } else { None }),
        ];
        let states: ArrayRef = Arc::new(BinaryArray::from(states.iter().map(|s| s.as_deref()).collect::<Vec<_>>()));
        let mut merged = udaf.accumulator();
        merged.merge_batch(&[states]).unwrap();
        let result = |acc: &mut CountsAccumulator| match acc.evaluate().unwrap() {
            ScalarValue::Binary(Some(b)) => udaf.decode_result(&b).unwrap(),
            other => panic!("{other:?}"),
        };
        let want = brute(&cols, &subsets);
        assert_eq!(result(&mut merged), want);
        assert_eq!(result(&mut all), want);
        assert_eq!(want[0], vec![(vec![], rows as u64)]);
        // The blob survives a round trip through the codec's JSON form of the function too.
        let mut buf = vec![];
        assert!(encode_udaf(&udaf.clone().udaf(), &mut buf).unwrap());
        let again = decode_udaf(NAME, &buf).unwrap().unwrap();
        let any: &dyn Any = again.inner().as_ref();
        assert_eq!(any.downcast_ref::<CountsUdaf>(), Some(&udaf));
    }

    /// A code outside its column's domain (or a null code) is an error naming neither the code
    /// nor a count; a corrupt state is an error, not a count.
    #[test]
    fn bad_codes_and_states_are_errors() {
        let udaf = CountsUdaf::new(vec![vec![0, 1]], vec![4, 5]).unwrap();
        let mut acc = udaf.accumulator();
        let e = acc.update_batch(&batch(&[vec![1, 3], vec![4, 5]])).unwrap_err().to_string();
        assert!(e.contains(INTERNAL) && e.contains("outside") && !e.contains('5'), "{e}");
        let nulls: Vec<ArrayRef> =
            vec![Arc::new(UInt32Array::from(vec![Some(1), None])), Arc::new(UInt32Array::from(vec![1, 2]))];
        assert!(acc.update_batch(&nulls).unwrap_err().to_string().contains("null"));
        // Nothing was counted by the failed batches.
        assert!(acc.subsets[0].nonzero().is_empty());
        acc.update_batch(&batch(&[vec![1, 3], vec![4, 0]])).unwrap();
        let blob = encode(&acc.subsets);
        for bad in [&blob[..blob.len() - 1], &[blob.as_slice(), &[0]].concat()[..], &[2, 0][..]] {
            assert!(udaf.decode_result(bad).is_err());
        }
        assert_eq!(udaf.decode_result(&blob).unwrap(), vec![vec![(vec![1, 4], 1), (vec![3, 0], 1)]]);
        assert!(CountsUdaf::new(vec![vec![2]], vec![4, 5]).is_err());
        assert!(CountsUdaf::new(vec![vec![0; 5]], vec![u32::MAX as usize]).is_err());
    }
}
