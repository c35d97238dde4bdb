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

/// The binary the memory tests measure: this build's, or another build named by
/// `PRIVSYNTH_BIN` (how a test is checked to fail on an older binary).
pub fn bin_under_test() -> PathBuf {
    std::env::var_os("PRIVSYNTH_BIN").map(PathBuf::from).unwrap_or_else(|| env!("CARGO_BIN_EXE_privsynth").into())
}

/// Peak resident memory (KiB) of a child running the binary `bin` with `args`, from the
/// kernel's accounting of that child (wait4's rusage), and its exit code and stderr.
pub fn peak_rss_kib(bin: &Path, args: &[&str]) -> (i64, i32, String) {
    use std::os::unix::process::ExitStatusExt;
    let errf = tempfile::NamedTempFile::new().unwrap();
    // The child is reaped by wait4 below (which also returns its resource usage).
    #[allow(clippy::zombie_processes)]
    let child = std::process::Command::new(bin)
        .args(args)
        .current_dir(root())
        .stderr(errf.reopen().unwrap())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child, writing into locals.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4");
    let code = std::process::ExitStatus::from_raw(status).code().unwrap_or(-1);
    (usage.ru_maxrss, code, std::fs::read_to_string(errf.path()).unwrap_or_default())
}
