//! Frames across the Arrow C stream interface (the `__arrow_c_stream__` PyCapsule protocol):
//! pandas (through pyarrow), polars and pyarrow hand privsynth a stream of record batches, and
//! privsynth hands back its synthetic tables the same way. No copy to text on either side.

use std::ffi::CStr;

use polars::prelude::*;
use polars_arrow::array::{Array, StructArray};
use polars_arrow::datatypes::{ArrowDataType, Field as ArrowField};
use polars_arrow::ffi::{self, ArrowArrayStream};
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

use privsynth::error::{Error, Result};

const STREAM: &CStr = c"arrow_array_stream";

/// Read an Arrow stream capsule into a polars frame. `name` names the frame in errors.
pub fn import_stream(capsule: &Bound<'_, PyAny>, name: &str) -> PyResult<std::result::Result<DataFrame, Error>> {
    let capsule = capsule.cast::<PyCapsule>()?;
    let ptr = capsule.pointer_checked(Some(STREAM))?.cast::<ArrowArrayStream>();
    // The consumer moves the stream out and leaves a released one behind (the protocol's
    // rule), so the capsule's destructor does not release it twice.
    let stream = unsafe { std::ptr::replace(ptr.as_ptr(), ArrowArrayStream::empty()) };
    Ok(read_stream(Box::new(stream), name))
}

fn read_stream(stream: Box<ArrowArrayStream>, name: &str) -> Result<DataFrame> {
    let bad = |what: &str| Error::data(name, format!("cannot be read as an Arrow stream: {what}"));
    let mut reader =
        unsafe { ffi::ArrowArrayStreamReader::try_new(stream) }.map_err(|_| bad("the producer gave no schema"))?;
    let ArrowDataType::Struct(fields) = reader.field().dtype().clone() else {
        return Err(bad("its batches are not records (a struct of columns)"));
    };
    let mut chunks: Vec<Vec<Box<dyn Array>>> = vec![vec![]; fields.len()];
    while let Some(batch) = unsafe { reader.next() } {
        let batch = batch.map_err(|_| bad("the producer failed while sending a batch"))?;
        let rec = batch.as_any().downcast_ref::<StructArray>().ok_or_else(|| bad("a batch is not a record batch"))?;
        if rec.null_count() > 0 {
            return Err(bad("a batch has null records"));
        }
        for (i, v) in rec.values().iter().enumerate() {
            chunks[i].push(v.clone());
        }
    }
    let mut columns = Vec::with_capacity(fields.len());
    let mut height = 0;
    for (f, arrays) in fields.iter().zip(chunks) {
        let s = if arrays.is_empty() {
            Series::new_empty(f.name.clone(), &DataType::from_arrow_field(f))
        } else {
            // Polars panics on a few Arrow types it was built without; that is an unsupported
            // column, not a crash.
            let col = f.name.to_string();
            let unsupported = || {
                Error::column(
                    name,
                    &col,
                    format!(
                        "has Arrow type {:?}, which privsynth does not read (use numbers, text, booleans, categories, dates or datetimes)",
                        f.dtype()
                    ),
                )
            };
            privsynth::error::guard_panics(
                || Series::from_arrow_chunks(f.name.clone(), arrays).map_err(|_| unsupported()),
                unsupported,
            )?
        };
        height = s.len();
        columns.push(s.into_column());
    }
    DataFrame::new(height, columns).map_err(|_| bad("its columns have different lengths"))
}

/// A polars frame offered to Python through `__arrow_c_stream__` (once: the stream moves it).
#[pyclass(module = "privsynth._native", name = "ArrowStream")]
pub struct ArrowStream {
    df: Option<DataFrame>,
}

impl ArrowStream {
    pub fn new(df: DataFrame) -> ArrowStream {
        ArrowStream { df: Some(df) }
    }
}

/// The stream a capsule carries; moved out by the consumer.
#[repr(transparent)]
struct SendStream(ArrowArrayStream);
// The stream owns its batches (no reference to Python objects or thread-local state); the
// protocol allows a consumer on any thread.
unsafe impl Send for SendStream {}

#[pymethods]
impl ArrowStream {
    /// The Arrow PyCapsule stream protocol. `requested_schema` is ignored: the columns come in
    /// the types the table's schema gives them (Arrow's large strings, dictionaries for
    /// categories, date32 and timestamp[ms]).
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &mut self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        let mut df = self
            .df
            .take()
            .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("this stream was already consumed"))?;
        df.rechunk_mut();
        // The oldest Arrow layout (large strings rather than string views) reads in every
        // pyarrow and pandas version.
        let compat = CompatLevel::oldest();
        let arrow_fields: Vec<ArrowField> = df.columns().iter().map(|c| c.field().to_arrow(compat)).collect::<Vec<_>>();
        let dtype = ArrowDataType::Struct(arrow_fields.clone());
        let height = df.height();
        let batches: Vec<Box<dyn Array>> = df
            .iter_chunks(compat, false)
            .map(|rb| {
                let len = rb.height();
                Box::new(StructArray::new(dtype.clone(), len, rb.into_arrays(), None)) as Box<dyn Array>
            })
            .collect();
        let batches = if batches.is_empty() && height == 0 { vec![] } else { batches };
        let field = ArrowField::new("".into(), dtype, false);
        let stream = ffi::export_iterator(Box::new(batches.into_iter().map(Ok)), field);
        PyCapsule::new_with_value_and_destructor(py, SendStream(stream), STREAM, |s, _| drop(s))
    }
}
