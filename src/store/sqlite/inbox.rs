//! Reading an agent's inbox from the store: entries after a cursor (with their events),
//! the newest cursor it has had, the floor retention left, and how many rows agents'
//! inboxes hold.

use sqlx::{Row, SqlitePool};

use super::super::{depths_in_order, InboxEntry, StoreResult, StoredEntry};
use crate::ids::AgentSlug;

pub(super) async fn read_inbox(
    pool: &SqlitePool,
    slug: &AgentSlug,
    after: i64,
    limit: u32,
) -> StoreResult<Vec<InboxEntry>> {
    let rows = sqlx::query(
        "SELECT i.seq, e.room_id, e.event_id, e.sender, e.event_type, e.content, e.origin_server_ts, i.mentioned, e.decrypted, i.redelivered \
         FROM inbox i JOIN events e ON e.id = i.event_ref \
         WHERE i.slug = ? AND i.seq > ? ORDER BY i.seq LIMIT ?",
    )
    .bind(slug.as_str())
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            StoredEntry {
                cursor: r.get(0),
                mentioned: r.get(7),
                room_id: r.get(1),
                event_id: r.get(2),
                sender: r.get(3),
                event_type: r.get(4),
                content: r.get(5),
                origin_server_ts: r.get(6),
                decrypted: r.get(8),
                redelivered: r.get(9),
            }
            .check()
        })
        .collect()
}

pub(super) async fn latest_cursor(pool: &SqlitePool, slug: &AgentSlug) -> StoreResult<i64> {
    let seq: Option<i64> = sqlx::query_scalar(
        "SELECT MAX(c) FROM (SELECT MAX(seq) AS c FROM inbox WHERE slug = ?1 \
         UNION ALL SELECT pruned_through FROM inbox_floors WHERE slug = ?1)",
    )
    .bind(slug.as_str())
    .fetch_one(pool)
    .await?;
    Ok(seq.unwrap_or(0))
}

pub(super) async fn inbox_floor(pool: &SqlitePool, slug: &AgentSlug) -> StoreResult<i64> {
    let floor: Option<i64> =
        sqlx::query_scalar("SELECT pruned_through FROM inbox_floors WHERE slug = ?")
            .bind(slug.as_str())
            .fetch_optional(pool)
            .await?;
    Ok(floor.unwrap_or(0))
}

/// Rows of each of `slugs`' inboxes: one query, an index range count per agent.
pub(super) async fn inbox_depths(pool: &SqlitePool, slugs: &[AgentSlug]) -> StoreResult<Vec<u64>> {
    if slugs.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<&str> = slugs.iter().map(AgentSlug::as_str).collect();
    let list = serde_json::to_string(&list).expect("strings serialise");
    let counted: Vec<(String, i64)> = sqlx::query_as(
        "SELECT slug, COUNT(*) FROM inbox WHERE slug IN (SELECT value FROM json_each(?)) \
         GROUP BY slug",
    )
    .bind(list)
    .fetch_all(pool)
    .await?;
    Ok(depths_in_order(slugs, counted))
}
