//! The agent registry: a `DashMap` from slug to the live agent's actor address, so HTTP
//! workers and the after-commit step reach a live agent without the supervisor; and the
//! arbiter pool agent actors run on (one per core, chosen by a hash of the slug).

use std::hash::BuildHasher;

use actix::{dev::Request, Addr, Arbiter, ArbiterHandle, Handler, Message};
use dashmap::DashMap;

use crate::actors::agent::AgentActor;
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
            .filter(|a| a.connected())
            .map(|a| a.clone())
    }

    /// Sends `msg` to a live agent without cloning its address (a clone allocates), or
    /// gives the message back when the agent is not live.
    pub fn send<M>(&self, slug: &AgentSlug, msg: M) -> Result<Request<AgentActor, M>, M>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        AgentActor: Handler<M>,
    {
        match self.live.get(slug) {
            Some(a) if a.connected() => Ok(a.send(msg)),
            _ => Err(msg),
        }
    }

    pub fn insert(&self, slug: AgentSlug, addr: Addr<AgentActor>) {
        self.live.insert(slug, addr);
    }

    /// Forgets `slug` if `addr` is still its actor.
    pub fn remove(&self, slug: &AgentSlug, addr: &Addr<AgentActor>) {
        self.live.remove_if(slug, |_, a| a == addr);
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
