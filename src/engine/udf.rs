//! privsynth's DataFusion scalar functions: encode a column with the codec, read the privacy
//! unit's key, draw a row's keyed bounding value; and how they travel to a Ballista scheduler
//! and executors (`super::ballista`). Used by the counting plan ([`super::datafusion`]).

use std::any::Any;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, UInt32Array, UInt64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType as ArrowType, Float64Type, Int32Type, Int64Type, TimeUnit as ArrowUnit, UInt64Type,
};
use datafusion::common::DataFusionError;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use polars::prelude::{DataType as PlType, NamedFrom, Series, TimeUnit as PlUnit};

use privsynth_privacy::bounding::SecretKey;

use crate::codec::{ColumnCodec, Note, Problem};
use crate::schema::{OutOfDomain, Table};

pub(super) type DfResult<T> = std::result::Result<T, DataFusionError>;

/// A message of ours inside a DataFusion error (marked so that the counting plan's error mapping passes it on).
pub(super) const OURS: &str = "privsynth: ";

/// An internal error of ours inside a DataFusion error (a bug, not the data's fault; passed on
/// as [`crate::error::Error::Internal`]). Checked before [`OURS`], which it does not contain.
pub(super) const INTERNAL: &str = "privsynth internal: ";

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
pub(super) struct EncodeUdf {
    name: String,
    /// The table and column the codec is made from (what a remote executor rebuilds it from).
    table: Arc<Table>,
    column: String,
    codec: ColumnCodec,
    file: String,
    signature: Signature,
}

impl EncodeUdf {
    pub(super) fn new(
        name: String,
        table: Arc<Table>,
        column: &str,
        file: String,
    ) -> std::result::Result<EncodeUdf, String> {
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
/// (`crate::engine::ballista`).
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
pub(super) struct UnitKeyUdf {
    name: String,
    signature: Signature,
}

impl UnitKeyUdf {
    pub(super) fn new() -> UnitKeyUdf {
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
pub(super) struct DrawUdf {
    name: String,
    key: Arc<SecretKey>,
    signature: Signature,
}

impl DrawUdf {
    pub(super) fn new(key: Arc<SecretKey>) -> DrawUdf {
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
