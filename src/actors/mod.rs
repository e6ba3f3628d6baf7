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

use actix::Addr;

use self::{agent::AgentActor, error::AgentResult, registry::LiveAgent, supervisor::Supervisor};
use crate::{ids::AgentSlug, services::Services};

/// What HTTP handlers hold: the shared services and the supervisor's address.
#[derive(Clone)]
pub struct Hub {
    pub svc: Arc<Services>,
    pub supervisor: Addr<Supervisor>,
}

impl Hub {
    /// The agent's actor, started when it is not live (the only supervisor round trip).
    pub async fn agent(&self, slug: &AgentSlug) -> AgentResult<Addr<AgentActor>> {
        self.live_agent(slug).await.map(|a| a.addr)
    }

    /// The agent's actor and inbox tail, started when it is not live.
    pub async fn live_agent(&self, slug: &AgentSlug) -> AgentResult<LiveAgent> {
        if let Some(agent) = self.svc.agents.live(slug) {
            return Ok(agent);
        }
        Ok(self
            .supervisor
            .send(supervisor::EnsureAgent { slug: slug.clone() })
            .await?)
    }

    /// The agent's actor and tail if the agent is known (live or stored); never creates one.
    pub async fn known_agent(&self, slug: &AgentSlug) -> AgentResult<Option<LiveAgent>> {
        if let Some(agent) = self.svc.agents.live(slug) {
            return Ok(Some(agent));
        }
        if self.svc.store.agent(slug).await?.is_none() {
            return Ok(None);
        }
        self.live_agent(slug).await.map(Some)
    }
}
