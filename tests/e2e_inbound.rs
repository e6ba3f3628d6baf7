//! End-to-end tests of inbound events against a real Synapse (issue 5, "How it is
//! checked"): a human's invite makes an agent join, what the human writes lands in the
//! agent's durable inbox (long-poll and SSE), never the agent's own messages, mentions are
//! flagged, cursors advance without repeats, SSE resumes with `Last-Event-ID`, leaving or
//! being kicked stops delivery, and the route's error answers (404, 400, 429).

pub mod support;

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::inbox::{event, has_event, inbox_until, read_inbox, sse_request, Sse};
use support::stack_api::WAIT;
use support::{Human, Stack};

fn room_with_agents(stack: &Stack, agents: &[&str]) -> (Human, String) {
    stack.room_with_agents(agents, WAIT)
}

/// The AS acting as `user` on the homeserver (as_token + `user_id`), for what agents
/// cannot do through the bridge (leaving a room).
fn as_user(stack: &Stack, method: Method, segments: &[&str], user: &str, body: &Value) {
    let mut url = url::Url::parse(stack.synapse.base_url()).unwrap();
    url.path_segments_mut()
        .unwrap()
        .pop_if_empty()
        .extend(["_matrix", "client", "v3"])
        .extend(segments);
    url.query_pairs_mut().append_pair("user_id", user);
    let resp = support::synapse::http_client()
        .request(method, url)
        .bearer_auth(stack.daemon.as_token())
        .json(body)
        .send()
        .expect("homeserver call as the AS");
    assert!(
        resp.status().is_success(),
        "{segments:?} as {user}: {:?}",
        resp.text()
    );
}

/// A human's invite makes the agent join; the human's message reaches the agent's inbox,
/// and a long-poll waiting for it returns within 1 s of the send.
#[test]
fn invite_join_and_long_poll_delivery() {
    let stack = Stack::shared();
    let agent = support::unique("listener");
    let (alice, room) = room_with_agents(stack, &[&agent]);
    let state = stack
        .daemon
        .bridge_get(&format!("/bridge/v1/agents/{agent}"))
        .1;
    assert!(
        support::json_list_contains(&state["joined_rooms"], room.as_str()),
        "{state}"
    );
    // Drain what is there (the join itself is not an inbox event), then wait.
    let (_, since) = read_inbox(stack, &agent, None, 0);
    let (events, event_id) = std::thread::scope(|s| {
        let poll = s.spawn(|| {
            let out = read_inbox(stack, &agent, Some(&since), 10_000);
            (out, Instant::now())
        });
        std::thread::sleep(Duration::from_millis(300));
        let event_id = alice.send_text(&room, "hello agent");
        let sent_at = Instant::now();
        let ((events, next), returned_at) = poll.join().unwrap();
        assert_ne!(next, since, "next advances");
        let latency = returned_at.saturating_duration_since(sent_at);
        eprintln!("long-poll returned {latency:?} after the send");
        assert!(
            latency < Duration::from_secs(1),
            "long-poll took {latency:?}"
        );
        (events, event_id)
    });
    let e = event(&events, &event_id);
    assert_eq!(e["room_id"], room.as_str());
    assert_eq!(e["sender"], alice.user_id.as_str());
    assert_eq!(e["type"], "m.room.message");
    assert_eq!(e["content"]["body"], "hello agent");
    assert_eq!(e["mentioned"], false);
    assert!(e["origin_server_ts"].as_i64().unwrap() > 0);
    assert!(e["cursor"].as_str().is_some_and(|c| !c.is_empty()), "{e}");
}

/// The agent's own messages are not in its inbox; the human's are.
#[test]
fn own_messages_are_not_echoed() {
    let stack = Stack::shared();
    let agent = support::unique("quiet");
    let (alice, room) = room_with_agents(stack, &[&agent]);
    let (status, answer) = stack.daemon.bridge_post(
        "/bridge/v1/messages",
        &json!({"room_id": room, "agent": agent, "body": "my own words"}),
    );
    assert_eq!(status, StatusCode::OK, "{answer}");
    let own = answer["event_id"].as_str().unwrap().to_owned();
    alice.wait_message(&room, WAIT, |e| e["event_id"] == own.as_str());
    let theirs = alice.send_text(&room, "after the agent spoke");
    let events = inbox_until(stack, &agent, |ev| has_event(ev, &theirs));
    assert!(!has_event(&events, &own), "own message echoed: {events:#?}");
    assert!(events
        .iter()
        .all(|e| e["sender"] != stack.agent_user(&agent).as_str()));
}

