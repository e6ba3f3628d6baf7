//! `POST /bridge/v1/typing`: turn an agent's typing indicator on or off (SPEC "Bridge API").

use std::time::Duration;

use actix_web::{web, HttpResponse};
use ruma::OwnedRoomId;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{require_homeserver, Empty};
use crate::{
    actors::{agent::SetTyping, error::AgentError, AppState, Creation},
    api::{
        body,
        error::{ApiError, ErrorAnswer},
        grant::{Grant, SendScope},
    },
    ids::AgentSlug,
};

/// Longest requested typing duration (the configured maximum caps it further).
const MAX_TIMEOUT_MS: u64 = 24 * 3600 * 1000;

/// Turns an agent's typing indicator on (for `timeout_ms`, capped by the configuration) or
/// off. Typing on creates the agent and joins it to the room when needed.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TypingRequest {
    #[serde(deserialize_with = "crate::matrix::schema::bounded")]
    #[schema(value_type = crate::matrix::schema::RoomId)]
    room_id: OwnedRoomId,
    agent: AgentSlug,
    typing: bool,
    #[serde(default, deserialize_with = "crate::whole_number::optional")]
    #[schema(minimum = 1, maximum = 86_400_000)]
    timeout_ms: Option<u64>,
}

#[utoipa::path(
    post,
    path = "/bridge/v1/typing",
    tag = "messages",
    request_body = TypingRequest,
    responses(
        (status = 200, description = "Done", body = Empty),
        (status = 502, description = "The homeserver refused", body = ErrorAnswer),
    ),
)]
pub async fn set_typing(
    app: web::Data<AppState>,
    grant: Grant<SendScope>,
    payload: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let bytes = body::payload(payload, app.config.limits.max_body_bytes)?;
    let req: TypingRequest = body::json(&bytes)?;
    grant.agent(&req.agent)?;
    if let Some(t) = req.timeout_ms {
        if t == 0 || t > MAX_TIMEOUT_MS {
            return Err(ApiError::BadJson(format!(
                "timeout_ms: must be between 1 and {MAX_TIMEOUT_MS}"
            )));
        }
    }
    require_homeserver(&app)?;
    let moved = app.directory.replacement_of(&req.room_id);
    let typing = SetTyping {
        room: moved.unwrap_or(req.room_id),
        typing: req.typing,
        duration: req.timeout_ms.map(Duration::from_millis),
        joining: grant.joining(&req.agent),
    };
    if req.typing {
        app.ask(&req.agent, typing).await??;
    } else {
        // Typing off changes nothing for an agent that does not exist: it is not created.
        match app.ask_with(&req.agent, typing, Creation::Never).await {
            Ok(done) => done?,
            Err(AgentError::Unknown(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(HttpResponse::Ok().json(Empty {}))
}
