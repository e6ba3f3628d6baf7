//! Outbound reliability against a scripted mock homeserver (issue 6): retries on 429 and
//! 5xx, hangs and dropped connections, a homeserver outage during a burst, idempotency of
//! client retries (also across a daemon restart), per-room ordering under retries,
//! backpressure of a full agent queue, and the answers when the homeserver refuses or
//! stays unreachable. Each test prints the figures it measured (`--nocapture`).

pub mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::mock_hs::{Endpoint, Fault, MockHs, Outcome};
use support::{Daemon, DaemonOptions, SERVER_NAME};

/// Short homeserver limits so that retries and deadlines play out in seconds.
const FAST_LIMITS: &str = "hs_attempt_timeout_ms = 500\nhs_deadline_ms = 8000";

fn client() -> Client {
    support::http_client(Duration::from_secs(60))
}

fn start(name: &str, limits: &str) -> (MockHs, Daemon) {
    let options = DaemonOptions {
        limits_toml: limits.to_owned(),
        ..Default::default()
    };
    MockHs::with_daemon(name, options)
}

/// Answer of `POST /bridge/v1/messages`.
struct Answer {
    status: StatusCode,
    retry_after: Option<u64>,
    body: Value,
}

impl Answer {
    fn event_id(&self) -> String {
        assert_eq!(self.status, StatusCode::OK, "send failed: {}", self.body);
        self.body["event_id"].as_str().expect("event_id").to_owned()
    }
}

fn send_with(http: &Client, d: &Daemon, agent: &str, room: &str, body: &str, txn: &str) -> Answer {
    let resp = http
        .post(format!("{}/bridge/v1/messages", d.base_url()))
        .bearer_auth(d.bridge_token())
        .json(&json!({ "room_id": room, "agent": agent, "body": body, "txn_id": txn }))
        .send()
        .unwrap_or_else(|e| panic!("POST /bridge/v1/messages ({agent}, {txn}): {e}"));
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body = resp.json().unwrap_or(Value::Null);
    Answer {
        status,
        retry_after,
        body,
    }
}

fn send(d: &Daemon, agent: &str, room: &str, body: &str, txn: &str) -> Answer {
    send_with(&client(), d, agent, room, body, txn)
}

/// Send attempts at the mock for one message body.
fn attempts_for(mock: &MockHs, body: &str) -> Vec<support::mock_hs::Request> {
    mock.requests_to(Endpoint::Send)
        .into_iter()
        .filter(|r| r.body["body"] == body)
        .collect()
}

/// Message events at the mock with this body.
fn events_with(mock: &MockHs, body: &str) -> Vec<support::mock_hs::Event> {
    mock.messages()
        .into_iter()
        .filter(|e| e.content["body"] == body)
        .collect()
}

fn gaps(reqs: &[support::mock_hs::Request]) -> Vec<Duration> {
    reqs.windows(2).map(|w| w[1].at - w[0].at).collect()
}

/// Messages waiting or in flight in an agent's actor.
fn queued(d: &Daemon, agent: &str) -> u64 {
    let (status, state) = d.bridge_get(&format!("/bridge/v1/agents/{agent}"));
    if status != StatusCode::OK {
        return 0;
    }
    state["queued_messages"].as_u64().unwrap_or(0)
}

