//! Room provisioning: create a room as the AS sender (preset `private_chat`, alias in the
//! registration's namespace, full power for the sender handled per room version), join the
//! requested agents, and link it into a space both ways. A failed link never hides the room.

use std::sync::Arc;

use ruma::{OwnedRoomAliasId, OwnedRoomId, OwnedUserId};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::provision_key::Keyed;
use crate::actors::{
    agent::{EnsureRegistered, JoinRoom, Joining},
    error::AgentError,
    AppState,
};
use crate::{
    ids::AgentSlug,
    matrix::{retry::Retries, HomeserverError},
    store::{RoomRecord, StoreError},
};

/// A validated provisioning request.
#[derive(Debug, Clone)]
pub struct ProvisionRequest {
    pub name: String,
    /// Requested alias name (without `#` and server); the prefix is added when missing.
    pub alias: Option<String>,
    pub topic: Option<String>,
    pub invite: Vec<OwnedUserId>,
    pub space_id: Option<OwnedRoomId>,
    pub agents: Vec<AgentSlug>,
    /// The client's idempotency key: the same key never makes two rooms.
    pub txn_id: Option<String>,
}

/// The answer of a provisioning.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Provisioned {
    #[schema(value_type = crate::matrix::schema::RoomId)]
    pub room_id: OwnedRoomId,
    /// Whether the room was added to the requested space.
    pub space_linked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::matrix::schema::RoomAlias>)]
    pub alias: Option<OwnedRoomAliasId>,
    /// Why linking into the space failed (the room exists regardless).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub space_error: Option<String>,
    /// Agents that could not join, with the reason.
    #[serde(skip_serializing_if = "Map::is_empty", default)]
    #[schema(value_type = Object)]
    pub agent_errors: Map<String, Value>,
}

