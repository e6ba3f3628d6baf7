//! The one homeserver client (Client-Server API, as the application service): pooled
//! keep-alive connections ([`super::transport`]), URLs and bodies as [`super::wire`] writes
//! and reads them, as_token auth, `user_id` masquerading, a global cap on requests in
//! flight ([`super::slots`], whose wait ends at the call's deadline); each call loops: take
//! a slot, attempt, ask [`super::retry`] whether and when to retry, sleep, count. Outcomes
//! keep the homeserver's [`super::readiness`] up to date.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use http::{header::HeaderValue, Method, Uri};
use ruma::{OwnedEventId, RoomId, ServerName, UserId};
use secrecy::ExposeSecret;
use serde::{de::DeserializeOwned, Serialize};
use serde_json::{json, Value};

mod devices;
mod health;
mod report;
mod urls;

use super::{
    readiness::Readiness,
    retry::{self, Retries, RetryPolicy},
    slots::CallSlots,
    transport::{Body, Transport},
    wire::{
        bytes_of, client_prefix, reason_body, status_error, Empty, EventIdAnswer, RoomIdAnswer,
    },
    HomeserverError,
};
use crate::{activity::Activity, config::Config, metrics::METRICS};

/// Errcode of a registration for a user that already exists.
const M_USER_IN_USE: &str = "M_USER_IN_USE";

/// Shared, cheap to clone.
#[derive(Clone)]
pub struct HomeserverClient {
    inner: Arc<Inner>,
}

struct Inner {
    /// `<homeserver base>/_matrix/client`, without a trailing slash.
    prefix: String,
    auth: HeaderValue,
    transport: Transport,
    in_flight: CallSlots,
    deadline: Duration,
    /// Longest single attempt (also cut to what is left of a call's deadline).
    attempt_timeout: Duration,
    policy: RetryPolicy,
    appservice_id: String,
    /// Updated by calls and by the ping loop; read by `/ready` and the bridge.
    readiness: Readiness,
    /// Told of calls that fail for good, for the console's live view.
    activity: Arc<Activity>,
}

impl HomeserverClient {
    pub fn new(config: &Config, activity: Arc<Activity>) -> Self {
        let mut auth = HeaderValue::from_str(&format!(
            "Bearer {}",
            config.secrets.as_token.expose_secret()
        ))
        .expect("token is printable ASCII");
        auth.set_sensitive(true);
        Self {
            inner: Arc::new(Inner {
                prefix: client_prefix(&config.homeserver.url),
                auth,
                transport: Transport::for_homeserver(&config.homeserver.url),
                in_flight: CallSlots::new(config.limits.hs_max_in_flight),
                deadline: config.hs_deadline(),
                attempt_timeout: config.limits.hs_attempt_timeout,
                policy: RetryPolicy::default(),
                appservice_id: config.appservice.id.clone(),
                readiness: Readiness::default(),
                activity,
            }),
        }
    }

    /// The deadline of a call, retries included.
    pub(super) fn deadline(&self) -> Duration {
        self.inner.deadline
    }

