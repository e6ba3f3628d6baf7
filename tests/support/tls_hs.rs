//! A homeserver over TLS, for tests of how the daemon reaches one: a CA made in the test
//! (rcgen), written as a PEM bundle the way a system store keeps one, and a TLS server
//! (tokio-rustls, on loopback) whose certificate for `localhost` and `127.0.0.1` that CA
//! signed. It answers every request `200 {}` and records each request line; enough for the
//! daemon's ping, so `/ready` tells whether the daemon reached it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::rustls::{
    self,
    pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer},
};

use super::process::ScratchDir;

/// The server and its CA; both go when dropped.
pub struct TlsHomeserver {
    port: u16,
    ca_bundle: PathBuf,
    requests: Arc<Mutex<Vec<String>>>,
    /// Runs the server; dropping it stops it.
    _runtime: tokio::runtime::Runtime,
    _dir: ScratchDir,
}

impl TlsHomeserver {
    pub fn start(name: &str) -> TlsHomeserver {
        let dir = ScratchDir::new(name);
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, format!("mosaic-as test CA {name}"));
        let ca = ca.self_signed(&ca_key).expect("self-signed CA");
        let ca_bundle = dir.path().join("ca-certificates.crt");
        std::fs::write(&ca_bundle, ca.pem()).expect("write the CA bundle");

        let key = KeyPair::generate().expect("server key");
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let cert = CertificateParams::new(names)
            .expect("server params")
            .signed_by(&key, &ca, &ca_key)
            .expect("server certificate");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .expect("server TLS config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the TLS homeserver");
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind the TLS homeserver");
        let port = listener.local_addr().expect("its address").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        runtime.spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let (acceptor, seen) = (acceptor.clone(), seen.clone());
                tokio::spawn(async move {
                    // A client that refuses the certificate ends the handshake: nothing to do.
                    if let Ok(tls) = acceptor.accept(sock).await {
                        serve(tls, seen).await;
                    }
                });
            }
        });
        TlsHomeserver {
            port,
            ca_bundle,
            requests,
            _runtime: runtime,
            _dir: dir,
        }
    }

    /// `https://<host>:<port>` (`host`: `localhost` or `127.0.0.1`).
    pub fn url(&self, host: &str) -> String {
        format!("https://{host}:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The CA as a PEM bundle file (what `SSL_CERT_FILE` names).
    pub fn ca_bundle(&self) -> &Path {
        &self.ca_bundle
    }

    /// Request lines received over TLS so far (`POST /path HTTP/1.1`).
    pub fn requests(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// HTTP/1.1 on one connection: each request's line recorded, its body read, `200 {}`.
async fn serve<S>(stream: S, seen: Arc<Mutex<Vec<String>>>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut stream = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if stream.read_line(&mut header).await.unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        seen.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line.trim_end().to_owned());
        let reply =
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
        if stream.get_mut().write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}
