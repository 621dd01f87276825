//! One line of `eventbus import`. The line handling lives in the CLI's
//! binary crate (eventbus-cli/src/transfer.rs), which a fuzz target cannot
//! link, so this target takes the same steps through the library calls it
//! makes: the first line loses a UTF-8 byte order mark, a blank line is
//! skipped, the rest is read by `RawEnvelope::from_cloudevent_json`, made
//! a draft with `Draft::from_envelope` and appended to a store (memory
//! here). `eventbus export` writes the stored event back as one NDJSON
//! line: its CloudEvents JSON with CR and LF replaced by spaces, which the
//! CLI relies on being only white space between JSON tokens. That line
//! must import as the same event.
//!
//! Input: one line as `read_line` returns it (up to and with the first
//! `\n`; the rest is ignored), read as the first line of its file.

#![no_main]

use eventbus::store::{MemoryStore, Store};
use eventbus::{Draft, RawEnvelope};
use eventbus_fuzz::{assert_same_but_data, data, ready};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let line = match input.iter().position(|&b| b == b'\n') {
        Some(end) => &input[..=end],
        None => input,
    };
    // `read_line` fails on input that is not UTF-8, ending the import.
    let Ok(line) = std::str::from_utf8(line) else {
        return;
    };
    let text = line.strip_prefix('\u{feff}').unwrap_or(line);
    if text.trim().is_empty() {
        return;
    }
    let Ok(imported) = RawEnvelope::from_cloudevent_json(text.as_bytes()) else {
        return;
    };
    let stored = import(&imported);
    assert_eq!(stored.seq(), 1, "the first event of a new store");

    let exported = stored
        .to_cloudevent_json()
        .expect("a stored event exports")
        .replace(['\r', '\n'], " ");
    assert!(!exported.contains('\n'));
    let again = RawEnvelope::from_cloudevent_json(exported.as_bytes())
        .unwrap_or_else(|e| panic!("an exported line does not import: {e}\n{exported}"));
    assert_eq!(
        data(&again),
        data(&imported).replace(['\r', '\n'], " "),
        "data comes back as written, line breaks aside"
    );
    let restored = import(&again);
    assert_eq!(
        data(&restored),
        data(&again),
        "a store keeps the data it is given"
    );
    assert_same_but_data(&stored, &restored, "imported, exported, imported again");
});

fn import(env: &RawEnvelope) -> RawEnvelope {
    let store = MemoryStore::new(16);
    ready(store.append(Draft::from_envelope(env))).expect("a memory store takes any event")
}
