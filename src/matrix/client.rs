//! The one homeserver client (Client-Server API, as the application service): pooled
//! keep-alive connections ([`super::transport`]), as_token auth, `user_id` masquerading,
//! per-attempt timeouts, the retry policy under a per-call deadline, and a global cap on
//! requests in flight.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use http::{header::HeaderValue, Method, Uri};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use ruma::{OwnedEventId, OwnedRoomId, RoomId, UserId};
use secrecy::ExposeSecret;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use super::{retry::RetryPolicy, transport::Transport, HomeserverError};
use crate::{config::Config, metrics::METRICS};

/// Errcode of a registration for a user that already exists.
const M_USER_IN_USE: &str = "M_USER_IN_USE";
/// The last retry of a call starts at least this long before its deadline, and no attempt
/// gets less time than this.
const LAST_ATTEMPT_MARGIN: Duration = Duration::from_millis(100);

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
    in_flight: Semaphore,
    deadline: Duration,
    /// Longest single attempt (also cut to what is left of a call's deadline).
    attempt_timeout: Duration,
    policy: RetryPolicy,
    appservice_id: String,
    /// Set by successful calls and by the ping loop; read by `/ready` and the bridge.
    reachable: AtomicBool,
    /// Why the last start-up/periodic ping failed, if it did (for `/ready`).
    ping_problem: std::sync::RwLock<Option<String>>,
}

/// Answer of `POST /rooms/{id}/send` and state sends.
#[derive(Deserialize)]
struct EventIdAnswer {
    event_id: OwnedEventId,
}

/// Answer of `POST /createRoom` and `POST /join`.
#[derive(Deserialize)]
struct RoomIdAnswer {
    room_id: OwnedRoomId,
}

#[derive(Deserialize)]
struct Capabilities {
    capabilities: CapabilityMap,
}
#[derive(Deserialize)]
struct CapabilityMap {
    #[serde(rename = "m.room_versions")]
    room_versions: Option<RoomVersions>,
}
#[derive(Deserialize)]
struct RoomVersions {
    default: String,
}

/// Nothing: endpoints whose answer we do not read.
#[derive(Deserialize)]
struct Empty {}

/// Characters escaped in a path segment: all but RFC 3986's unreserved characters,
/// sub-delimiters, `:` and `@` (so room and user ids stay readable in logs).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@');
/// Characters escaped in a query value: all but the unreserved ones.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

