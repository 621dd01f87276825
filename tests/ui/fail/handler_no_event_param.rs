use eventbus::prelude::*;

#[handler]
async fn tick(_ctx: Context) {}

fn main() {}
