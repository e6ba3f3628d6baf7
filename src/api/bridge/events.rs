//! `GET /bridge/v1/agents/{agent}/events?since=&limit=&timeout_ms=`: an agent's durable
//! inbox, as a long-poll or (with `Accept: text/event-stream`) as Server-Sent Events with
//! `id:` = cursor. The parameters and the HTTP answer live here; the reads, waits, stream
//! slots and the SSE stream are the [`inbox`](crate::inbox) module's.

use std::time::Duration;

use actix_web::{
    http::{header, StatusCode},
    web, HttpRequest, HttpResponse,
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::{
    actors::AppState,
    api::{
        error::{ApiError, ErrorAnswer},
        grant::{AgentGrant, ReadScope},
        hangup,
    },
    ids::AgentSlug,
    inbox,
};

/// The status a long-poll ends with when its client hung up (nginx's "client closed
/// request"; only the request log and metrics see it).
const CLIENT_CLOSED_REQUEST: u16 = 499;
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 100;
const MAX_TIMEOUT_MS: u64 = 30_000;
/// `since=latest`: start after the newest item.
const LATEST: &str = "latest";

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// A cursor (an item's `cursor`, or a page's `next`): items after it. Absent or empty:
    /// from the oldest item kept; `latest`: only what arrives from now on.
    #[param(value_type = Option<String>, pattern = "^([0-9]{0,18}|latest)$")]
    since: Option<String>,
    /// Most items in the answer, 1 to 100 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// How long to wait for a first item when there is none, 0 to 30,000 ms (default 0).
    #[param(value_type = Option<u32>, minimum = 0, maximum = 30_000)]
    timeout_ms: Option<String>,
}

/// A page of an agent's inbox, oldest first.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes what `inbox::answer` writes (fuzzing checks the two agree).
pub(crate) struct InboxPage {
    events: Vec<InboxItem>,
    /// The cursor to read on from (the `since` of the next read).
    #[schema(pattern = "^[0-9]{1,18}$")]
    next: String,
    /// Present, and true, when retention (`inbox.retention_count`, `inbox.retention_age_s`)
    /// removed entries after `since` before they were read: the reader missed them.
    gap: Option<bool>,
}

/// One item of an agent's inbox, in the order the agent's rooms received them: a room
/// event for the agent, or (with `appservice.receive_ephemeral`) a receipt or typing
/// change of another user in one of its rooms: `type` `m.receipt` with content
/// `{"event_id", "receipt_type", "thread_id"?}`, or `m.typing` with `{"typing": bool}`;
/// `sender` is the user who read or types, and these items have no `event_id`.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes what `inbox::write_item` writes.
pub(crate) struct InboxItem {
    /// The item's position in the inbox (also the SSE `id:`).
    #[schema(pattern = "^[0-9]{1,18}$")]
    cursor: String,
    /// Whether the event mentions the agent.
    mentioned: bool,
    /// Present, and true, for an `m.room.encrypted` event: the agent cannot read its
    /// content (end-to-end encryption), but knows it was sent.
    encrypted: Option<bool>,
    /// Present, and true, for an event the daemon decrypted (`[e2ee] enabled`): `type` and
    /// `content` are the clear event's.
    decrypted: Option<bool>,
    /// Present, and true, for an event this inbox had before as `encrypted` (its room key
    /// arrived after it): the same `event_id`, now decrypted. The earlier item may read
    /// as either form.
    redelivered: Option<bool>,
    room_id: String,
    /// The room event's id (absent for `m.receipt` and `m.typing` items).
    event_id: Option<String>,
    sender: String,
    r#type: String,
    #[schema(value_type = Object)]
    content: (),
    origin_server_ts: i64,
}

fn parse_cursor(name: &str, raw: Option<&str>) -> Result<i64, ApiError> {
    match raw {
        None | Some("") => Ok(0),
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|c| *c >= 0)
            .ok_or_else(|| ApiError::InvalidParam(format!("{name}: {s:?} is not a cursor"))),
    }
}

