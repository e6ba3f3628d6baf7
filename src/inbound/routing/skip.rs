//! Events of a transaction that routing skips, and why: the homeserver is answered 200 all
//! the same (a refused transaction would only come back, forever), and each skip is
//! counted in `mosaic_as_inbound_events_skipped_total{reason}` once the transaction is
//! recorded (a retry of it counts nothing again).

use ruma::EventId;

use crate::metrics::METRICS;

/// Why an event was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Not an event: not a JSON object, or a field missing or of the wrong type.
    Malformed,
    /// An event, room or user id (or a member event's state key) that is not a valid
    /// Matrix identifier.
    InvalidId,
    /// `content` is not a JSON object, or a member event's content has no valid
    /// `membership`.
    BadContent,
}

impl SkipReason {
    /// Every reason, in label order.
    pub const ALL: [SkipReason; 3] = [Self::Malformed, Self::InvalidId, Self::BadContent];

    /// The metric label.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::InvalidId => "invalid_id",
            Self::BadContent => "bad_content",
        }
    }
}

/// How many events of one transaction were skipped, by reason.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Skipped([usize; SkipReason::ALL.len()]);

impl Skipped {
    pub fn add(&mut self, reason: SkipReason) {
        self.0[reason as usize] += 1;
    }

    /// Notes and logs a skipped event of transaction `txn_id`.
    pub fn note(
        &mut self,
        txn_id: &str,
        event_id: Option<&EventId>,
        reason: SkipReason,
        error: &str,
    ) {
        self.add(reason);
        tracing::warn!(
            txn_id,
            event_id = event_id.map(EventId::as_str),
            reason = reason.label(),
            error,
            "skipping an event that cannot be parsed or stored"
        );
    }

    /// Skips for `reason`.
    pub fn of(&self, reason: SkipReason) -> usize {
        self.0[reason as usize]
    }

    pub fn total(&self) -> usize {
        self.0.iter().sum()
    }

    /// Adds these skips to the metric (once the transaction is recorded).
    pub fn count(&self) {
        for reason in SkipReason::ALL {
            let n = self.of(reason);
            if n > 0 {
                METRICS
                    .inbound_events_skipped
                    .with_label_values(&[reason.label()])
                    .inc_by(n as u64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_reason() {
        let mut s = Skipped::default();
        s.add(SkipReason::InvalidId);
        s.add(SkipReason::BadContent);
        s.add(SkipReason::InvalidId);
        assert_eq!(s.of(SkipReason::InvalidId), 2);
        assert_eq!(s.of(SkipReason::Malformed), 0);
        assert_eq!(s.total(), 3);
        let labels: Vec<_> = SkipReason::ALL.iter().map(|r| r.label()).collect();
        assert_eq!(labels, ["malformed", "invalid_id", "bad_content"]);
        for (i, r) in SkipReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "ALL is in discriminant order");
        }
    }
}
