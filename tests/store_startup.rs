//! A PostgreSQL store the daemon cannot use: a server that is not there (a closed port), a
//! database that does not exist, a role that does not exist. `mosaic-as serve` exits at
//! start-up with an error that names the problem, and `mosaic-as check-config` reports the
//! same; neither prints the password (`MOSAIC_STORE_PASSWORD`; a URL that holds one is
//! refused, without showing it).
//! These tests ask for PostgreSQL themselves (the test server of `MOSAIC_TEST_POSTGRES_URL`),
//! whatever `MOSAIC_TEST_STORE` says.

pub mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::cli::{check_config, offline};
use support::postgres::admin_url;
use support::process::random_hex;
use support::{free_port, Daemon, DaemonOptions, TestStore};

/// Longest a refused start may take: the server answers (or refuses) at once.
const START_FAILS_WITHIN: Duration = Duration::from_secs(30);

/// A store URL on the test server with `user` and `database` (and, when given, another
/// port); no password.
fn store_url(user: &str, database: &str, port: Option<u16>) -> String {
    let mut url = url::Url::parse(&admin_url()).expect("the test server's URL");
    url.set_username(user).expect("a user");
    url.set_password(None).expect("no password");
    url.set_path(&format!("/{database}"));
    if port.is_some() {
        url.set_port(port).expect("a port");
    }
    url.into()
}

/// A daemon config with this store URL and `MOSAIC_STORE_PASSWORD` (nothing is started).
fn daemon_with(name: &str, url: &str, password: &str) -> Daemon {
    offline(
        name,
        DaemonOptions {
            store: TestStore::Url(url.to_owned()),
            env: vec![("MOSAIC_STORE_PASSWORD".into(), password.into())],
            ..Default::default()
        },
    )
}

/// Runs `mosaic-as serve` and waits for it to exit; answers its exit code and output.
fn serve_refused(d: &Daemon) -> (i32, String) {
    let mut cmd = d.command(&["serve", "--config"]);
    cmd.arg(d.config_path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn mosaic-as serve");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let began = Instant::now();
    let Ok(out) = rx.recv_timeout(START_FAILS_WITHIN) else {
        // SAFETY: plain kill(2) of our own child, not reaped yet (its waiter still waits).
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        panic!("mosaic-as serve was still running after {START_FAILS_WITHIN:?}");
    };
    let out = out.expect("wait for mosaic-as serve");
    eprintln!("serve exited after {:.1?}", began.elapsed());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Asserts that `serve` is refused and `check-config` reports the problem: both name the
/// store and say `what` (each of `what` appears), and neither shows `password`.
fn refused(d: &Daemon, password: &str, what: &[&str]) {
    let (code, text) = serve_refused(d);
    assert_ne!(code, 0, "serve started: {text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("serve printed no error line: {text}"));
    assert!(line.contains("store"), "serve: {line}");
    for w in what {
        assert!(line.contains(w), "serve does not say {w:?}: {line}");
    }
    assert!(
        !text.contains(password),
        "serve printed the password: {text}"
    );
    let log = d.log_text();
    assert!(!log.contains(password), "the log shows the password: {log}");

    let (code, text) = check_config(d, |_| {});
    assert_eq!(code, 2, "check-config accepted it: {text}");
    let line = text
        .lines()
        .find(|l| l.contains("store.url"))
        .unwrap_or_else(|| panic!("check-config does not name store.url: {text}"));
    for w in what {
        assert!(line.contains(w), "check-config does not say {w:?}: {line}");
    }
    assert!(
        !text.contains(password),
        "check-config printed the password: {text}"
    );
}

/// A server that is not there: nothing listens on the port.
#[test]
fn an_unreachable_postgres_server_is_named_at_start_up() {
    let password = format!("pw-{}", random_hex(8));
    let url = store_url("postgres", "mosaic", Some(free_port()));
    let d = daemon_with("pg-unreachable", &url, &password);
    refused(&d, &password, &["refused"]);
}

/// The server is there, the database is not.
#[test]
fn a_database_that_does_not_exist_is_named_at_start_up() {
    let password = format!("pw-{}", random_hex(8));
    let database = format!("mosaic_it_absent_{}", random_hex(4));
    let d = daemon_with(
        "pg-no-database",
        &store_url("postgres", &database, None),
        &password,
    );
    refused(&d, &password, &[&database, "does not exist"]);
}

/// The server is there, the role is not.
#[test]
fn a_role_that_does_not_exist_is_named_at_start_up() {
    let password = format!("pw-{}", random_hex(8));
    let user = format!("nobody_{}", random_hex(4));
    let d = daemon_with("pg-no-role", &store_url(&user, "postgres", None), &password);
    refused(&d, &password, &[&user, "does not exist"]);
}

/// A password in `store.url` itself is refused before anything is reached, without showing
/// it.
#[test]
fn a_password_in_the_store_url_is_refused_unseen() {
    let password = format!("pw-{}", random_hex(8));
    let mut url = url::Url::parse(&store_url("postgres", "postgres", None)).expect("a URL");
    url.set_password(Some(&password)).expect("a password");
    let d = daemon_with("pg-url-password", url.as_str(), "");
    refused(&d, &password, &["password", "MOSAIC_STORE_PASSWORD"]);
}

/// A reachable database with the right role passes `check-config`.
#[test]
fn check_config_accepts_a_reachable_database() {
    let d = offline(
        "pg-check-ok",
        DaemonOptions {
            store: TestStore::Postgres,
            ..Default::default()
        },
    );
    let (code, text) = check_config(&d, |_| {});
    assert_eq!(code, 0, "{text}");
}
