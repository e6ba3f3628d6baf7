//! The daemon's homeserver-facing routes against a mock homeserver: the token rules of
//! every route, unknown paths and wrong methods, user and alias queries, ping and
//! third-party lookups. Transactions are in `hs_transactions.rs`.

pub mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::app::spawn_app;
use support::daemon_api::DaemonApi;
use support::daemon_api::{assert_no_secret_in_log, bridge, hs};
use support::http::{call, json_body};
use support::mock_hs::{Endpoint, MockHs};
use support::DaemonOptions;

/// Every homeserver-facing route: no token → 401, wrong token (header or query) → 403,
/// header and query disagreeing → 403, query-only or header token → the route's answer.
/// The tokens never reach the log.
#[test]
fn hs_routes_enforce_token_rules() {
    let (mock, d) = MockHs::with_daemon("as-auth", DaemonOptions::default());
    let good = d.hs_token().to_owned();
    let wrong = "w".repeat(64);
    let mut n = 0;
    // (method, path, body, expected status with a good token, expected errcode if error)
    type Route = (Method, String, Option<Value>, u16, Option<&'static str>);
    let routes = |n: &mut u32| -> Vec<Route> {
        *n += 1;
        vec![
            (
                Method::PUT,
                format!("/_matrix/app/v1/transactions/auth-{n}"),
                Some(json!({ "events": [] })),
                200,
                None,
            ),
            (
                Method::PUT,
                format!("/transactions/legacy-auth-{n}"),
                Some(json!({ "events": [] })),
                200,
                None,
            ),
            (
                Method::GET,
                "/_matrix/app/v1/users/%40agent-authq%3Ahs.local".into(),
                None,
                200,
                None,
            ),
            (
                Method::GET,
                "/_matrix/app/v1/rooms/%23mosaic-nope%3Ahs.local".into(),
                None,
                404,
                Some("M_NOT_FOUND"),
            ),
            (
                Method::POST,
                "/_matrix/app/v1/ping".into(),
                Some(json!({ "transaction_id": "mosaic-test" })),
                200,
                None,
            ),
            (
                Method::GET,
                "/_matrix/app/v1/thirdparty/protocol/irc".into(),
                None,
                404,
                Some("M_NOT_FOUND"),
            ),
        ]
    };
    let sep = |path: &str| if path.contains('?') { '&' } else { '?' };
    for round in 0..7 {
        for (method, path, body, ok_status, ok_errcode) in routes(&mut n) {
            let url = format!("{}{path}", d.base_url());
            let body = body.as_ref().and_then(json_body);
            let (label, resp) = match round {
                0 => ("no token", call(method.clone(), &url, None, body)),
                1 => (
                    "wrong header",
                    call(method.clone(), &url, Some(&wrong), body),
                ),
                2 => {
                    let u = format!("{url}{}access_token={wrong}", sep(&url));
                    ("wrong query", call(method.clone(), &u, None, body))
                }
                3 => {
                    let u = format!("{url}{}access_token={wrong}", sep(&url));
                    (
                        "good header, wrong query",
                        call(method.clone(), &u, Some(&good), body),
                    )
                }
                4 => {
                    let u = format!("{url}{}access_token={good}", sep(&url));
                    (
                        "wrong header, good query",
                        call(method.clone(), &u, Some(&wrong), body),
                    )
                }
                5 => {
                    let u = format!("{url}{}access_token={good}", sep(&url));
                    ("query only", call(method.clone(), &u, None, body))
                }
                _ => ("header only", call(method.clone(), &url, Some(&good), body)),
            };
            let what = format!("{method} {path} ({label})");
            match round {
                0 => resp.expect_error(401, "M_UNAUTHORIZED", &what),
                1..=4 => resp.expect_error(403, "M_FORBIDDEN", &what),
                _ => match ok_errcode {
                    Some(code) => resp.expect_error(ok_status, code, &what),
                    None => {
                        assert_eq!(resp.status.as_u16(), ok_status, "{what}: {}", resp.text);
                        assert_eq!(resp.json(), json!({}), "{what}");
                    }
                },
            }
        }
    }
    // A matching header and query token is accepted too.
    let url = format!("{}/_matrix/app/v1/ping?access_token={good}", d.base_url());
    let r = call(Method::POST, &url, Some(&good), json_body(&json!({})));
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Refused queries never reached the homeserver; the accepted ones registered once.
    let registers = mock
        .requests_to(Endpoint::Register)
        .iter()
        .filter(|r| r.body["username"] == "agent-authq")
        .count();
    assert_eq!(registers, 1);
    assert!(
        !d.log_text().contains(&wrong),
        "a presented token was logged"
    );
    assert_no_secret_in_log(&d);
}

/// Unknown paths answer 404 `M_UNRECOGNIZED`, known paths with a wrong method 405
/// `M_UNRECOGNIZED` (all with a JSON error body).
#[test]
fn unknown_paths_404_and_wrong_methods_405() {
    let d = spawn_app("as-paths");
    for (method, path) in [
        (Method::GET, "/_matrix/app/v1/nope"),
        (Method::PUT, "/_matrix/app/v1/transaction/x"),
        (Method::GET, "/_matrix/app/v2/ping"),
        (Method::GET, "/nope"),
        (Method::GET, "/"),
    ] {
        hs(&d, method.clone(), path, None).expect_error(404, "M_UNRECOGNIZED", path);
    }
    for (method, path) in [
        (Method::GET, "/_matrix/app/v1/transactions/x"),
        (Method::POST, "/_matrix/app/v1/transactions/x"),
        (Method::DELETE, "/transactions/x"),
        (Method::PUT, "/_matrix/app/v1/users/%40agent-a%3Ahs.local"),
        (Method::POST, "/_matrix/app/v1/rooms/%23mosaic-a%3Ahs.local"),
        (Method::GET, "/_matrix/app/v1/ping"),
        (Method::POST, "/_matrix/app/v1/thirdparty/protocol/irc"),
        (Method::POST, "/health"),
    ] {
        let what = format!("{method} {path}");
        hs(&d, method, path, Some(&json!({}))).expect_error(405, "M_UNRECOGNIZED", &what);
    }
}

/// `GET /users/{agent}` registers the agent (`m.login.application_service`,
/// `inhibit_login: true`, as_token) and answers 200 `{}`; the user exists afterwards and
/// is not registered twice. Users outside the namespace → 404 `M_NOT_FOUND`.
#[test]
fn user_query_registers_agents_and_refuses_others() {
    let d = spawn_app("as-users");
    let r = hs(
        &d,
        Method::GET,
        "/_matrix/app/v1/users/%40agent-qa%3Ahs.local",
        None,
    );
    assert_eq!(
        (r.status, r.json()),
        (StatusCode::OK, json!({})),
        "{}",
        r.text
    );
    let regs: Vec<_> = d
        .mock
        .requests_to(Endpoint::Register)
        .into_iter()
        .filter(|r| r.body["username"] == "agent-qa")
        .collect();
    assert_eq!(regs.len(), 1, "register calls for agent-qa");
    let reg = &regs[0];
    assert_eq!(reg.body["type"], "m.login.application_service");
    assert_eq!(reg.body["inhibit_login"], true);
    assert_eq!(
        reg.authorization.as_deref(),
        Some(format!("Bearer {}", d.as_token()).as_str())
    );
    assert!(reg.user_id().is_none(), "register must not masquerade");
    assert!(d.mock.registered().contains("@agent-qa:hs.local"));

    // The user exists afterwards: the agent is known and registered.
    let state = bridge(&d, Method::GET, "/bridge/v1/agents/qa", None);
    assert_eq!(state.status, StatusCode::OK, "{}", state.text);
    assert_eq!(state.json()["registered"], true);
    assert_eq!(state.json()["user_id"], "@agent-qa:hs.local");
    // Asked again: 200, no second registration.
    let r = hs(
        &d,
        Method::GET,
        "/_matrix/app/v1/users/@agent-qa:hs.local",
        None,
    );
    assert_eq!(r.status, StatusCode::OK);
    let again = d
        .mock
        .requests_to(Endpoint::Register)
        .iter()
        .filter(|r| r.body["username"] == "agent-qa")
        .count();
    assert_eq!(again, 1, "registered twice");

    for user in [
        "%40alice%3Ahs.local",
        "%40agent-qa%3Aother.example",
        "%40agent-%3Ahs.local",
        "%40agent-Bad%3Ahs.local",
        "%40agent-_x%3Ahs.local",
        "not-a-user-id",
    ] {
        hs(
            &d,
            Method::GET,
            &format!("/_matrix/app/v1/users/{user}"),
            None,
        )
        .expect_error(404, "M_NOT_FOUND", user);
    }
    let registered_others = d
        .mock
        .requests_to(Endpoint::Register)
        .iter()
        .filter(|r| r.body["username"] != "agent-qa")
        .count();
    assert_eq!(registered_others, 0, "non-namespace users were registered");
}

/// Room alias queries → 404 `M_NOT_FOUND` (rooms are only made by provisioning); ping →
/// 200 `{}`; third-party lookups → 404 `M_NOT_FOUND`.
#[test]
fn alias_query_ping_and_thirdparty() {
    let d = spawn_app("as-misc");
    for alias in ["%23mosaic-ops%3Ahs.local", "%23other%3Ahs.local"] {
        hs(
            &d,
            Method::GET,
            &format!("/_matrix/app/v1/rooms/{alias}"),
            None,
        )
        .expect_error(404, "M_NOT_FOUND", alias);
    }
    assert_eq!(d.mock.count(Endpoint::CreateRoom), 0);
    let r = hs(
        &d,
        Method::POST,
        "/_matrix/app/v1/ping",
        Some(&json!({ "transaction_id": "t" })),
    );
    assert_eq!((r.status, r.json()), (StatusCode::OK, json!({})));
    for path in [
        "/_matrix/app/v1/thirdparty/protocol/irc",
        "/_matrix/app/v1/thirdparty/user/irc?nick=x",
        "/_matrix/app/v1/thirdparty/location/irc",
        "/_matrix/app/v1/thirdparty/user?userid=%40a%3Ahs.local",
        "/_matrix/app/v1/thirdparty/location?alias=%23a%3Ahs.local",
    ] {
        hs(&d, Method::GET, path, None).expect_error(404, "M_NOT_FOUND", path);
    }
    // The start-up ping reached the mock with the appservice id and the as_token.
    let pings = d.mock.requests_to(Endpoint::Ping);
    assert!(!pings.is_empty());
    assert_eq!(pings[0].segments[4], "mosaic-as");
    assert_eq!(
        pings[0].authorization.as_deref(),
        Some(format!("Bearer {}", d.as_token()).as_str())
    );
}
