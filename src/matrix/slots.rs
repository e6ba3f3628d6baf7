//! The cap on homeserver requests in flight (`limits.hs_max_in_flight`), and a deadline on
//! waiting for a free slot: while a slow homeserver holds every slot, a call fails with a
//! clear error once its own deadline has passed, instead of queueing (the ping among them,
//! which keeps `/ready` current) for as long as the homeserver takes.

use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

use super::HomeserverError;

/// Slots for requests in flight, shared by every call of one client.
pub struct CallSlots {
    slots: Semaphore,
    /// How many there are (for the error text).
    cap: usize,
}

impl CallSlots {
    pub fn new(cap: usize) -> Self {
        Self {
            slots: Semaphore::new(cap),
            cap,
        }
    }

    /// A slot, held until the guard is dropped; waits at most `within` (a free slot is
    /// taken even when `within` is zero).
    pub async fn take(&self, within: Duration) -> Result<SemaphorePermit<'_>, HomeserverError> {
        match tokio::time::timeout(within, self.slots.acquire()).await {
            Ok(slot) => Ok(slot.expect("the semaphore is never closed")),
            Err(_) => Err(HomeserverError::Unreachable(format!(
                "no request slot free within {within:?}: all {} (limits.hs_max_in_flight) \
                 are held by requests the homeserver has not answered",
                self.cap
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[tokio::test]
    async fn waiting_for_a_slot_ends_at_the_deadline() {
        let slots = CallSlots::new(1);
        let held = slots.take(Duration::ZERO).await.expect("a free slot");
        let started = Instant::now();
        let err = slots.take(Duration::from_millis(200)).await.unwrap_err();
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(200), "{waited:?}");
        assert!(waited < Duration::from_secs(2), "{waited:?}");
        let text = err.to_string();
        assert!(text.contains("no request slot free within 200ms"), "{text}");
        assert!(text.contains("all 1 (limits.hs_max_in_flight)"), "{text}");
        assert!(err.is_transient());
        drop(held);
        assert!(
            slots.take(Duration::ZERO).await.is_ok(),
            "a freed slot is taken"
        );
    }
}
