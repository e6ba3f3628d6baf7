//! The embedded SQLite store (sqlx): WAL journal, `synchronous = NORMAL` (durable across a
//! process crash; an fsync per commit group, not per row), migrations applied at open.
//!
//! Two kinds of connection: a pool for reads, and one dedicated connection for every write
//! (the group commits of [`super::writer`] and retention). sqlx runs the statements of a
//! connection on its own worker thread, so every statement sent costs a thread round trip:
//! [`SqliteStore::apply`] therefore writes a whole group commit in two round trips (look-ups,
//! then one multi-row insert per table and the commit), rows passed as JSON arrays to
//! statements whose text never changes, and it picks event ids and inbox cursors itself
//! inside an immediate (write-locked) transaction on the only writing connection.

use std::{
    collections::{HashMap, HashSet},
    str::FromStr,
    time::Duration,
};

use async_trait::async_trait;
use ruma::{OwnedEventId, OwnedRoomId};
use serde_json::value::RawValue;
use sqlx::{
    sqlite::{
        SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteJournalMode,
        SqlitePoolOptions, SqliteSynchronous,
    },
    Arguments, ConnectOptions, Connection, Row, SqlitePool,
};
use tokio::sync::Mutex;

use super::{
    now_s, AgentRecord, InboxRow, RoomRecord, Store, StoreError, StoreResult, TransactionOutcome,
    WriteOp, WriteOutcome,
};
use crate::ids::AgentSlug;

/// Handled transaction ids are kept this long (homeservers retry within minutes).
const TXN_RETENTION_S: i64 = 7 * 24 * 3600;

pub struct SqliteStore {
    /// Reads; any number run concurrently (WAL readers do not block the writer).
    pool: SqlitePool,
    /// The only connection that writes: group commits and retention. Holding it (rather
    /// than taking one from a pool) saves the pool's acquire and keeps its prepared
    /// statements warm; being the only writer is what lets [`write_batch`] pick row ids.
    writer: Mutex<Writer>,
}

