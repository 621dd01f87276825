//! The durability promise of `sqlite://`: no event whose `publish().await`
//! returned `Ok` is lost, even when the process is killed with SIGKILL in
//! the middle of a load.
//!
//! The test binary re-executes itself. With `EVENTBUS_CRASH_CHILD=<db path>`
//! set, the `crash_child` test opens a bus on that file, publishes from
//! [`PUBLISHERS`] tasks as fast as the store acknowledges, and prints one
//! line `ack <seq> <id> <run> <publisher> <n>` per acknowledged publish,
//! flushed at once. The parent test kills it with SIGKILL at a random point
//! and then checks the file with rusqlite (`PRAGMA integrity_check`, the
//! rows themselves) and with eventbus (`bus.history().fetch()`).
//!
//! All [`KILLS`] children write to the *same* file, so from the second run
//! on each child also opens a file whose previous writer was killed (WAL
//! recovery), and every acknowledgement of every earlier run must survive
//! all the recoveries after it. The kill points are random; the seed is
//! printed and `EVENTBUS_CRASH_SEED=<seed>` repeats them.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use eventbus::prelude::*;
use tests::isolated;

/// Set in the child: the database file to publish into.
const CHILD_VAR: &str = "EVENTBUS_CRASH_CHILD";
/// Set in the child: which run it is, stored in every event it publishes.
const RUN_VAR: &str = "EVENTBUS_CRASH_RUN";
/// Optional in the parent: the PRNG seed, to repeat a failing sequence.
const SEED_VAR: &str = "EVENTBUS_CRASH_SEED";

/// Children started and killed per test run.
const KILLS: u32 = 20;
/// Concurrent publisher tasks in each child.
const PUBLISHERS: u32 = 8;
/// The longest extra wait after the first acknowledgement before the kill.
const MAX_EXTRA_DELAY_MS: u64 = 150;
/// How long a child may take to start and acknowledge its first publish.
const FIRST_ACK_TIMEOUT: Duration = Duration::from_secs(30);
/// A child stops publishing by itself after this, so that one whose parent
/// went away does not run forever (the parent then sees a normal exit and
/// fails: the child was meant to be killed).
const CHILD_LIFETIME: Duration = Duration::from_secs(60);

#[derive(Event, Clone, Debug, PartialEq)]
#[event(topic = "crash.tick")]
struct Tick {
    run: u32,
    publisher: u32,
    n: u64,
}

/// One acknowledged publish, as the child reported it.
#[derive(Debug, Clone, PartialEq)]
struct Ack {
    seq: u64,
    id: String,
    tick: Tick,
}

/// What the checks need of one stored row.
#[derive(Debug)]
struct StoredRow {
    id: String,
    topic: String,
    data: serde_json::Value,
}

/// The child: does nothing unless the parent started it.
#[test]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_VAR) else {
        return;
    };
    let run: u32 = std::env::var(RUN_VAR)
        .expect("the parent sets the run number")
        .parse()
        .expect("the run number is a whole number");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("child: tokio runtime");
    runtime.block_on(async move {
        let bus = isolated()
            .store(format!("sqlite://{path}"))
            .build()
            .await
            .expect("child: the bus opens the file");
        // Ends the line libtest may have started (`test crash_child ... `),
        // so that every `ack` line starts on a line of its own.
        println!();
        let deadline = Instant::now() + CHILD_LIFETIME;
        let publishers: Vec<_> = (0..PUBLISHERS)
            .map(|publisher| {
                let bus = bus.clone();
                tokio::spawn(async move {
                    for n in 0.. {
                        if Instant::now() >= deadline {
                            break;
                        }
                        let sent = bus
                            .publish(Tick { run, publisher, n })
                            .await
                            .expect("child: publish");
                        // One write per line keeps lines whole in the pipe.
                        let line =
                            format!("ack {} {} {run} {publisher} {n}\n", sent.seq(), sent.id());
                        let mut out = std::io::stdout().lock();
                        if out
                            .write_all(line.as_bytes())
                            .and_then(|()| out.flush())
                            .is_err()
                        {
                            break; // the parent is gone
                        }
                    }
                })
            })
            .collect();
        for publisher in publishers {
            publisher.await.expect("child: publisher task");
        }
        bus.shutdown().await.expect("child: shutdown");
    });
}

