//! No holder keeps an agent's stream slots forever: an SSE stream lives at most
//! `limits.stream_max_s`, then ends (the client reconnects with its cursor), and its slot
//! is free again. Against the in-process daemon and the mock homeserver.

pub mod support;

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;
use support::app::spawn_app_with;
use support::daemon_api::DaemonApi;
use support::DaemonOptions;

#[test]
fn an_sse_stream_ends_after_its_maximum_life_and_frees_its_slot() {
    let options = DaemonOptions {
        limits_toml: "stream_max_s = 1\nstreams_per_agent = 1".into(),
        ..Default::default()
    };
    let app = spawn_app_with("stream-life", options);
    let r = app.bridge(Method::PUT, "/bridge/v1/agents/reader", Some(&json!({})));
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let url = format!("{}/bridge/v1/agents/reader/events", app.base_url());
    let started = Instant::now();
    let stream = support::http_client(Duration::from_secs(20))
        .get(&url)
        .bearer_auth(app.bridge_token())
        .header("Accept", "text/event-stream")
        .send()
        .expect("open the stream");
    assert_eq!(stream.status(), StatusCode::OK);
    let body = stream.text().expect("the stream ends by itself");
    let lived = started.elapsed();
    assert!(body.starts_with(": connected"), "{body:?}");
    assert!(
        lived >= Duration::from_millis(900) && lived < Duration::from_secs(10),
        "the stream lived {lived:?}"
    );
    // The one slot is free again.
    let r = app.bridge(Method::GET, "/bridge/v1/agents/reader/events", None);
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}
