//! The PostgreSQL store goes away under load and comes back: a TCP proxy between the daemon
//! and the database is cut while homeservers push transactions. Nothing pushed while the
//! store is gone is acknowledged (each is answered 500, so the homeserver keeps it and
//! retries); once the proxy lets connections through again the retries are recorded, and
//! every event is in its agent's inbox exactly once, in order, also after a restart. Asks
//! for PostgreSQL itself, whatever `MOSAIC_TEST_STORE` says.

pub mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use support::daemon_api::{inbox_ids, put_agent, put_txn};
use support::events::{member_join, text_event};
use support::mock_hs::MockHs;
use support::tcp_proxy::TcpProxy;
use support::{wait_until, DaemonOptions, PgDatabase, TestStore};

/// Homeservers pushing at once, each to an agent and a room of its own.
const PUSHERS: usize = 4;
/// Transactions each pusher sends, one after another.
const TRANSACTIONS: usize = 20;
/// Messages in each transaction.
const EVENTS_PER_TXN: usize = 4;
/// How long the store stays away: longer than a commit waits for a connection (5 s), so
/// every pusher has a transaction refused meanwhile.
const CUT_FOR: Duration = Duration::from_secs(8);

/// One attempt of one transaction: when it was sent, when it was answered, and how.
#[derive(Debug, Clone)]
struct Attempt {
    txn: String,
    sent: Instant,
    answered: Instant,
    status: StatusCode,
}

/// The event ids pusher `p` sends in its transaction `t`.
fn event_ids(p: usize, t: usize) -> Vec<String> {
    (0..EVENTS_PER_TXN)
        .map(|e| format!("$p{p}-t{t}-e{e}"))
        .collect()
}

#[test]
fn transactions_while_the_store_is_away_are_refused_and_recorded_once_it_is_back() {
    let database = Arc::new(PgDatabase::create());
    let proxy = TcpProxy::start(&database.server_addr());
    let store = TestStore::Shared {
        url: database.url_via("127.0.0.1", proxy.port()),
        database,
    };
    let options = DaemonOptions {
        store,
        ..Default::default()
    };
    let (_mock, mut d) = MockHs::with_daemon("pg-outage", options);
    for p in 0..PUSHERS {
        let agent = format!("pusher{p}");
        put_agent(&d, &agent);
        let join = member_join(
            &format!("$join-{p}"),
            &format!("!room{p}:hs.local"),
            &d.agent_user(&agent),
        );
        let r = put_txn(&d, &format!("join-{p}"), vec![join]);
        assert_eq!(r.status, StatusCode::OK, "join {p}: {}", r.text);
    }

    // Each pusher is a homeserver: one transaction at a time, each sent again (same id,
    // same events) until it is answered 200.
    let attempts = Arc::new(Mutex::new(Vec::<Attempt>::new()));
    let recorded = Arc::new(AtomicUsize::new(0));
    let pushers: Vec<_> = (0..PUSHERS)
        .map(|p| {
            let (attempts, recorded) = (attempts.clone(), recorded.clone());
            let (base, hs_token) = (d.base_url().to_owned(), d.hs_token().to_owned());
            thread::spawn(move || push(p, &base, &hs_token, &attempts, &recorded))
        })
        .collect();

    // Cut once a part of the load went through.
    wait_until(
        Duration::from_secs(60),
        "transactions before the cut",
        || (recorded.load(Ordering::SeqCst) >= PUSHERS * 3).then_some(()),
    );
    let cut_at = Instant::now();
    proxy.cut();
    thread::sleep(CUT_FOR / 2);
    // Readiness says so meanwhile.
    let (status, body) = d.get("/ready");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "/ready: {body}");
    assert!(
        body.contains("store"),
        "/ready does not name the store: {body}"
    );
    thread::sleep(CUT_FOR / 2);
    let restored_at = Instant::now();
    proxy.restore();
    let before_restore = recorded.load(Ordering::SeqCst);
    for p in pushers {
        p.join().expect("a pusher failed");
    }
    eprintln!(
        "store away {:.1?}: {} connections refused; all {} transactions recorded {:.1?} after \
         the restore ({} had been before it)",
        restored_at - cut_at,
        proxy.refused(),
        PUSHERS * TRANSACTIONS,
        restored_at.elapsed(),
        before_restore,
    );

    // While the store was away: answers, and none of them 200.
    let attempts = attempts.lock().unwrap_or_else(PoisonError::into_inner);
    let during: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| a.sent > cut_at && a.answered < restored_at)
        .collect();
    assert!(
        during.len() >= PUSHERS,
        "too few transactions answered while the store was away: {during:#?}"
    );
    for a in &during {
        assert_eq!(
            a.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{} answered while the store was away: {a:?}",
            a.txn
        );
    }
    let other = attempts
        .iter()
        .find(|a| ![StatusCode::OK, StatusCode::INTERNAL_SERVER_ERROR].contains(&a.status));
    assert!(other.is_none(), "neither 200 nor 500: {other:?}");
    let refused = attempts.iter().filter(|a| a.status != StatusCode::OK);
    eprintln!(
        "{} attempts refused, {} of them sent and answered while the store was away",
        refused.count(),
        during.len()
    );
    drop(attempts);

    // Ready again without a restart; every event once, in order; the same from the store
    // after a restart.
    let back = Instant::now();
    d.wait_ready(Duration::from_secs(30));
    eprintln!(
        "/ready 200 again {:.1?} after the pushers were done",
        back.elapsed()
    );
    let expected =
        |p: usize| -> Vec<String> { (0..TRANSACTIONS).flat_map(|t| event_ids(p, t)).collect() };
    for p in 0..PUSHERS {
        assert_eq!(
            inbox_ids(&d, &format!("pusher{p}")),
            expected(p),
            "pusher{p}"
        );
    }
    d.restart();
    d.wait_ready(Duration::from_secs(30));
    for p in 0..PUSHERS {
        let ids = inbox_ids(&d, &format!("pusher{p}"));
        assert_eq!(ids, expected(p), "pusher{p} after the restart");
    }
}

/// Pusher `p`: its transactions in order, each until it is answered 200.
fn push(p: usize, base: &str, hs_token: &str, log: &Mutex<Vec<Attempt>>, recorded: &AtomicUsize) {
    let room = format!("!room{p}:hs.local");
    let http = support::http_client(Duration::from_secs(60));
    for t in 0..TRANSACTIONS {
        let txn = format!("p{p}-t{t}");
        let events: Vec<_> = event_ids(p, t)
            .iter()
            .map(|id| text_event(id, &room, "@human:hs.local", id))
            .collect();
        let body = serde_json::json!({ "events": events });
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let sent = Instant::now();
            let answer = http
                .put(format!("{base}/_matrix/app/v1/transactions/{txn}"))
                .bearer_auth(hs_token)
                .json(&body)
                .send();
            let answered = Instant::now();
            let status = match answer {
                Ok(resp) => resp.status(),
                Err(e) => panic!("{txn}: the daemon did not answer: {e}"),
            };
            log.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Attempt {
                    txn: txn.clone(),
                    sent,
                    answered,
                    status,
                });
            if status == StatusCode::OK {
                recorded.fetch_add(1, Ordering::SeqCst);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{txn} never recorded (last: {status})"
            );
            thread::sleep(Duration::from_millis(200));
        }
        thread::sleep(Duration::from_millis(50));
    }
}
