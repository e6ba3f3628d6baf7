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
    api::{error::ApiError, hangup::PeerWatch},
    ids::AgentSlug,
    store::{InboxRow, Store},
};

/// SSE keep-alive comment interval.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Rows read per SSE step.
const SSE_BATCH: usize = 100;

/// The fields of an inbox item that are the same for every recipient.
#[derive(Serialize)]
struct EventFields<'a> {
    room_id: &'a str,
    event_id: &'a str,
    sender: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    content: &'a RawValue,
    origin_server_ts: i64,
}

impl EventFields<'_> {
    /// `"room_id":...,"origin_server_ts":...`: the object's members without the braces.
    fn members(&self) -> String {
        let mut json = serde_json::to_string(self).expect("strings and raw JSON serialise");
        json.pop();
        json.remove(0);
        json
    }
}

fn row_members(r: &InboxRow) -> String {
    EventFields {
        room_id: &r.room_id,
        event_id: &r.event_id,
        sender: &r.sender,
        kind: &r.event_type,
        content: &r.content,
        origin_server_ts: r.origin_server_ts,
    }
    .members()
}

/// The shared members of a tail event, serialised by the first of its readers.
fn tail_members(e: &TailEntry) -> &str {
    let ev = &e.event;
    ev.json_fields.get_or_init(|| {
        EventFields {
            room_id: ev.room_id.as_str(),
            event_id: ev.event_id.as_str(),
            sender: ev.sender.as_str(),
            kind: &ev.event_type,
            content: &ev.content,
            origin_server_ts: ev.origin_server_ts,
        }
        .members()
        .into_boxed_str()
    })
}

/// Writes one inbox item: `{"cursor":"<n>","mentioned":<bool>,<members>}`. The pieces are a
/// number, a boolean and members serde_json wrote, so the whole is valid JSON.
fn write_item(out: &mut Vec<u8>, cursor: i64, mentioned: bool, members: &str) {
    out.extend_from_slice(b"{\"cursor\":\"");
    out.extend_from_slice(cursor.to_string().as_bytes());
    out.extend_from_slice(if mentioned {
        b"\",\"mentioned\":true,"
    } else {
        b"\",\"mentioned\":false,"
    });
    out.extend_from_slice(members.as_bytes());
    out.push(b'}');
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

    /// Each item as JSON, with its cursor.
    fn for_each_item(&self, mut f: impl FnMut(i64, &[u8])) {
        let mut buf = Vec::with_capacity(512);
        let mut item = |cursor, mentioned, members: &str| {
            buf.clear();
            write_item(&mut buf, cursor, mentioned, members);
            f(cursor, &buf);
        };
        match self {
            Batch::Tail(v) => v
                .iter()
                .for_each(|e| item(e.cursor, e.mentioned, tail_members(e))),
            Batch::Store(v) => v
                .iter()
                .for_each(|r| item(r.cursor, r.mentioned, &row_members(r))),
        }
    }

    /// The long-poll answer: `{"events":[...],"next":"<cursor>"}`.
    pub fn answer(&self, next: i64) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(b"{\"events\":[");
        self.for_each_item(|_, item| {
            if out.last() != Some(&b'[') {
                out.push(b',');
            }
            out.extend_from_slice(item);
        });
        out.extend_from_slice(b"],\"next\":\"");
        out.extend_from_slice(next.to_string().as_bytes());
        out.extend_from_slice(b"\"}");
        out
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
    /// Ends the stream (and frees its slot) when the client hangs up while it waits,
    /// rather than at the next write.
    peer: PeerWatch,
    _slot: Slot,
}

