//! Reactions, redactions, receipts and leaving over the scripted mock homeserver: the
//! Matrix request each becomes, their order after the agent's earlier acts in the room, bad
//! input refused with nothing sent, idempotency across a restart; `since=latest` on the
//! inbox; custom events and uploads in `agent_acts/custom_and_media.rs`. (What a human sees
//! of them is in `e2e_agent_acts.rs`.)

pub mod support;

use reqwest::{Method, StatusCode};
use serde_json::json;
use support::{
    app::spawn_app,
    daemon_api::DaemonApi,
    events::{member_join, text_event},
    mock_hs::Endpoint,
};

#[path = "agent_acts/custom_and_media.rs"]
mod custom_and_media;

#[test]
fn each_act_is_its_matrix_request_in_the_rooms_order() {
    let app = spawn_app("acts-requests");
    let room = "!acts:hs.local";
    let post = |route: &str, body: serde_json::Value| {
        let r = app.bridge(Method::POST, &format!("/bridge/v1/{route}"), Some(&body));
        assert_eq!(r.status, StatusCode::OK, "{route}: {}", r.text);
        r.json()
    };
    let said = post(
        "messages",
        json!({"agent": "a", "room_id": room, "body": "hi"}),
    );
    let said = said["event_id"].as_str().unwrap().to_owned();
    post(
        "reactions",
        json!({"agent": "a", "room_id": room, "event_id": said, "key": "👀"}),
    );
    let redacted = post(
        "redactions",
        json!({"agent": "a", "room_id": room, "event_id": said, "reason": "why not",
               "txn_id": "r1"}),
    );
    assert_eq!(redacted["txn_id"], "r1");
    post(
        "receipts",
        json!({"agent": "a", "room_id": room, "event_id": "$read"}),
    );
    post(
        "receipts",
        json!({"agent": "a", "room_id": room, "event_id": "$inthread", "thread_id": "$root"}),
    );

    let acts: Vec<_> = app
        .mock
        .requests()
        .into_iter()
        .filter(|r| {
            matches!(
                r.endpoint,
                Endpoint::Send | Endpoint::Redact | Endpoint::Receipt
            )
        })
        .collect();
    assert_eq!(acts.len(), 5, "{acts:#?}");
    assert_eq!(acts[0].event_type.as_deref(), Some("m.room.message"));
    assert_eq!(acts[1].event_type.as_deref(), Some("m.reaction"));
    assert_eq!(
        acts[1].body["m.relates_to"],
        json!({"rel_type": "m.annotation", "event_id": said, "key": "👀"})
    );
    assert_eq!(acts[2].endpoint, Endpoint::Redact);
    assert_eq!(acts[2].segments[6], said);
    assert_eq!(acts[2].body, json!({"reason": "why not"}));
    assert!(acts[2].txn_id.as_deref().unwrap().starts_with("mas."));
    assert_eq!(acts[3].segments.last().unwrap(), "read_markers");
    assert_eq!(
        acts[3].body,
        json!({"m.fully_read": "$read", "m.read": "$read"})
    );
    assert_eq!(acts[4].segments[5..], ["receipt", "m.read", "$inthread"]);
    assert_eq!(acts[4].body, json!({"thread_id": "$root"}));
    for act in &acts {
        assert_eq!(act.room.as_deref(), Some(room));
        assert!(act
            .query
            .iter()
            .any(|(k, v)| k == "user_id" && v.contains("agent-a")));
    }
}

