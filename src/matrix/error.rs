//! Errors of calls to the homeserver (the "homeserver" layer).

use std::time::Duration;

/// A homeserver call that did not succeed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HomeserverError {
    /// The homeserver answered with an error status and (usually) a Matrix error body.
    #[error("homeserver answered {status} {errcode}: {error}")]
    Status {
        /// HTTP status of the answer.
        status: u16,
        /// The Matrix `errcode` (`M_UNKNOWN` when the body had none).
        errcode: String,
        /// The Matrix `error` text.
        error: String,
        /// Retry hint for 429 answers.
        retry_after: Option<Duration>,
    },
    /// The homeserver could not be reached (connection refused or reset, timeout) before
    /// the call's deadline.
    #[error("homeserver unreachable: {0}")]
    Unreachable(String),
    /// The homeserver answered 2xx with a body that could not be understood.
    #[error("unexpected homeserver answer: {0}")]
    BadResponse(String),
}

impl HomeserverError {
    /// The Matrix errcode of a status error.
    pub fn errcode(&self) -> Option<&str> {
        match self {
            Self::Status { errcode, .. } => Some(errcode),
            _ => None,
        }
    }

    /// HTTP status of a status error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the call may succeed if tried again (429, 5xx, unreachable).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Status { status, .. } => *status == 429 || *status >= 500,
            Self::Unreachable(_) => true,
            Self::BadResponse(_) => false,
        }
    }
}
