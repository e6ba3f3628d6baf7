//! [`CryptoStore`] for [`DurableStore`]: writes persist their rows, then reach the memory store;
//! reads (and the memory-only writes listed in the module docs of [`super`]) go to the memory
//! store alone.

use std::collections::HashMap;

use async_trait::async_trait;
use matrix_sdk_common::cross_process_lock::CrossProcessLockGeneration;
use matrix_sdk_crypto::{
    olm::{
        InboundGroupSession, OlmMessageHash, OutboundGroupSession, PrivateCrossSigningIdentity,
        SenderDataType, Session,
    },
    store::{
        types::{
            BackupKeys, Changes, DehydratedDeviceKey, PendingChanges, RoomKeyCounts,
            RoomKeyWithheldEntry, RoomPendingKeyBundleDetails, RoomSettings,
            StoredRoomKeyBundleData, TrackedUser,
        },
        CryptoStore, CryptoStoreError,
    },
    vodozemac::Curve25519PublicKey,
    Account, DeviceData, GossipRequest, SecretInfo, UserIdentityData,
};
use ruma::{
    events::secret::request::SecretName, DeviceId, OwnedDeviceId, RoomId, TransactionId, UserId,
};
use zeroize::Zeroizing;

use super::{rows, DurableStore};

type Result<T, E = CryptoStoreError> = std::result::Result<T, E>;

#[async_trait]
impl CryptoStore for DurableStore {
    type Error = CryptoStoreError;

    // Writes that persist rows.

    async fn save_changes(&self, changes: Changes) -> Result<()> {
        let _order = self.write_order.lock().await;
        self.persist(rows::rows_for_changes(&self.cipher, &changes).await?)
            .await?;
        if let Some(identity) = &changes.private_identity {
            *self.private_identity.write().await = Some(identity.clone());
        }
        Ok(self.memory.save_changes(changes).await?)
    }

    async fn save_pending_changes(&self, changes: PendingChanges) -> Result<()> {
        // The memory store would forget its account on an empty change set; there is nothing to
        // persist or forget.
        let Some(account) = &changes.account else {
            return Ok(());
        };
        let _order = self.write_order.lock().await;
        let row = rows::account_row(&self.cipher, account)?;
        self.persist(vec![row]).await?;
        Ok(self.memory.save_pending_changes(changes).await?)
    }

    async fn save_inbound_group_sessions(
        &self,
        sessions: Vec<InboundGroupSession>,
        backed_up_to_version: Option<&str>,
    ) -> Result<()> {
        let _order = self.write_order.lock().await;
        let mut rows = Vec::new();
        for session in &sessions {
            rows.push(rows::inbound_group_session_row(&self.cipher, session).await?);
            if let Some(version) = backed_up_to_version {
                let (room_id, session_id) = (session.room_id(), session.session_id());
                rows.push(rows::backed_up_to_row(
                    &self.cipher,
                    room_id,
                    session_id,
                    version,
                )?);
            }
        }
        self.persist(rows).await?;
        Ok(self
            .memory
            .save_inbound_group_sessions(sessions, backed_up_to_version)
            .await?)
    }

    async fn mark_inbound_group_sessions_as_backed_up(
        &self,
        backup_version: &str,
        room_and_session_ids: &[(&RoomId, &str)],
    ) -> Result<()> {
        let _order = self.write_order.lock().await;
        let mut rows = Vec::new();
        for &(room_id, session_id) in room_and_session_ids {
            // A copy: the memory store marks its own in `mark_..._as_backed_up` below.
            let Some(session) = self
                .memory
                .get_inbound_group_session(room_id, session_id)
                .await?
            else {
                continue;
            };
            session.mark_as_backed_up();
            rows.push(rows::inbound_group_session_row(&self.cipher, &session).await?);
            rows.push(rows::backed_up_to_row(
                &self.cipher,
                room_id,
                session_id,
                backup_version,
            )?);
        }
        self.persist(rows).await?;
        Ok(self
            .memory
            .mark_inbound_group_sessions_as_backed_up(backup_version, room_and_session_ids)
            .await?)
    }

    async fn save_tracked_users(&self, users: &[(&UserId, bool)]) -> Result<()> {
        let _order = self.write_order.lock().await;
        let rows = users
            .iter()
            .map(|&(user_id, dirty)| rows::tracked_user_row(&self.cipher, user_id, dirty))
            .collect::<Result<Vec<_>, _>>()?;
        self.persist(rows).await?;
        Ok(self.memory.save_tracked_users(users).await?)
    }

