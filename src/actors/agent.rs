//! One agent's virtual Matrix user. The actor owns the agent's registration state,
//! profile, typing timers and its per-room send queues; the rooms it is joined to are the
//! directory's (the one owner of membership facts), read when needed. HTTP workers reach it
//! through the registry; the supervisor starts it. An idle agent is small (see the
//! docs/performance.md, memory): its profile and its room state are boxed, and present only
//! once there is something in them.

mod crypto;
mod membership;
mod ready;
mod send;
mod typing;

use std::{sync::Arc, time::Instant};

use actix::prelude::*;
use ruma::{OwnedMxcUri, OwnedRoomId, OwnedUserId};
use serde::Serialize;

pub use crypto::{drop_idle_machines, CryptoMachine};
pub use membership::{JoinRoom, MembershipChanged};
pub use ready::Joining;
pub use send::{ActInRoom, Sent};
pub use typing::{ClearTyping, SetTyping};

use super::error::{AgentError, AgentResult};
use super::AppState;
use crate::{ids::AgentSlug, metrics::METRICS, store::AgentRecord};

/// Actor mailbox size: a bounded queue in front of the actor.
const MAILBOX: usize = 64;

pub struct AgentActor {
    slug: AgentSlug,
    app: Arc<AppState>,
    /// Whether the homeserver knows the user (cached from the store, set after register).
    registered: bool,
    /// Display name, avatar and when they last changed; absent until set.
    profile: Option<Box<Profile>>,
    /// Send queues and typing timers; absent until the agent has something to send or
    /// types. The actor stays within 72 bytes this way, which keeps its actix task in a
    /// smaller allocation class.
    rooms: Option<Box<RoomState>>,
    /// The crypto machine, while the agent needs one (end-to-end encryption on).
    crypto: Option<std::sync::Arc<crate::e2ee::open::OpenMachine>>,
}

/// What an agent keeps per room. Its maps are B-trees: empty, they take no heap and half
/// the inline room of a hash map (an agent is in few rooms).
#[derive(Default)]
struct RoomState {
    /// Per-room FIFOs of outgoing messages, one send in flight per room.
    sends: send::SendQueues,
    /// Typing indicators kept alive, one timer per room.
    typing: typing::TypingTimers,
}

impl AgentActor {
    /// Creates the actor for `slug`; its state is loaded from the store when it starts.
    pub fn new(slug: AgentSlug, app: Arc<AppState>) -> Self {
        Self {
            slug,
            app,
            registered: false,
            profile: None,
            rooms: None,
            crypto: None,
        }
    }

    /// The agent's Matrix user (derived from the slug, not stored: see `rooms`).
    fn user_id(&self) -> OwnedUserId {
        self.app.ns.agent_user_id(&self.slug)
    }

    /// The room state, created on first use.
    fn rooms(&mut self) -> &mut RoomState {
        self.rooms.get_or_insert_default()
    }

    /// Drops the room state once it holds nothing (no send queued, not typing).
    fn forget_rooms_if_idle(&mut self) {
        if self
            .rooms
            .as_ref()
            .is_some_and(|r| r.sends.is_empty() && r.typing.is_empty())
        {
            self.rooms = None;
        }
    }

    fn is_joined(&self, room: &ruma::RoomId) -> bool {
        self.app.directory.is_joined(room, &self.slug)
    }

    fn record(&self) -> AgentRecord {
        AgentRecord {
            slug: self.slug.clone(),
            registered: self.registered,
            display_name: self.display_name().cloned(),
            avatar_url: self.avatar_url().cloned(),
        }
    }

    fn display_name(&self) -> Option<&String> {
        self.profile.as_ref()?.display_name.as_ref()
    }

    fn avatar_url(&self) -> Option<&String> {
        self.profile.as_ref()?.avatar_url.as_ref()
    }

