//! Operations routes: `GET /health` (liveness), `GET /ready` (store and homeserver),
//! `GET /metrics` (Prometheus text; needs `MOSAIC_METRICS_TOKEN` when one is set). `/ready`
//! names each problem without the raw error text (that goes to the log).

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
        tracing::warn!(error = %e, "readiness: the store does not answer");
        problems.insert("store".into(), json!("not answering (see the log)"));
    }
    if !app.cluster.lease_is_valid() {
        problems.insert(
            "replica".into(),
            json!("this replica's lease is not current (it cannot renew it in the store)"),
        );
    }
    if !app.hs.is_reachable() {
        problems.insert("homeserver".into(), json!("unreachable"));
    } else if app.hs.ping_problem().is_some() {
        // The ping loop logs the homeserver's answer; readiness only says what failed.
        problems.insert(
            "homeserver".into(),
            json!("the ping failed (the homeserver may not reach the daemon; see the log)"),
        );
    }
    if let Some(e2ee) = app.e2ee.get() {
        let lock = e2ee.one_replica.as_ref().and_then(|one| one.problem());
        if let Some(problem) = lock.or_else(|| e2ee.delivery.problem()) {
            problems.insert("e2ee".into(), json!(problem));
        }
    }
    if problems.is_empty() {
        HttpResponse::Ok().json(json!({ "status": "ready" }))
    } else {
        HttpResponse::ServiceUnavailable()
            .json(json!({ "status": "not ready", "problems": problems }))
    }
}

pub async fn metrics(app: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    auth::check_metrics_token(&req, &app)?;
    METRICS.agents_live.set(app.agents.len() as i64);
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(METRICS.render()))
}
