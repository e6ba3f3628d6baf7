//! Tests of routing: deliveries and mentions, identifiers, invites, fingerprints.

use super::*;
use crate::store::{
    fingerprint::{FingerprintKey, TxnVerdict},
    Effect,
};
use serde_json::json;

/// A directory where agent `a` is joined to `!r`, and that room.
fn directory_with_a_in_r() -> (Directory, ruma::OwnedRoomId) {
    let dir = Directory::default();
    let room: ruma::OwnedRoomId = "!r".try_into().unwrap();
    dir.apply(&MembershipChange {
        slug: AgentSlug::parse("a").unwrap(),
        room_id: room.clone(),
        joined: true,
    });
    (dir, room)
}

fn key() -> FingerprintKey {
    FingerprintKey::derive("test")
}

fn ns() -> Namespaces {
    Namespaces::new("hs".try_into().unwrap(), "agent-", "mosaic-", "bot")
}

fn raw(v: serde_json::Value) -> Box<RawValue> {
    RawValue::from_string(v.to_string()).unwrap()
}

fn member(id: &str, sender: &str, target: &str, membership: &str) -> Box<RawValue> {
    raw(
        json!({"event_id": id, "room_id": "!r", "sender": sender, "type": "m.room.member",
        "state_key": target, "origin_server_ts": 1, "content": {"membership": membership}}),
    )
}

fn message(id: &str, sender: &str, content: serde_json::Value) -> Box<RawValue> {
    raw(
        json!({"event_id": id, "room_id": "!r", "sender": sender, "type": "m.room.message",
        "origin_server_ts": 2, "content": content}),
    )
}

fn router<'a>(
    key: &'a FingerprintKey,
    ns: &'a Namespaces,
    directory: &'a Directory,
    inbound: &'a InboundConfig,
) -> Router<'a> {
    Router {
        key,
        ns,
        directory,
        inbound,
        receive_ephemeral: true,
    }
}

fn run(events: &[Box<RawValue>], dir: &Directory, inbound: &InboundConfig) -> Routed {
    let refs: Vec<&RawValue> = events.iter().map(|b| &**b).collect();
    let (key, ns) = (key(), ns());
    route_both_ways(&router(&key, &ns, dir, inbound), Pushed::default(), &refs)
}

/// Routes `events` in `txn` both ways a body's events are read — each on its own from its
/// raw text, and in one parse of the array when every event can be read so — and checks
/// that both give the same result.
pub(super) fn route_both_ways(
    router: &Router<'_>,
    txn: Pushed<'_>,
    events: &[&RawValue],
) -> Routed {
    let raw = router.route(Pushed {
        events: Events::Raw(events),
        ..txn
    });
    let texts: Vec<&str> = events.iter().map(|e| e.get()).collect();
    let array = format!("[{}]", texts.join(","));
    let read: ReadEvents<'_> = serde_json::from_str(&array).unwrap();
    if let Some(envelopes) = read.all() {
        // Room events only: an ephemeral item gets a fresh id and time each routing.
        let events_only = |events| {
            let routed = router.route(Pushed {
                events,
                ephemeral: &[],
                ..txn
            });
            format!("{routed:?}")
        };
        let raw = events_only(Events::Raw(events));
        assert_eq!(events_only(Events::Read(envelopes)), raw, "{array}");
    }
    raw
}

