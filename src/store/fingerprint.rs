//! What makes a homeserver transaction "the same" as one handled before.
//!
//! A transaction id alone proves nothing: homeservers reuse them (Synapse on SQLite numbers
//! its appservice transactions from 1 again after a restart). A transaction is therefore
//! recorded with a fingerprint of what it carried, and a later one under the same id is a
//! retry only when it carried the same thing:
//! - **events**: the set of their event ids (order-free; an event without a readable id
//!   counts by its canonical JSON without `unsigned`, since `unsigned.age` changes between
//!   retries and raw bytes are never compared);
//! - **extras**: what has no id (ephemeral events, to-device messages), each by its canonical
//!   JSON without `unsigned`. A homeserver may resend a transaction without them (Synapse keeps
//!   only the events of a transaction it must retry), so a retry carrying none still matches.
//!
//! Each part is a multiset hash: the wrapping sum of the items' keyed SipHash-1-3 128-bit
//! hashes, with their count. It takes one short hash per event on the hot path, needs no
//! sorting, and ignores order; keyed with a secret (derived from the hs_token), nobody can
//! aim a set of events at a recorded sum. (One SHA-256 per event id and a sort of them cost
//! about 8 % of the daemon's CPU under W1; this, about one.)

use std::hash::Hasher;

use ruma::CanonicalJsonValue;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use siphasher::sip128::{Hasher128, SipHasher13};

/// The secret key of the item hashes.
#[derive(Clone, Copy)]
pub struct FingerprintKey(u64, u64);

impl FingerprintKey {
    /// The key derived from a deployment secret. Another secret (a rotated hs_token) makes
    /// fingerprints recorded before it never match: a retry across the rotation is
    /// processed again, and event-id dedupe delivers none of its events twice.
    pub fn derive(secret: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"mosaic-as transaction fingerprint\0");
        h.update(secret.as_bytes());
        let d: [u8; 32] = h.finalize().into();
        let word = |i: usize| u64::from_le_bytes(d[i..i + 8].try_into().expect("8 bytes"));
        Self(word(0), word(8))
    }
}

impl std::fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FingerprintKey(..)")
    }
}

/// A multiset of items: the wrapping sum of their hashes, and how many there are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Multiset {
    sum: u128,
    count: u32,
}

impl Multiset {
    fn add(&mut self, hash: u128) {
        self.sum = self.sum.wrapping_add(hash);
        self.count = self.count.wrapping_add(1);
    }

    /// 40 lowercase hex digits: the sum, then the count.
    fn to_hex(self) -> String {
        format!("{:032x}{:08x}", self.sum, self.count)
    }

    fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 40 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(Self {
            sum: u128::from_str_radix(&s[..32], 16).ok()?,
            count: u32::from_str_radix(&s[32..], 16).ok()?,
        })
    }
}

/// What one transaction carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxnFingerprint {
    events: Multiset,
    /// `None` when the transaction carried no ephemeral or to-device items.
    extras: Option<Multiset>,
}

/// How a transaction relates to what was recorded under its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnVerdict {
    /// Nothing recorded under this id: process it.
    New,
    /// The same transaction again (a homeserver retry): answer 200, process nothing.
    Retry,
    /// The id was recorded with other content (or before fingerprints were kept): a new
    /// transaction under a reused id; process it.
    IdReused,
}

impl TxnFingerprint {
    /// Decides what this transaction is, given the fingerprint recorded under its id:
    /// `None` when the id is unknown, `Some(None)` for a row recorded without one.
    pub fn verdict(&self, recorded: Option<Option<&TxnFingerprint>>) -> TxnVerdict {
        match recorded {
            None => TxnVerdict::New,
            Some(Some(r)) if self.is_retry_of(r) => TxnVerdict::Retry,
            Some(_) => TxnVerdict::IdReused,
        }
    }

    fn is_retry_of(&self, recorded: &TxnFingerprint) -> bool {
        self.events == recorded.events && (self.extras.is_none() || self.extras == recorded.extras)
    }