    /// Keeps a profile only when there is something in it.
    fn set_profile(&mut self, display_name: Option<String>, avatar_url: Option<String>) {
        let last_change = self.profile.as_ref().and_then(|p| p.last_change);
        self.profile = (display_name.is_some() || avatar_url.is_some() || last_change.is_some())
            .then(|| {
                Box::new(Profile {
                    display_name,
                    avatar_url,
                    last_change,
                })
            });
    }

    fn state(&self) -> AgentState {
        let rooms = self.rooms.as_deref();
        AgentState {
            agent: self.slug.clone(),
            user_id: self.user_id(),
            registered: self.registered,
            display_name: self.display_name().cloned(),
            avatar_url: self.avatar_url().cloned(),
            joined_rooms: self.app.directory.rooms_of(&self.slug),
            encrypted_rooms: self.app.directory.encrypted_rooms_of(&self.slug),
            typing_rooms: rooms.map_or_else(Vec::new, |r| r.typing.rooms()),
            queued_messages: rooms.map_or(0, |r| r.sends.queued()),
            live: true,
        }
    }
}

impl Actor for AgentActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX);
        METRICS.agents_live.inc();
        let app = self.app.clone();
        let slug = self.slug.clone();
        let load = async move {
            let store = &app.store;
            let record = match store.agent(&slug).await? {
                Some(r) => r,
                None => {
                    let fresh = AgentRecord {
                        slug: slug.clone(),
                        registered: false,
                        display_name: None,
                        avatar_url: None,
                    };
                    app.writer.put_agent(fresh.clone()).await?;
                    fresh
                }
            };
            Ok::<_, AgentError>(record)
        };
        ctx.wait(load.into_actor(self).map(|loaded, act, ctx| match loaded {
            Ok(record) => {
                act.registered = record.registered;
                act.set_profile(record.display_name, record.avatar_url);
            }
            Err(e) => {
                tracing::error!(agent = %act.slug, error = %e, "cannot load agent state; stopping");
                ctx.stop();
            }
        }));
    }

    fn stopped(&mut self, ctx: &mut Self::Context) {
        if self.crypto.take().is_some() {
            if let Some(e2ee) = self.app.e2ee.get() {
                e2ee.open.closed(&self.slug);
            }
        }
        METRICS.agents_live.dec();
        let typing = self.rooms.as_ref().map_or(0, |r| r.typing.rooms().len());
        METRICS.typing_active.sub(typing as i64);
        self.app.agents.remove(&self.slug, &ctx.address());
    }
}

/// An agent's profile, as the actor keeps it.
#[derive(Default)]
struct Profile {
    display_name: Option<String>,
    avatar_url: Option<String>,
    /// When the profile last changed (profile changes fan out member events).
    last_change: Option<Instant>,
}

/// What `GET /bridge/v1/agents/{agent}` shows.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AgentState {
    pub agent: AgentSlug,
    #[schema(value_type = crate::matrix::schema::UserId)]
    pub user_id: OwnedUserId,
    /// Whether the agent's user is registered on the homeserver.
    pub registered: bool,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    #[schema(value_type = Vec<crate::matrix::schema::RoomId>)]
    pub joined_rooms: Vec<OwnedRoomId>,
    /// The joined rooms that are encrypted: with end-to-end encryption on the agent reads
    /// and writes there encrypted; off, their messages arrive as `encrypted` items it
    /// cannot read, and it may send there only in the clear.
    #[schema(value_type = Vec<crate::matrix::schema::RoomId>)]
    pub encrypted_rooms: Vec<OwnedRoomId>,
    #[schema(value_type = Vec<crate::matrix::schema::RoomId>)]
    pub typing_rooms: Vec<OwnedRoomId>,
    /// Sends waiting in the agent's queues.
    pub queued_messages: usize,
    /// Whether the agent's actor is running (an agent is started on first use, or at
    /// start-up; one that is not keeps its rooms and profile in the store).
    pub live: bool,
}

