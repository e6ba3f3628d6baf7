//! Transactions pushed by the homeserver, against a mock homeserver: deduplication (also
//! across a restart) and replays, malformed and oversized bodies, and unparseable events
//! skipped while the rest is delivered.

pub mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::app::{spawn_app, spawn_app_with};
use support::daemon_api::DaemonApi;
use support::daemon_api::{inbox_ids, put_agent, put_txn};
use support::events::{member_join, text_event};
use support::http::{call, json_body};
use support::mock_hs::MockHs;
use support::DaemonOptions;

/// A transaction (same id, same events) is handled once, also after a restart on the same
/// store and when the retry's `unsigned.age` differs; an event id already seen is not
/// delivered again under a new transaction id; the same id with other events is a new
/// transaction (homeservers reuse ids); the pipeline stays live after the restart.
#[test]
fn duplicate_transactions_are_processed_once_across_restart() {
    let (_mock, mut d) = MockHs::with_daemon("as-dedupe", DaemonOptions::default());
    put_agent(&d, "x");
    let agent = d.agent_user("x");
    let room = "!dedupe:hs.local";
    let alice = "@alice:hs.local";
    let aged = |mut event: Value, age: u64| {
        event["unsigned"] = json!({ "age": age });
        event
    };
    let first = vec![
        member_join("$join-x", room, &agent),
        aged(text_event("$m1", room, alice, "hello x"), 10),
    ];
    let r = put_txn(&d, "t1", first.clone());
    assert_eq!((r.status, r.json()), (StatusCode::OK, json!({})), "t1");
    assert_eq!(inbox_ids(&d, "x"), ["$m1"]);

    // The homeserver's retry: same events, another age. 200 {} and nothing new.
    let retry = vec![
        aged(first[0].clone(), 5000),
        aged(text_event("$m1", room, alice, "hello x"), 5000),
    ];
    let r = put_txn(&d, "t1", retry.clone());
    assert_eq!(
        (r.status, r.json()),
        (StatusCode::OK, json!({})),
        "t1 again"
    );
    assert_eq!(inbox_ids(&d, "x"), ["$m1"], "t1 processed twice");

    // Same event id in a new transaction: not delivered twice.
    let r = put_txn(&d, "t2", vec![text_event("$m1", room, alice, "hello x")]);
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(inbox_ids(&d, "x"), ["$m1"], "$m1 delivered twice");

    d.restart();
    d.wait_ready(Duration::from_secs(20));
    let r = put_txn(&d, "t1", retry.clone());
    assert_eq!(
        (r.status, r.json()),
        (StatusCode::OK, json!({})),
        "t1 after restart"
    );
    let r = put_txn(&d, "t3", vec![text_event("$m1", room, alice, "hello x")]);
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        inbox_ids(&d, "x"),
        ["$m1"],
        "duplicate delivered after restart"
    );
    // Legacy route shares the same transaction log.
    let url = format!("{}/transactions/t1", d.base_url());
    let r = call(
        Method::PUT,
        &url,
        Some(d.hs_token()),
        json_body(&json!({ "events": retry })),
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // A new event after the restart is delivered (membership restored from the store).
    let r = put_txn(&d, "t4", vec![text_event("$m2", room, alice, "again")]);
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(inbox_ids(&d, "x"), ["$m1", "$m2"]);

    // The homeserver restarted its numbering: t1 with other events is a new transaction.
    let r = put_txn(
        &d,
        "t1",
        vec![text_event("$m3", room, alice, "after reuse")],
    );
    assert_eq!(
        (r.status, r.json()),
        (StatusCode::OK, json!({})),
        "t1 reused"
    );
    assert_eq!(inbox_ids(&d, "x"), ["$m1", "$m2", "$m3"]);
    let (_, metrics) = d.get("/metrics");
    assert!(
        metrics.contains("mosaic_as_transactions_total{outcome=\"id_reused\"} 1"),
        "{metrics}"
    );
}

