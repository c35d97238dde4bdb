//! Reading and writing tables with Polars.
//!
//! Input: CSV (read as text, so that every cell is judged by the schema rather than by a type
//! guess), Parquet and Arrow IPC (typed). Before Polars parses a CSV file, one streaming pass
//! checks its structure (UTF-8, a header, the same number of fields on every line) so that a bad
//! file gets an error naming its line instead of a parser message. Output: CSV, Parquet or IPC,
//! written to a temporary file in the target folder and renamed into place, so a failed run
//! leaves no partial file.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::error::{Error, Result};
use crate::schema::{self, CsvFormat, Table};

/// File formats privsynth reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Parquet,
    Ipc,
}

impl Format {
    /// Format from the file extension; CSV-like text for anything unknown.
    pub fn of(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("parquet" | "pq") => Format::Parquet,
            Some("arrow" | "ipc" | "feather") => Format::Ipc,
            _ => Format::Csv,
        }
    }

    /// The format a known extension names; `None` for any other extension or none.
    pub fn known(path: &Path) -> Option<Format> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("csv" | "tsv") => Some(Format::Csv),
            Some("parquet" | "pq") => Some(Format::Parquet),
            Some("arrow" | "ipc" | "feather") => Some(Format::Ipc),
            _ => None,
        }
    }

    /// The extension of a file (or of the tables of a folder) written in this format.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Parquet => "parquet",
            Format::Ipc => "arrow",
        }
    }

    /// The format of the output file `path`: `requested` (`--format`) or else its extension.
    /// Decided before anything is read or charged: an unknown or missing extension without
    /// `--format`, or an extension that names another format than `--format`, is a usage error
    /// listing the supported extensions (never a silent CSV).
    pub fn for_output(path: &Path, requested: Option<Format>) -> Result<Format> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match (Format::known(path), requested) {
            (Some(f), None) => Ok(f),
            (None, Some(r)) => Ok(r),
            (Some(f), Some(r)) if f == r => Ok(f),
            (Some(f), Some(r)) => Err(Error::Usage(format!(
                "{} has the extension .{ext} ({}) but --format asks for {}: change one of them",
                path.display(),
                f.name(),
                r.name()
            ))),
            (None, None) => Err(Error::Usage(format!(
                "{}: {}; supported: .{} (or give --format csv|parquet|arrow)",
                path.display(),
                if ext.is_empty() {
                    "the output has no extension to tell its format".to_string()
                } else {
                    format!("privsynth does not write .{ext} files")
                },
                TABLE_EXTENSIONS.join(", .")
            ))),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::Csv => "CSV",
            Format::Parquet => "Parquet",
            Format::Ipc => "Arrow IPC",
        }
    }
}

/// How a synthetic table is written: its format, and whether a CSV file starts with a header
/// line (the default, also for headerless input: readers such as pandas otherwise take the
/// first record for the column names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    pub format: Format,
    pub header: bool,
}

impl Output {
    pub fn new(format: Format) -> Output {
        Output { format, header: true }
    }
}

/// Extensions of table files, in the order a folder of linked tables is searched for
/// `<table>.<ext>` (the one list `synth`, `schema check` and `schema infer` use for folders).
pub const TABLE_EXTENSIONS: &[&str] = &["csv", "tsv", "parquet", "pq", "arrow", "ipc", "feather"];

/// The file holding table `name` in folder `dir`, or an error naming the expected file.
pub fn table_file(dir: &Path, name: &str) -> Result<PathBuf> {
    for ext in TABLE_EXTENSIONS {
        let p = dir.join(format!("{name}.{ext}"));
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(Error::data(
        dir.join(format!("{name}.csv")).display().to_string(),
        format!(
            "does not exist: the schema's table {name:?} is read from {name}.csv (or .{}) in {}",
            TABLE_EXTENSIONS[1..].join(", ."),
            dir.display()
        ),
    ))
}

/// A table as read from a file, before encoding. Holds private data.
pub struct RawTable {
    /// The file it came from, for messages.
    pub file: String,
    pub df: DataFrame,
    /// Physical line of data row 0 of the file in a text file, when rows and lines correspond
    /// one to one.
    first_line: Option<usize>,
    /// Row of the file that is row 0 of this table (a batch of a streamed file starts later).
    first_row: usize,
}

impl RawTable {
    /// 1-based line of 0-based data row `row` of this table, when known.
    pub fn line_of(&self, row: usize) -> Option<usize> {
        self.first_line.map(|l| l + self.first_row + row)
    }

    /// 0-based row of the file that is this table's row 0 (non-zero for a streamed batch).
    pub fn first_row(&self) -> usize {
        self.first_row
    }

    pub fn series(&self, name: &str) -> Result<&Series> {
        self.df
            .column(name)
            .map(|c| c.as_materialized_series())
            .map_err(|_| Error::column(&self.file, name, "is not in the file"))
    }

    /// A table held in memory, for tests of the encoding.
    #[doc(hidden)]
    pub fn for_tests(file: &str, df: DataFrame) -> RawTable {
        RawTable { file: file.to_string(), df, first_line: None, first_row: 0 }
    }

    /// A table built in memory (derived model tables, synthetic records); `file` names it in
    /// messages.
    pub fn in_memory(file: &str, df: DataFrame) -> RawTable {
        RawTable { file: file.to_string(), df, first_line: None, first_row: 0 }
    }

    /// The rows `idx`, in that order, under the name `file` (line numbers are not kept).
    pub fn take(&self, idx: &[usize], file: String) -> Result<RawTable> {
        let ca = IdxCa::from_vec("idx".into(), idx.iter().map(|&i| i as IdxSize).collect());
        let df = self.df.take(&ca).map_err(Error::polars)?;
        Ok(RawTable { file, df, first_line: None, first_row: 0 })
    }

    pub fn column_names(&self) -> Vec<String> {
        self.df.get_column_names().iter().map(|s| s.to_string()).collect()
    }
}

/// What a reading error may show of the file. On the modelling path (`fit`, `synth`, DP
/// inference) nothing of its content: a "header" may be a data row of a file read the wrong way,
/// and a parser's message may quote a field. The data holder's own commands (`schema check`,
/// `schema infer`, the audit) may show header names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    Nothing,
    Header,
}

