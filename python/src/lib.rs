//! The native half of the `privsynth` Python package: the library layer (`privsynth::pipeline`)
//! behind Python classes. The Python half (`privsynth/__init__.py`) turns frames into Arrow
//! streams and back, draws progress and defines the exceptions this module raises.
//!
//! The rules of the command line hold here: a fit goes through the release protocol (policy
//! check, ledger entry) exactly as `privsynth fit` does; nothing raised or shown on the
//! modelling path carries a count or a cell of the real data; the GIL is released while the
//! pipeline works.

mod arrow;

use std::path::PathBuf;

use polars::prelude::DataFrame;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use privsynth::data::{self, RawTable};
use privsynth::ehr::LinkedModel;
use privsynth::error::Error;
use privsynth::mechanism::Mechanism;
use privsynth::model::file::ModelFile;
use privsynth::pipeline::audit::{self as paudit, AuditOptions, ReportFiles};
use privsynth::pipeline::linked::LinkedPlan;
use privsynth::pipeline::release::LedgerOptions;
use privsynth::pipeline::{FitOptions, FitRequest, Observer, Plan, WorkloadSource, frame, output};
use privsynth::propose::infer;
use privsynth::schema::{self, Schema as RsSchema};

use arrow::ArrowStream;

/// Raise `e` as the matching exception of `privsynth.errors`, with the file, row, line and
/// column it names as attributes.
fn raise(py: Python<'_>, e: Error) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let errors = py.import("privsynth.errors")?;
        let kw = PyDict::new(py);
        let class = match &e {
            Error::Usage(_) => "UsageError",
            Error::Schema { origin, .. } => {
                kw.set_item("origin", origin)?;
                "SchemaError"
            }
            Error::Data { file, row, line, column, .. } => {
                kw.set_item("file", file)?;
                kw.set_item("row", row)?;
                kw.set_item("line", line)?;
                kw.set_item("column", column)?;
                "InputError"
            }
            Error::Io { path, .. } => {
                kw.set_item("file", path)?;
                "FileError"
            }
            Error::Budget(_) => "BudgetRefused",
            Error::Internal(_) => "InternalError",
        };
        kw.set_item("exit_code", e.exit_code())?;
        let exc = errors.getattr(class)?.call((e.to_string(),), Some(&kw))?;
        Ok(PyErr::from_value(exc))
    };
    build().unwrap_or_else(|err| err)
}

/// Run `f` without the GIL and raise its error as a `privsynth` exception.
fn detached<T: Send>(py: Python<'_>, f: impl FnOnce() -> privsynth::error::Result<T> + Send) -> PyResult<T> {
    py.detach(f).map_err(|e| raise(py, e))
}

/// Progress: each pipeline step calls the Python object's `begin(step)` and `end()` (a tqdm
/// bar or a line on stderr, from `privsynth._progress`). The steps' names never carry data.
struct PyObserver(Option<Py<PyAny>>);

impl PyObserver {
    fn new(py: Python<'_>, enabled: bool) -> PyResult<PyObserver> {
        if !enabled {
            return Ok(PyObserver(None));
        }
        Ok(PyObserver(Some(py.import("privsynth._progress")?.getattr("Progress")?.call0()?.unbind())))
    }
}

/// Print what the command line prints on stderr (Python's `sys.stderr`, so that a notebook
/// shows it).
fn say(py: Python<'_>, lines: &[String], verbose: bool) -> PyResult<()> {
    if verbose && !lines.is_empty() {
        let err = py.import("sys")?.getattr("stderr")?;
        for l in lines {
            err.call_method1("write", (format!("{l}\n"),))?;
        }
    }
    Ok(())
}

impl Observer for PyObserver {
    fn begin(&self, step: &str) {
        if let Some(o) = &self.0 {
            Python::attach(|py| {
                let _ = o.call_method1(py, "begin", (step,));
            });
        }
    }
    fn end(&self) {
        if let Some(o) = &self.0 {
            Python::attach(|py| {
                let _ = o.call_method0(py, "end");
            });
        }
    }
}

/// A frame from Python: a path (read as the command line reads it) or an object with
/// `__arrow_c_stream__` (made by `privsynth._frames.to_stream`).
enum Input {
    Path(PathBuf),
    Frame(RawTable),
}

