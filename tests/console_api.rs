//! What the operator console reads from the bridge, against the in-process daemon over
//! the scripted mock homeserver: the agent search (`prefix`, within the token's agents),
//! each agent's `inbox_depth`, and the live view of errors (`GET /bridge/v1/activity`): a
//! failure shows up there for a read token, with no secret in it, a token without the
//! `read` scope is refused, and the stream ends as the daemon stops (not at the server's
//! stop timeout).

pub mod support;

use std::{
    io::{BufRead, BufReader},
    time::{Duration, Instant},
};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{
    app::{spawn_app, spawn_app_with, TestApp},
    daemon_api::{put_agent, DaemonApi},
    events::{member_join, text_event},
    mock_hs::{Endpoint, Fault},
    tokens::{call_as, issue_for},
    DaemonOptions,
};

fn slugs(page: &Value) -> Vec<&str> {
    page["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .map(|a| a["agent"].as_str().unwrap())
        .collect()
}

fn list(app: &TestApp, token: &str, query: &str) -> Value {
    let r = call_as(
        app,
        Some(token),
        Method::GET,
        &format!("/bridge/v1/agents?{query}"),
        None,
    );
    assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.text);
    r.json()
}

#[test]
fn agents_are_searched_by_prefix_within_the_tokens_agents() {
    let app = spawn_app("console-search");
    for slug in ["plan-1", "plan-2", "planner", "pla", "code-1", "code-2"] {
        put_agent(&app, slug);
    }
    let admin = app.bridge_token();
    assert_eq!(
        slugs(&list(&app, admin, "prefix=plan")),
        ["plan-1", "plan-2", "planner"]
    );
    assert_eq!(
        slugs(&list(&app, admin, "prefix=plan-")),
        ["plan-1", "plan-2"]
    );
    assert_eq!(slugs(&list(&app, admin, "prefix=planner")), ["planner"]);
    assert!(slugs(&list(&app, admin, "prefix=zzz")).is_empty());
    // Paged like the whole list.
    let first = list(&app, admin, "prefix=plan&limit=2");
    assert_eq!(
        (slugs(&first), first["next"].as_str()),
        (vec!["plan-1", "plan-2"], Some("plan-2"))
    );
    assert_eq!(
        slugs(&list(&app, admin, "prefix=plan&limit=2&after=plan-2")),
        ["planner"]
    );

    // Within a token's patterns only: its prefixes and exact agents, narrowed.
    let token = issue_for(&app, &["read"], &["plan-*", "code-1"]).value;
    assert_eq!(
        slugs(&list(&app, &token, "prefix=pla")),
        ["plan-1", "plan-2"]
    );
    assert_eq!(slugs(&list(&app, &token, "prefix=code")), ["code-1"]);
    assert_eq!(slugs(&list(&app, &token, "prefix=plan-2")), ["plan-2"]);
    assert!(slugs(&list(&app, &token, "prefix=planner")).is_empty());

    for bad in ["", "Plan", "-x", "pl%20an", "plan*"] {
        let path = format!("/bridge/v1/agents?prefix={bad}");
        let r = call_as(&app, Some(admin), Method::GET, &path, None);
        r.expect_error(400, "M_INVALID_PARAM", &format!("prefix {bad:?}"));
        assert!(
            r.json()["error"].as_str().unwrap().starts_with("prefix"),
            "{}",
            r.text
        );
    }
}

#[test]
fn each_agent_shows_its_inbox_depth() {
    let app = spawn_app("console-depth");
    for slug in ["deep", "shallow", "empty"] {
        put_agent(&app, slug);
    }
    let room = "!depth:hs.local";
    let human = "@h:hs.local";
    let mut events = vec![
        member_join("$j1", room, &app.agent_user("deep")),
        member_join("$j2", room, &app.agent_user("shallow")),
        text_event("$m1", room, human, "one"),
    ];
    let r = app.put_txn("depth-1", std::mem::take(&mut events));
    assert!(r.status.is_success(), "{}", r.text);
    // The second message reaches only the agent still in the room.
    let leave = json!({
        "event_id": "$l1", "room_id": room, "sender": app.agent_user("shallow"),
        "type": "m.room.member", "state_key": app.agent_user("shallow"),
        "origin_server_ts": 1_700_000_000_002u64, "content": { "membership": "leave" },
    });
    let r = app.put_txn(
        "depth-2",
        vec![leave, text_event("$m2", room, human, "two")],
    );
    assert!(r.status.is_success(), "{}", r.text);
    let deep = app.inbox("deep").len() as u64;
    let shallow = app.inbox("shallow").len() as u64;
    assert!(
        deep > shallow && shallow > 0,
        "deep {deep}, shallow {shallow}"
    );

    let page = list(&app, app.bridge_token(), "");
    let depth_of = |slug: &str| {
        let agents = page["agents"].as_array().unwrap();
        agents.iter().find(|a| a["agent"] == slug).unwrap()["inbox_depth"].as_u64()
    };
    assert_eq!(depth_of("deep"), Some(deep));
    assert_eq!(depth_of("shallow"), Some(shallow));
    assert_eq!(depth_of("empty"), Some(0));
    for (slug, depth) in [("deep", deep), ("empty", 0)] {
        let r = app.bridge(Method::GET, &format!("/bridge/v1/agents/{slug}"), None);
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json()["inbox_depth"], depth, "{slug}: {}", r.text);
        assert!(
            r.json()["joined_rooms"].is_array(),
            "the state is still all there"
        );
    }
}

