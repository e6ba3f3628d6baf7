//! `mosaic-as send | typing | agents | provision | tail` against a daemon over the mock
//! homeserver: what each prints on stdout for scripts, what it sent, and errors that say
//! what happened.

pub mod support;

use reqwest::StatusCode;
use serde_json::Value;
use support::{
    cli::bridge_client,
    daemon_api::{put_agent, put_txn},
    events::{member_join, text_event},
    mock_hs::MockHs,
    DaemonOptions, SERVER_NAME,
};

const ROOM: &str = "!cli";

#[test]
fn an_agent_speaks_types_and_reads_from_the_command_line() {
    let (mock, d) = MockHs::with_daemon("cli-client", DaemonOptions::default());
    let (url, token) = (d.base_url().to_owned(), Some(d.bridge_token()));
    let run = |args: &[&str]| bridge_client(&url, token, args);

    let send_k1: &[&str] = &[
        "send",
        "--agent",
        "scout",
        "--room",
        ROOM,
        "--txn-id",
        "k1",
        "hello",
        "**world**",
    ];
    let sent = run(send_k1);
    assert_eq!(sent.code, 0, "{}", sent.stderr);
    let event_id = sent.stdout.trim();
    assert!(
        event_id.starts_with('$'),
        "only the event id: {:?}",
        sent.stdout
    );
    let messages = mock.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].event_id, event_id);
    assert_eq!(messages[0].content["body"], "hello **world**");
    assert!(messages[0].content["formatted_body"]
        .as_str()
        .unwrap()
        .contains("<strong>"));
    // The same key again: the same event, nothing sent twice.
    let again = run(send_k1);
    assert_eq!(again.stdout.trim(), event_id);
    assert_eq!(mock.messages().len(), 1);

    let typing = run(&["typing", "--agent", "scout", "--room", ROOM]);
    assert_eq!(typing.code, 0, "{}", typing.stderr);
    let off = run(&["typing", "--agent", "scout", "--room", ROOM, "--off"]);
    assert_eq!(off.code, 0, "{}", off.stderr);

    let listed = run(&["agents", "--json"]);
    let agents: Value = serde_json::from_str(&listed.stdout).expect(&listed.stderr);
    assert_eq!(agents[0]["agent"], "scout", "{agents}");
    let table = run(&["agents"]);
    assert!(table.stdout.starts_with("AGENT"), "{}", table.stdout);
    assert!(table.stdout.contains("\nscout "), "{}", table.stdout);

    // An agent's inbox, followed: two items and out (--count), JSON and readable.
    put_agent(&d, "reader");
    let user = |a: &str| format!("@agent-{a}:{SERVER_NAME}");
    let events = vec![
        member_join("$j", ROOM, &user("reader")),
        text_event("$m1", ROOM, "@h:hs.local", "first"),
        text_event("$m2", ROOM, "@h:hs.local", "second"),
    ];
    assert_eq!(put_txn(&d, "t1", events).status, StatusCode::OK);
    let tail = run(&["tail", "reader", "--json", "--count", "2"]);
    assert_eq!(tail.code, 0, "{}", tail.stderr);
    let items: Vec<Value> = tail
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let bodies: Vec<&str> = items
        .iter()
        .filter_map(|i| i["content"]["body"].as_str())
        .collect();
    assert_eq!(bodies, ["first", "second"], "{}", tail.stdout);
    let after = items[0]["cursor"].as_str().unwrap();
    let readable = run(&["tail", "reader", "--since", after, "--count", "1"]);
    assert_eq!(
        readable.stdout.trim_end().split(": ").last(),
        Some("second"),
        "{}",
        readable.stdout
    );
    assert!(
        !readable.stdout.contains('\x1b'),
        "no colour when not on a terminal"
    );
}

#[test]
fn errors_say_what_happened_and_what_to_do() {
    let (_mock, d) = MockHs::with_daemon("cli-errors", DaemonOptions::default());
    let url = d.base_url().to_owned();
    let wrong = bridge_client(&url, Some("not-a-token"), &["agents"]);
    assert_eq!(wrong.code, 1);
    assert!(
        wrong.stderr.contains("M_UNKNOWN_TOKEN") || wrong.stderr.contains("M_FORBIDDEN"),
        "{}",
        wrong.stderr
    );
    assert!(
        wrong.stderr.contains("MOSAIC_BRIDGE_TOKEN"),
        "{}",
        wrong.stderr
    );
    let none = bridge_client(&url, None, &["send", "--agent", "a", "--room", ROOM, "x"]);
    assert!(
        none.stderr.contains("MOSAIC_BRIDGE_TOKEN is not set"),
        "{}",
        none.stderr
    );
    let bad = bridge_client(
        &url,
        Some(d.bridge_token()),
        &["send", "--agent", "A B", "--room", ROOM, "x"],
    );
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("400") && bad.stderr.contains("agent"),
        "{}",
        bad.stderr
    );
    let gone = bridge_client("http://127.0.0.1:9", Some("t"), &["tail", "a"]);
    assert!(
        gone.stderr.contains("cannot reach the bridge"),
        "{}",
        gone.stderr
    );
}
