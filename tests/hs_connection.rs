//! How the daemon reaches its homeserver (issue 17, item 8): an https homeserver whose
//! certificate a private CA signed is reached once that CA is in the system's store (here
//! the file `SSL_CERT_FILE` names, as rustls-native-certs reads it), and refused without
//! it; `HTTPS_PROXY` carries the connection through a CONNECT tunnel unless `NO_PROXY`
//! names the homeserver. The daemon runs as a process: both come from its environment.

pub mod support;

use std::time::Duration;

use reqwest::StatusCode;
use support::connect_proxy::ConnectProxy;
use support::tls_hs::TlsHomeserver;
use support::{wait_until, Daemon, DaemonOptions};

/// The daemon's ping of its homeserver.
const PING: &str = "POST /_matrix/client/v1/appservice/mosaic-as/ping HTTP/1.1";

#[test]
fn a_homeserver_signed_by_a_ca_in_the_system_store_is_reached() {
    let hs = TlsHomeserver::start("tls-hs");
    let bundle = hs.ca_bundle().display().to_string();
    let options = DaemonOptions {
        env: vec![("SSL_CERT_FILE".into(), bundle)],
        ..Default::default()
    };
    let mut trusting = Daemon::standalone("tls-trusted", &hs.url("127.0.0.1"), "hs.local", options);
    trusting.start();
    trusting.wait_ready(Duration::from_secs(20));
    assert!(
        hs.requests().iter().any(|r| r == PING),
        "{:?}",
        hs.requests()
    );
    let log = trusting.log_text();
    assert!(log.contains("system=1"), "the store held the one CA: {log}");
    trusting.stop();

    // The same daemon without the CA in its store: the certificate's issuer is unknown.
    let before = hs.requests().len();
    let mut refusing = Daemon::standalone(
        "tls-refused",
        &hs.url("127.0.0.1"),
        "hs.local",
        DaemonOptions::default(),
    );
    refusing.start();
    wait_until(
        Duration::from_secs(20),
        "the ping's TLS failure in the log",
        || refusing.log_text().contains("UnknownIssuer").then_some(()),
    );
    let (status, body) = refusing.get("/ready");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("homeserver"), "{body}");
    assert_eq!(hs.requests().len(), before, "no request got through");
}

/// With `HTTPS_PROXY` set, the daemon's TLS to the homeserver runs inside a tunnel through
/// the proxy (the certificate still checked against the store); with `NO_PROXY` naming the
/// homeserver's host, it goes direct.
#[test]
fn https_proxy_carries_the_connection_unless_no_proxy_names_the_host() {
    let hs = TlsHomeserver::start("proxied-hs");
    let proxy = ConnectProxy::start();
    let env = |extra: &[(&str, &str)]| {
        let mut env = vec![
            (
                "SSL_CERT_FILE".to_owned(),
                hs.ca_bundle().display().to_string(),
            ),
            ("HTTPS_PROXY".to_owned(), proxy.url()),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        DaemonOptions {
            env,
            ..Default::default()
        }
    };
    let tunnel = format!("CONNECT localhost:{} HTTP/1.1", hs.port());

    let mut proxied = Daemon::standalone("proxied", &hs.url("localhost"), "hs.local", env(&[]));
    proxied.start();
    proxied.wait_ready(Duration::from_secs(20));
    assert_eq!(
        proxy.tunnels().first(),
        Some(&tunnel),
        "{:?}",
        proxy.tunnels()
    );
    assert!(
        hs.requests().iter().any(|r| r == PING),
        "{:?}",
        hs.requests()
    );
    let log = proxied.log_text();
    assert!(
        log.contains("homeserver connections go through a proxy"),
        "{log}"
    );
    proxied.stop();

    let tunnels = proxy.tunnels().len();
    let no_proxy = env(&[("NO_PROXY", "example.org,localhost")]);
    let mut direct = Daemon::standalone("not-proxied", &hs.url("localhost"), "hs.local", no_proxy);
    direct.start();
    direct.wait_ready(Duration::from_secs(20));
    assert_eq!(proxy.tunnels().len(), tunnels, "{:?}", proxy.tunnels());
}
