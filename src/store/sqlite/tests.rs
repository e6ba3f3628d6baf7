//! Tests of the SQLite store's internals: its connections' settings, WAL syncs, the
//! writer left with an open transaction. What every backend does is tested in
//! [`crate::store::tests`].

use std::time::Duration;

use super::*;
use crate::store::tests::{commit, delivery, recorded, reused, txn};

async fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    (dir, SqliteStore::open(&url).await.unwrap())
}

#[tokio::test]
async fn commits_are_synced_as_configured() {
    let dir = tempfile::tempdir().unwrap();
    // SQLite itself runs NORMAL (consistent, synced at checkpoints) either way; `Full` adds
    // the WAL sync after each group commit.
    for (sync, want) in [(SyncMode::Full, 1), (SyncMode::Normal, 1)] {
        let url = format!(
            "sqlite://{}",
            dir.path().join(format!("{sync:?}.db")).display()
        );
        let s = SqliteStore::open_with(&url, sync).await.unwrap();
        let reader: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&s.pool)
            .await
            .unwrap();
        let mut writer = s.writer.lock().await;
        let written: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut writer.conn)
            .await
            .unwrap();
        assert_eq!((reader, written), (want, want), "{sync:?}");
        drop(writer);
        assert_eq!(s.wal.is_some(), sync == SyncMode::Full, "{sync:?}");
        s.apply(&[]).await.unwrap();
        s.make_durable().await.unwrap();
    }
}

#[tokio::test]
async fn a_transaction_left_open_is_rolled_back_before_the_next_write() {
    let (_dir, s) = store().await;
    {
        // As a write whose future was dropped half-way would leave the connection.
        let mut w = s.writer.lock().await;
        w.open = true;
        sqlx::query(
            "BEGIN IMMEDIATE; INSERT INTO transactions (txn_id, handled_at) VALUES ('ghost', 0)",
        )
        .execute(&mut w.conn)
        .await
        .unwrap();
    }
    let out = commit(&s, vec![txn("ghost", vec![delivery("$e1", &["a"])])]).await;
    assert_eq!(recorded(&out[0]), [Some(vec![1])]);
    assert!(!reused(&out[0]), "the ghost row was rolled back");
    assert_eq!(
        s.prune(&Retention::inbox(10, Duration::from_secs(3600)))
            .await
            .unwrap(),
        0
    );
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
    assert_eq!(
        sync, 1,
        "NORMAL: store.sync = full syncs the WAL itself, after the commit"
    );
    drop(w);
    assert!(s.wal.is_some(), "full, the default of store.sync");
    let mut w = s.writer.lock().await;
    let page: i64 = sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(&mut w.conn)
        .await
        .unwrap();
    assert_eq!(page, 1024, "a new database gets small pages");
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

/// Events awaiting their room keys are looked up through their partial index, not by
/// reading every event of the room.
#[tokio::test]
async fn events_awaiting_keys_are_found_through_their_index() {
    let (_dir, s) = store().await;
    let plan: Vec<String> = sqlx::query(&format!("EXPLAIN QUERY PLAN {}", e2ee::AWAITING_KEYS))
        .bind("!r")
        .bind(r#"["s1"]"#)
        .bind(10)
        .fetch_all(&s.pool)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get::<String, _>(3))
        .collect();
    assert!(
        plan.iter()
            .any(|step| step.contains("events_awaiting_keys")),
        "{plan:?}"
    );
}
