//! Per-request context: a request id (span field and `X-Request-Id` header), a span with
//! the method and a bounded route label (never the query string, which may carry a token),
//! and the count of bridge requests by route and status.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    OnceLock,
};

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::{header::HeaderValue, StatusCode},
    middleware::Next,
    Error,
};
use prometheus::IntCounter;
use tracing::Instrument;

use crate::metrics::METRICS;

/// Gives every request an id and a span (method and route label only: query strings may
/// carry tokens), logs its outcome, and counts bridge requests by route and status.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let request_id = RequestId::next();
    let route = route_label(req.match_info().as_str());
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        route = %route,
    );
    let started = std::time::Instant::now();
    let res = next.call(req).instrument(span.clone()).await;
    let status = match &res {
        Ok(r) => r.status(),
        Err(e) => e.as_response_error().status_code(),
    };
    if route.starts_with("/bridge/") {
        count_bridge_request(route, status);
    }
    span.in_scope(|| {
        tracing::debug!(
            status = status.as_u16(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "request done"
        )
    });
    let mut res = res?;
    res.headers_mut().insert(
        actix_web::http::header::HeaderName::from_static("x-request-id"),
        request_id.header_value(),
    );
    Ok(res)
}

/// The route label of a request path (as the router sees it): the pattern of the route it
/// matches, or "other". A fixed set, so metric labels stay bounded, and cheap: no regex,
/// no allocation. Mirrors [`configure`]: a `{param}` is one non-empty path segment.
pub fn route_label(path: &str) -> &'static str {
    /// `path` below `prefix` (the scope matches at a segment boundary only).
    fn under<'p>(path: &'p str, prefix: &str) -> Option<&'p str> {
        let rest = path.strip_prefix(prefix)?;
        (rest.is_empty() || rest.starts_with('/')).then_some(rest)
    }
    /// One non-empty segment after `prefix`: `/prefix/{param}`.
    fn param(rest: &str, prefix: &str) -> bool {
        rest.strip_prefix(prefix)
            .is_some_and(|seg| !seg.is_empty() && !seg.contains('/'))
    }

    if let Some(rest) = under(path, "/bridge/v1") {
        match rest {
            "/messages" => "/bridge/v1/messages",
            "/typing" => "/bridge/v1/typing",
            "/provision/rooms" => "/bridge/v1/provision/rooms",
            "/agents" => "/bridge/v1/agents",
            _ if param(rest, "/agents/") => "/bridge/v1/agents/{agent}",
            _ => match rest.strip_suffix("/events") {
                Some(agent) if param(agent, "/agents/") => "/bridge/v1/agents/{agent}/events",
                _ => "other",
            },
        }
    } else if let Some(rest) = under(path, "/_matrix/app/v1") {
        match rest {
            "/ping" => "/_matrix/app/v1/ping",
            _ if param(rest, "/transactions/") => "/_matrix/app/v1/transactions/{txn_id}",
            _ if param(rest, "/users/") => "/_matrix/app/v1/users/{user_id}",
            _ if param(rest, "/rooms/") => "/_matrix/app/v1/rooms/{alias}",
            _ if rest.starts_with("/thirdparty/") => "/_matrix/app/v1/thirdparty/{tail:.*}",
            _ => "other",
        }
    } else if under(path, "/transactions").is_some_and(|rest| param(rest, "/")) {
        "/transactions/{txn_id}"
    } else {
        match path {
            "/health" => "/health",
            "/ready" => "/ready",
            "/metrics" => "/metrics",
            _ => "other",
        }
    }
}

/// Counts a bridge request; the common answer (200) of each route skips the label look-up.
fn count_bridge_request(route: &'static str, status: StatusCode) {
    static OK: [(&str, OnceLock<IntCounter>); 6] = [
        ("/bridge/v1/messages", OnceLock::new()),
        ("/bridge/v1/typing", OnceLock::new()),
        ("/bridge/v1/provision/rooms", OnceLock::new()),
        ("/bridge/v1/agents", OnceLock::new()),
        ("/bridge/v1/agents/{agent}", OnceLock::new()),
        ("/bridge/v1/agents/{agent}/events", OnceLock::new()),
    ];
    let counter = |route| {
        METRICS
            .bridge_requests
            .with_label_values(&[route, status.as_str()])
    };
    match OK.iter().find(|(r, _)| *r == route) {
        Some((_, ok)) if status == StatusCode::OK => ok.get_or_init(|| counter(route)).inc(),
        _ => counter(route).inc(),
    }
}

