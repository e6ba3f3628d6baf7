//! Reactions, redactions and receipts over the scripted mock homeserver: the Matrix request
//! each becomes, their order after the agent's earlier acts in the room, and bad input
//! refused with nothing sent. (What a human sees of them is in `e2e_agent_acts.rs`.)

pub mod support;

use reqwest::{Method, StatusCode};
use serde_json::json;
use support::{app::spawn_app, mock_hs::Endpoint};

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
fn reactions_and_redactions_retried_after_a_restart_happen_once() {
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
    daemon.restart();
    daemon.wait_ready(std::time::Duration::from_secs(20));
    assert_eq!(post(&daemon, "reactions", &reaction), reacted);
    assert_eq!(post(&daemon, "redactions", &redaction), redacted);
    assert_eq!(mock.count(Endpoint::Send), 1, "one reaction sent");
    assert_eq!(mock.count(Endpoint::Redact), 1, "one redaction sent");
    // The keys name their first requests, also after the restart.
    let mut other = reaction.clone();
    other["key"] = json!("❌");
    let (status, answer) = daemon.bridge_post("/bridge/v1/reactions", &other);
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
}
