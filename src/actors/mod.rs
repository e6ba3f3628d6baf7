//! The actor runtime: one [`agent::AgentActor`] per hosted agent, a [`supervisor::Supervisor`]
//! that starts agents and routes transactions and provisioning, and the shared, read-mostly
//! [`registry`] and [`directory`] that let HTTP workers skip the supervisor on hot paths.

pub mod agent;
pub mod directory;
pub mod error;
pub mod inbox;
pub mod provision;
pub mod registry;
pub mod routing;
pub mod supervisor;

use std::sync::Arc;

use actix::{Addr, Handler, Message};

use self::{
    agent::{AgentActor, MembershipChanged},
    error::AgentResult,
    inbox::InboxTail,
    routing::Routed,
    supervisor::{ApplyEffects, Supervisor},
};
use crate::{
    ids::AgentSlug,
    metrics::METRICS,
    services::Services,
    store::{StoreError, TransactionOutcome},
};

/// How a homeserver transaction was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionAck {
    Recorded { skipped: usize, id_reused: bool },
    Duplicate,
}

/// What HTTP handlers hold: the shared services and the supervisor's address.
#[derive(Clone)]
pub struct Hub {
    pub svc: Arc<Services>,
    pub supervisor: Addr<Supervisor>,
}

impl Hub {
    /// The agent's actor, started when it is not live (the only supervisor round trip).
    pub async fn agent(&self, slug: &AgentSlug) -> AgentResult<Addr<AgentActor>> {
        if let Some(addr) = self.svc.agents.get(slug) {
            return Ok(addr);
        }
        Ok(self
            .supervisor
            .send(supervisor::EnsureAgent { slug: slug.clone() })
            .await?)
    }

    /// Sends `msg` to the agent and waits for its answer, starting the agent when it is
    /// not live. A live agent is reached straight from the registry (no address clone).
    pub async fn ask<M>(&self, slug: &AgentSlug, msg: M) -> AgentResult<M::Result>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        AgentActor: Handler<M>,
    {
        let request = match self.svc.agents.send(slug, msg) {
            Ok(request) => request,
            Err(msg) => self.agent(slug).await?.send(msg),
        };
        Ok(request.await?)
    }

    /// Records a routed homeserver transaction in the group commit (the writer appends its
    /// inbox rows to live agents' tails and wakes their readers), then applies its
    /// membership changes to the directory, hands them straight to the live agents and
    /// invites to the supervisor. Only the commit is waited for; no actor round trip is on
    /// this path.
    pub async fn record_transaction(&self, routed: Routed) -> Result<TransactionAck, StoreError> {
        let Routed {
            write,
            effects,
            skipped,
        } = routed;
        let memberships = write.memberships.clone();
        match self.svc.writer.commit(write).await? {
            TransactionOutcome::Duplicate => {
                METRICS.transactions.with_label_values(&["duplicate"]).inc();
                Ok(TransactionAck::Duplicate)
            }
            TransactionOutcome::Recorded { id_reused, .. } => {
                if id_reused {
                    METRICS.transactions.with_label_values(&["id_reused"]).inc();
                } else {
                    METRICS.transactions.with_label_values(&["new"]).inc();
                }
                for m in memberships {
                    // Routing saw these changes; the directory takes them now they count.
                    if m.joined {
                        self.svc.directory.join(&m.room_id, &m.slug);
                    } else {
                        self.svc.directory.leave(&m.room_id, &m.slug);
                    }
                    if let Some(addr) = self.svc.agents.get(&m.slug) {
                        // Rare and must not be lost: ignore mailbox capacity.
                        addr.do_send(MembershipChanged {
                            room: m.room_id,
                            joined: m.joined,
                        });
                    }
                }
                if !effects.is_empty() {
                    self.supervisor.do_send(ApplyEffects(effects));
                }
                Ok(TransactionAck::Recorded { skipped, id_reused })
            }
        }
    }

    /// The agent's actor if the agent is known (live or stored); never creates one.
    pub async fn known_agent(&self, slug: &AgentSlug) -> AgentResult<Option<Addr<AgentActor>>> {
        if let Some(addr) = self.svc.agents.get(slug) {
            return Ok(Some(addr));
        }
        if self.svc.store.agent(slug).await?.is_none() {
            return Ok(None);
        }
        self.agent(slug).await.map(Some)
    }

    /// The inbox tail of a known agent (`None` when the agent is unknown), anchored: its
    /// first reader creates it and anchors it at the store's latest row, and the writer
    /// pushes every commit after that, so readers past the anchor need no store read.
    pub async fn inbox_tail(&self, slug: &AgentSlug) -> AgentResult<Option<Arc<InboxTail>>> {
        // An actor stops only at shutdown or when its state cannot load: one retry covers
        // a reader arriving as it stops.
        for _ in 0..2 {
            if self.known_agent(slug).await?.is_none() {
                return Ok(None);
            }
            let Some(tail) = self.svc.agents.tail(slug) else {
                continue;
            };
            if !tail.is_anchored() {
                // Read after the tail entered the registry: later commits reach it.
                let latest = self.svc.store.latest_cursor(slug).await?;
                tail.anchor(latest);
            }
            return Ok(Some(tail));
        }
        Err(error::AgentError::Stopped)
    }
}
