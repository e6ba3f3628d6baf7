//! Encrypted events whose room key came after them: found by room and session while they
//! are stored encrypted, then redelivered decrypted (the stored event rewritten in place,
//! once, with inbox rows marked `redelivered` after the batch's new events).

use std::sync::Arc;

use serde_json::value::RawValue;

use super::{commit, open, recorded, slug, txn, Backend};
use crate::store::{EventDelivery, InboxEvent};

on_every_backend!(
    an_event_stored_encrypted_is_redelivered_decrypted_once,
    a_redelivery_of_an_event_not_stored_encrypted_delivers_nothing,
);

/// `event_id` in `!r`, as it came (Megolm `session`), or decrypted for a redelivery.
fn event(event_id: &str, session: &str, redelivered: bool) -> Arc<InboxEvent> {
    let (kind, content) = match redelivered {
        false => (
            "m.room.encrypted",
            format!(
                r#"{{"algorithm":"m.megolm.v1.aes-sha2","ciphertext":"x","session_id":"{session}"}}"#
            ),
        ),
        true => (
            "m.room.message",
            r#"{"msgtype":"m.text","body":"clear"}"#.to_owned(),
        ),
    };
    Arc::new(InboxEvent {
        event_id: event_id.try_into().unwrap(),
        room_id: "!r".try_into().unwrap(),
        sender: "@h:hs".try_into().unwrap(),
        event_type: kind.into(),
        content: RawValue::from_string(content).unwrap(),
        origin_server_ts: 1,
        decrypted: redelivered,
        redelivered,
        json_members: Default::default(),
    })
}

fn to(event: Arc<InboxEvent>, agents: &[&str]) -> EventDelivery {
    EventDelivery {
        event,
        recipients: agents.iter().map(|a| (slug(a), false)).collect(),
    }
}

async fn an_event_stored_encrypted_is_redelivered_decrypted_once(backend: Backend) {
    let s = open(backend).await;
    let stored = to(event("$e", "s1", false), &["a", "b"]);
    let other = to(event("$o", "s2", false), &["a"]);
    commit(&s, vec![txn("t1", vec![stored, other])]).await;
    let room = <&ruma::RoomId>::try_from("!r").unwrap();
    let awaiting = s.awaiting_keys(room, &["s1", "s9"]).await.unwrap();
    assert_eq!(awaiting.len(), 1);
    assert_eq!(awaiting[0].event_id, "$e");
    assert_eq!(awaiting[0].event_type, "m.room.encrypted");
    assert!(s.awaiting_keys(room, &["s9"]).await.unwrap().is_empty());

    // Two transactions of one batch redeliver it (and a new event comes with the first):
    // the first redelivery counts, after the batch's new events.
    let fresh = to(event("$n", "s3", false), &["a"]);
    let outcomes = commit(
        &s,
        vec![
            txn("t2", vec![to(event("$e", "s1", true), &["a"]), fresh]),
            txn("t3", vec![to(event("$e", "s1", true), &["a", "b"])]),
        ],
    )
    .await;
    let (late, new) = (
        recorded(&outcomes[0])[0].clone(),
        recorded(&outcomes[0])[1].clone(),
    );
    assert_eq!(recorded(&outcomes[1]), [None]);
    let (late, new) = (late.expect("redelivered"), new.expect("new event"));
    assert!(late[0] > new[0], "after the new events: {late:?} {new:?}");

    let inbox = s.read_inbox(&slug("a"), 0, 10).await.unwrap();
    let events: Vec<_> = inbox.iter().map(|e| e.event.event_id.as_str()).collect();
    assert_eq!(events, ["$e", "$o", "$n", "$e"]);
    let again = &inbox[3];
    assert_eq!(again.cursor, late[0]);
    assert!(again.event.redelivered && again.event.decrypted);
    assert_eq!(again.event.event_type, "m.room.message");
    assert_eq!(
        again.event.content.get(),
        r#"{"msgtype":"m.text","body":"clear"}"#
    );
    // The first copy reads the stored event, now in the clear, not marked.
    assert!(inbox[0].event.decrypted && !inbox[0].event.redelivered);
    assert_eq!(s.read_inbox(&slug("b"), 0, 10).await.unwrap().len(), 1);
    assert!(s.awaiting_keys(room, &["s1"]).await.unwrap().is_empty());

    // Later redeliveries of it deliver nothing.
    let outcomes = commit(
        &s,
        vec![txn("t4", vec![to(event("$e", "s1", true), &["b"])])],
    )
    .await;
    assert_eq!(recorded(&outcomes[0]), [None]);
}

async fn a_redelivery_of_an_event_not_stored_encrypted_delivers_nothing(backend: Backend) {
    let s = open(backend).await;
    let plain = super::delivery("$p", &["a"]);
    commit(&s, vec![txn("t1", vec![plain])]).await;
    let outcomes = commit(
        &s,
        vec![txn(
            "t2",
            vec![
                to(event("$p", "s1", true), &["a"]),
                to(event("$never", "s1", true), &["a"]),
            ],
        )],
    )
    .await;
    assert_eq!(recorded(&outcomes[0]), [None, None]);
    let inbox = s.read_inbox(&slug("a"), 0, 10).await.unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].event.content.get(), r#"{"body":"x"}"#);
}
