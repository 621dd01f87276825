//! `rediss://` against a real TLS server: a test-owned `redis-server` on a
//! free port speaks only TLS, with a certificate from a private CA made
//! here by `openssl` and a password. With `tls_ca` naming that CA a bus
//! publishes, handles and reads history over TLS; without it, the
//! server's certificate is refused with an error naming the store, never
//! a hang; and the password appears in no error.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use eventbus::prelude::*;
use tests::{OrderEvent, eventually, eventually_async, isolated};

const PASSWORD: &str = "tls-s3cret";

/// A `redis-server` this test owns, listening for TLS only, SIGKILLed
/// when dropped.
struct TlsServer {
    child: Child,
    port: u16,
}

impl TlsServer {
    fn start(dir: &Path) -> Self {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", "0"])
            .args(["--tls-port", &port.to_string()])
            .arg("--tls-cert-file")
            .arg(dir.join("server.pem"))
            .arg("--tls-key-file")
            .arg(dir.join("server.key"))
            .arg("--tls-ca-cert-file")
            .arg(dir.join("ca.pem"))
            .args(["--tls-auth-clients", "no"])
            .args(["--requirepass", PASSWORD])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        TlsServer { child, port }
    }

    fn url(&self, dir: &Path, with_ca: bool) -> String {
        let mut url = format!("rediss://:{PASSWORD}@localhost:{}", self.port);
        if with_ca {
            url.push_str(&format!("?tls_ca={}", dir.join("ca.pem").display()));
        }
        url
    }

    fn listens(&self) -> bool {
        std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A CA and a server certificate it signed for `localhost`.
fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl is installed");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=eventbus test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "server.ext",
        "-out",
        "server.pem",
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Redis at EVENTBUS_REDIS_URL"]
async fn redis_rediss_with_a_private_ca_publishes_handles_and_reads_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    make_certificates(dir.path());
    let server = TlsServer::start(dir.path());
    eventually(
        "the TLS redis-server to listen",
        Duration::from_secs(20),
        || server.listens(),
    )
    .await;

    // The system's roots do not know the private CA: refused, quickly,
    // naming the store and not the password.
    let refused = isolated()
        .store(server.url(dir.path(), false))
        .build()
        .await
        .expect_err("a certificate from an unknown CA is refused");
    let text = format!("{refused:?} {refused}");
    assert!(text.contains("rediss://"), "{text}");
    assert!(!text.contains(PASSWORD), "the password leaked: {text}");

    let handled = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&handled);
    let bus = isolated()
        .store(server.url(dir.path(), true))
        .handler(
            FnHandler::new("tls-orders", move |_: Envelope<OrderEvent>, _: Context| {
                seen.fetch_add(1, Ordering::SeqCst);
                async { Ok::<_, eventbus::Error>(()) }
            })
            .start(eventbus::Start::Earliest),
        )
        .build()
        .await
        .expect("a bus over TLS with the CA given");
    for id in 1..=3 {
        bus.publish(OrderEvent::Shipped { id }).await.unwrap();
    }
    eventually(
        "three events handled over TLS",
        Duration::from_secs(20),
        || handled.load(Ordering::SeqCst) == 3,
    )
    .await;
    eventually_async("history over TLS", Duration::from_secs(10), || async {
        bus.history().fetch().await.unwrap().len() == 3
    })
    .await;
    bus.shutdown().await.unwrap();
}
