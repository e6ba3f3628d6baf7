//! Issued bridge tokens in PostgreSQL: read and written on the pool (a token is issued or
//! revoked rarely; no group commit is needed). Issuing and revoking publish a commit
//! notice in their transaction, so every replica reloads its token table.

use sqlx::{PgPool, Row};

use super::{batch::notify, StoreResult};
use crate::{
    store::{notice::CommitNotice, StoredToken},
    tokens::issued::{TokenId, TokenRecord},
};

pub(super) async fn all(pool: &PgPool) -> StoreResult<Vec<TokenRecord>> {
    let rows = sqlx::query(
        "SELECT id, name, digest, scopes, agents, rate_per_s, created_at, expires_at \
         FROM bridge_tokens ORDER BY created_at, id",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            StoredToken {
                id: r.get(0),
                name: r.get(1),
                digest: r.get(2),
                scopes: r.get(3),
                agents: r.get(4),
                rate_per_s: r.get(5),
                created_at: r.get(6),
                expires_at: r.get(7),
            }
            .check()
        })
        .collect()
}

pub(super) async fn insert(pool: &PgPool, t: &TokenRecord, origin: u64) -> StoreResult<()> {
    let mut tx = pool.begin().await?;
    let agents: Vec<String> = t.agents.iter().map(ToString::to_string).collect();
    sqlx::query(
        "INSERT INTO bridge_tokens \
         (id, name, digest, scopes, agents, rate_per_s, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(t.id.as_str())
    .bind(&t.name)
    .bind(t.digest.to_bytes().to_vec())
    .bind(t.scopes.to_text())
    .bind(serde_json::to_string(&agents).expect("strings serialise"))
    .bind(t.rate_per_s.map(i64::from))
    .bind(t.created_at)
    .bind(t.expires_at)
    .execute(&mut *tx)
    .await?;
    notify(&mut tx, &CommitNotice::tokens(origin)).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn delete(pool: &PgPool, id: &TokenId, origin: u64) -> StoreResult<bool> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query("DELETE FROM bridge_tokens WHERE id = $1")
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
    notify(&mut tx, &CommitNotice::tokens(origin)).await?;
    tx.commit().await?;
    Ok(done.rows_affected() > 0)
}
