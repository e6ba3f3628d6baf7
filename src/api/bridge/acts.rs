//! `POST /bridge/v1/reactions`, `POST /bridge/v1/redactions`, `POST /bridge/v1/receipts`,
//! `POST /bridge/v1/rooms/{room_id}/leave`: an agent reacts to, redacts, or marks as read
//! an event of a room, or leaves it (SPEC "Agent capabilities"). Like messages, each goes through the agent's queue for that room (in
//! order after what the agent did there before), and reactions and redactions take a
//! `txn_id` with the same rules as messages.

use actix_web::{web, HttpResponse};
use ruma::{OwnedEventId, OwnedRoomId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{require_homeserver, Empty};
use crate::{
    actors::{
        agent::{ActInRoom, Sent},
        AppState,
    },
    api::{
        body,
        error::{ApiError, ErrorAnswer},
        grant::{Grant, SendScope},
    },
    ids::AgentSlug,
    matrix::room_act::RoomAct,
};

/// Longest client idempotency key.
pub const MAX_TXN_ID_LEN: usize = 255;
/// Longest reaction key.
const MAX_KEY_LEN: usize = 256;
/// Longest redaction reason.
const MAX_REASON_LEN: usize = 1024;

/// Checks a client idempotency key.
pub fn check_txn_id(txn_id: Option<&str>) -> Result<(), ApiError> {
    match txn_id {
        Some(t) if t.is_empty() || t.len() > MAX_TXN_ID_LEN => Err(ApiError::BadJson(format!(
            "txn_id: must be 1 to {MAX_TXN_ID_LEN} characters"
        ))),
        _ => Ok(()),
    }
}

/// Checks a reason the room's members will see.
fn check_reason(reason: Option<&str>) -> Result<(), ApiError> {
    match reason {
        Some(r) if r.len() > MAX_REASON_LEN => Err(ApiError::BadJson(format!(
            "reason: longer than {MAX_REASON_LEN} bytes"
        ))),
        _ => Ok(()),
    }
}

/// Queues `act` as `agent` in `room` (the caller's grant already covers the agent) and
/// waits for it. `clear`: the caller allows a message or reaction in the clear into an
/// encrypted room.
pub async fn act(
    app: &AppState,
    grant: &Grant<SendScope>,
    agent: &AgentSlug,
    room: OwnedRoomId,
    act: RoomAct,
    client_txn: Option<String>,
    clear: bool,
) -> Result<Sent, ApiError> {
    require_homeserver(app)?;
    let act = ActInRoom {
        room,
        act,
        client_txn,
        joining: grant.joining(agent),
        allow_unencrypted: clear,
    };
    Ok(app.ask(agent, act).await??)
}

/// The event an act made.
#[derive(Serialize, ToSchema)]
pub(crate) struct EventAnswer {
    #[schema(value_type = crate::matrix::schema::EventId)]
    event_id: OwnedEventId,
    /// The request's `txn_id`, when it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    txn_id: Option<String>,
    /// Present when the message went to the room that replaced the one named (the room
    /// was upgraded).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::matrix::schema::RoomId>)]
    room_id: Option<OwnedRoomId>,
}

impl EventAnswer {
    pub fn of(sent: Sent) -> Result<Self, ApiError> {
        Ok(Self {
            event_id: sent.event_id.ok_or(ApiError::Internal)?,
            txn_id: sent.txn_id,
            room_id: None,
        })
    }

    /// The answer of a message sent to `room`, the replacement of the room named.
    pub fn moved_to(self, room: Option<OwnedRoomId>) -> Self {
        Self {
            room_id: room,
            ..self
        }
    }
}

/// A reaction (`m.annotation`) to an event.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReactionRequest {
    agent: AgentSlug,
    #[serde(deserialize_with = "crate::matrix::schema::bounded")]
    #[schema(value_type = crate::matrix::schema::RoomId)]
    room_id: OwnedRoomId,
    /// The event reacted to.
    #[serde(deserialize_with = "crate::matrix::schema::bounded")]
    #[schema(value_type = crate::matrix::schema::EventId)]
    event_id: OwnedEventId,
    /// The reaction, usually one emoji; 1 to 256 bytes.
    #[schema(min_length = 1, max_length = 256, examples("👍"))]
    key: String,
    /// The client's idempotency key, per agent and room, as for messages.
    #[schema(min_length = 1, max_length = 255)]
    txn_id: Option<String>,
    /// React in an encrypted room anyway, in the clear (refused otherwise: 409).
    #[serde(default)]
    allow_unencrypted: bool,
}

#[utoipa::path(
    post,
    path = "/bridge/v1/reactions",
    tag = "messages",
    request_body = ReactionRequest,
    responses(
        (status = 200, description = "Reacted (or, for a retried `txn_id`, reacted before)", body = EventAnswer),
        (status = 409, description = "`txn_id` was used for another request in this room (`M_IDEMPOTENCY_CONFLICT`), or the room is encrypted (`M_ENCRYPTED_ROOM`)", body = ErrorAnswer),
        (status = 502, description = "The homeserver refused", body = ErrorAnswer),
    ),
)]
pub async fn react(
    app: web::Data<AppState>,
    grant: Grant<SendScope>,
    payload: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let req: ReactionRequest = body::read_json(payload, app.config.limits.max_body_bytes)?;
    grant.agent(&req.agent)?;
    if req.key.is_empty() || req.key.len() > MAX_KEY_LEN {
        return Err(ApiError::BadJson(format!(
            "key: must be 1 to {MAX_KEY_LEN} bytes"
        )));
    }
    check_txn_id(req.txn_id.as_deref())?;
    let reaction = RoomAct::Reaction {
        event: req.event_id,
        key: req.key,
    };
    let clear = req.allow_unencrypted;
    let sent = act(
        &app,
        &grant,
        &req.agent,
        req.room_id,
        reaction,
        req.txn_id,
        clear,
    )
    .await?;
    Ok(HttpResponse::Ok().json(EventAnswer::of(sent)?))
}

