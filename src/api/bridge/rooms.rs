//! `GET /bridge/v1/rooms/{room_id}/messages`, `.../state`, `.../members`: a room read as an
//! agent (SPEC "Agent capabilities"): asked of the homeserver as the agent's user, so an
//! agent sees only what its user may see; the homeserver's refusal (403, 404) is passed on.

use actix_web::{web, HttpResponse};
use ruma::{OwnedRoomId, OwnedUserId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::{require_homeserver, slug_param};
use crate::{
    actors::AppState,
    api::{
        error::{ApiError, ErrorAnswer},
        grant::{Grant, ReadScope},
    },
    ids::AgentSlug,
    matrix::reads::Direction,
};

/// Default and largest page of history.
const DEFAULT_LIMIT: u32 = 20;
const MAX_LIMIT: u32 = 100;
/// Longest pagination token accepted.
const MAX_TOKEN_LEN: usize = 1024;

/// Whose view of the room.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AsAgent {
    /// The agent whose view is read.
    #[param(value_type = AgentSlug)]
    agent: String,
}

/// Which page of the history.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// The agent whose view is read.
    #[param(value_type = AgentSlug)]
    agent: String,
    /// Where to read from: a `next` of an earlier page (absent: the newest end, or the
    /// oldest with `dir=f`).
    #[param(max_length = 1024, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    from: Option<String>,
    /// `b` (newest first, the default) or `f`.
    #[param(pattern = "^[bf]$")]
    dir: Option<String>,
    /// Events in the page, 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
}

/// A page of history.
#[derive(Serialize, ToSchema)]
pub(crate) struct HistoryPage {
    /// Room events as the homeserver gives them, in the order read.
    #[schema(value_type = Vec<Object>)]
    events: Value,
    /// The `from` of the next page; absent at the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// The room's current state.
#[derive(Serialize, ToSchema)]
pub(crate) struct StateAnswer {
    /// State events as the homeserver gives them.
    #[schema(value_type = Vec<Object>)]
    events: Value,
}

/// One joined member.
#[derive(Serialize, ToSchema)]
pub(crate) struct Member {
    #[schema(value_type = crate::matrix::schema::UserId)]
    user_id: OwnedUserId,
    display_name: Option<String>,
    avatar_url: Option<String>,
}

/// The room's joined members.
#[derive(Serialize, ToSchema)]
pub(crate) struct MembersAnswer {
    members: Vec<Member>,
}

/// The room and the agent's user, once the caller may read as the agent and the agent
/// exists.
async fn reader(
    app: &AppState,
    grant: &Grant<ReadScope>,
    room: &str,
    agent: &str,
) -> Result<(OwnedRoomId, OwnedUserId), ApiError> {
    let room = crate::matrix::schema::parse_bounded::<OwnedRoomId>(room)
        .map_err(|e| ApiError::InvalidParam(format!("room_id: {e}")))?;
    let slug = slug_param(agent)?;
    grant.agent(&slug)?;
    if app.store.agent(&slug).await?.is_none() {
        return Err(ApiError::NotFound(format!("unknown agent {slug}")));
    }
    require_homeserver(app)?;
    Ok((room, app.ns.agent_user_id(&slug)))
}

#[utoipa::path(
    get,
    path = "/bridge/v1/rooms/{room_id}/messages",
    tag = "rooms",
    params(("room_id" = crate::matrix::schema::RoomId, Path, description = "The room"), HistoryQuery),
    responses(
        (status = 200, description = "A page of the room's history as the agent sees it", body = HistoryPage),
        (status = 404, description = "No such agent (or room)", body = ErrorAnswer),
    ),
)]
pub async fn history(
    app: web::Data<AppState>,
    grant: Grant<ReadScope>,
    room: web::Path<String>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let (room, user) = reader(&app, &grant, &room, &query.agent).await?;
    let dir = match query.dir.as_deref() {
        None | Some("b") => Direction::Backward,
        Some("f") => Direction::Forward,
        Some(_) => return Err(ApiError::InvalidParam("dir: must be b or f".into())),
    };
    let limit = match query.limit.as_deref().map(str::parse::<u32>) {
        None => DEFAULT_LIMIT,
        Some(Ok(n @ 1..=MAX_LIMIT)) => n,
        Some(_) => {
            return Err(ApiError::InvalidParam(format!(
                "limit: must be an integer from 1 to {MAX_LIMIT}"
            )))
        }
    };
    let from = query.from.as_deref();
    if from.is_some_and(|t| t.len() > MAX_TOKEN_LEN || t.chars().any(char::is_control)) {
        return Err(ApiError::InvalidParam(
            "from: not a pagination token".into(),
        ));
    }
    let mut page = app
        .hs
        .room_messages(&user, &room, from, dir, limit)
        .await
        .map_err(ApiError::from_read)?;
    let next = page["end"].as_str().map(str::to_owned);
    Ok(HttpResponse::Ok().json(HistoryPage {
        events: page["chunk"].take(),
        next,
    }))
}

#[utoipa::path(
    get,
    path = "/bridge/v1/rooms/{room_id}/state",
    tag = "rooms",
    params(("room_id" = crate::matrix::schema::RoomId, Path, description = "The room"), AsAgent),
    responses(
        (status = 200, description = "The room's current state as the agent sees it", body = StateAnswer),
        (status = 404, description = "No such agent (or room)", body = ErrorAnswer),
    ),
)]
pub async fn state(
    app: web::Data<AppState>,
    grant: Grant<ReadScope>,
    room: web::Path<String>,
    query: web::Query<AsAgent>,
) -> Result<HttpResponse, ApiError> {
    let (room, user) = reader(&app, &grant, &room, &query.agent).await?;
    let events = app
        .hs
        .room_state(&user, &room)
        .await
        .map_err(ApiError::from_read)?;
    Ok(HttpResponse::Ok().json(StateAnswer { events }))
}

#[utoipa::path(
    get,
    path = "/bridge/v1/rooms/{room_id}/members",
    tag = "rooms",
    params(("room_id" = crate::matrix::schema::RoomId, Path, description = "The room"), AsAgent),
    responses(
        (status = 200, description = "The room's joined members as the agent sees them", body = MembersAnswer),
        (status = 404, description = "No such agent (or room)", body = ErrorAnswer),
    ),
)]
pub async fn members(
    app: web::Data<AppState>,
    grant: Grant<ReadScope>,
    room: web::Path<String>,
    query: web::Query<AsAgent>,
) -> Result<HttpResponse, ApiError> {
    let (room, user) = reader(&app, &grant, &room, &query.agent).await?;
    let mut answer = app
        .hs
        .joined_members(&user, &room)
        .await
        .map_err(ApiError::from_read)?;
    let joined = match answer["joined"].take() {
        Value::Object(joined) => joined,
        _ => Map::new(),
    };
    let text = |v: &Value, key: &str| v[key].as_str().map(str::to_owned);
    let members = joined
        .into_iter()
        .filter_map(|(user_id, profile)| {
            Some(Member {
                user_id: OwnedUserId::try_from(user_id).ok()?,
                display_name: text(&profile, "display_name"),
                avatar_url: text(&profile, "avatar_url"),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(MembersAnswer { members }))
}
