//! Transactions as a homeserver really sends them, against a mock homeserver: one as large
//! as Synapse makes them (100 events of 64 KiB, over the bridge's body limit) is accepted
//! whole, and events that cannot be parsed or stored are skipped and counted while the
//! transaction is still answered 200. A test binary of its own: the skip counter it reads
//! is process-wide, and nothing else here skips an event.

pub mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::app::{spawn_app, TestApp};
use support::daemon_api::{hs, inbox_ids, put_agent, put_txn, DaemonApi};
use support::events::{member_join, text_event};
use support::metrics::metric;

/// Matrix's size limit of one event (its JSON, as the homeserver stores it).
const MAX_EVENT_BYTES: usize = 64 * 1024;

/// An agent `slug` joined to `room`.
fn joined_agent(d: &TestApp, slug: &str, room: &str) {
    put_agent(d, slug);
    let agent = d.agent_user(slug);
    let r = put_txn(
        d,
        &format!("join-{slug}"),
        vec![member_join(&format!("$join-{slug}"), room, &agent)],
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

/// A message whose JSON is exactly 64 KiB.
fn event_of_64_kib(i: usize, room: &str) -> Value {
    let mut event = text_event(&format!("$big-{i:03}"), room, "@bob:hs.local", "");
    let bare = event.to_string().len();
    event["content"]["body"] = json!("x".repeat(MAX_EVENT_BYTES - bare));
    assert_eq!(event.to_string().len(), MAX_EVENT_BYTES);
    event
}

/// 100 events of 64 KiB and some ephemeral events in one transaction: some 6.5 MB, more
/// than the bridge's 4 MiB body limit. It is answered 200 and every event reaches the
/// inbox whole, in order.
#[test]
fn a_transaction_of_100_events_of_64_kib_is_accepted() {
    let d = spawn_app("as-big-txn");
    let room = "!big:hs.local";
    joined_agent(&d, "big", room);
    let events: Vec<Value> = (0..100).map(|i| event_of_64_kib(i, room)).collect();
    let typing =
        json!({"type": "m.typing", "room_id": room, "content": {"user_ids": ["@bob:hs.local"]}});
    let txn = json!({ "events": events, "ephemeral": [typing] });
    let size = txn.to_string().len();
    // More than the bridge's default body limit (4 MiB).
    assert!(size > 100 * MAX_EVENT_BYTES, "{size}");

    let r = hs(
        &d,
        Method::PUT,
        "/_matrix/app/v1/transactions/big",
        Some(&txn),
    );
    assert_eq!((r.status, r.text.as_str()), (StatusCode::OK, "{}"));

    let want: Vec<String> = (0..100).map(|i| format!("$big-{i:03}")).collect();
    assert_eq!(inbox_ids(&d, "big"), want);
    let last = &d.inbox("big")[99];
    assert_eq!(last["content"], event_of_64_kib(99, room)["content"]);
}

/// A transaction holding, among good events, events that cannot be parsed (not an object,
/// fields missing), stored (an id with a NUL, which the store would cut short; content
/// that is not an object) or understood (an invalid id, a member event without a valid
/// membership): 200, the good events delivered in order, each skip counted by reason in
/// `mosaic_as_inbound_events_skipped_total`; the homeserver's retry of it counts nothing
/// again.
#[test]
fn events_that_cannot_be_parsed_or_stored_are_skipped_counted_and_answered_200() {
    let d = spawn_app("as-skips");
    let room = "!skips:hs.local";
    joined_agent(&d, "skip", room);
    let agent = d.agent_user("skip");
    let with = |id: &str, field: &str, value: Value| {
        let mut event = text_event(id, room, "@bob:hs.local", "bad");
        event[field] = value;
        event
    };
    let events = vec![
        text_event("$good-1", room, "@bob:hs.local", "first"),
        json!(42),
        json!({ "not": "an event" }),
        with("$no-sender", "sender", Value::Null),
        with("no-sigil", "event_id", json!("no-sigil")),
        with("$nul", "event_id", json!("$cut\u{0}here")),
        text_event("$good-2", room, "@bob:hs.local", "second"),
        with("$string-content", "content", json!("just a string")),
        json!({"event_id": "$member", "room_id": room, "sender": agent, "type": "m.room.member",
            "state_key": agent, "content": {"membership": ["join"]}}),
        text_event("$good-3", room, "@bob:hs.local", "third"),
    ];
    let r = put_txn(&d, "mixed", events.clone());
    assert_eq!((r.status, r.text.as_str()), (StatusCode::OK, "{}"));
    assert_eq!(inbox_ids(&d, "skip"), ["$good-1", "$good-2", "$good-3"]);

    let skipped = |reason: &str| {
        let (status, text) = d.get("/metrics");
        assert_eq!(status, StatusCode::OK, "{text}");
        metric(
            &text,
            "mosaic_as_inbound_events_skipped_total",
            &[("reason", reason)],
        )
    };
    let counts = || {
        [
            skipped("malformed"),
            skipped("invalid_id"),
            skipped("bad_content"),
        ]
    };
    assert_eq!(counts(), [3.0, 2.0, 2.0]);

    let r = put_txn(&d, "mixed", events);
    assert_eq!((r.status, r.text.as_str()), (StatusCode::OK, "{}"));
    assert_eq!(counts(), [3.0, 2.0, 2.0], "a retry is not counted again");
    assert_eq!(inbox_ids(&d, "skip"), ["$good-1", "$good-2", "$good-3"]);
}
