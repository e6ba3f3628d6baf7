//! An agent's inbox as Server-Sent Events: `id:` is the cursor (so `Last-Event-ID`
//! resumes), keep-alive comments every 15 s. Pull-based: entries are read only when the
//! client takes more, so a slow reader holds no buffer and never slows routing. A stream
//! lives at most `limits.stream_max_s`, then ends (the client reconnects with its cursor),
//! so nobody holds an agent's stream slots forever.

use std::{
    collections::VecDeque,
    future::Future,
    time::{Duration, Instant},
};

use bytes::Bytes;
use futures_util::Stream;

use super::read::{write_item, InboxReader};

/// SSE keep-alive comment interval.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Entries read per step.
const SSE_BATCH: usize = 100;

/// Tells a stream that its client hung up (the HTTP layer knows how).
pub trait HangUp {
    /// Completes once the client has gone; never, when that cannot be known.
    fn closed(&self) -> impl Future<Output = ()>;
}

struct SseState<H> {
    reader: InboxReader,
    cursor: i64,
    pending: VecDeque<Bytes>,
    /// Ends the stream (and frees its slot) when the client hangs up while it waits,
    /// rather than at the next write.
    peer: H,
    /// When the stream ends whatever happens.
    ends_at: Instant,
}

/// The chunks of the stream: a `: connected` comment, then one `event` per inbox entry
/// after `since` (preceded by an `event: gap` when retention removed entries the reader
/// had not read), and keep-alive comments while there is none. Ends when the client hangs
/// up, the store fails, or `max_life` has passed (after what it has read is sent).
pub fn sse_stream<H: HangUp>(
    reader: InboxReader,
    since: i64,
    peer: H,
    max_life: Duration,
) -> impl Stream<Item = Result<Bytes, std::convert::Infallible>> {
    let mut pending = VecDeque::new();
    pending.push_back(Bytes::from_static(b": connected\n\n"));
    let state = SseState {
        reader,
        cursor: since,
        pending,
        peer,
        ends_at: Instant::now() + max_life,
    };
    futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(chunk) = st.pending.pop_front() {
                return Some((Ok(chunk), st));
            }
            let left = st.ends_at.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::debug!(agent = %st.reader.slug(), "event stream ends: its maximum life passed");
                return None;
            }
            let waited = tokio::select! {
                waited = st.reader.wait(st.cursor, SSE_BATCH, KEEP_ALIVE.min(left)) => waited,
                () = st.peer.closed() => {
                    tracing::debug!(agent = %st.reader.slug(), "event stream ends: the client hung up");
                    return None;
                }
            };
            let batch = match waited {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::warn!(agent = %st.reader.slug(), error = %e, "event stream ends: store error");
                    return None;
                }
            };
            if batch.gap {
                st.pending
                    .push_back(Bytes::from_static(b"event: gap\ndata: {\"gap\":true}\n\n"));
            }
            let Some(last) = batch.entries.last().map(|e| e.cursor) else {
                st.pending
                    .push_back(Bytes::from_static(b": keep-alive\n\n"));
                continue;
            };
            for entry in &batch.entries {
                let mut chunk = format!("id: {}\nevent: event\ndata: ", entry.cursor).into_bytes();
                write_item(&mut chunk, entry);
                chunk.extend_from_slice(b"\n\n");
                st.pending.push_back(Bytes::from(chunk));
            }
            st.cursor = last;
        }
    })
}
