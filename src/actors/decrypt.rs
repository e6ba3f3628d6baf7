//! Encryption's part of a pushed transaction, before it is recorded: what the
//! transaction carries for the agents' crypto machines (to-device messages with room keys,
//! one-time-key counts, device list changes) goes to each agent's machine first, which
//! then sends what it must (replenished one-time keys, key queries) in the background; then each encrypted
//! room event delivered to agents is decrypted, once, by the first of its recipients'
//! machines that holds its room key, and recorded in the clear (`decrypted`). An event no
//! recipient can decrypt is recorded as it came (`encrypted`); when its key arrives in a
//! later transaction, [`super::late_keys`] adds its redelivery to that transaction. Nothing
//! here fails the transaction: what goes wrong is logged and counted, and the rest goes on.

use std::sync::Arc;

use futures_util::future::join_all;
use matrix_sdk_common::deserialized_responses::DecryptedRoomEvent;
use matrix_sdk_crypto::types::events::room::encrypted::EncryptedEvent;
use matrix_sdk_crypto::{
    store::types::RoomKeyInfo, DecryptionSettings, EncryptionSyncChanges, MegolmError, OlmMachine,
    TrustRequirement,
};
use ruma::{api::client::sync::sync_events::DeviceLists, serde::Raw, RoomId};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{agent::CryptoMachine, late_keys, AppState};
use crate::{
    e2ee::{
        open::MachineLease,
        pushed::{self, CryptoParts, ForAgent},
        requests, E2ee,
    },
    ids::AgentSlug,
    inbound::routing::{mark_mentions, Routed},
    metrics::METRICS,
    store::{EventDelivery, InboxEvent},
};

/// Agents do not verify devices: room keys are accepted from any device of a room member
/// (what a client does for unverified devices), and the sender is as the homeserver says.
fn settings() -> DecryptionSettings {
    DecryptionSettings {
        sender_device_trust_requirement: TrustRequirement::Untrusted,
    }
}

/// Feeds the transaction's crypto parts to the agents' machines, then decrypts its
/// encrypted deliveries in place.
pub async fn prepare(app: &AppState, e2ee: &E2ee, routed: &mut Routed, parts: CryptoParts<'_>) {
    for room in &routed.crypto_state_changed {
        e2ee.rooms.changed(room);
    }
    let deliveries = &routed.write.deliveries;
    let encrypted = deliveries
        .iter()
        .any(|d| d.event.event_type == "m.room.encrypted");
    if parts.one_time_key_counts.is_some() {
        e2ee.delivery.counts_seen();
    } else if deliveries
        .iter()
        .flat_map(|d| &d.recipients)
        .any(|(slug, _)| e2ee.open.is_open(slug))
    {
        e2ee.delivery.counts_missing();
    }
    if parts.is_empty() && !encrypted {
        return;
    }
    let sorted = pushed::sort(&parts, &app.ns);
    if sorted.probe_seen {
        e2ee.delivery.probe_seen();
    }
    for problem in &sorted.skipped {
        METRICS
            .e2ee_failures
            .with_label_values(&["unreadable"])
            .inc();
        tracing::warn!(txn_id = %routed.write.txn_id, problem, "skipped a part of a transaction for encryption");
    }
    let device_lists = &sorted.device_lists;
    // A device list change concerns every open machine (each ignores users it does not
    // track); the agents with parts of their own get it with them.
    let changed = !device_lists.changed.is_empty() || !device_lists.left.is_empty();
    let others = match changed {
        true => e2ee.open.lend_all(|slug| sorted.agents.contains_key(slug)),
        false => Vec::new(),
    };
    join_all(others.iter().map(|machine| async move {
        take(machine, ForAgent::default(), device_lists).await;
    }))
    .await;
    let keys = join_all(sorted.agents.into_iter().map(|(slug, part)| async move {
        let keys = receive(app, &slug, part, device_lists).await;
        (slug, keys)
    }))
    .await;
    for delivery in &mut routed.write.deliveries {
        if delivery.event.event_type == "m.room.encrypted" {
            decrypt(app, delivery).await;
        }
    }
    let late = late_keys::redeliveries(app, keys).await;
    routed.write.deliveries.extend(late);
}

/// One agent's part: into its machine, then whatever the machine has to send. Answers the
/// room keys the part brought.
async fn receive(
    app: &AppState,
    slug: &AgentSlug,
    part: ForAgent,
    device_lists: &DeviceLists,
) -> Vec<RoomKeyInfo> {
    let Some(machine) = machine(app, slug).await else {
        return Vec::new();
    };
    let keys = take(&machine, part, device_lists).await;
    // What the machine now has to send (one-time keys to replenish, keys to query) goes
    // out beside the transaction, not before its answer: decrypting needs none of it.
    let (hs, slug) = (app.hs.clone(), slug.clone());
    actix_rt::spawn(async move {
        if let Err(e) = requests::flush(&machine, &hs).await {
            METRICS.e2ee_failures.with_label_values(&["requests"]).inc();
            tracing::warn!(agent = %slug, error = %e, "the crypto machine's requests failed; sent again later");
        }
    });
    keys
}

