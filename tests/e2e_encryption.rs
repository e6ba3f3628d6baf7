//! End-to-end encryption (issue 21) against a real Synapse with appservice encryption on
//! (`experimental_features` msc3202_transaction_extensions, msc2409_to_device_messages_enabled)
//! and a human with a real crypto client (matrix-nio): an agent's device and keys, a
//! conversation both ways across restarts and idle spells, bad input, and `/ready` when the
//! homeserver lacks the features. Late keys, turning encryption on, and replicas:
//! `e2ee_late_keys_and_start.rs`.

pub mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::{
    e2ee::{
        agent_says, device_keys, e2ee_options, encrypted_room, encrypted_stack,
        encrypted_stack_with, events_total, greeted_scene, inbox_item, scene, Scene, DEVICE,
    },
    metrics::metric,
    nio::NioClient,
    stack_api::{hs_call, WAIT},
    wait_until, Stack,
};

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

    // One-time keys were uploaded (right after the device keys, in the same enrolment):
    // another user can claim one to start an Olm session.
    let claim = json!({"one_time_keys": {&user: {DEVICE: "signed_curve25519"}}});
    let otk = wait_until(WAIT, "a one-time key can be claimed", || {
        let claimed = alice.call_ok(Method::POST, &["keys", "claim"], &[], Some(&claim));
        claimed["one_time_keys"][&user][DEVICE].as_object().cloned()
    });
    assert_eq!(otk.len(), 1, "{otk:?}");

    // Claimed until only the fallback key is left (uploaded once a transaction said the
    // device had none); the next transaction for the agent brings the count of 0, and the
    // agent uploads new one-time keys.
    let is_fallback = |otk: &serde_json::Map<String, Value>| {
        otk.values()
            .next()
            .is_some_and(|key| key["fallback"] == true)
    };
    let claim_one = || {
        let claimed = alice.call_ok(Method::POST, &["keys", "claim"], &[], Some(&claim));
        claimed["one_time_keys"][&user][DEVICE]
            .as_object()
            .cloned()
            .unwrap_or_default()
    };
    // The enrolment uploads its one-time keys in several requests, each answered with the
    // count left: draining them while those still come races with them (the device then
    // never runs out). Drained once the uploads have stopped.
    let uploads = |stack: &Stack| {
        let labels = [("endpoint", "keys_upload")];
        metric(
            &stack.metrics(),
            "mosaic_as_homeserver_request_seconds_count",
            &labels,
        )
    };
    wait_until(WAIT, "the one-time key uploads are done", || {
        let before = uploads(&stack);
        std::thread::sleep(std::time::Duration::from_secs(1));
        (before > 0.0 && uploads(&stack) == before).then_some(())
    });
    let mut claimed = 1;
    let last = loop {
        let otk = claim_one();
        if otk.is_empty() || is_fallback(&otk) || claimed > 200 {
            break otk;
        }
        claimed += 1;
    };
    assert!(is_fallback(&last), "after {claimed} claims: {last:?}");
    assert!(claimed > 1, "more than one one-time key was uploaded");
    let said = alice.send_text(&room, "a transaction for the agent");
    stack.wait_inbox(&agent, &[said], WAIT);
    wait_until(WAIT, "new one-time keys are uploaded", || {
        let otk = claim_one();
        (!otk.is_empty() && !is_fallback(&otk)).then_some(())
    });

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

/// A human with a real crypto client (matrix-nio) and an agent in an encrypted room: the
/// human's message reaches the agent's inbox decrypted, the agent's reply is encrypted and
/// the human's client decrypts it; after a daemon restart both still work, and after the
/// agent's machine was dropped for being idle; a second device of the human, logged in
/// later, reads the agent's next message.
#[test]
fn a_human_and_an_agent_talk_in_an_encrypted_room() {
    let mut stack = encrypted_stack_with("e2ee-talk", "idle_s = 1\n");
    let Scene {
        agent,
        user,
        alice,
        mut phone,
        room,
    } = scene(&stack, "reader");

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

    // Idle, the machine is dropped from memory; the next message restores it.
    let open = |stack: &Stack| metric(&stack.metrics(), "mosaic_as_e2ee_machines_open", &[]);
    wait_until(WAIT, "the idle machine is dropped", || {
        (open(&stack) == 0.0).then_some(())
    });
    let later = phone.send(&room, "after a pause");
    let item = inbox_item(&stack, &agent, &later);
    assert_eq!(item["decrypted"], true, "{item}");
    assert_eq!(item["content"]["body"], "after a pause");
    agent_says(&stack, &agent, &room, "back again");
    phone.wait_message(&room, "back again", 30);

    // A second device of the human, new to the agent, reads the agent's next message.
    let mut laptop = NioClient::login(stack.synapse.base_url(), &alice, "ALICELAPTOP");
    agent_says(&stack, &agent, &room, "hello, laptop");
    laptop.wait_message(&room, "hello, laptop", 30);

    // A member who joins after the agent last sent (the room's members the agent's
    // machine encrypts for were kept since) reads the agent's next message.
    let bob = stack.human("bob");
    let mut bobs_phone = NioClient::login(stack.synapse.base_url(), &bob, "BOBPHONE");
    alice.invite(&room, &bob.user_id);
    bob.join(&room);
    // Transactions come in order: once a later message is in, so is the join.
    let said = alice.send_text(&room, "bob is here");
    stack.wait_inbox(&agent, &[said], WAIT);
    agent_says(&stack, &agent, &room, "hello, bob");
    bobs_phone.wait_message(&room, "hello, bob", 30);
}

