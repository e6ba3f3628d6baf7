//! Commit notices of other replicas applied to this one's memory (see
//! [`crate::cluster::listen`]): routing facts to the directory, membership changes to live
//! agents, inbox growth to the readers waiting here, token changes to the token table,
//! effects to the outbox when this replica leads. This replica's own notices are skipped:
//! it applied its commits right after making them.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::{ActorNotices, AppState};
use crate::{cluster::listen::Replicated, inbound::AgentNotices, store::notice::CommitNotice};

pub struct ReplicaNotices {
    pub app: Arc<AppState>,
}

impl ReplicaNotices {
    fn actors(&self) -> ActorNotices {
        ActorNotices {
            agents: self.app.agents.clone(),
            outbox: self.app.outbox.clone(),
            // The replica that committed enrols the agents its commit put in encrypted
            // rooms.
            enrolment: None,
        }
    }
}

impl Replicated for ReplicaNotices {
    fn apply(&self, n: CommitNotice) {
        let app = &self.app;
        if n.effects && app.cluster.is_leader() {
            app.outbox.wake();
        }
        if Some(n.origin) == app.store.shared().map(|s| s.origin()) {
            return;
        }
        let directory = &app.directory;
        for room in &n.encrypted {
            directory.mark_encrypted(room);
        }
        for upgrade in n.room_upgrades() {
            directory.record_upgrade(&upgrade);
        }
        for typing in n.room_typing() {
            directory.set_typing(typing);
        }
        let actors = self.actors();
        for change in n.membership_changes() {
            if directory.apply(&change) {
                actors.membership_changed(change);
            }
        }
        for (slug, name) in &n.names {
            directory.set_display_name(slug, name.as_deref());
        }
        for slug in &n.deleted {
            directory.forget(slug);
            app.inboxes.forget(slug);
        }
        for (slug, _) in &n.inbox {
            app.inboxes.wake(slug);
        }
        if n.tokens {
            let app = app.clone();
            tokio::spawn(async move {
                if let Err(e) = app.access.reload().await {
                    tracing::warn!(error = %e, "cannot reload issued tokens");
                }
            });
        }
    }

    fn resync(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let app = &self.app;
            if let Err(e) = app.reload_shared().await {
                tracing::warn!(error = %e, "cannot reload from the store after missed notices");
            }
            app.inboxes.wake_all();
            app.outbox.wake();
        })
    }
}
