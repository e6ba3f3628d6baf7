//! End-to-end tests of the daemon's life cycle and operations against a real Synapse
//! (issues 4 and 7): the start-up ping, user queries, restarts without double
//! processing, readiness that follows the homeserver, start-up while the homeserver is
//! down, metrics that move, logs without secrets, JSON logs, and typing cleared on SIGTERM.

pub mod support;

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{DaemonOptions, Human, Stack};

const WAIT: Duration = Duration::from_secs(20);

use support::metrics::metric;

fn metrics(stack: &Stack) -> String {
    stack.metrics()
}

/// A homeserver-facing call with the hs_token; `query_token` sends it as the legacy
/// `?access_token=` instead of the header.
fn hs_call(
    stack: &Stack,
    method: Method,
    path: &str,
    body: Option<&Value>,
    query_token: bool,
) -> (StatusCode, Value) {
    let client = support::synapse::http_client();
    let token = stack.daemon.hs_token();
    let mut req = if query_token {
        client.request(
            method,
            format!("{}{path}?access_token={token}", stack.daemon.base_url()),
        )
    } else {
        client
            .request(method, format!("{}{path}", stack.daemon.base_url()))
            .bearer_auth(token)
    };
    if let Some(body) = body {
        req = req.json(body);
    }
    let resp = req.send().expect("call mosaic-as");
    let status = resp.status();
    (status, resp.json().unwrap_or(Value::Null))
}

/// Waits until the agent's inbox holds every event of `ids`; answers the inbox.
fn wait_inbox(stack: &Stack, agent: &str, ids: &[String]) -> Vec<Value> {
    stack.wait_inbox(agent, ids, WAIT)
}

/// A human's room with the agent invited by the human (and joined).
fn room_with_agent(stack: &Stack, agent: &str) -> (Human, String) {
    stack.room_with_agents(&[agent], WAIT)
}

/// A room provisioned with the human invited (and joined) and the agent in it.
fn provisioned_room(stack: &Stack, agent: &str) -> (Human, String) {
    let alice = stack.human("alice");
    let (status, answer) = stack.daemon.bridge_post(
        "/bridge/v1/provision/rooms",
        &json!({"name": "Ops", "invite": [alice.user_id], "agents": [agent]}),
    );
    assert_eq!(status, StatusCode::OK, "{answer}");
    let room = answer["room_id"].as_str().unwrap().to_owned();
    alice.join(&room);
    (alice, room)
}

fn typing(stack: &Stack, room: &str, agent: &str, on: bool) {
    let (status, answer) = stack.daemon.bridge_post(
        "/bridge/v1/typing",
        &json!({"room_id": room, "agent": agent, "typing": on}),
    );
    assert_eq!(status, StatusCode::OK, "{answer}");
}

/// At start-up the daemon pings the homeserver, and the homeserver's ping reaches the
/// daemon: both sides of the round trip are in the daemon's log.
#[test]
fn startup_ping_reaches_the_daemon() {
    let stack = Stack::shared();
    support::wait_until(WAIT, "both ping lines in the daemon log", || {
        let log = stack.daemon.log_text();
        (log.contains("homeserver ping succeeded") && log.contains("homeserver ping received"))
            .then_some(())
    });
    assert_eq!(stack.daemon.get("/ready").0, StatusCode::OK);
}

/// A user query for an agent in the namespace makes the user exist at the homeserver;
/// users outside the namespace are 404; the hs_token is required.
#[test]
fn user_query_makes_the_agent_user_exist() {
    let stack = Stack::shared();
    let alice = stack.human("alice");
    let slug = support::unique("queried");
    let user = stack.agent_user(&slug);
    assert_eq!(alice.profile(&user).0, StatusCode::NOT_FOUND, "not yet");

    let path = format!("/_matrix/app/v1/users/{user}");
    let (status, answer) = hs_call(stack, Method::GET, &path, None, false);
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({}));
    let (status, profile) = alice.profile(&user);
    assert_eq!(status, StatusCode::OK, "the user exists now: {profile}");
    let whoami: Value = support::synapse::http_client()
        .get(format!(
            "{}/_matrix/client/v3/account/whoami",
            stack.synapse.base_url()
        ))
        .query(&[("user_id", user.as_str())])
        .bearer_auth(stack.daemon.as_token())
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.json())
        .expect("whoami as the agent");
    assert_eq!(whoami["user_id"], user.as_str());
    let listed = stack
        .daemon
        .bridge_get(&format!("/bridge/v1/agents/{slug}"))
        .1;
    assert_eq!(listed["registered"], true, "{listed}");

    // The legacy query token works too; outside the namespace it is 404.
    let other = format!(
        "/_matrix/app/v1/users/@{}:hs.local",
        support::unique("human")
    );
    let (status, answer) = hs_call(stack, Method::GET, &other, None, true);
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer["errcode"], "M_NOT_FOUND");
    let resp = support::synapse::http_client()
        .get(format!("{}{path}", stack.daemon.base_url()))
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = support::synapse::http_client()
        .get(format!("{}{path}", stack.daemon.base_url()))
        .bearer_auth(stack.daemon.as_token())
        .send()
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::FORBIDDEN,
        "the as_token is not the hs_token"
    );
}