/// The display name of `path`, a regular file. Only regular files are read: a pipe or device
/// could hang the run, and is read twice (fingerprint, then parse).
fn regular_file(path: &Path) -> Result<String> {
    let file = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| {
        Error::data(
            &file,
            match e.kind() {
                std::io::ErrorKind::NotFound => "does not exist".to_string(),
                _ => format!("cannot be read: {e}"),
            },
        )
    })?;
    if meta.is_dir() {
        return Err(Error::data(&file, "is a folder, not a data file"));
    }
    if !meta.is_file() {
        return Err(Error::data(&file, "is not a regular file (a pipe, device or socket); give a file"));
    }
    Ok(file)
}

/// The error of the reader failing on `file`. The reader's own message can quote a field of
/// the file, so only its kind is shown.
fn reader_error(file: &str, format: Format) -> impl Fn(PolarsError) -> Error + Copy + '_ {
    move |e: PolarsError| {
        let kind = format!("{e:?}");
        let kind = kind.split(['(', ' ', '{']).next().unwrap_or("error").to_string();
        Error::data(
            file,
            format!(
                "cannot be read as {format:?} (the reader reported {kind}; the file may be damaged or of another format)"
            ),
        )
    }
}

/// Read a data file on the modelling path (see [`read_as`]).
pub fn read(path: &Path, csv: &CsvFormat, names: Option<&[String]>) -> Result<RawTable> {
    read_as(path, csv, names, Show::Nothing)
}

/// Read a data file. `csv` gives the dialect (from the schema, or defaults); `names` names the
/// columns of a headerless CSV file in order. A file with a header and no rows reads as an
/// empty table. Only regular files are read (a pipe or device could hang the run, and is read
/// twice: fingerprint, then parse).
pub fn read_as(path: &Path, csv: &CsvFormat, names: Option<&[String]>, show: Show) -> Result<RawTable> {
    let file = regular_file(path)?;
    let format = Format::of(path);
    let polars_err = reader_error(&file, format);
    let pl_path = PlRefPath::try_from_path(path).map_err(polars_err)?;
    match format {
        Format::Parquet | Format::Ipc => {
            let read = || -> Result<DataFrame> {
                let lf = if format == Format::Parquet {
                    LazyFrame::scan_parquet(pl_path.clone(), Default::default())
                } else {
                    LazyFrame::scan_ipc(pl_path.clone(), Default::default(), Default::default())
                }
                .map_err(polars_err)?;
                Ok(lf.collect_with_engine(Engine::Streaming).map_err(polars_err)?.unwrap_single())
            };
            // Polars panics on some column types it was built without; that is an unsupported
            // input, not a crash.
            let df = crate::error::guard_panics(read, || {
                Error::data(
                    &file,
                    format!(
                        "cannot be read as {format:?}: a column has a type privsynth does not read (use numbers, text, booleans, dates or datetimes)"
                    ),
                )
            })?;
            check_names(&file, df.get_column_names().iter().map(|s| s.as_str()), Show::Header)?;
            Ok(RawTable { file, df, first_line: None, first_row: 0 })
        }
        Format::Csv => {
            // A .tsv file is tab-separated, as privsynth writes it, whatever the schema's dialect.
            let tsv_dialect;
            let csv = if path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("tsv")) {
                tsv_dialect = CsvFormat { delimiter: b'\t', ..csv.clone() };
                &tsv_dialect
            } else {
                csv
            };
            // privsynth writes a header line also for headerless input: a first line that is
            // exactly the schema's column names is that header, not a record.
            let with_header;
            let csv = match names {
                Some(n) if !csv.header && first_line_is(path, csv.delimiter, n) => {
                    with_header = CsvFormat { header: true, ..csv.clone() };
                    &with_header
                }
                _ => csv,
            };
            let shape = scan_csv(path, csv, show)?;
            let header = match (csv.header, names) {
                (true, _) => None,
                (false, Some(n)) if n.len() == shape.fields => Some(n.to_vec()),
                (false, Some(n)) => {
                    return Err(Error::data(
                        &file,
                        format!(
                            "has {} fields per line but the schema names {} columns for this headerless file",
                            shape.fields,
                            n.len()
                        ),
                    ));
                }
                (false, None) => Some((1..=shape.fields).map(|i| format!("column_{i}")).collect()),
            };
            let all_text: Option<SchemaRef> = header.as_ref().map(|h| {
                Arc::new(h.iter().map(|n| Field::new(n.as_str().into(), DataType::String)).collect::<Schema>())
            });
            let lf = LazyCsvReader::new(pl_path)
                .with_has_header(csv.header)
                .with_separator(csv.delimiter)
                .with_infer_schema_length(Some(0)) // every column as text; the schema decides types
                .with_schema(all_text)
                .with_missing_is_null(true)
                .with_n_rows(Some(shape.rows)) // trailing blank lines are not rows
                .finish()
                .map_err(polars_err)?;
            let mut df = lf.collect_with_engine(Engine::Streaming).map_err(polars_err)?.unwrap_single();
            // The parser keeps a quoted header's doubled quotes (`"x""y"` as `x""y`); the names
            // are the structure pass's, unquoted as in the fields.
            if csv.header
                && shape.names.len() == df.width()
                && shape.names.iter().zip(df.get_column_names()).any(|(a, b)| a.as_str() != b.as_str())
            {
                df.set_column_names(&shape.names).map_err(polars_err)?;
            }
            if df.height() != shape.rows {
                // No counts here: the message may reach a log on the modelling path.
                return Err(Error::data(
                    &file,
                    "the structure check and the parser read different numbers of rows (a quoting or line-ending problem); `privsynth schema check` shows where",
                ));
            }
            let first_line = (!shape.multiline).then_some(1 + csv.header as usize);
            Ok(RawTable { file, df, first_line, first_row: 0 })
        }
    }
}