fn input(py: Python<'_>, data: &Bound<'_, PyAny>, name: &str) -> PyResult<Input> {
    if let Ok(p) = data.extract::<PathBuf>() {
        return Ok(Input::Path(p));
    }
    let frames = py.import("privsynth._frames")?;
    let (stream, label): (Bound<'_, PyAny>, String) = frames.call_method1("to_stream", (data, name))?.extract()?;
    let capsule = stream.call_method0("__arrow_c_stream__")?;
    let df = arrow::import_stream(&capsule, &label)?.map_err(|e| raise(py, e))?;
    Ok(Input::Frame(RawTable::in_memory(&label, df)))
}

/// Hand a frame to Python as `output` ("polars", "pandas" or "arrow"), with the categories of
/// `table` kept as categories in the schema's order.
fn to_python<'py>(py: Python<'py>, df: DataFrame, table: &schema::Table, output: &str) -> PyResult<Bound<'py, PyAny>> {
    let cats = PyDict::new(py);
    for c in &table.columns {
        if c.kind == schema::ColumnType::Categorical
            && let Some(list) = c.domain.as_ref().and_then(|d| d.categories.as_ref())
            && df.column(&c.name).is_ok()
        {
            cats.set_item(&c.name, PyList::new(py, list)?)?;
        }
    }
    let stream = Bound::new(py, ArrowStream::new(df))?;
    py.import("privsynth._frames")?.call_method1("from_stream", (stream, output, cats))
}

/// A privsynth schema: the public description of a table's columns, types, domains and roles
/// (the YAML file of `privsynth schema infer`).
#[pyclass(module = "privsynth._native", name = "Schema", frozen)]
#[derive(Clone)]
struct PySchema {
    inner: RsSchema,
    origin: String,
}

#[pymethods]
impl PySchema {
    /// Read and validate a schema file (YAML or JSON).
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<PySchema> {
        let inner = RsSchema::load(&path).map_err(|e| raise(py, e))?;
        Ok(PySchema { inner, origin: path.display().to_string() })
    }

    /// Parse and validate schema text.
    #[staticmethod]
    #[pyo3(signature = (text, origin="<string>"))]
    fn from_yaml(py: Python<'_>, text: &str, origin: &str) -> PyResult<PySchema> {
        let inner = RsSchema::from_yaml(text, origin).map_err(|e| raise(py, e))?;
        Ok(PySchema { inner, origin: origin.to_string() })
    }

    /// Propose a schema from a frame or a file. With `dp_epsilon`, under differential privacy
    /// (types from a noisy census, bounds from DP quantiles, categories from DP partition
    /// selection), charged to the ledger like `privsynth schema infer --dp-epsilon`; without
    /// it, every domain is read from the data (`source: data`) and a fit then needs
    /// `allow_data_domains=True`, outside the guarantee. Review the result before use.
    #[staticmethod]
    #[pyo3(signature = (data, dp_epsilon=None, dp_delta=1e-9, name="table", max_categories=infer::DEFAULT_MAX_CATEGORIES, ledger=None, policy=None, progress=true, verbose=true))]
    #[allow(clippy::too_many_arguments)]
    fn infer(
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        dp_epsilon: Option<f64>,
        dp_delta: f64,
        name: &str,
        max_categories: usize,
        ledger: Option<PathBuf>,
        policy: Option<PathBuf>,
        progress: bool,
        verbose: bool,
    ) -> PyResult<PySchema> {
        let opts = infer::Options { table_name: name.to_string(), csv: Default::default(), max_categories };
        let obs = PyObserver::new(py, progress)?;
        let data = input(py, data, name)?;
        match dp_epsilon {
            Some(eps) => {
                let ledger = ledger_options(ledger, policy);
                let (text, messages, release) = detached(py, || match data {
                    Input::Path(p) => {
                        privsynth::pipeline::propose::infer_dp_file(&p, &opts, eps, dp_delta, &ledger, &obs)
                    }
                    Input::Frame(raw) => {
                        privsynth::pipeline::propose::infer_dp_frame(raw, &opts, eps, dp_delta, &ledger, &obs)
                    }
                })?;
                drop(release);
                say(py, &messages, verbose)?;
                let inner = RsSchema::from_yaml(&text, name).map_err(|e| raise(py, e))?;
                Ok(PySchema { inner, origin: format!("<schema inferred under DP: {name}>") })
            }
            None => {
                let proposal = detached(py, || {
                    let raw = match data {
                        Input::Path(p) => data::read_as(&p, &opts.csv, None, data::Show::Header)?,
                        Input::Frame(raw) => frame::check_frame(raw)?,
                    };
                    infer::infer(&raw, &opts)
                })?;
                say(py, &proposal.warnings.iter().map(|w| format!("warning: {w}")).collect::<Vec<_>>(), verbose)?;
                Ok(PySchema { inner: proposal.schema, origin: format!("<schema inferred from the data: {name}>") })
            }
        }
    }

