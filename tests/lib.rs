//! Shared fixtures for the integration tests: events and a condition wait.

use std::time::Duration;

use eventbus::prelude::*;

/// An event with one topic.
#[derive(Event, Clone, Debug, PartialEq)]
#[event(topic = "entity.created")]
pub struct EntityCreated {
    /// Identifier.
    pub id: String,
    /// Display name.
    pub name: String,
}

/// An event enum with several topics.
#[derive(Event, Clone, Debug, PartialEq)]
#[event(namespace = "order")]
pub enum OrderEvent {
    /// `order.placed`
    Placed {
        /// Order id.
        id: u64,
        /// Amount.
        cents: u64,
    },
    /// `order.shipped`
    Shipped {
        /// Order id.
        id: u64,
    },
    /// `order.cancelled.by_customer`
    #[event(topic = "order.cancelled.by_customer")]
    Cancelled {
        /// Order id.
        id: u64,
        /// Why.
        reason: String,
    },
}

/// A builder that ignores the `#[handler]`s linked into the test binary, so
/// each test sees only the closure handlers it adds.
pub fn isolated() -> eventbus::BusBuilder {
    Bus::builder()
        .no_linked_handlers()
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
}

/// An error with its sources, as `{:#}` prints it in anyhow: what a user
/// reads, and what tests check messages against.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Waits until `done()` holds, checking every millisecond, failing the test
/// after `timeout`.
pub async fn eventually(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Waits until the async `check` holds, checking every 10 ms, failing the
/// test after `timeout`: for conditions only a store or server can answer.
pub async fn eventually_async<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The seqs a [`recorder`] handled, in order.
pub type Seen = std::sync::Arc<std::sync::Mutex<Vec<u64>>>;

/// A handler of `OrderEvent` that records each seq it handles in `seen`.
pub fn recorder(name: &'static str, seen: &Seen) -> FnHandler {
    let seen = std::sync::Arc::clone(seen);
    FnHandler::new(name, move |ev: Envelope<OrderEvent>, _ctx: Context| {
        seen.lock().unwrap().push(ev.seq());
        async {}
    })
}

/// This test binary re-executed to run one test (a child that does its
/// part only when `env` is set), killed when dropped so a failing test
/// leaves no process behind.
#[derive(Debug)]
pub struct TestChild(std::process::Child);

impl TestChild {
    /// Runs the test named `test` with `env` set, its stdout discarded.
    pub fn spawn<V: AsRef<std::ffi::OsStr>>(test: &str, env: &[(&str, V)]) -> Self {
        let mut command = std::process::Command::new(std::env::current_exe().unwrap());
        command
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .stdout(std::process::Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        TestChild(command.spawn().unwrap())
    }

    /// Waits for the child to exit by itself, for at most `timeout`; an
    /// error names how it ended when that was not a success.
    pub fn wait_success(&mut self, timeout: std::time::Duration) -> Result<(), String> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            match self.0.try_wait().map_err(|e| e.to_string())? {
                Some(status) if status.success() => return Ok(()),
                Some(status) => return Err(format!("the child process ended with {status}")),
                None if std::time::Instant::now() >= deadline => {
                    return Err(format!("the child process still runs after {timeout:?}"));
                }
                None => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
    }

    /// SIGKILL, and wait until it is gone.
    pub fn kill(&mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for TestChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The NATS server the `nats_` tests use: `EVENTBUS_NATS_URL`, or the local
/// default.
pub fn nats_server() -> String {
    std::env::var("EVENTBUS_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// A stream and subject prefix of one test's own on the shared NATS
/// server, deleted (with its dead-letter bucket, entity streams,
/// snapshots and scheduled events) when dropped, so tests
/// never see each other's events and leave nothing behind.
#[derive(Debug)]
pub struct NatsScope {
    /// The stream's name.
    pub stream: String,
    /// The subject prefix.
    pub prefix: String,
    server: String,
}

impl NatsScope {
    /// A fresh stream name and prefix on the server of [`nats_server`].
    pub fn new(test: &str) -> Self {
        NatsScope::on(&nats_server(), test)
    }

    /// A fresh stream name and prefix on another server.
    pub fn on(server: &str, test: &str) -> Self {
        let unique = uuid::Uuid::now_v7().simple().to_string();
        let tag = format!("{test}_{}", &unique[unique.len() - 10..]);
        NatsScope {
            stream: format!("T_{tag}"),
            prefix: format!("t_{tag}"),
            server: server.to_owned(),
        }
    }

    /// The store URL for this scope, with extra `&key=value` options.
    pub fn url(&self, extra: &str) -> String {
        format!(
            "{}?stream={}&prefix={}{extra}",
            self.server, self.stream, self.prefix
        )
    }

    /// The subject of a topic in this scope.
    pub fn subject(&self, topic: &str) -> String {
        format!("{}.{topic}", self.prefix)
    }

    /// A plain client on the scope's server.
    pub async fn raw_client(&self) -> async_nats::Client {
        async_nats::connect(self.server.trim_start_matches("nats://"))
            .await
            .expect("connect to NATS")
    }
}

impl Drop for NatsScope {
    fn drop(&mut self) {
        let (server, stream) = (self.server.clone(), self.stream.clone());
        // Drop cannot await; a thread of its own works inside or outside
        // a runtime.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for cleanup");
            runtime.block_on(async move {
                let Ok(client) = async_nats::connect(server.trim_start_matches("nats://")).await
                else {
                    return;
                };
                let js = async_nats::jetstream::new(client);
                let _ = js.delete_stream(&stream).await;
                let _ = js.delete_key_value(format!("{stream}_dead_letters")).await;
                let _ = js.delete_stream(format!("{stream}_entities")).await;
                let _ = js.delete_key_value(format!("{stream}_snapshots")).await;
                let _ = js.delete_stream(format!("{stream}_scheduled")).await;
                let _ = js.delete_key_value(format!("{stream}_sagas")).await;
            });
        });
        let _ = cleanup.join();
    }
}

/// The Redis server the `redis_` tests use: `EVENTBUS_REDIS_URL`, or the
/// local default.
pub fn redis_server() -> String {
    std::env::var("EVENTBUS_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A key prefix of one test's own on a Redis server, whose keys are all
/// deleted when dropped, so tests never see each other's events and leave
/// nothing behind.
#[derive(Debug)]
pub struct RedisScope {
    /// The key prefix.
    pub prefix: String,
    server: String,
}

impl RedisScope {
    /// A fresh prefix on the server of [`redis_server`].
    pub fn new(test: &str) -> Self {
        RedisScope::on(&redis_server(), test)
    }

    /// A fresh prefix on another server.
    pub fn on(server: &str, test: &str) -> Self {
        let unique = uuid::Uuid::now_v7().simple().to_string();
        RedisScope {
            prefix: format!("t_{test}_{}", &unique[unique.len() - 10..]),
            server: server.to_owned(),
        }
    }

    /// The store URL for this scope, with extra `&key=value` options.
    pub fn url(&self, extra: &str) -> String {
        format!("{}?prefix={}{extra}", self.server, self.prefix)
    }

    /// The key of a part of the store, such as `events`.
    pub fn key(&self, part: &str) -> String {
        format!("{}:{part}", self.prefix)
    }

    /// A plain connection to the scope's server.
    pub fn raw(&self) -> redis::Connection {
        redis::Client::open(self.server.as_str())
            .and_then(|c| c.get_connection())
            .expect("connect to Redis")
    }
}

impl Drop for RedisScope {
    fn drop(&mut self) {
        let Ok(mut conn) =
            redis::Client::open(self.server.as_str()).and_then(|c| c.get_connection())
        else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.prefix))
            .query(&mut conn)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut conn);
        }
    }
}
