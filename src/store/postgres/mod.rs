//! The PostgreSQL store (sqlx): a pool of connections for reads and writes alike, the
//! schema of `migrations/postgres` applied at open (under sqlx's migration lock, so several
//! daemons may start at once). The database itself must exist.
//!
//! A group commit ([`batch`]) is one database transaction of a few statements, its rows
//! passed as arrays (`UNNEST`) to statements whose text never changes. Unlike the SQLite
//! store, which is the only writer of its file and picks ids and cursors itself, this one
//! lets the database decide everything another writer could race it for: which txn ids are
//! recorded (an upsert that locks the row), which event ids are new (`ON CONFLICT DO
//! NOTHING`), which cursors are free (a sequence). So two writers on one database never
//! record a transaction twice, deliver an event twice or share a cursor. What several
//! daemons on one database still need is not here yet: cursors committed in the order they
//! were drawn (see [`batch`]) and a lease on due effects (see [`effects`]); until then,
//! one daemon per database.
//!
//! Durability: with `store.sync = "full"` a commit returns once PostgreSQL has flushed it
//! (`synchronous_commit` on, or whatever stronger level the server is set to); with
//! `"normal"` its sessions run `synchronous_commit = off`: a commit returns before its WAL
//! is flushed, and a server crash can lose the last few hundred milliseconds of commits
//! (never the database's consistency).

use std::{str::FromStr, time::Duration};

use async_trait::async_trait;
use ruma::RoomId;
use secrecy::{ExposeSecret, SecretString};
use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    Connection, Executor, PgConnection, PgPool,
};

use super::{
    now_s, AgentRecord, Commits, InboxEntry, InboxEvent, PendingEffect, ProvisionKey, Retention,
    RoomUpgrade, SentKey, SentRecord, Store, StoreError, StoreResult, WriteOp, WriteOutcome,
};
use crate::{
    config::SyncMode,
    ids::AgentSlug,
    tokens::{
        issued::{TokenId, TokenRecord},
        pattern::SlugRange,
    },
};

/// Most connections one daemon holds.
const MAX_CONNECTIONS: u32 = 16;
/// How long an operation waits for a connection (including connecting, while the server
/// refuses connections) before it fails: a group commit's callers, `/ready` and the start
/// are told the store is unreachable rather than kept waiting.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

pub struct PgStore {
    pool: PgPool,
    /// This process among the database's writers (random), as its commit notices name it.
    origin: u64,
    /// The group commit's own connection, outside the pool (so no liveness ping before
    /// each commit): kept between commits, closed after a failed one (which rolls it back)
    /// and opened again by the next.
    writer: tokio::sync::Mutex<Option<PgConnection>>,
    options: PgConnectOptions,
    sync: SyncMode,
}

impl PgStore {
    /// Connects to the database named by `url` (`postgres://` or `postgresql://`, with
    /// `password` when given), with
    /// commits as durable as `sync` asks, and brings its schema up to date.
    pub async fn open(
        url: &str,
        password: Option<&SecretString>,
        sync: SyncMode,
    ) -> StoreResult<Self> {
        let mut options = PgConnectOptions::from_str(url)?;
        if let Some(password) = password {
            options = options.password(password.expose_secret());
        }
        if sync == SyncMode::Normal {
            options = options.options([("synchronous_commit", "off")]);
        }
        // One connection first, for the migrations: a server that cannot be reached, or
        // refuses the role or the database, says so here (the pool would only say that it
        // timed out waiting for a connection).
        let mut first = PgConnection::connect_with(&options).await?;
        sqlx::migrate!("./migrations/postgres")
            .run(&mut first)
            .await?;
        let _ = first.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .min_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .after_connect(move |conn, _| Box::pin(durable_commits(conn, sync)))
            .connect_with(options.clone())
            .await?;
        Ok(Self {
            pool,
            origin: rand::random(),
            writer: tokio::sync::Mutex::new(None),
            options,
            sync,
        })
    }

    /// The kept connection for group commits with a group commit begun on it; a new one
    /// when there is none, or when the kept one fails at `BEGIN` (the server dropped it
    /// since: a restart, an idle timeout), before anything of the batch was sent.
    async fn writer_begun(&self, kept: Option<PgConnection>) -> StoreResult<PgConnection> {
        if let Some(mut conn) = kept {
            if batch::begin(&mut conn).await.is_ok() {
                return Ok(conn);
            }
        }
        self.begun_writer().await
    }

    /// A new connection for group commits, with a group commit begun on it.
    async fn begun_writer(&self) -> StoreResult<PgConnection> {
        let connect = PgConnection::connect_with(&self.options);
        let mut conn = tokio::time::timeout(ACQUIRE_TIMEOUT, connect)
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)??;
        durable_commits(&mut conn, self.sync).await?;
        batch::begin(&mut conn).await?;
        Ok(conn)
    }

    /// The pool (the cluster's leases and listener use the same database).
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// This process among the database's writers, as its commit notices name it.
    pub fn origin(&self) -> u64 {
        self.origin
    }
}

/// Makes `conn`'s commits as durable as `sync` asks (every connection, as it is opened).
async fn durable_commits(conn: &mut PgConnection, sync: SyncMode) -> Result<(), sqlx::Error> {
    if sync == SyncMode::Full {
        // A server (or role, or database) configured with commits that are not flushed
        // would break "full"; a stronger setting (remote_write, remote_apply) is kept.
        conn.execute(
            "SELECT set_config('synchronous_commit', 'on', false) \
             WHERE current_setting('synchronous_commit') = 'off'",
        )
        .await?;
    }
    Ok(())
}

