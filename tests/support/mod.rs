//! Test harness that runs the real thing, driven through blocking HTTP helpers:
//! - `support::app::spawn_app("name")`: the daemon in the test process over the scripted
//!   mock homeserver; the handle has `bridge()`, `hs()`, `put_txn()`, `inbox()`, `send()`
//!   and the mock (`app.mock`). The first choice for a handler test:
//!   ```ignore
//!   let app = spawn_app("my-test");
//!   app.put_txn("t1", vec![text_event("$e", "!r:hs.local", "@h:hs.local", "hi")]);
//!   assert!(app.inbox("a").is_empty());
//!   ```
//! - `support::mock_hs::MockHs::with_daemon`: the `mosaic-as` binary as a process over the
//!   mock, for what needs a process (its log, restarts, process-wide metrics, signals).
//! - `support::Stack::shared()` (one per test binary) or `support::Stack::start("name")`:
//!   a real Synapse (installed into `target/synapse-venv` on first use) and the binary.
//!
//! Use it from an integration test with `pub mod support;`. Failed runs keep their logs
//! under `target/test-logs/<name>-<timestamp>/`.
//!
//! Every test binary compiles this whole module and uses a part of it. Declared `pub`,
//! it is the binary's public interface, so its public items count as used, as they would
//! in a library crate: the lint still reports private items nothing uses, and unused
//! imports.

pub mod app;
pub mod cli;
pub mod connect_proxy;
pub mod daemon;
pub mod daemon_api;
pub mod e2ee;
pub mod events;
pub mod faults;
pub mod http;
pub mod human;
pub mod inbox;
pub mod metrics;
pub mod mock_hs;
pub mod nio;
pub mod ports;
pub mod postgres;
pub mod process;
pub mod rr_proxy;
pub mod scenes;
pub mod stack;
pub mod stack_api;
pub mod synapse;
pub mod tcp_proxy;
pub mod tls_hs;
pub mod tokens;

use std::sync::atomic::{AtomicU32, Ordering};

pub use daemon::{Daemon, DaemonOptions};
pub use human::{wait_until, Human};
pub use ports::free_port;
pub use postgres::{PgDatabase, TestStore};
pub use stack::{Stack, SERVER_NAME};
pub use synapse::Synapse;

/// A blocking HTTP client for loopback tests: no proxy, the given overall timeout.
pub fn http_client(timeout: std::time::Duration) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .expect("build HTTP client")
}

/// Whether a JSON array holds the string `item` (false when `list` is not an array).
pub fn json_list_contains(list: &serde_json::Value, item: &str) -> bool {
    list.as_array()
        .is_some_and(|l| l.iter().any(|v| v.as_str() == Some(item)))
}

/// A name unique in this test process and unlikely to repeat across runs:
/// `<prefix>-<counter><4 random hex>`. Valid as a user localpart, agent slug
/// or alias name when `prefix` is (lowercase letters, digits, `-`, `_`).
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{n}{}", process::random_hex(2))
}

/// Writes a registration YAML for a daemon that is not running, for tests of
/// the homeserver alone: namespaces `@agent-.*` and `#mosaic-.*` on
/// `server_name`, sender `mosaic-as`, random tokens. Answers (path, as_token).
pub fn fixture_registration(
    dir: &std::path::Path,
    server_name: &str,
) -> (std::path::PathBuf, String) {
    let as_token = process::random_hex(32);
    let server = server_name.replace('.', "\\.");
    let hs_token = process::random_hex(32);
    let port = free_port();
    let yaml = [
        "id: mosaic-as".to_owned(),
        format!("url: 'http://127.0.0.1:{port}'"),
        format!("as_token: '{as_token}'"),
        format!("hs_token: '{hs_token}'"),
        "sender_localpart: mosaic-as".into(),
        "rate_limited: false".into(),
        "receive_ephemeral: false".into(),
        "namespaces:".into(),
        format!("  users: [{{exclusive: true, regex: '@agent-.*:{server}'}}]"),
        format!("  aliases: [{{exclusive: true, regex: '#mosaic-.*:{server}'}}]"),
        "  rooms: []".into(),
    ]
    .join("\n");
    std::fs::create_dir_all(dir).expect("create registration dir");
    let path = dir.join("fixture-registration.yaml");
    std::fs::write(&path, yaml).expect("write registration fixture");
    (path, as_token)
}
