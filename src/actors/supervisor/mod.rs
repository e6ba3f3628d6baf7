//! The supervisor: starts agent actors on demand (spread over the arbiter pool), runs room
//! provisioning ([`provision`]), and tells every agent to clear its typing at shutdown. The [`registry`] of live agents is its record of what it started.

use std::{sync::Arc, time::Duration};

use actix::prelude::*;

pub mod provision;
mod provision_key;
pub mod registry;

use self::provision::{ProvisionError, ProvisionRequest, Provisioned};
use super::{
    agent::{AgentActor, ClearTyping},
    AppState,
};
use crate::ids::AgentSlug;

pub struct Supervisor {
    app: Arc<AppState>,
}

impl Supervisor {
    pub fn new(app: Arc<AppState>) -> Self {
        Self { app }
    }

    fn ensure_agent(&mut self, slug: AgentSlug) -> Addr<AgentActor> {
        if let Some(addr) = self.app.agents.get(&slug) {
            return addr;
        }
        let arbiter = self.app.agents.arbiter_for(&slug);
        let app = self.app.clone();
        let s = slug.clone();
        let addr = AgentActor::start_in_arbiter(&arbiter, move |_| AgentActor::new(s, app));
        self.app.agents.insert(slug, addr.clone());
        addr
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1024);
    }
}

/// The agent's actor, started when it is not live.
#[derive(Message)]
#[rtype(result = "Addr<AgentActor>")]
pub struct EnsureAgent {
    pub slug: AgentSlug,
}

impl Handler<EnsureAgent> for Supervisor {
    type Result = MessageResult<EnsureAgent>;
    fn handle(&mut self, msg: EnsureAgent, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.ensure_agent(msg.slug))
    }
}

/// Creates a room as the sender bot (see [`provision`]).
#[derive(Message)]
#[rtype(result = "Result<Provisioned, ProvisionError>")]
pub struct ProvisionRoom(pub ProvisionRequest);

impl Handler<ProvisionRoom> for Supervisor {
    type Result = ResponseFuture<Result<Provisioned, ProvisionError>>;
    fn handle(&mut self, msg: ProvisionRoom, _: &mut Self::Context) -> Self::Result {
        Box::pin(provision::provision(self.app.clone(), msg.0))
    }
}

/// Clears every agent's typing at the homeserver, waiting at most `within`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PrepareShutdown {
    pub within: Duration,
}

impl Handler<PrepareShutdown> for Supervisor {
    type Result = ResponseFuture<()>;
    fn handle(&mut self, msg: PrepareShutdown, _: &mut Self::Context) -> Self::Result {
        let agents = self.app.agents.all();
        Box::pin(async move {
            let clears = agents.into_iter().map(|a| a.send(ClearTyping));
            let all = futures_util::future::join_all(clears);
            if tokio::time::timeout(msg.within, all).await.is_err() {
                tracing::warn!("some typing indicators could not be cleared before shutdown");
            }
        })
    }
}
