//! A real Synapse homeserver for tests.
//!
//! Installed on first use by `scripts/install-synapse.sh` into
//! `target/synapse-venv` (override with `SYNAPSE_VENV`), configured for a
//! network-less machine (no federation, no key servers, SQLite, no presence,
//! uncached `/sync`, rate limits out of the way) and started on a free loopback
//! port. Dropping it stops the process; dropping it while the test panics first
//! keeps its logs under `target/test-logs/`.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::human::Human;
use super::ports::free_port;
use super::process::{self, ScratchDir};

/// Longest wait for `/_matrix/client/versions` after a start.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Rate limiters raised so tests never hit them: (key, sub-keys or none).
const RATE_LIMITS: &[(&str, &[&str])] = &[
    ("rc_message", &[]),
    ("rc_registration", &[]),
    ("rc_registration_token_validity", &[]),
    ("rc_login", &["address", "account", "failed_attempts"]),
    ("rc_admin_redaction", &[]),
    ("rc_joins", &["local", "remote"]),
    ("rc_joins_per_room", &[]),
    ("rc_3pid_validation", &[]),
    ("rc_invites", &["per_room", "per_user", "per_issuer"]),
    ("rc_third_party_invite", &[]),
    ("rc_media_create", &[]),
    ("rc_presence", &["per_user"]),
    ("rc_delayed_event_mgmt", &[]),
    ("rc_room_creation", &[]),
    ("rc_reports", &[]),
    ("rc_user_directory", &[]),
    ("rc_profile", &[]),
    ("rc_key_requests", &[]),
];

