//! `PUT /bridge/v1/agents/{agent}`, `GET /bridge/v1/agents/{agent}`, `GET /bridge/v1/agents`:
//! agent profiles and the state their actors own (SPEC "Bridge API").

use actix_web::{web, HttpResponse};
use ruma::{OwnedMxcUri, OwnedUserId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{require_homeserver, slug_param, Empty};
use crate::{
    actors::{
        agent::{ActInRoom, AgentState, GetState, Joining, Retire, SetProfile},
        error::AgentError,
        AppState,
    },
    api::{
        body,
        error::{ApiError, ErrorAnswer},
    },
};
use crate::{
    api::grant::{AgentGrant, Grant, ProfileScope, ReadScope},
    ids::AgentSlug,
    matrix::room_act::RoomAct,
    store::{AgentRecord, WriteOp},
    tokens::pattern::{AgentPattern, SlugRange},
};

/// Longest display name.
const MAX_DISPLAY_NAME_LEN: usize = 256;

/// An agent's profile; an empty body just creates (registers) the agent.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProfileRequest {
    /// 1 to 256 bytes, not blank (some character other than white space).
    #[schema(min_length = 1, max_length = 256, pattern = r"\S")]
    display_name: Option<String>,
    #[schema(value_type = Option<crate::matrix::schema::MxcUri>)]
    avatar_url: Option<OwnedMxcUri>,
}

#[utoipa::path(
    put,
    path = "/bridge/v1/agents/{agent}",
    tag = "agents",
    params(("agent" = AgentSlug, Path, description = "The agent")),
    request_body(content = Option<ProfileRequest>, description = "The profile to set; empty (or `null`) to create the agent only"),
    responses(
        (status = 200, description = "The agent's profile", body = AgentProfile),
        (status = 502, description = "The homeserver refused", body = ErrorAnswer),
    ),
)]
pub async fn put_agent(
    app: web::Data<AppState>,
    AgentGrant { slug, .. }: AgentGrant<ProfileScope>,
    payload: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let bytes = body::payload(payload, app.config.limits.max_body_bytes)?;
    let req: ProfileRequest = match bytes.trim_ascii() {
        b"" | b"null" => ProfileRequest::default(),
        _ => body::json(&bytes)?,
    };
    if let Some(n) = &req.display_name {
        if n.trim().is_empty() || n.len() > MAX_DISPLAY_NAME_LEN {
            return Err(ApiError::BadJson(format!(
                "display_name: must be 1 to {MAX_DISPLAY_NAME_LEN} bytes, not blank"
            )));
        }
    }
    if let Some(a) = &req.avatar_url {
        if a.validate().is_err() {
            return Err(ApiError::BadJson(
                "avatar_url: must be an mxc://server/media-id URI".into(),
            ));
        }
    }
    require_homeserver(&app)?;
    let profile = SetProfile {
        display_name: req.display_name,
        avatar_url: req.avatar_url,
    };
    let state = app.ask(&slug, profile).await??;
    Ok(HttpResponse::Ok().json(AgentProfile {
        user_id: state.user_id,
        display_name: state.display_name,
        avatar_url: state.avatar_url,
        registered: state.registered,
    }))
}

/// An agent's profile after a change.
#[derive(Serialize, ToSchema)]
pub(crate) struct AgentProfile {
    #[schema(value_type = crate::matrix::schema::UserId)]
    user_id: OwnedUserId,
    display_name: Option<String>,
    avatar_url: Option<String>,
    registered: bool,
}

/// An agent's state, and how many items its inbox retains.
#[derive(Serialize, ToSchema)]
pub(crate) struct AgentView {
    #[serde(flatten)]
    state: AgentState,
    /// Items retained in the agent's inbox (`inbox.retention_count` and
    /// `inbox.retention_age_s` bound it), read or not.
    inbox_depth: u64,
}

#[utoipa::path(
    get,
    path = "/bridge/v1/agents/{agent}",
    tag = "agents",
    params(("agent" = AgentSlug, Path, description = "The agent")),
    responses(
        (status = 200, description = "The agent's state", body = AgentView),
        (status = 404, description = "No such agent", body = ErrorAnswer),
    ),
)]
pub async fn get_agent(
    app: web::Data<AppState>,
    AgentGrant { slug, .. }: AgentGrant<ReadScope>,
) -> Result<HttpResponse, ApiError> {
    let agent = app
        .known_agent(&slug)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("unknown agent {slug}")))?;
    let state = agent.send(GetState).await?;
    let inbox_depth = app.store.inbox_depths(&[slug]).await?[0];
    Ok(HttpResponse::Ok().json(AgentView { state, inbox_depth }))
}

