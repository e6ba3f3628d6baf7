//! How the daemon reaches its homeserver (issue 17, item 8): an https homeserver whose
//! certificate a private CA signed is reached once that CA is in the system's store (here
//! the file `SSL_CERT_FILE` names, as rustls-native-certs reads it), and refused without
//! it. The daemon runs as a process: the store is read from its environment.

pub mod support;

use std::time::Duration;

use reqwest::StatusCode;
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
