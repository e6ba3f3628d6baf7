//! Reading an agent's inbox for the events route: from the in-memory tail when it covers
//! the cursor (the usual case for a reader that keeps up), else from the store; waiting on
//! the tail's signal (no polling); and the pull-based SSE stream built on the same reads.

use std::{
    collections::VecDeque,
    sync::Arc,
    time::{Duration, Instant},
};

use actix_web::{http::header, web, HttpResponse};
use serde::Serialize;
use serde_json::value::RawValue;

use super::events::Slot;
use crate::{
    actors::inbox::{InboxTail, TailEntry},
    api::error::ApiError,
    ids::AgentSlug,
    store::{InboxRow, Store},
};

/// SSE keep-alive comment interval.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Rows read per SSE step.
const SSE_BATCH: usize = 100;

/// One inbox item as the bridge shows it.
#[derive(Serialize)]
pub struct EventItem<'a> {
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

impl<'a> From<&'a TailEntry> for EventItem<'a> {
    fn from(e: &'a TailEntry) -> Self {
        let ev = &e.event;
        EventItem {
            cursor: e.cursor.to_string(),
            room_id: ev.room_id.as_str(),
            event_id: ev.event_id.as_str(),
            sender: ev.sender.as_str(),
            kind: &ev.event_type,
            content: &ev.content,
            origin_server_ts: ev.origin_server_ts,
            mentioned: e.mentioned,
        }
    }
}

/// Entries after a cursor, from wherever they were read.
pub enum Batch {
    Tail(Vec<TailEntry>),
    Store(Vec<InboxRow>),
}

impl Batch {
    fn is_empty(&self) -> bool {
        match self {
            Batch::Tail(v) => v.is_empty(),
            Batch::Store(v) => v.is_empty(),
        }
    }

    pub fn last_cursor(&self) -> Option<i64> {
        match self {
            Batch::Tail(v) => v.last().map(|e| e.cursor),
            Batch::Store(v) => v.last().map(|r| r.cursor),
        }
    }

    pub fn items(&self) -> Vec<EventItem<'_>> {
        match self {
            Batch::Tail(v) => v.iter().map(EventItem::from).collect(),
            Batch::Store(v) => v.iter().map(EventItem::from).collect(),
        }
    }
}

/// One agent's inbox, as a reader sees it.
pub struct InboxReader {
    pub store: Arc<dyn Store>,
    pub tail: Arc<InboxTail>,
    pub slug: AgentSlug,
}

impl InboxReader {
    /// Entries after `since`, at most `limit`.
    async fn read(&self, since: i64, limit: usize) -> Result<Batch, ApiError> {
        match self.tail.read_after(since, limit) {
            Some(entries) => Ok(Batch::Tail(entries)),
            None => Ok(Batch::Store(
                self.store
                    .read_inbox(&self.slug, since, limit as u32)
                    .await?,
            )),
        }
    }

    /// Entries after `since`, waiting up to `timeout` for the first one.
    pub async fn wait(
        &self,
        since: i64,
        limit: usize,
        timeout: Duration,
    ) -> Result<Batch, ApiError> {
        let deadline = Instant::now() + timeout;
        loop {
            // Registered before reading, so a push between the read and the wait wakes us.
            let notified = self.tail.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let batch = self.read(since, limit).await?;
            let left = deadline.saturating_duration_since(Instant::now());
            if !batch.is_empty() || left.is_zero() {
                return Ok(batch);
            }
            if tokio::time::timeout(left, notified).await.is_err() {
                return Ok(batch);
            }
        }
    }
}

struct SseState {
    reader: InboxReader,
    cursor: i64,
    pending: VecDeque<web::Bytes>,
    _slot: Slot,
}

/// The events route as Server-Sent Events: `id:` is the cursor (so `Last-Event-ID`
/// resumes), keep-alive comments every 15 s. Pull-based: rows are read only when the
/// client takes more, so a slow reader holds no buffer and never slows routing.
pub fn sse_response(reader: InboxReader, since: i64, slot: Slot) -> HttpResponse {
    let mut pending = VecDeque::new();
    pending.push_back(web::Bytes::from_static(b": connected\n\n"));
    let state = SseState {
        reader,
        cursor: since,
        pending,
        _slot: slot,
    };
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(chunk) = st.pending.pop_front() {
                return Some((Ok::<_, actix_web::Error>(chunk), st));
            }
            let batch = match st.reader.wait(st.cursor, SSE_BATCH, KEEP_ALIVE).await {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::warn!(agent = %st.reader.slug, error = %e, "event stream ends: store error");
                    return None;
                }
            };
            let Some(last) = batch.last_cursor() else {
                st.pending
                    .push_back(web::Bytes::from_static(b": keep-alive\n\n"));
                continue;
            };
            for item in batch.items() {
                let data = serde_json::to_string(&item).expect("serialises");
                st.pending.push_back(web::Bytes::from(format!(
                    "id: {}\nevent: event\ndata: {data}\n\n",
                    item.cursor
                )));
            }
            st.cursor = last;
        }
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream)
}
