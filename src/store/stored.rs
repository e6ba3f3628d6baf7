//! Rows as a backend reads them, checked into the store's types in one place for every
//! backend: what is not what the daemon wrote is [`StoreError::Corrupt`], naming the column.

use std::sync::Arc;

use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId};
use serde_json::value::RawValue;

use super::{InboxEntry, InboxEvent, StoreError, StoreResult};
use crate::tokens::{
    issued::{TokenId, TokenRecord},
    pattern::AgentPattern,
    scope::Scopes,
    TokenDigest,
};

/// An inbox entry's columns as a backend reads them, checked into an [`InboxEntry`] by
/// [`StoredEntry::check`] (one decoding for every backend).
pub struct StoredEntry {
    pub cursor: i64,
    pub mentioned: bool,
    pub room_id: String,
    pub event_id: String,
    pub sender: String,
    pub event_type: String,
    pub content: String,
    pub origin_server_ts: i64,
    pub decrypted: bool,
    pub redelivered: bool,
}

impl StoredEntry {
    /// The entry, or [`StoreError::Corrupt`] naming the column that does not hold what
    /// the daemon wrote.
    pub fn check(self) -> StoreResult<InboxEntry> {
        let (cursor, mentioned) = (self.cursor, self.mentioned);
        Ok(InboxEntry {
            cursor,
            mentioned,
            event: Arc::new(self.check_event()?),
        })
    }

    /// An event as it came (read outside any inbox: no cursor, not decrypted), checked.
    pub fn event_as_it_came(
        room_id: String,
        event_id: String,
        sender: String,
        event_type: String,
        content: String,
        origin_server_ts: i64,
    ) -> StoreResult<InboxEvent> {
        StoredEntry {
            cursor: 0,
            mentioned: false,
            room_id,
            event_id,
            sender,
            event_type,
            content,
            origin_server_ts,
            decrypted: false,
            redelivered: false,
        }
        .check_event()
    }

    /// The entry's event alone.
    pub fn check_event(self) -> StoreResult<InboxEvent> {
        let corrupt = |what: &str, e: &dyn std::fmt::Display| {
            StoreError::Corrupt(format!("inbox {what}: {e}"))
        };
        Ok(InboxEvent {
            room_id: OwnedRoomId::try_from(self.room_id).map_err(|e| corrupt("room id", &e))?,
            event_id: OwnedEventId::try_from(self.event_id).map_err(|e| corrupt("event id", &e))?,
            sender: OwnedUserId::try_from(self.sender).map_err(|e| corrupt("sender", &e))?,
            event_type: self.event_type,
            content: RawValue::from_string(self.content)
                .map_err(|e| corrupt("event content", &e))?,
            origin_server_ts: self.origin_server_ts,
            decrypted: self.decrypted,
            redelivered: self.redelivered,
            json_members: Default::default(),
        })
    }
}

/// An issued token's columns (`agents` as the JSON list of its patterns).
pub struct StoredToken {
    pub id: String,
    pub name: String,
    pub digest: Vec<u8>,
    pub scopes: String,
    pub agents: String,
    pub rate_per_s: Option<i64>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

impl StoredToken {
    /// The token record.
    pub fn check(self) -> StoreResult<TokenRecord> {
        let id = &self.id;
        let corrupt = |what: &str| StoreError::Corrupt(format!("token {id}: {what}"));
        let agents: Vec<String> =
            serde_json::from_str(&self.agents).map_err(|_| corrupt("agents"))?;
        Ok(TokenRecord {
            id: TokenId::parse(id).ok_or_else(|| corrupt("id"))?,
            digest: TokenDigest::from_bytes(&self.digest).ok_or_else(|| corrupt("digest"))?,
            scopes: Scopes::from_text(&self.scopes).ok_or_else(|| corrupt("scopes"))?,
            agents: agents
                .iter()
                .map(|p| AgentPattern::parse(p).map_err(|_| corrupt("agents")))
                .collect::<Result<_, _>>()?,
            rate_per_s: self
                .rate_per_s
                .map(|r| u32::try_from(r).map_err(|_| corrupt("rate")))
                .transpose()?,
            name: self.name,
            created_at: self.created_at,
            expires_at: self.expires_at,
        })
    }
}
