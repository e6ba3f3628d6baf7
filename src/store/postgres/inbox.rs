//! Reading an agent's inbox from the store: entries after a cursor (with their events),
//! the newest cursor it has had, and the floor retention left.

use std::sync::Arc;

use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId};
use serde_json::value::RawValue;
use sqlx::{PgPool, Row};

use super::{limit, utf8};
use crate::{
    ids::AgentSlug,
    store::{InboxEntry, InboxEvent, StoreError, StoreResult},
};

pub(super) async fn read_inbox(
    pool: &PgPool,
    slug: &AgentSlug,
    after: i64,
    n: u32,
) -> StoreResult<Vec<InboxEntry>> {
    let rows = sqlx::query(
        "SELECT i.seq, e.room_id, e.event_id, e.sender, e.event_type, e.content, \
         e.origin_server_ts, i.mentioned \
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
            let corrupt = |what: &str, e: &dyn std::fmt::Display| {
                StoreError::Corrupt(format!("inbox {what}: {e}"))
            };
            let event = InboxEvent {
                room_id: OwnedRoomId::try_from(r.get::<String, _>(1))
                    .map_err(|e| corrupt("room id", &e))?,
                event_id: OwnedEventId::try_from(utf8(r.get(2), "inbox event id")?)
                    .map_err(|e| corrupt("event id", &e))?,
                sender: OwnedUserId::try_from(r.get::<String, _>(3))
                    .map_err(|e| corrupt("sender", &e))?,
                event_type: utf8(r.get(4), "inbox event type")?,
                content: RawValue::from_string(r.get(5))
                    .map_err(|e| corrupt("event content", &e))?,
                origin_server_ts: r.get(6),
                json_members: Default::default(),
            };
            Ok(InboxEntry {
                cursor: r.get(0),
                mentioned: r.get(7),
                event: Arc::new(event),
            })
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
