//! Sampling from released models and writing the synthetic tables. Post-processing only: the
//! seed is the sampler's, no real record is read here.

use std::path::Path;

use rand::SeedableRng;

use super::{Observer, Step};
use crate::data;
use crate::ehr::LinkedModel;
use crate::error::{Error, Result};
use crate::model::file::ModelFile;
use crate::model::sample::{BATCH_ROWS, MAX_CELLS, MAX_ROWS};
use crate::synthetic::{Drawer, SyntheticTable};

/// Formats of a synthetic table, or of a folder of linked tables.
pub use crate::data::Format as TableFormat;
/// A format and whether CSV files get a header line.
pub use crate::data::Output;

/// The file a linked output folder's schema is written to, beside the tables.
pub use crate::ehr::sample::OUTPUT_SCHEMA;

/// Check a requested number of rows against the sampler's limits ([`MAX_ROWS`],
/// [`MAX_CELLS`]), before anything is fitted or charged. Larger tables: several runs of
/// `sample` with other seeds.
pub fn check_rows(rows: usize, columns: usize) -> Result<()> {
    if rows == 0 {
        return Err(Error::Usage("--rows must be at least 1".into()));
    }
    if rows > MAX_ROWS || rows.saturating_mul(columns.max(1)) > MAX_CELLS {
        return Err(Error::Usage(format!(
            "--rows {rows} is more than one run can hold in memory ({} columns; at most {MAX_ROWS} rows and {MAX_CELLS} cells): \
             sample in several runs with different seeds",
            columns.max(1)
        )));
    }
    Ok(())
}

/// Draw `rows` records (default: the model's DP estimate of the table size) with `seed`,
/// enforcing the table's reviewed constraints. Returns the records and what to tell the user.
pub fn sample_table(
    model: &ModelFile,
    origin: &str,
    rows: Option<usize>,
    seed: u64,
    obs: &dyn Observer,
) -> Result<(SyntheticTable, Vec<String>)> {
    let rows = rows.unwrap_or(model.total.round() as usize);
    check_rows(rows, model.table.columns.len())?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let _s = Step::start(obs, &format!("sampling {rows} rows"));
    let (synth, rejections) = SyntheticTable::sample(model, origin, rows, &mut rng)?;
    Ok((synth, rejections.summary()))
}

/// Draw `rows` records (default: the model's DP estimate) with `seed` and write them to
/// `output` batch by batch ([`BATCH_ROWS`] records each: drawn, decoded column-parallel and
/// written as a Parquet row group, a CSV chunk or an IPC record batch), atomically. Memory is
/// that of one batch whatever `rows` is. Text columns are written empty (the LLM stage needs
/// the whole table: [`sample_table`]). Returns the summary lines and the rows and columns
/// written.
pub fn sample_to_file(
    model: &ModelFile,
    origin: &str,
    rows: Option<usize>,
    seed: u64,
    (output, how): (&Path, Output),
    obs: &dyn Observer,
) -> Result<(Vec<String>, (usize, usize))> {
    sample_to_file_in(model, origin, rows, seed, (output, how), BATCH_ROWS, obs)
}

/// [`sample_to_file`] with batches of `batch` records.
pub fn sample_to_file_in(
    model: &ModelFile,
    origin: &str,
    rows: Option<usize>,
    seed: u64,
    (output, how): (&Path, Output),
    batch: usize,
    obs: &dyn Observer,
) -> Result<(Vec<String>, (usize, usize))> {
    let rows = rows.unwrap_or(model.total.round() as usize);
    check_rows(rows, model.table.columns.len())?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let _s = Step::start(obs, &format!("sampling and writing {rows} rows"));
    let mut drawer = Drawer::new(model, origin)?;
    let mut left = rows;
    // Columns the run does not produce (identifiers without a fake generator, text columns
    // without the LLM stage) are decided on the first batch and left out of every batch.
    let mut conformed: Option<(crate::schema::Table, Option<String>)> = None;
    let written = data::write_batches(output, &model.table, how, || {
        if left == 0 {
            return Ok(None);
        }
        let n = left.min(batch.max(1));
        left -= n;
        let mut df = drawer.table(n, &mut rng)?.into_frame()?;
        match &conformed {
            None => {
                let mut table = model.table.clone();
                let why = crate::synthetic::conform(&mut table, &mut df);
                conformed = Some((table, why));
            }
            Some((table, _)) => {
                df = df.select(table.columns.iter().map(|c| c.name.as_str())).map_err(Error::polars)?;
            }
        }
        Ok(Some(df))
    })?;
    let mut lines = drawer.report.summary();
    if let Some((table, Some(why))) = conformed {
        lines.push(write_schema_beside(output, &table, &why)?);
    }
    Ok((lines, written))
}