impl SqliteStore {
    pub async fn open(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(false)
            // Temporary b-trees (sorts, IN lists) in memory.
            .pragma("temp_store", "memory");
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .min_connections(1)
            // sqlx would otherwise ping the connection's worker thread on every acquire.
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        // The writer walks the indexes that grow (event ids, inboxes): a page cache of up to
        // 16 MiB (allocated as used; readers keep SQLite's default of about 2 MiB).
        let conn = options.pragma("cache_size", "-16384").connect().await?;
        Ok(Self {
            pool,
            writer: Mutex::new(Writer { conn, open: false }),
        })
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
        let mut writer = self.writer.lock().await;
        writer.settle().await;
        writer.open = true;
        let outcomes = write_batch(&mut writer.conn, batch, now).await;
        match outcomes {
            Ok(_) => writer.open = false,
            Err(_) => writer.settle().await,
        }
        outcomes
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
        let mut writer = self.writer.lock().await;
        writer.settle().await;
        let mut tx = writer.conn.begin_with("BEGIN IMMEDIATE").await?;
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

/// The only writing connection, and whether a transaction may have been left open on it
/// (by a failed write, or a write whose future was dropped half-way).
struct Writer {
    conn: SqliteConnection,
    open: bool,
}

impl Writer {
    /// Rolls back whatever an earlier write left open. An error means there was nothing
    /// to roll back, or the next `BEGIN` fails and the next write tries again.
    async fn settle(&mut self) {
        if std::mem::take(&mut self.open) {
            let _ = sqlx::query("ROLLBACK").execute(&mut self.conn).await;
        }
    }
}

/// Opens the write transaction and, in the same round trip, finds which txn ids (`?` 1) and
/// event ids (`?` 2) are known, and the highest event id and cursor handed out so far
/// (sqlite_sequence remembers cursors of pruned rows; the table's maximum covers a missing
/// entry). Keys travel as JSON arrays, so the statement text never changes (prepared once).
const BEGIN_AND_LOOK_UP: &str = "BEGIN IMMEDIATE; \
    SELECT 0, (SELECT COALESCE(MAX(id), 0) FROM events), \
        MAX((SELECT COALESCE(MAX(seq), 0) FROM inbox), \
            COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'inbox'), 0)); \
    SELECT 1, txn_id FROM transactions WHERE txn_id IN (SELECT value FROM json_each(?)); \
    SELECT 2, event_id FROM events WHERE event_id IN (SELECT value FROM json_each(?))";

// One statement per table, each taking its rows as one JSON array of arrays (`?` last) and,
// where the table has a time column, the time first. However many rows, the text is the
// same: no SQL to parse per row, no bind-parameter limit, and a cached prepared statement.
// ("WHERE true" resolves the parser's ambiguity between a join and an upsert clause.)
const INSERT_TXNS: &str =
    "INSERT INTO transactions (txn_id, handled_at) SELECT value, ? FROM json_each(?)";
const INSERT_EVENTS: &str = "INSERT INTO events \
    (id, event_id, room_id, sender, event_type, content, origin_server_ts, received_at) \
    SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, ? \
    FROM json_each(?)";
// Explicit cursors also raise sqlite_sequence, so AUTOINCREMENT never hands out a used one.
const INSERT_INBOX: &str = "INSERT INTO inbox (seq, slug, event_ref, mentioned, received_at) \
    SELECT value->>0, value->>1, value->>2, value->>3, ? FROM json_each(?)";
const INSERT_JOINS: &str = "INSERT INTO memberships (slug, room_id) \
    SELECT value->>0, value->>1 FROM json_each(?) WHERE true ON CONFLICT DO NOTHING";
const DELETE_LEAVES: &str = "DELETE FROM memberships WHERE (slug, room_id) IN \
    (SELECT value->>0, value->>1 FROM json_each(?))";
const UPSERT_AGENTS: &str = "INSERT INTO agents \
    (slug, registered, display_name, avatar_url, created_at) \
    SELECT value->>0, value->>1, value->>2, value->>3, ? FROM json_each(?) WHERE true \
    ON CONFLICT (slug) DO UPDATE SET registered = excluded.registered, \
    display_name = excluded.display_name, avatar_url = excluded.avatar_url";
const INSERT_SENT: &str = "INSERT INTO sent (slug, client_txn_id, event_id, sent_at) \
    SELECT value->>0, value->>1, value->>2, ? FROM json_each(?) WHERE true \
    ON CONFLICT DO NOTHING";
const UPSERT_ROOMS: &str = "INSERT INTO rooms (room_id, alias, space_id, created_at) \
    SELECT value->>0, value->>1, value->>2, ? FROM json_each(?) WHERE true \
    ON CONFLICT (room_id) DO UPDATE SET alias = excluded.alias, space_id = excluded.space_id";

/// Writes one group commit with two round trips to sqlx's worker thread (each statement
/// sent costs one): [`BEGIN_AND_LOOK_UP`], then one insert per table that has rows and
/// `COMMIT`. The outcome of each write is what applying the writes one by one, in batch
/// order, would give:
/// - a txn id already stored, or met earlier in the batch, is a `Duplicate` and writes
///   nothing (not even its memberships);
/// - an event id already stored, or met earlier in the batch (also earlier in the same
///   transaction), is `None` and reaches no inbox;
/// - new events get the next ids, inbox rows the next cursors, both in batch order, so
///   cursors grow in commit order for every agent;
/// - an agent, room or membership ends as its last write in the batch leaves it, a send
///   key keeps its first event id.
///
/// Picking ids here is sound because this connection is the only writer and `IMMEDIATE`
/// holds the write lock from the look-ups to the commit. On error the transaction may be
/// left open: the caller rolls it back.
async fn write_batch(
    conn: &mut SqliteConnection,
    batch: &[WriteOp],
    now: i64,
) -> StoreResult<Vec<WriteOutcome>> {
    let mut txn_ids: Vec<&str> = Vec::new();
    let mut event_ids: Vec<&str> = Vec::new();
    for op in batch {
        if let WriteOp::Transaction(t) = op {
            txn_ids.push(&t.txn_id);
            event_ids.extend(t.deliveries.iter().map(|d| d.event_id.as_str()));
        }
    }
    let rows = sqlx::query(BEGIN_AND_LOOK_UP)
        .bind(json(&txn_ids)?)
        .bind(json(&event_ids)?)
        .fetch_all(&mut *conn)
        .await?;
    let mut known_txns: HashSet<String> = HashSet::new();
    let mut known_events: HashSet<String> = HashSet::new();
    let (mut next_id, mut next_seq) = (0i64, 0i64);
    for row in rows {
        match row.get::<i64, _>(0) {
            0 => (next_id, next_seq) = (row.get(1), row.get(2)),
            1 => {
                known_txns.insert(row.get(1));
            }
            _ => {
                known_events.insert(row.get(1));
            }
        }
    }

    // Plan every row, in batch order.
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut txn_seen: HashSet<&str> = HashSet::new();
    let mut event_seen: HashSet<&str> = HashSet::new();
    let mut txn_rows: Vec<&str> = Vec::new();
    let mut event_rows: Vec<EventRow> = Vec::new();
    let mut inbox_rows: Vec<(i64, &str, i64, bool)> = Vec::new();
    let mut memberships: LastWrite<(&str, &str), bool> = LastWrite::default();
    let mut agents: LastWrite<&str, &AgentRecord> = LastWrite::default();
    let mut sent: LastWrite<(&str, &str), &str> = LastWrite::default();
    let mut rooms: LastWrite<&str, &RoomRecord> = LastWrite::default();
    for op in batch {
        let outcome = match op {
            WriteOp::Transaction(t)
                if known_txns.contains(&t.txn_id) || !txn_seen.insert(&t.txn_id) =>
            {
                WriteOutcome::Transaction(TransactionOutcome::Duplicate)
            }
            WriteOp::Transaction(t) => {
                txn_rows.push(&t.txn_id);
                for m in &t.memberships {
                    memberships.set((m.slug.as_str(), m.room_id.as_str()), m.joined);
                }
                let mut per_event = Vec::with_capacity(t.deliveries.len());
                for d in &t.deliveries {
                    let id = d.event_id.as_str();
                    if known_events.contains(id) || !event_seen.insert(id) {
                        per_event.push(None);
                        continue;
                    }
                    next_id += 1;
                    event_rows.push((
                        next_id,
                        id,
                        d.room_id.as_str(),
                        d.sender.as_str(),
                        &d.event_type,
                        d.content.get(),
                        d.origin_server_ts,
                    ));
                    let cursors = d
                        .recipients
                        .iter()
                        .map(|(slug, mentioned)| {
                            next_seq += 1;
                            inbox_rows.push((next_seq, slug.as_str(), next_id, *mentioned));
                            next_seq
                        })
                        .collect();
                    per_event.push(Some(cursors));
                }
                WriteOutcome::Transaction(TransactionOutcome::Recorded(per_event))
            }
            WriteOp::Agent(a) => {
                agents.set(a.slug.as_str(), a);
                WriteOutcome::Done
            }
            WriteOp::Membership(m) => {
                memberships.set((m.slug.as_str(), m.room_id.as_str()), m.joined);
                WriteOutcome::Done
            }
            WriteOp::Sent {
                slug,
                client_txn,
                event_id,
            } => {
                sent.set_first((slug.as_str(), client_txn), event_id.as_str());
                WriteOutcome::Done
            }
            WriteOp::Room(r) => {
                rooms.set(r.room_id.as_str(), r);
                WriteOutcome::Done
            }
        };
        outcomes.push(outcome);
    }

    // Write every row and commit: one round trip.
    let mut w = Statements::default();
    w.rows(INSERT_TXNS, Some(now), &txn_rows)?;
    w.rows(INSERT_EVENTS, Some(now), &event_rows)?;
    w.rows(INSERT_INBOX, Some(now), &inbox_rows)?;
    let (joins, leaves): (Vec<_>, Vec<_>) = memberships.0.iter().partition(|(_, joined)| *joined);
    w.rows(
        INSERT_JOINS,
        None,
        &joins.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
    )?;
    w.rows(
        DELETE_LEAVES,
        None,
        &leaves.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
    )?;
    let agents: Vec<_> = agents
        .0
        .iter()
        .map(|(_, a)| {
            (
                a.slug.as_str(),
                a.registered,
                &a.display_name,
                &a.avatar_url,
            )
        })
        .collect();
    w.rows(UPSERT_AGENTS, Some(now), &agents)?;
    let sent: Vec<_> = sent.0.iter().map(|((s, c), e)| (s, c, e)).collect();
    w.rows(INSERT_SENT, Some(now), &sent)?;
    let rooms: Vec<_> = rooms
        .0
        .iter()
        .map(|(_, r)| (r.room_id.as_str(), &r.alias, &r.space_id))
        .collect();
    w.rows(UPSERT_ROOMS, Some(now), &rooms)?;
    w.sql.push_str("COMMIT");
    sqlx::query_with(&w.sql, w.args).execute(&mut *conn).await?;
    Ok(outcomes)
}

/// `(id, event_id, room_id, sender, type, content, origin_server_ts)`
type EventRow<'a> = (i64, &'a str, &'a str, &'a str, &'a str, &'a str, i64);

fn json<T: serde::Serialize + ?Sized>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("row encoding: {e}")))
}

