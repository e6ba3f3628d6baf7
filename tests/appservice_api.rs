//! The daemon's HTTP contract against a mock homeserver (issues 2 and 3): every route of
//! the homeserver-facing API with its auth rules and status codes, transaction
//! deduplication (also across a restart), body limits, the CLI (`check-config`,
//! `registration`, `gen-secrets`), bridge API auth and validation, room provisioning
//! and the invite-then-join fallback.

mod support;

use std::time::{Duration, Instant};

use regex::Regex;
use reqwest::blocking::Client;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::mock_hs::{ready_daemon, Endpoint, Fault, MockHs};
use support::{Daemon, DaemonOptions};

const SERVER: &str = "hs.local";

fn client() -> Client {
    support::http_client(Duration::from_secs(30))
}

/// An answer: status, headers, body text.
struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| {
            panic!(
                "answer {} is not JSON ({e}): {:?}",
                self.status,
                self.text.chars().take(300).collect::<String>()
            )
        })
    }

    /// Asserts status and errcode (and a JSON error body).
    fn expect_error(&self, status: u16, errcode: &str, what: &str) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "{what}: status (body {})",
            self.text
        );
        let body = self.json();
        assert_eq!(body["errcode"], errcode, "{what}: errcode in {body}");
        assert!(body["error"].is_string(), "{what}: error text in {body}");
    }
}

/// A request with an optional bearer token and raw body.
fn call(method: Method, url: &str, bearer: Option<&str>, body: Option<Vec<u8>>) -> Resp {
    let mut req = client().request(method.clone(), url);
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.header("content-type", "application/json").body(body);
    }
    let resp = req.send().unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    Resp {
        status: resp.status(),
        headers: resp.headers().clone(),
        text: resp.text().unwrap_or_default(),
    }
}

fn json_body(v: &Value) -> Option<Vec<u8>> {
    Some(v.to_string().into_bytes())
}

/// A homeserver-facing request with the hs_token in the header.
fn hs(d: &Daemon, method: Method, path: &str, body: Option<&Value>) -> Resp {
    let url = format!("{}{path}", d.base_url());
    call(method, &url, Some(d.hs_token()), body.and_then(json_body))
}

/// A bridge request with the bridge token.
fn bridge(d: &Daemon, method: Method, path: &str, body: Option<&Value>) -> Resp {
    let url = format!("{}{path}", d.base_url());
    call(
        method,
        &url,
        Some(d.bridge_token()),
        body.and_then(json_body),
    )
}

fn put_txn(d: &Daemon, txn: &str, events: Vec<Value>) -> Resp {
    hs(
        d,
        Method::PUT,
        &format!("/_matrix/app/v1/transactions/{txn}"),
        Some(&json!({ "events": events })),
    )
}

fn member_join(event_id: &str, room: &str, user: &str) -> Value {
    json!({
        "event_id": event_id, "room_id": room, "sender": user, "type": "m.room.member",
        "state_key": user, "origin_server_ts": 1_700_000_000_000u64,
        "content": { "membership": "join" },
    })
}

fn text_event(event_id: &str, room: &str, sender: &str, body: &str) -> Value {
    json!({
        "event_id": event_id, "room_id": room, "sender": sender, "type": "m.room.message",
        "origin_server_ts": 1_700_000_000_001u64,
        "content": { "msgtype": "m.text", "body": body },
    })
}

