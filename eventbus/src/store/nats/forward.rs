//! Publishing events to the bus stream from elsewhere: saves of entity
//! streams and scheduled events that came due. `Nats-Msg-Id` is the event
//! id (see `wire`), so publishing one event twice within the server's
//! duplicate window stores it once.

use async_nats::jetstream;

use super::{NatsConfig, nats_error, wire};
use crate::envelope::Draft;
use crate::error::{Error, Result};

/// Publishes events to the bus stream.
#[derive(Clone)]
pub(super) struct Forward {
    js: jetstream::Context,
    config: NatsConfig,
}

impl Forward {
    pub(super) fn new(js: &jetstream::Context, config: &NatsConfig) -> Self {
        Forward {
            js: js.clone(),
            config: config.clone(),
        }
    }

    /// Publishes `drafts` in order (pipelined: the server stores them in
    /// the order they arrive) and returns their seqs; a copy the duplicate
    /// window drops answers with the first copy's seq.
    pub(super) async fn events(&self, drafts: &[Draft]) -> Result<Vec<u64>> {
        let mut acks = Vec::with_capacity(drafts.len());
        for draft in drafts {
            let (headers, body) = wire::encode(draft).map_err(|reason| {
                Error::store("nats", format!("encoding event {}: {reason}", draft.id()))
            })?;
            let subject = self.config.subject(draft.topic());
            acks.push(
                self.js
                    .publish_with_headers(subject, headers, body)
                    .await
                    .map_err(nats_error("forwarding an event"))?,
            );
        }
        let mut seqs = Vec::with_capacity(acks.len());
        for ack in acks {
            seqs.push(
                ack.await
                    .map_err(nats_error("forwarding an event"))?
                    .sequence,
            );
        }
        Ok(seqs)
    }
}
