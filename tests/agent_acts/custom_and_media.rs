//! Custom events and media uploads over the scripted mock homeserver: what each becomes,
//! which types an agent may not send, and the bounds of an upload.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{self, app::spawn_app, daemon_api::DaemonApi, mock_hs::Endpoint};

#[test]
fn custom_events_go_out_as_room_or_state_events_and_owned_types_need_admin() {
    let app = spawn_app("acts-custom");
    let room = "!custom:hs.local";
    let post = |token: &str, body: serde_json::Value| {
        support::tokens::call_as(
            &app,
            Some(token),
            Method::POST,
            "/bridge/v1/events",
            Some(&body),
        )
    };
    let sender = support::tokens::issue_for(&app, &["send"], &["a"]);
    let task = json!({"agent": "a", "room_id": room, "type": "org.example.task",
                      "content": {"title": "ship", "done": false}, "txn_id": "task-1"});
    let r = post(&sender.value, task.clone());
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let again = post(&sender.value, task);
    assert_eq!(
        again.json()["event_id"],
        r.json()["event_id"],
        "a retry sends once"
    );
    let r = post(
        &sender.value,
        json!({"agent": "a", "room_id": room, "type": "org.example.status", "state_key": "a",
               "content": {"busy": true}}),
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let sent = app.mock.requests_to(Endpoint::Send);
    let custom: Vec<_> = sent
        .iter()
        .filter(|r| r.event_type.as_deref() == Some("org.example.task"))
        .collect();
    assert_eq!(custom.len(), 1);
    assert_eq!(custom[0].body, json!({"title": "ship", "done": false}));
    let state = app.mock.requests_to(Endpoint::State);
    let status = state
        .iter()
        .find(|r| r.event_type.as_deref() == Some("org.example.status"))
        .unwrap();
    assert_eq!(status.state_key.as_deref(), Some("a"));
    assert_eq!(status.body, json!({"busy": true}));

    // Types the daemon manages take an admin token; redactions have their own route; the
    // content is an object. Nothing is sent for any of these.
    let before = app.mock.requests().len();
    let pl = json!({"agent": "a", "room_id": room, "type": "m.room.power_levels", "state_key": "",
                    "content": {"users": {"@agent-a:hs.local": 100}}});
    let r = post(&sender.value, pl.clone());
    r.expect_error(403, "M_FORBIDDEN", "power levels with a send token");
    assert!(r.text.contains("admin"), "{}", r.text);
    for (body, named) in [
        (
            json!({"agent": "a", "room_id": room, "type": "m.room.redaction", "content": {}}),
            "redactions",
        ),
        (
            json!({"agent": "a", "room_id": room, "type": "x", "content": [1]}),
            "content",
        ),
        (
            json!({"agent": "a", "room_id": room, "type": "", "content": {}}),
            "type",
        ),
        (
            json!({"agent": "a", "room_id": room, "type": "x\u{1}", "content": {}}),
            "type",
        ),
    ] {
        let r = post(&sender.value, body);
        r.expect_error(400, "M_BAD_JSON", named);
        assert!(r.text.contains(named), "{}", r.text);
    }
    assert_eq!(app.mock.requests().len(), before, "nothing sent");
    // An admin token may.
    let r = post(app.bridge_token(), pl);
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[test]
fn uploads_are_bounded_and_need_a_media_type() {
    let options = support::DaemonOptions {
        limits_toml: "max_media_bytes = 1000".into(),
        ..Default::default()
    };
    let app = support::app::spawn_app_with("media-bounds", options);
    let upload = |body: Vec<u8>, content_type: Option<&str>| {
        let mut req = support::http::client()
            .post(format!("{}/bridge/v1/media?agent=a", app.base_url()))
            .bearer_auth(app.bridge_token())
            .body(body);
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        let resp = req.send().unwrap();
        (resp.status(), resp.text().unwrap())
    };
    let (status, text) = upload(vec![7; 1000], Some("image/png"));
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("mxc://hs.local/"), "{text}");
    let (status, text) = upload(vec![7; 1001], Some("image/png"));
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{text}");
    let (status, text) = upload(vec![7; 10], None);
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("Content-Type"), "{text}");
    let (status, text) = upload(vec![7; 10], Some("not a type"));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    let (status, _) = upload(vec![], Some("image/png"));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.mock.count(Endpoint::Upload),
        1,
        "only the good upload went out"
    );
    let uploads = app.mock.requests_to(Endpoint::Upload);
    assert!(uploads[0]
        .query
        .iter()
        .any(|(k, v)| k == "user_id" && v == "@agent-a:hs.local"));
}
