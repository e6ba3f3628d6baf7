//! HTTP: every route in one table ([`configure`]), the auth middleware, the request-id and
//! metrics middleware, and the one error type that becomes `{errcode, error}` answers.

pub mod appservice;
pub mod auth;
pub mod body;
pub mod bridge;
pub mod error;
pub mod ops;

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    middleware::{from_fn, Next},
    web, Error, HttpResponse,
};
use tracing::Instrument;

use self::error::ApiError;
use crate::metrics::METRICS;

/// Wrong method on a known path.
async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

/// No such path.
async fn unrecognized() -> Result<HttpResponse, ApiError> {
    Err(ApiError::Unrecognized)
}

/// A resource whose other methods answer 405.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

/// Registers every route. The caller adds app data (`Hub`, `StreamSlots`) and the
/// payload limit.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/_matrix/app/v1")
            .wrap(from_fn(auth::require_hs_token))
            .service(
                resource("/transactions/{txn_id}")
                    .route(web::put().to(appservice::put_transaction)),
            )
            .service(resource("/users/{user_id}").route(web::get().to(appservice::query_user)))
            .service(resource("/rooms/{alias}").route(web::get().to(appservice::query_room_alias)))
            .service(resource("/ping").route(web::post().to(appservice::ping)))
            .service(resource("/thirdparty/{tail:.*}").route(web::get().to(appservice::thirdparty)))
            .default_service(web::to(unrecognized)),
    )
    .service(
        // Legacy unprefixed transaction route (Application Service API before r0).
        web::scope("/transactions")
            .wrap(from_fn(auth::require_hs_token))
            .service(resource("/{txn_id}").route(web::put().to(appservice::put_transaction))),
    )
    .service(
        web::scope("/bridge/v1")
            .wrap(from_fn(auth::require_bridge_token))
            .service(resource("/messages").route(web::post().to(bridge::messages::send_message)))
            .service(resource("/typing").route(web::post().to(bridge::typing::set_typing)))
            .service(
                resource("/provision/rooms")
                    .route(web::post().to(bridge::provision::provision_room)),
            )
            .service(resource("/agents").route(web::get().to(bridge::agents::list_agents)))
            .service(
                resource("/agents/{agent}")
                    .route(web::get().to(bridge::agents::get_agent))
                    .route(web::put().to(bridge::agents::put_agent)),
            )
            .service(
                resource("/agents/{agent}/events")
                    .route(web::get().to(bridge::events::agent_events)),
            )
            .default_service(web::to(unrecognized)),
    )
    .service(resource("/health").route(web::get().to(ops::health)))
    .service(resource("/ready").route(web::get().to(ops::ready)))
    .service(resource("/metrics").route(web::get().to(ops::metrics)))
    .default_service(web::to(unrecognized));
}

/// Gives every request an id and a span (method and route pattern only: query strings may
/// carry tokens), logs its outcome, and counts bridge requests by route and status.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let method = req.method().clone();
    let span = tracing::info_span!("request", request_id = %request_id, %method, route = %route);
    let started = std::time::Instant::now();
    let res = next.call(req).instrument(span.clone()).await;
    let status = match &res {
        Ok(r) => r.status(),
        Err(e) => e.as_response_error().status_code(),
    };
    if route.starts_with("/bridge/") {
        METRICS
            .bridge_requests
            .with_label_values(&[route.as_str(), status.as_str()])
            .inc();
    }
    span.in_scope(|| {
        tracing::debug!(
            status = status.as_u16(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "request done"
        )
    });
    let mut res = res?;
    res.headers_mut().insert(
        actix_web::http::header::HeaderName::from_static("x-request-id"),
        actix_web::http::header::HeaderValue::from_str(&request_id).expect("hex id"),
    );
    Ok(res)
}
