//! End-to-end encryption (issue 21), against a real Synapse with appservice encryption on:
//! a room key that arrives after its message, encryption turned on over agents already in
//! encrypted rooms, and the one replica that runs it on PostgreSQL.

pub mod support;

use std::sync::Arc;

use serde_json::{json, Value};
use support::{
    e2ee::{
        device_keys, e2ee_options, encrypted_room, encrypted_stack, events_total, greeted_scene,
        inbox_item, Scene, DEVICE,
    },
    inbox::inbox_until,
    nio::NioClient,
    stack_api::WAIT,
    wait_until, Daemon, DaemonOptions, PgDatabase, TestStore, SERVER_NAME,
};

/// A room key that arrives after its message (a homeserver pushes room events and
/// to-device messages apart): the message reaches the inbox as it came (`encrypted`), then,
/// once the key arrives, once more, decrypted and marked `redelivered`, under the same
/// event id and a later cursor; nothing delivers it a third time, also after a restart.
#[test]
fn a_message_whose_key_comes_later_is_delivered_again_decrypted() {
    let mut stack = encrypted_stack("e2ee-late-key");
    let Scene {
        agent,
        user,
        mut phone,
        room,
        ..
    } = greeted_scene(&stack, "patient");

    let held = phone.call(json!({"cmd": "send_key_later", "room": room,
                                 "body": "the key comes later"}));
    let late = held["event_id"].as_str().expect("event_id").to_owned();
    let device = format!("{user} {DEVICE}");
    assert!(
        held["shared_with"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d == device.as_str()),
        "the held key is for the agent's device: {held}"
    );
    let item = inbox_item(&stack, &agent, &late);
    assert_eq!(item["encrypted"], true, "no key yet: {item}");
    let redelivered = || events_total(&stack, "redelivered");
    assert_eq!(redelivered(), 0.0);

    phone.call(json!({"cmd": "release_keys"}));
    let copies = |items: &[Value]| -> Vec<Value> {
        items
            .iter()
            .filter(|i| i["event_id"] == late.as_str())
            .cloned()
            .collect()
    };
    let items = inbox_until(&stack, &agent, |items| copies(items).len() >= 2);
    let again = copies(&items)[1].clone();
    assert_eq!(again["redelivered"], true, "{again}");
    assert_eq!(again["decrypted"], true, "{again}");
    assert_eq!(again["type"], "m.room.message", "{again}");
    assert_eq!(again["content"]["body"], "the key comes later", "{again}");
    let cursor = |v: &Value| v["cursor"].as_str().unwrap().parse::<i64>().unwrap();
    assert!(cursor(&again) > cursor(&item), "{item} then {again}");
    assert_eq!(redelivered(), 1.0);

    // The conversation goes on, and after a restart the event is in the inbox twice, not
    // three times; its stored form is the clear one.
    let next = phone.send(&room, "and this one at once");
    assert_eq!(inbox_item(&stack, &agent, &next)["decrypted"], true);
    stack.daemon.restart();
    let after = phone.send(&room, "after the restart");
    let items = inbox_until(&stack, &agent, |items| {
        items.iter().any(|i| i["event_id"] == after.as_str())
    });
    let stored = copies(&items);
    assert_eq!(stored.len(), 2, "{stored:?}");
    for copy in &stored {
        assert_eq!(copy["content"]["body"], "the key comes later", "{copy}");
    }
}

/// Encryption turned on for a deployment whose agents are already in encrypted rooms: at
/// start, an agent in such a room without a device gets one, before anyone speaks, and
/// then reads what is said there.
#[test]
fn turning_encryption_on_enrols_agents_already_in_encrypted_rooms() {
    let mut stack = encrypted_stack("e2ee-turned-on");
    stack.daemon.stop();
    stack.daemon.set_extra_toml("[e2ee]\nenabled = false\n");
    stack.daemon.start();
    let agent = support::unique("early");
    let user = stack.agent_user(&agent);
    let alice = stack.human("alice");
    let room = encrypted_room(&alice);
    alice.invite(&room, &user);
    wait_until(WAIT, "the agent joins", || {
        (alice.membership(&room, &user).as_deref() == Some("join")).then_some(())
    });
    let said = alice.send_text(&room, "before encryption was on");
    stack.wait_inbox(&agent, &[said], WAIT);
    assert!(device_keys(&alice, &user).is_none(), "no device while off");

    stack.daemon.stop();
    stack.daemon.set_extra_toml("[e2ee]\nenabled = true\n");
    stack.daemon.start();
    wait_until(WAIT, "the agent's device keys are published", || {
        device_keys(&alice, &user)
    });
    let mut phone = NioClient::login(stack.synapse.base_url(), &alice, "ALICEPHONE");
    let said = phone.send(&room, "now you can read me");
    let item = inbox_item(&stack, &agent, &said);
    assert_eq!(item["decrypted"], true, "{item}");
    assert_eq!(item["content"]["body"], "now you can read me");
}

/// With PostgreSQL, encryption runs on one replica: a second daemon with it on, on the same
/// database, refuses to start and says why; once the first has stopped, it starts.
#[test]
fn a_second_replica_with_encryption_on_refuses_to_start() {
    let database = Arc::new(PgDatabase::create());
    let options = DaemonOptions {
        store: TestStore::database(database),
        ..e2ee_options("")
    };
    let nowhere = format!("http://127.0.0.1:{}", support::free_port());
    let mut first = Daemon::standalone("e2ee-one", &nowhere, SERVER_NAME, options.clone());
    first.start();
    let mut second = Daemon::standalone("e2ee-two", &nowhere, SERVER_NAME, options);
    let out = second.run(&["serve"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("another replica with [e2ee] enabled runs on this database"),
        "{stderr}"
    );
    first.stop();
    second.start();
}
