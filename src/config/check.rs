//! Checks of the file and the secrets: every problem is collected, none stops the check.

use std::time::Duration;

use ruma::{ServerName, UserId};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::{
    Env, FileConfig, Secrets, ENV_AS_TOKEN, ENV_BRIDGE_TOKENS, ENV_HS_TOKEN, MIN_TOKEN_LEN,
};

pub(super) fn read_secrets(env: &dyn Env, problems: &mut Vec<String>) -> Option<Secrets> {
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

pub(super) fn check_file(f: &FileConfig, problems: &mut Vec<String>) {
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
