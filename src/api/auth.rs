//! Authentication, before any body is read: the hs_token on homeserver-facing routes
//! (Bearer header or legacy `access_token` query; 401 when absent, 403 when wrong or when
//! the two disagree; by digest, in constant time), a bridge token on `/bridge` (403 when
//! absent, unknown, revoked or expired, 429 beyond its rate; the [`Principal`] found is left
//! in the request for [`super::grant`] to authorise), and the metrics token on `/metrics`
//! when one is set (bridge tokens never open it). The auth scheme is case-insensitive
//! (`bearer` = `Bearer`).

use std::sync::Arc;

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header::AUTHORIZATION,
    middleware::Next,
    web, Error, HttpMessage, HttpRequest,
};

use super::error::ApiError;
use crate::{access::Principal, actors::AppState, tokens::TokenDigest};

/// The token of an `Authorization: Bearer <token>` header (scheme in any case).
fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn query_token(req: &HttpRequest) -> Option<String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "access_token")
        .map(|(_, v)| v.into_owned())
}

/// Checks the homeserver's credentials.
pub fn check_hs_token(req: &HttpRequest, app: &AppState) -> Result<(), ApiError> {
    let header = bearer(req).map(TokenDigest::of);
    let query = query_token(req).map(|q| TokenDigest::of(&q));
    let presented = match (header, query) {
        (None, None) => return Err(ApiError::Unauthorized),
        (Some(h), Some(q)) if !h.matches(&q) => {
            return Err(ApiError::Forbidden("header and query tokens differ"))
        }
        (Some(t), _) | (None, Some(t)) => t,
    };
    if presented.matches(&app.tokens.hs) {
        Ok(())
    } else {
        Err(ApiError::Forbidden("invalid access token"))
    }
}

/// Authenticates a bridge client: its principal, within its rate.
pub fn authenticate_bridge(req: &HttpRequest, app: &AppState) -> Result<Arc<Principal>, ApiError> {
    Ok(app.access.authenticate(bearer(req))?)
}

/// Checks the metrics token when one is configured (otherwise `/metrics` is open).
pub fn check_metrics_token(req: &HttpRequest, app: &AppState) -> Result<(), ApiError> {
    let Some(secret) = &app.tokens.metrics else {
        return Ok(());
    };
    match bearer(req) {
        Some(t) if TokenDigest::of(t).matches(secret) => Ok(()),
        Some(_) => Err(ApiError::Forbidden("invalid metrics token")),
        None => Err(ApiError::Forbidden("missing metrics token")),
    }
}

fn app_of(req: &ServiceRequest) -> web::Data<AppState> {
    req.app_data::<web::Data<AppState>>()
        .expect("the app state is registered as app data")
        .clone()
}

/// Middleware for homeserver-facing scopes. A refusal is answered here (not returned as an
/// error), so that the request context gives it a request id like any answer.
pub async fn require_hs_token(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    match check_hs_token(req.request(), &app_of(&req)) {
        Ok(()) => Ok(next.call(req).await?.map_into_left_body()),
        Err(e) => Ok(req.error_response(e).map_into_right_body()),
    }
}

/// Middleware for the bridge scope: leaves the caller's [`Principal`] in the request; a
/// refusal is answered here, as in [`require_hs_token`].
pub async fn require_bridge_token(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    match authenticate_bridge(req.request(), &app_of(&req)) {
        Ok(principal) => {
            req.extensions_mut().insert(principal);
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(e) => Ok(req.error_response(e).map_into_right_body()),
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn the_scheme_is_case_insensitive() {
        for header in ["Bearer abc", "bearer abc", "BEARER  abc ", " Bearer abc"] {
            let req = TestRequest::default()
                .insert_header((AUTHORIZATION, header))
                .to_http_request();
            assert_eq!(bearer(&req), Some("abc"), "{header:?}");
        }
        for header in ["Basic abc", "Bearerabc", "abc"] {
            let req = TestRequest::default()
                .insert_header((AUTHORIZATION, header))
                .to_http_request();
            assert_eq!(bearer(&req), None, "{header:?}");
        }
    }
}
