//! `POST /bridge/v1/tokens`, `GET /bridge/v1/tokens`, `DELETE /bridge/v1/tokens/{id}`:
//! issued bridge tokens, for admin tokens only (SPEC "Clients, scopes and tokens"). The value
//! of a token is in the answer to its creation and nowhere else.

use actix_web::{web, HttpResponse};
use secrecy::ExposeSecret;
use serde::Serialize;
use utoipa::ToSchema;

use super::Empty;
use crate::{
    actors::AppState,
    api::{
        body,
        error::{ApiError, ErrorAnswer},
        grant::{AdminScope, Grant},
    },
    store::now_s,
    tokens::{
        issued::{TokenId, TokenRecord, TokenRequest},
        scope::Scope,
    },
};

/// An issued token as the API shows it (times in milliseconds since the epoch, as Matrix
/// writes them); its value only in the answer to its creation.
#[derive(Serialize, ToSchema)]
pub(crate) struct TokenView<'a> {
    #[schema(pattern = "^tok_[0-9a-f]{16}$")]
    id: &'a str,
    name: &'a str,
    scopes: Vec<Scope>,
    agents: Vec<String>,
    rate_per_s: Option<u32>,
    created_at: i64,
    expires_at: Option<i64>,
    expired: bool,
    /// The token itself (`mas_` and 64 hex digits): shown once, at creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'a str>,
}

impl<'a> TokenView<'a> {
    fn of(t: &'a TokenRecord, now_s: i64) -> Self {
        TokenView {
            id: t.id.as_str(),
            name: &t.name,
            scopes: t.scopes.iter().collect(),
            agents: t.agents.iter().map(ToString::to_string).collect(),
            rate_per_s: t.rate_per_s,
            created_at: t.created_at * 1000,
            expires_at: t.expires_at.map(|s| s * 1000),
            expired: t.is_expired(now_s),
            token: None,
        }
    }
}

/// Every issued token.
#[derive(Serialize, ToSchema)]
pub(crate) struct TokenList<'a> {
    tokens: Vec<TokenView<'a>>,
}

#[utoipa::path(
    post,
    path = "/bridge/v1/tokens",
    tag = "tokens",
    request_body = TokenRequest,
    responses((status = 201, description = "The token, with its value (shown only here)", body = TokenView)),
)]
pub async fn create_token(
    app: web::Data<AppState>,
    _: Grant<AdminScope>,
    payload: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let bytes = body::payload(payload, app.config.limits.max_body_bytes)?;
    let request: TokenRequest = body::json(&bytes)?;
    let (record, value) = app.access.issue(request).await?;
    tracing::info!(id = %record.id, name = %record.name, "bridge token issued");
    let mut answer = TokenView::of(&record, now_s());
    answer.token = Some(value.expose_secret());
    Ok(HttpResponse::Created().json(answer))
}

#[utoipa::path(
    get,
    path = "/bridge/v1/tokens",
    tag = "tokens",
    responses((status = 200, description = "Every issued token, without values", body = TokenList)),
)]
pub async fn list_tokens(
    app: web::Data<AppState>,
    _: Grant<AdminScope>,
) -> Result<HttpResponse, ApiError> {
    let now = now_s();
    let issued = app.access.issued().await?;
    let tokens = issued.iter().map(|t| TokenView::of(t, now)).collect();
    Ok(HttpResponse::Ok().json(TokenList { tokens }))
}

#[utoipa::path(
    delete,
    path = "/bridge/v1/tokens/{id}",
    tag = "tokens",
    params(("id" = String, Path, description = "The token's id (`tok_...`)")),
    responses(
        (status = 200, description = "Revoked: refused from the next request on", body = Empty),
        (status = 404, description = "No such token", body = ErrorAnswer),
    ),
)]
pub async fn revoke_token(
    app: web::Data<AppState>,
    _: Grant<AdminScope>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let unknown = || ApiError::NotFound(format!("unknown token {:?}", id.as_str()));
    let token = TokenId::parse(&id).ok_or_else(unknown)?;
    if !app.access.revoke(&token).await? {
        return Err(unknown());
    }
    tracing::info!(id = %token, "bridge token revoked");
    Ok(HttpResponse::Ok().json(Empty {}))
}
