//! Provisioning under a client key (`txn_id`): the same key never makes two rooms, also
//! across a restart or a lost answer. The homeserver itself guarantees it: a keyed room
//! always claims an alias (the client's, or one derived from the key), which only one room
//! can have, so `createRoom` can be repeated safely; its create event carries a marker of
//! key and request, so a room found under the alias is known to be this request's. The
//! answer is recorded under the key once the room is ready.

use ruma::{OwnedRoomId, RoomAliasId};
use serde_json::{json, Value};

use super::provision::{ProvisionError, ProvisionRequest, Provisioned};
use crate::{
    actors::AppState,
    store::{ProvisionKey, RequestDigest},
};

/// The key in `m.room.create` content that marks a keyed room.
const MARKER: &str = "org.mosaic_as.provision";

pub(super) struct Keyed {
    txn_id: String,
    request: RequestDigest,
}

impl Keyed {
    pub fn new(txn_id: &str, req: &ProvisionRequest) -> Self {
        let asked = json!({
            "name": req.name, "alias": req.alias, "topic": req.topic, "invite": req.invite,
            "space_id": req.space_id, "agents": req.agents,
        });
        let bytes = serde_json::to_vec(&asked).expect("JSON serialises");
        Self {
            txn_id: txn_id.to_owned(),
            request: RequestDigest::of("provision", &bytes),
        }
    }

    fn conflict(&self) -> ProvisionError {
        ProvisionError::IdempotencyConflict(self.txn_id.clone())
    }

    /// What the key answered before: the same answer for the same request, a conflict for
    /// another.
    pub async fn recorded(&self, app: &AppState) -> Result<Option<Provisioned>, ProvisionError> {
        let Some(key) = app.store.provision_key(&self.txn_id).await? else {
            return Ok(None);
        };
        if key.request != self.request {
            return Err(self.conflict());
        }
        let answer = serde_json::from_str(&key.answer)
            .map_err(|e| crate::store::StoreError::Corrupt(format!("provision key answer: {e}")))?;
        Ok(Some(answer))
    }

    /// The hash of the key (what rooms show of it).
    fn key_hash(&self) -> String {
        let digest = RequestDigest::of("provision-key", self.txn_id.as_bytes());
        hex::encode(&digest.as_bytes()[..8])
    }

    /// The alias name of a keyed request that names none (the prefix is added).
    pub fn alias_name(&self) -> String {
        format!("key-{}", self.key_hash())
    }

    /// The marker for the room's `creation_content`.
    pub fn creation_content(&self) -> Value {
        json!({ MARKER: { "key": self.key_hash(), "request": self.request.to_hex() } })
    }

    /// After `M_ROOM_IN_USE`: the room under `alias` when it was made for this key, a
    /// conflict when it was made for this key with another request, `None` when it is
    /// someone else's.
    pub async fn adopt(
        &self,
        app: &AppState,
        alias: &RoomAliasId,
    ) -> Result<Option<OwnedRoomId>, ProvisionError> {
        let Some(room) = app.hs.room_of_alias(alias).await? else {
            return Ok(None);
        };
        let create = match app
            .hs
            .state_content(app.ns.sender(), &room, "m.room.create", "")
            .await
        {
            Ok(content) => content,
            // The sender bot cannot read it: not a room it made.
            Err(e) if e.status() == Some(403) || e.status() == Some(404) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let marker = &create[MARKER];
        if marker["key"] != self.key_hash().as_str() {
            return Ok(None);
        }
        if marker["request"] != self.request.to_hex().as_str() {
            return Err(self.conflict());
        }
        tracing::info!(room = %room, "keyed provisioning found its room from an earlier attempt");
        Ok(Some(room))
    }

    /// Records the answer under the key.
    pub async fn record(&self, app: &AppState, answer: &Provisioned) -> Result<(), ProvisionError> {
        let key = ProvisionKey {
            txn_id: self.txn_id.clone(),
            request: self.request,
            answer: serde_json::to_string(answer).expect("answers serialise"),
        };
        Ok(app.store.put_provision_key(&key).await?)
    }
}
