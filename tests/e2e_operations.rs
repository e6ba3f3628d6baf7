//! End-to-end tests of the daemon's operation against a real Synapse (issues 4 and 7):
//! the start-up ping, user queries, metrics that move, logs without secrets, JSON logs,
//! and typing cleared on SIGTERM.

pub mod support;

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::metrics::metric;
use support::stack_api::{hs_call, room_with_human, set_typing};
use support::{DaemonOptions, Stack};

const WAIT: Duration = Duration::from_secs(20);

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

/// When the homeserver cannot reach `appservice.url` (a proxy before the daemon, cut), its
/// ping answers 502 `M_CONNECTION_FAILED`: `/ready` says so within one ping, while the
/// bridge keeps working (the homeserver is there); ready again once the way is restored.
#[test]
fn a_ping_the_homeserver_cannot_deliver_fails_ready_not_the_bridge() {
    let port = support::ports::free_port();
    let proxy = support::tcp_proxy::TcpProxy::start(&format!("127.0.0.1:{port}"));
    let options = DaemonOptions {
        port: Some(port),
        appservice_url: Some(format!("http://127.0.0.1:{}", proxy.port())),
        ..Default::default()
    };
    let stack = Stack::start_with("unreachable-as", options);
    let agent = support::unique("cutoff");
    let (_alice, room) = room_with_human(&stack, &[&agent]);

    proxy.cut();
    let problem = support::wait_until(WAIT, "/ready to report the failing ping", || {
        let (status, body) = stack.daemon.get("/ready");
        (status == StatusCode::SERVICE_UNAVAILABLE).then_some(body)
    });
    assert!(problem.contains("the ping failed"), "{problem}");
    let log = stack.daemon.log_text();
    assert!(
        log.contains("cannot reach mosaic-as") && log.contains("M_CONNECTION_"),
        "the log says why: {}",
        stack.daemon.log_tail(20)
    );
    let (status, answer) = stack.daemon.bridge_post(
        "/bridge/v1/messages",
        &json!({"agent": agent, "room_id": room, "body": "still sending"}),
    );
    assert_eq!(status, StatusCode::OK, "the bridge still works: {answer}");

    proxy.restore();
    stack.daemon.wait_ready(WAIT);
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
    let before = stack.metrics();
    let agent = support::unique("counted");
    let (alice, room) = stack.room_with_agents(&[&agent], WAIT);
    let (status, answer) = stack.daemon.bridge_post(
        "/bridge/v1/messages",
        &json!({"room_id": room, "agent": agent, "body": "counting"}),
    );
    assert_eq!(status, StatusCode::OK, "{answer}");
    let heard = alice.send_text(&room, "for the agent");
    stack.wait_inbox(&agent, &[heard], WAIT);
    let after = stack.metrics();

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
    assert!(metric(&after, "mosaic_as_last_transaction_timestamp_seconds", &[]) > 1.6e9);
    assert!(metric(&after, "mosaic_as_agents_live", &[]) >= 1.0);
    for line in after.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            line.starts_with("mosaic_as_") || line.starts_with("process_"),
            "unprefixed metric: {line}"
        );
        assert!(!line.contains(&agent), "agent slug as a label: {line}");
    }
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
    let (alice, room) = room_with_human(&stack, &[&agent]);
    let (status, _) = stack.daemon.bridge(
        Method::PUT,
        &format!("/bridge/v1/agents/{agent}"),
        Some(&json!({"display_name": "Discreet"})),
    );
    assert_eq!(status, StatusCode::OK);
    set_typing(&stack, &room, &agent, true);
    let (status, answer) = stack.daemon.bridge_post(
        "/bridge/v1/messages",
        &json!({"room_id": room, "agent": agent, "body": "**hi**"}),
    );
    assert_eq!(status, StatusCode::OK, "{answer}");
    let heard = alice.send_text(&room, "secret-free?");
    stack.wait_inbox(&agent, &[heard], WAIT);

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
    set_typing(&stack, &room, &agent, true);
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
    let (alice, room) = room_with_human(&stack, &[&agent]);
    let user = stack.agent_user(&agent);
    set_typing(&stack, &room, &agent, true);
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