impl HomeserverClient {
    pub fn new(config: &Config) -> Self {
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
                transport: Transport::default(),
                in_flight: Semaphore::new(config.limits.hs_max_in_flight),
                deadline: config.hs_deadline(),
                attempt_timeout: config.limits.hs_attempt_timeout,
                policy: RetryPolicy::default(),
                appservice_id: config.appservice.id.clone(),
                reachable: AtomicBool::new(false),
                ping_problem: std::sync::RwLock::new(Some("not pinged yet".into())),
            }),
        }
    }

    /// Whether the last contact with the homeserver succeeded.
    pub fn is_reachable(&self) -> bool {
        self.inner.reachable.load(Ordering::Relaxed)
    }

    pub fn set_reachable(&self, up: bool) {
        self.inner.reachable.store(up, Ordering::Relaxed);
    }

    /// Pings the homeserver and records the outcome for `/ready`: an unreachable
    /// homeserver marks it down; an error answer (it cannot reach us, say) keeps the bridge
    /// usable but readiness failing.
    pub async fn check(&self) -> Result<(), HomeserverError> {
        let result = self.ping().await;
        let problem = match &result {
            Ok(()) => None,
            Err(e @ HomeserverError::Unreachable(_)) => {
                self.set_reachable(false);
                Some(e.to_string())
            }
            Err(e) => Some(format!("ping failed: {e}")),
        };
        *self.inner.ping_problem.write().expect("not poisoned") = problem;
        result
    }

    /// Why the homeserver is not ready, or `None` when the last ping succeeded.
    pub fn ping_problem(&self) -> Option<String> {
        self.inner
            .ping_problem
            .read()
            .expect("not poisoned")
            .clone()
    }

    /// Builds `<base>/_matrix/client/<segments...>[?user_id=<user>]`.
    fn url(&self, segments: &[&str], user: Option<&UserId>) -> Uri {
        client_url(&self.inner.prefix, segments, user)
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
        let started = Instant::now();
        let body = body.map(|b| bytes_of(b));
        let mut attempt = 0u32;
        let result = loop {
            // No attempt runs past the deadline.
            let timeout = deadline.saturating_sub(started.elapsed()).clamp(
                LAST_ATTEMPT_MARGIN,
                self.inner.attempt_timeout.max(LAST_ATTEMPT_MARGIN),
            );
            let outcome = self
                .attempt(method.clone(), url.clone(), body.clone(), timeout)
                .await;
            let err = match outcome {
                Ok(bytes) => {
                    self.set_reachable(true);
                    break serde_json::from_slice::<T>(&bytes)
                        .map_err(|e| HomeserverError::BadResponse(format!("{endpoint}: {e}")));
                }
                Err(e) => e,
            };
            let Some(wait) = self.inner.policy.wait_before_retry(attempt, &err) else {
                break Err(err);
            };
            // Time left to wait, keeping a moment for one more attempt before the deadline.
            let left = deadline
                .saturating_sub(started.elapsed())
                .saturating_sub(LAST_ATTEMPT_MARGIN);
            let wait = match err.status() {
                // A rate limit's hint is honoured in full or not at all.
                Some(429) if wait >= left => break Err(err),
                Some(429) => wait,
                _ if left.is_zero() => break Err(err),
                // A backoff step is cut short rather than giving up early: an outage
                // shorter than the deadline must not reach the caller.
                _ => wait.min(left),
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
        result
    }

    /// One HTTP attempt: the raw body of a 2xx answer, or the error.
    async fn attempt(
        &self,
        method: Method,
        url: Uri,
        body: Option<bytes::Bytes>,
        timeout: Duration,
    ) -> Result<bytes::Bytes, HomeserverError> {
        let _permit = self
            .inner
            .in_flight
            .acquire()
            .await
            .expect("semaphore never closed");
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

    /// Joins `room` as `user`.
    pub async fn join(&self, user: &UserId, room: &RoomId) -> Result<(), HomeserverError> {
        let url = self.url(&["v3", "join", room.as_str()], Some(user));
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

    /// `POST /createRoom` as `user`.
    pub async fn create_room(
        &self,
        user: &UserId,
        body: &Value,
    ) -> Result<OwnedRoomId, HomeserverError> {
        let url = self.url(&["v3", "createRoom"], Some(user));
        self.call::<RoomIdAnswer>(
            "create_room",
            Method::POST,
            url,
            Some(body),
            self.inner.deadline,
        )
        .await
        .map(|a| a.room_id)
    }

    /// The homeserver's default room version for new rooms.
    pub async fn default_room_version(&self, user: &UserId) -> Result<String, HomeserverError> {
        let url = self.url(&["v3", "capabilities"], Some(user));
        let caps: Capabilities = self
            .call(
                "capabilities",
                Method::GET,
                url,
                None::<&()>,
                self.inner.deadline,
            )
            .await?;
        Ok(caps
            .capabilities
            .room_versions
            .map(|v| v.default)
            .unwrap_or_else(|| "1".into()))
    }
}

/// `<base>/_matrix/client` of a homeserver base URL (which may have a path of its own).
fn client_prefix(base: &url::Url) -> String {
    format!("{}/_matrix/client", base.as_str().trim_end_matches('/'))
}

/// `<prefix>/<segments...>[?user_id=<user>]`, each segment and the user id percent-encoded.
fn client_url(prefix: &str, segments: &[&str], user: Option<&UserId>) -> Uri {
    let mut url = String::with_capacity(prefix.len() + 160);
    url.push_str(prefix);
    for segment in segments {
        url.push('/');
        url.extend(utf8_percent_encode(segment, SEGMENT));
    }
    if let Some(user) = user {
        url.push_str("?user_id=");
        url.extend(utf8_percent_encode(user.as_str(), QUERY_VALUE));
    }
    // The base is an http(s) URL without query or fragment (the config checks it) and
    // every other part is percent-encoded.
    Uri::try_from(url).expect("a valid URI")
}

fn bytes_of(body: &impl Serialize) -> bytes::Bytes {
    bytes::Bytes::from(serde_json::to_vec(body).expect("request bodies serialise"))
}

/// Reads a Matrix error answer.
fn status_error(status: u16, body: &[u8], retry_header: Option<Duration>) -> HomeserverError {
    #[derive(Deserialize)]
    struct MatrixError {
        errcode: Option<String>,
        error: Option<String>,
        retry_after_ms: Option<u64>,
    }
    let parsed = serde_json::from_slice::<MatrixError>(body).ok();
    let (errcode, error, retry_ms) = match parsed {
        Some(m) => (m.errcode, m.error, m.retry_after_ms),
        None => (None, None, None),
    };
    HomeserverError::Status {
        status,
        errcode: errcode.unwrap_or_else(|| "M_UNKNOWN".into()),
        error: error.unwrap_or_else(|| format!("HTTP {status}")),
        retry_after: retry_ms.map(Duration::from_millis).or(retry_header),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_the_base_path_and_encode_every_part() {
        let base = url::Url::parse("https://hs.example:8448/matrix/").unwrap();
        let prefix = client_prefix(&base);
        assert_eq!(prefix, "https://hs.example:8448/matrix/_matrix/client");
        let user = UserId::parse("@agent-a:hs.example").unwrap();
        let uri = client_url(
            &prefix,
            &[
                "v3",
                "rooms",
                "!r/x y?#%é:hs",
                "send",
                "m.room.message",
                "mas.1",
            ],
            Some(&user),
        );
        assert_eq!(
            uri.to_string(),
            "https://hs.example:8448/matrix/_matrix/client/v3/rooms/\
             !r%2Fx%20y%3F%23%25%C3%A9:hs/send/m.room.message/mas.1?user_id=%40agent-a%3Ahs.example"
        );
        let bare = url::Url::parse("http://127.0.0.1:8008").unwrap();
        assert_eq!(
            client_url(&client_prefix(&bare), &["v3", "register"], None).to_string(),
            "http://127.0.0.1:8008/_matrix/client/v3/register"
        );
    }

    #[test]
    fn error_bodies_are_read() {
        let e = status_error(
            429,
            br#"{"errcode":"M_LIMIT_EXCEEDED","error":"slow","retry_after_ms":250}"#,
            None,
        );
        assert_eq!(e.errcode(), Some("M_LIMIT_EXCEEDED"));
        assert!(
            matches!(e, HomeserverError::Status { retry_after: Some(d), .. } if d == Duration::from_millis(250))
        );
        let e = status_error(
            502,
            b"<html>bad gateway</html>",
            Some(Duration::from_secs(2)),
        );
        assert_eq!(e.errcode(), Some("M_UNKNOWN"));
        assert_eq!(e.status(), Some(502));
    }
}
