//! The TypeScript client (`clients/typescript`) against a running daemon: a real Synapse and
//! the binary, with a human user of the homeserver for the client's tests to talk to. Runs
//! `npm test` there (tsc, then node's test runner), which reads where everything is from
//! the environment, and passes when node's tests pass. The daemon ends event streams after
//! two seconds, so the tests see the client resume across them. A run that outlasts
//! [`NPM_TEST_LIMIT`] is killed (npm and node, as one process group) and fails.

pub mod support;

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use support::{process::repo_root, process::ScratchDir, DaemonOptions, Stack};

/// `limits.stream_max_s` of the daemon (the node tests read it as MOSAIC_STREAM_MAX_S).
const STREAM_MAX_S: u64 = 2;
/// The longest `npm test` may take (build included; it takes about half a minute).
const NPM_TEST_LIMIT: Duration = Duration::from_secs(600);

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
    let scratch = ScratchDir::new("typescript-client-output");
    let output = scratch.path().join("npm-test.log");
    let mut npm = Command::new("npm");
    npm.arg("test")
        .current_dir(&package)
        .env("MOSAIC_BRIDGE_URL", stack.daemon.base_url())
        .env("MOSAIC_BRIDGE_TOKEN", stack.daemon.bridge_token())
        .env("MOSAIC_HS_URL", stack.synapse.base_url())
        .env("MOSAIC_HUMAN_ID", &human.user_id)
        .env("MOSAIC_HUMAN_TOKEN", &human.access_token)
        .env("MOSAIC_STREAM_MAX_S", STREAM_MAX_S.to_string())
        .env("NO_COLOR", "1");
    let status = run_bounded(npm, &output, NPM_TEST_LIMIT);
    let printed = std::fs::read_to_string(&output).unwrap_or_default();
    eprintln!("npm test (clients/typescript):\n{printed}");
    match status {
        Some(status) => assert!(
            status.success(),
            "npm test failed ({status}): see node's output above; the stack's logs are kept"
        ),
        None => panic!("npm test did not end within {NPM_TEST_LIMIT:?}: killed"),
    }
}

/// Runs `cmd` in a process group of its own with stdout and stderr into `output`; its exit
/// status, or None when it had not ended after `limit` (the whole group is then killed).
fn run_bounded(mut cmd: Command, output: &Path, limit: Duration) -> Option<ExitStatus> {
    let file = File::create(output).expect("create the output file");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("clone the output file"))
        .stderr(file)
        .process_group(0)
        .spawn()
        .expect("run npm (install Node.js 20 and npm)");
    let began = Instant::now();
    while began.elapsed() < limit {
        if let Some(status) = child.try_wait().expect("wait for npm") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let group = i32::try_from(child.id()).expect("a pid");
    // SAFETY: signals the process group this function started (negative pid: the group).
    unsafe { libc::kill(-group, libc::SIGKILL) };
    let _ = child.wait();
    None
}