#[test]
fn bad_acts_are_refused_and_nothing_is_sent() {
    let app = spawn_app("acts-bad-input");
    let room = "!acts:hs.local";
    let cases = [
        (
            "reactions",
            json!({"agent": "a", "room_id": room, "event_id": "$e", "key": ""}),
            "key",
        ),
        (
            "reactions",
            json!({"agent": "a", "room_id": room, "event_id": "e", "key": "x"}),
            "event_id",
        ),
        (
            "redactions",
            json!({"agent": "a", "room_id": room, "event_id": "$e", "reason": "x".repeat(1025)}),
            "reason",
        ),
        (
            "redactions",
            json!({"agent": "a", "room_id": room, "event_id": "$e", "txn_id": ""}),
            "txn_id",
        ),
        (
            "receipts",
            json!({"agent": "a", "room_id": room, "event_id": "$e", "extra": 1}),
            "unknown field",
        ),
        (
            "receipts",
            json!({"agent": "A", "room_id": room, "event_id": "$e"}),
            "agent",
        ),
        (
            "messages",
            json!({"agent": "a", "room_id": room, "body": "x", "edit_of": "$e", "thread_root": "$t"}),
            "edit_of",
        ),
    ];
    for (route, body, named) in cases {
        let r = app.bridge(Method::POST, &format!("/bridge/v1/{route}"), Some(&body));
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{route} {body}: {}",
            r.text
        );
        assert!(
            r.text.contains(named),
            "{route}: {} does not name {named}",
            r.text
        );
    }
    let sent = app.mock.requests().into_iter().filter(|r| {
        matches!(
            r.endpoint,
            Endpoint::Send | Endpoint::Redact | Endpoint::Receipt
        )
    });
    assert_eq!(sent.count(), 0);
}

#[test]
fn reactions_redactions_and_custom_events_retried_after_a_restart_happen_once() {
    let (mock, mut daemon) =
        support::mock_hs::MockHs::with_daemon("acts-restart", support::DaemonOptions::default());
    let room = "!restarted:hs.local";
    let reaction =
        json!({"agent": "a", "room_id": room, "event_id": "$m", "key": "✅", "txn_id": "k1"});
    let redaction = json!({"agent": "a", "room_id": room, "event_id": "$m", "txn_id": "k2"});
    let post = |d: &support::Daemon, route: &str, body: &serde_json::Value| {
        let (status, answer) = d.bridge_post(&format!("/bridge/v1/{route}"), body);
        assert_eq!(status, StatusCode::OK, "{route}: {answer}");
        answer["event_id"].as_str().unwrap().to_owned()
    };
    let reacted = post(&daemon, "reactions", &reaction);
    let redacted = post(&daemon, "redactions", &redaction);
    let custom = json!({"agent": "a", "room_id": room, "type": "org.example.task",
                        "content": {"title": "ship"}, "txn_id": "k3"});
    let customised = post(&daemon, "events", &custom);
    daemon.restart();
    daemon.wait_ready(std::time::Duration::from_secs(20));
    assert_eq!(post(&daemon, "reactions", &reaction), reacted);
    assert_eq!(post(&daemon, "redactions", &redaction), redacted);
    assert_eq!(post(&daemon, "events", &custom), customised);
    assert_eq!(
        mock.count(Endpoint::Send),
        2,
        "one reaction and one custom event sent"
    );
    assert_eq!(mock.count(Endpoint::Redact), 1, "one redaction sent");
    // The keys name their first requests, also after the restart.
    let mut other = reaction.clone();
    other["key"] = json!("❌");
    let (status, answer) = daemon.bridge_post("/bridge/v1/reactions", &other);
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
}

