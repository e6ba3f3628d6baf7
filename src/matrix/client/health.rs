//! Whether the homeserver is there, for `/ready`: the appservice ping (the leader's, which
//! also makes the homeserver redeliver what it queued) and the question other replicas ask.

use std::time::Duration;

use http::Method;
use serde_json::{json, Value};

use super::{HomeserverClient, HomeserverError};

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

    /// `POST /_matrix/client/v1/appservice/{id}/ping`.
    pub async fn ping(&self) -> Result<(), HomeserverError> {
        let url = self.url(
            &["v1", "appservice", &self.inner.appservice_id, "ping"],
            None,
        );
        let body = json!({ "transaction_id": format!("mosaic-ping-{}", uuid::Uuid::new_v4()) });
        self.call::<Value>(
            "ping",
            Method::POST,
            url,
            Some(&body),
            Duration::from_secs(15),
        )
        .await
        .map(drop)
    }
}
