//! Synapse + mosaic-as wired together.
//!
//! Start order: pick the daemon's port and write its config, ask the binary for
//! the registration (`mosaic-as registration`), start Synapse with it, start the
//! daemon. [`Stack::shared`] is one stack per test binary, started on first use
//! and reused (tests must then use unique agent slugs and user names, see
//! [`super::unique`]); its processes die with the test process. [`Stack::start`]
//! gives a test its own stack (for restarts), stopped and deleted on drop.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

use super::daemon::{Daemon, DaemonOptions};
use super::human::Human;
use super::process::{self, ScratchDir};
use super::synapse::Synapse;

/// Server name of every test homeserver.
pub const SERVER_NAME: &str = "hs.local";

/// A homeserver and a daemon registered with it. Fields drop in order: the
/// daemon, Synapse, then the scratch directory.
pub struct Stack {
    pub daemon: Daemon,
    pub synapse: Synapse,
    name: String,
    _dir: ScratchDir,
}

impl Stack {
    /// The stack shared by all tests of this test binary.
    pub fn shared() -> &'static Stack {
        static SHARED: OnceLock<Result<Stack, String>> = OnceLock::new();
        let result = SHARED.get_or_init(|| {
            let name = format!("shared-{}", test_binary_name());
            let started = std::panic::catch_unwind(|| Stack::start(&name)).map_err(|e| {
                e.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "panic while starting".into())
            });
            if started.is_ok() {
                install_panic_hook(&SHARED);
            }
            started
        });
        match result {
            Ok(stack) => stack,
            Err(e) => panic!("the shared test stack could not start (see the first failure): {e}"),
        }
    }

    /// A stack of its own, with default daemon options.
    pub fn start(name: &str) -> Stack {
        Stack::start_with(name, DaemonOptions::default())
    }

    /// A stack of its own; `options` tune the daemon's config and environment.
    pub fn start_with(name: &str, options: DaemonOptions) -> Stack {
        Stack::start_with_homeserver(name, options, |_| {})
    }

    /// [`Stack::start_with`], with `homeserver` changing Synapse's config before it starts.
    pub fn start_with_homeserver(
        name: &str,
        options: DaemonOptions,
        homeserver: impl FnOnce(&Synapse),
    ) -> Stack {
        let began = Instant::now();
        let dir = ScratchDir::new(name);
        let synapse_dir = dir.path().join("synapse");
        // The daemon's config names Synapse's URL: pick Synapse's port first.
        let daemon_dir = dir.path().join("daemon");
        let hs_port = super::ports::free_port();
        let hs_url = format!("http://127.0.0.1:{hs_port}");
        let daemon = Daemon::configure(&daemon_dir, name, &hs_url, SERVER_NAME, options);
        let registration = daemon.registration_yaml();
        let synapse =
            Synapse::configure_on(&synapse_dir, name, SERVER_NAME, &[&registration], hs_port);
        // From here on a panic drops `stack`, which keeps the logs.
        let mut stack = Stack {
            daemon,
            synapse,
            name: name.to_owned(),
            _dir: dir,
        };
        homeserver(&stack.synapse);
        stack.synapse.start_again();
        stack.daemon.start();
        stack.daemon.wait_ready(std::time::Duration::from_secs(30));
        eprintln!(
            "harness: stack {name} up in {:.1?} (Synapse {:.1?}) at {} / {}",
            began.elapsed(),
            stack.synapse.startup_time,
            stack.synapse.base_url(),
            stack.daemon.base_url()
        );
        stack
    }

    /// A new human with a unique localpart starting with `prefix`.
    pub fn human(&self, prefix: &str) -> Human {
        self.synapse.register_human(&super::unique(prefix))
    }

    /// `@agent-<slug>:hs.local`.
    pub fn agent_user(&self, slug: &str) -> String {
        self.daemon.agent_user(slug)
    }

    /// Every log and config file of the stack, as (file name, path).
    pub fn log_files(&self) -> Vec<(String, PathBuf)> {
        let mut files = self.synapse.log_files();
        files.extend(self.daemon.log_files());
        files
    }

    /// Copies the logs to `target/test-logs/<name>-<timestamp>/` now.
    pub fn keep_logs(&self) -> Option<PathBuf> {
        process::keep_failure_logs(&self.name, &self.log_files())
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.keep_logs();
        }
    }
}

/// The test binary's name without cargo's hash suffix.
fn test_binary_name() -> String {
    let exe = std::env::current_exe().ok();
    let stem = exe
        .as_ref()
        .and_then(|p| p.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tests".into());
    match stem.rsplit_once('-') {
        Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_owned(),
        _ => stem,
    }
}

/// The shared stack is never dropped, so a failing test keeps its logs from a
/// panic hook (after the default hook has printed the panic).
fn install_panic_hook(shared: &'static OnceLock<Result<Stack, String>>) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        previous(info);
        if let Some(Ok(stack)) = shared.get() {
            stack.keep_logs();
        }
    }));
}