fn check_names<'a>(file: &str, names: impl Iterator<Item = &'a str>, show: Show) -> Result<()> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, n) in names.enumerate() {
        if n.trim().is_empty() {
            return Err(Error::data(file, format!("column {} of the header has an empty name", i + 1)));
        }
        if let Some(j) = seen.insert(n, i) {
            let what = format!(
                "columns {} and {} of the header have the same name; column names must be unique",
                j + 1,
                i + 1
            );
            return Err(match show {
                Show::Header => Error::column(file, n, what),
                // The "header" may be a data row of a headerless file: say where, not what.
                Show::Nothing => Error::data(
                    file,
                    format!(
                        "{what} (if the file has no header line, pass --no-header or set `csv: {{header: false}}`)"
                    ),
                ),
            });
        }
    }
    Ok(())
}

/// Most columns a table file may have: far beyond any table a marginal model fits, and a bound
/// on the memory one header can make the reader take.
pub const MAX_COLUMNS: usize = 10_000;

/// What the structure pass learned about a CSV file.
#[derive(Debug, PartialEq, Eq)]
pub struct CsvShape {
    pub fields: usize,
    /// Data rows (records after the header).
    pub rows: usize,
    /// Whether some quoted field spans lines (then row and line numbers differ).
    pub multiline: bool,
    /// The header's names, unquoted (`""` read as `"`), when the file has a header.
    pub names: Vec<String>,
}

