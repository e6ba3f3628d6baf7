//! Bounded agent creation, against the in-process daemon and the mock homeserver: agents
//! come into being only through requests that may create them, and never beyond
//! `limits.max_agents` (403 `M_RESOURCE_LIMIT_EXCEEDED` on the bridge, 404 to the
//! homeserver's user query); typing off and reads create none.

pub mod support;

use reqwest::{Method, StatusCode};
use serde_json::json;
use support::app::spawn_app_with;
use support::tokens::{call_as, issue};
use support::DaemonOptions;

fn agents(app: &support::app::TestApp) -> Vec<String> {
    let r = app.bridge(Method::GET, "/bridge/v1/agents", None);
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json()["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .map(|a| a["agent"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn an_agent_flood_stops_at_max_agents() {
    let options = DaemonOptions {
        limits_toml: "max_agents = 3".into(),
        ..Default::default()
    };
    let app = spawn_app_with("agent-limit", options);
    for slug in ["a1", "a2", "a3"] {
        let r = app.bridge(
            Method::PUT,
            &format!("/bridge/v1/agents/{slug}"),
            Some(&json!({})),
        );
        assert_eq!(r.status, StatusCode::OK, "{slug}: {}", r.text);
    }
    // One more, by any road that creates: refused, and nothing is created.
    let r = app.bridge(Method::PUT, "/bridge/v1/agents/a4", Some(&json!({})));
    r.expect_error(403, "M_RESOURCE_LIMIT_EXCEEDED", "profile of a 4th agent");
    let r = app.send("!r:hs.local", "a5", "hello");
    r.expect_error(403, "M_RESOURCE_LIMIT_EXCEEDED", "send as a 5th agent");
    let r = app.hs(
        Method::GET,
        "/_matrix/app/v1/users/@agent-a6:hs.local",
        None,
    );
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "user query beyond the limit: {}",
        r.text
    );
    // Requests that change nothing never create one, below or at the limit.
    let r = app.bridge(
        Method::POST,
        "/bridge/v1/typing",
        Some(&json!({"room_id": "!r:hs.local", "agent": "a7", "typing": false})),
    );
    assert_eq!(
        (r.status, r.json()),
        (StatusCode::OK, json!({})),
        "typing off"
    );
    let r = app.bridge(Method::GET, "/bridge/v1/agents/a8/events", None);
    assert_eq!(r.status, StatusCode::NOT_FOUND, "inbox of an unknown agent");
    let r = app.bridge(Method::GET, "/bridge/v1/agents/a9", None);
    assert_eq!(r.status, StatusCode::NOT_FOUND, "state of an unknown agent");
    assert_eq!(agents(&app), ["a1", "a2", "a3"]);
    // Existing agents keep working at the limit.
    let r = app.bridge(
        Method::PUT,
        "/bridge/v1/agents/a1",
        Some(&json!({"display_name": "One"})),
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        app.mock.registered().len(),
        3,
        "registered at the homeserver: three"
    );
}

/// A flood of new agents from one issued token stops at its rate limit first (429 with
/// when to retry), and at `limits.max_agents` in the end.
#[test]
fn an_agent_flood_from_one_token_stops_at_its_rate_and_at_max_agents() {
    let options = DaemonOptions {
        limits_toml: "max_agents = 4".into(),
        ..Default::default()
    };
    let app = spawn_app_with("agent-limit-token", options);
    let token = issue(
        &app,
        json!({ "name": "flood", "scopes": ["profile"], "agents": ["*"], "rate_per_s": 2 }),
    );
    let put = |slug: &str| {
        call_as(
            &app,
            Some(&token.value),
            Method::PUT,
            &format!("/bridge/v1/agents/{slug}"),
            Some(&json!({})),
        )
    };
    let (mut created, mut limited) = (0, 0);
    for i in 0..6 {
        let r = put(&format!("f{i}"));
        match r.status {
            StatusCode::OK => created += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                r.expect_error(429, "M_LIMIT_EXCEEDED", "flood beyond the rate");
                limited += 1;
            }
            s => panic!("f{i}: {s} {}", r.text),
        }
    }
    assert_eq!(created, 2, "the burst is the token's rate");
    assert_eq!(limited, 4);
    // Paced under the rate, the flood goes on until the agent limit.
    let mut refused = None;
    for i in 10..20 {
        std::thread::sleep(std::time::Duration::from_millis(600));
        let r = put(&format!("f{i}"));
        if r.status == StatusCode::FORBIDDEN {
            refused = Some(r);
            break;
        }
        assert_eq!(r.status, StatusCode::OK, "f{i}: {}", r.text);
    }
    refused.expect("max_agents never reached").expect_error(
        403,
        "M_RESOURCE_LIMIT_EXCEEDED",
        "beyond max_agents",
    );
    assert_eq!(agents(&app).len(), 4);
}
