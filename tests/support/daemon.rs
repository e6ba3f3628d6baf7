//! The real `mosaic-as` binary, run as a separate process.
//!
//! [`Daemon::configure`] picks a port, generates fresh secrets and writes the TOML
//! config (the store [`DaemonOptions::store`] names: by default what `MOSAIC_TEST_STORE`
//! says, a SQLite file in the same directory or a PostgreSQL database of its own, see
//! [`super::postgres`]); [`Daemon::registration_yaml`]
//! asks the binary itself for the homeserver registration; [`Daemon::start`]
//! spawns `mosaic-as serve` with the secrets in its environment, stdout and stderr
//! appended to `daemon.log`, and waits for `GET /health`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use reqwest::blocking::Client;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::ports::free_port;
use super::postgres::{PgDatabase, TestStore};
use super::process::{self, random_hex, ScratchDir};
use super::synapse::http_client;

/// Longest wait for `GET /health` after a start.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Environment variables of the daemon that the harness controls: the daemon's own, where it
/// finds the system CA store, and its proxies (a test sets them in [`DaemonOptions::env`]).
const DAEMON_ENV: &[&str] = &[
    "MOSAIC_AS_TOKEN",
    "MOSAIC_HS_TOKEN",
    "MOSAIC_BRIDGE_TOKENS",
    "MOSAIC_AS_CONFIG",
    "MOSAIC_AS_LOG_FORMAT",
    "MOSAIC_STORE_PASSWORD",
    "MOSAIC_ADVERTISE_URL",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// Fresh random secrets for one daemon (64 hex characters each).
#[derive(Clone, Debug)]
pub struct Secrets {
    pub as_token: String,
    pub hs_token: String,
    pub bridge_token: String,
}

impl Secrets {
    pub fn generate() -> Secrets {
        Secrets {
            as_token: random_hex(32),
            hs_token: random_hex(32),
            bridge_token: random_hex(32),
        }
    }
}

/// What a test may change in the daemon's config and environment.
#[derive(Clone, Debug, Default)]
pub struct DaemonOptions {
    /// `appservice.receive_ephemeral`.
    pub receive_ephemeral: bool,
    /// Extra `key = value` lines inside `[limits]`.
    pub limits_toml: String,
    /// Extra whole tables appended to the file (`[inbound]`, `[inbox]`, ...).
    pub extra_toml: String,
    /// Value of `MOSAIC_BRIDGE_TOKENS` instead of the generated bridge token
    /// (`Some("")` disables the bridge API).
    pub bridge_tokens_env: Option<String>,
    /// Extra environment variables (e.g. `RUST_LOG`).
    pub env: Vec<(String, String)>,
    /// The store: by default what `MOSAIC_TEST_STORE` says.
    pub store: TestStore,
    /// `appservice.url` instead of the daemon's own URL (a proxy before replicas).
    pub appservice_url: Option<String>,
    /// These secrets instead of fresh ones (another replica's).
    pub secrets: Option<Secrets>,
    /// Listen on this port instead of a free one picked at configuration (for a proxy
    /// started before the daemon).
    pub port: Option<u16>,
}

/// One daemon: its files, secrets and (when running) its process.
pub struct Daemon {
    name: String,
    dir: PathBuf,
    port: u16,
    base_url: String,
    server_name: String,
    homeserver_url: String,
    config_path: PathBuf,
    /// `store.url`.
    store_url: String,
    /// The PostgreSQL database behind `store_url`, when the harness made it: kept across
    /// restarts, dropped with its last holder (after this daemon stopped).
    database: Option<Arc<PgDatabase>>,
    log_path: PathBuf,
    secrets: Secrets,
    options: DaemonOptions,
    child: Option<Child>,
    starts: u32,
    client: Client,
    /// Set when this value owns its directory (not part of a `Stack`).
    owned_dir: Option<ScratchDir>,
}

impl Daemon {
    /// Path of the `mosaic-as` binary under test.
    pub fn binary() -> PathBuf {
        PathBuf::from(env!("CARGO_BIN_EXE_mosaic-as"))
    }

    /// Picks a port, generates secrets and writes `mosaic-as.toml` in `dir`
    /// (created); does not start anything.
    pub fn configure(
        dir: &Path,
        name: &str,
        homeserver_url: &str,
        server_name: &str,
        options: DaemonOptions,
    ) -> Daemon {
        fs::create_dir_all(dir).expect("create daemon dir");
        let port = options.port.unwrap_or_else(free_port);
        let (store_url, database) = options.store.resolve(dir);
        let daemon = Daemon {
            name: name.to_owned(),
            dir: dir.to_path_buf(),
            port,
            base_url: format!("http://127.0.0.1:{port}"),
            server_name: server_name.to_owned(),
            homeserver_url: homeserver_url.to_owned(),
            config_path: dir.join("mosaic-as.toml"),
            store_url,
            database,
            log_path: dir.join("daemon.log"),
            secrets: options.secrets.clone().unwrap_or_else(Secrets::generate),
            options,
            child: None,
            starts: 0,
            client: http_client(),
            owned_dir: None,
        };
        daemon.write_config();
        daemon
    }

    /// Writes `mosaic-as.toml` from the options.
    fn write_config(&self) {
        let (homeserver_url, server_name, port) =
            (&self.homeserver_url, &self.server_name, self.port);
        let config = format!(
            "[homeserver]\nurl = \"{homeserver_url}\"\nserver_name = \"{server_name}\"\n\n\
             [appservice]\nid = \"mosaic-as\"\nlisten = \"127.0.0.1:{port}\"\nurl = \"{url}\"\n\
             sender_localpart = \"mosaic-as\"\nagent_prefix = \"agent-\"\nalias_prefix = \"mosaic-\"\n\
             receive_ephemeral = {ephemeral}\n\n\
             [store]\nurl = \"{store}\"\n\n\
             [limits]\n{limits}\n\n\
             [log]\nformat = \"text\"\n\n{extra}\n",
            url = self.options.appservice_url.as_ref().unwrap_or(&self.base_url),
            ephemeral = self.options.receive_ephemeral,
            store = self.store_url,
            limits = self.options.limits_toml,
            extra = self.options.extra_toml,
        );
        fs::write(&self.config_path, config).expect("write mosaic-as.toml");
    }

    /// Replaces the config's extra sections (`DaemonOptions::extra_toml`), for the next
    /// start.
    pub fn set_extra_toml(&mut self, extra: &str) {
        self.options.extra_toml = extra.to_owned();
        self.write_config();
    }

    /// A daemon in its own scratch dir, not started (e.g. pointed at a
    /// homeserver that is down). Keeps its logs when dropped during a panic.
    pub fn standalone(
        name: &str,
        homeserver_url: &str,
        server_name: &str,
        options: DaemonOptions,
    ) -> Daemon {
        let scratch = ScratchDir::new(name);
        let dir = scratch.path().join("daemon");
        let mut daemon = Daemon::configure(&dir, name, homeserver_url, server_name, options);
        daemon.owned_dir = Some(scratch);
        daemon
    }

    /// A `mosaic-as <args>` command with this daemon's secrets in its
    /// environment (and nothing else of `MOSAIC_*` from the test's).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(Self::binary());
        cmd.args(args).current_dir(&self.dir).stdin(Stdio::null());
        for var in DAEMON_ENV {
            cmd.env_remove(var);
        }
        let bridge = self
            .options
            .bridge_tokens_env
            .as_deref()
            .unwrap_or(&self.secrets.bridge_token);
        cmd.env("MOSAIC_AS_TOKEN", &self.secrets.as_token)
            .env("MOSAIC_HS_TOKEN", &self.secrets.hs_token)
            .env("MOSAIC_BRIDGE_TOKENS", bridge);
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info,mosaic_as=debug");
        }
        cmd.envs(self.options.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs `mosaic-as <args> --config <file>` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.command(args);
        cmd.arg("--config").arg(&self.config_path);
        cmd.output().expect("run mosaic-as")
    }

    /// Runs `mosaic-as registration -o registration.yaml` in the daemon's directory; answers
    /// that path.
    pub fn registration_yaml(&self) -> PathBuf {
        let path = self.dir.join("registration.yaml");
        let out = self.run(&["registration", "-o", path.to_str().expect("UTF-8 path")]);
        assert!(
            out.status.success() && path.exists(),
            "`mosaic-as registration -o` failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        path
    }

    /// Spawns `mosaic-as serve` and waits for `/health`; panics with the log
    /// tail when it does not come up.
    pub fn start(&mut self) {
        assert!(
            self.child.is_none(),
            "daemon {} is already running",
            self.name
        );
        self.starts += 1;
        // No connection kept alive to an earlier process is reused for this one.
        self.client = http_client();
        let mut log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open daemon.log");
        use std::io::Write as _;
        let _ = writeln!(log, "=== harness: start #{} ===", self.starts);
        let mut cmd = self.command(&["serve", "--config"]);
        cmd.arg(&self.config_path)
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log);
        self.child = Some(process::spawn_tied(cmd).expect("spawn mosaic-as"));
        let url = format!("{}/health", self.base_url);
        let child = self.child.as_mut().expect("child");
        if let Err(e) = process::wait_http_ok(&self.client, &url, child, START_TIMEOUT) {
            panic!(
                "mosaic-as ({}) did not come up: {e}\n--- daemon.log (tail) ---\n{}",
                self.name,
                self.log_tail(40)
            );
        }
    }

    /// Stops the process (SIGTERM, SIGKILL after 10 s). Files stay.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            process::terminate(&mut child, Duration::from_secs(10));
        }
    }

    /// Kills the process at once (SIGKILL: no shutdown step runs). Files stay.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops and starts again: same port, config, secrets and store.
    pub fn restart(&mut self) {
        self.stop();
        self.start();
    }

    /// Waits until `GET /ready` answers 200.
    pub fn wait_ready(&self, timeout: Duration) {
        super::human::wait_until(timeout, "mosaic-as /ready", || {
            (self.get("/ready").0 == StatusCode::OK).then_some(())
        });
    }

    /// Unauthenticated `GET {base_url}{path}`: status and body text.
    pub fn get(&self, path: &str) -> (StatusCode, String) {
        match self.client.get(format!("{}{path}", self.base_url)).send() {
            Ok(resp) => (resp.status(), resp.text().unwrap_or_default()),
            Err(e) => panic!("GET {path} on mosaic-as: {e}"),
        }
    }

    /// A bridge API call with the bridge token: status and JSON body (Null if none).
    pub fn bridge(&self, method: Method, path: &str, body: Option<&Value>) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method.clone(), format!("{}{path}", self.base_url))
            .bearer_auth(&self.secrets.bridge_token);
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req
            .send()
            .unwrap_or_else(|e| panic!("{method} {path} on mosaic-as: {e}"));
        let status = resp.status();
        (status, resp.json().unwrap_or(Value::Null))
    }

    pub fn bridge_post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.bridge(Method::POST, path, Some(body))
    }

    pub fn bridge_get(&self, path: &str) -> (StatusCode, Value) {
        self.bridge(Method::GET, path, None)
    }

    /// The whole log of every run of this daemon.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn log_tail(&self, lines: usize) -> String {
        process::tail(&self.log_path, lines)
    }

    /// `http://127.0.0.1:<port>` (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn bridge_token(&self) -> &str {
        &self.secrets.bridge_token
    }

    pub fn hs_token(&self) -> &str {
        &self.secrets.hs_token
    }

    pub fn as_token(&self) -> &str {
        &self.secrets.as_token
    }

    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// `@agent-<slug>:<server>`.
    pub fn agent_user(&self, slug: &str) -> String {
        format!("@agent-{slug}:{}", self.server_name)
    }

    /// `@mosaic-as:<server>`, the AS sender bot.
    pub fn sender_user(&self) -> String {
        format!("@mosaic-as:{}", self.server_name)
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// `store.url` of this daemon.
    pub fn store_url(&self) -> &str {
        &self.store_url
    }

    /// The harness's PostgreSQL database this daemon uses, if any (see
    /// [`TestStore::same_as`] for a second daemon on it).
    pub fn database(&self) -> Option<&Arc<PgDatabase>> {
        self.database.as_ref()
    }

    /// The files worth keeping after a failure, as (file name, path).
    pub fn log_files(&self) -> Vec<(String, PathBuf)> {
        vec![
            ("daemon.log".into(), self.log_path.clone()),
            ("mosaic-as.toml".into(), self.config_path.clone()),
        ]
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() && self.owned_dir.is_some() {
            process::keep_failure_logs(&self.name, &self.log_files());
        }
        self.stop();
    }
}
