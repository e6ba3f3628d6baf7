//! Crypto rows and store keys of end-to-end encryption in PostgreSQL: rows are read through
//! the pool (when an agent's machine is restored) and written by the group commit
//! ([`super::batch`]); a store key is kept once (the first replica's counts).

use ruma::RoomId;
use sqlx::{PgConnection, PgPool, Row};

use super::{utf8, StoreResult};
use crate::{
    ids::AgentSlug,
    store::{plan::Plan, InboxEvent, StoredEntry, AWAITING_KEYS_LIMIT},
};

/// The rows to keep (`$1` slugs, `$2` kinds, `$3` keys, `$4` values) and to delete (`$5`
/// slugs, `$6` kinds, `$7` keys). The plan gives each row once, either kept or deleted.
const WRITE_ITEMS: &str = "WITH kept AS ( \
        INSERT INTO e2ee_items AS i (slug, kind, item_key, value) \
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[]) \
        ON CONFLICT (slug, kind, item_key) DO UPDATE SET value = excluded.value) \
    DELETE FROM e2ee_items e \
    USING unnest($5::text[], $6::text[], $7::text[]) AS d(slug, kind, item_key) \
    WHERE e.slug = d.slug AND e.kind = d.kind AND e.item_key = d.item_key";

/// Those of `slugs` with an account row (through the primary key: slug, then kind).
pub(super) async fn enrolled(pool: &PgPool, slugs: &[AgentSlug]) -> StoreResult<Vec<AgentSlug>> {
    let slugs: Vec<&str> = slugs.iter().map(AgentSlug::as_str).collect();
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT slug FROM e2ee_items WHERE kind = 'account' AND slug = ANY($1)")
            .bind(&slugs)
            .fetch_all(pool)
            .await?;
    rows.into_iter().map(super::slug_of).collect()
}

/// Writes the plan's crypto rows (nothing when it has none).
pub(super) async fn write(conn: &mut PgConnection, plan: &Plan<'_>) -> StoreResult<()> {
    if plan.crypto_kept.is_empty() && plan.crypto_deleted.is_empty() {
        return Ok(());
    }
    let kept = &plan.crypto_kept;
    let deleted = &plan.crypto_deleted;
    sqlx::query(WRITE_ITEMS)
        .bind(kept.iter().map(|r| r.0).collect::<Vec<_>>())
        .bind(kept.iter().map(|r| r.1).collect::<Vec<_>>())
        .bind(kept.iter().map(|r| r.2).collect::<Vec<_>>())
        .bind(kept.iter().map(|r| r.3).collect::<Vec<_>>())
        .bind(deleted.iter().map(|r| r.0).collect::<Vec<_>>())
        .bind(deleted.iter().map(|r| r.1).collect::<Vec<_>>())
        .bind(deleted.iter().map(|r| r.2).collect::<Vec<_>>())
        .execute(conn)
        .await?;
    Ok(())
}

pub(super) async fn items(
    pool: &PgPool,
    slug: &AgentSlug,
) -> StoreResult<Vec<(String, String, Vec<u8>)>> {
    let rows = sqlx::query("SELECT kind, item_key, value FROM e2ee_items WHERE slug = $1")
        .bind(slug.as_str())
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

pub(super) async fn key(pool: &PgPool, name: &str) -> StoreResult<Option<Vec<u8>>> {
    Ok(
        sqlx::query_scalar("SELECT value FROM e2ee_keys WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?,
    )
}

pub(super) async fn put_key_once(pool: &PgPool, name: &str, value: &[u8]) -> StoreResult<Vec<u8>> {
    sqlx::query("INSERT INTO e2ee_keys (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(name)
        .bind(value)
        .execute(pool)
        .await?;
    Ok(
        sqlx::query_scalar("SELECT value FROM e2ee_keys WHERE name = $1")
            .bind(name)
            .fetch_one(pool)
            .await?,
    )
}

/// Encrypted events of `room` still stored as they came, of the Megolm `sessions`
/// (through the partial index `events_awaiting_keys`).
pub(super) async fn awaiting_keys(
    pool: &PgPool,
    room: &RoomId,
    sessions: &[&str],
) -> StoreResult<Vec<InboxEvent>> {
    let rows = sqlx::query(
        "SELECT room_id, event_id, sender, event_type, content, origin_server_ts FROM events \
         WHERE room_id = $1 AND event_type = 'm.room.encrypted'::bytea AND NOT decrypted \
         AND ((content::jsonb) ->> 'session_id') = ANY($2) \
         ORDER BY id LIMIT $3",
    )
    .bind(room.as_str())
    .bind(sessions)
    .bind(i64::from(AWAITING_KEYS_LIMIT))
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            let (id, kind) = (utf8(r.get(1), "event id")?, utf8(r.get(3), "event type")?);
            StoredEntry::event_as_it_came(r.get(0), id, r.get(2), kind, r.get(4), r.get(5))
        })
        .collect()
}
