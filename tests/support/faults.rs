//! What the fault tests share: a daemon process over the scripted mock homeserver with
//! short homeserver limits, `POST /bridge/v1/messages` keeping the whole answer (status,
//! `Retry-After`, body), and the message events that reached the mock.

use std::time::Duration;

use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::mock_hs::{Event, MockHs};
use super::{Daemon, DaemonOptions};

/// Short homeserver limits so that retries and deadlines play out in seconds.
pub const FAST_LIMITS: &str = "hs_attempt_timeout_ms = 500\nhs_deadline_ms = 8000";

/// A client for bridge calls that may wait out a homeserver deadline: no proxy, 60 s.
pub fn client() -> Client {
    super::http_client(Duration::from_secs(60))
}

/// A mock and a daemon process pointed at it with these `[limits]`, started and ready.
pub fn start(name: &str, limits: &str) -> (MockHs, Daemon) {
    let options = DaemonOptions {
        limits_toml: limits.to_owned(),
        ..Default::default()
    };
    MockHs::with_daemon(name, options)
}

/// Answer of `POST /bridge/v1/messages`.
pub struct Answer {
    pub status: StatusCode,
    pub retry_after: Option<u64>,
    pub body: Value,
}

impl Answer {
    /// The event id of a successful send; panics on any other answer.
    pub fn event_id(&self) -> String {
        assert_eq!(self.status, StatusCode::OK, "send failed: {}", self.body);
        self.body["event_id"].as_str().expect("event_id").to_owned()
    }
}

/// `agent` says `body` in `room` with the client key `txn`, through `http`.
pub fn send_with(
    http: &Client,
    d: &Daemon,
    agent: &str,
    room: &str,
    body: &str,
    txn: &str,
) -> Answer {
    let resp = http
        .post(format!("{}/bridge/v1/messages", d.base_url()))
        .bearer_auth(d.bridge_token())
        .json(&json!({ "room_id": room, "agent": agent, "body": body, "txn_id": txn }))
        .send()
        .unwrap_or_else(|e| panic!("POST /bridge/v1/messages ({agent}, {txn}): {e}"));
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body = resp.json().unwrap_or(Value::Null);
    Answer {
        status,
        retry_after,
        body,
    }
}

/// [`send_with`] through a new [`client`].
pub fn send(d: &Daemon, agent: &str, room: &str, body: &str, txn: &str) -> Answer {
    send_with(&client(), d, agent, room, body, txn)
}

/// [`send`] as a client that honours 503 with `Retry-After` does: again after the wait,
/// for up to 30 s (on PostgreSQL, a daemon started again before its predecessor's lease
/// lapsed answers so until it owns the agent).
pub fn send_honouring_retry(d: &Daemon, agent: &str, room: &str, body: &str, txn: &str) -> Answer {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let answer = send(d, agent, room, body, txn);
        match answer.retry_after {
            Some(s)
                if answer.status == StatusCode::SERVICE_UNAVAILABLE
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_secs(s.max(1)));
            }
            _ => return answer,
        }
    }
}

/// Message events at the mock with this body.
pub fn events_with(mock: &MockHs, body: &str) -> Vec<Event> {
    mock.messages()
        .into_iter()
        .filter(|e| e.content["body"] == body)
        .collect()
}
