//! Operations routes: `GET /health` (liveness), `GET /ready` (store and homeserver),
//! `GET /metrics` (Prometheus text; a config switch can require a bridge token).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::{auth, error::ApiError};
use crate::{actors::AppState, metrics::METRICS};

pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

pub async fn ready(app: web::Data<AppState>) -> HttpResponse {
    let mut problems = serde_json::Map::new();
    if let Err(e) = app.store.ping().await {
        problems.insert("store".into(), json!(e.to_string()));
    }
    if !app.hs.is_reachable() {
        problems.insert("homeserver".into(), json!("unreachable"));
    } else if let Some(p) = app.hs.ping_problem() {
        problems.insert("homeserver".into(), json!(p));
    }
    if problems.is_empty() {
        HttpResponse::Ok().json(json!({ "status": "ready" }))
    } else {
        HttpResponse::ServiceUnavailable()
            .json(json!({ "status": "not ready", "problems": problems }))
    }
}

pub async fn metrics(app: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    if app.config.metrics.require_token {
        auth::check_bridge_token(&req, &app)?;
    }
    METRICS.agents_live.set(app.agents.len() as i64);
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(METRICS.render()))
}
