//! The agent registry: a `DashMap` from slug to the live agent's actor address and its
//! inbox tail (created by the agent's first reader), so HTTP workers and the router reach
//! a live agent without the supervisor;
//! the arbiter pool agent actors run on (one per core, chosen by a hash of the slug); and
//! the post-commit hook that appends committed inbox rows to live agents' tails.

use std::{hash::BuildHasher, sync::Arc};

use actix::{dev::Request, Addr, Arbiter, ArbiterHandle, Handler, Message};
use dashmap::DashMap;

use super::{
    agent::AgentActor,
    inbox::{InboxTail, TailEntry, TailEvent},
};
use crate::{
    ids::AgentSlug,
    metrics::METRICS,
    store::{writer::CommitHook, TransactionOutcome, WriteOp, WriteOutcome},
};

/// A live agent, as HTTP workers and the writer see it.
struct LiveAgent {
    addr: Addr<AgentActor>,
    /// Created by the first reader of the inbox: the writer skips agents nobody reads.
    tail: Option<Arc<InboxTail>>,
}

pub struct AgentRegistry {
    live: DashMap<AgentSlug, LiveAgent>,
    arbiters: std::sync::OnceLock<Vec<Arbiter>>,
}

impl Default for AgentRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl AgentRegistry {
    pub fn new() -> Self {
        Self {
            live: DashMap::new(),
            arbiters: std::sync::OnceLock::new(),
        }
    }

    /// Starts the arbiter pool (inside the actix system).
    pub fn start_arbiters(&self, count: usize) {
        self.arbiters
            .get_or_init(|| (0..count.max(1)).map(|_| Arbiter::new()).collect());
    }

    /// The arbiter an agent's actor lives on.
    pub fn arbiter_for(&self, slug: &AgentSlug) -> ArbiterHandle {
        let arbiters = self.arbiters.get().expect("arbiters started");
        let h = self.live.hasher().hash_one(slug);
        arbiters[(h as usize) % arbiters.len()].handle()
    }

    /// A live agent's address.
    pub fn get(&self, slug: &AgentSlug) -> Option<Addr<AgentActor>> {
        self.live
            .get(slug)
            .filter(|a| a.addr.connected())
            .map(|a| a.addr.clone())
    }

    /// Sends `msg` to a live agent without cloning its address (a clone allocates), or
    /// gives the message back when the agent is not live.
    pub fn send<M>(&self, slug: &AgentSlug, msg: M) -> Result<Request<AgentActor, M>, M>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        AgentActor: Handler<M>,
    {
        match self.live.get(slug) {
            Some(a) if a.addr.connected() => Ok(a.addr.send(msg)),
            _ => Err(msg),
        }
    }

    /// A live agent's inbox tail, created (not yet anchored) on first use.
    pub fn tail(&self, slug: &AgentSlug) -> Option<Arc<InboxTail>> {
        // Rare (once per agent), so the shard's write lock is fine.
        let mut agent = self.live.get_mut(slug).filter(|a| a.addr.connected())?;
        Some(agent.tail.get_or_insert_default().clone())
    }

    pub fn insert(&self, slug: AgentSlug, addr: Addr<AgentActor>) {
        self.live.insert(slug, LiveAgent { addr, tail: None });
    }

    /// Forgets `slug` if `addr` is still its actor.
    pub fn remove(&self, slug: &AgentSlug, addr: &Addr<AgentActor>) {
        self.live.remove_if(slug, |_, a| a.addr == *addr);
    }

    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Addresses of every live agent (for shutdown).
    pub fn all(&self) -> Vec<Addr<AgentActor>> {
        self.live.iter().map(|e| e.value().addr.clone()).collect()
    }

    /// Stops the arbiter pool.
    pub fn stop_arbiters(&self) {
        if let Some(arbiters) = self.arbiters.get() {
            for a in arbiters {
                a.stop();
            }
        }
    }
}

impl CommitHook for AgentRegistry {
    /// Appends the inbox rows of each committed transaction to the live recipients' tails,
    /// in commit order (the writer runs this before answering anyone).
    fn committed(&self, ops: Vec<WriteOp>, outcomes: &[WriteOutcome]) {
        let mut delivered = 0u64;
        let mut duplicates = 0u64;
        for (op, outcome) in ops.into_iter().zip(outcomes) {
            let (
                WriteOp::Transaction(txn),
                WriteOutcome::Transaction(TransactionOutcome::Recorded { cursors, .. }),
            ) = (op, outcome)
            else {
                continue;
            };
            for (d, cursors) in txn.deliveries.into_iter().zip(cursors) {
                let Some(cursors) = cursors else {
                    duplicates += 1;
                    continue;
                };
                delivered += cursors.len() as u64;
                let event = Arc::new(TailEvent {
                    room_id: d.room_id,
                    event_id: d.event_id,
                    sender: d.sender,
                    event_type: d.event_type,
                    content: d.content,
                    origin_server_ts: d.origin_server_ts,
                    json_fields: Default::default(),
                });
                for ((slug, mentioned), cursor) in d.recipients.iter().zip(cursors) {
                    if let Some(tail) = self.live.get(slug).as_ref().and_then(|a| a.tail.as_ref()) {
                        tail.push(TailEntry {
                            cursor: *cursor,
                            mentioned: *mentioned,
                            event: event.clone(),
                        });
                    }
                }
            }
        }
        METRICS.inbox_deliveries.inc_by(delivered);
        METRICS.events_duplicate.inc_by(duplicates);
    }
}
