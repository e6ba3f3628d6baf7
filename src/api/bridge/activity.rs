//! `GET /bridge/v1/activity`: the live view of traffic and errors (`read` scope). With
//! `Accept: text/event-stream`, a stream: the errors kept (up to `replay`, or those after
//! `Last-Event-ID`), then a `summary` event every second and an `error` event per new
//! error (`id:` = its `seq`); otherwise one JSON reading and the errors kept. A stream
//! counts among the open streams, lives at most `limits.stream_max_s`, and ends when the
//! daemon stops.

use std::{
    collections::VecDeque,
    sync::Arc,
    time::{Duration, Instant},
};

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use bytes::Bytes;
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::{self, error::RecvError};
use utoipa::{IntoParams, ToSchema};

use crate::{
    activity::{
        summary::{Summary, Totals},
        ActivityError, Subscription, REPLAYED,
    },
    actors::AppState,
    api::{
        error::ApiError,
        grant::{Grant, ReadScope},
    },
    metrics::OpenStream,
};

/// How often a stream sends a summary.
const EVERY: Duration = Duration::from_secs(1);

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActivityQuery {
    /// How many of the errors kept to send first, newest last: 0 to 100 (default 100).
    #[param(value_type = Option<u32>, minimum = 0, maximum = 100)]
    replay: Option<String>,
}

/// A reading of the traffic and the errors kept.
#[derive(Serialize, ToSchema)]
pub(crate) struct ActivitySnapshot {
    summary: Summary,
    /// Oldest first.
    #[schema(value_type = Vec<ActivityError>)]
    errors: Vec<Arc<ActivityError>>,
}

/// `replay`: how many kept errors to send.
fn replay_param(raw: Option<&str>) -> Result<usize, ApiError> {
    let max = REPLAYED as u64;
    super::events::parse_bounded("replay", raw, max, 0, max).map(|n| n as usize)
}

#[utoipa::path(
    get,
    path = "/bridge/v1/activity",
    tag = "activity",
    params(
        ActivityQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "With a stream: the last error `id:` seen; only later errors are sent again"),
    ),
    responses(
        (status = 200, description = "A reading (`Accept: application/json`), or a stream of `summary` events every second and `error` events (`Accept: text/event-stream`)",
            content((ActivitySnapshot = "application/json"), (Summary = "text/event-stream"))),
    ),
)]
pub async fn activity(
    app: web::Data<AppState>,
    req: HttpRequest,
    _: Grant<ReadScope>,
    query: web::Query<ActivityQuery>,
) -> Result<HttpResponse, ApiError> {
    let replay = replay_param(query.replay.as_deref())?;
    let sse = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if !sse {
        let mut errors = app.activity.recent();
        errors.drain(..errors.len().saturating_sub(replay));
        let summary = Summary::read(app.agents.len(), None);
        return Ok(HttpResponse::Ok().json(ActivitySnapshot { summary, errors }));
    }
    let after = req
        .headers()
        .get("Last-Event-ID")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let Some(mut subscription) = app.activity.subscribe(after) else {
        return Err(ApiError::Unavailable {
            error: "the daemon is stopping".into(),
            retry_after: Some(Duration::from_secs(5)),
        });
    };
    let max_life = app.config.limits.stream_max;
    let skip = subscription.replay.len().saturating_sub(replay);
    subscription.replay.drain(..skip);
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream(app.into_inner(), subscription, max_life)))
}

struct StreamState {
    app: Arc<AppState>,
    errors: broadcast::Receiver<Arc<ActivityError>>,
    pending: VecDeque<Bytes>,
    tick: tokio::time::Interval,
    last: (Totals, Instant),
    ends_at: Instant,
    _open: OpenStream,
}

fn error_event(error: &ActivityError) -> Bytes {
    let json = serde_json::to_string(error).expect("an error frame serialises");
    Bytes::from(format!("id: {}\nevent: error\ndata: {json}\n\n", error.seq))
}

fn summary_event(summary: &Summary) -> Bytes {
    let json = serde_json::to_string(summary).expect("a summary serialises");
    Bytes::from(format!("event: summary\ndata: {json}\n\n"))
}

/// `: connected`, the replayed errors and a first summary, then a summary every second
/// and each error as it happens; ends when the hub closes (the daemon stops) or the
/// stream's life is over.
fn stream(
    app: Arc<AppState>,
    subscription: Subscription,
    max_life: Duration,
) -> impl Stream<Item = Result<Bytes, std::convert::Infallible>> {
    let first = Summary::read(app.agents.len(), None);
    let mut pending = VecDeque::new();
    pending.push_back(Bytes::from_static(b": connected\n\n"));
    pending.extend(subscription.replay.iter().map(|e| error_event(e)));
    pending.push_back(summary_event(&first));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + EVERY, EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let state = StreamState {
        app,
        errors: subscription.errors,
        pending,
        tick,
        last: (first.totals, Instant::now()),
        ends_at: Instant::now() + max_life,
        _open: OpenStream::count(),
    };
    futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(chunk) = st.pending.pop_front() {
                return Some((Ok(chunk), st));
            }
            if Instant::now() >= st.ends_at {
                return None;
            }
            tokio::select! {
                received = st.errors.recv() => match received {
                    Ok(error) => st.pending.push_back(error_event(&error)),
                    Err(RecvError::Lagged(missed)) => st.pending.push_back(Bytes::from(
                        format!(": {missed} errors skipped (this stream fell behind)\n\n"),
                    )),
                    Err(RecvError::Closed) => return None,
                },
                _ = st.tick.tick() => {
                    let (then, at) = &st.last;
                    let summary = Summary::read(st.app.agents.len(), Some((then, at.elapsed())));
                    st.last = (summary.totals, Instant::now());
                    st.pending.push_back(summary_event(&summary));
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_is_bounded() {
        assert_eq!(replay_param(None).unwrap(), REPLAYED);
        assert_eq!(replay_param(Some("0")).unwrap(), 0);
        assert_eq!(replay_param(Some("100")).unwrap(), 100);
        for bad in ["101", "-1", "x", ""] {
            assert!(replay_param(Some(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn events_are_sse_frames_without_secrets() {
        let mut error = ActivityError::bridge("/bridge/v1/messages", "POST", 502);
        error.seq = 7;
        let error = error.with_errcode("M_FORBIDDEN");
        let text = String::from_utf8(error_event(&error).to_vec()).unwrap();
        assert!(text.starts_with("id: 7\nevent: error\ndata: {"), "{text}");
        assert!(text.ends_with("}\n\n"));
        let data: serde_json::Value =
            serde_json::from_str(text.lines().nth(2).unwrap().strip_prefix("data: ").unwrap())
                .unwrap();
        assert_eq!(data["errcode"], "M_FORBIDDEN");
        assert_eq!(data["source"], "bridge");
        assert_eq!(data["status"], 502);
        // What a bridge error holds, and nothing else (no agent or request id given).
        let keys: Vec<&String> = data.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["errcode", "method", "seq", "source", "status", "target", "time_ms"]
        );
    }
}
