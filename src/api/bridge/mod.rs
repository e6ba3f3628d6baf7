//! The bridge API (`/bridge/v1/...`) used by agent processes and coordinators. The bridge
//! token middleware has already authenticated the caller; each handler takes a grant of the
//! scope it needs ([`super::grant`]), validates its input, then talks to the agent's actor
//! (directly, through the registry), the supervisor or the token table.

pub mod activity;
pub mod acts;
pub mod agents;
pub mod custom;
pub mod events;
pub mod media;
pub mod messages;
pub mod provision;
pub mod rooms;
pub mod tokens;
pub mod typing;

use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiError;
use crate::{actors::AppState, ids::AgentSlug};

/// Refuses early while the homeserver is known to be unreachable.
fn require_homeserver(app: &AppState) -> Result<(), ApiError> {
    if app.hs.is_reachable() {
        Ok(())
    } else {
        Err(ApiError::Unavailable {
            error: "homeserver is unreachable".into(),
            retry_after: Some(Duration::from_secs(5)),
        })
    }
}

/// Parses the `{agent}` path segment.
pub(super) fn slug_param(raw: &str) -> Result<AgentSlug, ApiError> {
    AgentSlug::parse(raw).map_err(|e| ApiError::InvalidParam(format!("agent: {e}")))
}

/// The answer of a request that has nothing to tell but its success: `{}`.
#[derive(Serialize, ToSchema)]
pub struct Empty {}