    async fn set_custom_value(&self, key: &str, value: Vec<u8>) -> Result<()> {
        let _order = self.write_order.lock().await;
        let row = rows::custom_value_row(&self.cipher, key, Some(&value))?;
        self.persist(vec![row]).await?;
        Ok(self.memory.set_custom_value(key, value).await?)
    }

    async fn remove_custom_value(&self, key: &str) -> Result<()> {
        let _order = self.write_order.lock().await;
        let row = rows::custom_value_row(&self.cipher, key, None)?;
        self.persist(vec![row]).await?;
        Ok(self.memory.remove_custom_value(key).await?)
    }

    // Memory-only writes.

    async fn reset_backup_state(&self) -> Result<()> {
        // The memory store keeps nothing to reset (it remembers backup versions per session).
        Ok(self.memory.reset_backup_state().await?)
    }

    async fn delete_dehydrated_device_pickle_key(&self) -> Result<()> {
        Ok(self.memory.delete_dehydrated_device_pickle_key().await?)
    }

    async fn delete_outgoing_secret_requests(&self, request_id: &TransactionId) -> Result<()> {
        Ok(self
            .memory
            .delete_outgoing_secret_requests(request_id)
            .await?)
    }

    async fn delete_secrets_from_inbox(&self, secret_name: &SecretName) -> Result<()> {
        Ok(self.memory.delete_secrets_from_inbox(secret_name).await?)
    }

    async fn try_take_leased_lock(
        &self,
        lease_duration_ms: u32,
        key: &str,
        holder: &str,
    ) -> Result<Option<CrossProcessLockGeneration>> {
        Ok(self
            .memory
            .try_take_leased_lock(lease_duration_ms, key, holder)
            .await?)
    }

    async fn close(&self) -> Result<()> {
        Ok(self.memory.close().await?)
    }

    async fn reopen(&self) -> Result<()> {
        Ok(self.memory.reopen().await?)
    }

    // Reads.

    async fn load_identity(&self) -> Result<Option<PrivateCrossSigningIdentity>> {
        // Not from the memory store: see `DurableStore::private_identity`.
        Ok(self.private_identity.read().await.clone())
    }

    async fn load_account(&self) -> Result<Option<Account>> {
        Ok(self.memory.load_account().await?)
    }

    async fn get_sessions(&self, sender_key: &str) -> Result<Option<Vec<Session>>> {
        Ok(self.memory.get_sessions(sender_key).await?)
    }

    async fn get_inbound_group_session(
        &self,
        room_id: &RoomId,
        session_id: &str,
    ) -> Result<Option<InboundGroupSession>> {
        Ok(self
            .memory
            .get_inbound_group_session(room_id, session_id)
            .await?)
    }

    async fn get_withheld_info(
        &self,
        room_id: &RoomId,
        session_id: &str,
    ) -> Result<Option<RoomKeyWithheldEntry>> {
        Ok(self.memory.get_withheld_info(room_id, session_id).await?)
    }

    async fn get_withheld_sessions_by_room_id(
        &self,
        room_id: &RoomId,
    ) -> Result<Vec<RoomKeyWithheldEntry>> {
        Ok(self
            .memory
            .get_withheld_sessions_by_room_id(room_id)
            .await?)
    }

    async fn get_inbound_group_sessions(&self) -> Result<Vec<InboundGroupSession>> {
        Ok(self.memory.get_inbound_group_sessions().await?)
    }

    async fn inbound_group_session_counts(
        &self,
        backup_version: Option<&str>,
    ) -> Result<RoomKeyCounts> {
        Ok(self
            .memory
            .inbound_group_session_counts(backup_version)
            .await?)
    }

    async fn get_inbound_group_sessions_by_room_id(
        &self,
        room_id: &RoomId,
    ) -> Result<Vec<InboundGroupSession>> {
        Ok(self
            .memory
            .get_inbound_group_sessions_by_room_id(room_id)
            .await?)
    }

    async fn get_inbound_group_sessions_for_device_batch(
        &self,
        curve_key: Curve25519PublicKey,
        sender_data_type: SenderDataType,
        after_session_id: Option<String>,
        limit: usize,
    ) -> Result<Vec<InboundGroupSession>> {
        Ok(self
            .memory
            .get_inbound_group_sessions_for_device_batch(
                curve_key,
                sender_data_type,
                after_session_id,
                limit,
            )
            .await?)
    }

