//! The rows of a [`DurableStore`](super::DurableStore): their kinds and keys, sealing an item
//! into a row and opening it again, and the rows each write produces.

use matrix_sdk_crypto::{
    olm::InboundGroupSession,
    store::types::{Changes, RoomKeyWithheldEntry, RoomSettings, TrackedUser},
    Account,
};
use matrix_sdk_store_encryption::{EncryptedValueBase64, StoreCipher};
use ruma::{OwnedRoomId, RoomId, UserId};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{CryptoRow, DurableStoreError};

/// The kinds of rows, i.e. the names a [`CryptoRow`] carries in `kind`.
pub mod kind {
    /// The Olm account (identity keys, one-time keys); key `"own"`.
    pub const ACCOUNT: &str = "account";
    /// The private cross-signing identity; key `"own"`.
    pub const PRIVATE_IDENTITY: &str = "private_identity";
    /// An Olm session; key `"<sender curve25519> <session id>"`.
    pub const SESSION: &str = "session";
    /// An inbound Megolm session; key `"<room id> <session id>"`.
    pub const INBOUND_GROUP_SESSION: &str = "inbound_group_session";
    /// The backup version an inbound session was backed up to; key `"<room id> <session id>"`.
    pub const INBOUND_GROUP_SESSION_BACKUP: &str = "inbound_group_session_backup";
    /// The outbound Megolm session of a room; key `"<room id>"`.
    pub const OUTBOUND_GROUP_SESSION: &str = "outbound_group_session";
    /// A device of some user (ours included); key `"<user id> <device id>"`.
    pub const DEVICE: &str = "device";
    /// A user's public cross-signing identity; key `"<user id>"`.
    pub const USER_IDENTITY: &str = "user_identity";
    /// A user whose devices are tracked, with the dirty flag; key `"<user id>"`.
    pub const TRACKED_USER: &str = "tracked_user";
    /// The hash of a decrypted Olm message (replay protection); key `"<sender key> <hash>"`.
    pub const MESSAGE_HASH: &str = "message_hash";
    /// An `m.room_key.withheld` we received; key `"<room id> <session id>"`.
    pub const WITHHELD: &str = "withheld";
    /// The encryption settings of a room; key `"<room id>"`.
    pub const ROOM_SETTINGS: &str = "room_settings";
    /// A custom value the crypto crate stores; key: the value's own key.
    pub const CUSTOM_VALUE: &str = "custom_value";
}

/// The key of the kinds that hold a single item.
const OWN: &str = "own";

/// A two-part row key, the parts joined by a space. Restoring never parses keys (every value
/// carries its own ids), so the space only keeps items apart; Matrix ids, base64 keys and
/// session ids do not contain one.
fn pair_key(first: impl std::fmt::Display, second: impl std::fmt::Display) -> String {
    format!("{first} {second}")
}

/// What is sealed: the item together with the row it belongs to, so a value moved to another row
/// is detected when opened.
#[derive(Serialize)]
struct Envelope<'a, T> {
    kind: &'a str,
    key: &'a str,
    item: &'a T,
}

#[derive(Deserialize)]
struct OpenedEnvelope<T> {
    kind: String,
    key: String,
    item: T,
}

fn json_error(kind: &str) -> impl FnOnce(serde_json::Error) -> DurableStoreError + '_ {
    move |source| DurableStoreError::Json {
        kind: kind.to_owned(),
        source,
    }
}

fn cipher_error(
    kind: &str,
) -> impl FnOnce(matrix_sdk_store_encryption::Error) -> DurableStoreError + '_ {
    move |source| DurableStoreError::Cipher {
        kind: kind.to_owned(),
        source,
    }
}

/// Seals `item` into the row `kind`/`key` (the cipher wipes the clear JSON once sealed).
fn seal<T: Serialize>(
    cipher: &StoreCipher,
    kind: &'static str,
    key: String,
    item: &T,
) -> Result<CryptoRow, DurableStoreError> {
    let clear = serde_json::to_vec(&Envelope {
        kind,
        key: &key,
        item,
    })
    .map_err(json_error(kind))?;
    let sealed = cipher
        .encrypt_value_base64_data(clear)
        .map_err(cipher_error(kind))?;
    let value = serde_json::to_vec(&sealed).map_err(json_error(kind))?;
    Ok(CryptoRow {
        kind,
        key,
        value: Some(value),
    })
}

/// Opens the sealed value of the row `kind`/`key` (the clear JSON is wiped once parsed).
pub(super) fn open<T: DeserializeOwned>(
    cipher: &StoreCipher,
    kind: &str,
    key: &str,
    value: &[u8],
) -> Result<T, DurableStoreError> {
    let sealed: EncryptedValueBase64 = serde_json::from_slice(value).map_err(json_error(kind))?;
    let clear = Zeroizing::new(
        cipher
            .decrypt_value_base64_data(sealed)
            .map_err(cipher_error(kind))?,
    );
    let opened: OpenedEnvelope<T> = serde_json::from_slice(&clear).map_err(json_error(kind))?;
    if opened.kind != kind || opened.key != key {
        return Err(DurableStoreError::Misplaced {
            kind: kind.to_owned(),
            key: key.to_owned(),
            sealed_kind: opened.kind,
            sealed_key: opened.key,
        });
    }
    Ok(opened.item)
}

