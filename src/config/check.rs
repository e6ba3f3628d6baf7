//! Checks of the file and the secrets: every problem is collected, none stops the check.

use std::time::Duration;

use ruma::{ServerName, UserId};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::{
    Env, FileConfig, Secrets, ENV_AS_TOKEN, ENV_BRIDGE_TOKENS, ENV_E2EE_KEY, ENV_HS_TOKEN,
    ENV_METRICS_TOKEN, ENV_STORE_PASSWORD, MIN_TOKEN_LEN,
};
use crate::{
    ids::{longest_agent_id, longest_alias, MAX_ALIAS_NAME_LEN, MAX_ID_BYTES, MAX_SLUG_LEN},
    tokens::is_well_formed,
};

/// A token's problem, if it has one (what is wrong, never the value).
fn token_problem(token: &str) -> Option<String> {
    if token.len() < MIN_TOKEN_LEN {
        Some(format!("is shorter than {MIN_TOKEN_LEN} characters"))
    } else if !is_well_formed(token) {
        Some("may hold only visible ASCII characters (no space or control character)".into())
    } else {
        None
    }
}

pub(super) fn read_secrets(env: &dyn Env, problems: &mut Vec<String>) -> Option<Secrets> {
    let mut single = |name: &str, required: bool| -> Option<Option<SecretString>> {
        match env.var(name) {
            None if required => {
                problems.push(format!("{name} is not set"));
                None
            }
            None => Some(None),
            Some(v) => match token_problem(v.trim()) {
                Some(problem) => {
                    problems.push(format!("{name} {problem}"));
                    None
                }
                None => Some(Some(SecretString::from(v.trim().to_owned()))),
            },
        }
    };
    let as_token = single(ENV_AS_TOKEN, true).flatten();
    let hs_token = single(ENV_HS_TOKEN, true).flatten();
    let metrics_token = single(ENV_METRICS_TOKEN, false);
    let e2ee_key = single(ENV_E2EE_KEY, false);
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
                match token_problem(token) {
                    Some(problem) => {
                        problems.push(format!("{ENV_BRIDGE_TOKENS}: token #{} {problem}", i + 1))
                    }
                    None => tokens.push(SecretString::from(token.to_owned())),
                }
            }
            Some(tokens)
        }
    };
    // A token opens one door only: no value may serve two of the roles.
    let mut roles: Vec<(String, &SecretString)> = Vec::new();
    roles.extend(as_token.iter().map(|t| (ENV_AS_TOKEN.to_owned(), t)));
    roles.extend(hs_token.iter().map(|t| (ENV_HS_TOKEN.to_owned(), t)));
    if let Some(Some(t)) = &metrics_token {
        roles.push((ENV_METRICS_TOKEN.to_owned(), t));
    }
    if let Some(Some(t)) = &e2ee_key {
        roles.push((ENV_E2EE_KEY.to_owned(), t));
    }
    for (i, t) in bridge_tokens.iter().flatten().enumerate() {
        roles.push((format!("{ENV_BRIDGE_TOKENS} token #{}", i + 1), t));
    }
    for (i, (a, ta)) in roles.iter().enumerate() {
        for (b, tb) in &roles[i + 1..] {
            let bridge_pair = a.starts_with(ENV_BRIDGE_TOKENS) && b.starts_with(ENV_BRIDGE_TOKENS);
            if !bridge_pair && ta.expose_secret() == tb.expose_secret() {
                problems.push(format!("{a} and {b} must differ"));
            }
        }
    }
    // Not a token: any non-empty value (a URL carries it percent-encoded).
    let store_password = env
        .var(ENV_STORE_PASSWORD)
        .filter(|p| !p.is_empty())
        .map(SecretString::from);
    Some(Secrets {
        store_password,
        as_token: as_token?,
        hs_token: hs_token?,
        bridge_tokens: bridge_tokens?,
        metrics_token: metrics_token?,
        e2ee_key: e2ee_key?,
    })
}

