//! The actor runtime: one [`agent::AgentActor`] per hosted agent, a [`supervisor::Supervisor`]
//! that starts agents and carries out transactions' effects and provisioning, and the
//! shared, read-mostly [`registry`] that lets HTTP workers skip the supervisor on hot paths.

pub mod agent;
pub mod error;
pub mod provision;
pub mod registry;
pub mod supervisor;

use std::sync::Arc;

use actix::{Addr, Handler, Message};

use self::{
    agent::{AgentActor, MembershipChanged},
    error::AgentResult,
    registry::AgentRegistry,
    supervisor::{ApplyEffects, Supervisor},
};
use crate::{
    ids::AgentSlug,
    inbound::{routing::Routed, AgentNotices},
    metrics::METRICS,
    services::Services,
    store::{Effect, MembershipChange, StoreError, TransactionOutcome},
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

    /// Records a routed homeserver transaction in the group commit; the after-commit step
    /// ([`AfterCommit`](crate::inbound::AfterCommit)) applies its consequences before the
    /// commit is answered. Only the commit is waited for; no actor round trip is on this path.
    pub async fn record_transaction(&self, routed: Routed) -> Result<TransactionAck, StoreError> {
        let skipped = routed.skipped;
        match self.svc.writer.commit(routed.write).await? {
            TransactionOutcome::Duplicate => {
                METRICS.transactions.with_label_values(&["duplicate"]).inc();
                Ok(TransactionAck::Duplicate)
            }
            TransactionOutcome::Recorded { id_reused, .. } => {
                let outcome = if id_reused { "id_reused" } else { "new" };
                METRICS.transactions.with_label_values(&[outcome]).inc();
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
}

/// How the after-commit step reaches the actors: membership changes straight to live
/// agents, effects to the supervisor. Both without waiting (it runs on the writer).
pub struct ActorNotices {
    pub agents: Arc<AgentRegistry>,
    pub supervisor: Addr<Supervisor>,
}

impl AgentNotices for ActorNotices {
    fn membership_changed(&self, change: MembershipChange) {
        if let Some(addr) = self.agents.get(&change.slug) {
            // Rare and must not be lost: ignore mailbox capacity.
            addr.do_send(MembershipChanged {
                room: change.room_id,
                joined: change.joined,
            });
        }
    }

    fn effects(&self, effects: Vec<Effect>) {
        self.supervisor.do_send(ApplyEffects(effects));
    }
}
