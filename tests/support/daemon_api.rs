//! The daemon's two HTTP APIs as tests call them: homeserver-facing requests with the
//! hs_token, bridge requests with the bridge token, and the few calls many tests repeat
//! (push a transaction, make an agent known, read an inbox, provision a room). They work
//! alike on a daemon process ([`Daemon`]) and on one in the test process
//! ([`TestApp`](super::app::TestApp)).

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::http::{call, json_body, Resp};
use super::Daemon;

/// Where a daemon answers and with which secrets.
pub trait DaemonApi {
    fn base_url(&self) -> &str;
    fn hs_token(&self) -> &str;
    fn bridge_token(&self) -> &str;
    fn as_token(&self) -> &str;
    /// `@agent-<slug>:<server>`.
    fn agent_user(&self, slug: &str) -> String;
}

impl DaemonApi for Daemon {
    fn base_url(&self) -> &str {
        Daemon::base_url(self)
    }
    fn hs_token(&self) -> &str {
        Daemon::hs_token(self)
    }
    fn bridge_token(&self) -> &str {
        Daemon::bridge_token(self)
    }
    fn as_token(&self) -> &str {
        Daemon::as_token(self)
    }
    fn agent_user(&self, slug: &str) -> String {
        Daemon::agent_user(self, slug)
    }
}

/// A homeserver-facing request with the hs_token in the header.
pub fn hs(d: &impl DaemonApi, method: Method, path: &str, body: Option<&Value>) -> Resp {
    let url = format!("{}{path}", d.base_url());
    call(method, &url, Some(d.hs_token()), body.and_then(json_body))
}

/// A bridge request with the bridge token.
pub fn bridge(d: &impl DaemonApi, method: Method, path: &str, body: Option<&Value>) -> Resp {
    let url = format!("{}{path}", d.base_url());
    call(
        method,
        &url,
        Some(d.bridge_token()),
        body.and_then(json_body),
    )
}

/// `PUT /_matrix/app/v1/transactions/{txn}` with these events.
pub fn put_txn(d: &impl DaemonApi, txn: &str, events: Vec<Value>) -> Resp {
    hs(
        d,
        Method::PUT,
        &format!("/_matrix/app/v1/transactions/{txn}"),
        Some(&json!({ "events": events })),
    )
}

/// Event ids in an agent's inbox, oldest first.
pub fn inbox_ids(d: &impl DaemonApi, agent: &str) -> Vec<String> {
    let r = bridge(
        d,
        Method::GET,
        &format!("/bridge/v1/agents/{agent}/events?limit=100"),
        None,
    );
    assert_eq!(r.status, StatusCode::OK, "inbox of {agent}: {}", r.text);
    r.json()["events"]
        .as_array()
        .expect("events array")
        .iter()
        .map(|e| e["event_id"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// Makes the agent known (registered through the homeserver).
pub fn put_agent(d: &impl DaemonApi, agent: &str) {
    let r = bridge(
        d,
        Method::PUT,
        &format!("/bridge/v1/agents/{agent}"),
        Some(&json!({})),
    );
    assert_eq!(r.status, StatusCode::OK, "PUT agent {agent}: {}", r.text);
}

/// `POST /bridge/v1/provision/rooms` with this body.
pub fn provision(d: &impl DaemonApi, body: Value) -> Resp {
    bridge(d, Method::POST, "/bridge/v1/provision/rooms", Some(&body))
}

/// One valid request per bridge route (and an unknown path), for auth tests.
pub fn bridge_routes() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (
            Method::POST,
            "/bridge/v1/messages",
            Some(json!({ "room_id": "!r:hs.local", "agent": "a", "body": "hi" })),
        ),
        (
            Method::POST,
            "/bridge/v1/typing",
            Some(json!({ "room_id": "!r:hs.local", "agent": "a", "typing": true })),
        ),
        (
            Method::POST,
            "/bridge/v1/provision/rooms",
            Some(json!({ "name": "x" })),
        ),
        (Method::PUT, "/bridge/v1/agents/a", Some(json!({}))),
        (Method::GET, "/bridge/v1/agents/a", None),
        (Method::GET, "/bridge/v1/agents", None),
        (Method::GET, "/bridge/v1/agents/a/events", None),
        (
            Method::POST,
            "/bridge/v1/tokens",
            Some(json!({ "name": "x", "scopes": ["read"], "agents": ["*"] })),
        ),
        (Method::GET, "/bridge/v1/tokens", None),
        (
            Method::DELETE,
            "/bridge/v1/tokens/tok_0000000000000000",
            None,
        ),
        (Method::GET, "/bridge/v1/nope", None),
    ]
}

/// Asserts that none of the daemon's three secrets appears in its log.
pub fn assert_no_secret_in_log(d: &Daemon) {
    let log = d.log_text();
    for (name, secret) in [
        ("hs_token", d.hs_token()),
        ("as_token", d.as_token()),
        ("bridge token", d.bridge_token()),
    ] {
        assert!(!log.contains(secret), "the {name} appears in daemon.log");
    }
}
