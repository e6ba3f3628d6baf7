//! Batched writes: dedupe of transactions and events, cursors, outcomes in batch order.

use std::time::Duration;

use super::{commit, delivery, open, recorded, reused, sent_key, slug, txn, Backend};
use crate::store::{
    AgentRecord, MembershipChange, RequestDigest, Retention, RoomRecord, TransactionOutcome,
    WriteOp, WriteOutcome,
};

on_every_backend!(
    transactions_are_recorded_once_and_events_deduplicated,
    duplicates_within_one_batch,
    cursors_grow_across_batches_and_survive_pruning,
    outcomes_follow_batch_order_across_kinds,
);

async fn transactions_are_recorded_once_and_events_deduplicated(backend: Backend) {
    let s = open(backend).await;
    let t1 = txn("t1", vec![delivery("$e1", &["a", "b"])]);
    let t2 = txn("t2", vec![delivery("$e1", &["a"]), delivery("$e2", &["a"])]);
    let out = commit(&s, vec![t1.clone(), t2]).await;
    let first = recorded(&out[0]);
    assert_eq!(first[0].as_ref().unwrap().len(), 2);
    let second = recorded(&out[1]);
    assert!(
        second[0].is_none(),
        "event seen before is not delivered again"
    );
    assert!(second[1].is_some());
    assert_eq!(
        commit(&s, vec![t1]).await,
        vec![TransactionOutcome::Duplicate]
    );
    let a = slug("a");
    let rows = s.read_inbox(&a, 0, 10).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows[0].cursor < rows[1].cursor);
    assert_eq!(rows[1].event.event_id, "$e2");
    assert_eq!(s.read_inbox(&a, rows[0].cursor, 10).await.unwrap().len(), 1);
    assert_eq!(s.latest_cursor(&a).await.unwrap(), rows[1].cursor);
}

async fn duplicates_within_one_batch(backend: Backend) {
    let s = open(backend).await;
    let t1 = txn("t1", vec![delivery("$e1", &["a"]), delivery("$e1", &["b"])]);
    let t2 = txn("t2", vec![delivery("$e2", &["a"]), delivery("$e1", &["a"])]);
    let out = commit(
        &s,
        vec![
            t1.clone(),
            t1.clone(),
            t2.clone(),
            t2.clone(),
            txn("t3", vec![delivery("$e3", &["a", "b"])]),
        ],
    )
    .await;
    // Same event id twice in one transaction: the second is not delivered.
    let first = recorded(&out[0]);
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].as_ref().unwrap().len(), 1);
    assert!(first[1].is_none());
    // A transaction repeated in the batch (same id, same events) is a duplicate.
    assert_eq!(out[1], TransactionOutcome::Duplicate);
    // An event id of an earlier transaction of the batch is not delivered again.
    let second = recorded(&out[2]);
    assert!(second[0].is_some());
    assert!(second[1].is_none());
    assert_eq!(out[3], TransactionOutcome::Duplicate);
    assert!(!reused(&out[0]) && !reused(&out[2]) && !reused(&out[4]));
    // Cursors in batch order, one per recipient in recipient order.
    let c = |o: &TransactionOutcome, i: usize| recorded(o)[i].clone().unwrap();
    let (e1, e2, e3) = (c(&out[0], 0)[0], c(&out[2], 0)[0], c(&out[4], 0));
    assert!(e1 < e2 && e2 < e3[0] && e3[0] < e3[1]);

    let a = s.read_inbox(&slug("a"), 0, 10).await.unwrap();
    assert_eq!(
        a.iter()
            .map(|r| (r.cursor, r.event.event_id.as_str()))
            .collect::<Vec<_>>(),
        [(e1, "$e1"), (e2, "$e2"), (e3[0], "$e3")]
    );
    let b = s.read_inbox(&slug("b"), 0, 10).await.unwrap();
    assert_eq!(
        b.iter()
            .map(|r| (r.cursor, r.event.event_id.as_str()))
            .collect::<Vec<_>>(),
        [(e3[1], "$e3")],
        "b got $e1 only through its second, undelivered copy"
    );
    // The whole batch is remembered: a later batch sees every txn id and event id.
    let again = commit(
        &s,
        vec![
            t1,
            t2,
            txn("t3", vec![delivery("$e3", &["a", "b"])]),
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

async fn cursors_grow_across_batches_and_survive_pruning(backend: Backend) {
    let s = open(backend).await;
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
    assert_eq!(
        s.prune(&Retention::inbox(0, Duration::from_secs(3600)))
            .await
            .unwrap(),
        last as u64
    );
    assert_eq!(s.inbox_depth().await.unwrap(), 0);
    let out = commit(&s, vec![txn("late", vec![delivery("$late", &["a"])])]).await;
    assert_eq!(recorded(&out[0])[0], Some(vec![last + 1]));
    // What hands out cursors is in step with them: SQLite's AUTOINCREMENT counter (explicit
    // cursors raise it), PostgreSQL's sequence.
    let counter = match backend {
        Backend::Sqlite => "SELECT seq FROM sqlite_sequence WHERE name = 'inbox'",
        Backend::Postgres => "SELECT last_value FROM inbox_cursors",
    };
    assert_eq!(s.numbers(counter).await, [last + 1]);
}

async fn outcomes_follow_batch_order_across_kinds(backend: Backend) {
    let s = open(backend).await;
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
        key: sent_key("a", "!r", "c1"),
        request: RequestDigest::of("m.room.message", event.as_bytes()),
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
        WriteOp::Transaction(txn("t1", vec![delivery("$e1", &["a"])])),
    ];
    let out = s.apply(&batch).await.unwrap();
    assert_eq!(out.len(), batch.len());
    let kinds: Vec<_> = out
        .iter()
        .map(|o| match o {
            WriteOutcome::Done => "done",
            WriteOutcome::Transaction(TransactionOutcome::Duplicate) => "dup",
            WriteOutcome::Transaction(TransactionOutcome::Recorded { .. }) => "txn",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "done", "txn", "done", "done", "done", "done", "txn", "done", "done", "done", "done",
            "dup"
        ]
    );
    let (WriteOutcome::Transaction(t1), WriteOutcome::Transaction(t2)) = (&out[1], &out[6]) else {
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
    let first = s.sent_event(&sent_key("a", "!r", "c1")).await.unwrap();
    assert_eq!(first.unwrap().event_id, "$s1");
    let alias = s
        .texts("SELECT alias FROM rooms WHERE room_id = '!r'")
        .await;
    assert_eq!(alias, ["#two:hs"]);
    // A leave as the last word removes the membership.
    s.apply(&[member(true), member(false)]).await.unwrap();
    let members = s.memberships().await.unwrap();
    assert!(!members.iter().any(|(m, _)| *m == slug("a")), "{members:?}");
}