/// One pass over a CSV file: valid UTF-8, a header, and the same number of fields on every
/// record. Quote-aware (RFC 4180 doubling), streaming in blocks.
pub fn scan_csv(path: &Path, csv: &CsvFormat, show: Show) -> Result<CsvShape> {
    let file = path.display().to_string();
    let f = File::open(path).map_err(|e| Error::data(&file, format!("cannot be opened: {e}")))?;
    let mut reader = BufReader::with_capacity(1 << 20, f);
    let delim = csv.delimiter;
    let mut buf = vec![0u8; 1 << 20];
    let mut carry: Vec<u8> = Vec::new(); // incomplete UTF-8 sequence at a block end
    let (mut line, mut record_line) = (1usize, 1usize);
    #[derive(PartialEq)]
    enum St {
        FieldStart,
        Unquoted,
        Quoted,
        QuoteInQuoted,
    }
    let mut st = St::FieldStart;
    let mut header_names: Vec<String> = vec![];
    let mut pending_cr = false;
    let mut fields = 1usize;
    let mut empty_record = true; // the current record has no bytes yet
    let mut in_header = csv.header;
    let mut header_bytes: Vec<u8> = Vec::new();
    let mut header_fields: Option<usize> = None;
    let mut records = 0usize;
    let mut multiline = false;
    // Blank lines are held back: at the end of the file they are ignored (as the parser does);
    // before another record they are rows, which a multi-column file cannot have.
    let mut pending_blank: Option<(usize, usize)> = None; // (count, line of the first)
    let mut total = 0usize;

    let mut end_record = |fields: usize, record_line: usize, header: &[u8], empty: bool| -> Result<()> {
        if empty && header_fields.is_some() {
            let (n, first) = pending_blank.unwrap_or((0, record_line));
            pending_blank = Some((n + 1, first));
            return Ok(());
        }
        if let (Some((n, first)), Some(h)) = (pending_blank.take(), header_fields) {
            if h > 1 {
                return Err(Error::Data {
                    file: file.clone(),
                    row: Some(records + 1),
                    line: Some(first),
                    column: None,
                    message: format!("is blank but the header has {h} fields; remove blank lines inside the file"),
                });
            }
            records += n; // one column: a blank line is a missing value
        }
        match header_fields {
            None => {
                if fields > MAX_COLUMNS {
                    return Err(Error::Data {
                        file: file.clone(),
                        row: None,
                        line: Some(record_line),
                        column: None,
                        message: format!(
                            "has {fields} fields on its first line; privsynth reads tables of at most {MAX_COLUMNS} columns (is the delimiter right?)"
                        ),
                    });
                }
                header_fields = Some(fields);
                if csv.header {
                    let text = String::from_utf8_lossy(header);
                    header_names = split_header(&text, delim);
                    let names: Vec<&str> = header_names.iter().map(String::as_str).collect();
                    if names.len() == 1
                        && let Some(d) = sniff_delimiter(&text, delim)
                    {
                        return Err(Error::data(
                            &file,
                            format!(
                                "line 1: the header has a single column but looks delimited by {:?}; \
                                 pass --delimiter {:?} (or set `csv: {{delimiter: ...}}` in the schema)",
                                d as char, d as char
                            ),
                        ));
                    }
                    check_names(&file, names.iter().copied(), show)?;
                } else {
                    records += 1;
                }
            }
            Some(h) if h != fields => {
                return Err(Error::Data {
                    file: file.clone(),
                    row: Some(records + 1),
                    line: Some(record_line),
                    column: None,
                    message: format!(
                        "has {fields} field(s) but the {} has {h}; the file is ragged (a missing or extra \
                         delimiter, an unclosed quote, or the wrong delimiter)",
                        if csv.header { "header" } else { "first line" }
                    ),
                });
            }
            Some(_) => records += 1,
        }
        Ok(())
    };

    loop {
        let n = reader.read(&mut buf).map_err(|e| Error::data(&file, format!("cannot be read: {e}")))?;
        if n == 0 {
            break;
        }
        // Validate UTF-8 across block boundaries.
        let mut block = std::mem::take(&mut carry);
        block.extend_from_slice(&buf[..n]);
        let valid = match std::str::from_utf8(&block) {
            Ok(_) => block.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(e) => {
                let bad_line = line + block[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count();
                return Err(Error::Data {
                    file: file.clone(),
                    row: None,
                    line: Some(bad_line),
                    column: None,
                    message: format!(
                        "is not valid UTF-8 (byte offset {}); convert it first, e.g. `iconv -f latin1 -t utf-8`",
                        total + e.valid_up_to()
                    ),
                });
            }
        };
        carry = block[valid..].to_vec();
        total += valid;
        // RFC 4180: a quote opens a field only at its start; `""` inside quotes is a literal quote.
        for &b in &block[..valid] {
            if in_header && b != b'\n' && b != b'\r' {
                header_bytes.push(b);
            }
            // A carriage return outside quotes must end a line with the next byte (CR LF); alone,
            // it is a classic-Mac line end, which would read the whole file as one line.
            if pending_cr && b != b'\n' {
                return Err(Error::Data {
                    file: file.clone(),
                    row: None,
                    line: Some(line),
                    column: None,
                    message: "ends a line with a carriage return alone (classic Mac line endings); convert it first, e.g. `tr '\\r' '\\n'`".into(),
                });
            }
            pending_cr = false;
            if b == b'\r' {
                pending_cr = st != St::Quoted;
                continue;
            }
            if b != b'\n' {
                empty_record = false;
            }
            st = match (st, b) {
                (St::Quoted, b'"') => St::QuoteInQuoted,
                (St::Quoted, b'\n') => {
                    line += 1;
                    multiline = true;
                    St::Quoted
                }
                (St::Quoted, _) => St::Quoted,
                (St::FieldStart | St::QuoteInQuoted, b'"') => St::Quoted,
                (_, b'\n') => {
                    line += 1;
                    end_record(fields, record_line, &header_bytes, empty_record)?;
                    in_header = false;
                    fields = 1;
                    empty_record = true;
                    record_line = line;
                    St::FieldStart
                }
                (_, _) if b == delim => {
                    fields += 1;
                    St::FieldStart
                }
                (_, _) => St::Unquoted,
            };
        }
    }
    if !carry.is_empty() {
        return Err(Error::Data {
            file: file.clone(),
            row: None,
            line: Some(line),
            column: None,
            message: "ends inside a truncated UTF-8 character".into(),
        });
    }
    if st == St::Quoted {
        return Err(Error::Data {
            file: file.clone(),
            row: None,
            line: Some(record_line),
            column: None,
            message: "has a quoted field that is never closed".into(),
        });
    }
    if !empty_record {
        end_record(fields, record_line, &header_bytes, false)?;
    }
    let Some(h) = header_fields else {
        return Err(Error::data(&file, "is empty (no header, no rows)"));
    };
    // No data rows is a table too: a DP fit must not fail because a table is empty (that would
    // reveal it), so commands that need rows say so themselves.
    Ok(CsvShape { fields: h, rows: records, multiline, names: header_names })
}

/// Header names, unquoted: a delimiter inside quotes does not split, and `""` is a quote.
fn split_header(h: &str, delim: u8) -> Vec<String> {
    let (mut out, mut cur, mut quoted) = (vec![], String::new(), false);
    let mut chars = h.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            c if !quoted && c == delim as char => out.push(std::mem::take(&mut cur).trim().to_string()),
            c => cur.push(c),
        }
    }
    out.push(cur.trim().to_string());
    out
}

/// Whether the first line of a CSV file is exactly `names` (in order). Reads one line, at most
/// 1 MB; an unreadable file is left to the reader's own error.
fn first_line_is(path: &Path, delimiter: u8, names: &[String]) -> bool {
    use std::io::BufRead;
    let Ok(f) = File::open(path) else { return false };
    let mut line = Vec::new();
    if BufReader::new(f).take(1 << 20).read_until(b'\n', &mut line).is_err() {
        return false;
    }
    let Ok(line) = std::str::from_utf8(&line) else { return false };
    let line = line.trim_start_matches('\u{feff}').trim_end_matches(['\r', '\n']);
    !names.is_empty() && split_header(line, delimiter) == names
}

/// A likely delimiter other than `current`, judged from the header line.
fn sniff_delimiter(header: &str, current: u8) -> Option<u8> {
    [b',', b';', b'\t', b'|']
        .into_iter()
        .filter(|&d| d != current)
        .max_by_key(|&d| header.bytes().filter(|&b| b == d).count())
        .filter(|&d| header.bytes().any(|b| b == d))
}

/// Reads for a table of a schema on the modelling path: the dialect and, for a headerless file,
/// the names (see [`read_table_as`]).
pub fn read_for_table(path: &Path, table: &Table) -> Result<RawTable> {
    read_table_as(path, table, Show::Nothing)
}

/// Reads for a table of a schema; a missing column's error lists the file's own header only
/// with [`Show::Header`].
pub fn read_table_as(path: &Path, table: &Table, show: Show) -> Result<RawTable> {
    let names: Vec<String> = table.columns.iter().map(|c| c.name.clone()).collect();
    let raw = read_as(path, &table.csv, Some(&names), show)?;
    check_columns(&raw.file, table, &raw.column_names(), show)?;
    Ok(raw)
}

