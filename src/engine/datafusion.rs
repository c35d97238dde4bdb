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
//! **Counting.** All subsets the mechanism will need are counted in one scan by privsynth's
//! aggregate function ([`super::udaf`]): one aggregate with no GROUP BY whose accumulator
//! counts every subset of the query into its own count vector as the rows stream past (no
//! row is repeated per subset, as GROUPING SETS would), partition by partition, the partial
//! counts merged into one result row. Subsets are chunked by a cap on the cells a query
//! counts ([`super::udaf::CELLS_PER_QUERY`]), so a round's subsets usually take one scan.
//! The counts are cached as sparse (codes, count) lists on the full codes; a remapped view
//! (AIM's and MST's compressed domains) folds the same cache through its maps, so no subset
//! is counted twice in a fit.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType as ArrowType, Field, Int64Type, Schema as ArrowSchema};
use datafusion::common::DataFusionError;
use datafusion::execution::context::SessionContext;
use datafusion::functions_aggregate::expr_fn::{count, sum};
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::{ExprFunctionExt, ScalarUDF};
use datafusion::prelude::{
    CsvReadOptions, DataFrame, Expr, ParquetReadOptions, SessionConfig, cast as cast_expr, col, ident, lit,
};

use privsynth_privacy::Sensitive;
use privsynth_privacy::bounding::{ContributionBound, SecretKey};

use crate::codec::TableCodec;
use crate::data::Format;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::marginals::{Counter, strides};
use crate::schema::Table;

use super::udaf::{CELLS_PER_QUERY, CountsUdaf, query_cells};
use super::udf::{DfResult, DrawUdf, EncodeUdf, INTERNAL, OURS, UnitKeyUdf};

/// Turn a DataFusion error into ours. Our own messages pass (an internal one as
/// [`Error::Internal`]); the engine's are cut at the first quote, where a reader's message
/// would start quoting a cell.
fn df_error(file: &str, e: DataFusionError) -> Error {
    let text = e.to_string();
    if let Some(i) = text.find(INTERNAL) {
        return Error::Internal(text[i + INTERNAL.len()..].to_string());
    }
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
    /// Every row read, encoded (a code is null where the column's policy dropped the row; `u`,
    /// with a unit, null where the key is missing): what `left_out` counts.
    coded: DataFrame,
    /// The codec's column names (for `left_out`'s lines) and whether the table has a unit.
    columns: Vec<String>,
    with_unit: bool,
    file: String,
    cache: Mutex<HashMap<Vec<usize>, Sparse>>,
    /// Queries run so far (for the tests and the benchmark).
    queries: Mutex<usize>,
    /// How long a query may take (a cluster's): past it the fit stops with an error.
    timeout: Option<std::time::Duration>,
    engine: String,
}

impl Shared {
    /// Run a query (within the timeout on a cluster) and count it.
    fn collect(&self, df: DataFrame) -> Result<Vec<RecordBatch>> {
        let e = |e| df_error(&self.file, e);
        *self.queries.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        match self.timeout {
            None => self.rt.block_on(df.collect()).map_err(e),
            Some(t) => self
                .rt
                .block_on(async { tokio::time::timeout(t, df.collect()).await })
                .map_err(|_| {
                    Error::data(
                        &self.file,
                        format!(
                            "the query on {} did not finish within {} s (an executor may have stopped; \
                             PRIVSYNTH_ENGINE_TIMEOUT sets the limit); nothing was counted or released",
                            self.engine,
                            t.as_secs()
                        ),
                    )
                })?
                .map_err(e),
        }
    }

