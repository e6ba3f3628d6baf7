//! Crypto rows and store keys of end-to-end encryption in SQLite: rows are read through the
//! pool (when an agent's machine is restored) and written by the group commit
//! ([`super::batch`]); a store key is kept once, on the writing connection.

use ruma::RoomId;
use sqlx::{Row, SqlitePool};

use super::{StoreResult, Writer};
use crate::{
    ids::AgentSlug,
    store::{InboxEvent, StoreError, StoredEntry, AWAITING_KEYS_LIMIT},
};

pub(super) async fn items(
    pool: &SqlitePool,
    slug: &AgentSlug,
) -> StoreResult<Vec<(String, String, Vec<u8>)>> {
    let rows = sqlx::query("SELECT kind, item_key, value FROM e2ee_items WHERE slug = ?")
        .bind(slug.as_str())
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// Those of `slugs` with an account row (through the primary key: slug, then kind).
pub(super) async fn enrolled(
    pool: &SqlitePool,
    slugs: &[AgentSlug],
) -> StoreResult<Vec<AgentSlug>> {
    let slugs: Vec<&str> = slugs.iter().map(AgentSlug::as_str).collect();
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT slug FROM e2ee_items WHERE kind = 'account' \
         AND slug IN (SELECT value FROM json_each(?))",
    )
    .bind(serde_json::to_string(&slugs).map_err(|e| StoreError::Corrupt(e.to_string()))?)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(super::slug_of).collect()
}

pub(super) async fn key(pool: &SqlitePool, name: &str) -> StoreResult<Option<Vec<u8>>> {
    Ok(
        sqlx::query_scalar("SELECT value FROM e2ee_keys WHERE name = ?")
            .bind(name)
            .fetch_optional(pool)
            .await?,
    )
}

pub(super) async fn put_key_once(
    writer: &mut Writer,
    name: &str,
    value: &[u8],
) -> StoreResult<Vec<u8>> {
    sqlx::query("INSERT INTO e2ee_keys (name, value) VALUES (?, ?) ON CONFLICT DO NOTHING")
        .bind(name)
        .bind(value)
        .execute(&mut writer.conn)
        .await?;
    Ok(
        sqlx::query_scalar("SELECT value FROM e2ee_keys WHERE name = ?")
            .bind(name)
            .fetch_one(&mut writer.conn)
            .await?,
    )
}

/// `?` 1 room, `?` 2 sessions (a JSON array), `?` 3 limit; through the partial index
/// `events_awaiting_keys`.
pub(super) const AWAITING_KEYS: &str = "SELECT room_id, event_id, sender, event_type, content, \
    origin_server_ts FROM events \
    WHERE room_id = ? AND event_type = 'm.room.encrypted' AND decrypted = 0 \
    AND json_extract(content, '$.session_id') IN (SELECT value FROM json_each(?)) \
    ORDER BY id LIMIT ?";

/// Encrypted events of `room` still stored as they came, of the Megolm `sessions`.
pub(super) async fn awaiting_keys(
    pool: &SqlitePool,
    room: &RoomId,
    sessions: &[&str],
) -> StoreResult<Vec<InboxEvent>> {
    let rows = sqlx::query(AWAITING_KEYS)
        .bind(room.as_str())
        .bind(serde_json::to_string(sessions).map_err(|e| StoreError::Corrupt(e.to_string()))?)
        .bind(AWAITING_KEYS_LIMIT)
        .fetch_all(pool)
        .await?;
    rows.into_iter()
        .map(|r| {
            let (room, id, sender) = (r.get(0), r.get(1), r.get(2));
            StoredEntry::event_as_it_came(room, id, sender, r.get(3), r.get(4), r.get(5))
        })
        .collect()
}
