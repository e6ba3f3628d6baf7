//! Encrypted events whose room key arrives after them. Such an event was recorded as it
//! came (`encrypted`); when a later transaction brings agents room keys, the events stored
//! encrypted in those rooms under those Megolm sessions are looked up, decrypted, and added
//! to that transaction as redeliveries: the store writes the clear event over the stored
//! one and gives it once more, marked `redelivered`, to each agent whose machine can
//! decrypt it (a key shared with a member after the event starts at a later message index,
//! so an agent that was not in the room then cannot). Recorded in the transaction's own
//! commit, so a crash before it loses nothing: the homeserver sends the transaction again.

use std::{collections::BTreeMap, sync::Arc};

use matrix_sdk_crypto::store::types::RoomKeyInfo;
use ruma::OwnedRoomId;

use super::{
    decrypt::{clear_event, encrypted_event_json, mark_message_mentions, try_decrypt},
    AppState,
};
use crate::{
    ids::AgentSlug,
    metrics::METRICS,
    store::{EventDelivery, InboxEvent},
};

/// The redeliveries the room keys of a transaction (per agent) make possible.
pub async fn redeliveries(
    app: &AppState,
    keys: Vec<(AgentSlug, Vec<RoomKeyInfo>)>,
) -> Vec<EventDelivery> {
    let mut out = Vec::new();
    for (room, arrived) in by_room(keys) {
        let sessions: Vec<&str> = arrived.sessions.iter().map(String::as_str).collect();
        let events = match app.store.awaiting_keys(&room, &sessions).await {
            Ok(events) => events,
            Err(e) => {
                METRICS
                    .e2ee_failures
                    .with_label_values(&["late_keys"])
                    .inc();
                tracing::warn!(room_id = %room, error = %e, "events awaiting keys not read; they stay encrypted");
                continue;
            }
        };
        for event in events {
            if let Some(delivery) = redeliver(app, &event, &arrived.agents).await {
                out.push(delivery);
            }
        }
    }
    out
}

/// The room keys of one room: their sessions and the agents that got them.
#[derive(Default)]
struct Arrived {
    sessions: Vec<String>,
    agents: Vec<AgentSlug>,
}

/// The keys grouped by room (in room order, each session and agent once).
fn by_room(keys: Vec<(AgentSlug, Vec<RoomKeyInfo>)>) -> BTreeMap<OwnedRoomId, Arrived> {
    let mut rooms: BTreeMap<OwnedRoomId, Arrived> = BTreeMap::new();
    for (slug, infos) in keys {
        for info in infos {
            let room = rooms.entry(info.room_id).or_default();
            if !room.sessions.contains(&info.session_id) {
                room.sessions.push(info.session_id);
            }
            if !room.agents.contains(&slug) {
                room.agents.push(slug.clone());
            }
        }
    }
    rooms
}

/// `event` decrypted, for the agents of `agents` whose machine can decrypt it; `None` when
/// none can.
async fn redeliver(
    app: &AppState,
    event: &InboxEvent,
    agents: &[AgentSlug],
) -> Option<EventDelivery> {
    let raw = encrypted_event_json(event)?;
    let mut clear = None;
    let mut recipients = Vec::new();
    for slug in agents {
        let Some(attempt) = try_decrypt(app, slug, &raw, &event.room_id).await else {
            continue;
        };
        match attempt {
            Ok(decrypted) => {
                if clear.is_none() {
                    clear = Some(clear_event(event, decrypted.event.json().get(), true)?);
                }
                recipients.push((slug.clone(), false));
            }
            // Not this agent's key, or only from a later message on.
            Err(e) => {
                tracing::debug!(agent = %slug, event_id = %event.event_id, error = %e, "a late key does not decrypt the event for this agent");
            }
        }
    }
    let clear = clear?;
    mark_message_mentions(app, &clear, &mut recipients);
    METRICS
        .e2ee_events
        .with_label_values(&["redelivered"])
        .inc();
    Some(EventDelivery {
        event: Arc::new(clear),
        recipients,
    })
}

#[cfg(test)]
mod tests {
    use matrix_sdk_crypto::types::EventEncryptionAlgorithm;
    use matrix_sdk_crypto::vodozemac::Curve25519PublicKey;

    use super::*;

    fn key(room: &str, session: &str) -> RoomKeyInfo {
        RoomKeyInfo {
            algorithm: EventEncryptionAlgorithm::MegolmV1AesSha2,
            room_id: room.try_into().unwrap(),
            sender_key: Curve25519PublicKey::from_bytes([7; 32]),
            session_id: session.into(),
        }
    }

    #[test]
    fn keys_are_grouped_by_room_with_each_session_and_agent_once() {
        let (a, b) = (
            AgentSlug::parse("a").unwrap(),
            AgentSlug::parse("b").unwrap(),
        );
        let rooms = by_room(vec![
            (a.clone(), vec![key("!r:x", "s1"), key("!q:x", "s9")]),
            (b.clone(), vec![key("!r:x", "s1"), key("!r:x", "s2")]),
            (a.clone(), vec![key("!r:x", "s2")]),
        ]);
        let r = &rooms[<&ruma::RoomId>::try_from("!r:x").unwrap()];
        assert_eq!(r.sessions, ["s1", "s2"]);
        assert_eq!(r.agents, [a.clone(), b]);
        let q = &rooms[<&ruma::RoomId>::try_from("!q:x").unwrap()];
        assert_eq!(
            (q.sessions.as_slice(), q.agents.as_slice()),
            (&["s9".to_string()][..], &[a][..])
        );
        assert_eq!(rooms.len(), 2);
    }
}
