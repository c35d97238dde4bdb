//! Where inputs come from and outputs may go, checked before any budget is charged:
//! - an input is a regular file (or a folder of them): never a FIFO, a device or a socket,
//!   which could hang a run or be read differently twice (fingerprint, then parse);
//! - an output is never one of the inputs (same canonical path, or the same file through
//!   another name: a hard link or a symlink), never an existing file that is not a regular file
//!   (a device such as /dev/full, a FIFO, a folder where a file goes), and goes into a folder that
//!   exists and can be written, which is probed by creating and removing a file there.
//!
//! A linked run writes a folder of tables: none of the files it would write may be an input.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The identity of a file: its device and inode (Unix), so that two names of one file compare
/// equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FileId(u64, u64);

fn file_id(meta: &std::fs::Metadata) -> FileId {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        FileId(meta.dev(), meta.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        FileId(0, 0)
    }
}

/// The inputs of a run, against which its outputs are checked.
#[derive(Debug, Default)]
pub struct Guard {
    ids: HashSet<FileId>,
    canonical: HashSet<PathBuf>,
    names: Vec<String>,
}

impl Guard {
    pub fn new() -> Guard {
        Guard::default()
    }

    /// Record an input file; refuse anything that is not a regular file.
    pub fn input(&mut self, path: &Path) -> Result<()> {
        let meta = std::fs::metadata(path).map_err(|e| {
            Error::data(
                path.display().to_string(),
                match e.kind() {
                    std::io::ErrorKind::NotFound => "does not exist".to_string(),
                    _ => format!("cannot be read: {e}"),
                },
            )
        })?;
        if meta.is_dir() {
            return Err(Error::data(path.display().to_string(), "is a folder, not a data file"));
        }
        if !meta.is_file() {
            return Err(Error::data(
                path.display().to_string(),
                "is not a regular file (a pipe, device or socket): privsynth reads its inputs twice (fingerprint, then parse) and needs a file",
            ));
        }
        self.record(path, &meta);
        Ok(())
    }

    /// Record every regular file in a folder of inputs (a linked run reads some of them).
    pub fn input_folder(&mut self, dir: &Path) -> Result<()> {
        let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
        for e in entries.flatten() {
            let p = e.path();
            if let Ok(meta) = std::fs::metadata(&p) {
                if meta.is_file() {
                    self.record(&p, &meta);
                }
            }
        }
        if let Ok(meta) = std::fs::metadata(dir) {
            self.record(dir, &meta);
        }
        Ok(())
    }

    /// Record an input that may be a file or a folder (`synth DATA`).
    pub fn input_any(&mut self, path: &Path) -> Result<()> {
        if path.is_dir() { self.input_folder(path) } else { self.input(path) }
    }

    fn record(&mut self, path: &Path, meta: &std::fs::Metadata) {
        self.ids.insert(file_id(meta));
        if let Ok(c) = path.canonicalize() {
            self.canonical.insert(c);
        }
        self.names.push(path.display().to_string());
    }

    fn is_input(&self, path: &Path) -> bool {
        if let Ok(meta) = std::fs::metadata(path) {
            if self.ids.contains(&file_id(&meta)) {
                return true;
            }
        }
        path.canonicalize().is_ok_and(|c| self.canonical.contains(&c))
    }

