//! HTTP: every route in one table ([`configure`]), the auth middleware, the request-id and
//! metrics middleware, and the one error type that becomes `{errcode, error}` answers.

pub mod appservice;
pub mod auth;
pub mod body;
pub mod bridge;
pub mod context;
pub mod error;
pub mod hangup;
pub mod ops;

use actix_web::{middleware::from_fn, web, HttpResponse};

pub use self::context::request_context;
use self::error::ApiError;

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
