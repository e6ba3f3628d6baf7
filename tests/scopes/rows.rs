//! The table of `tests/scopes.rs`: one row per bridge route and method, with the scope it
//! needs and how to call it for an agent.

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{self, app::TestApp, daemon_api::put_agent, tokens::issue_for};

/// One route: how to call it for an agent, and the scope it needs.
pub struct Row {
    pub method: Method,
    /// The route's pattern, as the daemon's route table writes it.
    pub pattern: &'static str,
    pub scope: &'static str,
    /// Whether the request acts for an agent (then a token for other agents is refused).
    pub for_agent: bool,
    /// The path and body for `agent`.
    pub request: fn(&TestApp, &str) -> (String, Option<Value>),
}

pub const SCOPES: [&str; 5] = ["send", "read", "profile", "provision", "admin"];

pub fn rows() -> Vec<Row> {
    vec![
        Row {
            method: Method::POST,
            pattern: "/bridge/v1/messages",
            scope: "send",
            for_agent: true,
            request: |_, a| {
                let body = json!({ "room_id": "!r:hs.local", "agent": a, "body": "hi" });
                ("/bridge/v1/messages".into(), Some(body))
            },
        },
        Row {
            method: Method::POST,
            pattern: "/bridge/v1/reactions",
            scope: "send",
            for_agent: true,
            request: |_, a| {
                let body =
                    json!({ "room_id": "!r:hs.local", "agent": a, "event_id": "$e", "key": "👍" });
                ("/bridge/v1/reactions".into(), Some(body))
            },
        },
        Row {
            method: Method::POST,
            pattern: "/bridge/v1/redactions",
            scope: "send",
            for_agent: true,
            request: |_, a| {
                let body = json!({ "room_id": "!r:hs.local", "agent": a, "event_id": "$e" });
                ("/bridge/v1/redactions".into(), Some(body))
            },
        },
        Row {
            method: Method::POST,
            pattern: "/bridge/v1/receipts",
            scope: "send",
            for_agent: true,
            request: |_, a| {
                let body = json!({ "room_id": "!r:hs.local", "agent": a, "event_id": "$e" });
                ("/bridge/v1/receipts".into(), Some(body))
            },
        },
        Row {
            method: Method::GET,
            pattern: "/bridge/v1/rooms/{room_id}/messages",
            scope: "read",
            for_agent: true,
            request: |app, a| {
                // The agent read as exists (the ones outside the patterns must not be made).
                if a.starts_with("a-") {
                    put_agent(app, a);
                }
                (
                    format!("/bridge/v1/rooms/!r:hs.local/messages?agent={a}"),
                    None,
                )
            },
        },
        Row {
            method: Method::GET,
            pattern: "/bridge/v1/rooms/{room_id}/state",
            scope: "read",
            for_agent: true,
            request: |app, a| {
                // The agent read as exists (the ones outside the patterns must not be made).
                if a.starts_with("a-") {
                    put_agent(app, a);
                }
                (
                    format!("/bridge/v1/rooms/!r:hs.local/state?agent={a}"),
                    None,
                )
            },
        },
        Row {
            method: Method::GET,
            pattern: "/bridge/v1/rooms/{room_id}/members",
            scope: "read",
            for_agent: true,
            request: |app, a| {
                // The agent read as exists (the ones outside the patterns must not be made).
                if a.starts_with("a-") {
                    put_agent(app, a);
                }
                (
                    format!("/bridge/v1/rooms/!r:hs.local/members?agent={a}"),
                    None,
                )
            },
        },
        Row {
            method: Method::POST,
            pattern: "/bridge/v1/media",
            scope: "send",
            for_agent: true,
            request: |_, a| {
                let file = json!({ "a file": "of JSON" });
                (
                    format!("/bridge/v1/media?agent={a}&filename=f.json"),
                    Some(file),
                )
            },
        },
        Row {
            method: Method::POST,
            pattern: "/bridge/v1/events",
            scope: "send",
            for_agent: true,
            request: |_, a| {
                let body = json!({ "room_id": "!r:hs.local", "agent": a,
                                   "type": "org.example.task", "content": {"done": true} });
                ("/bridge/v1/events".into(), Some(body))
            },
        },
        Row {
            method: Method::POST,
            pattern: "/bridge/v1/rooms/{room_id}/leave",
            scope: "send",
            for_agent: true,
            request: |app, a| {
                // In the room first (a fresh transaction each time: an agent may have left).
                static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let user = format!("@agent-{a}:hs.local");
                let join = support::events::member_join(&format!("$j{n}"), "!r:hs.local", &user);
                assert!(app
                    .put_txn(&format!("leave-{n}"), vec![join])
                    .status
                    .is_success());
                let body = json!({ "agent": a });
                ("/bridge/v1/rooms/!r:hs.local/leave".into(), Some(body))
            },
        },
        Row {
            method: Method::POST,
            pattern: "/bridge/v1/typing",
            scope: "send",
            for_agent: true,
            request: |_, a| {
                let body = json!({ "room_id": "!r:hs.local", "agent": a, "typing": true });
                ("/bridge/v1/typing".into(), Some(body))
            },
        },
        Row {
            method: Method::POST,
            pattern: "/bridge/v1/provision/rooms",
            scope: "provision",
            for_agent: true,
            request: |_, a| {
                let body = json!({ "name": "room", "agents": [a] });
                ("/bridge/v1/provision/rooms".into(), Some(body))
            },
        },
        Row {
            method: Method::PUT,
            pattern: "/bridge/v1/agents/{agent}",
            scope: "profile",
            for_agent: true,
            request: |_, a| (format!("/bridge/v1/agents/{a}"), Some(json!({}))),
        },
        Row {
            method: Method::DELETE,
            pattern: "/bridge/v1/agents/{agent}",
            scope: "profile",
            for_agent: true,
            request: |app, a| {
                // There to be deleted (the ones outside the patterns must not be made).
                if a.starts_with("a-") {
                    put_agent(app, a);
                }
                (format!("/bridge/v1/agents/{a}"), None)
            },
        },
        Row {
            method: Method::GET,
            pattern: "/bridge/v1/agents/{agent}",
            scope: "read",
            for_agent: true,
            request: |_, a| (format!("/bridge/v1/agents/{a}"), None),
        },
        Row {
            method: Method::GET,
            pattern: "/bridge/v1/agents/{agent}/events",
            scope: "read",
            for_agent: true,
            request: |_, a| (format!("/bridge/v1/agents/{a}/events"), None),
        },
        Row {
            method: Method::GET,
            pattern: "/bridge/v1/agents",
            scope: "read",
            for_agent: false,
            request: |_, _| ("/bridge/v1/agents".into(), None),
        },
        Row {
            method: Method::GET,
            pattern: "/bridge/v1/activity",
            scope: "read",
            for_agent: false,
            request: |_, _| ("/bridge/v1/activity".into(), None),
        },
        Row {
            method: Method::POST,
            pattern: "/bridge/v1/tokens",
            scope: "admin",
            for_agent: false,
            request: |_, _| {
                let body = json!({ "name": "n", "scopes": ["read"], "agents": ["*"] });
                ("/bridge/v1/tokens".into(), Some(body))
            },
        },
        Row {
            method: Method::GET,
            pattern: "/bridge/v1/tokens",
            scope: "admin",
            for_agent: false,
            request: |_, _| ("/bridge/v1/tokens".into(), None),
        },
        Row {
            method: Method::DELETE,
            pattern: "/bridge/v1/tokens/{id}",
            scope: "admin",
            for_agent: false,
            request: |app, _| {
                let spare = issue_for(app, &["read"], &["*"]);
                (format!("/bridge/v1/tokens/{}", spare.id), None)
            },
        },
    ]
}
