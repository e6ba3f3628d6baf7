//! Inbox reading under load, against the mock homeserver with transactions pushed
//! directly: a slow SSE reader never holds up routing or other readers; a reader far behind
//! the in-memory tail reads everything, in order, from the store; cursors keep working
//! across a restart; a long-poll whose client hung up gives its stream slot back.

pub mod support;

use std::{
    io::Read,
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::daemon_api::{put_agent, put_txn};
use support::events::member_join;
use support::mock_hs::MockHs;
use support::synapse::http_client as client;
use support::{Daemon, DaemonOptions, SERVER_NAME};

const ROOM: &str = "!streams";

/// Pushes one homeserver transaction; asserts 200.
fn push(d: &Daemon, txn: &str, events: Vec<Value>) {
    let resp = put_txn(d, txn, events);
    assert_eq!(resp.status, StatusCode::OK, "transaction {txn}");
}

fn join(agent: &str) -> Value {
    let user = format!("@agent-{agent}:{SERVER_NAME}");
    member_join(&format!("$join-{agent}"), ROOM, &user)
}

fn message(i: usize, padding: &str) -> Value {
    json!({"event_id": format!("$m{i}"), "room_id": ROOM, "sender": "@human:hs.local",
        "type": "m.room.message", "origin_server_ts": 1_000 + i,
        "content": {"msgtype": "m.text", "body": format!("message {i} {padding}")}})
}

/// Every event id of an agent's inbox after `since`, following `next` to the end.
fn read_all(d: &Daemon, agent: &str, mut since: String) -> Vec<String> {
    let mut ids = Vec::new();
    loop {
        let (status, body) = d.bridge_get(&format!(
            "/bridge/v1/agents/{agent}/events?since={since}&limit=100"
        ));
        assert_eq!(status, StatusCode::OK, "{body}");
        let events = body["events"].as_array().expect("events").clone();
        if events.is_empty() {
            return ids;
        }
        ids.extend(
            events
                .iter()
                .map(|e| e["event_id"].as_str().unwrap().to_owned()),
        );
        since = body["next"].as_str().expect("next").to_owned();
    }
}

fn expected(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("$m{i}")).collect()
}

fn start(name: &str) -> (MockHs, Daemon) {
    let (mock, daemon) = MockHs::with_daemon(name, DaemonOptions::default());
    for agent in ["slow", "fast"] {
        put_agent(&daemon, agent);
    }
    push(&daemon, "joins", vec![join("slow"), join("fast")]);
    (mock, daemon)
}

#[test]
fn a_stalled_sse_reader_does_not_hold_up_routing_or_others() {
    let (_mock, d) = start("stalled-sse");
    // An SSE client that connects and then never reads.
    let mut stalled = client()
        .get(format!("{}/bridge/v1/agents/slow/events", d.base_url()))
        .bearer_auth(d.bridge_token())
        .header("Accept", "text/event-stream")
        .send()
        .expect("SSE connect");
    assert_eq!(stalled.status(), StatusCode::OK);
    let mut first = [0u8; 8];
    stalled.read_exact(&mut first).expect("SSE preamble");

    // 2,000 events of ~2 KB (about 4 MB, far beyond socket buffers) in 100 transactions.
    let padding = "x".repeat(2_000);
    let started = Instant::now();
    for t in 0..100 {
        let events = (t * 20..(t + 1) * 20)
            .map(|i| message(i, &padding))
            .collect();
        push(&d, &format!("burst-{t}"), events);
    }
    let pushed_in = started.elapsed();
    // The other agent reads all of it while the stalled stream is still open.
    assert_eq!(read_all(&d, "fast", "0".into()), expected(0..2_000));
    assert!(
        pushed_in < Duration::from_secs(20),
        "routing was held up: 100 transactions took {pushed_in:?}"
    );
    // The stalled reader resumes from its cursor with nothing lost.
    drop(stalled);
    assert_eq!(read_all(&d, "slow", "0".into()), expected(0..2_000));
    eprintln!("100 transactions of 20 events with a stalled SSE reader: {pushed_in:?}");
}

