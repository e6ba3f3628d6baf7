//! Writes under stress: big and failed batches, awkward text, send keys, effects.

use std::sync::Arc;

use serde_json::value::RawValue;

use super::{commit, delivery, open, recorded, sent_key, slug, txn, Backend};
use crate::store::{
    now_s, AgentRecord, Effect, RequestDigest, TransactionOutcome, WriteOp, WriteOutcome,
};

on_every_backend!(
    a_big_batch_is_written_whole,
    a_failed_batch_writes_nothing_and_the_next_one_is_written,
    awkward_text_is_stored_exactly,
    client_keys_are_per_room_and_the_first_record_stays,
    a_transactions_effects_are_stored_in_its_commit_once,
);

async fn a_big_batch_is_written_whole(backend: Backend) {
    let s = open(backend).await;
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

/// A batch that fails half-way keeps nothing; the next batch is written whole. SQLite
/// hands out the failed batch's cursors again (nobody saw them); PostgreSQL's sequence
/// never does, so its cursors go on above them.
async fn a_failed_batch_writes_nothing_and_the_next_one_is_written(backend: Backend) {
    let s = open(backend).await;
    let (arm, disarm) = match backend {
        Backend::Sqlite => (
            "CREATE TRIGGER boom BEFORE INSERT ON inbox WHEN NEW.slug = 'boom' \
             BEGIN SELECT RAISE(ABORT, 'boom'); END",
            "DROP TRIGGER boom",
        ),
        Backend::Postgres => (
            "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'boom'; END $$; \
             CREATE TRIGGER boom BEFORE INSERT ON inbox FOR EACH ROW \
             WHEN (NEW.slug = 'boom') EXECUTE FUNCTION boom()",
            "DROP TRIGGER boom ON inbox; DROP FUNCTION boom()",
        ),
    };
    s.execute(arm).await;
    let batch = || {
        vec![
            WriteOp::Transaction(txn("t1", vec![delivery("$e1", &["a"])])),
            WriteOp::Transaction(txn("t2", vec![delivery("$e2", &["boom"])])),
        ]
    };
    assert!(s.apply(&batch()).await.is_err());
    assert_eq!(s.inbox_depth().await.unwrap(), 0);
    s.execute(disarm).await;
    let out = s.apply(&batch()).await.unwrap();
    let cursor = |o: &WriteOutcome| match o {
        WriteOutcome::Transaction(TransactionOutcome::Recorded {
            cursors,
            id_reused: false,
        }) => cursors.as_slice()[0].as_ref().unwrap()[0],
        other => panic!("recorded as new expected, not {other:?}: the failed batch was kept"),
    };
    let (first, second) = (cursor(&out[0]), cursor(&out[1]));
    match backend {
        Backend::Sqlite => assert_eq!((first, second), (1, 2)),
        Backend::Postgres => assert_eq!((first, second), (3, 4)),
    }
    let a = s.read_inbox(&slug("a"), 0, 10).await.unwrap();
    assert_eq!(a.iter().map(|e| e.cursor).collect::<Vec<_>>(), [first]);
}

async fn awkward_text_is_stored_exactly(backend: Backend) {
    let s = open(backend).await;
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
            event_id: "$s\u{0}".try_into().unwrap(),
        },
        WriteOp::Agent(AgentRecord {
            slug: slug("a"),
            registered: true,
            display_name: Some("Ä \"n\u{0}\"".into()),
            avatar_url: Some("mxc://hs/\u{0}".into()),
        }),
    ])
    .await
    .unwrap();
    let sent = s.sent_event(&sent_key("a", "!r", "c\u{0}\"1")).await;
    assert_eq!(sent.unwrap().unwrap().event_id, "$s\u{0}");
    assert!(s
        .sent_event(&sent_key("a", "!r", "c"))
        .await
        .unwrap()
        .is_none());
    let a = s.agent(&slug("a")).await.unwrap().unwrap();
    assert_eq!(a.display_name.as_deref(), Some("Ä \"n\u{0}\""));
    assert_eq!(a.avatar_url.as_deref(), Some("mxc://hs/\u{0}"));
    assert!(a.registered);
    let names = s.display_names().await.unwrap();
    assert_eq!(names, [(slug("a"), "Ä \"n\u{0}\"".to_owned())]);
}

async fn client_keys_are_per_room_and_the_first_record_stays(backend: Backend) {
    let s = open(backend).await;
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

async fn a_transactions_effects_are_stored_in_its_commit_once(backend: Backend) {
    let s = open(backend).await;
    let join = |room: &str| Effect::BotJoin {
        room: room.try_into().unwrap(),
    };
    let mut t = txn("t-eff", vec![delivery("$e1", &["a"])]);
    t.effects = vec![join("!r"), join("!second")];
    commit(&s, vec![t.clone()]).await;
    // The homeserver's retry is a duplicate: no second effect.
    assert_eq!(commit(&s, vec![t]).await[0], TransactionOutcome::Duplicate);
    let due = s.due_effects(now_s(), 10).await.unwrap();
    assert_eq!(due.len(), 2);
    assert_eq!(
        due.iter()
            .map(|e| (e.effect.clone(), e.attempts))
            .collect::<Vec<_>>(),
        [(join("!r"), 0), (join("!second"), 0)],
        "in the order the transaction gave them"
    );
    s.finish_effect(due[1].id).await.unwrap();
    s.defer_effect(due[0].id, 1, now_s() + 60).await.unwrap();
    assert!(s.due_effects(now_s(), 10).await.unwrap().is_empty());
    assert_eq!(s.pending_effects().await.unwrap(), 1);
    let later = s.due_effects(now_s() + 61, 10).await.unwrap();
    assert_eq!(later[0].attempts, 1);
    s.finish_effect(later[0].id).await.unwrap();
    assert_eq!(s.pending_effects().await.unwrap(), 0);
}
