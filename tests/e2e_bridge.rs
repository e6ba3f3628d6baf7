//! End-to-end tests of the bridge API against a real Synapse (issue 3, "How it is checked"):
//! provisioning (alias, invites, space links, room-version power levels, alias conflicts),
//! messages as a human sees them (sender, Markdown, relations, mentions, idempotency,
//! order), agent profiles, agent state, and typing indicators seen through a human's
//! `/sync` (kept alive past the homeserver timeout, cleared by a message or typing off).

pub mod support;

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{DaemonOptions, Human, Stack};

const WAIT: Duration = Duration::from_secs(15);

/// `POST /bridge/v1/provision/rooms`, expecting 200; answers the body.
fn provision(stack: &Stack, body: &Value) -> Value {
    let (status, answer) = stack.daemon.bridge_post("/bridge/v1/provision/rooms", body);
    assert_eq!(status, StatusCode::OK, "provision {body}: {answer}");
    answer
}

/// `POST /bridge/v1/messages` with `body` merged into `{room_id, agent}`; answers the
/// event id.
fn send(stack: &Stack, room: &str, agent: &str, extra: Value) -> String {
    let mut req = json!({"room_id": room, "agent": agent});
    req.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (status, answer) = stack.daemon.bridge_post("/bridge/v1/messages", &req);
    assert_eq!(status, StatusCode::OK, "send {req}: {answer}");
    answer["event_id"].as_str().expect("event_id").to_owned()
}

fn set_typing(stack: &Stack, room: &str, agent: &str, typing: bool) {
    let req = json!({"room_id": room, "agent": agent, "typing": typing});
    let (status, answer) = stack.daemon.bridge_post("/bridge/v1/typing", &req);
    assert_eq!(status, StatusCode::OK, "typing {req}: {answer}");
}

/// A human and a room provisioned with the human invited (and joined) and `agents`.
fn room_with_human(stack: &Stack, agents: &[&str]) -> (Human, String) {
    let alice = stack.human("alice");
    let answer = provision(
        stack,
        &json!({"name": "E2E", "invite": [alice.user_id], "agents": agents}),
    );
    assert!(answer.get("agent_errors").is_none(), "{answer}");
    let room = answer["room_id"].as_str().expect("room_id").to_owned();
    alice.join(&room);
    (alice, room)
}

/// The event `event_id` as the human reads it from `/messages`.
fn seen(human: &Human, room: &str, event_id: &str) -> Value {
    human.wait_message(room, WAIT, |e| e["event_id"] == event_id)
}

fn agent_state(stack: &Stack, agent: &str) -> Value {
    let (status, state) = stack
        .daemon
        .bridge_get(&format!("/bridge/v1/agents/{agent}"));
    assert_eq!(status, StatusCode::OK, "GET agent {agent}: {state}");
    state
}

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

/// Markdown becomes HTML, plain text stays plain, and the human sees the agent as sender;
/// `m.notice` and `format: plain` are honoured.
#[test]
fn messages_reach_the_human_with_formatting() {
    let stack = Stack::shared();
    let agent = support::unique("writer");
    let (alice, room) = room_with_human(stack, &[&agent]);
    let agent_user = stack.agent_user(&agent);

    let bold = send(stack, &room, &agent, json!({"body": "**bold**"}));
    let event = seen(&alice, &room, &bold);
    assert_eq!(event["sender"], agent_user.as_str());
    assert_eq!(event["type"], "m.room.message");
    let c = &event["content"];
    assert_eq!(c["msgtype"], "m.text");
    assert_eq!(c["body"], "**bold**");
    assert_eq!(c["format"], "org.matrix.custom.html");
    assert_eq!(c["formatted_body"], "<p><strong>bold</strong></p>");

    let plain = send(
        stack,
        &room,
        &agent,
        json!({"body": "just words, no markup"}),
    );
    let c = seen(&alice, &room, &plain)["content"].clone();
    assert_eq!(c["body"], "just words, no markup");
    assert!(c.get("formatted_body").is_none(), "{c}");
    assert!(c.get("format").is_none(), "{c}");

    let raw = send(
        stack,
        &room,
        &agent,
        json!({"body": "**not bold**", "format": "plain", "msgtype": "m.notice"}),
    );
    let c = seen(&alice, &room, &raw)["content"].clone();
    assert_eq!(c["msgtype"], "m.notice");
    assert!(c.get("formatted_body").is_none(), "{c}");
}

