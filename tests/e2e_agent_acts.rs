//! What an agent does to events in a room, against a real Synapse and checked by what a
//! human sees (issue 18): an edit replaces the text, a reaction is aggregated on the event,
//! a redaction empties it, a receipt (also in a thread) moves; each write retried with its
//! `txn_id` happens once, and the same key for another request is refused.

pub mod support;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::stack_api::{room_with_human, seen, send, WAIT};
use support::{wait_until, Stack};

/// `POST /bridge/v1/{route}` with `body`, expecting 200; answers the body.
fn post(stack: &Stack, route: &str, body: Value) -> Value {
    let (status, answer) = stack
        .daemon
        .bridge_post(&format!("/bridge/v1/{route}"), &body);
    assert_eq!(status, StatusCode::OK, "{route} {body}: {answer}");
    answer
}

#[test]
fn an_edit_replaces_the_text_the_human_sees() {
    let stack = Stack::shared();
    let agent = support::unique("editor");
    let (alice, room) = room_with_human(stack, &[&agent]);
    let original = send(stack, &room, &agent, json!({"body": "teh answer"}));
    let edit = send(
        stack,
        &room,
        &agent,
        json!({"body": "the **answer**", "edit_of": original, "txn_id": "fix-1"}),
    );
    let c = seen(&alice, &room, &edit)["content"].clone();
    assert_eq!(
        c["m.relates_to"],
        json!({"rel_type": "m.replace", "event_id": original})
    );
    assert_eq!(c["m.new_content"]["body"], "the **answer**");
    assert_eq!(
        c["m.new_content"]["formatted_body"],
        "<p>the <strong>answer</strong></p>"
    );
    assert_eq!(
        c["body"], "* the **answer**",
        "the fallback for clients without edits"
    );
    // Synapse itself takes it as the original's replacement.
    let replacements = alice.relations(&room, &original, "m.replace");
    assert_eq!(replacements.len(), 1, "{replacements:?}");
    assert_eq!(replacements[0]["event_id"], edit.as_str());
    // An edit with a reply relation is refused before anything is sent.
    let (status, answer) = stack.daemon.bridge_post(
        "/bridge/v1/messages",
        &json!({"room_id": room, "agent": agent, "body": "x", "edit_of": original,
                "reply_to": original}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().starts_with("edit_of"),
        "{answer}"
    );
}

#[test]
fn a_reaction_is_aggregated_on_the_event_once() {
    let stack = Stack::shared();
    let agent = support::unique("reactor");
    let (alice, room) = room_with_human(stack, &[&agent]);
    let question = alice.send_text(&room, "ship it?");
    let body = json!({"agent": agent, "room_id": room, "event_id": question, "key": "👍",
                      "txn_id": "ack-1"});
    let first = post(stack, "reactions", body.clone());
    let again = post(stack, "reactions", body.clone());
    assert_eq!(first["event_id"], again["event_id"], "a retry reacts once");
    assert_eq!(first["txn_id"], "ack-1");
    let annotations = wait_until(WAIT, "the reaction is aggregated", || {
        let found = alice.relations(&room, &question, "m.annotation");
        (!found.is_empty()).then_some(found)
    });
    assert_eq!(annotations.len(), 1, "{annotations:?}");
    let reaction = &annotations[0];
    assert_eq!(reaction["sender"], stack.agent_user(&agent).as_str());
    assert_eq!(reaction["content"]["m.relates_to"]["key"], "👍");
    // The same key for another request is a conflict, and nothing more is sent.
    let mut other = body;
    other["key"] = json!("👎");
    let (status, answer) = stack.daemon.bridge_post("/bridge/v1/reactions", &other);
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["errcode"], "M_IDEMPOTENCY_CONFLICT");
    assert_eq!(alice.relations(&room, &question, "m.annotation").len(), 1);
}

#[test]
fn a_redaction_empties_the_event() {
    let stack = Stack::shared();
    let agent = support::unique("redactor");
    let (alice, room) = room_with_human(stack, &[&agent]);
    let secret = send(
        stack,
        &room,
        &agent,
        json!({"body": "the password is hunter2"}),
    );
    seen(&alice, &room, &secret);
    let body = json!({"agent": agent, "room_id": room, "event_id": secret,
                      "reason": "posted by mistake", "txn_id": "oops-1"});
    let first = post(stack, "redactions", body.clone());
    let again = post(stack, "redactions", body);
    assert_eq!(first["event_id"], again["event_id"], "a retry redacts once");
    let redacted = alice.wait_message(&room, WAIT, |e| {
        e["event_id"] == secret.as_str() && e["unsigned"]["redacted_because"].is_object()
    });
    assert_eq!(redacted["content"], json!({}), "{redacted}");
    let because = &redacted["unsigned"]["redacted_because"];
    assert_eq!(because["content"]["reason"], "posted by mistake");
    assert_eq!(because["event_id"], first["event_id"]);
}