/// Event ids in an agent's inbox, oldest first.
fn inbox_ids(d: &Daemon, agent: &str) -> Vec<String> {
    let r = bridge(
        d,
        Method::GET,
        &format!("/bridge/v1/agents/{agent}/events?limit=100"),
        None,
    );
    assert_eq!(r.status, StatusCode::OK, "inbox of {agent}: {}", r.text);
    r.json()["events"]
        .as_array()
        .expect("events array")
        .iter()
        .map(|e| e["event_id"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// Makes the agent known (registered through the mock).
fn put_agent(d: &Daemon, agent: &str) {
    let r = bridge(
        d,
        Method::PUT,
        &format!("/bridge/v1/agents/{agent}"),
        Some(&json!({})),
    );
    assert_eq!(r.status, StatusCode::OK, "PUT agent {agent}: {}", r.text);
}

fn start(name: &str, options: DaemonOptions) -> (MockHs, Daemon) {
    let mock = MockHs::start(SERVER);
    let daemon = ready_daemon(&mock, name, options);
    (mock, daemon)
}

fn assert_no_secret_in_log(d: &Daemon) {
    let log = d.log_text();
    for (name, secret) in [
        ("hs_token", d.hs_token()),
        ("as_token", d.as_token()),
        ("bridge token", d.bridge_token()),
    ] {
        assert!(!log.contains(secret), "the {name} appears in daemon.log");
    }
}

// ---------------------------------------------------------------------------------------
// Homeserver-facing API
// ---------------------------------------------------------------------------------------

/// Every homeserver-facing route: no token → 401, wrong token (header or query) → 403,
/// header and query disagreeing → 403, query-only or header token → the route's answer.
/// The tokens never reach the log.
#[test]
fn hs_routes_enforce_token_rules() {
    let (mock, d) = start("as-auth", DaemonOptions::default());
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
    let (_mock, d) = start("as-paths", DaemonOptions::default());
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

/// A transaction (same id, same events) is handled once, also after a restart on the same
/// store and when the retry's `unsigned.age` differs; an event id already seen is not
/// delivered again under a new transaction id; the same id with other events is a new
/// transaction (homeservers reuse ids); the pipeline stays live after the restart.
#[test]
fn duplicate_transactions_are_processed_once_across_restart() {
    let (_mock, mut d) = start("as-dedupe", DaemonOptions::default());
    put_agent(&d, "x");
    let agent = d.agent_user("x");
    let room = "!dedupe:hs.local";
    let alice = "@alice:hs.local";
    let aged = |mut event: Value, age: u64| {
        event["unsigned"] = json!({ "age": age });
        event
    };
    let first = vec![
        member_join("$join-x", room, &agent),
        aged(text_event("$m1", room, alice, "hello x"), 10),
    ];
    let r = put_txn(&d, "t1", first.clone());
    assert_eq!((r.status, r.json()), (StatusCode::OK, json!({})), "t1");
    assert_eq!(inbox_ids(&d, "x"), ["$m1"]);

    // The homeserver's retry: same events, another age. 200 {} and nothing new.
    let retry = vec![
        aged(first[0].clone(), 5000),
        aged(text_event("$m1", room, alice, "hello x"), 5000),
    ];
    let r = put_txn(&d, "t1", retry.clone());
    assert_eq!(
        (r.status, r.json()),
        (StatusCode::OK, json!({})),
        "t1 again"
    );
    assert_eq!(inbox_ids(&d, "x"), ["$m1"], "t1 processed twice");

    // Same event id in a new transaction: not delivered twice.
    let r = put_txn(&d, "t2", vec![text_event("$m1", room, alice, "hello x")]);
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(inbox_ids(&d, "x"), ["$m1"], "$m1 delivered twice");

    d.restart();
    d.wait_ready(Duration::from_secs(20));
    let r = put_txn(&d, "t1", retry.clone());
    assert_eq!(
        (r.status, r.json()),
        (StatusCode::OK, json!({})),
        "t1 after restart"
    );
    let r = put_txn(&d, "t3", vec![text_event("$m1", room, alice, "hello x")]);
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        inbox_ids(&d, "x"),
        ["$m1"],
        "duplicate delivered after restart"
    );
    // Legacy route shares the same transaction log.
    let url = format!("{}/transactions/t1", d.base_url());
    let r = call(
        Method::PUT,
        &url,
        Some(d.hs_token()),
        json_body(&json!({ "events": retry })),
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // A new event after the restart is delivered (membership restored from the store).
    let r = put_txn(&d, "t4", vec![text_event("$m2", room, alice, "again")]);
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(inbox_ids(&d, "x"), ["$m1", "$m2"]);

    // The homeserver restarted its numbering: t1 with other events is a new transaction.
    let r = put_txn(
        &d,
        "t1",
        vec![text_event("$m3", room, alice, "after reuse")],
    );
    assert_eq!(
        (r.status, r.json()),
        (StatusCode::OK, json!({})),
        "t1 reused"
    );
    assert_eq!(inbox_ids(&d, "x"), ["$m1", "$m2", "$m3"]);
    let (_, metrics) = d.get("/metrics");
    assert!(
        metrics.contains("mosaic_as_transactions_total{outcome=\"id_reused\"} 1"),
        "{metrics}"
    );
}

/// A transaction replayed after later ones changes nothing: an old join does not bring
/// back an agent that has left since (memberships count only once recorded).
#[test]
fn replayed_old_transaction_does_not_undo_a_later_leave() {
    let (_mock, d) = start("as-replay", DaemonOptions::default());
    put_agent(&d, "x");
    let agent = d.agent_user("x");
    let room = "!replay:hs.local";
    let alice = "@alice:hs.local";
    let join = vec![member_join("$join-x", room, &agent)];
    assert_eq!(put_txn(&d, "r1", join.clone()).status, StatusCode::OK);
    let mut leave = member_join("$leave-x", room, &agent);
    leave["content"]["membership"] = json!("leave");
    assert_eq!(put_txn(&d, "r2", vec![leave]).status, StatusCode::OK);
    let r = put_txn(&d, "r1", join);
    assert_eq!((r.status, r.json()), (StatusCode::OK, json!({})), "replay");
    let r = put_txn(&d, "r3", vec![text_event("$after", room, alice, "x left")]);
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        inbox_ids(&d, "x").is_empty(),
        "the replayed join made x a recipient again"
    );
    // A join and a message in one transaction: the message reaches the agent.
    let r = put_txn(
        &d,
        "r4",
        vec![
            member_join("$rejoin-x", room, &agent),
            text_event("$back", room, alice, "welcome back"),
        ],
    );
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(inbox_ids(&d, "x"), ["$back"]);
}

/// Malformed JSON → 400 `M_NOT_JSON`; JSON of the wrong shape → 400 `M_BAD_JSON`; a body
/// over `limits.max_body_bytes` → 413 `M_TOO_LARGE` with a JSON body (homeserver and
/// bridge routes).
#[test]
fn malformed_and_oversized_bodies() {
    let options = DaemonOptions {
        limits_toml: "max_body_bytes = 2048".into(),
        ..Default::default()
    };
    let (_mock, d) = start("as-bodies", options);
    let url = format!("{}/_matrix/app/v1/transactions/bad-json", d.base_url());
    let r = call(
        Method::PUT,
        &url,
        Some(d.hs_token()),
        Some(b"{\"events\": [".to_vec()),
    );
    r.expect_error(400, "M_NOT_JSON", "truncated JSON");
    let r = call(
        Method::PUT,
        &url,
        Some(d.hs_token()),
        Some(b"nope".to_vec()),
    );
    r.expect_error(400, "M_NOT_JSON", "not JSON");
    let r = call(
        Method::PUT,
        &url,
        Some(d.hs_token()),
        json_body(&json!({ "events": 5 })),
    );
    r.expect_error(400, "M_BAD_JSON", "events not an array");
    assert!(r.json()["error"].as_str().unwrap().contains("events"));

    let big =
        json!({ "events": [text_event("$big", "!r:hs.local", "@a:hs.local", &"x".repeat(4000))] });
    let url = format!("{}/_matrix/app/v1/transactions/too-big", d.base_url());
    let r = call(Method::PUT, &url, Some(d.hs_token()), json_body(&big));
    r.expect_error(413, "M_TOO_LARGE", "transaction over the limit");
    assert!(r
        .headers
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap().contains("json")));
    // Not recorded: the same txn id with a small body is processed.
    let r = put_txn(&d, "too-big", vec![]);
    assert_eq!(r.status, StatusCode::OK);

    let url = format!("{}/bridge/v1/messages", d.base_url());
    let msg = json!({ "room_id": "!r:hs.local", "agent": "a", "body": "y".repeat(4000) });
    let r = call(Method::POST, &url, Some(d.bridge_token()), json_body(&msg));
    r.expect_error(413, "M_TOO_LARGE", "bridge body over the limit");
}

/// An event that cannot be parsed is skipped; the rest of the transaction is delivered.
#[test]
fn unparseable_event_is_skipped_and_the_rest_delivered() {
    let (_mock, d) = start("as-skip", DaemonOptions::default());
    put_agent(&d, "y");
    let room = "!skip:hs.local";
    let agent = d.agent_user("y");
    let events = vec![
        member_join("$join-y", room, &agent),
        json!({ "not": "an event" }),
        json!("a string"),
        json!({ "event_id": "no-dollar", "room_id": 5, "type": "m.room.message" }),
        text_event("$ok1", room, "@bob:hs.local", "first"),
        json!(null),
        text_event("$ok2", room, "@bob:hs.local", "second"),
    ];
    let r = put_txn(&d, "mixed", events);
    assert_eq!(
        (r.status, r.json()),
        (StatusCode::OK, json!({})),
        "{}",
        r.text
    );
    assert_eq!(inbox_ids(&d, "y"), ["$ok1", "$ok2"]);
}

/// `GET /users/{agent}` registers the agent (`m.login.application_service`,
/// `inhibit_login: true`, as_token) and answers 200 `{}`; the user exists afterwards and
/// is not registered twice. Users outside the namespace → 404 `M_NOT_FOUND`.
#[test]
fn user_query_registers_agents_and_refuses_others() {
    let (mock, d) = start("as-users", DaemonOptions::default());
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
    let regs: Vec<_> = mock
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
    assert!(mock.registered().contains("@agent-qa:hs.local"));

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
    let again = mock
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
    let registered_others = mock
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
    let (mock, d) = start("as-misc", DaemonOptions::default());
    for alias in ["%23mosaic-ops%3Ahs.local", "%23other%3Ahs.local"] {
        hs(
            &d,
            Method::GET,
            &format!("/_matrix/app/v1/rooms/{alias}"),
            None,
        )
        .expect_error(404, "M_NOT_FOUND", alias);
    }
    assert_eq!(mock.count(Endpoint::CreateRoom), 0);
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
    let pings = mock.requests_to(Endpoint::Ping);
    assert!(!pings.is_empty());
    assert_eq!(pings[0].segments[4], "mosaic-as");
    assert_eq!(
        pings[0].authorization.as_deref(),
        Some(format!("Bearer {}", d.as_token()).as_str())
    );
}

// ---------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------

/// A daemon config pointing nowhere (nothing is started).
fn offline(name: &str, options: DaemonOptions) -> Daemon {
    Daemon::standalone(name, "http://127.0.0.1:9", SERVER, options)
}

fn check_config(d: &Daemon, edit: impl FnOnce(&mut std::process::Command)) -> (i32, String) {
    let mut cmd = d.command(&["check-config", "--config"]);
    cmd.arg(d.config_path());
    edit(&mut cmd);
    let out = cmd.output().expect("run check-config");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Each missing secret variable is named on its own line; exit code 2; all at once are
/// all reported.
#[test]
fn check_config_names_each_missing_variable() {
    let d = offline("cli-missing", DaemonOptions::default());
    let vars = ["MOSAIC_AS_TOKEN", "MOSAIC_HS_TOKEN", "MOSAIC_BRIDGE_TOKENS"];
    for var in vars {
        let (code, text) = check_config(&d, |c| {
            c.env_remove(var);
        });
        assert_eq!(code, 2, "{var} missing: {text}");
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(var)).collect();
        assert_eq!(lines.len(), 1, "{var} named once: {text}");
        for other in vars.iter().filter(|v| **v != var) {
            assert!(!text.contains(other), "{other} wrongly reported: {text}");
        }
    }
    let (code, text) = check_config(&d, |c| {
        for v in vars {
            c.env_remove(v);
        }
    });
    assert_eq!(code, 2);
    for var in vars {
        assert!(text.lines().any(|l| l.contains(var)), "{var}: {text}");
    }
    assert!(text.lines().count() >= 3, "one line per problem: {text}");
}

/// Tokens shorter than 32 characters are refused (and not printed); 32 is enough.
#[test]
fn check_config_refuses_short_tokens() {
    let d = offline("cli-short", DaemonOptions::default());
    let short = "s".repeat(31);
    for var in ["MOSAIC_AS_TOKEN", "MOSAIC_HS_TOKEN", "MOSAIC_BRIDGE_TOKENS"] {
        let (code, text) = check_config(&d, |c| {
            c.env(var, &short);
        });
        assert_eq!(code, 2, "{var}: {text}");
        assert!(
            text.lines().any(|l| l.contains(var) && l.contains("32")),
            "{var}: {text}"
        );
        assert!(
            !text.contains(&short),
            "the short token was printed: {text}"
        );
    }
    // A second, short bridge token in the list is refused too.
    let list = format!("{},{short}", d.bridge_token());
    let (code, text) = check_config(&d, |c| {
        c.env("MOSAIC_BRIDGE_TOKENS", &list);
    });
    assert_eq!(code, 2, "{text}");
    assert!(!text.contains(d.bridge_token()));
    let ok = "k".repeat(32);
    let (code, text) = check_config(&d, |c| {
        c.env("MOSAIC_BRIDGE_TOKENS", &ok);
    });
    assert_eq!(code, 0, "a 32-character token is enough: {text}");
}

/// Unknown TOML keys are refused and named, with every other problem in the same run.
#[test]
fn check_config_refuses_unknown_keys() {
    let d = offline(
        "cli-unknown",
        DaemonOptions {
            limits_toml: "bogus_limit = 3".into(),
            ..Default::default()
        },
    );
    let (code, text) = check_config(&d, |_| {});
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("bogus_limit"), "{text}");
    let (code, text) = check_config(&d, |c| {
        c.env_remove("MOSAIC_HS_TOKEN");
    });
    assert_eq!(code, 2);
    assert!(
        text.contains("bogus_limit") && text.contains("MOSAIC_HS_TOKEN"),
        "{text}"
    );
    let d = offline(
        "cli-unknown-table",
        DaemonOptions {
            extra_toml: "[surprise]\nkey = 1\n".into(),
            ..Default::default()
        },
    );
    let (code, text) = check_config(&d, |_| {});
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("surprise"), "{text}");
}

