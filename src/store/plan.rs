//! What one group commit writes, decided the same way for every backend. A backend finds
//! what its store holds under the batch's transaction ids (and, where it can tell before
//! writing, which event ids it has seen), builds the [`Plan`], writes the plan's rows, and
//! hands back which candidate events it wrote, with their cursors; [`Plan::outcomes`] turns
//! that into the outcome of every write. The rules (those of applying the writes one by
//! one, in batch order):
//! - a txn id already stored, or met earlier in the batch, with the same fingerprint is a
//!   `Duplicate` and writes nothing (not even its memberships); with another fingerprint it
//!   is recorded like a new one, flagged `id_reused` (see [`TxnFingerprint::verdict`]), and
//!   the stored row takes the newest fingerprint (its retry must match that one);
//! - an event id already stored, or met earlier in the batch (also earlier in the same
//!   transaction), is `None` and reaches no inbox; the first copy of each other event id
//!   is a candidate, and the backend gives its recipients the next cursors, in batch order;
//! - an agent, room, membership or room fact ends as its last write in the batch leaves
//!   it; a send key keeps its first event id (and the store's, when it has one);
//! - agents deleted are removed before the batch's other writes, so a new agent of the
//!   name in the same batch stays;
//! - a crypto row ends as its last write in the batch leaves it (kept or deleted);
//! - a redelivery (an event decrypted after it was stored as it came,
//!   [`super::InboxEvent::redelivered`]) is a late candidate when the store holds its event
//!   still encrypted and no earlier redelivery of the batch took it; the backend writes the
//!   clear event over the stored one and gives its recipients the next cursors after the
//!   batch's new events.

use std::collections::{HashMap, HashSet};

use super::{
    fingerprint::{TxnFingerprint, TxnVerdict},
    AgentRecord, EventDelivery, RoomRecord, StoreError, StoreResult, TransactionOutcome, WriteOp,
    WriteOutcome,
};

/// The rows one group commit writes, each table's in the order its keys first appear.
pub(super) struct Plan<'a> {
    /// Agents deleted, with their memberships, send keys, inbox and floor.
    pub deleted: Vec<&'a str>,
    /// Transactions recorded: txn id and the fingerprint it ends with.
    pub txns: Vec<TxnRow<'a>>,
    /// The first copy of each event id not known to be stored, in batch order.
    pub events: Vec<&'a EventDelivery>,
    /// Redeliveries of events stored encrypted, the first of each event id, in batch order.
    pub late: Vec<&'a EventDelivery>,
    /// `(slug, room_id)` memberships whose last word is a join...
    pub joins: Vec<(&'a str, &'a str)>,
    /// ...and those whose last word is a leave.
    pub leaves: Vec<(&'a str, &'a str)>,
    pub agents: Vec<&'a AgentRecord>,
    pub sent: Vec<SentRow<'a>>,
    /// Effects of recorded transactions (JSON of [`super::Effect`]), in batch order.
    pub effects: Vec<String>,
    pub rooms: Vec<&'a RoomRecord>,
    pub encrypted: Vec<&'a str>,
    /// `(room_id, replacement)`.
    pub upgrades: Vec<(&'a str, &'a str)>,
    /// Crypto rows kept: `(slug, kind, key, sealed value)`...
    pub crypto_kept: Vec<(&'a str, &'a str, &'a str, &'a [u8])>,
    /// ...and deleted: `(slug, kind, key)`.
    pub crypto_deleted: Vec<(&'a str, &'a str, &'a str)>,
    outcomes: Vec<Planned>,
}

/// A recorded transaction's row.
pub(super) struct TxnRow<'a> {
    pub txn_id: &'a str,
    pub events_digest: String,
    pub extras_digest: Option<String>,
}

/// A send key's row.
pub(super) struct SentRow<'a> {
    pub slug: &'a str,
    pub room_id: &'a str,
    pub client_txn: &'a str,
    pub request_digest: String,
    pub event_id: &'a str,
}

/// One write's outcome, before the backend has written the candidate events.
enum Planned {
    Done,
    Duplicate,
    Recorded {
        /// Per delivery: where the plan has it, or `None` when not delivered.
        events: Vec<Option<Candidate>>,
        id_reused: bool,
    },
}

/// A delivery the backend writes: an index in [`Plan::events`] or in [`Plan::late`].
#[derive(Clone, Copy)]
enum Candidate {
    New(usize),
    Late(usize),
}

