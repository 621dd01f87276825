use eventbus::prelude::*;

#[derive(Event)]
#[event(topic = "raw.bits")]
union Bits {
    int: u32,
    float: f32,
}

fn main() {}
