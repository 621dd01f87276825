//! Several processes on one `sqlite://` file: every write waits its turn
//! for the file's write lock instead of failing with "database is locked".
//!
//! The test binary re-executes itself: with `EVENTBUS_SHARED_CHILD=<db>`
//! set, `shared_publisher_child` opens a bus on that file (the first ones
//! create it, all at once), publishes [`PER_CHILD`] events, half of them
//! with an idempotency key (which makes the append read before it writes,
//! the case a deferred transaction cannot wait in), and writes each
//! acknowledged seq to its own file.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use eventbus::prelude::*;
use tests::{TestChild, isolated};

const CHILD_VAR: &str = "EVENTBUS_SHARED_CHILD";
const NAME_VAR: &str = "EVENTBUS_SHARED_NAME";
const CHILDREN: usize = 8;
const PER_CHILD: u64 = 200;

#[derive(Event, Clone, Debug, PartialEq)]
#[event(topic = "shared.tick")]
struct Tick {
    child: String,
    n: u64,
}

#[test]
fn shared_publisher_child() {
    let (Ok(path), Ok(name)) = (std::env::var(CHILD_VAR), std::env::var(NAME_VAR)) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let bus = isolated()
            .store(format!("sqlite://{path}"))
            .build()
            .await
            .expect("open the shared file");
        let mut seqs = String::new();
        for n in 0..PER_CHILD {
            let publish = bus.publish(Tick {
                child: name.clone(),
                n,
            });
            let publish = if n % 2 == 0 {
                publish.idempotency_key(format!("{name}-{n}"))
            } else {
                publish
            };
            let sent = publish.await.expect("every publish succeeds");
            seqs.push_str(&format!("{}\n", sent.seq()));
        }
        bus.shutdown().await.unwrap();
        std::fs::write(format!("{path}.{name}.seqs"), seqs).unwrap();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_processes_publish_to_one_file_and_every_publish_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let db = path.to_str().unwrap();
    let started = std::time::Instant::now();
    let mut children: Vec<TestChild> = (0..CHILDREN)
        .map(|i| {
            TestChild::spawn(
                "shared_publisher_child",
                &[(CHILD_VAR, db), (NAME_VAR, &format!("c{i}"))],
            )
        })
        .collect();
    for child in &mut children {
        child
            .wait_success(Duration::from_secs(120))
            .expect("a publisher process fails");
    }
    eprintln!(
        "{CHILDREN} processes x {PER_CHILD} publishes: {:.2?}",
        started.elapsed()
    );

    let mut acknowledged = BTreeSet::new();
    for i in 0..CHILDREN {
        let seqs = std::fs::read_to_string(format!("{db}.c{i}.seqs")).unwrap();
        for seq in seqs.lines() {
            assert!(
                acknowledged.insert(seq.parse::<u64>().unwrap()),
                "seq {seq} acknowledged twice"
            );
        }
    }
    assert_eq!(acknowledged.len(), CHILDREN * PER_CHILD as usize);

    let bus = isolated()
        .store(format!("sqlite://{db}"))
        .build()
        .await
        .unwrap();
    let stored: Vec<Envelope<Tick>> = bus
        .history()
        .fetch_as::<Tick>()
        .await
        .unwrap()
        .into_iter()
        .map(|ev| ev.expect("every stored event decodes"))
        .collect();
    let stored_seqs: BTreeSet<u64> = stored.iter().map(|ev| ev.seq()).collect();
    assert_eq!(stored_seqs, acknowledged);
    for i in 0..CHILDREN {
        let name = format!("c{i}");
        let mine: BTreeSet<u64> = stored
            .iter()
            .filter(|ev| ev.child == name)
            .map(|ev| ev.n)
            .collect();
        assert_eq!(mine, (0..PER_CHILD).collect(), "events of {name}");
    }
    bus.shutdown().await.unwrap();
    assert!(Path::new(db).exists());
}