    /// The stored form: hex of the events part and, when present, of the extras.
    pub fn to_hex(&self) -> (String, Option<String>) {
        (self.events.to_hex(), self.extras.map(Multiset::to_hex))
    }

    /// Reads the stored form back; `None` when it is not what [`to_hex`](Self::to_hex)
    /// wrote (a row from before this form counts as recorded without a fingerprint).
    pub fn from_hex(events: &str, extras: Option<&str>) -> Option<Self> {
        Some(Self {
            events: Multiset::from_hex(events)?,
            extras: match extras {
                Some(x) => Some(Multiset::from_hex(x)?),
                None => None,
            },
        })
    }
}

/// Collects a transaction's items as they are parsed, then gives its fingerprint
/// ([`finish`](Self::finish)).
pub struct FingerprintBuilder {
    key: FingerprintKey,
    events: Multiset,
    extras: Option<Multiset>,
}

impl FingerprintBuilder {
    pub fn new(key: &FingerprintKey) -> Self {
        Self {
            key: *key,
            events: Multiset::default(),
            extras: None,
        }
    }

    /// An event whose id was read.
    pub fn event_id(&mut self, event_id: &str) {
        let hash = self.item(b'i', event_id.as_bytes());
        self.events.add(hash);
    }

    /// An event whose id could not be read: counted by its content.
    pub fn event_without_id(&mut self, event: &RawValue) {
        let hash = self.canonical(b'e', event);
        self.events.add(hash);
    }

    /// An ephemeral event or a to-device message.
    pub fn extra(&mut self, item: &RawValue) {
        let hash = self.canonical(b'x', item);
        self.extras.get_or_insert_default().add(hash);
    }

    pub fn finish(self) -> TxnFingerprint {
        TxnFingerprint {
            events: self.events,
            extras: self.extras,
        }
    }

    /// The keyed hash of one item: a kind byte (so an id and a JSON text never stand for
    /// each other) and its bytes.
    fn item(&self, kind: u8, bytes: &[u8]) -> u128 {
        let mut h = SipHasher13::new_with_keys(self.key.0, self.key.1);
        h.write(&[kind]);
        h.write(bytes);
        h.finish128().as_u128()
    }

