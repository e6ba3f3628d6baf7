//! Room provisioning and the send path against a mock homeserver: room versions 11 and
//! 12, alias, invites, agents and space links, the homeserver's refusals and failures,
//! and the invite-then-join fallback when an agent may not join a room.

pub mod support;

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::daemon_api::{bridge, provision};
use support::mock_hs::{ready_daemon, Endpoint, Fault, MockHs};
use support::{DaemonOptions, SERVER_NAME};

/// Room version 12: created as the AS sender (`?user_id=`), preset `private_chat`, alias
/// as `room_alias_name` (prefix added once), topic, invites (agents too), no power-level
/// override; the requested agents join; the space is linked both ways `via` the server.
#[test]
fn provision_v12_as_sender_with_alias_agents_and_space() {
    let (mock, d) = MockHs::with_daemon("prov-v12", DaemonOptions::default());
    let space = "!space:hs.local";
    let r = provision(
        &d,
        json!({
            "name": "Ops", "alias": "ops", "topic": "Operations",
            "invite": ["@alice:hs.local"], "space_id": space, "agents": ["p1"],
        }),
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let body = r.json();
    let room = body["room_id"].as_str().expect("room_id").to_owned();
    assert!(room.starts_with('!'));
    assert_eq!(body["space_linked"], true, "{body}");
    assert_eq!(body["alias"], "#mosaic-ops:hs.local");
    assert!(body.get("space_error").is_none(), "{body}");

    let sender = d.sender_user();
    let caps = mock.requests_to(Endpoint::Capabilities);
    assert_eq!(caps.len(), 1);
    let creates = mock.requests_to(Endpoint::CreateRoom);
    assert_eq!(creates.len(), 1);
    let create = &creates[0];
    assert_eq!(
        create.user_id(),
        Some(sender.as_str()),
        "created as the sender"
    );
    let c = &create.body;
    assert_eq!(c["preset"], "private_chat");
    assert_eq!(c["name"], "Ops");
    assert_eq!(c["topic"], "Operations");
    assert_eq!(c["room_alias_name"], "mosaic-ops");
    assert!(
        c.get("power_level_content_override").is_none(),
        "room v12: the creator must not be listed: {c}"
    );
    let invited: Vec<&str> = c["invite"]
        .as_array()
        .expect("invite list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(invited.contains(&"@alice:hs.local"), "{c}");
    assert!(invited.contains(&"@agent-p1:hs.local"), "{c}");
    assert!(mock.registered().contains("@agent-p1:hs.local"));
    let joins = mock.requests_to(Endpoint::Join);
    assert!(
        joins
            .iter()
            .any(|j| j.user_id() == Some("@agent-p1:hs.local")
                && j.room.as_deref() == Some(room.as_str())),
        "agent p1 did not join"
    );

    let states = mock.requests_to(Endpoint::State);
    let child = states
        .iter()
        .find(|s| s.event_type.as_deref() == Some("m.space.child"))
        .expect("m.space.child sent");
    assert_eq!(child.room.as_deref(), Some(space));
    assert_eq!(child.state_key.as_deref(), Some(room.as_str()));
    assert_eq!(child.user_id(), Some(sender.as_str()));
    assert_eq!(child.body["via"], json!(["hs.local"]));
    let parent = states
        .iter()
        .find(|s| s.event_type.as_deref() == Some("m.space.parent"))
        .expect("m.space.parent sent");
    assert_eq!(parent.room.as_deref(), Some(room.as_str()));
    assert_eq!(parent.state_key.as_deref(), Some(space));
    assert_eq!(parent.user_id(), Some(sender.as_str()));
    assert_eq!(parent.body["via"], json!(["hs.local"]));

    // An alias that already carries the prefix is not prefixed twice.
    let r = provision(&d, json!({ "name": "Two", "alias": "mosaic-two" }));
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["alias"], "#mosaic-two:hs.local");
    assert_eq!(r.json()["space_linked"], false);
    let last = mock.requests_to(Endpoint::CreateRoom).pop().unwrap();
    assert_eq!(last.body["room_alias_name"], "mosaic-two");
}

/// Room version 11: the sender gets power level 100 through
/// `power_level_content_override`.
#[test]
fn provision_v11_gives_the_sender_power_100() {
    let mock = MockHs::start(SERVER_NAME);
    mock.set_room_version("11");
    let d = ready_daemon(&mock, "prov-v11", DaemonOptions::default());
    let r = provision(&d, json!({ "name": "Old" }));
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let create = mock
        .requests_to(Endpoint::CreateRoom)
        .pop()
        .expect("createRoom");
    assert_eq!(create.user_id(), Some(d.sender_user().as_str()));
    assert_eq!(create.body["preset"], "private_chat");
    let users = &create.body["power_level_content_override"]["users"];
    assert_eq!(users[d.sender_user().as_str()], 100, "{}", create.body);
    assert!(create.body.get("room_alias_name").is_none());
}

/// A failure while linking the space keeps the room: 200 with the room id,
/// `space_linked: false` and a `space_error` with the homeserver's 403.
#[test]
fn provision_space_link_failure_keeps_the_room() {
    let (mock, d) = MockHs::with_daemon("prov-space-403", DaemonOptions::default());
    mock.script(Endpoint::State, [Fault::error(403, "M_FORBIDDEN")]);
    let r = provision(
        &d,
        json!({ "name": "Linked", "space_id": "!space:hs.local" }),
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let body = r.json();
    assert!(
        body["room_id"].as_str().is_some_and(|r| r.starts_with('!')),
        "{body}"
    );
    assert_eq!(body["space_linked"], false);
    let err = body["space_error"].as_str().expect("space_error");
    assert!(err.contains("403"), "{err}");
    assert_eq!(mock.count(Endpoint::CreateRoom), 1);
    assert_eq!(
        mock.requests_to(Endpoint::State)[0].event_type.as_deref(),
        Some("m.space.child")
    );
}

/// createRoom answering 400 `M_ROOM_IN_USE` → 409 `M_ROOM_IN_USE`, not retried.
#[test]
fn provision_alias_in_use_is_409() {
    let (mock, d) = MockHs::with_daemon("prov-409", DaemonOptions::default());
    mock.script(Endpoint::CreateRoom, [Fault::error(400, "M_ROOM_IN_USE")]);
    let r = provision(&d, json!({ "name": "Taken", "alias": "taken" }));
    r.expect_error(409, "M_ROOM_IN_USE", "alias in use");
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("#mosaic-taken:hs.local"));
    assert_eq!(
        mock.count(Endpoint::CreateRoom),
        1,
        "a 400 must not be retried"
    );
}

/// createRoom failing with 500 on every attempt → 502 with the homeserver's errcode and
/// `homeserver_status: 500`: retried under the deadline with a `txn_id` (its alias makes a
/// repeat safe), tried once without (a 500 may have made the room).
#[test]
fn provision_create_room_500_is_502_retried_only_with_a_key() {
    let options = DaemonOptions {
        limits_toml: "hs_attempt_timeout_ms = 500\nhs_deadline_ms = 2000".into(),
        ..Default::default()
    };
    let (mock, d) = MockHs::with_daemon("prov-500", options);
    mock.always(Endpoint::CreateRoom, Fault::error(500, "M_UNKNOWN"));
    let t = Instant::now();
    let r = provision(&d, json!({ "name": "Broken", "txn_id": "k" }));
    let took = t.elapsed();
    r.expect_error(502, "M_UNKNOWN", "createRoom 500");
    assert_eq!(r.json()["homeserver_status"], 500, "{}", r.text);
    let attempts = mock.count(Endpoint::CreateRoom);
    assert!(attempts > 1, "a keyed createRoom 500 was not retried");
    assert!(took < Duration::from_secs(6), "deadline not kept: {took:?}");
    let r = provision(&d, json!({ "name": "Broken" }));
    r.expect_error(502, "M_UNKNOWN", "createRoom 500 without a key");
    assert_eq!(
        mock.count(Endpoint::CreateRoom),
        attempts + 1,
        "retried without a key"
    );
}

/// A join refused with 403 (agent not invited) → the sender bot invites the agent, the
/// agent joins again, and the message is sent.
#[test]
fn send_falls_back_to_invite_then_join() {
    let (mock, d) = MockHs::with_daemon("send-invite-join", DaemonOptions::default());
    mock.fail_joins(1);
    let room = "!fallback:hs.local";
    let r = bridge(
        &d,
        Method::POST,
        "/bridge/v1/messages",
        Some(&json!({ "room_id": room, "agent": "fb", "body": "hello" })),
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let event_id = r.json()["event_id"].as_str().expect("event_id").to_owned();
    let agent = d.agent_user("fb");
    let seq: Vec<_> = mock
        .requests()
        .into_iter()
        .filter(|r| {
            matches!(
                r.endpoint,
                Endpoint::Join | Endpoint::Invite | Endpoint::Send
            ) && r.room.as_deref() == Some(room)
        })
        .collect();
    let summary: Vec<String> = seq
        .iter()
        .map(|r| format!("{:?} as {:?} → {:?}", r.endpoint, r.user_id(), r.outcome))
        .collect();
    assert_eq!(seq.len(), 4, "{summary:#?}");
    assert_eq!(seq[0].endpoint, Endpoint::Join);
    assert_eq!(seq[0].user_id(), Some(agent.as_str()));
    assert_eq!(seq[0].outcome, support::mock_hs::Outcome::Answered(403));
    assert_eq!(seq[1].endpoint, Endpoint::Invite, "{summary:#?}");
    assert_eq!(seq[1].user_id(), Some(d.sender_user().as_str()));
    assert_eq!(seq[1].body["user_id"], agent.as_str());
    assert_eq!(seq[2].endpoint, Endpoint::Join);
    assert_eq!(seq[2].user_id(), Some(agent.as_str()));
    assert_eq!(seq[2].outcome, support::mock_hs::Outcome::Answered(200));
    assert_eq!(seq[3].endpoint, Endpoint::Send);
    assert_eq!(seq[3].user_id(), Some(agent.as_str()));
    let messages = mock.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].event_id, event_id);
    assert_eq!(messages[0].content["body"], "hello");
    assert_eq!(messages[0].sender, agent);

    // When the bot cannot invite either, the join's 403 is passed on and nothing is sent.
    mock.fail_joins(1);
    mock.script(Endpoint::Invite, [Fault::error(403, "M_FORBIDDEN")]);
    let r = bridge(
        &d,
        Method::POST,
        "/bridge/v1/messages",
        Some(&json!({ "room_id": "!closed:hs.local", "agent": "fb", "body": "no" })),
    );
    r.expect_error(502, "M_FORBIDDEN", "join and invite refused");
    assert_eq!(r.json()["homeserver_status"], 403);
    assert_eq!(mock.messages().len(), 1);
}