/// Two agents both get every message; a mention through `m.mentions`, the user id in the
/// body, or the display name in the body flags exactly the mentioned agent.
#[test]
fn both_agents_get_events_and_mentions_are_flagged() {
    let stack = Stack::shared();
    let a = support::unique("ann");
    let b = support::unique("bea");
    let b_name = format!("Beatrix {}", support::unique("x"));
    let (status, answer) = stack.daemon.bridge(
        Method::PUT,
        &format!("/bridge/v1/agents/{b}"),
        Some(&json!({"display_name": b_name})),
    );
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (alice, room) = room_with_agents(stack, &[&a, &b]);
    let a_user = stack.agent_user(&a);

    let plain = alice.send_text(&room, "nobody in particular");
    let by_mentions = alice.send_event(
        &room,
        "m.room.message",
        &json!({"msgtype": "m.text", "body": "hey you", "m.mentions": {"user_ids": [a_user]}}),
    );
    let by_user_id = alice.send_text(&room, &format!("ping {a_user} please"));
    let by_name = alice.send_text(&room, &format!("what do you think, {b_name}?"));
    let ids = [&plain, &by_mentions, &by_user_id, &by_name];
    let all = |ev: &[Value]| ids.iter().all(|id| has_event(ev, id));
    let ev_a = inbox_until(stack, &a, all);
    let ev_b = inbox_until(stack, &b, all);
    let flag = |ev: &[Value], id: &str| event(ev, id)["mentioned"].as_bool().unwrap();
    assert_eq!(
        [&plain, &by_mentions, &by_user_id, &by_name].map(|id| flag(&ev_a, id)),
        [false, true, true, false],
        "agent a"
    );
    assert_eq!(
        [&plain, &by_mentions, &by_user_id, &by_name].map(|id| flag(&ev_b, id)),
        [false, false, false, true],
        "agent b"
    );
    // Room order is kept.
    let order: Vec<&str> = ev_a
        .iter()
        .filter_map(|e| e["event_id"].as_str())
        .filter(|id| ids.iter().any(|x| x.as_str() == *id))
        .collect();
    assert_eq!(order, ids.map(|s| s.as_str()));
}

/// `since` reads only what is newer; `next` advances; a read with nothing new times out
/// with `events: []` and the same cursor; nothing repeats.
#[test]
fn since_cursor_advances_without_repeats() {
    let stack = Stack::shared();
    let agent = support::unique("cursor");
    let (alice, room) = room_with_agents(stack, &[&agent]);
    let first: Vec<String> = (0..3)
        .map(|i| alice.send_text(&room, &format!("one {i}")))
        .collect();
    let events = inbox_until(stack, &agent, |ev| first.iter().all(|id| has_event(ev, id)));
    assert_eq!(events.len(), 3, "{events:#?}");
    let (again, next) = read_inbox(stack, &agent, None, 0);
    assert_eq!(again.len(), 3, "no since: from the oldest retained event");
    let last_cursor = again.last().unwrap()["cursor"].as_str().unwrap().to_owned();
    assert_eq!(next, last_cursor);

    let started = Instant::now();
    let (none, same) = read_inbox(stack, &agent, Some(&next), 500);
    assert!(none.is_empty(), "{none:#?}");
    assert_eq!(same, next);
    assert!(started.elapsed() >= Duration::from_millis(450), "waited");

    let later: Vec<String> = (0..2)
        .map(|i| alice.send_text(&room, &format!("two {i}")))
        .collect();
    let mut seen = Vec::new();
    let mut since = next.clone();
    while seen.len() < 2 {
        let (events, n) = read_inbox(stack, &agent, Some(&since), 5000);
        assert!(!events.is_empty(), "nothing new arrived");
        assert!(n.parse::<i64>().unwrap() > since.parse::<i64>().unwrap());
        since = n;
        seen.extend(events);
    }
    let ids: Vec<&str> = seen.iter().filter_map(|e| e["event_id"].as_str()).collect();
    assert_eq!(ids, later.iter().map(String::as_str).collect::<Vec<_>>());
    // `limit` bounds a page.
    let (page, page_next) = {
        let (status, answer) = stack
            .daemon
            .bridge_get(&format!("/bridge/v1/agents/{agent}/events?limit=2"));
        assert_eq!(status, StatusCode::OK);
        (
            answer["events"].as_array().unwrap().clone(),
            answer["next"].clone(),
        )
    };
    assert_eq!(page.len(), 2);
    assert_eq!(page_next, page[1]["cursor"]);
}

/// SSE delivers an event sent after connecting (`id:` = cursor); a new connection with
/// `Last-Event-ID` yields exactly the events missed in between.
#[test]
fn sse_delivers_and_resumes_with_last_event_id() {
    let stack = Stack::shared();
    let agent = support::unique("streamer");
    let (alice, room) = room_with_agents(stack, &[&agent]);
    let mut sse = Sse::open(stack, &agent, None);
    let live = alice.send_text(&room, "live");
    let (id, data) = sse.next_event();
    assert_eq!(data["event_id"], live.as_str());
    assert_eq!(data["cursor"], id.as_str());
    assert_eq!(data["content"]["body"], "live");
    drop(sse);

    let missed: Vec<String> = (0..2)
        .map(|i| alice.send_text(&room, &format!("missed {i}")))
        .collect();
    inbox_until(stack, &agent, |ev| missed.iter().all(|m| has_event(ev, m)));
    let mut sse = Sse::open(stack, &agent, Some(&id));
    let (id1, first) = sse.next_event();
    let (id2, second) = sse.next_event();
    assert_eq!(first["event_id"], missed[0].as_str());
    assert_eq!(second["event_id"], missed[1].as_str());
    assert!(id2.parse::<i64>().unwrap() > id1.parse::<i64>().unwrap());
    // Then it stays live: the next one is new, not a repeat.
    let after = alice.send_text(&room, "after resume");
    let (_, third) = sse.next_event();
    assert_eq!(third["event_id"], after.as_str());
}