/// Errors of a provisioning that created no room.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The alias is taken.
    #[error("room alias {0} is already in use")]
    AliasInUse(OwnedRoomAliasId),
    /// The client's key already named another provisioning request.
    #[error("txn_id {0:?} was already used for a different provisioning request")]
    IdempotencyConflict(String),
    /// `createRoom` (or the room version lookup) failed.
    #[error(transparent)]
    Homeserver(#[from] HomeserverError),
    /// An agent to join could not be prepared.
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<actix::MailboxError> for ProvisionError {
    fn from(e: actix::MailboxError) -> Self {
        ProvisionError::Agent(e.into())
    }
}

/// Whether a room version gives the creator unlimited power (so it must not be listed in
/// `m.room.power_levels`): versions 12 and later, and the hydra test versions.
pub fn creator_has_unlimited_power(version: &str) -> bool {
    match version.parse::<u32>() {
        Ok(n) => n >= 12,
        Err(_) => version.contains("hydra"),
    }
}

pub async fn provision(
    app: Arc<AppState>,
    req: ProvisionRequest,
) -> Result<Provisioned, ProvisionError> {
    let app = &app;
    let keyed = req.txn_id.as_deref().map(|k| Keyed::new(k, &req));
    if let Some(keyed) = &keyed {
        if let Some(answer) = keyed.recorded(app).await? {
            return Ok(answer);
        }
    }
    let sender = app.ns.sender().clone();
    let version = app.hs.default_room_version(&sender).await?;

    let mut agent_users = Vec::with_capacity(req.agents.len());
    for slug in &req.agents {
        app.ask(slug, EnsureRegistered).await??;
        agent_users.push(app.ns.agent_user_id(slug));
    }
    let mut invite: Vec<OwnedUserId> = req.invite.clone();
    for u in &agent_users {
        if !invite.contains(u) {
            invite.push(u.clone());
        }
    }
    let alias = req.alias.as_deref().map(|a| app.ns.alias_for(a));
    // A keyed room always claims an alias: only one room can have it, so a repeated
    // createRoom cannot make a second room.
    let claimed = alias
        .clone()
        .or_else(|| keyed.as_ref().map(|k| app.ns.alias_for(&k.alias_name())));

    let mut body = json!({
        "name": req.name,
        "preset": "private_chat",
        "invite": invite,
    });
    if let Some(topic) = &req.topic {
        body["topic"] = json!(topic);
    }
    if let Some((local, _)) = &claimed {
        body["room_alias_name"] = json!(local);
    }
    if let Some(keyed) = &keyed {
        body["creation_content"] = keyed.creation_content();
    }
    if !creator_has_unlimited_power(&version) {
        body["power_level_content_override"] = json!({ "users": { sender.as_str(): 100 } });
    }
    // Without a key, a createRoom whose answer was lost (timeout, 5xx) may have made the
    // room: it is not repeated.
    let retries = match keyed {
        Some(_) => Retries::Any,
        None => Retries::RateLimitsOnly,
    };
    let room_id = match app.hs.create_room(&sender, &body, retries).await {
        Ok(id) => id,
        Err(e) if e.errcode() == Some("M_ROOM_IN_USE") => {
            let (_, full) = claimed.expect("only an alias can be in use");
            let earlier = match &keyed {
                Some(keyed) => keyed.adopt(app, &full).await?,
                None => None,
            };
            match earlier {
                Some(room) => room,
                None => return Err(ProvisionError::AliasInUse(full)),
            }
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(room = %room_id, room_version = %version, "room provisioned");

    let mut agent_errors = Map::new();
    for slug in &req.agents {
        let join = JoinRoom {
            room: room_id.clone(),
            joining: Joining::SenderBotInvites,
            via: None,
        };
        let joined = app.ask(slug, join).await.and_then(|r| r);
        if let Err(e) = joined {
            tracing::warn!(agent = %slug, room = %room_id, error = %e, "agent could not join the provisioned room");
            agent_errors.insert(slug.to_string(), json!(e.to_string()));
        }
    }

    let (space_linked, space_error) = match &req.space_id {
        None => (false, None),
        Some(space) => match link_space(app.as_ref(), &room_id, space).await {
            Ok(()) => (true, None),
            Err(e) => {
                tracing::warn!(room = %room_id, space = %space, error = %e, "linking into the space failed");
                (false, Some(e))
            }
        },
    };
    app.writer
        .record_room(RoomRecord {
            room_id: room_id.clone(),
            alias: alias.as_ref().map(|(_, full)| full.clone()),
            space_id: req.space_id.clone().filter(|_| space_linked),
        })
        .await?;
    let answer = Provisioned {
        room_id,
        space_linked,
        alias: alias.map(|(_, full)| full),
        space_error,
        agent_errors,
    };
    if let Some(keyed) = &keyed {
        keyed.record(app, &answer).await?;
    }
    Ok(answer)
}

/// `m.space.parent` in the room and `m.space.child` in the space, `via` the server name.
async fn link_space(app: &AppState, room: &OwnedRoomId, space: &OwnedRoomId) -> Result<(), String> {
    let app = &app;
    let sender = app.ns.sender();
    let via = json!({ "via": [app.ns.server_name()] });
    app.hs
        .send_state(sender, space, "m.space.child", room.as_str(), &via)
        .await
        .map_err(|e| format!("m.space.child in {space}: {}", describe(&e)))?;
    let mut parent = via.clone();
    parent["canonical"] = json!(true);
    app.hs
        .send_state(sender, room, "m.space.parent", space.as_str(), &parent)
        .await
        .map_err(|e| format!("m.space.parent in {room}: {}", describe(&e)))?;
    Ok(())
}

fn describe(e: &HomeserverError) -> String {
    match e {
        HomeserverError::Status {
            status,
            errcode,
            error,
            ..
        } => format!("homeserver status {status} {errcode}: {error}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::creator_has_unlimited_power as unlimited;

    #[test]
    fn room_versions() {
        assert!(!unlimited("10"));
        assert!(!unlimited("11"));
        assert!(unlimited("12"));
        assert!(unlimited("13"));
        assert!(unlimited("org.matrix.hydra.11"));
        assert!(!unlimited("org.matrix.msc2176"));
    }
}
