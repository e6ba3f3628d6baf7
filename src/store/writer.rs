//! Group commit: one task owns every write. It takes all writes that arrived while the
//! previous commit ran and applies them in one store transaction (one WAL append). A second
//! task makes committed batches durable (one sync for all the batches waiting, see
//! [`Commits::make_durable`]), then runs the commit hook and answers each waiting caller,
//! in commit order. So the next batch is written while the last one reaches the disk:
//! durability before the answer, at high rates, with a single writer (no lock contention
//! between writers).

use std::sync::Arc;

use futures_util::{stream::FuturesOrdered, StreamExt};
use tokio::sync::{mpsc, oneshot};

use super::{
    AgentRecord, Commits, MembershipChange, RequestDigest, RoomRecord, SentKey, StoreError,
    StoreResult, TransactionOutcome, TransactionWrite, WriteOp, WriteOutcome,
};
use crate::metrics::METRICS;

/// Most writes applied in one commit.
const MAX_BATCH: usize = 512;
/// Most committed batches waiting for a sync to start: a slow disk holds the writer back
/// (and, through its bounded queue, the callers).
const AWAITING_SYNC: usize = 8;
/// Most syncs running at once. A sync started while another runs covers the commits made
/// since, so a commit waits for about one sync, not for the rest of one and then another.
const SYNCS_IN_FLIGHT: usize = 4;

/// Runs after each successful commit is durable, in commit order, before any caller of
/// that commit is answered; it receives the committed writes by value.
pub trait CommitHook: Send + Sync + 'static {
    fn committed(&self, ops: Vec<WriteOp>, outcomes: &[WriteOutcome]);
}

struct Job {
    op: WriteOp,
    reply: oneshot::Sender<StoreResult<WriteOutcome>>,
}

/// Handle to the writer task; cheap to clone.
#[derive(Clone)]
pub struct CommitWriter {
    jobs: mpsc::Sender<Job>,
}

impl CommitWriter {
    /// Starts the writer tasks on the current runtime. `queue` bounds waiting writes.
    pub fn spawn(store: Arc<dyn Commits>, queue: usize, hook: Arc<dyn CommitHook>) -> Self {
        let (jobs, rx) = mpsc::channel(queue);
        let (committed, awaiting) = mpsc::channel(1);
        tokio::spawn(answer_when_durable(store.clone(), awaiting, hook));
        tokio::spawn(commit(store, rx, committed));
        Self { jobs }
    }

    /// Applies one write durably (possibly in a commit shared with others).
    pub async fn write(&self, op: WriteOp) -> StoreResult<WriteOutcome> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { op, reply })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Records a homeserver transaction.
    pub async fn commit(&self, txn: TransactionWrite) -> StoreResult<TransactionOutcome> {
        match self.write(WriteOp::Transaction(txn)).await? {
            WriteOutcome::Transaction(t) => Ok(t),
            WriteOutcome::Done => Err(StoreError::Corrupt("transaction outcome missing".into())),
        }
    }

    pub async fn put_agent(&self, agent: AgentRecord) -> StoreResult<()> {
        self.write(WriteOp::Agent(agent)).await.map(drop)
    }

    pub async fn set_membership(&self, change: MembershipChange) -> StoreResult<()> {
        self.write(WriteOp::Membership(change)).await.map(drop)
    }

    pub async fn record_sent(
        &self,
        key: SentKey,
        request: RequestDigest,
        event_id: ruma::OwnedEventId,
    ) -> StoreResult<()> {
        self.write(WriteOp::Sent {
            key,
            request,
            event_id,
        })
        .await
        .map(drop)
    }

    pub async fn record_room(&self, room: RoomRecord) -> StoreResult<()> {
        self.write(WriteOp::Room(room)).await.map(drop)
    }
}

/// A commit whose callers wait for its sync.
struct Committed {
    ops: Vec<WriteOp>,
    outcomes: Vec<WriteOutcome>,
    replies: Vec<oneshot::Sender<StoreResult<WriteOutcome>>>,
}

/// Applies what arrived, a batch at a time, and passes each commit on to be made durable.
async fn commit(
    store: Arc<dyn Commits>,
    mut rx: mpsc::Receiver<Job>,
    committed: mpsc::Sender<Committed>,
) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let (ops, replies): (Vec<_>, Vec<_>) = jobs.drain(..).map(|j| (j.op, j.reply)).unzip();
        METRICS.commit_batch.observe(ops.len() as f64);
        match store.apply(&ops).await {
            Ok(outcomes) => {
                let batch = Committed {
                    ops,
                    outcomes,
                    replies,
                };
                if committed.send(batch).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, writes = ops.len(), "group commit failed");
                let text = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Commit(text.clone())));
                }
            }
        }
    }
}

