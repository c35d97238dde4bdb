//! The DataFusion counting engine: encode, contribution bounding and GROUP BY counts as one
//! Apache DataFusion plan over the data file; only count vectors come back.
//!
//! **Encode.** Each modelled column goes through a scalar UDF that holds the column's
//! [`ColumnCodec`] and calls its own [`ColumnCodec::encode_series`] on the Arrow batch (turned
//! into a Polars series of the type the local reader gives: text for CSV, numbers, dates,
//! datetimes and booleans as stored in Parquet), so the codes, missing tokens, bins and
//! out-of-domain policies are the codec's by construction. A row the policy drops gets a null
//! code and is filtered out; `error` stops the query (the message names the file and column;
//! the engine does not know the row's line).
//!
//! **Bounding.** The local path keeps each unit's `k` rows with the smallest keyed draw over
//! (unit key, ordinal of the row among the unit's rows that fit, in file order), ties broken by
//! file position ([`privsynth_privacy::bounding::keep_rows`]). DataFusion has no row-index
//! column for CSV (nor a stable one for Parquet in this version), so the plan makes one: the
//! scan is a single partition in file order (file-scan repartitioning and round-robin
//! repartitioning off), `ROW_NUMBER() OVER ()` numbers the rows that fit, `ROW_NUMBER() OVER
//! (PARTITION BY unit ORDER BY file_row)` gives each row its ordinal, a UDF holding the run's
//! secret key draws, and `ROW_NUMBER() OVER (PARTITION BY unit ORDER BY draw, file_row) <= k`
//! keeps the rows. Everything after the numbering is hash-partitioned by unit and runs in
//! parallel; the numbering itself reads the file in one stream (what a row-index column in
//! the files would remove). Without a privacy unit every row is its own unit and none of this
//! runs.
//!
//! **Counting.** All subsets the mechanism will need are counted in one scan with GROUPING
//! SETS (in chunks of [`SETS_PER_QUERY`]) and cached as sparse (codes, count) lists on the
//! full codes; a remapped view (AIM's and MST's compressed domains) folds the same cache
//! through its maps, so no subset is counted twice in a fit.

use std::any::Any;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, UInt32Array, UInt64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType as ArrowType, Field, Float64Type, Int32Type, Int64Type, Schema as ArrowSchema, TimeUnit as ArrowUnit,
    UInt32Type, UInt64Type,
};
use datafusion::common::DataFusionError;
use datafusion::execution::context::SessionContext;
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::{
    ColumnarValue, ExprFunctionExt, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility, grouping_set,
};
use datafusion::prelude::{CsvReadOptions, DataFrame, Expr, ParquetReadOptions, SessionConfig, col, ident, lit};
use polars::prelude::{DataType as PlType, NamedFrom, Series, TimeUnit as PlUnit};

use privsynth_privacy::Sensitive;
use privsynth_privacy::bounding::{ContributionBound, SecretKey};

use crate::codec::{ColumnCodec, Note, Problem, TableCodec};
use crate::data::Format;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::marginals::{Counter, strides};
use crate::schema::{OutOfDomain, Table};

type DfResult<T> = std::result::Result<T, DataFusionError>;

/// Grouping sets per query: each input row is expanded once per set, so very many sets in one
/// query trade one scan for a large intermediate; chunks keep it bounded.
pub const SETS_PER_QUERY: usize = 64;

/// A message of ours inside a DataFusion error (marked so that [`df_error`] passes it on).
const OURS: &str = "privsynth: ";

