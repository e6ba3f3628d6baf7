//! This replica's lease: a row in `replicas` renewed every third of `ha.takeover_s`. The
//! local validity is counted from before each renewal was asked, minus a margin (see the
//! fencing rule in [`super`]); a replica that stops renewing stops acting for its agents
//! before anyone may take them over. At shutdown the row goes, so the others take over at
//! once rather than after the lease.

use std::{sync::atomic::Ordering, sync::Arc, time::Duration};

use super::Cluster;

/// `$1` id, `$2` URL, `$3` lease in milliseconds.
const RENEW: &str = "INSERT INTO replicas (id, url, expires_at) \
    VALUES ($1, $2, now() + $3 * interval '1 millisecond') \
    ON CONFLICT (id) DO UPDATE SET url = EXCLUDED.url, expires_at = EXCLUDED.expires_at";
/// Rows of replicas gone for a day (their agents were taken over or will be on demand);
/// the leader sweeps them.
const SWEEP: &str = "DELETE FROM replicas WHERE expires_at < now() - interval '1 day'";

/// Renews the lease until the task is dropped.
pub async fn run(cluster: Arc<Cluster>) {
    let Some(s) = &cluster.shared else { return };
    let every = s.takeover / 3;
    let mut was_valid = false;
    loop {
        match renew(&cluster).await {
            Ok(()) => {
                if !was_valid {
                    tracing::info!(replica = %s.id, url = %s.url, "replica lease held");
                }
                was_valid = true;
                if cluster.is_leader() {
                    let _ = sqlx::query(SWEEP).execute(&s.pool).await;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot renew this replica's lease");
                if was_valid && !cluster.lease_is_valid() {
                    tracing::error!("replica lease lapsed: acting for no agent until renewed");
                    s.owners.forget_local();
                    was_valid = false;
                }
            }
        }
        tokio::time::sleep(if was_valid {
            every
        } else {
            Duration::from_secs(1)
        })
        .await;
    }
}

/// Renews the lease once; on success this replica may act for its agents until a margin
/// before the lease ends, counted from before the renewal was asked.
pub async fn renew(cluster: &Cluster) -> Result<(), sqlx::Error> {
    let Some(s) = &cluster.shared else {
        return Ok(());
    };
    // The margin for clocks running at different speeds and for the answer's delay.
    let margin = s.takeover / 5;
    let asked = s.epoch.elapsed();
    if !cluster.lease_is_valid() {
        // The lease lapsed (a pause, a partition): others may have taken its agents over
        // meanwhile, so the renewed lease brings none back; each is asked for again.
        s.owners.forget_local();
    }
    sqlx::query(RENEW)
        .bind(&s.id)
        .bind(s.url.as_str())
        .bind(s.takeover.as_millis() as i64)
        .execute(&s.pool)
        .await?;
    let until = asked + s.takeover - margin;
    s.valid_until_ms
        .store(until.as_millis() as u64, Ordering::Release);
    Ok(())
}

/// Gives the lease up (at shutdown, after the agents' queues drained): the others take its
/// agents over at once.
pub async fn release(cluster: &Cluster) {
    let Some(s) = &cluster.shared else { return };
    s.valid_until_ms.store(0, Ordering::Release);
    match sqlx::query("DELETE FROM replicas WHERE id = $1")
        .bind(&s.id)
        .execute(&s.pool)
        .await
    {
        Ok(_) => tracing::info!("replica lease released"),
        Err(e) => tracing::warn!(error = %e, "cannot release the replica lease"),
    }
}