#[test]
fn acknowledged_publishes_survive_sigkill() {
    let seed = match std::env::var(SEED_VAR) {
        Ok(text) => text.parse().expect("EVENTBUS_CRASH_SEED is a whole number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("the clock is after 1970")
            .as_nanos() as u64,
    };
    println!("crash test seed {seed} (set {SEED_VAR}={seed} to repeat these kill points)");
    let mut rng = SplitMix64(seed);

    let dir = tempfile::Builder::new()
        .prefix("eventbus-crash-")
        .tempdir()
        .expect("temp dir");
    let db = dir.path().join("events.db");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");

    let mut acked: Vec<Ack> = Vec::new();
    let mut max_seq_before = 0;
    for run in 0..KILLS {
        let delay = Duration::from_millis(rng.next() % (MAX_EXTRA_DELAY_MS + 1));
        let new = run_and_kill(&db, run, delay);
        println!(
            "run {run}: killed {delay:?} after the first ack; {} acks (seqs {}..={})",
            new.len(),
            new.first().map_or(0, |a| a.seq),
            new.iter().map(|a| a.seq).max().unwrap_or(0),
        );
        for ack in &new {
            assert!(
                ack.seq > max_seq_before,
                "run {run}: seq {} was handed out again; the file already held seqs up to {max_seq_before}",
                ack.seq
            );
            assert_eq!(
                ack.tick.run, run,
                "run {run}: the child reported another run: {ack:?}"
            );
        }
        acked.extend(new);

        let rows = check_with_sqlite(&db, &acked, run);
        check_with_eventbus(&runtime, &db, &acked, rows.len(), run);
        check_publisher_sequences(&rows, &acked, run);
        max_seq_before = rows.keys().copied().max().unwrap_or(0);
    }
    println!(
        "{} acknowledged events over {KILLS} kills, all present and intact",
        acked.len()
    );
}

/// Starts a child on `db`, waits for its first acknowledgement plus
/// `delay`, kills it with SIGKILL and returns every acknowledgement it
/// printed before dying.
fn run_and_kill(db: &Path, run: u32, delay: Duration) -> Vec<Ack> {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut child = Command::new(exe)
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_VAR, db)
        .env(RUN_VAR, run.to_string())
        .env_remove(SEED_VAR)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the child starts");

    // Only whole lines count: the kill may cut the last one short.
    let stdout = child.stdout.take().expect("piped stdout");
    let (lines_tx, lines) = mpsc::channel::<String>();
    let reader = thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        let mut line = Vec::new();
        loop {
            line.clear();
            match stdout.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) if !line.ends_with(b"\n") => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                    if text.starts_with("ack ") && lines_tx.send(text).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut stderr = child.stderr.take().expect("piped stderr");
    let errors = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    let first = match lines.recv_timeout(FIRST_ACK_TIMEOUT) {
        Ok(line) => line,
        Err(e) => {
            let _ = child.kill();
            let status = child.wait();
            panic!(
                "run {run}: no acknowledgement from the child within {FIRST_ACK_TIMEOUT:?} ({e}); \
                 it ended with {status:?}; its stderr:\n{}",
                errors.join().unwrap_or_default()
            );
        }
    };
    // The kill point: a random moment in the middle of the load.
    thread::sleep(delay);
    if let Some(status) = child.try_wait().expect("polling the child") {
        panic!(
            "run {run}: the child stopped by itself ({status}) before the kill; its stderr:\n{}",
            errors.join().unwrap_or_default()
        );
    }
    kill(&mut child, run);
    reader.join().expect("the stdout reader");
    let stderr = errors.join().unwrap_or_default();

    std::iter::once(first)
        .chain(lines.try_iter())
        .map(|line| {
            parse_ack(&line).unwrap_or_else(|| {
                panic!("run {run}: malformed line {line:?}; child stderr:\n{stderr}")
            })
        })
        .collect()
}

#[cfg(unix)]
fn kill(child: &mut Child, run: u32) {
    use std::os::unix::process::ExitStatusExt;
    child.kill().expect("SIGKILL the child");
    let status = child.wait().expect("reaping the child");
    assert_eq!(
        status.signal(),
        Some(9),
        "run {run}: the child ended with {status}, not by SIGKILL"
    );
}

#[cfg(not(unix))]
fn kill(child: &mut Child, run: u32) {
    child.kill().expect("kill the child");
    let status = child.wait().expect("reaping the child");
    assert!(
        !status.success(),
        "run {run}: the child exited normally instead of being killed"
    );
}

/// `ack <seq> <id> <run> <publisher> <n>`
fn parse_ack(line: &str) -> Option<Ack> {
    let mut parts = line.strip_prefix("ack ")?.split(' ');
    let ack = Ack {
        seq: parts.next()?.parse().ok()?,
        id: parts.next()?.to_owned(),
        tick: Tick {
            run: parts.next()?.parse().ok()?,
            publisher: parts.next()?.parse().ok()?,
            n: parts.next()?.parse().ok()?,
        },
    };
    parts.next().is_none().then_some(ack)
}

