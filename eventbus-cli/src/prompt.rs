//! Talking to the person at the terminal: confirmations and progress bars.
//! Neither ever shows in a pipe.

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

use crate::error::usage;

/// Refuses early when `what` needs a confirmation that no one can give:
/// no `--yes` and stdin is not a terminal.
pub(crate) fn require_confirmation(yes: bool, what: &str) -> Result<()> {
    if !yes && !std::io::stdin().is_terminal() {
        return Err(usage(format!(
            "{what} needs confirmation and stdin is not a terminal; pass --yes"
        )));
    }
    Ok(())
}

/// Asks `question` on stderr and goes on only on `y` or `yes`; with
/// `--yes` it does not ask.
pub(crate) fn confirm(yes: bool, question: &str) -> Result<()> {
    if yes {
        return Ok(());
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => bail!("cancelled; nothing was changed"),
    }
}

/// A progress bar on stderr for `total` steps (a spinner when unknown),
/// hidden unless stderr is a terminal.
pub(crate) fn progress(total: Option<u64>, message: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {msg} {pos}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.set_message(message.to_owned());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// A progress bar on stderr counting `total` bytes (a spinner when
/// unknown), hidden unless stderr is a terminal.
pub(crate) fn progress_bytes(total: Option<u64>, message: &str) -> ProgressBar {
    let bar = progress(total, message);
    if total.is_some() {
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} ({eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
    }
    bar
}

/// A spinner on stderr for one step of unknown length, hidden unless
/// stderr is a terminal.
pub(crate) fn spinner(message: &str) -> ProgressBar {
    let bar = progress(None, message);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar
}

/// Whether stderr is a terminal, for notes meant only for a person.
pub(crate) fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}
