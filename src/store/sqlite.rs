//! The embedded SQLite store (sqlx): WAL journal, `synchronous = NORMAL` (durable across a
//! process crash; an fsync per commit group, not per row), migrations applied at open.

use std::{str::FromStr, time::Duration};

use async_trait::async_trait;
use ruma::{OwnedEventId, OwnedRoomId};
use serde_json::value::RawValue;
use sqlx::{
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    Row, SqlitePool,
};

use super::{
    now_s, AgentRecord, InboxRow, MembershipChange, Store, StoreError, StoreResult,
    TransactionOutcome, TransactionWrite, WriteOp, WriteOutcome,
};
use crate::ids::AgentSlug;

/// Handled transaction ids are kept this long (homeservers retry within minutes).
const TXN_RETENTION_S: i64 = 7 * 24 * 3600;

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub async fn open(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(false);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .min_connections(1)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }
}

fn slug_of(s: String) -> StoreResult<AgentSlug> {
    AgentSlug::parse(&s).map_err(|e| StoreError::Corrupt(format!("agent slug {s:?}: {e}")))
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn apply(&self, batch: &[WriteOp]) -> StoreResult<Vec<WriteOutcome>> {
        let now = now_s();
        let mut tx = self.pool.begin().await?;
        let mut outcomes = Vec::with_capacity(batch.len());
        for op in batch {
            let outcome = match op {
                WriteOp::Transaction(t) => {
                    WriteOutcome::Transaction(write_transaction(&mut tx, t, now).await?)
                }
                WriteOp::Agent(a) => {
                    write_agent(&mut tx, a, now).await?;
                    WriteOutcome::Done
                }
                WriteOp::Membership(m) => {
                    write_membership(&mut tx, m).await?;
                    WriteOutcome::Done
                }
                WriteOp::Sent {
                    slug,
                    client_txn,
                    event_id,
                } => {
                    sqlx::query(
                        "INSERT INTO sent (slug, client_txn_id, event_id, sent_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    )
                    .bind(slug.as_str())
                    .bind(client_txn)
                    .bind(event_id.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    WriteOutcome::Done
                }
                WriteOp::Room(room) => {
                    sqlx::query(
                        "INSERT INTO rooms (room_id, alias, space_id, created_at) VALUES (?, ?, ?, ?) \
                         ON CONFLICT (room_id) DO UPDATE SET alias = excluded.alias, space_id = excluded.space_id",
                    )
                    .bind(room.room_id.as_str())
                    .bind(room.alias.as_ref().map(|a| a.as_str()))
                    .bind(room.space_id.as_ref().map(|s| s.as_str()))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    WriteOutcome::Done
                }
            };
            outcomes.push(outcome);
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn agent(&self, slug: &AgentSlug) -> StoreResult<Option<AgentRecord>> {
        let row =
            sqlx::query("SELECT registered, display_name, avatar_url FROM agents WHERE slug = ?")
                .bind(slug.as_str())
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| AgentRecord {
            slug: slug.clone(),
            registered: r.get::<bool, _>(0),
            display_name: r.get(1),
            avatar_url: r.get(2),
        }))
    }

    async fn agents(&self, after: Option<&AgentSlug>, limit: u32) -> StoreResult<Vec<AgentRecord>> {
        let rows = sqlx::query(
            "SELECT slug, registered, display_name, avatar_url FROM agents WHERE slug > ? ORDER BY slug LIMIT ?",
        )
        .bind(after.map_or("", AgentSlug::as_str))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(AgentRecord {
                    slug: slug_of(r.get(0))?,
                    registered: r.get::<bool, _>(1),
                    display_name: r.get(2),
                    avatar_url: r.get(3),
                })
            })
            .collect()
    }

    async fn display_names(&self) -> StoreResult<Vec<(AgentSlug, String)>> {
        let rows = sqlx::query(
            "SELECT slug, display_name FROM agents WHERE display_name IS NOT NULL AND display_name <> ''",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| Ok((slug_of(r.get(0))?, r.get(1))))
            .collect()
    }

    async fn agent_count(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM agents")
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }

    async fn memberships(&self) -> StoreResult<Vec<(AgentSlug, OwnedRoomId)>> {
        let rows = sqlx::query("SELECT slug, room_id FROM memberships")
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|r| {
                let room: String = r.get(1);
                let room = OwnedRoomId::try_from(room)
                    .map_err(|e| StoreError::Corrupt(format!("room id: {e}")))?;
                Ok((slug_of(r.get(0))?, room))
            })
            .collect()
    }

    async fn agent_rooms(&self, slug: &AgentSlug) -> StoreResult<Vec<OwnedRoomId>> {
        let rooms: Vec<String> =
            sqlx::query_scalar("SELECT room_id FROM memberships WHERE slug = ?")
                .bind(slug.as_str())
                .fetch_all(&self.pool)
                .await?;
        rooms
            .into_iter()
            .map(|r| {
                OwnedRoomId::try_from(r).map_err(|e| StoreError::Corrupt(format!("room id: {e}")))
            })
            .collect()
    }

    async fn sent_event(
        &self,
        slug: &AgentSlug,
        client_txn: &str,
    ) -> StoreResult<Option<OwnedEventId>> {
        let id: Option<String> =
            sqlx::query_scalar("SELECT event_id FROM sent WHERE slug = ? AND client_txn_id = ?")
                .bind(slug.as_str())
                .bind(client_txn)
                .fetch_optional(&self.pool)
                .await?;
        id.map(|s| {
            OwnedEventId::try_from(s).map_err(|e| StoreError::Corrupt(format!("event id: {e}")))
        })
        .transpose()
    }

    async fn read_inbox(
        &self,
        slug: &AgentSlug,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<InboxRow>> {
        let rows = sqlx::query(
            "SELECT i.seq, e.room_id, e.event_id, e.sender, e.event_type, e.content, e.origin_server_ts, i.mentioned \
             FROM inbox i JOIN events e ON e.id = i.event_ref \
             WHERE i.slug = ? AND i.seq > ? ORDER BY i.seq LIMIT ?",
        )
        .bind(slug.as_str())
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let content: String = r.get(5);
                Ok(InboxRow {
                    cursor: r.get(0),
                    room_id: r.get(1),
                    event_id: r.get(2),
                    sender: r.get(3),
                    event_type: r.get(4),
                    content: RawValue::from_string(content)
                        .map_err(|e| StoreError::Corrupt(format!("event content: {e}")))?,
                    origin_server_ts: r.get(6),
                    mentioned: r.get::<bool, _>(7),
                })
            })
            .collect()
    }

    async fn latest_cursor(&self, slug: &AgentSlug) -> StoreResult<i64> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM inbox WHERE slug = ?")
            .bind(slug.as_str())
            .fetch_one(&self.pool)
            .await?;
        Ok(seq.unwrap_or(0))
    }

    async fn prune(&self, max_per_agent: u32, max_age_s: u64) -> StoreResult<u64> {
        let cutoff = now_s() - max_age_s as i64;
        let mut tx = self.pool.begin().await?;
        let aged = sqlx::query("DELETE FROM inbox WHERE received_at < ?")
            .bind(cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let over = sqlx::query(
            "DELETE FROM inbox WHERE seq IN (SELECT seq FROM ( \
               SELECT seq, ROW_NUMBER() OVER (PARTITION BY slug ORDER BY seq DESC) AS rn FROM inbox) \
             WHERE rn > ?)",
        )
        .bind(max_per_agent)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // Event rows double as the "already seen" set: keep them as long as transactions.
        sqlx::query(
            "DELETE FROM events WHERE received_at < ? AND id NOT IN (SELECT event_ref FROM inbox)",
        )
        .bind(now_s() - TXN_RETENTION_S)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM transactions WHERE handled_at < ?")
            .bind(now_s() - TXN_RETENTION_S)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(aged + over)
    }

    async fn inbox_depth(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM inbox")
            .fetch_one(&self.pool)
            .await?)
    }
}

