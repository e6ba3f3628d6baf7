//! Micro-benchmarks of the daemon's hot functions (issue 8): transaction parsing and
//! routing, the token checks (hs_token; a bridge token's whole authorisation), markdown
//! rendering. `cargo bench --bench hot_paths`;
//! `cargo test --bench hot_paths` runs each once (the smoke mode of scripts/bench).

use std::{hint::black_box, num::NonZeroU32, sync::Arc};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mosaic_as::{
    access::{Access, Rates},
    api::{appservice::Transaction, body},
    config::InboundConfig,
    ids::{AgentSlug, Namespaces},
    inbound::{
        routing::{Events, Pushed, ReadEvents, Routed, Router},
        Directory,
    },
    matrix::content::markdown_to_html,
    store::{fingerprint::FingerprintKey, sqlite::SqliteStore, MembershipChange},
    tokens::{issued::TokenRequest, scope::Scope, TokenDigest},
};
use ruma::{OwnedRoomId, OwnedServerName};
use secrecy::{ExposeSecret, SecretString};

/// The transactions' fingerprint key (any secret will do here).
static KEY: std::sync::LazyLock<FingerprintKey> =
    std::sync::LazyLock::new(|| FingerprintKey::derive("bench"));

const EVENTS: usize = 50;
/// Size of one event in bytes, as in the W1 workload (50 events ≈ 10.6 KB).
const EVENT_BYTES: usize = 212;

fn namespaces() -> Namespaces {
    let server: OwnedServerName = "bench.local".try_into().expect("server name");
    Namespaces::new(server, "agent-", "mosaic-", "mosaic-as")
}

/// One `m.room.message` event of about `EVENT_BYTES` bytes.
fn message_event(id: usize, room: &str) -> String {
    let head = format!(
        r#"{{"event_id":"$bench-{id}","room_id":"{room}","sender":"@human:bench.local","type":"m.room.message","origin_server_ts":1700000000000,"content":{{"msgtype":"m.text","body":""#
    );
    let tail = r#""}}"#;
    let fill = EVENT_BYTES.saturating_sub(head.len() + tail.len()).max(1);
    format!("{head}{}{tail}", "x".repeat(fill))
}

/// A transaction body: `joined` of the events go to `joined_room`, the others to rooms
/// where no agent is joined.
fn transaction_body(events: usize, joined: usize, joined_room: &str) -> Vec<u8> {
    let parts: Vec<String> = (0..events)
        .map(|i| {
            if i < joined {
                message_event(i, joined_room)
            } else {
                message_event(i, &format!("!free-{}", i % 8))
            }
        })
        .collect();
    format!(r#"{{"events":[{}]}}"#, parts.join(",")).into_bytes()
}

fn directory_with(room: &str, agents: usize) -> Directory {
    let dir = Directory::default();
    let room: OwnedRoomId = room.try_into().expect("room id");
    for i in 0..agents {
        dir.apply(&MembershipChange {
            slug: AgentSlug::parse(&format!("a{i}")).expect("slug"),
            room_id: room.clone(),
            joined: true,
        });
    }
    dir
}

/// Routes one transaction's events as the transaction route does.
fn route(events: Events<'_>, ns: &Namespaces, dir: &Directory, inbound: &InboundConfig) -> Routed {
    let router = Router {
        key: &KEY,
        ns,
        directory: dir,
        inbound,
        receive_ephemeral: false,
    };
    router.route(Pushed {
        txn_id: "txn-1",
        events,
        ..Default::default()
    })
}

/// Parses a body as the transaction route does: each event's envelope in the one parse.
fn parse(bytes: &[u8]) -> Transaction<'_, ReadEvents<'_>> {
    match body::json_borrowed::<Transaction<'_, ReadEvents<'_>>>(bytes) {
        Ok(t) if t.events.all().is_some() => t,
        _ => panic!("bench transaction does not parse"),
    }
}

/// The parsed events, as routing takes them.
fn read<'a>(txn: &'a Transaction<'a, ReadEvents<'a>>) -> Events<'a> {
    Events::Read(txn.events.all().unwrap_or_default())
}

