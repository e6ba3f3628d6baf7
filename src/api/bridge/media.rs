//! `POST /bridge/v1/media?agent=&filename=`: uploads a file as an agent (SPEC "Agent
//! capabilities"): the raw bytes with their `Content-Type`, read up to
//! `limits.max_media_bytes` and no further (413 as soon as a body would pass it), then
//! sent to the homeserver's media repository as the agent's user. The answer's
//! `content_uri` goes into a message's `url` or an agent's `avatar_url`.

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use bytes::BytesMut;
use futures_util::StreamExt;
use ruma::OwnedMxcUri;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{require_homeserver, slug_param};
use crate::{
    actors::{agent::EnsureRegistered, AppState},
    api::{
        error::{ApiError, ErrorAnswer},
        grant::{Grant, SendScope},
    },
    ids::AgentSlug,
};

/// Longest file name.
const MAX_FILENAME_LEN: usize = 255;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The agent that uploads.
    #[param(value_type = AgentSlug)]
    agent: String,
    /// The file's name, as clients show it (1 to 255 bytes).
    #[param(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f/]+$"
    )]
    filename: Option<String>,
}

/// An uploaded file.
#[derive(Serialize, ToSchema)]
pub(crate) struct UploadAnswer {
    /// Its `mxc://` URI.
    #[schema(value_type = crate::matrix::schema::MxcUri)]
    content_uri: OwnedMxcUri,
}

/// The request's content type: a `type/subtype` media type.
fn content_type(req: &HttpRequest) -> Result<String, ApiError> {
    let value = req.headers().get(header::CONTENT_TYPE).ok_or_else(|| {
        ApiError::InvalidParam("Content-Type: the file's media type is required".into())
    })?;
    match value.to_str() {
        Ok(text) if text.parse::<actix_web::mime::Mime>().is_ok() => Ok(text.to_owned()),
        _ => Err(ApiError::InvalidParam(
            "Content-Type: not a media type (type/subtype)".into(),
        )),
    }
}

#[utoipa::path(
    post,
    path = "/bridge/v1/media",
    tag = "messages",
    params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file's bytes, with its own Content-Type"),
    responses(
        (status = 200, description = "Uploaded", body = UploadAnswer),
        (status = 413, description = "Larger than limits.max_media_bytes", body = ErrorAnswer),
        (status = 502, description = "The homeserver refused (its own size limit, say)", body = ErrorAnswer),
    ),
)]
pub async fn upload(
    app: web::Data<AppState>,
    grant: Grant<SendScope>,
    req: HttpRequest,
    query: web::Query<UploadQuery>,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let slug = slug_param(&query.agent)?;
    grant.agent(&slug)?;
    let filename = query.filename.as_deref();
    if filename.is_some_and(|f| {
        f.is_empty()
            || f.len() > MAX_FILENAME_LEN
            || f.contains('/')
            || f.chars().any(char::is_control)
    }) {
        return Err(ApiError::InvalidParam(format!(
            "filename: 1 to {MAX_FILENAME_LEN} bytes, no '/' or control characters"
        )));
    }
    let content_type = content_type(&req)?;
    let limit = app.config.limits.max_media_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::TooLarge(limit));
    }
    let mut bytes = BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::NotJson(format!("cannot read the body: {e}")))?;
        if bytes.len() + chunk.len() > limit {
            return Err(ApiError::TooLarge(limit));
        }
        bytes.extend_from_slice(&chunk);
    }
    if bytes.is_empty() {
        return Err(ApiError::InvalidParam("body: the file is empty".into()));
    }
    require_homeserver(&app)?;
    // The agent uploads as its own user, which must be registered (the agent is created
    // on first use, under limits.max_agents).
    app.ask(&slug, EnsureRegistered).await??;
    let user = app.ns.agent_user_id(&slug);
    let content_uri = app
        .hs
        .upload(&user, bytes.freeze(), &content_type, filename)
        .await
        .map_err(ApiError::Homeserver)?;
    Ok(HttpResponse::Ok().json(UploadAnswer { content_uri }))
}
