//! The operator console in a real browser: a real stack (Synapse and the daemon), a human
//! in a room with an agent, a read token and a token to revoke; then
//! `node --test tests/browser/console.test.mjs` drives headless Chromium through the
//! console (sign in, find the agent, watch a message arrive, see an error, revoke a
//! token, what a read token sees). Needs Debian's Chromium (`scripts/install-test-tools.sh`)
//! and the browser test's npm packages (`npm ci` in `tests/browser`, which
//! `scripts/install-node-deps.sh` runs). On failure the page's screenshot and HTML are under
//! `target/console-screenshots/`.

pub mod support;

use std::{path::Path, process::Command};

use serde_json::json;
use support::{
    process::{repo_root, target_dir},
    stack_api::WAIT,
    tokens::issue_for,
    unique, Stack,
};

/// Where the browser test expects Chromium, unless `CHROMIUM` names another.
const CHROMIUM: &str = "/usr/bin/chromium";

/// What the browser test needs, or a message saying how to install it.
fn browser_prerequisites(browser_dir: &Path) -> Result<(), String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| CHROMIUM.into());
    let mut missing = Vec::new();
    if !Path::new(&chromium).exists() {
        missing.push(format!(
            "Chromium is not at {chromium}: run scripts/install-test-tools.sh (as root)"
        ));
    }
    if !browser_dir.join("node_modules/playwright-core").is_dir() {
        missing.push(format!(
            "{}/node_modules lacks playwright-core: run scripts/install-node-deps.sh \
             (or `npm ci` in tests/browser)",
            browser_dir.display()
        ));
    }
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        _ => missing.push("node is not on PATH (Node.js 20 or later)".into()),
    }
    match missing.is_empty() {
        true => Ok(()),
        false => Err(missing.join("\n")),
    }
}

#[test]
fn the_console_works_in_headless_chromium() {
    let browser_dir = repo_root().join("tests/browser");
    if let Err(missing) = browser_prerequisites(&browser_dir) {
        panic!("the console's browser test cannot run:\n{missing}");
    }
    let stack = Stack::start("console");
    let agent = unique("console");
    let decoy = unique("decoy");
    let (alice, room) = stack.room_with_agents(&[&agent], WAIT);
    let (status, answer) = stack.daemon.bridge(
        reqwest::Method::PUT,
        &format!("/bridge/v1/agents/{decoy}"),
        Some(&json!({})),
    );
    assert!(status.is_success(), "PUT agent {decoy}: {answer}");
    // A room the agent is not invited to: a send there is refused by the homeserver, and
    // the bridge answers 502 (the error the browser test watches for).
    let closed_room = alice.create_room(json!({"preset": "private_chat", "name": "Closed"}));
    let read = issue_for(&stack.daemon, &["read"], &["*"]);
    let doomed = issue_for(&stack.daemon, &["read"], &["*"]);

    let screenshots = target_dir().join("console-screenshots");
    let out = Command::new("node")
        .current_dir(&browser_dir)
        .args(["--test", "--test-reporter=spec", "console.test.mjs"])
        .env(
            "CONSOLE_URL",
            format!("{}/console", stack.daemon.base_url()),
        )
        .env("BRIDGE_URL", format!("{}/", stack.daemon.base_url()))
        .env("ADMIN_TOKEN", stack.daemon.bridge_token())
        .env("READ_TOKEN", &read.value)
        .env("REVOKE_TOKEN_ID", &doomed.id)
        .env("REVOKE_TOKEN", &doomed.value)
        .env("AGENT", &agent)
        .env("DECOY_AGENT", &decoy)
        .env("ROOM_ID", &room)
        .env("CLOSED_ROOM_ID", &closed_room)
        .env("HS_URL", stack.synapse.base_url())
        .env("HUMAN_TOKEN", &alice.access_token)
        .env("SCREENSHOT_DIR", &screenshots)
        .output()
        .expect("run node");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{report}");
    assert!(
        out.status.success(),
        "the browser test failed (screenshots and HTML under {}):\n{report}",
        screenshots.display()
    );
}