/// With a `txn_id`, a createRoom whose answer is lost (the homeserver made the room, then
/// the connection hung) is repeated safely: the room claims an alias derived from the key,
/// the repeat finds it taken and adopts the room its marker names. One room, and the same
/// answer for the same key afterwards; another request under the key is 409.
#[test]
fn provisioning_with_a_key_makes_one_room_under_a_lost_answer() {
    let (mock, d) = start_short_attempts("provision-key-lost");
    mock.script(
        Endpoint::CreateRoom,
        [Fault::hang_processed(Duration::from_secs(3))],
    );
    let body = json!({ "name": "Keyed", "txn_id": "setup-1" });
    let first = provision(&d, body.clone());
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(mock.rooms_created(), 1, "a second room was made");
    assert_eq!(
        mock.count(Endpoint::CreateRoom),
        2,
        "the lost answer was not repeated"
    );
    let again = provision(&d, body);
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.json()["room_id"], first.json()["room_id"]);
    assert_eq!(
        mock.count(Endpoint::CreateRoom),
        2,
        "a recorded key asked the homeserver"
    );
    let other = provision(&d, json!({ "name": "Other", "txn_id": "setup-1" }));
    other.expect_error(
        409,
        "M_IDEMPOTENCY_CONFLICT",
        "the key with another request",
    );
    assert_eq!(mock.rooms_created(), 1);
}

