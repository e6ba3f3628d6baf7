//! `POST /bridge/v1/provision/rooms`: create a room as the AS sender, optionally linked
//! into a space (SPEC "Bridge API", "Provisioning").

use actix_web::{web, HttpResponse};
use ruma::{OwnedRoomId, OwnedUserId};
use serde::Deserialize;

use super::require_homeserver;
use crate::{
    actors::{
        supervisor::{provision::ProvisionRequest, ProvisionRoom},
        AppState,
    },
    api::{
        body,
        error::ApiError,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProvisionBody {
    name: String,
    alias: Option<String>,
    topic: Option<String>,
    #[serde(default)]
    invite: Vec<String>,
    space_id: Option<OwnedRoomId>,
    #[serde(default)]
    agents: Vec<AgentSlug>,
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
        match OwnedUserId::try_from(u.as_str()) {
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
