//! End-to-end tests of the bridge's rooms and agents against a real Synapse (issue 3, "How
//! it is checked"): provisioning (alias, invites, space links, room-version power levels,
//! alias conflicts), an agent's display name as a human sees it, and an uninvited agent
//! brought into a room by the sender bot.

pub mod support;

use reqwest::{Method, StatusCode};
use serde_json::json;
use support::stack_api::{agent_state, provision, room_with_human, seen, send, WAIT};
use support::Stack;

/// Provisioning with an alias (prefix prepended when missing, kept when present), a topic
/// and an invite; the room is created by the sender bot with the power levels its room
/// version requires; a taken alias is 409 `M_ROOM_IN_USE`.
#[test]
fn provision_with_alias_invite_and_power_levels() {
    let stack = Stack::shared();
    let alice = stack.human("alice");
    let bare = support::unique("plan");
    let answer = provision(
        stack,
        &json!({"name": "Planning", "alias": bare, "topic": "what we do", "invite": [alice.user_id]}),
    );
    let room = answer["room_id"].as_str().expect("room_id").to_owned();
    let full_alias = format!("#mosaic-{bare}:hs.local");
    assert_eq!(answer["alias"], full_alias.as_str(), "{answer}");
    assert_eq!(answer["space_linked"], false, "{answer}");
    assert!(answer.get("space_error").is_none(), "{answer}");

    // The human is invited, the alias resolves to the room, and she can join through it.
    let sync = alice.sync(None, 0, None);
    assert!(
        sync["rooms"]["invite"].get(&room).is_some(),
        "the human is invited: {}",
        sync["rooms"]
    );
    let resolved = alice.call_ok(Method::GET, &["directory", "room", &full_alias], &[], None);
    assert_eq!(resolved["room_id"], room.as_str());
    assert_eq!(alice.join(&full_alias), room);

    let sender = stack.daemon.sender_user();
    let create = alice
        .state_event(&room, "m.room.create", "")
        .expect("m.room.create");
    let version = create["room_version"].as_str().unwrap_or("1").to_owned();
    let name = alice.state_event(&room, "m.room.name", "").expect("name");
    assert_eq!(name["name"], "Planning");
    let topic = alice.state_event(&room, "m.room.topic", "").expect("topic");
    assert_eq!(topic["topic"], "what we do");
    let create_event = alice
        .state(&room)
        .into_iter()
        .find(|e| e["type"] == "m.room.create")
        .expect("create event");
    assert_eq!(
        create_event["sender"],
        sender.as_str(),
        "created as the AS sender"
    );
    assert_eq!(
        alice.state_event(&room, "m.room.join_rules", "").unwrap()["join_rule"],
        "invite",
        "preset private_chat"
    );
    let pl = alice
        .state_event(&room, "m.room.power_levels", "")
        .expect("power levels");
    let unlimited = version.parse::<u32>().is_ok_and(|v| v >= 12);
    if unlimited {
        // Room version 12: the creator has unlimited power and is not listed.
        assert!(pl["users"].get(&sender).is_none(), "v{version}: {pl}");
    } else {
        assert_eq!(pl["users"][&sender], 100, "v{version}: {pl}");
    }
    eprintln!("provisioned room version {version}");

    // An alias that already carries the prefix is not prefixed twice.
    let prefixed = format!("mosaic-{}", support::unique("own"));
    let answer = provision(stack, &json!({"name": "Prefixed", "alias": prefixed}));
    assert_eq!(answer["alias"], format!("#{prefixed}:hs.local"), "{answer}");

    // The same alias again: 409 M_ROOM_IN_USE.
    let (status, answer) = stack.daemon.bridge_post(
        "/bridge/v1/provision/rooms",
        &json!({"name": "Again", "alias": bare}),
    );
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["errcode"], "M_ROOM_IN_USE", "{answer}");
}

/// A human makes a space, invites the sender bot (which accepts) and gives it power; a
/// room provisioned with `space_id` is linked both ways, as the human reads the state.
#[test]
fn provision_links_the_room_into_a_space() {
    let stack = Stack::shared();
    let alice = stack.human("alice");
    let bot = stack.daemon.sender_user();
    let space = alice.create_space("Team space");
    alice.invite(&space, &bot);
    support::wait_until(WAIT, "the sender bot joins the space", || {
        (alice.membership(&space, &bot).as_deref() == Some("join")).then_some(())
    });
    let mut pl = alice
        .state_event(&space, "m.room.power_levels", "")
        .expect("space power levels");
    pl["users"][&bot] = json!(100);
    alice.set_state(&space, "m.room.power_levels", "", &pl);

    let answer = provision(
        stack,
        &json!({"name": "In the space", "space_id": space, "invite": [alice.user_id]}),
    );
    assert_eq!(answer["space_linked"], true, "{answer}");
    assert!(answer.get("space_error").is_none(), "{answer}");
    let room = answer["room_id"].as_str().unwrap().to_owned();

    let child = alice
        .state_event(&space, "m.space.child", &room)
        .expect("m.space.child in the space");
    assert_eq!(child["via"], json!(["hs.local"]), "{child}");
    alice.join(&room);
    let parent = alice
        .state_event(&room, "m.space.parent", &space)
        .expect("m.space.parent in the room");
    assert_eq!(parent["via"], json!(["hs.local"]), "{parent}");
}

