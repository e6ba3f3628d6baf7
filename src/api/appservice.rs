//! Homeserver-facing routes (Application Service API, spec v1.19 §"Application Service
//! API"): `PUT /_matrix/app/v1/transactions/{txnId}`, `GET /users/{userId}`,
//! `GET /rooms/{roomAlias}`, `POST /ping`, `/thirdparty/*`. The hs_token middleware has
//! already run.

use actix_web::{web, HttpResponse};
use ruma::{RoomAliasId, UserId};
use serde::Deserialize;
use serde_json::{json, value::RawValue};

use super::{body, error::ApiError};
use crate::{
    actors::{agent::EnsureRegistered, error::AgentError, AppState, TransactionAck},
    e2ee::pushed::CryptoParts,
    inbound::routing::{Events, Pushed, RawEnvelope, ReadEvents},
    metrics::METRICS,
};

/// Longest accepted transaction id.
const MAX_TXN_ID_LEN: usize = 255;

/// `PUT /_matrix/app/v1/transactions/{txnId}` body, borrowed from it (not copied). Its room
/// events are read as [`ReadEvents`] (their envelopes in the body's single parse) or, when
/// one of them cannot be read that way, as raw values (`E`'s default) each read on its own:
/// one malformed event cannot fail the batch. Ephemeral events (stable
/// and MSC2409 names) are routed when asked for; to-device messages (part of the
/// transaction's fingerprint) and the other parts of end-to-end encryption (MSC3202) go to
/// the agents' crypto machines when it is on; other keys are ignored. Public, with its
/// accessors, so that the fuzz target (`fuzz/`) parses a body exactly as this route does.
#[derive(Deserialize)]
pub struct Transaction<'a, E = Vec<&'a RawValue>> {
    pub events: E,
    #[serde(default, borrow)]
    ephemeral: Vec<&'a RawValue>,
    #[serde(default, borrow, rename = "de.sorunome.msc2409.ephemeral")]
    ephemeral_unstable: Vec<&'a RawValue>,
    #[serde(default, borrow)]
    to_device: Vec<&'a RawValue>,
    #[serde(default, borrow, rename = "de.sorunome.msc2409.to_device")]
    to_device_unstable: Vec<&'a RawValue>,
    /// End-to-end encryption (MSC3202): per user and device, one-time keys left (under
    /// two names: Synapse sends both)...
    #[serde(
        default,
        borrow,
        rename = "org.matrix.msc3202.device_one_time_key_counts"
    )]
    one_time_key_counts: Option<&'a RawValue>,
    #[serde(
        default,
        borrow,
        rename = "org.matrix.msc3202.device_one_time_keys_count"
    )]
    one_time_keys_count: Option<&'a RawValue>,
    /// ...fallback key types not used yet...
    #[serde(
        default,
        borrow,
        rename = "org.matrix.msc3202.device_unused_fallback_key_types"
    )]
    unused_fallback_keys: Option<&'a RawValue>,
    /// ...and users whose devices changed.
    #[serde(default, borrow, rename = "org.matrix.msc3202.device_lists")]
    device_lists: Option<&'a RawValue>,
}

impl<'a, E> Transaction<'a, E> {
    /// Ephemeral events, under their stable and MSC2409 names.
    pub fn ephemeral(&self) -> Vec<&'a RawValue> {
        let both = [&self.ephemeral, &self.ephemeral_unstable];
        both.into_iter().flatten().copied().collect()
    }

    /// To-device messages, under their stable and MSC2409 names.
    pub fn to_device(&self) -> Vec<&'a RawValue> {
        let both = [&self.to_device, &self.to_device_unstable];
        both.into_iter().flatten().copied().collect()
    }

    /// The same transaction with its room events turned into `F` by `f`.
    fn map_events<F>(self, f: impl FnOnce(E) -> F) -> Transaction<'a, F> {
        Transaction {
            events: f(self.events),
            ephemeral: self.ephemeral,
            ephemeral_unstable: self.ephemeral_unstable,
            to_device: self.to_device,
            to_device_unstable: self.to_device_unstable,
            one_time_key_counts: self.one_time_key_counts,
            one_time_keys_count: self.one_time_keys_count,
            unused_fallback_keys: self.unused_fallback_keys,
            device_lists: self.device_lists,
        }
    }

    /// The encryption parts, with `to_device` as [`Transaction::to_device`] gave them.
    pub fn crypto<'b>(&self, to_device: &'b [&'a RawValue]) -> CryptoParts<'b>
    where
        'a: 'b,
    {
        CryptoParts {
            to_device,
            one_time_key_counts: self.one_time_key_counts.or(self.one_time_keys_count),
            unused_fallback_keys: self.unused_fallback_keys,
            device_lists: self.device_lists,
        }
    }
}

