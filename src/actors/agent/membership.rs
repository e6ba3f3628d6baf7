//! Room membership of an agent: joining on request (accepted invites, provisioning) and
//! membership facts learnt from the homeserver. The facts themselves live in the
//! directory; the actor only reacts to them.
use actix::prelude::*;
use ruma::{OwnedRoomId, OwnedServerName};

use super::{
    ready::{ready, Joining, RoomEntry},
    AgentActor,
};
use crate::actors::error::AgentResult;

/// Joins the agent to a room (used for accepted invites and provisioning).
#[derive(Message)]
#[rtype(result = "AgentResult<()>")]
pub struct JoinRoom {
    pub room: OwnedRoomId,
    /// Accepted invites join by themselves (a refusal means the invite is gone);
    /// provisioning may have the sender bot invite.
    pub joining: Joining,
    /// A server to join through (see [`RoomEntry::via`]).
    pub via: Option<OwnedServerName>,
}

impl Handler<JoinRoom> for AgentActor {
    type Result = ResponseActFuture<Self, AgentResult<()>>;
    fn handle(&mut self, msg: JoinRoom, _: &mut Self::Context) -> Self::Result {
        let app = self.app.clone();
        let record = self.record();
        let user = self.user_id();
        let work = async move {
            let entry = RoomEntry {
                via: msg.via.as_deref(),
                ..RoomEntry::new(&msg.room, msg.joining)
            };
            ready(&app, &record, &user, Some(entry)).await
        };
        Box::pin(work.into_actor(self).map(|res, act, _| {
            res?;
            act.registered = true;
            Ok(())
        }))
    }
}

/// The homeserver reported a membership change of this agent (already recorded in the
/// store and the directory: [`AfterCommit`](crate::inbound::AfterCommit) sends this).
#[derive(Message)]
#[rtype(result = "()")]
pub struct MembershipChanged {
    pub room: OwnedRoomId,
    pub joined: bool,
}

impl Handler<MembershipChanged> for AgentActor {
    type Result = ();
    fn handle(&mut self, msg: MembershipChanged, ctx: &mut Self::Context) {
        if !msg.joined {
            // Left or kicked: keeping a typing timer for that room would only fail.
            self.drop_typing(&msg.room, ctx);
            self.forget_rooms_if_idle();
        }
    }
}
