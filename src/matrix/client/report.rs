//! Failed calls told to the console's live view of errors ([`crate::activity`]).

use http::Uri;

use super::HomeserverClient;
use crate::{activity::ActivityError, matrix::HomeserverError};

impl HomeserverClient {
    /// Tells the live view of a call that failed for good through no fault of its caller
    /// (a refusal, 4xx other than 429, is the caller's answer, not an error of the moment):
    /// the endpoint, the status and errcode, and the agent it was made as.
    pub(super) fn report_failure(&self, endpoint: &'static str, url: &Uri, e: &HomeserverError) {
        let kind = match e {
            HomeserverError::Status { status: 429, .. } => "rate_limited",
            HomeserverError::Status { status, .. } if *status >= 500 => "server_error",
            HomeserverError::Status { .. } => return,
            HomeserverError::Unreachable(_) => "unreachable",
            HomeserverError::BadResponse(_) => "bad_response",
        };
        let mut error = ActivityError::homeserver(endpoint, kind, e.status());
        if let Some(errcode) = e.errcode() {
            error = error.with_errcode(errcode);
        }
        let activity = &self.inner.activity;
        error.agent = url
            .query()
            .and_then(|q| url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "user_id"))
            .and_then(|(_, user)| activity.agent_of(&user));
        activity.report(error);
    }
}
