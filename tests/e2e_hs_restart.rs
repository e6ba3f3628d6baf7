//! The homeserver restarts and reuses transaction ids: Synapse on SQLite numbers its
//! appservice transactions from 1 again after a restart. Messages sent after the restart
//! must still reach the agent, exactly once, and a genuine retry must still be recognised.

pub mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use support::{metrics::metric, scenes::copies, Stack};

const WAIT: Duration = Duration::from_secs(30);

fn reused_ids(stack: &Stack) -> f64 {
    metric(
        &stack.metrics(),
        "mosaic_as_transactions_total",
        &[("outcome", "id_reused")],
    )
}

#[test]
fn messages_after_a_homeserver_restart_reach_the_agent_once() {
    let mut stack = Stack::start("hs-restart");
    let agent = support::unique("phoenix");
    let (alice, room) = stack.room_with_agents(&[&agent], WAIT);
    let user = stack.agent_user(&agent);
    let mention = |body: String| {
        json!({"msgtype": "m.text", "body": format!("{user}: {body}"),
               "m.mentions": {"user_ids": [user]}})
    };
    let mut ids: Vec<String> = (0..3)
        .map(|i| alice.send_event(&room, "m.room.message", &mention(format!("before {i}"))))
        .collect();
    stack.wait_inbox(&agent, &ids, WAIT);
    assert_eq!(reused_ids(&stack), 0.0, "no restart yet");

    // Same database, new process: its transaction numbering starts over.
    stack.synapse.restart();
    stack.daemon.wait_ready(WAIT);
    let after: Vec<String> = (0..3)
        .map(|i| alice.send_event(&room, "m.room.message", &mention(format!("after {i}"))))
        .collect();
    ids.extend(after.iter().cloned());
    let inbox = stack.wait_inbox(&agent, &after, WAIT);
    for id in &ids {
        assert_eq!(copies(&inbox, id), 1, "{id} in the inbox of {agent}");
    }
    let mentioned = inbox
        .iter()
        .filter(|e| after.iter().any(|id| e["event_id"] == id.as_str()))
        .all(|e| e["mentioned"] == true);
    assert!(
        mentioned,
        "the messages after the restart mention the agent"
    );
    // The scenario really happened: the homeserver reused ids the daemon had recorded.
    assert!(
        reused_ids(&stack) >= 1.0,
        "Synapse reused no transaction id; the test proves nothing"
    );
    assert!(
        stack
            .daemon
            .log_text()
            .contains("the homeserver reused a transaction id"),
        "the reuse is named in the log"
    );

    // The agent still answers, and the human sees it.
    let (status, answer) = stack.daemon.bridge_post(
        "/bridge/v1/messages",
        &json!({"room_id": room, "agent": agent, "body": "still here"}),
    );
    assert_eq!(status, StatusCode::OK, "{answer}");
    let event = answer["event_id"].as_str().unwrap().to_owned();
    alice.wait_message(&room, WAIT, |e| e["event_id"] == event.as_str());
}