    /// The one-row result of an aggregate query as named integers.
    fn sums(&self, df: DataFrame, names: &[String]) -> Result<Vec<i64>> {
        let batches = self.collect(df)?;
        let internal = |m: &str| Error::Internal(format!("the query engine's result: {m}"));
        let b = batches.iter().find(|b| b.num_rows() > 0).ok_or_else(|| internal("no row"))?;
        names
            .iter()
            .map(|n| {
                let c = b.column_by_name(n).ok_or_else(|| internal("a column is missing"))?;
                let c = cast(c, &ArrowType::Int64).map_err(|e| internal(&e.to_string()))?;
                let c = c.as_primitive::<Int64Type>();
                Ok(if c.is_valid(0) { c.value(0) } else { 0 })
            })
            .collect()
    }
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
            Engine::Ballista(addr) => rt.block_on(ballista_context(addr, config)).map_err(|e| {
                // Not the data's fault: the address (the message names it, quotes nothing read).
                let e = e.to_string();
                Error::Usage(format!(
                    "--engine ballista://{addr}: {}",
                    e.strip_prefix("Invalid or Unsupported Configuration: ").unwrap_or(&e)
                ))
            })?,
            other => return Err(Error::Internal(format!("{} is not a DataFusion engine", other.name()))),
        };
        let parts = super::table_parts_for(path, engine)?;
        let needed: Vec<&str> = codec.columns.iter().map(|c| c.name.as_str()).chain(unit).collect();
        // Each part read on its own (one part: the file), its needed columns only; with a unit,
        // numbered in file order (one in-order stream a part), as (part, row) positions.
        let mut scans: Vec<DataFrame> = Vec::with_capacity(parts.len());
        let mut first_schema: Option<Vec<(String, ArrowType)>> = None;
        for (i, part) in parts.iter().enumerate() {
            let df = read_file(&rt, &ctx, table, part, &file)?;
            let have: Vec<(String, ArrowType)> =
                df.schema().fields().iter().map(|f| (f.name().clone(), f.data_type().clone())).collect();
            for c in &needed {
                if !have.iter().any(|(h, _)| h == c) {
                    return Err(Error::column(part.display().to_string(), *c, "is not in the file"));
                }
            }
            let typed: Vec<(String, ArrowType)> =
                needed.iter().filter_map(|c| have.iter().find(|(h, _)| h == c).cloned()).collect();
            match &first_schema {
                None => first_schema = Some(typed),
                Some(first) => {
                    if let Some((a, b)) = typed.iter().zip(first).find(|(a, b)| a != b) {
                        return Err(Error::data(
                            part.display().to_string(),
                            format!(
                                "column {:?} is {} here but {} in {}: the parts of one table must have the same \
                                 column types",
                                a.0,
                                a.1,
                                b.1,
                                parts[0].display()
                            ),
                        ));
                    }
                }
            }
            let e = |e| df_error(&part.display().to_string(), e);
            let mut cols: Vec<Expr> = needed.iter().map(|c| ident(*c)).collect();
            let df = match unit {
                None => df.select(cols).map_err(e)?,
                Some(_) => {
                    cols.extend([lit(i as u64).alias("part"), col("r")]);
                    df.window(vec![row_number().alias("r")]).map_err(e)?.select(cols).map_err(e)?
                }
            };
            scans.push(df);
        }
        let e = |e| df_error(&file, e);
        let mut scans = scans.into_iter();
        let first = scans.next().ok_or_else(|| Error::data(&file, "has no part files"))?;
        let df = scans.try_fold(first, |acc, df| acc.union(df)).map_err(e)?;
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
            select.extend([col("part"), col("r")]);
            fits = fits.and(col("u").is_not_null());
        }
        let coded = df.select(select).map_err(e)?;
        let mut rows = coded.clone().filter(fits).map_err(e)?;
        if unit.is_some() {
            // (part, r) orders the rows as the concatenation of the parts would: the ordinal
            // among a unit's rows that fit is the local path's.
            let draw = ScalarUDF::new_from_impl(DrawUdf::new(key));
            let asc = |c: &str| col(c).sort(true, false);
            let ordinal = row_number()
                .partition_by(vec![col("u")])
                .order_by(vec![asc("part"), asc("r")])
                .build()
                .map_err(e)?
                .alias("ord");
            let rank = row_number()
                .partition_by(vec![col("u")])
                .order_by(vec![asc("d"), asc("part"), asc("r")])
                .build()
                .map_err(e)?
                .alias("rank");
            let mut keep = codes.clone();
            keep.extend([col("u"), col("part"), col("r"), draw.call(vec![col("u"), col("ord")]).alias("d")]);
            rows = rows
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
                coded,
                columns: codec.names(),
                with_unit: unit.is_some(),
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

    /// What the data left out, as exact counts for the data holder (`--private-diagnostics`):
    /// rows a column's out-of-domain policy dropped, rows without a unit key, rows beyond the
    /// contribution bound. Two more queries (one scan of every row read, one of the rows
    /// kept). The encode functions return codes, so cells clipped or made missing are not
    /// counted here (the local engine counts them).
    pub fn left_out_lines(&self) -> Result<Sensitive<Vec<String>>> {
        let sh = &self.shared;
        let e = |e| df_error(&sh.file, e);
        let flag = |x: Expr| sum(cast_expr(x, ArrowType::Int64));
        let nulls: Vec<Expr> = (0..sh.columns.len()).map(|i| col(format!("c{i}")).is_null()).collect();
        let any_null = nulls.iter().cloned().reduce(Expr::or).unwrap_or(lit(false));
        let no_unit = match sh.with_unit {
            true => col("u").is_null(),
            false => lit(false),
        };
        let fits = !any_null.clone().or(no_unit.clone());
        let mut aggs: Vec<Expr> =
            nulls.iter().enumerate().map(|(i, x)| flag(x.clone()).alias(format!("n{i}"))).collect();
        aggs.extend([flag(any_null).alias("dropped"), flag(no_unit).alias("no_unit"), flag(fits).alias("fit")]);
        let mut names: Vec<String> = (0..sh.columns.len()).map(|i| format!("n{i}")).collect();
        names.extend(["dropped", "no_unit", "fit"].map(String::from));
        let read = sh.sums(sh.coded.clone().aggregate(vec![], aggs).map_err(e)?, &names)?;
        let kept = sh.sums(
            sh.rows.clone().aggregate(vec![], vec![count(lit(1)).alias("kept")]).map_err(e)?,
            &["kept".to_string()],
        )?[0];
        let d = sh.columns.len();
        let (dropped, no_unit, fit) = (read[d], read[d + 1], read[d + 2]);
        let mut lines: Vec<String> = sh
            .columns
            .iter()
            .zip(&read)
            .filter(|(_, n)| **n > 0)
            .map(|(c, n)| format!("column {c:?}: {n} row(s) dropped by its out_of_domain policy"))
            .collect();
        if dropped > 0 {
            lines.push(format!("{dropped} row(s) left out of the fit in all (out_of_domain policy)"));
        }
        if no_unit > 0 {
            lines.push(format!("{no_unit} row(s) without a privacy-unit key were left out"));
        }
        if fit > kept {
            lines.push(format!("{} row(s) beyond rows_per_unit were left out by contribution bounding", fit - kept));
        }
        lines.push(format!(
            "(counted by the {} engine: rows left out only; cells clipped or made missing by a policy are counted by \
             the local engine)",
            sh.engine
        ));
        Ok(Sensitive::new(lines))
    }

    /// Queries run on the engine so far (all views together).
    pub fn queries(&self) -> usize {
        *self.shared.queries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Count the sorted subsets not in the cache, as few queries as [`CELLS_PER_QUERY`] allows.
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
        for chunk in chunk_by_cells(&todo, &self.full_sizes) {
            let got = self.query(chunk)?;
            let mut cache = self.shared.cache.lock().unwrap_or_else(|p| p.into_inner());
            for (s, v) in chunk.iter().zip(got) {
                cache.insert(s.clone(), Arc::new(v));
            }
        }
        Ok(())
    }

    /// One scan counting sorted subsets with privsynth's aggregate function; sparse counts of
    /// each.
    fn query(&self, sets: &[Vec<usize>]) -> Result<Vec<Vec<(Vec<u32>, i64)>>> {
        let sh = &self.shared;
        let e = |e| df_error(&sh.file, e);
        let mut used: Vec<usize> = sets.iter().flatten().copied().collect();
        used.sort_unstable();
        used.dedup();
        // The function reads the row count off its arguments: with only the empty subset, it
        // gets a constant column of one code.
        let (args, sizes): (Vec<Expr>, Vec<usize>) = match used.is_empty() {
            true => (vec![lit(0u32)], vec![1]),
            false => used.iter().map(|&a| (col(format!("c{a}")), self.full_sizes[a])).unzip(),
        };
        let positions: Vec<Vec<usize>> =
            sets.iter().map(|s| s.iter().map(|a| used.binary_search(a).unwrap_or(0)).collect()).collect();
        let counts = CountsUdaf::new(positions, sizes).map_err(e)?;
        let call = counts.clone().udaf().call(args).alias("counts");
        let df = sh.rows.clone().aggregate(vec![], vec![call]).map_err(e)?;
        let batches = sh.collect(df)?;
        // An aggregate without GROUP BY gives one row: the counts of every subset.
        let internal = |m: &str| Error::Internal(format!("the query engine's result: {m}"));
        let mut blobs = vec![];
        for b in &batches {
            let c = b.column_by_name("counts").ok_or_else(|| internal("no counts column"))?;
            let c = c.as_binary_opt::<i32>().ok_or_else(|| internal("the counts are not binary"))?;
            blobs.extend(c.iter().flatten());
        }
        let [blob] = blobs.as_slice() else { return Err(internal("not one row of counts")) };
        counts
            .decode_result(blob)
            .map_err(e)?
            .into_iter()
            .map(|cells| {
                cells
                    .into_iter()
                    .map(|(codes, n)| Ok((codes, i64::try_from(n).map_err(|_| internal("a count past i64"))?)))
                    .collect()
            })
            .collect()
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
    fn left_out(&self) -> Result<Option<Sensitive<Vec<String>>>> {
        self.left_out_lines().map(Some)
    }
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

/// `subsets` (of columns with domain `sizes`) in order, cut into the fewest runs whose cells
/// ([`query_cells`]) stay within [`CELLS_PER_QUERY`]; a subset alone past the cap is a run.
fn chunk_by_cells<'a>(subsets: &'a [Vec<usize>], sizes: &[usize]) -> Vec<&'a [Vec<usize>]> {
    let mut out = vec![];
    let mut rest = subsets;
    while !rest.is_empty() {
        let mut cells = 0usize;
        let take = rest
            .iter()
            .position(|s| {
                cells = cells.saturating_add(query_cells(s.iter().map(|&a| sizes[a])));
                cells > CELLS_PER_QUERY
            })
            .unwrap_or(rest.len())
            .max(1);
        let (chunk, tail) = rest.split_at(take);
        out.push(chunk);
        rest = tail;
    }
    out
}