type Tx = sqlx::Transaction<'static, sqlx::Sqlite>;

async fn write_transaction(
    tx: &mut Tx,
    txn: &TransactionWrite,
    now: i64,
) -> StoreResult<TransactionOutcome> {
    let fresh = sqlx::query(
        "INSERT INTO transactions (txn_id, handled_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(&txn.txn_id)
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    if !fresh {
        return Ok(TransactionOutcome::Duplicate);
    }
    for m in &txn.memberships {
        write_membership(tx, m).await?;
    }
    let mut per_event = Vec::with_capacity(txn.deliveries.len());
    for d in &txn.deliveries {
        let inserted = sqlx::query(
            "INSERT INTO events (event_id, room_id, sender, event_type, content, origin_server_ts, received_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING RETURNING id",
        )
        .bind(d.event_id.as_str())
        .bind(d.room_id.as_str())
        .bind(d.sender.as_str())
        .bind(&d.event_type)
        .bind(d.content.get())
        .bind(d.origin_server_ts)
        .bind(now)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(row) = inserted else {
            per_event.push(None);
            continue;
        };
        let event_ref: i64 = row.get(0);
        let mut cursors = Vec::with_capacity(d.recipients.len());
        for (slug, mentioned) in &d.recipients {
            let seq: i64 = sqlx::query_scalar(
                "INSERT INTO inbox (slug, event_ref, mentioned, received_at) VALUES (?, ?, ?, ?) RETURNING seq",
            )
            .bind(slug.as_str())
            .bind(event_ref)
            .bind(*mentioned)
            .bind(now)
            .fetch_one(&mut **tx)
            .await?;
            cursors.push(seq);
        }
        per_event.push(Some(cursors));
    }
    Ok(TransactionOutcome::Recorded(per_event))
}

async fn write_agent(tx: &mut Tx, a: &AgentRecord, now: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO agents (slug, registered, display_name, avatar_url, created_at) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (slug) DO UPDATE SET registered = excluded.registered, \
         display_name = excluded.display_name, avatar_url = excluded.avatar_url",
    )
    .bind(a.slug.as_str())
    .bind(a.registered)
    .bind(&a.display_name)
    .bind(&a.avatar_url)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn write_membership(tx: &mut Tx, m: &MembershipChange) -> StoreResult<()> {
    let q = if m.joined {
        "INSERT INTO memberships (slug, room_id) VALUES (?, ?) ON CONFLICT DO NOTHING"
    } else {
        "DELETE FROM memberships WHERE slug = ? AND room_id = ?"
    };
    sqlx::query(q)
        .bind(m.slug.as_str())
        .bind(m.room_id.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EventDelivery;

    async fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        (dir, SqliteStore::open(&url).await.unwrap())
    }

    async fn commit(s: &SqliteStore, txns: Vec<TransactionWrite>) -> Vec<TransactionOutcome> {
        let ops: Vec<_> = txns.into_iter().map(WriteOp::Transaction).collect();
        s.apply(&ops)
            .await
            .unwrap()
            .into_iter()
            .map(|o| match o {
                WriteOutcome::Transaction(t) => t,
                WriteOutcome::Done => panic!("transaction outcome expected"),
            })
            .collect()
    }

    fn delivery(event_id: &str, to: &[&str]) -> EventDelivery {
        EventDelivery {
            event_id: event_id.try_into().unwrap(),
            room_id: "!r".try_into().unwrap(),
            sender: "@h:hs".try_into().unwrap(),
            event_type: "m.room.message".into(),
            content: RawValue::from_string(r#"{"body":"x"}"#.into()).unwrap(),
            origin_server_ts: 1,
            recipients: to
                .iter()
                .map(|s| (AgentSlug::parse(s).unwrap(), false))
                .collect(),
        }
    }

    #[tokio::test]
    async fn transactions_are_recorded_once_and_events_deduplicated() {
        let (_dir, s) = store().await;
        let t1 = TransactionWrite {
            txn_id: "t1".into(),
            deliveries: vec![delivery("$e1", &["a", "b"])],
            memberships: vec![],
        };
        let t2 = TransactionWrite {
            txn_id: "t2".into(),
            deliveries: vec![delivery("$e1", &["a"]), delivery("$e2", &["a"])],
            memberships: vec![],
        };
        let out = commit(&s, vec![t1.clone(), t2]).await;
        let TransactionOutcome::Recorded(first) = &out[0] else {
            panic!()
        };
        assert_eq!(first[0].as_ref().unwrap().len(), 2);
        let TransactionOutcome::Recorded(second) = &out[1] else {
            panic!()
        };
        assert!(
            second[0].is_none(),
            "event seen before is not delivered again"
        );
        assert!(second[1].is_some());
        assert_eq!(
            commit(&s, vec![t1]).await,
            vec![TransactionOutcome::Duplicate]
        );
        let a = AgentSlug::parse("a").unwrap();
        let rows = s.read_inbox(&a, 0, 10).await.unwrap();
        assert_eq!(rows.len(), 2);
        assert!(rows[0].cursor < rows[1].cursor);
        assert_eq!(rows[1].event_id, "$e2");
        assert_eq!(s.read_inbox(&a, rows[0].cursor, 10).await.unwrap().len(), 1);
        assert_eq!(s.latest_cursor(&a).await.unwrap(), rows[1].cursor);
    }

    #[tokio::test]
    async fn retention_keeps_the_newest() {
        let (_dir, s) = store().await;
        let deliveries = (0..5)
            .map(|i| delivery(&format!("$e{i}"), &["a"]))
            .collect();
        commit(
            &s,
            vec![TransactionWrite {
                txn_id: "t".into(),
                deliveries,
                memberships: vec![],
            }],
        )
        .await;
        assert_eq!(s.prune(2, 3600).await.unwrap(), 3);
        let rows = s
            .read_inbox(&AgentSlug::parse("a").unwrap(), 0, 10)
            .await
            .unwrap();
        assert_eq!(
            rows.iter().map(|r| r.event_id.as_str()).collect::<Vec<_>>(),
            ["$e3", "$e4"]
        );
    }
}