/// A transaction replayed after later ones changes nothing: an old join does not bring
/// back an agent that has left since (memberships count only once recorded).
#[test]
fn replayed_old_transaction_does_not_undo_a_later_leave() {
    let d = spawn_app("as-replay");
    put_agent(&d, "x");
    let agent = d.agent_user("x");
    let room = "!replay:hs.local";
    let alice = "@alice:hs.local";
    let join = vec![member_join("$join-x", room, &agent)];
    assert_eq!(put_txn(&d, "r1", join.clone()).status, StatusCode::OK);
    let mut leave = member_join("$leave-x", room, &agent);
    leave["content"]["membership"] = json!("leave");
    assert_eq!(put_txn(&d, "r2", vec![leave]).status, StatusCode::OK);
    let r = put_txn(&d, "r1", join);
    assert_eq!((r.status, r.json()), (StatusCode::OK, json!({})), "replay");
    let r = put_txn(&d, "r3", vec![text_event("$after", room, alice, "x left")]);
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        inbox_ids(&d, "x").is_empty(),
        "the replayed join made x a recipient again"
    );
    // A join and a message in one transaction: the message reaches the agent.
    let r = put_txn(
        &d,
        "r4",
        vec![
            member_join("$rejoin-x", room, &agent),
            text_event("$back", room, alice, "welcome back"),
        ],
    );
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(inbox_ids(&d, "x"), ["$back"]);
}

/// Malformed JSON → 400 `M_NOT_JSON`; JSON of the wrong shape → 400 `M_BAD_JSON`; a body
/// over its route's limit → 413 `M_TOO_LARGE` with a JSON body: a transaction over
/// `limits.max_transaction_bytes`, a bridge body over `limits.max_body_bytes` (a
/// transaction is not held to the bridge's limit).
#[test]
fn malformed_and_oversized_bodies() {
    let options = DaemonOptions {
        limits_toml: "max_body_bytes = 2048\nmax_transaction_bytes = 8192".into(),
        ..Default::default()
    };
    let d = spawn_app_with("as-bodies", options);
    let url = format!("{}/_matrix/app/v1/transactions/bad-json", d.base_url());
    let r = call(
        Method::PUT,
        &url,
        Some(d.hs_token()),
        Some(b"{\"events\": [".to_vec()),
    );
    r.expect_error(400, "M_NOT_JSON", "truncated JSON");
    let r = call(
        Method::PUT,
        &url,
        Some(d.hs_token()),
        Some(b"nope".to_vec()),
    );
    r.expect_error(400, "M_NOT_JSON", "not JSON");
    let r = call(
        Method::PUT,
        &url,
        Some(d.hs_token()),
        json_body(&json!({ "events": 5 })),
    );
    r.expect_error(400, "M_BAD_JSON", "events not an array");
    assert!(r.json()["error"].as_str().unwrap().contains("events"));

    let over_bridge_limit = text_event("$4k", "!r:hs.local", "@a:hs.local", &"x".repeat(4000));
    let r = put_txn(&d, "over-the-bridge-limit", vec![over_bridge_limit]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let big =
        json!({ "events": [text_event("$big", "!r:hs.local", "@a:hs.local", &"x".repeat(9000))] });
    let url = format!("{}/_matrix/app/v1/transactions/too-big", d.base_url());
    let r = call(Method::PUT, &url, Some(d.hs_token()), json_body(&big));
    r.expect_error(413, "M_TOO_LARGE", "transaction over the limit");
    assert!(r
        .headers
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap().contains("json")));
    // Not recorded: the same txn id with a small body is processed.
    let r = put_txn(&d, "too-big", vec![]);
    assert_eq!(r.status, StatusCode::OK);

    let url = format!("{}/bridge/v1/messages", d.base_url());
    let msg = json!({ "room_id": "!r:hs.local", "agent": "a", "body": "y".repeat(4000) });
    let r = call(Method::POST, &url, Some(d.bridge_token()), json_body(&msg));
    r.expect_error(413, "M_TOO_LARGE", "bridge body over the limit");
}

/// An event that cannot be parsed is skipped; the rest of the transaction is delivered.
#[test]
fn unparseable_event_is_skipped_and_the_rest_delivered() {
    let d = spawn_app("as-skip");
    put_agent(&d, "y");
    let room = "!skip:hs.local";
    let agent = d.agent_user("y");
    let events = vec![
        member_join("$join-y", room, &agent),
        json!({ "not": "an event" }),
        json!("a string"),
        json!({ "event_id": "no-dollar", "room_id": 5, "type": "m.room.message" }),
        text_event("$ok1", room, "@bob:hs.local", "first"),
        json!(null),
        text_event("$ok2", room, "@bob:hs.local", "second"),
    ];
    let r = put_txn(&d, "mixed", events);
    assert_eq!(
        (r.status, r.json()),
        (StatusCode::OK, json!({})),
        "{}",
        r.text
    );
    assert_eq!(inbox_ids(&d, "y"), ["$ok1", "$ok2"]);
}
