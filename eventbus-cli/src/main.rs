//! The `eventbus` command: publish, follow, query, replay, export, import
//! and clear the history of any eventbus store, and manage its dead
//! letters, from a shell; `eventbus ui` serves the same as a web console.
//!
//! This file only parses the arguments, runs the command and turns the
//! outcome into an exit code: 0 on success, 1 when an operation failed,
//! 2 when the command line itself is wrong. Errors go to stderr as one line
//! starting with `error: `.

mod admin;
mod cli;
mod dlq;
mod error;
mod history;
mod open;
mod output;
mod prompt;
mod publish;
mod replay;
mod sagas;
mod scheduled;
mod time;
mod transfer;
mod ui;

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_exit(&e),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(error::OPERATIONAL);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => error::report(&e),
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let url = cli.store.as_str();
    open::refuse_memory(url)?;
    match cli.command {
        Command::Publish(args) => publish::run(url, args).await,
        Command::Tail(args) => history::tail(url, args).await,
        Command::History(args) => history::history(url, args).await,
        Command::Replay(args) => replay::run(url, args).await,
        Command::Topics(args) => admin::topics(url, args).await,
        Command::Stats(args) => admin::stats(url, args).await,
        Command::Dlq(command) => dlq::run(url, command).await,
        Command::Clear(args) => admin::clear(url, args).await,
        Command::Backup(args) => admin::backup(url, args).await,
        Command::Export(args) => transfer::export(url, args).await,
        Command::Import(args) => transfer::import(url, args).await,
        Command::Scheduled(command) => scheduled::run(url, command).await,
        Command::Sagas(args) => sagas::run(url, args).await,
        Command::Ui(args) => ui::run(url, args).await,
    }
}

/// Help and version go to stdout with exit 0; a usage error becomes one
/// `error: ...` line on stderr with exit 2.
fn clap_exit(e: &clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            eprint!("{}", e.render());
            ExitCode::from(error::USAGE)
        }
        _ => {
            eprintln!("{}", error::one_line_clap(e));
            ExitCode::from(error::USAGE)
        }
    }
}