/// A good config exits 0 without printing a secret.
#[test]
fn check_config_accepts_a_good_config() {
    let d = offline("cli-good", DaemonOptions::default());
    let (code, text) = check_config(&d, |_| {});
    assert_eq!(code, 0, "{text}");
    for secret in [d.as_token(), d.hs_token(), d.bridge_token()] {
        assert!(!text.contains(secret));
    }
    // `MOSAIC_BRIDGE_TOKENS=""` (bridge disabled) is a valid configuration.
    let (code, text) = check_config(&d, |c| {
        c.env("MOSAIC_BRIDGE_TOKENS", "");
    });
    assert_eq!(code, 0, "{text}");
}

/// `registration` prints the YAML a homeserver needs: id, url, both tokens, sender,
/// `rate_limited: false`, `receive_ephemeral`, exclusive user namespaces for the agents and
/// the sender, and the alias namespace; the regexes claim exactly what they should.
#[test]
fn registration_yaml_has_the_fields_and_namespaces() {
    let d = offline(
        "cli-registration",
        DaemonOptions {
            receive_ephemeral: true,
            ..Default::default()
        },
    );
    let out = d.run(&["registration"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let y: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("YAML");
    let s = |k: &str| {
        y[k].as_str()
            .unwrap_or_else(|| panic!("{k} in {text}"))
            .to_owned()
    };
    assert_eq!(s("id"), "mosaic-as");
    assert_eq!(s("url"), d.base_url());
    assert_eq!(s("as_token"), d.as_token());
    assert_eq!(s("hs_token"), d.hs_token());
    assert_eq!(s("sender_localpart"), "mosaic-as");
    assert_eq!(y["rate_limited"].as_bool(), Some(false));
    assert_eq!(y["receive_ephemeral"].as_bool(), Some(true));

    let ns = |kind: &str| -> Vec<(bool, Regex)> {
        y["namespaces"][kind]
            .as_sequence()
            .unwrap_or_else(|| panic!("namespaces.{kind} in {text}"))
            .iter()
            .map(|n| {
                let re = n["regex"].as_str().expect("regex");
                // Synapse matches from the start of the id (Python `re.match`).
                let anchored = format!("^(?:{re})");
                (
                    n["exclusive"].as_bool().expect("exclusive"),
                    Regex::new(&anchored).expect("valid regex"),
                )
            })
            .collect()
    };
    let users = ns("users");
    assert!(users.iter().all(|(exclusive, _)| *exclusive), "{text}");
    let claims = |list: &[(bool, Regex)], id: &str| list.iter().any(|(_, re)| re.is_match(id));
    for id in [
        "@agent-alpha:hs.local",
        "@agent-0_b-c:hs.local",
        "@mosaic-as:hs.local",
    ] {
        assert!(claims(&users, id), "{id} not claimed: {text}");
    }
    for id in [
        "@alice:hs.local",
        "@agent-alpha:other.example",
        "@agent-alpha:hs.local.evil.example",
        "@agent-alpha:hs.localhost",
        "@mosaic-as:hs.localhost",
        "@mosaic-asx:hs.local",
        "@xagent-alpha:hs.local",
    ] {
        assert!(!claims(&users, id), "{id} wrongly claimed: {text}");
    }
    let aliases = ns("aliases");
    assert!(aliases.iter().all(|(exclusive, _)| *exclusive), "{text}");
    assert!(claims(&aliases, "#mosaic-ops:hs.local"), "{text}");
    for alias in [
        "#ops:hs.local",
        "#mosaic-ops:other.example",
        "#mosaic-ops:hs.local.evil.example",
    ] {
        assert!(!claims(&aliases, alias), "{alias} wrongly claimed: {text}");
    }
}

/// `gen-secrets` prints the three variables with distinct values of at least 32
/// characters, different on every run.
#[test]
fn gen_secrets_prints_three_distinct_strong_values() {
    let run = || -> Vec<(String, String)> {
        let out = std::process::Command::new(Daemon::binary())
            .arg("gen-secrets")
            .output()
            .expect("run gen-secrets");
        assert!(out.status.success());
        String::from_utf8(out.stdout)
            .expect("UTF-8")
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (k, v) = l
                    .split_once('=')
                    .unwrap_or_else(|| panic!("not KEY=value: {l}"));
                (k.to_owned(), v.trim_matches('"').to_owned())
            })
            .collect()
    };
    let first = run();
    let names: Vec<&str> = first.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        ["MOSAIC_AS_TOKEN", "MOSAIC_HS_TOKEN", "MOSAIC_BRIDGE_TOKENS"]
    );
    for (k, v) in &first {
        assert!(v.len() >= 32, "{k} too short");
        assert!(
            v.chars().all(|c| c.is_ascii_graphic() && c != ','),
            "{k} has awkward characters"
        );
    }
    assert_ne!(first[0].1, first[1].1);
    assert_ne!(first[1].1, first[2].1);
    assert_ne!(first[0].1, first[2].1);
    let second = run();
    assert!(first.iter().zip(&second).all(|(a, b)| a.1 != b.1));
}