/// Turn a column of a batch into the Polars series the local reader would hand the codec.
fn to_series(name: &str, a: &ArrayRef) -> DfResult<Series> {
    let name: polars::prelude::PlSmallStr = name.into();
    let s = match a.data_type() {
        ArrowType::Boolean => Series::new(name, a.as_boolean().iter().collect::<Vec<Option<bool>>>()),
        t if t.is_integer() && *t != ArrowType::UInt64 => {
            let c = cast(a, &ArrowType::Int64)?;
            Series::new(name, c.as_primitive::<Int64Type>().iter().collect::<Vec<Option<i64>>>())
        }
        ArrowType::UInt64 => Series::new(name, a.as_primitive::<UInt64Type>().iter().collect::<Vec<Option<u64>>>()),
        t if t.is_floating() || matches!(t, ArrowType::Decimal128(..) | ArrowType::Decimal256(..)) => {
            let c = cast(a, &ArrowType::Float64)?;
            Series::new(name, c.as_primitive::<Float64Type>().iter().collect::<Vec<Option<f64>>>())
        }
        ArrowType::Date32 | ArrowType::Date64 => {
            let c = cast(&cast(a, &ArrowType::Date32)?, &ArrowType::Int32)?;
            Series::new(name, c.as_primitive::<Int32Type>().iter().collect::<Vec<Option<i32>>>())
                .cast(&PlType::Date)
                .map_err(|e| DataFusionError::Execution(format!("{OURS}date column: {e}")))?
        }
        ArrowType::Timestamp(..) => {
            let c = cast(&cast(a, &ArrowType::Timestamp(ArrowUnit::Millisecond, None))?, &ArrowType::Int64)?;
            Series::new(name, c.as_primitive::<Int64Type>().iter().collect::<Vec<Option<i64>>>())
                .cast(&PlType::Datetime(PlUnit::Milliseconds, None))
                .map_err(|e| DataFusionError::Execution(format!("{OURS}datetime column: {e}")))?
        }
        _ => {
            let c = cast(a, &ArrowType::Utf8).map_err(|_| {
                DataFusionError::Execution(format!(
                    "{OURS}column {name:?} has a type privsynth does not read (use numbers, text, booleans, dates or \
                     datetimes)"
                ))
            })?;
            Series::new(name, c.as_string::<i32>().iter().collect::<Vec<Option<&str>>>())
        }
    };
    Ok(s)
}

/// `encode_<i>(value) -> UInt32`: the column's code, null when the row is dropped.
#[derive(Debug)]
struct EncodeUdf {
    name: String,
    /// The table and column the codec is made from (what a remote executor rebuilds it from).
    table: Arc<Table>,
    column: String,
    codec: ColumnCodec,
    file: String,
    signature: Signature,
}

impl EncodeUdf {
    fn new(name: String, table: Arc<Table>, column: &str, file: String) -> std::result::Result<EncodeUdf, String> {
        let c = table
            .columns
            .iter()
            .find(|c| c.name == column)
            .ok_or_else(|| format!("column {column:?} is not in table {:?}", table.name))?;
        let codec = ColumnCodec::new(&table, c)?;
        Ok(EncodeUdf {
            name,
            column: column.to_string(),
            codec,
            table,
            file,
            signature: Signature::any(1, Volatility::Immutable),
        })
    }
}

/// What a privsynth UDF travels as to a remote scheduler or executor
/// ([`crate::engine::ballista`]).
#[derive(serde::Serialize, serde::Deserialize)]
enum Shipped {
    Encode { table: Box<Table>, column: String, file: String },
    UnitKey,
    Draw { key: [u8; 32] },
}

/// Serialize one of privsynth's UDFs into `buf`; false when `node` is not one of them.
pub fn encode_udf(node: &ScalarUDF, buf: &mut Vec<u8>) -> DfResult<bool> {
    let any: &dyn Any = node.inner().as_ref();
    let shipped = if let Some(e) = any.downcast_ref::<EncodeUdf>() {
        Shipped::Encode { table: Box::new((*e.table).clone()), column: e.column.clone(), file: e.file.clone() }
    } else if any.downcast_ref::<UnitKeyUdf>().is_some() {
        Shipped::UnitKey
    } else if let Some(d) = any.downcast_ref::<DrawUdf>() {
        Shipped::Draw { key: d.key.to_engine_bytes() }
    } else {
        return Ok(false);
    };
    serde_json::to_writer(buf, &shipped).map_err(|e| DataFusionError::Internal(format!("{OURS}{e}")))?;
    Ok(true)
}

/// Rebuild one of privsynth's UDFs from [`encode_udf`]'s bytes; None for another function.
pub fn decode_udf(name: &str, buf: &[u8]) -> DfResult<Option<Arc<ScalarUDF>>> {
    if !name.starts_with("privsynth_") {
        return Ok(None);
    }
    let shipped: Shipped = serde_json::from_slice(buf)
        .map_err(|e| DataFusionError::Internal(format!("{OURS}cannot decode the function {name}: {e}")))?;
    let udf = match shipped {
        Shipped::Encode { table, column, file } => ScalarUDF::new_from_impl(
            EncodeUdf::new(name.to_string(), Arc::new(*table), &column, file)
                .map_err(|e| DataFusionError::Internal(format!("{OURS}{e}")))?,
        ),
        Shipped::UnitKey => ScalarUDF::new_from_impl(UnitKeyUdf::new()),
        Shipped::Draw { key } => ScalarUDF::new_from_impl(DrawUdf::new(Arc::new(SecretKey::from_engine_bytes(key)))),
    };
    Ok(Some(Arc::new(udf)))
}

