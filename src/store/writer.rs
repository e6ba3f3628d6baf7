//! Group commit: one task owns inbound writes. It takes every transaction that arrived
//! while the previous commit ran and writes them in one store transaction (one fsync), then
//! answers each waiting request. Durability before the 200, at high transaction rates.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{Store, StoreError, StoreResult, TransactionOutcome, TransactionWrite};
use crate::metrics::METRICS;

/// Most transactions written in one commit.
const MAX_BATCH: usize = 256;

struct Job {
    write: TransactionWrite,
    reply: oneshot::Sender<StoreResult<TransactionOutcome>>,
}

/// Handle to the writer task; cheap to clone.
#[derive(Clone)]
pub struct CommitWriter {
    jobs: mpsc::Sender<Job>,
}

impl CommitWriter {
    /// Starts the writer task on the current runtime. `queue` bounds waiting transactions.
    pub fn spawn(store: Arc<dyn Store>, queue: usize) -> Self {
        let (jobs, rx) = mpsc::channel(queue);
        tokio::spawn(run(store, rx));
        Self { jobs }
    }

    /// Writes one transaction durably (possibly together with others).
    pub async fn commit(&self, write: TransactionWrite) -> StoreResult<TransactionOutcome> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { write, reply })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }
}

async fn run(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let (writes, replies): (Vec<_>, Vec<_>) =
            jobs.drain(..).map(|j| (j.write, j.reply)).unzip();
        METRICS.commit_batch.observe(writes.len() as f64);
        match store.commit_transactions(&writes).await {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, transactions = writes.len(), "group commit failed");
                let text = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Commit(text.clone())));
                }
            }
        }
    }
}
