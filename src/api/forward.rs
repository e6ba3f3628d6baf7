//! Bridge calls that act as an agent, sent to the replica that owns the agent (see
//! [`crate::cluster`]): the one place that decides where such a call runs. It sits inside
//! the bridge's authentication; the owner authenticates and authorises the call again,
//! from the same bearer token, so nothing is trusted because it came from a replica.
//!
//! A call that reaches the owner's queue keeps its place in the agent's per-room order
//! whichever replica received it. When the owner does not answer, the call is answered
//! 503 with `Retry-After` (the owner's lease left), or, once the lease has expired, this
//! replica takes the agent over and runs it: a client's retry with the same `txn_id` is
//! never sent twice (the homeserver deduplicates it).

use std::{sync::OnceLock, time::Duration};

use actix_web::{
    body::{BoxBody, MessageBody},
    dev::{Payload, ServiceRequest, ServiceResponse},
    http::{header, Method, StatusCode},
    middleware::Next,
    web, Error, HttpResponse, ResponseError,
};
use serde::Deserialize;

use super::{body, error::ApiError};
use crate::{
    actors::AppState,
    cluster::{ClusterError, Owner},
    ids::AgentSlug,
    metrics::METRICS,
};

/// Set on a forwarded call: its receiver runs it or refuses it, never forwards it again.
pub const FORWARDED: &str = "x-mosaic-forwarded-by";
/// Headers a forwarded call carries over (besides the body).
const CARRIED: [header::HeaderName; 3] =
    [header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT];

/// Where a call that acts as an agent names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AgentIn {
    /// `"agent"` in the JSON body.
    Body,
    /// `/bridge/v1/agents/{agent}`.
    Path,
}

/// The calls that act as an agent (what they do is ordered by the agent's actor), and the
/// agent's state.
fn acts_as_agent(method: &Method, path: &str) -> Option<AgentIn> {
    let rest = path.strip_prefix("/bridge/v1/")?;
    match (method, rest.split('/').collect::<Vec<_>>().as_slice()) {
        (
            &Method::POST,
            ["messages" | "reactions" | "redactions" | "receipts" | "events" | "typing"],
        )
        | (&Method::POST, ["rooms", _, "leave"]) => Some(AgentIn::Body),
        // The agent's state (its queues, typing) is the owner's to tell.
        (&Method::GET | &Method::PUT | &Method::DELETE, ["agents", _]) => Some(AgentIn::Path),
        _ => None,
    }
}

#[derive(Deserialize)]
struct NamesAgent {
    agent: AgentSlug,
}

/// Middleware of the bridge scope (inside authentication).
pub async fn to_owner(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let app = req
        .app_data::<web::Data<AppState>>()
        .expect("the app state is registered as app data")
        .clone();
    let acts = acts_as_agent(req.method(), req.path());
    let (Some(agent_in), true) = (acts, app.cluster.is_shared()) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    // Refused as the handlers refuse it (413 `M_TOO_LARGE` as JSON, not actix's text).
    let limit = app.config.limits.max_body_bytes;
    let body = match body::payload(req.extract::<web::Bytes>().await, limit) {
        Ok(body) => body,
        Err(e) => return Ok(req.into_response(e.error_response())),
    };
    let slug = match agent_in {
        AgentIn::Path => req
            .path()
            .rsplit('/')
            .next()
            .and_then(|s| AgentSlug::parse(s).ok()),
        AgentIn::Body => serde_json::from_slice::<NamesAgent>(&body)
            .ok()
            .map(|n| n.agent),
    };
    req.set_payload(Payload::from(body.clone()));
    // A call that names no valid agent is refused by its handler, here.
    let Some(slug) = slug else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    match where_to_run(&app, &slug, &req, &body).await {
        Ok(None) => Ok(next.call(req).await?.map_into_boxed_body()),
        Ok(Some(answer)) => Ok(req.into_response(answer)),
        Err(e) => Ok(req.into_response(e.error_response())),
    }
}

