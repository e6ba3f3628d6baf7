//! The store's tests, one suite for every backend: each test is an `async fn(Backend)`
//! that [`on_every_backend!`] runs twice, as `<test>::sqlite` (a file in a temporary
//! directory) and `<test>::postgres` (a database of its own on the test server, see
//! [`database`]). Tests of one backend's internals live with that backend.

use std::{ops::Deref, sync::Arc};

use serde_json::value::RawValue;
use sqlx::{PgPool, Row, SqlitePool};

use super::{
    fingerprint::{FingerprintBuilder, FingerprintKey},
    postgres::PgStore,
    sqlite::SqliteStore,
    EventDelivery, InboxEvent, SentKey, Store, TransactionOutcome, TransactionWrite, WriteOp,
    WriteOutcome,
};
use crate::{config::SyncMode, ids::AgentSlug};

/// Runs each named test (an `async fn(Backend)` of the calling module) once per backend:
/// `<test>::sqlite` and `<test>::postgres`. `multi_thread:` first runs them on a runtime of
/// two worker threads.
macro_rules! on_every_backend {
    (multi_thread: $($test:ident),+ $(,)?) => {$(
        mod $test {
            use $crate::store::tests::Backend;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$test(Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$test(Backend::Postgres).await
            }
        }
    )+};
    ($($test:ident),+ $(,)?) => {$(
        mod $test {
            use $crate::store::tests::Backend;

            #[tokio::test]
            async fn sqlite() {
                super::$test(Backend::Sqlite).await
            }

            #[tokio::test]
            async fn postgres() {
                super::$test(Backend::Postgres).await
            }
        }
    )+};
}

mod batch;
pub(crate) mod database;
mod dedupe;
mod e2ee;
mod late_keys;
mod reads;
mod retention;
mod rooms;
mod tokens;
mod writes;

/// A backend the suite runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty store of one backend, used as a `dyn Store`; removed when dropped.
pub(crate) struct TestStore {
    store: Arc<dyn Store>,
    raw: Raw,
    /// The file's directory or the database; dropped after the store.
    place: Place,
}

/// The store's own pool, for the few tests that set up or inspect rows directly.
enum Raw {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

enum Place {
    Directory(tempfile::TempDir),
    /// Held to be dropped (with the database) when the test ends.
    Database {
        _database: database::TestDatabase,
    },
}

/// A fresh store of `backend` with durable commits (the default).
pub(crate) async fn open(backend: Backend) -> TestStore {
    open_with(backend, SyncMode::Full).await
}

/// A fresh store of `backend`, committing as `sync` asks.
pub(crate) async fn open_with(backend: Backend, sync: SyncMode) -> TestStore {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("t.db").display());
            let store = SqliteStore::open_with(&url, sync).await.unwrap();
            TestStore {
                raw: Raw::Sqlite(store.pool().clone()),
                store: Arc::new(store),
                place: Place::Directory(dir),
            }
        }
        Backend::Postgres => {
            let database = database::TestDatabase::create().await;
            let store = PgStore::open(&database.url, None, sync).await.unwrap();
            TestStore {
                raw: Raw::Postgres(store.pool().clone()),
                store: Arc::new(store),
                place: Place::Database {
                    _database: database,
                },
            }
        }
    }
}

impl Deref for TestStore {
    type Target = dyn Store;

    fn deref(&self) -> &Self::Target {
        &*self.store
    }
}

impl TestStore {
    /// The store, to share with spawned tasks.
    pub(crate) fn shared(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }

    /// The SQLite file's directory (`None` for a database server).
    pub(crate) fn directory(&self) -> Option<&std::path::Path> {
        match &self.place {
            Place::Directory(dir) => Some(dir.path()),
            Place::Database { .. } => None,
        }
    }