/// A space the sender bot is not in: the room is still created and answered (200) with
/// `space_linked: false` and a `space_error` carrying the homeserver's 403.
#[test]
fn space_link_failure_keeps_the_room() {
    let stack = Stack::shared();
    let alice = stack.human("alice");
    let space = alice.create_space("Closed space");
    let answer = provision(
        stack,
        &json!({"name": "Orphan?", "space_id": space, "invite": [alice.user_id]}),
    );
    assert_eq!(answer["space_linked"], false, "{answer}");
    let error = answer["space_error"].as_str().expect("space_error");
    assert!(error.contains("403"), "{error}");
    let room = answer["room_id"].as_str().expect("room_id").to_owned();
    // The room is real: the invited human can join it, and no child was added.
    assert_eq!(alice.join(&room), room);
    assert!(alice.state_event(&space, "m.space.child", &room).is_none());
}

/// A display name set through the bridge shows in the agent's member event and profile.
#[test]
fn display_name_is_visible_to_the_human() {
    let stack = Stack::shared();
    let agent = support::unique("named");
    let (alice, room) = room_with_human(stack, &[&agent]);
    let user = stack.agent_user(&agent);
    let name = format!("Agent {}", support::unique("Smith"));
    let (status, answer) = stack.daemon.bridge(
        Method::PUT,
        &format!("/bridge/v1/agents/{agent}"),
        Some(&json!({"display_name": name})),
    );
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["user_id"], user.as_str());
    assert_eq!(answer["display_name"], name.as_str());

    support::wait_until(WAIT, "the member event carries the display name", || {
        let member = alice.state_event(&room, "m.room.member", &user)?;
        (member["displayname"] == name.as_str()).then_some(())
    });
    let (status, profile) = alice.profile(&user);
    assert_eq!(status, StatusCode::OK, "{profile}");
    assert_eq!(profile["displayname"], name.as_str());
    assert_eq!(agent_state(stack, &agent)["display_name"], name.as_str());
}

/// An agent that nobody invited sends into a room made by the sender bot: the daemon
/// invites it through the bot, joins it and sends; the agent's state lists the room.
#[test]
fn uninvited_agent_is_invited_by_the_sender_bot() {
    let stack = Stack::shared();
    let (alice, room) = room_with_human(stack, &[]);
    let agent = support::unique("late");
    let user = stack.agent_user(&agent);
    assert!(alice.membership(&room, &user).is_none());
    let event_id = send(stack, &room, &agent, json!({"body": "I found my way in"}));
    assert_eq!(seen(&alice, &room, &event_id)["sender"], user.as_str());
    assert_eq!(alice.membership(&room, &user).as_deref(), Some("join"));
    let invite = alice
        .messages(&room)
        .into_iter()
        .find(|e| {
            e["type"] == "m.room.member"
                && e["state_key"] == user.as_str()
                && e["content"]["membership"] == "invite"
        })
        .expect("the invite of the agent");
    assert_eq!(invite["sender"], stack.daemon.sender_user().as_str());
    let state = agent_state(stack, &agent);
    assert!(
        support::json_list_contains(&state["joined_rooms"], &room),
        "{state}"
    );
    assert_eq!(state["registered"], true, "{state}");
}

/// Provisioning with a `txn_id` against Synapse: the same key answers the same room (one
/// room, with the key's marker in its create event); the key with another request is 409
/// `M_IDEMPOTENCY_CONFLICT`.
#[test]
fn a_provisioning_key_makes_one_room() {
    let stack = Stack::shared();
    let alice = stack.human("alice");
    let key = support::unique("setup");
    let body = json!({ "name": "Keyed", "txn_id": key, "invite": [alice.user_id] });
    let first = provision(stack, &body);
    let second = provision(stack, &body);
    assert_eq!(first["room_id"], second["room_id"]);
    let (status, answer) = stack.daemon.bridge_post(
        "/bridge/v1/provision/rooms",
        &json!({ "name": "Other", "txn_id": key }),
    );
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["errcode"], "M_IDEMPOTENCY_CONFLICT");
    let room = first["room_id"].as_str().unwrap();
    alice.join(room);
    let create = alice
        .state_event(room, "m.room.create", "")
        .expect("the create event");
    let marker = &create["org.mosaic_as.provision"];
    assert!(
        marker["key"].is_string() && marker["request"].is_string(),
        "{create}"
    );
}