// ---------------------------------------------------------------------------------------
// Bridge API: auth, validation, routes
// ---------------------------------------------------------------------------------------

fn bridge_routes() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (
            Method::POST,
            "/bridge/v1/messages",
            Some(json!({ "room_id": "!r:hs.local", "agent": "a", "body": "hi" })),
        ),
        (
            Method::POST,
            "/bridge/v1/typing",
            Some(json!({ "room_id": "!r:hs.local", "agent": "a", "typing": true })),
        ),
        (
            Method::POST,
            "/bridge/v1/provision/rooms",
            Some(json!({ "name": "x" })),
        ),
        (Method::PUT, "/bridge/v1/agents/a", Some(json!({}))),
        (Method::GET, "/bridge/v1/agents/a", None),
        (Method::GET, "/bridge/v1/agents", None),
        (Method::GET, "/bridge/v1/agents/a/events", None),
        (Method::GET, "/bridge/v1/nope", None),
    ]
}

/// No token, a wrong token, the hs_token or a non-Bearer scheme → 403 on every bridge
/// route, before the body is looked at; nothing reaches the homeserver.
#[test]
fn bridge_refuses_missing_and_wrong_tokens() {
    let (mock, d) = start("bridge-auth", DaemonOptions::default());
    let before = mock.requests().len();
    let wrong = "z".repeat(64);
    for (method, path, body) in bridge_routes() {
        let url = format!("{}{path}", d.base_url());
        for (label, token) in [
            ("none", None),
            ("wrong", Some(wrong.as_str())),
            ("hs_token", Some(d.hs_token())),
        ] {
            let r = call(
                method.clone(),
                &url,
                token,
                body.as_ref().and_then(json_body),
            );
            r.expect_error(403, "M_FORBIDDEN", &format!("{method} {path} ({label})"));
        }
        // Auth comes before parsing: garbage with no token is still 403.
        let r = call(method.clone(), &url, None, Some(b"{garbage".to_vec()));
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {path} garbage");
        let r = client()
            .request(method.clone(), &url)
            .basic_auth("u", Some(d.bridge_token()))
            .send()
            .expect("basic auth request");
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{method} {path} basic");
    }
    // The bridge token is not an hs_token either.
    let r = call(
        Method::POST,
        &format!("{}/_matrix/app/v1/ping", d.base_url()),
        Some(d.bridge_token()),
        json_body(&json!({})),
    );
    r.expect_error(403, "M_FORBIDDEN", "bridge token on the homeserver API");
    let reached = mock.requests()[before..]
        .iter()
        .filter(|r| r.endpoint != Endpoint::Ping)
        .count();
    assert_eq!(reached, 0, "refused calls reached the mock");
    // With the right token the same routes are served.
    let r = bridge(&d, Method::GET, "/bridge/v1/agents", None);
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_no_secret_in_log(&d);
}