fn bench_transactions(c: &mut Criterion) {
    let ns = namespaces();
    let inbound = InboundConfig::default();
    let mut group = c.benchmark_group("transaction");
    group.throughput(Throughput::Elements(EVENTS as u64));

    // W1: 50 events, no agent joined anywhere.
    let unjoined = transaction_body(EVENTS, 0, "!joined");
    let empty = Directory::default();
    group.bench_function("parse_50_events", |b| {
        b.iter(|| parse(black_box(&unjoined)))
    });
    group.bench_function("parse_and_route_50_events_no_agents", |b| {
        b.iter(|| {
            let txn = parse(black_box(&unjoined));
            route(read(&txn), &ns, &empty, &inbound)
        })
    });

    // W1J: 5 of 50 events into a room with 2 agents.
    let few = transaction_body(EVENTS, 5, "!joined");
    let two = directory_with("!joined", 2);
    {
        // The bench measures the delivering path: 5 events, each for both agents.
        let txn = parse(&few);
        let routed = route(read(&txn), &ns, &two, &inbound);
        assert_eq!(routed.write.deliveries.len(), 5);
        assert!(routed
            .write
            .deliveries
            .iter()
            .all(|d| d.recipients.len() == 2));
    }
    group.bench_function("parse_and_route_50_events_5_to_2_agents", |b| {
        b.iter(|| {
            let txn = parse(black_box(&few));
            route(read(&txn), &ns, &two, &inbound)
        })
    });

    // Routing alone, on parsed events.
    let parsed = parse(&unjoined);
    group.bench_function("route_50_events_no_agents", |b| {
        b.iter(|| route(read(black_box(&parsed)), &ns, &empty, &inbound))
    });
    group.finish();

    // W3: messages into one room with 100 agents (100 deliveries per event).
    let mut group = c.benchmark_group("fanout");
    let fan = transaction_body(10, 10, "!fan");
    let hundred = directory_with("!fan", 100);
    group.throughput(Throughput::Elements(10 * 100));
    group.bench_function("parse_and_route_10_events_to_100_agents", |b| {
        b.iter(|| {
            let txn = parse(black_box(&fan));
            route(read(&txn), &ns, &hundred, &inbound)
        })
    });
    // The routed write is moved into the store layer; dropping it is part of the cost.
    group.bench_function("route_and_drop_10_events_to_100_agents", |b| {
        let txn = parse(&fan);
        b.iter(|| drop(route(read(&txn), &ns, &hundred, &inbound)))
    });
    group.finish();
}

fn bench_tokens(c: &mut Criterion) {
    let secret = TokenDigest::of(&"s".repeat(64));
    let good = "s".repeat(64);
    let wrong = "t".repeat(64);
    let mut group = c.benchmark_group("token");
    group.bench_function("hs_token_match", |b| {
        b.iter(|| TokenDigest::of(black_box(&good)).matches(&secret))
    });
    group.bench_function("hs_token_mismatch", |b| {
        b.iter(|| TokenDigest::of(black_box(&wrong)).matches(&secret))
    });
    group.finish();
}

/// The bridge's whole token check: digest, table look-up among 1,000 issued tokens, expiry,
/// rate, then scope and agent pattern; an admin token beside an issued, scoped one.
fn bench_access(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let admin = "a".repeat(64);
    let rates = Rates {
        issued: NonZeroU32::MAX,
        admin: NonZeroU32::MAX,
    };
    let (access, scoped) = rt.block_on(async {
        let store = Arc::new(SqliteStore::open(&url).await.expect("the store opens"));
        let access = Access::new(store, &[SecretString::from(admin.clone())], rates);
        let mut last = None;
        for i in 0..1000 {
            let request: TokenRequest = serde_json::from_value(serde_json::json!({
                "name": format!("t{i}"), "scopes": ["send", "read"],
                "agents": [format!("team{i}-*"), "shared"],
            }))
            .expect("a token request");
            last = Some(access.issue(request).await.expect("issued").1);
        }
        (access, last.expect("a token").expose_secret().to_owned())
    });
    let agent = AgentSlug::parse("team999-planner").expect("a slug");
    let mut group = c.benchmark_group("access");
    for (name, token) in [("admin_token", &admin), ("scoped_token", &scoped)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let principal = access.authenticate(Some(black_box(token))).expect("known");
                principal
                    .check_agent(Scope::Send, black_box(&agent))
                    .expect("allowed")
            })
        });
    }
    group.finish();
}

fn bench_markdown(c: &mut Criterion) {
    let plain = "hello from the bench, message 12345";
    let rich = "**Build** finished: see `target/bench` and\n\n- [x] W1\n- [ ] W2\n\n| a | b |\n|---|---|\n| 1 | 2 |";
    let mut group = c.benchmark_group("markdown");
    group.bench_function("plain_body", |b| {
        b.iter(|| markdown_to_html(black_box(plain)))
    });
    group.bench_function("rich_body", |b| {
        b.iter(|| markdown_to_html(black_box(rich)))
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_transactions,
    bench_tokens,
    bench_access,
    bench_markdown
);
criterion_main!(benches);
