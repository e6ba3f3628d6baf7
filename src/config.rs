//! Typed configuration: the TOML file (non-secret settings) plus the three secret
//! environment variables. [`Config::load`] collects *every* problem before failing, so an
//! operator fixes a broken deployment in one pass.

use std::{net::SocketAddr, path::Path, time::Duration};

use ruma::{OwnedServerName, ServerName, UserId};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

/// Environment variable holding the as_token (daemon → homeserver).
pub const ENV_AS_TOKEN: &str = "MOSAIC_AS_TOKEN";
/// Environment variable holding the hs_token (homeserver → daemon).
pub const ENV_HS_TOKEN: &str = "MOSAIC_HS_TOKEN";
/// Environment variable holding the comma-separated bridge bearer tokens.
pub const ENV_BRIDGE_TOKENS: &str = "MOSAIC_BRIDGE_TOKENS";
/// Environment variable naming the config file when `--config` is not given.
pub const ENV_CONFIG: &str = "MOSAIC_AS_CONFIG";
/// Environment variable that switches log output to JSON.
pub const ENV_LOG_FORMAT: &str = "MOSAIC_AS_LOG_FORMAT";
/// Config file used when neither `--config` nor `MOSAIC_AS_CONFIG` is given.
pub const DEFAULT_CONFIG_PATH: &str = "config/mosaic-as.toml";
/// Minimum length of every secret token.
pub const MIN_TOKEN_LEN: usize = 32;

/// Everything the daemon needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub homeserver: HomeserverConfig,
    pub appservice: AppserviceConfig,
    pub store: StoreConfig,
    pub limits: LimitsConfig,
    pub inbound: InboundConfig,
    pub inbox: InboxConfig,
    pub metrics: MetricsConfig,
    pub log: LogConfig,
    pub secrets: Secrets,
}

/// Secrets read from the environment only. `Debug` never shows their values.
#[derive(Clone)]
pub struct Secrets {
    pub as_token: SecretString,
    pub hs_token: SecretString,
    /// Empty means "bridge disabled": every bridge request is refused.
    pub bridge_tokens: Vec<SecretString>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("as_token", &"[redacted]")
            .field("hs_token", &"[redacted]")
            .field("bridge_tokens", &self.bridge_tokens.len())
            .finish()
    }
}

/// `[homeserver]`: where the homeserver is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HomeserverConfig {
    /// Client-Server API base URL, e.g. `http://127.0.0.1:8008`.
    pub url: Url,
    /// The homeserver's server name (the part after `:` in user ids).
    pub server_name: OwnedServerName,
}

/// `[appservice]`: how the daemon presents itself to the homeserver.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppserviceConfig {
    /// Registration id (also used in the ping endpoint path).
    #[serde(default = "defaults::id")]
    pub id: String,
    /// Address the HTTP server binds to.
    #[serde(default = "defaults::listen")]
    pub listen: SocketAddr,
    /// URL the homeserver uses to reach the daemon (the registration's `url`).
    pub url: Url,
    /// Localpart of the AS sender bot.
    #[serde(default = "defaults::sender_localpart")]
    pub sender_localpart: String,
    /// Prefix of agent localparts: agent `alpha` is `@<prefix>alpha:<server>`.
    #[serde(default = "defaults::agent_prefix")]
    pub agent_prefix: String,
    /// Prefix of room aliases the daemon may create (the alias namespace).
    #[serde(default = "defaults::alias_prefix")]
    pub alias_prefix: String,
    /// Ask the homeserver to push ephemeral events (typing, receipts) too.
    #[serde(default)]
    pub receive_ephemeral: bool,
}

/// `[store]`: where durable state lives.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://path/to/file.db` (the embedded store, the only one built in so far).
    #[serde(default = "defaults::store_url")]
    pub url: String,
}