    /// Runs `sql` (one or more statements) directly, outside the store.
    pub(crate) async fn execute(&self, sql: &str) {
        match &self.raw {
            Raw::Sqlite(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop),
            Raw::Postgres(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The first column of what `sql` answers, each a BIGINT (SQLite's INTEGER).
    pub(crate) async fn numbers(&self, sql: &str) -> Vec<i64> {
        match &self.raw {
            Raw::Sqlite(pool) => sqlx::query(sql).fetch_all(pool).await.map(first::<i64, _>),
            Raw::Postgres(pool) => sqlx::query(sql).fetch_all(pool).await.map(first::<i64, _>),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The first column of what `sql` answers, each text.
    pub(crate) async fn texts(&self, sql: &str) -> Vec<String> {
        match &self.raw {
            Raw::Sqlite(pool) => sqlx::query(sql)
                .fetch_all(pool)
                .await
                .map(first::<String, _>),
            Raw::Postgres(pool) => sqlx::query(sql)
                .fetch_all(pool)
                .await
                .map(first::<String, _>),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

/// The first column of `rows`.
fn first<T, R>(rows: Vec<R>) -> Vec<T>
where
    R: Row,
    T: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    rows.iter().map(|r| r.get::<T, _>(0)).collect()
}

pub(crate) fn slug(s: &str) -> AgentSlug {
    AgentSlug::parse(s).unwrap()
}

pub(crate) fn sent_key(agent: &str, room: &str, txn: &str) -> SentKey {
    SentKey {
        slug: slug(agent),
        room_id: room.try_into().unwrap(),
        client_txn: txn.into(),
    }
}

/// A store, or what holds one (a [`TestStore`]).
pub(crate) trait AsStore {
    fn as_store(&self) -> &dyn Store;
}

impl<S: Store> AsStore for S {
    fn as_store(&self) -> &dyn Store {
        self
    }
}

impl AsStore for TestStore {
    fn as_store(&self) -> &dyn Store {
        &*self.store
    }
}

/// Applies `txns` as one batch; their outcomes.
pub(crate) async fn commit(
    s: &impl AsStore,
    txns: Vec<TransactionWrite>,
) -> Vec<TransactionOutcome> {
    let ops: Vec<_> = txns.into_iter().map(WriteOp::Transaction).collect();
    s.as_store()
        .apply(&ops)
        .await
        .unwrap()
        .into_iter()
        .map(|o| match o {
            WriteOutcome::Transaction(t) => t,
            WriteOutcome::Done => panic!("transaction outcome expected"),
        })
        .collect()
}

/// A message `event_id` in `!r` for the agents `to`, none mentioned.
pub(crate) fn delivery(event_id: &str, to: &[&str]) -> EventDelivery {
    EventDelivery {
        event: Arc::new(InboxEvent {
            event_id: event_id.try_into().unwrap(),
            room_id: "!r".try_into().unwrap(),
            sender: "@h:hs".try_into().unwrap(),
            event_type: "m.room.message".into(),
            content: RawValue::from_string(r#"{"body":"x"}"#.into()).unwrap(),
            origin_server_ts: 1,
            decrypted: false,
            redelivered: false,
            json_members: Default::default(),
        }),
        recipients: to.iter().map(|s| (slug(s), false)).collect(),
    }
}

/// A transaction carrying `deliveries`, fingerprinted by their event ids as routing does.
pub(crate) fn txn(id: &str, deliveries: Vec<EventDelivery>) -> TransactionWrite {
    let mut fingerprint = FingerprintBuilder::new(&FingerprintKey::derive("test"));
    deliveries
        .iter()
        .for_each(|d| fingerprint.event_id(d.event.event_id.as_str()));
    TransactionWrite {
        txn_id: id.into(),
        fingerprint: fingerprint.finish(),
        deliveries,
        memberships: vec![],
        ..Default::default()
    }
}

pub(crate) fn recorded(o: &TransactionOutcome) -> &[Option<Vec<i64>>] {
    match o {
        TransactionOutcome::Recorded { cursors, .. } => cursors,
        TransactionOutcome::Duplicate => panic!("recorded expected"),
    }
}

/// Whether `o` recorded a transaction under a reused id.
pub(crate) fn reused(o: &TransactionOutcome) -> bool {
    matches!(
        o,
        TransactionOutcome::Recorded {
            id_reused: true,
            ..
        }
    )
}
