//! Default values of the optional settings, and the units the file writes durations in.

use std::time::Duration;

pub fn id() -> String {
    "mosaic-as".into()
}
pub fn listen() -> std::net::SocketAddr {
    ([127, 0, 0, 1], 9000).into()
}
pub fn sender_localpart() -> String {
    "mosaic-as".into()
}
pub fn agent_prefix() -> String {
    "agent-".into()
}
pub fn alias_prefix() -> String {
    "mosaic-".into()
}
pub fn store_url() -> String {
    "sqlite://mosaic-as.db".into()
}
pub fn max_body_bytes() -> usize {
    4 * 1024 * 1024
}
pub fn max_media_bytes() -> usize {
    50 * 1024 * 1024
}
pub fn max_transaction_bytes() -> usize {
    64 * 1024 * 1024
}
pub fn hs_attempt_timeout() -> Duration {
    Duration::from_secs(10)
}
pub fn hs_deadline() -> Duration {
    Duration::from_secs(30)
}
pub fn hs_max_in_flight() -> usize {
    512
}
pub fn agent_queue() -> usize {
    256
}
pub fn typing_timeout() -> Duration {
    Duration::from_secs(30)
}
pub fn typing_max() -> Duration {
    Duration::from_secs(600)
}
pub fn profile_min_interval() -> Duration {
    Duration::from_secs(2)
}
pub fn max_agents() -> usize {
    100_000
}
pub fn idempotency_keep() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}
pub fn token_rate_per_s() -> u32 {
    100
}
pub fn admin_rate_per_s() -> u32 {
    100_000
}
pub fn stream_max() -> Duration {
    Duration::from_secs(3600)
}
pub fn streams_per_agent() -> usize {
    4
}
pub fn yes() -> bool {
    true
}
pub fn retention_count() -> u32 {
    10_000
}
pub fn takeover() -> Duration {
    Duration::from_secs(10)
}
pub fn e2ee_idle() -> Duration {
    Duration::from_secs(600)
}
pub fn retention_age() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}

/// `*_ms` keys: integers of milliseconds in the file, `Duration`s in the config. (Two
/// three-line functions; serde_with's `DurationMilliSeconds` would add some thirty
/// packages to the lock file and the advisory audit for them.)
pub(super) mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// `*_s` keys: integers of seconds in the file, `Duration`s in the config.
pub(super) mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}