/// The agent's read receipt as the human's `/sync` shows it: the event it is at, and the
/// thread of a threaded receipt.
fn receipt_of(alice: &support::Human, room: &str, user: &str, event: &str) -> Option<Value> {
    alice.ephemeral(room, "m.receipt").iter().find_map(|e| {
        e["content"][event]["m.read"][user]
            .is_object()
            .then(|| e["content"][event]["m.read"][user].clone())
    })
}

#[test]
fn receipts_move_where_the_human_sees_them_also_in_a_thread() {
    let stack = Stack::shared();
    let agent = support::unique("reader");
    let user = stack.agent_user(&agent);
    let (alice, room) = room_with_human(stack, &[&agent]);
    let first = alice.send_text(&room, "one");
    let second = alice.send_text(&room, "two");
    for event in [&first, &second] {
        let answer = post(
            stack,
            "receipts",
            json!({"agent": agent, "room_id": room, "event_id": event}),
        );
        assert_eq!(answer, json!({}));
        wait_until(WAIT, "the receipt moves", || {
            receipt_of(&alice, &room, &user, event)
        });
    }
    // In a thread: the receipt carries the thread's root.
    let root = alice.send_text(&room, "thread root");
    let reply = alice.send_event(
        &room,
        "m.room.message",
        &json!({"msgtype": "m.text", "body": "in thread",
                "m.relates_to": {"rel_type": "m.thread", "event_id": root}}),
    );
    post(
        stack,
        "receipts",
        json!({"agent": agent, "room_id": room, "event_id": reply, "thread_id": root}),
    );
    let threaded = wait_until(WAIT, "the threaded receipt", || {
        receipt_of(&alice, &room, &user, &reply)
    });
    assert_eq!(threaded["thread_id"], root.as_str(), "{threaded}");
    // An unknown event: the homeserver refuses, and the answer says so.
    let (status, answer) = stack.daemon.bridge_post(
        "/bridge/v1/receipts",
        &json!({"agent": agent, "room_id": room, "event_id": "$nope"}),
    );
    assert!(
        status.is_client_error() || status == StatusCode::BAD_GATEWAY,
        "{status} {answer}"
    );
}

