//! `POST /bridge/v1/events`: an event of any type an agent's power level allows, room or
//! state (SPEC "Agent capabilities"), in the agent's order for the room and with the
//! `txn_id` rules of messages. The types the daemon itself manages (membership, encryption,
//! power levels) take an admin token; redactions have their own route.

use actix_web::{web, HttpResponse};
use ruma::OwnedRoomId;
use serde::Deserialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;

use super::acts::{act, check_txn_id, EventAnswer};
use crate::{
    actors::AppState,
    api::{
        body,
        error::{ApiError, ErrorAnswer},
        grant::{Grant, SendScope},
    },
    ids::AgentSlug,
    matrix::room_act::RoomAct,
    tokens::scope::Scope,
};

/// Event types whose meaning the daemon relies on: only an admin token sends them.
const DAEMON_OWNED: &[&str] = &["m.room.member", "m.room.encryption", "m.room.power_levels"];
/// Longest event type and state key.
const MAX_NAME_LEN: usize = 255;

/// An event to send as the agent.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventRequest {
    agent: AgentSlug,
    #[serde(deserialize_with = "crate::matrix::schema::bounded")]
    #[schema(value_type = crate::matrix::schema::RoomId)]
    room_id: OwnedRoomId,
    /// The event type, e.g. `org.example.task` (1 to 255 bytes). `m.room.member`,
    /// `m.room.encryption` and `m.room.power_levels` need an admin token;
    /// `m.room.redaction` is `POST /bridge/v1/redactions`.
    #[serde(rename = "type")]
    #[schema(min_length = 1, max_length = 255, examples("org.example.task"))]
    event_type: String,
    /// The event's content: a JSON object.
    #[schema(value_type = Object)]
    content: Box<RawValue>,
    /// Makes it a state event with this key (`""` for the room's one state of the type).
    #[schema(max_length = 255)]
    state_key: Option<String>,
    /// The client's idempotency key, per agent and room, as for messages.
    #[schema(min_length = 1, max_length = 255)]
    txn_id: Option<String>,
    /// A room (not state) event into an encrypted room anyway, in the clear.
    #[serde(default)]
    allow_unencrypted: bool,
}

#[utoipa::path(
    post,
    path = "/bridge/v1/events",
    tag = "messages",
    request_body = EventRequest,
    responses(
        (status = 200, description = "Sent (or, for a retried `txn_id`, sent before)", body = EventAnswer),
        (status = 409, description = "`txn_id` was used for another request in this room, or a room event into an encrypted room", body = ErrorAnswer),
        (status = 502, description = "The homeserver refused (the agent's power level is too low, say)", body = ErrorAnswer),
    ),
)]
pub async fn send_event(
    app: web::Data<AppState>,
    grant: Grant<SendScope>,
    payload: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let req: EventRequest = body::read_json(payload, app.config.limits.max_body_bytes)?;
    grant.agent(&req.agent)?;
    let bad_name = |n: &str| n.len() > MAX_NAME_LEN || n.chars().any(char::is_control);
    if req.event_type.is_empty() || bad_name(&req.event_type) {
        return Err(ApiError::BadJson(format!(
            "type: must be 1 to {MAX_NAME_LEN} bytes without control characters"
        )));
    }
    if req.state_key.as_deref().is_some_and(bad_name) {
        return Err(ApiError::BadJson(format!(
            "state_key: at most {MAX_NAME_LEN} bytes without control characters"
        )));
    }
    if !req.content.get().trim_start().starts_with('{') {
        return Err(ApiError::BadJson("content: must be a JSON object".into()));
    }
    if req.event_type == "m.room.redaction" {
        return Err(ApiError::BadJson(
            "type: m.room.redaction is POST /bridge/v1/redactions".into(),
        ));
    }
    if DAEMON_OWNED.contains(&req.event_type.as_str()) {
        grant.also(Scope::Admin, &req.agent)?;
    }
    check_txn_id(req.txn_id.as_deref())?;
    let custom = RoomAct::Custom {
        event_type: req.event_type,
        state_key: req.state_key,
        content: req.content,
    };
    let clear = req.allow_unencrypted;
    let sent = act(
        &app,
        &grant,
        &req.agent,
        req.room_id,
        custom,
        req.txn_id,
        clear,
    )
    .await?;
    Ok(HttpResponse::Ok().json(EventAnswer::of(sent)?))
}
