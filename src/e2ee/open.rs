//! The machines open now, and their use: each is owned by its agent's actor, lent to whoever
//! works with it ([`MachineLease`]: the use ends when the lease is dropped), and dropped by
//! its actor once it has been idle, neither lent nor used, for `[e2ee] idle_s` (the next use
//! restores it from the store). A device list change in a transaction is told to every open
//! machine.

use std::{
    ops::Deref,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use dashmap::DashMap;
use matrix_sdk_crypto::OlmMachine;

use crate::{ids::AgentSlug, metrics::METRICS};

/// An open machine, with how it is used.
pub struct OpenMachine {
    machine: OlmMachine,
    /// Leases not yet dropped.
    in_use: AtomicUsize,
    /// When the last lease ended (or the machine opened), in ms since the table's epoch.
    last_used_ms: AtomicU64,
}

/// A machine lent out: its user works with it, and it is not dropped meanwhile.
pub struct MachineLease {
    open: Arc<OpenMachine>,
    epoch: Instant,
}

impl Deref for MachineLease {
    type Target = OlmMachine;
    fn deref(&self) -> &OlmMachine {
        &self.open.machine
    }
}

impl Drop for MachineLease {
    fn drop(&mut self) {
        self.open
            .last_used_ms
            .store(ms_since(self.epoch), Ordering::Release);
        self.open.in_use.fetch_sub(1, Ordering::AcqRel);
    }
}

fn ms_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Every open machine, by agent.
pub struct OpenMachines {
    open: DashMap<AgentSlug, Arc<OpenMachine>>,
    epoch: Instant,
}

impl Default for OpenMachines {
    fn default() -> Self {
        Self {
            open: DashMap::new(),
            epoch: Instant::now(),
        }
    }
}

impl OpenMachines {
    /// Keeps `machine`, just opened for `slug`; answers what its actor holds.
    pub fn opened(&self, slug: &AgentSlug, machine: OlmMachine) -> Arc<OpenMachine> {
        let open = Arc::new(OpenMachine {
            machine,
            in_use: AtomicUsize::new(0),
            last_used_ms: AtomicU64::new(ms_since(self.epoch)),
        });
        if self.open.insert(slug.clone(), open.clone()).is_none() {
            METRICS.e2ee_machines_open.inc();
        }
        open
    }

    /// Lends `open` out.
    pub fn lend(&self, open: &Arc<OpenMachine>) -> MachineLease {
        open.in_use.fetch_add(1, Ordering::AcqRel);
        MachineLease {
            open: open.clone(),
            epoch: self.epoch,
        }
    }

    /// Whether `open` has been neither lent nor used for `idle`.
    pub fn is_idle(&self, open: &OpenMachine, idle: Duration) -> bool {
        let last = open.last_used_ms.load(Ordering::Acquire);
        let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        open.in_use.load(Ordering::Acquire) == 0
            && ms_since(self.epoch).saturating_sub(last) >= idle_ms
    }

    /// The agents whose machines have been idle for `idle`.
    pub fn idle(&self, idle: Duration) -> Vec<AgentSlug> {
        self.open
            .iter()
            .filter(|m| self.is_idle(m.value(), idle))
            .map(|m| m.key().clone())
            .collect()
    }

    /// Every open machine but those of `except`, lent out.
    pub fn lend_all(&self, except: impl Fn(&AgentSlug) -> bool) -> Vec<MachineLease> {
        self.open
            .iter()
            .filter(|m| !except(m.key()))
            .map(|m| self.lend(m.value()))
            .collect()
    }

    /// Whether `slug` has a machine open.
    pub fn is_open(&self, slug: &AgentSlug) -> bool {
        self.open.contains_key(slug)
    }

    /// `slug`'s actor dropped its machine.
    pub fn closed(&self, slug: &AgentSlug) {
        if self.open.remove(slug).is_some() {
            METRICS.e2ee_machines_open.dec();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A machine is idle only once no lease is out and the time has passed since the last
    /// one ended.
    #[tokio::test]
    async fn a_machine_is_idle_only_when_no_lease_is_out() {
        let table = OpenMachines::default();
        let slug = AgentSlug::parse("a").unwrap();
        let user = ruma::user_id!("@agent-a:hs");
        let machine = OlmMachine::new(user, "D".into()).await;
        let open = table.opened(&slug, machine);
        assert!(table.is_idle(&open, Duration::ZERO));
        let lease = table.lend(&open);
        assert_eq!(lease.user_id(), user);
        assert!(!table.is_idle(&open, Duration::ZERO), "lent out");
        assert!(table.idle(Duration::ZERO).is_empty());
        assert_eq!(table.lend_all(|_| false).len(), 1);
        drop(lease);
        assert!(table.is_idle(&open, Duration::ZERO));
        assert!(
            !table.is_idle(&open, Duration::from_secs(60)),
            "used just now"
        );
        assert_eq!(table.idle(Duration::ZERO), std::slice::from_ref(&slug));
        assert!(table.lend_all(|s| *s == slug).is_empty());
        table.closed(&slug);
        assert!(table.idle(Duration::ZERO).is_empty());
    }
}