/// A text column kept as BYTEA (see the migration), read back.
fn utf8(bytes: Vec<u8>, what: &str) -> StoreResult<String> {
    String::from_utf8(bytes).map_err(|_| StoreError::Corrupt(format!("{what}: not UTF-8")))
}

fn slug_of(s: String) -> StoreResult<AgentSlug> {
    AgentSlug::parse(&s).map_err(|e| StoreError::Corrupt(format!("agent slug {s:?}: {e}")))
}

fn room_of(s: String) -> StoreResult<ruma::OwnedRoomId> {
    ruma::OwnedRoomId::try_from(s).map_err(|e| StoreError::Corrupt(format!("room id: {e}")))
}

/// A limit as PostgreSQL takes it (it has no unsigned integers).
fn limit(n: u32) -> i64 {
    i64::from(n)
}

#[async_trait]
impl Commits for PgStore {
    async fn apply(&self, batch: &[WriteOp]) -> StoreResult<Vec<WriteOutcome>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut writer = self.writer.lock().await;
        let mut conn = self.writer_begun(writer.take()).await?;
        // On error `conn` is dropped: closing it rolls the transaction back.
        let outcomes = batch::apply(&mut conn, batch, now_s(), self.origin).await?;
        *writer = Some(conn);
        Ok(outcomes)
    }

    /// Nothing to do: a commit of [`Commits::apply`] has returned only once it is as
    /// durable as `store.sync` asks. With `synchronous_commit` on (`"full"`) a PostgreSQL
    /// `COMMIT` returns after its WAL is flushed; with it off (`"normal"`) there is nothing
    /// this process could flush (the server's WAL writer does, within a few hundred
    /// milliseconds).
    async fn make_durable(&self) -> StoreResult<()> {
        Ok(())
    }
}

#[async_trait]
impl Store for PgStore {
    fn shared(&self) -> Option<&PgStore> {
        Some(self)
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn agent(&self, slug: &AgentSlug) -> StoreResult<Option<AgentRecord>> {
        reads::agent(&self.pool, slug).await
    }

    async fn agents(
        &self,
        after: Option<&AgentSlug>,
        range: &SlugRange,
        limit: u32,
    ) -> StoreResult<Vec<AgentRecord>> {
        reads::agents(&self.pool, after, range, limit).await
    }

    async fn agent_count(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM agents")
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }

    async fn display_names(&self) -> StoreResult<Vec<(AgentSlug, String)>> {
        reads::display_names(&self.pool).await
    }

    async fn memberships(&self) -> StoreResult<Vec<(AgentSlug, ruma::OwnedRoomId)>> {
        reads::memberships(&self.pool).await
    }

    async fn encrypted_rooms(&self) -> StoreResult<Vec<ruma::OwnedRoomId>> {
        let rooms: Vec<String> = sqlx::query_scalar("SELECT room_id FROM encrypted_rooms")
            .fetch_all(&self.pool)
            .await?;
        rooms.into_iter().map(room_of).collect()
    }

    async fn room_upgrades(&self) -> StoreResult<Vec<RoomUpgrade>> {
        reads::room_upgrades(&self.pool).await
    }

    async fn sent_event(&self, key: &SentKey) -> StoreResult<Option<SentRecord>> {
        reads::sent_event(&self.pool, key).await
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
        retention::prune(&self.pool, keep).await
    }

    async fn inbox_depth(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM inbox")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn inbox_depths(&self, slugs: &[AgentSlug]) -> StoreResult<Vec<u64>> {
        inbox::inbox_depths(&self.pool, slugs).await
    }

    async fn due_effects(&self, now: i64, limit: u32) -> StoreResult<Vec<PendingEffect>> {
        effects::due(&self.pool, now, limit).await
    }

    async fn pending_effects(&self) -> StoreResult<u64> {
        effects::count(&self.pool).await
    }

    async fn finish_effect(&self, id: i64) -> StoreResult<()> {
        effects::finish(&self.pool, id).await
    }

    async fn defer_effect(&self, id: i64, attempts: u32, not_before: i64) -> StoreResult<()> {
        effects::defer(&self.pool, id, attempts, not_before).await
    }

    async fn provision_key(&self, txn_id: &str) -> StoreResult<Option<ProvisionKey>> {
        keys::get(&self.pool, txn_id).await
    }

    async fn put_provision_key(&self, key: &ProvisionKey) -> StoreResult<()> {
        keys::put(&self.pool, key).await
    }

    async fn tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        tokens::all(&self.pool).await
    }

    async fn put_token(&self, token: &TokenRecord) -> StoreResult<()> {
        tokens::insert(&self.pool, token, self.origin).await
    }

    async fn delete_token(&self, id: &TokenId) -> StoreResult<bool> {
        tokens::delete(&self.pool, id, self.origin).await
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
        e2ee::put_key_once(&self.pool, name, value).await
    }
}

mod batch;
mod e2ee;
pub use self::batch::NOTICE_CHANNEL;
mod effects;
mod facts;
mod inbox;
mod keys;
mod reads;
mod retention;
#[cfg(test)]
mod tests;
mod tokens;
