//! Room upgrades: an `m.room.tombstone` (state key `""`) in a room with agents names the
//! room that replaces it. The transaction records the upgrade (the directory then sends
//! new messages for the old room to the new one) and, for each agent in the old room,
//! the effect of joining the new one through the server of the user who upgraded.

use ruma::OwnedRoomId;
use serde::Deserialize;

use super::{agents_in, Envelope, Routed, SkipReason};
use crate::{
    inbound::directory::Directory,
    store::{Effect, RoomUpgrade},
};

/// The event type.
pub const TOMBSTONE: &str = "m.room.tombstone";

#[derive(Deserialize)]
struct TombstoneContent {
    replacement_room: OwnedRoomId,
}

/// Routes a tombstone of the room `ev` is in.
pub(super) fn tombstone(
    txn_id: &str,
    ev: &Envelope<'_>,
    directory: &Directory,
    routed: &mut Routed,
) {
    if ev.state_key != Some("") {
        return;
    }
    let replacement = match serde_json::from_str::<TombstoneContent>(ev.content.get()) {
        Ok(c) => c.replacement_room,
        Err(e) => {
            let error = format!("no valid replacement_room: {e}");
            let reason = SkipReason::BadContent;
            routed
                .skipped
                .note(txn_id, Some(ev.event_id), reason, &error);
            return;
        }
    };
    if replacement == ev.room_id {
        return;
    }
    let write = &mut routed.write;
    let agents = agents_in(directory, ev.room_id, &write.memberships);
    if agents.is_empty() {
        return;
    }
    tracing::info!(room = %ev.room_id, %replacement, agents = agents.len(), "room upgraded; its agents follow");
    for slug in agents {
        write.effects.push(Effect::FollowUpgrade {
            slug,
            from: ev.room_id.to_owned(),
            room: replacement.clone(),
            via: ev.sender.server_name().to_owned(),
        });
    }
    write.upgrades.push(RoomUpgrade {
        room_id: ev.room_id.to_owned(),
        replacement,
    });
}

#[cfg(test)]
mod tests {
    use serde_json::{json, value::RawValue};

    use super::*;
    use crate::{
        config::InboundConfig,
        ids::{AgentSlug, Namespaces},
        inbound::routing::{tests::route_both_ways, Pushed, Router},
        store::{fingerprint::FingerprintKey, MembershipChange},
    };

    fn route(dir: &Directory, events: &[serde_json::Value]) -> Routed {
        let raws: Vec<Box<RawValue>> = events
            .iter()
            .map(|v| serde_json::value::to_raw_value(v).unwrap())
            .collect();
        let refs: Vec<&RawValue> = raws.iter().map(|b| &**b).collect();
        let (key, inbound) = (FingerprintKey::derive("t"), InboundConfig::default());
        let ns = Namespaces::new("hs".try_into().unwrap(), "agent-", "mosaic-", "bot");
        let router = Router {
            key: &key,
            ns: &ns,
            directory: dir,
            inbound: &inbound,
            receive_ephemeral: false,
        };
        route_both_ways(&router, Pushed::default(), &refs)
    }

    fn tombstone(
        id: &str,
        room: &str,
        state_key: &str,
        content: serde_json::Value,
    ) -> serde_json::Value {
        json!({"event_id": id, "room_id": room, "sender": "@admin:other.example",
            "type": TOMBSTONE, "state_key": state_key, "origin_server_ts": 1, "content": content})
    }

    /// The agents of the old room follow through the upgrader's server, the upgrade is
    /// recorded, and the agents are told; rooms without agents, other state keys and a
    /// room replacing itself change nothing; a bad replacement is skipped.
    #[test]
    fn the_agents_of_a_tombstoned_room_follow_it() {
        let dir = Directory::default();
        for slug in ["a", "b"] {
            dir.apply(&MembershipChange {
                slug: AgentSlug::parse(slug).unwrap(),
                room_id: "!old".try_into().unwrap(),
                joined: true,
            });
        }
        let r = route(
            &dir,
            &[tombstone(
                "$t",
                "!old",
                "",
                json!({"replacement_room": "!new"}),
            )],
        );
        let followers: Vec<String> = r
            .write
            .effects
            .iter()
            .map(|e| match e {
                Effect::FollowUpgrade {
                    slug,
                    from,
                    room,
                    via,
                } => {
                    format!("{slug} {from} {room} {via}")
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            followers,
            ["a !old !new other.example", "b !old !new other.example"]
        );
        let upgrade = RoomUpgrade {
            room_id: "!old".try_into().unwrap(),
            replacement: "!new".try_into().unwrap(),
        };
        assert_eq!(r.write.upgrades, [upgrade]);
        assert_eq!(r.write.deliveries.len(), 1, "the agents are told");

        let ignored = route(
            &dir,
            &[
                tombstone("$1", "!elsewhere", "", json!({"replacement_room": "!new"})),
                tombstone("$2", "!old", "x", json!({"replacement_room": "!new"})),
                tombstone("$3", "!old", "", json!({"replacement_room": "!old"})),
            ],
        );
        assert!(ignored.write.effects.is_empty() && ignored.write.upgrades.is_empty());
        let bad = route(
            &dir,
            &[tombstone(
                "$4",
                "!old",
                "",
                json!({"replacement_room": "old"}),
            )],
        );
        assert_eq!(bad.skipped.of(SkipReason::BadContent), 1);
        assert!(bad.write.upgrades.is_empty());
    }
}
