//! A NATS server killed and restarted under load: no event whose publish
//! was acknowledged is missing afterwards, publishes in flight either
//! succeed or fail (none hangs), and handlers resume. The test runs a
//! `nats-server` of its own on another port, with its own store directory,
//! and stops it by its process id.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventbus::Start;
use eventbus::prelude::*;
use tests::{NatsScope, OrderEvent, eventually, isolated};

struct Server {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Server {
    fn start(port: u16, dir: &Path) -> Self {
        Server::start_with(port, dir, &["-js", "-sd"])
    }

    fn start_with(port: u16, dir: &Path, flags: &[&str]) -> Self {
        let binary = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("nats-server");
        let child = Command::new(binary)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .args(flags)
            .args(flags.contains(&"-sd").then_some(dir))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server runs");
        let server = Server {
            child,
            port,
            dir: dir.to_owned(),
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "nats-server did not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
async fn nats_server_restart_loses_no_acknowledged_event() {
    let dir = std::env::temp_dir().join(format!(
        "eventbus-nats-restart-{}",
        uuid::Uuid::now_v7().simple()
    ));
    let mut server = Server::start(free_port(), &dir);
    let scope = NatsScope::on(&format!("nats://127.0.0.1:{}", server.port), "restart");
    let url = scope.url("");
    let handled = Arc::new(Mutex::new(BTreeMap::<u64, u32>::new()));
    let handler = {
        let handled = Arc::clone(&handled);
        FnHandler::new("tally", move |ev: Envelope<OrderEvent>, _ctx: Context| {
            *handled.lock().unwrap().entry(ev.seq()).or_default() += 1;
            async {}
        })
        .start(Start::Earliest)
    };
    let bus = isolated()
        .store(&url)
        .handler(handler)
        .build()
        .await
        .unwrap();

    // Four publishers, each recording what was acknowledged and what failed.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<(u64, eventbus::envelope::EventId)>::new()));
    let failed = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut publishers = Vec::new();
    for p in 0..4u64 {
        let (bus, stop, acked, failed) = (
            bus.clone(),
            Arc::clone(&stop),
            Arc::clone(&acked),
            Arc::clone(&failed),
        );
        publishers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let publish = bus.publish(OrderEvent::Shipped {
                    id: p * 1_000_000 + n,
                });
                match tokio::time::timeout(Duration::from_secs(30), publish).await {
                    Ok(Ok(env)) => acked.lock().unwrap().push((env.seq(), env.id().clone())),
                    Ok(Err(e)) => {
                        failed.lock().unwrap().push(e.to_string());
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(_) => panic!("a publish hung for 30 s across the restart"),
                }
            }
        }));
    }
    let acked_count = || acked.lock().unwrap().len();
    let wait = |target: usize, what: &'static str| {
        eventually(what, Duration::from_secs(60), move || {
            acked_count() >= target
        })
    };
    wait(300, "acks before the restart").await;
    server.kill();
    let at_kill = acked_count();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let port = server.port;
    std::mem::forget(std::mem::replace(&mut server, Server::start(port, &dir)));
    wait(at_kill + 300, "acks after the restart").await;
    stop.store(true, Ordering::SeqCst);
    for p in publishers {
        p.await.unwrap();
    }

    let acked = acked.lock().unwrap().clone();
    println!(
        "{} publishes acknowledged ({at_kill} before the kill), {} failed",
        acked.len(),
        failed.lock().unwrap().len()
    );
    let stored: BTreeMap<u64, eventbus::envelope::EventId> = bus
        .history()
        .fetch()
        .await
        .unwrap()
        .iter()
        .map(|e| (e.seq(), e.id().clone()))
        .collect();
    for (seq, id) in &acked {
        assert_eq!(
            stored.get(seq),
            Some(id),
            "acknowledged event seq {seq} is missing or different after the restart"
        );
    }
    // The handler's consumer resumed: it sees every acknowledged event.
    eventually(
        "every acknowledged event to reach the handler",
        Duration::from_secs(60),
        || {
            let handled = handled.lock().unwrap();
            acked.iter().all(|(seq, _)| handled.contains_key(seq))
        },
    )
    .await;
    bus.shutdown().await.unwrap();
    drop(scope);
}

#[tokio::test]
#[ignore = "needs NATS at EVENTBUS_NATS_URL"]
async fn nats_a_server_without_jetstream_is_named_as_the_problem() {
    let dir = std::env::temp_dir().join(format!(
        "eventbus-nats-nojs-{}",
        uuid::Uuid::now_v7().simple()
    ));
    let server = Server::start_with(free_port(), &dir, &[]);
    let err = eventbus::store::open(&format!("nats://127.0.0.1:{}", server.port))
        .await
        .err()
        .expect("no JetStream, no store")
        .to_string();
    assert!(err.contains("is JetStream enabled"), "{err}");
    assert!(err.contains("EVENTBUS"), "{err}");
}
