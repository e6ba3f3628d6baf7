//! Room membership of an agent: joining (with the sender bot's invite as fallback when the
//! agent is not invited) and membership facts learnt from the homeserver.
use actix::prelude::*;
use ruma::{OwnedRoomId, RoomId, UserId};

use super::AgentActor;
use crate::{
    actors::error::AgentResult, ids::AgentSlug, matrix::HomeserverError, services::Services,
    store::MembershipChange,
};

/// Joins the agent to a room (used for accepted invites and provisioning).
#[derive(Message)]
#[rtype(result = "AgentResult<()>")]
pub struct JoinRoom {
    pub room: OwnedRoomId,
}

impl Handler<JoinRoom> for AgentActor {
    type Result = ResponseActFuture<Self, AgentResult<()>>;
    fn handle(&mut self, msg: JoinRoom, _: &mut Self::Context) -> Self::Result {
        let svc = self.svc.clone();
        let record = self.record();
        let user = self.user_id();
        let room = msg.room;
        let work = async move {
            super::ensure_registered(svc.clone(), record.clone()).await?;
            join_room(&svc, &record.slug, &user, &room).await?;
            Ok(room)
        };
        Box::pin(
            work.into_actor(self)
                .map(|res: AgentResult<OwnedRoomId>, act, _| {
                    let room = res?;
                    act.registered = true;
                    act.rooms().joined.insert(room);
                    Ok(())
                }),
        )
    }
}

/// Joins `room` as `user`; when the homeserver refuses because the agent is not invited,
/// the sender bot invites it and it joins again. The membership is recorded.
pub(super) async fn join_room(
    svc: &Services,
    slug: &AgentSlug,
    user: &UserId,
    room: &RoomId,
) -> AgentResult<()> {
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
    record_membership(svc, slug, room, true).await
}

/// Writes a membership to the directory and the store.
pub(super) async fn record_membership(
    svc: &Services,
    slug: &AgentSlug,
    room: &RoomId,
    joined: bool,
) -> AgentResult<()> {
    if joined {
        svc.directory.join(room, slug);
    } else {
        svc.directory.leave(room, slug);
    }
    svc.writer
        .set_membership(MembershipChange {
            slug: slug.clone(),
            room_id: room.to_owned(),
            joined,
        })
        .await?;
    Ok(())
}

/// The homeserver reported a membership change of this agent (already recorded in the
/// store and the directory by [`Hub::record_transaction`](crate::actors::Hub::record_transaction)).
#[derive(Message)]
#[rtype(result = "()")]
pub struct MembershipChanged {
    pub room: OwnedRoomId,
    pub joined: bool,
}

impl Handler<MembershipChanged> for AgentActor {
    type Result = ();
    fn handle(&mut self, msg: MembershipChanged, ctx: &mut Self::Context) {
        if msg.joined {
            self.rooms().joined.insert(msg.room);
        } else if let Some(rooms) = self.rooms.as_mut() {
            rooms.joined.remove(&msg.room);
            // Left or kicked: keeping a typing timer for that room would only fail.
            self.drop_typing(&msg.room, ctx);
            self.forget_rooms_if_idle();
        }
    }
}
