//! What the tests need around `OlmMachine`s: sinks, and the homeserver's part of key upload,
//! key query, key claim and to-device delivery, played from what the machines send.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use matrix_sdk_crypto::{
    types::{events::room::encrypted::EncryptedEvent, requests::AnyOutgoingRequest},
    DecryptionSettings, EncryptionSettings, EncryptionSyncChanges, OlmMachine, TrustRequirement,
};
use matrix_sdk_store_encryption::StoreCipher;
use ruma::{
    api::client::{
        keys::{claim_keys, get_keys, upload_keys},
        sync::sync_events::DeviceLists,
        to_device::send_event_to_device,
    },
    serde::Raw,
    DeviceId, OneTimeKeyAlgorithm, RoomId, UInt, UserId,
};
use serde_json::json;

use crate::e2ee::store::{CryptoRow, CryptoRows, DurableStore};

/// A sink keeping rows as the database would: the last row for a kind+key wins.
#[derive(Debug, Default)]
pub struct MemorySink {
    rows: Mutex<BTreeMap<(String, String), Vec<u8>>>,
}

impl MemorySink {
    /// The stored rows, as the database would hand them to `DurableStore::restore`.
    pub fn rows(&self) -> Vec<(String, String, Vec<u8>)> {
        let rows = self.rows.lock().unwrap();
        rows.iter()
            .map(|((kind, key), value)| (kind.clone(), key.clone(), value.clone()))
            .collect()
    }
}

#[async_trait::async_trait]
impl CryptoRows for MemorySink {
    async fn write(&self, rows: Vec<CryptoRow>) -> Result<(), String> {
        let mut stored = self.rows.lock().unwrap();
        for row in rows {
            let id = (row.kind.to_owned(), row.key);
            match row.value {
                Some(value) => stored.insert(id, value),
                None => stored.remove(&id),
            };
        }
        Ok(())
    }
}

/// A sink whose database is down.
#[derive(Debug)]
pub struct FailingSink;

#[async_trait::async_trait]
impl CryptoRows for FailingSink {
    async fn write(&self, _rows: Vec<CryptoRow>) -> Result<(), String> {
        Err("database unavailable".to_owned())
    }
}

/// An agent device: its machine, and the sink and cipher of its store.
pub struct Agent {
    pub machine: OlmMachine,
    pub sink: Arc<MemorySink>,
    pub cipher: Arc<StoreCipher>,
}

impl Agent {
    /// A new device on an empty store.
    pub async fn start(user_id: &UserId, device_id: &DeviceId) -> Self {
        let sink = Arc::new(MemorySink::default());
        let cipher = Arc::new(StoreCipher::new().unwrap());
        let store = DurableStore::new(sink.clone(), cipher.clone());
        let machine = OlmMachine::with_store(user_id, device_id, store, None)
            .await
            .unwrap();
        Self {
            machine,
            sink,
            cipher,
        }
    }

    /// The same device after a restart: the machine dropped, then rebuilt from the stored rows.
    pub async fn restarted(self) -> Self {
        let Self {
            machine,
            sink,
            cipher,
        } = self;
        let (user_id, device_id) = (machine.user_id().to_owned(), machine.device_id().to_owned());
        drop(machine);
        let store = DurableStore::restore(sink.rows(), sink.clone(), cipher.clone())
            .await
            .unwrap();
        let machine = OlmMachine::with_store(&user_id, &device_id, store, None)
            .await
            .unwrap();
        Self {
            machine,
            sink,
            cipher,
        }
    }

    /// How many key uploads the machine wants to send.
    pub async fn pending_key_uploads(&self) -> usize {
        let requests = self.machine.outgoing_requests().await.unwrap();
        requests
            .iter()
            .filter(|r| matches!(r.request(), AnyOutgoingRequest::KeysUpload(_)))
            .count()
    }
}

/// Sends the machine's key upload and answers it with the count of the one-time keys it
/// carried; returns the upload.
pub async fn upload_keys(machine: &OlmMachine) -> upload_keys::v3::Request {
    let requests = machine.outgoing_requests().await.unwrap();
    let (request_id, upload) = requests
        .iter()
        .find_map(|request| match request.request() {
            AnyOutgoingRequest::KeysUpload(upload) => Some((request.request_id(), upload.clone())),
            _ => None,
        })
        .expect("the machine has keys to upload");
    let count = UInt::try_from(upload.one_time_keys.len()).unwrap();
    let counts = BTreeMap::from([(OneTimeKeyAlgorithm::SignedCurve25519, count)]);
    let response = upload_keys::v3::Response::new(counts);
    machine
        .mark_request_as_sent(request_id, &response)
        .await
        .unwrap();
    upload
}