/// Path of the venv's Python with Synapse importable; installs it on first use.
/// Panics with the installer's output when that is impossible: tests never skip.
pub fn synapse_python() -> PathBuf {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let result = PYTHON.get_or_init(|| {
        let venv = std::env::var_os("SYNAPSE_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| process::target_dir().join("synapse-venv"));
        let python = venv.join("bin").join("python");
        let importable = |py: &Path| {
            Command::new(py)
                .args(["-c", "import synapse"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if importable(&python) {
            return Ok(python);
        }
        let script = process::repo_root()
            .join("scripts")
            .join("install-synapse.sh");
        eprintln!("harness: installing Synapse into {} ...", venv.display());
        let out = Command::new("bash")
            .arg(&script)
            .env("SYNAPSE_VENV", &venv)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if out.status.success() && importable(&python) {
            Ok(python)
        } else {
            Err(format!(
                "{} failed ({}):\n{}\n{}",
                script.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    match result {
        Ok(python) => python.clone(),
        Err(e) => panic!("Synapse is not installed and cannot be installed: {e}"),
    }
}

/// One running (or stopped) Synapse process with its files.
pub struct Synapse {
    name: String,
    server_name: String,
    port: u16,
    base_url: String,
    shared_secret: String,
    dir: PathBuf,
    config_path: PathBuf,
    log_path: PathBuf,
    stdout_path: PathBuf,
    child: Option<Child>,
    client: reqwest::blocking::Client,
    /// Set when this value owns its directory (not part of a `Stack`).
    owned_dir: Option<ScratchDir>,
    /// Time the last start took until `/versions` answered.
    pub startup_time: Duration,
}

/// What Synapse needs for appservice encryption (MSC3202 and MSC2409), on by default.
const APPSERVICE_ENCRYPTION: &str = "experimental_features:\n  \
    msc3202_transaction_extensions: true\n  msc2409_to_device_messages_enabled: true\n";

impl Synapse {
    /// Starts a standalone Synapse in its own scratch dir, loading `registrations`.
    pub fn start(name: &str, server_name: &str, registrations: &[&Path]) -> Synapse {
        let scratch = ScratchDir::new(name);
        let dir = scratch.path().join("synapse");
        let mut hs = Synapse::configure(&dir, name, server_name, registrations);
        hs.owned_dir = Some(scratch);
        hs.start_again();
        hs
    }

    /// Writes the config for a Synapse in `dir` (created) without starting it.
    pub fn configure(
        dir: &Path,
        name: &str,
        server_name: &str,
        registrations: &[&Path],
    ) -> Synapse {
        Synapse::configure_on(dir, name, server_name, registrations, free_port())
    }

    /// Like [`Synapse::configure`], listening on `port`.
    pub fn configure_on(
        dir: &Path,
        name: &str,
        server_name: &str,
        registrations: &[&Path],
        port: u16,
    ) -> Synapse {
        fs::create_dir_all(dir).expect("create synapse dir");
        let hs = Synapse {
            name: name.to_owned(),
            server_name: server_name.to_owned(),
            port,
            base_url: format!("http://127.0.0.1:{port}"),
            shared_secret: process::random_hex(24),
            dir: dir.to_path_buf(),
            config_path: dir.join("homeserver.yaml"),
            log_path: dir.join("homeserver.log"),
            stdout_path: dir.join("stdout.log"),
            child: None,
            client: http_client(),
            owned_dir: None,
            startup_time: Duration::ZERO,
        };
        fs::write(dir.join("log.yaml"), hs.log_config()).expect("write log.yaml");
        fs::write(&hs.config_path, hs.homeserver_yaml(registrations))
            .expect("write homeserver.yaml");
        hs
    }

    /// Turns appservice encryption's experimental features off (before the next start).
    pub fn without_appservice_encryption(&self) {
        let yaml = fs::read_to_string(&self.config_path).expect("read homeserver.yaml");
        let off = yaml.replace(APPSERVICE_ENCRYPTION, "");
        assert_ne!(off, yaml, "the features were on");
        fs::write(&self.config_path, off).expect("write homeserver.yaml");
    }

    fn log_config(&self) -> String {
        format!(
            "version: 1\n\
             formatters:\n  precise:\n    format: '%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s'\n\
             handlers:\n  file:\n    class: logging.FileHandler\n    formatter: precise\n    filename: '{}'\n    encoding: utf8\n\
             loggers:\n  synapse.storage.SQL:\n    level: WARNING\n\
             root:\n  level: INFO\n  handlers: [file]\n\
             disable_existing_loggers: false\n",
            self.log_path.display()
        )
    }

    fn homeserver_yaml(&self, registrations: &[&Path]) -> String {
        let d = self.dir.display();
        let mut y = format!(
            "server_name: '{server}'\n\
             public_baseurl: '{url}/'\n\
             pid_file: '{d}/homeserver.pid'\n\
             signing_key_path: '{d}/signing.key'\n\
             log_config: '{d}/log.yaml'\n\
             media_store_path: '{d}/media'\n\
             database:\n  name: sqlite3\n  args:\n    database: '{d}/homeserver.db'\n\
             listeners:\n  - port: {port}\n    bind_addresses: ['127.0.0.1']\n    type: http\n    tls: false\n    x_forwarded: false\n    resources:\n      - names: [client]\n        compress: false\n\
             report_stats: false\n\
             trusted_key_servers: []\n\
             suppress_key_server_warning: true\n\
             serve_server_wellknown: false\n\
             enable_registration: false\n\
             registration_shared_secret: '{secret}'\n\
             presence:\n  enabled: false\n\
             caches:\n  sync_response_cache_duration: 0\n\
             {APPSERVICE_ENCRYPTION}\
             app_service_config_files:\n",
            server = self.server_name,
            url = self.base_url,
            port = self.port,
            secret = self.shared_secret,
        );
        for reg in registrations {
            let _ = writeln!(y, "  - '{}'", reg.display());
        }
        if registrations.is_empty() {
            y = y.replace(
                "app_service_config_files:\n",
                "app_service_config_files: []\n",
            );
        }
        let setting = "{per_second: 100000, burst_count: 1000000}";
        for (key, inner) in RATE_LIMITS {
            if inner.is_empty() {
                let _ = writeln!(y, "{key}: {setting}");
            } else {
                let _ = writeln!(y, "{key}:");
                for sub in *inner {
                    let _ = writeln!(y, "  {sub}: {setting}");
                }
            }
        }
        y
    }

    /// Starts the process (again: same port, database and keys) and waits until
    /// it answers. Panics with the tail of its logs when it does not.
    pub fn start_again(&mut self) {
        assert!(
            self.child.is_none(),
            "Synapse {} is already running",
            self.name
        );
        let stdout = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stdout_path)
            .expect("open synapse stdout.log");
        let stderr = stdout.try_clone().expect("clone log handle");
        let mut cmd = Command::new(synapse_python());
        cmd.args(["-m", "synapse.app.homeserver", "-c"])
            .arg(&self.config_path)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        let started = Instant::now();
        self.child = Some(process::spawn_tied(cmd).expect("spawn Synapse"));
        let url = format!("{}/_matrix/client/versions", self.base_url);
        let child = self.child.as_mut().expect("child");
        if let Err(e) = process::wait_http_ok(&self.client, &url, child, START_TIMEOUT) {
            panic!(
                "Synapse {} did not start: {e}\n--- homeserver.log (tail) ---\n{}\n--- stdout/stderr (tail) ---\n{}",
                self.name,
                process::tail(&self.log_path, 40),
                process::tail(&self.stdout_path, 20)
            );
        }
        self.startup_time = started.elapsed();
    }

    /// Stops the process (SIGTERM, SIGKILL after 10 s). Files stay.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            process::terminate(&mut child, Duration::from_secs(10));
        }
    }

    /// Stops and starts again on the same port and database.
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// `http://127.0.0.1:<port>` (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The whole `homeserver.log`.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Creates a (non-admin) human `@<localpart>:<server>` with a random password.
    pub fn register_human(&self, localpart: &str) -> Human {
        Human::register(&self.base_url, &self.shared_secret, localpart)
    }

    /// The files worth keeping after a failure, as (file name, path).
    pub fn log_files(&self) -> Vec<(String, PathBuf)> {
        vec![
            ("synapse.log".into(), self.log_path.clone()),
            ("synapse.stdout.log".into(), self.stdout_path.clone()),
            ("homeserver.yaml".into(), self.config_path.clone()),
        ]
    }
}

impl Drop for Synapse {
    fn drop(&mut self) {
        if std::thread::panicking() && self.owned_dir.is_some() {
            process::keep_failure_logs(&self.name, &self.log_files());
        }
        self.stop();
    }
}

/// The blocking HTTP client the harness uses (no proxy: everything is loopback).
pub fn http_client() -> reqwest::blocking::Client {
    super::http_client(Duration::from_secs(90))
}
