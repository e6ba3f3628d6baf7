//! What an inbox says besides its items, against the mock homeserver with transactions
//! pushed directly: `"gap": true` when retention removed entries a reader's cursor had not
//! reached (long-poll and SSE). Receipts and typing items: `e2e_agent_hears.rs`.

pub mod support;

use std::io::Read;

use reqwest::StatusCode;
use serde_json::Value;
use support::daemon_api::{put_agent, put_txn};
use support::events::{member_join, text_event};
use support::mock_hs::MockHs;
use support::synapse::http_client as client;
use support::{Daemon, DaemonOptions, SERVER_NAME};

const ROOM: &str = "!items";
const HUMAN: &str = "@human:hs.local";

fn agent_user(agent: &str) -> String {
    format!("@agent-{agent}:{SERVER_NAME}")
}

/// Pushes one homeserver transaction; asserts 200.
fn push(d: &Daemon, txn: &str, events: Vec<Value>) {
    let resp = put_txn(d, txn, events);
    assert_eq!(resp.status, StatusCode::OK, "transaction {txn}");
}

fn start(name: &str, options: DaemonOptions, agents: &[&str]) -> (MockHs, Daemon) {
    let (mock, daemon) = MockHs::with_daemon(name, options);
    let mut joins = Vec::new();
    for agent in agents {
        put_agent(&daemon, agent);
        joins.push(member_join(
            &format!("$join-{agent}"),
            ROOM,
            &agent_user(agent),
        ));
    }
    push(&daemon, "joins", joins);
    (mock, daemon)
}

fn inbox(d: &Daemon, agent: &str, since: &str) -> Value {
    let (status, body) = d.bridge_get(&format!(
        "/bridge/v1/agents/{agent}/events?since={since}&limit=100"
    ));
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn ids(page: &Value) -> Vec<&str> {
    page["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["event_id"].as_str().unwrap_or("-"))
        .collect()
}

/// Retention keeps two entries: a reader whose cursor is older learns that it missed
/// some (long-poll and SSE); a reader from the start, at `latest`, or past the floor
/// does not.
#[test]
fn a_cursor_older_than_what_retention_kept_reads_a_gap() {
    let options = DaemonOptions {
        extra_toml: "[inbox]\nretention_count = 2\n".into(),
        ..Default::default()
    };
    let (_mock, mut d) = start("inbox-gap", options, &["reader"]);
    let messages = (0..5)
        .map(|i| text_event(&format!("$m{i}"), ROOM, HUMAN, &format!("message {i}")))
        .collect();
    push(&d, "messages", messages);
    let first = inbox(&d, "reader", "");
    assert_eq!(ids(&first), ["$m0", "$m1", "$m2", "$m3", "$m4"]);
    assert_eq!(first.get("gap"), None, "nothing was removed yet");
    let after_first = first["events"][0]["cursor"].as_str().unwrap().to_owned();
    let after_third = first["events"][2]["cursor"].as_str().unwrap().to_owned();

    // Retention runs at start-up.
    d.restart();
    let behind = inbox(&d, "reader", &after_first);
    assert_eq!(ids(&behind), ["$m3", "$m4"]);
    assert_eq!(behind["gap"], true, "{behind}");
    let at_floor = inbox(&d, "reader", &after_third);
    assert_eq!(ids(&at_floor), ["$m3", "$m4"]);
    assert_eq!(
        at_floor.get("gap"),
        None,
        "nothing after this cursor was removed"
    );
    let from_start = inbox(&d, "reader", "");
    assert_eq!(ids(&from_start), ["$m3", "$m4"]);
    assert_eq!(
        from_start.get("gap"),
        None,
        "no cursor: the oldest kept is asked for"
    );
    let latest = inbox(&d, "reader", "latest");
    assert_eq!(ids(&latest), Vec::<&str>::new());
    assert_eq!(latest.get("gap"), None);

    // The stream says so before the entries.
    let mut resp = client()
        .get(format!(
            "{}/bridge/v1/agents/reader/events?since={after_first}",
            d.base_url()
        ))
        .bearer_auth(d.bridge_token())
        .header("Accept", "text/event-stream")
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    while !text.contains("\"$m4\"") {
        let n = resp.read(&mut buf).unwrap();
        assert!(n > 0, "the stream ended early: {text}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let gap = text.find("event: gap\ndata: {\"gap\":true}").expect(&text);
    assert!(gap < text.find("\"$m3\"").unwrap(), "{text}");
}
