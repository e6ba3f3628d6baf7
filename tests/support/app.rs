//! The daemon in the test process, over the scripted mock homeserver: [`spawn_app`] writes a
//! config with fresh secrets, runs `mosaic_as::app::serve` in an actix system of its own
//! (on its own thread), and answers once `/ready` is 200. No process, no binary: a handler
//! test costs one system start. Dropping the [`TestApp`] shuts the daemon down.
//!
//! What it cannot do (use a [`Daemon`] process then): read the daemon's log (tracing is
//! per process), restart it, or read metrics that other tests of the same binary move
//! (the registry is per process).

use std::time::Duration;

use mosaic_as::config::Config;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::{
    daemon_api::{self, DaemonApi},
    http::Resp,
    mock_hs::MockHs,
    process::ScratchDir,
    wait_until, Daemon, DaemonOptions, SERVER_NAME,
};

/// A daemon running in this process, and the mock homeserver it talks to.
pub struct TestApp {
    pub mock: MockHs,
    /// The configuration and secrets (the process itself is never started).
    daemon: Daemon,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<std::thread::JoinHandle<Result<(), String>>>,
    _dir: ScratchDir,
}

/// A daemon with the default options.
pub fn spawn_app(name: &str) -> TestApp {
    spawn_app_with(name, DaemonOptions::default())
}

/// A daemon with `options` (of `options.env`, only the `MOSAIC_*` secrets apply: there is
/// no process).
pub fn spawn_app_with(name: &str, options: DaemonOptions) -> TestApp {
    let mock = MockHs::start(SERVER_NAME);
    let dir = ScratchDir::new(name);
    let daemon = Daemon::configure(
        &dir.path().join("daemon"),
        name,
        &mock.url(),
        SERVER_NAME,
        options.clone(),
    );
    let secrets = daemon.secrets();
    let bridge_tokens = options
        .bridge_tokens_env
        .unwrap_or_else(|| secrets.bridge_token.clone());
    let mut env = vec![
        ("MOSAIC_AS_TOKEN".to_owned(), secrets.as_token.clone()),
        ("MOSAIC_HS_TOKEN".to_owned(), secrets.hs_token.clone()),
        ("MOSAIC_BRIDGE_TOKENS".to_owned(), bridge_tokens),
    ];
    env.extend(
        options
            .env
            .iter()
            .filter(|(k, _)| k.starts_with("MOSAIC_"))
            .cloned(),
    );
    let config = Config::load(daemon.config_path(), &env).expect("the test config loads");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::Builder::new()
        .name(format!("app-{name}"))
        .spawn(move || {
            actix_rt::System::new()
                .block_on(mosaic_as::app::serve(config, async {
                    let _ = stopped.await;
                }))
                .map_err(|e| e.to_string())
        })
        .expect("start the daemon's thread");
    let app = TestApp {
        mock,
        daemon,
        stop: Some(stop),
        server: Some(server),
        _dir: dir,
    };
    let client = super::http_client(Duration::from_secs(2));
    let ready = format!("{}/ready", app.daemon.base_url());
    wait_until(
        Duration::from_secs(20),
        "the in-process daemon is ready",
        || {
            let server = app.server.as_ref().expect("the daemon's thread");
            assert!(!server.is_finished(), "the in-process daemon stopped");
            let status = client.get(&ready).send().map(|r| r.status());
            (status.ok() == Some(StatusCode::OK)).then_some(())
        },
    );
    app
}

impl TestApp {
    /// A homeserver-facing request with the hs_token.
    pub fn hs(&self, method: Method, path: &str, body: Option<&Value>) -> Resp {
        daemon_api::hs(self, method, path, body)
    }

    /// A bridge request with the bridge token.
    pub fn bridge(&self, method: Method, path: &str, body: Option<&Value>) -> Resp {
        daemon_api::bridge(self, method, path, body)
    }

    /// `PUT /_matrix/app/v1/transactions/{txn}` with these events.
    pub fn put_txn(&self, txn: &str, events: Vec<Value>) -> Resp {
        daemon_api::put_txn(self, txn, events)
    }

    /// The agent's inbox from the start (up to 100 events), as the bridge answers it.
    pub fn inbox(&self, agent: &str) -> Vec<Value> {
        let r = self.bridge(
            Method::GET,
            &format!("/bridge/v1/agents/{agent}/events?limit=100"),
            None,
        );
        assert_eq!(r.status, StatusCode::OK, "inbox of {agent}: {}", r.text);
        r.json()["events"].as_array().expect("events").clone()
    }

    /// `POST /bridge/v1/messages`: `agent` says `body` in `room`.
    pub fn send(&self, room: &str, agent: &str, body: &str) -> Resp {
        self.bridge(
            Method::POST,
            "/bridge/v1/messages",
            Some(&json!({ "room_id": room, "agent": agent, "body": body })),
        )
    }

    /// Unauthenticated `GET` (health, readiness, metrics): status and body text.
    pub fn get(&self, path: &str) -> (StatusCode, String) {
        self.daemon.get(path)
    }
}

impl DaemonApi for TestApp {
    fn base_url(&self) -> &str {
        self.daemon.base_url()
    }
    fn hs_token(&self) -> &str {
        self.daemon.hs_token()
    }
    fn bridge_token(&self) -> &str {
        self.daemon.bridge_token()
    }
    fn as_token(&self) -> &str {
        self.daemon.as_token()
    }
    fn agent_user(&self, slug: &str) -> String {
        self.daemon.agent_user(slug)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            match server.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) if !std::thread::panicking() => panic!("the daemon failed: {e}"),
                _ => {}
            }
        }
    }
}
