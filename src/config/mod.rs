//! Typed configuration: the TOML file (non-secret settings) plus the three secret
//! environment variables. [`Config::load`] collects *every* problem before failing, so an
//! operator fixes a broken deployment in one pass.

use std::{net::SocketAddr, time::Duration};

use ruma::OwnedServerName;
use serde::Deserialize;
use url::Url;

mod check;
mod defaults;
mod env;
mod load;
mod secrets;

use self::defaults::{millis, seconds};
pub use self::env::{Env, ProcessEnv};
pub use self::secrets::Secrets;

/// Environment variable holding the as_token (daemon → homeserver).
pub const ENV_AS_TOKEN: &str = "MOSAIC_AS_TOKEN";
/// Environment variable holding the hs_token (homeserver → daemon).
pub const ENV_HS_TOKEN: &str = "MOSAIC_HS_TOKEN";
/// Environment variable holding the comma-separated bridge bearer tokens.
pub const ENV_BRIDGE_TOKENS: &str = "MOSAIC_BRIDGE_TOKENS";
/// Environment variable holding the token `/metrics` requires (optional: unset, it is open).
pub const ENV_METRICS_TOKEN: &str = "MOSAIC_METRICS_TOKEN";
/// Environment variable naming the config file when `--config` is not given.
pub const ENV_CONFIG: &str = "MOSAIC_AS_CONFIG";
/// Environment variable: the PostgreSQL store's password (put into `store.url`).
pub const ENV_STORE_PASSWORD: &str = "MOSAIC_STORE_PASSWORD";
/// Environment variable: the secret that seals agents' encryption keys in the store
/// (needed with `[e2ee] enabled`).
pub const ENV_E2EE_KEY: &str = "MOSAIC_E2EE_KEY";
/// Environment variable: overrides `ha.advertise_url` (set from the pod's address).
pub const ENV_ADVERTISE_URL: &str = "MOSAIC_ADVERTISE_URL";
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
    pub ha: HaConfig,
    pub e2ee: E2eeConfig,
    pub secrets: Secrets,
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
    /// `sqlite://path/to/file.db` (the embedded store), or `postgres://user@host/database`
    /// (`postgresql://` too; PostgreSQL's URL options apply).
    #[serde(default = "defaults::store_url")]
    pub url: String,
    /// When a commit counts as done: `full` (on disk, fsync, before the homeserver is
    /// answered) or `normal` (faster; a power loss can lose acknowledged transactions).
    #[serde(default)]
    pub sync: SyncMode,
    /// How long idempotency keys of sends and provisioning are kept
    /// (`idempotency_keep_s`); a retry after that is a new request.
    #[serde(rename = "idempotency_keep_s", with = "seconds")]
    #[serde(default = "defaults::idempotency_keep")]
    pub idempotency_keep: Duration,
}

/// `store.sync`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// Every commit is on disk before it is acknowledged.
    #[default]
    Full,
    /// Commits survive a process crash, not a power or node loss.
    Normal,
}

/// `[limits]`: sizes, deadlines and queue bounds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest accepted request body of the bridge API in bytes (413 beyond).
    #[serde(default = "defaults::max_body_bytes")]
    pub max_body_bytes: usize,
    /// Largest media upload in bytes (413 beyond; an upload is held in memory up to this
    /// size and no further before it goes to the homeserver).
    #[serde(default = "defaults::max_media_bytes")]
    pub max_media_bytes: usize,
    /// Largest accepted homeserver transaction body in bytes (413 beyond). A homeserver
    /// may put 100 events of 64 KiB (and ephemeral events) in one transaction, and sends a
    /// refused one again, forever: the default never refuses a valid transaction.
    #[serde(default = "defaults::max_transaction_bytes")]
    pub max_transaction_bytes: usize,
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
    /// Longest life of one SSE stream (`stream_max_s`); it then ends and the client
    /// reconnects with its cursor.
    #[serde(rename = "stream_max_s", with = "seconds")]
    #[serde(default = "defaults::stream_max")]
    pub stream_max: Duration,
    /// Most agents the daemon hosts; a request that would create one more is refused
    /// (403 `M_RESOURCE_LIMIT_EXCEEDED`; the homeserver's user query gets 404).
    #[serde(default = "defaults::max_agents")]
    pub max_agents: usize,
    /// Requests per second of an issued bridge token without its own `rate_per_s` (429
    /// `M_LIMIT_EXCEEDED` beyond).
    #[serde(default = "defaults::token_rate_per_s")]
    pub token_rate_per_s: u32,
    /// Requests per second of each admin token (`MOSAIC_BRIDGE_TOKENS`, and issued admin
    /// tokens without their own rate).
    #[serde(default = "defaults::admin_rate_per_s")]
    pub admin_rate_per_s: u32,
}