/// Without a key, a createRoom whose answer is lost is not repeated (it may have made the
/// room): the client gets the error, and the homeserver saw one request.
#[test]
fn provisioning_without_a_key_never_repeats_a_lost_create_room() {
    let (mock, d) = start_short_attempts("provision-unkeyed-lost");
    mock.script(
        Endpoint::CreateRoom,
        [Fault::hang_processed(Duration::from_secs(3))],
    );
    let r = provision(&d, json!({ "name": "Unkeyed" }));
    assert!(r.status.is_server_error(), "{} {}", r.status, r.text);
    assert_eq!(
        mock.count(Endpoint::CreateRoom),
        1,
        "createRoom was repeated blindly"
    );
    assert_eq!(mock.rooms_created(), 1);
}

/// A key whose alias another room already has (a room made for another key): the key's
/// request does not adopt it.
#[test]
fn a_taken_client_alias_is_not_adopted_by_another_key() {
    let (mock, d) = start_short_attempts("provision-key-alias");
    let r = provision(&d, json!({ "name": "A", "alias": "shared", "txn_id": "a" }));
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = provision(&d, json!({ "name": "A", "alias": "shared", "txn_id": "b" }));
    r.expect_error(409, "M_ROOM_IN_USE", "another key's alias");
    assert_eq!(mock.rooms_created(), 1);
}

fn start_short_attempts(name: &str) -> (MockHs, support::Daemon) {
    let options = DaemonOptions {
        limits_toml: "hs_attempt_timeout_ms = 500\nhs_deadline_ms = 5000".into(),
        ..Default::default()
    };
    MockHs::with_daemon(name, options)
}
