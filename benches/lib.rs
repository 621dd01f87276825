//! Criterion benches: `cargo bench -p benches`. Each bench measures its raw
//! baseline in the same run and prints `ratio NAME: X.XX` (bus time per
//! event / baseline time per event), because these machines are noisy.

use std::time::Duration;

/// Runs `round` `rounds` times, alternating with `baseline`, and returns the
/// ratio of the best (shortest) time of each side, with the two times.
/// The best of each, not the median: a noisy machine only ever slows a
/// round down, and a baseline measured slow would flatter the ratio.
pub fn best_ratio(
    rounds: usize,
    mut round: impl FnMut() -> Duration,
    mut baseline: impl FnMut() -> Duration,
) -> (f64, Duration, Duration) {
    let mut bus = Vec::with_capacity(rounds);
    let mut raw = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        bus.push(round());
        raw.push(baseline());
    }
    let b = bus.iter().copied().min().unwrap_or_default();
    let r = raw.iter().copied().min().unwrap_or_default();
    (b.as_secs_f64() / r.as_secs_f64(), b, r)
}

/// Prints the line the issue asks for, plus the absolute numbers behind it.
pub fn print_ratio(name: &str, per_event: (f64, Duration, Duration), events: u64) {
    let (ratio, bus, raw) = per_event;
    let ns = |d: Duration| d.as_nanos() as f64 / events as f64;
    println!(
        "ratio {name}: {ratio:.2}   (bus {:.0} ns/event, baseline {:.0} ns/event)",
        ns(bus),
        ns(raw)
    );
}

/// Prints `ratio NAME: X.XX` as bus *throughput* / raw throughput (higher
/// is better), with the absolute rates; `times` is [`best_ratio`]'s
/// (bus/raw time, bus, raw) and `note` is appended inside the parentheses.
pub fn print_throughput_ratio(
    name: &str,
    times: (f64, Duration, Duration),
    events: u64,
    note: &str,
) {
    let (time_ratio, bus, raw) = times;
    let rate = |d: Duration| events as f64 / d.as_secs_f64();
    println!(
        "ratio {name}: {:.2}   (bus {:.0} events/s, raw {:.0} events/s{note})",
        1.0 / time_ratio,
        rate(bus),
        rate(raw)
    );
}