impl<'a> Plan<'a> {
    /// Plans `batch`. `recorded` holds what the store has under the batch's txn ids (the
    /// fingerprint, `None` for a row from before fingerprints); an id it lacks is new.
    /// `event_stored` tells an event id the store is known to hold: such an event is no
    /// candidate (a backend that lets the database decide on insert answers `false`).
    /// `awaiting_key` tells whether the store may hold an event id still encrypted: a
    /// redelivery of another is no late candidate (a backend that lets the database decide
    /// on update answers `true`).
    pub fn new(
        batch: &'a [WriteOp],
        recorded: &HashMap<String, Option<TxnFingerprint>>,
        event_stored: impl Fn(&str) -> bool,
        awaiting_key: impl Fn(&str) -> bool,
    ) -> StoreResult<Self> {
        let mut txn_seen: HashMap<&str, &TxnFingerprint> = HashMap::new();
        let mut event_seen: HashSet<&str> = HashSet::new();
        let mut late_seen: HashSet<&str> = HashSet::new();
        let mut txns: LastWrite<&str, &TxnFingerprint> = LastWrite::default();
        let mut memberships: LastWrite<(&str, &str), bool> = LastWrite::default();
        let mut agents: LastWrite<&str, &AgentRecord> = LastWrite::default();
        let mut sent: LastWrite<(&str, &str, &str), SentRow<'a>> = LastWrite::default();
        let mut rooms: LastWrite<&str, &RoomRecord> = LastWrite::default();
        let mut encrypted: LastWrite<&str, ()> = LastWrite::default();
        let mut upgrades: LastWrite<&str, &str> = LastWrite::default();
        let mut crypto: LastWrite<(&str, &str, &str), Option<&[u8]>> = LastWrite::default();
        let mut plan = Plan {
            deleted: Vec::new(),
            txns: Vec::new(),
            events: Vec::new(),
            late: Vec::new(),
            joins: Vec::new(),
            leaves: Vec::new(),
            agents: Vec::new(),
            sent: Vec::new(),
            effects: Vec::new(),
            rooms: Vec::new(),
            encrypted: Vec::new(),
            upgrades: Vec::new(),
            crypto_kept: Vec::new(),
            crypto_deleted: Vec::new(),
            outcomes: Vec::with_capacity(batch.len()),
        };
        for op in batch {
            let outcome = match op {
                WriteOp::Transaction(t) => {
                    // What this id last stood for: earlier in this batch, else in the store.
                    let before = match txn_seen.get(t.txn_id.as_str()) {
                        Some(fp) => Some(Some(*fp)),
                        None => recorded.get(&t.txn_id).map(Option::as_ref),
                    };
                    let id_reused = match t.fingerprint.verdict(before) {
                        TxnVerdict::Retry => {
                            plan.outcomes.push(Planned::Duplicate);
                            continue;
                        }
                        TxnVerdict::New => false,
                        TxnVerdict::IdReused => true,
                    };
                    txn_seen.insert(&t.txn_id, &t.fingerprint);
                    txns.set(&t.txn_id, &t.fingerprint);
                    for e in &t.effects {
                        let text = serde_json::to_string(e)
                            .map_err(|e| StoreError::Corrupt(format!("effect encoding: {e}")))?;
                        plan.effects.push(text);
                    }
                    for m in &t.memberships {
                        memberships.set((m.slug.as_str(), m.room_id.as_str()), m.joined);
                    }
                    for room in &t.encrypted_rooms {
                        encrypted.set(room.as_str(), ());
                    }
                    for u in &t.upgrades {
                        upgrades.set(u.room_id.as_str(), u.replacement.as_str());
                    }
                    let events = t
                        .deliveries
                        .iter()
                        .map(|d| {
                            let id = d.event.event_id.as_str();
                            if d.event.redelivered {
                                if !awaiting_key(id) || !late_seen.insert(id) {
                                    return None;
                                }
                                plan.late.push(d);
                                return Some(Candidate::Late(plan.late.len() - 1));
                            }
                            if event_stored(id) || !event_seen.insert(id) {
                                return None;
                            }
                            plan.events.push(d);
                            Some(Candidate::New(plan.events.len() - 1))
                        })
                        .collect();
                    Planned::Recorded { events, id_reused }
                }
                WriteOp::Agent(a) => {
                    agents.set(a.slug.as_str(), a);
                    Planned::Done
                }
                WriteOp::Membership(m) => {
                    memberships.set((m.slug.as_str(), m.room_id.as_str()), m.joined);
                    Planned::Done
                }
                WriteOp::Sent {
                    key,
                    request,
                    event_id,
                } => {
                    let row = SentRow {
                        slug: key.slug.as_str(),
                        room_id: key.room_id.as_str(),
                        client_txn: &key.client_txn,
                        request_digest: request.to_hex(),
                        event_id: event_id.as_str(),
                    };
                    sent.set_first((row.slug, row.room_id, row.client_txn), row);
                    Planned::Done
                }
                WriteOp::Room(r) => {
                    rooms.set(r.room_id.as_str(), r);
                    Planned::Done
                }
                WriteOp::RoomEncrypted(room) => {
                    encrypted.set(room.as_str(), ());
                    Planned::Done
                }
                WriteOp::DeleteAgent(slug) => {
                    plan.deleted.push(slug.as_str());
                    Planned::Done
                }
                WriteOp::Crypto(w) => {
                    for row in &w.rows {
                        let key = (w.slug.as_str(), row.kind, row.key.as_str());
                        crypto.set(key, row.value.as_deref());
                    }
                    Planned::Done
                }
            };
            plan.outcomes.push(outcome);
        }
        plan.txns = txns
            .into_values()
            .map(|(txn_id, fp)| {
                let (events_digest, extras_digest) = fp.to_hex();
                TxnRow {
                    txn_id,
                    events_digest,
                    extras_digest,
                }
            })
            .collect();
        for (key, joined) in memberships.into_values() {
            match joined {
                true => plan.joins.push(key),
                false => plan.leaves.push(key),
            }
        }
        plan.agents = agents.into_values().map(|(_, a)| a).collect();
        plan.sent = sent.into_values().map(|(_, row)| row).collect();
        plan.rooms = rooms.into_values().map(|(_, r)| r).collect();
        plan.encrypted = encrypted.into_values().map(|(room, ())| room).collect();
        plan.upgrades = upgrades.into_values().collect();
        for ((slug, kind, key), value) in crypto.into_values() {
            match value {
                Some(value) => plan.crypto_kept.push((slug, kind, key, value)),
                None => plan.crypto_deleted.push((slug, kind, key)),
            }
        }
        Ok(plan)
    }