impl PartialEq for EncodeUdf {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name
    }
}
impl Eq for EncodeUdf {}
impl Hash for EncodeUdf {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.name.hash(h)
    }
}

impl ScalarUDFImpl for EncodeUdf {
    fn name(&self) -> &str {
        &self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[ArrowType]) -> DfResult<ArrowType> {
        Ok(ArrowType::UInt32)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let a = args.args[0].to_array(args.number_rows)?;
        let c = &self.codec;
        let s = to_series(&c.name, &a)?;
        let strict = c.policy == OutOfDomain::Error;
        let mut first: Option<Problem> = None;
        let mut bad: Vec<(usize, Problem)> = vec![];
        // The same decisions as `TableCodec::encode_all`, cell by cell.
        let codes = c
            .encode_series(&s, |row, n| match n {
                Note::Problem(p) if strict => {
                    first = Some(p);
                    false
                }
                Note::Problem(p) => {
                    bad.push((row, p));
                    true
                }
                Note::Clipped | Note::Nulled => true,
            })
            .map_err(|_| {
                DataFusionError::Execution(format!(
                    "{OURS}{}: column {:?} cannot be read as {:?} (stored as {})",
                    self.file,
                    c.name,
                    c.kind,
                    a.data_type()
                ))
            })?;
        if let Some(p) = first {
            let what = match p {
                Problem::Type => format!("a value is not {}", c.expected()),
                Problem::OutOfDomain => format!("a value is outside the declared domain ({})", c.expected()),
                Problem::Null => "a value is missing but the column is not nullable".into(),
            };
            return Err(DataFusionError::Execution(format!(
                "{OURS}{}: column {:?}: {what}, and the column's out-of-domain policy is `error` (strict: outside the \
                 DP guarantee). The query engine does not know the row; run `privsynth schema check` to list the \
                 offending values, or choose `drop`, `clip` or `null`.",
                self.file, c.name
            )));
        }
        let mut out: Vec<Option<u32>> = codes.into_iter().map(Some).collect();
        for (row, p) in bad {
            out[row] = match (p, c.policy, c.null_code()) {
                (Problem::Type, OutOfDomain::Null, Some(null)) => Some(null),
                _ => None,
            };
        }
        Ok(ColumnarValue::Array(Arc::new(UInt32Array::from(out))))
    }
}

/// `unit_key(value) -> Utf8`: the privacy unit's key as the local path reads it (text,
/// trimmed, empty = missing).
#[derive(Debug, PartialEq, Eq, Hash)]
struct UnitKeyUdf {
    name: String,
    signature: Signature,
}