/// A redaction of an event (the agent's own, or another's where its power level allows).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RedactionRequest {
    agent: AgentSlug,
    #[serde(deserialize_with = "crate::matrix::schema::bounded")]
    #[schema(value_type = crate::matrix::schema::RoomId)]
    room_id: OwnedRoomId,
    /// The event redacted.
    #[serde(deserialize_with = "crate::matrix::schema::bounded")]
    #[schema(value_type = crate::matrix::schema::EventId)]
    event_id: OwnedEventId,
    /// Why, as the room's members see it; at most 1024 bytes.
    #[schema(max_length = 1024)]
    reason: Option<String>,
    /// The client's idempotency key, per agent and room, as for messages.
    #[schema(min_length = 1, max_length = 255)]
    txn_id: Option<String>,
}

#[utoipa::path(
    post,
    path = "/bridge/v1/redactions",
    tag = "messages",
    request_body = RedactionRequest,
    responses(
        (status = 200, description = "Redacted (or, for a retried `txn_id`, redacted before)", body = EventAnswer),
        (status = 409, description = "`txn_id` was used for another request in this room", body = ErrorAnswer),
        (status = 502, description = "The homeserver refused (an unknown event, or no power to redact it)", body = ErrorAnswer),
    ),
)]
pub async fn redact(
    app: web::Data<AppState>,
    grant: Grant<SendScope>,
    payload: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let req: RedactionRequest = body::read_json(payload, app.config.limits.max_body_bytes)?;
    grant.agent(&req.agent)?;
    check_reason(req.reason.as_deref())?;
    check_txn_id(req.txn_id.as_deref())?;
    let redaction = RoomAct::Redaction {
        event: req.event_id,
        reason: req.reason,
    };
    let sent = act(
        &app,
        &grant,
        &req.agent,
        req.room_id,
        redaction,
        req.txn_id,
        false,
    )
    .await?;
    Ok(HttpResponse::Ok().json(EventAnswer::of(sent)?))
}

/// Marks a room read up to an event: the agent's read receipt, and its read marker (or,
/// with `thread_id`, its receipt in that thread).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReceiptRequest {
    agent: AgentSlug,
    #[serde(deserialize_with = "crate::matrix::schema::bounded")]
    #[schema(value_type = crate::matrix::schema::RoomId)]
    room_id: OwnedRoomId,
    /// The newest event read.
    #[serde(deserialize_with = "crate::matrix::schema::bounded")]
    #[schema(value_type = crate::matrix::schema::EventId)]
    event_id: OwnedEventId,
    /// The thread's root event, for a threaded receipt.
    #[serde(default, deserialize_with = "crate::matrix::schema::optional_bounded")]
    #[schema(value_type = Option<crate::matrix::schema::EventId>)]
    thread_id: Option<OwnedEventId>,
}

#[utoipa::path(
    post,
    path = "/bridge/v1/receipts",
    tag = "messages",
    request_body = ReceiptRequest,
    responses(
        (status = 200, description = "The receipt (and marker) moved", body = Empty),
        (status = 502, description = "The homeserver refused (an unknown event, say)", body = ErrorAnswer),
    ),
)]
pub async fn mark_read(
    app: web::Data<AppState>,
    grant: Grant<SendScope>,
    payload: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let req: ReceiptRequest = body::read_json(payload, app.config.limits.max_body_bytes)?;
    grant.agent(&req.agent)?;
    let receipt = RoomAct::Receipt {
        event: req.event_id,
        thread: req.thread_id,
    };
    act(&app, &grant, &req.agent, req.room_id, receipt, None, false).await?;
    Ok(HttpResponse::Ok().json(Empty {}))
}

/// Takes an agent out of a room.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LeaveRequest {
    agent: AgentSlug,
    /// Why, as the room's members see it; at most 1024 bytes.
    #[schema(max_length = 1024)]
    reason: Option<String>,
}

#[utoipa::path(
    post,
    path = "/bridge/v1/rooms/{room_id}/leave",
    tag = "messages",
    params(("room_id" = crate::matrix::schema::RoomId, Path, description = "The room")),
    request_body = LeaveRequest,
    responses(
        (status = 200, description = "The agent left (after what it had queued in the room)", body = Empty),
        (status = 404, description = "The agent is not in the room", body = ErrorAnswer),
        (status = 502, description = "The homeserver refused", body = ErrorAnswer),
    ),
)]
pub async fn leave(
    app: web::Data<AppState>,
    grant: Grant<SendScope>,
    room: web::Path<String>,
    payload: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let room = crate::matrix::schema::parse_bounded::<OwnedRoomId>(&room)
        .map_err(|e| ApiError::InvalidParam(format!("room_id: {e}")))?;
    let req: LeaveRequest = body::read_json(payload, app.config.limits.max_body_bytes)?;
    grant.agent(&req.agent)?;
    check_reason(req.reason.as_deref())?;
    if !app.directory.is_joined(&room, &req.agent) {
        return Err(ApiError::NotFound(format!(
            "agent {} is not in room {room}",
            req.agent
        )));
    }
    let leave = RoomAct::Leave { reason: req.reason };
    act(&app, &grant, &req.agent, room, leave, None, false).await?;
    Ok(HttpResponse::Ok().json(Empty {}))
}