#[test]
fn an_agent_leaves_and_the_human_sees_it_go() {
    let stack = Stack::shared();
    let agent = support::unique("leaver");
    let user = stack.agent_user(&agent);
    let (alice, room) = room_with_human(stack, &[&agent]);
    let goodbye = send(
        stack,
        &room,
        &agent,
        json!({"body": "my work here is done"}),
    );
    let answer = post(
        stack,
        &format!("rooms/{room}/leave"),
        json!({"agent": agent, "reason": "task finished"}),
    );
    assert_eq!(answer, json!({}));
    let left = alice.wait_message(&room, WAIT, |e| {
        e["type"] == "m.room.member"
            && e["state_key"] == user.as_str()
            && e["content"]["membership"] == "leave"
    });
    assert_eq!(left["content"]["reason"], "task finished");
    // Its last message went out before it left (one queue per room).
    let messages = alice.messages(&room);
    let at = |id: &str| messages.iter().position(|e| e["event_id"] == id).unwrap();
    assert!(
        at(&goodbye) > at(left["event_id"].as_str().unwrap()),
        "newest first"
    );
    let state = support::stack_api::agent_state(stack, &agent);
    assert!(
        !state["joined_rooms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == room.as_str()),
        "{state}"
    );
}

#[test]
fn custom_events_go_where_the_agents_power_allows() {
    let stack = Stack::shared();
    let agent = support::unique("custom");
    let user = stack.agent_user(&agent);
    let (alice, room) = stack.room_with_agents(&[&agent], WAIT);
    let task = post(
        stack,
        "events",
        json!({"agent": agent, "room_id": room, "type": "org.example.task",
               "content": {"title": "ship it", "done": false}}),
    );
    let seen_task = seen(&alice, &room, task["event_id"].as_str().unwrap());
    assert_eq!(seen_task["type"], "org.example.task");
    assert_eq!(
        seen_task["content"],
        json!({"title": "ship it", "done": false})
    );

    // A state event needs power the agent does not have in the human's room: the
    // homeserver's refusal comes back, and the state is unchanged.
    let status = json!({"agent": agent, "room_id": room, "type": "org.example.status",
                        "state_key": "", "content": {"phase": "review"}});
    let (code, answer) = stack.daemon.bridge_post("/bridge/v1/events", &status);
    assert_eq!(code, StatusCode::BAD_GATEWAY, "{answer}");
    assert_eq!(answer["errcode"], "M_FORBIDDEN");
    assert_eq!(answer["homeserver_status"], 403);
    assert!(alice.state_event(&room, "org.example.status", "").is_none());

    // Given the power, it may.
    let mut levels = alice.state_event(&room, "m.room.power_levels", "").unwrap();
    levels["users"][&user] = json!(50);
    alice.set_state(&room, "m.room.power_levels", "", &levels);
    post(stack, "events", status);
    assert_eq!(
        alice.state_event(&room, "org.example.status", ""),
        Some(json!({"phase": "review"}))
    );
}

#[test]
fn an_uploaded_file_downloads_byte_identical_from_the_message() {
    let stack = Stack::shared();
    let agent = support::unique("sharer");
    let (alice, room) = room_with_human(stack, &[&agent]);
    // Bytes no text encoding would keep as they are.
    let file: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let url = format!(
        "{}/bridge/v1/media?agent={agent}&filename=report.bin",
        stack.daemon.base_url()
    );
    let resp = support::synapse::http_client()
        .post(&url)
        .bearer_auth(stack.daemon.bridge_token())
        .header("Content-Type", "application/octet-stream")
        .body(file.clone())
        .send()
        .expect("upload");
    assert_eq!(resp.status(), StatusCode::OK);
    let uploaded: Value = resp.json().unwrap();
    let mxc = uploaded["content_uri"]
        .as_str()
        .expect("content_uri")
        .to_owned();
    assert!(mxc.starts_with("mxc://"), "{mxc}");

    let sent = send(
        stack,
        &room,
        &agent,
        json!({"msgtype": "m.file", "body": "report.bin", "url": mxc,
               "info": {"mimetype": "application/octet-stream", "size": file.len()}}),
    );
    let c = seen(&alice, &room, &sent)["content"].clone();
    assert_eq!(c["msgtype"], "m.file");
    assert_eq!(c["url"], mxc.as_str());
    assert_eq!(c["info"]["size"], file.len());

    // The human downloads it through the homeserver's (authenticated) media API.
    let (server, id) = mxc.trim_start_matches("mxc://").split_once('/').unwrap();
    let mut download = alice.url(&["media", "download", server, id]);
    download.set_path(&download.path().replacen("/client/v3/", "/client/v1/", 1));
    let got = support::synapse::http_client()
        .get(download)
        .bearer_auth(&alice.access_token)
        .send()
        .expect("download");
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(
        got.bytes().unwrap().as_ref(),
        file.as_slice(),
        "byte-identical"
    );

    // A file message without a file, or with a malformed info, is refused.
    let (status, answer) = stack.daemon.bridge_post(
        "/bridge/v1/messages",
        &json!({"room_id": room, "agent": agent, "msgtype": "m.image", "body": "x"}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (status, answer) = stack.daemon.bridge_post(
        "/bridge/v1/messages",
        &json!({"room_id": room, "agent": agent, "msgtype": "m.image", "body": "x",
                "url": mxc, "info": {"size": "big"}}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().starts_with("info"),
        "{answer}"
    );
}

#[test]
fn a_deleted_agent_leaves_every_room_the_human_sees_it_go() {
    let stack = Stack::shared();
    let agent = support::unique("retiree");
    let user = stack.agent_user(&agent);
    let (alice, room) = room_with_human(stack, &[&agent]);
    send(stack, &room, &agent, json!({"body": "signing off"}));
    let (status, answer) = stack.daemon.bridge(
        reqwest::Method::DELETE,
        &format!("/bridge/v1/agents/{agent}"),
        None,
    );
    assert_eq!(status, StatusCode::OK, "{answer}");
    let left = alice.wait_message(&room, WAIT, |e| {
        e["type"] == "m.room.member"
            && e["state_key"] == user.as_str()
            && e["content"]["membership"] == "leave"
    });
    assert_eq!(left["content"]["reason"], "agent deleted");
    let (status, _) = stack
        .daemon
        .bridge_get(&format!("/bridge/v1/agents/{agent}"));
    assert_eq!(status, StatusCode::NOT_FOUND);
}