/// Statements sent as one; sqlx binds the `?` parameters across them in order.
#[derive(Default)]
struct Statements {
    sql: String,
    args: SqliteArguments<'static>,
}

impl Statements {
    /// Appends `statement` with its parameters (the time when it takes one, then the
    /// rows as JSON), unless there are no rows.
    fn rows<T: serde::Serialize>(
        &mut self,
        statement: &str,
        now: Option<i64>,
        rows: &[T],
    ) -> StoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        self.sql.push_str(statement);
        self.sql.push_str("; ");
        let encode = |e| StoreError::Corrupt(format!("row encoding: {e}"));
        if let Some(now) = now {
            self.args.add(now).map_err(encode)?;
        }
        self.args.add(json(rows)?).map_err(encode)?;
        Ok(())
    }
}

/// One value per key, in the order keys first appeared: the last value set, or with
/// [`LastWrite::set_first`] the first.
struct LastWrite<K, V>(Vec<(K, V)>, HashMap<K, usize>);

impl<K, V> Default for LastWrite<K, V> {
    fn default() -> Self {
        Self(Vec::new(), HashMap::new())
    }
}

impl<K: std::hash::Hash + Eq + Copy, V> LastWrite<K, V> {
    fn set(&mut self, key: K, value: V) {
        match self.1.get(&key) {
            Some(&i) => self.0[i].1 = value,
            None => self.set_first(key, value),
        }
    }

