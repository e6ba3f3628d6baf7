//! Whether the homeserver delivers what encryption needs, for `/ready`: one-time-key counts
//! in transactions (MSC3202: Synapse's `msc3202_transaction_extensions`), and to-device
//! messages (MSC2409: `msc2409_to_device_messages_enabled`). Counts are judged from every
//! transaction with events for an agent that has a device: the homeserver adds them to
//! such a transaction when it can. To-device delivery is probed: the first machine opened
//! sends its own device a to-device message of [`PROBE_TYPE`], which must come back in a
//! transaction within [`PROBE_WAIT`].

use std::{
    sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering},
    time::{Duration, Instant},
};

/// The to-device event type of the probe (never given to a machine).
pub const PROBE_TYPE: &str = "io.mosaic-as.probe";
/// How long the probe may take to come back before `/ready` says to-device messages are
/// not delivered.
pub const PROBE_WAIT: Duration = Duration::from_secs(15);

const UNKNOWN: u8 = 0;
const SEEN: u8 = 1;
const MISSING: u8 = 2;

/// What the homeserver was seen to deliver.
pub struct Delivery {
    counts: AtomicU8,
    /// When the probe went out (ms since `epoch`, plus one; 0: not yet).
    probe_sent: AtomicU64,
    probe_seen: AtomicBool,
    epoch: Instant,
}

impl Default for Delivery {
    fn default() -> Self {
        Self {
            counts: AtomicU8::new(UNKNOWN),
            probe_sent: AtomicU64::new(0),
            probe_seen: AtomicBool::new(false),
            epoch: Instant::now(),
        }
    }
}

impl Delivery {
    /// A transaction came with one-time-key counts...
    pub fn counts_seen(&self) {
        self.counts.store(SEEN, Ordering::Relaxed);
    }

    /// ...or, with events for an agent that has a device, without them.
    pub fn counts_missing(&self) {
        self.counts.store(MISSING, Ordering::Relaxed);
    }

    /// Whether the probe is still to be sent (and, if so, it is marked sent by this call).
    pub fn take_probe(&self) -> bool {
        let now = self.epoch.elapsed().as_millis() as u64 + 1;
        self.probe_sent
            .compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The probe came back.
    pub fn probe_seen(&self) {
        self.probe_seen.store(true, Ordering::Relaxed);
    }

    /// What `/ready` says is missing, if anything.
    pub fn problem(&self) -> Option<&'static str> {
        if self.counts.load(Ordering::Relaxed) == MISSING {
            return Some(
                "the homeserver sends no one-time-key counts in transactions: Synapse needs \
                 experimental_features msc3202_transaction_extensions, and the registration \
                 org.matrix.msc3202 (see docs/encryption.md)",
            );
        }
        let sent = self.probe_sent.load(Ordering::Acquire);
        let waited = (self.epoch.elapsed().as_millis() as u64 + 1).saturating_sub(sent);
        if sent != 0
            && !self.probe_seen.load(Ordering::Relaxed)
            && waited > PROBE_WAIT.as_millis() as u64
        {
            return Some(
                "the homeserver pushes no to-device messages: Synapse needs \
                 experimental_features msc2409_to_device_messages_enabled, and the \
                 registration receive_ephemeral (see docs/encryption.md)",
            );
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_told_until_delivery_is_seen() {
        let d = Delivery::default();
        assert_eq!(d.problem(), None);
        d.counts_missing();
        assert!(d
            .problem()
            .unwrap()
            .contains("msc3202_transaction_extensions"));
        d.counts_seen();
        assert_eq!(d.problem(), None);
        assert!(d.take_probe());
        assert!(!d.take_probe(), "one probe");
        assert_eq!(d.problem(), None, "still within the wait");
        let late = Delivery {
            epoch: Instant::now() - PROBE_WAIT * 2,
            ..Default::default()
        };
        late.probe_sent.store(1, Ordering::Release);
        assert!(late
            .problem()
            .unwrap()
            .contains("msc2409_to_device_messages_enabled"));
        late.probe_seen();
        assert_eq!(late.problem(), None);
    }
}
