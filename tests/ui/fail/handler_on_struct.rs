use eventbus::prelude::*;

#[handler]
struct Indexer;

fn main() {}