    /// The schema as YAML text.
    fn to_yaml(&self, py: Python<'_>) -> PyResult<String> {
        self.inner.to_yaml().map_err(|e| raise(py, e))
    }

    /// Write the schema as YAML (atomically).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let text = self.inner.to_yaml().map_err(|e| raise(py, e))?;
        data::write_atomic(&path, |f| std::io::Write::write_all(f, text.as_bytes())).map_err(|e| raise(py, e))
    }

    /// Names of the schema's tables.
    #[getter]
    fn tables(&self) -> Vec<String> {
        self.inner.tables.iter().map(|t| t.name.clone()).collect()
    }

    /// Whether this is a linked schema (several tables with a person as privacy unit).
    #[getter]
    fn is_linked(&self) -> bool {
        self.inner.is_linked()
    }

    /// Names of a table's columns (the only table by default).
    #[pyo3(signature = (table=None))]
    fn columns(&self, py: Python<'_>, table: Option<&str>) -> PyResult<Vec<String>> {
        let t = self.inner.table(table).map_err(|e| raise(py, e))?;
        Ok(t.columns.iter().map(|c| c.name.clone()).collect())
    }

    fn __repr__(&self) -> String {
        format!("privsynth.Schema({}, tables={:?})", self.origin, self.tables())
    }
}

/// The ledger the command line would use: `ledger`, else `PRIVSYNTH_LEDGER`, else
/// `.privsynth/ledger.jsonl` in the working folder.
fn ledger_options(ledger: Option<PathBuf>, policy: Option<PathBuf>) -> LedgerOptions {
    let mut o = LedgerOptions::default();
    if let Some(l) = ledger.or_else(|| std::env::var_os("PRIVSYNTH_LEDGER").map(PathBuf::from)) {
        o.ledger = l;
    }
    o.policy = policy;
    o
}

/// A `Schema` or a path to one.
fn schema_arg(py: Python<'_>, schema: &Bound<'_, PyAny>) -> PyResult<PySchema> {
    match schema.extract::<PathBuf>() {
        Ok(p) => PySchema::load(py, p),
        Err(_) => Ok(schema.cast::<PySchema>()?.get().clone()),
    }
}

/// The options of `privsynth fit`, from keyword arguments.
#[allow(clippy::too_many_arguments)]
fn fit_options(
    py: Python<'_>,
    mechanism: &str,
    iterations: Option<usize>,
    degree: usize,
    max_cells: f64,
    workload: Option<PathBuf>,
    max_model_mb: Option<f64>,
    rounds: Option<usize>,
    allow_data_domains: bool,
) -> PyResult<FitOptions> {
    let mechanism = match mechanism.to_ascii_lowercase().as_str() {
        "aim" => Mechanism::Aim,
        "mst" => Mechanism::Mst,
        m => return Err(raise(py, Error::Usage(format!("mechanism must be \"aim\" or \"mst\", got {m:?}")))),
    };
    let mut opts = FitOptions { mechanism, rounds, allow_data_domains, ..Default::default() };
    if let Some(i) = iterations {
        opts.iterations = i;
    }
    if let Some(m) = max_model_mb {
        opts.max_model_mb = m;
    }
    opts.workload = match workload {
        Some(w) => WorkloadSource::File(w),
        None => WorkloadSource::Schema { degree, max_cells },
    };
    Ok(opts)
}

/// What the single-table and the linked synthesizer share: the fit's settings (no schema when
/// loaded from a model file), the model `M` and what the last fit reported.
struct Core<M> {
    schema: Option<PySchema>,
    epsilon: f64,
    delta: f64,
    opts: FitOptions,
    ledger: LedgerOptions,
    model: Option<M>,
    origin: String,
    messages: Vec<String>,
    ledger_entry: Option<u64>,
    progress: bool,
    verbose: bool,
}