/// A transaction's part into a machine (for an open machine without a part of its own,
/// the device list changes alone: the users concerned are queried again before it next
/// encrypts). Answers the room keys it brought.
async fn take(
    machine: &OlmMachine,
    part: ForAgent,
    device_lists: &DeviceLists,
) -> Vec<RoomKeyInfo> {
    let changes = EncryptionSyncChanges {
        to_device_events: part.to_device,
        changed_devices: device_lists,
        one_time_keys_counts: &part.one_time_key_counts,
        unused_fallback_keys: part.unused_fallback_keys.as_deref(),
        next_batch_token: None,
    };
    match machine.receive_sync_changes(changes, &settings()).await {
        Ok((_, keys)) => keys,
        Err(e) => {
            METRICS
                .e2ee_failures
                .with_label_values(&["to_device"])
                .inc();
            tracing::warn!(user = %machine.user_id(), error = %e, "a transaction's part not taken by the crypto machine");
            Vec::new()
        }
    }
}

/// The agent's machine, or `None` (logged) when it cannot be opened now.
async fn machine(app: &AppState, slug: &AgentSlug) -> Option<MachineLease> {
    match app.ask(slug, CryptoMachine).await {
        Ok(Ok(machine)) => Some(machine),
        Ok(Err(e)) | Err(e) => {
            METRICS.e2ee_failures.with_label_values(&["machine"]).inc();
            tracing::warn!(agent = %slug, error = %e, "no crypto machine for the agent now");
            None
        }
    }
}

/// The clear event's type and content, as the decrypted event JSON holds them.
#[derive(Deserialize)]
struct Clear {
    #[serde(rename = "type")]
    kind: String,
    content: Box<RawValue>,
}

/// `slug`'s machine's attempt at decrypting `raw`, or `None` when it has no machine now.
pub(super) async fn try_decrypt(
    app: &AppState,
    slug: &AgentSlug,
    raw: &Raw<EncryptedEvent>,
    room: &RoomId,
) -> Option<Result<DecryptedRoomEvent, MegolmError>> {
    let machine = machine(app, slug).await?;
    Some(machine.decrypt_room_event(raw, room, &settings()).await)
}

/// Decrypts `delivery` with the first recipient's machine that can, replacing its event by
/// the clear one.
async fn decrypt(app: &AppState, delivery: &mut EventDelivery) {
    let ev = delivery.event.clone();
    let raw: Raw<EncryptedEvent> = match encrypted_event_json(&ev) {
        Some(raw) => raw,
        None => return,
    };
    let recipients: Vec<AgentSlug> = delivery.recipients.iter().map(|(s, _)| s.clone()).collect();
    for slug in &recipients {
        let Some(attempt) = try_decrypt(app, slug, &raw, &ev.room_id).await else {
            continue;
        };
        match attempt {
            Ok(decrypted) => {
                if let Some(clear) = clear_event(&ev, decrypted.event.json().get(), false) {
                    mark_message_mentions(app, &clear, &mut delivery.recipients);
                    delivery.event = Arc::new(clear);
                    METRICS.e2ee_events.with_label_values(&["decrypted"]).inc();
                }
                return;
            }
            Err(MegolmError::MissingRoomKey(_)) => continue,
            Err(e) => {
                METRICS.e2ee_failures.with_label_values(&["decrypt"]).inc();
                tracing::warn!(agent = %slug, event_id = %ev.event_id, error = %e, "cannot decrypt an event");
            }
        }
    }
    METRICS
        .e2ee_events
        .with_label_values(&["undecrypted"])
        .inc();
}

/// The clear form of the encrypted `ev` from the event JSON a machine decrypted, or `None`
/// (counted and logged) when that is not an event.
pub(super) fn clear_event(
    ev: &InboxEvent,
    decrypted: &str,
    redelivered: bool,
) -> Option<InboxEvent> {
    match serde_json::from_str::<Clear>(decrypted) {
        Ok(clear) => Some(InboxEvent {
            room_id: ev.room_id.clone(),
            event_id: ev.event_id.clone(),
            sender: ev.sender.clone(),
            event_type: clear.kind,
            content: clear.content,
            origin_server_ts: ev.origin_server_ts,
            decrypted: true,
            redelivered,
            json_members: Default::default(),
        }),
        Err(e) => {
            METRICS.e2ee_failures.with_label_values(&["decrypt"]).inc();
            tracing::warn!(event_id = %ev.event_id, error = %e, "a decrypted event is not an event");
            None
        }
    }
}

/// Mention flags of `recipients` from a clear message's content, as for one in the clear.
pub(super) fn mark_message_mentions(
    app: &AppState,
    clear: &InboxEvent,
    recipients: &mut [(AgentSlug, bool)],
) {
    if clear.event_type == "m.room.message" {
        mark_mentions(&clear.content, recipients, &app.ns, &app.directory);
    }
}

/// The event as the machine reads it (the envelope with its encrypted content).
pub(super) fn encrypted_event_json(ev: &InboxEvent) -> Option<Raw<EncryptedEvent>> {
    let json = serde_json::json!({
        "type": "m.room.encrypted",
        "event_id": ev.event_id,
        "room_id": ev.room_id,
        "sender": ev.sender,
        "origin_server_ts": ev.origin_server_ts,
        "content": ev.content,
    });
    serde_json::value::to_raw_value(&json)
        .ok()
        .map(Raw::from_json)
}
