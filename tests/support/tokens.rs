//! Issued bridge tokens as tests use them: issue one with the admin token, call the bridge
//! with any token, revoke.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::{
    daemon_api::{bridge, DaemonApi},
    http::{call, json_body, Resp},
};

/// An issued token: its id and its value.
pub struct Issued {
    pub id: String,
    pub value: String,
}

/// `POST /bridge/v1/tokens` with the admin token; panics unless 201.
pub fn issue(d: &impl DaemonApi, body: Value) -> Issued {
    let r = bridge(d, Method::POST, "/bridge/v1/tokens", Some(&body));
    assert_eq!(r.status, StatusCode::CREATED, "issue {body}: {}", r.text);
    let v = r.json();
    Issued {
        id: v["id"].as_str().expect("id").to_owned(),
        value: v["token"].as_str().expect("token").to_owned(),
    }
}

/// A token with `scopes` for `agents` (rate high enough never to matter).
pub fn issue_for(d: &impl DaemonApi, scopes: &[&str], agents: &[&str]) -> Issued {
    issue(
        d,
        json!({ "name": "test", "scopes": scopes, "agents": agents, "rate_per_s": 100_000 }),
    )
}

/// `DELETE /bridge/v1/tokens/{id}` with the admin token; panics unless 200.
pub fn revoke(d: &impl DaemonApi, id: &str) {
    let r = bridge(d, Method::DELETE, &format!("/bridge/v1/tokens/{id}"), None);
    assert_eq!(r.status, StatusCode::OK, "revoke {id}: {}", r.text);
}

/// A bridge request with `token` (or none).
pub fn call_as(
    d: &impl DaemonApi,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Resp {
    let url = format!("{}{path}", d.base_url());
    call(method, &url, token, body.and_then(json_body))
}
