//! What the daemon knows of the homeserver's health: whether it is reachable (read by the
//! bridge, which answers 503 while it is not) and why the last ping failed (read by
//! `/ready`).

use std::sync::{
    atomic::{AtomicBool, Ordering},
    RwLock,
};

use super::HomeserverError;

/// Reachability and the last ping's problem; updated by calls and pings.
pub struct Readiness {
    /// Set by successful calls and by pings.
    reachable: AtomicBool,
    /// Why the last start-up/periodic ping failed, if it did.
    ping_problem: RwLock<Option<String>>,
}

impl Default for Readiness {
    /// Unreachable and not ready until a call or a ping succeeds.
    fn default() -> Self {
        Self {
            reachable: AtomicBool::new(false),
            ping_problem: RwLock::new(Some("not pinged yet".into())),
        }
    }
}

impl Readiness {
    /// Whether the last contact with the homeserver succeeded.
    pub fn is_reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    pub fn set_reachable(&self, up: bool) {
        self.reachable.store(up, Ordering::Relaxed);
    }

    /// A call got a 2xx answer: the homeserver is reachable.
    pub fn call_succeeded(&self) {
        self.set_reachable(true);
    }

    /// Records a ping's outcome: an unreachable homeserver marks it down; an error answer
    /// (it cannot reach us, say) proves the homeserver is there, so the bridge stays usable,
    /// but readiness fails; success clears the problem.
    pub fn ping_answered(&self, result: &Result<(), HomeserverError>) {
        let problem = match result {
            Ok(()) => None,
            Err(e @ HomeserverError::Unreachable(_)) => {
                self.set_reachable(false);
                Some(e.to_string())
            }
            Err(e @ HomeserverError::Status { .. }) => {
                self.set_reachable(true);
                Some(format!("ping failed: {e}"))
            }
            Err(e) => Some(format!("ping failed: {e}")),
        };
        *self.ping_problem.write().expect("not poisoned") = problem;
    }

    /// Why the homeserver is not ready, or `None` when the last ping succeeded.
    pub fn ping_problem(&self) -> Option<String> {
        self.ping_problem.read().expect("not poisoned").clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> HomeserverError {
        HomeserverError::Unreachable("connection refused".into())
    }

    fn forbidden() -> HomeserverError {
        HomeserverError::Status {
            status: 403,
            errcode: "M_FORBIDDEN".into(),
            error: "no".into(),
            retry_after: None,
        }
    }

    #[test]
    fn starts_unreachable_and_not_pinged() {
        let r = Readiness::default();
        assert!(!r.is_reachable());
        assert_eq!(r.ping_problem().as_deref(), Some("not pinged yet"));
    }

    #[test]
    fn a_successful_call_marks_reachable() {
        let r = Readiness::default();
        r.call_succeeded();
        assert!(r.is_reachable());
        assert!(r.ping_problem().is_some(), "only a ping clears the problem");
    }

    #[test]
    fn an_unreachable_ping_marks_down_and_sets_the_problem() {
        let r = Readiness::default();
        r.call_succeeded();
        r.ping_answered(&Err(refused()));
        assert!(!r.is_reachable());
        assert_eq!(r.ping_problem(), Some(refused().to_string()));
    }

    #[test]
    fn an_error_answer_to_a_ping_keeps_reachable_but_sets_a_problem() {
        let r = Readiness::default();
        r.call_succeeded();
        r.ping_answered(&Err(forbidden()));
        assert!(r.is_reachable());
        assert_eq!(
            r.ping_problem(),
            Some(format!("ping failed: {}", forbidden()))
        );
    }

    /// The homeserver cannot reach the daemon (its ping answers 502 `M_CONNECTION_FAILED`):
    /// it is there, so the bridge works, though `/ready` fails.
    #[test]
    fn an_error_answer_to_the_first_ping_marks_reachable() {
        let r = Readiness::default();
        let cannot_reach_us = HomeserverError::Status {
            status: 502,
            errcode: "M_CONNECTION_FAILED".into(),
            error: "connection refused".into(),
            retry_after: None,
        };
        r.ping_answered(&Err(cannot_reach_us));
        assert!(r.is_reachable());
        assert!(r.ping_problem().unwrap().contains("M_CONNECTION_FAILED"));
    }

    #[test]
    fn success_clears_the_problem() {
        let r = Readiness::default();
        r.ping_answered(&Err(refused()));
        r.call_succeeded();
        r.ping_answered(&Ok(()));
        assert!(r.is_reachable());
        assert_eq!(r.ping_problem(), None);
    }

    #[test]
    fn set_reachable_overrides() {
        let r = Readiness::default();
        r.set_reachable(true);
        assert!(r.is_reachable());
        r.set_reachable(false);
        assert!(!r.is_reachable());
    }
}
