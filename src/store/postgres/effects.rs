//! The effects outbox in PostgreSQL: rows are added by the group commit of their
//! transaction ([`super::batch`]); reading, deferring and removing them is rare and runs
//! on the pool, each write its own (durable) commit.
//!
//! Several daemons on one database would each see the same due effects: taking one for
//! oneself (a lease) is left to the replication work; until then one daemon per database.

use sqlx::{PgPool, Row};

use super::{limit, PendingEffect, StoreError, StoreResult};

pub(super) async fn due(pool: &PgPool, now: i64, n: u32) -> StoreResult<Vec<PendingEffect>> {
    let rows = sqlx::query(
        "SELECT id, effect, attempts FROM effects WHERE not_before <= $1 ORDER BY id LIMIT $2",
    )
    .bind(now)
    .bind(limit(n))
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            let id: i64 = r.get(0);
            let text: String = r.get(1);
            Ok(PendingEffect {
                id,
                effect: serde_json::from_str(&text)
                    .map_err(|e| StoreError::Corrupt(format!("effect {id}: {e}")))?,
                attempts: u32::try_from(r.get::<i64, _>(2))
                    .map_err(|_| StoreError::Corrupt(format!("effect {id}: attempts")))?,
            })
        })
        .collect()
}

pub(super) async fn count(pool: &PgPool) -> StoreResult<u64> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM effects")
        .fetch_one(pool)
        .await?;
    Ok(n as u64)
}

pub(super) async fn finish(pool: &PgPool, id: i64) -> StoreResult<()> {
    sqlx::query("DELETE FROM effects WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn defer(
    pool: &PgPool,
    id: i64,
    attempts: u32,
    not_before: i64,
) -> StoreResult<()> {
    sqlx::query("UPDATE effects SET attempts = $1, not_before = $2 WHERE id = $3")
        .bind(i64::from(attempts))
        .bind(not_before)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}
