//! Tests of the client as its callers use it, against servers on loopback.

use std::time::{Duration, Instant};

use super::*;

/// A client of a homeserver at `url`, its config's `[limits]` holding `limits`.
fn client(url: &str, limits: &str) -> HomeserverClient {
    client_reporting(url, limits).0
}

/// [`client`], and the live view of errors it reports to.
fn client_reporting(url: &str, limits: &str) -> (HomeserverClient, Arc<Activity>) {
    let file = tempfile::NamedTempFile::new().unwrap();
    let toml = format!(
        "[homeserver]\nurl = \"{url}\"\nserver_name = \"hs.local\"\n\
         [appservice]\nurl = \"http://127.0.0.1:9\"\n[limits]\n{limits}\n"
    );
    std::fs::write(file.path(), toml).unwrap();
    let env = [
        ("MOSAIC_AS_TOKEN", "a".repeat(32)),
        ("MOSAIC_HS_TOKEN", "h".repeat(32)),
        ("MOSAIC_BRIDGE_TOKENS", "b".repeat(32)),
    ];
    let config = Config::load(file.path(), &env).expect("the test config loads");
    let ns = crate::ids::Namespaces::new(
        config.homeserver.server_name.clone(),
        &config.appservice.agent_prefix,
        &config.appservice.alias_prefix,
        &config.appservice.sender_localpart,
    );
    let activity = Activity::new(ns);
    (HomeserverClient::new(&config, activity.clone()), activity)
}

/// A homeserver that accepts connections and never answers; open until dropped.
async fn silent_homeserver() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    (url, task)
}

/// With every slot held by a request the homeserver does not answer, a call gives up at its
/// deadline with an error that says so, instead of waiting for a slot as long as the
/// homeserver takes (before, it waited for the holder's 15 s and then still failed).
#[tokio::test]
async fn a_call_waiting_for_a_slot_fails_at_its_deadline() {
    let (url, server) = silent_homeserver().await;
    let limits = "hs_max_in_flight = 1\nhs_deadline_ms = 300\nhs_attempt_timeout_ms = 60000";
    let hs = client(&url, limits);
    // The ping's own deadline (15 s) keeps the only slot held for the whole test.
    let holder = tokio::spawn({
        let hs = hs.clone();
        async move { hs.check().await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;

    let started = Instant::now();
    let err = hs.register("agent-x").await.unwrap_err();
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    let text = err.to_string();
    assert!(text.contains("no request slot free within"), "{text}");
    assert!(text.contains("limits.hs_max_in_flight"), "{text}");
    assert!(!holder.is_finished(), "the slot was held all along");
    holder.abort();
    server.abort();
}

/// A call that fails for good is told to the live view of errors: its endpoint, what went
/// wrong, and the agent it was made as (from the masquerade), nothing of its body.
#[tokio::test]
async fn a_failed_call_is_reported_with_its_agent() {
    let (url, server) = silent_homeserver().await;
    let limits = "hs_deadline_ms = 300\nhs_attempt_timeout_ms = 100";
    let (hs, activity) = client_reporting(&url, limits);
    let user = UserId::parse("@agent-worker:hs.local").unwrap();
    let room = ruma::RoomId::parse("!r:hs.local").unwrap();
    hs.leave(&user, &room, Some("a reason that stays private"))
        .await
        .unwrap_err();
    let errors = activity.recent();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = &errors[0];
    assert_eq!(e.source, crate::activity::ErrorSource::Homeserver);
    assert_eq!(e.kind, Some("unreachable"));
    assert_eq!(e.agent.as_ref().map(|a| a.as_str()), Some("worker"));
    assert_eq!((e.status, e.errcode.as_deref()), (None, None));
    assert!(!format!("{e:?}").contains("private"));
    server.abort();
}
