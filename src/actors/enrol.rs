//! Enrolment for end-to-end encryption: an agent that is now in an encrypted room gets its
//! device and keys (its crypto machine opened: [`CryptoMachine`]) soon, in the background,
//! so that others' clients find a device to encrypt for before they next speak. Agents to
//! enrol are kept in a set (one entry per agent, however often it is named) and worked off
//! a few at a time; one that fails (homeserver away) is tried again, with backoff, until
//! it is enrolled; anything that needs the machine later opens it anyway. At start, agents
//! already in encrypted rooms without a device are enrolled ([`enrol_the_unenrolled`]).

use std::{collections::HashSet, sync::Arc, time::Duration};

use futures_util::{stream, StreamExt};
use tokio::sync::Notify;

use super::{agent::CryptoMachine, AppState};
use crate::ids::AgentSlug;

/// Machines opened at once.
const AT_ONCE: usize = 4;
/// Attempts per agent before enrolment waits for the next reason.
const ATTEMPTS: u32 = 5;

/// Agents waiting to be enrolled.
#[derive(Default)]
pub struct Enrolment {
    waiting: std::sync::Mutex<HashSet<AgentSlug>>,
    wake: Notify,
}

impl Enrolment {
    /// `slug` needs its device; returns at once.
    pub fn add(&self, slug: &AgentSlug) {
        let added = self
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(slug.clone());
        if added {
            self.wake.notify_one();
        }
    }

    fn take(&self) -> Vec<AgentSlug> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        waiting.drain().collect()
    }

    /// Enrols agents as they are added, until the process ends.
    pub async fn run(self: Arc<Self>, app: Arc<AppState>) {
        loop {
            self.wake.notified().await;
            let slugs = self.take();
            stream::iter(slugs)
                .for_each_concurrent(AT_ONCE, |slug| enrol(&app, slug))
                .await;
        }
    }
}

async fn enrol(app: &AppState, slug: AgentSlug) {
    let mut wait = Duration::from_millis(500);
    for attempt in 1..=ATTEMPTS {
        match app.ask(&slug, CryptoMachine).await {
            Ok(Ok(_)) => return,
            Ok(Err(e)) | Err(e) => {
                tracing::warn!(agent = %slug, attempt, error = %e, "cannot enrol the agent for encryption yet");
            }
        }
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
}

/// At start: the agents in encrypted rooms that have no device yet (encryption was turned
/// on after they joined, or their enrolment never finished) are enrolled, a batch of slugs
/// looked up at a time.
pub async fn enrol_the_unenrolled(app: Arc<AppState>, enrolment: Arc<Enrolment>) {
    const BATCH: usize = 500;
    let agents = app.directory.agents_in_encrypted_rooms();
    let mut added = 0usize;
    for batch in agents.chunks(BATCH) {
        match app.store.e2ee_enrolled(batch).await {
            Ok(enrolled) => {
                for slug in batch.iter().filter(|s| !enrolled.contains(s)) {
                    enrolment.add(slug);
                    added += 1;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot tell which agents in encrypted rooms have devices; they get one when they next need it");
                return;
            }
        }
    }
    if added > 0 {
        tracing::info!(
            agents = added,
            "enrolling agents in encrypted rooms that have no device yet"
        );
    }
}