    /// The outcome of every write, in batch order, once the backend has written the
    /// candidates: `written[i]` holds the cursors given to the recipients of
    /// `self.events[i]` (in recipient order), or `None` when the store already had the
    /// event id after all; `late[i]` those of `self.late[i]`, or `None` when the store's
    /// event was not encrypted after all.
    pub fn outcomes(
        self,
        mut written: Vec<Option<Vec<i64>>>,
        mut late: Vec<Option<Vec<i64>>>,
    ) -> StoreResult<Vec<WriteOutcome>> {
        if written.len() != self.events.len() || late.len() != self.late.len() {
            return Err(StoreError::Corrupt(format!(
                "{} events and {} redeliveries written back for {} and {} planned",
                written.len(),
                late.len(),
                self.events.len(),
                self.late.len()
            )));
        }
        let outcomes = self.outcomes.into_iter().map(|planned| match planned {
            Planned::Done => WriteOutcome::Done,
            Planned::Duplicate => WriteOutcome::Transaction(TransactionOutcome::Duplicate),
            Planned::Recorded { events, id_reused } => {
                let cursors = events
                    .into_iter()
                    .map(|candidate| match candidate? {
                        Candidate::New(i) => written[i].take(),
                        Candidate::Late(i) => late[i].take(),
                    })
                    .collect();
                WriteOutcome::Transaction(TransactionOutcome::Recorded { cursors, id_reused })
            }
        });
        Ok(outcomes.collect())
    }
}

/// One value per key, in the order keys first appeared: the last value set, or with
/// [`LastWrite::set_first`] the first.
struct LastWrite<K, V>(Vec<(K, V)>, HashMap<K, usize>);

impl<K, V> Default for LastWrite<K, V> {
    fn default() -> Self {
        Self(Vec::new(), HashMap::new())
    }
}

impl<K: std::hash::Hash + Eq + Copy, V> LastWrite<K, V> {
    fn set(&mut self, key: K, value: V) {
        match self.1.get(&key) {
            Some(&i) => self.0[i].1 = value,
            None => self.set_first(key, value),
        }
    }

    fn set_first(&mut self, key: K, value: V) {
        if let std::collections::hash_map::Entry::Vacant(slot) = self.1.entry(key) {
            slot.insert(self.0.len());
            self.0.push((key, value));
        }
    }

    fn into_values(self) -> impl Iterator<Item = (K, V)> {
        self.0.into_iter()
    }
}
