//! What the daemon reads back of agents, memberships, room facts and send keys.

use ruma::{OwnedEventId, OwnedRoomId};
use sqlx::{PgPool, Row};

use super::{
    limit, room_of, slug_of, utf8, AgentRecord, RoomUpgrade, SentKey, SentRecord, StoreError,
    StoreResult,
};
use crate::{ids::AgentSlug, store::RequestDigest, tokens::pattern::SlugRange};

/// An agent row: `slug, registered, display_name, avatar_url`.
fn agent_of(r: &sqlx::postgres::PgRow) -> StoreResult<AgentRecord> {
    let text = |i: usize, what: &str| {
        r.get::<Option<Vec<u8>>, _>(i)
            .map(|b| utf8(b, what))
            .transpose()
    };
    Ok(AgentRecord {
        slug: slug_of(r.get(0))?,
        registered: r.get(1),
        display_name: text(2, "display name")?,
        avatar_url: text(3, "avatar URL")?,
    })
}

pub(super) async fn agent(pool: &PgPool, slug: &AgentSlug) -> StoreResult<Option<AgentRecord>> {
    let row = sqlx::query(
        "SELECT slug, registered, display_name, avatar_url FROM agents WHERE slug = $1",
    )
    .bind(slug.as_str())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(agent_of).transpose()
}

pub(super) async fn agents(
    pool: &PgPool,
    after: Option<&AgentSlug>,
    range: &SlugRange,
    n: u32,
) -> StoreResult<Vec<AgentRecord>> {
    // Slugs compare bytewise (COLLATE "C" on the column), as the range's bounds assume.
    // TEXT cannot hold the NUL of an exact pattern's bound (`slug + "\0"`): below
    // `x\0...` is, for slugs (which hold no NUL), at most `x`.
    let (to, to_inclusive) = match range.to.as_deref().map(|to| to.split_once('\0')) {
        None => (None, false),
        Some(None) => (range.to.as_deref(), false),
        Some(Some((before_nul, _))) => (Some(before_nul), true),
    };
    let statement = match to_inclusive {
        false => {
            "SELECT slug, registered, display_name, avatar_url FROM agents \
             WHERE slug > $1 AND slug >= $2 AND ($3::text IS NULL OR slug < $3) \
             ORDER BY slug LIMIT $4"
        }
        true => {
            "SELECT slug, registered, display_name, avatar_url FROM agents \
             WHERE slug > $1 AND slug >= $2 AND slug <= $3 ORDER BY slug LIMIT $4"
        }
    };
    let rows = sqlx::query(statement)
        .bind(after.map_or("", AgentSlug::as_str))
        .bind(&range.from)
        .bind(to)
        .bind(limit(n))
        .fetch_all(pool)
        .await?;
    rows.iter().map(agent_of).collect()
}

pub(super) async fn display_names(pool: &PgPool) -> StoreResult<Vec<(AgentSlug, String)>> {
    let rows = sqlx::query(
        "SELECT slug, display_name FROM agents \
         WHERE display_name IS NOT NULL AND display_name <> ''::bytea",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| Ok((slug_of(r.get(0))?, utf8(r.get(1), "display name")?)))
        .collect()
}

pub(super) async fn memberships(pool: &PgPool) -> StoreResult<Vec<(AgentSlug, OwnedRoomId)>> {
    let rows = sqlx::query("SELECT slug, room_id FROM memberships")
        .fetch_all(pool)
        .await?;
    rows.into_iter()
        .map(|r| Ok((slug_of(r.get(0))?, room_of(r.get(1))?)))
        .collect()
}

pub(super) async fn room_upgrades(pool: &PgPool) -> StoreResult<Vec<RoomUpgrade>> {
    let rows = sqlx::query("SELECT room_id, replacement FROM room_upgrades")
        .fetch_all(pool)
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok(RoomUpgrade {
                room_id: room_of(r.get(0))?,
                replacement: room_of(r.get(1))?,
            })
        })
        .collect()
}

pub(super) async fn sent_event(pool: &PgPool, key: &SentKey) -> StoreResult<Option<SentRecord>> {
    let row = sqlx::query(
        "SELECT request_digest, event_id FROM sent \
         WHERE slug = $1 AND room_id = $2 AND client_txn_id = $3",
    )
    .bind(key.slug.as_str())
    .bind(key.room_id.as_str())
    .bind(key.client_txn.as_bytes())
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        let corrupt = |what: &str| StoreError::Corrupt(format!("sent key: {what}"));
        let digest: String = r.get(0);
        Ok(SentRecord {
            request: RequestDigest::from_hex(&digest).ok_or_else(|| corrupt("digest"))?,
            event_id: OwnedEventId::try_from(utf8(r.get(1), "sent event id")?)
                .map_err(|_| corrupt("event id"))?,
        })
    })
    .transpose()
}
