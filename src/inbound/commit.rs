//! The one after-commit step: runs on the group-commit writer right after each commit, in
//! commit order, before any writer of that commit is answered (see
//! [`CommitHook`](crate::store::writer::CommitHook)). For every recorded transaction it
//! fills the inbox tails of the agents being read, applies the membership changes to the
//! directory, tells the agents concerned, and hands its effects (invites to accept) to the
//! actors; an agent's own joins and leaves reach the directory here too.

use std::sync::{Arc, OnceLock};

use ruma::RoomId;

use super::directory::Directory;
use crate::{
    ids::AgentSlug,
    inbox::Inboxes,
    metrics::METRICS,
    store::{writer::CommitHook, MembershipChange, TransactionOutcome, WriteOp, WriteOutcome},
};

/// What the after-commit step tells the actors (implemented by them, so that this module
/// does not depend on them). Both calls must return at once: they run on the writer.
pub trait AgentNotices: Send + Sync + 'static {
    /// The homeserver reported a membership change of an agent (the directory has it).
    fn membership_changed(&self, change: MembershipChange);
    /// A commit stored effects (accepting invites, sender-bot joins) in the outbox.
    fn effects_recorded(&self);
    /// An agent is now in an encrypted room (it joined one, or a room it is in became
    /// encrypted): with end-to-end encryption on it needs its device and keys before
    /// others encrypt for it.
    fn in_encrypted_room(&self, slug: &AgentSlug);
}

pub struct AfterCommit {
    inboxes: Arc<Inboxes>,
    directory: Arc<Directory>,
    /// Set once the actors run (before the HTTP server accepts a transaction).
    notices: OnceLock<Arc<dyn AgentNotices>>,
}

impl AfterCommit {
    pub fn new(inboxes: Arc<Inboxes>, directory: Arc<Directory>) -> Self {
        Self {
            inboxes,
            directory,
            notices: OnceLock::new(),
        }
    }

    /// Connects the actors; the first call counts.
    pub fn connect(&self, notices: Arc<dyn AgentNotices>) {
        let _ = self.notices.set(notices);
    }
}

impl AfterCommit {
    /// Applies a membership change to the directory; a join into an encrypted room is
    /// told.
    fn apply_membership(&self, change: &MembershipChange) {
        self.directory.apply(change);
        if change.joined && self.directory.is_encrypted(&change.room_id) {
            if let Some(n) = self.notices.get() {
                n.in_encrypted_room(&change.slug);
            }
        }
    }

    /// Marks `room` encrypted; the first time, its agents are told.
    fn mark_encrypted(&self, room: &RoomId) {
        if !self.directory.mark_encrypted(room) {
            return;
        }
        if let Some(n) = self.notices.get() {
            for slug in self.directory.agents_in(room) {
                n.in_encrypted_room(&slug);
            }
        }
    }
}

impl CommitHook for AfterCommit {
    fn committed(&self, ops: Vec<WriteOp>, outcomes: &[WriteOutcome]) {
        let (mut delivered, mut duplicates) = (0u64, 0u64);
        for (op, outcome) in ops.into_iter().zip(outcomes) {
            match (op, outcome) {
                (
                    WriteOp::Transaction(txn),
                    WriteOutcome::Transaction(TransactionOutcome::Recorded { cursors, .. }),
                ) => {
                    for (delivery, cursors) in txn.deliveries.iter().zip(cursors) {
                        match cursors {
                            Some(cursors) => {
                                delivered += cursors.len() as u64;
                                self.inboxes.append(delivery, cursors);
                            }
                            None => duplicates += 1,
                        }
                    }
                    // Connected before the HTTP server accepts a transaction.
                    let notices = self.notices.get();
                    for room in &txn.encrypted_rooms {
                        self.mark_encrypted(room);
                    }
                    for upgrade in &txn.upgrades {
                        self.directory.record_upgrade(upgrade);
                    }
                    for typing in txn.typing {
                        self.directory.set_typing(typing);
                    }
                    for change in txn.memberships {
                        self.apply_membership(&change);
                        if let Some(n) = notices {
                            n.membership_changed(change);
                        }
                    }
                    if let (Some(n), false) = (notices, txn.effects.is_empty()) {
                        n.effects_recorded();
                    }
                }
                (WriteOp::Membership(change), WriteOutcome::Done) => {
                    self.apply_membership(&change);
                }
                (WriteOp::RoomEncrypted(room), WriteOutcome::Done) => {
                    self.mark_encrypted(&room);
                }
                (WriteOp::DeleteAgent(slug), WriteOutcome::Done) => {
                    self.directory.forget(&slug);
                    self.inboxes.forget(&slug);
                }
                _ => {}
            }
        }
        METRICS.inbox_deliveries.inc_by(delivered);
        METRICS.events_duplicate.inc_by(duplicates);
    }
}
