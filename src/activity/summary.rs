//! The traffic summary of the live view, read from the counters the daemon keeps anyway
//! ([`METRICS`]): totals since the start, and rates between two readings. Read only when
//! someone watches (once a second per watcher), so the request paths pay nothing for it.

use std::time::Duration;

use prometheus::{core::Collector, proto::MetricFamily, IntCounterVec};
use serde::Serialize;
use utoipa::ToSchema;

use crate::metrics::METRICS;

/// Bridge requests by status class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, ToSchema)]
pub struct ByClass {
    #[serde(rename = "2xx")]
    pub ok: f64,
    #[serde(rename = "3xx")]
    pub redirect: f64,
    #[serde(rename = "4xx")]
    pub client_error: f64,
    #[serde(rename = "5xx")]
    pub server_error: f64,
}

/// Counts since the daemon started, or per second (the same fields). Counts are whole
/// numbers; JSON has one type of number for both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, ToSchema)]
pub struct Traffic {
    /// Bridge API requests answered, by status class.
    pub requests: ByClass,
    /// Transactions the homeserver pushed (retries included).
    pub transactions: f64,
    /// Events in them.
    pub events: f64,
    /// Inbox items written (one per agent an event concerns).
    pub deliveries: f64,
    /// Homeserver calls that failed for good: 429 or 5xx, unreachable, unreadable answers.
    pub homeserver_errors: f64,
    /// Homeserver call attempts retried.
    pub homeserver_retries: f64,
}

/// Counts since the start.
pub type Totals = Traffic;
/// Rates per second.
pub type Rates = Traffic;

/// One reading: the totals, the gauges, and (in a stream) the rates since the last one.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Summary {
    /// When, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    pub totals: Traffic,
    /// Per second over the `interval_ms` before this reading (stream frames only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_s: Option<Traffic>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u64>,
    /// Agent actors running on this replica.
    pub agents_live: u64,
    /// Event streams open (inbox long-polls and streams, and this view's).
    pub streams_open: i64,
    /// Effects of transactions waiting in the outbox.
    pub outbox_pending: i64,
}

impl Summary {
    /// A reading now; `before` (an earlier reading and its age) adds the rates.
    pub fn read(agents_live: usize, before: Option<(&Totals, Duration)>) -> Self {
        let totals = totals();
        let per_s = before.map(|(then, dt)| rates(then, &totals, dt));
        Self {
            time_ms: super::now_ms(),
            totals,
            per_s,
            interval_ms: before.map(|(_, dt)| dt.as_millis() as u64),
            agents_live: agents_live as u64,
            streams_open: METRICS.streams_open.get(),
            outbox_pending: METRICS.effects_pending.get(),
        }
    }
}

/// The totals now, from the counters.
pub fn totals() -> Totals {
    let mut requests = ByClass::default();
    for family in METRICS.bridge_requests.collect() {
        for m in family.get_metric() {
            let n = m.get_counter().get_value();
            let class = label(m.get_label(), "status").and_then(|s| s.bytes().next());
            match class {
                Some(b'2') => requests.ok += n,
                Some(b'3') => requests.redirect += n,
                Some(b'4') => requests.client_error += n,
                Some(b'5') => requests.server_error += n,
                _ => {}
            }
        }
    }
    let failed = |outcome: &str| matches!(outcome, "server_error" | "unreachable" | "bad_response");
    let homeserver_errors = METRICS
        .hs_latency
        .collect()
        .iter()
        .flat_map(MetricFamily::get_metric)
        .filter(|m| label(m.get_label(), "outcome").is_some_and(failed))
        .map(|m| m.get_histogram().get_sample_count())
        .sum::<u64>() as f64;
    Traffic {
        requests,
        transactions: sum(&METRICS.transactions),
        events: sum(&METRICS.events_received),
        deliveries: METRICS.inbox_deliveries.get() as f64,
        homeserver_errors,
        homeserver_retries: sum(&METRICS.hs_retries),
    }
}

/// The total of every series of `counters`: 0 (not `-0`, the empty `f64` sum) when none.
fn sum(counters: &IntCounterVec) -> f64 {
    counters
        .collect()
        .iter()
        .flat_map(MetricFamily::get_metric)
        .map(|m| m.get_counter().get_value())
        .fold(0.0, |total, v| total + v)
}

fn label<'a>(labels: &'a [prometheus::proto::LabelPair], name: &str) -> Option<&'a str> {
    labels.iter().find(|l| l.name() == name).map(|l| l.value())
}

/// Per second between two readings `dt` apart.
pub fn rates(then: &Totals, now: &Totals, dt: Duration) -> Rates {
    let secs = dt.as_secs_f64().max(0.001);
    let rate = |a: f64, b: f64| {
        let per_s = (b - a).max(0.0) / secs;
        (per_s * 100.0).round() / 100.0
    };
    let (a, b) = (&then.requests, &now.requests);
    Traffic {
        requests: ByClass {
            ok: rate(a.ok, b.ok),
            redirect: rate(a.redirect, b.redirect),
            client_error: rate(a.client_error, b.client_error),
            server_error: rate(a.server_error, b.server_error),
        },
        transactions: rate(then.transactions, now.transactions),
        events: rate(then.events, now.events),
        deliveries: rate(then.deliveries, now.deliveries),
        homeserver_errors: rate(then.homeserver_errors, now.homeserver_errors),
        homeserver_retries: rate(then.homeserver_retries, now.homeserver_retries),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A family with no series yet totals 0, which JSON spells `0.0`, not `-0.0`.
    #[test]
    fn an_empty_family_totals_positive_zero() {
        let empty =
            IntCounterVec::new(prometheus::Opts::new("empty_total", "none"), &["l"]).unwrap();
        let total = sum(&empty);
        assert!(total == 0.0 && total.is_sign_positive(), "{total:?}");
    }

    #[test]
    fn rates_are_differences_over_the_interval() {
        let then = Totals {
            events: 10.0,
            ..Totals::default()
        };
        let mut now = then;
        now.events = 13.0;
        now.requests.server_error = 1.0;
        let r = rates(&then, &now, Duration::from_millis(500));
        assert_eq!(r.events, 6.0);
        assert_eq!(r.requests.server_error, 2.0);
        assert_eq!(r.transactions, 0.0);
        // A counter never goes down; if a reading did, the rate is 0, not negative.
        assert_eq!(rates(&now, &then, Duration::from_secs(1)).events, 0.0);
    }

    #[test]
    fn totals_follow_the_counters() {
        let before = totals();
        METRICS.inbox_deliveries.inc();
        METRICS
            .bridge_requests
            .with_label_values(&["/bridge/v1/summary-test", "503"])
            .inc();
        METRICS
            .hs_retries
            .with_label_values(&["summary_test"])
            .inc();
        let after = totals();
        assert!(after.deliveries > before.deliveries);
        assert!(after.requests.server_error > before.requests.server_error);
        assert!(after.homeserver_retries > before.homeserver_retries);
        let json = serde_json::to_value(Summary::read(3, Some((&before, Duration::from_secs(1)))))
            .unwrap();
        assert_eq!(json["agents_live"], 3);
        assert!(json["per_s"]["requests"]["5xx"].as_f64().unwrap() >= 1.0);
        assert_eq!(json["interval_ms"], 1000);
    }
}
