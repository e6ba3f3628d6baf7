//! Room events as a homeserver pushes them in a transaction.

use serde_json::{json, Value};

/// `user` joins `room`.
pub fn member_join(event_id: &str, room: &str, user: &str) -> Value {
    json!({
        "event_id": event_id, "room_id": room, "sender": user, "type": "m.room.member",
        "state_key": user, "origin_server_ts": 1_700_000_000_000u64,
        "content": { "membership": "join" },
    })
}

/// `inviter` invites `invitee` into `room`.
pub fn member_invite(event_id: &str, room: &str, inviter: &str, invitee: &str) -> Value {
    json!({
        "event_id": event_id, "room_id": room, "sender": inviter, "type": "m.room.member",
        "state_key": invitee, "origin_server_ts": 1_700_000_000_000u64,
        "content": { "membership": "invite" },
    })
}

/// An `m.text` message from `sender` in `room`.
pub fn text_event(event_id: &str, room: &str, sender: &str, body: &str) -> Value {
    json!({
        "event_id": event_id, "room_id": room, "sender": sender, "type": "m.room.message",
        "origin_server_ts": 1_700_000_000_001u64,
        "content": { "msgtype": "m.text", "body": body },
    })
}
