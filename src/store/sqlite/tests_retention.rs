//! Retention under load: a large, old inbox is pruned in batches while transactions keep
//! committing; no commit waits long on it, and the pruned content is gone from the file.

use std::time::{Duration, Instant};

use super::tests::{commit, txn};
use super::*;
use crate::store::{EventDelivery, InboxEvent};
use serde_json::value::RawValue;

const MARKER: &str = "retained-secret-7f3a";

fn marked(i: usize, to: &str) -> EventDelivery {
    EventDelivery {
        event: Arc::new(InboxEvent {
            event_id: format!("$old{i}").try_into().unwrap(),
            room_id: "!r".try_into().unwrap(),
            sender: "@h:hs".try_into().unwrap(),
            event_type: "m.room.message".into(),
            content: RawValue::from_string(format!(r#"{{"body":"{MARKER} {i}"}}"#)).unwrap(),
            origin_server_ts: 1,
            json_members: Default::default(),
        }),
        recipients: vec![(AgentSlug::parse(to).unwrap(), false)],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_a_large_inbox_never_holds_a_commit_up_and_leaves_no_content() {
    // synchronous = NORMAL: what is measured is the wait on retention, not the disk's fsync.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let s = Arc::new(
        SqliteStore::open_with(&url, SyncMode::Normal)
            .await
            .unwrap(),
    );
    // 20,000 old events in two agents' inboxes.
    for chunk in 0..20 {
        let deliveries = (0..1000)
            .map(|i| marked(chunk * 1000 + i, if i % 2 == 0 { "a" } else { "b" }))
            .collect();
        commit(&s, vec![txn(&format!("old{chunk}"), deliveries)]).await;
    }
    {
        let mut w = s.writer.lock().await;
        sqlx::query("UPDATE inbox SET received_at = 0")
            .execute(&mut w.conn)
            .await
            .unwrap();
        sqlx::query("UPDATE events SET received_at = 0")
            .execute(&mut w.conn)
            .await
            .unwrap();
    }
    let pruner = {
        let s = s.clone();
        tokio::spawn(async move {
            s.prune(&Retention::inbox(10_000, Duration::from_secs(3600)))
                .await
        })
    };
    // W1-style load meanwhile: one small transaction after another, each timed.
    let mut slowest = Duration::ZERO;
    let mut commits = 0;
    while !pruner.is_finished() {
        let t = txn(&format!("live{commits}"), vec![]);
        let started = Instant::now();
        commit(&s, vec![t]).await;
        slowest = slowest.max(started.elapsed());
        commits += 1;
    }
    let removed = pruner.await.unwrap().unwrap();
    eprintln!("slowest of {commits} commits beside retention: {slowest:?}");
    assert_eq!(removed, 20_000);
    assert!(
        commits > 10,
        "too few commits ran beside the pruning: {commits}"
    );
    assert!(
        slowest < Duration::from_millis(50),
        "a commit waited {slowest:?} on retention ({commits} commits)"
    );
    // The content is gone from the tables and, once the WAL is folded in, from the file.
    assert_eq!(s.inbox_depth().await.unwrap(), 0);
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE content != '{}'")
        .fetch_one(&s.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
    {
        let mut w = s.writer.lock().await;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut w.conn)
            .await
            .unwrap();
    }
    for file in ["t.db", "t.db-wal"] {
        let bytes = std::fs::read(dir.path().join(file)).unwrap_or_default();
        let found = bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes());
        assert!(!found, "pruned content is still in {file}");
    }
}

/// Retention raises the agent's floor to the newest cursor it removed, and only that
/// agent's; the latest cursor stays where it was when the inbox is emptied; deleting the
/// agent removes its floor.
#[tokio::test]
async fn retention_raises_the_floor_of_the_agents_it_pruned() {
    let (_dir, s) = super::tests::store().await;
    let deliveries = (0..5).map(|i| marked(i, "a")).collect();
    commit(&s, vec![txn("t1", deliveries)]).await;
    commit(&s, vec![txn("t2", vec![marked(5, "b")])]).await;
    let a = AgentSlug::parse("a").unwrap();
    let b = AgentSlug::parse("b").unwrap();
    let cursors: Vec<i64> = s
        .read_inbox(&a, 0, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.cursor)
        .collect();
    assert_eq!(cursors.len(), 5);
    assert_eq!(s.inbox_floor(&a).await.unwrap(), 0);
    // Two kept per agent: a loses its three oldest, b nothing.
    s.prune(&Retention::inbox(2, Duration::from_secs(3600)))
        .await
        .unwrap();
    assert_eq!(s.inbox_floor(&a).await.unwrap(), cursors[2]);
    assert_eq!(s.inbox_floor(&b).await.unwrap(), 0);
    // None kept: the floor is the newest cursor, which stays the latest.
    s.prune(&Retention::inbox(0, Duration::from_secs(3600)))
        .await
        .unwrap();
    assert_eq!(s.inbox_floor(&a).await.unwrap(), cursors[4]);
    assert_eq!(s.latest_cursor(&a).await.unwrap(), cursors[4]);
    s.apply(&[WriteOp::DeleteAgent(a.clone())]).await.unwrap();
    assert_eq!(s.inbox_floor(&a).await.unwrap(), 0);
}
