//! Encrypted rooms are never silent (issue 18, item 9), against a real Synapse: an agent
//! invited into a room a human created encrypted receives the human's encrypted messages
//! as `encrypted` items, lists the room in its state, and a plain send there is refused
//! with 409 `M_ENCRYPTED_ROOM` unless the request allows it; a room encrypted after the
//! agent joined is known from the transaction that says so.

pub mod support;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::stack_api::{agent_state, seen, WAIT};
use support::{wait_until, Stack};

/// An `m.room.encrypted` content as a client would send it (the ciphertext is opaque to
/// Synapse and to the daemon).
fn ciphertext() -> Value {
    json!({"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgAEnACgAkLmt6qF84IK",
           "device_id": "ALICEDEV", "sender_key": "c5t2Wls4bbjV", "session_id": "ePqEIH9a"})
}

fn encrypted_rooms(stack: &Stack, agent: &str) -> Vec<Value> {
    agent_state(stack, agent)["encrypted_rooms"]
        .as_array()
        .expect("encrypted_rooms")
        .clone()
}

#[test]
fn an_agent_in_an_encrypted_room_is_told_and_does_not_send_in_the_clear_unasked() {
    let stack = Stack::shared();
    let agent = support::unique("secretive");
    let alice = stack.human("alice");
    let room = alice.create_room(json!({
        "preset": "private_chat",
        "initial_state": [{"type": "m.room.encryption", "state_key": "",
                           "content": {"algorithm": "m.megolm.v1.aes-sha2"}}],
    }));
    let user = stack.agent_user(&agent);
    alice.invite(&room, &user);
    wait_until(WAIT, "the agent joins", || {
        (alice.membership(&room, &user).as_deref() == Some("join")).then_some(())
    });

    // Its state says so, learnt when it joined.
    wait_until(WAIT, "the room is listed as encrypted", || {
        encrypted_rooms(stack, &agent)
            .iter()
            .any(|r| r == room.as_str())
            .then_some(())
    });

    // What the human says arrives, marked encrypted.
    let secret = alice.send_event(&room, "m.room.encrypted", &ciphertext());
    let inbox = stack.wait_inbox(&agent, std::slice::from_ref(&secret), WAIT);
    let item = inbox
        .iter()
        .find(|e| e["event_id"] == secret.as_str())
        .unwrap();
    assert_eq!(item["type"], "m.room.encrypted");
    assert_eq!(item["encrypted"], true, "{item}");
    assert_eq!(item["content"]["algorithm"], "m.megolm.v1.aes-sha2");

    // A plain send is refused, naming what to do; with allow_unencrypted it goes out.
    let body = json!({"room_id": room, "agent": agent, "body": "in the clear?"});
    let (status, answer) = stack.daemon.bridge_post("/bridge/v1/messages", &body);
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["errcode"], "M_ENCRYPTED_ROOM");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("allow_unencrypted"),
        "{answer}"
    );
    let reaction = json!({"room_id": room, "agent": agent, "event_id": secret, "key": "👀"});
    let (status, answer) = stack.daemon.bridge_post("/bridge/v1/reactions", &reaction);
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    let mut allowed = body;
    allowed["allow_unencrypted"] = json!(true);
    let (status, answer) = stack.daemon.bridge_post("/bridge/v1/messages", &allowed);
    assert_eq!(status, StatusCode::OK, "{answer}");
    let sent = seen(&alice, &room, answer["event_id"].as_str().unwrap());
    assert_eq!(sent["content"]["body"], "in the clear?");
    // Nothing was sent by the refused requests.
    let plain: Vec<_> = alice
        .messages(&room)
        .into_iter()
        .filter(|e| e["sender"] == user.as_str() && e["type"] != "m.room.member")
        .collect();
    assert_eq!(plain.len(), 1, "{plain:?}");
}

#[test]
fn a_room_encrypted_after_the_agent_joined_is_known_from_the_transaction() {
    let stack = Stack::shared();
    let agent = support::unique("latecomer");
    let (alice, room) = stack.room_with_agents(&[&agent], WAIT);
    assert!(encrypted_rooms(stack, &agent).is_empty());
    alice.set_state(
        &room,
        "m.room.encryption",
        "",
        &json!({"algorithm": "m.megolm.v1.aes-sha2"}),
    );
    wait_until(WAIT, "the room is listed as encrypted", || {
        encrypted_rooms(stack, &agent)
            .iter()
            .any(|r| r == room.as_str())
            .then_some(())
    });
    let (status, answer) = stack.daemon.bridge_post(
        "/bridge/v1/messages",
        &json!({"room_id": room, "agent": agent, "body": "hello?"}),
    );
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
}