/// The same agent and `txn_id` twice: one event, the same event id. Two agents with the
/// same `txn_id`: two events.
#[test]
fn txn_id_makes_sends_idempotent_per_agent() {
    let stack = Stack::shared();
    let a = support::unique("idem-a");
    let b = support::unique("idem-b");
    let (alice, room) = room_with_human(stack, &[&a, &b]);
    let body = format!("once {}", support::unique("m"));
    let first = send(stack, &room, &a, json!({"body": body, "txn_id": "k-1"}));
    let second = send(stack, &room, &a, json!({"body": body, "txn_id": "k-1"}));
    assert_eq!(first, second);
    let other = send(stack, &room, &b, json!({"body": body, "txn_id": "k-1"}));
    assert_ne!(first, other, "another agent's key is another message");
    seen(&alice, &room, &other);
    seen(&alice, &room, &first);
    let copies: Vec<Value> = alice
        .messages(&room)
        .into_iter()
        .filter(|e| e["content"]["body"] == body.as_str())
        .collect();
    let senders: Vec<&str> = copies.iter().filter_map(|e| e["sender"].as_str()).collect();
    assert_eq!(copies.len(), 2, "one per agent: {senders:?}");
    assert!(senders.contains(&stack.agent_user(&a).as_str()));
    assert!(senders.contains(&stack.agent_user(&b).as_str()));
}

/// `reply_to`, `thread_root` and `mentions` as the human's client reads them.
#[test]
fn replies_threads_and_mentions() {
    let stack = Stack::shared();
    let agent = support::unique("relate");
    let (alice, room) = room_with_human(stack, &[&agent]);
    let root = alice.send_text(&room, "a question to the agent");

    let reply = send(
        stack,
        &room,
        &agent,
        json!({"body": "an answer", "reply_to": root, "mentions": [alice.user_id]}),
    );
    let c = seen(&alice, &room, &reply)["content"].clone();
    assert_eq!(
        c["m.relates_to"]["m.in_reply_to"]["event_id"],
        root.as_str()
    );
    assert!(c["m.relates_to"].get("rel_type").is_none(), "{c}");
    assert_eq!(c["m.mentions"]["user_ids"], json!([alice.user_id]));

    let in_thread = send(
        stack,
        &room,
        &agent,
        json!({"body": "in the thread", "thread_root": root}),
    );
    let c = seen(&alice, &room, &in_thread)["content"].clone();
    assert_eq!(c["m.relates_to"]["rel_type"], "m.thread", "{c}");
    assert_eq!(c["m.relates_to"]["event_id"], root.as_str(), "{c}");

    // The thread is real for the homeserver: the root's thread has the agent's message.
    let mut url = url::Url::parse(stack.synapse.base_url()).unwrap();
    url.path_segments_mut().unwrap().pop_if_empty().extend([
        "_matrix",
        "client",
        "v1",
        "rooms",
        &room,
        "relations",
        &root,
        "m.thread",
    ]);
    let threads: Value = support::synapse::http_client()
        .get(url)
        .bearer_auth(&alice.access_token)
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.json())
        .expect("GET /relations");
    let chunk = threads["chunk"].as_array().cloned().unwrap_or_default();
    assert!(
        chunk.iter().any(|e| e["event_id"] == in_thread.as_str()),
        "{threads}"
    );
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