/// `/metrics` moves with traffic: transactions, bridge requests by route and status,
/// homeserver latency by endpoint, inbox deliveries, events by type; all `mosaic_as_`.
#[test]
fn metrics_counters_move() {
    let stack = Stack::shared();
    let before = metrics(stack);
    let agent = support::unique("counted");
    let (alice, room) = room_with_agent(stack, &agent);
    let (status, answer) = stack.daemon.bridge_post(
        "/bridge/v1/messages",
        &json!({"room_id": room, "agent": agent, "body": "counting"}),
    );
    assert_eq!(status, StatusCode::OK, "{answer}");
    let heard = alice.send_text(&room, "for the agent");
    wait_inbox(stack, &agent, &[heard]);
    let after = metrics(stack);

    let moved = |name: &str, labels: &[(&str, &str)]| {
        let (b, a) = (metric(&before, name, labels), metric(&after, name, labels));
        assert!(a > b, "{name}{labels:?} did not move: {b} -> {a}");
    };
    moved("mosaic_as_transactions_total", &[("outcome", "new")]);
    moved(
        "mosaic_as_bridge_requests_total",
        &[("route", "/bridge/v1/messages"), ("status", "200")],
    );
    moved(
        "mosaic_as_homeserver_request_seconds_count",
        &[("endpoint", "send"), ("outcome", "ok")],
    );
    moved(
        "mosaic_as_homeserver_request_seconds_count",
        &[("endpoint", "join"), ("outcome", "ok")],
    );
    moved("mosaic_as_inbox_deliveries_total", &[]);
    moved(
        "mosaic_as_events_received_total",
        &[("type", "m.room.message")],
    );
    assert!(metric(&after, "mosaic_as_last_transaction_unixtime", &[]) > 1.6e9);
    assert!(metric(&after, "mosaic_as_agents_live", &[]) >= 1.0);
    for line in after.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.starts_with("mosaic_as_"), "unprefixed metric: {line}");
        assert!(!line.contains(&agent), "agent slug as a label: {line}");
    }
}

