//! Compile-time checks that the public types can cross threads and that the
//! futures of the async API can be spawned on a multi-threaded runtime.
//!
//! Most of the checks are in `const _` blocks: they are type-checked but
//! never run, so a type that stops being `Send` or `Sync` breaks the build of
//! this file. The one test spawns each future for real.

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use eventbus::store::Store;
use eventbus::testing::{InFlight, NotSettled, TestBus, TestBusBuilder};
use eventbus::topic::{Pattern, Topic};
use eventbus::{
    Backoff, Bus, BusBuilder, CodecError, Context, Draft, Envelope, Error, FnHandler, HandlerInfo,
    HandlerOptions, HandlerStats, HandlingError, HistoryQuery, PublishFuture, RawEnvelope, Replay,
    ReplayReport, Subscription, SubscriptionError,
};
use futures_util::StreamExt as _;
use tests::{EntityCreated, OrderEvent, isolated};

fn assert_send<T: Send>() {}
fn assert_sync<T: Sync>() {}
fn assert_unpin<T: Unpin>() {}
fn assert_error<T: std::error::Error + Send + Sync + 'static>() {}
fn require_send<T: Send>(_: &T) {}
fn require_static_send<T: Send + 'static>(_: &T) {}

macro_rules! assert_send_sync_unpin {
    ($($ty:ty),* $(,)?) => {
        $(
            assert_send::<$ty>();
            assert_sync::<$ty>();
            assert_unpin::<$ty>();
        )*
    };
}

// The handles, builders and values.
const _: fn() = || {
    assert_send_sync_unpin!(
        Bus,
        BusBuilder,
        RawEnvelope,
        Envelope<OrderEvent>,
        Envelope<EntityCreated>,
        Context,
        HistoryQuery,
        Replay,
        ReplayReport,
        Error,
        HandlingError,
        CodecError,
        SubscriptionError,
        FnHandler,
        Draft,
        Topic,
        Pattern,
        HandlerInfo,
        HandlerOptions,
        HandlerStats,
        Backoff,
        Arc<dyn Store>,
    );

    // A subscription is a stream owned by one task: it moves between
    // threads and can be polled without pinning.
    assert_send_sync_unpin!(Subscription<OrderEvent>);

    // The publish future is boxed, so it is `Unpin` as well as `Send`.
    assert_send::<PublishFuture<'static>>();
    assert_unpin::<PublishFuture<'static>>();

    // The error types work with `?` into `anyhow` and `Box<dyn Error + Send + Sync>`.
    assert_error::<Error>();
    assert_error::<HandlingError>();
    assert_error::<CodecError>();
    assert_error::<SubscriptionError>();
};

// The futures of the async API, as returned.
const _: fn(&Bus, &Context) = |bus, ctx| {
    require_send(&bus.publish(OrderEvent::Shipped { id: 1 }).into_future());
    require_send(
        &bus.publish(EntityCreated {
            id: "e-1".into(),
            name: "n".into(),
        })
        .correlation_id("c")
        .header("tenant", "acme")
        .unwrap()
        .into_future(),
    );
    require_send(&bus.shutdown());
    require_send(&bus.history().topic("order.>").fetch());
    require_send(&bus.history().fetch_as::<OrderEvent>());
    require_send(&bus.replay().topic("order.>").run());
    require_send(&ctx.publish(OrderEvent::Shipped { id: 1 }).into_future());
    require_static_send(&isolated().build());
};

// The test kit: its bus, builder and error, and its futures.
const _: fn(&TestBus) = |bus| {
    assert_send_sync_unpin!(TestBus, TestBusBuilder, NotSettled, InFlight);
    assert_error::<NotSettled>();
    require_send(&bus.settled());
    require_send(&bus.expect::<OrderEvent>().matching(|_| true).into_future());
    require_static_send(&TestBus::builder().build());
};

// The same futures inside `'static` tasks, as `tokio::spawn` needs them.
const _: fn(Bus) = |bus| {
    require_static_send(&async move {
        bus.publish(OrderEvent::Shipped { id: 1 }).await?;
        bus.history().fetch().await?;
        bus.replay().run().await?;
        bus.shutdown().await
    });
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_api_runs_in_spawned_tasks() {
    let bus = isolated().source("svc").build().await.unwrap();

    let publisher = bus.clone();
    let sent = tokio::spawn(async move {
        publisher
            .publish(OrderEvent::Placed { id: 7, cents: 1250 })
            .correlation_id("req-1")
            .await
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(sent.topic(), "order.placed");

    let reader = bus.clone();
    let past = tokio::spawn(async move { reader.history().topic("order.*").fetch().await })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(past.len(), 1);
    assert_eq!(past[0].id(), sent.id());

    let replayer = bus.clone();
    let report = tokio::spawn(async move { replayer.replay().topic("order.>").run().await })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.events, 1, "{report:?}");

    // A subscription moves into another task and is read there.
    let mut live = bus.subscribe::<OrderEvent>("order.>").unwrap();
    let next =
        tokio::spawn(
            async move { tokio::time::timeout(Duration::from_secs(5), live.next()).await },
        );
    let shipped = bus.publish(OrderEvent::Shipped { id: 7 }).await.unwrap();
    let got = next.await.unwrap().expect("an event within 5s");
    assert_eq!(got.expect("open").expect("no gap").id(), shipped.id());

    let closer = bus.clone();
    tokio::spawn(async move { closer.shutdown().await })
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        bus.publish(OrderEvent::Shipped { id: 8 }).await,
        Err(Error::ShutDown)
    ));
}
