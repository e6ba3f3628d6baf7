//! HTTP transport of the homeserver client: hyper's pooled client (the engine under
//! reqwest) with rustls trusting what [`super::tls`] loads, through the proxy
//! [`super::proxy`] finds for the homeserver (if any), one pool per thread, one attempt per
//! call of [`Transport::send`].
//!
//! Why not reqwest itself: its redirect layer turns every request's URI into a string and
//! parses it as a `Url` twice (once before sending, once for the response), and each request
//! also passes a retry and a proxy layer. On the bridge's hot path (one homeserver call per
//! message) the daemon's CPU per send fell from ~48 to ~36 µs without them (docs/performance.md,
//! "What moved the figures"). The daemon never follows redirects and retries under its own policy
//! ([`super::retry`]), and a proxy only concerns new connections, so it talks to hyper
//! directly: same connection pool, same TLS stack, the same proxy matcher.

use std::{
    cell::RefCell,
    sync::{Arc, Weak},
    time::Duration,
};

use bytes::Bytes;
use http::{
    header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER},
    Method, Request, Uri,
};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::{
    client::{
        legacy::{connect::HttpConnector, Client},
        proxy::matcher::Matcher,
    },
    rt::{TokioExecutor, TokioTimer},
};
use rustls::ClientConfig;

use super::{
    proxy::{self, ProxyConnector},
    tls,
};

/// Longest homeserver answer read (larger ones fail the attempt).
pub const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;
/// Time to set up a TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// An idle keep-alive connection is closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle keep-alive connections kept per thread.
const MAX_IDLE_PER_THREAD: usize = 256;

type Pool = Client<HttpsConnector<ProxyConnector>, Full<Bytes>>;

/// A request body and its type.
#[derive(Debug, Clone)]
pub struct Body {
    pub bytes: Bytes,
    pub content_type: HeaderValue,
}

impl Body {
    /// A JSON body.
    pub fn json(bytes: Bytes) -> Self {
        Self {
            bytes,
            content_type: HeaderValue::from_static("application/json"),
        }
    }
}

/// A finished HTTP exchange.
pub struct Answer {
    pub status: u16,
    /// `Retry-After` in seconds, when present and numeric.
    pub retry_after: Option<Duration>,
    pub body: Bytes,
}

/// What made an attempt fail before an answer arrived (its text goes into
/// `HomeserverError::Unreachable`, so it never holds the URL).
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("{0}")]
    Request(String),
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    #[error("answer body unreadable: {0}")]
    Body(String),
}

thread_local! {
    /// This thread's pool of each live owner (see [`Transport::pool`]).
    static POOLS: RefCell<Vec<(Weak<()>, Pool)>> = const { RefCell::new(Vec::new()) };
}

/// Shared by the clones of one homeserver client; identifies its per-thread pools.
pub struct Transport {
    owner: Arc<()>,
    /// TLS of every pool (read once: loading the system store reads files).
    tls: Arc<ClientConfig>,
    /// Proxy rules (read once, from the environment).
    proxies: Arc<Matcher>,
}

fn build_pool(tls: &ClientConfig, proxies: &Arc<Matcher>) -> Pool {
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let to_proxy = https_or_http(tls, tcp.clone());
    let tls = https_or_http(tls, ProxyConnector::new(tcp, to_proxy, proxies.clone()));
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(IDLE_TIMEOUT)
        .pool_max_idle_per_host(MAX_IDLE_PER_THREAD)
        .build(tls)
}

/// TLS (HTTP/1.1) over `inner`'s connections for https URLs; `inner`'s as they are for http.
fn https_or_http<C>(tls: &ClientConfig, inner: C) -> HttpsConnector<C> {
    HttpsConnectorBuilder::new()
        .with_tls_config(tls.clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(inner)
}

impl Transport {
    /// Connections to `homeserver` as the machine is set up: its CA store (and the built-in
    /// roots), its proxy variables.
    pub fn for_homeserver(homeserver: &url::Url) -> Self {
        Self::new(
            tls::client_config(tls::roots()),
            proxy::from_env(homeserver),
        )
    }

    pub fn new(tls: Arc<ClientConfig>, proxies: Arc<Matcher>) -> Self {
        Self {
            owner: Arc::new(()),
            tls,
            proxies,
        }
    }

    /// The calling thread's pool. hyper runs each pooled connection as a task on the
    /// runtime that opened it, and every actix arbiter is a single-threaded runtime: with one
    /// pool shared by the arbiters, a request would often go out on a connection owned by
    /// another thread, costing a cross-thread wake-up each way. A pool per thread keeps a
    /// send and its connection on one thread.
    fn pool(&self) -> Pool {
        let me = Arc::as_ptr(&self.owner);
        POOLS.with(|pools| {
            let mut pools = pools.borrow_mut();
            // A live `Weak` keeps its allocation, so an address match is this owner.
            if let Some((_, pool)) = pools.iter().find(|(w, _)| w.as_ptr() == me) {
                return pool.clone();
            }
            pools.retain(|(w, _)| w.strong_count() > 0);
            let pool = build_pool(&self.tls, &self.proxies);
            pools.push((Arc::downgrade(&self.owner), pool.clone()));
            pool
        })
    }

    /// One HTTP exchange, bounded by `timeout` from start to the end of the answer body.
    pub async fn send(
        &self,
        method: Method,
        uri: Uri,
        auth: &HeaderValue,
        body: Option<Body>,
        timeout: Duration,
    ) -> Result<Answer, TransportError> {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(AUTHORIZATION, auth.clone());
        let body = match body {
            Some(Body {
                bytes,
                content_type,
            }) => {
                req = req.header(CONTENT_TYPE, content_type);
                bytes
            }
            None => Bytes::new(),
        };
        let req = req
            .body(Full::new(body))
            .map_err(|e| TransportError::Request(e.to_string()))?;
        let pool = self.pool();
        let exchange = async move {
            let resp = pool
                .request(req)
                .await
                .map_err(|e| TransportError::Request(describe(&e)))?;
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .map(Duration::from_secs);
            let body = Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| TransportError::Body(e.to_string()))?
                .to_bytes();
            Ok(Answer {
                status,
                retry_after,
                body,
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| TransportError::TimedOut(timeout))?
    }
}

/// An error and its causes on one line ("client error (Connect): tcp connect error:
/// Connection refused (os error 111)").
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests;
