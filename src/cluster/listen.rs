//! Keeps this replica's memory current with what the others commit: listens for commit
//! notices on the database and hands each to a [`Replicated`] sink, in commit order. On
//! every (re)connection the sink first reloads from the store, since notices sent while
//! this replica was not listening are gone.

use std::{sync::Arc, time::Duration};

use futures_util::future::BoxFuture;
use sqlx::{postgres::PgListener, PgPool};

use crate::store::{notice::CommitNotice, postgres::NOTICE_CHANNEL};

/// What applies commit notices (implemented over the shared state, so that this module
/// does not depend on it).
pub trait Replicated: Send + Sync + 'static {
    /// Applies one notice (another replica's, or this one's own, again: see
    /// [`CommitNotice::origin`]). Must return at once.
    fn apply(&self, notice: CommitNotice);
    /// Reloads what notices keep current from the store (after notices may have been
    /// missed).
    fn resync(&self) -> BoxFuture<'_, ()>;
}

/// Listens until dropped.
pub async fn run(pool: PgPool, sink: Arc<dyn Replicated>) {
    loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => match listener.listen(NOTICE_CHANNEL).await {
                Ok(()) => {
                    sink.resync().await;
                    receive(&mut listener, sink.as_ref()).await;
                }
                Err(e) => tracing::warn!(error = %e, "commit notices: cannot listen"),
            },
            Err(e) => tracing::warn!(error = %e, "commit notices: cannot connect"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Hands notices over until the connection is lost.
async fn receive(listener: &mut PgListener, sink: &dyn Replicated) {
    loop {
        match listener.try_recv().await {
            Ok(Some(n)) => match serde_json::from_str::<CommitNotice>(n.payload()) {
                Ok(notice) => sink.apply(notice),
                Err(e) => tracing::error!(error = %e, "commit notices: unreadable notice"),
            },
            Ok(None) => {
                tracing::warn!("commit notices: connection lost; reloading after reconnecting");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "commit notices: connection failed");
                return;
            }
        }
    }
}
