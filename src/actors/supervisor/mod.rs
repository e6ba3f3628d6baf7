//! The supervisor: starts agent actors on demand (spread over the arbiter pool), carries
//! out what recorded homeserver transactions ask (accepting invites, sender-bot joins),
//! runs room provisioning ([`provision`]), and tells every agent to clear its typing at
//! shutdown. The [`registry`] of live agents is its record of what it started.

use std::{sync::Arc, time::Duration};

use actix::prelude::*;

pub mod provision;
mod provision_key;
pub mod registry;

use self::provision::{ProvisionError, ProvisionRequest, Provisioned};
use super::{
    agent::{AgentActor, ClearTyping, JoinRoom},
    AppState, Creation,
};
use crate::{ids::AgentSlug, metrics::METRICS, store::Effect};

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

/// What a recorded transaction asks of the supervisor: invites to accept (starting the
/// agents when needed), sender-bot joins. Sent after the commit; runs in the background.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ApplyEffects(pub Vec<Effect>);

impl Handler<ApplyEffects> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: ApplyEffects, ctx: &mut Self::Context) {
        for effect in msg.0 {
            self.apply(effect, ctx);
        }
    }
}

impl Supervisor {
    /// Runs an after-commit effect in the background (logged, never fails the transaction).
    fn apply(&mut self, effect: Effect, ctx: &mut Context<Self>) {
        match effect {
            Effect::AcceptInvite { slug, room } => {
                let app = self.app.clone();
                ctx.spawn(
                    async move {
                        // An invited agent comes into being only under limits.max_agents.
                        let addr = match app.agent(&slug, Creation::Allowed).await {
                            Ok(addr) => addr,
                            Err(e) => {
                                count_invite("failed");
                                tracing::warn!(agent = %slug, room = %room, error = %e, "cannot accept invite");
                                return;
                            }
                        };
                        match addr.send(JoinRoom { room: room.clone() }).await {
                            Ok(Ok(())) => {
                                count_invite("accepted");
                                tracing::info!(agent = %slug, room = %room, "accepted invite")
                            }
                            Ok(Err(e)) => {
                                count_invite("failed");
                                tracing::warn!(agent = %slug, room = %room, error = %e, "cannot accept invite")
                            }
                            Err(_) => {}
                        }
                    }
                    .into_actor(self),
                );
            }
            Effect::BotJoin { room } => {
                let app = self.app.clone();
                ctx.spawn(
                    async move {
                        match app.hs.join(app.ns.sender(), &room).await {
                            Ok(()) => {
                                count_invite("accepted");
                                tracing::info!(room = %room, "sender bot accepted invite")
                            }
                            Err(e) => {
                                count_invite("failed");
                                tracing::warn!(room = %room, error = %e, "sender bot cannot join")
                            }
                        }
                    }
                    .into_actor(self),
                );
            }
            Effect::RejectInvite {
                user,
                room,
                inviter,
            } => {
                // Rejected at the homeserver, whoever the invitee: the invite is not left
                // pending, and the inviter sees why. An agent already in the room (an allowed
                // invite was accepted meanwhile) is left where it is.
                let app = self.app.clone();
                ctx.spawn(
                    async move {
                        let joined = app
                            .ns
                            .agent_slug(&user)
                            .is_some_and(|slug| app.directory.is_joined(&room, &slug));
                        if joined {
                            tracing::info!(invitee = %user, %inviter, room = %room, "refused invite ignored: already joined");
                            return;
                        }
                        let reason = "this server does not accept invites from you";
                        match app.hs.leave(&user, &room, reason).await {
                            Ok(()) => {
                                count_invite("rejected");
                                tracing::info!(invitee = %user, %inviter, room = %room, "invite rejected")
                            }
                            Err(e) => {
                                count_invite("failed");
                                tracing::warn!(invitee = %user, %inviter, room = %room, error = %e, "cannot reject invite")
                            }
                        }
                    }
                    .into_actor(self),
                );
            }
        }
    }
}

fn count_invite(outcome: &str) {
    METRICS.invites.with_label_values(&[outcome]).inc();
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
