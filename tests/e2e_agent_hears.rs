//! Receipts and typing of others in an agent's inbox, against a real Synapse pushing
//! ephemeral events (`appservice.receive_ephemeral = true`): a human who types, stops,
//! and reads the agent's message shows up as `m.typing` and `m.receipt` items, in the
//! order they happened, without event ids; the agent hears nothing of its own typing.

pub mod support;

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use support::stack_api::{send, set_typing, WAIT};
use support::{wait_until, DaemonOptions, Stack};

#[test]
fn an_agent_hears_receipts_and_typing_of_others() {
    let stack = Stack::start_with(
        "agent-hears",
        DaemonOptions {
            receive_ephemeral: true,
            ..Default::default()
        },
    );
    let agent = "listener";
    let (alice, room) = stack.room_with_agents(&[agent], WAIT);
    let typing = |on: bool| {
        let body = json!({"typing": on, "timeout": 30_000});
        let path = ["rooms", &room, "typing", &alice.user_id];
        alice.call_ok(Method::PUT, &path, &[], Some(&body));
    };
    // The agent's own typing is not its news.
    set_typing(&stack, &room, agent, true);
    set_typing(&stack, &room, agent, false);
    let ephemeral = |inbox: &[Value]| -> Vec<Value> {
        let types = ["m.typing", "m.receipt"];
        let items = inbox
            .iter()
            .filter(|i| types.contains(&i["type"].as_str().unwrap()));
        items.cloned().collect()
    };
    // Synapse pushes who types now, not every change: each step waits for its item.
    let wait_items = |n: usize, what: &str| {
        wait_until(WAIT, what, || {
            let items = ephemeral(&stack.whole_inbox(agent));
            (items.len() >= n).then_some(items)
        })
    };
    typing(true);
    wait_items(1, "the human's typing reaches the inbox");
    typing(false);
    wait_items(2, "the human's stop reaches the inbox");
    let said = send(&stack, &room, agent, json!({"body": "please read me"}));
    let path = ["rooms", &room, "receipt", "m.read", &said];
    alice.call_ok(Method::POST, &path, &[], Some(&json!({})));
    let items = wait_items(3, "the receipt reaches the inbox");
    for item in &items {
        assert_eq!(item["sender"], alice.user_id.as_str(), "{items:?}");
        assert_eq!(item["room_id"], room.as_str());
        assert_eq!(item.get("event_id"), None, "{item}");
    }
    let contents: Vec<&Value> = items.iter().map(|i| &i["content"]).collect();
    let want = [
        json!({"typing": true}),
        json!({"typing": false}),
        json!({"event_id": said, "receipt_type": "m.read"}),
    ];
    assert_eq!(contents, want.iter().collect::<Vec<_>>(), "{items:?}");
    // Nothing more comes of it (the same receipt is not delivered twice).
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(ephemeral(&stack.whole_inbox(agent)).len(), 3);
}
