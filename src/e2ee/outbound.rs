//! Encrypting what an agent sends into an encrypted room: the room's current state tells
//! who is in it (joined and invited users, whose devices get the room key), how its key is
//! rotated (`m.room.encryption`) and who may read history (`m.room.history_visibility`);
//! the machine then tracks those users (querying their devices when new or changed),
//! claims one-time keys for devices it has no Olm session with, shares the room's Megolm
//! key with every device of theirs that lacks it (to-device, rotated as the room says),
//! and encrypts the event.

use matrix_sdk_crypto::{
    types::events::room::encrypted::RoomEncryptedEventContent, CollectStrategy, EncryptionSettings,
    OlmMachine,
};
use ruma::{
    events::{
        room::{encryption::RoomEncryptionEventContent, history_visibility::HistoryVisibility},
        AnyMessageLikeEventContent,
    },
    serde::Raw,
    OwnedUserId, RoomId,
};
use serde::Deserialize;
use serde_json::{value::RawValue, Value};

use super::{requests, E2eeError};
use crate::matrix::{HomeserverClient, HomeserverError};

/// `event_type` with `content`, encrypted for `room` by `machine` (the agent's, acting as
/// its user).
pub async fn encrypt(
    machine: &OlmMachine,
    hs: &HomeserverClient,
    room: &RoomId,
    event_type: &str,
    content: &RawValue,
) -> Result<Raw<RoomEncryptedEventContent>, E2eeError> {
    let room_state = hs.room_state(machine.user_id(), room).await?;
    let state = RoomCryptoState::read(&room_state)?;
    let members = || state.members.iter().map(|u| u.as_ref());
    machine.update_tracked_users(members()).await?;
    requests::flush(machine, hs).await?;
    if let Some((id, claim)) = machine.get_missing_sessions(members()).await? {
        let answer = hs
            .call_as_device("keys_claim", machine.user_id(), machine.device_id(), claim)
            .await?;
        machine.mark_request_as_sent(&id, &answer).await?;
    }
    let settings = EncryptionSettings::new(
        state.encryption,
        state.history_visibility,
        CollectStrategy::AllDevices,
    );
    for request in machine.share_room_key(room, members(), settings).await? {
        let answer = requests::to_device(hs, machine, &request).await?;
        machine
            .mark_request_as_sent(&request.txn_id, &answer)
            .await?;
    }
    let content: Raw<AnyMessageLikeEventContent> = Raw::from_json(content.to_owned());
    let encrypted = machine
        .encrypt_room_event_raw(room, event_type, &content)
        .await?;
    Ok(encrypted.content)
}

/// What of a room's state encryption needs.
struct RoomCryptoState {
    members: Vec<OwnedUserId>,
    encryption: RoomEncryptionEventContent,
    history_visibility: HistoryVisibility,
}

#[derive(Deserialize)]
struct StateEvent {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    state_key: String,
    content: Value,
}

impl RoomCryptoState {
    /// Reads `/state`'s answer; a room without an algorithm in its encryption state is not
    /// one to encrypt for.
    fn read(state: &Value) -> Result<Self, E2eeError> {
        let bad = |what: &str| {
            E2eeError::Homeserver(HomeserverError::BadResponse(format!("room state: {what}")))
        };
        let events: Vec<StateEvent> = Vec::deserialize(state).map_err(|e| bad(&e.to_string()))?;
        let mut members = Vec::new();
        let mut encryption = None;
        let mut history_visibility = HistoryVisibility::Shared;
        for ev in events {
            match ev.kind.as_str() {
                "m.room.member" => {
                    let membership = ev.content["membership"].as_str();
                    if matches!(membership, Some("join" | "invite")) {
                        if let Ok(user) = OwnedUserId::try_from(ev.state_key) {
                            members.push(user);
                        }
                    }
                }
                "m.room.encryption" if ev.state_key.is_empty() => {
                    encryption = serde_json::from_value(ev.content).ok();
                }
                "m.room.history_visibility" if ev.state_key.is_empty() => {
                    if let Some(v) = ev.content["history_visibility"].as_str() {
                        history_visibility = HistoryVisibility::from(v);
                    }
                }
                _ => {}
            }
        }
        Ok(Self {
            members,
            encryption: encryption.ok_or_else(|| bad("no m.room.encryption algorithm"))?,
            history_visibility,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_room_state_names_members_rotation_and_visibility() {
        let state = json!([
            {"type": "m.room.member", "state_key": "@a:hs", "content": {"membership": "join"}},
            {"type": "m.room.member", "state_key": "@b:hs", "content": {"membership": "invite"}},
            {"type": "m.room.member", "state_key": "@c:hs", "content": {"membership": "leave"}},
            {"type": "m.room.encryption", "state_key": "",
             "content": {"algorithm": "m.megolm.v1.aes-sha2", "rotation_period_msgs": 10}},
            {"type": "m.room.history_visibility", "state_key": "",
             "content": {"history_visibility": "joined"}},
            {"type": "m.room.name", "state_key": "", "content": {"name": "x"}},
        ]);
        let s = RoomCryptoState::read(&state).unwrap();
        assert_eq!(s.members, ["@a:hs", "@b:hs"]);
        assert_eq!(s.encryption.rotation_period_msgs, Some(10u32.into()));
        assert_eq!(s.history_visibility, HistoryVisibility::Joined);

        let plain = json!([{"type": "m.room.member", "state_key": "@a:hs",
                            "content": {"membership": "join"}}]);
        assert!(RoomCryptoState::read(&plain).is_err());
    }
}
