//! Every bridge route × every kind of caller, against the in-process daemon over the mock
//! homeserver: no token, an admin token, an issued token in scope, one with every other
//! scope, one for other agents, a revoked one and an expired one. A route of the daemon's
//! route table without a row here fails the test, so no route escapes the table.

pub mod support;

use std::{thread::sleep, time::Duration};

use mosaic_as::api::{Scope as Mount, ROUTES};
use reqwest::{Method, StatusCode};
use serde_json::json;
use support::{
    app::{spawn_app, TestApp},
    daemon_api::{put_agent, DaemonApi},
    http::Resp,
    tokens::{call_as, issue, issue_for, revoke},
};

#[path = "scopes/rows.rs"]
mod rows;

use rows::{rows, Row, SCOPES};

fn send(app: &TestApp, row: &Row, token: Option<&str>, agent: &str) -> Resp {
    let (path, body) = (row.request)(app, agent);
    call_as(app, token, row.method.clone(), &path, body.as_ref())
}

fn refused(r: &Resp, what: &str, needle: &str) {
    r.expect_error(403, "M_FORBIDDEN", what);
    let error = r.json()["error"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains(needle), "{what}: {error:?} lacks {needle:?}");
}

#[test]
fn every_route_refuses_every_caller_it_should() {
    let app = spawn_app("scopes-table");
    for slug in ["a-1", "b-1"] {
        put_agent(&app, slug);
    }
    let rows = rows();
    // Expired tokens first: they need a second to pass.
    let expired: Vec<String> = rows
        .iter()
        .map(|row| {
            let body = json!({ "name": "old", "scopes": [row.scope], "agents": ["a-*"],
                "expires_in_s": 1, "rate_per_s": 100_000 });
            issue(&app, body).value
        })
        .collect();
    sleep(Duration::from_millis(2100));

    for (row, expired) in rows.iter().zip(&expired) {
        let what = |case: &str| format!("{} {} ({case})", row.method, row.pattern);
        let in_scope = issue_for(&app, &[row.scope], &["a-*"]);
        let others: Vec<&str> = SCOPES
            .into_iter()
            .filter(|s| *s != row.scope && *s != "admin")
            .collect();
        let wrong_scope = issue_for(&app, &others, &["*"]);
        let revoked = issue_for(&app, &[row.scope], &["a-*"]);
        revoke(&app, &revoked.id);

        let r = send(&app, row, None, "a-1");
        refused(&r, &what("no token"), "missing bridge token");
        let r = send(&app, row, Some(app.bridge_token()), "a-1");
        assert!(
            r.status.is_success(),
            "{}: {} {}",
            what("admin"),
            r.status,
            r.text
        );
        let r = send(&app, row, Some(&in_scope.value), "a-1");
        assert!(
            r.status.is_success(),
            "{}: {} {}",
            what("in scope"),
            r.status,
            r.text
        );
        let r = send(&app, row, Some(&wrong_scope.value), "a-1");
        refused(
            &r,
            &what("wrong scope"),
            &format!("lacks the {} scope", row.scope),
        );
        let r = send(&app, row, Some(&revoked.value), "a-1");
        refused(&r, &what("revoked"), "invalid bridge token");
        let r = send(&app, row, Some(expired), "a-1");
        refused(&r, &what("expired"), "expired");
        if row.for_agent {
            // An agent outside the token's patterns: refused alike whether it exists.
            let known = send(&app, row, Some(&in_scope.value), "b-1");
            refused(&known, &what("wrong agent"), "for agent b-1");
            let unknown = send(&app, row, Some(&in_scope.value), "b-2");
            refused(&unknown, &what("wrong, unknown agent"), "for agent b-2");
            assert_eq!(
                known.text.replace("b-1", "b-?"),
                unknown.text.replace("b-2", "b-?")
            );
        }
    }
    // Agents outside the patterns were never created by a refused request.
    let r = call_as(
        &app,
        Some(app.bridge_token()),
        Method::GET,
        "/bridge/v1/agents/b-2",
        None,
    );
    r.expect_error(404, "M_NOT_FOUND", "b-2 after refused requests");
}

#[test]
fn every_bridge_route_has_a_row_and_no_other_method_is_served() {
    let app = spawn_app("scopes-routes");
    let rows = rows();
    for route in ROUTES.iter().filter(|r| r.scope == Mount::Bridge) {
        assert!(
            rows.iter().any(|row| row.pattern == route.pattern),
            "bridge route {} has no row in the scope table",
            route.pattern
        );
    }
    for row in &rows {
        let (path, _) = (row.request)(&app, "a-1");
        for method in [Method::GET, Method::POST, Method::PUT, Method::DELETE] {
            let served = rows
                .iter()
                .any(|r| r.pattern == row.pattern && r.method == method);
            if !served {
                let r = call_as(&app, Some(app.bridge_token()), method.clone(), &path, None);
                assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            }
        }
    }
}

#[test]
fn the_agent_list_shows_only_the_tokens_agents() {
    let app = spawn_app("scopes-list");
    for slug in ["a-1", "a-2", "b-1", "c"] {
        put_agent(&app, slug);
    }
    let token = issue_for(&app, &["read"], &["a-*", "c"]);
    let list = |after: Option<&str>, limit: u32| {
        let path = match after {
            Some(a) => format!("/bridge/v1/agents?limit={limit}&after={a}"),
            None => format!("/bridge/v1/agents?limit={limit}"),
        };
        let r = call_as(&app, Some(&token.value), Method::GET, &path, None);
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let v = r.json();
        let slugs: Vec<String> = v["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["agent"].as_str().unwrap().to_owned())
            .collect();
        (slugs, v["next"].as_str().map(str::to_owned))
    };
    assert_eq!(list(None, 10).0, ["a-1", "a-2", "c"]);
    let (page, next) = list(None, 2);
    assert_eq!(
        (page, next.as_deref()),
        (vec!["a-1".into(), "a-2".into()], Some("a-2"))
    );
    assert_eq!(list(Some("a-2"), 2).0, ["c"]);
}

/// The sender bot invites an agent into a room only for a caller that could have chosen
/// the room for it: a token that may only send gets the homeserver's refusal, and no
/// invite is made; one with `provision` for the agent gets the invite and the message sent.
#[test]
fn the_sender_bot_invites_only_for_callers_that_could_choose_the_room() {
    let app = spawn_app("scopes-invite");
    let sender = issue_for(&app, &["send"], &["a-*"]);
    let provisioner = issue_for(&app, &["send", "provision"], &["a-*"]);
    let invites = || app.mock.count(support::mock_hs::Endpoint::Invite);
    app.mock.fail_joins(1);
    let body = json!({ "room_id": "!private:hs.local", "agent": "a-1", "body": "let me in" });
    let r = call_as(
        &app,
        Some(&sender.value),
        Method::POST,
        "/bridge/v1/messages",
        Some(&body),
    );
    r.expect_error(
        502,
        "M_FORBIDDEN",
        "a send-only token into a room the agent is not in",
    );
    assert_eq!(invites(), 0, "the sender bot invited for a send-only token");
    app.mock.fail_joins(1);
    let r = call_as(
        &app,
        Some(&provisioner.value),
        Method::POST,
        "/bridge/v1/messages",
        Some(&body),
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(invites(), 1);
}