/// One Parquet or CSV file as DataFusion reads it for `table` (CSV: every column as text, as the
/// local reader reads it). `file` names the table in messages.
fn read_file(
    rt: &tokio::runtime::Runtime,
    ctx: &SessionContext,
    table: &Table,
    path: &Path,
    file: &str,
) -> Result<DataFrame> {
    let part = path.display().to_string();
    let path_str = path.to_str().ok_or_else(|| Error::data(&part, "the path is not valid UTF-8"))?;
    let ext = path.extension().and_then(|e| e.to_str()).map(|e| format!(".{e}")).unwrap_or_default();
    match Format::of(path) {
        Format::Parquet => rt.block_on(ctx.read_parquet(path_str, ParquetReadOptions::default().file_extension(&ext))),
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
                    .map_err(|e| df_error(&part, e))?
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect(),
                false => table.columns.iter().map(|c| c.name.clone()).collect(),
            };
            let text = ArrowSchema::new(names.iter().map(|n| Field::new(n, ArrowType::Utf8, true)).collect::<Vec<_>>());
            rt.block_on(ctx.read_csv(path_str, opts().schema(&text)))
        }
        f => {
            return Err(Error::Usage(format!(
                "{file}: the query engines read Parquet and CSV files, not {f:?}; convert it, or use --engine local"
            )));
        }
    }
    .map_err(|e| df_error(&part, e))
}

