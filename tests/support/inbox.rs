//! An agent's inbox read on a [`Stack`] as the end-to-end tests read it: one read
//! (long-polling), reading until a condition holds, finding events in what was read, and
//! the inbox as an SSE stream.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, Response};
use reqwest::StatusCode;
use serde_json::Value;

use super::stack_api::WAIT;
use super::Stack;

/// One read of the inbox: (events, next).
pub fn read_inbox(
    stack: &Stack,
    agent: &str,
    since: Option<&str>,
    timeout_ms: u64,
) -> (Vec<Value>, String) {
    let mut path = format!("/bridge/v1/agents/{agent}/events?timeout_ms={timeout_ms}");
    if let Some(since) = since {
        path.push_str(&format!("&since={since}"));
    }
    let (status, answer) = stack.daemon.bridge_get(&path);
    assert_eq!(status, StatusCode::OK, "GET {path}: {answer}");
    let events = answer["events"].as_array().expect("events").clone();
    let next = answer["next"].as_str().expect("next").to_owned();
    (events, next)
}

/// Every event in the agent's inbox from the start, reading until `done` holds for what
/// was read (long-polling while waiting).
pub fn inbox_until(stack: &Stack, agent: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    let mut all = Vec::new();
    let mut since: Option<String> = None;
    loop {
        let (events, next) = read_inbox(stack, agent, since.as_deref(), 1000);
        all.extend(events);
        since = Some(next);
        if done(&all) {
            return all;
        }
        assert!(
            Instant::now() < deadline,
            "inbox of {agent} never satisfied the condition: {all:#?}"
        );
    }
}

/// Whether `events` holds `event_id`.
pub fn has_event(events: &[Value], event_id: &str) -> bool {
    events.iter().any(|e| e["event_id"] == event_id)
}

/// The event `event_id` in `events`; panics when it is not there.
pub fn event<'a>(events: &'a [Value], event_id: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["event_id"] == event_id)
        .unwrap_or_else(|| panic!("{event_id} not in {events:#?}"))
}

/// An open SSE stream of an agent's inbox.
pub struct Sse {
    reader: BufReader<Response>,
}

fn sse_client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// `GET .../events` with `Accept: text/event-stream`: the raw response (any status).
pub fn sse_request(stack: &Stack, agent: &str, last_event_id: Option<&str>) -> Response {
    let mut req = sse_client()
        .get(format!(
            "{}/bridge/v1/agents/{agent}/events",
            stack.daemon.base_url()
        ))
        .bearer_auth(stack.daemon.bridge_token())
        .header("Accept", "text/event-stream");
    if let Some(id) = last_event_id {
        req = req.header("Last-Event-ID", id);
    }
    req.send().expect("open the event stream")
}

impl Sse {
    pub fn open(stack: &Stack, agent: &str, last_event_id: Option<&str>) -> Sse {
        let resp = sse_request(stack, agent, last_event_id);
        assert_eq!(resp.status(), StatusCode::OK);
        let ctype = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(ctype.starts_with("text/event-stream"), "{ctype}");
        Sse {
            reader: BufReader::new(resp),
        }
    }

    /// The next event: (`id:`, parsed `data:`); comments are skipped.
    pub fn next_event(&mut self) -> (String, Value) {
        let mut id = None;
        let mut data = String::new();
        loop {
            let mut line = String::new();
            let n = self
                .reader
                .read_line(&mut line)
                .expect("read the event stream");
            assert!(n > 0, "event stream ended");
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if !data.is_empty() {
                    let value = serde_json::from_str(&data).expect("data is JSON");
                    return (id.expect("id: line"), value);
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            if let Some(v) = line.strip_prefix("id:") {
                id = Some(v.trim().to_owned());
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            }
        }
    }
}
