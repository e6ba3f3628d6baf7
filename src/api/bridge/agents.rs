//! `PUT /bridge/v1/agents/{agent}`, `GET /bridge/v1/agents/{agent}`, `GET /bridge/v1/agents`:
//! agent profiles and the state their actors own (SPEC "Bridge API").

use actix_web::{web, HttpResponse};
use ruma::OwnedMxcUri;
use serde::Deserialize;
use serde_json::json;

use super::{require_homeserver, slug_param};
use crate::{
    actors::{
        agent::{GetState, SetProfile},
        AppState,
    },
    api::{body, error::ApiError},
};
use crate::{
    api::grant::{AgentGrant, Grant, ProfileScope, ReadScope},
    ids::AgentSlug,
    store::AgentRecord,
    tokens::pattern::AgentPattern,
};

/// Longest display name.
const MAX_DISPLAY_NAME_LEN: usize = 256;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ProfileRequest {
    display_name: Option<String>,
    avatar_url: Option<OwnedMxcUri>,
}

pub async fn put_agent(
    app: web::Data<AppState>,
    AgentGrant { slug, .. }: AgentGrant<ProfileScope>,
    payload: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let bytes = body::payload(payload, app.config.limits.max_body_bytes)?;
    let req: ProfileRequest = if bytes.iter().all(u8::is_ascii_whitespace) {
        ProfileRequest::default()
    } else {
        body::json(&bytes)?
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
    Ok(HttpResponse::Ok().json(json!({
        "user_id": state.user_id,
        "display_name": state.display_name,
        "avatar_url": state.avatar_url,
        "registered": state.registered,
    })))
}

pub async fn get_agent(
    app: web::Data<AppState>,
    AgentGrant { slug, .. }: AgentGrant<ReadScope>,
) -> Result<HttpResponse, ApiError> {
    let agent = app
        .known_agent(&slug)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("unknown agent {slug}")))?;
    Ok(HttpResponse::Ok().json(agent.send(GetState).await?))
}

/// Default and largest page of `GET /bridge/v1/agents`.
const DEFAULT_PAGE: u32 = 1000;
const MAX_PAGE: u32 = 10_000;

#[derive(Deserialize)]
pub struct ListQuery {
    after: Option<String>,
    limit: Option<u32>,
}

/// Every hosted agent the caller acts for, in slug order, a page at a time (`after`,
/// `limit`; `next` names the `after` of the following page): live agents with their actor
/// state, others from the store.
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
    let records = agents_within(&app, grant.patterns(), after.as_ref(), limit).await?;
    let next = (records.len() == limit as usize)
        .then(|| records.last().map(|r| r.slug.to_string()))
        .flatten();
    let mut agents = Vec::with_capacity(records.len());
    for r in records {
        let entry = match app.agents.get(&r.slug) {
            Some(addr) => {
                serde_json::to_value(addr.send(GetState).await?).expect("agent state serialises")
            }
            None => json!({
                "agent": r.slug,
                "user_id": app.ns.agent_user_id(&r.slug),
                "registered": r.registered,
                "display_name": r.display_name,
                "avatar_url": r.avatar_url,
                "live": false,
            }),
        };
        agents.push(entry);
    }
    Ok(HttpResponse::Ok().json(json!({ "agents": agents, "next": next })))
}

/// The first `limit` stored agents after `after` that one of `patterns` covers: a page of
/// each pattern's range in slug order (index range scans), merged.
async fn agents_within(
    app: &AppState,
    patterns: &[AgentPattern],
    after: Option<&AgentSlug>,
    limit: u32,
) -> Result<Vec<AgentRecord>, ApiError> {
    let patterns = match patterns.iter().find(|p| **p == AgentPattern::Any) {
        Some(any) => std::slice::from_ref(any),
        None => patterns,
    };
    let mut records = Vec::new();
    for pattern in patterns {
        records.extend(app.store.agents(after, &pattern.range(), limit).await?);
    }
    records.sort_by(|a, b| a.slug.cmp(&b.slug));
    records.dedup_by(|a, b| a.slug == b.slug);
    records.truncate(limit as usize);
    Ok(records)
}
