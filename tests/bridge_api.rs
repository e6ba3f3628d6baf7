//! The bridge API's guards against a mock homeserver: token auth on every route, a disabled
//! bridge (empty token list), validation errors that name the field, wrong methods and
//! unknown paths. Nothing refused reaches the homeserver.

pub mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::app::{spawn_app, spawn_app_with};
use support::daemon_api::DaemonApi;
use support::daemon_api::{assert_no_secret_in_log, bridge, bridge_routes, hs};
use support::http::{call, client, json_body, truncate};
use support::mock_hs::{Endpoint, MockHs};
use support::DaemonOptions;

/// No token, a wrong token, the hs_token or a non-Bearer scheme → 403 on every bridge
/// route, before the body is looked at; nothing reaches the homeserver.
#[test]
fn bridge_refuses_missing_and_wrong_tokens() {
    let (mock, d) = MockHs::with_daemon("bridge-auth", DaemonOptions::default());
    let before = mock.requests().len();
    let wrong = "z".repeat(64);
    for (method, path, body) in bridge_routes() {
        let url = format!("{}{path}", d.base_url());
        for (label, token) in [
            ("none", None),
            ("wrong", Some(wrong.as_str())),
            ("hs_token", Some(d.hs_token())),
        ] {
            let r = call(
                method.clone(),
                &url,
                token,
                body.as_ref().and_then(json_body),
            );
            r.expect_error(403, "M_FORBIDDEN", &format!("{method} {path} ({label})"));
            // A refusal can be found in the log by its request id, like any answer.
            let id = r.headers.get("x-request-id").map(|v| v.len());
            assert_eq!(id, Some(24), "{method} {path} ({label}): request id");
        }
        // Auth comes before parsing: garbage with no token is still 403.
        let r = call(method.clone(), &url, None, Some(b"{garbage".to_vec()));
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {path} garbage");
        let r = client()
            .request(method.clone(), &url)
            .basic_auth("u", Some(d.bridge_token()))
            .send()
            .expect("basic auth request");
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{method} {path} basic");
    }
    // The bridge token is not an hs_token either.
    let r = call(
        Method::POST,
        &format!("{}/_matrix/app/v1/ping", d.base_url()),
        Some(d.bridge_token()),
        json_body(&json!({})),
    );
    r.expect_error(403, "M_FORBIDDEN", "bridge token on the homeserver API");
    let reached = mock.requests()[before..]
        .iter()
        .filter(|r| r.endpoint != Endpoint::Ping)
        .count();
    assert_eq!(reached, 0, "refused calls reached the mock");
    // With the right token the same routes are served.
    let r = bridge(&d, Method::GET, "/bridge/v1/agents", None);
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_no_secret_in_log(&d);
}

/// `MOSAIC_BRIDGE_TOKENS=""` denies every bridge request; `/health` and the homeserver API
/// keep working.
#[test]
fn empty_bridge_token_list_denies_every_bridge_request() {
    let options = DaemonOptions {
        bridge_tokens_env: Some(String::new()),
        ..Default::default()
    };
    let d = spawn_app_with("bridge-disabled", options);
    for (method, path, body) in bridge_routes() {
        let url = format!("{}{path}", d.base_url());
        for token in [None, Some(d.bridge_token()), Some("")] {
            let r = call(
                method.clone(),
                &url,
                token,
                body.as_ref().and_then(json_body),
            );
            r.expect_error(403, "M_FORBIDDEN", &format!("{method} {path} (disabled)"));
        }
    }
    assert_eq!(d.get("/health").0, StatusCode::OK);
    assert_eq!(d.get("/ready").0, StatusCode::OK);
    let r = hs(&d, Method::POST, "/_matrix/app/v1/ping", Some(&json!({})));
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        d.mock.count(Endpoint::Send) + d.mock.count(Endpoint::CreateRoom),
        0
    );
}