/// Has `machine` track the owners of the uploads and answers its key queries with their
/// uploaded device keys.
pub async fn learn_devices(
    machine: &OlmMachine,
    uploads: &[(&OlmMachine, &upload_keys::v3::Request)],
) {
    let mut response = get_keys::v3::Response::new();
    for (owner, upload) in uploads {
        let device_keys = upload.device_keys.clone().unwrap();
        let devices = BTreeMap::from([(owner.device_id().to_owned(), device_keys)]);
        response
            .device_keys
            .insert(owner.user_id().to_owned(), devices);
    }
    machine
        .update_tracked_users(uploads.iter().map(|(owner, _)| owner.user_id()))
        .await
        .unwrap();
    for request in machine.outgoing_requests().await.unwrap() {
        if let AnyOutgoingRequest::KeysQuery(_) = request.request() {
            machine
                .mark_request_as_sent(request.request_id(), &response)
                .await
                .unwrap();
        }
    }
}

/// Has `claimer` claim one of `owner`'s uploaded one-time keys, creating an Olm session.
pub async fn claim_one_time_key(
    claimer: &OlmMachine,
    owner: &OlmMachine,
    owner_upload: &upload_keys::v3::Request,
) {
    let missing = claimer
        .get_missing_sessions([owner.user_id()].into_iter())
        .await
        .unwrap();
    let (request_id, _) = missing.expect("no Olm session with the owner yet");
    let (key_id, key) = owner_upload.one_time_keys.iter().next().unwrap();
    let keys = BTreeMap::from([(key_id.clone(), key.clone())]);
    let devices = BTreeMap::from([(owner.device_id().to_owned(), keys)]);
    let response =
        claim_keys::v3::Response::new(BTreeMap::from([(owner.user_id().to_owned(), devices)]));
    claimer
        .mark_request_as_sent(&request_id, &response)
        .await
        .unwrap();
}

/// Shares the room key of `room` from `sender` with `recipient` and delivers it; returns how
/// many room keys the recipient took in.
pub async fn send_room_key(sender: &OlmMachine, room: &RoomId, recipient: &OlmMachine) -> usize {
    let users = [recipient.user_id()].into_iter();
    let requests = sender
        .share_room_key(room, users, EncryptionSettings::default())
        .await
        .unwrap();
    let mut events = Vec::new();
    for request in &requests {
        for content in request.messages.values().flat_map(BTreeMap::values) {
            let event_type = request.event_type.to_string();
            let event =
                json!({ "sender": sender.user_id(), "type": event_type, "content": content });
            events.push(Raw::new(&event).unwrap().cast_unchecked());
        }
        let response = send_event_to_device::v3::Response::new();
        sender
            .mark_request_as_sent(&request.txn_id, &response)
            .await
            .unwrap();
    }
    let (changed_devices, counts) = (DeviceLists::new(), BTreeMap::new());
    let changes = EncryptionSyncChanges {
        to_device_events: events,
        changed_devices: &changed_devices,
        one_time_keys_counts: &counts,
        unused_fallback_keys: None,
        next_batch_token: None,
    };
    let (_, room_keys) = recipient
        .receive_sync_changes(changes, &decryption_settings())
        .await
        .unwrap();
    room_keys.len()
}

/// Encrypts a text message with `body` into a room event as a homeserver would deliver it.
pub async fn encrypt(sender: &OlmMachine, room: &RoomId, body: &str) -> Raw<EncryptedEvent> {
    let content = Raw::new(&json!({ "msgtype": "m.text", "body": body }))
        .unwrap()
        .cast_unchecked();
    let encrypted = sender
        .encrypt_room_event_raw(room, "m.room.message", &content)
        .await
        .unwrap();
    let event = json!({
        "type": "m.room.encrypted",
        "event_id": format!("${body}"),
        "sender": sender.user_id(),
        "origin_server_ts": 1_700_000_000_000_u64,
        "room_id": room,
        "content": encrypted.content,
    });
    Raw::new(&event).unwrap().cast_unchecked()
}

/// The Megolm session an event was encrypted with.
pub fn megolm_session_id(event: &Raw<EncryptedEvent>) -> String {
    let content: serde_json::Value = event.get_field("content").unwrap().unwrap();
    content["session_id"].as_str().unwrap().to_owned()
}

/// Decrypts a room event and returns its body.
pub async fn decrypt_body(
    recipient: &OlmMachine,
    room: &RoomId,
    event: &Raw<EncryptedEvent>,
) -> String {
    let decrypted = recipient
        .decrypt_room_event(event, room, &decryption_settings())
        .await
        .unwrap();
    let content: serde_json::Value = decrypted.event.get_field("content").unwrap().unwrap();
    content["body"].as_str().unwrap().to_owned()
}

fn decryption_settings() -> DecryptionSettings {
    DecryptionSettings {
        sender_device_trust_requirement: TrustRequirement::Untrusted,
    }
}