    /// One call with retries under the deadline. `endpoint` is a metrics label.
    async fn call<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        method: Method,
        url: Uri,
        body: Option<&impl Serialize>,
        deadline: Duration,
    ) -> Result<T, HomeserverError> {
        self.call_with(endpoint, method, url, body, deadline, Retries::Any)
            .await
    }

    /// [`call`](Self::call), retrying only what `retries` allows.
    pub(super) async fn call_with<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        method: Method,
        url: Uri,
        body: Option<&impl Serialize>,
        deadline: Duration,
        retries: Retries,
    ) -> Result<T, HomeserverError> {
        let body = body.map(|b| Body::json(bytes_of(b)));
        self.call_body(endpoint, method, url, body, deadline, retries)
            .await
    }

    /// [`call_with`](Self::call_with) of a body of any type.
    pub(super) async fn call_body<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        method: Method,
        url: Uri,
        body: Option<Body>,
        deadline: Duration,
        retries: Retries,
    ) -> Result<T, HomeserverError> {
        let started = Instant::now();
        let mut attempt = 0u32;
        let left = || deadline.saturating_sub(started.elapsed());
        let result = loop {
            // The wait for a slot, then the attempt, within what is left of the deadline.
            let outcome = match self.inner.in_flight.take(left()).await {
                Ok(_slot) => {
                    let timeout = retry::attempt_timeout(self.inner.attempt_timeout, left());
                    self.attempt(method.clone(), url.clone(), body.clone(), timeout)
                        .await
                }
                Err(no_slot) => Err(no_slot),
            };
            let err = match outcome {
                Ok(bytes) => {
                    self.inner.readiness.call_succeeded();
                    break serde_json::from_slice::<T>(&bytes)
                        .map_err(|e| HomeserverError::BadResponse(format!("{endpoint}: {e}")));
                }
                Err(e) => e,
            };
            let decision = match retries.allow(&err) {
                true => self.inner.policy.decide(attempt, &err, left()),
                false => None,
            };
            let Some(wait) = decision else {
                break Err(err);
            };
            METRICS.hs_retries.with_label_values(&[endpoint]).inc();
            tracing::debug!(endpoint, attempt, ?wait, error = %err, "retrying homeserver call");
            tokio::time::sleep(wait).await;
            attempt += 1;
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(HomeserverError::Status { status, .. }) if *status < 500 => "client_error",
            Err(HomeserverError::Status { .. }) => "server_error",
            Err(HomeserverError::Unreachable(_)) => "unreachable",
            Err(HomeserverError::BadResponse(_)) => "bad_response",
        };
        METRICS
            .hs_latency
            .with_label_values(&[endpoint, outcome])
            .observe(started.elapsed().as_secs_f64());
        if let Err(e) = &result {
            self.report_failure(endpoint, &url, e);
        }
        result
    }

    /// One HTTP attempt (its caller holds a slot): the raw body of a 2xx answer, or the
    /// error.
    async fn attempt(
        &self,
        method: Method,
        url: Uri,
        body: Option<Body>,
        timeout: Duration,
    ) -> Result<bytes::Bytes, HomeserverError> {
        let answer = self
            .inner
            .transport
            .send(method, url, &self.inner.auth, body, timeout)
            .await
            .map_err(|e| HomeserverError::Unreachable(e.to_string()))?;
        if (200..300).contains(&answer.status) {
            return Ok(answer.body);
        }
        Err(status_error(
            answer.status,
            &answer.body,
            answer.retry_after,
        ))
    }

    /// Registers a user of the namespace with `inhibit_login`; an existing user counts as
    /// success.
    pub async fn register(&self, localpart: &str) -> Result<(), HomeserverError> {
        let url = self.url(&["v3", "register"], None);
        let body = json!({
            "type": "m.login.application_service",
            "username": localpart,
            "inhibit_login": true,
        });
        match self
            .call::<Value>(
                "register",
                Method::POST,
                url,
                Some(&body),
                self.inner.deadline,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.errcode() == Some(M_USER_IN_USE) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Joins `room` as `user`, through `via` when given (needed when this homeserver is
    /// not in the room yet: a room id names no server).
    pub async fn join(
        &self,
        user: &UserId,
        room: &RoomId,
        via: Option<&ServerName>,
    ) -> Result<(), HomeserverError> {
        let via: Vec<_> = via.iter().map(|s| ("via", s.as_str())).collect();
        let url = self.url_with(&["v3", "join", room.as_str()], Some(user), &via);
        self.call::<RoomIdAnswer>(
            "join",
            Method::POST,
            url,
            Some(&json!({})),
            self.inner.deadline,
        )
        .await
        .map(drop)
    }

    /// Leaves `room` as `user` (which is also how an invite is rejected), with a reason the
    /// room's members see when one is given.
    pub async fn leave(
        &self,
        user: &UserId,
        room: &RoomId,
        reason: Option<&str>,
    ) -> Result<(), HomeserverError> {
        let url = self.url(&["v3", "rooms", room.as_str(), "leave"], Some(user));
        let body = reason_body(reason);
        self.call::<Empty>("leave", Method::POST, url, Some(&body), self.inner.deadline)
            .await
            .map(drop)
    }

    /// Invites `target` into `room`, as `by`.
    pub async fn invite(
        &self,
        by: &UserId,
        room: &RoomId,
        target: &UserId,
    ) -> Result<(), HomeserverError> {
        let url = self.url(&["v3", "rooms", room.as_str(), "invite"], Some(by));
        let body = json!({ "user_id": target });
        self.call::<Empty>(
            "invite",
            Method::POST,
            url,
            Some(&body),
            self.inner.deadline,
        )
        .await
        .map(drop)
    }

    /// Sends a room event as `user` with the given transaction id.
    pub async fn send_event(
        &self,
        user: &UserId,
        room: &RoomId,
        event_type: &str,
        txn_id: &str,
        content: &impl Serialize,
    ) -> Result<OwnedEventId, HomeserverError> {
        let url = self.url(
            &["v3", "rooms", room.as_str(), "send", event_type, txn_id],
            Some(user),
        );
        self.call::<EventIdAnswer>("send", Method::PUT, url, Some(content), self.inner.deadline)
            .await
            .map(|a| a.event_id)
    }

    /// Sets a state event as `user`.
    pub async fn send_state(
        &self,
        user: &UserId,
        room: &RoomId,
        event_type: &str,
        state_key: &str,
        content: &impl Serialize,
    ) -> Result<OwnedEventId, HomeserverError> {
        let url = self.url(
            &["v3", "rooms", room.as_str(), "state", event_type, state_key],
            Some(user),
        );
        self.call::<EventIdAnswer>(
            "state",
            Method::PUT,
            url,
            Some(content),
            self.inner.deadline,
        )
        .await
        .map(|a| a.event_id)
    }

    /// Typing notification of `user` in `room`; `timeout` only matters when typing.
    pub async fn typing(
        &self,
        user: &UserId,
        room: &RoomId,
        typing: bool,
        timeout: Duration,
        deadline: Duration,
    ) -> Result<(), HomeserverError> {
        let url = self.url(
            &["v3", "rooms", room.as_str(), "typing", user.as_str()],
            Some(user),
        );
        let body = if typing {
            json!({ "typing": true, "timeout": timeout.as_millis() as u64 })
        } else {
            json!({ "typing": false })
        };
        self.call::<Empty>("typing", Method::PUT, url, Some(&body), deadline)
            .await
            .map(drop)
    }

    /// Sets a profile field (`displayname` or `avatar_url`) of `user`.
    pub async fn set_profile_field(
        &self,
        user: &UserId,
        field: &'static str,
        value: &str,
        deadline: Duration,
    ) -> Result<(), HomeserverError> {
        let url = self.url(&["v3", "profile", user.as_str(), field], Some(user));
        let body = json!({ field: value });
        self.call::<Empty>("profile", Method::PUT, url, Some(&body), deadline)
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests;