/// The error for schema columns absent from a file's columns `have`.
fn check_columns(file: &str, table: &Table, have: &[String], show: Show) -> Result<()> {
    let names: Vec<String> = table.columns.iter().map(|c| c.name.clone()).collect();
    let missing: Vec<&str> = names.iter().filter(|n| !have.contains(n)).map(String::as_str).collect();
    if !missing.is_empty() {
        let found = match show {
            Show::Header => {
                let shown: Vec<&str> = have.iter().take(20).map(String::as_str).collect();
                format!("The file has: {}{}", shown.join(", "), if have.len() > 20 { ", ..." } else { "" })
            }
            // The first line may be a record of a headerless file: it is not shown here.
            Show::Nothing => format!(
                "The file has {} column(s); `privsynth schema check` shows its header. If the file has no header line, pass --no-header",
                have.len()
            ),
        };
        return Err(Error::Data {
            file: file.to_string(),
            row: None,
            line: None,
            column: Some(missing[0].to_string()),
            message: format!(
                "{} column(s) named in the schema for table {:?} are absent from the file: {}. {found}",
                missing.len(),
                table.name,
                missing.join(", "),
            ),
        });
    }
    Ok(())
}

/// Rows per batch of [`read_batches`]: a batch's raw cells are the only raw data in memory
/// (tens of MB for a table of a few dozen columns).
pub const BATCH_ROWS: usize = 1 << 18;

/// Read the columns `columns` of a table of a schema in batches of about `batch_rows` rows, in
/// file order, calling `each` with every batch (a [`RawTable`] whose [`RawTable::first_row`]
/// and line numbers are those of the file). At most two batches are in memory at a time, so
/// the raw cells of the whole table never are. The checks and errors are those of
/// [`read_table_as`] (structure pass of a CSV file, names, missing columns); an error from
/// `each` stops the reading and is returned.
pub fn read_batches(
    path: &Path,
    table: &Table,
    columns: &[String],
    show: Show,
    batch_rows: usize,
    mut each: impl FnMut(RawTable) -> Result<()>,
) -> Result<()> {
    let file = regular_file(path)?;
    let format = Format::of(path);
    let polars_err = reader_error(&file, format);
    let unsupported = || {
        Error::data(
            &file,
            format!(
                "cannot be read as {format:?}: a column has a type privsynth does not read (use numbers, text, booleans, dates or datetimes)"
            ),
        )
    };
    let pl_path = PlRefPath::try_from_path(path).map_err(polars_err)?;
    let csv = &table.csv;
    // The lazy frame, the file's column names as the parser sees them (selected by) and as the
    // schema names them, the expected row count and the line of data row 0.
    let (lf, parser_names, names, rows, first_line): (
        LazyFrame,
        Vec<String>,
        Vec<String>,
        Option<usize>,
        Option<usize>,
    ) = match format {
        Format::Parquet | Format::Ipc => {
            let mut lf = crate::error::guard_panics(
                || {
                    if format == Format::Parquet {
                        LazyFrame::scan_parquet(pl_path.clone(), Default::default())
                    } else {
                        LazyFrame::scan_ipc(pl_path.clone(), Default::default(), Default::default())
                    }
                    .map_err(polars_err)
                },
                unsupported,
            )?;
            let schema = crate::error::guard_panics(|| lf.collect_schema().map_err(polars_err), unsupported)?;
            let names: Vec<String> = schema.iter_names().map(|n| n.to_string()).collect();
            check_names(&file, names.iter().map(String::as_str), Show::Header)?;
            (lf, names.clone(), names, None, None)
        }
        Format::Csv => {
            let shape = scan_csv(path, csv, show)?;
            let schema_names: Vec<String> = table.columns.iter().map(|c| c.name.clone()).collect();
            let header = match csv.header {
                true => None,
                false if schema_names.len() == shape.fields => Some(schema_names),
                false => {
                    return Err(Error::data(
                        &file,
                        format!(
                            "has {} fields per line but the schema names {} columns for this headerless file",
                            shape.fields,
                            schema_names.len()
                        ),
                    ));
                }
            };
            let all_text: Option<SchemaRef> = header.as_ref().map(|h| {
                Arc::new(h.iter().map(|n| Field::new(n.as_str().into(), DataType::String)).collect::<Schema>())
            });
            let mut lf = LazyCsvReader::new(pl_path)
                .with_has_header(csv.header)
                .with_separator(csv.delimiter)
                .with_infer_schema_length(Some(0))
                .with_schema(all_text)
                .with_missing_is_null(true)
                .with_n_rows(Some(shape.rows))
                .finish()
                .map_err(polars_err)?;
            let parser: Vec<String> =
                lf.collect_schema().map_err(polars_err)?.iter_names().map(|n| n.to_string()).collect();
            // The parser keeps a quoted header's doubled quotes; the names are the structure
            // pass's, unquoted as in the fields.
            let names = match &header {
                Some(h) => h.clone(),
                None if shape.names.len() == parser.len() => shape.names.clone(),
                None => parser.clone(),
            };
            let first_line = (!shape.multiline).then_some(1 + csv.header as usize);
            (lf, parser, names, Some(shape.rows), first_line)
        }
    };
    check_columns(&file, table, &names, show)?;
    let select: Vec<Expr> = columns
        .iter()
        .map(|c| {
            let i = names.iter().position(|n| n == c).ok_or_else(|| Error::column(&file, c, "is not in the file"))?;
            Ok(col(parser_names[i].as_str()).alias(c.as_str()))
        })
        .collect::<Result<_>>()?;
    let lf = lf.select(select);
    if format == Format::Parquet {
        return read_parquet_groups(path, &file, lf, batch_rows, polars_err, unsupported, each);
    }
    // Polars runs the query on its own threads and hands over each batch through a channel
    // of one slot, so that reading the next batch overlaps encoding this one.
    let (send, recv) = std::sync::mpsc::sync_channel::<DataFrame>(1);
    let chunk = std::num::NonZeroUsize::new(batch_rows.max(1));
    let query = lf
        .sink_batches(
            PlanCallback::new(move |df: DataFrame| {
                // A closed receiver (the consumer stopped on an error) stops the query.
                Ok(send.send(df).is_err())
            }),
            true,
            chunk,
        )
        .map_err(polars_err)?;
    let runner = std::thread::spawn(move || {
        crate::error::EXPECTED_PANIC.store(true, std::sync::atomic::Ordering::SeqCst);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            query.collect_with_engine(Engine::Streaming).map(|_| ())
        }));
        crate::error::EXPECTED_PANIC.store(false, std::sync::atomic::Ordering::SeqCst);
        r
    });
    let mut offset = 0usize;
    let mut failed: Option<Error> = None;
    for df in recv.iter() {
        if df.height() == 0 {
            continue;
        }
        let h = df.height();
        let batch = RawTable { file: file.clone(), df, first_line, first_row: offset };
        offset += h;
        if let Err(e) = each(batch) {
            failed = Some(e);
            break;
        }
        release_mapped_pages(path);
    }
    drop(recv);
    let outcome = runner.join();
    if let Some(e) = failed {
        return Err(e);
    }
    match outcome {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => return Err(polars_err(e)),
        _ => return Err(unsupported()),
    }
    if rows.is_some_and(|r| r != offset) {
        // No counts here: the message may reach a log on the modelling path.
        return Err(Error::data(
            &file,
            "the structure check and the parser read different numbers of rows (a quoting or line-ending problem); `privsynth schema check` shows where",
        ));
    }
    Ok(())
}

