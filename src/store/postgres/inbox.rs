//! Reading an agent's inbox from the store: entries after a cursor (with their events),
//! the newest cursor it has had, the floor retention left, and how many rows agents'
//! inboxes hold.

use sqlx::{PgPool, Row};

use super::{limit, utf8};
use crate::{
    ids::AgentSlug,
    store::{depths_in_order, InboxEntry, StoreResult, StoredEntry},
};

pub(super) async fn read_inbox(
    pool: &PgPool,
    slug: &AgentSlug,
    after: i64,
    n: u32,
) -> StoreResult<Vec<InboxEntry>> {
    let rows = sqlx::query(
        "SELECT i.seq, e.room_id, e.event_id, e.sender, e.event_type, e.content, \
         e.origin_server_ts, i.mentioned, e.decrypted, i.redelivered \
         FROM inbox i JOIN events e ON e.id = i.event_ref \
         WHERE i.slug = $1 AND i.seq > $2 ORDER BY i.seq LIMIT $3",
    )
    .bind(slug.as_str())
    .bind(after)
    .bind(limit(n))
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            StoredEntry {
                cursor: r.get(0),
                mentioned: r.get(7),
                room_id: r.get(1),
                event_id: utf8(r.get(2), "inbox event id")?,
                sender: r.get(3),
                event_type: utf8(r.get(4), "inbox event type")?,
                content: r.get(5),
                origin_server_ts: r.get(6),
                decrypted: r.get(8),
                redelivered: r.get(9),
            }
            .check()
        })
        .collect()
}

pub(super) async fn latest_cursor(pool: &PgPool, slug: &AgentSlug) -> StoreResult<i64> {
    // GREATEST skips NULLs: either part may be missing.
    let seq: Option<i64> = sqlx::query_scalar(
        "SELECT GREATEST((SELECT MAX(seq) FROM inbox WHERE slug = $1), \
         (SELECT pruned_through FROM inbox_floors WHERE slug = $1))",
    )
    .bind(slug.as_str())
    .fetch_one(pool)
    .await?;
    Ok(seq.unwrap_or(0))
}

pub(super) async fn inbox_floor(pool: &PgPool, slug: &AgentSlug) -> StoreResult<i64> {
    let floor: Option<i64> =
        sqlx::query_scalar("SELECT pruned_through FROM inbox_floors WHERE slug = $1")
            .bind(slug.as_str())
            .fetch_optional(pool)
            .await?;
    Ok(floor.unwrap_or(0))
}

/// Rows of each of `slugs`' inboxes: one query, an index range count per agent.
pub(super) async fn inbox_depths(pool: &PgPool, slugs: &[AgentSlug]) -> StoreResult<Vec<u64>> {
    if slugs.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<&str> = slugs.iter().map(AgentSlug::as_str).collect();
    let counted: Vec<(String, i64)> =
        sqlx::query_as("SELECT slug, COUNT(*) FROM inbox WHERE slug = ANY($1) GROUP BY slug")
            .bind(list)
            .fetch_all(pool)
            .await?;
    Ok(depths_in_order(slugs, counted))
}
