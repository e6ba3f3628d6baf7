//! Tests of one HTTP exchange against servers on loopback: answers, TLS and its roots,
//! limits and timeouts, errors.

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
    Transport::new(crate::matrix::tls::client_config(roots), direct)
}

#[tokio::test]
async fn an_answer_is_read_with_its_status_and_retry_hint() {
    let reply = b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nContent-Length: 2\r\n\r\n{}";
    let (addr, seen) = one_shot(Some(reply.to_vec())).await;
    let uri: Uri = format!("http://{addr}/_matrix/client/v3/x?user_id=%40a%3Ab")
        .parse()
        .unwrap();
    let answer = plain_transport()
        .send(
            Method::PUT,
            uri,
            &auth(),
            Some(Body::json(Bytes::from_static(b"{\"a\":1}"))),
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