/// `[limits]`: sizes, deadlines and queue bounds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest accepted request body in bytes (413 beyond).
    #[serde(default = "defaults::max_body_bytes")]
    pub max_body_bytes: usize,
    /// Timeout of one homeserver HTTP attempt (`hs_attempt_timeout_ms`).
    #[serde(rename = "hs_attempt_timeout_ms", with = "millis")]
    #[serde(default = "defaults::hs_attempt_timeout")]
    pub hs_attempt_timeout: Duration,
    /// Deadline for a homeserver call including its retries (`hs_deadline_ms`).
    #[serde(rename = "hs_deadline_ms", with = "millis")]
    #[serde(default = "defaults::hs_deadline")]
    pub hs_deadline: Duration,
    /// Most homeserver requests in flight at once, across all agents.
    #[serde(default = "defaults::hs_max_in_flight")]
    pub hs_max_in_flight: usize,
    /// Most messages queued per agent before the bridge answers 429.
    #[serde(default = "defaults::agent_queue")]
    pub agent_queue: usize,
    /// Typing timeout sent to the homeserver, renewed at 80 % (`typing_timeout_ms`).
    #[serde(rename = "typing_timeout_ms", with = "millis")]
    #[serde(default = "defaults::typing_timeout")]
    pub typing_timeout: Duration,
    /// Longest an agent keeps typing without a renewal from its client (`typing_max_ms`).
    #[serde(rename = "typing_max_ms", with = "millis")]
    #[serde(default = "defaults::typing_max")]
    pub typing_max: Duration,
    /// Smallest interval between two profile changes of one agent
    /// (`profile_min_interval_ms`).
    #[serde(rename = "profile_min_interval_ms", with = "millis")]
    #[serde(default = "defaults::profile_min_interval")]
    pub profile_min_interval: Duration,
    /// Most concurrent event streams (long-poll or SSE) per agent (429 beyond).
    #[serde(default = "defaults::streams_per_agent")]
    pub streams_per_agent: usize,
}

/// `[inbound]`: what to do with events pushed by the homeserver.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundConfig {
    /// Agents accept invites on their own.
    #[serde(default = "defaults::yes")]
    pub auto_join: bool,
    /// When non-empty, only invites from these are accepted: full user ids
    /// (`@alice:example.org`) or whole servers (`:example.org`).
    #[serde(default)]
    pub invite_allow: Vec<String>,
}

/// `[inbox]`: retention of agent inboxes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxConfig {
    /// Most events kept per agent.
    #[serde(default = "defaults::retention_count")]
    pub retention_count: u32,
    /// Oldest event kept (`retention_age_s`).
    #[serde(rename = "retention_age_s", with = "seconds")]
    #[serde(default = "defaults::retention_age")]
    pub retention_age: Duration,
}

/// `[metrics]`: the Prometheus endpoint.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Require a bridge token on `GET /metrics`.
    #[serde(default)]
    pub require_token: bool,
}

/// `[log]`: log output.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` (default) or `json`; `MOSAIC_AS_LOG_FORMAT` overrides it.
    #[serde(default)]
    pub format: LogFormat,
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

mod defaults {
    use std::time::Duration;

    pub fn id() -> String {
        "mosaic-as".into()
    }
    pub fn listen() -> std::net::SocketAddr {
        ([127, 0, 0, 1], 9000).into()
    }
    pub fn sender_localpart() -> String {
        "mosaic-as".into()
    }
    pub fn agent_prefix() -> String {
        "agent-".into()
    }
    pub fn alias_prefix() -> String {
        "mosaic-".into()
    }
    pub fn store_url() -> String {
        "sqlite://mosaic-as.db".into()
    }
    pub fn max_body_bytes() -> usize {
        4 * 1024 * 1024
    }
    pub fn hs_attempt_timeout() -> Duration {
        Duration::from_secs(10)
    }
    pub fn hs_deadline() -> Duration {
        Duration::from_secs(30)
    }
    pub fn hs_max_in_flight() -> usize {
        512
    }
    pub fn agent_queue() -> usize {
        256
    }
    pub fn typing_timeout() -> Duration {
        Duration::from_secs(30)
    }
    pub fn typing_max() -> Duration {
        Duration::from_secs(600)
    }
    pub fn profile_min_interval() -> Duration {
        Duration::from_secs(2)
    }
    pub fn streams_per_agent() -> usize {
        4
    }
    pub fn yes() -> bool {
        true
    }
    pub fn retention_count() -> u32 {
        10_000
    }
    pub fn retention_age() -> Duration {
        Duration::from_secs(7 * 24 * 3600)
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        toml::from_str("").expect("limits defaults")
    }
}
impl Default for InboundConfig {
    fn default() -> Self {
        toml::from_str("").expect("inbound defaults")
    }
}
impl Default for InboxConfig {
    fn default() -> Self {
        toml::from_str("").expect("inbox defaults")
    }
}
impl Default for StoreConfig {
    fn default() -> Self {
        toml::from_str("").expect("store defaults")
    }
}

