//! Client idempotency keys as the store keeps them: a send's key (per agent and room) with
//! what the request asked for and the event it made, and a provisioning's key with its
//! answer.

use ruma::{OwnedEventId, OwnedRoomId};

use crate::ids::AgentSlug;

/// A client idempotency key, scoped like a Matrix transaction id: per agent and room.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SentKey {
    pub slug: AgentSlug,
    pub room_id: OwnedRoomId,
    pub client_txn: String,
}

/// What a request with a client key asked for: the SHA-256 of its event type and content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestDigest([u8; 32]);

impl RequestDigest {
    pub fn of(event_type: &str, content: &[u8]) -> Self {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(event_type.as_bytes());
        h.update([0]);
        h.update(content);
        Self(h.finalize().into())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The stored form.
    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }

    /// Reads the stored form back.
    pub fn from_hex(s: &str) -> Option<Self> {
        let bytes = hex::decode(s).ok()?;
        bytes.try_into().ok().map(Self)
    }
}

/// A provisioning made with a client key: what it asked for, and its answer (JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionKey {
    pub txn_id: String,
    pub request: RequestDigest,
    pub answer: String,
}

/// An earlier send with a client key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRecord {
    pub request: RequestDigest,
    pub event_id: OwnedEventId,
}
