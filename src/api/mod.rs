//! HTTP: every route in one table ([`ROUTES`], registered by [`configure`] and labelled by
//! [`context::route_label`]), the auth middleware, the request-id and
//! metrics middleware, and the one error type that becomes `{errcode, error}` answers.

pub mod appservice;
pub mod auth;
pub mod body;
pub mod bridge;
pub mod console;
pub mod context;
pub mod error;
pub mod forward;
pub mod grant;
pub mod hangup;
pub mod openapi;
pub mod ops;

use actix_web::{middleware::from_fn, web, HttpResponse};

pub use self::context::request_context;
use self::error::ApiError;

/// Wrong method on a known path: 405 with the `Allow` header RFC 9110 asks for.
fn method_not_allowed(allow: &str) -> HttpResponse {
    let mut answer = actix_web::ResponseError::error_response(&ApiError::MethodNotAllowed);
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(allow) {
        answer
            .headers_mut()
            .insert(actix_web::http::header::ALLOW, value);
    }
    answer
}

/// No such path.
async fn unrecognized() -> Result<HttpResponse, ApiError> {
    Err(ApiError::Unrecognized)
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
    /// Without a token, at the root: operations, the bridge API's OpenAPI document, and
    /// the operator console's files.
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

/// An HTTP method a route serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    Put,
    Delete,
}

impl Verb {
    /// Every method a route may serve.
    pub const ALL: [Self; 4] = [Self::Get, Self::Post, Self::Put, Self::Delete];

    /// The method's name in upper case, as HTTP writes it.
    pub const fn as_http(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
        }
    }

    /// The method's name in lower case, as OpenAPI writes it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Post => "post",
            Self::Put => "put",
            Self::Delete => "delete",
        }
    }

    fn route(self) -> actix_web::Route {
        match self {
            Self::Get => web::get(),
            Self::Post => web::post(),
            Self::Put => web::put(),
            Self::Delete => web::delete(),
        }
    }
}

/// One method of a route and its handler.
pub struct Handler {
    pub verb: Verb,
    to: fn(actix_web::Route) -> actix_web::Route,
}

impl Handler {
    const fn new(verb: Verb, to: fn(actix_web::Route) -> actix_web::Route) -> Self {
        Self { verb, to }
    }
}

/// One route: its full pattern (also its metric label), its scope, and the handler of each
/// of its methods (other methods answer 405).
pub struct Route {
    pub scope: Scope,
    pub pattern: &'static str,
    pub handlers: &'static [Handler],
}

impl Route {
    /// The resource, its path relative to the scope; its other methods answer 405.
    fn resource(&self) -> actix_web::Resource {
        let path = self
            .pattern
            .strip_prefix(self.scope.prefix())
            .expect("a route's pattern starts with its scope's prefix");
        let allow: Vec<&str> = self.handlers.iter().map(|h| h.verb.as_http()).collect();
        let allow = allow.join(", ");
        let refuse = web::to(move || std::future::ready(method_not_allowed(&allow)));
        self.handlers
            .iter()
            .fold(web::resource(path).default_service(refuse), |r, h| {
                r.route((h.to)(h.verb.route()))
            })
    }
}