#[test]
fn an_agent_leaves_a_room_it_is_in_and_only_such_a_room() {
    let app = spawn_app("acts-leave");
    let room = "!left:hs.local";
    let user = "@agent-a:hs.local";
    let r = app.put_txn("t1", vec![member_join("$j", room, user)]);
    assert_eq!(r.status, StatusCode::OK);
    let path = format!("/bridge/v1/rooms/{room}/leave");
    let r = app.bridge(
        Method::POST,
        &path,
        Some(&json!({"agent": "a", "reason": "done here"})),
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let leaves = app.mock.requests_to(Endpoint::Leave);
    assert_eq!(leaves.len(), 1);
    assert_eq!(leaves[0].room.as_deref(), Some(room));
    assert_eq!(leaves[0].body, json!({"reason": "done here"}));
    // The directory follows at once: no longer joined, and a second leave is refused.
    let state = app.bridge(Method::GET, "/bridge/v1/agents/a", None).json();
    assert_eq!(state["joined_rooms"], json!([]), "{state}");
    let again = app.bridge(Method::POST, &path, Some(&json!({"agent": "a"})));
    again.expect_error(404, "M_NOT_FOUND", "a second leave");
    let elsewhere = app.bridge(
        Method::POST,
        "/bridge/v1/rooms/!never:hs.local/leave",
        Some(&json!({"agent": "a"})),
    );
    elsewhere.expect_error(404, "M_NOT_FOUND", "a room it was never in");
    assert_eq!(
        app.mock.requests_to(Endpoint::Leave).len(),
        1,
        "nothing more sent"
    );
}

#[test]
fn since_latest_reads_only_what_arrives_from_now_on() {
    let app = spawn_app("inbox-latest");
    support::daemon_api::put_agent(&app, "a");
    let room = "!latest:hs.local";
    let human = "@human:hs.local";
    let r = app.put_txn(
        "t1",
        vec![
            member_join("$j", room, "@agent-a:hs.local"),
            text_event("$old", room, human, "before"),
        ],
    );
    assert_eq!(r.status, StatusCode::OK);
    let read = |query: &str| {
        let r = app.bridge(
            Method::GET,
            &format!("/bridge/v1/agents/a/events?{query}"),
            None,
        );
        assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.text);
        r.json()
    };
    let now = read("since=latest");
    assert_eq!(now["events"], json!([]), "{now}");
    let next = now["next"].as_str().unwrap().to_owned();
    assert_ne!(next, "0", "the cursor of the newest item, not the start");
    assert_eq!(
        read("since=")["events"][0]["event_id"],
        "$old",
        "the start is unchanged"
    );
    let r = app.put_txn("t2", vec![text_event("$new", room, human, "after")]);
    assert_eq!(r.status, StatusCode::OK);
    let after = read(&format!("since={next}"));
    let ids: Vec<_> = after["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].clone())
        .collect();
    assert_eq!(ids, [json!("$new")]);
    // A long-poll from `latest` waits for the next item only.
    let waiter = std::thread::spawn({
        let base = app.base_url().to_owned();
        let token = app.bridge_token().to_owned();
        move || {
            support::http::call(
                Method::GET,
                &format!("{base}/bridge/v1/agents/a/events?since=latest&timeout_ms=10000"),
                Some(&token),
                None,
            )
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    let r = app.put_txn("t3", vec![text_event("$newer", room, human, "later")]);
    assert_eq!(r.status, StatusCode::OK);
    let waited = waiter.join().unwrap().json();
    let ids: Vec<_> = waited["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].clone())
        .collect();
    assert_eq!(ids, [json!("$newer")], "{waited}");
    let bad = app.bridge(Method::GET, "/bridge/v1/agents/a/events?since=newest", None);
    bad.expect_error(400, "M_INVALID_PARAM", "since=newest");
}

#[test]
fn a_deleted_agent_leaves_its_rooms_and_is_gone_but_its_name_can_serve_again() {
    let app = spawn_app("acts-delete");
    support::daemon_api::put_agent(&app, "a");
    let user = "@agent-a:hs.local";
    let r = app.put_txn(
        "t1",
        vec![
            member_join("$j1", "!one:hs.local", user),
            member_join("$j2", "!two:hs.local", user),
            text_event("$m", "!one:hs.local", "@human:hs.local", "hello a"),
        ],
    );
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(app.inbox("a").len(), 1);
    let r = app.bridge(Method::DELETE, "/bridge/v1/agents/a", None);
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let mut left: Vec<_> = app
        .mock
        .requests_to(Endpoint::Leave)
        .into_iter()
        .map(|r| r.room.unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["!one:hs.local", "!two:hs.local"]);
    app.bridge(Method::GET, "/bridge/v1/agents/a", None)
        .expect_error(404, "M_NOT_FOUND", "a deleted agent");
    let listed = app.bridge(Method::GET, "/bridge/v1/agents", None).json();
    assert_eq!(listed["agents"], json!([]), "{listed}");
    app.bridge(Method::GET, "/bridge/v1/agents/a/events", None)
        .expect_error(404, "M_NOT_FOUND", "a deleted agent's inbox");
    app.bridge(Method::DELETE, "/bridge/v1/agents/a", None)
        .expect_error(404, "M_NOT_FOUND", "deleted twice");
    // Its user stays in the namespace: the name serves a new agent, with nothing of the old.
    support::daemon_api::put_agent(&app, "a");
    assert_eq!(app.inbox("a"), Vec::<serde_json::Value>::new());
    let state = app.bridge(Method::GET, "/bridge/v1/agents/a", None).json();
    assert_eq!(state["joined_rooms"], json!([]), "{state}");
}
