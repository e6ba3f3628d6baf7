//! The actor runtime: one [`agent::AgentActor`] per hosted agent, a [`supervisor::Supervisor`]
//! that starts agents and routes transactions and provisioning, and the shared, read-mostly
//! [`registry`] and [`directory`] that let HTTP workers skip the supervisor on hot paths.

pub mod agent;
pub mod directory;
pub mod error;
pub mod provision;
pub mod registry;
pub mod routing;
pub mod supervisor;

use std::sync::Arc;

use actix::Addr;

use self::{agent::AgentActor, error::AgentResult, supervisor::Supervisor};
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
        if let Some(addr) = self.svc.agents.get(slug) {
            return Ok(addr);
        }
        Ok(self
            .supervisor
            .send(supervisor::EnsureAgent { slug: slug.clone() })
            .await?)
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
