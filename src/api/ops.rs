//! Operations routes: `GET /health` (liveness), `GET /ready` (store and homeserver),
//! `GET /metrics` (Prometheus text; a config switch can require a bridge token).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::{auth, error::ApiError};
use crate::{actors::Hub, metrics::METRICS};

pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

pub async fn ready(hub: web::Data<Hub>) -> HttpResponse {
    let mut problems = serde_json::Map::new();
    if let Err(e) = hub.svc.store.ping().await {
        problems.insert("store".into(), json!(e.to_string()));
    }
    if !hub.svc.hs.is_reachable() {
        problems.insert("homeserver".into(), json!("unreachable"));
    } else if let Some(p) = hub.svc.hs.ping_problem() {
        problems.insert("homeserver".into(), json!(p));
    }
    if problems.is_empty() {
        HttpResponse::Ok().json(json!({ "status": "ready" }))
    } else {
        HttpResponse::ServiceUnavailable()
            .json(json!({ "status": "not ready", "problems": problems }))
    }
}

pub async fn metrics(hub: web::Data<Hub>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    if hub.svc.config.metrics.require_token {
        auth::check_bridge_token(&req, &hub)?;
    }
    METRICS.agents_live.set(hub.svc.agents.len() as i64);
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(METRICS.render()))
}
