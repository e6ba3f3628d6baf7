//! Who gets in, against the in-process daemon and the mock homeserver: invites from
//! inviters `inbound.invite_allow` does not name are rejected at the homeserver and
//! counted, never accepted; the metrics token guards `/metrics` and bridge tokens do not
//! open it; the `Bearer` scheme is case-insensitive.

pub mod support;

use reqwest::{Method, StatusCode};
use support::app::{spawn_app, spawn_app_with};
use support::daemon_api::DaemonApi;
use support::events::member_invite;
use support::http::call;
use support::metrics::metric;
use support::mock_hs::Endpoint;
use support::DaemonOptions;

/// By default only users of the local server may invite: an agent and the sender bot
/// invited from another server leave the room with a reason (never join), and a local
/// user's invite is accepted; both outcomes are counted.
#[test]
fn invites_from_other_servers_are_rejected_at_the_homeserver() {
    let app = spawn_app("access-invites");
    let agent = app.agent_user("guarded");
    let r = app.put_txn(
        "t1",
        vec![
            member_invite("$i1", "!evil:evil.example", "@x:evil.example", &agent),
            member_invite(
                "$i2",
                "!evil:evil.example",
                "@x:evil.example",
                "@mosaic-as:hs.local",
            ),
            member_invite("$i3", "!ok:hs.local", "@alice:hs.local", &agent),
        ],
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let leaves = app
        .mock
        .wait(std::time::Duration::from_secs(10), "two rejections", |m| {
            let leaves = m.requests_to(Endpoint::Leave);
            (leaves.len() == 2).then_some(leaves)
        });
    for leave in &leaves {
        assert_eq!(leave.room.as_deref(), Some("!evil:evil.example"));
        assert!(
            leave.body["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "a reason: {}",
            leave.body
        );
    }
    let mut users: Vec<_> = leaves.iter().filter_map(|l| l.user_id()).collect();
    users.sort();
    assert_eq!(users, ["@agent-guarded:hs.local", "@mosaic-as:hs.local"]);
    let joins = app.mock.wait(
        std::time::Duration::from_secs(10),
        "the local invite",
        |m| {
            let joins = m.requests_to(Endpoint::Join);
            (!joins.is_empty()).then_some(joins)
        },
    );
    assert!(
        joins
            .iter()
            .all(|j| j.room.as_deref() == Some("!ok:hs.local")),
        "joined only where a local user invited"
    );
    // Counted once each outcome is known (the join completes after the homeserver's answer).
    support::wait_until(
        std::time::Duration::from_secs(10),
        "invites counted",
        || {
            let (_, text) = app.get("/metrics");
            let count = |outcome| metric(&text, "mosaic_as_invites_total", &[("outcome", outcome)]);
            (count("rejected") >= 2.0 && count("accepted") >= 1.0).then_some(())
        },
    );
}

/// With `MOSAIC_METRICS_TOKEN`, `/metrics` needs exactly it: none, a bridge token or the
/// hs_token → 403; the metrics token opens nothing else. A lower-case `bearer` works.
#[test]
fn the_metrics_token_guards_metrics_and_opens_nothing_else() {
    let token = "m".repeat(48);
    let options = DaemonOptions {
        env: vec![("MOSAIC_METRICS_TOKEN".into(), token.clone())],
        ..Default::default()
    };
    let app = spawn_app_with("access-metrics", options);
    let url = format!("{}/metrics", app.base_url());
    for (who, bearer) in [
        ("nobody", None),
        ("a bridge token", Some(app.bridge_token())),
        ("the hs_token", Some(app.hs_token())),
    ] {
        let r = call(Method::GET, &url, bearer, None);
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{who}: {}", r.text);
    }
    let r = call(Method::GET, &url, Some(&token), None);
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains("mosaic_as_transactions_total"));
    let agents = format!("{}/bridge/v1/agents", app.base_url());
    let r = call(Method::GET, &agents, Some(&token), None);
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "the metrics token on the bridge"
    );

    let lower = support::http::client()
        .get(&agents)
        .header("Authorization", format!("bearer {}", app.bridge_token()))
        .send()
        .expect("bridge call");
    assert_eq!(lower.status(), StatusCode::OK, "a lower-case scheme");
}

/// Without a metrics token `/metrics` stays open, as before.
#[test]
fn metrics_are_open_without_a_metrics_token() {
    let app = spawn_app("access-open-metrics");
    assert_eq!(app.get("/metrics").0, StatusCode::OK);
}

/// The daemon's own invites (the sender bot letting an agent into a room it provisions)
/// are never refused, even when `inbound.invite_allow` lets nobody in.
#[test]
fn the_daemons_own_invites_pass_any_allow_list() {
    let options = DaemonOptions {
        extra_toml: "[inbound]\ninvite_allow = []\n".into(),
        ..Default::default()
    };
    let app = spawn_app_with("access-own-invites", options);
    let agent = app.agent_user("provisioned");
    let r = app.put_txn(
        "t1",
        vec![
            member_invite("$i1", "!ours:hs.local", "@mosaic-as:hs.local", &agent),
            member_invite("$i2", "!theirs:hs.local", "@alice:hs.local", &agent),
        ],
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    app.mock.wait(
        std::time::Duration::from_secs(10),
        "the join and the rejection",
        |m| (m.count(Endpoint::Join) >= 1 && m.count(Endpoint::Leave) >= 1).then_some(()),
    );
    let rooms = |e| -> Vec<String> {
        app.mock
            .requests_to(e)
            .iter()
            .filter_map(|r| r.room.clone())
            .collect()
    };
    assert_eq!(rooms(Endpoint::Join), ["!ours:hs.local"]);
    assert_eq!(
        rooms(Endpoint::Leave),
        ["!theirs:hs.local"],
        "nobody else may invite"
    );
}