/// Reads the actor's state.
#[derive(Message)]
#[rtype(result = "AgentState")]
pub struct GetState;

impl Handler<GetState> for AgentActor {
    type Result = MessageResult<GetState>;
    fn handle(&mut self, _: GetState, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.state())
    }
}

/// Stops the agent's actor for good (the agent is being deleted); it leaves the registry as
/// it stops, so a later request for the name starts a new agent.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Retire;

impl Handler<Retire> for AgentActor {
    type Result = ();
    fn handle(&mut self, _: Retire, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

/// Makes sure the homeserver knows the agent's user.
#[derive(Message)]
#[rtype(result = "AgentResult<()>")]
pub struct EnsureRegistered;

impl Handler<EnsureRegistered> for AgentActor {
    type Result = ResponseActFuture<Self, AgentResult<()>>;
    fn handle(&mut self, _: EnsureRegistered, _: &mut Self::Context) -> Self::Result {
        let (app, record, user) = (self.app.clone(), self.record(), self.user_id());
        let fut = async move { ready::ready(&app, &record, &user, None).await };
        Box::pin(fut.into_actor(self).map(|res, act, _| {
            if res.is_ok() {
                act.registered = true;
            }
            res
        }))
    }
}

/// Sets the display name and/or avatar (registering first when needed). Unchanged values
/// cost no homeserver call; real changes are rate-limited per agent.
#[derive(Message)]
#[rtype(result = "AgentResult<AgentState>")]
pub struct SetProfile {
    pub display_name: Option<String>,
    pub avatar_url: Option<OwnedMxcUri>,
}

impl Handler<SetProfile> for AgentActor {
    type Result = ResponseActFuture<Self, AgentResult<AgentState>>;
    fn handle(&mut self, msg: SetProfile, _: &mut Self::Context) -> Self::Result {
        let name = msg.display_name.filter(|n| Some(n) != self.display_name());
        let avatar = msg
            .avatar_url
            .map(|a| a.to_string())
            .filter(|a| Some(a) != self.avatar_url());
        let changes = name.is_some() || avatar.is_some();
        if changes {
            let min = self.app.config.limits.profile_min_interval;
            if let Some(at) = self.profile.as_ref().and_then(|p| p.last_change) {
                if at.elapsed() < min {
                    let retry_after = min - at.elapsed();
                    return Box::pin(fut::ready(Err(AgentError::RateLimited { retry_after })));
                }
            }
            self.profile.get_or_insert_default().last_change = Some(Instant::now());
        }
        let app = self.app.clone();
        let record = self.record();
        let user = self.user_id();
        let work = async move {
            ready::ready(&app, &record, &user, None).await?;
            let deadline = app.config.hs_deadline();
            if let Some(n) = &name {
                app.hs
                    .set_profile_field(&user, "displayname", n, deadline)
                    .await?;
            }
            if let Some(a) = &avatar {
                app.hs
                    .set_profile_field(&user, "avatar_url", a, deadline)
                    .await?;
            }
            let stored = AgentRecord {
                registered: true,
                display_name: name.clone().or(record.display_name),
                avatar_url: avatar.clone().or(record.avatar_url),
                ..record
            };
            if changes {
                app.writer.put_agent(stored.clone()).await?;
            }
            Ok(stored)
        };
        Box::pin(
            work.into_actor(self)
                .map(|res: AgentResult<AgentRecord>, act, _| {
                    let stored = res?;
                    act.registered = true;
                    act.set_profile(stored.display_name, stored.avatar_url);
                    act.app
                        .directory
                        .set_display_name(&act.slug, act.display_name().map(String::as_str));
                    Ok(act.state())
                }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_agent_stays_small() {
        // Past 72 bytes actix's task for the actor moves up an allocation class, which costs
        // every live agent about 250 bytes (W4 in docs/performance.md, benches/actor_floor.rs).
        assert!(std::mem::size_of::<AgentActor>() <= 72);
    }
}
