//! Which replica acts as each agent: one row per agent (`agent_owners`), claimed by the
//! first replica that needs to act as it, taken over (epoch + 1) only from a replica whose
//! lease has expired, and cached here: an owner that is this replica stays cached (the
//! lease decides whether it may act), another replica for [`REMOTE_TTL`] or until it does
//! not answer.

use std::time::{Duration, Instant};

use dashmap::DashMap;
use sqlx::{PgPool, Row};
use url::Url;

use crate::ids::AgentSlug;

/// How long another replica's ownership is believed without asking the database again.
const REMOTE_TTL: Duration = Duration::from_secs(2);

/// `$1` slug, `$2` this replica. Inserts the row, or takes it over from a replica whose
/// lease expired; returns nothing when another live replica (or this one) owns it.
const CLAIM: &str = "INSERT INTO agent_owners AS o (slug, replica, epoch) VALUES ($1, $2, 1) \
    ON CONFLICT (slug) DO UPDATE SET replica = $2, epoch = o.epoch + 1 \
    WHERE o.replica <> $2 AND NOT EXISTS ( \
        SELECT 1 FROM replicas r WHERE r.id = o.replica AND r.expires_at > now()) \
    RETURNING epoch, (xmax <> 0) AS taken_over";

/// `$1` slug: the owner, its URL and how long its lease has left (milliseconds).
const LOCATE: &str = "SELECT o.replica, r.url, \
        GREATEST(0, (EXTRACT(EPOCH FROM r.expires_at - now()) * 1000)::int8) \
    FROM agent_owners o LEFT JOIN replicas r ON r.id = o.replica WHERE o.slug = $1";

/// Who acts as an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// This replica.
    Local,
    /// Another replica, at `url`, whose lease runs for `lease_left` more.
    Remote { url: Url, lease_left: Duration },
}

#[derive(Default)]
pub(super) struct OwnerCache {
    known: DashMap<AgentSlug, (Owner, Instant)>,
}

impl OwnerCache {
    pub(super) async fn owner_of(
        &self,
        pool: &PgPool,
        me: &str,
        slug: &AgentSlug,
    ) -> Result<Owner, sqlx::Error> {
        if let Some(known) = self.known.get(slug) {
            let (owner, at) = &*known;
            if *owner == Owner::Local || at.elapsed() < REMOTE_TTL {
                return Ok(owner.clone());
            }
        }
        let owner = ask(pool, me, slug).await?;
        self.known
            .insert(slug.clone(), (owner.clone(), Instant::now()));
        Ok(owner)
    }

    pub(super) fn forget(&self, slug: &AgentSlug) {
        self.known.remove(slug);
    }

    /// Forgets every agent this replica owned (its lease lapsed: others may own them now).
    pub(super) fn forget_local(&self) {
        self.known.retain(|_, (owner, _)| *owner != Owner::Local);
    }
}

async fn ask(pool: &PgPool, me: &str, slug: &AgentSlug) -> Result<Owner, sqlx::Error> {
    if let Some(row) = sqlx::query(CLAIM)
        .bind(slug.as_str())
        .bind(me)
        .fetch_optional(pool)
        .await?
    {
        let epoch: i64 = row.get(0);
        if row.get::<bool, _>(1) {
            tracing::info!(agent = %slug, epoch, "took over an agent whose replica's lease expired");
        }
        return Ok(Owner::Local);
    }
    let row = sqlx::query(LOCATE)
        .bind(slug.as_str())
        .fetch_one(pool)
        .await?;
    let replica: String = row.get(0);
    if replica == me {
        return Ok(Owner::Local);
    }
    let url: Option<String> = row.get(1);
    let left: Option<i64> = row.get(2);
    let url = url
        .and_then(|u| Url::parse(&u).ok())
        .ok_or_else(|| sqlx::Error::Protocol(format!("replica {replica} has no valid URL")))?;
    Ok(Owner::Remote {
        url,
        lease_left: Duration::from_millis(left.unwrap_or(0).max(0) as u64),
    })
}
