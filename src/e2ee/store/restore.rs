//! Rebuilding the [`MemoryStore`] of a [`DurableStore`](super::DurableStore) from stored rows.

use std::{collections::BTreeMap, sync::Arc};

use matrix_sdk_crypto::{
    olm::{
        InboundGroupSession, OlmMessageHash, OutboundGroupSession, PickledAccount,
        PickledCrossSigningIdentity, PickledInboundGroupSession, PickledOutboundGroupSession,
        PickledSession, PrivateCrossSigningIdentity, Session,
    },
    store::{
        types::{Changes, DeviceChanges, IdentityChanges, PendingChanges, TrackedUser},
        CryptoStore, CryptoStoreError, MemoryStore,
    },
    Account, DeviceData, UserIdentityData,
};
use matrix_sdk_store_encryption::StoreCipher;
use ruma::OwnedRoomId;

use super::{
    rows::{kind, open, BackedUpTo, RoomSettingsOf, Withheld},
    DurableStoreError,
};

/// A memory store rebuilt from rows, and the private identity the rows held.
pub(super) struct Restored {
    pub memory: MemoryStore,
    pub private_identity: Option<PrivateCrossSigningIdentity>,
}

/// Everything the stored rows hold, opened.
#[derive(Default)]
struct Opened {
    account: Option<PickledAccount>,
    private_identity: Option<PickledCrossSigningIdentity>,
    sessions: Vec<PickledSession>,
    inbound_group_sessions: Vec<PickledInboundGroupSession>,
    backed_up_to: BTreeMap<(OwnedRoomId, String), String>,
    outbound_group_sessions: Vec<PickledOutboundGroupSession>,
    devices: Vec<DeviceData>,
    identities: Vec<UserIdentityData>,
    tracked_users: Vec<TrackedUser>,
    message_hashes: Vec<OlmMessageHash>,
    withheld: Vec<Withheld>,
    room_settings: Vec<RoomSettingsOf>,
    custom_values: Vec<(String, Vec<u8>)>,
}

impl Opened {
    /// Opens one stored row into its place; an unknown kind is an error.
    fn add(
        &mut self,
        cipher: &StoreCipher,
        row_kind: &str,
        key: String,
        value: &[u8],
    ) -> Result<(), DurableStoreError> {
        match row_kind {
            kind::ACCOUNT => self.account = Some(open(cipher, row_kind, &key, value)?),
            kind::PRIVATE_IDENTITY => {
                self.private_identity = Some(open(cipher, row_kind, &key, value)?)
            }
            kind::SESSION => self.sessions.push(open(cipher, row_kind, &key, value)?),
            kind::INBOUND_GROUP_SESSION => self
                .inbound_group_sessions
                .push(open(cipher, row_kind, &key, value)?),
            kind::INBOUND_GROUP_SESSION_BACKUP => {
                let item: BackedUpTo = open(cipher, row_kind, &key, value)?;
                self.backed_up_to
                    .insert((item.room_id, item.session_id), item.version);
            }
            kind::OUTBOUND_GROUP_SESSION => self
                .outbound_group_sessions
                .push(open(cipher, row_kind, &key, value)?),
            kind::DEVICE => self.devices.push(open(cipher, row_kind, &key, value)?),
            kind::USER_IDENTITY => self.identities.push(open(cipher, row_kind, &key, value)?),
            kind::TRACKED_USER => self
                .tracked_users
                .push(open(cipher, row_kind, &key, value)?),
            kind::MESSAGE_HASH => self
                .message_hashes
                .push(open(cipher, row_kind, &key, value)?),
            kind::WITHHELD => self.withheld.push(open(cipher, row_kind, &key, value)?),
            kind::ROOM_SETTINGS => self
                .room_settings
                .push(open(cipher, row_kind, &key, value)?),
            kind::CUSTOM_VALUE => {
                let custom = open(cipher, row_kind, &key, value)?;
                self.custom_values.push((key, custom));
            }
            unknown => return Err(DurableStoreError::UnknownKind(unknown.to_owned())),
        }
        Ok(())
    }
}