/// The file as written, before secrets are added.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    homeserver: HomeserverConfig,
    appservice: AppserviceConfig,
    #[serde(default)]
    store: StoreConfig,
    #[serde(default)]
    limits: LimitsConfig,
    #[serde(default)]
    inbound: InboundConfig,
    #[serde(default)]
    inbox: InboxConfig,
    #[serde(default)]
    metrics: MetricsConfig,
    #[serde(default)]
    log: LogConfig,
}

/// Every problem found while loading; `Display` prints one line per problem.
#[derive(Debug, thiserror::Error)]
#[error("{}", .problems.join("\n"))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

/// Where a secret variable's value comes from: the process environment in production,
/// a map in tests.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<const N: usize> Env for [(&str, &str); N] {
    fn var(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    }
}

impl Config {
    /// Reads the file at `path` and the secrets from `env`, and validates both.
    pub fn load(path: &Path, env: &dyn Env) -> Result<Config, ConfigError> {
        let mut problems = Vec::new();
        let file = match std::fs::read_to_string(path) {
            Ok(text) => match toml::from_str::<FileConfig>(&text) {
                Ok(file) => Some(file),
                Err(e) => {
                    problems.push(format!(
                        "{}: {}",
                        path.display(),
                        e.message().trim().replace('\n', " ")
                    ));
                    None
                }
            },
            Err(e) => {
                problems.push(format!("cannot read config file {}: {e}", path.display()));
                None
            }
        };
        let secrets = read_secrets(env, &mut problems);
        if let Some(file) = &file {
            check_file(file, &mut problems);
        }
        match (file, secrets) {
            (Some(f), Some(secrets)) if problems.is_empty() => Ok(Config {
                homeserver: f.homeserver,
                appservice: f.appservice,
                store: f.store,
                limits: f.limits,
                inbound: f.inbound,
                inbox: f.inbox,
                metrics: f.metrics,
                log: f.log,
                secrets,
            }),
            _ => Err(ConfigError { problems }),
        }
    }

    /// Deadline for a homeserver call including retries.
    pub fn hs_deadline(&self) -> Duration {
        self.limits.hs_deadline
    }
}

fn read_secrets(env: &dyn Env, problems: &mut Vec<String>) -> Option<Secrets> {
    let mut single = |name: &str| -> Option<SecretString> {
        match env.var(name) {
            None => {
                problems.push(format!("{name} is not set"));
                None
            }
            Some(v) if v.trim().len() < MIN_TOKEN_LEN => {
                problems.push(format!("{name} is shorter than {MIN_TOKEN_LEN} characters"));
                None
            }
            Some(v) => Some(SecretString::from(v.trim().to_owned())),
        }
    };
    let as_token = single(ENV_AS_TOKEN);
    let hs_token = single(ENV_HS_TOKEN);
    let bridge_tokens = match env.var(ENV_BRIDGE_TOKENS) {
        None => {
            problems.push(format!(
                "{ENV_BRIDGE_TOKENS} is not set (set it to an empty string to disable the bridge API)"
            ));
            None
        }
        Some(list) => {
            let mut tokens = Vec::new();
            for (i, token) in list.split(',').map(str::trim).enumerate() {
                if list.trim().is_empty() {
                    break;
                }
                if token.len() < MIN_TOKEN_LEN {
                    problems.push(format!(
                        "{ENV_BRIDGE_TOKENS}: token #{} is shorter than {MIN_TOKEN_LEN} characters",
                        i + 1
                    ));
                } else {
                    tokens.push(SecretString::from(token.to_owned()));
                }
            }
            Some(tokens)
        }
    };
    if let (Some(a), Some(h)) = (&as_token, &hs_token) {
        if a.expose_secret() == h.expose_secret() {
            problems.push(format!("{ENV_AS_TOKEN} and {ENV_HS_TOKEN} must differ"));
        }
    }
    Some(Secrets {
        as_token: as_token?,
        hs_token: hs_token?,
        bridge_tokens: bridge_tokens?,
    })
}

