//! Per-request context: a request id (span field and `X-Request-Id` header), a span with
//! the method and a bounded route label (never the query string, which may carry a token),
//! the count of bridge requests by route and status, and the console's live view told of
//! bridge answers of 500 and above; routes and labels are those of [`super::ROUTES`].

use std::sync::{
    atomic::{AtomicU64, Ordering},
    OnceLock,
};

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::{header::HeaderValue, StatusCode},
    middleware::Next,
    web, Error,
};
use prometheus::{Histogram, IntCounter};
use tracing::Instrument;

use super::{error::ServerErrcode, Scope, ROUTES};
use crate::{activity::ActivityError, actors::AppState, ids::AgentSlug, metrics::METRICS};

/// Gives every request an id and a span (method and route label only: query strings may
/// carry tokens), logs its outcome, and counts bridge requests by route and status.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let request_id = RequestId::next();
    let route = route_index(req.match_info().as_str());
    let label = route.map_or(OTHER, |i| ROUTES[i].pattern);
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        route = %label,
    );
    let started = std::time::Instant::now();
    let res = next.call(req).instrument(span.clone()).await;
    let status = match &res {
        Ok(r) => r.status(),
        Err(e) => e.as_response_error().status_code(),
    };
    if let Some(i) = route.filter(|&i| ROUTES[i].scope == Scope::Bridge) {
        count_bridge_request(i, status, started.elapsed());
        if status.is_server_error() {
            if let Ok(res) = &res {
                report_server_error(res, ROUTES[i].pattern, status, request_id);
            }
        }
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

/// Tells the live view of a bridge answer of 500 or above: the route, the status and
/// errcode, the agent named by the path or the `agent` query parameter, the request id.
fn report_server_error<B>(
    res: &ServiceResponse<B>,
    route: &'static str,
    status: StatusCode,
    request_id: RequestId,
) {
    let req = res.request();
    let Some(app) = req.app_data::<web::Data<AppState>>() else {
        return;
    };
    let method = super::Verb::ALL
        .into_iter()
        .find(|v| v.as_http() == req.method().as_str())
        .map_or("OTHER", |v| v.as_http());
    let mut error = ActivityError::bridge(route, method, status.as_u16());
    if let Some(errcode) = res.response().extensions().get::<ServerErrcode>() {
        error = error.with_errcode(&errcode.0);
    }
    let from_query = || {
        url::form_urlencoded::parse(req.query_string().as_bytes())
            .find(|(k, _)| k == "agent")
            .map(|(_, v)| v.into_owned())
    };
    let agent = req
        .match_info()
        .get("agent")
        .map(str::to_owned)
        .or_else(from_query);
    error.agent = agent.and_then(|a| AgentSlug::parse(&a).ok());
    error.request_id = Some(request_id.to_string());
    app.activity.report(error);
}

/// Label of a path that matches no route.
const OTHER: &str = "other";

/// The route label of a request path (as the router sees it): the pattern of the route it
/// matches, or "other". A fixed set, so metric labels stay bounded, and cheap: a scan of
/// [`ROUTES`], no regex, no allocation.
pub fn route_label(path: &str) -> &'static str {
    route_index(path).map_or(OTHER, |i| ROUTES[i].pattern)
}

/// The index in [`ROUTES`] of the route `path` matches.
fn route_index(path: &str) -> Option<usize> {
    ROUTES.iter().position(|r| matches(r.pattern, path))
}

/// Whether `path` matches `pattern` as the router matches it: literal segments are equal,
/// a `{param}` is one non-empty segment, and a last `{param:.*}` is the rest of the path,
/// empty or not.
fn matches(pattern: &str, path: &str) -> bool {
    let mut segments = path.split('/');
    for want in pattern.split('/') {
        let Some(got) = segments.next() else {
            return false;
        };
        match want.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(param) if param.ends_with(":.*") => return true,
            Some(_) if got.is_empty() => return false,
            Some(_) => {}
            None if want != got => return false,
            None => {}
        }
    }
    segments.next().is_none()
}

/// Counts a request to bridge route `route` (an index in [`ROUTES`]) and its latency; the
/// common answer (200) of each route and the latency skip the label look-up.
fn count_bridge_request(route: usize, status: StatusCode, elapsed: std::time::Duration) {
    static OK: [OnceLock<IntCounter>; ROUTES.len()] = [const { OnceLock::new() }; ROUTES.len()];
    static LATENCY: [OnceLock<Histogram>; ROUTES.len()] = [const { OnceLock::new() }; ROUTES.len()];
    LATENCY[route]
        .get_or_init(|| {
            METRICS
                .bridge_latency
                .with_label_values(&[ROUTES[route].pattern])
        })
        .observe(elapsed.as_secs_f64());
    let counter = || {
        METRICS
            .bridge_requests
            .with_label_values(&[ROUTES[route].pattern, status.as_str()])
    };
    if status == StatusCode::OK {
        OK[route].get_or_init(counter).inc();
    } else {
        counter().inc();
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
            ("/console", "/console"),
            ("/console/app.js", "/console/{file}"),
            ("/bridge/v1/activity", "/bridge/v1/activity"),
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
    fn every_registered_pattern_is_its_own_label() {
        for route in ROUTES {
            let below = route.pattern.strip_prefix(route.scope.prefix());
            assert!(
                below.is_some_and(|p| p.starts_with('/')),
                "{} is below {:?}",
                route.pattern,
                route.scope
            );
            let segments: Vec<_> = route.pattern.split('/').collect();
            for (i, segment) in segments.iter().enumerate() {
                let Some(param) = segment.strip_prefix('{') else {
                    continue;
                };
                let last = i + 1 == segments.len();
                assert!(
                    param.ends_with('}')
                        && (!param.contains(':') || (last && param.ends_with(":.*}"))),
                    "{}: only {{param}} and a last {{param:.*}}",
                    route.pattern
                );
            }
            let tail = route.pattern.ends_with(":.*}");
            // A tail may span segments or be empty.
            let samples: &[&str] = if tail { &["x", "a/b", ""] } else { &["x"] };
            for sample in samples {
                let path = route
                    .pattern
                    .split('/')
                    .map(|s| match s {
                        _ if s.ends_with(":.*}") => *sample,
                        _ if s.starts_with('{') => "x",
                        _ => s,
                    })
                    .collect::<Vec<_>>()
                    .join("/");
                assert_eq!(route_label(&path), route.pattern, "{path}");
            }
        }
        let mut patterns: Vec<_> = ROUTES.iter().map(|r| r.pattern).collect();
        patterns.sort_unstable();
        patterns.dedup();
        assert_eq!(patterns.len(), ROUTES.len(), "every pattern once");
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
