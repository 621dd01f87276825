//! The `eventbus` command-line tool (being built).

fn main() {}