impl<M> Core<M> {
    /// A synthesizer to fit on `schema`. The budget is checked here, before any data is given.
    #[allow(clippy::too_many_arguments)]
    fn unfitted(
        py: Python<'_>,
        schema: PySchema,
        (epsilon, delta): (f64, f64),
        opts: FitOptions,
        ledger: LedgerOptions,
        progress: bool,
        verbose: bool,
    ) -> PyResult<Core<M>> {
        privsynth_privacy::Budget::from_epsilon_delta(epsilon, delta).map_err(|m| raise(py, Error::Usage(m)))?;
        Ok(Core {
            origin: schema.origin.clone(),
            schema: Some(schema),
            epsilon,
            delta,
            opts,
            ledger,
            model: None,
            messages: vec![],
            ledger_entry: None,
            progress,
            verbose,
        })
    }

    /// A synthesizer that samples from `model`, read from `path`.
    fn loaded(model: M, path: &std::path::Path, (epsilon, delta): (f64, f64), messages: Vec<String>) -> Core<M> {
        Core {
            schema: None,
            epsilon,
            delta,
            opts: FitOptions::default(),
            ledger: LedgerOptions::default(),
            model: Some(model),
            origin: path.display().to_string(),
            messages,
            ledger_entry: None,
            progress: true,
            verbose: true,
        }
    }

    fn model(&self, py: Python<'_>) -> PyResult<&M> {
        self.model
            .as_ref()
            .ok_or_else(|| raise(py, Error::Usage("the synthesizer is not fitted: call fit() first".into())))
    }

    /// Keep what a fit released (charged as ledger entry `entry`) and print its lines.
    fn fitted(&mut self, py: Python<'_>, model: M, messages: Vec<String>, entry: u64) -> PyResult<()> {
        say(py, &messages, self.verbose)?;
        self.ledger_entry = Some(entry);
        self.messages = messages;
        self.model = Some(model);
        Ok(())
    }
}

/// Write `text` to `path` atomically.
fn write_text(py: Python<'_>, path: &std::path::Path, text: &str) -> PyResult<()> {
    data::write_atomic(path, |f| std::io::Write::write_all(f, text.as_bytes())).map_err(|e| raise(py, e))
}

/// The guarantee every model states: epsilon, delta and rho.
fn guarantee(py: Python<'_>, epsilon: f64, delta: f64, rho: f64) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("epsilon", epsilon)?;
    d.set_item("delta", delta)?;
    d.set_item("rho", rho)?;
    Ok(d)
}

/// A DP synthesizer of one table: fit once (charged to the ledger), then sample as often as
/// wanted (post-processing, free).
#[pyclass(module = "privsynth._native", name = "Synthesizer")]
struct PySynthesizer {
    core: Core<ModelFile>,
    table: Option<String>,
}

impl PySynthesizer {
    fn plan(&self, py: Python<'_>) -> PyResult<(Plan, RsSchema)> {
        let schema = self.core.schema.as_ref().ok_or_else(|| {
            raise(
                py,
                Error::Usage(
                    "this synthesizer was loaded from a model file: it samples, it does not fit (build a new one from a schema)"
                        .into(),
                ),
            )
        })?;
        if schema.inner.is_linked() {
            return Err(raise(
                py,
                Error::Usage(
                    "a linked schema fits a dict of tables: use privsynth.LinkedSynthesizer for it (or the command line's `synth FOLDER`)"
                        .into(),
                ),
            ));
        }
        let table = schema.inner.table(self.table.as_deref()).map_err(|e| raise(py, e))?.clone();
        let plan = Plan::new(&schema.inner, table, self.core.opts.clone(), &schema.origin).map_err(|e| raise(py, e))?;
        Ok((plan, schema.inner.clone()))
    }
}

