//! What the operator console's live view shows: the errors of the moment (bridge answers
//! of 500 and above, homeserver calls that failed), each kept in a small ring for whoever
//! subscribes next and passed to the subscribers there are, and a summary of the traffic
//! read from the process's counters ([`summary`]). Nothing here is on a request's path
//! unless it fails: a failure takes one short lock, and a broadcast only when someone
//! listens. A frame never holds a token or a message body: routes, endpoints, statuses,
//! errcodes, agents and request ids only.

pub mod summary;

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
};

use ruma::UserId;
use serde::Serialize;
use tokio::sync::broadcast;
use utoipa::ToSchema;

use crate::ids::{AgentSlug, Namespaces};

/// Errors kept for a new subscriber.
pub const REPLAYED: usize = 100;
/// Errors a slow subscriber may fall behind by before it skips some.
const BACKLOG: usize = 256;
/// Longest errcode kept (a homeserver's errcode is its own text).
const MAX_ERRCODE: usize = 64;

/// Where an error happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorSource {
    /// The bridge answered 500 or above.
    Bridge,
    /// A homeserver call failed for good (after its retries): 429 or 5xx, unreachable, or
    /// an answer that could not be read.
    Homeserver,
}

/// One error, as the live view shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ActivityError {
    /// Numbers errors in the order they happened (the SSE `id:`).
    pub seq: u64,
    /// When, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    pub source: ErrorSource,
    /// The bridge route's pattern (`/bridge/v1/messages`), or the homeserver endpoint.
    pub target: &'static str,
    /// The bridge request's method.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<&'static str>,
    /// The HTTP status, when there was an answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errcode: Option<String>,
    /// A homeserver failure's kind: `server_error`, `rate_limited`, `unreachable` or
    /// `bad_response`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// The agent the call was for, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<AgentSlug>)]
    pub agent: Option<AgentSlug>,
    /// The bridge request's `X-Request-Id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl ActivityError {
    /// A bridge answer of `status` (500 or above) on `route`.
    pub fn bridge(route: &'static str, method: &'static str, status: u16) -> Self {
        Self {
            seq: 0,
            time_ms: now_ms(),
            source: ErrorSource::Bridge,
            target: route,
            method: Some(method),
            status: Some(status),
            errcode: None,
            kind: None,
            agent: None,
            request_id: None,
        }
    }

    /// A failed homeserver call of `endpoint`.
    pub fn homeserver(endpoint: &'static str, kind: &'static str, status: Option<u16>) -> Self {
        Self {
            seq: 0,
            time_ms: now_ms(),
            source: ErrorSource::Homeserver,
            target: endpoint,
            method: None,
            status,
            errcode: None,
            kind: Some(kind),
            agent: None,
            request_id: None,
        }
    }

    /// With this errcode (cut to a bounded length).
    pub fn with_errcode(mut self, errcode: &str) -> Self {
        let mut end = errcode.len().min(MAX_ERRCODE);
        while !errcode.is_char_boundary(end) {
            end -= 1;
        }
        self.errcode = Some(errcode[..end].to_owned());
        self
    }
}

/// Subscribers' end of the hub: the errors kept when it subscribed, then each new one.
pub struct Subscription {
    pub replay: Vec<Arc<ActivityError>>,
    pub errors: broadcast::Receiver<Arc<ActivityError>>,
}

struct Ring {
    kept: VecDeque<Arc<ActivityError>>,
    next_seq: u64,
    /// `None` once the daemon stops: subscribers' streams then end.
    sender: Option<broadcast::Sender<Arc<ActivityError>>>,
}

/// The errors of the moment, for the live view.
pub struct Activity {
    ring: Mutex<Ring>,
    ns: Namespaces,
}

impl Activity {
    pub fn new(ns: Namespaces) -> Arc<Self> {
        let (sender, _) = broadcast::channel(BACKLOG);
        Arc::new(Self {
            ring: Mutex::new(Ring {
                kept: VecDeque::with_capacity(REPLAYED),
                next_seq: 1,
                sender: Some(sender),
            }),
            ns,
        })
    }

