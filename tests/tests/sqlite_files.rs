//! The SQLite file as a user handles it: after a clean close the `.db`
//! alone holds everything (no `-wal` to forget when copying), reading
//! leaves no files behind, `clear` leaves no trace of what it cleared, and
//! a live store can be backed up.

use std::path::{Path, PathBuf};

use eventbus::store::StoreAdmin;
use eventbus::store::{SqliteStore, Store};
use tests::{EntityCreated, OrderEvent, isolated};

fn sidecars(db: &Path) -> Vec<PathBuf> {
    ["-wal", "-shm"]
        .iter()
        .map(|suffix| {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        })
        .filter(|p| p.exists())
        .collect()
}

async fn publish_entities(url: &str, names: &[&str]) {
    let bus = isolated().store(url).build().await.unwrap();
    for name in names {
        bus.publish(EntityCreated {
            id: (*name).to_owned(),
            name: (*name).to_owned(),
        })
        .await
        .unwrap();
    }
    bus.shutdown().await.unwrap();
}

async fn names_in(url: &str) -> Vec<String> {
    let bus = isolated().store(url).build().await.unwrap();
    let names = bus
        .history()
        .fetch_as::<EntityCreated>()
        .await
        .unwrap()
        .into_iter()
        .map(|ev| ev.unwrap().name.clone())
        .collect();
    bus.shutdown().await.unwrap();
    names
}

#[tokio::test]
async fn after_shutdown_the_db_file_alone_holds_every_event() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    let names: Vec<String> = (0..100).map(|i| format!("e{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    publish_entities(&format!("sqlite://{}", db.display()), &refs).await;
    assert_eq!(
        sidecars(&db),
        Vec::<PathBuf>::new(),
        "files left beside the .db"
    );

    let copy = dir.path().join("copy.db");
    std::fs::copy(&db, &copy).unwrap();
    assert_eq!(
        names_in(&format!("sqlite://{}", copy.display())).await,
        names
    );
}

#[tokio::test]
async fn reading_a_file_leaves_no_files_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    let url = format!("sqlite://{}", db.display());
    publish_entities(&url, &["a", "b"]).await;
    assert!(sidecars(&db).is_empty());

    let store = SqliteStore::open(&url).await.unwrap();
    let read: Vec<_> =
        futures_util::StreamExt::collect::<Vec<_>>(store.query(Default::default())).await;
    assert_eq!(read.len(), 2);
    store.topics().await.unwrap();
    store.close().await.unwrap();
    assert_eq!(
        sidecars(&db),
        Vec::<PathBuf>::new(),
        "files left by reading"
    );
}

#[tokio::test]
async fn a_clear_leaves_no_trace_of_the_cleared_events_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    let url = format!("sqlite://{}", db.display());
    let bus = isolated().store(&url).build().await.unwrap();
    for i in 0..200 {
        bus.publish(OrderEvent::Cancelled {
            id: i,
            reason: format!("secret-reason-{i}-xyzzy"),
        })
        .await
        .unwrap();
        bus.publish(EntityCreated {
            id: format!("kept-{i}"),
            name: "kept-name-plugh".into(),
        })
        .await
        .unwrap();
    }
    let pattern = eventbus::topic::Pattern::new("order.>").unwrap();
    assert_eq!(
        bus.store().admin().unwrap().clear(&pattern).await.unwrap(),
        200
    );
    bus.shutdown().await.unwrap();

    let bytes = std::fs::read(&db).unwrap();
    let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(
        contains("kept-name-plugh"),
        "the kept events are in the file"
    );
    assert!(
        !contains("xyzzy"),
        "the file still holds data of cleared events"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_store_is_backed_up_into_a_file_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    let url = format!("sqlite://{}", db.display());
    let bus = isolated().store(&url).build().await.unwrap();
    for i in 0..50 {
        bus.publish(EntityCreated {
            id: format!("b{i}"),
            name: format!("b{i}"),
        })
        .await
        .unwrap();
    }
    // The bus keeps writing while the backup runs.
    let writer = {
        let bus = bus.clone();
        tokio::spawn(async move {
            for i in 50..300 {
                bus.publish(EntityCreated {
                    id: format!("b{i}"),
                    name: format!("b{i}"),
                })
                .await
                .unwrap();
            }
        })
    };
    let backup = dir.path().join("backup.db");
    let store = SqliteStore::open(&url).await.unwrap();
    store.backup(&backup).await.unwrap();
    writer.await.unwrap();
    bus.shutdown().await.unwrap();

    let again = store.backup(&backup).await.unwrap_err().to_string();
    assert!(again.contains("exists already"), "{again}");
    store.close().await.unwrap();
    assert!(sidecars(&backup).is_empty());
    let copied = names_in(&format!("sqlite://{}", backup.display())).await;
    assert!(
        copied.len() >= 50,
        "the backup holds {} events",
        copied.len()
    );
    let expected: Vec<String> = (0..copied.len()).map(|i| format!("b{i}")).collect();
    assert_eq!(copied, expected, "a backup is one moment's state");
}
