//! Retention: what it keeps, the floors it leaves, and a large inbox pruned in batches
//! while transactions keep committing (no commit waits long on it).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::value::RawValue;

use super::{commit, delivery, open, open_with, slug, txn, Backend};
use crate::{
    config::SyncMode,
    store::{EventDelivery, InboxEvent, Retention, WriteOp},
};

on_every_backend!(
    retention_keeps_the_newest,
    retention_raises_the_floor_of_the_agents_it_pruned,
);
on_every_backend!(multi_thread: pruning_a_large_inbox_never_holds_a_commit_up_and_leaves_no_content);

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
            decrypted: false,
            redelivered: false,
            json_members: Default::default(),
        }),
        recipients: vec![(slug(to), false)],
    }
}

async fn retention_keeps_the_newest(backend: Backend) {
    let s = open(backend).await;
    let deliveries = (0..5)
        .map(|i| delivery(&format!("$e{i}"), &["a"]))
        .collect();
    commit(&s, vec![txn("t", deliveries)]).await;
    assert_eq!(
        s.prune(&Retention::inbox(2, Duration::from_secs(3600)))
            .await
            .unwrap(),
        3
    );
    let rows = s.read_inbox(&slug("a"), 0, 10).await.unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| r.event.event_id.as_str())
            .collect::<Vec<_>>(),
        ["$e3", "$e4"]
    );
}

/// Retention raises the agent's floor to the newest cursor it removed, and only that
/// agent's; the latest cursor stays where it was when the inbox is emptied; deleting the
/// agent removes its floor.
async fn retention_raises_the_floor_of_the_agents_it_pruned(backend: Backend) {
    let s = open(backend).await;
    let deliveries = (0..5).map(|i| marked(i, "a")).collect();
    commit(&s, vec![txn("t1", deliveries)]).await;
    commit(&s, vec![txn("t2", vec![marked(5, "b")])]).await;
    let (a, b) = (slug("a"), slug("b"));
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
    assert_eq!(s.latest_cursor(&a).await.unwrap(), 0);
}

/// Held by a test that measures latency, so that its runs on the two backends do not
/// compete for the CPU.
static TIMED: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn pruning_a_large_inbox_never_holds_a_commit_up_and_leaves_no_content(backend: Backend) {
    let _alone = TIMED.lock().await;
    // Commits not flushed: what is measured is the wait on retention, not the disk's.
    let s = open_with(backend, SyncMode::Normal).await;
    // 20,000 old events in two agents' inboxes.
    for chunk in 0..20 {
        let deliveries = (0..1000)
            .map(|i| marked(chunk * 1000 + i, if i % 2 == 0 { "a" } else { "b" }))
            .collect();
        commit(&s, vec![txn(&format!("old{chunk}"), deliveries)]).await;
    }
    s.execute("UPDATE inbox SET received_at = 0; UPDATE events SET received_at = 0")
        .await;
    let pruning = Instant::now();
    let pruner = {
        let s = s.shared();
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
    let pruned_in = pruning.elapsed();
    eprintln!(
        "{backend:?}: slowest of {commits} commits beside retention: {slowest:?} \
         (retention took {pruned_in:?})"
    );
    assert_eq!(removed, 20_000);
    assert!(
        commits > 10,
        "too few commits ran beside the pruning: {commits}"
    );
    // SQLite's commits and retention batches take turns on one writing connection: a
    // commit waits for at most one small batch. PostgreSQL's run side by side in server
    // processes of their own and share no rows: what shows there is their competing for
    // the CPU (on a busy two-core test machine every step of a commit slows alike, up to
    // 150 ms seen), so the bound only catches a commit that waited for retention as a
    // whole (seconds here). Other tests sharing the CPU slow commits and retention alike:
    // a commit that waited for retention as a whole would have waited about as long as it
    // took, so a quarter of that is never too tight a bound.
    let bound = match backend {
        Backend::Sqlite => Duration::from_millis(50),
        Backend::Postgres => Duration::from_millis(500),
    }
    .max(pruned_in / 4);
    assert!(
        slowest < bound,
        "a commit waited {slowest:?} on retention ({commits} commits)"
    );
    // The content is gone from the tables...
    assert_eq!(s.inbox_depth().await.unwrap(), 0);
    let left = s
        .numbers("SELECT COUNT(*) FROM events WHERE content <> '{}'")
        .await;
    assert_eq!(left, [0]);
    // ...and, for SQLite (secure_delete) once the WAL is folded in, from its files.
    // PostgreSQL keeps removed row versions until vacuum reuses their space.
    if let Some(dir) = s.directory() {
        // Busy while the store's own checkpoint task copies the WAL: tried again.
        for _ in 0..100 {
            if s.numbers("PRAGMA wal_checkpoint(TRUNCATE)").await == [0] {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for file in ["t.db", "t.db-wal"] {
            let bytes = std::fs::read(dir.join(file)).unwrap_or_default();
            let found = bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes());
            assert!(!found, "pruned content is still in {file}");
        }
    }
}
