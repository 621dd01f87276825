//! The brief's event-sourced documents, on eventbus.
//!
//! A `Document` aggregate is created with a title, content and author,
//! updated, and deleted with a reason, each through a command that checks
//! the document's state and returns events. A service runs the commands,
//! retrying on conflict while two editors race. A projection keeps
//! "documents by author" as a read model (a table in the SQLite file,
//! written in the handler's transaction; a map on `memory://` and NATS), a snapshot
//! is stored every 10 events, and the end prints one document's whole
//! history, with its state at every version (time travel).
//!
//! ```text
//! cargo run --example documents            # sqlite, in a temporary file
//! cargo run --example documents -- memory  # in memory
//! cargo run --example documents -- nats://127.0.0.1:4222  # on NATS JetStream
//! ```
//!
//! On NATS the example uses the stream `DOCUMENTS_EXAMPLE` and empties it
//! first, so every run starts from no documents.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventbus::aggregate::{Aggregate, CommandError, Repository};
use eventbus::prelude::*;

#[derive(Event, Clone, Debug)]
#[event(namespace = "document")]
enum DocumentEvent {
    Created {
        title: String,
        content: String,
        author: String,
    },
    Updated {
        content: String,
        editor: String,
    },
    Deleted {
        reason: String,
    },
}

#[derive(Default, Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Document {
    title: String,
    content: String,
    author: String,
    revisions: u32,
    deleted: Option<String>,
}

impl Aggregate for Document {
    type Event = DocumentEvent;
    const SNAPSHOT_EVERY: u64 = 10;

    fn apply(&mut self, event: &DocumentEvent) {
        match event {
            DocumentEvent::Created {
                title,
                content,
                author,
            } => {
                self.title = title.clone();
                self.content = content.clone();
                self.author = author.clone();
            }
            DocumentEvent::Updated { content, .. } => {
                self.content = content.clone();
                self.revisions += 1;
            }
            DocumentEvent::Deleted { reason } => self.deleted = Some(reason.clone()),
        }
    }
}

/// The commands: each decides from the state alone.
impl Document {
    fn create(
        &self,
        title: &str,
        content: &str,
        author: &str,
    ) -> Result<Vec<DocumentEvent>, String> {
        if !self.author.is_empty() {
            return Err(format!("`{}` exists already", self.title));
        }
        Ok(vec![DocumentEvent::Created {
            title: title.into(),
            content: content.into(),
            author: author.into(),
        }])
    }

    fn update(&self, content: &str, editor: &str) -> Result<Vec<DocumentEvent>, String> {
        match &self.deleted {
            Some(reason) => Err(format!("`{}` was deleted ({reason})", self.title)),
            None if self.author.is_empty() => Err("no such document".into()),
            None => Ok(vec![DocumentEvent::Updated {
                content: content.into(),
                editor: editor.into(),
            }]),
        }
    }

    fn delete(&self, reason: &str) -> Result<Vec<DocumentEvent>, String> {
        if self.deleted.is_some() {
            return Ok(Vec::new());
        }
        Ok(vec![DocumentEvent::Deleted {
            reason: reason.into(),
        }])
    }
}

/// The read model on SQLite: a table in the store's own file, written in
/// the handler's transaction, so the model and the handler's position
/// commit together (and a rebuild resets both).
fn by_author_in_sqlite() -> FnHandler {
    FnHandler::new(
        "documents-by-author",
        |ev: Envelope<DocumentEvent>, ctx: Context| async move {
            let id = ev.subject().unwrap_or_default().to_owned();
            let event = ev.event().clone();
            ctx.transaction(move |tx| {
                tx.execute_batch(
                    "CREATE TABLE IF NOT EXISTS documents_by_author
                     (document TEXT PRIMARY KEY, author TEXT NOT NULL)",
                )?;
                match event {
                    DocumentEvent::Created { author, .. } => tx.execute(
                        "INSERT INTO documents_by_author VALUES (?1, ?2)
                     ON CONFLICT (document) DO UPDATE SET author = excluded.author",
                        [&id, &author],
                    ),
                    DocumentEvent::Deleted { .. } => {
                        tx.execute("DELETE FROM documents_by_author WHERE document = ?1", [&id])
                    }
                    DocumentEvent::Updated { .. } => Ok(0),
                }
                .map(drop)
            })
            .await
        },
    )
    .start(eventbus::Start::Earliest)
}