/// Starts a sync as soon as commits are waiting for one, up to [`SYNCS_IN_FLIGHT`] at a
/// time, and when a sync ends runs the hook and answers the callers of every commit it
/// covers (all those made before it started), in commit order.
async fn answer_when_durable(
    store: Arc<dyn Commits>,
    mut awaiting: mpsc::Receiver<Committed>,
    hook: Arc<dyn CommitHook>,
) {
    let mut waiting: Vec<Committed> = Vec::new();
    let mut syncs = FuturesOrdered::new();
    let mut open = true;
    while open || !waiting.is_empty() || !syncs.is_empty() {
        tokio::select! {
            committed = awaiting.recv(), if open && waiting.len() < AWAITING_SYNC => {
                match committed {
                    Some(batch) => waiting.push(batch),
                    None => open = false,
                }
            }
            Some((synced, covered)) = syncs.next(), if !syncs.is_empty() => {
                if let Err(e) = synced {
                    // After a failed fsync the kernel may have dropped the pages it could
                    // not write, and a later fsync would not say so: nothing committed
                    // can be vouched for. Like PostgreSQL, stop; a restart reads what is on
                    // disk, and the homeserver sends again every transaction it was not
                    // answered for.
                    tracing::error!(error = %e, "the store cannot make commits durable; stopping");
                    std::process::abort();
                }
                answer(&*hook, covered);
            }
        }
        if !waiting.is_empty() && syncs.len() < SYNCS_IN_FLIGHT {
            let covered = std::mem::take(&mut waiting);
            let store = Arc::clone(&store);
            syncs.push_back(async move { (store.make_durable().await, covered) });
        }
    }
}

/// Runs the hook and answers the callers of durable commits, in commit order.
fn answer(hook: &dyn CommitHook, batches: Vec<Committed>) {
    for Committed {
        ops,
        outcomes,
        replies,
    } in batches
    {
        hook.committed(ops, &outcomes);
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            let _ = reply.send(Ok(outcome));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{
            atomic::{AtomicUsize, Ordering},
            Mutex,
        },
        time::Duration,
    };

    use async_trait::async_trait;
    use tokio::sync::Semaphore;

    use super::*;
    use crate::ids::AgentSlug;

    /// Commits at once; each sync waits for a permit the test hands out.
    struct GatedSync {
        applied: AtomicUsize,
        syncs: Semaphore,
        synced: AtomicUsize,
    }

    #[async_trait]
    impl Commits for GatedSync {
        async fn apply(&self, batch: &[WriteOp]) -> StoreResult<Vec<WriteOutcome>> {
            self.applied.fetch_add(batch.len(), Ordering::SeqCst);
            Ok(batch.iter().map(|_| WriteOutcome::Done).collect())
        }

        async fn make_durable(&self) -> StoreResult<()> {
            self.syncs.acquire().await.expect("open").forget();
            self.synced
                .store(self.applied.load(Ordering::SeqCst), Ordering::SeqCst);
            Ok(())
        }
    }

    /// Records the agents of each hook call, and how many writes were synced by then.
    struct Seen(Mutex<Vec<(String, usize)>>, Arc<GatedSync>);

    impl CommitHook for Seen {
        fn committed(&self, ops: Vec<WriteOp>, _: &[WriteOutcome]) {
            for op in ops {
                let WriteOp::Agent(a) = op else { panic!() };
                let synced = self.1.synced.load(Ordering::SeqCst);
                self.0.lock().unwrap().push((a.slug.to_string(), synced));
            }
        }
    }

    fn agent(name: &str) -> AgentRecord {
        AgentRecord {
            slug: AgentSlug::parse(name).unwrap(),
            registered: false,
            display_name: None,
            avatar_url: None,
        }
    }

    async fn eventually(what: &str, done: impl Fn() -> bool) {
        for _ in 0..500 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!("{what}");
    }

    #[tokio::test]
    async fn no_answer_before_the_sync_and_the_next_commit_does_not_wait_for_it() {
        let store = Arc::new(GatedSync {
            applied: AtomicUsize::new(0),
            syncs: Semaphore::new(0),
            synced: AtomicUsize::new(0),
        });
        let seen = Arc::new(Seen(Mutex::default(), store.clone()));
        let writer = CommitWriter::spawn(store.clone(), 16, seen.clone());
        let first = tokio::spawn({
            let writer = writer.clone();
            async move { writer.put_agent(agent("a")).await }
        });
        eventually("the first write is committed", || {
            store.applied.load(Ordering::SeqCst) == 1
        })
        .await;
        let second = tokio::spawn({
            let writer = writer.clone();
            async move { writer.put_agent(agent("b")).await }
        });
        // The second batch is committed while the first one's sync has not finished...
        eventually(
            "the second write is committed during the first sync",
            || store.applied.load(Ordering::SeqCst) == 2,
        )
        .await;
        // ...and nobody is answered, nor the hook run, before a sync.
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!first.is_finished() && !second.is_finished());
        assert!(seen.0.lock().unwrap().is_empty());
        store.syncs.add_permits(2);
        first.await.unwrap().unwrap();
        second.await.unwrap().unwrap();
        let seen = seen.0.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(seen[0].0, "a", "commit order");
        assert_eq!(seen[1].0, "b", "commit order");
        assert!(
            seen[0].1 >= 1 && seen[1].1 >= 2,
            "each after its sync: {seen:?}"
        );
    }
}
