//! Issued bridge tokens in PostgreSQL: read and written on the pool (a token is issued or
//! revoked rarely; no group commit is needed).

use sqlx::{PgPool, Row};

use super::{StoreError, StoreResult};
use crate::tokens::{
    issued::{TokenId, TokenRecord},
    pattern::AgentPattern,
    scope::Scopes,
    TokenDigest,
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
            let id: String = r.get(0);
            let corrupt = |what: &str| StoreError::Corrupt(format!("token {id}: {what}"));
            let digest: Vec<u8> = r.get(2);
            let scopes: String = r.get(3);
            let agents: String = r.get(4);
            let agents: Vec<String> =
                serde_json::from_str(&agents).map_err(|_| corrupt("agents"))?;
            let rate: Option<i64> = r.get(5);
            Ok(TokenRecord {
                id: TokenId::parse(&id).ok_or_else(|| corrupt("id"))?,
                name: r.get(1),
                digest: TokenDigest::from_bytes(&digest).ok_or_else(|| corrupt("digest"))?,
                scopes: Scopes::from_text(&scopes).ok_or_else(|| corrupt("scopes"))?,
                agents: agents
                    .iter()
                    .map(|p| AgentPattern::parse(p).map_err(|_| corrupt("agents")))
                    .collect::<Result<_, _>>()?,
                rate_per_s: rate
                    .map(|r| u32::try_from(r).map_err(|_| corrupt("rate")))
                    .transpose()?,
                created_at: r.get(6),
                expires_at: r.get(7),
            })
        })
        .collect()
}

pub(super) async fn insert(pool: &PgPool, t: &TokenRecord) -> StoreResult<()> {
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
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn delete(pool: &PgPool, id: &TokenId) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM bridge_tokens WHERE id = $1")
        .bind(id.as_str())
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}