/// Every validation failure → 400 with an errcode and an error naming the field; nothing
/// reaches the homeserver.
#[test]
fn bridge_validation_names_the_field() {
    let d = spawn_app("bridge-validation");
    let before = d.mock.requests().len();
    let msg = |extra: Value| {
        let mut m = json!({ "room_id": "!r:hs.local", "agent": "a", "body": "hi" });
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                m.as_object_mut().unwrap().remove(k);
            } else {
                m[k] = v.clone();
            }
        }
        m
    };
    let invites: Vec<String> = (0..51).map(|i| format!("@u{i}:hs.local")).collect();
    let fifty: Vec<String> = (0..50).map(|i| format!("@u{i}:hs.local")).collect();
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "/bridge/v1/messages",
            msg(json!({ "agent": "Bad Slug" })),
            "agent",
        ),
        (
            "/bridge/v1/messages",
            msg(json!({ "agent": "-lead" })),
            "agent",
        ),
        (
            "/bridge/v1/messages",
            msg(json!({ "agent": "a".repeat(65) })),
            "agent",
        ),
        ("/bridge/v1/messages", msg(json!({ "agent": "" })), "agent"),
        (
            "/bridge/v1/messages",
            msg(json!({ "room_id": "r:hs.local" })),
            "room_id",
        ),
        (
            "/bridge/v1/messages",
            msg(json!({ "room_id": "#a:hs.local" })),
            "room_id",
        ),
        (
            "/bridge/v1/messages",
            msg(json!({ "room_id": "" })),
            "room_id",
        ),
        ("/bridge/v1/messages", msg(json!({ "body": "" })), "body"),
        (
            "/bridge/v1/messages",
            msg(json!({ "body": "x".repeat(64 * 1024 + 1) })),
            "body",
        ),
        ("/bridge/v1/messages", msg(json!({ "body": null })), "body"),
        (
            "/bridge/v1/messages",
            msg(json!({ "msgtype": "m.image" })),
            "msgtype",
        ),
        (
            "/bridge/v1/messages",
            msg(json!({ "format": "html" })),
            "format",
        ),
        (
            "/bridge/v1/messages",
            msg(json!({ "colour": "red" })),
            "colour",
        ),
        (
            "/bridge/v1/messages",
            msg(json!({ "mentions": ["bob"] })),
            "mentions",
        ),
        (
            "/bridge/v1/messages",
            msg(json!({ "reply_to": "nope" })),
            "reply_to",
        ),
        (
            "/bridge/v1/messages",
            msg(json!({ "thread_root": 5 })),
            "thread_root",
        ),
        (
            "/bridge/v1/messages",
            msg(json!({ "txn_id": "" })),
            "txn_id",
        ),
        (
            "/bridge/v1/typing",
            json!({ "room_id": "!r:hs.local", "agent": "a", "typing": "yes" }),
            "typing",
        ),
        (
            "/bridge/v1/typing",
            json!({ "room_id": "nope", "agent": "a", "typing": true }),
            "room_id",
        ),
        (
            "/bridge/v1/typing",
            json!({ "room_id": "!r:hs.local", "agent": "A", "typing": true }),
            "agent",
        ),
        (
            "/bridge/v1/typing",
            json!({ "room_id": "!r:hs.local", "agent": "a", "typing": true, "extra": 1 }),
            "extra",
        ),
        ("/bridge/v1/provision/rooms", json!({ "name": "" }), "name"),
        (
            "/bridge/v1/provision/rooms",
            json!({ "name": "   " }),
            "name",
        ),
        (
            "/bridge/v1/provision/rooms",
            json!({ "topic": "t" }),
            "name",
        ),
        (
            "/bridge/v1/provision/rooms",
            json!({ "name": "x", "alias": "BAD ALIAS" }),
            "alias",
        ),
        (
            "/bridge/v1/provision/rooms",
            json!({ "name": "x", "alias": "a".repeat(201) }),
            "alias",
        ),
        (
            "/bridge/v1/provision/rooms",
            json!({ "name": "x", "invite": invites }),
            "invite",
        ),
        (
            "/bridge/v1/provision/rooms",
            json!({ "name": "x", "invite": ["bob"] }),
            "invite",
        ),
        (
            "/bridge/v1/provision/rooms",
            json!({ "name": "x", "space_id": "space" }),
            "space_id",
        ),
        (
            "/bridge/v1/provision/rooms",
            json!({ "name": "x", "agents": ["Bad"] }),
            "agents",
        ),
        (
            "/bridge/v1/provision/rooms",
            json!({ "name": "x", "preset": "public_chat" }),
            "preset",
        ),
    ];
    for (path, body, field) in cases {
        let r = bridge(&d, Method::POST, path, Some(&body));
        let what = format!("POST {path} {}", truncate(&body));
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.text);
        let j = r.json();
        assert!(
            matches!(
                j["errcode"].as_str(),
                Some("M_BAD_JSON" | "M_INVALID_PARAM")
            ),
            "{what}: {j}"
        );
        assert!(
            j["error"].as_str().unwrap_or("").contains(field),
            "{what}: error does not name {field}: {j}"
        );
    }
    // Not JSON at all.
    let url = format!("{}/bridge/v1/messages", d.base_url());
    call(
        Method::POST,
        &url,
        Some(d.bridge_token()),
        Some(b"{nope".to_vec()),
    )
    .expect_error(400, "M_NOT_JSON", "bridge not JSON");
    // Path and query parameters.
    for (method, path, body, field) in [
        (
            Method::PUT,
            "/bridge/v1/agents/Bad_Slug",
            Some(json!({})),
            "agent",
        ),
        (Method::GET, "/bridge/v1/agents/-x", None, "agent"),
        (
            Method::PUT,
            "/bridge/v1/agents/ok",
            Some(json!({ "display_name": "" })),
            "display_name",
        ),
        (
            Method::PUT,
            "/bridge/v1/agents/ok",
            Some(json!({ "avatar_url": "http://x/y.png" })),
            "avatar_url",
        ),
        (
            Method::PUT,
            "/bridge/v1/agents/ok",
            Some(json!({ "nick": "x" })),
            "nick",
        ),
        (
            Method::GET,
            "/bridge/v1/agents/ok/events?since=abc",
            None,
            "since",
        ),
        (
            Method::GET,
            "/bridge/v1/agents/ok/events?limit=0",
            None,
            "limit",
        ),
    ] {
        let r = bridge(&d, method.clone(), path, body.as_ref());
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{method} {path}: {}",
            r.text
        );
        assert!(
            r.json()["error"].as_str().unwrap_or("").contains(field),
            "{method} {path}: {}",
            r.text
        );
    }
    let reached: Vec<_> = d.mock.requests()[before..]
        .iter()
        .filter(|r| r.endpoint != Endpoint::Ping)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        reached.is_empty(),
        "invalid requests reached the homeserver: {reached:?}"
    );
    // 50 invites is the limit, not an error.
    let r = bridge(
        &d,
        Method::POST,
        "/bridge/v1/provision/rooms",
        Some(&json!({ "name": "fifty", "invite": fifty })),
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

/// Wrong method on a bridge route → 405; unknown bridge path → 404 (JSON errors).
#[test]
fn bridge_wrong_method_405_unknown_path_404() {
    let d = spawn_app("bridge-paths");
    for (method, path) in [
        (Method::GET, "/bridge/v1/messages"),
        (Method::PUT, "/bridge/v1/messages"),
        (Method::GET, "/bridge/v1/typing"),
        (Method::GET, "/bridge/v1/provision/rooms"),
        (Method::POST, "/bridge/v1/agents"),
        (Method::PATCH, "/bridge/v1/agents/a"),
        (Method::POST, "/bridge/v1/agents/a/events"),
    ] {
        let what = format!("{method} {path}");
        bridge(&d, method, path, Some(&json!({}))).expect_error(405, "M_UNRECOGNIZED", &what);
    }
    for (method, path) in [
        (Method::GET, "/bridge/v1/nope"),
        (Method::POST, "/bridge/v1/message"),
        (Method::POST, "/bridge/v2/messages"),
        (Method::GET, "/bridge/v1/agents/a/b/c"),
    ] {
        let what = format!("{method} {path}");
        bridge(&d, method, path, None).expect_error(404, "M_UNRECOGNIZED", &what);
    }
}