/// A transaction's room events as the route has them: every envelope, from the body's single
/// parse; or raw, each read on its own, when the body was parsed again as the reference
/// (that parse failed or left an event unread): the reference decides the answer to a bad
/// body, and skips or fingerprints an unreadable event by its content.
enum PushedEvents<'a> {
    Read(Vec<RawEnvelope<'a>>),
    Raw(Vec<&'a RawValue>),
}

impl PushedEvents<'_> {
    fn as_events(&self) -> Events<'_> {
        match self {
            PushedEvents::Read(envelopes) => Events::Read(envelopes),
            PushedEvents::Raw(raws) => Events::Raw(raws),
        }
    }
}

/// A transaction body as routing reads it ([`PushedEvents`]).
fn parse_pushed(bytes: &[u8]) -> Result<Transaction<'_, PushedEvents<'_>>, ApiError> {
    if let Ok(txn) = body::json_borrowed::<Transaction<'_, ReadEvents<'_>>>(bytes) {
        if txn.events.all().is_some() {
            return Ok(txn.map_events(|e| PushedEvents::Read(e.into_all().unwrap_or_default())));
        }
    }
    body::json_borrowed::<Transaction<'_>>(bytes).map(|t| t.map_events(PushedEvents::Raw))
}

/// Answers 200 `{}` once the events are durably recorded (or the same transaction, by id and
/// content, was handled before); 500 when recording failed, so that the homeserver retries.
pub async fn put_transaction(
    app: web::Data<AppState>,
    txn_id: web::Path<String>,
    payload: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let txn_id = txn_id.into_inner();
    if txn_id.is_empty() || txn_id.len() > MAX_TXN_ID_LEN {
        return Err(ApiError::InvalidParam(format!(
            "txnId: must be 1 to {MAX_TXN_ID_LEN} characters"
        )));
    }
    let bytes = body::payload(payload, app.config.limits.max_transaction_bytes)?;
    let txn = parse_pushed(&bytes)?;
    METRICS
        .last_transaction_timestamp
        .set(crate::store::now_s());
    let (ephemeral, to_device) = (txn.ephemeral(), txn.to_device());
    if !ephemeral.is_empty() {
        METRICS
            .events_received
            .with_label_values(&["ephemeral"])
            .inc_by(ephemeral.len() as u64);
    }
    let events = txn.events.as_events();
    let count = events.len();
    // Routing reads the shared directory, so it runs here, on this worker thread, and so
    // does the wait for the group commit.
    let routed = app.router().route(Pushed {
        txn_id: &txn_id,
        events,
        ephemeral: &ephemeral,
        to_device: &to_device,
    });
    let mut routed = routed;
    if let Some(e2ee) = app.e2ee.get() {
        crate::actors::decrypt::prepare(&app, e2ee, &mut routed, txn.crypto(&to_device)).await;
    }
    let ack = app.record_transaction(routed).await.map_err(|e| {
            METRICS.transactions.with_label_values(&["failed"]).inc();
            tracing::error!(txn_id = %txn_id, error = %e, "transaction not recorded; the homeserver will retry");
            ApiError::Internal
        })?;
    if let TransactionAck::Recorded {
        id_reused: true, ..
    } = ack
    {
        warn_id_reused(&txn_id);
    }
    tracing::debug!(txn_id = %txn_id, events = count, ?ack, "transaction handled");
    Ok(HttpResponse::Ok().json(json!({})))
}

