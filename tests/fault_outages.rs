//! The homeserver unreachable, against a scripted mock homeserver (issue 6): an outage
//! during a burst of messages (each delivered once, in order), an outage shorter than
//! `hs_deadline_ms` absorbed, a longer one answered 503, and a daemon started while the
//! homeserver is down. Each test prints the figures it measured (`--nocapture`).

pub mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use support::faults::{client, events_with, send, send_with, start, FAST_LIMITS};
use support::mock_hs::{Endpoint, MockHs};
use support::{Daemon, DaemonOptions, SERVER_NAME};

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
