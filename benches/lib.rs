//! Criterion benches: `cargo bench -p benches`.
