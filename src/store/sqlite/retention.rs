//! Retention in small batches: each batch takes the writing connection for one short
//! transaction of at most [`BATCH`] rows found through an index, then lets the group
//! commits run; what to remove is found on the read pool, without the writer. So pruning a
//! large inbox never holds a transaction's commit up for long.
//!
//! What goes: inbox rows older than the age limit or beyond the per-agent count; the
//! content of every event older than the age limit (by then no inbox row refers to it; the
//! row stays as the "already seen" record of its id), and the rows themselves once also
//! past [`SEEN_EVENTS_KEEP_S`]; handled transactions beyond their limits; idempotency keys
//! of sends and provisioning past their keep time. The writing connection runs with
//! `secure_delete`, so removed content is overwritten in the file, not only unlinked.

use std::time::Duration;

use sqlx::{Row, SqlitePool};
use tokio::sync::Mutex;

use super::{now_s, Retention, StoreResult, Writer};

/// Rows per batch.
pub(super) const BATCH: i64 = 250;
/// Event rows stay this long as the record of ids already seen (homeservers retry within
/// minutes); their content goes at the inbox's age limit.
pub(super) const SEEN_EVENTS_KEEP_S: i64 = 7 * 24 * 3600;
/// Pause between two batches, so commits waiting for the writer go first.
const PAUSE: Duration = Duration::from_millis(2);

/// A value bound to a batch statement.
#[derive(Clone, Copy)]
enum Arg<'a> {
    Int(i64),
    Text(&'a str),
}

/// Runs `statement` (binding `args`, then [`BATCH`]) in batches until it changes fewer
/// rows than a batch; how many rows it changed.
async fn in_batches(writer: &Mutex<Writer>, statement: &str, args: &[Arg<'_>]) -> StoreResult<u64> {
    let mut total = 0;
    loop {
        let changed = {
            let mut w = writer.lock().await;
            w.settle().await;
            let mut q = sqlx::query(statement);
            for a in args {
                q = match *a {
                    Arg::Int(v) => q.bind(v),
                    Arg::Text(v) => q.bind(v),
                };
            }
            q.bind(BATCH).execute(&mut w.conn).await?.rows_affected()
        };
        total += changed;
        if (changed as i64) < BATCH {
            return Ok(total);
        }
        tokio::time::sleep(PAUSE).await;
    }
}

/// Applies `keep`; inbox rows removed.
pub(super) async fn prune(
    pool: &SqlitePool,
    writer: &Mutex<Writer>,
    keep: &Retention,
) -> StoreResult<u64> {
    let now = now_s();
    let age_cutoff = now - keep.inbox_age.as_secs() as i64;
    let mut removed = in_batches(
        writer,
        "DELETE FROM inbox WHERE seq IN \
         (SELECT seq FROM inbox WHERE received_at < ? ORDER BY received_at LIMIT ?)",
        &[Arg::Int(age_cutoff)],
    )
    .await?;
    // Agents over the count: found on the read pool, trimmed oldest first.
    let over = sqlx::query("SELECT slug FROM inbox GROUP BY slug HAVING COUNT(*) > ?")
        .bind(keep.inbox_per_agent)
        .fetch_all(pool)
        .await?;
    for row in over {
        let slug: String = row.get(0);
        let first_kept: Option<i64> = match keep.inbox_per_agent {
            0 => Some(i64::MAX),
            n => {
                sqlx::query_scalar(
                    "SELECT seq FROM inbox WHERE slug = ? ORDER BY seq DESC LIMIT 1 OFFSET ?",
                )
                .bind(&slug)
                .bind(n - 1)
                .fetch_optional(pool)
                .await?
            }
        };
        let Some(first_kept) = first_kept else {
            continue;
        };
        removed += in_batches(
            writer,
            "DELETE FROM inbox WHERE seq IN \
             (SELECT seq FROM inbox WHERE slug = ? AND seq < ? ORDER BY seq LIMIT ?)",
            &[Arg::Text(&slug), Arg::Int(first_kept)],
        )
        .await?;
    }
    in_batches(
        writer,
        "UPDATE events SET content = '{}' WHERE id IN (SELECT id FROM events \
         WHERE received_at < ? AND content != '{}' ORDER BY received_at LIMIT ?)",
        &[Arg::Int(age_cutoff)],
    )
    .await?;
    in_batches(
        writer,
        "DELETE FROM events WHERE id IN \
         (SELECT id FROM events WHERE received_at < ? ORDER BY received_at LIMIT ?)",
        &[Arg::Int(age_cutoff.min(now - SEEN_EVENTS_KEEP_S))],
    )
    .await?;
    // Handled transactions: none older than the age limit, at most the newest rows.
    let newest_kept: Option<i64> = sqlx::query_scalar(
        "SELECT handled_at FROM transactions ORDER BY handled_at DESC LIMIT 1 OFFSET ?",
    )
    .bind(keep.txn_rows.saturating_sub(1))
    .fetch_optional(pool)
    .await?;
    let txn_cutoff = (now - keep.txn_age.as_secs() as i64).max(newest_kept.unwrap_or(0));
    in_batches(
        writer,
        "DELETE FROM transactions WHERE txn_id IN \
         (SELECT txn_id FROM transactions WHERE handled_at < ? LIMIT ?)",
        &[Arg::Int(txn_cutoff)],
    )
    .await?;
    let keys_cutoff = now - keep.keys_age.as_secs() as i64;
    in_batches(
        writer,
        "DELETE FROM sent WHERE (slug, room_id, client_txn_id) IN \
         (SELECT slug, room_id, client_txn_id FROM sent WHERE sent_at < ? LIMIT ?)",
        &[Arg::Int(keys_cutoff)],
    )
    .await?;
    in_batches(
        writer,
        "DELETE FROM provision_keys WHERE txn_id IN \
         (SELECT txn_id FROM provision_keys WHERE created_at < ? LIMIT ?)",
        &[Arg::Int(keys_cutoff)],
    )
    .await?;
    Ok(removed)
}
