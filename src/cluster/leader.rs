//! The leader: the replica holding a session-level advisory lock on a connection of its
//! own. PostgreSQL releases the lock when that connection ends, whatever ends it (a kill,
//! a lost network), so another replica's next try succeeds. The leader runs the jobs that
//! must run once: the homeserver ping loop, retention, the effects outbox.

use std::{sync::Arc, time::Duration};

use sqlx::{Connection, PgConnection};

use super::Cluster;

/// The leader's advisory lock (an arbitrary constant, "leader" in ASCII).
const LEADER_LOCK: i64 = 0x6c65_6164_6572;

/// Tries for the lock, holds it while the connection and the lease last; until dropped.
pub async fn run(cluster: Arc<Cluster>) {
    let Some(s) = &cluster.shared else { return };
    let every = s.takeover / 3;
    let options = s.pool.connect_options();
    loop {
        if cluster.lease_is_valid() {
            match PgConnection::connect_with(&options).await {
                Ok(mut conn) => {
                    lead_while_held(&cluster, &mut conn, every).await;
                    let _ = conn.close().await;
                }
                Err(e) => tracing::warn!(error = %e, "leader election: cannot connect"),
            }
        }
        cluster.set_leader(false);
        tokio::time::sleep(every.min(Duration::from_secs(1))).await;
    }
}

/// Tries for the lock on `conn` every `every`; once held, leads until the connection fails
/// or the lease lapses.
async fn lead_while_held(cluster: &Cluster, conn: &mut PgConnection, every: Duration) {
    loop {
        if !cluster.lease_is_valid() {
            return;
        }
        let held = if cluster.is_leader() {
            sqlx::query_scalar::<_, i32>("SELECT 1")
                .fetch_one(&mut *conn)
                .await
                .map(|_| true)
        } else {
            sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
                .bind(LEADER_LOCK)
                .fetch_one(&mut *conn)
                .await
        };
        match held {
            Ok(leads) => cluster.set_leader(leads),
            Err(e) => {
                tracing::warn!(error = %e, "leader election: connection lost");
                return;
            }
        }
        tokio::time::sleep(every).await;
    }
}
