//! The effects outbox in SQLite: rows are added by the group commit of their transaction
//! ([`super::batch`]); reading, deferring and removing them is rare and takes the writing
//! connection directly.

use sqlx::{Row, SqlitePool};

use super::{PendingEffect, StoreError, StoreResult, Writer};

pub(super) async fn due(
    pool: &SqlitePool,
    now: i64,
    limit: u32,
) -> StoreResult<Vec<PendingEffect>> {
    let rows = sqlx::query(
        "SELECT id, effect, attempts FROM effects WHERE not_before <= ? ORDER BY id LIMIT ?",
    )
    .bind(now)
    .bind(limit)
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
                attempts: r.get::<i64, _>(2) as u32,
            })
        })
        .collect()
}

pub(super) async fn count(pool: &SqlitePool) -> StoreResult<u64> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM effects")
        .fetch_one(pool)
        .await?;
    Ok(n as u64)
}

pub(super) async fn finish(writer: &mut Writer, id: i64) -> StoreResult<()> {
    sqlx::query("DELETE FROM effects WHERE id = ?")
        .bind(id)
        .execute(&mut writer.conn)
        .await?;
    Ok(())
}

pub(super) async fn defer(
    writer: &mut Writer,
    id: i64,
    attempts: u32,
    not_before: i64,
) -> StoreResult<()> {
    sqlx::query("UPDATE effects SET attempts = ?, not_before = ? WHERE id = ?")
        .bind(attempts)
        .bind(not_before)
        .bind(id)
        .execute(&mut writer.conn)
        .await?;
    Ok(())
}
