//! Retry policy of homeserver calls, the whole decision: 429 waits for the homeserver's
//! hint, 5xx and connection failures back off exponentially with jitter, other 4xx never
//! retry; a deadline bounds the whole call, and each attempt's timeout is cut to it.

use std::time::Duration;

use rand::Rng;

use super::HomeserverError;

/// The last retry of a call starts at least this long before its deadline, and no attempt
/// gets less time than this.
pub const LAST_ATTEMPT_MARGIN: Duration = Duration::from_millis(100);

/// Which failures of a call may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retries {
    /// Every failure the policy retries: for calls that are safe to repeat.
    Any,
    /// Only 429, where the homeserver refused before doing anything: for calls that must
    /// not take effect twice (after a timeout or a 5xx the first may have).
    RateLimitsOnly,
    /// What `Any` retries, except answers with one of these errcodes: the homeserver's
    /// considered verdict, which asking again would not change.
    AnyExcept(&'static [&'static str]),
}

impl Retries {
    /// Whether `err` may be retried at all.
    pub fn allow(self, err: &HomeserverError) -> bool {
        match self {
            Self::Any => true,
            Self::RateLimitsOnly => err.status() == Some(429),
            Self::AnyExcept(errcodes) => !matches!(
                err,
                HomeserverError::Status { errcode, .. } if errcodes.contains(&errcode.as_str())
            ),
        }
    }
}

/// Backoff parameters.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// First backoff step.
    pub base: Duration,
    /// Largest single backoff step.
    pub max_step: Duration,
    /// 429 without a hint waits this long.
    pub default_rate_limit_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(100),
            max_step: Duration::from_secs(5),
            default_rate_limit_wait: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// Whether to retry after attempt `attempt` failed with `err`, `left` before the call's
    /// deadline: how long to wait before the next attempt, or `None` to give up.
    pub fn decide(&self, attempt: u32, err: &HomeserverError, left: Duration) -> Option<Duration> {
        let wait = self.wait_before_retry(attempt, err)?;
        // Time left to wait, keeping a moment for one more attempt before the deadline.
        let left = left.saturating_sub(LAST_ATTEMPT_MARGIN);
        match err.status() {
            // A rate limit's hint is honoured in full or not at all.
            Some(429) if wait >= left => None,
            Some(429) => Some(wait),
            _ if left.is_zero() => None,
            // A backoff step is cut short rather than giving up early: an outage shorter
            // than the deadline must not reach the caller.
            _ => Some(wait.min(left)),
        }
    }

    /// How long to wait before attempt `attempt + 1` after `err`, or `None` when the error
    /// must not be retried; the deadline aside.
    fn wait_before_retry(&self, attempt: u32, err: &HomeserverError) -> Option<Duration> {
        match err {
            HomeserverError::Status {
                status: 429,
                retry_after,
                ..
            } => Some(retry_after.unwrap_or(self.default_rate_limit_wait)),
            e if e.is_transient() => {
                let exp = self.base.saturating_mul(1u32 << attempt.min(16));
                let step = exp.min(self.max_step);
                // Full jitter between half and all of the step.
                let ms = step.as_millis() as u64;
                let jittered = rand::rng().random_range(ms / 2..=ms.max(1));
                Some(Duration::from_millis(jittered))
            }
            _ => None,
        }
    }
}

