//! Event-sourced aggregates: one stream per entity, optimistic
//! concurrency across tasks and processes, snapshots that only save time,
//! time travel, and saved events routed like any publish. On memory,
//! SQLite, NATS and Redis.

use std::time::Duration;

use eventbus::aggregate::{Aggregate, CommandError, Repository};
use eventbus::prelude::*;
use eventbus::{Error, ErrorKind};
use tests::{NatsScope, RedisScope, TestChild, eventually_async, isolated};

#[derive(Event, Clone, Debug, PartialEq)]
#[event(namespace = "ledger")]
enum LedgerEvent {
    Opened { owner: String },
    Deposited { cents: u64 },
    Withdrawn { cents: u64 },
}

#[derive(Default, Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Ledger {
    owner: String,
    balance: u64,
    movements: u64,
}

impl Aggregate for Ledger {
    type Event = LedgerEvent;
    const SNAPSHOT_EVERY: u64 = 10;

    fn apply(&mut self, event: &LedgerEvent) {
        match event {
            LedgerEvent::Opened { owner } => self.owner = owner.clone(),
            LedgerEvent::Deposited { cents } => {
                self.balance += cents;
                self.movements += 1;
            }
            LedgerEvent::Withdrawn { cents } => {
                self.balance -= cents;
                self.movements += 1;
            }
        }
    }
}

impl Ledger {
    fn deposit(&self, cents: u64) -> Result<Vec<LedgerEvent>, String> {
        if self.owner.is_empty() {
            return Err("no such ledger".into());
        }
        Ok(vec![LedgerEvent::Deposited { cents }])
    }

    fn withdraw(&self, cents: u64) -> Result<Vec<LedgerEvent>, String> {
        if self.balance < cents {
            return Err(format!("balance {} is below {cents}", self.balance));
        }
        Ok(vec![LedgerEvent::Withdrawn { cents }])
    }
}

/// The same stream, read by a state that never snapshots.
#[derive(Default, Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct LedgerWithoutSnapshots(Ledger);

impl Aggregate for LedgerWithoutSnapshots {
    type Event = LedgerEvent;

    fn apply(&mut self, event: &LedgerEvent) {
        self.0.apply(event);
    }
}

/// The same stream, read by a newer shape of the state: the snapshots of
/// version 1 are not read as it.
#[derive(Default, Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct LedgerV2 {
    balance_cents: u64,
}

impl Aggregate for LedgerV2 {
    type Event = LedgerEvent;
    const STATE_VERSION: u32 = 2;
    const SNAPSHOT_EVERY: u64 = 10;

    fn apply(&mut self, event: &LedgerEvent) {
        match event {
            LedgerEvent::Opened { .. } => {}
            LedgerEvent::Deposited { cents } => self.balance_cents += cents,
            LedgerEvent::Withdrawn { cents } => self.balance_cents -= cents,
        }
    }
}

fn opened() -> Vec<LedgerEvent> {
    vec![LedgerEvent::Opened {
        owner: "Ada".into(),
    }]
}

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("ledgers.db").display())
}