    /// The hash of a JSON value in Matrix canonical form, top-level `unsigned` removed (it
    /// holds per-delivery data such as `age`). JSON that has no canonical form (floats,
    /// integers beyond 2^53) counts by its text as received.
    fn canonical(&self, kind: u8, json: &RawValue) -> u128 {
        match serde_json::from_str::<CanonicalJsonValue>(json.get()) {
            Ok(mut value) => {
                if let CanonicalJsonValue::Object(map) = &mut value {
                    map.remove("unsigned");
                }
                self.item(kind, value.to_string().as_bytes())
            }
            Err(_) => self.item(kind, json.get().as_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.into()).unwrap()
    }

    fn key() -> FingerprintKey {
        FingerprintKey::derive("test secret")
    }

    fn of(ids: &[&str], extras: &[&str]) -> TxnFingerprint {
        let mut b = FingerprintBuilder::new(&key());
        ids.iter().for_each(|id| b.event_id(id));
        extras.iter().for_each(|x| b.extra(&raw(x)));
        b.finish()
    }

    #[test]
    fn same_id_same_events_is_a_retry_in_any_order() {
        let recorded = of(&["$a", "$b"], &[]);
        assert_eq!(
            of(&["$b", "$a"], &[]).verdict(Some(Some(&recorded))),
            TxnVerdict::Retry
        );
    }

    #[test]
    fn same_id_other_events_is_a_new_transaction() {
        let recorded = of(&["$a", "$b"], &[]);
        for other in [&["$a"][..], &["$a", "$b", "$c"], &["$c"], &[]] {
            assert_eq!(
                of(other, &[]).verdict(Some(Some(&recorded))),
                TxnVerdict::IdReused,
                "{other:?}"
            );
        }
    }

    #[test]
    fn an_unknown_id_is_new_and_a_row_without_fingerprint_is_a_reuse() {
        let fp = of(&["$a"], &[]);
        assert_eq!(fp.verdict(None), TxnVerdict::New);
        assert_eq!(fp.verdict(Some(None)), TxnVerdict::IdReused);
    }

    #[test]
    fn extras_count_by_content_and_a_retry_may_drop_them() {
        let typing = r#"{"type":"m.typing","room_id":"!r","content":{"user_ids":["@a:hs"]}}"#;
        let reordered = r#"{"content":{"user_ids":["@a:hs"]},"room_id":"!r","type":"m.typing"}"#;
        let other = r#"{"type":"m.typing","room_id":"!r","content":{"user_ids":[]}}"#;
        let recorded = of(&["$a"], &[typing]);
        let verdict = |fp: TxnFingerprint| fp.verdict(Some(Some(&recorded)));
        assert_eq!(verdict(of(&["$a"], &[reordered])), TxnVerdict::Retry);
        assert_eq!(
            verdict(of(&["$a"], &[])),
            TxnVerdict::Retry,
            "extras dropped"
        );
        assert_eq!(verdict(of(&["$a"], &[other])), TxnVerdict::IdReused);
        // Ephemeral-only transactions: other ephemeral content under the same id is new.
        let only = of(&[], &[typing]);
        assert_eq!(
            of(&[], &[other]).verdict(Some(Some(&only))),
            TxnVerdict::IdReused
        );
        assert_eq!(
            of(&[], &[typing]).verdict(Some(Some(&only))),
            TxnVerdict::Retry
        );
    }

    #[test]
    fn events_without_ids_count_by_content_without_unsigned() {
        let fp = |json: &str| {
            let mut b = FingerprintBuilder::new(&key());
            b.event_without_id(&raw(json));
            b.finish()
        };
        let first = fp(r#"{"type":"x","content":{"n":1},"unsigned":{"age":10}}"#);
        let retry = fp(r#"{"unsigned":{"age":2500},"content":{"n":1},"type":"x"}"#);
        let other = fp(r#"{"type":"x","content":{"n":2},"unsigned":{"age":10}}"#);
        assert_eq!(retry.verdict(Some(Some(&first))), TxnVerdict::Retry);
        assert_eq!(other.verdict(Some(Some(&first))), TxnVerdict::IdReused);
        // Not canonical JSON (a float): counted by its text.
        let float = fp(r#"{"type":"x","content":{"n":1.5}}"#);
        assert_eq!(
            fp(r#"{"type":"x","content":{"n":1.5}}"#).verdict(Some(Some(&float))),
            TxnVerdict::Retry
        );
    }

    #[test]
    fn an_event_id_and_an_extra_never_stand_for_each_other() {
        assert_ne!(of(&["$a"], &[]), of(&[], &[r#""$a""#]));
        // A multiset: the same id twice is not the id once.
        assert_ne!(of(&["$a", "$a"], &[]), of(&["$a"], &[]));
        // Another key, another fingerprint.
        let mut other = FingerprintBuilder::new(&FingerprintKey::derive("another"));
        other.event_id("$a");
        assert_ne!(other.finish(), of(&["$a"], &[]));
        assert_ne!(of(&[], &[]), of(&[], &["{}"]));
        assert_eq!(of(&[], &[]), TxnFingerprint::default());
    }

    #[test]
    fn the_stored_form_reads_back() {
        for fp in [of(&["$a"], &[]), of(&["$a"], &["{}"]), of(&[], &[])] {
            let (events, extras) = fp.to_hex();
            assert_eq!(
                TxnFingerprint::from_hex(&events, extras.as_deref()),
                Some(fp)
            );
        }
        assert_eq!(TxnFingerprint::from_hex("zz", None), None);
        assert_eq!(TxnFingerprint::from_hex("00", None), None);
        // The SHA-256 form of earlier builds reads as no fingerprint.
        assert_eq!(TxnFingerprint::from_hex(&"0".repeat(64), None), None);
    }
}
