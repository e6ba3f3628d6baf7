//! Tests of how the SQLite store recognises a transaction it handled before: by id and
//! content (homeservers reuse ids), and how long it remembers them.

use super::tests::{commit, delivery, recorded, reused, slug, store, txn};
use std::time::Duration;

use super::*;
use crate::store::{MembershipChange, TransactionOutcome};

#[tokio::test]
async fn a_reused_id_with_other_events_is_a_new_transaction() {
    let (_dir, s) = store().await;
    let before = txn("1", vec![delivery("$before", &["a"])]);
    assert!(!reused(&commit(&s, vec![before.clone()]).await[0]));
    // The homeserver restarted and numbers from 1 again: other events under id 1.
    let after = txn("1", vec![delivery("$after", &["a"])]);
    let out = commit(&s, vec![after.clone()]).await;
    assert!(reused(&out[0]), "{out:?}");
    assert!(recorded(&out[0])[0].is_some(), "$after reaches the inbox");
    // A retry of the new transaction is a duplicate; so is one of the old, whose events
    // were all seen: it is processed, but delivers nothing twice.
    assert_eq!(
        commit(&s, vec![after]).await,
        [TransactionOutcome::Duplicate]
    );
    let old_again = commit(&s, vec![before]).await;
    assert_eq!(recorded(&old_again[0]), [None]);
    // The same events under a new id: no event delivered twice.
    let moved = commit(&s, vec![txn("2", vec![delivery("$after", &["a"])])]).await;
    assert_eq!(recorded(&moved[0]), [None]);
    let inbox = s.read_inbox(&slug("a"), 0, 10).await.unwrap();
    let ids: Vec<_> = inbox.iter().map(|r| r.event.event_id.as_str()).collect();
    assert_eq!(ids, ["$before", "$after"]);
}

#[tokio::test]
async fn a_reused_id_applies_its_memberships() {
    let (_dir, s) = store().await;
    let join = |event: &str, joined| {
        let mut t = txn("7", vec![delivery(event, &["a"])]);
        t.memberships.push(MembershipChange {
            slug: slug("b"),
            room_id: "!r".try_into().unwrap(),
            joined,
        });
        t
    };
    commit(&s, vec![join("$x", true)]).await;
    assert_eq!(s.memberships().await.unwrap().len(), 1);
    // Another transaction under id 7 says b left: it counts.
    assert!(reused(&commit(&s, vec![join("$y", false)]).await[0]));
    assert!(s.memberships().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_row_recorded_without_fingerprint_never_counts_as_a_retry() {
    let (_dir, s) = store().await;
    sqlx::query("INSERT INTO transactions (txn_id, handled_at) VALUES ('1', 0)")
        .execute(&s.pool)
        .await
        .unwrap();
    let out = commit(&s, vec![txn("1", vec![delivery("$e", &["a"])])]).await;
    assert!(reused(&out[0]));
    assert_eq!(recorded(&out[0]), [Some(vec![1])]);
    // From now on the row carries the fingerprint: the retry is recognised.
    let out = commit(&s, vec![txn("1", vec![delivery("$e", &["a"])])]).await;
    assert_eq!(out, [TransactionOutcome::Duplicate]);
}

#[tokio::test]
async fn reuse_within_one_batch_is_recognised_too() {
    let (_dir, s) = store().await;
    let out = commit(
        &s,
        vec![
            txn("1", vec![delivery("$a", &["a"])]),
            txn("1", vec![delivery("$b", &["a"])]),
            txn("1", vec![delivery("$b", &["a"])]),
        ],
    )
    .await;
    assert!(!reused(&out[0]) && reused(&out[1]));
    assert_eq!(out[2], TransactionOutcome::Duplicate);
    assert_eq!(s.inbox_depth().await.unwrap(), 2);
}

/// Handled transactions stay bounded: by age, and by count (the newest kept).
#[tokio::test]
async fn retention_bounds_the_handled_transactions() {
    let (_dir, s) = store().await;
    let now = crate::store::now_s();
    // 10 old rows (two days ago), 5 older than the count keeps, 3 recent.
    for (i, at) in (0..10)
        .map(|i| (i, now - 2 * 86400))
        .chain((10..15).map(|i| (i, now - 600 + i)))
        .chain((15..18).map(|i| (i, now - 10 + i)))
    {
        sqlx::query(
            "INSERT INTO transactions (txn_id, handled_at, events_digest) VALUES (?, ?, '00')",
        )
        .bind(format!("t{i}"))
        .bind(at)
        .execute(&s.pool)
        .await
        .unwrap();
    }
    let left = || async {
        sqlx::query_scalar::<_, String>(
            "SELECT txn_id FROM transactions ORDER BY handled_at, txn_id",
        )
        .fetch_all(&s.pool)
        .await
        .unwrap()
    };
    // By age (the default count keeps far more): the two-day-old rows go.
    s.prune(&Retention::inbox(10, Duration::from_secs(3600)))
        .await
        .unwrap();
    assert_eq!(left().await.len(), 8);
    assert!(left().await.iter().all(|t| t.as_str() >= "t10"));
    // By count: the newest three stay.
    let keep = Retention {
        txn_rows: 3,
        ..Retention::inbox(10, Duration::from_secs(3600))
    };
    s.prune(&keep).await.unwrap();
    assert_eq!(left().await, ["t15", "t16", "t17"]);
}
