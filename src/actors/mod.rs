//! The actors: one [`agent::AgentActor`] per hosted agent and the [`supervisor::Supervisor`]
//! that starts agents (keeping the registry of live ones, which lets HTTP workers skip it
//! on hot paths) and runs provisioning; the [`outbox`] carries out transactions' effects. [`AppState`] is
//! the daemon's shared state, and the way everything else reaches an agent.

pub mod agent;
pub mod decrypt;
pub mod enrol;
pub mod error;
pub mod late_keys;
pub mod outbox;
pub mod replicated;
mod state;
pub mod supervisor;

use std::sync::Arc;

pub use self::state::{AppState, Creation, StateParts};
use self::{
    agent::MembershipChanged, enrol::Enrolment, outbox::Outbox, supervisor::registry::AgentRegistry,
};
use crate::{ids::AgentSlug, inbound::AgentNotices, store::MembershipChange};

/// How a homeserver transaction was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionAck {
    Recorded { skipped: usize, id_reused: bool },
    Duplicate,
}

/// How the after-commit step reaches the actors: membership changes straight to live
/// agents, committed effects by waking the outbox. Both without waiting (it runs on the
/// writer).
pub struct ActorNotices {
    pub agents: Arc<AgentRegistry>,
    pub outbox: Arc<Outbox>,
    /// With end-to-end encryption on: agents to give devices.
    pub enrolment: Option<Arc<Enrolment>>,
}

impl AgentNotices for ActorNotices {
    fn membership_changed(&self, change: MembershipChange) {
        if let Some(addr) = self.agents.get(&change.slug) {
            // Rare and must not be lost: ignore mailbox capacity.
            addr.do_send(MembershipChanged {
                room: change.room_id,
                joined: change.joined,
            });
        }
    }

    fn effects_recorded(&self) {
        self.outbox.wake();
    }

    fn in_encrypted_room(&self, slug: &AgentSlug) {
        if let Some(enrolment) = &self.enrolment {
            enrolment.add(slug);
        }
    }
}
