//! Calls as an agent's own device, for end-to-end encryption: the device's creation
//! (MSC4190: an application service creates its users' devices with `PUT /devices/{id}`,
//! no login), and any ruma request sent as that user and device (MSC3202 masquerading,
//! `?user_id=&device_id=`): the crypto machine's key uploads, queries, claims and
//! to-device messages. ruma builds each request and reads its answer; the call itself
//! goes through [`HomeserverClient::call_body`] like every other (slot, deadline, retries,
//! metrics).

use std::borrow::Cow;

use http::Method;
use ruma::{
    api::{
        auth_scheme::{AccessToken, SendAccessToken},
        path_builder::VersionHistory,
        AppserviceUserIdentity, IncomingResponse, MatrixVersion, OutgoingRequest,
        OutgoingRequestAppserviceExt, SupportedVersions,
    },
    DeviceId, UserId,
};
use serde_json::{json, value::RawValue, Value};

use super::{
    super::{retry::Retries, transport::Body},
    HomeserverClient, HomeserverError,
};

impl HomeserverClient {
    /// Creates `device` for `user` (MSC4190), or finds it there: either way it exists
    /// afterwards. Its display name is what other users' clients show for it.
    pub async fn create_device(
        &self,
        user: &UserId,
        device: &DeviceId,
        display_name: &str,
    ) -> Result<(), HomeserverError> {
        let url = self.url(&["v3", "devices", device.as_str()], Some(user));
        let body = json!({ "display_name": display_name });
        self.call::<Value>(
            "create_device",
            Method::PUT,
            url,
            Some(&body),
            self.deadline(),
        )
        .await
        .map(drop)
    }

    /// Sends `request` as `user`'s `device` and reads the answer with ruma. `endpoint` is
    /// the metrics label.
    pub async fn call_as_device<R>(
        &self,
        endpoint: &'static str,
        user: &UserId,
        device: &DeviceId,
        request: R,
    ) -> Result<R::IncomingResponse, HomeserverError>
    where
        R: OutgoingRequest<Authentication = AccessToken, PathBuilder = VersionHistory>
            + OutgoingRequestAppserviceExt,
    {
        let mut identity = AppserviceUserIdentity::new(user);
        identity.device_id = Some(device);
        // ruma needs a token to build an authenticated request; the transport sets the
        // real header, so the one ruma adds is dropped with the rest of its headers.
        let built = request
            .try_into_http_request_with_identity::<Vec<u8>>(
                self.base_url(),
                SendAccessToken::Always("-"),
                identity,
                Cow::Owned(versions()),
            )
            .map_err(|e| HomeserverError::BadResponse(format!("{endpoint}: {e}")))?;
        let (parts, body) = built.into_parts();
        let body = (!body.is_empty()).then(|| Body::json(body.into()));
        let answer: Box<RawValue> = self
            .call_body(
                endpoint,
                parts.method,
                parts.uri,
                body,
                self.deadline(),
                Retries::Any,
            )
            .await?;
        let response = http::Response::new(answer.get().as_bytes());
        R::IncomingResponse::try_from_http_response(response)
            .map_err(|e| HomeserverError::BadResponse(format!("{endpoint}: {e}")))
    }
}

/// The versions ruma may pick endpoint paths from: the stable `v3` paths of every
/// homeserver this daemon supports.
fn versions() -> SupportedVersions {
    SupportedVersions {
        versions: [MatrixVersion::V1_11].into(),
        features: Default::default(),
    }
}