/// 429 `M_LIMIT_EXCEEDED` with `retry_after_ms: 500`, then success: one event, and the
/// retry waited at least 500 ms. Same with only a `Retry-After: 1` header.
#[test]
fn rate_limit_is_waited_out_then_sent_once() {
    let (mock, d) = start("fault-429", FAST_LIMITS);
    let room = "!ratelimit";
    // Warm up (register + join) so that the timings below are the send's alone.
    send(&d, "rl", room, "warm-up", "rl-0").event_id();

    mock.script(Endpoint::Send, [Fault::rate_limited(500)]);
    let t = Instant::now();
    let event_id = send(&d, "rl", room, "limited", "rl-1").event_id();
    let took = t.elapsed();
    let tries = attempts_for(&mock, "limited");
    assert_eq!(tries.len(), 2, "one 429 then one success");
    assert_eq!(tries[0].outcome, Outcome::Answered(429));
    assert_eq!(tries[1].outcome, Outcome::Answered(200));
    let gap = tries[1].at - tries[0].at;
    assert!(
        gap >= Duration::from_millis(500),
        "retry_after_ms ignored: {gap:?}"
    );
    assert!(
        gap < Duration::from_millis(2000),
        "waited far too long: {gap:?}"
    );
    let events = events_with(&mock, "limited");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_id, event_id);
    // Both attempts used the same Matrix transaction id.
    assert_eq!(tries[0].txn_id, tries[1].txn_id);

    mock.script(
        Endpoint::Send,
        [Fault::Answer {
            status: 429,
            body: json!({ "errcode": "M_LIMIT_EXCEEDED", "error": "slow down" }),
            headers: vec![("Retry-After".into(), "1".into())],
        }],
    );
    let event_id = send(&d, "rl", room, "limited-header", "rl-2").event_id();
    let tries = attempts_for(&mock, "limited-header");
    assert_eq!(tries.len(), 2);
    let header_gap = tries[1].at - tries[0].at;
    assert!(
        header_gap >= Duration::from_secs(1),
        "Retry-After ignored: {header_gap:?}"
    );
    assert_eq!(events_with(&mock, "limited-header").len(), 1);
    assert_eq!(events_with(&mock, "limited-header")[0].event_id, event_id);
    eprintln!(
        "MEASURED 429: retry_after_ms=500 → retry after {gap:?} (call {took:?}); \
         Retry-After: 1 → retry after {header_gap:?}"
    );
}

/// Three 503s then success: one event; the retries back off. 500, 502 and a dropped
/// connection are retried the same way.
#[test]
fn server_errors_are_retried_and_sent_once() {
    let (mock, d) = start("fault-5xx", FAST_LIMITS);
    let room = "!fivexx";
    send(&d, "sv", room, "warm-up", "sv-0").event_id();

    mock.script(Endpoint::Send, (0..3).map(|_| Fault::status(503)));
    let t = Instant::now();
    let event_id = send(&d, "sv", room, "after-503s", "sv-1").event_id();
    let took = t.elapsed();
    let tries = attempts_for(&mock, "after-503s");
    let outcomes: Vec<_> = tries.iter().map(|r| r.outcome.clone()).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Answered(503),
            Outcome::Answered(503),
            Outcome::Answered(503),
            Outcome::Answered(200)
        ]
    );
    let events = events_with(&mock, "after-503s");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_id, event_id);
    let backoff = gaps(&tries);
    assert!(
        backoff.iter().all(|g| *g >= Duration::from_millis(40)),
        "{backoff:?}"
    );
    assert!(
        backoff[2] > backoff[0],
        "backoff does not grow: {backoff:?}"
    );

    mock.script(
        Endpoint::Send,
        [Fault::status(500), Fault::status(502), Fault::Close],
    );
    let event_id = send(&d, "sv", room, "after-mixed", "sv-2").event_id();
    let tries = attempts_for(&mock, "after-mixed");
    assert_eq!(tries.len(), 4);
    assert_eq!(tries[2].outcome, Outcome::Closed);
    let events = events_with(&mock, "after-mixed");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_id, event_id);
    eprintln!("MEASURED 3×503: backoff gaps {backoff:?}, call took {took:?}");
}

/// A send that hangs past `hs_attempt_timeout_ms` is retried: one event whether the hung
/// attempt took effect at the homeserver (answer lost) or not.
#[test]
fn hang_past_attempt_timeout_then_success_sends_once() {
    let (mock, d) = start("fault-hang", FAST_LIMITS);
    let room = "!hang";
    send(&d, "hg", room, "warm-up", "hg-0").event_id();

    for (label, fault) in [
        ("processed", Fault::hang_processed(Duration::from_secs(3))),
        ("unprocessed", Fault::hang(Duration::from_secs(3))),
    ] {
        mock.script(Endpoint::Send, [fault]);
        let body = format!("hang-{label}");
        let t = Instant::now();
        let event_id = send(&d, "hg", room, &body, &body).event_id();
        let took = t.elapsed();
        let tries = attempts_for(&mock, &body);
        assert_eq!(tries.len(), 2, "{label}: attempts");
        let gap = tries[1].at - tries[0].at;
        assert!(
            gap >= Duration::from_millis(450),
            "{label}: retried before the timeout: {gap:?}"
        );
        assert_eq!(tries[0].txn_id, tries[1].txn_id);
        let events = events_with(&mock, &body);
        assert_eq!(events.len(), 1, "{label}: events");
        assert_eq!(events[0].event_id, event_id, "{label}: event id");
        assert!(took < Duration::from_secs(3), "{label}: took {took:?}");
        eprintln!("MEASURED hang ({label}): retry {gap:?} after the first attempt, call {took:?}");
    }
}