fn check_file(f: &FileConfig, problems: &mut Vec<String>) {
    let mut url = |key: &str, u: &Url| {
        if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
            problems.push(format!("{key}: {u} is not an http(s) URL"));
        }
    };
    url("homeserver.url", &f.homeserver.url);
    url("appservice.url", &f.appservice.url);
    let hs = &f.homeserver.url;
    if hs.query().is_some()
        || hs.fragment().is_some()
        || !hs.username().is_empty()
        || hs.password().is_some()
    {
        // Not echoed: it may hold a password.
        problems.push(
            "homeserver.url: must be a base URL without credentials, query or fragment".into(),
        );
    }
    if f.appservice.id.is_empty() || !f.appservice.id.chars().all(is_id_char) {
        problems.push("appservice.id: must be non-empty and use only [A-Za-z0-9_.-]".into());
    }
    let server = &f.homeserver.server_name;
    for (key, localpart) in [
        (
            "appservice.sender_localpart",
            &f.appservice.sender_localpart,
        ),
        ("appservice.agent_prefix", &f.appservice.agent_prefix),
    ] {
        if localpart.is_empty() || !localpart.chars().all(is_localpart_char) {
            problems.push(format!(
                "{key}: {localpart:?} must be non-empty and use only [a-z0-9._=/-]"
            ));
        }
    }
    if UserId::parse(format!("@{}:{server}", f.appservice.sender_localpart)).is_err() {
        problems.push("appservice.sender_localpart: does not form a valid user id".into());
    }
    if f.appservice
        .sender_localpart
        .starts_with(&f.appservice.agent_prefix)
    {
        problems.push(
            "appservice.sender_localpart: must not start with appservice.agent_prefix".into(),
        );
    }
    let alias = &f.appservice.alias_prefix;
    if alias.is_empty() || !alias.chars().all(is_alias_char) {
        problems.push(format!(
            "appservice.alias_prefix: {alias:?} must be non-empty and use only [a-z0-9_.-]"
        ));
    }
    if let Err(e) = crate::store::check_url(&f.store.url) {
        problems.push(format!("store.url: {e}"));
    }
    let l = &f.limits;
    let positive = [
        ("limits.max_body_bytes", l.max_body_bytes as u64),
        (
            "limits.hs_attempt_timeout_ms",
            l.hs_attempt_timeout.as_millis() as u64,
        ),
        ("limits.hs_deadline_ms", l.hs_deadline.as_millis() as u64),
        ("limits.hs_max_in_flight", l.hs_max_in_flight as u64),
        ("limits.agent_queue", l.agent_queue as u64),
        (
            "limits.typing_timeout_ms",
            l.typing_timeout.as_millis() as u64,
        ),
        ("limits.typing_max_ms", l.typing_max.as_millis() as u64),
        ("limits.streams_per_agent", l.streams_per_agent as u64),
        ("inbox.retention_count", f.inbox.retention_count as u64),
        ("inbox.retention_age_s", f.inbox.retention_age.as_secs()),
    ];
    for (key, v) in positive {
        if v == 0 {
            problems.push(format!("{key}: must be greater than 0"));
        }
    }
    if l.typing_timeout < Duration::from_secs(1) {
        problems.push("limits.typing_timeout_ms: must be at least 1000".into());
    }
    for entry in &f.inbound.invite_allow {
        let ok = match entry.strip_prefix(':') {
            Some(server) => ServerName::parse(server).is_ok(),
            None => UserId::parse(entry.as_str()).is_ok(),
        };
        if !ok {
            problems.push(format!(
                "inbound.invite_allow: {entry:?} is neither a user id nor :server.name"
            ));
        }
    }
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