/// Timeout of one attempt, `left` before the call's deadline: no attempt runs past the
/// deadline, none gets less than [`LAST_ATTEMPT_MARGIN`], and none more than `configured`
/// (unless that is below the margin).
pub fn attempt_timeout(configured: Duration, left: Duration) -> Duration {
    left.clamp(LAST_ATTEMPT_MARGIN, configured.max(LAST_ATTEMPT_MARGIN))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, retry_after: Option<Duration>) -> HomeserverError {
        HomeserverError::Status {
            status,
            errcode: "M_X".into(),
            error: String::new(),
            retry_after,
        }
    }

    #[test]
    fn policy() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.wait_before_retry(0, &status(429, Some(Duration::from_millis(700)))),
            Some(Duration::from_millis(700))
        );
        assert_eq!(p.wait_before_retry(0, &status(400, None)), None);
        assert_eq!(p.wait_before_retry(0, &status(403, None)), None);
        let w = p.wait_before_retry(3, &status(503, None)).unwrap();
        assert!(
            w >= Duration::from_millis(400) && w <= Duration::from_millis(800),
            "{w:?}"
        );
        let w = p
            .wait_before_retry(30, &HomeserverError::Unreachable("x".into()))
            .unwrap();
        assert!(w <= Duration::from_secs(5));
    }

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn calls_that_must_not_repeat_retry_only_rate_limits() {
        let once = Retries::RateLimitsOnly;
        assert!(once.allow(&status(429, None)));
        assert!(!once.allow(&status(503, None)));
        assert!(!once.allow(&HomeserverError::Unreachable("timeout".into())));
        assert!(Retries::Any.allow(&status(503, None)));
        let verdicts = Retries::AnyExcept(&["M_CONNECTION_FAILED"]);
        assert!(verdicts.allow(&status(503, None)));
        let verdict = HomeserverError::Status {
            status: 502,
            errcode: "M_CONNECTION_FAILED".into(),
            error: "refused".into(),
            retry_after: None,
        };
        assert!(!verdicts.allow(&verdict));
    }

    #[test]
    fn a_rate_limit_hint_longer_than_the_time_left_gives_up() {
        let p = RetryPolicy::default();
        let hinted = status(429, Some(ms(700)));
        assert_eq!(p.decide(0, &hinted, ms(700)), None);
        assert_eq!(p.decide(0, &hinted, ms(800)), None, "the margin is kept");
        assert_eq!(p.decide(0, &hinted, ms(801)), Some(ms(700)), "in full");
        assert_eq!(
            p.decide(0, &status(429, None), ms(5000)),
            Some(p.default_rate_limit_wait)
        );
    }

    #[test]
    fn a_backoff_step_longer_than_the_time_left_is_cut_to_it() {
        let p = RetryPolicy::default();
        let down = HomeserverError::Unreachable("x".into());
        // Attempt 6: a step of 5 s at most, 2.5 s at least.
        assert_eq!(p.decide(6, &down, ms(110)), Some(ms(10)));
        assert_eq!(p.decide(6, &status(502, None), ms(1100)), Some(ms(1000)));
        let w = p.decide(0, &down, Duration::from_secs(60)).unwrap();
        assert!(w >= ms(50) && w <= ms(100), "{w:?}");
    }

    #[test]
    fn nothing_left_gives_up() {
        let p = RetryPolicy::default();
        for left in [Duration::ZERO, ms(50), LAST_ATTEMPT_MARGIN] {
            assert_eq!(p.decide(0, &status(503, None), left), None, "{left:?}");
            assert_eq!(
                p.decide(0, &HomeserverError::Unreachable("x".into()), left),
                None
            );
            assert_eq!(p.decide(0, &status(429, Some(ms(1))), left), None);
        }
    }

    #[test]
    fn non_transient_errors_give_up() {
        let p = RetryPolicy::default();
        let plenty = Duration::from_secs(60);
        for code in [400, 401, 403, 404, 409] {
            assert_eq!(p.decide(0, &status(code, None), plenty), None, "{code}");
        }
        let bad = HomeserverError::BadResponse("x".into());
        assert_eq!(p.decide(0, &bad, plenty), None);
    }

    #[test]
    fn attempt_timeouts_stay_between_the_margin_and_the_configured_timeout() {
        let configured = Duration::from_secs(10);
        assert_eq!(
            attempt_timeout(configured, Duration::ZERO),
            LAST_ATTEMPT_MARGIN
        );
        assert_eq!(attempt_timeout(configured, ms(20)), LAST_ATTEMPT_MARGIN);
        assert_eq!(attempt_timeout(configured, ms(2500)), ms(2500));
        assert_eq!(
            attempt_timeout(configured, Duration::from_secs(60)),
            configured
        );
        // A configured timeout below the margin still gets the margin.
        assert_eq!(
            attempt_timeout(ms(10), Duration::from_secs(60)),
            LAST_ATTEMPT_MARGIN
        );
        assert_eq!(attempt_timeout(ms(10), Duration::ZERO), LAST_ATTEMPT_MARGIN);
    }
}
