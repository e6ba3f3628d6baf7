//! Whether the homeserver is there, for `/ready`: the appservice ping (the leader's, which
//! also makes the homeserver redeliver what it queued) and the question other replicas ask.

use std::time::Duration;

use http::Method;
use serde_json::{json, Value};

use super::{HomeserverClient, HomeserverError};
use crate::matrix::retry::Retries;

/// The ping's answers about the homeserver's way to the daemon (client-server API,
/// "Pinging the appservice"): it could not connect, timed out, or got a bad answer; or the
/// registration has no URL.
const PING_VERDICTS: &[&str] = &[
    "M_CONNECTION_FAILED",
    "M_CONNECTION_TIMEOUT",
    "M_BAD_STATUS",
    "M_URL_NOT_SET",
];

impl HomeserverClient {
    /// Whether the last contact with the homeserver succeeded.
    pub fn is_reachable(&self) -> bool {
        self.inner.readiness.is_reachable()
    }

    pub fn set_reachable(&self, up: bool) {
        self.inner.readiness.set_reachable(up);
    }

    /// Pings the homeserver and records the outcome for `/ready` (see
    /// [`Readiness::ping_answered`](crate::matrix::readiness::Readiness::ping_answered)).
    pub async fn check(&self) -> Result<(), HomeserverError> {
        let result = self.ping().await;
        self.inner.readiness.ping_answered(&result);
        result
    }

    /// Asks the homeserver for its versions (no token, no side effect) and records the
    /// outcome for `/ready` as a ping's: how a replica that is not the leader, which alone
    /// pings, learns whether the homeserver is there.
    pub async fn check_versions(&self) -> Result<(), HomeserverError> {
        let url = self.url(&["versions"], None);
        let result = self
            .call::<Value>(
                "versions",
                Method::GET,
                url,
                None::<&()>,
                Duration::from_secs(15),
            )
            .await
            .map(drop);
        self.inner.readiness.ping_answered(&result);
        result
    }

    /// Why the homeserver is not ready, or `None` when the last ping succeeded.
    pub fn ping_problem(&self) -> Option<String> {
        self.inner.readiness.ping_problem()
    }

    /// `POST /_matrix/client/v1/appservice/{id}/ping`. The homeserver's answers that it
    /// could not reach the daemon (or is not configured to) are its verdict, not a passing
    /// failure: they are not retried, so the ping reports them at once.
    pub async fn ping(&self) -> Result<(), HomeserverError> {
        let url = self.url(
            &["v1", "appservice", &self.inner.appservice_id, "ping"],
            None,
        );
        let body = json!({ "transaction_id": format!("mosaic-ping-{}", uuid::Uuid::new_v4()) });
        self.call_with::<Value>(
            "ping",
            Method::POST,
            url,
            Some(&body),
            Duration::from_secs(15),
            Retries::AnyExcept(PING_VERDICTS),
        )
        .await
        .map(drop)
    }
}
