//! `mosaic-as token create | list | revoke` against the in-process daemon: the created value
//! alone on stdout and usable at once, the list without values, revocation at once, and
//! errors that say what happened (a wrong token, a daemon that is not there, bad input).

pub mod support;

use reqwest::{Method, StatusCode};
use support::{
    app::spawn_app,
    cli::bridge_client,
    daemon_api::{put_agent, DaemonApi},
    tokens::call_as,
};

#[test]
fn create_list_and_revoke_from_the_command_line() {
    let app = spawn_app("cli-tokens");
    put_agent(&app, "planner-1");
    let admin = Some(app.bridge_token());
    let url = app.base_url().to_owned();
    let run = bridge_client(
        &url,
        admin,
        &[
            "token",
            "create",
            "--name",
            "planner",
            "--scope",
            "send,read",
            "--agent",
            "planner-*",
            "--expires-in",
            "30d",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let value = run.stdout.trim_end_matches('\n');
    assert!(
        value.starts_with("mas_") && !value.contains(char::is_whitespace),
        "stdout: {:?}",
        run.stdout
    );
    assert_eq!(
        run.stdout,
        format!("{value}\n"),
        "nothing but the value on stdout"
    );
    assert!(
        run.stderr.contains("scopes send,read; agents planner-*"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(value), "the value went to stderr too");

    let r = call_as(
        &app,
        Some(value),
        Method::GET,
        "/bridge/v1/agents/planner-1",
        None,
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let list = bridge_client(&url, admin, &["token", "list"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert!(list.stdout.starts_with("ID "), "{}", list.stdout);
    assert!(list.stdout.contains("planner-*") && !list.stdout.contains(value));
    let id = list
        .stdout
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .expect("a token row")
        .to_owned();
    let json = bridge_client(&url, admin, &["token", "list", "--json"]);
    let parsed: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(parsed[0]["id"], id.as_str());

    let revoke = bridge_client(&url, admin, &["token", "revoke", &id]);
    assert_eq!(
        (revoke.code, revoke.stdout.trim()),
        (0, format!("revoked {id}").as_str())
    );
    let r = call_as(
        &app,
        Some(value),
        Method::GET,
        "/bridge/v1/agents/planner-1",
        None,
    );
    r.expect_error(403, "M_FORBIDDEN", "after revoke from the command line");
    let again = bridge_client(&url, admin, &["token", "revoke", &id]);
    assert_eq!(again.code, 1);
    assert!(
        again.stderr.starts_with("error: 404 M_NOT_FOUND"),
        "{}",
        again.stderr
    );
}

#[test]
fn client_errors_say_what_to_do() {
    let app = spawn_app("cli-token-errors");
    let url = app.base_url().to_owned();
    let list = ["token", "list"];
    let run = bridge_client(&url, None, &list);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("MOSAIC_BRIDGE_TOKEN is not set"),
        "{}",
        run.stderr
    );
    let run = bridge_client(&url, Some("wrong"), &list);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .starts_with("error: 403 M_FORBIDDEN: invalid bridge token (check MOSAIC_BRIDGE_TOKEN"),
        "{}",
        run.stderr
    );
    let run = bridge_client("http://127.0.0.1:9", Some("t"), &list);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("cannot reach the bridge at http://127.0.0.1:9"),
        "{}",
        run.stderr
    );
    let admin = Some(app.bridge_token());
    let run = bridge_client(
        &url,
        admin,
        &[
            "token", "create", "--name", "x", "--scope", "sned", "--agent", "a",
        ],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("400 M_BAD_JSON: scopes[0]: unknown scope"),
        "{}",
        run.stderr
    );
    let run = bridge_client(
        &url,
        admin,
        &[
            "token",
            "create",
            "--name",
            "x",
            "--scope",
            "send",
            "--agent",
            "a",
            "--expires-in",
            "soon",
        ],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("--expires-in: \"soon\""),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}