/// Write the schema of a synthetic table whose columns are not all the source schema's to
/// [`schema_beside`]; returns the warning to show.
fn write_schema_beside(output: &Path, table: &crate::schema::Table, why: &str) -> Result<String> {
    let path = schema_beside(output);
    let schema = crate::schema::Schema { version: 1, person: None, dp_inference: None, tables: vec![table.clone()] };
    let yaml = format!(
        "# The schema of the synthetic table {}, written by privsynth: check it with\n# `privsynth schema check {} --schema {}`.\n{}",
        output.display(),
        output.display(),
        path.display(),
        schema.to_yaml()?
    );
    data::write_atomic(&path, |f| std::io::Write::write_all(f, yaml.as_bytes()))?;
    Ok(format!("warning: column(s) not in the output: {why}; {} describes the table as written", path.display()))
}

/// The schema file written beside a single synthetic table whose columns are not all the
/// schema's (`out.parquet` -> `out.schema.yaml`).
pub fn schema_beside(output: &Path) -> std::path::PathBuf {
    let stem = output.file_stem().and_then(|s| s.to_str()).unwrap_or("synthetic");
    output.with_file_name(format!("{stem}.schema.yaml"))
}

/// Write synthetic records to `output` as `how` says (decided from the command line with
/// [`data::Format::for_output`] before anything was charged; CSV in the table's dialect).
/// Columns the run did not produce are left out ([`crate::synthetic::conform`]); then the
/// output's own schema is written to [`schema_beside`]. Returns the rows and columns written
/// and what to tell the user.
pub fn write_table(
    synth: SyntheticTable,
    model: &ModelFile,
    output: &Path,
    how: Output,
) -> Result<(usize, usize, Vec<String>)> {
    let mut df = synth.into_frame()?;
    let mut table = model.table.clone();
    let mut lines = vec![];
    if let Some(why) = crate::synthetic::conform(&mut table, &mut df) {
        lines.push(write_schema_beside(output, &table, &why)?);
    }
    data::write(&mut df, output, &table, how)?;
    Ok((df.height(), df.width(), lines))
}

/// Sample a linked model (`persons` persons, default its DP estimate) and write its tables into
/// the folder `output`, atomically: the tables are written into a temporary folder beside it,
/// which then replaces it.
///
/// Persons are drawn in blocks of [`crate::ehr::sample::BLOCK_PERSONS`], each with its events
/// (which reference persons of their own block), and each block is appended to every table's
/// file (a Parquet row group, CSV lines, an IPC record batch) by one writer thread per table,
/// so memory is that of a few blocks whatever the number of persons. The LLM stage, when
/// configured, writes each block's text columns before it is written. Which columns the tables
/// have is decided on the first block, before anything is written, by
/// [`crate::ehr::sample::Output::conform`] (a column the run does not produce, or that the
/// first block drew without a single value, is left out of every block), so that every block
/// has the same columns and types and none is empty in the whole output. Returns what to tell
/// the user.
#[allow(clippy::too_many_arguments)]
pub fn write_linked(
    m: &LinkedModel,
    origin: &str,
    persons: Option<usize>,
    seed: u64,
    output: &Path,
    how: Output,
    obs: &dyn Observer,
    (llm_opts, llm): (&crate::llm::StageOptions, Option<&crate::llm::client::Client>),
) -> Result<Vec<String>> {
    write_linked_in(m, origin, persons, seed, (output, how), crate::ehr::sample::BLOCK_PERSONS, obs, (llm_opts, llm))
}