fn is_localpart_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '=' | '-' | '/')
}

fn is_alias_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-')
}

/// `*_ms` keys: integers of milliseconds in the file, `Duration`s in the config. (Two
/// three-line functions; serde_with's `DurationMilliSeconds` would add some thirty
/// packages to the lock file and the advisory audit for them.)
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// `*_s` keys: integers of seconds in the file, `Duration`s in the config.
mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[homeserver]
url = "http://127.0.0.1:8008"
server_name = "hs.local"
[appservice]
url = "http://127.0.0.1:9000"
"#;
    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const H: &str = "hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn write(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn good_config_loads_with_defaults() {
        let f = write(GOOD);
        let env = [(ENV_AS_TOKEN, A), (ENV_HS_TOKEN, H), (ENV_BRIDGE_TOKENS, B)];
        let c = Config::load(f.path(), &env).unwrap();
        assert_eq!(c.appservice.agent_prefix, "agent-");
        assert_eq!(c.appservice.sender_localpart, "mosaic-as");
        assert_eq!(c.secrets.bridge_tokens.len(), 1);
        assert!(!format!("{c:?}").contains(A));
    }

    #[test]
    fn every_problem_is_reported_and_no_secret_printed() {
        let f = write(GOOD);
        let env = [(ENV_AS_TOKEN, "short-secret-value")];
        let err = Config::load(f.path(), &env).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("MOSAIC_AS_TOKEN is shorter than 32"),
            "{text}"
        );
        assert!(text.contains("MOSAIC_HS_TOKEN is not set"), "{text}");
        assert!(text.contains("MOSAIC_BRIDGE_TOKENS is not set"), "{text}");
        assert!(!text.contains("short-secret-value"));
        assert_eq!(err.problems.len(), 3);
    }

    #[test]
    fn empty_bridge_tokens_disable_the_bridge() {
        let f = write(GOOD);
        let env = [
            (ENV_AS_TOKEN, A),
            (ENV_HS_TOKEN, H),
            (ENV_BRIDGE_TOKENS, ""),
        ];
        let c = Config::load(f.path(), &env).unwrap();
        assert!(c.secrets.bridge_tokens.is_empty());
    }

    /// `check-config` refuses what `serve` would: a store URL without a built-in backend,
    /// named by its scheme only (a URL may carry a password).
    #[test]
    fn a_store_url_without_backend_is_refused() {
        let env = [(ENV_AS_TOKEN, A), (ENV_HS_TOKEN, H), (ENV_BRIDGE_TOKENS, B)];
        for url in ["postgres://u:secret@db/mosaic", "mysql://db", "/no/scheme"] {
            let f = write(&format!("{GOOD}[store]\nurl = \"{url}\"\n"));
            let err = Config::load(f.path(), &env).unwrap_err().to_string();
            assert!(err.contains("store.url"), "{err}");
            assert!(!err.contains("secret"), "{err}");
        }
        let f = write(&format!("{GOOD}[store]\nurl = \"sqlite://x.db\"\n"));
        assert!(Config::load(f.path(), &env).is_ok());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let f = write(&format!("{GOOD}\nbogus = 1\n"));
        let env = [(ENV_AS_TOKEN, A), (ENV_HS_TOKEN, H), (ENV_BRIDGE_TOKENS, B)];
        let err = Config::load(f.path(), &env).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");

        let f = write(&GOOD.replace("http://127.0.0.1:8008", "ftp://x"));
        let err = Config::load(f.path(), &env).unwrap_err();
        assert!(err.to_string().contains("homeserver.url"), "{err}");

        for base in ["http://h/?a=b", "http://h/#top", "http://u:p@h/"] {
            let f = write(&GOOD.replace("http://127.0.0.1:8008", base));
            let err = Config::load(f.path(), &env).unwrap_err();
            assert!(
                err.to_string()
                    .contains("without credentials, query or fragment"),
                "{err}"
            );
        }
        let f = write(&GOOD.replace("http://127.0.0.1:8008", "https://h.example/matrix/"));
        Config::load(f.path(), &env).unwrap();
    }
}