#[test]
fn readers_behind_the_tail_read_the_store_in_order_also_after_a_restart() {
    let (_mock, mut d) = start("behind-tail");
    // A cursor from before the burst.
    let (_, first) = d.bridge_get("/bridge/v1/agents/fast/events?timeout_ms=0");
    let start_cursor = first["next"].as_str().unwrap().to_owned();
    for t in 0..10 {
        let events = (t * 30..(t + 1) * 30).map(|i| message(i, "")).collect();
        push(&d, &format!("behind-{t}"), events);
    }
    // 300 entries: far more than the in-memory tail keeps, so this reads the store.
    assert_eq!(read_all(&d, "fast", start_cursor.clone()), expected(0..300));
    // A cursor in the middle, then more events: tail and store agree.
    let (_, page) = d.bridge_get(&format!(
        "/bridge/v1/agents/fast/events?since={start_cursor}&limit=100"
    ));
    let middle = page["next"].as_str().unwrap().to_owned();
    push(
        &d,
        "behind-more",
        (300..310).map(|i| message(i, "")).collect(),
    );
    assert_eq!(read_all(&d, "fast", middle.clone()), expected(100..310));

    // After a restart the same cursors read the same events, and new ones follow.
    d.restart();
    d.wait_ready(Duration::from_secs(20));
    assert_eq!(read_all(&d, "fast", middle.clone()), expected(100..310));
    let waiter = {
        let base = d.base_url().to_owned();
        let token = d.bridge_token().to_owned();
        let since = read_all_next(&d, "fast", &middle);
        std::thread::spawn(move || {
            let body: Value = client()
                .get(format!(
                    "{base}/bridge/v1/agents/fast/events?since={since}&timeout_ms=10000"
                ))
                .bearer_auth(token)
                .send()
                .and_then(|r| r.json())
                .expect("long-poll");
            body
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    push(&d, "after-restart", vec![message(310, "")]);
    let woke = waiter.join().expect("long-poll thread");
    assert_eq!(woke["events"][0]["event_id"], "$m310", "{woke}");
}

/// The `next` cursor after reading everything from `since`.
fn read_all_next(d: &Daemon, agent: &str, since: &str) -> String {
    let mut since = since.to_owned();
    loop {
        let (_, body) = d.bridge_get(&format!(
            "/bridge/v1/agents/{agent}/events?since={since}&limit=100"
        ));
        let next = body["next"].as_str().unwrap().to_owned();
        if next == since {
            return next;
        }
        since = next;
    }
}

/// The daemon's count of open event streams.
fn streams_open(d: &Daemon) -> u64 {
    let (status, text) = d.get("/metrics");
    assert_eq!(status, StatusCode::OK, "{text}");
    text.lines()
        .find_map(|l| l.strip_prefix("mosaic_as_event_streams_open "))
        .and_then(|v| v.trim().parse().ok())
        .expect("event_streams_open gauge")
}

/// Opens a connection and sends `GET path` with the bridge token and `headers` (each
/// ending in CRLF), leaving the answer unread.
fn raw_get(d: &Daemon, path: &str, headers: &str) -> std::net::TcpStream {
    use std::io::Write;
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", d.port())).expect("connect");
    write!(
        sock,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Authorization: Bearer {}\r\n\r\n",
        d.bridge_token()
    )
    .expect("request");
    sock
}

/// Waits until `n` streams are open; fails with `what` after `within`. Returns the wait.
fn await_streams(d: &Daemon, n: u64, within: Duration, what: &str) -> Duration {
    let start = Instant::now();
    while streams_open(d) != n {
        assert!(start.elapsed() < within, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

#[test]
fn a_long_poll_whose_client_hung_up_frees_its_stream_slot() {
    let (_mock, d) = start("hung-up-poll");
    let sock = raw_get(&d, "/bridge/v1/agents/slow/events?timeout_ms=30000", "");
    await_streams(&d, 1, Duration::from_secs(10), "the long-poll never opened");
    drop(sock);
    let took = await_streams(
        &d,
        0,
        Duration::from_secs(5),
        "the slot of a client that hung up is still held",
    );
    eprintln!("slot freed {took:?} after the client hung up");

    // A client that stays gets its answer at the timeout, watched or not.
    let asked = Instant::now();
    let (status, body) = d.bridge_get("/bridge/v1/agents/fast/events?since=999999&timeout_ms=2500");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["events"], json!([]));
    assert!(
        asked.elapsed() >= Duration::from_millis(2500),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(streams_open(&d), 0);
}

#[test]
fn an_event_stream_whose_client_hung_up_frees_its_stream_slot_at_once() {
    use std::io::Read;
    let (_mock, d) = start("hung-up-sse");
    let mut sock = raw_get(
        &d,
        "/bridge/v1/agents/slow/events",
        "Accept: text/event-stream\r\n",
    );
    // The stream is open once its first comment arrives.
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains(": connected") {
        let n = sock.read(&mut buf).expect("the event stream never opened");
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    assert_eq!(streams_open(&d), 1);
    drop(sock);
    // Without the watch, the slot would stay taken until the next keep-alive (15 s).
    let took = await_streams(
        &d,
        0,
        Duration::from_secs(3),
        "the slot of an event stream whose client hung up is still held",
    );
    eprintln!("event stream slot freed {took:?} after the client hung up");
}