/// The query parameter `name`: `default` when absent, else an integer from `min` to `max`.
pub(super) fn parse_bounded(
    name: &str,
    raw: Option<&str>,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ApiError> {
    match raw {
        None => Ok(default),
        Some(s) => s
            .parse::<u64>()
            .ok()
            .filter(|v| (min..=max).contains(v))
            .ok_or_else(|| {
                ApiError::InvalidParam(format!("{name}: must be an integer from {min} to {max}"))
            }),
    }
}

#[utoipa::path(
    get,
    path = "/bridge/v1/agents/{agent}/events",
    tag = "inbox",
    params(
        ("agent" = AgentSlug, Path, description = "The agent"),
        EventsQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "With a stream: the last `id:` seen, instead of `since`"),
    ),
    responses(
        (status = 200, description = "A page of the inbox (`Accept: application/json`), or a stream of items with `id:` = cursor (`Accept: text/event-stream`)",
            content((InboxPage = "application/json"), (InboxItem = "text/event-stream"))),
        (status = 404, description = "No such agent", body = ErrorAnswer),
    ),
)]
pub async fn agent_events(
    app: web::Data<AppState>,
    req: HttpRequest,
    AgentGrant { slug, .. }: AgentGrant<ReadScope>,
    query: web::Query<EventsQuery>,
) -> Result<HttpResponse, ApiError> {
    let latest = query.since.as_deref() == Some(LATEST);
    let mut since = match latest {
        true => 0,
        false => parse_cursor("since", query.since.as_deref())?,
    };
    let limit = parse_bounded(
        "limit",
        query.limit.as_deref(),
        DEFAULT_LIMIT.into(),
        1,
        MAX_LIMIT.into(),
    )? as u32;
    let timeout = Duration::from_millis(parse_bounded(
        "timeout_ms",
        query.timeout_ms.as_deref(),
        0,
        0,
        MAX_TIMEOUT_MS,
    )?);
    let sse = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    let mut resumed = false;
    if sse {
        if let Some(last) = req.headers().get("Last-Event-ID") {
            since = parse_cursor("Last-Event-ID", last.to_str().ok())?;
            resumed = true;
        }
    }
    let reader = app.inboxes.open(&slug).await?;
    if latest && !resumed {
        since = reader.latest().await?;
    }
    if sse {
        let peer = hangup::PeerWatch::of(&req);
        return Ok(HttpResponse::Ok()
            .content_type("text/event-stream")
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .insert_header(("X-Accel-Buffering", "no"))
            .streaming(inbox::sse_stream(
                reader,
                since,
                peer,
                app.config.limits.stream_max,
            )));
    }
    let batch = tokio::select! {
        batch = reader.wait(since, limit as usize, timeout) => batch?,
        () = hangup::hung_up(&req) => {
            // Nobody reads this answer; what counts is that the slot is free again.
            let status = StatusCode::from_u16(CLIENT_CLOSED_REQUEST).expect("a valid status");
            return Ok(HttpResponse::new(status));
        }
    };
    drop(reader);
    let next = batch.entries.last().map_or(since, |e| e.cursor);
    Ok(HttpResponse::Ok()
        .insert_header(header::ContentType::json())
        .body(inbox::answer(&batch.entries, next, batch.gap)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params() {
        assert_eq!(parse_cursor("since", None).unwrap(), 0);
        assert_eq!(parse_cursor("since", Some("42")).unwrap(), 42);
        assert!(parse_cursor("since", Some("abc")).is_err());
        assert!(parse_cursor("since", Some("-1")).is_err());
        assert_eq!(
            parse_bounded("limit", Some("100"), 50, 1, 100).unwrap(),
            100
        );
        assert!(parse_bounded("limit", Some("0"), 50, 1, 100).is_err());
        assert!(parse_bounded("limit", Some("101"), 50, 1, 100).is_err());
    }
}
