//! Plain HTTP calls to the daemon that keep the whole answer (status, headers, body
//! text), for tests of status codes, auth rules and error bodies.

use std::time::Duration;

use reqwest::blocking::Client;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// The client of [`call`]: no proxy, 30 s per request.
pub fn client() -> Client {
    super::http_client(Duration::from_secs(30))
}

/// An answer: status, headers, body text.
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| {
            panic!(
                "answer {} is not JSON ({e}): {:?}",
                self.status,
                self.text.chars().take(300).collect::<String>()
            )
        })
    }

    /// Asserts status and errcode (and a JSON error body).
    pub fn expect_error(&self, status: u16, errcode: &str, what: &str) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "{what}: status (body {})",
            self.text
        );
        let body = self.json();
        assert_eq!(body["errcode"], errcode, "{what}: errcode in {body}");
        assert!(body["error"].is_string(), "{what}: error text in {body}");
    }
}

/// A request with an optional bearer token and raw body.
pub fn call(method: Method, url: &str, bearer: Option<&str>, body: Option<Vec<u8>>) -> Resp {
    let mut req = client().request(method.clone(), url);
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.header("content-type", "application/json").body(body);
    }
    let resp = req.send().unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    Resp {
        status: resp.status(),
        headers: resp.headers().clone(),
        text: resp.text().unwrap_or_default(),
    }
}

/// A JSON value as the raw body of [`call`].
pub fn json_body(v: &Value) -> Option<Vec<u8>> {
    Some(v.to_string().into_bytes())
}

/// The first 120 characters of a JSON value, for assertion messages.
pub fn truncate(v: &Value) -> String {
    v.to_string().chars().take(120).collect()
}