#[pymethods]
impl PySynthesizer {
    #[new]
    #[pyo3(signature = (schema, epsilon=1.0, delta=1e-9, mechanism="aim", *, table=None, ledger=None, policy=None, iterations=None, degree=2, max_cells=10_000.0, workload=None, max_model_mb=None, rounds=None, allow_data_domains=false, progress=true, verbose=true))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        schema: &Bound<'_, PyAny>,
        epsilon: f64,
        delta: f64,
        mechanism: &str,
        table: Option<String>,
        ledger: Option<PathBuf>,
        policy: Option<PathBuf>,
        iterations: Option<usize>,
        degree: usize,
        max_cells: f64,
        workload: Option<PathBuf>,
        max_model_mb: Option<f64>,
        rounds: Option<usize>,
        allow_data_domains: bool,
        progress: bool,
        verbose: bool,
    ) -> PyResult<PySynthesizer> {
        let schema = schema_arg(py, schema)?;
        let opts = fit_options(
            py,
            mechanism,
            iterations,
            degree,
            max_cells,
            workload,
            max_model_mb,
            rounds,
            allow_data_domains,
        )?;
        let core =
            Core::unfitted(py, schema, (epsilon, delta), opts, ledger_options(ledger, policy), progress, verbose)?;
        let s = PySynthesizer { core, table };
        let (plan, _) = s.plan(py)?;
        drop(plan);
        Ok(s)
    }

    /// Fit the DP model on `data` (a pandas or polars DataFrame, a pyarrow Table, anything with
    /// `__arrow_c_stream__`, or a path to a CSV, Parquet or Arrow file), charging the ledger once.
    /// Prints what `privsynth fit` prints (released values and public facts only) unless
    /// `verbose=False`; `messages` keeps it. `name` names a frame in the ledger and in errors.
    /// Returns the synthesizer, so that calls chain.
    #[pyo3(signature = (data, name=None))]
    fn fit<'py>(
        mut slf: PyRefMut<'py, Self>,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        name: Option<String>,
    ) -> PyResult<PyRefMut<'py, Self>> {
        let this = &mut *slf;
        let (plan, schema) = this.plan(py)?;
        let label = name.unwrap_or_else(|| "<data frame>".to_string());
        let data = input(py, data, &label)?;
        let obs = PyObserver::new(py, this.core.progress)?;
        let req = |data: PathBuf| FitRequest {
            data,
            epsilon: this.core.epsilon,
            delta: this.core.delta,
            holdout: None,
            ledger: this.core.ledger.clone(),
            diagnostics: false,
        };
        let out = detached(py, || match data {
            Input::Path(p) => plan.fit_file(&schema, &req(p), &obs),
            Input::Frame(raw) => {
                let r = req(PathBuf::from(&raw.file));
                plan.fit_frame(&schema, raw, &r, &obs)
            }
        })?;
        drop(out.release);
        this.core.fitted(py, out.model, out.messages, out.entry.seq)?;
        Ok(slf)
    }

    /// Draw `n` synthetic records (default: the model's DP estimate of the table size) with
    /// `seed`; returns a polars DataFrame, a pandas DataFrame or a pyarrow Table (`output`).
    /// Post-processing of the released model: no budget is spent.
    #[pyo3(signature = (n=None, seed=None, output="polars"))]
    fn sample<'py>(
        &self,
        py: Python<'py>,
        n: Option<usize>,
        seed: Option<u64>,
        output: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let model = self.core.model(py)?;
        let seed = seed.unwrap_or_else(rand::random);
        let obs = PyObserver::new(py, self.core.progress)?;
        let origin = self.core.origin.clone();
        let (df, lines) = detached(py, || {
            let (synth, lines) = output::sample_table(model, &origin, n, seed, &obs)?;
            Ok((synth.into_frame()?, lines))
        })?;
        say(py, &lines, self.core.verbose)?;
        to_python(py, df, &model.table, output)
    }

    /// Sample and write a file (CSV in the table's dialect, Parquet or Arrow IPC by extension),
    /// as `privsynth sample` does.
    #[pyo3(signature = (path, n=None, seed=None))]
    fn sample_to_file(&self, py: Python<'_>, path: PathBuf, n: Option<usize>, seed: Option<u64>) -> PyResult<()> {
        let model = self.core.model(py)?;
        let seed = seed.unwrap_or_else(rand::random);
        let origin = self.core.origin.clone();
        detached(py, || {
            // The format is decided from the extension before anything is drawn; records are
            // drawn and written in batches, as `privsynth sample` does without an LLM stage.
            let how = output::Output::new(privsynth::data::Format::for_output(&path, None)?);
            output::sample_to_file(model, &origin, n, seed, (&path, how), &privsynth::pipeline::Silent).map(|_| ())
        })
    }

    /// Write the model file (released values only; `privsynth sample MODEL` reads it).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        write_text(py, &path, &self.core.model(py)?.to_json().map_err(|e| raise(py, e))?)
    }

    /// A synthesizer that samples from a model file written by `save` or `privsynth fit`.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<PySynthesizer> {
        let model = ModelFile::load(&path).map_err(|e| raise(py, e))?;
        let (table, budget, messages) =
            (Some(model.table.name.clone()), (model.privacy.epsilon, model.privacy.delta), model.guarantee_warnings());
        Ok(PySynthesizer { core: Core::loaded(model, &path, budget, messages), table })
    }

    /// Whether a model is there to sample from.
    #[getter]
    fn fitted(&self) -> bool {
        self.core.model.is_some()
    }

    /// The guarantee of the fitted model: epsilon, delta, rho and the privacy unit.
    #[getter]
    fn privacy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let m = self.core.model(py)?;
        let d = guarantee(py, m.privacy.epsilon, m.privacy.delta, m.privacy.rho)?;
        d.set_item("unit", m.privacy.unit.clone())?;
        d.set_item("rows_per_unit", m.privacy.rows_per_unit)?;
        d.set_item("outside_guarantee", m.privacy.outside_guarantee.clone())?;
        Ok(d)
    }

    /// The lines the last fit reported (public facts and released values only).
    #[getter]
    fn messages(&self) -> Vec<String> {
        self.core.messages.clone()
    }

    /// The sequence number of the ledger entry the last fit recorded.
    #[getter]
    fn ledger_entry(&self) -> Option<u64> {
        self.core.ledger_entry
    }

    /// The schema of the model's table (a fitted or loaded synthesizer).
    #[getter]
    fn schema(&self, py: Python<'_>) -> PyResult<PySchema> {
        match (&self.core.schema, &self.core.model) {
            (Some(s), _) => Ok(s.clone()),
            (None, Some(m)) => {
                let inner = RsSchema {
                    version: schema::FORMAT_VERSION,
                    person: None,
                    dp_inference: None,
                    tables: vec![m.table.clone()],
                };
                Ok(PySchema { inner, origin: self.core.origin.clone() })
            }
            (None, None) => Err(raise(py, Error::Internal("a synthesizer without schema or model".into()))),
        }
    }
}

