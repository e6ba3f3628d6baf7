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

use ruma::CanonicalJsonValue;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

/// A SHA-256 digest.
type Sha = [u8; 32];

/// The digest of an empty set: a transaction without events (or extras) has this one.
const EMPTY: Sha = [0; 32];

/// What one transaction carried, as two digests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxnFingerprint {
    events: Sha,
    /// `None` when the transaction carried no ephemeral or to-device items.
    extras: Option<Sha>,
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

    /// The stored form: lowercase hex of the events digest and, when present, of the extras.
    pub fn to_hex(&self) -> (String, Option<String>) {
        (hex::encode(self.events), self.extras.map(hex::encode))
    }

    /// Reads the stored form back; `None` when it is not what [`to_hex`](Self::to_hex) wrote.
    pub fn from_hex(events: &str, extras: Option<&str>) -> Option<Self> {
        let sha = |s: &str| -> Option<Sha> { hex::decode(s).ok()?.try_into().ok() };
        Some(Self {
            events: sha(events)?,
            extras: match extras {
                Some(x) => Some(sha(x)?),
                None => None,
            },
        })
    }
}

/// Collects a transaction's items as they are parsed, then digests them
/// ([`finish`](Self::finish)). Each item is hashed on its own and the item digests are
/// sorted, so the order the homeserver listed them in does not matter.
#[derive(Default)]
pub struct FingerprintBuilder {
    events: Vec<Sha>,
    extras: Vec<Sha>,
}

impl FingerprintBuilder {
    /// An event whose id was read.
    pub fn event_id(&mut self, event_id: &str) {
        self.events.push(item(b'i', event_id.as_bytes()));
    }

    /// An event whose id could not be read: counted by its content.
    pub fn event_without_id(&mut self, event: &RawValue) {
        self.events.push(canonical(b'e', event));
    }

    /// An ephemeral event or a to-device message.
    pub fn extra(&mut self, item: &RawValue) {
        self.extras.push(canonical(b'x', item));
    }

    pub fn finish(mut self) -> TxnFingerprint {
        TxnFingerprint {
            events: set_digest(&mut self.events),
            extras: (!self.extras.is_empty()).then(|| set_digest(&mut self.extras)),
        }
    }
}

/// The digest of one item: a kind byte (so an id and a JSON text never collide) and bytes.
fn item(kind: u8, bytes: &[u8]) -> Sha {
    let mut h = Sha256::new();
    h.update([kind]);
    h.update(bytes);
    h.finalize().into()
}

/// The item digest of a JSON value in Matrix canonical form, top-level `unsigned` removed
/// (it holds per-delivery data such as `age`). JSON that has no canonical form (floats,
/// integers beyond 2^53) counts by its text as received.
fn canonical(kind: u8, json: &RawValue) -> Sha {
    match serde_json::from_str::<CanonicalJsonValue>(json.get()) {
        Ok(mut value) => {
            if let CanonicalJsonValue::Object(map) = &mut value {
                map.remove("unsigned");
            }
            item(kind, value.to_string().as_bytes())
        }
        Err(_) => item(kind, json.get().as_bytes()),
    }
}

/// The digest of a set of item digests (sorted here; [`EMPTY`] for none).
fn set_digest(items: &mut [Sha]) -> Sha {
    if items.is_empty() {
        return EMPTY;
    }
    items.sort_unstable();
    let mut h = Sha256::new();
    for i in items.iter() {
        h.update(i);
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.into()).unwrap()
    }

    fn of(ids: &[&str], extras: &[&str]) -> TxnFingerprint {
        let mut b = FingerprintBuilder::default();
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
            let mut b = FingerprintBuilder::default();
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
    }
}
