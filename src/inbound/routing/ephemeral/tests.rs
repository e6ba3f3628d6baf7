//! Ephemeral events routed: typing as changes, receipts with stable ids, malformed ones
//! and ids with control characters skipped.

use serde_json::Value;

use super::*;
use crate::{
    config::InboundConfig,
    ids::AgentSlug,
    inbound::routing::{Pushed, Router},
    store::{fingerprint::FingerprintKey, MembershipChange},
};

/// Agent `a` in `!r`; routes `ephemeral` with ephemeral events on or off.
struct Fixture {
    dir: Directory,
    ns: Namespaces,
    key: FingerprintKey,
    inbound: InboundConfig,
}

impl Fixture {
    fn new() -> Self {
        let dir = Directory::default();
        dir.apply(&MembershipChange {
            slug: AgentSlug::parse("a").unwrap(),
            room_id: "!r".try_into().unwrap(),
            joined: true,
        });
        Self {
            dir,
            ns: Namespaces::new("hs".try_into().unwrap(), "agent-", "mosaic-", "bot"),
            key: FingerprintKey::derive("test"),
            inbound: InboundConfig::default(),
        }
    }

    fn route(&self, ephemeral: &[Value], on: bool) -> Routed {
        let raws: Vec<Box<RawValue>> = ephemeral
            .iter()
            .map(|v| serde_json::value::to_raw_value(v).unwrap())
            .collect();
        let refs: Vec<&RawValue> = raws.iter().map(|b| &**b).collect();
        let router = Router {
            key: &self.key,
            ns: &self.ns,
            directory: &self.dir,
            inbound: &self.inbound,
            receive_ephemeral: on,
        };
        router.route(Pushed {
            txn_id: "t",
            ephemeral: &refs,
            ..Default::default()
        })
    }

    /// Routes, then applies the typing sets as the after-commit step does; the items
    /// as `(sender, content, recipients)`.
    fn items(&self, ephemeral: &[Value]) -> Vec<(String, Value, Vec<String>)> {
        let routed = self.route(ephemeral, true);
        for t in routed.write.typing {
            self.dir.set_typing(t);
        }
        let deliveries = routed.write.deliveries.into_iter();
        deliveries
            .map(|d| {
                let content = serde_json::from_str(d.event.content.get()).unwrap();
                let to = d.recipients.iter().map(|(s, _)| s.to_string()).collect();
                (d.event.sender.to_string(), content, to)
            })
            .collect()
    }
}

fn typing(users: &[&str]) -> Value {
    json!({"type": "m.typing", "room_id": "!r", "content": {"user_ids": users}})
}

/// Who started and who stopped, from the sets the homeserver sends; an agent hears
/// of others, never of itself; nothing without `receive_ephemeral`.
#[test]
fn typing_items_are_the_changes_of_others() {
    let f = Fixture::new();
    assert!(f
        .route(&[typing(&["@h:hs"])], false)
        .write
        .deliveries
        .is_empty());
    let started = f.items(&[typing(&["@h:hs"])]);
    let want = ("@h:hs".into(), json!({"typing": true}), vec!["a".into()]);
    assert_eq!(started, [want]);
    assert!(f.items(&[typing(&["@h:hs"])]).is_empty(), "no change");
    // The agent itself starts: nobody else to tell.
    assert!(f.items(&[typing(&["@h:hs", "@agent-a:hs"])]).is_empty());
    // Two sets in one transaction: each compared with the one before.
    let both = f.items(&[typing(&["@agent-a:hs"]), typing(&["@g:hs"])]);
    let senders: Vec<(&str, bool)> = both
        .iter()
        .map(|(s, c, _)| (s.as_str(), c["typing"].as_bool().unwrap()))
        .collect();
    assert_eq!(senders, [("@h:hs", false), ("@g:hs", true)]);
    assert_eq!(f.dir.typing_in("!r".try_into().unwrap()), ["@g:hs"]);
}

/// Public receipts of others, one item per user and event, with the thread; private
/// receipts and the agent's own are not passed on; the same receipt keeps its id.
#[test]
fn receipts_of_others_are_items_with_a_stable_id() {
    let f = Fixture::new();
    let receipt = json!({"type": "m.receipt", "room_id": "!r", "content": {
        "$e": {
            "m.read": {"@h:hs": {"ts": 5, "thread_id": "$root"}, "@agent-a:hs": {"ts": 6}},
            "m.read.private": {"@g:hs": {"ts": 7}},
        }
    }});
    let items = f.items(std::slice::from_ref(&receipt));
    let content = json!({"event_id": "$e", "receipt_type": "m.read", "thread_id": "$root"});
    assert_eq!(items, [("@h:hs".into(), content, vec!["a".into()])]);
    let id = |r: &Routed| r.write.deliveries[0].event.event_id.clone();
    let first = f.route(std::slice::from_ref(&receipt), true);
    assert_eq!(first.write.deliveries[0].event.origin_server_ts, 5);
    assert_eq!(id(&first), id(&f.route(&[receipt], true)));
}

/// Malformed typing or receipts are skipped and counted; presence and events without
/// a type this daemon reads are ignored.
#[test]
fn malformed_ephemeral_events_are_skipped() {
    let f = Fixture::new();
    let routed = f.route(
        &[
            json!({"type": "m.typing", "room_id": "!r", "content": {"user_ids": "@h:hs"}}),
            json!({"type": "m.receipt", "room_id": "not a room", "content": {}}),
            json!({"type": "m.receipt", "room_id": "!r", "content": {"$e": 1}}),
            json!({"type": "m.presence", "sender": "@h:hs", "content": {}}),
            json!(["not", "an", "event"]),
        ],
        true,
    );
    assert_eq!(routed.skipped.of(SkipReason::BadContent), 2);
    assert_eq!(routed.skipped.of(SkipReason::InvalidId), 1);
    assert!(routed.write.deliveries.is_empty());
    assert!(routed.write.typing.is_empty());
}

/// A user or room id with a control character is never passed on (the store's text
/// columns end at a NUL); the rest of the event is.
#[test]
fn ids_with_control_characters_are_skipped() {
    let f = Fixture::new();
    let receipt = json!({"$e": {"m.read": {"@h\nx:hs": {"ts": 1}, "@h:hs": {"ts": 2}}}});
    let routed = f.route(
        &[
            json!({"type": "m.typing", "room_id": "!r", "content": {"user_ids": ["@a\u{1}b:hs", "@h:hs"]}}),
            json!({"type": "m.receipt", "room_id": "!r", "content": receipt}),
            json!({"type": "m.typing", "room_id": "!r\n", "content": {"user_ids": ["@h:hs"]}}),
        ],
        true,
    );
    assert_eq!(routed.skipped.of(SkipReason::InvalidId), 3);
    let senders: Vec<&str> = routed
        .write
        .deliveries
        .iter()
        .map(|d| d.event.sender.as_str())
        .collect();
    assert_eq!(
        senders,
        ["@h:hs", "@h:hs"],
        "typing and receipt of the valid user"
    );
}
