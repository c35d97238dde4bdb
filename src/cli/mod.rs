//! The command line: argument types ([`args`]) and one small file per command family that
//! calls the library ([`crate::pipeline`] and its neighbours) and prints what it returns.
//! Exit codes are in [`crate::error::exit`].

pub mod args;
mod audit;
mod audit_privacy;
mod fit;
mod ledger;
/// The `--llm-*` options and the `llm` subcommand.
pub mod llm;
mod output;
mod schema;

pub use args::{Cli, Command};

use crate::error::Result;

/// Run a parsed command; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    let obs = output::Spinner::new(cli.quiet);
    match cli.command {
        Command::Schema(c) => schema::run(c, &obs),
        Command::Fit(a) => fit::fit(a, &obs),
        Command::Sample(a) => fit::sample(a, &obs),
        Command::Synth(a) => fit::synth(a, &obs),
        Command::Audit(a) => audit::run(a, &obs),
        Command::AuditPrivacy(a) => audit_privacy::run(a, cli.quiet),
        Command::Ledger(args::LedgerCommand::Show(a)) => ledger::show(a),
        Command::Llm(llm::LlmCommand::Constraints(a)) => crate::llm::constraints::run(&a.options()),
        #[cfg(feature = "engine-ballista")]
        Command::Engine(c) => crate::engine::ballista::serve(match c {
            args::EngineCommand::Cluster { executors, vcores } => {
                crate::engine::ballista::Serve::Cluster { executors, vcores }
            }
            args::EngineCommand::Scheduler { bind } => crate::engine::ballista::Serve::Scheduler { bind },
            args::EngineCommand::Executor { scheduler, bind, external_host, vcores, work_dir } => {
                crate::engine::ballista::Serve::Executor(crate::engine::ballista::ExecutorOptions {
                    scheduler,
                    bind,
                    external_host,
                    vcores,
                    work_dir,
                })
            }
        }),
        Command::Completions(a) => {
            use clap::CommandFactory;
            clap_complete::generate(a.shell, &mut Cli::command(), "privsynth", &mut std::io::stdout());
            Ok(crate::error::exit::OK)
        }
    }
}
