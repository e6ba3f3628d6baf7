//! `POST /bridge/v1/messages`: send a message as an agent (SPEC "Bridge API").

use actix_web::{web, HttpResponse};
use ruma::{OwnedEventId, OwnedMxcUri, OwnedRoomId, OwnedUserId};
use serde::Deserialize;
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
    matrix::{
        content::{media_message, BodyFormat, MsgType, OutgoingMessage},
        room_act::RoomAct,
    },
};

/// Largest message body in bytes.
pub const MAX_BODY_LEN: usize = 64 * 1024;
/// Most mentioned users in one message.
const MAX_MENTIONS: usize = 100;

/// A message to send as an agent. The agent is created on first use; it joins the room
/// first when it is not in it yet.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendRequest {
    #[serde(deserialize_with = "crate::matrix::schema::bounded")]
    #[schema(value_type = crate::matrix::schema::RoomId)]
    room_id: OwnedRoomId,
    agent: AgentSlug,
    /// The text: Markdown by default (`format`), at most 64 KiB.
    #[schema(min_length = 1, max_length = 65536)]
    body: String,
    #[serde(default)]
    msgtype: MsgType,
    #[serde(default)]
    format: BodyFormat,
    /// An event the message replies to.
    #[serde(default, deserialize_with = "crate::matrix::schema::optional_bounded")]
    #[schema(value_type = Option<crate::matrix::schema::EventId>)]
    reply_to: Option<OwnedEventId>,
    /// The root of the thread the message belongs to.
    #[serde(default, deserialize_with = "crate::matrix::schema::optional_bounded")]
    #[schema(value_type = Option<crate::matrix::schema::EventId>)]
    thread_root: Option<OwnedEventId>,
    /// The agent's earlier message this one replaces (an edit: `m.replace` with the new
    /// content); not with `reply_to` or `thread_root` (an edit keeps the original's).
    #[serde(default, deserialize_with = "crate::matrix::schema::optional_bounded")]
    #[schema(value_type = Option<crate::matrix::schema::EventId>)]
    edit_of: Option<OwnedEventId>,
    /// Users the message mentions (`m.mentions`), at most 100.
    #[serde(default, deserialize_with = "crate::matrix::schema::bounded_list")]
    #[schema(value_type = Vec<crate::matrix::schema::UserId>, max_items = 100)]
    mentions: Vec<OwnedUserId>,
    /// The client's idempotency key, per agent and room: a retry with the same key and body
    /// answers the first send's event id; the same key with another body is 409.
    #[schema(min_length = 1, max_length = 255)]
    txn_id: Option<String>,
    /// The uploaded file of an `m.image`, `m.file`, `m.audio` or `m.video` message
    /// (`POST /bridge/v1/media`); required for those types, refused for others.
    #[schema(value_type = Option<crate::matrix::schema::MxcUri>)]
    url: Option<OwnedMxcUri>,
    /// The file's `info` as the spec describes it for the msgtype (`mimetype`, `size`,
    /// `w`, `h`, `duration`...).
    #[schema(value_type = Option<Object>)]
    info: Option<serde_json::Map<String, serde_json::Value>>,
    /// Send into an encrypted room in the clear. Without it such a send is encrypted
    /// (`[e2ee] enabled`) or refused (409 `M_ENCRYPTED_ROOM`).
    #[serde(default)]
    allow_unencrypted: bool,
}

#[utoipa::path(
    post,
    path = "/bridge/v1/messages",
    tag = "messages",
    request_body = SendRequest,
    responses(
        (status = 200, description = "Sent (or, for a retried `txn_id`, sent before)", body = EventAnswer),
        (status = 409, description = "`txn_id` was used for another message in this room (`M_IDEMPOTENCY_CONFLICT`), or the room is encrypted and `allow_unencrypted` was not given (`M_ENCRYPTED_ROOM`)", body = ErrorAnswer),
        (status = 502, description = "The homeserver refused the send", body = ErrorAnswer),
    ),
)]
pub async fn send_message(
    app: web::Data<AppState>,
    grant: Grant<SendScope>,
    payload: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let mut req: SendRequest = body::read_json(payload, app.config.limits.max_body_bytes)?;
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
    if req.edit_of.is_some() && (req.reply_to.is_some() || req.thread_root.is_some()) {
        return Err(ApiError::BadJson(
            "edit_of: an edit keeps the original's relation; give no reply_to or thread_root"
                .into(),
        ));
    }
    check_txn_id(req.txn_id.as_deref())?;
    let media = if req.msgtype.is_media() {
        let url = req.url.as_ref().ok_or_else(|| {
            ApiError::BadJson(format!(
                "url: required for msgtype {}",
                req.msgtype.as_str()
            ))
        })?;
        if url.validate().is_err() {
            return Err(ApiError::BadJson(
                "url: must be an mxc://server/media-id URI".into(),
            ));
        }
        let built = media_message(req.msgtype, &req.body, url, req.info.take())
            .map_err(|e| ApiError::BadJson(format!("info: {e}")))?;
        Some(built)
    } else if req.url.is_some() || req.info.is_some() {
        return Err(ApiError::BadJson(format!(
            "url: only for m.image, m.file, m.audio and m.video, not {}",
            req.msgtype.as_str()
        )));
    } else {
        None
    };
    // A new message that refers to no event of the room named goes to the room's newest
    // replacement when it was upgraded (its power levels no longer let agents speak; an
    // agent not yet in the replacement joins it as for any room).
    let related = req.edit_of.is_some() || req.reply_to.is_some() || req.thread_root.is_some();
    let message = RoomAct::Message(Box::new(OutgoingMessage {
        body: req.body,
        msgtype: req.msgtype,
        format: req.format,
        reply_to: req.reply_to,
        thread_root: req.thread_root,
        mentions: req.mentions,
        edit_of: req.edit_of,
        media,
    }));
    let clear = req.allow_unencrypted;
    let moved = match related {
        true => None,
        false => app.directory.replacement_of(&req.room_id),
    };
    let room = moved.clone().unwrap_or(req.room_id);
    let sent = act(&app, &grant, &req.agent, room, message, req.txn_id, clear).await?;
    Ok(HttpResponse::Ok().json(EventAnswer::of(sent)?.moved_to(moved)))
}
