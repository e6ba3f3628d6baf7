//! Crypto rows and store keys of end-to-end encryption in SQLite: rows are read through the
//! pool (when an agent's machine is restored) and written by the group commit
//! ([`super::batch`]); a store key is kept once, on the writing connection.

use sqlx::{Row, SqlitePool};

use super::{StoreResult, Writer};
use crate::ids::AgentSlug;

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