/// `MOSAIC_BRIDGE_TOKENS=""` denies every bridge request; `/health` and the homeserver API
/// keep working.
#[test]
fn empty_bridge_token_list_denies_every_bridge_request() {
    let options = DaemonOptions {
        bridge_tokens_env: Some(String::new()),
        ..Default::default()
    };
    let (mock, d) = start("bridge-disabled", options);
    for (method, path, body) in bridge_routes() {
        let url = format!("{}{path}", d.base_url());
        for token in [None, Some(d.bridge_token()), Some("")] {
            let r = call(
                method.clone(),
                &url,
                token,
                body.as_ref().and_then(json_body),
            );
            r.expect_error(403, "M_FORBIDDEN", &format!("{method} {path} (disabled)"));
        }
    }
    assert_eq!(d.get("/health").0, StatusCode::OK);
    assert_eq!(d.get("/ready").0, StatusCode::OK);
    let r = hs(&d, Method::POST, "/_matrix/app/v1/ping", Some(&json!({})));
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        mock.count(Endpoint::Send) + mock.count(Endpoint::CreateRoom),
        0
    );
}

/// Every validation failure → 400 with an errcode and an error naming the field; nothing
/// reaches the homeserver.
#[test]
fn bridge_validation_names_the_field() {
    let (mock, d) = start("bridge-validation", DaemonOptions::default());
    let before = mock.requests().len();
    let msg = |extra: Value| {
        let mut m = json!({ "room_id": "!r:hs.local", "agent": "a", "body": "hi" });
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                m.as_object_mut().unwrap().remove(k);
            } else {
                m[k] = v.clone();
            }
        }
        m
    };
    let invites: Vec<String> = (0..51).map(|i| format!("@u{i}:hs.local")).collect();
    let fifty: Vec<String> = (0..50).map(|i| format!("@u{i}:hs.local")).collect();
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "/bridge/v1/messages",
            msg(json!({ "agent": "Bad Slug" })),
            "agent",
        ),
        (
            "/bridge/v1/messages",
            msg(json!({ "agent": "-lead" })),
            "agent",
        ),
        (
            "/bridge/v1/messages",
            msg(json!({ "agent": "a".repeat(65) })),
            "agent",
        ),
        ("/bridge/v1/messages", msg(json!({ "agent": "" })), "agent"),
        (
            "/bridge/v1/messages",
            msg(json!({ "room_id": "r:hs.local" })),
            "room_id",
        ),
        (
            "/bridge/v1/messages",
            msg(json!({ "room_id": "#a:hs.local" })),
            "room_id",
        ),
        (
            "/bridge/v1/messages",
            msg(json!({ "room_id": "" })),
            "room_id",
        ),
        ("/bridge/v1/messages", msg(json!({ "body": "" })), "body"),
        (
            "/bridge/v1/messages",
            msg(json!({ "body": "x".repeat(64 * 1024 + 1) })),
            "body",
        ),
        ("/bridge/v1/messages", msg(json!({ "body": null })), "body"),
        (
            "/bridge/v1/messages",
            msg(json!({ "msgtype": "m.image" })),
            "msgtype",
        ),
        (
            "/bridge/v1/messages",
            msg(json!({ "format": "html" })),
            "format",
        ),
        (
            "/bridge/v1/messages",
            msg(json!({ "colour": "red" })),
            "colour",
        ),
        (
            "/bridge/v1/messages",
            msg(json!({ "mentions": ["bob"] })),
            "mentions",
        ),
        (
            "/bridge/v1/messages",
            msg(json!({ "reply_to": "nope" })),
            "reply_to",
        ),
        (
            "/bridge/v1/messages",
            msg(json!({ "thread_root": 5 })),
            "thread_root",
        ),
        (
            "/bridge/v1/messages",
            msg(json!({ "txn_id": "" })),
            "txn_id",
        ),
        (
            "/bridge/v1/typing",
            json!({ "room_id": "!r:hs.local", "agent": "a", "typing": "yes" }),
            "typing",
        ),
        (
            "/bridge/v1/typing",
            json!({ "room_id": "nope", "agent": "a", "typing": true }),
            "room_id",
        ),
        (
            "/bridge/v1/typing",
            json!({ "room_id": "!r:hs.local", "agent": "A", "typing": true }),
            "agent",
        ),
        (
            "/bridge/v1/typing",
            json!({ "room_id": "!r:hs.local", "agent": "a", "typing": true, "extra": 1 }),
            "extra",
        ),
        ("/bridge/v1/provision/rooms", json!({ "name": "" }), "name"),
        (
            "/bridge/v1/provision/rooms",
            json!({ "name": "   " }),
            "name",
        ),
        (
            "/bridge/v1/provision/rooms",
            json!({ "topic": "t" }),
            "name",
        ),
        (
            "/bridge/v1/provision/rooms",
            json!({ "name": "x", "alias": "BAD ALIAS" }),
            "alias",
        ),
        (
            "/bridge/v1/provision/rooms",
            json!({ "name": "x", "alias": "a".repeat(201) }),
            "alias",
        ),
        (
            "/bridge/v1/provision/rooms",
            json!({ "name": "x", "invite": invites }),
            "invite",
        ),
        (
            "/bridge/v1/provision/rooms",
            json!({ "name": "x", "invite": ["bob"] }),
            "invite",
        ),
        (
            "/bridge/v1/provision/rooms",
            json!({ "name": "x", "space_id": "space" }),
            "space_id",
        ),
        (
            "/bridge/v1/provision/rooms",
            json!({ "name": "x", "agents": ["Bad"] }),
            "agents",
        ),
        (
            "/bridge/v1/provision/rooms",
            json!({ "name": "x", "preset": "public_chat" }),
            "preset",
        ),
    ];
    for (path, body, field) in cases {
        let r = bridge(&d, Method::POST, path, Some(&body));
        let what = format!("POST {path} {}", truncate(&body));
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.text);
        let j = r.json();
        assert!(
            matches!(
                j["errcode"].as_str(),
                Some("M_BAD_JSON" | "M_INVALID_PARAM")
            ),
            "{what}: {j}"
        );
        assert!(
            j["error"].as_str().unwrap_or("").contains(field),
            "{what}: error does not name {field}: {j}"
        );
    }
    // Not JSON at all.
    let url = format!("{}/bridge/v1/messages", d.base_url());
    call(
        Method::POST,
        &url,
        Some(d.bridge_token()),
        Some(b"{nope".to_vec()),
    )
    .expect_error(400, "M_NOT_JSON", "bridge not JSON");
    // Path and query parameters.
    for (method, path, body, field) in [
        (
            Method::PUT,
            "/bridge/v1/agents/Bad_Slug",
            Some(json!({})),
            "agent",
        ),
        (Method::GET, "/bridge/v1/agents/-x", None, "agent"),
        (
            Method::PUT,
            "/bridge/v1/agents/ok",
            Some(json!({ "display_name": "" })),
            "display_name",
        ),
        (
            Method::PUT,
            "/bridge/v1/agents/ok",
            Some(json!({ "avatar_url": "http://x/y.png" })),
            "avatar_url",
        ),
        (
            Method::PUT,
            "/bridge/v1/agents/ok",
            Some(json!({ "nick": "x" })),
            "nick",
        ),
        (
            Method::GET,
            "/bridge/v1/agents/ok/events?since=abc",
            None,
            "since",
        ),
        (
            Method::GET,
            "/bridge/v1/agents/ok/events?limit=0",
            None,
            "limit",
        ),
    ] {
        let r = bridge(&d, method.clone(), path, body.as_ref());
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{method} {path}: {}",
            r.text
        );
        assert!(
            r.json()["error"].as_str().unwrap_or("").contains(field),
            "{method} {path}: {}",
            r.text
        );
    }
    let reached: Vec<_> = mock.requests()[before..]
        .iter()
        .filter(|r| r.endpoint != Endpoint::Ping)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        reached.is_empty(),
        "invalid requests reached the homeserver: {reached:?}"
    );
    // 50 invites is the limit, not an error.
    let r = bridge(
        &d,
        Method::POST,
        "/bridge/v1/provision/rooms",
        Some(&json!({ "name": "fifty", "invite": fifty })),
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

fn truncate(v: &Value) -> String {
    v.to_string().chars().take(120).collect()
}

/// Wrong method on a bridge route → 405; unknown bridge path → 404 (JSON errors).
#[test]
fn bridge_wrong_method_405_unknown_path_404() {
    let (_mock, d) = start("bridge-paths", DaemonOptions::default());
    for (method, path) in [
        (Method::GET, "/bridge/v1/messages"),
        (Method::PUT, "/bridge/v1/messages"),
        (Method::GET, "/bridge/v1/typing"),
        (Method::GET, "/bridge/v1/provision/rooms"),
        (Method::POST, "/bridge/v1/agents"),
        (Method::DELETE, "/bridge/v1/agents/a"),
        (Method::POST, "/bridge/v1/agents/a/events"),
    ] {
        let what = format!("{method} {path}");
        bridge(&d, method, path, Some(&json!({}))).expect_error(405, "M_UNRECOGNIZED", &what);
    }
    for (method, path) in [
        (Method::GET, "/bridge/v1/nope"),
        (Method::POST, "/bridge/v1/message"),
        (Method::POST, "/bridge/v2/messages"),
        (Method::GET, "/bridge/v1/agents/a/b/c"),
    ] {
        let what = format!("{method} {path}");
        bridge(&d, method, path, None).expect_error(404, "M_UNRECOGNIZED", &what);
    }
}

// ---------------------------------------------------------------------------------------
// Provisioning and the send path against the mock
// ---------------------------------------------------------------------------------------

fn provision(d: &Daemon, body: Value) -> Resp {
    bridge(d, Method::POST, "/bridge/v1/provision/rooms", Some(&body))
}

/// Room version 12: created as the AS sender (`?user_id=`), preset `private_chat`, alias
/// as `room_alias_name` (prefix added once), topic, invites (agents too), no power-level
/// override; the requested agents join; the space is linked both ways `via` the server.
#[test]
fn provision_v12_as_sender_with_alias_agents_and_space() {
    let (mock, d) = start("prov-v12", DaemonOptions::default());
    let space = "!space:hs.local";
    let r = provision(
        &d,
        json!({
            "name": "Ops", "alias": "ops", "topic": "Operations",
            "invite": ["@alice:hs.local"], "space_id": space, "agents": ["p1"],
        }),
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let body = r.json();
    let room = body["room_id"].as_str().expect("room_id").to_owned();
    assert!(room.starts_with('!'));
    assert_eq!(body["space_linked"], true, "{body}");
    assert_eq!(body["alias"], "#mosaic-ops:hs.local");
    assert!(body.get("space_error").is_none(), "{body}");

    let sender = d.sender_user();
    let caps = mock.requests_to(Endpoint::Capabilities);
    assert_eq!(caps.len(), 1);
    let creates = mock.requests_to(Endpoint::CreateRoom);
    assert_eq!(creates.len(), 1);
    let create = &creates[0];
    assert_eq!(
        create.user_id(),
        Some(sender.as_str()),
        "created as the sender"
    );
    let c = &create.body;
    assert_eq!(c["preset"], "private_chat");
    assert_eq!(c["name"], "Ops");
    assert_eq!(c["topic"], "Operations");
    assert_eq!(c["room_alias_name"], "mosaic-ops");
    assert!(
        c.get("power_level_content_override").is_none(),
        "room v12: the creator must not be listed: {c}"
    );
    let invited: Vec<&str> = c["invite"]
        .as_array()
        .expect("invite list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(invited.contains(&"@alice:hs.local"), "{c}");
    assert!(invited.contains(&"@agent-p1:hs.local"), "{c}");
    assert!(mock.registered().contains("@agent-p1:hs.local"));
    let joins = mock.requests_to(Endpoint::Join);
    assert!(
        joins
            .iter()
            .any(|j| j.user_id() == Some("@agent-p1:hs.local")
                && j.room.as_deref() == Some(room.as_str())),
        "agent p1 did not join"
    );

    let states = mock.requests_to(Endpoint::State);
    let child = states
        .iter()
        .find(|s| s.event_type.as_deref() == Some("m.space.child"))
        .expect("m.space.child sent");
    assert_eq!(child.room.as_deref(), Some(space));
    assert_eq!(child.state_key.as_deref(), Some(room.as_str()));
    assert_eq!(child.user_id(), Some(sender.as_str()));
    assert_eq!(child.body["via"], json!(["hs.local"]));
    let parent = states
        .iter()
        .find(|s| s.event_type.as_deref() == Some("m.space.parent"))
        .expect("m.space.parent sent");
    assert_eq!(parent.room.as_deref(), Some(room.as_str()));
    assert_eq!(parent.state_key.as_deref(), Some(space));
    assert_eq!(parent.user_id(), Some(sender.as_str()));
    assert_eq!(parent.body["via"], json!(["hs.local"]));

    // An alias that already carries the prefix is not prefixed twice.
    let r = provision(&d, json!({ "name": "Two", "alias": "mosaic-two" }));
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["alias"], "#mosaic-two:hs.local");
    assert_eq!(r.json()["space_linked"], false);
    let last = mock.requests_to(Endpoint::CreateRoom).pop().unwrap();
    assert_eq!(last.body["room_alias_name"], "mosaic-two");
}

/// Room version 11: the sender gets power level 100 through
/// `power_level_content_override`.
#[test]
fn provision_v11_gives_the_sender_power_100() {
    let mock = MockHs::start(SERVER);
    mock.set_room_version("11");
    let d = ready_daemon(&mock, "prov-v11", DaemonOptions::default());
    let r = provision(&d, json!({ "name": "Old" }));
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let create = mock
        .requests_to(Endpoint::CreateRoom)
        .pop()
        .expect("createRoom");
    assert_eq!(create.user_id(), Some(d.sender_user().as_str()));
    assert_eq!(create.body["preset"], "private_chat");
    let users = &create.body["power_level_content_override"]["users"];
    assert_eq!(users[d.sender_user().as_str()], 100, "{}", create.body);
    assert!(create.body.get("room_alias_name").is_none());
}

/// A failure while linking the space keeps the room: 200 with the room id,
/// `space_linked: false` and a `space_error` with the homeserver's 403.
#[test]
fn provision_space_link_failure_keeps_the_room() {
    let (mock, d) = start("prov-space-403", DaemonOptions::default());
    mock.script(Endpoint::State, [Fault::error(403, "M_FORBIDDEN")]);
    let r = provision(
        &d,
        json!({ "name": "Linked", "space_id": "!space:hs.local" }),
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let body = r.json();
    assert!(
        body["room_id"].as_str().is_some_and(|r| r.starts_with('!')),
        "{body}"
    );
    assert_eq!(body["space_linked"], false);
    let err = body["space_error"].as_str().expect("space_error");
    assert!(err.contains("403"), "{err}");
    assert_eq!(mock.count(Endpoint::CreateRoom), 1);
    assert_eq!(
        mock.requests_to(Endpoint::State)[0].event_type.as_deref(),
        Some("m.space.child")
    );
}

/// createRoom answering 400 `M_ROOM_IN_USE` → 409 `M_ROOM_IN_USE`, not retried.
#[test]
fn provision_alias_in_use_is_409() {
    let (mock, d) = start("prov-409", DaemonOptions::default());
    mock.script(Endpoint::CreateRoom, [Fault::error(400, "M_ROOM_IN_USE")]);
    let r = provision(&d, json!({ "name": "Taken", "alias": "taken" }));
    r.expect_error(409, "M_ROOM_IN_USE", "alias in use");
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("#mosaic-taken:hs.local"));
    assert_eq!(
        mock.count(Endpoint::CreateRoom),
        1,
        "a 400 must not be retried"
    );
}

/// createRoom failing with 500 on every attempt → retried, then 502 with the homeserver's
/// errcode and `homeserver_status: 500`.
#[test]
fn provision_create_room_500_is_502_after_retries() {
    let options = DaemonOptions {
        limits_toml: "hs_attempt_timeout_ms = 500\nhs_deadline_ms = 2000".into(),
        ..Default::default()
    };
    let (mock, d) = start("prov-500", options);
    mock.always(Endpoint::CreateRoom, Fault::error(500, "M_UNKNOWN"));
    let t = Instant::now();
    let r = provision(&d, json!({ "name": "Broken" }));
    let took = t.elapsed();
    r.expect_error(502, "M_UNKNOWN", "createRoom 500");
    assert_eq!(r.json()["homeserver_status"], 500, "{}", r.text);
    let attempts = mock.count(Endpoint::CreateRoom);
    assert!(attempts > 1, "createRoom 500 was not retried");
    assert!(took < Duration::from_secs(6), "deadline not kept: {took:?}");
    eprintln!("createRoom 500: {attempts} attempts, 502 after {took:?}");
}

/// A join refused with 403 (agent not invited) → the sender bot invites the agent, the
/// agent joins again, and the message is sent.
#[test]
fn send_falls_back_to_invite_then_join() {
    let (mock, d) = start("send-invite-join", DaemonOptions::default());
    mock.fail_joins(1);
    let room = "!fallback:hs.local";
    let r = bridge(
        &d,
        Method::POST,
        "/bridge/v1/messages",
        Some(&json!({ "room_id": room, "agent": "fb", "body": "hello" })),
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let event_id = r.json()["event_id"].as_str().expect("event_id").to_owned();
    let agent = d.agent_user("fb");
    let seq: Vec<_> = mock
        .requests()
        .into_iter()
        .filter(|r| {
            matches!(
                r.endpoint,
                Endpoint::Join | Endpoint::Invite | Endpoint::Send
            ) && r.room.as_deref() == Some(room)
        })
        .collect();
    let summary: Vec<String> = seq
        .iter()
        .map(|r| format!("{:?} as {:?} → {:?}", r.endpoint, r.user_id(), r.outcome))
        .collect();
    assert_eq!(seq.len(), 4, "{summary:#?}");
    assert_eq!(seq[0].endpoint, Endpoint::Join);
    assert_eq!(seq[0].user_id(), Some(agent.as_str()));
    assert_eq!(seq[0].outcome, support::mock_hs::Outcome::Answered(403));
    assert_eq!(seq[1].endpoint, Endpoint::Invite, "{summary:#?}");
    assert_eq!(seq[1].user_id(), Some(d.sender_user().as_str()));
    assert_eq!(seq[1].body["user_id"], agent.as_str());
    assert_eq!(seq[2].endpoint, Endpoint::Join);
    assert_eq!(seq[2].user_id(), Some(agent.as_str()));
    assert_eq!(seq[2].outcome, support::mock_hs::Outcome::Answered(200));
    assert_eq!(seq[3].endpoint, Endpoint::Send);
    assert_eq!(seq[3].user_id(), Some(agent.as_str()));
    let messages = mock.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].event_id, event_id);
    assert_eq!(messages[0].content["body"], "hello");
    assert_eq!(messages[0].sender, agent);

    // When the bot cannot invite either, the join's 403 is passed on and nothing is sent.
    mock.fail_joins(1);
    mock.script(Endpoint::Invite, [Fault::error(403, "M_FORBIDDEN")]);
    let r = bridge(
        &d,
        Method::POST,
        "/bridge/v1/messages",
        Some(&json!({ "room_id": "!closed:hs.local", "agent": "fb", "body": "no" })),
    );
    r.expect_error(502, "M_FORBIDDEN", "join and invite refused");
    assert_eq!(r.json()["homeserver_status"], 403);
    assert_eq!(mock.messages().len(), 1);
}