/// [`write_linked`] with blocks of `block` persons.
#[allow(clippy::too_many_arguments)]
pub fn write_linked_in(
    m: &LinkedModel,
    origin: &str,
    persons: Option<usize>,
    seed: u64,
    (output, how): (&Path, Output),
    block: usize,
    obs: &dyn Observer,
    (llm_opts, llm): (&crate::llm::StageOptions, Option<&crate::llm::client::Client>),
) -> Result<Vec<String>> {
    use crate::ehr::sample::{LinkedSampler, SampleReport, persons_to_draw};
    let started = std::time::Instant::now();
    if output.is_file() {
        return Err(Error::Usage(format!("{} is a file; a linked schema writes a folder of tables", output.display())));
    }
    let total = persons_to_draw(m, persons)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut sampler = LinkedSampler::new(m, origin)?;
    let parent = output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let tmp = tempfile::Builder::new().prefix(".privsynth-").tempdir_in(parent).map_err(|e| Error::io(parent, e))?;
    let mut report = SampleReport::default();
    let mut stage = llm_opts.start_linked(llm, m, true);
    // Decided on the first block: the output's schema, the warnings, and each table's columns.
    let mut decided: Option<(crate::schema::Schema, Vec<String>, Vec<(String, polars::prelude::Schema)>)> = None;
    let _s = Step::start(obs, &format!("sampling and writing linked tables ({total} persons)"));
    let drawn = std::thread::scope(|scope| -> Result<()> {
        // One writer thread per table, fed through a channel of one slot: at most the block
        // being drawn, one queued and one being written per table are in memory.
        let mut writers: Vec<(
            String,
            std::sync::mpsc::SyncSender<polars::prelude::DataFrame>,
            std::thread::ScopedJoinHandle<'_, Result<(usize, usize)>>,
        )> = vec![];
        let mut left = total;
        let result = (|| -> Result<()> {
            while left > 0 {
                let n = left.min(block.max(1));
                left -= n;
                let mut out = sampler.block(n, &mut rng)?;
                stage.block(m, &mut out)?;
                report.add(&out.report);
                let first = decided.is_none();
                if first {
                    let (out_schema, warnings) = out.conform(&m.schema)?;
                    let shapes = out.tables().iter().map(|(n, df)| (n.clone(), df.schema().as_ref().clone())).collect();
                    for t in &out_schema.tables {
                        let (send, recv) = std::sync::mpsc::sync_channel::<polars::prelude::DataFrame>(1);
                        let path = tmp.path().join(format!("{}.{}", t.name, how.format.extension()));
                        let table = t.clone();
                        let handle =
                            scope.spawn(move || data::write_batches(&path, &table, how, || Ok(recv.recv().ok())));
                        writers.push((t.name.clone(), send, handle));
                    }
                    decided = Some((out_schema, warnings, shapes));
                } else if let Some((_, _, shapes)) = &decided {
                    out.select_like(shapes)?;
                }
                for (name, df) in out.into_tables() {
                    // Every table gets its first block (a file with its columns even without
                    // rows); later blocks only when they have rows.
                    if !first && df.height() == 0 {
                        continue;
                    }
                    let Some((_, send, _)) = writers.iter().find(|w| w.0 == name) else {
                        return Err(Error::Internal(format!("sampled table {name} is not in the schema")));
                    };
                    if send.send(df).is_err() {
                        // The writer stopped on an error, returned when it is joined.
                        return Ok(());
                    }
                }
            }
            Ok(())
        })();
        let mut failed = result.err();
        for (name, send, handle) in writers {
            drop(send);
            let r = handle.join().unwrap_or_else(|_| Err(Error::Internal(format!("the writer of {name} panicked"))));
            if let Err(e) = r
                && failed.is_none()
            {
                failed = Some(e);
            }
        }
        failed.map_or(Ok(()), Err)
    });
    stage.finish(drawn)?;
    let (out_schema, warnings, _) = decided.ok_or_else(|| Error::Internal("no block was drawn".into()))?;
    let schema_file = tmp.path().join(OUTPUT_SCHEMA);
    let yaml = format!(
        "# The schema of the synthetic tables beside it, written by privsynth from the schema of the\n# model ({origin}); check them with `privsynth schema check FOLDER --schema FOLDER/{OUTPUT_SCHEMA}`.\n{}",
        out_schema.to_yaml()?
    );
    data::write_atomic(&schema_file, |f| std::io::Write::write_all(f, yaml.as_bytes()))?;
    if output.exists() {
        // Replace the tables this run writes; other files in the folder stay.
        for entry in std::fs::read_dir(tmp.path()).map_err(|e| Error::io(tmp.path(), e))? {
            let entry = entry.map_err(|e| Error::io(tmp.path(), e))?;
            let to = output.join(entry.file_name());
            std::fs::rename(entry.path(), &to).map_err(|e| Error::io(&to, e))?;
        }
    } else {
        let kept = tmp.keep();
        std::fs::rename(&kept, output).map_err(|e| Error::io(output, e))?;
    }
    let mut lines: Vec<String> = report.lines().into_iter().map(|l| format!("sample: {l}")).collect();
    lines.extend(warnings.into_iter().map(|w| format!("warning: {w}")));
    lines.push(format!(
        "sample: wrote {} table(s) to {} in {:.1} s (seed {seed})",
        m.schema.tables.len(),
        output.display(),
        started.elapsed().as_secs_f64()
    ));
    Ok(lines)
}