/// An agent that leaves or is kicked gets nothing more from that room, while an agent
/// still in it does; the agents' state drops the room.
#[test]
fn leave_and_kick_stop_delivery() {
    let stack = Stack::shared();
    let stays = support::unique("stays");
    let leaves = support::unique("leaves");
    let kicked = support::unique("kicked");
    let (alice, room) = room_with_agents(stack, &[&stays, &leaves, &kicked]);
    let before = alice.send_text(&room, "everyone hears this");
    for agent in [&stays, &leaves, &kicked] {
        inbox_until(stack, agent, |ev| has_event(ev, &before));
    }
    as_user(
        stack,
        Method::POST,
        &["rooms", &room, "leave"],
        &stack.agent_user(&leaves),
        &json!({}),
    );
    alice.call_ok(
        Method::POST,
        &["rooms", &room, "kick"],
        &[],
        Some(&json!({"user_id": stack.agent_user(&kicked), "reason": "test"})),
    );
    for agent in [&leaves, &kicked] {
        let user = stack.agent_user(agent);
        support::wait_until(WAIT, &format!("{user} is out of the room"), || {
            (alice.membership(&room, &user).as_deref() == Some("leave")).then_some(())
        });
    }
    let after = alice.send_text(&room, "only one of you hears this");
    inbox_until(stack, &stays, |ev| has_event(ev, &after));
    // The transaction carrying `after` is fully routed once one agent has it.
    for agent in [&leaves, &kicked] {
        let (events, _) = read_inbox(stack, agent, None, 0);
        assert!(has_event(&events, &before));
        assert!(
            !has_event(&events, &after),
            "{agent} still receives: {events:#?}"
        );
        let state = stack
            .daemon
            .bridge_get(&format!("/bridge/v1/agents/{agent}"))
            .1;
        assert!(
            !state["joined_rooms"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r == room.as_str()),
            "{agent}: {state}"
        );
    }
}

/// Unknown agent → 404; bad cursor, limit or timeout → 400; more concurrent streams than
/// `limits.streams_per_agent` (default 4, long-polls and SSE together) → 429, and a
/// finished long-poll frees its slot.
#[test]
fn events_route_errors_and_stream_limit() {
    let stack = Stack::shared();
    let nobody = support::unique("nobody");
    let (status, answer) = stack
        .daemon
        .bridge_get(&format!("/bridge/v1/agents/{nobody}/events"));
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer["errcode"], "M_NOT_FOUND");

    let agent = support::unique("limited");
    let (status, answer) = stack.daemon.bridge(
        Method::PUT,
        &format!("/bridge/v1/agents/{agent}"),
        Some(&json!({})),
    );
    assert_eq!(status, StatusCode::OK, "{answer}");
    for query in [
        "since=abc",
        "since=-1",
        "limit=0",
        "limit=101",
        "timeout_ms=30001",
    ] {
        let (status, answer) = stack
            .daemon
            .bridge_get(&format!("/bridge/v1/agents/{agent}/events?{query}"));
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {answer}");
        let field = query.split('=').next().unwrap();
        assert!(
            answer["error"].as_str().unwrap_or_default().contains(field),
            "{query}: {answer}"
        );
    }
    let resp = sse_request(stack, &agent, Some("not-a-cursor"));
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    // Three streams and a waiting long-poll hold the four slots; a fifth request, SSE or
    // long-poll, is refused; the long-poll's slot is free again once it has answered.
    let open: Vec<Sse> = (0..3).map(|_| Sse::open(stack, &agent, None)).collect();
    let probe = || {
        stack
            .daemon
            .bridge_get(&format!("/bridge/v1/agents/{agent}/events?timeout_ms=0"))
            .0
    };
    std::thread::scope(|s| {
        // The long-poll retries while a probe holds the slot for an instant.
        let waiting = s.spawn(|| loop {
            let path = format!("/bridge/v1/agents/{agent}/events?timeout_ms=3000");
            let (status, answer) = stack.daemon.bridge_get(&path);
            if status != StatusCode::TOO_MANY_REQUESTS {
                assert_eq!(status, StatusCode::OK, "{answer}");
                break answer["events"].as_array().unwrap().clone();
            }
        });
        support::wait_until(WAIT, "the long-poll holds the fourth slot", || {
            (probe() == StatusCode::TOO_MANY_REQUESTS).then_some(())
        });
        let resp = sse_request(stack, &agent, None);
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(resp.headers().contains_key("retry-after"));
        let body: Value = resp.json().unwrap();
        assert_eq!(body["errcode"], "M_LIMIT_EXCEEDED", "{body}");
        assert!(waiting.join().unwrap().is_empty());
    });
    assert_eq!(probe(), StatusCode::OK, "the long-poll's slot was released");
    drop(open);
}
