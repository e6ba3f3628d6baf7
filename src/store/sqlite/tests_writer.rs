//! Tests of the SQLite store's write connection under stress: big and failed batches,
//! transactions left open, awkward text, the writer's settings, inbox retention.

use std::time::Duration;

use super::tests::{commit, delivery, recorded, reused, sent_key, slug, store, txn};
use super::*;
use crate::store::{AgentRecord, RequestDigest, TransactionOutcome};
use serde_json::value::RawValue;

#[tokio::test]
async fn a_big_batch_is_written_whole() {
    let (_dir, s) = store().await;
    // 5,000 events to 4 agents: more rows than bind parameters could carry.
    let deliveries: Vec<_> = (0..5000)
        .map(|i| delivery(&format!("$big{i}"), &["a", "b", "c", "d"]))
        .collect();
    let out = commit(&s, vec![txn("big", deliveries)]).await;
    let cursors: Vec<i64> = recorded(&out[0])
        .iter()
        .flat_map(|c| c.clone().unwrap())
        .collect();
    assert_eq!(cursors, (1..=20_000).collect::<Vec<_>>());
    assert_eq!(s.inbox_depth().await.unwrap(), 20_000);
    let d = s.read_inbox(&slug("d"), 0, 2).await.unwrap();
    assert_eq!(
        d.iter()
            .map(|r| (r.cursor, r.event.event_id.as_str()))
            .collect::<Vec<_>>(),
        [(4, "$big0"), (8, "$big1")]
    );
}

#[tokio::test]
async fn a_failed_batch_writes_nothing_and_the_writer_recovers() {
    let (_dir, s) = store().await;
    sqlx::query(
        "CREATE TRIGGER boom BEFORE INSERT ON inbox WHEN NEW.slug = 'boom' \
         BEGIN SELECT RAISE(ABORT, 'boom'); END",
    )
    .execute(&s.pool)
    .await
    .unwrap();
    let batch = || {
        vec![
            WriteOp::Transaction(txn("t1", vec![delivery("$e1", &["a"])])),
            WriteOp::Transaction(txn("t2", vec![delivery("$e2", &["boom"])])),
        ]
    };
    assert!(s.apply(&batch()).await.is_err());
    assert_eq!(s.inbox_depth().await.unwrap(), 0);
    sqlx::query("DROP TRIGGER boom")
        .execute(&s.pool)
        .await
        .unwrap();
    let out = s.apply(&batch()).await.unwrap();
    assert_eq!(
        out,
        [
            WriteOutcome::Transaction(TransactionOutcome::Recorded {
                cursors: vec![Some(vec![1])],
                id_reused: false
            }),
            WriteOutcome::Transaction(TransactionOutcome::Recorded {
                cursors: vec![Some(vec![2])],
                id_reused: false
            }),
        ],
        "nothing of the failed batch was kept"
    );
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
async fn awkward_text_is_stored_exactly() {
    let (_dir, s) = store().await;
    let content = r#"{"body":"quote \" backslash \\ nul \u0000 \ud83d\ude00 😀 \u2028","n":1.50}"#;
    let mut d = delivery("$e\"\u{1}é", &["a"]);
    let ev = Arc::get_mut(&mut d.event).unwrap();
    ev.content = RawValue::from_string(content.into()).unwrap();
    ev.event_type = "m.\u{0}type \"x\"".into();
    let txn_id = "t\u{0}1\"\\😀";
    let out = commit(&s, vec![txn(txn_id, vec![d.clone()])]).await;
    assert!(recorded(&out[0])[0].is_some());
    let rows = s.read_inbox(&slug("a"), 0, 10).await.unwrap();
    assert_eq!(rows[0].event.content.get(), content);
    assert_eq!(rows[0].event.event_id, d.event.event_id);
    assert_eq!(rows[0].event.event_type, d.event.event_type);
    // The same keys are found again: the txn id is a duplicate, the event id seen.
    let again = commit(&s, vec![txn(txn_id, vec![d.clone()]), txn("t2", vec![d])]).await;
    assert_eq!(again[0], TransactionOutcome::Duplicate);
    assert_eq!(recorded(&again[1]), [None]);
    s.apply(&[
        WriteOp::Sent {
            key: sent_key("a", "!r", "c\u{0}\"1"),
            request: RequestDigest::of("m.room.message", b"{}"),
            event_id: "$s".try_into().unwrap(),
        },
        WriteOp::Agent(AgentRecord {
            slug: slug("a"),
            registered: true,
            display_name: Some("Ä \"n\u{0}\"".into()),
            avatar_url: None,
        }),
    ])
    .await
    .unwrap();
    let sent = s.sent_event(&sent_key("a", "!r", "c\u{0}\"1")).await;
    assert_eq!(sent.unwrap().unwrap().event_id, "$s");
    let a = s.agent(&slug("a")).await.unwrap().unwrap();
    assert_eq!(a.display_name.as_deref(), Some("Ä \"n\u{0}\""));
    assert!(a.registered);
    assert_eq!(a.avatar_url, None);
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

#[tokio::test]
async fn retention_keeps_the_newest() {
    let (_dir, s) = store().await;
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
    let rows = s
        .read_inbox(&AgentSlug::parse("a").unwrap(), 0, 10)
        .await
        .unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| r.event.event_id.as_str())
            .collect::<Vec<_>>(),
        ["$e3", "$e4"]
    );
}

#[tokio::test]
async fn client_keys_are_per_room_and_the_first_record_stays() {
    let (_dir, s) = store().await;
    let write = |room: &str, body: &str, event: &str| WriteOp::Sent {
        key: sent_key("a", room, "k"),
        request: RequestDigest::of("m.room.message", body.as_bytes()),
        event_id: event.try_into().unwrap(),
    };
    s.apply(&[write("!one", "hi", "$1"), write("!two", "bye", "$2")])
        .await
        .unwrap();
    s.apply(&[write("!one", "other", "$3")]).await.unwrap();
    let one = s
        .sent_event(&sent_key("a", "!one", "k"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one.event_id, "$1");
    assert_eq!(one.request, RequestDigest::of("m.room.message", b"hi"));
    let two = s
        .sent_event(&sent_key("a", "!two", "k"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(two.event_id, "$2");
    assert!(s
        .sent_event(&sent_key("a", "!three", "k"))
        .await
        .unwrap()
        .is_none());
    assert!(s
        .sent_event(&sent_key("b", "!one", "k"))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_transactions_effects_are_stored_in_its_commit_once() {
    let (_dir, s) = store().await;
    let effect = crate::store::Effect::BotJoin {
        room: "!r".try_into().unwrap(),
    };
    let mut t = txn("t-eff", vec![delivery("$e1", &["a"])]);
    t.effects = vec![effect.clone()];
    commit(&s, vec![t.clone()]).await;
    // The homeserver's retry is a duplicate: no second effect.
    assert_eq!(commit(&s, vec![t]).await[0], TransactionOutcome::Duplicate);
    let due = s.due_effects(now_s(), 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].effect.clone(), due[0].attempts), (effect, 0));
    s.defer_effect(due[0].id, 1, now_s() + 60).await.unwrap();
    assert!(s.due_effects(now_s(), 10).await.unwrap().is_empty());
    assert_eq!(s.pending_effects().await.unwrap(), 1);
    let later = s.due_effects(now_s() + 61, 10).await.unwrap();
    assert_eq!(later[0].attempts, 1);
    s.finish_effect(later[0].id).await.unwrap();
    assert_eq!(s.pending_effects().await.unwrap(), 0);
}
