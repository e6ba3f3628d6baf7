//! End-to-end encryption (issue 21) against a real Synapse with appservice encryption on
//! (`experimental_features` msc3202_transaction_extensions, msc2409_to_device_messages_enabled):
//! an agent that joins an encrypted room gets a device of its own with identity and
//! one-time keys others can find and claim, and a restart changes neither.

pub mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::{daemon::DaemonOptions, nio::NioClient, stack_api::WAIT, wait_until, Human, Stack};

/// Every agent's device id.
const DEVICE: &str = "MOSAICAS";

fn encrypted_stack(name: &str) -> Stack {
    Stack::start_with(
        name,
        DaemonOptions {
            receive_ephemeral: true,
            extra_toml: "[e2ee]\nenabled = true\n".into(),
            env: vec![(
                "MOSAIC_E2EE_KEY".into(),
                support::unique("e2ee-key-").repeat(3),
            )],
            ..Default::default()
        },
    )
}

fn encrypted_room(human: &Human) -> String {
    human.create_room(json!({
        "preset": "private_chat",
        "initial_state": [{"type": "m.room.encryption", "state_key": "",
                           "content": {"algorithm": "m.megolm.v1.aes-sha2"}}],
    }))
}

/// The agent's device keys as another user's `/keys/query` finds them.
fn device_keys(human: &Human, user: &str) -> Option<Value> {
    let body = json!({"device_keys": {user: []}});
    let answer = human.call_ok(Method::POST, &["keys", "query"], &[], Some(&body));
    let device = answer["device_keys"][user][DEVICE].clone();
    (!device.is_null()).then_some(device)
}

#[test]
fn an_agent_in_an_encrypted_room_gets_a_device_whose_keys_survive_a_restart() {
    let mut stack = encrypted_stack("e2ee-device");
    let agent = support::unique("cipher");
    let user = stack.agent_user(&agent);
    let alice = stack.human("alice");
    let room = encrypted_room(&alice);
    alice.invite(&room, &user);
    wait_until(WAIT, "the agent joins", || {
        (alice.membership(&room, &user).as_deref() == Some("join")).then_some(())
    });

    let keys = wait_until(WAIT, "the agent's device keys are published", || {
        device_keys(&alice, &user)
    });
    assert_eq!(keys["user_id"], user.as_str(), "{keys}");
    assert_eq!(keys["device_id"], DEVICE, "{keys}");
    let algorithms = keys["algorithms"].as_array().expect("algorithms");
    assert!(
        algorithms.iter().any(|a| a == "m.megolm.v1.aes-sha2"),
        "{keys}"
    );
    let curve = keys["keys"][format!("curve25519:{DEVICE}")].clone();
    let ed = keys["keys"][format!("ed25519:{DEVICE}")].clone();
    assert!(curve.is_string() && ed.is_string(), "{keys}");
    assert!(
        keys["signatures"][&user][format!("ed25519:{DEVICE}")].is_string(),
        "the device signed its keys: {keys}"
    );

    // One-time keys were uploaded: another user can claim one to start an Olm session.
    let claim = json!({"one_time_keys": {&user: {DEVICE: "signed_curve25519"}}});
    let claimed = alice.call_ok(Method::POST, &["keys", "claim"], &[], Some(&claim));
    let otk = claimed["one_time_keys"][&user][DEVICE]
        .as_object()
        .unwrap_or_else(|| panic!("a one-time key: {claimed}"));
    assert_eq!(otk.len(), 1, "{claimed}");

    // After a restart, and joining a second encrypted room, the device and its keys are
    // the same (restored from the store, not made again).
    stack.daemon.restart();
    let second = encrypted_room(&alice);
    alice.invite(&second, &user);
    wait_until(WAIT, "the agent joins the second room", || {
        (alice.membership(&second, &user).as_deref() == Some("join")).then_some(())
    });
    let again = device_keys(&alice, &user).expect("the device is still there");
    assert_eq!(again["keys"], keys["keys"], "the same identity keys");
    let devices = alice.call_ok(
        Method::POST,
        &["keys", "query"],
        &[],
        Some(&json!({"device_keys": {&user: []}})),
    );
    assert_eq!(
        devices["device_keys"][&user].as_object().map(|d| d.len()),
        Some(1),
        "one device: {devices}"
    );
}

/// The agent's message into `room`, through the bridge; answers its event id.
fn agent_says(stack: &Stack, agent: &str, room: &str, body: &str) -> String {
    let request = json!({"room_id": room, "agent": agent, "body": body});
    let (status, answer) = stack.daemon.bridge_post("/bridge/v1/messages", &request);
    assert!(status.is_success(), "{status}: {answer}");
    answer["event_id"].as_str().expect("event_id").to_owned()
}

/// What the agent's inbox holds for `event_id`, once it is there.
fn inbox_item(stack: &Stack, agent: &str, event_id: &str) -> Value {
    let inbox = stack.wait_inbox(agent, &[event_id.to_owned()], WAIT);
    inbox
        .into_iter()
        .find(|e| e["event_id"] == event_id)
        .expect("the item")
}

/// A human with a real crypto client (matrix-nio) and an agent in an encrypted room: the
/// human's message reaches the agent's inbox decrypted, the agent's reply is encrypted and
/// the human's client decrypts it; after a daemon restart both still work; a second device
/// of the human, logged in later, reads the agent's next message.
#[test]
fn a_human_and_an_agent_talk_in_an_encrypted_room() {
    let mut stack = encrypted_stack("e2ee-talk");
    let agent = support::unique("reader");
    let user = stack.agent_user(&agent);
    let alice = stack.human("alice");
    let mut phone = NioClient::login(stack.synapse.base_url(), &alice, "ALICEPHONE");
    let room = encrypted_room(&alice);
    alice.invite(&room, &user);
    wait_until(WAIT, "the agent's device keys are published", || {
        device_keys(&alice, &user)
    });

    let said = phone.send(&room, "hello, agent: can you read this?");
    let item = inbox_item(&stack, &agent, &said);
    assert_eq!(item["type"], "m.room.message", "{item}");
    assert_eq!(item["decrypted"], true, "{item}");
    assert!(item.get("encrypted").is_none(), "{item}");
    assert_eq!(item["content"]["body"], "hello, agent: can you read this?");
    assert_eq!(item["sender"], alice.user_id.as_str());

    // The reply goes out encrypted (the homeserver holds only ciphertext) and the human's
    // client reads it.
    let reply = agent_says(&stack, &agent, &room, "loud and clear");
    let stored = alice.call_ok(
        reqwest::Method::GET,
        &["rooms", &room, "event", &reply],
        &[],
        None,
    );
    assert_eq!(stored["type"], "m.room.encrypted", "{stored}");
    let read = phone.wait_message(&room, "loud and clear", 30);
    assert_eq!(read["sender"], user.as_str());
    assert_eq!(read["event_id"], reply.as_str());

    // After a restart the agent's machine is restored: both ways still work.
    stack.daemon.restart();
    let again = phone.send(&room, "still there?");
    let item = inbox_item(&stack, &agent, &again);
    assert_eq!(item["decrypted"], true, "{item}");
    assert_eq!(item["content"]["body"], "still there?");
    agent_says(&stack, &agent, &room, "still here");
    phone.wait_message(&room, "still here", 30);

    // A second device of the human, new to the agent, reads the agent's next message.
    let mut laptop = NioClient::login(stack.synapse.base_url(), &alice, "ALICELAPTOP");
    agent_says(&stack, &agent, &room, "hello, laptop");
    laptop.wait_message(&room, "hello, laptop", 30);
}
