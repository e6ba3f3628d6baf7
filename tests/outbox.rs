//! The effects outbox against the daemon process and the mock homeserver: what a
//! transaction asks for is stored in its commit and carried out until done, also when the
//! daemon is killed right after answering the transaction, and retried with backoff while
//! the homeserver fails.

pub mod support;

use std::time::Duration;

use reqwest::StatusCode;
use support::daemon_api::put_txn;
use support::events::member_invite;
use support::mock_hs::{Endpoint, Fault, MockHs};
use support::DaemonOptions;

const ROOM: &str = "!outbox:hs.local";
const INVITER: &str = "@alice:hs.local";

fn joins_of(mock: &MockHs, user: &str) -> Vec<support::mock_hs::Outcome> {
    mock.requests_to(Endpoint::Join)
        .into_iter()
        .filter(|r| r.room.as_deref() == Some(ROOM) && r.user_id() == Some(user))
        .map(|r| r.outcome)
        .collect()
}

/// Killed (SIGKILL) right after the 200 of an invite transaction, before the join could
/// reach the homeserver: after the restart the agent joins, once.
#[test]
fn an_invite_answered_before_a_kill_is_accepted_after_the_restart() {
    let (mock, mut d) = MockHs::with_daemon("outbox-kill", DaemonOptions::default());
    let agent = d.agent_user("kept");
    mock.hold(Endpoint::Join);
    let r = put_txn(
        &d,
        "t-invite",
        vec![member_invite("$inv", ROOM, INVITER, &agent)],
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    d.kill();
    mock.release(Endpoint::Join);
    d.start();
    mock.wait(
        Duration::from_secs(20),
        "the agent joins after the restart",
        |mock| {
            joins_of(mock, &agent)
                .contains(&support::mock_hs::Outcome::Answered(200))
                .then_some(())
        },
    );
    std::thread::sleep(Duration::from_millis(1500));
    let answered = joins_of(&mock, &agent)
        .into_iter()
        .filter(|o| *o == support::mock_hs::Outcome::Answered(200))
        .count();
    assert_eq!(answered, 1, "joined more than once");
}

/// A homeserver failing the sender bot's join (503) is tried again with backoff until the
/// join succeeds; a join refused for good (403) is given up and counted as failed.
#[test]
fn failing_effects_are_retried_and_refused_ones_given_up() {
    // Calls give up after 400 ms, so the outbox itself must try again.
    let options = DaemonOptions {
        limits_toml: "hs_attempt_timeout_ms = 200\nhs_deadline_ms = 400".into(),
        ..Default::default()
    };
    let (mock, d) = MockHs::with_daemon("outbox-retry", options);
    let bot = d.sender_user();
    mock.script(Endpoint::Join, vec![Fault::error(503, "M_UNKNOWN"); 12]);
    let r = put_txn(
        &d,
        "t-bot",
        vec![member_invite("$bot", ROOM, INVITER, &bot)],
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    mock.wait(
        Duration::from_secs(20),
        "the sender bot joins in the end",
        |mock| {
            joins_of(mock, &bot)
                .contains(&support::mock_hs::Outcome::Answered(200))
                .then_some(())
        },
    );
    assert!(
        joins_of(&mock, &bot).len() >= 3,
        "{:?}",
        joins_of(&mock, &bot)
    );

    let agent = d.agent_user("refused");
    mock.script(Endpoint::Join, [Fault::error(403, "M_FORBIDDEN")]);
    let r = put_txn(
        &d,
        "t-refused",
        vec![member_invite("$ref", ROOM, INVITER, &agent)],
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let metrics = || d.get("/metrics").1;
    mock.wait(
        Duration::from_secs(20),
        "the refused effect is given up",
        |_| {
            let text = metrics();
            let failed = support::metrics::metric(
                &text,
                "mosaic_as_effects_total",
                &[("kind", "accept_invite"), ("outcome", "failed")],
            );
            let pending = support::metrics::metric(&text, "mosaic_as_effects_pending", &[]);
            (failed == 1.0 && pending == 0.0).then_some(())
        },
    );
    assert_eq!(joins_of(&mock, &agent).len(), 1, "a 403 was retried");
}
