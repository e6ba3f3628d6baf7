//! The TypeScript client (`clients/typescript`) against a running daemon: a real Synapse and
//! the binary, with a human user of the homeserver for the client's tests to talk to. Runs
//! `npm test` there (tsc, then node's test runner), which reads where everything is from
//! the environment, and passes when node's tests pass. The daemon ends event streams after
//! two seconds, so the tests see the client resume across them.

pub mod support;

use std::path::Path;
use std::process::Command;

use support::{process::repo_root, DaemonOptions, Stack};

/// `limits.stream_max_s` of the daemon (the node tests read it as MOSAIC_STREAM_MAX_S).
const STREAM_MAX_S: u64 = 2;

/// Panics with what to do when the client's npm dependencies are not installed.
fn require_node_modules(package: &Path) {
    let installed = package.join("node_modules/.installed-from-lock");
    assert!(
        installed.exists(),
        "{} has no dependencies installed (no {}): run scripts/install-node-deps.sh first",
        package.display(),
        installed.display()
    );
}

#[test]
fn the_typescript_client_passes_its_tests_against_a_running_daemon() {
    let package = repo_root().join("clients/typescript");
    require_node_modules(&package);
    let stack = Stack::start_with(
        "typescript-client",
        DaemonOptions {
            limits_toml: format!("stream_max_s = {STREAM_MAX_S}"),
            ..Default::default()
        },
    );
    let human = stack.human("ts-human");
    let out = Command::new("npm")
        .arg("test")
        .current_dir(&package)
        .env("MOSAIC_BRIDGE_URL", stack.daemon.base_url())
        .env("MOSAIC_BRIDGE_TOKEN", stack.daemon.bridge_token())
        .env("MOSAIC_HS_URL", stack.synapse.base_url())
        .env("MOSAIC_HUMAN_ID", &human.user_id)
        .env("MOSAIC_HUMAN_TOKEN", &human.access_token)
        .env("MOSAIC_STREAM_MAX_S", STREAM_MAX_S.to_string())
        .env("NO_COLOR", "1")
        .output()
        .expect("run npm (install Node.js 20 and npm)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("npm test (clients/typescript):\n{stdout}\n{stderr}");
    assert!(
        out.status.success(),
        "npm test failed ({}): see node's output above; the stack's logs are kept",
        out.status
    );
}
