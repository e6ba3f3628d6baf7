//! End-to-end tests of the daemon's life cycle against a real Synapse (issues 4 and 7):
//! restarts without double processing, readiness that follows the homeserver, and
//! start-up while the homeserver is down. Each test has a stack of its own.

pub mod support;

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::metrics::metric;
use support::stack_api::hs_call;
use support::Stack;

const WAIT: Duration = Duration::from_secs(20);

/// Restart without double processing: events routed before a restart, events the
/// homeserver queued while the daemon was down (redelivered after the start-up ping) and
/// events after it are each in the inbox exactly once; a replayed transaction id and a
/// re-sent event id are recognised as duplicates after the restart (store, not memory);
/// joined rooms and `txn_id` idempotency survive the restart too.
#[test]
fn restart_processes_no_transaction_twice() {
    let mut stack = Stack::start("restart");
    let agent = support::unique("durable");
    let (alice, room) = stack.room_with_agents(&[&agent], WAIT);
    let keyed = json!({"room_id": room, "agent": agent, "body": "said once", "txn_id": "survives"});
    let (status, answer) = stack.daemon.bridge_post("/bridge/v1/messages", &keyed);
    assert_eq!(status, StatusCode::OK, "{answer}");
    let keyed_event = answer["event_id"].as_str().unwrap().to_owned();
    let mut ids: Vec<String> = (0..3)
        .map(|i| alice.send_text(&room, &format!("before {i}")))
        .collect();
    // A transaction as the homeserver would push it, by hand: replayed after the restart.
    let fake_event = format!("$replayed-{}", support::unique("ev"));
    let txn_path = format!(
        "/_matrix/app/v1/transactions/{}",
        support::unique("hand-txn")
    );
    let txn = json!({"events": [{
        "event_id": fake_event, "room_id": room, "sender": alice.user_id,
        "type": "m.room.message", "origin_server_ts": 1_700_000_000_000u64,
        "content": {"msgtype": "m.text", "body": "pushed by hand"},
    }]});
    let (status, answer) = hs_call(&stack, Method::PUT, &txn_path, Some(&txn), false);
    assert_eq!(status, StatusCode::OK, "{answer}");
    ids.push(fake_event.clone());
    stack.wait_inbox(&agent, &ids, WAIT);

    // Down: the homeserver queues what the human says.
    stack.daemon.stop();
    let queued: Vec<String> = (0..2)
        .map(|i| alice.send_text(&room, &format!("while down {i}")))
        .collect();
    let started = Instant::now();
    stack.daemon.start();
    ids.extend(queued.iter().cloned());
    stack.wait_inbox(&agent, &queued, WAIT);
    eprintln!(
        "queued events redelivered {:?} after the restart",
        started.elapsed()
    );
    ids.extend((0..3).map(|i| alice.send_text(&room, &format!("after {i}"))));

    // What the actor knew is back: joined rooms, and the send idempotency keys.
    let state = stack
        .daemon
        .bridge_get(&format!("/bridge/v1/agents/{agent}"))
        .1;
    assert!(
        support::json_list_contains(&state["joined_rooms"], room.as_str()),
        "{state}"
    );
    let (status, answer) = stack.daemon.bridge_post("/bridge/v1/messages", &keyed);
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer["event_id"],
        keyed_event.as_str(),
        "same key after a restart"
    );
    let copies = alice
        .messages(&room)
        .iter()
        .filter(|e| e["content"]["body"] == "said once")
        .count();
    assert_eq!(copies, 1, "the keyed message was sent {copies} times");

    let m0 = stack.metrics();
    let (status, answer) = hs_call(&stack, Method::PUT, &txn_path, Some(&txn), false);
    assert_eq!(status, StatusCode::OK, "replayed transaction: {answer}");
    assert_eq!(answer, json!({}));
    let again = format!(
        "/_matrix/app/v1/transactions/{}",
        support::unique("hand-txn")
    );
    let (status, answer) = hs_call(&stack, Method::PUT, &again, Some(&txn), false);
    assert_eq!(status, StatusCode::OK, "re-sent event: {answer}");
    let m1 = stack.metrics();
    let dup_txn = metric(
        &m1,
        "mosaic_as_transactions_total",
        &[("outcome", "duplicate")],
    ) - metric(
        &m0,
        "mosaic_as_transactions_total",
        &[("outcome", "duplicate")],
    );
    let dup_events = metric(&m1, "mosaic_as_events_duplicate_total", &[])
        - metric(&m0, "mosaic_as_events_duplicate_total", &[]);
    assert!(
        dup_txn >= 1.0,
        "replayed transaction not counted as duplicate"
    );
    assert!(dup_events >= 1.0, "re-sent event not counted as duplicate");
    eprintln!(
        "after the restart: duplicate transactions {}, duplicate events {}",
        metric(
            &m1,
            "mosaic_as_transactions_total",
            &[("outcome", "duplicate")]
        ),
        metric(&m1, "mosaic_as_events_duplicate_total", &[])
    );

    let inbox = stack.wait_inbox(&agent, &ids, WAIT);
    for id in &ids {
        let n = inbox
            .iter()
            .filter(|e| e["event_id"] == id.as_str())
            .count();
        assert_eq!(n, 1, "{id} is in the inbox {n} times");
    }
    let mut cursors: Vec<i64> = inbox
        .iter()
        .map(|e| e["cursor"].as_str().unwrap().parse().unwrap())
        .collect();
    let n = cursors.len();
    cursors.dedup();
    assert_eq!(cursors.len(), n, "cursors are unique");
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "cursors increase");
}