#[utoipa::path(
    delete,
    path = "/bridge/v1/agents/{agent}",
    tag = "agents",
    params(("agent" = AgentSlug, Path, description = "The agent")),
    responses(
        (status = 200, description = "Deleted: it left every room; its inbox, profile and keys are gone; its Matrix user stays (homeserver users are never removed)", body = Empty),
        (status = 404, description = "No such agent", body = ErrorAnswer),
        (status = 502, description = "The homeserver refused a leave (nothing deleted; try again)", body = ErrorAnswer),
    ),
)]
pub async fn delete_agent(
    app: web::Data<AppState>,
    AgentGrant { slug, .. }: AgentGrant<ProfileScope>,
) -> Result<HttpResponse, ApiError> {
    let agent = app
        .known_agent(&slug)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("unknown agent {slug}")))?;
    require_homeserver(&app)?;
    for room in app.directory.rooms_of(&slug) {
        let leave = ActInRoom {
            room,
            act: RoomAct::Leave {
                reason: Some("agent deleted".into()),
            },
            client_txn: None,
            joining: Joining::ByItself,
            allow_unencrypted: false,
        };
        match agent.send(leave).await? {
            Ok(_) => {}
            // Already out of the room (the directory had not heard yet).
            Err(AgentError::Homeserver(e)) if matches!(e.status(), Some(403 | 404)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let _ = agent.send(Retire).await;
    app.writer.write(WriteOp::DeleteAgent(slug.clone())).await?;
    tracing::info!(agent = %slug, "agent deleted");
    Ok(HttpResponse::Ok().json(Empty {}))
}

/// Default and largest page of `GET /bridge/v1/agents`.
const DEFAULT_PAGE: u32 = 1000;
const MAX_PAGE: u32 = 10_000;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// The `next` of the previous page.
    #[param(value_type = Option<AgentSlug>)]
    after: Option<String>,
    /// The page's size, 1 to 10,000 (default 1,000).
    #[param(minimum = 1, maximum = 10_000)]
    limit: Option<u32>,
    /// Only agents whose slug starts with this (a search: index range scans within the
    /// token's agents, however many there are).
    #[param(value_type = Option<AgentSlug>)]
    prefix: Option<String>,
}

/// A page of agents.
#[derive(Serialize, ToSchema)]
pub(crate) struct AgentList {
    agents: Vec<AgentView>,
    /// The `after` of the next page; absent on the last one.
    next: Option<String>,
}

/// Every hosted agent the caller acts for (whose slug starts with `prefix`, when given), in
/// slug order, a page at a time (`after`, `limit`; `next` names the `after` of the
/// following page): live agents with their actor state, others from the store, each with
/// its inbox depth (one store query per page).
#[utoipa::path(
    get,
    path = "/bridge/v1/agents",
    tag = "agents",
    params(ListQuery),
    responses((status = 200, description = "A page of agents", body = AgentList)),
)]
pub async fn list_agents(
    app: web::Data<AppState>,
    grant: Grant<ReadScope>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let after = query.after.as_deref().map(slug_param).transpose()?;
    let limit = match query.limit {
        None => DEFAULT_PAGE,
        Some(n @ 1..=MAX_PAGE) => n,
        Some(_) => {
            return Err(ApiError::InvalidParam(format!(
                "limit: must be from 1 to {MAX_PAGE}"
            )))
        }
    };
    let prefix = query.prefix.as_deref().map(prefix_param).transpose()?;
    let within = Within {
        patterns: grant.patterns(),
        prefix: prefix.as_ref(),
    };
    let records = agents_within(&app, within, after.as_ref(), limit).await?;
    let next = (records.len() == limit as usize)
        .then(|| records.last().map(|r| r.slug.to_string()))
        .flatten();
    let slugs: Vec<AgentSlug> = records.iter().map(|r| r.slug.clone()).collect();
    let depths = app.store.inbox_depths(&slugs).await?;
    let mut agents = Vec::with_capacity(records.len());
    for (r, inbox_depth) in records.into_iter().zip(depths) {
        let state = match app.agents.get(&r.slug) {
            Some(addr) => addr.send(GetState).await?,
            None => AgentState {
                user_id: app.ns.agent_user_id(&r.slug),
                joined_rooms: app.directory.rooms_of(&r.slug),
                encrypted_rooms: app.directory.encrypted_rooms_of(&r.slug),
                agent: r.slug,
                registered: r.registered,
                display_name: r.display_name,
                avatar_url: r.avatar_url,
                typing_rooms: Vec::new(),
                queued_messages: 0,
                live: false,
            },
        };
        agents.push(AgentView { state, inbox_depth });
    }
    Ok(HttpResponse::Ok().json(AgentList { agents, next }))
}

/// `prefix`: a slug's start (a whole slug included), as the range of slugs it starts.
fn prefix_param(raw: &str) -> Result<SlugRange, ApiError> {
    AgentSlug::parse(raw).map_err(|e| ApiError::InvalidParam(format!("prefix: {e}")))?;
    Ok(AgentPattern::Prefix(raw.into()).range())
}

/// Which agents a listing covers: the token's, narrowed to a prefix's when searching.
#[derive(Clone, Copy)]
struct Within<'a> {
    patterns: &'a [AgentPattern],
    prefix: Option<&'a SlugRange>,
}

/// The first `limit` stored agents after `after` that one of the patterns covers (and the
/// prefix, if any): a page of each pattern's range (narrowed to the prefix's) in slug
/// order (index range scans), merged.
async fn agents_within(
    app: &AppState,
    within: Within<'_>,
    after: Option<&AgentSlug>,
    limit: u32,
) -> Result<Vec<AgentRecord>, ApiError> {
    let patterns = match within.patterns.iter().find(|p| **p == AgentPattern::Any) {
        Some(any) => std::slice::from_ref(any),
        None => within.patterns,
    };
    let mut records = Vec::new();
    for pattern in patterns {
        let range = match within.prefix {
            None => pattern.range(),
            Some(prefix) => match pattern.range().intersect(prefix) {
                Some(range) => range,
                None => continue,
            },
        };
        records.extend(app.store.agents(after, &range, limit).await?);
    }
    records.sort_by(|a, b| a.slug.cmp(&b.slug));
    records.dedup_by(|a, b| a.slug == b.slug);
    records.truncate(limit as usize);
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_slug_starts() {
        let range = prefix_param("plan").unwrap();
        assert_eq!(range, AgentPattern::Prefix("plan".into()).range());
        assert!(prefix_param(&"a".repeat(64)).is_ok(), "a whole slug");
        for bad in ["", "-x", "Plan", "pl an", "pl*", &"a".repeat(65)] {
            let err = prefix_param(bad).unwrap_err().to_string();
            assert!(err.starts_with("prefix: "), "{bad:?}: {err}");
        }
    }
}