/// A request id: unique within the process (a counter) and across restarts (a random
/// prefix drawn once per process), 24 hex digits. Cheaper than a random UUID per request.
#[derive(Clone, Copy)]
pub struct RequestId([u8; 24]);

impl RequestId {
    pub fn next() -> Self {
        static PREFIX: OnceLock<u32> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let prefix = *PREFIX.get_or_init(rand::random);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut id = [0u8; 24];
        let digits = (u128::from(prefix) << 64) | u128::from(n);
        for (i, b) in id.iter_mut().enumerate() {
            *b = b"0123456789abcdef"[(digits >> (4 * (23 - i)) & 0xf) as usize];
        }
        Self(id)
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("hex digits")
    }

    fn header_value(&self) -> HeaderValue {
        HeaderValue::from_bytes(&self.0).expect("hex digits")
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_labelled_by_pattern() {
        let cases = [
            ("/bridge/v1/messages", "/bridge/v1/messages"),
            ("/bridge/v1/typing", "/bridge/v1/typing"),
            ("/bridge/v1/provision/rooms", "/bridge/v1/provision/rooms"),
            ("/bridge/v1/agents", "/bridge/v1/agents"),
            ("/bridge/v1/agents/alice", "/bridge/v1/agents/{agent}"),
            ("/bridge/v1/agents/events", "/bridge/v1/agents/{agent}"),
            (
                "/bridge/v1/agents/alice/events",
                "/bridge/v1/agents/{agent}/events",
            ),
            (
                "/bridge/v1/agents/events/events",
                "/bridge/v1/agents/{agent}/events",
            ),
            (
                "/_matrix/app/v1/transactions/t1",
                "/_matrix/app/v1/transactions/{txn_id}",
            ),
            (
                "/_matrix/app/v1/users/@a:hs",
                "/_matrix/app/v1/users/{user_id}",
            ),
            (
                "/_matrix/app/v1/rooms/%23a:hs",
                "/_matrix/app/v1/rooms/{alias}",
            ),
            ("/_matrix/app/v1/ping", "/_matrix/app/v1/ping"),
            (
                "/_matrix/app/v1/thirdparty/protocol/x",
                "/_matrix/app/v1/thirdparty/{tail:.*}",
            ),
            (
                "/_matrix/app/v1/thirdparty/",
                "/_matrix/app/v1/thirdparty/{tail:.*}",
            ),
            ("/transactions/t1", "/transactions/{txn_id}"),
            ("/health", "/health"),
            ("/ready", "/ready"),
            ("/metrics", "/metrics"),
        ];
        for (path, label) in cases {
            assert_eq!(route_label(path), label, "{path}");
        }
    }

    #[test]
    fn unknown_paths_are_other() {
        for path in [
            "",
            "/",
            "/bridge",
            "/bridge/v1",
            "/bridge/v1/",
            "/bridge/v10/messages",
            "/bridge/v1/messages/",
            "/bridge/v1/messages/x",
            "/bridge/v1/agents/",
            "/bridge/v1/agents//events",
            "/bridge/v1/agents/a/b",
            "/bridge/v1/agents/a/events/",
            "/bridge/v1/agents/a/b/events",
            "/bridge/v1/provision",
            "/_matrix/app/v1",
            "/_matrix/app/v1/transactions",
            "/_matrix/app/v1/transactions/",
            "/_matrix/app/v1/transactions/a/b",
            "/_matrix/app/v1/thirdparty",
            "/_matrix/app/v1/pingx",
            "/_matrix/app/v2/ping",
            "/transactions",
            "/transactions/",
            "/transactions/a/b",
            "/transactionsx/a",
            "/healthz",
            "/metrics/",
            "/agents-of-a-very-long-slug-that-must-not-become-a-label",
        ] {
            assert_eq!(route_label(path), "other", "{path:?}");
        }
    }

    #[test]
    fn request_ids_are_distinct_hex_with_one_prefix() {
        let a = RequestId::next();
        let b = RequestId::next();
        assert_ne!(a.as_str(), b.as_str());
        for id in [a, b] {
            assert_eq!(id.as_str().len(), 24);
            assert!(id.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
            assert!(!id.as_str().bytes().any(|c| c.is_ascii_uppercase()));
        }
        assert_eq!(a.as_str()[..8], b.as_str()[..8], "one prefix per process");
        assert_eq!(a.to_string(), a.as_str());
        assert_eq!(a.header_value().to_str().unwrap(), a.as_str());
    }
}