/// `[inbound]`: what to do with events pushed by the homeserver.
#[derive(Debug, Clone)]
pub struct InboundConfig {
    /// Agents accept invites on their own.
    pub auto_join: bool,
    /// Who may invite agents and the sender bot: full user ids (`@alice:example.org`),
    /// whole servers (`:example.org`) or `*` (anyone). Invites from anyone else are
    /// rejected. Defaults to the local server; an empty list lets nobody in.
    pub invite_allow: Vec<String>,
}

impl Default for InboundConfig {
    /// Agents accept invites, and nobody may invite (the file's default, the local server,
    /// needs a server name: [`Config::load`] sets it).
    fn default() -> Self {
        Self {
            auto_join: true,
            invite_allow: Vec::new(),
        }
    }
}

/// `[inbound]` as written (the invite default depends on `homeserver.server_name`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct InboundFile {
    #[serde(default = "defaults::yes")]
    auto_join: bool,
    #[serde(default)]
    invite_allow: Option<Vec<String>>,
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

/// `[ha]`: several replicas on one PostgreSQL database (ignored with SQLite: one replica).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaConfig {
    /// A dead replica's agents are taken over within this (`takeover_s`); its lease is
    /// renewed every third of it.
    #[serde(rename = "takeover_s", with = "seconds")]
    #[serde(default = "defaults::takeover")]
    pub takeover: Duration,
    /// Where the other replicas reach this one (`MOSAIC_ADVERTISE_URL` overrides it);
    /// default: `http://` and `appservice.listen` (loopback when it listens on every
    /// address).
    #[serde(default)]
    pub advertise_url: Option<Url>,
}

/// `[e2ee]`: end-to-end encryption for agents in encrypted rooms.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct E2eeConfig {
    /// Agents in encrypted rooms get devices and keys of their own, decrypt what they
    /// receive and encrypt what they send. Needs `MOSAIC_E2EE_KEY`,
    /// `appservice.receive_ephemeral`, and a homeserver that pushes to-device messages and
    /// key counts to application services (Synapse: `experimental_features`
    /// `msc3202_transaction_extensions` and `msc2409_to_device_messages_enabled`).
    #[serde(default)]
    pub enabled: bool,
    /// An agent's crypto machine unused for this long is dropped from memory (`idle_s`);
    /// its next use restores it from the store.
    #[serde(rename = "idle_s", with = "seconds")]
    #[serde(default = "defaults::e2ee_idle")]
    pub idle: Duration,
}

/// `[metrics]`: the Prometheus endpoint.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Refuse to start unless `MOSAIC_METRICS_TOKEN` is set (so `/metrics` is never open).
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

impl Default for LimitsConfig {
    fn default() -> Self {
        toml::from_str("").expect("limits defaults")
    }
}
impl Default for InboundFile {
    fn default() -> Self {
        toml::from_str("").expect("inbound defaults")
    }
}
impl Default for InboxConfig {
    fn default() -> Self {
        toml::from_str("").expect("inbox defaults")
    }
}
impl Default for HaConfig {
    fn default() -> Self {
        toml::from_str("").expect("ha defaults")
    }
}
impl Default for E2eeConfig {
    fn default() -> Self {
        toml::from_str("").expect("e2ee defaults")
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
    inbound: InboundFile,
    #[serde(default)]
    inbox: InboxConfig,
    #[serde(default)]
    metrics: MetricsConfig,
    #[serde(default)]
    log: LogConfig,
    #[serde(default)]
    ha: HaConfig,
    #[serde(default)]
    e2ee: E2eeConfig,
}

/// Every problem found while loading; `Display` prints one line per problem.
#[derive(Debug, thiserror::Error)]
#[error("{}", .problems.join("\n"))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl Config {
    /// Deadline for a homeserver call including retries.
    pub fn hs_deadline(&self) -> Duration {
        self.limits.hs_deadline
    }
}

#[cfg(test)]
mod tests;
