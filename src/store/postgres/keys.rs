//! Provisioning keys in PostgreSQL: read and written on the pool (provisioning is rare; no
//! group commit is needed). The key is the client's text, kept as BYTEA (see the migration).

use sqlx::{PgPool, Row};

use super::{now_s, ProvisionKey, StoreError, StoreResult};
use crate::store::RequestDigest;

pub(super) async fn get(pool: &PgPool, txn_id: &str) -> StoreResult<Option<ProvisionKey>> {
    let row = sqlx::query("SELECT request_digest, answer FROM provision_keys WHERE txn_id = $1")
        .bind(txn_id.as_bytes())
        .fetch_optional(pool)
        .await?;
    row.map(|r| {
        let digest: String = r.get(0);
        Ok(ProvisionKey {
            txn_id: txn_id.to_owned(),
            request: RequestDigest::from_hex(&digest)
                .ok_or_else(|| StoreError::Corrupt(format!("provision key {txn_id:?}: digest")))?,
            answer: r.get(1),
        })
    })
    .transpose()
}

/// Records a key's answer; a key already recorded (also by another daemon at the same
/// moment: the insert decides) keeps its first answer.
pub(super) async fn put(pool: &PgPool, key: &ProvisionKey) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO provision_keys (txn_id, request_digest, answer, created_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(key.txn_id.as_bytes())
    .bind(key.request.to_hex())
    .bind(&key.answer)
    .bind(now_s())
    .execute(pool)
    .await?;
    Ok(())
}