impl UnitKeyUdf {
    fn new() -> UnitKeyUdf {
        UnitKeyUdf { name: "privsynth_unit_key".into(), signature: Signature::any(1, Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for UnitKeyUdf {
    fn name(&self) -> &str {
        &self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[ArrowType]) -> DfResult<ArrowType> {
        Ok(ArrowType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let a = args.args[0].to_array(args.number_rows)?;
        let s = to_series("unit", &a)?
            .cast(&PlType::String)
            .map_err(|_| DataFusionError::Execution(format!("{OURS}the privacy unit column cannot be read as text")))?;
        let ca = s.str().map_err(|e| DataFusionError::Execution(format!("{OURS}{e}")))?;
        let keys: datafusion::arrow::array::StringArray =
            ca.iter().map(|v| v.map(str::trim).filter(|v| !v.is_empty())).collect();
        Ok(ColumnarValue::Array(Arc::new(keys)))
    }
}

/// `bound_draw(unit, ordinal) -> UInt64`: the keyed draw of the unit's `ordinal`-th row
/// (1-based, as `ROW_NUMBER` gives it). Holds the run's secret key.
struct DrawUdf {
    name: String,
    key: Arc<SecretKey>,
    signature: Signature,
}

impl DrawUdf {
    fn new(key: Arc<SecretKey>) -> DrawUdf {
        DrawUdf { name: "privsynth_bound_draw".into(), key, signature: Signature::any(2, Volatility::Immutable) }
    }
}

impl std::fmt::Debug for DrawUdf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        write!(f, "DrawUdf({})", self.name)
    }
}
impl PartialEq for DrawUdf {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name && Arc::ptr_eq(&self.key, &o.key)
    }
}
impl Eq for DrawUdf {}
impl Hash for DrawUdf {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.name.hash(h)
    }
}

impl ScalarUDFImpl for DrawUdf {
    fn name(&self) -> &str {
        &self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[ArrowType]) -> DfResult<ArrowType> {
        Ok(ArrowType::UInt64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let units = cast(&args.args[0].to_array(args.number_rows)?, &ArrowType::Utf8)?;
        let ords = cast(&args.args[1].to_array(args.number_rows)?, &ArrowType::UInt64)?;
        let units = units.as_string::<i32>();
        let ords = ords.as_primitive::<UInt64Type>();
        let out: UInt64Array = units
            .iter()
            .zip(ords.iter())
            .map(|(u, o)| match (u, o) {
                (Some(u), Some(o)) if o >= 1 => Some(self.key.row_draw(u.as_bytes(), o - 1)),
                _ => None,
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// Turn a DataFusion error into ours. Our own messages pass; the engine's are cut at the first
/// quote, where a reader's message would start quoting a cell.
fn df_error(file: &str, e: DataFusionError) -> Error {
    let text = e.to_string();
    if let Some(i) = text.find(OURS) {
        return Error::data(file, text[i + OURS.len()..].to_string());
    }
    let cut = text.split(['\'', '"', '`']).next().unwrap_or("").trim_end_matches([' ', ':']);
    Error::data(file, format!("the query engine failed: {cut}"))
}

/// Sparse counts of one sorted attribute subset: (codes in the subset's order, count).
type Sparse = Arc<Vec<(Vec<u32>, i64)>>;

struct Shared {
    rt: tokio::runtime::Runtime,
    /// The bounded, encoded rows: columns `c0 .. c{d-1}` (UInt32 codes).
    rows: DataFrame,
    file: String,
    cache: Mutex<HashMap<Vec<usize>, Sparse>>,
    /// Queries run so far (for the tests and the benchmark).
    queries: Mutex<usize>,
    /// How long a query may take (a cluster's): past it the fit stops with an error.
    timeout: Option<std::time::Duration>,
    engine: String,
}

/// How long a query on a cluster may run before the fit gives up: `PRIVSYNTH_ENGINE_TIMEOUT`
/// seconds, default 3600. A cluster that lost an executor may otherwise wait for it for long.
fn cluster_timeout() -> std::time::Duration {
    let secs = std::env::var("PRIVSYNTH_ENGINE_TIMEOUT").ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or(3600);
    std::time::Duration::from_secs(secs.max(1))
}

/// Counts of a table's bounded, encoded rows, computed by DataFusion (or Ballista) over its
/// file. Cheap to remap: views share one cache of full-code counts.
pub struct DataFusionCounter {
    shared: Arc<Shared>,
    names: Vec<String>,
    full_sizes: Vec<usize>,
    sizes: Vec<usize>,
    maps: Option<Vec<Vec<u32>>>,
    bound: ContributionBound,
}

impl DataFusionCounter {
    /// The counting plan of `table`'s file `path`, bounded to `rows_per_unit` rows per unit
    /// when the table has a privacy unit. Nothing is read until the first count (only the
    /// file's schema: column names and types).
    pub fn open(table: &Table, codec: &TableCodec, path: &Path, rows_per_unit: u32, engine: &Engine) -> Result<Self> {
        Self::open_with_key(table, codec, path, rows_per_unit, engine, Arc::new(SecretKey::fresh()?))
    }

    /// [`DataFusionCounter::open`] under a given bounding key (a release always draws a fresh
    /// one): for checking the engine against the local path under the same key.
    pub fn open_with_key(
        table: &Table,
        codec: &TableCodec,
        path: &Path,
        rows_per_unit: u32,
        engine: &Engine,
        key: Arc<SecretKey>,
    ) -> Result<Self> {
        let file = path.display().to_string();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("cannot start the query engine's runtime: {e}")))?;
        let unit = table.privacy_unit.as_deref();
        // File order matters only for bounding: one stream over the file, no round robin.
        let config = SessionConfig::new()
            .with_repartition_file_scans(unit.is_none())
            .with_round_robin_repartition(unit.is_none());
        let ctx = match engine {
            Engine::DataFusion => SessionContext::new_with_config(config),
            #[cfg(feature = "engine-ballista")]
            Engine::Ballista(addr) => rt.block_on(ballista_context(addr, config)).map_err(|e| df_error(&file, e))?,
            other => return Err(Error::Internal(format!("{} is not a DataFusion engine", other.name()))),
        };
        let path_str = path.to_str().ok_or_else(|| Error::data(&file, "the path is not valid UTF-8"))?;
        let ext = path.extension().and_then(|e| e.to_str()).map(|e| format!(".{e}")).unwrap_or_default();
        let df = match Format::of(path) {
            Format::Parquet => {
                rt.block_on(ctx.read_parquet(path_str, ParquetReadOptions::default().file_extension(&ext)))
            }
            Format::Csv => {
                let csv = &table.csv;
                let opts = || {
                    CsvReadOptions::new()
                        .has_header(csv.header)
                        .delimiter(csv.delimiter)
                        .file_extension(&ext)
                        .newlines_in_values(true)
                };
                // Every column as text, as the local reader reads CSV: the header's names (a
                // headerless file's columns are the schema's, in order), all Utf8.
                let names: Vec<String> = match csv.header {
                    true => rt
                        .block_on(ctx.read_csv(path_str, opts().schema_infer_max_records(0)))
                        .map_err(|e| df_error(&file, e))?
                        .schema()
                        .fields()
                        .iter()
                        .map(|f| f.name().clone())
                        .collect(),
                    false => table.columns.iter().map(|c| c.name.clone()).collect(),
                };
                let text =
                    ArrowSchema::new(names.iter().map(|n| Field::new(n, ArrowType::Utf8, true)).collect::<Vec<_>>());
                rt.block_on(ctx.read_csv(path_str, opts().schema(&text)))
            }
            f => {
                return Err(Error::Usage(format!(
                    "{file}: the query engines read Parquet and CSV files, not {f:?}; convert it, or use --engine local"
                )));
            }
        }
        .map_err(|e| df_error(&file, e))?;
        // Columns the file must have.
        let have: Vec<String> = df.schema().fields().iter().map(|f| f.name().clone()).collect();
        for c in codec.columns.iter().map(|c| c.name.as_str()).chain(unit) {
            if !have.iter().any(|h| h == c) {
                return Err(Error::column(&file, c, "is not in the file"));
            }
        }
        let d = codec.columns.len();
        let cname = |i: usize| format!("c{i}");
        let shared_table = Arc::new(table.clone());
        let mut select: Vec<Expr> = codec
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let udf = EncodeUdf::new(format!("privsynth_encode_{i}"), shared_table.clone(), &c.name, file.clone())
                    .map_err(|m| Error::schema(format!("table {:?}", table.name), m))?;
                Ok(ScalarUDF::new_from_impl(udf).call(vec![ident(&c.name)]).alias(cname(i)))
            })
            .collect::<Result<_>>()?;
        let codes: Vec<Expr> = (0..d).map(|i| col(cname(i))).collect();
        let mut fits = codes.iter().map(|c| c.clone().is_not_null()).reduce(Expr::and).unwrap_or(lit(true));
        let bound = match unit {
            Some(_) => ContributionBound::kept_in_plan(rows_per_unit, &key)?,
            None => ContributionBound::ROW_IS_UNIT,
        };
        if let Some(u) = unit {
            let udf = ScalarUDF::new_from_impl(UnitKeyUdf::new());
            select.push(udf.call(vec![ident(u)]).alias("u"));
            fits = fits.and(col("u").is_not_null());
        }
        let e = |e| df_error(&file, e);
        let mut rows = df.select(select).map_err(e)?.filter(fits).map_err(e)?;
        if unit.is_some() {
            let draw = ScalarUDF::new_from_impl(DrawUdf::new(key));
            let asc = |c: &str| col(c).sort(true, false);
            let ordinal = row_number()
                .partition_by(vec![col("u")])
                .order_by(vec![asc("file_row")])
                .build()
                .map_err(e)?
                .alias("ord");
            let rank = row_number()
                .partition_by(vec![col("u")])
                .order_by(vec![asc("d"), asc("file_row")])
                .build()
                .map_err(e)?
                .alias("rank");
            let mut keep = codes.clone();
            keep.extend([col("u"), col("file_row"), draw.call(vec![col("u"), col("ord")]).alias("d")]);
            rows = rows
                .window(vec![row_number().alias("file_row")])
                .map_err(e)?
                .window(vec![ordinal])
                .map_err(e)?
                .select(keep)
                .map_err(e)?
                .window(vec![rank])
                .map_err(e)?
                .filter(col("rank").lt_eq(lit(rows_per_unit as u64)))
                .map_err(e)?;
        }
        let rows = rows.select(codes).map_err(e)?;
        let full_sizes = codec.sizes();
        Ok(DataFusionCounter {
            shared: Arc::new(Shared {
                rt,
                rows,
                file,
                cache: Mutex::new(HashMap::new()),
                queries: Mutex::new(0),
                timeout: (*engine != Engine::DataFusion).then(cluster_timeout),
                engine: engine.name(),
            }),
            names: codec.names(),
            sizes: full_sizes.clone(),
            full_sizes,
            maps: None,
            bound,
        })
    }

    /// Give up on a query after `limit` (a cluster's default: `PRIVSYNTH_ENGINE_TIMEOUT`
    /// seconds, else an hour; none for DataFusion in this process).
    pub fn with_timeout(mut self, limit: std::time::Duration) -> Result<Self> {
        Arc::get_mut(&mut self.shared)
            .ok_or_else(|| Error::Internal("the timeout is set before the counter is shared".into()))?
            .timeout = Some(limit);
        Ok(self)
    }

    /// Queries run on the engine so far (all views together).
    pub fn queries(&self) -> usize {
        *self.shared.queries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Count the sorted subsets not in the cache, [`SETS_PER_QUERY`] grouping sets a query.
    fn fill(&self, subsets: &[Vec<usize>]) -> Result<()> {
        let mut todo: Vec<Vec<usize>> = {
            let cache = self.shared.cache.lock().unwrap_or_else(|p| p.into_inner());
            subsets
                .iter()
                .map(|s| {
                    let mut s = s.clone();
                    s.sort_unstable();
                    s.dedup();
                    s
                })
                .filter(|s| !cache.contains_key(s))
                .collect()
        };
        todo.sort();
        todo.dedup();
        for chunk in todo.chunks(SETS_PER_QUERY) {
            let got = self.query(chunk)?;
            let mut cache = self.shared.cache.lock().unwrap_or_else(|p| p.into_inner());
            for (s, v) in chunk.iter().zip(got) {
                cache.insert(s.clone(), Arc::new(v));
            }
        }
        Ok(())
    }

    /// One GROUP BY query over sorted subsets; sparse counts of each.
    fn query(&self, sets: &[Vec<usize>]) -> Result<Vec<Vec<(Vec<u32>, i64)>>> {
        let sh = &self.shared;
        let e = |e| df_error(&sh.file, e);
        let cname = |i: usize| format!("c{i}");
        let mut used: Vec<usize> = sets.iter().flatten().copied().collect();
        used.sort_unstable();
        used.dedup();
        let group: Vec<Expr> = if sets.len() == 1 {
            sets[0].iter().map(|&a| col(cname(a))).collect()
        } else {
            vec![grouping_set(sets.iter().map(|s| s.iter().map(|&a| col(cname(a))).collect()).collect())]
        };
        let df = sh.rows.clone().aggregate(group, vec![count(lit(1)).alias("n")]).map_err(e)?;
        *sh.queries.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        let batches = match sh.timeout {
            None => sh.rt.block_on(df.collect()).map_err(e)?,
            Some(t) => sh
                .rt
                .block_on(async { tokio::time::timeout(t, df.collect()).await })
                .map_err(|_| {
                    Error::data(
                        &sh.file,
                        format!(
                            "the query on {} did not finish within {} s (an executor may have stopped; \
                             PRIVSYNTH_ENGINE_TIMEOUT sets the limit); nothing was counted or released",
                            sh.engine,
                            t.as_secs()
                        ),
                    )
                })?
                .map_err(e)?,
        };
        // A result row belongs to the set whose columns are exactly its non-null codes (codes
        // are never null in the counted rows).
        let index: HashMap<Vec<usize>, usize> = sets.iter().enumerate().map(|(i, s)| (s.clone(), i)).collect();
        let mut out: Vec<Vec<(Vec<u32>, i64)>> = vec![vec![]; sets.len()];
        let internal = |m: &str| Error::Internal(format!("the query engine's result: {m}"));
        for b in &batches {
            let n = cast(b.column_by_name("n").ok_or_else(|| internal("no count column"))?, &ArrowType::Int64)
                .map_err(|e| internal(&e.to_string()))?;
            let n = n.as_primitive::<Int64Type>();
            let cols: Vec<(usize, ArrayRef)> = used
                .iter()
                .filter_map(|&a| b.column_by_name(&cname(a)).map(|c| (a, c.clone())))
                .map(|(a, c)| Ok((a, cast(&c, &ArrowType::UInt32).map_err(|e| internal(&e.to_string()))?)))
                .collect::<Result<_>>()?;
            for r in 0..b.num_rows() {
                let present: Vec<usize> = cols.iter().filter(|(_, c)| c.is_valid(r)).map(|(a, _)| *a).collect();
                let &i = index.get(&present).ok_or_else(|| internal("a row of no requested set"))?;
                let codes: Vec<u32> = cols
                    .iter()
                    .filter(|(_, c)| c.is_valid(r))
                    .map(|(_, c)| c.as_primitive::<UInt32Type>().value(r))
                    .collect();
                out[i].push((codes, n.value(r)));
            }
        }
        Ok(out)
    }

    /// The dense count vector of `attrs` (in their order, through this view's maps).
    fn dense(&self, attrs: &[usize]) -> Result<Vec<i64>> {
        let mut sorted = attrs.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != attrs.len() || attrs.iter().any(|&a| a >= self.sizes.len()) {
            return Err(Error::Internal(format!("attribute subset {attrs:?} repeats or is out of range")));
        }
        let sparse = self
            .shared
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&sorted)
            .cloned()
            .ok_or_else(|| Error::Internal("subset not counted".into()))?;
        let sizes: Vec<usize> = attrs.iter().map(|&a| self.sizes[a]).collect();
        let st = strides(&sizes);
        // Position of each requested attribute in the sorted subset.
        let pos: Vec<usize> = attrs.iter().map(|a| sorted.iter().position(|s| s == a).unwrap_or(0)).collect();
        let mut counts = vec![0i64; sizes.iter().product()];
        for (codes, n) in sparse.iter() {
            let mut cell = 0usize;
            for (j, &a) in attrs.iter().enumerate() {
                let c = codes[pos[j]];
                if c as usize >= self.full_sizes[a] {
                    return Err(Error::Internal(format!("code {c} out of range for column {a}")));
                }
                let c = match &self.maps {
                    Some(m) => m[a][c as usize],
                    None => c,
                } as usize;
                cell += c * st[j];
            }
            counts[cell] += n;
        }
        Ok(counts)
    }
}

impl Counter for DataFusionCounter {
    fn names(&self) -> &[String] {
        &self.names
    }
    fn sizes(&self) -> &[usize] {
        &self.sizes
    }
    fn bound(&self) -> ContributionBound {
        self.bound
    }
    fn count_many(&self, subsets: &[Vec<usize>]) -> Result<Sensitive<Vec<Vec<i64>>>> {
        self.fill(subsets)?;
        Ok(Sensitive::new(subsets.iter().map(|s| self.dense(s)).collect::<Result<_>>()?))
    }
    fn remap(&self, maps: &[Vec<u32>], sizes: &[usize]) -> Box<dyn Counter + '_> {
        let composed: Vec<Vec<u32>> = match &self.maps {
            None => maps.to_vec(),
            Some(old) => old.iter().zip(maps).map(|(o, m)| o.iter().map(|&c| m[c as usize]).collect()).collect(),
        };
        Box::new(DataFusionCounter {
            shared: self.shared.clone(),
            names: self.names.clone(),
            full_sizes: self.full_sizes.clone(),
            sizes: sizes.to_vec(),
            maps: Some(composed),
            bound: self.bound,
        })
    }
    fn prefetch(&self, subsets: &[Vec<usize>]) -> Result<()> {
        self.fill(subsets)
    }
}

/// A session on the Ballista scheduler at `addr`.
#[cfg(feature = "engine-ballista")]
async fn ballista_context(addr: &str, config: SessionConfig) -> DfResult<SessionContext> {
    super::ballista::connect(addr, config).await
}