/// The homeserver down for 5 s during a burst of 200 messages from 10 agents in 2 rooms
/// (each agent sends to both rooms; clients retry 503/429 with the same txn_id): every
/// message is delivered exactly once and each agent's messages keep their order per room.
#[test]
fn outage_during_burst_delivers_everything_once_in_order() {
    const AGENTS: usize = 10;
    const PER_STREAM: usize = 10;
    let rooms = ["!burstRoomA", "!burstRoomB"];
    let (mock, d) = start("fault-burst", FAST_LIMITS);
    let d = Arc::new(d);
    let retries = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut threads = Vec::new();
    for a in 0..AGENTS {
        for room in rooms {
            let d = d.clone();
            let retries = retries.clone();
            threads.push(std::thread::spawn(move || {
                let http = client();
                let agent = format!("burst-{a}");
                let mut sent = Vec::new();
                for i in 0..PER_STREAM {
                    let body = format!("{agent} {room} #{i}");
                    let txn = format!("{agent}-{room}-{i}");
                    let event_id = loop {
                        let ans = send_with(&http, &d, &agent, room, &body, &txn);
                        match ans.status {
                            StatusCode::OK => break ans.event_id(),
                            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => {
                                retries.fetch_add(1, Ordering::Relaxed);
                                let hint = ans.retry_after.unwrap_or(1).clamp(1, 5);
                                // A fifth of the hint (seconds), to keep the test short.
                                std::thread::sleep(Duration::from_millis(hint * 200));
                            }
                            other => panic!("{agent} {txn}: unexpected {other}: {}", ans.body),
                        }
                    };
                    sent.push((body, event_id));
                }
                (agent, room, sent)
            }));
        }
    }
    // Let the burst get going, then take the homeserver away for 5 s.
    mock.wait(
        Duration::from_secs(30),
        "40 messages before the outage",
        |m| (m.messages().len() >= 40).then_some(()),
    );
    let before_outage = mock.messages().len();
    let outage = Duration::from_secs(5);
    let comeback = mock.down_for(outage);
    comeback.join().expect("mock came back");
    let results: Vec<_> = threads
        .into_iter()
        .map(|t| t.join().expect("client thread"))
        .collect();
    let total = started.elapsed();
    let (down_at, up_at) = mock.down_periods()[0];
    let up_at = up_at.expect("mock is up again");

    let messages = mock.messages();
    let txns: HashSet<_> = messages.iter().map(|m| m.txn_id.clone()).collect();
    let bodies: HashSet<_> = messages
        .iter()
        .map(|m| m.content["body"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        messages.len(),
        AGENTS * rooms.len() * PER_STREAM,
        "events at the homeserver"
    );
    assert_eq!(
        txns.len(),
        messages.len(),
        "distinct Matrix transaction ids"
    );
    assert_eq!(bodies.len(), messages.len(), "a body was sent twice");
    let by_id: HashMap<_, _> = messages.iter().map(|m| (m.event_id.clone(), m)).collect();
    for (agent, room, sent) in &results {
        let user = d.agent_user(agent);
        let order: Vec<&str> = messages
            .iter()
            .filter(|m| m.room == *room && m.sender == user)
            .map(|m| m.content["body"].as_str().unwrap_or(""))
            .collect();
        let expected: Vec<&str> = sent.iter().map(|(b, _)| b.as_str()).collect();
        assert_eq!(order, expected, "order of {agent} in {room}");
        for (body, event_id) in sent {
            let ev = by_id
                .get(event_id)
                .unwrap_or_else(|| panic!("{event_id} unknown"));
            assert_eq!(
                ev.content["body"],
                body.as_str(),
                "event id answered for {body}"
            );
        }
    }
    let during = messages
        .iter()
        .filter(|m| m.at > down_at && m.at < up_at)
        .count();
    assert_eq!(during, 0);
    let last = messages.iter().map(|m| m.at).max().expect("messages");
    let attempts = mock.count(Endpoint::Send);
    eprintln!(
        "MEASURED burst: 200 messages, 10 agents × 2 rooms, {before_outage} delivered before a \
         {outage:?} outage; {attempts} send attempts reached the mock; {} client retries \
         (503/429); drained {:?} after the homeserver came back; total {total:?}",
        retries.load(Ordering::Relaxed),
        last.saturating_duration_since(up_at),
    );
}

/// Messages accepted while the first one is being retried are sent after it, in order,
/// each once (10 messages queued in one agent's room FIFO behind 503, 429 and a dropped
/// connection).
#[test]
fn queued_messages_keep_their_order_under_retries() {
    let (mock, d) = start(
        "fault-order",
        "hs_attempt_timeout_ms = 20000\nhs_deadline_ms = 30000",
    );
    let d = Arc::new(d);
    let room = "!orderRoom";
    send(&d, "ord", room, "warm-up", "ord-warm").event_id();
    mock.hold(Endpoint::Send);
    let mut threads = Vec::new();
    for i in 0..10 {
        let d2 = d.clone();
        threads.push(std::thread::spawn(move || {
            let body = format!("ordered #{i}");
            (
                body.clone(),
                send(&d2, "ord", room, &body, &format!("ord-{i}")),
            )
        }));
        // The next message only once this one is accepted by the agent's actor.
        mock.wait(Duration::from_secs(10), "message accepted", |_| {
            (queued(&d, "ord") == i as u64 + 1).then_some(())
        });
    }
    mock.script(
        Endpoint::Send,
        [
            Fault::status(503),
            Fault::rate_limited(100),
            Fault::Close,
            Fault::status(502),
        ],
    );
    mock.release(Endpoint::Send);
    let answers: Vec<(String, Answer)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let order: Vec<String> = mock
        .messages()
        .iter()
        .filter(|m| m.room == room && m.content["body"] != "warm-up")
        .map(|m| m.content["body"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = (0..10).map(|i| format!("ordered #{i}")).collect();
    assert_eq!(order, expected);
    for (body, ans) in &answers {
        let id = ans.event_id();
        assert_eq!(events_with(&mock, body)[0].event_id, id);
    }
    let attempts = mock.count(Endpoint::Send) - 1;
    assert_eq!(attempts, 14, "10 sends + 4 retried faults");
    assert_eq!(queued(&d, "ord"), 0);
}

/// A client retrying with the same txn_id after a daemon restart gets the same event id
/// and nothing is sent again; a send whose answer was lost (the call ended 503 after the
/// deadline) and is retried by the client after a restart is deduplicated by the
/// homeserver through the same Matrix transaction id: one event.
#[test]
fn client_retry_after_restart_is_idempotent() {
    let (mock, mut d) = start(
        "fault-restart",
        "hs_attempt_timeout_ms = 500\nhs_deadline_ms = 3000",
    );
    let room = "!restartRoom";
    let first = send(&d, "rs", room, "only once", "rs-1").event_id();
    d.restart();
    d.wait_ready(Duration::from_secs(20));
    let again = send(&d, "rs", room, "only once", "rs-1");
    assert_eq!(again.event_id(), first, "same txn_id, same event id");
    assert_eq!(
        attempts_for(&mock, "only once").len(),
        1,
        "sent again after restart"
    );
    assert_eq!(events_with(&mock, "only once").len(), 1);

    // The homeserver takes the event but the answer never arrives: the daemon gives up
    // at its deadline (503), the client retries after a restart.
    mock.script(
        Endpoint::Send,
        [Fault::hang_processed(Duration::from_secs(10))],
    );
    mock.always(Endpoint::Send, Fault::hang(Duration::from_secs(10)));
    let t = Instant::now();
    let lost = send(&d, "rs", room, "answer lost", "rs-2");
    let took = t.elapsed();
    assert_eq!(
        lost.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        lost.body
    );
    // Hanging attempts are cut at the deadline: the answer comes by then, not an attempt
    // timeout later.
    assert!(
        took < Duration::from_millis(3500),
        "503 after {took:?}, deadline 3 s"
    );
    mock.clear_always(Endpoint::Send);
    d.restart();
    d.wait_ready(Duration::from_secs(20));
    let retried = send(&d, "rs", room, "answer lost", "rs-2").event_id();
    let events = events_with(&mock, "answer lost");
    assert_eq!(events.len(), 1, "the lost send was duplicated");
    assert_eq!(retried, events[0].event_id);
    let tries = attempts_for(&mock, "answer lost");
    assert!(tries.windows(2).all(|w| w[0].txn_id == w[1].txn_id));
    eprintln!(
        "MEASURED restart: lost answer → 503 after {took:?} ({} attempts before the restart)",
        tries.len() - 1
    );
}

/// Two agents using the same client txn_id in the same room are two messages (Synapse
/// deduplicates per appservice token, so the Matrix txn id is derived from agent + key);
/// the same agent and key are one.
#[test]
fn same_key_for_two_agents_is_two_messages() {
    let (mock, d) = start("fault-keys", FAST_LIMITS);
    let room = "!keysRoom";
    let a = send(&d, "ka", room, "from a", "shared-key").event_id();
    let b = send(&d, "kb", room, "from b", "shared-key").event_id();
    assert_ne!(a, b);
    assert_eq!(send(&d, "ka", room, "from a", "shared-key").event_id(), a);
    let messages = mock.messages();
    assert_eq!(messages.len(), 2);
    assert_ne!(messages[0].txn_id, messages[1].txn_id);
    assert!(messages
        .iter()
        .all(|m| m.txn_id.as_deref() != Some("shared-key")));
}

/// Resident memory of the daemon process (kB), found by its config path.
fn daemon_rss_kb(d: &Daemon) -> Option<u64> {
    let needle = d.config_path().to_string_lossy().into_owned();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(" serve ") && cmdline.contains(&needle) {
            let status = std::fs::read_to_string(entry.path().join("status")).ok()?;
            return status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
        }
    }
    None
}

/// With the homeserver holding sends, an agent's queue fills up to `limits.agent_queue`;
/// further messages are refused at once with 429 `M_LIMIT_EXCEEDED` and `Retry-After`,
/// the queue does not grow and memory stays flat; once the homeserver answers, exactly the
/// accepted messages are sent.
#[test]
fn full_agent_queue_answers_429_and_memory_stays_bounded() {
    const CAP: u64 = 4;
    let (mock, d) = start(
        "fault-queue",
        "hs_attempt_timeout_ms = 20000\nhs_deadline_ms = 30000\nagent_queue = 4",
    );
    let d = Arc::new(d);
    let room = "!queueRoom";
    send(&d, "qf", room, "warm-up", "qf-warm").event_id();
    mock.hold(Endpoint::Send);
    let mut accepted = Vec::new();
    for i in 0..CAP {
        let d2 = d.clone();
        accepted.push(std::thread::spawn(move || {
            send(&d2, "qf", room, &format!("queued #{i}"), &format!("qf-{i}"))
        }));
        mock.wait(Duration::from_secs(10), "message queued", |_| {
            (queued(&d, "qf") == i + 1).then_some(())
        });
    }
    let rss_before = daemon_rss_kb(&d);
    let t = Instant::now();
    let refused = send(&d, "qf", room, "one too many", "qf-over");
    let refused_in = t.elapsed();
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        refused.body
    );
    assert_eq!(refused.body["errcode"], "M_LIMIT_EXCEEDED");
    assert!(
        refused.retry_after.is_some_and(|s| s >= 1),
        "Retry-After missing"
    );
    assert!(
        refused_in < Duration::from_secs(1),
        "refusal took {refused_in:?}"
    );

    // Hammer the full queue: 8 clients × 50 messages of 32 KiB.
    let big = "m".repeat(32 * 1024);
    let statuses: Vec<Vec<StatusCode>> = (0..8)
        .map(|c| {
            let d = d.clone();
            let big = big.clone();
            std::thread::spawn(move || {
                let http = client();
                (0..50)
                    .map(|i| {
                        send_with(&http, &d, "qf", room, &big, &format!("over-{c}-{i}")).status
                    })
                    .collect()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    assert!(
        statuses
            .iter()
            .flatten()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "a message beyond the cap was not refused"
    );
    assert_eq!(queued(&d, "qf"), CAP, "the queue grew past its cap");
    let rss_after = daemon_rss_kb(&d);

    mock.release(Endpoint::Send);
    for t in accepted {
        t.join().unwrap().event_id();
    }
    let sent: Vec<_> = mock
        .messages()
        .into_iter()
        .filter(|m| m.content["body"] != "warm-up")
        .collect();
    assert_eq!(
        sent.len(),
        CAP as usize,
        "exactly the accepted messages are sent"
    );
    assert!(sent.iter().all(|m| m.content["body"] != big.as_str()));
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        let growth = after.saturating_sub(before);
        assert!(
            growth < 16 * 1024,
            "RSS grew by {growth} kB after 400 refused 32 KiB messages"
        );
        eprintln!(
            "MEASURED queue full: 429 in {refused_in:?}; 400 refused 32 KiB messages; \
             RSS {before} kB → {after} kB (+{growth} kB); queued stayed at {CAP}"
        );
    } else {
        eprintln!("MEASURED queue full: 429 in {refused_in:?}; RSS not readable");
    }
}

/// A 4xx (other than 429) from the homeserver is not retried: 502 with the homeserver's
/// errcode and `homeserver_status`.
#[test]
fn homeserver_4xx_is_not_retried_and_passed_on_as_502() {
    let (mock, d) = start("fault-400", FAST_LIMITS);
    let room = "!fourhundred";
    send(&d, "fh", room, "warm-up", "fh-0").event_id();
    for (status, errcode) in [
        (400, "M_BAD_JSON"),
        (403, "M_FORBIDDEN"),
        (413, "M_TOO_LARGE"),
    ] {
        mock.script(Endpoint::Send, [Fault::error(status, errcode)]);
        let body = format!("refused {status}");
        let t = Instant::now();
        let ans = send(&d, "fh", room, &body, &body);
        let took = t.elapsed();
        assert_eq!(
            ans.status,
            StatusCode::BAD_GATEWAY,
            "{status}: {}",
            ans.body
        );
        assert_eq!(ans.body["errcode"], errcode);
        assert_eq!(ans.body["homeserver_status"], status);
        assert!(ans.body["error"].is_string());
        assert_eq!(attempts_for(&mock, &body).len(), 1, "{status} was retried");
        assert!(events_with(&mock, &body).is_empty());
        assert!(
            took < Duration::from_secs(1),
            "{status} answered in {took:?}"
        );
    }
    // Not remembered as sent: the same txn_id succeeds later.
    let ok = send(&d, "fh", room, "refused 400", "refused 400").event_id();
    assert_eq!(events_with(&mock, "refused 400")[0].event_id, ok);
}

/// The homeserver unreachable for longer than `hs_deadline_ms` → 503 with `Retry-After`
/// around the deadline; the same txn_id succeeds once it is back, once.
#[test]
fn unreachable_past_deadline_is_503() {
    let (mock, d) = start(
        "fault-down",
        "hs_attempt_timeout_ms = 500\nhs_deadline_ms = 3000",
    );
    let room = "!downRoom";
    send(&d, "dn", room, "warm-up", "dn-0").event_id();
    mock.go_down();
    let t = Instant::now();
    let ans = send(&d, "dn", room, "while down", "dn-1");
    let took = t.elapsed();
    assert_eq!(ans.status, StatusCode::SERVICE_UNAVAILABLE, "{}", ans.body);
    assert_eq!(ans.body["errcode"], "M_UNAVAILABLE");
    assert!(ans.retry_after.is_some(), "Retry-After missing");
    assert!(
        took >= Duration::from_millis(2000) && took <= Duration::from_millis(3500),
        "503 after {took:?}, deadline 3 s"
    );
    mock.come_up();
    let id = send(&d, "dn", room, "while down", "dn-1").event_id();
    let events = events_with(&mock, "while down");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_id, id);
    eprintln!("MEASURED unreachable: 503 after {took:?} (deadline 3 s)");
}

fn set_typing(d: &Daemon, agent: &str, room: &str, typing: bool) -> StatusCode {
    d.bridge_post(
        "/bridge/v1/typing",
        &json!({ "room_id": room, "agent": agent, "typing": typing }),
    )
    .0
}

/// Typing rooms of an agent according to its actor.
fn typing_rooms(d: &Daemon, agent: &str) -> Vec<String> {
    let (_, state) = d.bridge_get(&format!("/bridge/v1/agents/{agent}"));
    state["typing_rooms"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Typing calls never hold up messages: with the homeserver's typing endpoint hanging, a
/// message goes out at once; and a message sent while a typing-on call is still on its
/// way ends the typing (the indicator is not left on, nor renewed, afterwards).
#[test]
fn typing_is_best_effort_and_never_blocks_messages() {
    let (mock, d) = start(
        "fault-typing",
        "hs_attempt_timeout_ms = 500\nhs_deadline_ms = 2000",
    );
    let d = Arc::new(d);
    let room = "!typingRoom";
    send(&d, "ty", room, "warm-up", "ty-0").event_id();

    mock.always(Endpoint::Typing, Fault::hang(Duration::from_secs(10)));
    let d2 = d.clone();
    let typing = std::thread::spawn(move || set_typing(&d2, "ty", room, true));
    mock.wait(Duration::from_secs(5), "a typing call", |m| {
        (m.count(Endpoint::Typing) > 0).then_some(())
    });
    let t = Instant::now();
    send(&d, "ty", room, "while typing hangs", "ty-1").event_id();
    let blocked = t.elapsed();
    assert!(
        blocked < Duration::from_millis(1500),
        "message waited {blocked:?} for typing"
    );
    let typing_status = typing.join().unwrap();
    assert_ne!(
        typing_status,
        StatusCode::OK,
        "typing on cannot have succeeded"
    );
    mock.clear_always(Endpoint::Typing);
    assert!(typing_rooms(&d, "ty").is_empty());

    // Typing on is slow to reach the homeserver; the message overtakes it.
    mock.script(
        Endpoint::Typing,
        [Fault::Delay(Duration::from_millis(1000))],
    );
    let before = mock.count(Endpoint::Typing);
    let d2 = d.clone();
    let typing = std::thread::spawn(move || set_typing(&d2, "ty", room, true));
    mock.wait(Duration::from_secs(5), "the slow typing call", |m| {
        (m.count(Endpoint::Typing) > before).then_some(())
    });
    send(&d, "ty", room, "overtakes typing", "ty-2").event_id();
    assert_eq!(typing.join().unwrap(), StatusCode::OK);
    let last_typing = || {
        mock.requests_to(Endpoint::Typing)
            .into_iter()
            .rfind(|r| r.room.as_deref() == Some(room))
            .map(|r| r.body["typing"].clone())
    };
    mock.wait(
        Duration::from_secs(5),
        "typing ended after the message",
        |_| {
            (typing_rooms(&d, "ty").is_empty() && last_typing() == Some(json!(false))).then_some(())
        },
    );
    eprintln!("MEASURED typing: a message waited {blocked:?} while typing calls hung");
}

/// The homeserver is down when the daemon starts: `/health` 200, `/ready` 503 and bridge
/// calls 503; once it is reachable the daemon becomes ready and messages go out.
#[test]
fn homeserver_down_at_start_up() {
    let mock = MockHs::start(SERVER_NAME);
    mock.go_down();
    let options = DaemonOptions {
        limits_toml: FAST_LIMITS.into(),
        ..Default::default()
    };
    let mut d = Daemon::standalone("fault-start-down", &mock.url(), SERVER_NAME, options);
    d.start();
    assert_eq!(d.get("/health").0, StatusCode::OK);
    let (status, body) = d.get("/ready");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("homeserver"), "{body}");
    let ans = send(&d, "sd", "!startDown", "too early", "sd-1");
    assert_eq!(ans.status, StatusCode::SERVICE_UNAVAILABLE, "{}", ans.body);
    assert!(ans.retry_after.is_some());
    let t = Instant::now();
    mock.come_up();
    d.wait_ready(Duration::from_secs(15));
    let ready_in = t.elapsed();
    send(&d, "sd", "!startDown", "too early", "sd-1").event_id();
    assert_eq!(events_with(&mock, "too early").len(), 1);
    assert!(!mock.requests_to(Endpoint::Ping).is_empty());
    eprintln!("MEASURED start-up while down: ready {ready_in:?} after the homeserver came up");
}

/// An outage shorter than `hs_deadline_ms` is invisible to a client: a message sent as the
/// homeserver goes away is delivered (once) when it comes back, without an error answer.
#[test]
fn outage_shorter_than_the_deadline_is_absorbed() {
    let (mock, d) = start("fault-short-outage", FAST_LIMITS);
    let d = Arc::new(d);
    let room = "!shortOutage";
    send(&d, "so", room, "warm-up", "so-0").event_id();
    mock.go_down();
    let t = Instant::now();
    let d2 = d.clone();
    let sender = std::thread::spawn(move || send(&d2, "so", room, "during outage", "so-1"));
    std::thread::sleep(Duration::from_secs(5));
    mock.come_up();
    let ans = sender.join().unwrap();
    let took = t.elapsed();
    assert_eq!(
        ans.status,
        StatusCode::OK,
        "5 s outage, 8 s deadline: {}",
        ans.body
    );
    assert_eq!(events_with(&mock, "during outage").len(), 1);
    assert!(took < Duration::from_secs(9), "took {took:?}");
    eprintln!("MEASURED 5 s outage within the 8 s deadline: delivered after {took:?}");
}
