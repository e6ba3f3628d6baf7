//! The daemon's two APIs called on a [`Stack`] as the end-to-end tests call them, each
//! asserting success where the test goes on with the answer: homeserver-facing calls
//! (header or legacy query token); provisioning, messages, typing and an agent's state on
//! the bridge; and a message as the human reads it.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::{Human, Stack};

/// How long the end-to-end tests of the bridge and the inbox wait for the homeserver.
pub const WAIT: Duration = Duration::from_secs(15);

/// A homeserver-facing call with the hs_token; `query_token` sends it as the legacy
/// `?access_token=` instead of the header.
pub fn hs_call(
    stack: &Stack,
    method: Method,
    path: &str,
    body: Option<&Value>,
    query_token: bool,
) -> (StatusCode, Value) {
    let client = super::synapse::http_client();
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

/// `POST /bridge/v1/provision/rooms`, expecting 200; answers the body.
pub fn provision(stack: &Stack, body: &Value) -> Value {
    let (status, answer) = stack.daemon.bridge_post("/bridge/v1/provision/rooms", body);
    assert_eq!(status, StatusCode::OK, "provision {body}: {answer}");
    answer
}

/// `POST /bridge/v1/messages` with `body` merged into `{room_id, agent}`; answers the
/// event id.
pub fn send(stack: &Stack, room: &str, agent: &str, extra: Value) -> String {
    let mut req = json!({"room_id": room, "agent": agent});
    req.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (status, answer) = stack.daemon.bridge_post("/bridge/v1/messages", &req);
    assert_eq!(status, StatusCode::OK, "send {req}: {answer}");
    answer["event_id"].as_str().expect("event_id").to_owned()
}

/// `POST /bridge/v1/typing`, expecting 200.
pub fn set_typing(stack: &Stack, room: &str, agent: &str, typing: bool) {
    let req = json!({"room_id": room, "agent": agent, "typing": typing});
    let (status, answer) = stack.daemon.bridge_post("/bridge/v1/typing", &req);
    assert_eq!(status, StatusCode::OK, "typing {req}: {answer}");
}

/// A human and a room provisioned with the human invited (and joined) and `agents`.
pub fn room_with_human(stack: &Stack, agents: &[&str]) -> (Human, String) {
    let alice = stack.human("alice");
    let answer = provision(
        stack,
        &json!({"name": "E2E", "invite": [alice.user_id], "agents": agents}),
    );
    assert!(answer.get("agent_errors").is_none(), "{answer}");
    let room = answer["room_id"].as_str().expect("room_id").to_owned();
    alice.join(&room);
    (alice, room)
}

/// The event `event_id` as the human reads it from `/messages`.
pub fn seen(human: &Human, room: &str, event_id: &str) -> Value {
    human.wait_message(room, WAIT, |e| e["event_id"] == event_id)
}

/// `GET /bridge/v1/agents/{agent}`, expecting 200.
pub fn agent_state(stack: &Stack, agent: &str) -> Value {
    let (status, state) = stack
        .daemon
        .bridge_get(&format!("/bridge/v1/agents/{agent}"));
    assert_eq!(status, StatusCode::OK, "GET agent {agent}: {state}");
    state
}
