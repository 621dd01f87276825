//! A Redis restart loses no acknowledged event: a test-owned
//! `redis-server` with `appendonly yes` and `appendfsync always` on a free
//! port is SIGKILLed while events are being published and handled, then
//! started again on the same files. Every publish that returned `Ok` is in
//! history afterwards and reaches the handler, and the bus carries on by
//! itself (its connections reconnect).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventbus::prelude::*;
use eventbus::store::Start;
use tests::{OrderEvent, RedisScope, eventually, eventually_async, isolated};

/// A `redis-server` this test owns, SIGKILLed when dropped.
struct Server {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Server {
    fn start(port: u16, dir: &Path) -> Self {
        Server {
            child: spawn(port, dir),
            port,
            dir: dir.to_owned(),
        }
    }

    /// Starts it again, on the same port and files.
    fn restart(&mut self) {
        self.child = spawn(self.port, &self.dir);
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn answers(&self) -> bool {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
            .is_ok()
    }

    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn spawn(port: u16, dir: &Path) -> Child {
    Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args([
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
        ])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server is installed")
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
async fn redis_a_server_restart_loses_no_acknowledged_event() {
    let dir = std::env::temp_dir().join(format!(
        "eventbus-redis-restart-{}",
        uuid::Uuid::now_v7().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut server = Server::start(free_port(), &dir);
    let wait = Duration::from_secs(20);
    eventually("the test's redis-server to answer", wait, || {
        server.answers()
    })
    .await;
    let scope = RedisScope::on(&server.url(), "restart");

    let handled = Arc::new(Mutex::new(BTreeSet::new()));
    let handler = {
        let handled = Arc::clone(&handled);
        FnHandler::new("count", move |ev: Envelope<OrderEvent>, _ctx: Context| {
            handled.lock().unwrap().insert(ev.id().to_string());
            async {}
        })
        .start(Start::Earliest)
    };
    let bus = isolated()
        .store(scope.url("&ack_wait=1s"))
        .handler(handler)
        .build()
        .await
        .unwrap();

    // Publishes until stopped, keeping the ids of those acknowledged.
    let acked = Arc::new(Mutex::new(Vec::new()));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (bus, acked, failed, stop) = (
            bus.clone(),
            Arc::clone(&acked),
            Arc::clone(&failed),
            Arc::clone(&stop),
        );
        tokio::spawn(async move {
            let mut id = 0;
            while !stop.load(Ordering::SeqCst) {
                match bus.publish(OrderEvent::Shipped { id }).await {
                    Ok(sent) => acked.lock().unwrap().push(sent.id().to_string()),
                    Err(_) => {
                        failed.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                id += 1;
            }
        })
    };
    let count = || acked.lock().unwrap().len();
    eventually("200 acknowledged publishes", wait, || count() >= 200).await;
    server.kill();
    eventually("publishes to fail while the server is down", wait, || {
        failed.load(Ordering::SeqCst) > 0
    })
    .await;
    let before = count();
    server.restart();
    eventually("the restarted server to answer", wait, || server.answers()).await;
    eventually(
        "publishing to go on after the restart",
        Duration::from_secs(30),
        || count() >= before + 200,
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    publisher.await.unwrap();

    let acked: Vec<String> = acked.lock().unwrap().clone();
    let stored: BTreeSet<String> = bus
        .history()
        .fetch()
        .await
        .unwrap()
        .iter()
        .map(|e| e.id().to_string())
        .collect();
    let lost: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged events lost: {lost:?}",
        lost.len()
    );
    eventually_async(
        "the handler to see every acknowledged event",
        wait,
        || async {
            let handled = handled.lock().unwrap();
            acked.iter().all(|id| handled.contains(id))
        },
    )
    .await;
    println!(
        "{} acknowledged ({before} before the kill), {} publishes failed while it was down",
        acked.len(),
        failed.load(Ordering::SeqCst)
    );
    bus.shutdown().await.unwrap();
    drop(scope);
    server.kill();
}
