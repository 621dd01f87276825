//! Exit codes and the one-line error report.

use std::fmt;
use std::process::ExitCode;

/// Exit code of an operation that failed (a store error, a missing file).
pub(crate) const OPERATIONAL: u8 = 1;

/// Exit code of a command line that is wrong (a bad flag, topic or value).
pub(crate) const USAGE: u8 = 2;

/// A mistake in the command line found after parsing (a bad `--data`
/// value, a missing `--yes`): reported with exit code 2.
#[derive(Debug)]
pub(crate) struct Usage(pub(crate) String);

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// A usage error with this message.
pub(crate) fn usage(message: impl Into<String>) -> anyhow::Error {
    Usage(message.into()).into()
}

/// Prints `error: ...` on one line and picks the exit code. A closed
/// stdout (`eventbus history | head`) is not an error.
pub(crate) fn report(e: &anyhow::Error) -> ExitCode {
    let broken_pipe = e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return ExitCode::SUCCESS;
    }
    let is_usage = e.chain().any(|cause| {
        cause.is::<Usage>()
            || matches!(
                cause.downcast_ref::<eventbus::Error>(),
                Some(eventbus::Error::InvalidStoreUrl { .. })
            )
    });
    eprintln!("error: {}", single_line(&format!("{e:#}")));
    ExitCode::from(if is_usage { USAGE } else { OPERATIONAL })
}

/// Clap's message without its usage block, joined into one line.
pub(crate) fn one_line_clap(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let mut message = String::new();
    for line in rendered.lines() {
        let line = line.trim();
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        if line.is_empty() {
            continue;
        }
        if !message.is_empty() {
            message.push_str(if line.starts_with("tip:") { "; " } else { " " });
        }
        message.push_str(line);
    }
    if !message.starts_with("error:") {
        message.insert_str(0, "error: ");
    }
    message.push_str(" (see --help)");
    message
}

fn single_line(text: &str) -> String {
    text.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
