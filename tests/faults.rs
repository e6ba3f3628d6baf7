//! A send's retries against a scripted mock homeserver (issue 6): 429 waited out, 5xx,
//! hangs and dropped connections retried, a 4xx passed on at once; each message reaches
//! the homeserver once, also when a client retries across a daemon restart, and client
//! keys are per agent. Each test prints the figures it measured (`--nocapture`).

pub mod support;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use support::faults::{events_with, send, send_honouring_retry, start, FAST_LIMITS};
use support::mock_hs::{Endpoint, Fault, MockHs, Outcome};

/// Send attempts at the mock for one message body.
fn attempts_for(mock: &MockHs, body: &str) -> Vec<support::mock_hs::Request> {
    mock.requests_to(Endpoint::Send)
        .into_iter()
        .filter(|r| r.body["body"] == body)
        .collect()
}

fn gaps(reqs: &[support::mock_hs::Request]) -> Vec<Duration> {
    reqs.windows(2).map(|w| w[1].at - w[0].at).collect()
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
    let again = send_honouring_retry(&d, "rs", room, "only once", "rs-1");
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
    let retried = send_honouring_retry(&d, "rs", room, "answer lost", "rs-2").event_id();
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
