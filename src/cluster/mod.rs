//! Several replicas on one PostgreSQL database. Each replica holds a lease (a row renewed
//! every third of `ha.takeover_s`, [`lease`]); each agent has one owner replica (a row with
//! an epoch, [`owners`]), to which the others forward the agent's acts; one replica is the
//! leader (an advisory lock held on a connection of its own, [`leader`]) and runs the jobs
//! that must run once; commit notices keep every replica's memory current ([`listen`]).
//!
//! The fencing rule: a replica acts for its agents only while its own clock says its lease
//! is valid, and it counts that from *before* it asked to renew, with a margin; the others
//! take an agent over only once the database's clock says that lease has expired. So two
//! replicas never act for one agent at once, short of clocks drifting apart by more than
//! the margin within one lease.
//!
//! With SQLite (one process) there is one replica: it leads and owns every agent.

pub mod leader;
pub mod lease;
pub mod listen;
pub mod owners;

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use sqlx::PgPool;
use url::Url;

pub use self::owners::Owner;
use crate::{config::Config, store::StoreError};

/// Why the cluster cannot say or do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("this replica's lease is not current (it cannot reach the database)")]
    LeaseLost,
    #[error("the database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What part this process plays among the replicas.
pub struct Cluster {
    /// `None`: the only replica (SQLite).
    shared: Option<Shared>,
    leader: AtomicBool,
    leadership: tokio::sync::Notify,
}

struct Shared {
    pool: PgPool,
    /// This replica's id (random at start).
    id: String,
    /// Where the others reach this one.
    url: Url,
    takeover: Duration,
    /// Milliseconds after [`Shared::epoch`] until which this replica may act for its agents.
    valid_until_ms: AtomicU64,
    epoch: Instant,
    owners: owners::OwnerCache,
}

impl Cluster {
    /// The only replica: it leads and owns every agent.
    pub fn single() -> Arc<Self> {
        crate::metrics::METRICS.replica_leader.set(1);
        Arc::new(Self {
            shared: None,
            leader: AtomicBool::new(true),
            leadership: tokio::sync::Notify::new(),
        })
    }

    /// One replica of several sharing `pool`, as `config` says.
    pub fn shared(pool: PgPool, config: &Config) -> Arc<Self> {
        let url = config.ha.advertise_url.clone().unwrap_or_else(|| {
            let listen = config.appservice.listen;
            let ip = if listen.ip().is_unspecified() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                listen.ip()
            };
            let addr = std::net::SocketAddr::new(ip, listen.port());
            Url::parse(&format!("http://{addr}")).expect("an address forms a URL")
        });
        Self::replica(pool, url, config.ha.takeover)
    }

    /// One replica of several sharing `pool`, reached at `url`, its lease `takeover` long.
    pub fn replica(pool: PgPool, url: Url, takeover: Duration) -> Arc<Self> {
        Arc::new(Self {
            shared: Some(Shared {
                pool,
                id: uuid::Uuid::new_v4().simple().to_string(),
                url,
                takeover,
                valid_until_ms: AtomicU64::new(0),
                epoch: Instant::now(),
                owners: owners::OwnerCache::default(),
            }),
            leader: AtomicBool::new(false),
            leadership: tokio::sync::Notify::new(),
        })
    }

    /// Whether other replicas may exist.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Whether this replica runs the jobs that must run once.
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Acquire)
    }

    fn set_leader(&self, leads: bool) {
        crate::metrics::METRICS.replica_leader.set(i64::from(leads));
        if self.leader.swap(leads, Ordering::AcqRel) != leads {
            self.leadership.notify_waiters();
            if leads {
                tracing::info!("this replica is now the leader");
            } else {
                tracing::warn!("this replica is no longer the leader");
            }
        }
    }

    /// Completes when this replica becomes or stops being the leader.
    pub async fn leadership_changed(&self) {
        self.leadership.notified().await;
    }

    /// The tasks that keep this replica's part: its lease, the leader election, the commit
    /// notices applied by `sink`. None alone.
    pub fn spawn_tasks(
        self: &Arc<Self>,
        sink: Arc<dyn listen::Replicated>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let Some(s) = &self.shared else {
            return Vec::new();
        };
        vec![
            tokio::spawn(lease::run(self.clone())),
            tokio::spawn(leader::run(self.clone())),
            tokio::spawn(listen::run(s.pool.clone(), sink)),
        ]
    }

    /// This replica's id (`"single"` alone).
    pub fn id(&self) -> &str {
        self.shared.as_ref().map_or("single", |s| s.id.as_str())
    }

    /// Whether this replica may act for the agents it owns now (always, alone).
    pub fn lease_is_valid(&self) -> bool {
        self.shared.as_ref().is_none_or(|s| {
            let now = s.epoch.elapsed().as_millis() as u64;
            now < s.valid_until_ms.load(Ordering::Acquire)
        })
    }

    /// Which replica acts as `slug`: this one (claiming it when no live replica owns it),
    /// or another, reachable at a URL.
    pub async fn owner_of(&self, slug: &crate::ids::AgentSlug) -> Result<Owner, ClusterError> {
        match &self.shared {
            None => Ok(Owner::Local),
            // Without a current lease it may neither claim an agent nor act as one.
            Some(_) if !self.lease_is_valid() => Err(ClusterError::LeaseLost),
            Some(s) => Ok(s.owners.owner_of(&s.pool, &s.id, slug).await?),
        }
    }

    /// Forgets what is known of `slug`'s owner (its replica did not answer).
    pub fn forget_owner(&self, slug: &crate::ids::AgentSlug) {
        if let Some(s) = &self.shared {
            s.owners.forget(slug);
        }
    }
}

#[cfg(test)]
mod tests;
