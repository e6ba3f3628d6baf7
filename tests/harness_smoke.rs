//! Smoke tests of the test harness itself: a real Synapse starts, loads an
//! application-service registration, and a human can talk through it; the full
//! stack (Synapse + the `mosaic-as` binary) comes up healthy; `scripts/run-local
//! --check` brings up the local stack and a message from agent `alpha` reaches alice; a
//! daemon's PostgreSQL database outlives it while another daemon holds it, and goes with
//! the last one.

pub mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use support::process::ScratchDir;
use support::{Stack, Synapse, SERVER_NAME};

#[test]
fn human_creates_room_sends_and_reads_back() {
    let scratch = ScratchDir::new("smoke-fixture");
    let (registration, _) = support::fixture_registration(scratch.path(), SERVER_NAME);
    let hs = Synapse::start("smoke-room", SERVER_NAME, &[&registration]);
    eprintln!("Synapse started in {:.1?}", hs.startup_time);

    let alice = hs.register_human(&support::unique("alice"));
    assert!(alice.user_id.ends_with(":hs.local"), "{}", alice.user_id);
    let room = alice.create_room(json!({"preset": "private_chat", "name": "Smoke"}));
    assert!(room.starts_with('!'), "room id {room}");
    let event_id = alice.send_text(&room, "hello from the harness");

    let found = alice.wait_message(&room, Duration::from_secs(10), |e| {
        e["event_id"] == event_id.as_str()
    });
    assert_eq!(found["content"]["body"], "hello from the harness");
    assert_eq!(found["sender"], alice.user_id.as_str());
    assert_eq!(alice.joined_members(&room), vec![alice.user_id.clone()]);
    let name = alice
        .state_event(&room, "m.room.name", "")
        .expect("room name state");
    assert_eq!(name["name"], "Smoke");
    assert!(alice.state_event(&room, "m.room.topic", "").is_none());
}

#[test]
fn synapse_loads_the_appservice_registration() {
    let scratch = ScratchDir::new("smoke-fixture");
    let (registration, as_token) = support::fixture_registration(scratch.path(), SERVER_NAME);
    let hs = Synapse::start("smoke-registration", SERVER_NAME, &[&registration]);

    // The as_token authenticates as the registration's sender: Synapse loaded it.
    let whoami: serde_json::Value = support::synapse::http_client()
        .get(format!(
            "{}/_matrix/client/v3/account/whoami",
            hs.base_url()
        ))
        .bearer_auth(&as_token)
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.json())
        .expect("whoami with the as_token");
    assert_eq!(whoami["user_id"], "@mosaic-as:hs.local");
    assert!(hs.log_text().contains("Loaded application service"));

    // Typing as seen through a human's /sync.
    let bob = hs.register_human(&support::unique("bob"));
    let carol = hs.register_human(&support::unique("carol"));
    let room = bob.create_room(json!({"preset": "public_chat"}));
    carol.join(&room);
    assert!(bob.typing_users(&room).is_empty());
    let typing = json!({"typing": true, "timeout": 30000});
    carol.call_ok(
        reqwest::Method::PUT,
        &["rooms", &room, "typing", &carol.user_id],
        &[],
        Some(&typing),
    );
    bob.wait_typing(&room, &carol.user_id, true, Duration::from_secs(10));
}

#[test]
fn stack_comes_up_with_the_binarys_registration() {
    let stack = Stack::shared();
    assert_eq!(stack.daemon.get("/health").0, StatusCode::OK);
    assert_eq!(stack.daemon.get("/ready").0, StatusCode::OK);
    let whoami: serde_json::Value = support::synapse::http_client()
        .get(format!(
            "{}/_matrix/client/v3/account/whoami",
            stack.synapse.base_url()
        ))
        .bearer_auth(stack.daemon.as_token())
        .send()
        .and_then(|r| r.json())
        .expect("whoami with the as_token");
    assert_eq!(whoami["user_id"], stack.daemon.sender_user().as_str());
    assert_eq!(stack.agent_user("alpha"), "@agent-alpha:hs.local");
}

/// `scripts/run-local --check` twice in a row on the same state, as a person would run it:
/// both runs see alpha's message reach alice and alice's message reach alpha's inbox (the
/// second Synapse process reuses the first one's transaction ids).
#[test]
fn run_local_check_mode_passes() {
    let scratch = ScratchDir::new("run-local");
    let python = support::synapse::synapse_python();
    let venv = python
        .parent()
        .and_then(|bin| bin.parent())
        .expect("venv dir");
    for run in ["first", "second"] {
        let out = std::process::Command::new("bash")
            .arg(
                support::process::repo_root()
                    .join("scripts")
                    .join("run-local"),
            )
            .arg("--check")
            .env("MOSAIC_BIN", support::Daemon::binary())
            .env("MOSAIC_LOCAL_DIR", scratch.path())
            .env("MOSAIC_LOCAL_HS_PORT", support::free_port().to_string())
            .env("MOSAIC_LOCAL_AS_PORT", support::free_port().to_string())
            .env("SYNAPSE_VENV", venv)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run scripts/run-local");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            let daemon_log = support::process::tail(&scratch.path().join("daemon.log"), 30);
            let synapse_log =
                support::process::tail(&scratch.path().join("synapse/homeserver.log"), 30);
            panic!("{run} run-local --check failed ({}):\n{stderr}\n--- daemon.log ---\n{daemon_log}\n--- homeserver.log ---\n{synapse_log}", out.status);
        }
        assert!(
            stderr.contains("check passed: alice sees"),
            "{run}: {stderr}"
        );
        assert!(
            stderr.contains("check passed: alpha's inbox holds alice's message"),
            "{run}: {stderr}"
        );
    }
    let env = std::fs::read_to_string(scratch.path().join(".env")).expect(".env");
    assert!(env.contains("MOSAIC_BRIDGE_TOKENS="));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(scratch.path().join(".env"))
        .expect("stat .env")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// A second daemon on the first one's database ([`TestStore::same_as`]) reads what the
/// first recorded, after the first is gone; the database is dropped with the last holder.
#[test]
fn a_second_daemon_shares_the_first_ones_postgres_database() {
    use support::daemon_api::{inbox_ids, put_agent, put_txn};
    use support::events::{member_join, text_event};
    use support::mock_hs::MockHs;
    use support::{DaemonOptions, TestStore};

    let postgres = DaemonOptions {
        store: TestStore::Postgres,
        ..Default::default()
    };
    let (mock, first) = MockHs::with_daemon("shared-db-first", postgres);
    assert!(
        first.store_url().starts_with("postgres://"),
        "{}",
        first.store_url()
    );
    put_agent(&first, "a");
    let room = "!shared:hs.local";
    let events = vec![
        member_join("$join", room, &first.agent_user("a")),
        text_event("$hello", room, "@h:hs.local", "hello"),
    ];
    assert_eq!(put_txn(&first, "t1", events).status, StatusCode::OK);
    let shared = DaemonOptions {
        store: TestStore::same_as(&first),
        ..Default::default()
    };
    let database = first.database().expect("a database").clone();
    drop(first);
    let second = support::mock_hs::ready_daemon(&mock, "shared-db-second", shared);
    assert_eq!(second.store_url(), database.url);
    assert_eq!(inbox_ids(&second, "a"), ["$hello"]);
    let name = database.name.clone();
    drop((second, database));
    let admin = support::postgres::admin_url();
    assert!(
        !support::postgres::exists(&admin, &name),
        "{name} outlived its last holder"
    );
}