#[test]
fn join_then_message_in_one_transaction_reaches_the_agent() {
    let dir = Directory::default();
    dir.set_display_name(&AgentSlug::parse("b").unwrap(), Some("Bee Bot"));
    let events = [
        member("$1", "@agent-a:hs", "@agent-a:hs", "join"),
        member("$2", "@agent-b:hs", "@agent-b:hs", "join"),
        message(
            "$3",
            "@h:hs",
            json!({"body": "hi", "m.mentions": {"user_ids": ["@agent-a:hs"]}}),
        ),
        message("$4", "@agent-a:hs", json!({"body": "hello bee bot"})),
        raw(json!({"not": "an event"})),
    ];
    let r = run(&events, &dir, &InboundConfig::default());
    assert_eq!(r.skipped.of(SkipReason::Malformed), 1);
    assert_eq!(r.skipped.total(), 1);
    assert_eq!(r.write.memberships.len(), 2);
    assert_eq!(r.write.deliveries.len(), 2);
    let d3 = &r.write.deliveries[0];
    let rec: Vec<_> = d3
        .recipients
        .iter()
        .map(|(s, m)| (s.as_str(), *m))
        .collect();
    assert_eq!(rec, [("a", true), ("b", false)]);
    // Own echo is not delivered; display name mention is flagged.
    let d4 = &r.write.deliveries[1];
    let rec: Vec<_> = d4
        .recipients
        .iter()
        .map(|(s, m)| (s.as_str(), *m))
        .collect();
    assert_eq!(rec, [("b", true)]);
}

/// Within a transaction a room id or sender already found valid is not checked again; the
/// event's other identifiers still are.
#[test]
fn identifiers_met_before_are_not_checked_again_but_the_others_are() {
    let (dir, _) = directory_with_a_in_r();
    let ev = |id: &str, room: &str, sender: &str| {
        raw(json!({"event_id": id, "room_id": room, "sender": sender,
            "type": "m.room.message", "content": {"body": "x"}}))
    };
    let events = [
        ev("$1", "!r", "@h:hs"),
        ev("$2", "!r", "@h:hs"),
        ev("$3", "!r", "@h\u{7f}:hs"),
        ev("no-sigil", "!r", "@h:hs"),
        ev("$5", "r", "@h:hs"),
        ev("$6", "!r", "@h:hs"),
    ];
    let r = run(&events, &dir, &InboundConfig::default());
    assert_eq!(r.skipped.of(SkipReason::InvalidId), 3, "{:?}", r.skipped);
    let ids: Vec<&str> = r
        .write
        .deliveries
        .iter()
        .map(|d| d.event.event_id.as_str())
        .collect();
    assert_eq!(ids, ["$1", "$2", "$6"]);
}

#[test]
fn identifiers_are_checked_and_escaped_ones_are_read() {
    let (dir, _) = directory_with_a_in_r();
    let bad = |field: &str, value: &str| {
        let mut ev = json!({"event_id": "$e", "room_id": "!r", "sender": "@h:hs",
            "type": "m.room.message", "content": {"body": "x"}});
        ev[field] = json!(value);
        raw(ev)
    };
    let events = [
        bad("event_id", "no-sigil"),
        bad("room_id", "r-without-sigil"),
        bad("sender", "@"),
        bad("event_id", "$a\u{0}b"),
        // JSON escapes cannot be borrowed: the identifiers are read into owned strings.
        RawValue::from_string(
            r#"{"event_id":"\u0024ok","room_id":"\u0021r","sender":"@h\u003ahs","type":"m.room.message","content":{"body":"x"}}"#
                .into(),
        )
        .unwrap(),
    ];
    let r = run(&events, &dir, &InboundConfig::default());
    assert_eq!(r.skipped.of(SkipReason::InvalidId), 4);
    assert_eq!(r.skipped.total(), 4);
    assert_eq!(r.write.deliveries.len(), 1);
    let d = &r.write.deliveries[0];
    assert_eq!(
        (
            d.event.event_id.as_str(),
            d.event.room_id.as_str(),
            d.event.sender.as_str()
        ),
        ("$ok", "!r", "@h:hs")
    );
}

