//! What one commit changed that other replicas keep in memory: routing facts (memberships,
//! encrypted rooms, upgrades, typing, display names, deleted agents), which inboxes grew,
//! whether effects or tokens changed. A shared-database backend publishes it inside the
//! commit's transaction (PostgreSQL: `NOTIFY`, delivered on commit and in commit order), so
//! a replica learns of every commit once it is visible, crash or not; the listener of
//! [`crate::cluster`] applies it.

use ruma::{OwnedRoomId, OwnedUserId};
use serde::{Deserialize, Serialize};

use super::{MembershipChange, RoomTyping, RoomUpgrade, TransactionOutcome, WriteOp, WriteOutcome};
use crate::ids::AgentSlug;

/// Largest payload of one notification (PostgreSQL refuses 8000 bytes and more).
pub const MAX_PAYLOAD: usize = 7900;

/// The changes of one commit (or of one part of it, see [`CommitNotice::payloads`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitNotice {
    /// The process that committed (so it can skip what it already applied).
    #[serde(rename = "o")]
    pub origin: u64,
    /// Agents whose inbox grew, with their newest cursor.
    #[serde(rename = "i", default, skip_serializing_if = "Vec::is_empty")]
    pub inbox: Vec<(AgentSlug, i64)>,
    /// `(agent, room, joined)`.
    #[serde(rename = "m", default, skip_serializing_if = "Vec::is_empty")]
    pub memberships: Vec<(AgentSlug, OwnedRoomId, bool)>,
    #[serde(rename = "e", default, skip_serializing_if = "Vec::is_empty")]
    pub encrypted: Vec<OwnedRoomId>,
    /// `(old room, replacement)`.
    #[serde(rename = "u", default, skip_serializing_if = "Vec::is_empty")]
    pub upgrades: Vec<(OwnedRoomId, OwnedRoomId)>,
    #[serde(rename = "t", default, skip_serializing_if = "Vec::is_empty")]
    pub typing: Vec<(OwnedRoomId, Vec<OwnedUserId>)>,
    /// Agents written (created or renamed), with their display name.
    #[serde(rename = "n", default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<(AgentSlug, Option<String>)>,
    #[serde(rename = "d", default, skip_serializing_if = "Vec::is_empty")]
    pub deleted: Vec<AgentSlug>,
    /// The commit stored effects for the outbox.
    #[serde(rename = "x", default, skip_serializing_if = "std::ops::Not::not")]
    pub effects: bool,
    /// Issued tokens changed.
    #[serde(rename = "k", default, skip_serializing_if = "std::ops::Not::not")]
    pub tokens: bool,
}

impl CommitNotice {
    /// What `ops`, committed with `outcomes`, changed; `None` when nothing another replica
    /// keeps.
    pub fn of(origin: u64, ops: &[WriteOp], outcomes: &[WriteOutcome]) -> Option<Self> {
        let mut n = Self {
            origin,
            ..Self::default()
        };
        for (op, outcome) in ops.iter().zip(outcomes) {
            match (op, outcome) {
                (
                    WriteOp::Transaction(txn),
                    WriteOutcome::Transaction(TransactionOutcome::Recorded { cursors, .. }),
                ) => {
                    for (delivery, cursors) in txn.deliveries.iter().zip(cursors) {
                        let Some(cursors) = cursors else { continue };
                        for ((slug, _), cursor) in delivery.recipients.iter().zip(cursors) {
                            n.grew(slug, *cursor);
                        }
                    }
                    n.memberships.extend(txn.memberships.iter().map(fact));
                    n.encrypted.extend(txn.encrypted_rooms.iter().cloned());
                    n.upgrades.extend(
                        txn.upgrades
                            .iter()
                            .map(|u| (u.room_id.clone(), u.replacement.clone())),
                    );
                    n.typing.extend(
                        txn.typing
                            .iter()
                            .map(|t| (t.room_id.clone(), t.users.clone())),
                    );
                    n.effects |= !txn.effects.is_empty();
                }
                (WriteOp::Membership(change), _) => n.memberships.push(fact(change)),
                (WriteOp::RoomEncrypted(room), _) => n.encrypted.push(room.clone()),
                (WriteOp::Agent(record), _) => n
                    .names
                    .push((record.slug.clone(), record.display_name.clone())),
                (WriteOp::DeleteAgent(slug), _) => n.deleted.push(slug.clone()),
                _ => {}
            }
        }
        (!n.is_empty()).then_some(n)
    }

    /// A notice that issued tokens changed.
    pub fn tokens(origin: u64) -> Self {
        Self {
            origin,
            tokens: true,
            ..Self::default()
        }
    }

