//! A room as an agent sees it, against a real Synapse: history from before the agent
//! joined where the room's history visibility allows it, paginated with the homeserver's
//! tokens; the current state and the joined members; nothing from a room the agent is not
//! in; and a room upgrade, which the agent follows into the new room.

pub mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::stack_api::{agent_state, seen, send, WAIT};
use support::Stack;

fn get(stack: &Stack, path: &str) -> (StatusCode, Value) {
    stack.daemon.bridge_get(path)
}

#[test]
fn an_agent_reads_history_state_and_members_of_its_room_and_nothing_of_others() {
    let stack = Stack::shared();
    let agent = support::unique("historian");
    let user = stack.agent_user(&agent);
    let alice = stack.human("alice");
    let room = alice.create_room(json!({"preset": "private_chat", "name": "Archive",
        "initial_state": [{"type": "m.room.history_visibility", "state_key": "",
                           "content": {"history_visibility": "shared"}}]}));
    let first = alice.send_text(&room, "said before the agent came, 1");
    let second = alice.send_text(&room, "said before the agent came, 2");
    alice.invite(&room, &user);
    support::wait_until(WAIT, "the agent joins", || {
        (alice.membership(&room, &user).as_deref() == Some("join")).then_some(())
    });

    // History, newest first, one event a page, following `next`.
    let mut seen = Vec::new();
    let mut from: Option<String> = None;
    for _ in 0..20 {
        let mut path = format!("/bridge/v1/rooms/{room}/messages?agent={agent}&limit=1");
        if let Some(from) = &from {
            path.push_str(&format!("&from={}", urlencoding(from)));
        }
        let (status, page) = get(stack, &path);
        assert_eq!(status, StatusCode::OK, "{page}");
        let events = page["events"].as_array().unwrap();
        assert!(events.len() <= 1, "{page}");
        seen.extend(
            events
                .iter()
                .map(|e| e["event_id"].as_str().unwrap().to_owned()),
        );
        match page["next"].as_str() {
            Some(next) if !events.is_empty() => from = Some(next.to_owned()),
            _ => break,
        }
    }
    let at = |id: &str| seen.iter().position(|s| s == id);
    let (first_at, second_at) = (at(&first).expect("first"), at(&second).expect("second"));
    assert!(second_at < first_at, "newest first: {seen:?}");

    let (status, state) = get(
        stack,
        &format!("/bridge/v1/rooms/{room}/state?agent={agent}"),
    );
    assert_eq!(status, StatusCode::OK, "{state}");
    let events = state["events"].as_array().unwrap();
    assert!(events
        .iter()
        .any(|e| e["type"] == "m.room.name" && e["content"]["name"] == "Archive"));

    let (status, members) = get(
        stack,
        &format!("/bridge/v1/rooms/{room}/members?agent={agent}"),
    );
    assert_eq!(status, StatusCode::OK, "{members}");
    let ids: Vec<&str> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&alice.user_id.as_str()) && ids.contains(&user.as_str()),
        "{ids:?}"
    );

    // A room the agent is not in: the homeserver's refusal, nothing of the room.
    let private = alice.create_room(json!({"preset": "private_chat"}));
    alice.send_text(&private, "not for agents");
    for read in ["messages", "state", "members"] {
        let (status, answer) = get(
            stack,
            &format!("/bridge/v1/rooms/{private}/{read}?agent={agent}"),
        );
        assert_eq!(status, StatusCode::FORBIDDEN, "{read}: {answer}");
        assert_eq!(answer["errcode"], "M_FORBIDDEN", "{read}");
        assert_eq!(answer["homeserver_status"], 403, "{read}");
        assert!(!answer.to_string().contains("not for agents"));
    }
    // An agent that does not exist is refused before the homeserver is asked.
    let (status, answer) = get(
        stack,
        &format!("/bridge/v1/rooms/{room}/state?agent=nobody-here"),
    );
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
}

/// A human upgrades a room the agent is in: the agent joins the new room by itself, its
/// new messages to the old room's id go to the new one (and the answer says where; the old
/// room's power levels would refuse them), the
/// new room's messages reach its inbox, and its state lists the new room.
#[test]
fn an_agent_follows_a_room_upgrade() {
    let stack = Stack::shared();
    let agent = support::unique("mover");
    let user = stack.agent_user(&agent);
    let alice = stack.human("alice");
    let old = alice.create_room(json!({"preset": "public_chat", "name": "Before"}));
    alice.invite(&old, &user);
    support::wait_until(WAIT, "the agent joins", || {
        (alice.membership(&old, &user).as_deref() == Some("join")).then_some(())
    });
    let body = json!({"new_version": "12"});
    let upgraded = alice.call_ok(Method::POST, &["rooms", &old, "upgrade"], &[], Some(&body));
    let new = upgraded["replacement_room"].as_str().unwrap().to_owned();
    support::wait_until(WAIT, "the agent follows into the new room", || {
        (alice.membership(&new, &user).as_deref() == Some("join")).then_some(())
    });

    let (status, answer) = stack.daemon.bridge_post(
        "/bridge/v1/messages",
        &json!({"agent": agent, "room_id": old, "body": "still here, in the new room"}),
    );
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["room_id"], new.as_str(), "{answer}");
    let event_id = answer["event_id"].as_str().unwrap();
    assert_eq!(
        seen(&alice, &new, event_id)["content"]["body"],
        "still here, in the new room"
    );

    let hello = alice.send_text(&new, "welcome to the new room");
    let inbox = stack.wait_inbox(&agent, &[hello], WAIT);
    assert!(
        inbox
            .iter()
            .any(|e| e["type"] == "m.room.tombstone" && e["room_id"] == old.as_str()),
        "the agent was told of the upgrade"
    );
    let rooms = agent_state(stack, &agent)["joined_rooms"].clone();
    assert!(
        rooms.as_array().unwrap().iter().any(|r| r == new.as_str()),
        "{rooms}"
    );
    // Sent straight to the new room: no `room_id` in the answer.
    let direct = send(stack, &new, &agent, json!({"body": "direct"}));
    seen(&alice, &new, &direct);
}

/// Percent-encodes a pagination token for a query string.
fn urlencoding(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
