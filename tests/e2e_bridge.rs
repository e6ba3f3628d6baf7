//! End-to-end tests of the bridge's messages and typing against a real Synapse (issue 3,
//! "How it is checked"): messages as a human sees them (sender, Markdown, the HTML subset
//! of issue 17, relations, mentions, idempotency, order), and typing indicators seen
//! through a human's `/sync` (kept alive past the homeserver timeout, cleared by a message
//! or typing off).
//! Provisioning and agents are in `e2e_bridge_rooms.rs`.

pub mod support;

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::stack_api::{agent_state, room_with_human, seen, send, set_typing, WAIT};
use support::{DaemonOptions, Stack};

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

/// A message planting a reply fallback (`mx-reply`), a script, `javascript:` links and
/// event-handler attributes, read back through Synapse by a human: none of them is in its
/// `formatted_body`, and the Markdown around them is still rendered.
#[test]
fn planted_html_never_reaches_the_formatted_body() {
    let stack = Stack::shared();
    let agent = support::unique("sanitised");
    let (alice, room) = room_with_human(stack, &[&agent]);
    let body = "<mx-reply><blockquote><a href=\"https://matrix.to/#/@admin:hs.local\">@admin</a> \
                said: give the agent your keys</blockquote></mx-reply>\n\n\
                **Report** [click](javascript:alert(1)) \
                <a href=\"JavaScript:steal()\" onclick=\"steal()\">here</a> \
                <span onmouseover=\"steal()\" data-mx-spoiler>secret</span>\n\n\
                <script>steal()</script>\n\n<img src=\"mxc://hs.local/a\" onerror=\"steal()\">";
    let sent = send(stack, &room, &agent, json!({ "body": body }));
    let c = seen(&alice, &room, &sent)["content"].clone();
    assert_eq!(c["body"], body, "the plain body is the client's text");
    assert_eq!(c["format"], "org.matrix.custom.html");
    let html = c["formatted_body"].as_str().expect("formatted_body");
    for planted in [
        "mx-reply",
        "<script",
        "steal",
        "javascript",
        "JavaScript",
        "onclick",
        "onmouseover",
        "onerror",
    ] {
        assert!(!html.contains(planted), "{planted} survived: {html}");
    }
    assert!(html.contains("<strong>Report</strong>"), "{html}");
    assert!(
        html.contains("<span data-mx-spoiler=\"\">secret</span>"),
        "{html}"
    );
    assert!(html.contains("<img src=\"mxc://hs.local/a\">"), "{html}");
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

/// A key is scoped like a Matrix transaction id, per agent and room: the same `txn_id` in
/// another room is another message, which arrives there; the same key with another body in
/// the same room is 409 `M_IDEMPOTENCY_CONFLICT` and sends nothing.
#[test]
fn txn_id_is_scoped_per_room_and_never_answers_another_request() {
    let stack = Stack::shared();
    let agent = support::unique("idem-room");
    let (alice, room_a) = room_with_human(stack, &[&agent]);
    let (bob, room_b) = room_with_human(stack, &[&agent]);
    let body = format!("keyed {}", support::unique("m"));
    let in_a = send(stack, &room_a, &agent, json!({"body": body, "txn_id": "k"}));
    let in_b = send(stack, &room_b, &agent, json!({"body": body, "txn_id": "k"}));
    assert_ne!(in_a, in_b, "room B got room A's event id");
    seen(&alice, &room_a, &in_a);
    seen(&bob, &room_b, &in_b);
    let again = send(stack, &room_b, &agent, json!({"body": body, "txn_id": "k"}));
    assert_eq!(again, in_b);

    let other = json!({"room_id": room_a, "agent": agent, "body": "something else", "txn_id": "k"});
    let (status, answer) = stack.daemon.bridge_post("/bridge/v1/messages", &other);
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["errcode"], "M_IDEMPOTENCY_CONFLICT");
    assert!(
        answer["error"].as_str().unwrap().contains("\"k\""),
        "{answer}"
    );
    let marker = send(stack, &room_a, &agent, json!({"body": "marker"}));
    seen(&alice, &room_a, &marker);
    let bodies: Vec<Value> = alice
        .messages(&room_a)
        .into_iter()
        .map(|e| e["content"]["body"].clone())
        .collect();
    assert!(!bodies.contains(&json!("something else")), "{bodies:?}");
    assert_eq!(bodies.iter().filter(|b| **b == json!(body)).count(), 1);
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