    fn ring(&self) -> MutexGuard<'_, Ring> {
        // A panic while holding the lock leaves a consistent ring (each step is whole).
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records an error: kept for later subscribers, sent to the present ones.
    pub fn report(&self, mut error: ActivityError) {
        let mut ring = self.ring();
        error.seq = ring.next_seq;
        ring.next_seq += 1;
        let error = Arc::new(error);
        if ring.kept.len() == REPLAYED {
            ring.kept.pop_front();
        }
        ring.kept.push_back(error.clone());
        if let Some(sender) = ring.sender.as_ref().filter(|s| s.receiver_count() > 0) {
            let _ = sender.send(error);
        }
    }

    /// The agent `user` is, when it is one of this service's agents (from the `user_id`
    /// a homeserver call was made as).
    pub fn agent_of(&self, user: &str) -> Option<AgentSlug> {
        UserId::parse(user)
            .ok()
            .and_then(|u| self.ns.agent_slug(&u))
    }

    /// The errors kept (those after `after`, the last `seq` a client saw) and every later
    /// one, taken together so that none is missed or seen twice; `None` once stopping.
    pub fn subscribe(&self, after: u64) -> Option<Subscription> {
        let ring = self.ring();
        let errors = ring.sender.as_ref()?.subscribe();
        let replay = ring
            .kept
            .iter()
            .filter(|e| e.seq > after)
            .cloned()
            .collect();
        Some(Subscription { replay, errors })
    }

    /// The errors kept, oldest first.
    pub fn recent(&self) -> Vec<Arc<ActivityError>> {
        self.ring().kept.iter().cloned().collect()
    }

    /// Ends every subscription (at shutdown); later ones are refused.
    pub fn close(&self) {
        self.ring().sender = None;
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub() -> Arc<Activity> {
        Activity::new(Namespaces::new(
            "hs.local".try_into().unwrap(),
            "agent-",
            "mosaic-",
            "mosaic-as",
        ))
    }

    fn error(n: u16) -> ActivityError {
        ActivityError::bridge("/bridge/v1/messages", "POST", 500 + n)
    }

    #[test]
    fn the_ring_keeps_the_last_errors_in_order() {
        let hub = hub();
        for n in 0..(REPLAYED as u16 + 5) {
            hub.report(error(n));
        }
        let kept = hub.recent();
        assert_eq!(kept.len(), REPLAYED);
        assert_eq!(kept[0].seq, 6);
        assert_eq!(kept[0].status, Some(505));
        assert!(kept.windows(2).all(|w| w[0].seq + 1 == w[1].seq));
    }

    #[tokio::test]
    async fn a_subscriber_gets_the_replay_then_each_new_error_once() {
        let hub = hub();
        hub.report(error(1));
        hub.report(error(2));
        let mut sub = hub.subscribe(0).unwrap();
        let seqs: Vec<u64> = sub.replay.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [1, 2]);
        hub.report(error(3));
        let next = sub.errors.recv().await.unwrap();
        assert_eq!((next.seq, next.status), (3, Some(503)));
        // Resuming after the last one seen replays only what came later.
        let resumed = hub.subscribe(2).unwrap();
        let seqs: Vec<u64> = resumed.replay.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [3]);
    }

    #[tokio::test]
    async fn closing_ends_subscriptions() {
        let hub = hub();
        let mut sub = hub.subscribe(0).unwrap();
        hub.close();
        assert!(matches!(
            sub.errors.recv().await,
            Err(broadcast::error::RecvError::Closed)
        ));
        assert!(hub.subscribe(0).is_none());
        hub.report(error(1));
        assert_eq!(hub.recent().len(), 1, "still kept, sent to nobody");
    }

    #[test]
    fn agents_are_named_from_their_user_ids_and_errcodes_are_bounded() {
        let hub = hub();
        assert_eq!(
            hub.agent_of("@agent-coder-1:hs.local").unwrap().as_str(),
            "coder-1"
        );
        assert!(hub.agent_of("@alice:hs.local").is_none());
        assert!(hub.agent_of("@agent-x:other").is_none());
        assert!(hub.agent_of("not a user").is_none());
        let long = "É".repeat(100);
        let e = error(0).with_errcode(&long);
        let kept = e.errcode.unwrap();
        assert!(kept.len() <= MAX_ERRCODE && long.starts_with(&kept));
    }
}