    /// Check an output file: not an input, not an existing non-regular file, in a writable folder.
    pub fn output(&self, path: &Path) -> Result<()> {
        let shown = path.display().to_string();
        if self.is_input(path) {
            return Err(Error::Usage(format!(
                "{shown} is one of this run's inputs: an output never replaces an input; choose another file"
            )));
        }
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                // The link itself would be replaced; its target must not be an input either
                // (checked above), and must not be something other than a regular file.
                if let Ok(target) = std::fs::metadata(path) {
                    if !target.is_file() {
                        return Err(Error::Usage(format!(
                            "{shown} points to something that is not a regular file; privsynth does not replace it"
                        )));
                    }
                }
            }
            Ok(meta) if meta.is_dir() => {
                return Err(Error::Usage(format!("{shown} is a folder; give a file name for the output")));
            }
            Ok(meta) if !meta.is_file() => {
                return Err(Error::Usage(format!(
                    "{shown} exists and is not a regular file (a device, pipe or socket); privsynth writes files and never replaces such a node"
                )));
            }
            _ => {}
        }
        writable_folder(&parent(path), &shown)
    }

    /// Check an output folder whose files `names` (e.g. `patients.csv`) a run will write.
    pub fn output_folder(&self, dir: &Path, names: &[String]) -> Result<()> {
        let shown = dir.display().to_string();
        if let Ok(meta) = std::fs::symlink_metadata(dir) {
            if !meta.is_dir() && !(meta.file_type().is_symlink() && dir.is_dir()) {
                return Err(Error::Usage(format!(
                    "{shown} exists and is not a folder; a linked schema writes a folder of tables"
                )));
            }
            for n in names {
                let f = dir.join(n);
                if self.is_input(&f) {
                    return Err(Error::Usage(format!(
                        "{} is one of this run's inputs: writing the synthetic tables into {shown} would replace real data; choose another folder",
                        f.display()
                    )));
                }
                if let Ok(m) = std::fs::symlink_metadata(&f) {
                    if !m.is_file() {
                        return Err(Error::Usage(format!(
                            "{} exists and is not a regular file; privsynth does not replace it",
                            f.display()
                        )));
                    }
                }
            }
            return writable_folder(dir, &shown);
        }
        if Path::new(dir)
            .extension()
            .is_some_and(|e| crate::data::TABLE_EXTENSIONS.contains(&e.to_string_lossy().to_ascii_lowercase().as_str()))
        {
            return Err(Error::Usage(format!(
                "{shown} names a file, but a linked schema writes a folder of tables: give a folder name"
            )));
        }
        writable_folder(&parent(dir), &shown)
    }
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The folder exists and a file can be created in it (probed, then removed).
fn writable_folder(dir: &Path, output: &str) -> Result<()> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(Error::Usage(format!("{output}: {} is not a folder", dir.display()))),
        Err(_) => {
            return Err(Error::Usage(format!(
                "{output}: the folder {} does not exist; create it first",
                dir.display()
            )));
        }
    }
    tempfile::Builder::new()
        .prefix(".privsynth-probe-")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| Error::Usage(format!("{output}: cannot write into the folder {}: {e}", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_never_replace_inputs_or_special_files() {
        let d = tempfile::tempdir().unwrap();
        let input = d.path().join("train.csv");
        std::fs::write(&input, "a\n1\n").unwrap();
        let mut g = Guard::new();
        g.input(&input).unwrap();
        assert!(g.output(&input).unwrap_err().to_string().contains("one of this run's inputs"));
        // Another name of the same file: a hard link and a symlink.
        let hard = d.path().join("hard.csv");
        std::fs::hard_link(&input, &hard).unwrap();
        assert!(g.output(&hard).is_err());
        #[cfg(unix)]
        {
            let soft = d.path().join("soft.csv");
            std::os::unix::fs::symlink(&input, &soft).unwrap();
            assert!(g.output(&soft).is_err());
            assert!(g.output(Path::new("/dev/null")).unwrap_err().to_string().contains("not a regular file"));
        }
        // A folder where a file goes, a missing folder.
        assert!(g.output(d.path()).unwrap_err().to_string().contains("is a folder"));
        assert!(g.output(&d.path().join("nope/out.csv")).unwrap_err().to_string().contains("does not exist"));
        // A new file in a writable folder is fine, and the probe leaves nothing.
        g.output(&d.path().join("out.csv")).unwrap();
        let left: Vec<_> = std::fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(left.iter().all(|n| !n.to_string_lossy().starts_with(".privsynth-probe")), "{left:?}");
        // Inputs that are not regular files are refused.
        assert!(Guard::new().input(Path::new("/dev/zero")).unwrap_err().to_string().contains("not a regular file"));
    }

    #[test]
    fn a_linked_output_folder_never_holds_an_input() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::write(real.join("patients.csv"), "Id\n1\n").unwrap();
        let mut g = Guard::new();
        g.input_folder(&real).unwrap();
        let e = g.output_folder(&real, &["patients.csv".into()]).unwrap_err().to_string();
        assert!(e.contains("would replace real data"), "{e}");
        g.output_folder(&d.path().join("out"), &["patients.csv".into()]).unwrap();
        assert!(
            g.output_folder(&d.path().join("x.csv"), &["patients.csv".into()])
                .unwrap_err()
                .to_string()
                .contains("names a file")
        );
        std::fs::write(d.path().join("file"), "x").unwrap();
        assert!(g.output_folder(&d.path().join("file"), &[]).unwrap_err().to_string().contains("not a folder"));
    }
}
