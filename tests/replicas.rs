//! Two daemon processes on one PostgreSQL database behind one URL (a round-robin proxy that
//! Synapse pushes to and the agents call), against a real Synapse. Agents send bursts
//! while a human talks; one replica is killed (SIGKILL) mid-burst and started again.
//! Afterwards every accepted send is in the room exactly once and in each agent's order,
//! every human message is in every agent's inbox exactly once, and nobody is left typing.

pub mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use reqwest::{blocking::Client, Method, StatusCode};
use serde_json::{json, Value};
use support::{
    process::ScratchDir, rr_proxy::RoundRobin, wait_until, Daemon, DaemonOptions, Human,
    PgDatabase, Synapse, TestStore, SERVER_NAME,
};

const AGENTS: usize = 6;
const SENDS: usize = 24;
const HUMAN_MESSAGES: usize = 20;
const TAKEOVER_S: u64 = 4;

/// The bridge API behind the proxy, as an agent process sees it.
struct Bridge {
    url: String,
    token: String,
    client: Client,
}

impl Bridge {
    fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().map_err(|e| e.to_string())?;
        let status = resp.status();
        let body: Value = resp.json().unwrap_or(Value::Null);
        if status == StatusCode::OK {
            Ok(body)
        } else {
            Err(format!("{status} {body}"))
        }
    }

    /// Sends until accepted (a client's retry: same `txn_id`), within a minute.
    fn send(&self, room: &str, agent: &str, body: &str, txn: &str) -> (String, Instant) {
        let request = json!({"room_id": room, "agent": agent, "body": body, "txn_id": txn});
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.call(Method::POST, "/bridge/v1/messages", Some(&request)) {
                Ok(answer) => {
                    let id = answer["event_id"].as_str().expect("event_id").to_owned();
                    return (id, Instant::now());
                }
                Err(e) if Instant::now() > deadline => panic!("{agent} {txn}: {e}"),
                Err(_) => thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// The agent's whole inbox, page by page (each page from either replica).
    fn whole_inbox(&self, agent: &str) -> Option<Vec<Value>> {
        let (mut events, mut since) = (Vec::new(), String::new());
        loop {
            let path = format!("/bridge/v1/agents/{agent}/events?limit=100&since={since}");
            let page = self.call(Method::GET, &path, None).ok()?;
            let got = page["events"].as_array()?;
            if got.is_empty() {
                return Some(events);
            }
            events.extend(got.iter().cloned());
            since = page["next"].as_str()?.to_owned();
        }
    }

    fn typing(&self, room: &str, agent: &str, typing: bool) {
        let request =
            json!({"room_id": room, "agent": agent, "typing": typing, "timeout_ms": 3000});
        wait_until(Duration::from_secs(30), "typing accepted", || {
            self.call(Method::POST, "/bridge/v1/typing", Some(&request))
                .ok()
        });
    }
}

/// Every timeline event of the room, oldest first.
fn timeline(human: &Human, room: &str) -> Vec<Value> {
    let query = [("dir", "b"), ("limit", "1000")];
    let (status, answer) = human.call(Method::GET, &["rooms", room, "messages"], &query, None);
    assert_eq!(status, StatusCode::OK, "{answer}");
    let mut events = answer["chunk"].as_array().cloned().unwrap_or_default();
    events.reverse();
    events
}

/// The agents `replica` owns, as the database says.
fn owned_by(database: &PgDatabase, replica: &Daemon) -> Vec<String> {
    let url = format!("{}/", replica.base_url());
    database.query_strings(
        "SELECT o.slug FROM agent_owners o JOIN replicas r ON r.id = o.replica WHERE r.url = $1",
        &url,
    )
}

#[test]
fn two_replicas_behind_one_url_lose_nothing_when_one_is_killed() {
    let dir = ScratchDir::new("replicas");
    let database = Arc::new(PgDatabase::create());
    let proxy_port = support::free_port();
    let proxy_url = format!("http://127.0.0.1:{proxy_port}");
    let hs_port = support::free_port();
    let hs_url = format!("http://127.0.0.1:{hs_port}");
    let options = |secrets| DaemonOptions {
        store: TestStore::database(database.clone()),
        appservice_url: Some(proxy_url.clone()),
        secrets,
        limits_toml: "typing_timeout_ms = 3000\n".into(),
        extra_toml: format!("[ha]\ntakeover_s = {TAKEOVER_S}\n"),
        ..Default::default()
    };
    let mut a = Daemon::configure(
        &dir.path().join("a"),
        "replica-a",
        &hs_url,
        SERVER_NAME,
        options(None),
    );
    let mut b = Daemon::configure(
        &dir.path().join("b"),
        "replica-b",
        &hs_url,
        SERVER_NAME,
        options(Some(a.secrets().clone())),
    );
    let registration = a.registration_yaml();
    let mut synapse = Synapse::configure_on(
        &dir.path().join("synapse"),
        "replicas",
        SERVER_NAME,
        &[&registration],
        hs_port,
    );
    let proxy = RoundRobin::start(proxy_port, vec![a.base_url().into(), b.base_url().into()]);
    synapse.start_again();
    a.start();
    b.start();
    a.wait_ready(Duration::from_secs(30));
    b.wait_ready(Duration::from_secs(30));
    let bridge = Arc::new(Bridge {
        url: proxy_url.clone(),
        token: a.bridge_token().to_owned(),
        client: support::http_client(Duration::from_secs(90)),
    });

    let human = synapse.register_human(&support::unique("boss"));
    let room = human.create_room(json!({"preset": "public_chat"}));
    let agents: Vec<String> = (0..AGENTS)
        .map(|i| support::unique(&format!("r{i}")))
        .collect();
    // The first act of an agent makes the replica that does it its owner: half the agents
    // start on each replica, called directly (through the proxy, whose turns the
    // homeserver's pushes take too, the split would be left to timing).
    let direct = |replica: &Daemon| Bridge {
        url: replica.base_url().to_owned(),
        token: a.bridge_token().to_owned(),
        client: support::http_client(Duration::from_secs(90)),
    };
    let (via_a, via_b) = (direct(&a), direct(&b));
    for (i, agent) in agents.iter().enumerate() {
        let first = if i % 2 == 0 { &via_a } else { &via_b };
        first.send(&room, agent, "hello", "hello");
    }
    let mine_b = owned_by(&database, &b);
    assert!(
        mine_b.len() == AGENTS / 2,
        "each replica owns the agents it acted for first: {mine_b:?}"
    );

    // The burst: every agent sends in order, retrying what fails; the human talks.
    let accepted: Arc<Mutex<HashMap<String, Vec<Instant>>>> = Arc::default();
    let senders: Vec<_> = agents
        .iter()
        .map(|agent| {
            let (bridge, room, agent, accepted) = (
                bridge.clone(),
                room.clone(),
                agent.clone(),
                accepted.clone(),
            );
            thread::spawn(move || {
                for j in 0..SENDS {
                    if j == SENDS / 4 {
                        bridge.typing(&room, &agent, true);
                    }
                    let (_, at) =
                        bridge.send(&room, &agent, &format!("{agent} m{j}"), &format!("m{j}"));
                    accepted
                        .lock()
                        .unwrap()
                        .entry(agent.clone())
                        .or_default()
                        .push(at);
                }
            })
        })
        .collect();
    let mut human_ids = Vec::new();
    for k in 0..HUMAN_MESSAGES {
        human_ids.push(human.send_text(&room, &format!("human {k}")));
        if k == HUMAN_MESSAGES / 3 {
            wait_until(Duration::from_secs(60), "a third of the sends", || {
                let n: usize = accepted.lock().unwrap().values().map(Vec::len).sum();
                (n >= AGENTS * SENDS / 3).then_some(())
            });
            b.kill();
            let killed = Instant::now();
            eprintln!("replica b killed (it owned {mine_b:?})");
            let first = wait_until(
                Duration::from_secs(60),
                "a send of b's agents after the kill",
                || {
                    let acc = accepted.lock().unwrap();
                    mine_b
                        .iter()
                        .filter_map(|agent| acc.get(agent)?.iter().find(|t| **t > killed).copied())
                        .min()
                },
            );
            let takeover = first - killed;
            eprintln!(
                "takeover: first send of a taken-over agent answered {takeover:?} after the kill"
            );
            assert!(
                takeover < Duration::from_secs(TAKEOVER_S + 5),
                "{takeover:?}"
            );
        }
        thread::sleep(Duration::from_millis(50));
    }
    for s in senders {
        s.join().expect("a sender failed");
    }
    b.start();
    b.wait_ready(Duration::from_secs(30));
    for agent in &agents {
        bridge.send(&room, agent, &format!("{agent} after"), "after");
        bridge.typing(&room, agent, false);
    }
    human_ids.push(human.send_text(&room, "human after"));

    // Every accepted send once, in each agent's order.
    let events = timeline(&human, &room);
    for agent in &agents {
        let user = format!("@agent-{agent}:{SERVER_NAME}");
        let bodies: Vec<&str> = events
            .iter()
            .filter(|e| e["sender"] == user.as_str() && e["type"] == "m.room.message")
            .filter_map(|e| e["content"]["body"].as_str())
            .collect();
        let mut want = vec!["hello".to_owned()];
        want.extend((0..SENDS).map(|j| format!("{agent} m{j}")));
        want.push(format!("{agent} after"));
        assert_eq!(bodies, want, "{agent}'s messages in the room");
    }
    // Every human message in every inbox once, read through either replica.
    for agent in &agents {
        let inbox = wait_until(
            Duration::from_secs(90),
            "every human message in the inbox",
            || {
                let events = bridge.whole_inbox(agent)?;
                human_ids
                    .iter()
                    .all(|id| events.iter().any(|e| e["event_id"] == id.as_str()))
                    .then_some(events)
            },
        );
        for id in &human_ids {
            let copies = inbox
                .iter()
                .filter(|e| e["event_id"] == id.as_str())
                .count();
            assert_eq!(copies, 1, "{agent}: {id}");
        }
    }
    wait_until(Duration::from_secs(20), "nobody typing", || {
        human.typing_users(&room).is_empty().then_some(())
    });
    eprintln!("proxy answers per replica: {:?}", proxy.served());
}

/// A token issued on one replica works on the other at once; revoked on that one, it is
/// refused on the first (every replica's token table follows the database's notices).
#[test]
fn tokens_issued_and_revoked_on_one_replica_apply_on_the_other() {
    let hs = support::mock_hs::MockHs::start(SERVER_NAME);
    let database = Arc::new(PgDatabase::create());
    let options = |secrets| DaemonOptions {
        store: TestStore::database(database.clone()),
        secrets,
        ..Default::default()
    };
    let mut a = Daemon::standalone("tokens-a", &hs.url(), SERVER_NAME, options(None));
    let mut b = Daemon::standalone(
        "tokens-b",
        &hs.url(),
        SERVER_NAME,
        options(Some(a.secrets().clone())),
    );
    a.start();
    b.start();
    let issued = support::tokens::issue_for(&a, &["read"], &["*"]);
    let agents = "/bridge/v1/agents";
    wait_until(Duration::from_secs(5), "the token works on b", || {
        let r = support::tokens::call_as(&b, Some(&issued.value), Method::GET, agents, None);
        (r.status == StatusCode::OK).then_some(())
    });
    support::tokens::revoke(&b, &issued.id);
    wait_until(Duration::from_secs(5), "the token is refused on a", || {
        let r = support::tokens::call_as(&a, Some(&issued.value), Method::GET, agents, None);
        (r.status == StatusCode::FORBIDDEN).then_some(())
    });
}