/// Bad input for encryption never stalls a transaction: a corrupt to-device message for
/// the agent's device and an event of a session nobody has are counted and logged; the
/// transaction is answered, its plain event delivered, the undecryptable one delivered as
/// it came; and the real conversation goes on.
#[test]
fn corrupt_to_device_messages_and_unknown_sessions_are_counted_not_fatal() {
    let stack = encrypted_stack("e2ee-bad-input");
    let Scene {
        agent,
        user,
        alice,
        mut phone,
        room,
    } = greeted_scene(&stack, "robust");

    let failures = |stage: &str| {
        metric(
            &stack.metrics(),
            "mosaic_as_e2ee_failures_total",
            &[("stage", stage)],
        )
    };
    let undecrypted = || events_total(&stack, "undecrypted");
    let (to_device_before, undecrypted_before) = (failures("to_device"), undecrypted());
    let unknown = format!("$unknown-session-{}", support::unique("e"));
    let plain = format!("$plain-{}", support::unique("e"));
    let txn = json!({
        "events": [
            {"type": "m.room.encrypted", "event_id": unknown, "room_id": room,
             "sender": alice.user_id, "origin_server_ts": 1,
             "content": {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgAEnACgAkLmt6qF84IK",
                         "device_id": "ALICEPHONE", "sender_key": "c5t2Wls4bbjVZ6ka2GYrBVGJfJiGhHsC8yLqHNqnTyw",
                         "session_id": "ePqEIH9aqqIMSxMXn2c1PTQ39TQaZ8Ay5DkWXiYQ8oY"}},
            {"type": "m.room.message", "event_id": plain, "room_id": room,
             "sender": alice.user_id, "origin_server_ts": 2,
             "content": {"msgtype": "m.text", "body": "in the clear"}},
        ],
        "de.sorunome.msc2409.to_device": [
            {"type": "m.room.encrypted", "sender": alice.user_id, "to_user_id": user,
             "to_device_id": DEVICE,
             "content": {"algorithm": "m.olm.v1.curve25519-aes-sha2", "sender_key": "not a key",
                         "ciphertext": {"nobody": {"type": 0, "body": "garbage"}}}},
            {"type": "m.room_key", "to_user_id": user, "to_device_id": DEVICE, "content": 7},
            "not even an object",
        ],
    });
    let started = std::time::Instant::now();
    let path = format!("/_matrix/app/v1/transactions/bad-{}", support::unique("t"));
    let (status, answer) = hs_call(&stack, reqwest::Method::PUT, &path, Some(&txn), false);
    assert!(status.is_success(), "{status}: {answer}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let inbox = stack.wait_inbox(&agent, &[unknown.clone(), plain.clone()], WAIT);
    let item = |id: &str| inbox.iter().find(|e| e["event_id"] == id).unwrap().clone();
    assert_eq!(item(&unknown)["encrypted"], true);
    assert_eq!(item(&plain)["content"]["body"], "in the clear");
    assert!(undecrypted() > undecrypted_before);
    assert!(failures("to_device") + failures("unreadable") > to_device_before);

    // The real conversation is unharmed.
    let next = phone.send(&room, "after the noise");
    let item = inbox_item(&stack, &agent, &next);
    assert_eq!(item["decrypted"], true, "{item}");
    agent_says(&stack, &agent, &room, "still reading you");
    phone.wait_message(&room, "still reading you", 30);
}

/// A homeserver without appservice encryption's features: `/ready` says what is missing
/// once a transaction for an agent with a device comes without one-time-key counts, or the
/// to-device probe does not come back.
#[test]
fn ready_says_when_the_homeserver_does_not_deliver_what_encryption_needs() {
    let stack = Stack::start_with_homeserver("e2ee-not-delivered", e2ee_options(""), |synapse| {
        synapse.without_appservice_encryption()
    });
    let agent = support::unique("lonely");
    let user = stack.agent_user(&agent);
    let alice = stack.human("alice");
    let room = encrypted_room(&alice);
    alice.invite(&room, &user);
    wait_until(WAIT, "the agent's device keys are published", || {
        device_keys(&alice, &user)
    });
    let said = alice.send_text(&room, "anyone?");
    stack.wait_inbox(&agent, &[said], WAIT);
    let (status, answer) = wait_until(WAIT, "/ready reports encryption", || {
        let (status, text) = stack.daemon.get("/ready");
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status == reqwest::StatusCode::SERVICE_UNAVAILABLE).then_some((status, answer))
    });
    // Either is missing here: the key counts (told by the first transaction for the agent
    // once its machine is open) or the to-device probe (after 15 s), whichever shows first.
    let problem = answer["problems"]["e2ee"].as_str().unwrap_or_default();
    assert!(
        problem.contains("msc3202_transaction_extensions")
            || problem.contains("msc2409_to_device_messages_enabled"),
        "{status}: {answer}"
    );
}
