//! Prometheus metrics. One process-wide registry (the `prometheus` crate's usual shape);
//! labels are bounded sets (routes, endpoints, outcomes, event types), never agent slugs.

use std::sync::LazyLock;

use prometheus::{
    exponential_buckets, Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter,
    IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// Every metric the daemon exports.
pub struct Metrics {
    registry: Registry,
    /// Transactions by outcome: `new`, `duplicate` (a retry: same id, same content),
    /// `id_reused` (a known id with other content, processed as new), `failed`.
    pub transactions: IntCounterVec,
    /// Events received by kind (a bounded set of event types, `other` for the rest).
    pub events_received: IntCounterVec,
    /// Inbox rows written (one per concerned agent).
    pub inbox_deliveries: IntCounter,
    /// Events dropped as already seen in an earlier transaction.
    pub events_duplicate: IntCounter,
    /// Events of recorded transactions that were skipped, by reason (`malformed`,
    /// `invalid_id`, `bad_content`: see `inbound::routing::SkipReason`).
    pub inbound_events_skipped: IntCounterVec,
    /// Invites of agents and the sender bot by outcome: `accepted`, `rejected` (the inviter
    /// is not in `inbound.invite_allow`), `failed` (the join or the rejection failed).
    pub invites: IntCounterVec,
    /// Effects of transactions by kind and outcome (done, ignored, retried, failed).
    pub effects: IntCounterVec,
    /// Effects waiting in the outbox.
    pub effects_pending: IntGauge,
    /// Rows currently in all inboxes (refreshed by the retention job).
    pub inbox_depth: IntGauge,
    /// Bridge requests by route and status.
    pub bridge_requests: IntCounterVec,
    /// Homeserver request latency by endpoint and outcome.
    pub hs_latency: HistogramVec,
    /// Homeserver request retries by endpoint.
    pub hs_retries: IntCounterVec,
    /// Agent actors alive.
    pub agents_live: IntGauge,
    /// Typing indicators currently kept alive.
    pub typing_active: IntGauge,
    /// Event streams (long-poll and SSE) open.
    pub streams_open: IntGauge,
    /// Unix time (seconds) of the last transaction received from the homeserver.
    pub last_transaction_unixtime: IntGauge,
    /// Store group-commit batch sizes (transactions per commit).
    pub commit_batch: Histogram,
    /// 1 while this replica is the leader (always, alone).
    pub replica_leader: IntGauge,
    /// Bridge calls sent on to the agent's owner replica, by outcome (`answered`,
    /// `unreachable`, `failed`).
    pub forwarded: IntCounterVec,
}

impl Metrics {
    fn new() -> Self {
        let registry = Registry::new_custom(Some("mosaic_as".into()), None).expect("registry");
        let m = Metrics {
            transactions: IntCounterVec::new(
                Opts::new(
                    "transactions_total",
                    "Transactions received from the homeserver",
                ),
                &["outcome"],
            )
            .unwrap(),
            events_received: IntCounterVec::new(
                Opts::new("events_received_total", "Events received, by type"),
                &["type"],
            )
            .unwrap(),
            inbox_deliveries: IntCounter::new(
                "inbox_deliveries_total",
                "Events written to agent inboxes",
            )
            .unwrap(),
            events_duplicate: IntCounter::new(
                "events_duplicate_total",
                "Events already seen in an earlier transaction",
            )
            .unwrap(),
            inbound_events_skipped: IntCounterVec::new(
                Opts::new(
                    "inbound_events_skipped_total",
                    "Events of transactions skipped because they cannot be parsed or stored",
                ),
                &["reason"],
            )
            .unwrap(),
            invites: IntCounterVec::new(
                Opts::new("invites_total", "Invites of agents and the sender bot"),
                &["outcome"],
            )
            .unwrap(),
            effects: IntCounterVec::new(
                Opts::new(
                    "effects_total",
                    "Effects of transactions carried out, by outcome",
                ),
                &["kind", "outcome"],
            )
            .unwrap(),
            effects_pending: IntGauge::new("effects_pending", "Effects waiting in the outbox")
                .unwrap(),
            inbox_depth: IntGauge::new("inbox_depth", "Events retained in all inboxes").unwrap(),
            bridge_requests: IntCounterVec::new(
                Opts::new("bridge_requests_total", "Bridge API requests"),
                &["route", "status"],
            )
            .unwrap(),
            hs_latency: HistogramVec::new(
                HistogramOpts::new(
                    "homeserver_request_seconds",
                    "Homeserver request latency (whole call, retries included)",
                )
                .buckets(exponential_buckets(0.0005, 2.0, 16).unwrap()),
                &["endpoint", "outcome"],
            )
            .unwrap(),
            hs_retries: IntCounterVec::new(
                Opts::new("homeserver_retries_total", "Homeserver request retries"),
                &["endpoint"],
            )
            .unwrap(),
            agents_live: IntGauge::new("agents_live", "Agent actors alive").unwrap(),
            typing_active: IntGauge::new("typing_active", "Typing indicators kept alive").unwrap(),
            streams_open: IntGauge::new("event_streams_open", "Open event streams").unwrap(),
            last_transaction_unixtime: IntGauge::new(
                "last_transaction_unixtime",
                "Unix time of the last transaction received",
            )
            .unwrap(),
            commit_batch: Histogram::with_opts(
                HistogramOpts::new("store_commit_batch_size", "Transactions per store commit")
                    .buckets(exponential_buckets(1.0, 2.0, 10).unwrap()),
            )
            .unwrap(),
            replica_leader: IntGauge::new(
                "replica_leader",
                "1 while this replica runs the jobs that run once",
            )
            .unwrap(),
            forwarded: IntCounterVec::new(
                Opts::new(
                    "forwarded_requests_total",
                    "Bridge calls sent on to the replica that owns the agent",
                ),
                &["outcome"],
            )
            .unwrap(),
            registry,
        };
        let r = &m.registry;
        r.register(Box::new(m.transactions.clone())).unwrap();
        r.register(Box::new(m.invites.clone())).unwrap();
        r.register(Box::new(m.effects.clone())).unwrap();
        r.register(Box::new(m.effects_pending.clone())).unwrap();
        r.register(Box::new(m.replica_leader.clone())).unwrap();
        r.register(Box::new(m.forwarded.clone())).unwrap();
        r.register(Box::new(m.events_received.clone())).unwrap();
        r.register(Box::new(m.inbox_deliveries.clone())).unwrap();
        r.register(Box::new(m.events_duplicate.clone())).unwrap();
        r.register(Box::new(m.inbound_events_skipped.clone()))
            .unwrap();
        r.register(Box::new(m.inbox_depth.clone())).unwrap();
        r.register(Box::new(m.bridge_requests.clone())).unwrap();
        r.register(Box::new(m.hs_latency.clone())).unwrap();
        r.register(Box::new(m.hs_retries.clone())).unwrap();
        r.register(Box::new(m.agents_live.clone())).unwrap();
        r.register(Box::new(m.typing_active.clone())).unwrap();
        r.register(Box::new(m.streams_open.clone())).unwrap();
        r.register(Box::new(m.last_transaction_unixtime.clone()))
            .unwrap();
        r.register(Box::new(m.commit_batch.clone())).unwrap();
        m
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::with_capacity(8 * 1024);
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding cannot fail");
        String::from_utf8(buf).expect("prometheus text is UTF-8")
    }
}

/// The process-wide metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// A bounded label for an event type.
pub fn event_type_label(event_type: &str) -> &'static str {
    match event_type {
        "m.room.message" => "m.room.message",
        "m.room.member" => "m.room.member",
        "m.reaction" => "m.reaction",
        "m.room.redaction" => "m.room.redaction",
        "m.typing" => "m.typing",
        "m.receipt" => "m.receipt",
        "m.presence" => "m.presence",
        _ => "other",
    }
}
