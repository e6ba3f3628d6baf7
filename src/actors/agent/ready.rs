//! The one "ready for this room" step every operation of an agent goes through: the
//! agent's user registered (once, recorded in the store), and, for an operation in a
//! room, the agent joined to it. Whether it is joined is the directory's to say (the one
//! owner of membership facts); a join is recorded in the store, and the after-commit step
//! gives it to the directory before the join's write returns.

use ruma::{RoomId, UserId};

use crate::{
    actors::error::AgentResult, matrix::HomeserverError, services::Services, store::AgentRecord,
    store::MembershipChange,
};

/// Makes the agent ready: registered, and joined to `room` when one is given. On success
/// the agent is registered (the caller records that in the actor).
pub(super) async fn ready(
    svc: &Services,
    record: &AgentRecord,
    user: &UserId,
    room: Option<&RoomId>,
) -> AgentResult<()> {
    if !record.registered {
        register(svc, record).await?;
    }
    match room {
        Some(room) if !svc.directory.is_joined(room, &record.slug) => {
            join(svc, record, user, room).await
        }
        _ => Ok(()),
    }
}

/// Registers the user and records that it is.
async fn register(svc: &Services, record: &AgentRecord) -> AgentResult<()> {
    let localpart = format!("{}{}", svc.config.appservice.agent_prefix, record.slug);
    svc.hs.register(&localpart).await?;
    svc.writer
        .put_agent(AgentRecord {
            registered: true,
            ..record.clone()
        })
        .await?;
    tracing::info!(agent = %record.slug, "agent user registered");
    Ok(())
}

/// Joins `room` as `user`; when the homeserver refuses because the agent is not invited,
/// the sender bot invites it and it joins again. The membership is recorded.
async fn join(
    svc: &Services,
    record: &AgentRecord,
    user: &UserId,
    room: &RoomId,
) -> AgentResult<()> {
    let slug = &record.slug;
    match svc.hs.join(user, room).await {
        Ok(()) => {}
        Err(e) if e.status() == Some(403) => {
            tracing::debug!(agent = %slug, room = %room, "join refused; inviting through the sender bot");
            svc.hs.invite(svc.ns.sender(), room, user).await.map_err(
                |invite_err: HomeserverError| {
                    tracing::info!(agent = %slug, room = %room, join = %e, invite = %invite_err, "cannot join");
                    e
                },
            )?;
            svc.hs.join(user, room).await?;
        }
        Err(e) => return Err(e.into()),
    }
    svc.writer
        .set_membership(MembershipChange {
            slug: slug.clone(),
            room_id: room.to_owned(),
            joined: true,
        })
        .await?;
    Ok(())
}