/// What cannot be stored or understood is skipped and counted by reason, the rest of the
/// transaction routed; a type or state key written with JSON escapes is still read.
#[test]
fn skips_are_counted_by_reason_and_escapes_do_not_make_events_unreadable() {
    let (dir, _) = directory_with_a_in_r();
    let mut not_an_object = json!({"event_id": "$s", "room_id": "!r", "sender": "@h:hs",
        "type": "m.room.message", "content": "a string"});
    let mut member_without_key = json!({"event_id": "$k", "room_id": "!r", "sender": "@h:hs",
        "type": "m.room.member", "content": {"membership": "join"}});
    let events = [
        raw(not_an_object.take()),
        raw(member_without_key.take()),
        raw(json!({"event_id": "$m", "room_id": "!r", "sender": "@agent-b:hs",
            "type": "m.room.member", "state_key": "@agent-b:hs", "content": {"membership": 5}})),
        raw(json!(["an", "array"])),
        RawValue::from_string(
            r#"{"event_id":"$esc","room_id":"!r","sender":"@h:hs","type":"m.room.m\u0065ssage","content":{"body":"x"}}"#
                .into(),
        )
        .unwrap(),
        RawValue::from_string(
            r#"{"event_id":"$j","room_id":"!r","sender":"@agent-c:hs","type":"m.room.member","state_key":"@agent-\u0063:hs","content":{"membership":"join"}}"#
                .into(),
        )
        .unwrap(),
    ];
    let r = run(&events, &dir, &InboundConfig::default());
    assert_eq!(r.skipped.of(SkipReason::BadContent), 2, "{:?}", r.skipped);
    assert_eq!(r.skipped.of(SkipReason::InvalidId), 1, "{:?}", r.skipped);
    assert_eq!(r.skipped.of(SkipReason::Malformed), 1, "{:?}", r.skipped);
    let delivered: Vec<_> = r
        .write
        .deliveries
        .iter()
        .map(|d| d.event.event_id.as_str())
        .collect();
    assert_eq!(delivered, ["$esc"]);
    assert_eq!(r.write.deliveries[0].event.event_type, "m.room.message");
    let joined: Vec<_> = r
        .write
        .memberships
        .iter()
        .map(|m| m.slug.as_str())
        .collect();
    assert_eq!(joined, ["c"]);
}

/// A homeserver's retry carries the same events with another `unsigned.age`, perhaps in
/// another order, and without its ephemeral part: the fingerprint stays the same. An
/// event without a readable id counts by its content.
#[test]
fn the_fingerprint_reads_event_ids_not_bytes() {
    let dir = Directory::default();
    let aged = |id: &str, age: u64| {
        raw(
            json!({"event_id": id, "room_id": "!r", "sender": "@h:hs", "type": "m.room.message",
            "content": {"body": "x"}, "unsigned": {"age": age}}),
        )
    };
    let broken = |age: u64| raw(json!({"type": "m.room.message", "unsigned": {"age": age}}));
    let typing = raw(json!({"type": "m.typing", "room_id": "!r", "content": {"user_ids": []}}));
    let fp = |events: &[Box<RawValue>], extras: &[&RawValue]| {
        let refs: Vec<&RawValue> = events.iter().map(|b| &**b).collect();
        let (key, ns, inbound) = (key(), ns(), InboundConfig::default());
        let txn = Pushed {
            txn_id: "1",
            ephemeral: extras,
            ..Default::default()
        };
        route_both_ways(&router(&key, &ns, &dir, &inbound), txn, &refs)
            .write
            .fingerprint
    };
    let first = fp(&[aged("$a", 1), aged("$b", 2), broken(3)], &[&typing]);
    let retry = fp(&[broken(900), aged("$b", 900), aged("$a", 901)], &[]);
    assert_eq!(retry.verdict(Some(Some(&first))), TxnVerdict::Retry);
    let other = fp(&[aged("$a", 1), aged("$c", 2), broken(3)], &[&typing]);
    assert_eq!(other.verdict(Some(Some(&first))), TxnVerdict::IdReused);
}

