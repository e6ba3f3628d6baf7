//! Decides which agents an inbound event concerns (pure logic, no I/O): inbox deliveries
//! with mention flags, membership facts of agents, and invites to accept. A transaction's
//! membership changes count for its later events (a join and a message route as the
//! homeserver ordered them) but reach the shared directory only once the transaction is
//! recorded (the after-commit step, [`AfterCommit`](super::AfterCommit)). An event that
//! cannot be parsed or stored is skipped ([`Skipped`]), never the whole transaction.

use ruma::{events::Mentions, OwnedRoomId, RoomId};
use serde::Deserialize;
use serde_json::value::RawValue;

mod envelope;
mod ephemeral;
mod membership;
mod mentions;
mod skip;
mod tombstone;

use self::{
    envelope::{has_control, Checked, Envelope},
    membership::member_event,
    mentions::Mentioned,
};
pub use self::{
    envelope::{RawEnvelope, ReadEvents},
    skip::{SkipReason, Skipped},
};
use super::directory::{Directory, RoomAgents};
use crate::{
    config::InboundConfig,
    ids::{AgentSlug, Namespaces},
    metrics::{event_type_label, METRICS},
    store::{
        fingerprint::{FingerprintBuilder, FingerprintKey},
        EventDelivery, InboxEvent, MembershipChange, TransactionWrite,
    },
};

/// Room event types that land in agent inboxes.
const DELIVERED_TYPES: &[&str] = &[
    "m.room.message",
    "m.reaction",
    "m.room.redaction",
    "m.sticker",
    "m.poll.start",
    "m.poll.response",
    "m.poll.end",
    // Delivered (marked `encrypted`) rather than dropped: an agent that cannot decrypt
    // still knows that it was spoken to.
    "m.room.encrypted",
    // The agents also follow it into the new room (`tombstone`).
    "m.room.tombstone",
];

/// A routed transaction: what to write (with what to do once it is recorded).
#[derive(Debug, Default)]
pub struct Routed {
    pub write: TransactionWrite,
    /// Events that could not be parsed or stored (skipped), by reason.
    pub skipped: Skipped,
    /// Rooms whose members, encryption or history visibility the transaction changes
    /// (state events of those types), each once: what end-to-end encryption keeps of
    /// them is read again.
    pub crypto_state_changed: Vec<OwnedRoomId>,
}

#[derive(Deserialize, Default)]
pub(super) struct MessageContent {
    body: Option<String>,
    #[serde(rename = "m.mentions")]
    mentions: Option<Mentions>,
}

/// Sets the mention flag of each recipient of a message whose content was learnt after
/// routing (decrypted): as routing does for a message in the clear.
pub fn mark_mentions(
    content: &RawValue,
    recipients: &mut [(AgentSlug, bool)],
    ns: &Namespaces,
    directory: &Directory,
) {
    let content = serde_json::from_str::<MessageContent>(content.get()).unwrap_or_default();
    let mentions = Mentioned::new(&content, ns);
    for (slug, mentioned) in recipients {
        *mentioned = mentions.names(slug, ns, directory);
    }
}

/// What routing reads besides the transaction: shared, read-only while it runs.
pub struct Router<'a> {
    pub key: &'a FingerprintKey,
    pub ns: &'a Namespaces,
    pub directory: &'a Directory,
    pub inbound: &'a InboundConfig,
    /// `appservice.receive_ephemeral`: receipts and typing become inbox items.
    pub receive_ephemeral: bool,
}

/// A transaction's room events, borrowed from its body.
#[derive(Clone, Copy)]
pub enum Events<'a> {
    /// Every envelope, read in the body's single parse ([`ReadEvents::all`]).
    Read(&'a [RawEnvelope<'a>]),
    /// Raw events, each read on its own: a body with an event the single parse left unread.
    Raw(&'a [&'a RawValue]),
}

impl Events<'_> {
    pub fn len(&self) -> usize {
        match self {
            Events::Read(envelopes) => envelopes.len(),
            Events::Raw(raws) => raws.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for Events<'_> {
    fn default() -> Self {
        Events::Raw(&[])
    }
}

/// One pushed transaction, borrowed from its body.
#[derive(Clone, Copy, Default)]
pub struct Pushed<'a> {
    pub txn_id: &'a str,
    pub events: Events<'a>,
    /// Ephemeral events (typing, receipts, presence).
    pub ephemeral: &'a [&'a RawValue],
    /// To-device messages: only part of the fingerprint.
    pub to_device: &'a [&'a RawValue],
}

