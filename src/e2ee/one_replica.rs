//! End-to-end encryption on a shared (PostgreSQL) store runs on one replica for now: an
//! agent's crypto machine must live in one process (two machines of one device would each
//! advance their own Olm and Megolm state), and handing each agent's machine to its owner
//! replica is not built yet. So the replica with `[e2ee] enabled` holds a session-level
//! advisory lock on a connection of its own while it runs; a second one refuses to start.
//! PostgreSQL releases the lock when that connection ends (a kill, a lost network): the
//! holder checks it every few seconds and takes it again on a new connection; should
//! another replica hold it by then, `/ready` says so until this one holds it again.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use sqlx::{postgres::PgConnectOptions, Connection, PgConnection};

/// The advisory lock (an arbitrary constant, "e2ee-1" in ASCII).
const LOCK: i64 = 0x6532_6565_2d31;
/// How often the holder checks its lock.
const EVERY: Duration = Duration::from_secs(5);

/// Why this replica cannot run encryption.
#[derive(Debug, thiserror::Error)]
pub enum OneReplicaError {
    #[error(
        "another replica with [e2ee] enabled runs on this database: end-to-end encryption \
         runs on one replica for now (turn it off on all but one, see docs/encryption.md)"
    )]
    Held,
    #[error("the database: {0}")]
    Database(#[from] sqlx::Error),
}

/// This replica holds the lock (checked and taken again in the background).
pub struct OneReplica {
    lost: Arc<AtomicBool>,
}

impl OneReplica {
    /// Takes the lock, or [`OneReplicaError::Held`] when another replica has it.
    pub async fn claim(options: PgConnectOptions) -> Result<Self, OneReplicaError> {
        let mut conn = PgConnection::connect_with(&options).await?;
        if !try_lock(&mut conn).await? {
            return Err(OneReplicaError::Held);
        }
        let lost = Arc::new(AtomicBool::new(false));
        tokio::spawn(hold(conn, options, lost.clone()));
        Ok(Self { lost })
    }

    /// What `/ready` says while another replica holds the lock.
    pub fn problem(&self) -> Option<&'static str> {
        self.lost.load(Ordering::Relaxed).then_some(
            "another replica with [e2ee] enabled took end-to-end encryption's lock on the \
             database (it runs on one replica for now)",
        )
    }
}

async fn try_lock(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(LOCK)
        .fetch_one(conn)
        .await
}

/// Keeps the lock: checks the connection every [`EVERY`]; once it fails, takes the lock
/// again on a new one (and while another replica holds it, tries again every time).
async fn hold(mut conn: PgConnection, options: PgConnectOptions, lost: Arc<AtomicBool>) {
    loop {
        tokio::time::sleep(EVERY).await;
        let alive = sqlx::query("SELECT 1").execute(&mut conn).await.is_ok();
        if alive && !lost.load(Ordering::Relaxed) {
            continue;
        }
        if !alive {
            tracing::warn!("end-to-end encryption's lock: connection lost; taking it again");
            match PgConnection::connect_with(&options).await {
                Ok(new) => conn = new,
                Err(e) => {
                    tracing::warn!(error = %e, "end-to-end encryption's lock: cannot connect yet");
                    continue;
                }
            }
        }
        match try_lock(&mut conn).await {
            Ok(held) => {
                if !held && !lost.load(Ordering::Relaxed) {
                    tracing::error!(
                        "another replica with [e2ee] enabled took end-to-end encryption's lock"
                    );
                }
                lost.store(!held, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(error = %e, "end-to-end encryption's lock: not taken yet"),
        }
    }
}