/// Opens the file with rusqlite as any other program would: the file must
/// pass `PRAGMA integrity_check`, and every acknowledged event must be in
/// its row, unchanged. Returns all rows by seq.
fn check_with_sqlite(db: &Path, acked: &[Ack], run: u32) -> BTreeMap<u64, StoredRow> {
    let conn = rusqlite::Connection::open(db).expect("rusqlite opens the killed writer's file");
    let checks: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("integrity_check runs");
    assert_eq!(checks, ["ok"], "run {run}: the file is damaged");

    let rows: BTreeMap<u64, StoredRow> = conn
        .prepare("SELECT seq, id, topic, data FROM events ORDER BY seq")
        .and_then(|mut s| {
            s.query_map([], |r| {
                let data: String = r.get(3)?;
                Ok((
                    r.get::<_, i64>(0)? as u64,
                    StoredRow {
                        id: r.get(1)?,
                        topic: r.get(2)?,
                        data: serde_json::from_str(&data).unwrap_or_else(|e| {
                            panic!("run {run}: row data {data:?} is not JSON: {e}")
                        }),
                    },
                ))
            })?
            .collect()
        })
        .expect("reading the events table");

    for ack in acked {
        let row = rows.get(&ack.seq).unwrap_or_else(|| {
            panic!(
                "run {run}: acknowledged event {ack:?} is missing from the file ({} rows)",
                rows.len()
            )
        });
        assert_eq!(
            row.id, ack.id,
            "run {run}: seq {} holds another event",
            ack.seq
        );
        assert_eq!(row.topic, "crash.tick", "run {run}: seq {}", ack.seq);
        let expected = serde_json::json!({
            "run": ack.tick.run,
            "publisher": ack.tick.publisher,
            "n": ack.tick.n,
        });
        assert_eq!(
            row.data, expected,
            "run {run}: seq {} has other data",
            ack.seq
        );
    }
    rows
}

/// Reads the same file through eventbus: every acknowledged event comes back
/// from `history()` with its id and decodes to what was published.
fn check_with_eventbus(
    runtime: &tokio::runtime::Runtime,
    db: &Path,
    acked: &[Ack],
    row_count: usize,
    run: u32,
) {
    runtime.block_on(async {
        let bus = isolated()
            .store(format!("sqlite://{}", db.display()))
            .build()
            .await
            .unwrap_or_else(|e| panic!("run {run}: eventbus cannot open the file: {e}"));
        let history = bus
            .history()
            .fetch()
            .await
            .unwrap_or_else(|e| panic!("run {run}: history fails: {e}"));
        bus.shutdown().await.expect("shutdown");
        assert_eq!(
            history.len(),
            row_count,
            "run {run}: history and the table disagree"
        );
        let by_seq: HashMap<u64, &eventbus::RawEnvelope> =
            history.iter().map(|e| (e.seq(), e)).collect();
        for ack in acked {
            let env = by_seq
                .get(&ack.seq)
                .unwrap_or_else(|| panic!("run {run}: history lacks acknowledged {ack:?}"));
            assert_eq!(env.id().to_string(), ack.id, "run {run}: seq {}", ack.seq);
            assert_eq!(env.topic(), "crash.tick");
            let tick = env
                .decode::<Tick>()
                .unwrap_or_else(|e| panic!("run {run}: seq {} does not decode: {e}", ack.seq));
            assert_eq!(*tick, ack.tick, "run {run}: seq {}", ack.seq);
        }
    });
}

/// Each publisher publishes `n = 0, 1, 2, ...` and starts the next only
/// after the previous one was acknowledged; commits are atomic. So for every
/// (run, publisher) the file holds exactly `n = 0..k`, in increasing seqs,
/// where `k` is the number of acknowledgements or one more (the publish in
/// flight at the kill may have committed without its ack being printed).
fn check_publisher_sequences(rows: &BTreeMap<u64, StoredRow>, acked: &[Ack], run: u32) {
    let mut stored: BTreeMap<(u64, u64), Vec<u64>> = BTreeMap::new();
    for row in rows.values() {
        let field = |name: &str| {
            row.data[name]
                .as_u64()
                .unwrap_or_else(|| panic!("run {run}: row {} lacks `{name}`", row.id))
        };
        stored
            .entry((field("run"), field("publisher")))
            .or_default()
            .push(field("n"));
    }
    let mut acks: HashMap<(u64, u64), usize> = HashMap::new();
    for ack in acked {
        *acks
            .entry((u64::from(ack.tick.run), u64::from(ack.tick.publisher)))
            .or_default() += 1;
    }
    for (key, ns) in &stored {
        let expected: Vec<u64> = (0..ns.len() as u64).collect();
        assert_eq!(
            ns, &expected,
            "run {run}: (run, publisher) {key:?} has gaps or is out of seq order"
        );
        let acked = acks.get(key).copied().unwrap_or(0);
        assert!(
            ns.len() == acked || ns.len() == acked + 1,
            "run {run}: (run, publisher) {key:?} has {} stored events for {acked} acknowledged",
            ns.len()
        );
    }
    for (key, count) in &acks {
        assert!(
            stored.contains_key(key),
            "run {run}: nothing stored for {key:?} ({count} acks)"
        );
    }
}

/// A small, good-enough PRNG (SplitMix64) for the kill points.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
