use eventbus::prelude::*;

#[derive(Event, Clone, Debug)]
#[event(namespace = "order")]
enum OrderEvent {}

fn main() {}
