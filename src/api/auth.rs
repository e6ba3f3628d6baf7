//! Token checks, in constant time: the hs_token on homeserver-facing routes (Bearer header
//! or legacy `access_token` query; 401 when absent, 403 when wrong or when the two
//! disagree) and the bridge tokens on `/bridge` (403 when absent or wrong). Both run as
//! middleware, before any body is read.

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header::AUTHORIZATION,
    middleware::Next,
    web, Error, HttpRequest,
};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::actors::AppState;

/// Constant-time equality of a presented token and a secret.
pub fn token_matches(presented: &str, secret: &SecretString) -> bool {
    presented
        .as_bytes()
        .ct_eq(secret.expose_secret().as_bytes())
        .into()
}

/// Whether `presented` is one of `tokens` (every token is compared, no early exit).
pub fn any_token_matches(presented: &str, tokens: &[SecretString]) -> bool {
    tokens
        .iter()
        .fold(false, |found, t| found | token_matches(presented, t))
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

fn query_token(req: &HttpRequest) -> Option<String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "access_token")
        .map(|(_, v)| v.into_owned())
}

/// Checks the homeserver's credentials.
pub fn check_hs_token(req: &HttpRequest, app: &AppState) -> Result<(), ApiError> {
    let secret = &app.config.secrets.hs_token;
    let header = bearer(req);
    let query = query_token(req);
    let presented = match (header, query.as_deref()) {
        (None, None) => return Err(ApiError::Unauthorized),
        (Some(h), Some(q)) if !token_matches(h, &SecretString::from(q.to_owned())) => {
            return Err(ApiError::Forbidden("header and query tokens differ"))
        }
        (Some(h), _) => h,
        (None, Some(q)) => q,
    };
    if token_matches(presented, secret) {
        Ok(())
    } else {
        Err(ApiError::Forbidden("invalid access token"))
    }
}

/// Checks a bridge client's credentials.
pub fn check_bridge_token(req: &HttpRequest, app: &AppState) -> Result<(), ApiError> {
    let tokens = &app.config.secrets.bridge_tokens;
    if tokens.is_empty() {
        return Err(ApiError::Forbidden("the bridge API is disabled"));
    }
    match bearer(req) {
        Some(t) if any_token_matches(t, tokens) => Ok(()),
        Some(_) => Err(ApiError::Forbidden("invalid bridge token")),
        None => Err(ApiError::Forbidden("missing bridge token")),
    }
}

fn app_of(req: &ServiceRequest) -> web::Data<AppState> {
    req.app_data::<web::Data<AppState>>()
        .expect("the app state is registered as app data")
        .clone()
}

/// Middleware for homeserver-facing scopes.
pub async fn require_hs_token(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    check_hs_token(req.request(), &app_of(&req))?;
    next.call(req).await
}

/// Middleware for the bridge scope.
pub async fn require_bridge_token(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    check_bridge_token(req.request(), &app_of(&req))?;
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching() {
        let s = SecretString::from("x".repeat(40));
        assert!(token_matches(&"x".repeat(40), &s));
        assert!(!token_matches(&"x".repeat(39), &s));
        assert!(!token_matches("", &s));
        let list = [
            SecretString::from("a".repeat(32)),
            SecretString::from("b".repeat(32)),
        ];
        assert!(any_token_matches(&"b".repeat(32), &list));
        assert!(!any_token_matches(&"c".repeat(32), &list));
    }
}
