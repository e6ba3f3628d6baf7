//! `GET /bridge/v1/agents/{agent}/events?since=&limit=&timeout_ms=`: an agent's durable
//! inbox, as a long-poll or (with `Accept: text/event-stream`) as Server-Sent Events with
//! `id:` = cursor. Readers wait on the agent actor's cursor signal, never poll. The SSE
//! stream is pull-based: rows are read from the store only when the client takes more, so
//! a slow reader holds no buffer and never slows routing.

use std::{
    collections::VecDeque,
    sync::Arc,
    time::{Duration, Instant},
};

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::watch;

use super::slug_param;
use crate::{
    actors::{agent::SubscribeInbox, Hub},
    api::error::ApiError,
    ids::AgentSlug,
    metrics::METRICS,
    store::{InboxRow, Store},
};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 100;
const MAX_TIMEOUT_MS: u64 = 30_000;
/// SSE keep-alive comment interval.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Deserialize)]
pub struct EventsQuery {
    since: Option<String>,
    limit: Option<String>,
    timeout_ms: Option<String>,
}

/// Open streams per agent (long-polls and SSE), bounded by `limits.streams_per_agent`.
#[derive(Default)]
pub struct StreamSlots {
    open: DashMap<AgentSlug, usize>,
}

/// Holds one slot; frees it when dropped (also when a client disconnects).
pub struct Slot {
    slots: Arc<StreamSlots>,
    slug: AgentSlug,
}

impl StreamSlots {
    fn acquire(self: &Arc<Self>, slug: &AgentSlug, max: usize) -> Result<Slot, ApiError> {
        let mut n = self.open.entry(slug.clone()).or_insert(0);
        if *n >= max {
            return Err(ApiError::RateLimited {
                error: format!("at most {max} concurrent event streams per agent"),
                retry_after: Duration::from_secs(1),
            });
        }
        *n += 1;
        METRICS.streams_open.inc();
        Ok(Slot {
            slots: self.clone(),
            slug: slug.clone(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        METRICS.streams_open.dec();
        self.slots.open.remove_if_mut(&self.slug, |_, n| {
            *n -= 1;
            *n == 0
        });
    }
}

/// One inbox item as the bridge shows it.
#[derive(Serialize)]
struct EventItem<'a> {
    cursor: String,
    room_id: &'a str,
    event_id: &'a str,
    sender: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    content: &'a RawValue,
    origin_server_ts: i64,
    mentioned: bool,
}

impl<'a> From<&'a InboxRow> for EventItem<'a> {
    fn from(r: &'a InboxRow) -> Self {
        EventItem {
            cursor: r.cursor.to_string(),
            room_id: &r.room_id,
            event_id: &r.event_id,
            sender: &r.sender,
            kind: &r.event_type,
            content: &r.content,
            origin_server_ts: r.origin_server_ts,
            mentioned: r.mentioned,
        }
    }
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

fn parse_bounded(
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

pub async fn agent_events(
    hub: web::Data<Hub>,
    slots: web::Data<StreamSlots>,
    req: HttpRequest,
    agent: web::Path<String>,
    query: web::Query<EventsQuery>,
) -> Result<HttpResponse, ApiError> {
    let slug = slug_param(&agent)?;
    let mut since = parse_cursor("since", query.since.as_deref())?;
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
    if sse {
        if let Some(last) = req.headers().get("Last-Event-ID") {
            since = parse_cursor("Last-Event-ID", last.to_str().ok())?;
        }
    }
    let addr = hub
        .known_agent(&slug)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("unknown agent {slug}")))?;
    let slot = slots
        .into_inner()
        .acquire(&slug, hub.svc.config.limits.streams_per_agent)?;
    let store = hub.svc.store.clone();
    let wake = addr.send(SubscribeInbox).await?;
    if sse {
        return Ok(sse_response(store, slug, since, wake, slot));
    }
    let rows = wait_for_rows(&*store, &slug, since, limit, timeout, wake).await?;
    drop(slot);
    let next = rows.last().map_or(since, |r| r.cursor);
    let items: Vec<EventItem<'_>> = rows.iter().map(EventItem::from).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "events": items, "next": next.to_string() })))
}

/// Rows after `since`, waiting up to `timeout` for the first one.
async fn wait_for_rows(
    store: &dyn Store,
    slug: &AgentSlug,
    since: i64,
    limit: u32,
    timeout: Duration,
    mut wake: watch::Receiver<i64>,
) -> Result<Vec<InboxRow>, ApiError> {
    let deadline = Instant::now() + timeout;
    loop {
        // Mark the current value seen before reading, so a commit between the read and the
        // wait still wakes us.
        let latest = *wake.borrow_and_update();
        let rows = store.read_inbox(slug, since, limit).await?;
        if !rows.is_empty() || Instant::now() >= deadline {
            return Ok(rows);
        }
        if latest > since {
            // Signalled, but the rows were pruned or are not visible yet: wait for more.
            tracing::trace!(agent = %slug, latest, since, "cursor ahead of readable rows");
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, wake.changed()).await {
            Ok(Ok(())) => continue,
            Ok(Err(_)) | Err(_) => return Ok(Vec::new()),
        }
    }
}

struct SseState {
    store: Arc<dyn Store>,
    slug: AgentSlug,
    cursor: i64,
    wake: watch::Receiver<i64>,
    pending: VecDeque<web::Bytes>,
    _slot: Slot,
}

fn sse_response(
    store: Arc<dyn Store>,
    slug: AgentSlug,
    since: i64,
    wake: watch::Receiver<i64>,
    slot: Slot,
) -> HttpResponse {
    let mut pending = VecDeque::new();
    pending.push_back(web::Bytes::from_static(b": connected\n\n"));
    let state = SseState {
        store,
        slug,
        cursor: since,
        wake,
        pending,
        _slot: slot,
    };
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(chunk) = st.pending.pop_front() {
                return Some((Ok::<_, actix_web::Error>(chunk), st));
            }
            st.wake.borrow_and_update();
            let rows = match st.store.read_inbox(&st.slug, st.cursor, MAX_LIMIT).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(agent = %st.slug, error = %e, "event stream ends: store error");
                    return None;
                }
            };
            if let Some(last) = rows.last() {
                st.cursor = last.cursor;
                for r in &rows {
                    let data = serde_json::to_string(&EventItem::from(r)).expect("serialises");
                    st.pending.push_back(web::Bytes::from(format!(
                        "id: {}\nevent: event\ndata: {data}\n\n",
                        r.cursor
                    )));
                }
                continue;
            }
            match tokio::time::timeout(KEEP_ALIVE, st.wake.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return None,
                Err(_) => st
                    .pending
                    .push_back(web::Bytes::from_static(b": keep-alive\n\n")),
            }
        }
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream)
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

    #[test]
    fn slots_are_bounded_and_freed() {
        let slots = Arc::new(StreamSlots::default());
        let a = AgentSlug::parse("a").unwrap();
        let s1 = slots.acquire(&a, 2).unwrap();
        let _s2 = slots.acquire(&a, 2).unwrap();
        assert!(slots.acquire(&a, 2).is_err());
        drop(s1);
        assert!(slots.acquire(&a, 2).is_ok());
    }
}