/// Says once per process, as a warning, that the homeserver reused a transaction id (later
/// reuses are logged at debug level and counted in `transactions_total{outcome="id_reused"}`):
/// after a restart Synapse on SQLite reuses every id, which would flood the log.
fn warn_id_reused(txn_id: &str) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    let mut first = false;
    WARNED.call_once(|| first = true);
    if first {
        tracing::warn!(
            txn_id,
            "the homeserver reused a transaction id for other events (it restarted its \
             numbering, as Synapse on SQLite does): processed as a new transaction; further \
             reuses are counted in mosaic_as_transactions_total{{outcome=\"id_reused\"}}"
        );
    } else {
        tracing::debug!(txn_id, "transaction id reused for other events");
    }
}

/// `GET /_matrix/app/v1/users/{userId}`: 200 (and the user exists afterwards) for a valid
/// agent user or the sender bot; 404 otherwise.
pub async fn query_user(
    app: web::Data<AppState>,
    user_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::NotFound("no such user in this namespace".into());
    let user = UserId::parse(user_id.as_str()).map_err(|_| not_found())?;
    if user == *app.ns.sender() {
        return Ok(HttpResponse::Ok().json(json!({})));
    }
    let slug = app.ns.agent_slug(&user).ok_or_else(not_found)?;
    match app.ask(&slug, EnsureRegistered).await {
        Ok(registered) => registered?,
        // No room for one more agent: the user does not exist.
        Err(AgentError::LimitReached { .. }) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    }
    Ok(HttpResponse::Ok().json(json!({})))
}

/// `GET /_matrix/app/v1/rooms/{roomAlias}`: rooms are only created through provisioning
/// (they need a name and members), so no alias is created on demand.
pub async fn query_room_alias(
    app: web::Data<AppState>,
    alias: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let owned = RoomAliasId::parse(alias.as_str())
        .map(|a| app.ns.owns_alias(&a))
        .unwrap_or(false);
    tracing::debug!(alias = %alias, in_namespace = owned, "alias query: not created on demand");
    Err(ApiError::NotFound("no such room alias".into()))
}

/// `POST /_matrix/app/v1/ping`.
pub async fn ping() -> HttpResponse {
    tracing::info!("homeserver ping received");
    HttpResponse::Ok().json(json!({}))
}

/// `/_matrix/app/v1/thirdparty/*`: no third-party protocols are bridged.
pub async fn thirdparty() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("no third-party protocols".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Synapse sends the one-time-key counts under both of MSC3202's names at once (a
    /// body refused for that would lose its to-device messages: a retry carries none).
    #[test]
    fn encryption_parts_are_read_under_every_name_synapse_uses() {
        let body = r#"{"events": [],
            "de.sorunome.msc2409.to_device": [{"type": "m.room.encrypted", "content": {}}],
            "org.matrix.msc3202.device_one_time_keys_count": {"@a:hs": {"D": {"signed_curve25519": 1}}},
            "org.matrix.msc3202.device_one_time_key_counts": {"@a:hs": {"D": {"signed_curve25519": 1}}},
            "org.matrix.msc3202.device_unused_fallback_key_types": {"@a:hs": {"D": []}},
            "org.matrix.msc3202.device_lists": {"changed": [], "left": []}}"#;
        let txn: Transaction<'_> = serde_json::from_str(body).unwrap();
        let to_device = txn.to_device();
        let parts = txn.crypto(&to_device);
        assert_eq!(parts.to_device.len(), 1);
        assert!(parts.one_time_key_counts.is_some());
        assert!(parts.unused_fallback_keys.is_some());
        assert!(parts.device_lists.is_some());
        let one_name = r#"{"events": [],
            "org.matrix.msc3202.device_one_time_keys_count": {}}"#;
        let txn: Transaction<'_> = serde_json::from_str(one_name).unwrap();
        assert!(txn.crypto(&[]).one_time_key_counts.is_some());
    }
}
