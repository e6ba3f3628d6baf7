//! The one "ready for this room" step every operation of an agent goes through: the
//! agent's user registered (once, recorded in the store), and, for an operation in a
//! room, the agent joined to it. Whether it is joined is the directory's to say (the one
//! owner of membership facts); a join is recorded in the store, and the after-commit step
//! gives it to the directory before the join's write returns.

use ruma::{RoomId, ServerName, UserId};

use crate::{
    actors::{error::AgentResult, AppState},
    matrix::HomeserverError,
    store::AgentRecord,
    store::{MembershipChange, WriteOp},
};

/// How an agent gets into a room it is not in yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joining {
    /// It joins by itself: the room must let it (invited, or public).
    ByItself,
    /// When the homeserver refuses its join, the sender bot invites it first. Only for
    /// requests that could have chosen the room for the agent (a token with `provision`
    /// for it, provisioning itself, accepted invites): the sender bot is in many rooms with
    /// power, and must not pull an agent into one its caller could not have picked.
    SenderBotInvites,
}

/// A room an operation needs the agent in, and how it gets there.
#[derive(Debug, Clone, Copy)]
pub struct RoomEntry<'a> {
    pub room: &'a RoomId,
    pub joining: Joining,
    /// A server to join through, when the homeserver may not be in the room yet (a room
    /// that replaced another, on the server that upgraded it).
    pub via: Option<&'a ServerName>,
}

impl<'a> RoomEntry<'a> {
    pub fn new(room: &'a RoomId, joining: Joining) -> Self {
        Self {
            room,
            joining,
            via: None,
        }
    }
}

/// Makes the agent ready: registered, and joined to `room` when one is given. On success
/// the agent is registered (the caller records that in the actor).
pub(super) async fn ready(
    app: &AppState,
    record: &AgentRecord,
    user: &UserId,
    room: Option<RoomEntry<'_>>,
) -> AgentResult<()> {
    if !record.registered {
        register(app, record).await?;
    }
    match room {
        Some(entry) if !app.directory.is_joined(entry.room, &record.slug) => {
            join(app, record, user, entry).await
        }
        _ => Ok(()),
    }
}

/// Registers the user and records that it is.
async fn register(app: &AppState, record: &AgentRecord) -> AgentResult<()> {
    let localpart = format!("{}{}", app.config.appservice.agent_prefix, record.slug);
    app.hs.register(&localpart).await?;
    app.writer
        .put_agent(AgentRecord {
            registered: true,
            ..record.clone()
        })
        .await?;
    tracing::info!(agent = %record.slug, "agent user registered");
    Ok(())
}

/// Joins `room` as `user`; when the homeserver refuses because the agent is not invited
/// and `joining` allows it, the sender bot invites it and it joins again. The membership is
/// recorded.
async fn join(
    app: &AppState,
    record: &AgentRecord,
    user: &UserId,
    entry: RoomEntry<'_>,
) -> AgentResult<()> {
    let RoomEntry { room, joining, via } = entry;
    let slug = &record.slug;
    match app.hs.join(user, room, via).await {
        Ok(()) => {}
        Err(e) if e.status() == Some(403) && joining == Joining::SenderBotInvites => {
            tracing::debug!(agent = %slug, room = %room, "join refused; inviting through the sender bot");
            app.hs.invite(app.ns.sender(), room, user).await.map_err(
                |invite_err: HomeserverError| {
                    tracing::info!(agent = %slug, room = %room, join = %e, invite = %invite_err, "cannot join");
                    e
                },
            )?;
            app.hs.join(user, room, via).await?;
        }
        Err(e) => return Err(e.into()),
    }
    app.writer
        .set_membership(MembershipChange {
            slug: slug.clone(),
            room_id: room.to_owned(),
            joined: true,
        })
        .await?;
    if !app.directory.is_encrypted(room) {
        learn_encryption(app, user, room).await?;
    }
    Ok(())
}

/// Whether a room just joined is encrypted: its encryption was set before the agent was
/// in it, so no transaction will say so. Recorded when it is; a failed look-up is logged
/// and the room taken as not encrypted (a later encrypted event corrects that).
async fn learn_encryption(app: &AppState, user: &UserId, room: &RoomId) -> AgentResult<()> {
    match app
        .hs
        .state_content(user, room, "m.room.encryption", "")
        .await
    {
        // An encryption state names its algorithm; anything else says nothing.
        Ok(content) if content["algorithm"].is_string() => {
            app.writer
                .write(WriteOp::RoomEncrypted(room.to_owned()))
                .await?;
        }
        Ok(_) => {}
        Err(e) if e.status() == Some(404) => {}
        Err(e) => {
            tracing::warn!(room = %room, error = %e, "cannot tell whether the room is encrypted");
        }
    }
    Ok(())
}
