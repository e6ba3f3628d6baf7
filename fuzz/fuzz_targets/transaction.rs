//! A homeserver transaction body, parsed and routed exactly as
//! `api::appservice::put_transaction` does (`body::json_borrowed` into `Transaction`, then
//! its ephemeral events and to-device messages routed by a `routing::Router` with
//! ephemeral events on), then the directory updated as the after-commit step does. The
//! events are routed both ways a body's events can be read (in the body's single parse, and
//! each from its raw text), which must agree. Any body must give an answer (200 or 4xx), never a panic; and what routing hands
//! the store must be what the store relies on.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mosaic_as::{
    api::{appservice::Transaction, body},
    config::InboundConfig,
    ids::{AgentSlug, Namespaces},
    inbound::{
        routing::{Events, Pushed, ReadEvents, Router},
        Directory,
    },
    store::{fingerprint::FingerprintKey, Effect, MembershipChange},
};
use std::sync::LazyLock;

/// The fixed deployment the bodies arrive at: server `hs.local`, agents `@agent-*`, the
/// sender bot `@bot`, invites allowed from the local server and one remote user (so both
/// kinds of `invite_allow` entry are matched against fuzzed senders).
struct Fixture {
    key: FingerprintKey,
    ns: Namespaces,
    inbound: InboundConfig,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| Fixture {
    key: FingerprintKey::derive("fuzz"),
    ns: Namespaces::new("hs.local".try_into().unwrap(), "agent-", "mosaic-", "bot"),
    inbound: InboundConfig {
        auto_join: true,
        invite_allow: vec![":hs.local".into(), "@alice:remote.example".into()],
    },
});

/// Agents `a` and `b` joined to `!r:hs.local`, `b` with a display name (so messages reach
/// the delivery and mention code). Built per input: routing's result must depend on the
/// input alone, and the after-commit step below changes the directory.
fn directory() -> Directory {
    let dir = Directory::default();
    for slug in ["a", "b"] {
        dir.apply(&MembershipChange {
            slug: AgentSlug::parse(slug).unwrap(),
            room_id: "!r:hs.local".try_into().unwrap(),
            joined: true,
        });
    }
    dir.set_display_name(&AgentSlug::parse("b").unwrap(), Some("Bee Bot"));
    dir
}

fuzz_target!(|data: &[u8]| {
    // The single parse the route tries first: it must never accept a body the raw
    // parse (the reference, which answers a bad body) refuses.
    let read = body::json_borrowed::<Transaction<'_, ReadEvents<'_>>>(data);
    // A body that is not a transaction is a 400 answer: nothing more to check.
    let Ok(txn) = body::json_borrowed::<Transaction<'_>>(data) else {
        assert!(
            read.is_err(),
            "the single parse accepted a body the raw parse refuses"
        );
        return;
    };
    let (ephemeral, to_device) = (txn.ephemeral(), txn.to_device());
    let f = &*FIXTURE;
    let dir = directory();
    let router = Router {
        key: &f.key,
        ns: &f.ns,
        directory: &dir,
        inbound: &f.inbound,
        receive_ephemeral: true,
    };
    let pushed = Pushed {
        txn_id: "t",
        events: Events::Raw(&txn.events),
        ephemeral: &ephemeral,
        to_device: &to_device,
    };
    let routed = router.route(pushed);
    if let Ok(read) = &read {
        assert_eq!(read.events.len(), txn.events.len());
        if let Some(envelopes) = read.events.all() {
            // Room events only: an ephemeral item gets a fresh id and time each routing.
            let events_only = |events| {
                let routed = router.route(Pushed {
                    events,
                    ephemeral: &[],
                    ..pushed
                });
                format!("{routed:?}")
            };
            let raw = events_only(Events::Raw(&txn.events));
            assert_eq!(events_only(Events::Read(envelopes)), raw);
        }
    }
    let w = &routed.write;

    // Every event is routed, skipped or ignored: never counted twice.
    let items = txn.events.len() + ephemeral.len();
    assert!(routed.skipped.total() <= items);
    let events = w.deliveries.iter();
    let room_events = events.filter(|d| !d.event.is_ephemeral()).count();
    assert!(room_events + routed.skipped.total() <= items);
    for d in &w.deliveries {
        // The store keeps content as an object's JSON text, and ids in NUL-terminated
        // text columns.
        assert!(d.event.content.get().trim_start().starts_with('{'));
        for id in [
            d.event.event_id.as_str(),
            d.event.room_id.as_str(),
            d.event.sender.as_str(),
        ] {
            assert!(!id.bytes().any(|b| b.is_ascii_control()), "{id:?}");
        }
        // Delivered to someone, never to its own sender, each agent once.
        assert!(!d.recipients.is_empty());
        let sender = f.ns.agent_slug(&d.event.sender);
        let mut seen: Vec<&AgentSlug> = Vec::new();
        for (slug, _) in &d.recipients {
            assert!(Some(slug) != sender.as_ref());
            assert!(!seen.contains(&slug), "{slug} twice");
            seen.push(slug);
        }
    }
    // Effects are stored as JSON in the outbox and read back to be carried out.
    for e in &w.effects {
        let text = serde_json::to_string(e).expect("an effect serialises");
        let back: Effect = serde_json::from_str(&text).expect("an effect reads back");
        assert_eq!(&back, e);
    }
    // A homeserver retry of the same body must be recognised as the same transaction.
    let again = router.route(pushed);
    assert_eq!(again.write.fingerprint, w.fingerprint);

    // The after-commit step: memberships and typing reach the directory.
    for m in &w.memberships {
        dir.apply(m);
        assert_eq!(dir.is_joined(&m.room_id, &m.slug), m.joined);
    }
    for t in &w.typing {
        dir.set_typing(t.clone());
        assert_eq!(dir.typing_in(&t.room_id), t.users);
    }
});