/// A DP synthesizer of linked tables with the person as privacy unit (a linked schema): fit
/// once on a dict of frames (table name to frame) or a folder, charged to the ledger once;
/// sample dicts of frames with consistent keys.
#[pyclass(module = "privsynth._native", name = "LinkedSynthesizer")]
struct PyLinkedSynthesizer {
    core: Core<LinkedModel>,
}

#[pymethods]
impl PyLinkedSynthesizer {
    #[new]
    #[pyo3(signature = (schema, epsilon=1.0, delta=1e-9, mechanism="aim", *, ledger=None, policy=None, iterations=None, degree=2, max_cells=10_000.0, max_model_mb=None, rounds=None, allow_data_domains=false, progress=true, verbose=true))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        schema: &Bound<'_, PyAny>,
        epsilon: f64,
        delta: f64,
        mechanism: &str,
        ledger: Option<PathBuf>,
        policy: Option<PathBuf>,
        iterations: Option<usize>,
        degree: usize,
        max_cells: f64,
        max_model_mb: Option<f64>,
        rounds: Option<usize>,
        allow_data_domains: bool,
        progress: bool,
        verbose: bool,
    ) -> PyResult<PyLinkedSynthesizer> {
        let schema = schema_arg(py, schema)?;
        if !schema.inner.is_linked() {
            return Err(raise(py, Error::Usage("a single-table schema: use privsynth.Synthesizer".into())));
        }
        let opts =
            fit_options(py, mechanism, iterations, degree, max_cells, None, max_model_mb, rounds, allow_data_domains)?;
        let core = Core::unfitted(
            py,
            schema.clone(),
            (epsilon, delta),
            opts,
            ledger_options(ledger, policy),
            progress,
            verbose,
        )?;
        LinkedPlan::new(&schema.inner, core.opts.clone(), &schema.origin).map_err(|e| raise(py, e))?;
        Ok(PyLinkedSynthesizer { core })
    }

    /// Fit on `data`: a dict of frames by table name, or a folder holding one file per table
    /// (as `privsynth synth FOLDER`). Charged to the ledger once. Returns `self`.
    #[pyo3(signature = (data, name=None))]
    fn fit<'py>(
        mut slf: PyRefMut<'py, Self>,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        name: Option<String>,
    ) -> PyResult<PyRefMut<'py, Self>> {
        let this = &mut *slf;
        let schema = this.core.schema.as_ref().ok_or_else(|| {
            raise(py, Error::Usage("this synthesizer was loaded from a model file: it samples, it does not fit".into()))
        })?;
        let plan = LinkedPlan::new(&schema.inner, this.core.opts.clone(), &schema.origin).map_err(|e| raise(py, e))?;
        let obs = PyObserver::new(py, this.core.progress)?;
        let (eps, delta, ledger) = (this.core.epsilon, this.core.delta, this.core.ledger.clone());
        let out = if let Ok(dir) = data.extract::<PathBuf>() {
            let specs = vec![dir.display().to_string()];
            detached(py, || plan.fit_files(&specs, eps, delta, None, &ledger, &obs))?
        } else {
            let dict = data.cast::<PyDict>().map_err(|_| {
                pyo3::exceptions::PyTypeError::new_err("a linked fit takes a dict of frames by table name, or a folder")
            })?;
            let mut frames = std::collections::HashMap::new();
            for (k, v) in dict.iter() {
                let table: String = k.extract()?;
                let Input::Frame(raw) = input(py, &v, &table)? else {
                    return Err(pyo3::exceptions::PyTypeError::new_err(
                        "give frames in the dict (or a folder instead of the dict)",
                    ));
                };
                frames.insert(table, raw);
            }
            let label = name.unwrap_or_else(|| "<dict of data frames>".to_string());
            detached(py, || plan.fit_frames(frames, &label, eps, delta, None, &ledger, &obs))?
        };
        drop(out.release);
        this.core.fitted(py, out.model, out.messages, out.entry.seq)?;
        Ok(slf)
    }

    /// Draw `persons` persons (default: the model's DP estimate) and their events with `seed`:
    /// a dict of frames by table name (`output` as in `Synthesizer.sample`).
    #[pyo3(signature = (persons=None, seed=None, output="polars"))]
    fn sample<'py>(
        &self,
        py: Python<'py>,
        persons: Option<usize>,
        seed: Option<u64>,
        output: &str,
    ) -> PyResult<Bound<'py, PyDict>> {
        use rand::SeedableRng;
        let m = self.core.model(py)?;
        let seed = seed.unwrap_or_else(rand::random);
        let obs = PyObserver::new(py, self.core.progress)?;
        let origin = self.core.origin.clone();
        let (tables, lines) = detached(py, || {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let out = {
                let _s = privsynth::pipeline::Step::start(&obs, "sampling linked tables");
                privsynth::ehr::sample::sample(m, &origin, persons, &mut rng)?
            };
            let lines = out.report.lines();
            Ok((out.into_tables(), lines))
        })?;
        say(py, &lines, self.core.verbose)?;
        let d = PyDict::new(py);
        for (name, df) in tables {
            let table = m
                .schema
                .tables
                .iter()
                .find(|t| t.name == name)
                .ok_or_else(|| raise(py, Error::Internal(format!("sampled table {name} is not in the schema"))))?;
            d.set_item(&name, to_python(py, df, table, output)?)?;
        }
        Ok(d)
    }

    /// Write the linked model file (`privsynth sample MODEL -o FOLDER` reads it).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        write_text(py, &path, &self.core.model(py)?.to_json().map_err(|e| raise(py, e))?)
    }

    /// A linked synthesizer that samples from a linked model file.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<PyLinkedSynthesizer> {
        let model = LinkedModel::load(&path).map_err(|e| raise(py, e))?;
        let budget = (model.privacy.epsilon, model.privacy.delta);
        Ok(PyLinkedSynthesizer { core: Core::loaded(model, &path, budget, vec![]) })
    }

    #[getter]
    fn fitted(&self) -> bool {
        self.core.model.is_some()
    }

    #[getter]
    fn messages(&self) -> Vec<String> {
        self.core.messages.clone()
    }

    #[getter]
    fn ledger_entry(&self) -> Option<u64> {
        self.core.ledger_entry
    }

    /// The guarantee of the linked model (the person is the unit).
    #[getter]
    fn privacy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let m = self.core.model(py)?;
        guarantee(py, m.privacy.epsilon, m.privacy.delta, m.privacy.rho)
    }
}

