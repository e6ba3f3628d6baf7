//! Prometheus metrics. One process-wide registry (the `prometheus` crate's usual shape);
//! labels are bounded sets (routes, endpoints, outcomes, event types), never agent slugs.

use std::sync::LazyLock;

use prometheus::{
    core::Collector, exponential_buckets, Encoder, Histogram, HistogramOpts, HistogramVec,
    IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Every metric the daemon exports.
pub struct Metrics {
    registry: Registry,
    /// `process_*` (CPU, memory, open files, start time): no prefix.
    process: Registry,
    names: Vec<String>,
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
    pub last_transaction_timestamp: IntGauge,
    /// Bridge request latency by route: from the request's arrival to its answer's head
    /// (a stream's head, not its end).
    pub bridge_latency: HistogramVec,
    /// Store group-commit batch sizes (transactions per commit).
    pub commit_batch: Histogram,
    /// 1 while this replica is the leader (always, alone).
    pub replica_leader: IntGauge,
    /// Bridge calls sent on to the agent's owner replica, by outcome (`answered`,
    /// `unreachable`, `failed`).
    pub forwarded: IntCounterVec,
    /// Encrypted room events for agents, by outcome: `decrypted`, `undecrypted` (no
    /// recipient's machine had the room key), `redelivered` (decrypted when its key came
    /// in a later transaction, and given again).
    pub e2ee_events: IntCounterVec,
    /// End-to-end encryption failures by stage: `unreadable` (a part of a transaction),
    /// `machine` (opening an agent's machine), `to_device`, `requests` (the machine's
    /// key uploads, queries, claims, to-device sends), `decrypt`, `late_keys` (reading the
    /// events a late key may decrypt).
    pub e2ee_failures: IntCounterVec,
    /// Agents' crypto machines open now (in memory).
    pub e2ee_machines_open: IntGauge,
}

impl Metrics {
    fn new() -> Self {
        let registry = Registry::new_custom(Some(PREFIX.into()), None).expect("registry");
        let mut m = Metrics {
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
            last_transaction_timestamp: IntGauge::new(
                "last_transaction_timestamp_seconds",
                "Unix time of the last transaction received",
            )
            .unwrap(),
            bridge_latency: HistogramVec::new(
                HistogramOpts::new(
                    "bridge_request_seconds",
                    "Bridge request latency, to the answer's head",
                )
                .buckets(exponential_buckets(0.0001, 2.0, 18).unwrap()),
                &["route"],
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
            process: Registry::new(),
            e2ee_events: IntCounterVec::new(
                Opts::new(
                    "e2ee_events_total",
                    "Encrypted room events for agents, by outcome",
                ),
                &["outcome"],
            )
            .unwrap(),
            e2ee_failures: IntCounterVec::new(
                Opts::new(
                    "e2ee_failures_total",
                    "End-to-end encryption failures, by stage",
                ),
                &["stage"],
            )
            .unwrap(),
            e2ee_machines_open: IntGauge::new(
                "e2ee_machines_open",
                "Agents' crypto machines open now",
            )
            .unwrap(),
            names: Vec::new(),
        };
        let r = &m.registry;
        let mut names = Vec::new();
        register(r, &mut names, m.transactions.clone());
        register(r, &mut names, m.invites.clone());
        register(r, &mut names, m.effects.clone());
        register(r, &mut names, m.effects_pending.clone());
        register(r, &mut names, m.replica_leader.clone());
        register(r, &mut names, m.forwarded.clone());
        register(r, &mut names, m.e2ee_events.clone());
        register(r, &mut names, m.e2ee_failures.clone());
        register(r, &mut names, m.e2ee_machines_open.clone());
        register(r, &mut names, m.events_received.clone());
        register(r, &mut names, m.inbox_deliveries.clone());
        register(r, &mut names, m.events_duplicate.clone());
        register(r, &mut names, m.inbound_events_skipped.clone());
        register(r, &mut names, m.inbox_depth.clone());
        register(r, &mut names, m.bridge_requests.clone());
        register(r, &mut names, m.hs_latency.clone());
        register(r, &mut names, m.hs_retries.clone());
        register(r, &mut names, m.agents_live.clone());
        register(r, &mut names, m.typing_active.clone());
        register(r, &mut names, m.streams_open.clone());
        register(r, &mut names, m.last_transaction_timestamp.clone());
        register(r, &mut names, m.bridge_latency.clone());
        let build = IntGaugeVec::new(
            Opts::new(
                "build_info",
                "The running build: 1, labelled with its version",
            ),
            &["version"],
        )
        .unwrap();
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        register(r, &mut names, build);
        // The process's own metrics carry their standard unprefixed names.
        #[cfg(target_os = "linux")]
        m.process
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .unwrap();
        register(r, &mut names, m.commit_batch.clone());
        m.names = names;
        m
    }

    /// The full name of every metric of the daemon's own (`process_*` aside), registered
    /// or not yet observed.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::with_capacity(8 * 1024);
        TextEncoder::new()
            .encode(
                &[self.registry.gather(), self.process.gather()].concat(),
                &mut buf,
            )
            .expect("text encoding cannot fail");
        String::from_utf8(buf).expect("prometheus text is UTF-8")
    }
}

/// One open event stream (an inbox reader's or the live view's), counted in
/// `event_streams_open` while it lives.
pub struct OpenStream(());

impl OpenStream {
    pub fn count() -> Self {
        METRICS.streams_open.inc();
        Self(())
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        METRICS.streams_open.dec();
    }
}

/// Registers `collector` in `registry` and notes its full names in `names`.
fn register<C: Collector + 'static>(registry: &Registry, names: &mut Vec<String>, collector: C) {
    names.extend(
        collector
            .desc()
            .iter()
            .map(|d| format!("{PREFIX}_{}", d.fq_name)),
    );
    registry
        .register(Box::new(collector))
        .expect("unique names");
}

