//! WAL checkpoints off the commit path. SQLite's automatic checkpoint runs inside the
//! commit that crosses its threshold, so that commit (and every caller waiting on it) pays
//! for copying the WAL into the database file. The writer connection turns it off and this
//! task does the work instead, in two steps:
//!
//! 1. every [`INTERVAL`], a `PASSIVE` checkpoint on a pool connection, which no reader or
//!    writer waits for: it copies what has been committed so far;
//! 2. when the WAL has grown past [`RESTART_FRAMES`], a second `PASSIVE` checkpoint on the
//!    writer connection itself, holding it: no commit runs meanwhile, so the WAL ends fully
//!    copied and the next commit starts it over from the beginning. Under a steady write
//!    load that moment never comes by itself (new frames arrive while step 1 copies), and
//!    the WAL would grow without bound. Step 2 only copies what arrived during step 1.

use std::{
    sync::{Arc, Weak},
    time::Duration,
};

use sqlx::{Executor, SqlitePool};
use tokio::sync::Mutex;

use super::batch::Writer;

/// How often the WAL is copied back into the database file.
pub const INTERVAL: Duration = Duration::from_millis(200);
/// WAL size (in pages: 1 KiB in a database this store created) above which the WAL is
/// started over.
pub const RESTART_FRAMES: i64 = 16384;

/// Runs until the store is dropped or its pool closed.
pub async fn run(pool: SqlitePool, writer: Weak<Mutex<Writer>>) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(writer) = writer.upgrade() else {
            return;
        };
        if pool.is_closed() {
            return;
        }
        if let Err(e) = checkpoint(&pool, &writer, RESTART_FRAMES).await {
            tracing::warn!(error = %e, "WAL checkpoint failed (tried again shortly)");
        }
    }
}

/// Both steps (the second when the WAL holds more than `restart_frames`); returns the WAL's
/// size in frames after them.
pub async fn checkpoint(
    pool: &SqlitePool,
    writer: &Arc<Mutex<Writer>>,
    restart_frames: i64,
) -> sqlx::Result<i64> {
    let frames = passive(pool).await?;
    if frames <= restart_frames {
        return Ok(frames);
    }
    let mut writer = writer.lock().await;
    writer.settle().await;
    passive(&mut writer.conn).await
}

/// `PRAGMA wal_checkpoint(PASSIVE)`: the WAL's size in frames.
async fn passive<'c, E: Executor<'c, Database = sqlx::Sqlite>>(on: E) -> sqlx::Result<i64> {
    let (_busy, frames, _copied): (i64, i64, i64) =
        sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(on)
            .await?;
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{sqlite::SqliteStore, AgentRecord, Commits, Store, WriteOp};

    async fn write_agents(s: &SqliteStore, from: usize, n: usize) {
        let ops: Vec<_> = (from..from + n)
            .map(|i| {
                WriteOp::Agent(AgentRecord {
                    slug: crate::ids::AgentSlug::parse(&format!("agent-{i}")).unwrap(),
                    registered: true,
                    display_name: Some("x".repeat(200)),
                    avatar_url: None,
                })
            })
            .collect();
        s.apply(&ops).await.unwrap();
    }

    /// The WAL's size, as a checkpoint that ran says (one that met the store's own
    /// checkpoint task running at that moment answers -1: asked again).
    async fn frames(pool: &SqlitePool) -> i64 {
        for _ in 0..50 {
            let n = passive(pool).await.unwrap();
            if n >= 0 {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no checkpoint could run");
    }

    /// The writer never checkpoints by itself; the second step holds the writer and
    /// starts the WAL over; nothing committed is lost on the way.
    #[tokio::test]
    async fn a_grown_wal_is_copied_and_started_over() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let s = SqliteStore::open(&url).await.unwrap();
        let auto: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
            .fetch_one(&mut s.writer.lock().await.conn)
            .await
            .unwrap();
        assert_eq!(auto, 0, "no checkpoint inside a commit");
        for i in 0..20 {
            write_agents(&s, i * 100, 100).await;
        }
        let grown = frames(&s.pool).await;
        assert!(grown > 50, "{grown} frames");
        // Below the threshold only the first step runs, without the writer.
        let held = s.writer.lock().await;
        let first_step = loop {
            match checkpoint(&s.pool, &s.writer, i64::MAX).await.unwrap() {
                -1 => tokio::time::sleep(Duration::from_millis(20)).await,
                n => break n,
            }
        };
        assert_eq!(first_step, grown);
        // Above it, the second step waits for the writer (no commit runs during it).
        let second = tokio::spawn({
            let (pool, writer) = (s.pool.clone(), s.writer.clone());
            async move { checkpoint(&pool, &writer, 50).await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!second.is_finished(), "the second step needs the writer");
        drop(held);
        second.await.unwrap().unwrap();
        // The next commit writes from the start of the WAL again.
        write_agents(&s, 5000, 1).await;
        let after = frames(&s.pool).await;
        assert!(
            after < grown / 4,
            "WAL started over: {after} frames, was {grown}"
        );
        let all = crate::tokens::pattern::AgentPattern::Any.range();
        assert_eq!(s.agents(None, &all, 10_000).await.unwrap().len(), 2001);
    }
}
