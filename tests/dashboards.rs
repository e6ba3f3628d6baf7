//! The dashboards and alert rules in `deploy/`, and the metrics they read, checked by
//! Prometheus' own linter: `promtool check rules` on the alert rules, and `promtool check
//! metrics` (naming conventions: `_total` counters, base units, no type clashes) on what a
//! daemon that has carried real traffic through a real Synapse exports. (That every metric
//! the files read is exported is a unit test of `metrics`.)

pub mod support;

use std::{
    io::Write,
    path::Path,
    process::{Command, Stdio},
};

use reqwest::StatusCode;
use serde_json::json;
use support::{stack_api::room_with_human, Stack};

/// `promtool`, or a failure that says how to install it.
fn promtool() -> Command {
    let found = Command::new("promtool").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "promtool is not installed: run scripts/install-test-tools.sh (Debian's prometheus package)"
    );
    Command::new("promtool")
}

#[test]
fn alert_rules_pass_promtool() {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/alerts.yml");
    let out = promtool()
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("SUCCESS"), "{text}");
}

#[test]
fn exported_metrics_pass_promtool() {
    let stack = Stack::shared();
    // Traffic on every path: a provisioned room, an agent's send, a human's message.
    let agent = support::unique("metered");
    let (alice, room) = room_with_human(stack, &[&agent]);
    let (status, answer) = stack.daemon.bridge_post(
        "/bridge/v1/messages",
        &json!({"agent": agent, "room_id": room, "body": "counted"}),
    );
    assert_eq!(status, StatusCode::OK, "{answer}");
    alice.send_text(&room, "heard");
    support::wait_until(support::stack_api::WAIT, "a transaction counted", || {
        let text = stack.metrics();
        (support::metrics::metric(&text, "mosaic_as_transactions_total", &[]) > 0.0).then_some(())
    });

    let text = stack.metrics();
    for family in [
        "mosaic_as_build_info",
        "mosaic_as_last_transaction_timestamp_seconds",
        "mosaic_as_bridge_request_seconds_bucket",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    ] {
        assert!(
            text.contains(&format!("\n{family}")),
            "{family} missing:\n{text}"
        );
    }
    let mut child = promtool()
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
