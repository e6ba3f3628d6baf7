//! Agents' inboxes as their readers see them. The store holds every entry; each agent that
//! has readers also gets an in-memory tail ([`tail`]) in a map of its own, filled by the
//! after-commit step ([`Inboxes::append`]), so a reader that keeps up is answered without a
//! store read and woken without polling. Readers ([`read`]: long-poll, [`sse`]: Server-Sent
//! Events) hold one of the agent's bounded stream slots ([`slots`]). Reading an inbox
//! never starts the agent's actor.

mod read;
mod slots;
mod sse;
mod tail;

use std::sync::Arc;

use dashmap::DashMap;

pub use self::{
    read::{answer, InboxReader},
    sse::{sse_stream, HangUp},
};
use self::{slots::StreamSlots, tail::InboxTail};
use crate::{
    ids::AgentSlug,
    store::{EventDelivery, InboxEntry, Store, StoreError},
};

/// Why an inbox cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error("unknown agent {0}")]
    UnknownAgent(AgentSlug),
    #[error("at most {0} concurrent event streams per agent")]
    TooManyStreams(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Inboxes {
    store: Arc<dyn Store>,
    /// Tails of the agents that have (or had) readers.
    tails: DashMap<AgentSlug, Arc<InboxTail>>,
    slots: Arc<StreamSlots>,
    streams_per_agent: usize,
    /// Other replicas write to the store too: the tails never hold all of an inbox, so they
    /// are never anchored (a tail that is not answers nothing: readers read the store) and
    /// serve only to wake readers.
    shared: bool,
}

impl Inboxes {
    pub fn new(store: Arc<dyn Store>, streams_per_agent: usize) -> Self {
        let shared = store.shared().is_some();
        Self {
            store,
            tails: DashMap::new(),
            slots: Arc::default(),
            streams_per_agent,
            shared,
        }
    }

    /// A reader of a known agent's inbox, holding one of its stream slots.
    pub async fn open(&self, slug: &AgentSlug) -> Result<InboxReader, InboxError> {
        let tail = match self.tails.get(slug) {
            Some(tail) => tail.clone(),
            None => {
                if self.store.agent(slug).await?.is_none() {
                    return Err(InboxError::UnknownAgent(slug.clone()));
                }
                // Rare (once per agent), so the shard's write lock is fine.
                self.tails.entry(slug.clone()).or_default().clone()
            }
        };
        // A shared store's tails are never read (see `shared`): nothing to anchor.
        if !self.shared && !tail.is_anchored() {
            // Read after the tail entered the map: every later commit reaches it.
            let latest = self.store.latest_cursor(slug).await?;
            tail.anchor(latest);
        }
        let slot = self
            .slots
            .acquire(slug, self.streams_per_agent)
            .ok_or(InboxError::TooManyStreams(self.streams_per_agent))?;
        Ok(InboxReader {
            store: self.store.clone(),
            tail,
            slug: slug.clone(),
            _slot: slot,
        })
    }

    /// Wakes the readers of `slug` on this replica (another replica committed to its
    /// inbox: on a shared store, readers read the store).
    pub fn wake(&self, slug: &AgentSlug) {
        if let Some(tail) = self.tails.get(slug) {
            tail.wake();
        }
    }

    /// Wakes every reader on this replica (after notices may have been missed).
    pub fn wake_all(&self) {
        for tail in &self.tails {
            tail.wake();
        }
    }

    /// Forgets a deleted agent's tail (its rows are gone from the store).
    pub fn forget(&self, slug: &AgentSlug) {
        self.tails.remove(slug);
    }

    /// After a commit, in commit order: appends a newly delivered event (its cursors in
    /// recipient order) to the tails of the recipients that have readers, and wakes them
    /// (on a shared store, only wakes them).
    pub fn append(&self, delivery: &EventDelivery, cursors: &[i64]) {
        for ((slug, mentioned), cursor) in delivery.recipients.iter().zip(cursors) {
            if let Some(tail) = self.tails.get(slug) {
                if self.shared {
                    // Readers read the store: the tail only wakes them.
                    tail.wake();
                    continue;
                }
                tail.push(InboxEntry {
                    cursor: *cursor,
                    mentioned: *mentioned,
                    event: delivery.event.clone(),
                });
            }
        }
    }
}

/// An entry of a message in `!r:hs` from `@h:hs`, event id `$e<cursor>`, sent at 7.
#[cfg(test)]
pub(crate) fn test_entry(cursor: i64, mentioned: bool, content: &str) -> InboxEntry {
    use crate::store::InboxEvent;
    InboxEntry {
        cursor,
        mentioned,
        event: Arc::new(InboxEvent {
            room_id: "!r:hs".try_into().unwrap(),
            event_id: format!("$e{cursor}").try_into().unwrap(),
            sender: "@h:hs".try_into().unwrap(),
            event_type: "m.room.message".into(),
            content: serde_json::value::RawValue::from_string(content.into()).unwrap(),
            origin_server_ts: 7,
            decrypted: false,
            redelivered: false,
            json_members: Default::default(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::{sqlite::SqliteStore, AgentRecord, EventDelivery, WriteOp};

    /// Opening an inbox needs the agent in the store, and nothing else (no actor); the
    /// after-commit append reaches a waiting reader; stream slots are bounded.
    #[tokio::test]
    async fn readers_of_stored_agents_are_woken_by_appends() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("i.db").display());
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).await.unwrap());
        let inboxes = Inboxes::new(store.clone(), 2);
        let a = AgentSlug::parse("a").unwrap();
        assert!(matches!(
            inboxes.open(&a).await,
            Err(InboxError::UnknownAgent(_))
        ));
        let record = AgentRecord {
            slug: a.clone(),
            registered: false,
            display_name: None,
            avatar_url: None,
        };
        store.apply(&[WriteOp::Agent(record)]).await.unwrap();
        let reader = inboxes.open(&a).await.unwrap();
        let _second = inboxes.open(&a).await.unwrap();
        assert!(matches!(
            inboxes.open(&a).await,
            Err(InboxError::TooManyStreams(2))
        ));
        let waiting = reader.wait(0, 10, Duration::from_secs(5));
        let entry = test_entry(1, true, "{}");
        let delivery = EventDelivery {
            event: entry.event.clone(),
            recipients: vec![(a.clone(), true)],
        };
        let append = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            inboxes.append(&delivery, &[1]);
        };
        let (got, ()) = tokio::join!(waiting, append);
        let got = got.unwrap().entries;
        assert_eq!(got.len(), 1);
        assert!(
            Arc::ptr_eq(&got[0].event, &entry.event),
            "served from the tail"
        );
        drop(reader);
        assert!(inboxes.open(&a).await.is_ok(), "a slot was freed");
    }
}
