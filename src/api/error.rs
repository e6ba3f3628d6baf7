//! The API error type and the one place where errors become HTTP answers
//! (`{"errcode", "error"}` bodies, plus `homeserver_status` and `Retry-After` where useful).

use std::time::Duration;

use actix_web::{http::StatusCode, HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    access::{Denied, IssueError, Refusal},
    actors::{error::AgentError, supervisor::provision::ProvisionError},
    inbox::InboxError,
    matrix::HomeserverError,
    store::StoreError,
};

/// Every error answer: a Matrix error code and a message, plus the homeserver's status when
/// the homeserver refused, and how long to wait when waiting helps (also in `Retry-After`).
#[derive(Serialize, ToSchema)]
pub struct ErrorAnswer<'a> {
    #[schema(examples("M_BAD_JSON"))]
    errcode: &'a str,
    #[schema(examples("body: must not be empty"))]
    error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    homeserver_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_ms: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No credentials (homeserver-facing routes).
    #[error("missing access token")]
    Unauthorized,
    /// Wrong credentials.
    #[error("{0}")]
    Forbidden(&'static str),
    /// A valid token without the scope or agent a request needs (the message names the
    /// scope).
    #[error(transparent)]
    Denied(#[from] Denied),
    /// The named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// No such route.
    #[error("unrecognized request")]
    Unrecognized,
    /// Known route, wrong method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The body is not JSON.
    #[error("{0}")]
    NotJson(String),
    /// The body is JSON of the wrong shape (the message names the field).
    #[error("{0}")]
    BadJson(String),
    /// A path or query parameter is invalid (the message names it).
    #[error("{0}")]
    InvalidParam(String),
    /// The body exceeds the configured limit.
    #[error("request body exceeds {0} bytes")]
    TooLarge(usize),
    /// A room alias is taken.
    #[error("{0}")]
    RoomInUse(String),
    /// A client idempotency key names another request (`M_IDEMPOTENCY_CONFLICT`).
    #[error("{0}")]
    IdempotencyConflict(String),
    /// A plain send into an encrypted room (`M_ENCRYPTED_ROOM`).
    #[error("{0}")]
    EncryptedRoom(String),
    /// A configured bound would be passed (`limits.max_agents`).
    #[error("{0}")]
    ResourceLimit(String),
    /// Too many requests (queue full, stream limit, profile rate limit).
    #[error("{error}")]
    RateLimited {
        error: String,
        retry_after: Duration,
    },
    /// The homeserver answered with an error.
    #[error(transparent)]
    Homeserver(HomeserverError),
    /// The homeserver refused a read as the agent (403: the agent may not see the room;
    /// 404: no such room or event): passed on with the homeserver's status, since it is the
    /// answer to the caller's question rather than a failure.
    #[error(transparent)]
    ReadRefused(HomeserverError),
    /// A dependency is unavailable (homeserver unreachable, shutting down).
    #[error("{error}")]
    Unavailable {
        error: String,
        retry_after: Option<Duration>,
    },
    /// Anything else; details are logged, not returned.
    #[error("internal error")]
    Internal,
}

impl ApiError {
    fn errcode(&self) -> &str {
        match self {
            Self::Unauthorized => "M_UNAUTHORIZED",
            Self::Forbidden(_) | Self::Denied(_) => "M_FORBIDDEN",
            Self::NotFound(_) => "M_NOT_FOUND",
            Self::Unrecognized | Self::MethodNotAllowed => "M_UNRECOGNIZED",
            Self::NotJson(_) => "M_NOT_JSON",
            Self::BadJson(_) => "M_BAD_JSON",
            Self::InvalidParam(_) => "M_INVALID_PARAM",
            Self::TooLarge(_) => "M_TOO_LARGE",
            Self::RoomInUse(_) => "M_ROOM_IN_USE",
            Self::IdempotencyConflict(_) => "M_IDEMPOTENCY_CONFLICT",
            Self::EncryptedRoom(_) => "M_ENCRYPTED_ROOM",
            Self::ResourceLimit(_) => "M_RESOURCE_LIMIT_EXCEEDED",
            Self::RateLimited { .. } => "M_LIMIT_EXCEEDED",
            Self::Homeserver(HomeserverError::Status { errcode, .. })
            | Self::ReadRefused(HomeserverError::Status { errcode, .. }) => errcode,
            Self::Homeserver(_) | Self::ReadRefused(_) | Self::Unavailable { .. } => {
                "M_UNAVAILABLE"
            }
            Self::Internal => "M_UNKNOWN",
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => Some(*retry_after),
            Self::Unavailable { retry_after, .. } => *retry_after,
            Self::Homeserver(HomeserverError::Unreachable(_)) => Some(Duration::from_secs(5)),
            Self::Homeserver(HomeserverError::Status {
                status,
                retry_after,
                ..
            }) if *status == 429 || *status >= 500 => {
                Some(retry_after.unwrap_or(Duration::from_secs(1)))
            }
            _ => None,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::Denied(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) | Self::Unrecognized => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotJson(_) | Self::BadJson(_) | Self::InvalidParam(_) => StatusCode::BAD_REQUEST,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RoomInUse(_) | Self::IdempotencyConflict(_) | Self::EncryptedRoom(_) => {
                StatusCode::CONFLICT
            }
            Self::ResourceLimit(_) => StatusCode::FORBIDDEN,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Homeserver(HomeserverError::Unreachable(_)) | Self::Unavailable { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::ReadRefused(HomeserverError::Status { status, .. }) => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY)
            }
            Self::Homeserver(_) | Self::ReadRefused(_) => StatusCode::BAD_GATEWAY,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut body = ErrorAnswer {
            errcode: self.errcode(),
            error: self.to_string(),
            homeserver_status: None,
            retry_after_ms: None,
        };
        if let Self::Homeserver(HomeserverError::Status { status, error, .. })
        | Self::ReadRefused(HomeserverError::Status { status, error, .. }) = self
        {
            body.homeserver_status = Some(*status);
            body.error.clone_from(error);
        }
        let status = self.status_code();
        let mut resp = HttpResponse::build(status);
        if let Some(wait) = self.retry_after() {
            body.retry_after_ms = Some(wait.as_millis() as u64);
            resp.insert_header(("Retry-After", wait.as_secs().max(1).to_string()));
        }
        if status.is_server_error() {
            // For the console's live view (the request context reads it); rare.
            resp.extensions_mut()
                .insert(ServerErrcode(self.errcode().into()));
        }
        resp.json(body)
    }
}

/// The errcode of an answer of 500 or above, kept with the answer for the live view of
/// errors (its body is bytes by then).
pub struct ServerErrcode(pub Box<str>);

impl ApiError {
    /// A failed read as an agent: the homeserver's 403 and 404 are passed on, anything
    /// else is a failure of the homeserver (502/503).
    pub fn from_read(e: HomeserverError) -> Self {
        match e.status() {
            Some(403 | 404) => Self::ReadRefused(e),
            _ => Self::Homeserver(e),
        }
    }
}

impl From<AgentError> for ApiError {
    fn from(e: AgentError) -> Self {
        match e {
            AgentError::Homeserver(h) => ApiError::Homeserver(h),
            AgentError::Store(s) => s.into(),
            AgentError::QueueFull { retry_after } => ApiError::RateLimited {
                error: "the agent's send queue is full".into(),
                retry_after,
            },
            AgentError::RateLimited { retry_after } => ApiError::RateLimited {
                error: "profile changes are rate-limited for this agent".into(),
                retry_after,
            },
            AgentError::Stopped => ApiError::Unavailable {
                error: "agent is shutting down".into(),
                retry_after: Some(Duration::from_secs(1)),
            },
            e @ AgentError::LeaseLost => ApiError::Unavailable {
                error: e.to_string(),
                retry_after: Some(Duration::from_secs(1)),
            },
            AgentError::Unknown(slug) => ApiError::NotFound(format!("unknown agent {slug}")),
            e @ AgentError::LimitReached { .. } => ApiError::ResourceLimit(e.to_string()),
            e @ AgentError::IdempotencyConflict(_) => ApiError::IdempotencyConflict(e.to_string()),
            e @ AgentError::EncryptedRoom(_) => ApiError::EncryptedRoom(e.to_string()),
            e @ AgentError::EncryptionOff => ApiError::EncryptedRoom(e.to_string()),
            e @ AgentError::Encryption(_) => ApiError::Unavailable {
                error: e.to_string(),
                retry_after: Some(Duration::from_secs(1)),
            },
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Disabled => Self::Forbidden("the bridge API is disabled"),
            Refusal::Missing => Self::Forbidden("missing bridge token"),
            Refusal::Unknown => Self::Forbidden("invalid bridge token"),
            Refusal::Expired => Self::Forbidden("this bridge token has expired"),
            Refusal::Throttled(retry_after) => Self::RateLimited {
                error: "too many requests with this token".into(),
                retry_after,
            },
        }
    }
}

impl From<IssueError> for ApiError {
    fn from(e: IssueError) -> Self {
        match e {
            IssueError::Invalid(m) => Self::BadJson(m),
            IssueError::Store(s) => s.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        ApiError::Internal
    }
}

impl From<InboxError> for ApiError {
    fn from(e: InboxError) -> Self {
        match e {
            InboxError::UnknownAgent(slug) => Self::NotFound(format!("unknown agent {slug}")),
            InboxError::TooManyStreams(max) => Self::RateLimited {
                error: format!("at most {max} concurrent event streams per agent"),
                retry_after: Duration::from_secs(1),
            },
            InboxError::Store(e) => e.into(),
        }
    }
}

impl From<ProvisionError> for ApiError {
    fn from(e: ProvisionError) -> Self {
        match e {
            ProvisionError::AliasInUse(alias) => {
                ApiError::RoomInUse(format!("room alias {alias} is already in use"))
            }
            e @ ProvisionError::IdempotencyConflict(_) => {
                ApiError::IdempotencyConflict(e.to_string())
            }
            ProvisionError::Homeserver(h) => ApiError::Homeserver(h),
            ProvisionError::Agent(a) => a.into(),
            ProvisionError::Store(s) => s.into(),
        }
    }
}

impl From<actix::MailboxError> for ApiError {
    fn from(_: actix::MailboxError) -> Self {
        ApiError::Unavailable {
            error: "shutting down".into(),
            retry_after: Some(Duration::from_secs(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

    async fn body_of(e: ApiError) -> (u16, serde_json::Value) {
        let resp = e.error_response();
        let status = resp.status().as_u16();
        let bytes = to_bytes(resp.into_body()).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[actix_rt::test]
    async fn homeserver_errors_pass_through() {
        let (status, body) = body_of(ApiError::Homeserver(HomeserverError::Status {
            status: 403,
            errcode: "M_FORBIDDEN".into(),
            error: "not in room".into(),
            retry_after: None,
        }))
        .await;
        assert_eq!(status, 502);
        assert_eq!(body["errcode"], "M_FORBIDDEN");
        assert_eq!(body["homeserver_status"], 403);
        let (status, body) = body_of(ApiError::Homeserver(HomeserverError::Unreachable(
            "refused".into(),
        )))
        .await;
        assert_eq!(status, 503);
        assert_eq!(body["errcode"], "M_UNAVAILABLE");
    }
}