/// Every route, registered by [`configure`] in this order within its scope and labelled by
/// [`context::route_label`]. A `{param}` is one non-empty path segment; a last
/// `{param:.*}` is the rest of the path.
pub const ROUTES: &[Route] = &[
    Route {
        scope: Scope::AppService,
        pattern: "/_matrix/app/v1/transactions/{txn_id}",
        handlers: &[Handler::new(Verb::Put, |r| {
            r.to(appservice::put_transaction)
        })],
    },
    Route {
        scope: Scope::AppService,
        pattern: "/_matrix/app/v1/users/{user_id}",
        handlers: &[Handler::new(Verb::Get, |r| r.to(appservice::query_user))],
    },
    Route {
        scope: Scope::AppService,
        pattern: "/_matrix/app/v1/rooms/{alias}",
        handlers: &[Handler::new(Verb::Get, |r| {
            r.to(appservice::query_room_alias)
        })],
    },
    Route {
        scope: Scope::AppService,
        pattern: "/_matrix/app/v1/ping",
        handlers: &[Handler::new(Verb::Post, |r| r.to(appservice::ping))],
    },
    Route {
        scope: Scope::AppService,
        pattern: "/_matrix/app/v1/thirdparty/{tail:.*}",
        handlers: &[Handler::new(Verb::Get, |r| r.to(appservice::thirdparty))],
    },
    Route {
        scope: Scope::LegacyTransactions,
        pattern: "/transactions/{txn_id}",
        handlers: &[Handler::new(Verb::Put, |r| {
            r.to(appservice::put_transaction)
        })],
    },
    Route {
        scope: Scope::Bridge,
        pattern: "/bridge/v1/messages",
        handlers: &[Handler::new(Verb::Post, |r| {
            r.to(bridge::messages::send_message)
        })],
    },
    Route {
        scope: Scope::Bridge,
        pattern: "/bridge/v1/reactions",
        handlers: &[Handler::new(Verb::Post, |r| r.to(bridge::acts::react))],
    },
    Route {
        scope: Scope::Bridge,
        pattern: "/bridge/v1/redactions",
        handlers: &[Handler::new(Verb::Post, |r| r.to(bridge::acts::redact))],
    },
    Route {
        scope: Scope::Bridge,
        pattern: "/bridge/v1/receipts",
        handlers: &[Handler::new(Verb::Post, |r| r.to(bridge::acts::mark_read))],
    },
    Route {
        scope: Scope::Bridge,
        pattern: "/bridge/v1/media",
        handlers: &[Handler::new(Verb::Post, |r| r.to(bridge::media::upload))],
    },
    Route {
        scope: Scope::Bridge,
        pattern: "/bridge/v1/events",
        handlers: &[Handler::new(Verb::Post, |r| {
            r.to(bridge::custom::send_event)
        })],
    },
    Route {
        scope: Scope::Bridge,
        pattern: "/bridge/v1/rooms/{room_id}/messages",
        handlers: &[Handler::new(Verb::Get, |r| r.to(bridge::rooms::history))],
    },
    Route {
        scope: Scope::Bridge,
        pattern: "/bridge/v1/rooms/{room_id}/state",
        handlers: &[Handler::new(Verb::Get, |r| r.to(bridge::rooms::state))],
    },
    Route {
        scope: Scope::Bridge,
        pattern: "/bridge/v1/rooms/{room_id}/members",
        handlers: &[Handler::new(Verb::Get, |r| r.to(bridge::rooms::members))],
    },
    Route {
        scope: Scope::Bridge,
        pattern: "/bridge/v1/rooms/{room_id}/leave",
        handlers: &[Handler::new(Verb::Post, |r| r.to(bridge::acts::leave))],
    },
    Route {
        scope: Scope::Bridge,
        pattern: "/bridge/v1/typing",
        handlers: &[Handler::new(Verb::Post, |r| {
            r.to(bridge::typing::set_typing)
        })],
    },
    Route {
        scope: Scope::Bridge,
        pattern: "/bridge/v1/provision/rooms",
        handlers: &[Handler::new(Verb::Post, |r| {
            r.to(bridge::provision::provision_room)
        })],
    },
    Route {
        scope: Scope::Bridge,
        pattern: "/bridge/v1/agents",
        handlers: &[Handler::new(Verb::Get, |r| {
            r.to(bridge::agents::list_agents)
        })],
    },
    Route {
        scope: Scope::Bridge,
        pattern: "/bridge/v1/agents/{agent}",
        handlers: &[
            Handler::new(Verb::Get, |r| r.to(bridge::agents::get_agent)),
            Handler::new(Verb::Put, |r| r.to(bridge::agents::put_agent)),
            Handler::new(Verb::Delete, |r| r.to(bridge::agents::delete_agent)),
        ],
    },
    Route {
        scope: Scope::Bridge,
        pattern: "/bridge/v1/agents/{agent}/events",
        handlers: &[Handler::new(Verb::Get, |r| {
            r.to(bridge::events::agent_events)
        })],
    },
    Route {
        scope: Scope::Bridge,
        pattern: "/bridge/v1/activity",
        handlers: &[Handler::new(Verb::Get, |r| {
            r.to(bridge::activity::activity)
        })],
    },
    Route {
        scope: Scope::Bridge,
        pattern: "/bridge/v1/tokens",
        handlers: &[
            Handler::new(Verb::Post, |r| r.to(bridge::tokens::create_token)),
            Handler::new(Verb::Get, |r| r.to(bridge::tokens::list_tokens)),
        ],
    },
    Route {
        scope: Scope::Bridge,
        pattern: "/bridge/v1/tokens/{id}",
        handlers: &[Handler::new(Verb::Delete, |r| {
            r.to(bridge::tokens::revoke_token)
        })],
    },
    Route {
        scope: Scope::Ops,
        pattern: "/bridge/v1/openapi.json",
        handlers: &[Handler::new(Verb::Get, |r| r.to(openapi::document))],
    },
    Route {
        scope: Scope::Ops,
        pattern: "/health",
        handlers: &[Handler::new(Verb::Get, |r| r.to(ops::health))],
    },
    Route {
        scope: Scope::Ops,
        pattern: "/ready",
        handlers: &[Handler::new(Verb::Get, |r| r.to(ops::ready))],
    },
    Route {
        scope: Scope::Ops,
        pattern: "/metrics",
        handlers: &[Handler::new(Verb::Get, |r| r.to(ops::metrics))],
    },
    Route {
        scope: Scope::Ops,
        pattern: "/console",
        handlers: &[Handler::new(Verb::Get, |r| r.to(console::page))],
    },
    Route {
        scope: Scope::Ops,
        pattern: "/console/",
        handlers: &[Handler::new(Verb::Get, |r| r.to(console::slash))],
    },
    Route {
        scope: Scope::Ops,
        pattern: "/console/{file}",
        handlers: &[Handler::new(Verb::Get, |r| r.to(console::file))],
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
    // First, so that the bridge's scope does not claim its OpenAPI document.
    for route in routes_in(Scope::Ops) {
        cfg.service(route.resource());
    }
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
            // Inside authentication: only authenticated calls are forwarded.
            .wrap(from_fn(forward::to_owner))
            .wrap(from_fn(auth::require_bridge_token))
            .default_service(web::to(unrecognized)),
    );
    cfg.default_service(web::to(unrecognized));
}
