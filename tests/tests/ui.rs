//! The compile-time guarantees of the macros, one misuse per file.
//!
//! `ui/fail/*.rs` must fail with exactly the message in the `.stderr` beside
//! it; `ui/pass/*.rs` must compile and run. After changing a message, run
//! `TRYBUILD=overwrite cargo test -p tests --test ui` and review the diff of
//! the `.stderr` files: they are the user-facing text. The snapshots are tied
//! to the toolchain these machines run (see `rust-version`).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/fail/*.rs");
    t.pass("ui/pass/*.rs");
}
