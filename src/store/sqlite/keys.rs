//! Provisioning keys in SQLite: read through the pool, written on the only writing
//! connection (provisioning is rare; no group commit is needed).

use sqlx::{Row, SqlitePool};

use super::{now_s, ProvisionKey, RequestDigest, StoreError, StoreResult, Writer};

pub(super) async fn get(pool: &SqlitePool, txn_id: &str) -> StoreResult<Option<ProvisionKey>> {
    let row = sqlx::query("SELECT request_digest, answer FROM provision_keys WHERE txn_id = ?")
        .bind(txn_id)
        .fetch_optional(pool)
        .await?;
    row.map(|r| {
        Ok(ProvisionKey {
            txn_id: txn_id.to_owned(),
            request: RequestDigest::from_hex(r.get(0))
                .ok_or_else(|| StoreError::Corrupt(format!("provision key {txn_id:?}: digest")))?,
            answer: r.get(1),
        })
    })
    .transpose()
}

/// Records a key's answer; a key already recorded keeps its first answer.
pub(super) async fn put(writer: &mut Writer, key: &ProvisionKey) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO provision_keys (txn_id, request_digest, answer, created_at) \
         VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(&key.txn_id)
    .bind(key.request.to_hex())
    .bind(&key.answer)
    .bind(now_s())
    .execute(&mut writer.conn)
    .await?;
    Ok(())
}