/// The events route as Server-Sent Events: `id:` is the cursor (so `Last-Event-ID`
/// resumes), keep-alive comments every 15 s. Pull-based: rows are read only when the
/// client takes more, so a slow reader holds no buffer and never slows routing.
pub fn sse_response(reader: InboxReader, since: i64, slot: Slot, peer: PeerWatch) -> HttpResponse {
    let mut pending = VecDeque::new();
    pending.push_back(web::Bytes::from_static(b": connected\n\n"));
    let state = SseState {
        reader,
        cursor: since,
        pending,
        peer,
        _slot: slot,
    };
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(chunk) = st.pending.pop_front() {
                return Some((Ok::<_, actix_web::Error>(chunk), st));
            }
            let waited = tokio::select! {
                waited = st.reader.wait(st.cursor, SSE_BATCH, KEEP_ALIVE) => waited,
                () = st.peer.closed() => {
                    tracing::debug!(agent = %st.reader.slug, "event stream ends: the client hung up");
                    return None;
                }
            };
            let batch = match waited {
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
            batch.for_each_item(|cursor, item| {
                let mut chunk = format!("id: {cursor}\nevent: event\ndata: ").into_bytes();
                chunk.extend_from_slice(item);
                chunk.extend_from_slice(b"\n\n");
                st.pending.push_back(web::Bytes::from(chunk));
            });
            st.cursor = last;
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
    use serde_json::{json, Value};

    use super::*;
    use crate::actors::inbox::TailEvent;

    const CONTENT: &str = r#"{"body":"a \"quoted\" line\nand ünïcode","msgtype":"m.text"}"#;

    fn expected(cursor: i64, mentioned: bool) -> Value {
        json!({
            "cursor": cursor.to_string(),
            "room_id": "!r:hs",
            "event_id": format!("$e{cursor}"),
            "sender": "@h:hs",
            "type": "m.room.message",
            "content": serde_json::from_str::<Value>(CONTENT).unwrap(),
            "origin_server_ts": 7,
            "mentioned": mentioned,
        })
    }

    fn tail_entry(cursor: i64, mentioned: bool) -> TailEntry {
        TailEntry {
            cursor,
            mentioned,
            event: Arc::new(TailEvent {
                room_id: "!r:hs".try_into().unwrap(),
                event_id: format!("$e{cursor}").try_into().unwrap(),
                sender: "@h:hs".try_into().unwrap(),
                event_type: "m.room.message".into(),
                content: RawValue::from_string(CONTENT.into()).unwrap(),
                origin_server_ts: 7,
                json_fields: Default::default(),
            }),
        }
    }

    fn row(cursor: i64, mentioned: bool) -> InboxRow {
        InboxRow {
            cursor,
            room_id: "!r:hs".into(),
            event_id: format!("$e{cursor}"),
            sender: "@h:hs".into(),
            event_type: "m.room.message".into(),
            content: RawValue::from_string(CONTENT.into()).unwrap(),
            origin_server_ts: 7,
            mentioned,
        }
    }

    /// The answer written from fragments is the JSON the bridge documents, from the tail
    /// (whose shared members are reused by a second reader) and from the store alike.
    #[test]
    fn answers_are_the_documented_json() {
        let want = json!({ "events": [expected(3, true), expected(4, false)], "next": "4" });
        let tail = Batch::Tail(vec![tail_entry(3, true), tail_entry(4, false)]);
        for _ in 0..2 {
            let got: Value = serde_json::from_slice(&tail.answer(4)).unwrap();
            assert_eq!(got, want);
        }
        let store = Batch::Store(vec![row(3, true), row(4, false)]);
        let got: Value = serde_json::from_slice(&store.answer(4)).unwrap();
        assert_eq!(got, want);
        let empty: Value = serde_json::from_slice(&Batch::Tail(vec![]).answer(9)).unwrap();
        assert_eq!(empty, json!({ "events": [], "next": "9" }));
    }

    /// Two recipients of one event share its members, and keep their own cursor and
    /// mention flag.
    #[test]
    fn recipients_share_members_not_cursors() {
        let first = tail_entry(10, true);
        let second = TailEntry {
            cursor: 11,
            mentioned: false,
            event: first.event.clone(),
        };
        let a: Value = serde_json::from_slice(&Batch::Tail(vec![first]).answer(10)).unwrap();
        let b: Value = serde_json::from_slice(&Batch::Tail(vec![second]).answer(11)).unwrap();
        assert_eq!(a["events"][0]["cursor"], "10");
        assert_eq!(a["events"][0]["mentioned"], true);
        assert_eq!(b["events"][0]["cursor"], "11");
        assert_eq!(b["events"][0]["mentioned"], false);
        assert_eq!(a["events"][0]["content"], b["events"][0]["content"]);
    }
}