/// Rebuilds a memory store from stored rows: the account first (Olm and outbound group sessions
/// are unpickled with its device keys and identity keys), then everything else.
pub(super) async fn rebuild(
    rows: Vec<(String, String, Vec<u8>)>,
    cipher: &StoreCipher,
) -> Result<Restored, CryptoStoreError> {
    let mut opened = Opened::default();
    for (row_kind, key, value) in rows {
        opened.add(cipher, &row_kind, key, &value)?;
    }

    let private_identity = opened
        .private_identity
        .map(PrivateCrossSigningIdentity::from_pickle)
        .transpose()
        .map_err(CryptoStoreError::backend)?;
    let mut changes = Changes {
        private_identity: private_identity.clone(),
        message_hashes: opened.message_hashes,
        devices: DeviceChanges {
            new: opened.devices,
            ..Default::default()
        },
        identities: IdentityChanges {
            new: opened.identities,
            ..Default::default()
        },
        ..Default::default()
    };
    for Withheld {
        room_id,
        session_id,
        entry,
    } in opened.withheld
    {
        changes
            .withheld_session_info
            .entry(room_id)
            .or_default()
            .insert(session_id, entry);
    }
    for RoomSettingsOf { room_id, settings } in opened.room_settings {
        changes.room_settings.insert(room_id, settings);
    }

    let memory = MemoryStore::new();
    match opened.account {
        Some(pickle) => {
            let account = Account::from_pickle(pickle)?;
            let own_device_stored = changes.devices.new.iter().any(|device| {
                device.user_id() == account.user_id() && device.device_id() == account.device_id()
            });
            if !own_device_stored {
                // The memory store needs our own device (rows lost?): rebuild it from the
                // account; only its local trust flag, which `OlmMachine` set, is not restored.
                changes.devices.new.push(DeviceData::from_account(&account));
            }
            let device_keys = account.device_keys();
            let device_id = account.device_id().to_owned();
            let identity_keys = Arc::new(account.identity_keys());
            for pickle in opened.sessions {
                let session = Session::from_pickle(device_keys.clone(), pickle)
                    .map_err(CryptoStoreError::backend)?;
                changes.sessions.push(session);
            }
            for pickle in opened.outbound_group_sessions {
                let session = OutboundGroupSession::from_pickle(
                    device_id.clone(),
                    identity_keys.clone(),
                    pickle,
                )?;
                changes.outbound_group_sessions.push(session);
            }
            memory
                .save_pending_changes(PendingChanges {
                    account: Some(account),
                })
                .await?;
        }
        None if !opened.sessions.is_empty() || !opened.outbound_group_sessions.is_empty() => {
            return Err(CryptoStoreError::AccountUnset);
        }
        None => {}
    }
    memory.save_changes(changes).await?;

    let mut inbound_by_backup: BTreeMap<Option<String>, Vec<InboundGroupSession>> = BTreeMap::new();
    for pickle in opened.inbound_group_sessions {
        let session = InboundGroupSession::from_pickle(pickle)?;
        let id = (
            session.room_id().to_owned(),
            session.session_id().to_owned(),
        );
        inbound_by_backup
            .entry(opened.backed_up_to.remove(&id))
            .or_default()
            .push(session);
    }
    for (version, sessions) in inbound_by_backup {
        memory
            .save_inbound_group_sessions(sessions, version.as_deref())
            .await?;
    }

    let tracked: Vec<_> = opened
        .tracked_users
        .iter()
        .map(|u| (&*u.user_id, u.dirty))
        .collect();
    memory.save_tracked_users(&tracked).await?;
    for (key, value) in opened.custom_values {
        memory.set_custom_value(&key, value).await?;
    }
    Ok(Restored {
        memory,
        private_identity,
    })
}