/// [`read_batches`] for a Parquet file: one row group at a time (a query sliced to the group's
/// rows, which Polars pushes down to that group alone), handed over in slices of `batch_rows`.
/// Why not the streaming query the other formats use: Polars' Parquet source prefetches and
/// decodes row groups up to a budget of *compressed* bytes (16 groups at least), ahead of a
/// consumer it does not wait for, so a well-compressed 10M-row file was decoded whole into
/// strings (about 220 bytes a row: 2.3 GB at 10M x 15). Here the raw cells in memory are one
/// row group's, whatever the number of row groups.
fn read_parquet_groups(
    path: &Path,
    file: &str,
    lf: LazyFrame,
    batch_rows: usize,
    polars_err: impl Fn(PolarsError) -> Error,
    unsupported: impl Fn() -> Error,
    mut each: impl FnMut(RawTable) -> Result<()>,
) -> Result<()> {
    let groups: Vec<usize> = {
        let mut f = std::fs::File::open(path).map_err(|e| Error::data(file, format!("cannot be read: {e}")))?;
        let meta = crate::error::guard_panics(
            || polars_parquet::read::read_metadata(&mut f).map_err(&polars_err),
            &unsupported,
        )?;
        meta.row_groups.iter().map(|g| g.num_rows()).collect()
    };
    let batch_rows = batch_rows.max(1);
    let mut offset = 0usize;
    for rows in groups {
        if rows == 0 {
            continue;
        }
        let (Ok(at), Ok(len)) = (i64::try_from(offset), IdxSize::try_from(rows)) else {
            return Err(Error::data(file, "has more rows than privsynth reads from one file"));
        };
        let group =
            crate::error::guard_panics(|| lf.clone().slice(at, len).collect().map_err(&polars_err), &unsupported)?;
        if group.height() != rows {
            return Err(Error::data(file, "a row group holds another number of rows than its footer says"));
        }
        let mut start = 0usize;
        while start < rows {
            let n = batch_rows.min(rows - start);
            let df = group.slice(start as i64, n);
            each(RawTable { file: file.to_string(), df, first_line: None, first_row: offset + start })?;
            start += n;
        }
        offset += rows;
        drop(group);
        release_mapped_pages(path);
    }
    Ok(())
}

/// Drop this process's page-table entries of its read-only mappings of the file `path`
/// (`MADV_DONTNEED`). Polars' readers map the whole input file, and every page read stays
/// counted in the resident set until the scan ends (reading a 950 MB CSV table in batches kept
/// up to 950 MB resident beside the batches). The mappings are file-backed and not writable, so
/// a page touched again is read back from the page cache with the same bytes: nothing changes
/// but the accounting (and a re-read page costs a minor fault). Linux only; elsewhere nothing.
fn release_mapped_pages(path: &Path) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt;
        let Ok(meta) = std::fs::metadata(path) else { return };
        let dev = format!("{:02x}:{:02x}", libc::major(meta.dev()), libc::minor(meta.dev()));
        let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else { return };
        for line in maps.lines() {
            // address perms offset dev inode [path]
            let f: Vec<&str> = line.split_whitespace().take(5).collect();
            let [range, perms, _, d, inode] = f[..] else { continue };
            if perms.contains('w') || d != dev || inode.parse::<u64>().ok() != Some(meta.ino()) {
                continue;
            }
            let Some((a, b)) = range.split_once('-') else { continue };
            let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) else { continue };
            // SAFETY: a whole mapping of this process, read-only and backed by the file, so
            // MADV_DONTNEED only drops resident pages that later accesses fault back in from
            // the page cache unchanged; no memory is freed or altered.
            unsafe { libc::madvise(a as *mut libc::c_void, b.saturating_sub(a), libc::MADV_DONTNEED) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = path;
}

