//! `POST /bridge/v1/tokens`, `GET /bridge/v1/tokens`, `DELETE /bridge/v1/tokens/{id}`:
//! issued bridge tokens, for admin tokens only (SPEC "Clients, scopes and tokens"). The value
//! of a token is in the answer to its creation and nowhere else.

use actix_web::{web, HttpResponse};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use crate::{
    actors::AppState,
    api::{
        body,
        error::ApiError,
        grant::{AdminScope, Grant},
    },
    store::now_s,
    tokens::issued::{TokenId, TokenRecord, TokenRequest},
};

/// A token as the API shows it (times in milliseconds since the epoch, as Matrix writes
/// them).
fn view(t: &TokenRecord, now_s: i64) -> Value {
    json!({
        "id": t.id.as_str(),
        "name": t.name,
        "scopes": t.scopes.names(),
        "agents": t.agents.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "rate_per_s": t.rate_per_s,
        "created_at": t.created_at * 1000,
        "expires_at": t.expires_at.map(|s| s * 1000),
        "expired": t.is_expired(now_s),
    })
}

pub async fn create_token(
    app: web::Data<AppState>,
    _: Grant<AdminScope>,
    payload: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let bytes = body::payload(payload, app.config.limits.max_body_bytes)?;
    let request: TokenRequest = body::json(&bytes)?;
    let (record, value) = app.access.issue(request).await?;
    tracing::info!(id = %record.id, name = %record.name, "bridge token issued");
    let mut answer = view(&record, now_s());
    answer["token"] = json!(value.expose_secret());
    Ok(HttpResponse::Created().json(answer))
}

pub async fn list_tokens(
    app: web::Data<AppState>,
    _: Grant<AdminScope>,
) -> Result<HttpResponse, ApiError> {
    let now = now_s();
    let tokens: Vec<Value> = app
        .access
        .issued()
        .await?
        .iter()
        .map(|t| view(t, now))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "tokens": tokens })))
}

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
    Ok(HttpResponse::Ok().json(json!({})))
}