/// What an audit found: the report as a dict (`report["fidelity"]`, ...), its verdict
/// (`passed`), a text summary and the HTML page.
#[pyclass(module = "privsynth._native", name = "AuditReport", frozen)]
struct PyReport {
    json: String,
    html: String,
    summary: String,
    passed: bool,
}

#[pymethods]
impl PyReport {
    /// Whether every release gate passed.
    #[getter]
    fn passed(&self) -> bool {
        self.passed
    }

    /// The report as JSON text (the format `privsynth audit --json` writes).
    fn to_json(&self) -> String {
        self.json.clone()
    }

    /// The report as a dict (the JSON report's structure).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py.import("json")?.call_method1("loads", (&self.json,))
    }

    fn __getitem__<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyAny>> {
        self.to_dict(py)?.get_item(key)
    }

    fn __contains__(&self, py: Python<'_>, key: &str) -> PyResult<bool> {
        self.to_dict(py)?.contains(key)
    }

    fn keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.to_dict(py)?.call_method0("keys")
    }

    fn __repr__(&self) -> String {
        format!("privsynth.AuditReport(passed={})", if self.passed { "True" } else { "False" })
    }

    /// The text summary `privsynth audit` prints.
    fn summary(&self) -> String {
        self.summary.clone()
    }

    /// Write the HTML report (self-contained, for the data holder: it describes real data).
    fn to_html(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        write_text(py, &path, &self.html)
    }

    /// The HTML report as text (e.g. for `IPython.display.HTML`).
    fn html(&self) -> String {
        self.html.clone()
    }
}

