//! Tests of what is particular to the PostgreSQL store: its sessions' durability, errors
//! that must not show the URL, and the decisions the database makes when two stores write
//! to one database at once. What every backend does is tested in [`crate::store::tests`].

use std::{collections::HashSet, sync::Arc};

use super::*;
use crate::store::{
    tests::{database::TestDatabase, delivery, txn},
    TransactionOutcome,
};

async fn synchronous_commit(s: &PgStore) -> String {
    sqlx::query_scalar("SELECT current_setting('synchronous_commit')")
        .fetch_one(&s.pool)
        .await
        .unwrap()
}

/// `normal` turns flushing off for the store's sessions; `full` keeps the server's
/// setting, or turns it on where the server (here: the database) has it off.
#[tokio::test]
async fn sessions_commit_as_durably_as_configured() {
    let db = TestDatabase::create().await;
    let normal = PgStore::open(&db.url, None, SyncMode::Normal)
        .await
        .unwrap();
    assert_eq!(synchronous_commit(&normal).await, "off");
    let full = PgStore::open(&db.url, None, SyncMode::Full).await.unwrap();
    assert_eq!(synchronous_commit(&full).await, "on");
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&full.pool)
        .await
        .unwrap();
    sqlx::raw_sql(&format!(
        "ALTER DATABASE {database} SET synchronous_commit = off"
    ))
    .execute(&full.pool)
    .await
    .unwrap();
    let full = PgStore::open(&db.url, None, SyncMode::Full).await.unwrap();
    assert_eq!(synchronous_commit(&full).await, "on");
    full.make_durable().await.unwrap();
}

/// A store that cannot connect says why at once, without the URL (it may hold a
/// password).
#[tokio::test]
async fn a_failed_open_does_not_show_the_password() {
    let err = PgStore::open(
        "postgres://someone:hunter2@127.0.0.1:1/x",
        None,
        SyncMode::Full,
    )
    .await
    .err()
    .expect("nothing listens on port 1");
    let text = format!("{err} {err:?}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(
        text.contains("refused"),
        "the reason, not a pool timeout: {text}"
    );
}

/// Two daemons on one database receive the same transactions at the same moment: each
/// is recorded once (the other daemon's copy is a duplicate), each event reaches its inbox
/// once, and no cursor is handed out twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_writing_one_database_record_each_transaction_once() {
    let db = TestDatabase::create().await;
    let first = Arc::new(
        PgStore::open(&db.url, None, SyncMode::Normal)
            .await
            .unwrap(),
    );
    let second = Arc::new(
        PgStore::open(&db.url, None, SyncMode::Normal)
            .await
            .unwrap(),
    );
    const ROUNDS: usize = 40;
    // Each round: the same transaction to both stores, and one event shared with the
    // next round's transaction (another txn id), so event ids race as well.
    let write = |n: usize| {
        vec![WriteOp::Transaction(txn(
            &format!("t{n}"),
            vec![
                delivery(&format!("$own{n}"), &["a", "b"]),
                delivery(&format!("$shared{}", n / 2), &["a"]),
            ],
        ))]
    };
    let run = |store: Arc<PgStore>| {
        tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for n in 0..ROUNDS {
                outcomes.extend(store.apply(&write(n)).await.unwrap());
            }
            outcomes
        })
    };
    let (one, two) = (run(first.clone()), run(second.clone()));
    let (one, two) = (one.await.unwrap(), two.await.unwrap());
    let mut recorded = 0;
    let mut cursors = Vec::new();
    for (a, b) in one.iter().zip(&two) {
        let outcomes = [a, b].map(|o| match o {
            WriteOutcome::Transaction(t) => t.clone(),
            WriteOutcome::Done => panic!("transaction outcome expected"),
        });
        let fresh: Vec<_> = outcomes
            .iter()
            .filter_map(|t| match t {
                TransactionOutcome::Recorded { cursors, id_reused } => {
                    assert!(!id_reused, "the same content is no reuse");
                    Some(cursors)
                }
                TransactionOutcome::Duplicate => None,
            })
            .collect();
        assert_eq!(fresh.len(), 1, "one copy recorded: {outcomes:?}");
        recorded += 1;
        cursors.extend(fresh[0].iter().flatten().flatten().copied());
    }
    assert_eq!(recorded, ROUNDS);
    let unique: HashSet<_> = cursors.iter().collect();
    assert_eq!(unique.len(), cursors.len(), "no cursor handed out twice");
    // Every event once per recipient: own events to a and b, shared ones to a once.
    let a = AgentSlug::parse("a").unwrap();
    let inbox = first.read_inbox(&a, 0, 1000).await.unwrap();
    let ids: Vec<_> = inbox.iter().map(|e| e.event.event_id.to_string()).collect();
    let distinct: HashSet<_> = ids.iter().collect();
    assert_eq!(ids.len(), distinct.len(), "an event twice in a's inbox");
    assert_eq!(ids.len(), ROUNDS + ROUNDS / 2);
    assert_eq!(first.inbox_depth().await.unwrap() as usize, cursors.len());
}

/// The backend process of the group commits' own connection, and its durability setting.
async fn writer_session(store: &PgStore) -> (i32, String) {
    let mut writer = store.writer.lock().await;
    let conn = writer.as_mut().expect("a commit keeps its connection");
    sqlx::query_as("SELECT pg_backend_pid(), current_setting('synchronous_commit')")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

/// The group commits' connection commits as durably as configured, is kept between
/// commits, and when the server drops it (a restart, an idle timeout) the next commit opens
/// another and succeeds.
#[tokio::test]
async fn the_group_commit_connection_is_kept_and_replaced_when_dropped() {
    let db = TestDatabase::create().await;
    let store = PgStore::open(&db.url, None, SyncMode::Full).await.unwrap();
    let one = |n: &str| {
        vec![WriteOp::Transaction(txn(
            n,
            vec![delivery(&format!("${n}"), &["a"])],
        ))]
    };
    store.apply(&one("t1")).await.unwrap();
    let (pid, sync) = writer_session(&store).await;
    assert_eq!(sync, "on");
    store.apply(&one("t2")).await.unwrap();
    assert_eq!(writer_session(&store).await.0, pid, "kept between commits");
    let terminated: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert!(terminated);
    let outcomes = store.apply(&one("t3")).await.unwrap();
    assert!(
        matches!(
            &outcomes[..],
            [WriteOutcome::Transaction(
                TransactionOutcome::Recorded { .. }
            )]
        ),
        "{outcomes:?}"
    );
    assert_ne!(writer_session(&store).await.0, pid, "a new connection");
    let a = AgentSlug::parse("a").unwrap();
    let inbox = store.read_inbox(&a, 0, 10).await.unwrap();
    assert_eq!(inbox.len(), 3, "every commit's event in the inbox once");
}
