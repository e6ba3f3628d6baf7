//! An agent's queue while the homeserver is slow, against a scripted mock homeserver
//! (issue 6): messages queued behind retries keep their order, a full queue refuses at
//! once with 429 while memory stays flat, and typing calls never hold up messages. Each
//! test prints the figures it measured (`--nocapture`).

pub mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use support::faults::{client, events_with, send, send_with, start, Answer};
use support::mock_hs::{Endpoint, Fault};
use support::Daemon;

/// Messages waiting or in flight in an agent's actor.
fn queued(d: &Daemon, agent: &str) -> u64 {
    let (status, state) = d.bridge_get(&format!("/bridge/v1/agents/{agent}"));
    if status != StatusCode::OK {
        return 0;
    }
    state["queued_messages"].as_u64().unwrap_or(0)
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
