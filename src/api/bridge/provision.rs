//! `POST /bridge/v1/provision/rooms`: create a room as the AS sender, optionally linked
//! into a space (SPEC "Bridge API", "Provisioning").

use actix_web::{web, HttpResponse};
use ruma::{OwnedRoomId, OwnedUserId};
use serde::Deserialize;
use utoipa::ToSchema;

use super::require_homeserver;
use crate::{
    actors::{
        supervisor::{
            provision::{ProvisionRequest, Provisioned},
            ProvisionRoom,
        },
        AppState,
    },
    api::{
        body,
        error::{ApiError, ErrorAnswer},
        grant::{Grant, ProvisionScope},
    },
    ids::{AgentSlug, MAX_ALIAS_NAME_LEN},
};

/// Most users invited at creation.
pub const MAX_INVITES: usize = 50;
/// Most agents joined at creation.
const MAX_AGENTS: usize = 50;
/// Longest client idempotency key.
const MAX_TXN_ID_LEN: usize = 255;
/// Longest room name or topic.
const MAX_TEXT_LEN: usize = 1024;

/// A room to create as the appservice's sender bot, optionally linked into a space, with
/// users invited and agents joined.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProvisionBody {
    #[schema(min_length = 1, max_length = 1024)]
    name: String,
    /// The alias's local part (without `#` and server); the configured prefix is added when
    /// missing.
    #[schema(pattern = "^[a-z0-9_.-]{1,200}$")]
    alias: Option<String>,
    #[schema(max_length = 1024)]
    topic: Option<String>,
    /// Users to invite, at most 50.
    #[serde(default)]
    #[schema(value_type = Vec<crate::matrix::schema::UserId>, max_items = 50)]
    invite: Vec<String>,
    /// A space the sender bot administers; the room is added as its child.
    #[serde(default, deserialize_with = "crate::matrix::schema::optional_bounded")]
    #[schema(value_type = Option<crate::matrix::schema::RoomId>)]
    space_id: Option<OwnedRoomId>,
    /// Agents to join, at most 50 (the token must act for each).
    #[serde(default)]
    #[schema(max_items = 50)]
    agents: Vec<AgentSlug>,
    /// The client's idempotency key: a retry answers the room created the first time.
    #[schema(min_length = 1, max_length = 255)]
    txn_id: Option<String>,
}

fn validate(b: ProvisionBody) -> Result<ProvisionRequest, ApiError> {
    let bad = |m: String| Err(ApiError::BadJson(m));
    if b.name.trim().is_empty() {
        return bad("name: must not be empty".into());
    }
    if b.name.len() > MAX_TEXT_LEN {
        return bad(format!("name: longer than {MAX_TEXT_LEN} bytes"));
    }
    if b.topic.as_ref().is_some_and(|t| t.len() > MAX_TEXT_LEN) {
        return bad(format!("topic: longer than {MAX_TEXT_LEN} bytes"));
    }
    if let Some(alias) = &b.alias {
        let charset_ok = alias
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_.-".contains(&c));
        if alias.is_empty() || alias.len() > MAX_ALIAS_NAME_LEN || !charset_ok {
            return bad(format!(
                "alias: must be 1 to {MAX_ALIAS_NAME_LEN} characters of [a-z0-9_.-]"
            ));
        }
    }
    if b.invite.len() > MAX_INVITES {
        return bad(format!("invite: at most {MAX_INVITES} users"));
    }
    let mut invite: Vec<OwnedUserId> = Vec::with_capacity(b.invite.len());
    for (i, u) in b.invite.iter().enumerate() {
        match crate::matrix::schema::parse_bounded::<OwnedUserId>(u) {
            Ok(id) if u.starts_with('@') => invite.push(id),
            _ => return bad(format!("invite[{i}]: {u:?} is not a user id")),
        }
    }
    if b.agents.len() > MAX_AGENTS {
        return bad(format!("agents: at most {MAX_AGENTS}"));
    }
    if b.txn_id
        .as_ref()
        .is_some_and(|t| t.is_empty() || t.len() > MAX_TXN_ID_LEN)
    {
        return bad(format!("txn_id: must be 1 to {MAX_TXN_ID_LEN} characters"));
    }
    Ok(ProvisionRequest {
        name: b.name,
        alias: b.alias,
        topic: b.topic,
        invite,
        space_id: b.space_id,
        agents: b.agents,
        txn_id: b.txn_id,
    })
}

#[utoipa::path(
    post,
    path = "/bridge/v1/provision/rooms",
    tag = "provisioning",
    request_body = ProvisionBody,
    responses(
        (status = 200, description = "The room (created now or by the first request with this `txn_id`)", body = Provisioned),
        (status = 409, description = "The alias is taken (`M_ROOM_IN_USE`), or `txn_id` named another request", body = ErrorAnswer),
        (status = 502, description = "The homeserver refused", body = ErrorAnswer),
    ),
)]
pub async fn provision_room(
    app: web::Data<AppState>,
    grant: Grant<ProvisionScope>,
    payload: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let bytes = body::payload(payload, app.config.limits.max_body_bytes)?;
    let req = validate(body::json(&bytes)?)?;
    // The sender bot joins only agents the caller could have chosen.
    for agent in &req.agents {
        grant.agent(agent)?;
    }
    require_homeserver(&app)?;
    let done = app.supervisor().send(ProvisionRoom(req)).await??;
    Ok(HttpResponse::Ok().json(done))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: serde_json::Value) -> Result<ProvisionRequest, ApiError> {
        validate(serde_json::from_value(v).unwrap())
    }

    #[test]
    fn validation() {
        use serde_json::json;
        assert!(body(json!({"name": "x", "alias": "ok.alias-1_"})).is_ok());
        assert!(
            matches!(body(json!({"name": " "})), Err(ApiError::BadJson(m)) if m.starts_with("name"))
        );
        assert!(
            matches!(body(json!({"name": "x", "alias": "BAD ALIAS"})), Err(ApiError::BadJson(m)) if m.starts_with("alias"))
        );
        assert!(body(json!({"name": "x", "alias": "a".repeat(201)})).is_err());
        let many: Vec<String> = (0..51).map(|i| format!("@u{i}:hs")).collect();
        assert!(
            matches!(body(json!({"name": "x", "invite": many})), Err(ApiError::BadJson(m)) if m.starts_with("invite"))
        );
        assert!(
            matches!(body(json!({"name": "x", "invite": ["bob"]})), Err(ApiError::BadJson(m)) if m.starts_with("invite[0]"))
        );
    }
}