/// The prefix of the daemon's own metrics.
const PREFIX: &str = "mosaic_as";

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Names follow Prometheus' conventions: the prefix, lower snake case, base units
    /// spelled out (`_seconds`, `_bytes`), timestamps as `_timestamp_seconds`. (Types are
    /// checked by `promtool check metrics` on a live daemon: tests/dashboards.rs.)
    #[test]
    fn names_follow_the_conventions() {
        let names = METRICS.names();
        assert!(names.len() >= 20, "{names:?}");
        for n in names {
            let rest = n.strip_prefix("mosaic_as_").expect(n);
            assert!(
                rest.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{n}"
            );
            for bad in ["unixtime", "_ms", "millis", "_kb", "_mb", "_percent", "__"] {
                assert!(!n.contains(bad), "{n} contains {bad}");
            }
        }
        let mut sorted = names.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "names are unique");
    }

    /// The exposition holds the build's version and the process's standard metrics.
    #[test]
    fn exposition_has_build_info_and_process_metrics() {
        let text = METRICS.render();
        let version = env!("CARGO_PKG_VERSION");
        assert!(
            text.contains(&format!("mosaic_as_build_info{{version=\"{version}\"}} 1")),
            "{text}"
        );
        for m in ["process_cpu_seconds_total", "process_resident_memory_bytes"] {
            assert!(text.contains(&format!("\n{m} ")), "{m} missing");
        }
    }

    /// Every metric a dashboard panel or an alert rule in `deploy/` reads is one the daemon
    /// exports (histogram series by their base name).
    #[test]
    fn deploy_files_read_only_exported_metrics() {
        let files = [
            include_str!("../deploy/grafana/mosaic-as.json"),
            include_str!("../deploy/prometheus/alerts.yml"),
        ];
        let known = METRICS.names();
        let re = regex::Regex::new(r"\b(mosaic_as_[a-z0-9_]+|process_[a-z0-9_]+)").unwrap();
        let mut seen = 0;
        for text in files {
            for m in re.find_iter(text) {
                let name = m.as_str();
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .filter(|b| known.iter().any(|k| k == b))
                    .unwrap_or(name);
                let ok = known.iter().any(|k| k == base)
                    || [
                        "process_cpu_seconds_total",
                        "process_resident_memory_bytes",
                        "process_open_fds",
                        "process_max_fds",
                        "process_start_time_seconds",
                    ]
                    .contains(&base);
                assert!(ok, "{name} is not a metric of the daemon");
                seen += 1;
            }
        }
        assert!(seen >= 10, "the deploy files read {seen} metrics");
    }
}
