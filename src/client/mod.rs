//! The bridge API as the command line calls it: where the daemon answers and which token to
//! use come from `MOSAIC_BRIDGE_URL` and `MOSAIC_BRIDGE_TOKEN`; every failure says what
//! happened and what to do. Blocking (`reqwest`): a command makes a few calls and exits.

pub mod agents;
pub mod commands;
pub mod tail;
pub mod tokens;

use std::time::Duration;

use reqwest::{blocking::Client, Method};
use serde_json::Value;

use crate::config::Env;

/// Where the bridge API answers.
pub const ENV_URL: &str = "MOSAIC_BRIDGE_URL";
/// The bearer token of bridge calls.
pub const ENV_TOKEN: &str = "MOSAIC_BRIDGE_TOKEN";
/// `MOSAIC_BRIDGE_URL` when unset: the daemon's default listen address.
pub const DEFAULT_URL: &str = "http://127.0.0.1:9000";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{ENV_TOKEN} is not set: export a bridge token (the `token` commands need an admin token, one of MOSAIC_BRIDGE_TOKENS)")]
    NoToken,
    #[error("{ENV_URL}: {0:?} is not an http(s) URL")]
    BadUrl(String),
    #[error("cannot reach the bridge at {url} ({reason}): is the daemon running, and does {ENV_URL} name its listen address?")]
    Unreachable { url: String, reason: String },
    #[error("{status} {errcode}: {error}{}", hint(*status, errcode))]
    Api {
        status: u16,
        errcode: String,
        error: String,
    },
    #[error("the bridge answered {status} with a body that is not a Matrix error: {body}")]
    Unexpected { status: u16, body: String },
    #[error("{0}")]
    Usage(String),
}

/// What to do about an error answer, where there is something to say.
fn hint(status: u16, errcode: &str) -> &'static str {
    match (status, errcode) {
        (403, "M_FORBIDDEN") => {
            " (check MOSAIC_BRIDGE_TOKEN: is it valid, unexpired, and does it have this scope?)"
        }
        (429, _) => " (this token's rate is exceeded; wait and retry)",
        (503, _) => " (the daemon or its homeserver is unavailable; retry shortly)",
        _ => "",
    }
}

pub struct BridgeClient {
    base: String,
    token: String,
    http: Client,
    /// For streams (no overall timeout).
    stream: Client,
}

impl BridgeClient {
    /// A client for the daemon and token that `env` names.
    pub fn from_env(env: &dyn Env) -> Result<Self, ClientError> {
        let base = env.var(ENV_URL).unwrap_or_else(|| DEFAULT_URL.to_owned());
        let token = env
            .var(ENV_TOKEN)
            .filter(|t| !t.is_empty())
            .ok_or(ClientError::NoToken)?;
        Self::new(&base, &token)
    }

    pub fn new(base: &str, token: &str) -> Result<Self, ClientError> {
        let url = url::Url::parse(base).map_err(|_| ClientError::BadUrl(base.to_owned()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(ClientError::BadUrl(base.to_owned()));
        }
        let http = Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| ClientError::Unreachable {
                url: base.to_owned(),
                reason: e.to_string(),
            })?;
        let stream = Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(None)
            .build()
            .map_err(|e| ClientError::Unreachable {
                url: base.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            http,
            stream,
        })
    }

    /// One call; a 2xx JSON answer, or the error it became.
    pub fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let unreachable = |e: reqwest::Error| ClientError::Unreachable {
            url: self.base.clone(),
            reason: without_url(&e),
        };
        let answer = request.send().map_err(unreachable)?;
        let status = answer.status().as_u16();
        let text = answer.text().map_err(unreachable)?;
        if (200..300).contains(&status) {
            return serde_json::from_str(&text)
                .map_err(|_| ClientError::Unexpected { status, body: text });
        }
        Err(error_of(status, &text))
    }

    /// The HTTP client of streams (no overall timeout).
    fn stream_http(&self) -> &Client {
        &self.stream
    }
}

/// The error an answer with a non-2xx `status` and `body` stands for.
fn error_of(status: u16, body: &str) -> ClientError {
    match serde_json::from_str::<Value>(body) {
        Ok(v) if v["errcode"].is_string() => ClientError::Api {
            status,
            errcode: v["errcode"].as_str().unwrap_or_default().to_owned(),
            error: v["error"].as_str().unwrap_or_default().to_owned(),
        },
        _ => ClientError::Unexpected {
            status,
            body: body.chars().take(200).collect(),
        },
    }
}

/// An HTTP error's reason without the URL (the caller names the daemon once).
fn without_url(e: &reqwest::Error) -> String {
    let mut reason = e.to_string();
    if let Some(url) = e.url() {
        reason = reason.replace(&format!(" ({url})"), "");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        reason = format!("{reason}: {s}");
        source = s.source();
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_names_daemon_and_token() {
        let no_token: [(&str, &str); 0] = [];
        assert!(matches!(
            BridgeClient::from_env(&no_token),
            Err(ClientError::NoToken)
        ));
        let bad = [(ENV_TOKEN, "t"), (ENV_URL, "localhost:9000")];
        assert!(matches!(
            BridgeClient::from_env(&bad),
            Err(ClientError::BadUrl(_))
        ));
        let good = [(ENV_TOKEN, "t"), (ENV_URL, "http://127.0.0.1:1/")];
        assert_eq!(
            BridgeClient::from_env(&good).unwrap().base,
            "http://127.0.0.1:1"
        );
        let default = [(ENV_TOKEN, "t")];
        assert_eq!(BridgeClient::from_env(&default).unwrap().base, DEFAULT_URL);
    }

    #[test]
    fn errors_say_what_to_do() {
        let e = ClientError::Api {
            status: 403,
            errcode: "M_FORBIDDEN".into(),
            error: "this token lacks the admin scope".into(),
        };
        let text = e.to_string();
        assert!(text.starts_with("403 M_FORBIDDEN: this token lacks the admin scope (check"));
        let unreachable = BridgeClient::new("http://127.0.0.1:9", "t")
            .unwrap()
            .call(Method::GET, "/bridge/v1/tokens", None)
            .unwrap_err();
        assert!(
            unreachable
                .to_string()
                .starts_with("cannot reach the bridge at http://127.0.0.1:9 ("),
            "{unreachable}"
        );
    }
}
