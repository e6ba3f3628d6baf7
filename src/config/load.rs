//! Loading the configuration: the file's text through serde (naming the key of a problem),
//! the secrets from the environment, then every check, collecting all problems before
//! failing.

use std::path::Path;

use super::{
    check, Config, ConfigError, Env, FileConfig, InboundConfig, ENV_ADVERTISE_URL, ENV_E2EE_KEY,
    ENV_METRICS_TOKEN,
};

impl Config {
    /// Reads the file at `path` and the secrets from `env`, and validates both.
    pub fn load(path: &Path, env: &dyn Env) -> Result<Config, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::validate(Ok(&text), path, env),
            Err(e) => {
                let unreadable = format!("cannot read config file {}: {e}", path.display());
                Self::validate(Err(unreadable), path, env)
            }
        }
    }

    /// [`Config::load`] of a file's `text` already read (`path` only names it in problems):
    /// the whole check without the file system, which the `config` fuzz target drives.
    pub fn parse(text: &str, path: &Path, env: &dyn Env) -> Result<Config, ConfigError> {
        Self::validate(Ok(text), path, env)
    }

    /// The one check behind [`Config::load`] and [`Config::parse`]: `text` is the file's
    /// text, or the problem that kept it from being read (reported with the others).
    fn validate(
        text: Result<&str, String>,
        path: &Path,
        env: &dyn Env,
    ) -> Result<Config, ConfigError> {
        let mut problems = Vec::new();
        let file = match text {
            Ok(text) => match serde_path_to_error::deserialize::<_, FileConfig>(
                toml::Deserializer::new(text),
            ) {
                Ok(file) => Some(file),
                Err(e) => {
                    // The key's path, unless the problem is the whole file's.
                    let key = match e.path().to_string() {
                        p if p == "." => String::new(),
                        p => format!("{p}: "),
                    };
                    problems.push(format!(
                        "{}: {key}{}",
                        path.display(),
                        e.inner().message().trim().replace('\n', " ")
                    ));
                    None
                }
            },
            Err(unreadable) => {
                problems.push(unreadable);
                None
            }
        };
        let secrets = check::read_secrets(env, &mut problems);
        let mut file = file;
        if let (Some(file), Some(url)) = (&mut file, env.var(ENV_ADVERTISE_URL)) {
            match url::Url::parse(&url) {
                Ok(url) => file.ha.advertise_url = Some(url),
                Err(e) => problems.push(format!("{ENV_ADVERTISE_URL}: {e}")),
            }
        }
        if let Some(file) = &file {
            check::check_file(file, &mut problems);
            let metrics_token = secrets.as_ref().map(|s| s.metrics_token.is_some());
            if file.metrics.require_token && metrics_token == Some(false) {
                problems.push(format!(
                    "metrics.require_token: {ENV_METRICS_TOKEN} is not set"
                ));
            }
            let e2ee_key = secrets.as_ref().map(|s| s.e2ee_key.is_some());
            if file.e2ee.enabled && e2ee_key == Some(false) {
                problems.push(format!(
                    "e2ee.enabled: {ENV_E2EE_KEY} is not set (it seals the agents' encryption \
                     keys in the store; keep it: without it they cannot be read again)"
                ));
            }
            if file.e2ee.enabled && !file.appservice.receive_ephemeral {
                problems.push(
                    "e2ee.enabled: needs appservice.receive_ephemeral = true (the homeserver \
                     pushes to-device messages, which carry the keys, only with it)"
                        .into(),
                );
            }
        }
        match (file, secrets) {
            (Some(f), Some(secrets)) if problems.is_empty() => Ok(Config {
                inbound: InboundConfig {
                    auto_join: f.inbound.auto_join,
                    invite_allow: f
                        .inbound
                        .invite_allow
                        .unwrap_or_else(|| vec![format!(":{}", f.homeserver.server_name)]),
                },
                homeserver: f.homeserver,
                appservice: f.appservice,
                store: f.store,
                limits: f.limits,
                inbox: f.inbox,
                metrics: f.metrics,
                log: f.log,
                ha: f.ha,
                e2ee: f.e2ee,
                secrets,
            }),
            _ => Err(ConfigError { problems }),
        }
    }
}