    async fn inbound_group_sessions_for_backup(
        &self,
        backup_version: &str,
        limit: usize,
    ) -> Result<Vec<InboundGroupSession>> {
        Ok(self
            .memory
            .inbound_group_sessions_for_backup(backup_version, limit)
            .await?)
    }

    async fn load_backup_keys(&self) -> Result<BackupKeys> {
        Ok(self.memory.load_backup_keys().await?)
    }

    async fn load_dehydrated_device_pickle_key(&self) -> Result<Option<DehydratedDeviceKey>> {
        Ok(self.memory.load_dehydrated_device_pickle_key().await?)
    }

    async fn get_outbound_group_session(
        &self,
        room_id: &RoomId,
    ) -> Result<Option<OutboundGroupSession>> {
        Ok(self.memory.get_outbound_group_session(room_id).await?)
    }

    async fn load_tracked_users(&self) -> Result<Vec<TrackedUser>> {
        Ok(self.memory.load_tracked_users().await?)
    }

    async fn get_device(
        &self,
        user_id: &UserId,
        device_id: &DeviceId,
    ) -> Result<Option<DeviceData>> {
        Ok(self.memory.get_device(user_id, device_id).await?)
    }

    async fn get_user_devices(
        &self,
        user_id: &UserId,
    ) -> Result<HashMap<OwnedDeviceId, DeviceData>> {
        Ok(self.memory.get_user_devices(user_id).await?)
    }

    async fn get_own_device(&self) -> Result<DeviceData> {
        Ok(self.memory.get_own_device().await?)
    }

    async fn get_user_identity(&self, user_id: &UserId) -> Result<Option<UserIdentityData>> {
        Ok(self.memory.get_user_identity(user_id).await?)
    }

    async fn is_message_known(&self, message_hash: &OlmMessageHash) -> Result<bool> {
        Ok(self.memory.is_message_known(message_hash).await?)
    }

    async fn get_outgoing_secret_requests(
        &self,
        request_id: &TransactionId,
    ) -> Result<Option<GossipRequest>> {
        Ok(self.memory.get_outgoing_secret_requests(request_id).await?)
    }

    async fn get_secret_request_by_info(
        &self,
        secret_info: &SecretInfo,
    ) -> Result<Option<GossipRequest>> {
        Ok(self.memory.get_secret_request_by_info(secret_info).await?)
    }

    async fn get_unsent_secret_requests(&self) -> Result<Vec<GossipRequest>> {
        Ok(self.memory.get_unsent_secret_requests().await?)
    }

    async fn get_secrets_from_inbox(
        &self,
        secret_name: &SecretName,
    ) -> Result<Vec<Zeroizing<String>>> {
        Ok(self.memory.get_secrets_from_inbox(secret_name).await?)
    }

    async fn get_room_settings(&self, room_id: &RoomId) -> Result<Option<RoomSettings>> {
        Ok(self.memory.get_room_settings(room_id).await?)
    }

    async fn get_received_room_key_bundle_data(
        &self,
        room_id: &RoomId,
        user_id: &UserId,
    ) -> Result<Option<StoredRoomKeyBundleData>> {
        Ok(self
            .memory
            .get_received_room_key_bundle_data(room_id, user_id)
            .await?)
    }

    async fn get_pending_key_bundle_details_for_room(
        &self,
        room_id: &RoomId,
    ) -> Result<Option<RoomPendingKeyBundleDetails>> {
        Ok(self
            .memory
            .get_pending_key_bundle_details_for_room(room_id)
            .await?)
    }

    async fn get_all_rooms_pending_key_bundles(&self) -> Result<Vec<RoomPendingKeyBundleDetails>> {
        Ok(self.memory.get_all_rooms_pending_key_bundles().await?)
    }

    async fn has_downloaded_all_room_keys(&self, room_id: &RoomId) -> Result<bool> {
        Ok(self.memory.has_downloaded_all_room_keys(room_id).await?)
    }

    async fn get_custom_value(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.memory.get_custom_value(key).await?)
    }

    async fn next_batch_token(&self) -> Result<Option<String>> {
        Ok(self.memory.next_batch_token().await?)
    }

    async fn get_size(&self) -> Result<Option<usize>> {
        Ok(self.memory.get_size().await?)
    }
}