/// Messages of one agent in one room appear in the order the daemon accepted them;
/// concurrent sends all arrive, each once.
#[test]
fn messages_keep_their_order() {
    let stack = Stack::shared();
    let agent = support::unique("order");
    let (alice, room) = room_with_human(stack, &[&agent]);
    let user = stack.agent_user(&agent);
    let sent: Vec<String> = (0..20)
        .map(|i| send(stack, &room, &agent, json!({"body": format!("seq {i}")})))
        .collect();
    seen(&alice, &room, sent.last().unwrap());
    let mut in_room: Vec<String> = alice
        .messages(&room)
        .into_iter()
        .filter(|e| e["sender"] == user.as_str() && e["type"] == "m.room.message")
        .filter_map(|e| e["event_id"].as_str().map(str::to_owned))
        .collect();
    in_room.reverse();
    assert_eq!(in_room, sent, "room order = send order");

    let bodies: Vec<String> = (0..10).map(|i| format!("burst {i}")).collect();
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = bodies
            .iter()
            .map(|b| {
                let room = &room;
                let agent = &agent;
                s.spawn(move || send(stack, room, agent, json!({"body": b})))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut unique_ids = ids.clone();
    unique_ids.sort();
    unique_ids.dedup();
    assert_eq!(unique_ids.len(), 10, "{ids:?}");
    for id in &ids {
        seen(&alice, &room, id);
    }
    for b in &bodies {
        let n = alice
            .messages(&room)
            .iter()
            .filter(|e| e["content"]["body"] == b.as_str())
            .count();
        assert_eq!(n, 1, "{b} arrived {n} times");
    }
}

/// Typing shows in the human's `/sync` and in the agent's state; a message from the agent
/// clears it (well before Synapse's own 30 s timeout would); typing off clears it; the
/// agent list names the agent.
#[test]
fn typing_is_seen_and_cleared() {
    let stack = Stack::shared();
    let agent = support::unique("typist");
    let (alice, room) = room_with_human(stack, &[&agent]);
    let user = stack.agent_user(&agent);

    set_typing(stack, &room, &agent, true);
    alice.wait_typing(&room, &user, true, WAIT);
    let state = agent_state(stack, &agent);
    assert!(
        support::json_list_contains(&state["typing_rooms"], &room),
        "{state}"
    );
    assert!(
        support::json_list_contains(&state["joined_rooms"], &room),
        "{state}"
    );
    assert_eq!(state["user_id"], user.as_str());

    let (status, list) = stack.daemon.bridge_get("/bridge/v1/agents");
    assert_eq!(status, StatusCode::OK, "{list}");
    let listed = list["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .find(|a| a["agent"] == agent.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("{agent} not listed: {list}"));
    assert_eq!(listed["user_id"], user.as_str());

    let cleared_at = Instant::now();
    send(stack, &room, &agent, json!({"body": "done thinking"}));
    alice.wait_typing(&room, &user, false, Duration::from_secs(10));
    eprintln!(
        "typing cleared {:?} after the message",
        cleared_at.elapsed()
    );
    let state = agent_state(stack, &agent);
    assert!(
        !support::json_list_contains(&state["typing_rooms"], &room),
        "{state}"
    );

    set_typing(stack, &room, &agent, true);
    alice.wait_typing(&room, &user, true, WAIT);
    set_typing(stack, &room, &agent, false);
    alice.wait_typing(&room, &user, false, Duration::from_secs(10));
    let state = agent_state(stack, &agent);
    assert!(
        state["typing_rooms"].as_array().unwrap().is_empty(),
        "{state}"
    );
}

/// With a 2 s homeserver typing timeout the daemon keeps renewing: a human's own typing
/// with the same timeout expires (proving the timeout has passed in Synapse's clock),
/// while the agent's indicator is still shown — and it never disappears in between.
#[test]
fn typing_outlives_the_homeserver_timeout() {
    let options = DaemonOptions {
        limits_toml: "typing_timeout_ms = 2000".into(),
        ..Default::default()
    };
    let stack = Stack::start_with("typing-renewal", options);
    let agent = support::unique("slow");
    let (alice, room) = room_with_human(&stack, &[&agent]);
    let bob = stack.human("bob");
    alice.invite(&room, &bob.user_id);
    bob.join(&room);
    let user = stack.agent_user(&agent);

    set_typing(&stack, &room, &agent, true);
    bob.call_ok(
        Method::PUT,
        &["rooms", &room, "typing", &bob.user_id],
        &[],
        Some(&json!({"typing": true, "timeout": 2000})),
    );
    let started = Instant::now();
    alice.wait_typing(&room, &user, true, WAIT);
    alice.wait_typing(&room, &bob.user_id, true, WAIT);
    // Until the homeserver has expired the human's typing (and at least 5 s), the agent
    // must be shown typing at every look.
    let mut looks = 0;
    loop {
        let typing = alice.typing_users(&room);
        looks += 1;
        assert!(
            typing.contains(&user),
            "agent typing vanished after {:?}: {typing:?}",
            started.elapsed()
        );
        if !typing.contains(&bob.user_id) && started.elapsed() >= Duration::from_secs(5) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the human's 2 s typing never expired"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "agent still typing after {:?} ({looks} looks)",
        started.elapsed()
    );
    send(&stack, &room, &agent, json!({"body": "there"}));
    alice.wait_typing(&room, &user, false, Duration::from_secs(10));
}
