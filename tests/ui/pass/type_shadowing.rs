//! The generated code names everything by absolute path, so local items
//! shadowing prelude names, primitives or crates do not break it.

#![allow(dead_code, non_camel_case_types, unused_imports)]

use ::eventbus::prelude::*;

type Result<T = ()> = ::core::result::Result<T, ()>;
struct Option;
struct Some;
struct None;
struct Ok;
struct Err;
struct Box;
struct Vec;
struct String;
trait Send {}
trait Sync {}
trait Clone {}
trait Into {}
trait From {}
trait Default {}
trait Fn {}
mod core {}
mod std {}
mod serde {}
mod serde_json {}
mod inventory {}
mod eventbus {}

#[derive(Event, ::core::clone::Clone, Debug)]
#[event(topic = "entity.created")]
struct EntityCreated {
    id: u64,
    name: ::std::string::String,
}

#[derive(Event, ::core::clone::Clone, Debug)]
#[event(topic = "entity.ticked")]
struct Tick(u64);

#[derive(Event, ::core::clone::Clone, Debug)]
#[event(topic = "entity.pinged")]
struct Ping;

#[derive(Event, ::core::clone::Clone, Debug)]
#[event(namespace = "order")]
enum OrderEvent {
    Placed { id: u64 },
    Shipped(u64),
    Moved(i64, i64),
    Archived,
}

struct AppState;

#[handler(topic = "order.*", retry = 1, concurrency = 2, replay = false)]
async fn on_order(ev: Envelope<OrderEvent>, ctx: Context) -> ::core::result::Result<(), ::std::io::Error> {
    let _ = (ev, ctx.state::<AppState>().is_ok());
    ::core::result::Result::Ok(())
}

#[handler]
async fn on_created(_: EntityCreated) {}

fn main() {
    let data = Event::encode_data(&OrderEvent::Placed { id: 1 }).unwrap();
    ::core::assert_eq!(data, b"{\"id\":1}");
    ::core::assert!(<OrderEvent as Event>::decode_data("order.moved", b"[1,2]").is_ok());
    ::core::assert!(<Tick as Event>::decode_data("entity.ticked", b"1").is_ok());
    ::core::assert!(<Ping as Event>::decode_data("entity.pinged", b"null").is_ok());
    ::core::assert!(<EntityCreated as Event>::decode_data("entity.created", b"{\"id\":1,\"name\":\"a\"}").is_ok());
    let _topic = topic!("order.placed");
}
