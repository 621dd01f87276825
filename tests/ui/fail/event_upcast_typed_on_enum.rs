use eventbus::prelude::*;
use serde::Deserialize;

#[derive(Event, Clone, Debug)]
#[event(namespace = "parcel", version = 2, upcast(from = 1, with = v1_to_v2))]
enum ParcelEvent {
    Weighed { id: u64, kilos: f64 },
    Sent { id: u64 },
}

#[derive(Deserialize)]
struct ParcelV1 {
    id: u64,
}

fn v1_to_v2(old: ParcelV1) -> ParcelEvent {
    ParcelEvent::Sent { id: old.id }
}

fn main() {}
