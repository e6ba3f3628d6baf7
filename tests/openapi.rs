//! The bridge API's OpenAPI document, served without a token, and schemathesis (from PyPI,
//! installed into `target/schemathesis-venv` by `scripts/install-schemathesis.sh`) driving
//! every bridge route with requests generated from it: valid, boundary and invalid input,
//! against the daemon over the scripted mock homeserver (which accepts every call, so an
//! answer of 5xx can only be the daemon's own fault).

pub mod support;

use std::{collections::BTreeMap, process::Command};

use reqwest::StatusCode;
use serde_json::Value;
use support::{app::spawn_app, daemon_api::DaemonApi, process::target_dir};

#[test]
fn the_document_needs_no_token_and_names_every_bridge_route() {
    let app = spawn_app("openapi-doc");
    let (status, text) = app.get("/bridge/v1/openapi.json");
    assert_eq!(status, StatusCode::OK, "{}", text);
    let doc: Value = serde_json::from_str(&text).expect("JSON");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().expect("paths");
    for route in mosaic_as::api::ROUTES
        .iter()
        .filter(|r| r.scope == mosaic_as::api::Scope::Bridge)
    {
        for handler in route.handlers {
            assert!(
                paths[route.pattern][handler.verb.as_str()].is_object(),
                "{} {} is not in the document",
                handler.verb.as_str(),
                route.pattern
            );
        }
    }
}

#[test]
fn generated_requests_to_every_bridge_route_get_no_server_error() {
    let installer = support::process::repo_root().join("scripts/install-schemathesis.sh");
    let venv = target_dir().join("schemathesis-venv");
    let status = Command::new("bash")
        .arg(&installer)
        .env("SCHEMATHESIS_VENV", &venv)
        .status()
        .expect("run the schemathesis installer");
    assert!(status.success(), "scripts/install-schemathesis.sh failed");

    let app = spawn_app("openapi-fuzz");
    let scratch = support::process::ScratchDir::new("openapi-fuzz-report");
    let har = scratch.path().join("requests.har");
    let url = format!("{}/bridge/v1/openapi.json", app.base_url());
    let config = support::process::repo_root().join("tests/fixtures/schemathesis.toml");
    // From a scratch directory, so that whatever it keeps stays out of the repository.
    let out = Command::new(venv.join("bin/schemathesis"))
        .current_dir(scratch.path())
        .env("BRIDGE_TOKEN", app.bridge_token())
        .arg("--config-file")
        .arg(&config)
        .args(["run", &url, "--report", "har", "--report-har-path"])
        .arg(&har)
        .output()
        .expect("run schemathesis");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{report}"
    );

    // What was sent, from the recording: every bridge operation many times, no answer 5xx.
    let har: Value = serde_json::from_slice(&std::fs::read(&har).expect("the HAR report"))
        .expect("the HAR report is JSON");
    let mut per_operation: BTreeMap<(String, &str), usize> = BTreeMap::new();
    let mut per_status: BTreeMap<u64, usize> = BTreeMap::new();
    for entry in har["log"]["entries"].as_array().expect("HAR entries") {
        let method = entry["request"]["method"].as_str().unwrap().to_owned();
        let url = reqwest::Url::parse(entry["request"]["url"].as_str().unwrap()).unwrap();
        let status = entry["response"]["status"].as_u64().unwrap();
        *per_status.entry(status).or_default() += 1;
        assert!(status < 500, "{method} {url} answered {status}");
        let route = mosaic_as::api::context::route_label(url.path());
        *per_operation.entry((method, route)).or_default() += 1;
    }
    println!("schemathesis: requests by status {per_status:?}");
    println!("schemathesis: requests by operation {per_operation:?}");
    for route in mosaic_as::api::ROUTES
        .iter()
        .filter(|r| r.scope == mosaic_as::api::Scope::Bridge)
    {
        for handler in route.handlers {
            let op = (handler.verb.as_http().to_owned(), route.pattern);
            let sent = per_operation.get(&op).copied().unwrap_or(0);
            // An operation with a small input space (a path parameter and no body, as
            // DELETE /agents/{agent}) gets fewer distinct examples: 19 to 30 were seen.
            assert!(sent >= 10, "{op:?}: only {sent} generated requests");
        }
    }
}
