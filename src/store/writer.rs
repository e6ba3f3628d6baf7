//! Group commit: one task owns every write. It takes all writes that arrived while the
//! previous commit ran and applies them in one store transaction (one WAL append), then
//! answers each waiting caller. Durability before the answer, at high rates, with a single
//! writer (no lock contention between writers).

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{
    AgentRecord, MembershipChange, RequestDigest, RoomRecord, SentKey, Store, StoreError,
    StoreResult, TransactionOutcome, TransactionWrite, WriteOp, WriteOutcome,
};
use crate::metrics::METRICS;

/// Most writes applied in one commit.
const MAX_BATCH: usize = 512;

/// Runs right after each successful commit, in commit order, before any caller of that
/// commit is answered; it receives the committed writes by value.
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
    /// Starts the writer task on the current runtime. `queue` bounds waiting writes.
    pub fn spawn(store: Arc<dyn Store>, queue: usize, hook: Arc<dyn CommitHook>) -> Self {
        let (jobs, rx) = mpsc::channel(queue);
        tokio::spawn(run(store, rx, hook));
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

async fn run(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Job>, hook: Arc<dyn CommitHook>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let (ops, replies): (Vec<_>, Vec<_>) = jobs.drain(..).map(|j| (j.op, j.reply)).unzip();
        METRICS.commit_batch.observe(ops.len() as f64);
        match store.apply(&ops).await {
            Ok(outcomes) => {
                hook.committed(ops, &outcomes);
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
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