/// `*` lets anyone in; an empty list nobody; a user entry that user only.
#[test]
fn the_allow_list_reads_stars_servers_and_users() {
    let dir = Directory::default();
    let invite = |allow: &[&str], inviter: &str| {
        let inbound = InboundConfig {
            auto_join: true,
            invite_allow: allow.iter().map(|s| s.to_string()).collect(),
        };
        let r = run(
            &[member("$1", inviter, "@agent-x:hs", "invite")],
            &dir,
            &inbound,
        );
        matches!(r.write.effects[..], [Effect::AcceptInvite { .. }])
    };
    assert!(invite(&["*"], "@anyone:anywhere"));
    // The daemon's own invites pass whatever the list says.
    assert!(invite(&[], "@bot:hs"));
    assert!(invite(&[], "@agent-planner:hs"));
    assert!(!invite(&[], "@h:hs"));
    assert!(invite(&[":hs"], "@h:hs"));
    assert!(!invite(&[":hs"], "@h:hs.evil"));
    assert!(invite(&["@h:hs"], "@h:hs"));
    assert!(!invite(&["@h:hs"], "@h2:hs"));
}

#[test]
fn invites_follow_the_allow_list_and_a_leave_counts_within_its_transaction_only() {
    let (dir, room) = directory_with_a_in_r();
    let inbound = InboundConfig {
        auto_join: true,
        invite_allow: vec![":good".into()],
    };
    let events = [
        member("$1", "@h:good", "@agent-x:hs", "invite"),
        member("$2", "@h:evil", "@agent-y:hs", "invite"),
        member("$3", "@h:good", "@bot:hs", "invite"),
        member("$4", "@h:good", "@agent-a:hs", "leave"),
        message("$5", "@h:good", json!({"body": "after the leave"})),
        member("$6", "@h:evil", "@bot:hs", "invite"),
        member("$7", "@h:evil", "@someone:hs", "invite"),
    ];
    let r = run(&events, &dir, &inbound);
    let rejected = |user: &str| Effect::RejectInvite {
        user: user.try_into().unwrap(),
        room: room.clone(),
        inviter: "@h:evil".try_into().unwrap(),
    };
    assert_eq!(
        r.write.effects,
        [
            Effect::AcceptInvite {
                slug: AgentSlug::parse("x").unwrap(),
                room: room.clone()
            },
            rejected("@agent-y:hs"),
            Effect::BotJoin { room: room.clone() },
            rejected("@bot:hs"),
        ],
        "an invite of a user outside the namespace is none of ours"
    );
    assert!(!r.write.memberships[0].joined);
    assert!(r.write.deliveries.is_empty(), "a left before $5");
    // The directory changes only once the transaction is recorded (by the caller).
    assert_eq!(dir.agents_in(&room).len(), 1);
}

#[test]
fn encryption_is_noted_once_per_room_and_encrypted_events_are_delivered() {
    let (dir, _) = directory_with_a_in_r();
    let event = |id: &str, kind: &str, state_key: Option<&str>| {
        let mut v = json!({"event_id": id, "room_id": "!r", "sender": "@h:hs", "type": kind,
            "origin_server_ts": 3, "content": {"algorithm": "m.megolm.v1.aes-sha2"}});
        if let Some(key) = state_key {
            v["state_key"] = json!(key);
        }
        raw(v)
    };
    let routed = run(
        &[
            event("$1", "m.room.encryption", Some("")),
            event("$2", "m.room.encrypted", None),
            event("$3", "m.room.encrypted", None),
        ],
        &dir,
        &InboundConfig::default(),
    );
    assert_eq!(routed.write.encrypted_rooms, ["!r"]);
    let kinds: Vec<_> = routed
        .write
        .deliveries
        .iter()
        .map(|d| (d.event.event_id.as_str(), d.event.event_type.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [("$2", "m.room.encrypted"), ("$3", "m.room.encrypted")]
    );
    // An m.room.encryption that is not the room's state says nothing.
    let routed = run(
        &[event("$4", "m.room.encryption", Some("other"))],
        &dir,
        &InboundConfig::default(),
    );
    assert!(routed.write.encrypted_rooms.is_empty());
}
