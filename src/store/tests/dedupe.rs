//! How the store recognises a transaction it handled before: by id and content
//! (homeservers reuse ids), and how long it remembers them.

use std::time::Duration;

use super::{commit, delivery, open, recorded, reused, slug, txn, Backend};
use crate::store::{MembershipChange, Retention, TransactionOutcome};

on_every_backend!(
    a_reused_id_with_other_events_is_a_new_transaction,
    a_reused_id_applies_its_memberships,
    a_row_recorded_without_fingerprint_never_counts_as_a_retry,
    reuse_within_one_batch_is_recognised_too,
    retention_bounds_the_handled_transactions,
);

async fn a_reused_id_with_other_events_is_a_new_transaction(backend: Backend) {
    let s = open(backend).await;
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

async fn a_reused_id_applies_its_memberships(backend: Backend) {
    let s = open(backend).await;
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

async fn a_row_recorded_without_fingerprint_never_counts_as_a_retry(backend: Backend) {
    let s = open(backend).await;
    // A row as written before fingerprints were kept (the literal is text in SQLite, the
    // same bytes in PostgreSQL's BYTEA).
    s.execute("INSERT INTO transactions (txn_id, handled_at) VALUES ('1', 0)")
        .await;
    let out = commit(&s, vec![txn("1", vec![delivery("$e", &["a"])])]).await;
    assert!(reused(&out[0]));
    assert_eq!(recorded(&out[0]), [Some(vec![1])]);
    // From now on the row carries the fingerprint: the retry is recognised.
    let out = commit(&s, vec![txn("1", vec![delivery("$e", &["a"])])]).await;
    assert_eq!(out, [TransactionOutcome::Duplicate]);
}

async fn reuse_within_one_batch_is_recognised_too(backend: Backend) {
    let s = open(backend).await;
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
async fn retention_bounds_the_handled_transactions(backend: Backend) {
    let s = open(backend).await;
    let now = crate::store::now_s();
    // 10 old rows (two days ago), 5 older than the count keeps, 3 recent.
    let rows: Vec<String> = (0..10)
        .map(|i| (i, now - 2 * 86400))
        .chain((10..15).map(|i| (i, now - 600 + i)))
        .chain((15..18).map(|i| (i, now - 10 + i)))
        .map(|(i, at)| format!("('t{i}', {at}, '00')"))
        .collect();
    s.execute(&format!(
        "INSERT INTO transactions (txn_id, handled_at, events_digest) VALUES {}",
        rows.join(", ")
    ))
    .await;
    let ids = match backend {
        Backend::Sqlite => "SELECT txn_id FROM transactions ORDER BY handled_at, txn_id",
        Backend::Postgres => {
            "SELECT convert_from(txn_id, 'UTF8') FROM transactions ORDER BY handled_at, txn_id"
        }
    };
    // By age (the default count keeps far more): the two-day-old rows go.
    s.prune(&Retention::inbox(10, Duration::from_secs(3600)))
        .await
        .unwrap();
    let left = s.texts(ids).await;
    assert_eq!(left.len(), 8);
    assert!(left.iter().all(|t| t.as_str() >= "t10"));
    // By count: the newest three stay.
    let keep = Retention {
        txn_rows: 3,
        ..Retention::inbox(10, Duration::from_secs(3600))
    };
    s.prune(&keep).await.unwrap();
    assert_eq!(s.texts(ids).await, ["t15", "t16", "t17"]);
}