fn read_by_author_in_sqlite(db: &std::path::Path) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let conn = eventbus::rusqlite::Connection::open(db)?;
    let mut stmt =
        conn.prepare("SELECT author, document FROM documents_by_author ORDER BY 1, 2")?;
    let mut model: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))? {
        let (author, document) = row?;
        model.entry(author).or_default().push(document);
    }
    Ok(model)
}

/// The read model in memory, for `memory://`.
type ByAuthor = Arc<Mutex<BTreeMap<String, Vec<String>>>>;

fn by_author_in_memory(read_model: &ByAuthor) -> FnHandler {
    let read_model = Arc::clone(read_model);
    FnHandler::new(
        "documents-by-author",
        move |ev: Envelope<DocumentEvent>, _: Context| {
            let id = ev.subject().unwrap_or_default().to_owned();
            let mut model = read_model.lock().unwrap();
            match ev.event() {
                DocumentEvent::Created { author, .. } => {
                    model.entry(author.clone()).or_default().push(id)
                }
                DocumentEvent::Deleted { .. } => {
                    for docs in model.values_mut() {
                        docs.retain(|d| *d != id);
                    }
                    model.retain(|_, docs| !docs.is_empty());
                }
                DocumentEvent::Updated { .. } => {}
            }
            async {}
        },
    )
    .start(eventbus::Start::Earliest)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arg = std::env::args().nth(1).unwrap_or_default();
    let on_nats = arg.starts_with("nats://");
    let on_sqlite = !on_nats && arg != "memory";
    let dir = std::env::temp_dir().join("eventbus-documents");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("documents.db");
    let url = if on_nats {
        format!("{arg}?stream=DOCUMENTS_EXAMPLE&prefix=documents-example")
    } else if on_sqlite {
        format!("sqlite://{}", db.display())
    } else {
        "memory://".to_owned()
    };
    let read_model = ByAuthor::default();
    let projection = if on_sqlite {
        by_author_in_sqlite()
    } else {
        by_author_in_memory(&read_model)
    };
    let bus = Bus::builder()
        .source("documents")
        .store(&url)
        .no_linked_handlers()
        .handler(projection)
        .build()
        .await?;
    println!("store: {url}");
    if on_nats {
        bus.clear(">").await?;
    }
    let documents = Repository::<Document>::new(&bus);

    documents
        .execute("doc-1", |d| d.create("Notes", "first draft", "ada"))
        .await?;
    documents
        .execute("doc-2", |d| d.create("Plans", "an outline", "grace"))
        .await?;

    // Two editors race on doc-1: every edit lands, none twice.
    let editors: Vec<_> = ["ada", "alan"]
        .into_iter()
        .map(|editor| {
            let documents = documents.clone();
            tokio::spawn(async move {
                for n in 1..=6 {
                    let text = format!("edit {n} by {editor}");
                    documents
                        .execute("doc-1", |d| d.update(&text, editor))
                        .await
                        .expect("the edit lands");
                }
            })
        })
        .collect();
    for editor in editors {
        editor.await?;
    }
    let done = documents
        .execute("doc-2", |d| d.delete("superseded"))
        .await?;
    match documents
        .execute("doc-2", |d| d.update("too late", "ada"))
        .await
    {
        Err(CommandError::Rejected(why)) => println!("refused: {why}"),
        other => anyhow::bail!("a deleted document took an edit: {other:?}"),
    }

    let last = done.events.last().map_or(0, |e| e.seq());
    bus.caught_up("documents-by-author", last, Duration::from_secs(10))
        .await?;
    let by_author = if on_sqlite {
        read_by_author_in_sqlite(&db)?
    } else {
        read_model.lock().unwrap().clone()
    };
    println!("documents by author: {by_author:?}");

    let doc = documents.load("doc-1").await?;
    println!(
        "doc-1 at version {}: {} revisions, content {:?}",
        doc.version, doc.state.revisions, doc.state.content
    );
    println!("doc-1's history:");
    for (version, event) in (1..).zip(documents.events("doc-1").await?) {
        let then = documents.load_at("doc-1", version).await?;
        println!(
            "  v{version:<2} {} {:<20} -> {:?}",
            event.time().format("%H:%M:%S%.3f"),
            event.topic(),
            then.state.content
        );
    }
    bus.shutdown().await?;
    Ok(())
}
