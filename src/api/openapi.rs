//! The bridge API's OpenAPI 3.1 document, built from the handlers' annotations and the types
//! they read and write (utoipa), and served without a token at `GET /bridge/v1/openapi.json`.
//! What every bridge route shares — the bearer token and the errors any call can meet — is
//! added here once rather than on each handler. A unit test holds the document and
//! [`ROUTES`](super::ROUTES) together: a bridge route missing from it fails.

use std::sync::OnceLock;

use actix_web::{http::header, web::Bytes, HttpResponse};
use utoipa::{
    openapi::{
        path::Operation,
        security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme},
        ContentBuilder, Ref, RefOr, Response, ResponseBuilder,
    },
    Modify, OpenApi,
};

use super::bridge;

/// The name of the bearer-token security scheme.
const BRIDGE_TOKEN: &str = "bridge_token";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "mosaic-as bridge API",
        description = "Agent processes and coordinators call this API to act as agents \
            (virtual Matrix users hosted by the mosaic-as application service): send \
            messages, show typing, provision rooms and read what was said to them. Every \
            route takes a bridge token as `Authorization: Bearer`; what a token may do is \
            its scopes and agent patterns. Errors are `{errcode, error}` objects as in Matrix."
    ),
    paths(
        bridge::messages::send_message,
        bridge::acts::react,
        bridge::acts::redact,
        bridge::acts::mark_read,
        bridge::acts::leave,
        bridge::custom::send_event,
        bridge::media::upload,
        bridge::rooms::history,
        bridge::rooms::state,
        bridge::rooms::members,
        bridge::typing::set_typing,
        bridge::provision::provision_room,
        bridge::agents::list_agents,
        bridge::agents::get_agent,
        bridge::agents::put_agent,
        bridge::agents::delete_agent,
        bridge::events::agent_events,
        bridge::tokens::create_token,
        bridge::tokens::list_tokens,
        bridge::tokens::revoke_token,
        bridge::activity::activity,
    ),
    modifiers(&SharedByEveryRoute),
    tags(
        (name = "messages", description = "Acting in rooms as an agent (`send` scope)"),
        (name = "inbox", description = "What agents receive (`read` scope)"),
        (name = "agents", description = "Agents' profiles and state (`profile`, `read`)"),
        (name = "rooms", description = "Rooms read as an agent sees them (`read`)"),
        (name = "provisioning", description = "Creating rooms (`provision`)"),
        (name = "tokens", description = "Issued bridge tokens (`admin`)"),
        (name = "activity", description = "Live traffic and errors, for the operator console (`read`)"),
    )
)]
struct BridgeApi;

/// The bearer token on every operation, and the error answers any bridge call can meet.
struct SharedByEveryRoute;

impl Modify for SharedByEveryRoute {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BRIDGE_TOKEN,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A bridge token: an admin token from MOSAIC_BRIDGE_TOKENS, or one \
                         issued by POST /bridge/v1/tokens",
                    ))
                    .build(),
            ),
        );
        for item in doc.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
            ];
            for op in operations.into_iter().flatten() {
                shared_by_every_operation(op);
            }
        }
    }
}

fn shared_by_every_operation(op: &mut Operation) {
    op.security = Some(vec![SecurityRequirement::new(
        BRIDGE_TOKEN,
        Vec::<String>::new(),
    )]);
    let mut shared = vec![
        ("400", "Invalid input; `error` names the field or parameter (`M_BAD_JSON`, `M_NOT_JSON`, `M_INVALID_PARAM`)"),
        ("403", "No token, an unknown, revoked or expired one, or one without the scope or agent the call needs (`M_FORBIDDEN`); or a configured bound reached (`M_RESOURCE_LIMIT_EXCEEDED`)"),
        ("429", "Too many requests: the token's rate or a full queue (`M_LIMIT_EXCEEDED`; wait `retry_after_ms`, also in `Retry-After`)"),
        ("503", "The homeserver is unreachable or the daemon is stopping (`M_UNAVAILABLE`; `Retry-After`)"),
    ];
    if op.request_body.is_some() {
        shared.push((
            "413",
            "The body is over the configured limit (`M_TOO_LARGE`)",
        ));
    }
    for (status, description) in shared {
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| error_response(description));
    }
}

fn error_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorAnswer")))
                .build(),
        )
        .into()
}

/// The document, as a value (for tests and tools).
pub fn bridge_api() -> utoipa::openapi::OpenApi {
    BridgeApi::openapi()
}

/// `GET /bridge/v1/openapi.json`: the document, serialised once.
pub async fn document() -> HttpResponse {
    static JSON: OnceLock<Bytes> = OnceLock::new();
    let json = JSON.get_or_init(|| {
        bridge_api()
            .to_json()
            .expect("the OpenAPI document serialises")
            .into()
    });
    HttpResponse::Ok()
        .insert_header(header::ContentType::json())
        .body(json.clone())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::api::{Scope, ROUTES};

    /// (path, method) of every operation in the document.
    fn documented() -> BTreeSet<(String, String)> {
        let doc = serde_json::to_value(bridge_api()).unwrap();
        let mut ops = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                ops.insert((path.clone(), method.clone()));
            }
        }
        ops
    }

    #[test]
    fn every_bridge_route_is_documented_and_nothing_else() {
        let served: BTreeSet<(String, String)> = ROUTES
            .iter()
            .filter(|r| r.scope == Scope::Bridge)
            .flat_map(|r| {
                r.handlers
                    .iter()
                    .map(|h| (r.pattern.to_owned(), h.verb.as_str().to_owned()))
            })
            .collect();
        let documented = documented();
        let missing: Vec<_> = served.difference(&documented).collect();
        assert!(missing.is_empty(), "served, not documented: {missing:?}");
        let extra: Vec<_> = documented.difference(&served).collect();
        assert!(extra.is_empty(), "documented, not served: {extra:?}");
    }

    #[test]
    fn the_document_is_openapi_3_1_with_the_token_on_every_operation() {
        let doc = serde_json::to_value(bridge_api()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        assert_eq!(
            doc["components"]["securitySchemes"][BRIDGE_TOKEN]["scheme"],
            "bearer"
        );
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                assert_eq!(
                    op["security"][0][BRIDGE_TOKEN],
                    serde_json::json!([]),
                    "{method} {path}"
                );
                assert!(op["responses"]["403"].is_object(), "{method} {path}");
                assert!(op["responses"]["200"].is_object() || op["responses"]["201"].is_object());
            }
        }
        // Every schema a response or body names is in the components.
        let text = doc.to_string();
        for name in text.split("#/components/schemas/").skip(1) {
            let name = &name[..name.find('"').unwrap()];
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "{name} is referenced, not defined"
            );
        }
    }
}