/// Write a data frame atomically (temp file in the target folder, then rename), in the format
/// given by the extension. CSV is written in the table's dialect, with dates and datetimes in
/// the columns' own `format`, so that the table's schema reads the file back.
pub fn write(df: &mut DataFrame, path: &Path, table: &Table, out: Output) -> Result<()> {
    let format = out.format;
    if format == Format::Csv {
        format_dates(df, table)?;
    }
    // A .tsv file is tab-separated whatever the input's dialect.
    let tsv = path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
    let delimiter = if tsv { b'\t' } else { table.csv.delimiter };
    // Parquet and IPC carry the Arrow types of the oldest compatibility level (large_string, not
    // string_view), which every Arrow reader since 2020 reads (pyarrow <= 14 fails on views).
    let parquet_schema = match format {
        Format::Parquet => Some(oldest_arrow_schema_key(df)),
        _ => None,
    };
    write_atomic(path, |f| {
        match format {
            Format::Csv => CsvWriter::new(f).include_header(out.header).with_separator(delimiter).finish(df),
            Format::Parquet => ParquetWriter::new(f)
                .with_compression(ParquetCompression::Zstd(None))
                .with_key_value_metadata(parquet_schema.map(KeyValueMetadata::Static))
                .finish(df)
                .map(|_| ()),
            Format::Ipc => IpcWriter::new(f).with_compat_level(CompatLevel::oldest()).finish(df),
        }
        .map_err(|e| std::io::Error::other(e.to_string()))
    })
}

/// Dates and datetimes as text in their column's `format` (for CSV output); datetimes of a
/// column with `timezone: UTC` as ISO 8601 ending in `Z`, so the zone survives the CSV.
fn format_dates(df: &mut DataFrame, table: &Table) -> Result<()> {
    for c in table.columns.iter().filter(|c| c.format.is_some() || c.timezone.is_some()) {
        let Ok(col) = df.column(&c.name) else { continue };
        if !matches!(col.dtype(), DataType::Date | DataType::Datetime(_, _)) {
            continue;
        }
        let fmt = c.format.as_deref().unwrap_or("%Y-%m-%dT%H:%M:%SZ");
        let text: StringChunked = if let DataType::Date = col.dtype() {
            col.date()
                .map_err(Error::polars)?
                .physical()
                .iter()
                .map(|d| d.and_then(|d| schema::date_from_days(d as i64)).map(|d| d.format(fmt).to_string()))
                .collect()
        } else {
            let ms = col
                .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
                .map_err(Error::polars)?
                .cast(&DataType::Int64)
                .map_err(Error::polars)?;
            ms.i64()
                .map_err(Error::polars)?
                .iter()
                .map(|m| {
                    m.and_then(chrono::DateTime::from_timestamp_millis).map(|d| d.naive_utc().format(fmt).to_string())
                })
                .collect()
        };
        df.with_column(text.into_series().with_name(c.name.as_str().into()).into_column()).map_err(Error::polars)?;
    }
    Ok(())
}

