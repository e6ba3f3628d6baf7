//! HTTP transport of the homeserver client: hyper's pooled client (the engine under
//! reqwest) with rustls trusting what [`super::tls`] loads, through the proxy
//! [`super::proxy`] finds for the homeserver (if any), one pool per thread, one attempt per
//! call of [`Transport::send`].
//!
//! Why not reqwest itself: its redirect layer turns every request's URI into a string and
//! parses it as a `Url` twice (once before sending, once for the response), and each request
//! also passes a retry and a proxy layer. On the bridge's hot path (one homeserver call per
//! message) the daemon's CPU per send fell from ~48 to ~36 µs without them (README
//! "Performance"). The daemon never follows redirects and retries under its own policy
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

use super::proxy::ProxyConnector;

/// Longest homeserver answer read (larger ones fail the attempt).
pub const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;
/// Time to set up a TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// An idle keep-alive connection is closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle keep-alive connections kept per thread.
const MAX_IDLE_PER_THREAD: usize = 256;

type Pool = Client<HttpsConnector<ProxyConnector>, Full<Bytes>>;

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
        body: Option<Bytes>,
        timeout: Duration,
    ) -> Result<Answer, TransportError> {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(AUTHORIZATION, auth.clone());
        if body.is_some() {
            req = req.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let req = req
            .body(Full::new(body.unwrap_or_default()))
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
mod tests {
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
    };

    use super::*;

    /// A server on loopback that reads one request's first bytes, hands them over and
    /// answers with `reply` (or nothing, when `None`, keeping the connection open).
    async fn one_shot(reply: Option<Vec<u8>>) -> (String, tokio::sync::oneshot::Receiver<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = vec![0; 4096];
            let n = sock.read(&mut buf).await.unwrap();
            let _ = tx.send(buf[..n].to_vec());
            match reply {
                Some(reply) => {
                    let _ = sock.write_all(&reply).await;
                }
                None => tokio::time::sleep(Duration::from_secs(30)).await,
            }
        });
        (addr.to_string(), rx)
    }

    fn auth() -> HeaderValue {
        HeaderValue::from_static("Bearer t")
    }

    /// A transport trusting the built-in roots only, without proxies.
    fn plain_transport() -> Transport {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        trusting(roots)
    }

    /// A transport trusting `roots`, without proxies.
    fn trusting(roots: rustls::RootCertStore) -> Transport {
        let direct = Arc::new(Matcher::builder().build());
        Transport::new(super::super::tls::client_config(roots), direct)
    }

    #[tokio::test]
    async fn an_answer_is_read_with_its_status_and_retry_hint() {
        let reply =
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nContent-Length: 2\r\n\r\n{}";
        let (addr, seen) = one_shot(Some(reply.to_vec())).await;
        let uri: Uri = format!("http://{addr}/_matrix/client/v3/x?user_id=%40a%3Ab")
            .parse()
            .unwrap();
        let answer = plain_transport()
            .send(
                Method::PUT,
                uri,
                &auth(),
                Some(Bytes::from_static(b"{\"a\":1}")),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert_eq!(answer.status, 429);
        assert_eq!(answer.retry_after, Some(Duration::from_secs(3)));
        assert_eq!(&answer.body[..], b"{}");
        let request = String::from_utf8(seen.await.unwrap()).unwrap();
        assert!(
            request.starts_with("PUT /_matrix/client/v3/x?user_id=%40a%3Ab HTTP/1.1\r\n"),
            "{request}"
        );
        let lower = request.to_ascii_lowercase();
        assert!(lower.contains("authorization: bearer t\r\n"), "{request}");
        assert!(
            lower.contains("content-type: application/json\r\n"),
            "{request}"
        );
        assert!(lower.contains("content-length: 7\r\n"), "{request}");
        assert!(request.ends_with("{\"a\":1}"), "{request}");
    }

    /// A CA made here, and a server on loopback with a certificate for `localhost` and
    /// `127.0.0.1` that it signed, answering one request over TLS with `200 {}`.
    async fn tls_server() -> (rustls::pki_types::CertificateDer<'static>, String) {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let leaf = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (sock, _) = listener.accept().await.unwrap();
            let Ok(mut tls) = acceptor.accept(sock).await else {
                return; // the client refused the certificate
            };
            let mut buf = vec![0; 4096];
            let _ = tls.read(&mut buf).await;
            let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
            let _ = tls.write_all(reply).await;
            let _ = tls.flush().await;
        });
        (ca.der().clone(), addr)
    }

    /// A homeserver whose certificate a private CA signed is reached when the roots hold
    /// that CA, and refused (unknown issuer) with the built-in roots alone.
    #[tokio::test]
    async fn an_https_homeserver_is_trusted_through_the_roots() {
        let (ca, addr) = tls_server().await;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca).unwrap();
        let uri: Uri = format!("https://{addr}/x").parse().unwrap();
        let answer = trusting(roots)
            .send(Method::GET, uri, &auth(), None, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!((answer.status, &answer.body[..]), (200, &b"{}"[..]));

        let (_, addr) = tls_server().await;
        let uri: Uri = format!("https://{addr}/x").parse().unwrap();
        let err = plain_transport()
            .send(Method::GET, uri, &auth(), None, Duration::from_secs(5))
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    }

    #[tokio::test]
    async fn an_https_homeserver_is_spoken_to_in_tls() {
        // A plain server: the client's first bytes must be a TLS handshake record.
        let (addr, seen) = one_shot(Some(b"HTTP/1.1 200 OK\r\n\r\n".to_vec())).await;
        let uri: Uri = format!("https://{addr}/_matrix/client/v3/x")
            .parse()
            .unwrap();
        let outcome = plain_transport()
            .send(Method::GET, uri, &auth(), None, Duration::from_secs(5))
            .await;
        assert!(matches!(outcome, Err(TransportError::Request(_))));
        let first = seen.await.unwrap();
        assert_eq!(first.first(), Some(&0x16), "not a TLS handshake: {first:?}");
    }

    #[tokio::test]
    async fn an_oversized_answer_fails_the_attempt() {
        let mut reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            MAX_ANSWER_BYTES + 1
        )
        .into_bytes();
        reply.resize(reply.len() + MAX_ANSWER_BYTES + 1, b' ');
        let (addr, _seen) = one_shot(Some(reply)).await;
        let uri: Uri = format!("http://{addr}/x").parse().unwrap();
        let outcome = plain_transport()
            .send(Method::GET, uri, &auth(), None, Duration::from_secs(5))
            .await;
        assert!(
            matches!(outcome, Err(TransportError::Body(_))),
            "{:?}",
            outcome.err()
        );
    }

    #[tokio::test]
    async fn a_silent_homeserver_times_the_attempt_out() {
        let (addr, _seen) = one_shot(None).await;
        let uri: Uri = format!("http://{addr}/x").parse().unwrap();
        let started = std::time::Instant::now();
        let outcome = plain_transport()
            .send(Method::GET, uri, &auth(), None, Duration::from_millis(300))
            .await;
        assert!(matches!(outcome, Err(TransportError::TimedOut(_))));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_refused_connection_names_the_cause() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let uri: Uri = format!("http://{addr}/x").parse().unwrap();
        let err = plain_transport()
            .send(Method::GET, uri, &auth(), None, Duration::from_secs(5))
            .await
            .err()
            .unwrap();
        assert!(err.to_string().to_lowercase().contains("refused"), "{err}");
        assert!(!err.to_string().contains("/x"), "no URL in errors: {err}");
    }
}