async fn racing_commands_apply_each_accepted_one_once(url: &str) {
    let bus = isolated().store(url).build().await.unwrap();
    let ledgers = Repository::<Ledger>::new(&bus).attempts(1_000);
    ledgers.save("l-1", 0, opened()).await.unwrap();

    // Two writers that loaded the same version: one wins, one conflicts.
    let first = ledgers.save("l-1", 1, vec![LedgerEvent::Deposited { cents: 1 }]);
    let second = ledgers.save("l-1", 1, vec![LedgerEvent::Deposited { cents: 2 }]);
    let (first, second) = tokio::join!(first, second);
    let (won, lost) = match (first, second) {
        (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won, lost),
        other => panic!("exactly one save wins: {other:?}"),
    };
    assert_eq!(won[0].stream_version(), Some(2));
    assert_eq!(won[0].subject(), Some("l-1"));
    assert_eq!(lost.kind(), ErrorKind::Conflict);
    assert!(
        matches!(&lost, Error::Conflict { expected: 1, actual: 2, stream } if stream == "LedgerEvent/l-1"),
        "{lost}"
    );

    // Four tasks racing 20 commands each, retried on conflict.
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let ledgers = ledgers.clone();
            tokio::spawn(async move {
                for _ in 0..20 {
                    ledgers
                        .execute("l-1", |ledger| ledger.deposit(10))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let loaded = ledgers.load("l-1").await.unwrap();
    assert_eq!(
        loaded.version,
        2 + 80,
        "every accepted command is one event"
    );
    assert_eq!(loaded.state.balance, won_cents(&won) + 800);
    let versions: Vec<u64> = ledgers
        .events("l-1")
        .await
        .unwrap()
        .iter()
        .map(|e| e.stream_version().unwrap())
        .collect();
    assert_eq!(
        versions,
        (1..=82).collect::<Vec<_>>(),
        "no gaps, no repeats"
    );

    // A refused command stores nothing.
    let refused = ledgers
        .execute("l-1", |ledger| ledger.withdraw(1_000_000))
        .await
        .unwrap_err();
    assert!(matches!(refused, CommandError::Rejected(ref why) if why.contains("below")));
    assert_eq!(ledgers.load("l-1").await.unwrap().version, 82);
    bus.shutdown().await.unwrap();
}

fn won_cents(won: &[RawEnvelope]) -> u64 {
    won[0].data_value().unwrap()["cents"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_commands_apply_each_accepted_one_once_on_memory() {
    racing_commands_apply_each_accepted_one_once("memory://").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_commands_apply_each_accepted_one_once_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    racing_commands_apply_each_accepted_one_once(&sqlite_url(&dir)).await;
}

const CHILD_URL: &str = "EVENTBUS_TEST_LEDGER_URL";

/// The child's part of the two-process race: 30 deposits of 1 cent.
#[tokio::test]
async fn child_deposits_into_a_shared_ledger() {
    let Ok(url) = std::env::var(CHILD_URL) else {
        return;
    };
    let bus = isolated().store(url).build().await.unwrap();
    let ledgers = Repository::<Ledger>::new(&bus).attempts(10_000);
    for _ in 0..30 {
        ledgers.execute("shared", |l| l.deposit(1)).await.unwrap();
    }
    bus.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
async fn nats_racing_commands_apply_each_accepted_one_once() {
    let scope = NatsScope::new("agg_race");
    racing_commands_apply_each_accepted_one_once(&scope.url("")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
async fn redis_racing_commands_apply_each_accepted_one_once() {
    let scope = RedisScope::new("agg_race");
    racing_commands_apply_each_accepted_one_once(&scope.url("")).await;
}

#[tokio::test]
async fn two_processes_racing_on_one_sqlite_entity_lose_no_command() {
    let dir = tempfile::tempdir().unwrap();
    two_processes_race_on_one_entity(&sqlite_url(&dir)).await;
}

#[tokio::test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
async fn nats_two_processes_racing_on_one_entity_lose_no_command() {
    let scope = NatsScope::new("agg_procs");
    two_processes_race_on_one_entity(&scope.url("")).await;
}

#[tokio::test]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
async fn redis_two_processes_racing_on_one_entity_lose_no_command() {
    let scope = RedisScope::new("agg_procs");
    two_processes_race_on_one_entity(&scope.url("")).await;
}

async fn two_processes_race_on_one_entity(url: &str) {
    let bus = isolated().store(url).build().await.unwrap();
    let ledgers = Repository::<Ledger>::new(&bus).attempts(10_000);
    ledgers.save("shared", 0, opened()).await.unwrap();
    let mut child = TestChild::spawn("child_deposits_into_a_shared_ledger", &[(CHILD_URL, url)]);
    for _ in 0..30 {
        ledgers.execute("shared", |l| l.deposit(1)).await.unwrap();
    }
    child.wait_success(Duration::from_secs(60)).unwrap();
    let loaded = ledgers.load("shared").await.unwrap();
    assert_eq!((loaded.version, loaded.state.balance), (61, 60));
    bus.shutdown().await.unwrap();
}

async fn snapshots_change_nothing_but_speed(url: &str, delete_snapshots: impl AsyncFnOnce()) {
    let bus = isolated().store(url).build().await.unwrap();
    let ledgers = Repository::<Ledger>::new(&bus);
    ledgers.save("l-2", 0, opened()).await.unwrap();
    for cents in 1..=24 {
        ledgers.execute("l-2", |l| l.deposit(cents)).await.unwrap();
    }
    let snapshotted = ledgers.load("l-2").await.unwrap();
    let replayed = Repository::<LedgerWithoutSnapshots>::new(&bus)
        .load("l-2")
        .await
        .unwrap();
    assert_eq!(snapshotted.version, 25);
    assert_eq!(snapshotted.state, replayed.state.0);
    assert_eq!(snapshotted.state.balance, (1..=24).sum::<u64>());

    // A newer state shape ignores the version 1 snapshots.
    let v2 = Repository::<LedgerV2>::new(&bus).load("l-2").await.unwrap();
    assert_eq!(v2.state.balance_cents, snapshotted.state.balance);

    // Time travel: the state after the first 5 events.
    let past = ledgers.load_at("l-2", 5).await.unwrap();
    assert_eq!((past.version, past.state.balance), (5, 1 + 2 + 3 + 4));

    delete_snapshots().await;
    let without = ledgers.load("l-2").await.unwrap();
    assert_eq!(without, snapshotted, "deleting snapshots changes nothing");
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn snapshots_change_nothing_but_speed_on_memory() {
    snapshots_change_nothing_but_speed("memory://", async || {}).await;
}

#[tokio::test]
async fn snapshots_change_nothing_but_speed_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ledgers.db");
    snapshots_change_nothing_but_speed(&sqlite_url(&dir), async || {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let stored: i64 = conn
            .query_row(
                "SELECT version FROM snapshots WHERE kind = 'LedgerEvent' AND id = 'l-2' AND state_version = 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(stored, 20, "the newest snapshot, at a multiple of 10");
        // A snapshot that no longer reads as the state is ignored too.
        conn.execute(
            "UPDATE snapshots SET state = '{\"owner\": 7}' WHERE id = 'l-2'",
            [],
        )
        .unwrap();
    })
    .await;
}

#[tokio::test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
async fn nats_snapshots_change_nothing_but_speed() {
    let scope = NatsScope::new("agg_snap");
    let client = scope.raw_client().await;
    let stream = scope.stream.clone();
    snapshots_change_nothing_but_speed(&scope.url(""), async || {
        let js = async_nats::jetstream::new(client);
        let kv = js
            .get_key_value(format!("{stream}_snapshots"))
            .await
            .unwrap();
        let stored: serde_json::Value =
            serde_json::from_slice(&kv.get("LedgerEvent.l-2.1").await.unwrap().unwrap()).unwrap();
        assert_eq!(stored["version"], 20, "the newest snapshot: {stored}");
        // A snapshot that no longer reads as the state is ignored too.
        kv.put(
            "LedgerEvent.l-2.1",
            r#"{"version": 20, "state": {"owner": 7}}"#.into(),
        )
        .await
        .unwrap();
    })
    .await;
}

#[tokio::test]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
async fn redis_snapshots_change_nothing_but_speed() {
    let scope = RedisScope::new("agg_snap");
    let key = scope.key("snapshot:1:LedgerEvent:l-2");
    let mut raw = scope.raw();
    snapshots_change_nothing_but_speed(&scope.url(""), async || {
        let stored: u64 = redis::cmd("HGET")
            .arg(&key)
            .arg("version")
            .query(&mut raw)
            .unwrap();
        assert_eq!(stored, 20, "the newest snapshot, at a multiple of 10");
        // A snapshot that no longer reads as the state is ignored too.
        let added: u64 = redis::cmd("HSET")
            .arg(&key)
            .arg("state")
            .arg(r#"{"owner": 7}"#)
            .query(&mut raw)
            .unwrap();
        assert_eq!(added, 0, "the state was there");
    })
    .await;
}

#[tokio::test]
async fn saved_events_are_routed_and_kept_like_any_publish() {
    saved_events_are_routed_and_kept("memory://").await;
}

#[tokio::test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
async fn nats_saved_events_are_routed_and_kept_like_any_publish() {
    let scope = NatsScope::new("agg_routed");
    saved_events_are_routed_and_kept(&scope.url("")).await;
}

#[tokio::test]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
async fn redis_saved_events_are_routed_and_kept_like_any_publish() {
    let scope = RedisScope::new("agg_routed");
    saved_events_are_routed_and_kept(&scope.url("")).await;
}

/// On Redis an entity's events are entries of the bus stream that an
/// index names: an entry trimmed away makes loading the entity an error
/// that says so, and clearing the whole store starts its entities over.
#[tokio::test]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
async fn redis_an_entity_missing_a_trimmed_event_fails_to_load_and_clearing_starts_it_over() {
    let scope = RedisScope::new("agg_trim");
    let bus = isolated().store(scope.url("")).build().await.unwrap();
    let ledgers = Repository::<Ledger>::new(&bus);
    ledgers.save("l-4", 0, opened()).await.unwrap();
    for cents in 1..=12 {
        ledgers.execute("l-4", |l| l.deposit(cents)).await.unwrap();
    }
    let mut raw = scope.raw();
    let ids: Vec<String> = redis::cmd("LRANGE")
        .arg(scope.key("entity:LedgerEvent:l-4"))
        .arg(0)
        .arg(-1)
        .query(&mut raw)
        .unwrap();
    assert_eq!(ids.len(), 13, "the index names each event, in order");
    let deleted: u64 = redis::cmd("XDEL")
        .arg(scope.key("events"))
        .arg(&ids[2])
        .query(&mut raw)
        .unwrap();
    assert_eq!(deleted, 1);
    let err = ledgers.events("l-4").await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("LedgerEvent/l-4")
            && message.contains("version 3")
            && message.contains("max_events"),
        "{message}"
    );
    // From the snapshot at 10 on, the events are all there.
    assert_eq!(ledgers.load("l-4").await.unwrap().version, 13);

    bus.clear(">").await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:*", scope.prefix))
        .query(&mut raw)
        .unwrap();
    assert!(
        keys.iter()
            .all(|k| !k.contains(":entity:") && !k.contains(":snapshot:")),
        "{keys:?}"
    );
    let fresh = ledgers.load("l-4").await.unwrap();
    assert_eq!((fresh.version, fresh.state), (0, Ledger::default()));
    ledgers.save("l-4", 0, opened()).await.unwrap();
    bus.shutdown().await.unwrap();
}

/// A save trims by age as a publish does, in its script, by the server's
/// clock: the entity's older events go, and loading it says so.
#[tokio::test]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
async fn redis_a_save_trims_by_age_and_the_entity_then_fails_to_load() {
    let scope = RedisScope::new("agg_age");
    let bus = isolated()
        .store(scope.url("&max_age=1s&max_events=100000"))
        .build()
        .await
        .unwrap();
    let ledgers = Repository::<Ledger>::new(&bus);
    ledgers.save("l-5", 0, opened()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let saved = ledgers
        .save("l-5", 1, vec![LedgerEvent::Deposited { cents: 5 }])
        .await
        .unwrap();
    assert_eq!(saved[0].stream_version(), Some(2));
    let err = ledgers.load("l-5").await.unwrap_err().to_string();
    assert!(
        err.contains("LedgerEvent/l-5") && err.contains("version 1") && err.contains("max_age"),
        "{err}"
    );
    let kept = bus.history().subject("l-5").fetch().await.unwrap();
    assert_eq!(
        kept.iter().map(|e| e.stream_version()).collect::<Vec<_>>(),
        [Some(2)]
    );
    bus.shutdown().await.unwrap();
}

async fn saved_events_are_routed_and_kept(url: &str) {
    let bus = isolated().store(url).build().await.unwrap();
    let mut live = bus.subscribe::<LedgerEvent>("ledger.>").unwrap();
    let ledgers = Repository::<Ledger>::new(&bus);
    ledgers.save("l-3", 0, opened()).await.unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(5), live.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(seen.subject(), Some("l-3"));
    assert_eq!(seen.raw().stream_version(), Some(1));
    let history = bus.history().subject("l-3").fetch().await.unwrap();
    assert_eq!(history.len(), 1);
    let exported = history[0].to_cloudevent_json().unwrap();
    assert!(exported.contains(r#""streamversion":"1""#), "{exported}");
    let read = ledgers.events("l-3").await.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(
        (read[0].seq(), read[0].id()),
        (history[0].seq(), history[0].id()),
        "the stream's events are the bus's events"
    );
    let unknown = ledgers.load("nobody").await.unwrap();
    assert_eq!((unknown.version, unknown.state), (0, Ledger::default()));
    bus.shutdown().await.unwrap();
}

/// A save whose writer died before forwarding it to the bus stream (here:
/// written by a plain NATS client, in the documented layout) is forwarded
/// by the next bus that opens the store, and loads meanwhile.
#[tokio::test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
async fn nats_a_save_left_unforwarded_reaches_the_bus_stream() {
    let scope = NatsScope::new("agg_forward");
    let bus = isolated().store(scope.url("")).build().await.unwrap();
    Repository::<Ledger>::new(&bus)
        .save("l-8", 0, opened())
        .await
        .unwrap();
    bus.shutdown().await.unwrap();

    let batch = serde_json::json!([{
        "specversion": "1.0",
        "id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        "source": "elsewhere",
        "type": "ledger.opened",
        "subject": "l 9",
        "time": chrono::Utc::now().to_rfc3339(),
        "datacontenttype": "application/json",
        "eventname": "LedgerEvent",
        "streamversion": "1",
        "data": {"owner": "Grace"},
    }]);
    let js = async_nats::jetstream::new(scope.raw_client().await);
    js.publish(
        format!("eventbus-entities.{}.LedgerEvent.l=209", scope.stream),
        batch.to_string().into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();

    let bus = isolated().store(scope.url("")).build().await.unwrap();
    let ledgers = Repository::<Ledger>::new(&bus);
    let loaded = ledgers.load("l 9").await.unwrap();
    assert_eq!((loaded.version, loaded.state.owner.as_str()), (1, "Grace"));
    eventually_async("the save is forwarded", Duration::from_secs(10), || async {
        !bus.history()
            .subject("l 9")
            .fetch()
            .await
            .unwrap()
            .is_empty()
    })
    .await;
    let forwarded = bus.history().subject("l 9").fetch().await.unwrap();
    assert_eq!(forwarded.len(), 1);
    assert_eq!(forwarded[0].source(), "elsewhere");
    assert_eq!(
        bus.history()
            .topic("ledger.opened")
            .fetch()
            .await
            .unwrap()
            .len(),
        2,
        "each save reached the bus stream once"
    );
    bus.shutdown().await.unwrap();
}

#[test]
fn the_aggregate_fixture_checks_commands_and_says_what_differed() {
    use eventbus::testing::AggregateFixture;

    let state = AggregateFixture::<Ledger>::given(opened())
        .when(|l| l.deposit(5))
        .then_expect([LedgerEvent::Deposited { cents: 5 }]);
    assert_eq!((state.balance, state.movements), (5, 1));
    let why = AggregateFixture::<Ledger>::given(opened())
        .when(|l| l.withdraw(1))
        .then_expect_error();
    assert_eq!(why, "balance 0 is below 1");

    let wrong = std::panic::catch_unwind(|| {
        AggregateFixture::<Ledger>::given(opened())
            .when(|l| l.deposit(5))
            .then_expect([LedgerEvent::Deposited { cents: 6 }]);
    })
    .unwrap_err();
    let message = wrong.downcast_ref::<String>().unwrap();
    assert_eq!(
        message,
        "the command did not return the expected events\n\n\
         given\n  1. Opened { owner: \"Ada\" }\n\n\
         expected\n  1. Deposited { cents: 6 }\n\n\
         but it returned\n  1. Deposited { cents: 5 }\n"
    );
    let rejected = std::panic::catch_unwind(|| {
        AggregateFixture::<Ledger>::given([])
            .when(|l| l.deposit(5))
            .then_expect([LedgerEvent::Deposited { cents: 5 }]);
    })
    .unwrap_err();
    let message = rejected.downcast_ref::<String>().unwrap();
    assert!(
        message.ends_with("given\n  (no events)\n\nexpected\n  1. Deposited { cents: 5 }\n\nbut it was rejected: \"no such ledger\""),
        "{message}"
    );
}
