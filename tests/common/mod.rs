//! Helpers for running the `privsynth` binary in tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Run the binary with `args` from the repository root.
pub fn privsynth(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_privsynth"))
        .args(args)
        .current_dir(root())
        .env_remove("RUST_BACKTRACE")
        // A developer's LLM settings must not change what the tests run.
        .env_remove("PRIVSYNTH_LLM_URL")
        .env_remove("PRIVSYNTH_LLM_MODEL")
        .env_remove("PRIVSYNTH_LLM_API_KEY")
        .env_remove("PRIVSYNTH_LLM_DIALECT")
        .output()
        .expect("the binary runs");
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !run.stderr.contains("panicked")
            && !run.stderr.contains("internal error")
            && !run.stderr.contains("stack backtrace"),
        "privsynth {args:?} crashed:\n{}",
        run.stderr
    );
    run
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}