/// Write a table batch by batch, atomically like [`write`]: `next` returns the next batch
/// (all with the same columns) or `None` at the end. Parquet gets a row group per batch (or
/// several), CSV a chunk, Arrow IPC a record batch, so memory is that of one batch. Returns the
/// rows and columns written. An error from `next` leaves no file.
pub fn write_batches(
    path: &Path,
    table: &Table,
    out: Output,
    mut next: impl FnMut() -> Result<Option<DataFrame>>,
) -> Result<(usize, usize)> {
    enum W<'f> {
        Csv(polars::io::csv::write::BatchedWriter<&'f mut File>),
        Parquet(Box<polars::io::parquet::write::BatchedWriter<&'f mut File>>),
        Ipc(polars::io::ipc::BatchedWriter<&'f mut File>),
    }
    let format = out.format;
    // As in [`write`]: .tsv is tab-separated; Parquet and IPC at the oldest Arrow level.
    let tsv = path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
    let delimiter = if tsv { b'\t' } else { table.csv.delimiter };
    let mut failed: Option<Error> = None;
    let (mut rows, mut width) = (0usize, 0usize);
    let r = write_atomic(path, |f| {
        let pe = |e: PolarsError| std::io::Error::other(e.to_string());
        let mut writer: Option<W<'_>> = None;
        let mut f = Some(f);
        loop {
            let mut df = match next() {
                Ok(Some(df)) => df,
                Ok(None) => break,
                Err(e) => {
                    failed = Some(e);
                    return Err(std::io::Error::other("sampling failed"));
                }
            };
            if let Err(e) = if format == Format::Csv { format_dates(&mut df, table) } else { Ok(()) } {
                failed = Some(e);
                return Err(std::io::Error::other("formatting failed"));
            }
            df.align_chunks_par();
            if writer.is_none() {
                let file = f.take().ok_or_else(|| std::io::Error::other("writer taken"))?;
                let schema = df.schema().as_ref().clone();
                writer = Some(match format {
                    Format::Csv => W::Csv(
                        CsvWriter::new(file)
                            .include_header(out.header)
                            .with_separator(delimiter)
                            .batched(&schema)
                            .map_err(pe)?,
                    ),
                    Format::Parquet => W::Parquet(Box::new(
                        ParquetWriter::new(file)
                            .with_compression(ParquetCompression::Zstd(None))
                            .with_key_value_metadata(Some(KeyValueMetadata::Static(oldest_arrow_schema_key(&df))))
                            .batched(&schema)
                            .map_err(pe)?,
                    )),
                    Format::Ipc => {
                        let arrow = schema.to_arrow(CompatLevel::oldest());
                        let fields = polars_arrow::io::ipc::write::default_ipc_fields(arrow.iter_values());
                        W::Ipc(
                            IpcWriter::new(file)
                                .with_compat_level(CompatLevel::oldest())
                                .batched(&schema, fields)
                                .map_err(pe)?,
                        )
                    }
                });
            }
            rows += df.height();
            width = df.width();
            match writer.as_mut() {
                Some(W::Csv(w)) => w.write_batch(&df),
                Some(W::Parquet(w)) => w.write_batch(&df),
                Some(W::Ipc(w)) => w.write_batch(&df),
                None => Ok(()),
            }
            .map_err(pe)?;
        }
        match writer {
            Some(W::Csv(mut w)) => w.finish().map_err(pe),
            Some(W::Parquet(w)) => w.finish().map(|_| ()).map_err(pe),
            Some(W::Ipc(mut w)) => w.finish().map_err(pe),
            None => Ok(()),
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    r.map(|()| (rows, width))
}

/// The `ARROW:schema` entry of a Parquet footer for `df` at [`CompatLevel::oldest`]: Polars'
/// Parquet writer records its newest types (string_view) there, and readers take the column
/// types from it. The pages themselves are the same plain UTF-8 byte arrays either way.
fn oldest_arrow_schema_key(df: &DataFrame) -> Vec<polars_parquet::write::KeyValue> {
    let schema = df.schema().to_arrow(CompatLevel::oldest());
    vec![polars_parquet::write::schema_to_metadata_key(&schema)]
}

/// Run `fill` on a temporary file beside `path` and rename it into place only on success.
/// An existing `path` that is not a regular file (a device, a pipe, a folder) is never
/// replaced. Temporary files carry the writer's process id, so that a later write to the same
/// output removes those that a killed run left behind.
pub fn write_atomic(path: &Path, fill: impl FnOnce(&mut File) -> std::io::Result<()>) -> Result<()> {
    let dir: PathBuf = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let io = |e: std::io::Error| Error::io(path, e);
    if let Ok(meta) = std::fs::metadata(path)
        && !meta.is_file()
    {
        return Err(Error::Usage(format!(
            "{} exists and is not a regular file; privsynth does not replace it",
            path.display()
        )));
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    remove_stale_temporaries(&dir, name);
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.privsynth-{}-", std::process::id()))
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(io)?;
    // Temp files are created 0600; an output is an ordinary file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644)).map_err(io)?;
    }
    fill(tmp.as_file_mut()).map_err(io)?;
    tmp.as_file_mut().flush().map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// Remove `.<name>.privsynth-<pid>-*.tmp` files in `dir` whose process is gone (a run killed
/// while writing `name`). Only on Linux, where a live process has a /proc entry; elsewhere
/// nothing is removed.
fn remove_stale_temporaries(dir: &Path, name: &str) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let prefix = format!(".{name}.privsynth-");
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let file = e.file_name();
        let Some(f) = file.to_str() else { continue };
        let Some(rest) = f.strip_prefix(&prefix).filter(|r| r.ends_with(".tmp")) else { continue };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else { continue };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(text: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t.csv");
        std::fs::write(&p, text).unwrap();
        (d, p)
    }

    #[test]
    fn shape_counts_rows_and_quoted_newlines() {
        let (_d, p) = csv(b"a,b\n1,\"x\ny\"\n2,\"q,\"\"r\"\"\"\r\n\n");
        let s = scan_csv(&p, &CsvFormat::default(), Show::Header).unwrap();
        assert_eq!((s.fields, s.rows, s.multiline), (2, 2, true));
        // Trailing blank lines are ignored; inside a multi-column file a blank line is an error,
        // in a one-column file it is a missing value.
        let (_d, p) = csv(b"a,b\n1,2\n3,4\n\n\n");
        assert_eq!(
            scan_csv(&p, &CsvFormat::default(), Show::Header).map(|s| (s.fields, s.rows, s.multiline)).unwrap(),
            (2, 2, false)
        );
        let (_d, p) = csv(b"a,b\n1,2\n\n3,4\n");
        let e = scan_csv(&p, &CsvFormat::default(), Show::Header).unwrap_err().to_string();
        assert!(e.contains("row 2 (line 3)") && e.contains("is blank"), "{e}");
        let (_d, p) = csv(b"a\n1\n\n\n3\n\n");
        assert_eq!(
            scan_csv(&p, &CsvFormat::default(), Show::Header).map(|s| (s.fields, s.rows, s.multiline)).unwrap(),
            (1, 4, false)
        );
    }

    #[test]
    fn ragged_row_names_its_line() {
        let (_d, p) = csv(b"a,b\n1,2\n3\n");
        let e = scan_csv(&p, &CsvFormat::default(), Show::Header).unwrap_err().to_string();
        assert!(e.contains("row 2 (line 3)") && e.contains("1 field(s)"), "{e}");
    }

    #[test]
    fn utf8_error_names_line_across_blocks() {
        let mut text = b"a,b\n".to_vec();
        for _ in 0..200_000 {
            text.extend_from_slice("é,ü\n".as_bytes());
        }
        text.extend_from_slice(b"x,\xff\n");
        let (_d, p) = csv(&text);
        let e = scan_csv(&p, &CsvFormat::default(), Show::Header).unwrap_err().to_string();
        assert!(e.contains("line 200002") && e.contains("UTF-8"), "{e}");
    }

    #[test]
    fn atomic_write_leaves_nothing_on_failure() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("out.csv");
        let r = write_atomic(&p, |f| {
            f.write_all(b"partial")?;
            Err(std::io::Error::other("boom"))
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0, "no file, no temp file");
        write_atomic(&p, |f| f.write_all(b"ok")).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"ok");
        // A killed writer's temporary file (its pid no longer runs) is removed by the next write.
        let stale = d.path().join(".out.csv.privsynth-4194305-abc.tmp");
        std::fs::write(&stale, b"partial").unwrap();
        write_atomic(&p, |f| f.write_all(b"again")).unwrap();
        assert!(!stale.exists());
        // A device is never replaced.
        #[cfg(unix)]
        assert!(write_atomic(Path::new("/dev/null"), |f| f.write_all(b"x")).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o644);
        }
    }
}
