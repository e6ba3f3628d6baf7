//! Transactions as large as Synapse makes them: while the daemon is stopped, a human posts
//! 100 messages of 60 KB into an agent's room; Synapse queues them and, once the daemon is
//! back, sends them in transactions of up to 100 events (about 6 MB). Every message reaches
//! the agent's inbox, once: no transaction is refused for its size.

pub mod support;

use std::time::Duration;

use serde_json::json;
use support::{scenes::copies, Stack};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn large_messages_queued_while_the_daemon_was_down_all_arrive_once() {
    let mut stack = Stack::start("large-txns");
    let agent = support::unique("bulk");
    let (alice, room) = stack.room_with_agents(&[&agent], WAIT);
    stack.daemon.stop();
    let filler = "x".repeat(60 * 1000);
    let ids: Vec<String> = (0..100)
        .map(|i| {
            let content = json!({"msgtype": "m.text", "body": format!("{i} {filler}")});
            alice.send_event(&room, "m.room.message", &content)
        })
        .collect();
    stack.daemon.start();
    stack.daemon.wait_ready(WAIT);
    let inbox = stack.wait_inbox(&agent, &ids, Duration::from_secs(120));
    for id in &ids {
        assert_eq!(copies(&inbox, id), 1, "{id} in the inbox of {agent}");
    }
    let body = inbox
        .iter()
        .find(|e| e["event_id"] == ids[99].as_str())
        .map(|e| e["content"]["body"].as_str().unwrap_or_default().len());
    assert_eq!(body, Some(3 + 60 * 1000), "the content arrived whole");
}
