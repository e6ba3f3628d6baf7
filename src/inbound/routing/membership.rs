//! Membership events of the namespace's users: an agent's joins and leaves (facts for the
//! directory, applied once the transaction is recorded), and invites of agents and the
//! sender bot (accepted, or refused by `inbound.invite_allow`).

use ruma::{events::room::member::MembershipState, UserId};
use serde::Deserialize;

use super::{Envelope, Routed, SkipReason};
use crate::{
    config::InboundConfig,
    ids::Namespaces,
    store::{Effect, MembershipChange},
};

#[derive(Deserialize)]
struct MemberContent {
    membership: MembershipState,
}

/// Routes an `m.room.member` event whose state key may be an agent or the sender bot.
pub(super) fn member_event(
    txn_id: &str,
    ev: &Envelope<'_>,
    ns: &Namespaces,
    inbound: &InboundConfig,
    routed: &mut Routed,
) {
    let Some(target) = ev.state_key.and_then(|k| UserId::parse(k).ok()) else {
        let error = "the state key is not a user id";
        let reason = SkipReason::InvalidId;
        routed
            .skipped
            .note(txn_id, Some(ev.event_id), reason, error);
        return;
    };
    let membership = match serde_json::from_str::<MemberContent>(ev.content.get()) {
        Ok(c) => c.membership,
        Err(e) => {
            let error = format!("no valid membership: {e}");
            let reason = SkipReason::BadContent;
            routed
                .skipped
                .note(txn_id, Some(ev.event_id), reason, &error);
            return;
        }
    };
    let is_bot = target == *ns.sender();
    let slug = ns.agent_slug(&target);
    if !is_bot && slug.is_none() {
        return;
    }
    // The daemon's own invites (the sender bot provisioning a room or letting an agent in,
    // an agent inviting another) are never the policy's to refuse.
    let ours = || ev.sender == ns.sender() || ns.agent_slug(ev.sender).is_some();
    if membership == MembershipState::Invite && !ours() && !invite_allowed(ev.sender, inbound) {
        tracing::info!(invitee = %target, inviter = %ev.sender, room = %ev.room_id, "invite refused by inbound.invite_allow");
        routed.write.effects.push(Effect::RejectInvite {
            user: target.clone(),
            room: ev.room_id.to_owned(),
            inviter: ev.sender.to_owned(),
        });
        return;
    }
    let Some(slug) = slug else {
        if membership == MembershipState::Invite {
            routed.write.effects.push(Effect::BotJoin {
                room: ev.room_id.to_owned(),
            });
        }
        return;
    };
    match membership {
        MembershipState::Invite => {
            if inbound.auto_join {
                routed.write.effects.push(Effect::AcceptInvite {
                    slug,
                    room: ev.room_id.to_owned(),
                });
            } else {
                tracing::info!(agent = %slug, inviter = %ev.sender, room = %ev.room_id, "invite not accepted");
            }
        }
        MembershipState::Join => {
            routed.write.memberships.push(MembershipChange {
                slug,
                room_id: ev.room_id.to_owned(),
                joined: true,
            });
        }
        MembershipState::Leave | MembershipState::Ban => {
            routed.write.memberships.push(MembershipChange {
                slug,
                room_id: ev.room_id.to_owned(),
                joined: false,
            });
        }
        _ => {}
    }
}

/// Whether `inbound.invite_allow` names the inviter: `*`, its server (`:server`) or itself.
fn invite_allowed(inviter: &UserId, inbound: &InboundConfig) -> bool {
    inbound
        .invite_allow
        .iter()
        .any(|entry| match entry.strip_prefix(':') {
            _ if entry == "*" => true,
            Some(server) => inviter.server_name().as_str() == server,
            None => entry == inviter.as_str(),
        })
}
