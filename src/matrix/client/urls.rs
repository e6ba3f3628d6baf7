//! Where the client's calls go: Client-Server API URLs, with the masqueraded user and other
//! query parameters, and the media API beside it.

use http::Uri;
use ruma::UserId;

use super::{
    super::wire::{client_url, client_url_with},
    HomeserverClient,
};

impl HomeserverClient {
    /// Builds `<base>/_matrix/client/<segments...>[?user_id=<user>]`.
    pub(in crate::matrix) fn url(&self, segments: &[&str], user: Option<&UserId>) -> Uri {
        client_url(&self.inner.prefix, segments, user)
    }

    /// The homeserver's base URL (what ruma builds request URLs on).
    pub(in crate::matrix) fn base_url(&self) -> &str {
        self.inner
            .prefix
            .strip_suffix("/_matrix/client")
            .unwrap_or(&self.inner.prefix)
    }

    /// A `/_matrix/media/...` URL (the client prefix's sibling).
    pub(in crate::matrix) fn media_url(
        &self,
        segments: &[&str],
        user: Option<&UserId>,
        query: &[(&str, &str)],
    ) -> Uri {
        let media = self
            .inner
            .prefix
            .replacen("/_matrix/client", "/_matrix/media", 1);
        client_url_with(&media, segments, user, query)
    }

    /// [`url`](Self::url) with more query parameters.
    pub(in crate::matrix) fn url_with(
        &self,
        segments: &[&str],
        user: Option<&UserId>,
        query: &[(&str, &str)],
    ) -> Uri {
        client_url_with(&self.inner.prefix, segments, user, query)
    }
}
