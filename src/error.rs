//! Errors a user can act on, and the exit code each maps to.
//!
//! Every error names what it concerns (file, row, column) in one paragraph. Errors raised on the
//! modelling path never quote a cell value: a message may end up in a shared log, and a value of
//! a real record is not ours to print there. `schema check`, an audit the data holder runs on
//! their own data, is where values are shown.

use std::path::Path;

/// Exit codes of the `privsynth` binary.
pub mod exit {
    pub const OK: i32 = 0;
    /// The run completed but found problems (check findings, failed gate).
    pub const FINDINGS: i32 = 1;
    /// Usage, configuration, schema or input-data error.
    pub const USAGE: i32 = 2;
    /// A privacy budget refused the run.
    pub const BUDGET: i32 = 3;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad command-line usage or option combination.
    #[error("{0}")]
    Usage(String),
    /// A schema file that cannot be read, parsed or used.
    #[error("schema {origin} {message}")]
    Schema { origin: String, message: String },
    /// A data file that cannot be read or does not fit its schema.
    #[error("{}", data_message(.file, .row, .line, .column, .message))]
    Data {
        file: String,
        /// 1-based data row (the header is not a row).
        row: Option<usize>,
        /// 1-based physical line in a text file, when known.
        line: Option<usize>,
        column: Option<String>,
        message: String,
    },
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    /// A privacy budget would be exceeded.
    #[error("{0}")]
    Budget(String),
    /// A bug or an unexpected library failure; reported without data values.
    #[error("internal error: {0}")]
    Internal(String),
}

fn data_message(
    file: &str,
    row: &Option<usize>,
    line: &Option<usize>,
    column: &Option<String>,
    message: &str,
) -> String {
    let mut at = vec![file.to_string()];
    match (row, line) {
        (Some(r), Some(l)) => at.push(format!("row {r} (line {l})")),
        (Some(r), None) => at.push(format!("row {r}")),
        (None, Some(l)) => at.push(format!("line {l}")),
        (None, None) => {}
    }
    if let Some(c) = column {
        at.push(format!("column {c:?}"));
    }
    format!("{}: {message}", at.join(", "))
}

pub type Result<T> = std::result::Result<T, Error>;

/// Set while a library call that may panic on an unsupported input (a Polars reader) runs
/// under `catch_unwind`: the binary's panic hook stays quiet then, because the panic becomes a
/// clear error instead of a crash.
pub static EXPECTED_PANIC: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Run `f`, turning a panic inside it into `on_panic()`.
pub fn guard_panics<T>(f: impl FnOnce() -> Result<T>, on_panic: impl FnOnce() -> Error) -> Result<T> {
    use std::sync::atomic::Ordering;
    EXPECTED_PANIC.store(true, Ordering::SeqCst);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    EXPECTED_PANIC.store(false, Ordering::SeqCst);
    r.unwrap_or_else(|_| Err(on_panic()))
}

/// The one mapping from the privacy core's errors: a refused charge is a budget refusal (exit
/// 3); a ledger that cannot be read or verified cannot vouch for the budget, so it refuses too;
/// anything else (invalid parameters, an OpenDP failure) is a bug.
impl From<privsynth_privacy::PrivacyError> for Error {
    fn from(e: privsynth_privacy::PrivacyError) -> Error {
        use privsynth_privacy::PrivacyError;
        match e {
            PrivacyError::Budget(b) => Error::Budget(b.to_string()),
            PrivacyError::Ledger { .. } => Error::Budget(format!("refused: {e}")),
            // A ledger file that cannot be opened or written is an input problem (exit 2).
            PrivacyError::LedgerIo { .. } => Error::Usage(e.to_string()),
            other => Error::Internal(other.to_string()),
        }
    }
}

impl Error {
    pub fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io { path: path.display().to_string(), source }
    }

    pub fn schema(origin: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Schema { origin: origin.into(), message: message.into() }
    }

    /// An error about a whole data file.
    pub fn data(file: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Data { file: file.into(), row: None, line: None, column: None, message: message.into() }
    }

    /// An error about one column of a data file.
    pub fn column(file: impl Into<String>, column: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Data { file: file.into(), row: None, line: None, column: Some(column.into()), message: message.into() }
    }

    /// A Polars operation that failed inside privsynth (a bug or a resource problem). Polars
    /// quotes cell values in some messages, so only the kind of failure is shown.
    pub fn polars(e: polars::prelude::PolarsError) -> Error {
        let debug = format!("{e:?}");
        let kind = debug.split(['(', ' ', '{']).next().unwrap_or("error");
        Error::Internal(format!(
            "a table operation failed ({kind}); the message is not shown because it may quote data"
        ))
    }

    /// A column that a Polars operation could not read as its schema type. Polars' message can
    /// quote a field, so the column's type in the file is shown instead.
    pub fn unreadable_column(
        file: &str,
        column: &str,
        kind: impl std::fmt::Display,
        dtype: &polars::prelude::DataType,
    ) -> Error {
        Error::column(file, column, format!("cannot be read as a {kind} column: its type in the file is {dtype}"))
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Budget(_) => exit::BUDGET,
            _ => exit::USAGE,
        }
    }
}
