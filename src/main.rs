use clap::Parser;

use privsynth::cli::{Cli, run};
use privsynth::error::exit;

fn main() {
    // Rust ignores SIGPIPE, so printing into a closed pipe (`privsynth ledger show | head`)
    // would be an error at every print; a command-line tool ends quietly instead.
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to its default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    privsynth::model::keep_freed_memory();
    // A panic is a bug; say so in one line instead of printing a backtrace at a user.
    std::panic::set_hook(Box::new(|info| {
        if !privsynth::error::EXPECTED_PANIC.load(std::sync::atomic::Ordering::SeqCst) {
            eprintln!("privsynth: internal error (a bug; please report it): {info}");
        }
    }));
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { exit::USAGE } else { exit::OK };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}
