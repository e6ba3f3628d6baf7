//! Typing indicators of one agent: one renewal timer per room, renewed at 80 % of the
//! homeserver timeout until typing off, a message from the agent in that room, or the
//! maximum duration. Renewals and clears are best-effort (logged, never block messages).

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use actix::prelude::*;
use ruma::{OwnedRoomId, RoomId};

use super::{ready::Joining, AgentActor, AppState};
use crate::{actors::error::AgentResult, metrics::METRICS};

/// Deadline of a best-effort typing call (renewal or clear), retries included.
const BEST_EFFORT_DEADLINE: Duration = Duration::from_secs(5);

/// Turns typing on or off in a room (joining the agent first when needed).
#[derive(Message)]
#[rtype(result = "AgentResult<()>")]
pub struct SetTyping {
    pub room: OwnedRoomId,
    pub typing: bool,
    /// How long typing should last at most (capped by the configured maximum).
    pub duration: Option<Duration>,
    /// How the agent gets into the room when it is not in it.
    pub joining: Joining,
}

/// Clears every typing indicator at the homeserver (before shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ClearTyping;

struct Typing {
    timer: SpawnHandle,
    until: Instant,
}

#[derive(Default)]
pub(super) struct TypingTimers {
    active: BTreeMap<OwnedRoomId, Typing>,
    /// Typing-on calls still on their way to the homeserver: room → token of the latest.
    /// Ending typing in a room forgets its entry, so a call that lands afterwards is
    /// cleared instead of armed.
    pending: BTreeMap<OwnedRoomId, u64>,
    next_token: u64,
}

impl TypingTimers {
    pub(super) fn rooms(&self) -> Vec<OwnedRoomId> {
        self.active.keys().cloned().collect()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.active.is_empty() && self.pending.is_empty()
    }
}

impl Handler<SetTyping> for AgentActor {
    type Result = ResponseActFuture<Self, AgentResult<()>>;

    fn handle(&mut self, msg: SetTyping, ctx: &mut Self::Context) -> Self::Result {
        let app = self.app.clone();
        let user = self.user_id();
        let room = msg.room;
        if !msg.typing {
            let was_typing = self.cancel_timer(&room, ctx);
            if !was_typing && !self.is_joined(&room) {
                // Not in the room: it cannot be typing there; nothing to clear.
                return Box::pin(fut::ready(Ok(())));
            }
            let work = async move {
                app.hs
                    .typing(
                        &user,
                        &room,
                        false,
                        Duration::ZERO,
                        app.config.hs_deadline(),
                    )
                    .await
                    .map_err(Into::into)
            };
            return Box::pin(work.into_actor(self));
        }
        let limits = &self.app.config.limits;
        let max = limits.typing_max;
        let until = Instant::now() + msg.duration.map_or(max, |d| d.min(max));
        let timeout = limits.typing_timeout;
        let record = self.record();
        let typing = &mut self.rooms().typing;
        typing.next_token += 1;
        let token = typing.next_token;
        typing.pending.insert(room.clone(), token);
        let key = room.clone();
        let joining = msg.joining;
        let work = async move {
            let entry = super::ready::RoomEntry::new(&room, joining);
            super::ready::ready(&app, &record, &user, Some(entry)).await?;
            app.hs
                .typing(&user, &room, true, timeout, app.config.hs_deadline())
                .await?;
            Ok(room)
        };
        Box::pin(
            work.into_actor(self)
                .map(move |res: AgentResult<OwnedRoomId>, act, ctx| {
                    let state = act.rooms();
                    let latest = state.typing.pending.get(&key) == Some(&token);
                    if latest {
                        state.typing.pending.remove(&key);
                    }
                    let room = res?;
                    act.registered = true;
                    let state = act.rooms();
                    if latest {
                        act.arm(room, until, ctx);
                    } else if !state.typing.pending.contains_key(&room)
                        && !state.typing.active.contains_key(&room)
                    {
                        // Typing ended (a message, typing off) while this call was on its
                        // way; it may have landed after the end, so clear it again.
                        let work = clear(act.app.clone(), act.user_id(), room);
                        ctx.spawn(work.into_actor(act));
                    }
                    Ok(())
                }),
        )
    }
}