fn deletion(kind: &'static str, key: String) -> CryptoRow {
    CryptoRow {
        kind,
        key,
        value: None,
    }
}

/// The row of an inbound group session's backup version.
#[derive(Serialize, Deserialize)]
pub(super) struct BackedUpTo {
    pub(super) room_id: OwnedRoomId,
    pub(super) session_id: String,
    pub(super) version: String,
}

/// The row of a withheld-key entry.
#[derive(Serialize, Deserialize)]
pub(super) struct Withheld {
    pub(super) room_id: OwnedRoomId,
    pub(super) session_id: String,
    pub(super) entry: RoomKeyWithheldEntry,
}

/// The row of a room's settings.
#[derive(Serialize, Deserialize)]
pub(super) struct RoomSettingsOf {
    pub(super) room_id: OwnedRoomId,
    pub(super) settings: RoomSettings,
}

pub(super) fn account_row(
    cipher: &StoreCipher,
    account: &Account,
) -> Result<CryptoRow, DurableStoreError> {
    seal(cipher, kind::ACCOUNT, OWN.to_owned(), &account.pickle())
}

pub(super) async fn inbound_group_session_row(
    cipher: &StoreCipher,
    session: &InboundGroupSession,
) -> Result<CryptoRow, DurableStoreError> {
    let key = pair_key(session.room_id(), session.session_id());
    seal(
        cipher,
        kind::INBOUND_GROUP_SESSION,
        key,
        &session.pickle().await,
    )
}

pub(super) fn backed_up_to_row(
    cipher: &StoreCipher,
    room_id: &RoomId,
    session_id: &str,
    version: &str,
) -> Result<CryptoRow, DurableStoreError> {
    let item = BackedUpTo {
        room_id: room_id.to_owned(),
        session_id: session_id.to_owned(),
        version: version.to_owned(),
    };
    seal(
        cipher,
        kind::INBOUND_GROUP_SESSION_BACKUP,
        pair_key(room_id, session_id),
        &item,
    )
}

pub(super) fn tracked_user_row(
    cipher: &StoreCipher,
    user_id: &UserId,
    dirty: bool,
) -> Result<CryptoRow, DurableStoreError> {
    let item = TrackedUser {
        user_id: user_id.to_owned(),
        dirty,
    };
    seal(cipher, kind::TRACKED_USER, user_id.to_string(), &item)
}

pub(super) fn custom_value_row(
    cipher: &StoreCipher,
    key: &str,
    value: Option<&Vec<u8>>,
) -> Result<CryptoRow, DurableStoreError> {
    match value {
        Some(value) => seal(cipher, kind::CUSTOM_VALUE, key.to_owned(), value),
        None => Ok(deletion(kind::CUSTOM_VALUE, key.to_owned())),
    }
}

/// The rows that persist what `changes` holds (its memory-only parts produce none).
pub(super) async fn rows_for_changes(
    cipher: &StoreCipher,
    changes: &Changes,
) -> Result<Vec<CryptoRow>, DurableStoreError> {
    let mut rows = Vec::new();
    if let Some(identity) = &changes.private_identity {
        rows.push(seal(
            cipher,
            kind::PRIVATE_IDENTITY,
            OWN.to_owned(),
            &identity.pickle().await,
        )?);
    }
    for session in &changes.sessions {
        let key = pair_key(session.sender_key().to_base64(), session.session_id());
        rows.push(seal(cipher, kind::SESSION, key, &session.pickle().await)?);
    }
    for session in &changes.inbound_group_sessions {
        rows.push(inbound_group_session_row(cipher, session).await?);
    }
    for session in &changes.outbound_group_sessions {
        let key = session.room_id().to_string();
        rows.push(seal(
            cipher,
            kind::OUTBOUND_GROUP_SESSION,
            key,
            &session.pickle().await,
        )?);
    }
    for device in changes.devices.new.iter().chain(&changes.devices.changed) {
        let key = pair_key(device.user_id(), device.device_id());
        rows.push(seal(cipher, kind::DEVICE, key, device)?);
    }
    for device in &changes.devices.deleted {
        rows.push(deletion(
            kind::DEVICE,
            pair_key(device.user_id(), device.device_id()),
        ));
    }
    for identity in changes
        .identities
        .new
        .iter()
        .chain(&changes.identities.changed)
    {
        rows.push(seal(
            cipher,
            kind::USER_IDENTITY,
            identity.user_id().to_string(),
            identity,
        )?);
    }
    for hash in &changes.message_hashes {
        rows.push(seal(
            cipher,
            kind::MESSAGE_HASH,
            pair_key(&hash.sender_key, &hash.hash),
            hash,
        )?);
    }
    for (room_id, entries) in &changes.withheld_session_info {
        for (session_id, entry) in entries {
            let item = Withheld {
                room_id: room_id.clone(),
                session_id: session_id.clone(),
                entry: entry.clone(),
            };
            rows.push(seal(
                cipher,
                kind::WITHHELD,
                pair_key(room_id, session_id),
                &item,
            )?);
        }
    }
    for (room_id, settings) in &changes.room_settings {
        let item = RoomSettingsOf {
            room_id: room_id.clone(),
            settings: settings.clone(),
        };
        rows.push(seal(
            cipher,
            kind::ROOM_SETTINGS,
            room_id.to_string(),
            &item,
        )?);
    }
    Ok(rows)
}
