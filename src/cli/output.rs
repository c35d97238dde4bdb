//! What the command line shows: a spinner while a step runs (only on a terminal), text
//! written to a file or stdout, and lines on stderr.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
use privsynth_privacy::Sensitive;

use crate::data;
use crate::error::{Error, Result};
use crate::paths::Guard;
use crate::pipeline::Observer;

/// A spinner on stderr for each step; invisible when stderr is not a terminal or with `-q`.
pub struct Spinner {
    quiet: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Spinner {
    pub fn new(quiet: bool) -> Spinner {
        Spinner { quiet: quiet || !std::io::stderr().is_terminal(), bar: Mutex::new(None) }
    }

    /// Whether nothing is shown (with `-q`, or when stderr is not a terminal).
    pub fn quiet(&self) -> bool {
        self.quiet
    }
}

impl Observer for Spinner {
    fn begin(&self, step: &str) {
        if self.quiet {
            return;
        }
        let pb = ProgressBar::new_spinner();
        pb.set_style(
            ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        pb.set_message(step.to_string());
        pb.enable_steady_tick(std::time::Duration::from_millis(120));
        if let Ok(mut b) = self.bar.lock() {
            *b = Some(pb);
        }
    }

    fn end(&self) {
        if let Ok(mut b) = self.bar.lock() {
            if let Some(pb) = b.take() {
                pb.finish_and_clear();
            }
        }
    }
}

/// The file name without its extension (a default table name).
pub fn stem(p: &Path) -> String {
    p.file_stem().and_then(|s| s.to_str()).unwrap_or("table").to_string()
}

/// Write text to a file atomically, or to stdout.
pub fn emit(text: &str, output: Option<&Path>) -> Result<()> {
    match output {
        Some(p) => data::write_atomic(p, |f| std::io::Write::write_all(f, text.as_bytes())),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

/// Lines for stderr.
pub fn say(lines: &[String]) {
    for l in lines {
        eprintln!("{l}");
    }
}

/// Print exact diagnostics when, and only when, the data holder asked for them.
pub fn private_diagnostics(asked: bool, lines: Sensitive<Vec<String>>) {
    if !asked {
        return;
    }
    for l in lines.disclose_to_data_holder() {
        eprintln!("private diagnostics (exact counts of the real data, NOT differentially private): {l}");
    }
}

/// Write a model file (JSON) atomically and say so.
pub fn write_model(json: &str, path: &Path) -> Result<()> {
    data::write_atomic(path, |f| std::io::Write::write_all(f, json.as_bytes()))?;
    eprintln!("wrote model {}", path.display());
    Ok(())
}

/// The files of one command, checked together before anything is read or charged.
#[derive(Default)]
pub struct Files<'a> {
    /// Inputs that must exist: data files or folders, the schema, a model, a workload.
    pub inputs: Vec<&'a Path>,
    /// Inputs that may not exist yet (the ledger) or were not given.
    pub optional: Vec<Option<&'a Path>>,
    /// Output files (absent ones were not asked for).
    pub outputs: Vec<Option<&'a Path>>,
    /// An output folder of linked tables and the file names a run writes into it.
    pub folder: Option<(&'a Path, Vec<String>)>,
}

impl Files<'_> {
    /// Every output is distinct, not an input, not a special file, in a writable folder.
    pub fn check(&self) -> Result<()> {
        let mut g = Guard::new();
        for p in &self.inputs {
            g.input_any(p)?;
        }
        for p in self.optional.iter().flatten() {
            if p.exists() {
                g.input_any(p)?;
            }
        }
        let outs: Vec<&Path> = self.outputs.iter().flatten().copied().collect();
        for (i, o) in outs.iter().enumerate() {
            if outs[..i].iter().any(|p| same_path(p, o)) {
                return Err(Error::Usage(format!(
                    "{} is given for two outputs; each output needs its own file",
                    o.display()
                )));
            }
            // An input that does not exist yet (a new ledger) is still not an output's place.
            if self.optional.iter().flatten().any(|p| same_path(p, o)) {
                return Err(Error::Usage(format!(
                    "{} is one of this run's inputs (the ledger or a policy): an output never replaces an input; choose another file",
                    o.display()
                )));
            }
            g.output(o)?;
        }
        if let Some((dir, names)) = &self.folder {
            g.output_folder(dir, names)?;
        }
        Ok(())
    }
}

/// Two spellings of one path (relative or absolute, with `.` parts), compared without needing
/// the files to exist.
fn same_path(a: &Path, b: &Path) -> bool {
    let abs = |p: &Path| {
        std::path::absolute(p).map(|p| {
            p.components().filter(|c| !matches!(c, std::path::Component::CurDir)).collect::<std::path::PathBuf>()
        })
    };
    match (abs(a), abs(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}
