//! Retry policy of homeserver calls: 429 waits for the homeserver's hint, 5xx and
//! connection failures back off exponentially with jitter, other 4xx never retry; a
//! deadline bounds the whole call.

use std::time::Duration;

use rand::Rng;

use super::HomeserverError;

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
    /// How long to wait before attempt `attempt + 1` after `err`, or `None` when the error
    /// must not be retried.
    pub fn wait_before_retry(&self, attempt: u32, err: &HomeserverError) -> Option<Duration> {
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
}
