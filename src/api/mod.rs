//! HTTP: every route in one table ([`ROUTES`], registered by [`configure`] and labelled by
//! [`context::route_label`]), the auth middleware, the request-id and
//! metrics middleware, and the one error type that becomes `{errcode, error}` answers.

pub mod appservice;
pub mod auth;
pub mod body;
pub mod bridge;
pub mod context;
pub mod error;
pub mod grant;
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

/// Where a route is registered: under which prefix and behind which token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Application Service API, behind the hs_token.
    AppService,
    /// Legacy unprefixed transaction route (Application Service API before r0), behind the
    /// hs_token.
    LegacyTransactions,
    /// Bridge API, behind a bridge token.
    Bridge,
    /// Operations, at the root, without a token.
    Ops,
}

impl Scope {
    /// The scope's path prefix: every pattern of the scope starts with it.
    pub const fn prefix(self) -> &'static str {
        match self {
            Self::AppService => "/_matrix/app/v1",
            Self::LegacyTransactions => "/transactions",
            Self::Bridge => "/bridge/v1",
            Self::Ops => "",
        }
    }
}

/// One route: its full pattern (also its metric label), its scope, and the handler of each
/// of its methods (other methods answer 405).
pub struct Route {
    pub scope: Scope,
    pub pattern: &'static str,
    methods: fn(actix_web::Resource) -> actix_web::Resource,
}

impl Route {
    /// The resource, its path relative to the scope.
    fn resource(&self) -> actix_web::Resource {
        let path = self
            .pattern
            .strip_prefix(self.scope.prefix())
            .expect("a route's pattern starts with its scope's prefix");
        (self.methods)(resource(path))
    }
}

/// Every route, registered by [`configure`] in this order within its scope and labelled by
/// [`context::route_label`]. A `{param}` is one non-empty path segment; a last
/// `{param:.*}` is the rest of the path.
pub const ROUTES: &[Route] = &[
    Route {
        scope: Scope::AppService,
        pattern: "/_matrix/app/v1/transactions/{txn_id}",
        methods: |r| r.route(web::put().to(appservice::put_transaction)),
    },
    Route {
        scope: Scope::AppService,
        pattern: "/_matrix/app/v1/users/{user_id}",
        methods: |r| r.route(web::get().to(appservice::query_user)),
    },
    Route {
        scope: Scope::AppService,
        pattern: "/_matrix/app/v1/rooms/{alias}",
        methods: |r| r.route(web::get().to(appservice::query_room_alias)),
    },
    Route {
        scope: Scope::AppService,
        pattern: "/_matrix/app/v1/ping",
        methods: |r| r.route(web::post().to(appservice::ping)),
    },
    Route {
        scope: Scope::AppService,
        pattern: "/_matrix/app/v1/thirdparty/{tail:.*}",
        methods: |r| r.route(web::get().to(appservice::thirdparty)),
    },
    Route {
        scope: Scope::LegacyTransactions,
        pattern: "/transactions/{txn_id}",
        methods: |r| r.route(web::put().to(appservice::put_transaction)),
    },
    Route {
        scope: Scope::Bridge,
        pattern: "/bridge/v1/messages",
        methods: |r| r.route(web::post().to(bridge::messages::send_message)),
    },
    Route {
        scope: Scope::Bridge,
        pattern: "/bridge/v1/typing",
        methods: |r| r.route(web::post().to(bridge::typing::set_typing)),
    },
    Route {
        scope: Scope::Bridge,
        pattern: "/bridge/v1/provision/rooms",
        methods: |r| r.route(web::post().to(bridge::provision::provision_room)),
    },
    Route {
        scope: Scope::Bridge,
        pattern: "/bridge/v1/agents",
        methods: |r| r.route(web::get().to(bridge::agents::list_agents)),
    },
    Route {
        scope: Scope::Bridge,
        pattern: "/bridge/v1/agents/{agent}",
        methods: |r| {
            r.route(web::get().to(bridge::agents::get_agent))
                .route(web::put().to(bridge::agents::put_agent))
        },
    },
    Route {
        scope: Scope::Bridge,
        pattern: "/bridge/v1/agents/{agent}/events",
        methods: |r| r.route(web::get().to(bridge::events::agent_events)),
    },
    Route {
        scope: Scope::Bridge,
        pattern: "/bridge/v1/tokens",
        methods: |r| {
            r.route(web::post().to(bridge::tokens::create_token))
                .route(web::get().to(bridge::tokens::list_tokens))
        },
    },
    Route {
        scope: Scope::Bridge,
        pattern: "/bridge/v1/tokens/{id}",
        methods: |r| r.route(web::delete().to(bridge::tokens::revoke_token)),
    },
    Route {
        scope: Scope::Ops,
        pattern: "/health",
        methods: |r| r.route(web::get().to(ops::health)),
    },
    Route {
        scope: Scope::Ops,
        pattern: "/ready",
        methods: |r| r.route(web::get().to(ops::ready)),
    },
    Route {
        scope: Scope::Ops,
        pattern: "/metrics",
        methods: |r| r.route(web::get().to(ops::metrics)),
    },
];

/// The routes of `scope`, in table order.
fn routes_in(scope: Scope) -> impl Iterator<Item = &'static Route> {
    ROUTES.iter().filter(move |r| r.scope == scope)
}

/// The scope with its routes; the caller adds its token check and default service.
fn scope(scope: Scope) -> actix_web::Scope {
    routes_in(scope).fold(web::scope(scope.prefix()), |s, r| s.service(r.resource()))
}

/// Registers every route of [`ROUTES`]; the homeserver's routes read bodies of up to
/// `max_transaction_bytes` (`limits.max_transaction_bytes`). The caller adds the app data
/// ([`AppState`](crate::actors::AppState)) and the payload limit of the other routes.
pub fn configure(cfg: &mut web::ServiceConfig, max_transaction_bytes: usize) {
    let transactions = web::PayloadConfig::new(max_transaction_bytes);
    cfg.service(
        scope(Scope::AppService)
            .app_data(transactions.clone())
            .wrap(from_fn(auth::require_hs_token))
            .default_service(web::to(unrecognized)),
    )
    .service(
        scope(Scope::LegacyTransactions)
            .app_data(transactions)
            .wrap(from_fn(auth::require_hs_token)),
    )
    .service(
        scope(Scope::Bridge)
            .wrap(from_fn(auth::require_bridge_token))
            .default_service(web::to(unrecognized)),
    );
    for route in routes_in(Scope::Ops) {
        cfg.service(route.resource());
    }
    cfg.default_service(web::to(unrecognized));
}
