//! The embedded SQLite store (sqlx): WAL journal, durable commits by default (every commit
//! on disk before it is acknowledged: one WAL sync per group commit, not per row, and off
//! the writing connection, see [`wal_sync`]; `store.sync = "normal"` trades that for
//! speed), migrations applied at open.
//!
//! Two kinds of connection: a pool for reads, and one dedicated connection for every write
//! (the group commits of [`super::writer`] and retention). sqlx runs the statements of a
//! connection on its own worker thread, so every statement sent costs a thread round trip:
//! [`SqliteStore::apply`] therefore writes a whole group commit in two round trips (look-ups,
//! then one multi-row insert per table and the commit), rows passed as JSON arrays to
//! statements whose text never changes, and it picks event ids and inbox cursors itself
//! inside an immediate (write-locked) transaction on the only writing connection.

use std::{str::FromStr, sync::Arc, time::Duration};

use async_trait::async_trait;
use ruma::{OwnedEventId, OwnedRoomId, RoomId};
use sqlx::{
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    ConnectOptions, Row, SqlitePool,
};
use tokio::sync::Mutex;

use self::wal_sync::WalSync;
use super::{
    now_s, AgentRecord, Commits, InboxEntry, InboxEvent, PendingEffect, ProvisionKey,
    RequestDigest, Retention, RoomUpgrade, SentKey, SentRecord, Store, StoreError, StoreResult,
    WriteOp, WriteOutcome,
};
use crate::{
    config::SyncMode,
    ids::AgentSlug,
    tokens::{
        issued::{TokenId, TokenRecord},
        pattern::SlugRange,
    },
};

pub struct SqliteStore {
    /// Reads; any number run concurrently (WAL readers do not block the writer).
    pool: SqlitePool,
    /// The only connection that writes: group commits and retention. Holding it (rather
    /// than taking one from a pool) saves the pool's acquire and keeps its prepared
    /// statements warm; being the only writer is what lets [`write_batch`] pick row ids.
    writer: Arc<Mutex<Writer>>,
    /// With `store.sync = "full"` on a database file: the WAL sync that makes commits
    /// durable.
    wal: Option<Arc<WalSync>>,
}

impl SqliteStore {
    /// Opens with durable commits (the default).
    pub async fn open(url: &str) -> StoreResult<Self> {
        Self::open_with(url, SyncMode::Full).await
    }

    /// Opens with the durability `sync` asks for: `Full` syncs the WAL after every group
    /// commit (one fsync, shared by every write in it), `Normal` only at checkpoints. Both
    /// run SQLite's `synchronous = NORMAL`; `Full` adds [`WalSync`].
    pub async fn open_with(url: &str, sync: SyncMode) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?;
        let file = options.get_filename();
        let wal = (sync == SyncMode::Full && file != std::path::Path::new(":memory:"))
            .then(|| WalSync::new(file));
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(false)
            // Small pages for a new database (an existing one keeps its size): a message to
            // a room of N agents adds one row to each of N agents' inbox index ranges, so a
            // commit writes about N pages to the WAL. At 1 KiB instead of 4 KiB the WAL and
            // its checkpoints move a quarter of the bytes (W3 in docs/performance.md).
            .page_size(1024)
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
        // 16 MiB (allocated as used; readers keep SQLite's default of about 2 MiB). It never
        // checkpoints inside a commit: the checkpoint task does (see `checkpoint`).
        let conn = options
            .pragma("cache_size", "-16384")
            // Removed content is overwritten in the file (retention), not only unlinked.
            .pragma("secure_delete", "on")
            .pragma("wal_autocheckpoint", "0")
            .connect()
            .await?;
        let writer = Arc::new(Mutex::new(Writer { conn, open: false }));
        tokio::spawn(checkpoint::run(pool.clone(), Arc::downgrade(&writer)));
        Ok(Self { pool, writer, wal })
    }
}

impl SqliteStore {
    /// The read pool, for tests that look at rows directly.
    #[cfg(test)]
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The writing connection, for a rare write of its own (tokens, keys, effects):
    /// whatever an earlier write left open is rolled back first. The caller makes the
    /// write durable with [`Self::durable`].
    async fn writing(&self) -> tokio::sync::MutexGuard<'_, Writer> {
        let mut writer = self.writer.lock().await;
        writer.settle().await;
        writer
    }

    /// A rare write's result, once the write is durable.
    async fn durable<T>(&self, written: StoreResult<T>) -> StoreResult<T> {
        let done = written?;
        self.make_durable().await?;
        Ok(done)
    }
}

fn slug_of(s: String) -> StoreResult<AgentSlug> {
    AgentSlug::parse(&s).map_err(|e| StoreError::Corrupt(format!("agent slug {s:?}: {e}")))
}

#[async_trait]
impl Commits for SqliteStore {
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

