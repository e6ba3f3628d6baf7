//! Who may pull agents into rooms, against a real Synapse: an invite from a user
//! `inbound.invite_allow` does not name is rejected at the homeserver (the agent is never
//! in the room, the inviter sees a leave with a reason); one from a named user is accepted;
//! both are counted in `/metrics`. (A single test homeserver has no users of other
//! servers; `tests/access.rs` pushes invites from another server at the daemon itself.)

pub mod support;

use std::time::Duration;

use serde_json::json;
use support::{metrics::metric, DaemonOptions, Stack};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn only_allowed_inviters_pull_agents_into_rooms() {
    let options = DaemonOptions {
        extra_toml: "[inbound]\ninvite_allow = [\"@allowed:hs.local\"]\n".into(),
        ..Default::default()
    };
    let stack = Stack::start_with("invites", options);
    let allowed = stack.synapse.register_human("allowed");
    let stranger = stack.synapse.register_human("stranger");
    let agent = stack.agent_user("doorman");

    let refused = stranger.create_room(json!({"preset": "private_chat", "name": "Lure"}));
    stranger.invite(&refused, &agent);
    let leave = support::wait_until(WAIT, "the invite is rejected", || {
        stranger
            .state_event(&refused, "m.room.member", &agent)
            .filter(|e| e["membership"] == "leave")
    });
    assert!(
        leave["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "the stranger sees why: {leave}"
    );

    let welcome = allowed.create_room(json!({"preset": "private_chat", "name": "Team"}));
    allowed.invite(&welcome, &agent);
    support::wait_until(WAIT, "the allowed invite is accepted", || {
        (allowed.membership(&welcome, &agent).as_deref() == Some("join")).then_some(())
    });
    assert_ne!(
        stranger.membership(&refused, &agent).as_deref(),
        Some("join"),
        "never joined the stranger's room"
    );
    // The outbox counts an effect once its call returns, which can be just after the
    // homeserver shows the membership.
    support::wait_until(WAIT, "both invites counted, the outbox empty", || {
        let text = stack.metrics();
        let count = |outcome| metric(&text, "mosaic_as_invites_total", &[("outcome", outcome)]);
        let pending = metric(&text, "mosaic_as_effects_pending", &[]);
        (count("rejected") == 1.0 && count("accepted") == 1.0 && pending == 0.0).then_some(())
    });
}