/// Restart without double processing: events routed before a restart, events the
/// homeserver queued while the daemon was down (redelivered after the start-up ping) and
/// events after it are each in the inbox exactly once; a replayed transaction id and a
/// re-sent event id are recognised as duplicates after the restart (store, not memory);
/// joined rooms and `txn_id` idempotency survive the restart too.
#[test]
fn restart_processes_no_transaction_twice() {
    let mut stack = Stack::start("restart");
    let agent = support::unique("durable");
    let (alice, room) = room_with_agent(&stack, &agent);
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
    wait_inbox(&stack, &agent, &ids);

    // Down: the homeserver queues what the human says.
    stack.daemon.stop();
    let queued: Vec<String> = (0..2)
        .map(|i| alice.send_text(&room, &format!("while down {i}")))
        .collect();
    let started = Instant::now();
    stack.daemon.start();
    ids.extend(queued.iter().cloned());
    wait_inbox(&stack, &agent, &queued);
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

    let m0 = metrics(&stack);
    let (status, answer) = hs_call(&stack, Method::PUT, &txn_path, Some(&txn), false);
    assert_eq!(status, StatusCode::OK, "replayed transaction: {answer}");
    assert_eq!(answer, json!({}));
    let again = format!(
        "/_matrix/app/v1/transactions/{}",
        support::unique("hand-txn")
    );
    let (status, answer) = hs_call(&stack, Method::PUT, &again, Some(&txn), false);
    assert_eq!(status, StatusCode::OK, "re-sent event: {answer}");
    let m1 = metrics(&stack);
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

    let inbox = wait_inbox(&stack, &agent, &ids);
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

/// A full run at `RUST_LOG=debug` (provisioning, messages, typing, profiles, inbound
/// events, the legacy query token, wrong tokens, a restart): no secret value appears
/// anywhere in the daemon's log.
#[test]
fn secrets_never_reach_the_log() {
    let options = DaemonOptions {
        env: vec![("RUST_LOG".into(), "debug".into())],
        ..Default::default()
    };
    let mut stack = Stack::start_with("secrets", options);
    let agent = support::unique("discreet");
    let (alice, room) = provisioned_room(&stack, &agent);
    let (status, _) = stack.daemon.bridge(
        Method::PUT,
        &format!("/bridge/v1/agents/{agent}"),
        Some(&json!({"display_name": "Discreet"})),
    );
    assert_eq!(status, StatusCode::OK);
    typing(&stack, &room, &agent, true);
    let (status, answer) = stack.daemon.bridge_post(
        "/bridge/v1/messages",
        &json!({"room_id": room, "agent": agent, "body": "**hi**"}),
    );
    assert_eq!(status, StatusCode::OK, "{answer}");
    let heard = alice.send_text(&room, "secret-free?");
    wait_inbox(&stack, &agent, &[heard]);

    let user = stack.agent_user(&support::unique("q"));
    let path = format!("/_matrix/app/v1/users/{user}");
    assert_eq!(
        hs_call(&stack, Method::GET, &path, None, true).0,
        StatusCode::OK
    );
    // Tokens offered on the wrong side are refused (and must not be logged either).
    let client = support::synapse::http_client();
    let wrong = client
        .get(format!("{}/bridge/v1/agents", stack.daemon.base_url()))
        .bearer_auth(stack.daemon.hs_token())
        .send()
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let wrong = client
        .get(format!(
            "{}{path}?access_token={}",
            stack.daemon.base_url(),
            stack.daemon.bridge_token()
        ))
        .send()
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    typing(&stack, &room, &agent, true);
    stack.daemon.restart();
    stack.daemon.wait_ready(WAIT);
    stack.daemon.stop();

    let log = stack.daemon.log_text();
    assert!(log.contains("DEBUG"), "the run logged at debug level");
    let secrets = stack.daemon.secrets().clone();
    for (name, value) in [
        ("as_token", &secrets.as_token),
        ("hs_token", &secrets.hs_token),
        ("bridge token", &secrets.bridge_token),
    ] {
        // Whole value, and any 16-character piece of it.
        let pieces: Vec<&str> = (0..=value.len() - 16).map(|i| &value[i..i + 16]).collect();
        for piece in pieces {
            assert!(
                !log.contains(piece),
                "the {name} (or part of it) is in the daemon log"
            );
        }
    }
}

/// With `MOSAIC_AS_LOG_FORMAT=json` every log line is a JSON object; SIGTERM turns off the
/// agents' typing at the homeserver before exiting: the human sees typing end at once,
/// not after the 30 s homeserver timeout.
#[test]
fn json_logs_and_sigterm_clears_typing() {
    let options = DaemonOptions {
        env: vec![("MOSAIC_AS_LOG_FORMAT".into(), "json".into())],
        ..Default::default()
    };
    let mut stack = Stack::start_with("json-sigterm", options);
    let agent = support::unique("busy");
    let (alice, room) = provisioned_room(&stack, &agent);
    let user = stack.agent_user(&agent);
    typing(&stack, &room, &agent, true);
    alice.wait_typing(&room, &user, true, WAIT);

    let stopped = Instant::now();
    stack.daemon.stop();
    let stop_took = stopped.elapsed();
    alice.wait_typing(&room, &user, false, Duration::from_secs(5));
    eprintln!(
        "stop took {stop_took:?}; typing off {:?} after SIGTERM",
        stopped.elapsed()
    );

    let log = stack.daemon.log_text();
    let mut lines = 0;
    for line in log.lines() {
        if line.starts_with("=== harness:") || line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(v.is_object(), "{line}");
        assert!(
            v.get("level").is_some() && v.get("timestamp").is_some(),
            "{line}"
        );
        lines += 1;
    }
    assert!(lines >= 5, "only {lines} log lines");
    assert!(log.contains("SIGTERM received"), "{log}");
}
