//! Issued bridge tokens over HTTP: the value shown once and never listed, bad requests
//! refused field by field with nothing stored, revocation at once and for good (also
//! across a restart), and each token's own rate limit.

pub mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{
    app::spawn_app,
    daemon_api::{assert_no_secret_in_log, bridge},
    mock_hs::MockHs,
    tokens::{call_as, issue, issue_for, revoke},
    DaemonOptions,
};

fn listed(d: &impl support::daemon_api::DaemonApi) -> Vec<Value> {
    let r = bridge(d, Method::GET, "/bridge/v1/tokens", None);
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json()["tokens"].as_array().expect("tokens").clone()
}

#[test]
fn a_token_is_shown_once_listed_without_its_value_and_revoked_at_once() {
    let app = spawn_app("tokens-life");
    let body = json!({ "name": "planner", "scopes": ["send", "read"],
        "agents": ["planner-*"], "rate_per_s": 10, "expires_in_s": 3600 });
    let r = bridge(&app, Method::POST, "/bridge/v1/tokens", Some(&body));
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let created = r.json();
    let value = created["token"].as_str().expect("the value").to_owned();
    assert!(value.len() >= 64, "at least 256 bits in hex: {value}");
    assert_eq!(created["scopes"], json!(["send", "read"]));
    assert_eq!(created["agents"], json!(["planner-*"]));
    let expires = created["expires_at"].as_i64().unwrap();
    let made = created["created_at"].as_i64().unwrap();
    assert_eq!(expires - made, 3600 * 1000);

    let list = listed(&app);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], created["id"]);
    assert_eq!(list[0]["expired"], false);
    assert!(list[0].get("token").is_none());
    assert!(
        !list[0].to_string().contains(&value),
        "the list shows the value"
    );

    // The value works, then it does not.
    let agents = "/bridge/v1/agents";
    let r = call_as(&app, Some(&value), Method::GET, agents, None);
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    revoke(&app, created["id"].as_str().unwrap());
    let r = call_as(&app, Some(&value), Method::GET, agents, None);
    r.expect_error(403, "M_FORBIDDEN", "a revoked token");
    assert!(listed(&app).is_empty());
    let r = bridge(
        &app,
        Method::DELETE,
        &format!("/bridge/v1/tokens/{}", created["id"].as_str().unwrap()),
        None,
    );
    r.expect_error(404, "M_NOT_FOUND", "revoking twice");
    let r = bridge(&app, Method::DELETE, "/bridge/v1/tokens/not-an-id", None);
    r.expect_error(404, "M_NOT_FOUND", "an id of the wrong shape");
}

#[test]
fn bad_requests_name_the_field_and_store_nothing() {
    let app = spawn_app("tokens-bad");
    let cases = [
        (json!({ "scopes": ["send"], "agents": ["a"] }), "name"),
        (
            json!({ "name": "", "scopes": ["send"], "agents": ["a"] }),
            "name:",
        ),
        (
            json!({ "name": "n", "scopes": ["sned"], "agents": ["a"] }),
            "scopes[0]:",
        ),
        (
            json!({ "name": "n", "scopes": [], "agents": ["a"] }),
            "scopes:",
        ),
        (
            json!({ "name": "n", "scopes": "send", "agents": ["a"] }),
            "scopes",
        ),
        (
            json!({ "name": "n", "scopes": ["send"], "agents": ["ok", "*bad"] }),
            "agents[1]:",
        ),
        (
            json!({ "name": "n", "scopes": ["send"], "agents": ["Caps-*"] }),
            "agents[0]:",
        ),
        (
            json!({ "name": "n", "scopes": ["read"], "agents": [] }),
            "agents:",
        ),
        (
            json!({ "name": "n", "scopes": ["send"], "agents": ["a"], "expires_in_s": 0 }),
            "expires_in_s:",
        ),
        (
            json!({ "name": "n", "scopes": ["send"], "agents": ["a"], "expires_in_s": -5 }),
            "expires_in_s",
        ),
        (
            json!({ "name": "n", "scopes": ["send"], "agents": ["a"], "expires_in_s": "30d" }),
            "expires_in_s",
        ),
        (
            json!({ "name": "n", "scopes": ["send"], "agents": ["a"], "rate_per_s": 0 }),
            "rate_per_s:",
        ),
        (
            json!({ "name": "n", "scopes": ["send"], "agents": ["a"], "owner": "x" }),
            "owner",
        ),
    ];
    for (body, field) in cases {
        let r = bridge(&app, Method::POST, "/bridge/v1/tokens", Some(&body));
        r.expect_error(400, "M_BAD_JSON", &body.to_string());
        let error = r.json()["error"].as_str().unwrap().to_owned();
        assert!(
            error.contains(field),
            "{body}: {error:?} does not name {field}"
        );
    }
    assert!(listed(&app).is_empty(), "a refused request stored a token");
}

#[test]
fn each_token_has_its_own_rate_and_admin_tokens_a_higher_one() {
    let app = spawn_app("tokens-rate");
    let slow = issue(
        &app,
        json!({ "name": "slow", "scopes": ["read"], "agents": ["*"], "rate_per_s": 3 }),
    );
    let other = issue_for(&app, &["read"], &["*"]);
    let mut limited = None;
    for _ in 0..10 {
        let r = call_as(
            &app,
            Some(&slow.value),
            Method::GET,
            "/bridge/v1/agents",
            None,
        );
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let r = limited.expect("a token at 3/s was never limited in 10 quick requests");
    r.expect_error(429, "M_LIMIT_EXCEEDED", "beyond the token's rate");
    let retry_ms = r.json()["retry_after_ms"].as_u64().expect("retry_after_ms");
    assert!((1..=1000).contains(&retry_ms), "retry_after_ms {retry_ms}");
    assert!(r.headers.get("retry-after").is_some(), "Retry-After header");
    // Other tokens, and the admin token, are not held up by it.
    for _ in 0..20 {
        let r = call_as(
            &app,
            Some(&other.value),
            Method::GET,
            "/bridge/v1/agents",
            None,
        );
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let r = bridge(&app, Method::GET, "/bridge/v1/agents", None);
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
}

#[test]
fn issued_and_revoked_tokens_stay_so_across_a_restart() {
    let (_mock, mut d) = MockHs::with_daemon("tokens-restart", DaemonOptions::default());
    let kept = issue_for(&d, &["read"], &["*"]);
    let gone = issue_for(&d, &["read"], &["*"]);
    revoke(&d, &gone.id);
    d.restart();
    let r = call_as(
        &d,
        Some(&kept.value),
        Method::GET,
        "/bridge/v1/agents",
        None,
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = call_as(
        &d,
        Some(&gone.value),
        Method::GET,
        "/bridge/v1/agents",
        None,
    );
    r.expect_error(403, "M_FORBIDDEN", "a revoked token after a restart");
    let log = d.log_text();
    assert!(
        !log.contains(&kept.value) && !log.contains(&gone.value),
        "a token value in the log"
    );
    assert_no_secret_in_log(&d);
}