pub(super) fn check_file(f: &FileConfig, problems: &mut Vec<String>) {
    let mut url = |key: &str, u: &Url| {
        if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
            // The scheme only: a URL may carry a password.
            let scheme = u.scheme();
            problems.push(format!(
                "{key}: a {scheme}: URL is not an http(s) URL with a host"
            ));
        }
    };
    url("homeserver.url", &f.homeserver.url);
    url("appservice.url", &f.appservice.url);
    if let Some(advertised) = &f.ha.advertise_url {
        url("ha.advertise_url", advertised);
    }
    if f.ha.takeover < Duration::from_secs(3) {
        problems.push("ha.takeover_s: must be at least 3".into());
    }
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
    let sender = format!("@{}:{server}", f.appservice.sender_localpart);
    if sender.len() > MAX_ID_BYTES {
        problems.push(format!(
            "appservice.sender_localpart: the sender's user id {sender} is {} bytes, over \
             Matrix's {MAX_ID_BYTES}",
            sender.len()
        ));
    } else if UserId::parse(sender).is_err() {
        problems.push("appservice.sender_localpart: does not form a valid user id".into());
    }
    identifier_lengths(f, problems);
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
    } else if Url::parse(&f.store.url).is_ok_and(|u| u.password().is_some()) {
        // Not echoed: it holds a password.
        problems.push(format!(
            "store.url: holds a password; set {ENV_STORE_PASSWORD} instead (the config \
             file holds no credentials)"
        ));
    }
    let l = &f.limits;
    let positive = [
        ("limits.max_body_bytes", l.max_body_bytes as u64),
        ("limits.max_media_bytes", l.max_media_bytes as u64),
        (
            "limits.max_transaction_bytes",
            l.max_transaction_bytes as u64,
        ),
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
        ("limits.max_agents", l.max_agents as u64),
        ("limits.stream_max_s", l.stream_max.as_secs()),
        ("limits.token_rate_per_s", l.token_rate_per_s.into()),
        ("limits.admin_rate_per_s", l.admin_rate_per_s.into()),
        ("inbox.retention_count", f.inbox.retention_count as u64),
        (
            "store.idempotency_keep_s",
            f.store.idempotency_keep.as_secs(),
        ),
        ("inbox.retention_age_s", f.inbox.retention_age.as_secs()),
        ("e2ee.idle_s", f.e2ee.idle.as_secs()),
    ];
    for (key, v) in positive {
        if v == 0 {
            problems.push(format!("{key}: must be greater than 0"));
        }
    }
    if l.typing_timeout < Duration::from_secs(1) {
        problems.push("limits.typing_timeout_ms: must be at least 1000".into());
    }
    for entry in f.inbound.invite_allow.iter().flatten() {
        let ok = entry == "*"
            || match entry.strip_prefix(':') {
                Some(server) => ServerName::parse(server).is_ok(),
                None => UserId::parse(entry.as_str()).is_ok(),
            };
        if !ok {
            problems.push(format!(
                "inbound.invite_allow: {entry:?} is neither a user id, :server.name nor *"
            ));
        }
    }
}

/// The longest agent user id and the longest alias the daemon may make must fit Matrix's
/// limit: found here, not as a failure at the first long slug or alias.
fn identifier_lengths(f: &FileConfig, problems: &mut Vec<String>) {
    let server = f.homeserver.server_name.as_str();
    let agent = longest_agent_id(&f.appservice.agent_prefix, server);
    if agent > MAX_ID_BYTES {
        problems.push(format!(
            "appservice.agent_prefix, homeserver.server_name: an agent's user id \
             (@<agent_prefix><slug of up to {MAX_SLUG_LEN} characters>:<server_name>) can be \
             {agent} bytes, over Matrix's {MAX_ID_BYTES}; shorten the prefix or the server name \
             by {}",
            agent - MAX_ID_BYTES
        ));
    }
    let alias = longest_alias(&f.appservice.alias_prefix, server);
    if alias > MAX_ID_BYTES {
        problems.push(format!(
            "appservice.alias_prefix, homeserver.server_name: a provisioned alias \
             (#<alias_prefix><name of up to {MAX_ALIAS_NAME_LEN} characters>:<server_name>) can \
             be {alias} bytes, over Matrix's {MAX_ID_BYTES}; shorten the prefix or the server \
             name by {}",
            alias - MAX_ID_BYTES
        ));
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
