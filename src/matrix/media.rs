//! Media uploads as an agent: `POST /_matrix/media/v3/upload` with the file's own content
//! type, answered with its `mxc://` URI.

use bytes::Bytes;
use http::{header::HeaderValue, Method};
use ruma::{OwnedMxcUri, UserId};
use serde::Deserialize;

use super::{retry::Retries, transport::Body, HomeserverClient, HomeserverError};

#[derive(Deserialize)]
struct Uploaded {
    content_uri: OwnedMxcUri,
}

impl HomeserverClient {
    /// Uploads `bytes` of `content_type` as `user`, named `filename` when given. Retried
    /// like any call: a repeat after a lost answer stores the file twice, which costs
    /// space only.
    pub async fn upload(
        &self,
        user: &UserId,
        bytes: Bytes,
        content_type: &str,
        filename: Option<&str>,
    ) -> Result<OwnedMxcUri, HomeserverError> {
        let content_type = HeaderValue::from_str(content_type)
            .map_err(|e| HomeserverError::BadResponse(format!("upload content type: {e}")))?;
        let query: Vec<(&str, &str)> = filename.map(|f| ("filename", f)).into_iter().collect();
        let url = self.media_url(&["v3", "upload"], Some(user), &query);
        let body = Body {
            bytes,
            content_type,
        };
        let answer: Uploaded = self
            .call_body(
                "upload",
                Method::POST,
                url,
                Some(body),
                self.deadline(),
                Retries::Any,
            )
            .await?;
        Ok(answer.content_uri)
    }
}