    fn set_first(&mut self, key: K, value: V) {
        if let std::collections::hash_map::Entry::Vacant(slot) = self.1.entry(key) {
            slot.insert(self.0.len());
            self.0.push((key, value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{EventDelivery, MembershipChange, TransactionWrite};

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

    fn txn(id: &str, deliveries: Vec<EventDelivery>) -> TransactionWrite {
        TransactionWrite {
            txn_id: id.into(),
            deliveries,
            memberships: vec![],
        }
    }

    fn recorded(o: &TransactionOutcome) -> &[Option<Vec<i64>>] {
        match o {
            TransactionOutcome::Recorded(per_event) => per_event,
            TransactionOutcome::Duplicate => panic!("recorded expected"),
        }
    }

    fn slug(s: &str) -> AgentSlug {
        AgentSlug::parse(s).unwrap()
    }

    #[tokio::test]
    async fn duplicates_within_one_batch() {
        let (_dir, s) = store().await;
        let out = commit(
            &s,
            vec![
                txn("t1", vec![delivery("$e1", &["a"]), delivery("$e1", &["b"])]),
                txn("t1", vec![delivery("$e9", &["a"])]),
                txn("t2", vec![delivery("$e2", &["a"]), delivery("$e1", &["a"])]),
                txn("t2", vec![]),
                txn("t3", vec![delivery("$e3", &["a", "b"])]),
            ],
        )
        .await;
        // Same event id twice in one transaction: the second is not delivered.
        let t1 = recorded(&out[0]);
        assert_eq!(t1.len(), 2);
        assert_eq!(t1[0].as_ref().unwrap().len(), 1);
        assert!(t1[1].is_none());
        // A txn id repeated in the batch is a duplicate and writes nothing ($e9).
        assert_eq!(out[1], TransactionOutcome::Duplicate);
        // An event id of an earlier transaction of the batch is not delivered again.
        let t2 = recorded(&out[2]);
        assert!(t2[0].is_some());
        assert!(t2[1].is_none());
        assert_eq!(out[3], TransactionOutcome::Duplicate);
        // Cursors in batch order, one per recipient in recipient order.
        let c = |o: &TransactionOutcome, i: usize| recorded(o)[i].clone().unwrap();
        let (e1, e2, e3) = (c(&out[0], 0)[0], c(&out[2], 0)[0], c(&out[4], 0));
        assert!(e1 < e2 && e2 < e3[0] && e3[0] < e3[1]);

        let a = s.read_inbox(&slug("a"), 0, 10).await.unwrap();
        assert_eq!(
            a.iter()
                .map(|r| (r.cursor, r.event_id.as_str()))
                .collect::<Vec<_>>(),
            [(e1, "$e1"), (e2, "$e2"), (e3[0], "$e3")]
        );
        let b = s.read_inbox(&slug("b"), 0, 10).await.unwrap();
        assert_eq!(
            b.iter()
                .map(|r| (r.cursor, r.event_id.as_str()))
                .collect::<Vec<_>>(),
            [(e3[1], "$e3")],
            "b got $e1 only through its second, undelivered copy"
        );
        // The whole batch is remembered: a later batch sees every txn id and event id.
        let again = commit(
            &s,
            vec![
                txn("t1", vec![]),
                txn("t2", vec![]),
                txn("t3", vec![]),
                txn("t4", vec![delivery("$e9", &["a"]), delivery("$e3", &["a"])]),
            ],
        )
        .await;
        assert_eq!(
            again[..3],
            [
                TransactionOutcome::Duplicate,
                TransactionOutcome::Duplicate,
                TransactionOutcome::Duplicate
            ]
        );
        let t4 = recorded(&again[3]);
        assert!(t4[0].as_ref().unwrap()[0] > e3[1], "$e9 was never written");
        assert!(t4[1].is_none());
    }

    #[tokio::test]
    async fn cursors_grow_across_batches_and_survive_pruning() {
        let (_dir, s) = store().await;
        let mut last = 0;
        for round in 0..3 {
            let txns = (0..4)
                .map(|t| {
                    txn(
                        &format!("t{round}-{t}"),
                        (0..3)
                            .map(|e| delivery(&format!("$e{round}-{t}-{e}"), &["a", "b"]))
                            .collect(),
                    )
                })
                .collect();
            for o in commit(&s, txns).await {
                for cursors in recorded(&o) {
                    for &c in cursors.as_ref().unwrap() {
                        assert!(c > last, "cursor {c} after {last}");
                        last = c;
                    }
                }
            }
        }
        assert_eq!(last, 3 * 4 * 3 * 2);
        assert_eq!(s.latest_cursor(&slug("a")).await.unwrap(), last - 1);
        assert_eq!(s.latest_cursor(&slug("b")).await.unwrap(), last);
        // Pruning everything leaves no row, yet cursors never go back.
        assert_eq!(s.prune(0, 3600).await.unwrap(), last as u64);
        assert_eq!(s.inbox_depth().await.unwrap(), 0);
        let out = commit(&s, vec![txn("late", vec![delivery("$late", &["a"])])]).await;
        assert_eq!(recorded(&out[0])[0], Some(vec![last + 1]));
        // Explicit cursors keep sqlite_sequence in step: AUTOINCREMENT continues above them.
        let seq: i64 = sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = 'inbox'")
            .fetch_one(&s.pool)
            .await
            .unwrap();
        assert_eq!(seq, last + 1);
    }

    #[tokio::test]
    async fn outcomes_follow_batch_order_across_kinds() {
        let (_dir, s) = store().await;
        let agent = |name: Option<&str>| {
            WriteOp::Agent(AgentRecord {
                slug: slug("a"),
                registered: name.is_some(),
                display_name: name.map(Into::into),
                avatar_url: None,
            })
        };
        let member = |joined| {
            WriteOp::Membership(MembershipChange {
                slug: slug("a"),
                room_id: "!r".try_into().unwrap(),
                joined,
            })
        };
        let sent = |event: &str| WriteOp::Sent {
            slug: slug("a"),
            client_txn: "c1".into(),
            event_id: event.try_into().unwrap(),
        };
        let room = |alias: &str| {
            WriteOp::Room(RoomRecord {
                room_id: "!r".try_into().unwrap(),
                alias: Some(alias.try_into().unwrap()),
                space_id: None,
            })
        };
        let mut t2 = txn("t2", vec![delivery("$e2", &["a"])]);
        t2.memberships.push(MembershipChange {
            slug: slug("b"),
            room_id: "!r".try_into().unwrap(),
            joined: true,
        });
        let batch = vec![
            agent(Some("first")),
            WriteOp::Transaction(txn("t1", vec![delivery("$e1", &["a"])])),
            member(true),
            sent("$s1"),
            agent(Some("second")),
            member(false),
            WriteOp::Transaction(t2),
            room("#one:hs"),
            sent("$s2"),
            member(true),
            room("#two:hs"),
            WriteOp::Transaction(txn("t1", vec![])),
        ];
        let out = s.apply(&batch).await.unwrap();
        assert_eq!(out.len(), batch.len());
        let kinds: Vec<_> = out
            .iter()
            .map(|o| match o {
                WriteOutcome::Done => "done",
                WriteOutcome::Transaction(TransactionOutcome::Duplicate) => "dup",
                WriteOutcome::Transaction(TransactionOutcome::Recorded(_)) => "txn",
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "done", "txn", "done", "done", "done", "done", "txn", "done", "done", "done",
                "done", "dup"
            ]
        );
        let (WriteOutcome::Transaction(t1), WriteOutcome::Transaction(t2)) = (&out[1], &out[6])
        else {
            panic!()
        };
        assert!(recorded(t1)[0].as_ref().unwrap()[0] < recorded(t2)[0].as_ref().unwrap()[0]);
        // The last write of a key wins (the first for sends), as applied one by one.
        let a = s.agent(&slug("a")).await.unwrap().unwrap();
        assert_eq!(a.display_name.as_deref(), Some("second"));
        let mut members = s.memberships().await.unwrap();
        members.sort();
        assert_eq!(
            members
                .iter()
                .map(|(s, r)| (s.as_str(), r.as_str()))
                .collect::<Vec<_>>(),
            [("a", "!r"), ("b", "!r")]
        );
        assert_eq!(
            s.sent_event(&slug("a"), "c1").await.unwrap().unwrap(),
            "$s1"
        );
        let alias: String = sqlx::query_scalar("SELECT alias FROM rooms WHERE room_id = '!r'")
            .fetch_one(&s.pool)
            .await
            .unwrap();
        assert_eq!(alias, "#two:hs");
        // A leave as the last word removes the membership.
        s.apply(&[member(true), member(false)]).await.unwrap();
        assert_eq!(
            s.agent_rooms(&slug("a")).await.unwrap(),
            Vec::<OwnedRoomId>::new()
        );
    }

    #[tokio::test]
    async fn a_big_batch_is_written_whole() {
        let (_dir, s) = store().await;
        // 5,000 events to 4 agents: more rows than bind parameters could carry.
        let deliveries: Vec<_> = (0..5000)
            .map(|i| delivery(&format!("$big{i}"), &["a", "b", "c", "d"]))
            .collect();
        let out = commit(&s, vec![txn("big", deliveries)]).await;
        let cursors: Vec<i64> = recorded(&out[0])
            .iter()
            .flat_map(|c| c.clone().unwrap())
            .collect();
        assert_eq!(cursors, (1..=20_000).collect::<Vec<_>>());
        assert_eq!(s.inbox_depth().await.unwrap(), 20_000);
        let d = s.read_inbox(&slug("d"), 0, 2).await.unwrap();
        assert_eq!(
            d.iter()
                .map(|r| (r.cursor, r.event_id.as_str()))
                .collect::<Vec<_>>(),
            [(4, "$big0"), (8, "$big1")]
        );
    }

    #[tokio::test]
    async fn a_failed_batch_writes_nothing_and_the_writer_recovers() {
        let (_dir, s) = store().await;
        sqlx::query(
            "CREATE TRIGGER boom BEFORE INSERT ON inbox WHEN NEW.slug = 'boom' \
             BEGIN SELECT RAISE(ABORT, 'boom'); END",
        )
        .execute(&s.pool)
        .await
        .unwrap();
        let batch = || {
            vec![
                WriteOp::Transaction(txn("t1", vec![delivery("$e1", &["a"])])),
                WriteOp::Transaction(txn("t2", vec![delivery("$e2", &["boom"])])),
            ]
        };
        assert!(s.apply(&batch()).await.is_err());
        assert_eq!(s.inbox_depth().await.unwrap(), 0);
        sqlx::query("DROP TRIGGER boom")
            .execute(&s.pool)
            .await
            .unwrap();
        let out = s.apply(&batch()).await.unwrap();
        assert_eq!(
            out,
            [
                WriteOutcome::Transaction(TransactionOutcome::Recorded(vec![Some(vec![1])])),
                WriteOutcome::Transaction(TransactionOutcome::Recorded(vec![Some(vec![2])])),
            ],
            "nothing of the failed batch was kept"
        );
    }

    #[tokio::test]
    async fn a_transaction_left_open_is_rolled_back_before_the_next_write() {
        let (_dir, s) = store().await;
        {
            // As a write whose future was dropped half-way would leave the connection.
            let mut w = s.writer.lock().await;
            w.open = true;
            sqlx::query("BEGIN IMMEDIATE; INSERT INTO transactions VALUES ('ghost', 0)")
                .execute(&mut w.conn)
                .await
                .unwrap();
        }
        let out = commit(&s, vec![txn("ghost", vec![delivery("$e1", &["a"])])]).await;
        assert_eq!(out[0], TransactionOutcome::Recorded(vec![Some(vec![1])]));
        assert_eq!(s.prune(10, 3600).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn awkward_text_is_stored_exactly() {
        let (_dir, s) = store().await;
        let content =
            r#"{"body":"quote \" backslash \\ nul \u0000 \ud83d\ude00 😀 \u2028","n":1.50}"#;
        let mut d = delivery("$e\"\u{1}é", &["a"]);
        d.content = RawValue::from_string(content.into()).unwrap();
        d.event_type = "m.\u{0}type \"x\"".into();
        let txn_id = "t\u{0}1\"\\😀";
        let out = commit(&s, vec![txn(txn_id, vec![d.clone()])]).await;
        assert!(recorded(&out[0])[0].is_some());
        let rows = s.read_inbox(&slug("a"), 0, 10).await.unwrap();
        assert_eq!(rows[0].content.get(), content);
        assert_eq!(rows[0].event_id, d.event_id.as_str());
        assert_eq!(rows[0].event_type, d.event_type);
        // The same keys are found again: the txn id is a duplicate, the event id seen.
        let again = commit(&s, vec![txn(txn_id, vec![]), txn("t2", vec![d])]).await;
        assert_eq!(again[0], TransactionOutcome::Duplicate);
        assert_eq!(recorded(&again[1]), [None]);
        s.apply(&[
            WriteOp::Sent {
                slug: slug("a"),
                client_txn: "c\u{0}\"1".into(),
                event_id: "$s".try_into().unwrap(),
            },
            WriteOp::Agent(AgentRecord {
                slug: slug("a"),
                registered: true,
                display_name: Some("Ä \"n\u{0}\"".into()),
                avatar_url: None,
            }),
        ])
        .await
        .unwrap();
        assert_eq!(
            s.sent_event(&slug("a"), "c\u{0}\"1")
                .await
                .unwrap()
                .unwrap(),
            "$s"
        );
        let a = s.agent(&slug("a")).await.unwrap().unwrap();
        assert_eq!(a.display_name.as_deref(), Some("Ä \"n\u{0}\""));
        assert!(a.registered);
        assert_eq!(a.avatar_url, None);
    }

    #[tokio::test]
    async fn the_writer_is_one_wal_connection_with_a_bigger_cache() {
        let (_dir, s) = store().await;
        let mut w = s.writer.lock().await;
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut w.conn)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut w.conn)
            .await
            .unwrap();
        assert_eq!(sync, 1, "NORMAL");
        let cache: i64 = sqlx::query_scalar("PRAGMA cache_size")
            .fetch_one(&mut w.conn)
            .await
            .unwrap();
        assert_eq!(cache, -16384);
        let cache: i64 = sqlx::query_scalar("PRAGMA cache_size")
            .fetch_one(&s.pool)
            .await
            .unwrap();
        assert!(cache > -16384, "readers keep the default cache");
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