    async fn make_durable(&self) -> StoreResult<()> {
        match &self.wal {
            Some(wal) => wal.sync().await,
            None => Ok(()),
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
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

    async fn agents(
        &self,
        after: Option<&AgentSlug>,
        range: &SlugRange,
        limit: u32,
    ) -> StoreResult<Vec<AgentRecord>> {
        let rows = sqlx::query(
            "SELECT slug, registered, display_name, avatar_url FROM agents \
             WHERE slug > ? AND slug >= ? AND (? IS NULL OR slug < ?) ORDER BY slug LIMIT ?",
        )
        .bind(after.map_or("", AgentSlug::as_str))
        .bind(&range.from)
        .bind(range.to.as_deref())
        .bind(range.to.as_deref())
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

    async fn agent_count(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM agents")
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
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

    async fn room_upgrades(&self) -> StoreResult<Vec<RoomUpgrade>> {
        let rows = sqlx::query("SELECT room_id, replacement FROM room_upgrades")
            .fetch_all(&self.pool)
            .await?;
        let room = |id: String| {
            OwnedRoomId::try_from(id).map_err(|e| StoreError::Corrupt(format!("room id: {e}")))
        };
        rows.into_iter()
            .map(|r| {
                Ok(RoomUpgrade {
                    room_id: room(r.get(0))?,
                    replacement: room(r.get(1))?,
                })
            })
            .collect()
    }

    async fn encrypted_rooms(&self) -> StoreResult<Vec<OwnedRoomId>> {
        let rooms: Vec<String> = sqlx::query_scalar("SELECT room_id FROM encrypted_rooms")
            .fetch_all(&self.pool)
            .await?;
        rooms
            .into_iter()
            .map(|room| {
                OwnedRoomId::try_from(room)
                    .map_err(|e| StoreError::Corrupt(format!("room id: {e}")))
            })
            .collect()
    }

    async fn sent_event(&self, key: &SentKey) -> StoreResult<Option<SentRecord>> {
        let row = sqlx::query(
            "SELECT request_digest, event_id FROM sent \
             WHERE slug = ? AND room_id = ? AND client_txn_id = ?",
        )
        .bind(key.slug.as_str())
        .bind(key.room_id.as_str())
        .bind(&key.client_txn)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let corrupt = |what: &str| StoreError::Corrupt(format!("sent key: {what}"));
            Ok(SentRecord {
                request: RequestDigest::from_hex(r.get(0)).ok_or_else(|| corrupt("digest"))?,
                event_id: OwnedEventId::try_from(r.get::<String, _>(1))
                    .map_err(|_| corrupt("event id"))?,
            })
        })
        .transpose()
    }

    async fn read_inbox(
        &self,
        slug: &AgentSlug,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<InboxEntry>> {
        inbox::read_inbox(&self.pool, slug, after, limit).await
    }

    async fn awaiting_keys(
        &self,
        room: &RoomId,
        sessions: &[&str],
    ) -> StoreResult<Vec<InboxEvent>> {
        e2ee::awaiting_keys(&self.pool, room, sessions).await
    }

    async fn latest_cursor(&self, slug: &AgentSlug) -> StoreResult<i64> {
        inbox::latest_cursor(&self.pool, slug).await
    }

    async fn inbox_floor(&self, slug: &AgentSlug) -> StoreResult<i64> {
        inbox::inbox_floor(&self.pool, slug).await
    }

    async fn prune(&self, keep: &Retention) -> StoreResult<u64> {
        retention::prune(&self.pool, &self.writer, keep).await
    }

    async fn due_effects(&self, now: i64, limit: u32) -> StoreResult<Vec<PendingEffect>> {
        effects::due(&self.pool, now, limit).await
    }

    async fn pending_effects(&self) -> StoreResult<u64> {
        effects::count(&self.pool).await
    }

    async fn finish_effect(&self, id: i64) -> StoreResult<()> {
        self.durable(effects::finish(&mut *self.writing().await, id).await)
            .await
    }

    async fn defer_effect(&self, id: i64, attempts: u32, not_before: i64) -> StoreResult<()> {
        let deferred = effects::defer(&mut *self.writing().await, id, attempts, not_before).await;
        self.durable(deferred).await
    }

    async fn provision_key(&self, txn_id: &str) -> StoreResult<Option<ProvisionKey>> {
        keys::get(&self.pool, txn_id).await
    }

    async fn put_provision_key(&self, key: &ProvisionKey) -> StoreResult<()> {
        self.durable(keys::put(&mut *self.writing().await, key).await)
            .await
    }

    async fn tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        tokens::all(&self.pool).await
    }

    async fn put_token(&self, token: &TokenRecord) -> StoreResult<()> {
        self.durable(tokens::insert(&mut *self.writing().await, token).await)
            .await
    }

    async fn delete_token(&self, id: &TokenId) -> StoreResult<bool> {
        self.durable(tokens::delete(&mut *self.writing().await, id).await)
            .await
    }

    async fn e2ee_items(&self, slug: &AgentSlug) -> StoreResult<Vec<(String, String, Vec<u8>)>> {
        e2ee::items(&self.pool, slug).await
    }

    async fn e2ee_enrolled(&self, slugs: &[AgentSlug]) -> StoreResult<Vec<AgentSlug>> {
        e2ee::enrolled(&self.pool, slugs).await
    }

    async fn e2ee_key(&self, name: &str) -> StoreResult<Option<Vec<u8>>> {
        e2ee::key(&self.pool, name).await
    }

    async fn put_e2ee_key_once(&self, name: &str, value: &[u8]) -> StoreResult<Vec<u8>> {
        self.durable(e2ee::put_key_once(&mut *self.writing().await, name, value).await)
            .await
    }

    async fn inbox_depth(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM inbox")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn inbox_depths(&self, slugs: &[AgentSlug]) -> StoreResult<Vec<u64>> {
        inbox::inbox_depths(&self.pool, slugs).await
    }
}

mod batch;
mod checkpoint;
mod e2ee;
mod effects;
mod inbox;
mod keys;
mod retention;
#[cfg(test)]
mod tests;
mod tokens;
mod wal_sync;

use batch::{write_batch, Writer};