    fn grew(&mut self, slug: &AgentSlug, cursor: i64) {
        match self.inbox.iter_mut().find(|(s, _)| s == slug) {
            Some((_, newest)) => *newest = (*newest).max(cursor),
            None => self.inbox.push((slug.clone(), cursor)),
        }
    }

    fn is_empty(&self) -> bool {
        self.inbox.is_empty()
            && self.memberships.is_empty()
            && self.encrypted.is_empty()
            && self.upgrades.is_empty()
            && self.typing.is_empty()
            && self.names.is_empty()
            && self.deleted.is_empty()
            && !self.effects
            && !self.tokens
    }

    /// The notice as JSON payloads of at most [`MAX_PAYLOAD`] bytes each, to be applied in
    /// order: a notice too large for one is split, its lists in halves, keeping their order.
    pub fn payloads(&self) -> Vec<String> {
        let json = serde_json::to_string(self).expect("a notice serialises");
        if json.len() <= MAX_PAYLOAD {
            return vec![json];
        }
        let (first, second) = self.halves();
        if first == *self || second == *self {
            // One element larger than a payload (no id is that long): dropped, and said.
            tracing::error!(bytes = json.len(), "a commit notice element is too large");
            return Vec::new();
        }
        let mut out = first.payloads();
        out.extend(second.payloads());
        out
    }

    /// Two notices that together say what this one says (flags in the first).
    fn halves(&self) -> (Self, Self) {
        fn split<T: Clone>(v: &[T]) -> (Vec<T>, Vec<T>) {
            let (a, b) = v.split_at(v.len().div_ceil(2));
            (a.to_vec(), b.to_vec())
        }
        let (i1, i2) = split(&self.inbox);
        let (m1, m2) = split(&self.memberships);
        let (e1, e2) = split(&self.encrypted);
        let (u1, u2) = split(&self.upgrades);
        let (t1, t2) = split(&self.typing);
        let (n1, n2) = split(&self.names);
        let (d1, d2) = split(&self.deleted);
        let first = Self {
            origin: self.origin,
            inbox: i1,
            memberships: m1,
            encrypted: e1,
            upgrades: u1,
            typing: t1,
            names: n1,
            deleted: d1,
            effects: self.effects,
            tokens: self.tokens,
        };
        let second = Self {
            origin: self.origin,
            inbox: i2,
            memberships: m2,
            encrypted: e2,
            upgrades: u2,
            typing: t2,
            names: n2,
            deleted: d2,
            effects: false,
            tokens: false,
        };
        (first, second)
    }

    /// The membership changes, as the directory takes them.
    pub fn membership_changes(&self) -> impl Iterator<Item = MembershipChange> + '_ {
        self.memberships
            .iter()
            .map(|(slug, room_id, joined)| MembershipChange {
                slug: slug.clone(),
                room_id: room_id.clone(),
                joined: *joined,
            })
    }

    pub fn room_upgrades(&self) -> impl Iterator<Item = RoomUpgrade> + '_ {
        self.upgrades.iter().map(|(room, replacement)| RoomUpgrade {
            room_id: room.clone(),
            replacement: replacement.clone(),
        })
    }

    pub fn room_typing(&self) -> impl Iterator<Item = RoomTyping> + '_ {
        self.typing.iter().map(|(room, users)| RoomTyping {
            room_id: room.clone(),
            users: users.clone(),
        })
    }
}

fn fact(c: &MembershipChange) -> (AgentSlug, OwnedRoomId, bool) {
    (c.slug.clone(), c.room_id.clone(), c.joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slug(s: &str) -> AgentSlug {
        AgentSlug::parse(s).unwrap()
    }

    #[test]
    fn a_notice_round_trips_and_a_large_one_is_split_in_order() {
        let mut notice = CommitNotice::tokens(7);
        for i in 0..400 {
            notice.inbox.push((slug(&format!("agent-{i:04}")), i));
            notice.memberships.push((
                slug(&format!("agent-{i:04}")),
                format!("!room{i}:example.org").try_into().unwrap(),
                i % 2 == 0,
            ));
        }
        let payloads = notice.payloads();
        assert!(payloads.len() > 1);
        let mut joined = CommitNotice {
            origin: 7,
            ..CommitNotice::default()
        };
        for p in &payloads {
            assert!(p.len() <= MAX_PAYLOAD, "{}", p.len());
            let part: CommitNotice = serde_json::from_str(p).unwrap();
            assert_eq!(part.origin, 7);
            joined.inbox.extend(part.inbox);
            joined.memberships.extend(part.memberships);
            joined.tokens |= part.tokens;
        }
        assert_eq!(joined, notice);
        let small = CommitNotice::tokens(1).payloads();
        assert_eq!(small, [r#"{"o":1,"k":true}"#]);
    }
}