/// Audit a synthetic table against the real rows it was fitted on (`train`) and real rows it
/// never saw (`holdout`): fidelity, memorization and re-identification, with the release
/// gates (the default gates, or a gates file). Each table is a frame or a path; `schema` a
/// `Schema` or a path. The report describes real data: it is for the data holder.
#[pyfunction]
#[pyo3(signature = (train, holdout, synthetic, schema, table=None, qi=None, secret=None, attacks=2000, seed=0, gates=None, progress=true))]
#[allow(clippy::too_many_arguments)]
fn audit(
    py: Python<'_>,
    train: &Bound<'_, PyAny>,
    holdout: &Bound<'_, PyAny>,
    synthetic: &Bound<'_, PyAny>,
    schema: &Bound<'_, PyAny>,
    table: Option<String>,
    qi: Option<Vec<String>>,
    secret: Option<String>,
    attacks: usize,
    seed: u64,
    gates: Option<PathBuf>,
    progress: bool,
) -> PyResult<PyReport> {
    let schema = schema_arg(py, schema)?;
    if schema.inner.is_linked() {
        return Err(raise(
            py,
            Error::Usage("audit of linked tables: use the command line's `privsynth audit` on folders".into()),
        ));
    }
    let t = schema.inner.table(table.as_deref()).map_err(|e| raise(py, e))?.clone();
    let gates = privsynth::report::gates::load(gates.as_deref()).map_err(|e| raise(py, e))?;
    let (tr, ho, sy) = (input(py, train, "train")?, input(py, holdout, "holdout")?, input(py, synthetic, "synthetic")?);
    let opts = AuditOptions { qi, secret, attacks, seed, ..Default::default() };
    let obs = PyObserver::new(py, progress)?;
    let report = detached(py, || {
        let modelled = paudit::modelled(&t);
        let read = |i: Input, t: &schema::Table| -> privsynth::error::Result<RawTable> {
            match i {
                Input::Path(p) => data::read_table_as(&p, t, data::Show::Header),
                Input::Frame(raw) => frame::frame_for_table(raw, t),
            }
        };
        let (tr, ho, sy) = (read(tr, &t)?, read(ho, &t)?, read(sy, &modelled)?);
        paudit::audit(&t, &tr, &ho, &sy, &opts, &gates, &ReportFiles::default(), &obs)
    })?;
    Ok(PyReport {
        json: report.to_json().map_err(|e| raise(py, e))?,
        html: privsynth::report::html::render(&report),
        summary: privsynth::report::summary(&report),
        passed: report.passed(),
    })
}

/// The version of the Rust core.
#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySchema>()?;
    m.add_class::<PySynthesizer>()?;
    m.add_class::<PyLinkedSynthesizer>()?;
    m.add_class::<PyReport>()?;
    m.add_class::<ArrowStream>()?;
    m.add_function(wrap_pyfunction!(audit, m)?)?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    Ok(())
}
