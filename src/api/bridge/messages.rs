//! `POST /bridge/v1/messages`: send a message as an agent (SPEC "Bridge API").

use actix_web::{web, HttpResponse};
use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId};
use serde::Deserialize;
use serde_json::json;

use super::require_homeserver;
use crate::{
    actors::{agent::SendMessage, AppState},
    api::{
        body,
        error::ApiError,
        grant::{Grant, SendScope},
    },
    ids::AgentSlug,
    matrix::content::{BodyFormat, MsgType, OutgoingMessage},
};

/// Largest message body in bytes.
pub const MAX_BODY_LEN: usize = 64 * 1024;
/// Most mentioned users in one message.
const MAX_MENTIONS: usize = 100;
/// Longest client idempotency key.
const MAX_TXN_ID_LEN: usize = 255;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendRequest {
    room_id: OwnedRoomId,
    agent: AgentSlug,
    body: String,
    #[serde(default)]
    msgtype: MsgType,
    #[serde(default)]
    format: BodyFormat,
    reply_to: Option<OwnedEventId>,
    thread_root: Option<OwnedEventId>,
    #[serde(default)]
    mentions: Vec<OwnedUserId>,
    txn_id: Option<String>,
}

pub async fn send_message(
    app: web::Data<AppState>,
    grant: Grant<SendScope>,
    payload: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let bytes = body::payload(payload, app.config.limits.max_body_bytes)?;
    let req: SendRequest = body::json(&bytes)?;
    grant.agent(&req.agent)?;
    if req.body.trim().is_empty() {
        return Err(ApiError::BadJson("body: must not be empty".into()));
    }
    if req.body.len() > MAX_BODY_LEN {
        return Err(ApiError::BadJson(format!(
            "body: longer than {MAX_BODY_LEN} bytes"
        )));
    }
    if req.mentions.len() > MAX_MENTIONS {
        return Err(ApiError::BadJson(format!(
            "mentions: more than {MAX_MENTIONS} users"
        )));
    }
    if let Some(t) = &req.txn_id {
        if t.is_empty() || t.len() > MAX_TXN_ID_LEN {
            return Err(ApiError::BadJson(format!(
                "txn_id: must be 1 to {MAX_TXN_ID_LEN} characters"
            )));
        }
    }
    require_homeserver(&app)?;
    let send = SendMessage {
        room: req.room_id,
        message: OutgoingMessage {
            body: req.body,
            msgtype: req.msgtype,
            format: req.format,
            reply_to: req.reply_to,
            thread_root: req.thread_root,
            mentions: req.mentions,
        },
        client_txn: req.txn_id,
        joining: grant.joining(&req.agent),
    };
    let sent = app.ask(&req.agent, send).await??;
    Ok(HttpResponse::Ok().json(match sent.txn_id {
        Some(txn_id) => json!({ "event_id": sent.event_id, "txn_id": txn_id }),
        None => json!({ "event_id": sent.event_id }),
    }))
}