impl Router<'_> {
    /// Routes the events of one transaction (and, when asked for, its ephemeral events),
    /// and takes its fingerprint from all it carried while it reads them.
    pub fn route(&self, txn: Pushed<'_>) -> Routed {
        let Pushed {
            txn_id,
            events,
            ephemeral,
            to_device,
        } = txn;
        let mut routed = Routed {
            write: TransactionWrite {
                txn_id: txn_id.to_owned(),
                ..Default::default()
            },
            ..Default::default()
        };
        let mut by_type = EventTypeCounts::default();
        let mut fingerprint = FingerprintBuilder::new(self.key);
        match events {
            Events::Read(envelopes) => {
                let mut checked = Checked::default();
                for raw_ev in envelopes {
                    fingerprint.event_id(&raw_ev.event_id);
                    let ev = raw_ev.check(&mut checked);
                    self.event(txn_id, ev, &mut by_type, &mut routed);
                }
            }
            Events::Raw(raws) => {
                for raw in raws {
                    let parsed = serde_json::from_str::<RawEnvelope<'_>>(raw.get());
                    match &parsed {
                        Ok(ev) => fingerprint.event_id(&ev.event_id),
                        Err(_) => fingerprint.event_without_id(raw),
                    }
                    let ev = match parsed.as_ref() {
                        Ok(raw_ev) => raw_ev.check(&mut Checked::default()),
                        Err(e) => Err((SkipReason::Malformed, e.to_string())),
                    };
                    self.event(txn_id, ev, &mut by_type, &mut routed);
                }
            }
        }
        by_type.flush();
        for extra in ephemeral.iter().chain(to_device) {
            fingerprint.extra(extra);
        }
        if self.receive_ephemeral {
            let mut items = ephemeral::Items::new(self.ns, self.directory, &mut routed);
            for raw in ephemeral {
                items.route(txn_id, raw);
            }
        }
        routed.write.fingerprint = fingerprint.finish();
        routed
    }

    /// Routes one room event, or notes why it is skipped.
    fn event(
        &self,
        txn_id: &str,
        ev: Result<Envelope<'_>, (SkipReason, String)>,
        by_type: &mut EventTypeCounts,
        routed: &mut Routed,
    ) {
        let ev = match ev {
            Ok(ev) => ev,
            Err((reason, error)) => {
                routed.skipped.note(txn_id, None, reason, &error);
                return;
            }
        };
        by_type.add(ev.kind);
        let encrypts = match ev.kind {
            "m.room.encryption" => ev.state_key == Some(""),
            kind => kind == "m.room.encrypted",
        };
        if encrypts && !routed.write.encrypted_rooms.iter().any(|r| r == ev.room_id) {
            routed.write.encrypted_rooms.push(ev.room_id.to_owned());
        }
        let crypto_state = matches!(
            ev.kind,
            "m.room.member" | "m.room.encryption" | "m.room.history_visibility"
        );
        if crypto_state
            && ev.state_key.is_some()
            && !routed.crypto_state_changed.iter().any(|r| r == ev.room_id)
        {
            routed.crypto_state_changed.push(ev.room_id.to_owned());
        }
        if ev.kind == "m.room.member" {
            member_event(txn_id, &ev, self.ns, self.inbound, routed);
            return;
        }
        if ev.kind == tombstone::TOMBSTONE {
            tombstone::tombstone(txn_id, &ev, self.directory, routed);
        }
        if DELIVERED_TYPES.contains(&ev.kind) {
            deliver(&ev, self.ns, self.directory, routed);
        }
    }
}

/// Per-transaction event counts by type label, added to the metric once per label.
#[derive(Default)]
struct EventTypeCounts(Vec<(&'static str, u64)>);

impl EventTypeCounts {
    fn add(&mut self, kind: &str) {
        let label = event_type_label(kind);
        match self.0.iter_mut().find(|(l, _)| *l == label) {
            Some((_, n)) => *n += 1,
            None => self.0.push((label, 1)),
        }
    }

    fn flush(self) {
        for (label, n) in self.0 {
            METRICS
                .events_received
                .with_label_values(&[label])
                .inc_by(n);
        }
    }
}

/// The agents joined to `room` once the membership changes met so far in this transaction
/// apply. The directory itself changes only when the transaction is recorded, so a
/// transaction that is a duplicate (or fails to record) changes nothing.
pub(super) fn agents_in(
    directory: &Directory,
    room: &RoomId,
    changes: &[MembershipChange],
) -> RoomAgents {
    let mut agents = directory.agents_in(room);
    for c in changes.iter().filter(|c| c.room_id == room) {
        if !c.joined {
            agents.retain(|a| *a != c.slug);
        } else if !agents.contains(&c.slug) {
            agents.push(c.slug.clone());
        }
    }
    agents
}

fn deliver(ev: &Envelope<'_>, ns: &Namespaces, directory: &Directory, routed: &mut Routed) {
    let agents = agents_in(directory, ev.room_id, &routed.write.memberships);
    if agents.is_empty() {
        return;
    }
    let sender_slug = ns.agent_slug(ev.sender);
    let recipients: Vec<AgentSlug> = agents
        .into_iter()
        .filter(|a| Some(a) != sender_slug.as_ref())
        .collect();
    if recipients.is_empty() {
        return;
    }
    let content = if ev.kind == "m.room.message" {
        serde_json::from_str::<MessageContent>(ev.content.get()).unwrap_or_default()
    } else {
        MessageContent::default()
    };
    let mentions = Mentioned::new(&content, ns);
    let recipients = recipients
        .into_iter()
        .map(|slug| {
            let mentioned = mentions.names(&slug, ns, directory);
            (slug, mentioned)
        })
        .collect();
    routed.write.deliveries.push(EventDelivery {
        event: std::sync::Arc::new(InboxEvent {
            event_id: ev.event_id.to_owned(),
            room_id: ev.room_id.to_owned(),
            sender: ev.sender.to_owned(),
            event_type: ev.kind.to_owned(),
            content: ev.content.to_owned(),
            origin_server_ts: ev.origin_server_ts,
            decrypted: false,
            redelivered: false,
            json_members: Default::default(),
        }),
        recipients,
    });
}

#[cfg(test)]
mod tests;
