//! Retention in small batches, as in the SQLite store: each batch is one short statement
//! (its own transaction) over at most [`BATCH`] rows found through an index, so pruning a
//! large inbox never holds row locks, or makes one transaction's WAL, for long. Group
//! commits do not wait for it (they only add rows), but a batch row-locks what it removes:
//! `SKIP LOCKED` leaves rows another writer holds (an agent's deletion, or a second daemon
//! pruning the same database) to that writer, instead of queueing behind it.
//!
//! What goes is what the SQLite store removes: inbox rows older than the age limit or
//! beyond the per-agent count; the content of every event older than the age limit, and
//! the event rows themselves once also past [`SEEN_EVENTS_KEEP_S`]; handled transactions
//! beyond their limits; idempotency keys past their keep time. Unlike SQLite's
//! `secure_delete`, PostgreSQL leaves the removed row versions in its data files until
//! (auto)vacuum reclaims their space and later writes reuse it.

use std::time::Duration;

use sqlx::{PgPool, Row};

use super::{now_s, Retention, StoreResult};

/// Rows per batch.
const BATCH: i64 = 250;
/// Event rows stay this long as the record of ids already seen (homeservers retry within
/// minutes); their content goes at the inbox's age limit.
const SEEN_EVENTS_KEEP_S: i64 = 7 * 24 * 3600;
/// Pause between two batches, so that retention stays a light background load.
const PAUSE: Duration = Duration::from_millis(2);

/// A value bound to a batch statement.
#[derive(Clone, Copy)]
enum Arg<'a> {
    Int(i64),
    Text(&'a str),
}

/// Runs `statement` (binding `args`, then [`BATCH`]) in batches until it changes fewer
/// rows than a batch; how many rows it changed.
async fn in_batches(pool: &PgPool, statement: &str, args: &[Arg<'_>]) -> StoreResult<u64> {
    let mut total = 0;
    loop {
        let mut q = sqlx::query(statement);
        for a in args {
            q = match *a {
                Arg::Int(v) => q.bind(v),
                Arg::Text(v) => q.bind(v),
            };
        }
        let changed = q.bind(BATCH).execute(pool).await?.rows_affected();
        total += changed;
        if (changed as i64) < BATCH {
            return Ok(total);
        }
        tokio::time::sleep(PAUSE).await;
    }
}

/// Applies `keep`; inbox rows removed.
pub(super) async fn prune(pool: &PgPool, keep: &Retention) -> StoreResult<u64> {
    let now = now_s();
    let age_cutoff = now - keep.inbox_age.as_secs() as i64;
    let mut removed = in_batches(
        pool,
        "DELETE FROM inbox WHERE seq IN (SELECT seq FROM inbox WHERE received_at < $1 \
         ORDER BY received_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
        &[Arg::Int(age_cutoff)],
    )
    .await?;
    // Agents over the count, trimmed oldest first.
    let over = sqlx::query("SELECT slug FROM inbox GROUP BY slug HAVING COUNT(*) > $1")
        .bind(i64::from(keep.inbox_per_agent))
        .fetch_all(pool)
        .await?;
    for row in over {
        let slug: String = row.get(0);
        let first_kept: Option<i64> = match keep.inbox_per_agent {
            0 => Some(i64::MAX),
            n => {
                sqlx::query_scalar(
                    "SELECT seq FROM inbox WHERE slug = $1 ORDER BY seq DESC LIMIT 1 OFFSET $2",
                )
                .bind(&slug)
                .bind(i64::from(n) - 1)
                .fetch_optional(pool)
                .await?
            }
        };
        let Some(first_kept) = first_kept else {
            continue;
        };
        removed += in_batches(
            pool,
            "DELETE FROM inbox WHERE seq IN (SELECT seq FROM inbox WHERE slug = $1 \
             AND seq < $2 ORDER BY seq LIMIT $3 FOR UPDATE SKIP LOCKED)",
            &[Arg::Text(&slug), Arg::Int(first_kept)],
        )
        .await?;
    }
    in_batches(
        pool,
        "UPDATE events SET content = '{}' WHERE id IN (SELECT id FROM events \
         WHERE received_at < $1 AND content <> '{}' ORDER BY received_at LIMIT $2 \
         FOR UPDATE SKIP LOCKED)",
        &[Arg::Int(age_cutoff)],
    )
    .await?;
    in_batches(
        pool,
        "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE received_at < $1 \
         ORDER BY received_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
        &[Arg::Int(age_cutoff.min(now - SEEN_EVENTS_KEEP_S))],
    )
    .await?;
    // Handled transactions: none older than the age limit, at most the newest rows.
    let newest_kept: Option<i64> = sqlx::query_scalar(
        "SELECT handled_at FROM transactions ORDER BY handled_at DESC LIMIT 1 OFFSET $1",
    )
    .bind(i64::from(keep.txn_rows.saturating_sub(1)))
    .fetch_optional(pool)
    .await?;
    let txn_cutoff = (now - keep.txn_age.as_secs() as i64).max(newest_kept.unwrap_or(0));
    in_batches(
        pool,
        "DELETE FROM transactions WHERE txn_id IN (SELECT txn_id FROM transactions \
         WHERE handled_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
        &[Arg::Int(txn_cutoff)],
    )
    .await?;
    let keys_cutoff = now - keep.keys_age.as_secs() as i64;
    in_batches(
        pool,
        "DELETE FROM sent WHERE (slug, room_id, client_txn_id) IN \
         (SELECT slug, room_id, client_txn_id FROM sent WHERE sent_at < $1 LIMIT $2 \
         FOR UPDATE SKIP LOCKED)",
        &[Arg::Int(keys_cutoff)],
    )
    .await?;
    in_batches(
        pool,
        "DELETE FROM provision_keys WHERE txn_id IN (SELECT txn_id FROM provision_keys \
         WHERE created_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
        &[Arg::Int(keys_cutoff)],
    )
    .await?;
    Ok(removed)
}
