//! The effects outbox: what recorded transactions ask for (agents accepting invites,
//! sender-bot joins, refused invites rejected, agents following a room upgrade) is stored in the transaction's own commit
//! and carried out here until done, with backoff, also after a restart. An effect the
//! homeserver refuses for good (a 4xx other than 429), or one still failing after
//! [`MAX_ATTEMPTS`], is given up and counted as failed.

use std::{
    collections::HashSet,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use ruma::{RoomId, ServerName};
use tokio::sync::{Mutex, Notify};

use super::{
    agent::{JoinRoom, Joining},
    error::AgentError,
    AppState, Creation,
};
use crate::{
    ids::AgentSlug,
    matrix::HomeserverError,
    metrics::METRICS,
    store::{now_s, Effect, PendingEffect},
};

/// Attempts before an effect is given up (about two hours of backoff).
pub const MAX_ATTEMPTS: u32 = 30;
/// Longest wait between two attempts.
const MAX_BACKOFF_S: i64 = 300;
/// Effects fetched per look at the store.
const BATCH: u32 = 64;
/// Longest sleep between two looks, also when nothing woke the outbox.
const IDLE: Duration = Duration::from_secs(1);

/// How the outbox is woken, and which effects are being carried out.
pub struct Outbox {
    wake: Notify,
    running: Mutex<HashSet<i64>>,
    /// Effects were added or finished since the pending count was last read.
    changed: AtomicBool,
}

impl Default for Outbox {
    fn default() -> Self {
        Self {
            wake: Notify::new(),
            running: Mutex::default(),
            changed: AtomicBool::new(true),
        }
    }
}

impl Outbox {
    /// New effects were committed.
    pub fn wake(&self) {
        self.changed.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }
}

/// A refused invite of an agent that joined meanwhile: nothing to do.
const ALREADY_JOINED: &str = "already joined; refused invite ignored";
/// An upgrade to follow by an agent no longer in the old room: nothing to do.
const NOT_IN_OLD_ROOM: &str = "no longer in the upgraded room; not following";

/// How one attempt ended.
enum Attempt {
    Done(&'static str),
    /// Refused for good: given up.
    Refused(String),
    /// Worth another try.
    Failed(String),
}

/// Carries out due effects until the process ends (on the leader, when several replicas
/// share the store: effects have no lease of their own, so one replica carries them out).
pub async fn run(app: Arc<AppState>) {
    loop {
        if !app.cluster.is_leader() {
            let _ = tokio::time::timeout(IDLE, app.cluster.leadership_changed()).await;
            continue;
        }
        match app.store.due_effects(now_s(), BATCH).await {
            Ok(due) => {
                for pending in due {
                    if app.outbox.running.lock().await.insert(pending.id) {
                        tokio::spawn(carry_out(app.clone(), pending));
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the effects outbox"),
        }
        // Counted only when something changed: an idle outbox reads nothing but the due
        // effects.
        if app.outbox.changed.swap(false, Ordering::Relaxed) {
            match app.store.pending_effects().await {
                Ok(n) => METRICS.effects_pending.set(n as i64),
                Err(_) => app.outbox.changed.store(true, Ordering::Relaxed),
            }
        }
        let _ = tokio::time::timeout(IDLE, app.outbox.wake.notified()).await;
    }
}

async fn carry_out(app: Arc<AppState>, pending: PendingEffect) {
    let PendingEffect {
        id,
        effect,
        attempts,
    } = pending;
    let kind = kind(&effect);
    let outcome = attempt(&app, &effect).await;
    let recorded = match &outcome {
        Attempt::Done(what) => {
            count(
                kind,
                if *what == ALREADY_JOINED || *what == NOT_IN_OLD_ROOM {
                    "ignored"
                } else {
                    "done"
                },
            );
            tracing::info!(?effect, what, "effect carried out");
            app.store.finish_effect(id).await
        }
        Attempt::Refused(error) => {
            count(kind, "failed");
            tracing::warn!(?effect, error, "effect refused by the homeserver; given up");
            app.store.finish_effect(id).await
        }
        Attempt::Failed(error) if attempts + 1 >= MAX_ATTEMPTS => {
            count(kind, "failed");
            tracing::warn!(
                ?effect,
                error,
                attempts = attempts + 1,
                "effect still failing; given up"
            );
            app.store.finish_effect(id).await
        }
        Attempt::Failed(error) => {
            count(kind, "retried");
            let wait = backoff(attempts);
            tracing::info!(
                ?effect,
                error,
                wait_s = wait,
                "effect failed; will try again"
            );
            app.store
                .defer_effect(id, attempts + 1, now_s() + wait)
                .await
        }
    };
    if let Err(e) = recorded {
        // It stays due and is tried again: effects are safe to repeat.
        tracing::warn!(error = %e, "cannot record an effect's outcome");
    }
    app.outbox.changed.store(true, Ordering::Relaxed);
    app.outbox.running.lock().await.remove(&id);
}

/// Seconds before attempt `attempts + 2`: 1, 2, 4, ... up to [`MAX_BACKOFF_S`].
fn backoff(attempts: u32) -> i64 {
    1i64.checked_shl(attempts.min(16))
        .unwrap_or(MAX_BACKOFF_S)
        .min(MAX_BACKOFF_S)
}

fn kind(effect: &Effect) -> &'static str {
    match effect {
        Effect::AcceptInvite { .. } => "accept_invite",
        Effect::BotJoin { .. } => "bot_join",
        Effect::FollowUpgrade { .. } => "follow_upgrade",
        Effect::RejectInvite { .. } => "reject_invite",
    }
}

fn count(kind: &str, outcome: &str) {
    METRICS.effects.with_label_values(&[kind, outcome]).inc();
    let invite = match outcome {
        "done" if kind == "reject_invite" => "rejected",
        "done" => "accepted",
        "failed" => "failed",
        _ => return,
    };
    METRICS.invites.with_label_values(&[invite]).inc();
}

/// Whether a homeserver error is worth another try.
fn from_homeserver(e: &HomeserverError) -> Attempt {
    match e.status() {
        Some(status) if (400..500).contains(&status) && status != 429 => {
            Attempt::Refused(e.to_string())
        }
        _ => Attempt::Failed(e.to_string()),
    }
}

fn from_agent(e: AgentError) -> Attempt {
    match e {
        AgentError::Homeserver(h) => from_homeserver(&h),
        e @ (AgentError::LimitReached { .. } | AgentError::Unknown(_)) => {
            Attempt::Refused(e.to_string())
        }
        e => Attempt::Failed(e.to_string()),
    }
}

/// The agent joins `room` by itself (through `via` when given): `None` once it has, else
/// how the attempt failed.
async fn agent_joins(
    app: &AppState,
    slug: &AgentSlug,
    creation: Creation,
    room: &RoomId,
    via: Option<&ServerName>,
) -> Option<Attempt> {
    let addr = match app.agent(slug, creation).await {
        Ok(addr) => addr,
        Err(e) => return Some(from_agent(e)),
    };
    let join = JoinRoom {
        room: room.to_owned(),
        joining: Joining::ByItself,
        via: via.map(ToOwned::to_owned),
    };
    match addr.send(join).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(from_agent(e)),
        Err(e) => Some(from_agent(e.into())),
    }
}

async fn attempt(app: &AppState, effect: &Effect) -> Attempt {
    match effect {
        // An invited agent comes into being only under limits.max_agents.
        Effect::AcceptInvite { slug, room } => {
            let joined = agent_joins(app, slug, Creation::Allowed, room, None).await;
            joined.unwrap_or(Attempt::Done("agent joined"))
        }
        Effect::FollowUpgrade {
            slug,
            from,
            room,
            via,
        } => {
            // An agent that left the old room meanwhile stays out of the new one.
            if !app.directory.is_joined(from, slug) {
                return Attempt::Done(NOT_IN_OLD_ROOM);
            }
            let joined = agent_joins(app, slug, Creation::Never, room, Some(via)).await;
            joined.unwrap_or(Attempt::Done("agent followed the room upgrade"))
        }
        Effect::BotJoin { room } => match app.hs.join(app.ns.sender(), room, None).await {
            Ok(()) => Attempt::Done("sender bot joined"),
            Err(e) => from_homeserver(&e),
        },
        Effect::RejectInvite { user, room, .. } => {
            // An agent already in the room (an allowed invite was accepted meanwhile) is
            // left where it is.
            let joined = app
                .ns
                .agent_slug(user)
                .is_some_and(|slug| app.directory.is_joined(room, &slug));
            if joined {
                return Attempt::Done(ALREADY_JOINED);
            }
            let reason = "this server does not accept invites from you";
            match app.hs.leave(user, room, Some(reason)).await {
                Ok(()) => Attempt::Done("invite rejected"),
                Err(e) => from_homeserver(&e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        assert_eq!(backoff(0), 1);
        assert_eq!(backoff(1), 2);
        assert_eq!(backoff(8), 256);
        assert_eq!(backoff(9), MAX_BACKOFF_S);
        assert_eq!(backoff(100), MAX_BACKOFF_S);
    }
}
