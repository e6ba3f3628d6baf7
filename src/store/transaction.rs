//! What one homeserver transaction writes: inbox deliveries, membership facts, the effects
//! to carry out once it is recorded, and the room facts it shows (encryption, upgrades,
//! who types).

use ruma::{OwnedRoomId, OwnedServerName, OwnedUserId};

use super::{fingerprint::TxnFingerprint, EventDelivery};
use crate::ids::AgentSlug;

/// A membership fact learnt from the homeserver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipChange {
    pub slug: AgentSlug,
    pub room_id: OwnedRoomId,
    pub joined: bool,
}

/// What a recorded transaction asks for: stored in its commit, carried out after it until
/// done (the outbox).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Effect {
    /// An agent was invited by an allowed user: it joins.
    AcceptInvite { slug: AgentSlug, room: OwnedRoomId },
    /// The sender bot was invited: it joins.
    BotJoin { room: OwnedRoomId },
    /// `room` replaced `from` (an upgrade), where the agent is: it joins `room`, through
    /// `via` (the server of the user who upgraded).
    FollowUpgrade {
        slug: AgentSlug,
        from: OwnedRoomId,
        room: OwnedRoomId,
        via: OwnedServerName,
    },
    /// An agent or the sender bot (`user`) was invited by someone `inbound.invite_allow`
    /// does not name: the invite is rejected at the homeserver.
    RejectInvite {
        user: OwnedUserId,
        room: OwnedRoomId,
        inviter: OwnedUserId,
    },
}

/// Everything one homeserver transaction writes.
#[derive(Debug, Clone, Default)]
pub struct TransactionWrite {
    pub txn_id: String,
    /// What the transaction carried: a recorded id counts as handled only with this.
    pub fingerprint: TxnFingerprint,
    pub deliveries: Vec<EventDelivery>,
    pub memberships: Vec<MembershipChange>,
    /// What to do once the transaction is recorded (stored in the same commit).
    pub effects: Vec<Effect>,
    /// Rooms the transaction shows to be encrypted.
    pub encrypted_rooms: Vec<OwnedRoomId>,
    /// Rooms the transaction shows to be replaced by an upgrade.
    pub upgrades: Vec<RoomUpgrade>,
    /// Who types in a room once the transaction's typing events apply (not stored: the
    /// directory keeps it in memory, to tell who started and who stopped).
    pub typing: Vec<RoomTyping>,
}

/// A room replaced by another (`m.room.tombstone`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomUpgrade {
    pub room_id: OwnedRoomId,
    pub replacement: OwnedRoomId,
}

/// The users typing in a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomTyping {
    pub room_id: OwnedRoomId,
    pub users: Vec<OwnedUserId>,
}
