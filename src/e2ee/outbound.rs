//! Encrypting what an agent sends into an encrypted room: the room's current state
//! ([`RoomStates`], kept between sends) tells who is in it (joined and invited users, whose
//! devices get the room key), how its key is rotated (`m.room.encryption`) and who may read
//! history (`m.room.history_visibility`);
//! the machine then tracks those users (querying their devices when new or changed),
//! claims one-time keys for devices it has no Olm session with, shares the room's Megolm
//! key with every device of theirs that lacks it (to-device, rotated as the room says),
//! and encrypts the event.

use matrix_sdk_crypto::{
    types::events::room::encrypted::RoomEncryptedEventContent, CollectStrategy, EncryptionSettings,
    OlmMachine,
};
use ruma::{events::AnyMessageLikeEventContent, serde::Raw, RoomId};
use serde_json::value::RawValue;

use super::{requests, room_state::RoomStates, E2eeError};
use crate::matrix::HomeserverClient;

/// `event_type` with `content`, encrypted for `room` by `machine` (the agent's, acting as
/// its user).
pub async fn encrypt(
    machine: &OlmMachine,
    hs: &HomeserverClient,
    states: &RoomStates,
    room: &RoomId,
    event_type: &str,
    content: &RawValue,
) -> Result<Raw<RoomEncryptedEventContent>, E2eeError> {
    let state = states.get(hs, machine.user_id(), room).await?;
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
        state.encryption.clone(),
        state.history_visibility.clone(),
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