/// A session on the Ballista scheduler at `addr`.
#[cfg(feature = "engine-ballista")]
async fn ballista_context(addr: &str, config: SessionConfig) -> DfResult<SessionContext> {
    super::ballista::connect(addr, config).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::udaf::DENSE_CELLS;

    /// Runs stay within the cap and keep every subset once, in order; a sparse subset (more
    /// cells than a dense vector takes) is charged `DENSE_CELLS`, not its cells.
    #[test]
    fn subsets_are_chunked_by_cells() {
        // 2^10 and 2^11 codes: a pair has 2^21 cells (a whole query), a one-way 2^10 or 2^11.
        let sizes = [1 << 10, 1 << 10, 1 << 11, 1 << 11, 3];
        let all: Vec<Vec<usize>> = vec![vec![], vec![0], vec![0, 1], vec![1], vec![2, 3], vec![2, 3, 4], vec![4]];
        let runs = chunk_by_cells(&all, &sizes);
        assert_eq!(runs.concat(), all);
        for r in &runs {
            let cells: usize = r.iter().map(|s| query_cells(s.iter().map(|&a| sizes[a]))).sum();
            assert!(r.len() == 1 || cells <= CELLS_PER_QUERY, "{r:?}");
        }
        // [] [0] [0,1] [1]: 1 + 2^10 + 2^20 + 2^10; [2,3] [2,3,4]: both sparse, 2^20 each,
        // exactly the cap; [4] past it.
        assert_eq!(runs.iter().map(|r| r.len()).collect::<Vec<_>>(), vec![4, 2, 1]);
        assert_eq!(query_cells([1 << 11, 1 << 11]), DENSE_CELLS);
        assert!(chunk_by_cells(&[], &sizes).is_empty());
    }
}