impl Handler<ClearTyping> for AgentActor {
    type Result = ResponseFuture<()>;
    fn handle(&mut self, _: ClearTyping, ctx: &mut Self::Context) -> Self::Result {
        let rooms = self
            .rooms
            .as_ref()
            .map_or_else(Vec::new, |r| r.typing.rooms());
        let clears: Vec<_> = rooms
            .into_iter()
            .map(|room| {
                self.cancel_timer(&room, ctx);
                clear(self.app.clone(), self.user_id(), room)
            })
            .collect();
        Box::pin(async move {
            futures_util::future::join_all(clears).await;
        })
    }
}

impl AgentActor {
    /// (Re)starts the renewal timer of `room`.
    fn arm(&mut self, room: OwnedRoomId, until: Instant, ctx: &mut Context<Self>) {
        let timeout = self.app.config.limits.typing_timeout;
        let renew_in = timeout.mul_f64(0.8);
        let key = room.clone();
        let timer = ctx.run_later(renew_in, move |act, ctx| act.renew(key, ctx));
        if let Some(old) = self
            .rooms()
            .typing
            .active
            .insert(room, Typing { timer, until })
        {
            ctx.cancel_future(old.timer);
        } else {
            METRICS.typing_active.inc();
        }
    }

    /// Timer callback: renew, or stop once the maximum duration has passed.
    fn renew(&mut self, room: OwnedRoomId, ctx: &mut Context<Self>) {
        let Some(t) = self.rooms.as_ref().and_then(|r| r.typing.active.get(&room)) else {
            return;
        };
        if Instant::now() >= t.until {
            tracing::debug!(agent = %self.slug, room = %room, "typing reached its maximum duration");
            self.end_typing(&room, ctx);
            return;
        }
        let until = t.until;
        let app = self.app.clone();
        let user = self.user_id();
        let timeout = app.config.limits.typing_timeout;
        let r = room.clone();
        ctx.spawn(
            async move {
                if let Err(e) = app
                    .hs
                    .typing(&user, &r, true, timeout, BEST_EFFORT_DEADLINE)
                    .await
                {
                    tracing::warn!(agent = %user, room = %r, error = %e, "typing renewal failed");
                }
            }
            .into_actor(self),
        );
        self.arm(room, until, ctx);
    }

    /// Stops the timer of `room` and forgets a typing-on call still on its way; returns
    /// whether typing was on.
    fn cancel_timer(&mut self, room: &RoomId, ctx: &mut Context<Self>) -> bool {
        let Some(state) = self.rooms.as_mut() else {
            return false;
        };
        state.typing.pending.remove(room);
        match state.typing.active.remove(room) {
            Some(t) => {
                ctx.cancel_future(t.timer);
                METRICS.typing_active.dec();
                true
            }
            None => false,
        }
    }

    /// Ends typing in `room` at the homeserver if it was on (best-effort, in the background).
    pub(super) fn end_typing(&mut self, room: &RoomId, ctx: &mut Context<Self>) {
        if self.cancel_timer(room, ctx) {
            let work = clear(self.app.clone(), self.user_id(), room.to_owned());
            ctx.spawn(work.into_actor(self));
        }
    }

    /// Forgets typing in `room` without telling the homeserver (the agent left it).
    pub(super) fn drop_typing(&mut self, room: &RoomId, ctx: &mut Context<Self>) {
        self.cancel_timer(room, ctx);
    }
}

async fn clear(app: Arc<AppState>, user: ruma::OwnedUserId, room: OwnedRoomId) {
    if let Err(e) = app
        .hs
        .typing(&user, &room, false, Duration::ZERO, BEST_EFFORT_DEADLINE)
        .await
    {
        tracing::warn!(agent = %user, room = %room, error = %e, "clearing typing failed");
    }
}
