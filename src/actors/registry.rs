//! The agent registry: `DashMap<AgentSlug, Addr<AgentActor>>`, so HTTP workers and the
//! router reach a live agent directly; and the arbiter pool that agent actors run on
//! (one per core, chosen by a hash of the slug).

use std::hash::BuildHasher;

use actix::{Addr, Arbiter, ArbiterHandle};
use dashmap::DashMap;

use super::agent::AgentActor;
use crate::ids::AgentSlug;

pub struct AgentRegistry {
    live: DashMap<AgentSlug, Addr<AgentActor>>,
    arbiters: std::sync::OnceLock<Vec<Arbiter>>,
}

impl Default for AgentRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl AgentRegistry {
    pub fn new() -> Self {
        Self {
            live: DashMap::new(),
            arbiters: std::sync::OnceLock::new(),
        }
    }

    /// Starts the arbiter pool (inside the actix system).
    pub fn start_arbiters(&self, count: usize) {
        self.arbiters
            .get_or_init(|| (0..count.max(1)).map(|_| Arbiter::new()).collect());
    }

    /// The arbiter an agent's actor lives on.
    pub fn arbiter_for(&self, slug: &AgentSlug) -> ArbiterHandle {
        let arbiters = self.arbiters.get().expect("arbiters started");
        let h = self.live.hasher().hash_one(slug);
        arbiters[(h as usize) % arbiters.len()].handle()
    }

    /// A live agent's address.
    pub fn get(&self, slug: &AgentSlug) -> Option<Addr<AgentActor>> {
        self.live
            .get(slug)
            .map(|a| a.clone())
            .filter(Addr::connected)
    }

    pub fn insert(&self, slug: AgentSlug, addr: Addr<AgentActor>) {
        self.live.insert(slug, addr);
    }

    pub fn remove(&self, slug: &AgentSlug) {
        self.live.remove(slug);
    }

    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Addresses of every live agent (for shutdown).
    pub fn all(&self) -> Vec<Addr<AgentActor>> {
        self.live.iter().map(|e| e.value().clone()).collect()
    }

    /// Stops the arbiter pool.
    pub fn stop_arbiters(&self) {
        if let Some(arbiters) = self.arbiters.get() {
            for a in arbiters {
                a.stop();
            }
        }
    }
}