/// `/ready` is 503 naming the homeserver while Synapse is stopped (bridge calls 503 too),
/// and 200 again once it is back; `/health` stays 200 throughout.
#[test]
fn ready_follows_the_homeserver() {
    let mut stack = Stack::start("ready");
    assert_eq!(stack.daemon.get("/ready").0, StatusCode::OK);
    stack.synapse.stop();
    let stopped = Instant::now();
    let body = support::wait_until(Duration::from_secs(40), "/ready 503", || {
        let (status, body) = stack.daemon.get("/ready");
        (status == StatusCode::SERVICE_UNAVAILABLE).then_some(body)
    });
    eprintln!("/ready turned 503 {:?} after the stop", stopped.elapsed());
    let body: Value = serde_json::from_str(&body).expect("JSON body");
    assert!(body["problems"].get("homeserver").is_some(), "{body}");
    assert_eq!(stack.daemon.get("/health").0, StatusCode::OK);
    let (status, answer) = stack
        .daemon
        .bridge_post("/bridge/v1/provision/rooms", &json!({"name": "no hs"}));
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");

    stack.synapse.start_again();
    let back = Instant::now();
    stack.daemon.wait_ready(Duration::from_secs(30));
    eprintln!("/ready turned 200 {:?} after the start", back.elapsed());
    let (status, answer) = stack
        .daemon
        .bridge_post("/bridge/v1/provision/rooms", &json!({"name": "hs back"}));
    assert_eq!(status, StatusCode::OK, "{answer}");
}

/// A daemon started while the homeserver is down still starts: `/health` 200, `/ready`
/// 503, bridge calls 503; it recovers on its own when the homeserver starts.
#[test]
fn daemon_starts_while_the_homeserver_is_down() {
    let mut stack = Stack::start("hs-down");
    stack.synapse.stop();
    stack.daemon.restart();
    assert_eq!(stack.daemon.get("/health").0, StatusCode::OK);
    let (status, body) = stack.daemon.get("/ready");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let body: Value = serde_json::from_str(&body).expect("JSON body");
    assert!(body["problems"].get("homeserver").is_some(), "{body}");
    let agent = support::unique("early");
    let (status, answer) = stack.daemon.bridge(
        Method::PUT,
        &format!("/bridge/v1/agents/{agent}"),
        Some(&json!({"display_name": "Early"})),
    );
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert!(answer["errcode"].is_string(), "{answer}");
    support::wait_until(
        Duration::from_secs(30),
        "the failed ping in the log",
        || {
            stack
                .daemon
                .log_text()
                .contains("homeserver ping failed")
                .then_some(())
        },
    );

    stack.synapse.start_again();
    let back = Instant::now();
    stack.daemon.wait_ready(Duration::from_secs(30));
    eprintln!("ready {:?} after the homeserver started", back.elapsed());
    let (status, answer) = stack.daemon.bridge(
        Method::PUT,
        &format!("/bridge/v1/agents/{agent}"),
        Some(&json!({"display_name": "Early"})),
    );
    assert_eq!(status, StatusCode::OK, "{answer}");
}