/// `None`: run it here; else the owner's answer.
async fn where_to_run(
    app: &AppState,
    slug: &AgentSlug,
    req: &ServiceRequest,
    body: &web::Bytes,
) -> Result<Option<HttpResponse>, ApiError> {
    let owner = app.cluster.owner_of(slug).await.map_err(unavailable)?;
    let Owner::Remote { url, lease_left } = owner else {
        return Ok(None);
    };
    if req.headers().contains_key(FORWARDED) {
        // The sender thought this replica owns the agent; ownership is moving.
        return Err(retry(
            "the agent's owner is changing",
            Duration::from_secs(1),
        ));
    }
    let sent = send(app, &url, req, body).await;
    let outcome = match &sent {
        Ok(_) => "answered",
        Err(Sent::Never(_)) => "unreachable",
        Err(Sent::Unknown(_)) => "failed",
    };
    METRICS.forwarded.with_label_values(&[outcome]).inc();
    match sent {
        Ok(answer) => Ok(Some(answer)),
        Err(Sent::Never(e)) => {
            tracing::warn!(agent = %slug, owner = %url, error = %e, "the agent's owner did not answer");
            app.cluster.forget_owner(slug);
            match app.cluster.owner_of(slug).await.map_err(unavailable)? {
                Owner::Local => Ok(None),
                Owner::Remote { .. } => Err(retry(
                    "the replica that owns this agent does not answer; it is taken over when its lease expires",
                    lease_left.max(Duration::from_secs(1)),
                )),
            }
        }
        Err(Sent::Unknown(e)) => {
            tracing::warn!(agent = %slug, owner = %url, error = %e, "the agent's owner failed mid-call");
            app.cluster.forget_owner(slug);
            Err(retry(
                "the replica that owns this agent failed; retry with the same txn_id",
                Duration::from_secs(1),
            ))
        }
    }
}

/// Why a forwarded call has no answer.
enum Sent {
    /// It never reached the owner (connecting failed): safe to run elsewhere.
    Never(String),
    /// It may have reached the owner.
    Unknown(String),
}

/// Sends the call to the owner at `base` and returns its answer as it is.
async fn send(
    app: &AppState,
    base: &url::Url,
    req: &ServiceRequest,
    body: &web::Bytes,
) -> Result<HttpResponse, Sent> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    let client = CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .build()
            .expect("an HTTP client builds")
    });
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let url = base.join(path).map_err(|e| Sent::Never(e.to_string()))?;
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes())
        .unwrap_or(reqwest::Method::POST);
    let mut call = client
        .request(method, url)
        .timeout(app.config.limits.hs_deadline + Duration::from_secs(5))
        .header(FORWARDED, app.cluster.id())
        .body(body.clone());
    for name in &CARRIED {
        if let Some(value) = req.headers().get(name) {
            call = call.header(name.as_str(), value.as_bytes());
        }
    }
    let answer = call.send().await.map_err(|e| {
        if e.is_connect() {
            Sent::Never(e.to_string())
        } else {
            Sent::Unknown(e.to_string())
        }
    })?;
    let status =
        StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = HttpResponse::build(status);
    for name in [header::CONTENT_TYPE, header::RETRY_AFTER, header::ALLOW] {
        if let Some(value) = answer.headers().get(name.as_str()) {
            out.insert_header((name, value.as_bytes()));
        }
    }
    let bytes = answer
        .bytes()
        .await
        .map_err(|e| Sent::Unknown(e.to_string()))?;
    Ok(out.body(bytes))
}

fn retry(why: &str, after: Duration) -> ApiError {
    ApiError::Unavailable {
        error: why.into(),
        retry_after: Some(Duration::from_secs(after.as_secs_f64().ceil() as u64)),
    }
}

fn unavailable(e: ClusterError) -> ApiError {
    match e {
        ClusterError::LeaseLost => retry(
            "this replica cannot act for agents now (its lease is not current)",
            Duration::from_secs(1),
        ),
        e => {
            tracing::warn!(error = %e, "cannot find an agent's owner");
            retry("the store is unreachable", Duration::from_secs(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_calls_that_act_as_an_agent_are_known_by_method_and_path() {
        for (method, path, want) in [
            (Method::POST, "/bridge/v1/messages", Some(AgentIn::Body)),
            (Method::POST, "/bridge/v1/typing", Some(AgentIn::Body)),
            (
                Method::POST,
                "/bridge/v1/rooms/!r/leave",
                Some(AgentIn::Body),
            ),
            (Method::PUT, "/bridge/v1/agents/a", Some(AgentIn::Path)),
            (Method::DELETE, "/bridge/v1/agents/a", Some(AgentIn::Path)),
            (Method::GET, "/bridge/v1/agents/a", Some(AgentIn::Path)),
            (Method::GET, "/bridge/v1/agents", None),
            (Method::GET, "/bridge/v1/agents/a/events", None),
            (Method::GET, "/bridge/v1/rooms/!r/messages", None),
            (Method::POST, "/bridge/v1/provision/rooms", None),
            (Method::POST, "/bridge/v1/media", None),
        ] {
            assert_eq!(acts_as_agent(&method, path), want, "{method} {path}");
        }
    }
}
