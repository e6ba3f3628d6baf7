//! Errors of the agent layer (what an agent actor can fail with).

use std::time::Duration;

use crate::{ids::AgentSlug, matrix::HomeserverError, store::StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A homeserver call failed.
    #[error(transparent)]
    Homeserver(#[from] HomeserverError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The agent's send queue is full; try again after the hint.
    #[error("agent queue is full")]
    QueueFull { retry_after: Duration },
    /// Profile changes come too fast for this agent.
    #[error("profile changes are rate-limited for this agent")]
    RateLimited { retry_after: Duration },
    /// The agent's actor stopped before answering (shutdown).
    #[error("agent actor stopped")]
    Stopped,
    /// The request needs an agent that does not exist, and may not create one.
    #[error("unknown agent {0}")]
    Unknown(AgentSlug),
    /// A client idempotency key already named another request in this room.
    #[error("txn_id {0:?} was already used for a different request in this room")]
    IdempotencyConflict(String),
    /// A message or reaction into an encrypted room with end-to-end encryption off,
    /// without `allow_unencrypted`.
    #[error("room {0} is encrypted and end-to-end encryption is off ([e2ee] enabled = false), so this would go out in the clear; send with \"allow_unencrypted\": true to do so anyway")]
    EncryptedRoom(ruma::OwnedRoomId),
    /// This replica's lease is not current: it may not act for agents (another replica
    /// may be taking them over).
    #[error("this replica cannot act for agents now (its lease is not current)")]
    LeaseLost,
    /// The agent's encryption failed (its crypto machine could not be opened, or a message
    /// could not be encrypted).
    #[error("end-to-end encryption failed: {0}")]
    Encryption(String),
    /// End-to-end encryption is needed but not on (`[e2ee] enabled`).
    #[error("end-to-end encryption is off ([e2ee] enabled = false)")]
    EncryptionOff,
    /// Creating the agent would pass `limits.max_agents`.
    #[error("at most {max} agents are hosted (limits.max_agents)")]
    LimitReached { max: usize },
}

impl From<crate::e2ee::E2eeError> for AgentError {
    /// A homeserver or store failure stays one (the caller's answer says so); the rest is
    /// the encryption's own.
    fn from(e: crate::e2ee::E2eeError) -> Self {
        use crate::e2ee::E2eeError;
        match e {
            E2eeError::Homeserver(h) => AgentError::Homeserver(h),
            E2eeError::Store(s) => AgentError::Store(s),
            other => AgentError::Encryption(other.to_string()),
        }
    }
}

impl From<actix::MailboxError> for AgentError {
    fn from(_: actix::MailboxError) -> Self {
        AgentError::Stopped
    }
}

pub type AgentResult<T> = Result<T, AgentError>;