/// Reads an SSE answer until `want` accepts an event's (name, data), or panics after
/// `within`.
fn wait_event(
    resp: reqwest::blocking::Response,
    within: Duration,
    mut want: impl FnMut(&str, &Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    let mut lines = BufReader::new(resp).lines();
    let mut name = String::new();
    while Instant::now() < deadline {
        let line = lines.next().expect("the stream goes on").expect("a line");
        if let Some(n) = line.strip_prefix("event: ") {
            name = n.to_owned();
        } else if let Some(data) = line.strip_prefix("data: ") {
            let data: Value = serde_json::from_str(data).expect("JSON data");
            if want(&name, &data) {
                return data;
            }
        }
    }
    panic!("no such event within {within:?}");
}

fn open_activity(app: &TestApp, token: &str) -> reqwest::blocking::Response {
    let client = support::http_client(Duration::from_secs(20));
    let resp = client
        .get(format!("{}/bridge/v1/activity", app.base_url()))
        .bearer_auth(token)
        .header("Accept", "text/event-stream")
        .send()
        .expect("open the activity stream");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    resp
}

#[test]
fn errors_show_up_in_the_live_view_for_read_tokens_only() {
    let app = spawn_app_with(
        "console-activity",
        DaemonOptions {
            limits_toml: "hs_attempt_timeout_ms = 300\nhs_deadline_ms = 1000".into(),
            ..Default::default()
        },
    );
    let reader = issue_for(&app, &["read"], &["nobody-*"]).value;
    let sender = issue_for(&app, &["send", "profile"], &["*"]).value;
    let r = call_as(
        &app,
        Some(&sender),
        Method::GET,
        "/bridge/v1/activity",
        None,
    );
    r.expect_error(403, "M_FORBIDDEN", "a token without the read scope");
    assert!(
        r.json()["error"].as_str().unwrap().contains("read"),
        "{}",
        r.text
    );

    // A summary comes first and then every second.
    let mut summaries = 0;
    let summary = wait_event(
        open_activity(&app, &reader),
        Duration::from_secs(5),
        |name, data| {
            summaries += usize::from(name == "summary");
            summaries == 2 && data["per_s"].is_object()
        },
    );
    assert!(
        summary["totals"]["requests"]["2xx"].as_f64().unwrap() >= 1.0,
        "{summary}"
    );
    assert!(summary["interval_ms"].as_u64().unwrap() >= 500, "{summary}");

    let stream = open_activity(&app, &reader);
    app.mock
        .always(Endpoint::Send, Fault::error(500, "M_UNKNOWN"));
    let secret_body = "a message body that must stay out of the live view";
    let body = json!({ "room_id": "!r:hs.local", "agent": "failing", "body": secret_body });
    let r = call_as(
        &app,
        Some(&sender),
        Method::POST,
        "/bridge/v1/messages",
        Some(&body),
    );
    assert!(r.status.is_server_error(), "{} {}", r.status, r.text);
    let request_id = r.headers["x-request-id"].to_str().unwrap().to_owned();

    let mut seen = Vec::new();
    wait_event(stream, Duration::from_secs(10), |name, data| {
        if name == "error" {
            seen.push(data.clone());
        }
        seen.iter().any(|e| e["source"] == "bridge")
            && seen.iter().any(|e| e["source"] == "homeserver")
    });
    let bridge = seen.iter().find(|e| e["source"] == "bridge").unwrap();
    assert_eq!(bridge["target"], "/bridge/v1/messages", "{bridge}");
    assert_eq!(bridge["method"], "POST");
    assert_eq!(bridge["status"], r.status.as_u16());
    assert_eq!(bridge["errcode"], "M_UNKNOWN");
    assert_eq!(bridge["request_id"], request_id.as_str());
    let hs = seen.iter().find(|e| e["source"] == "homeserver").unwrap();
    assert_eq!(hs["kind"], "server_error", "{hs}");
    assert_eq!(hs["status"], 500);
    assert_eq!(hs["agent"], "failing", "the agent the call was made as");
    for frame in &seen {
        let text = frame.to_string();
        assert!(
            !text.contains(secret_body) && !text.contains(&sender),
            "{text}"
        );
        assert!(!text.contains(app.bridge_token()) && !text.contains(app.as_token()));
    }

    // A new subscriber gets them replayed; the JSON reading has them too.
    let replayed = wait_event(
        open_activity(&app, &reader),
        Duration::from_secs(5),
        |name, data| name == "error" && data["seq"] == bridge["seq"],
    );
    assert_eq!(&replayed, bridge);
    let r = call_as(
        &app,
        Some(&reader),
        Method::GET,
        "/bridge/v1/activity?replay=1",
        None,
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let snapshot = r.json();
    assert_eq!(
        snapshot["errors"].as_array().unwrap().len(),
        1,
        "{snapshot}"
    );
    assert!(
        snapshot["summary"]["totals"]["requests"]["5xx"]
            .as_f64()
            .unwrap()
            >= 1.0
    );
    let r = call_as(
        &app,
        Some(&reader),
        Method::GET,
        "/bridge/v1/activity?replay=101",
        None,
    );
    r.expect_error(400, "M_INVALID_PARAM", "replay above 100");
}

#[test]
fn the_stream_ends_when_the_daemon_stops() {
    let app = spawn_app("console-activity-stop");
    let stream = open_activity(&app, app.bridge_token());
    let reader = std::thread::spawn(move || {
        let mut lines = BufReader::new(stream).lines();
        while let Some(Ok(_)) = lines.next() {}
        Instant::now()
    });
    std::thread::sleep(Duration::from_millis(300));
    let stopping = Instant::now();
    drop(app);
    let ended = reader.join().unwrap();
    assert!(
        ended.duration_since(stopping) < Duration::from_secs(4),
        "the stream ended {:?} after the stop (the server's stop timeout is 5 s)",
        ended.duration_since(stopping)
    );
}
