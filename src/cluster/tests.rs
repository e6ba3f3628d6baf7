//! Replicas on one real PostgreSQL database (each test its own): ownership claimed once
//! and taken over only after the owner's lease expired, one leader at a time with the
//! lock passing on when the leader's connection ends, and commit notices reaching the
//! other replicas in commit order.

use std::{sync::Mutex, time::Duration};

use super::*;
use crate::{
    config::SyncMode,
    store::{
        postgres::PgStore,
        tests::{database::TestDatabase, delivery, txn},
        Commits, MembershipChange, WriteOp,
    },
};

async fn store(db: &TestDatabase) -> PgStore {
    PgStore::open(&db.url, None, SyncMode::Normal)
        .await
        .unwrap()
}

fn replica(s: &PgStore, port: u16, takeover: Duration) -> Arc<Cluster> {
    let url = Url::parse(&format!("http://127.0.0.1:{port}")).unwrap();
    Cluster::replica(s.pool().clone(), url, takeover)
}

fn slug(s: &str) -> crate::ids::AgentSlug {
    crate::ids::AgentSlug::parse(s).unwrap()
}

#[tokio::test]
async fn an_agent_has_one_owner_until_its_lease_expires() {
    let db = TestDatabase::create().await;
    let s = store(&db).await;
    let (a, b) = (
        replica(&s, 1001, Duration::from_secs(10)),
        replica(&s, 1002, Duration::from_secs(10)),
    );
    lease::renew(&a).await.unwrap();
    let x = slug("x");
    assert!(
        matches!(b.owner_of(&x).await, Err(ClusterError::LeaseLost)),
        "b holds no lease yet: it claims nothing"
    );
    assert_eq!(a.owner_of(&x).await.unwrap(), Owner::Local);
    lease::renew(&b).await.unwrap();
    let Owner::Remote { url, lease_left } = b.owner_of(&x).await.unwrap() else {
        panic!("a claimed x first");
    };
    assert_eq!(url.port(), Some(1001));
    assert!(lease_left > Duration::from_secs(5), "{lease_left:?}");
    assert_eq!(b.owner_of(&slug("y")).await.unwrap(), Owner::Local);

    // a's lease ends: b takes x over (the owner of a live lease is never displaced).
    sqlx::query("UPDATE replicas SET expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(a.id())
        .execute(s.pool())
        .await
        .unwrap();
    b.forget_owner(&x);
    assert_eq!(b.owner_of(&x).await.unwrap(), Owner::Local);
    let epoch: i64 = sqlx::query_scalar("SELECT epoch FROM agent_owners WHERE slug = 'x'")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(epoch, 2, "the takeover moved the fencing token");
    // a, paused past its lease, renews it: what it owned before is asked for again, and
    // x stays with b.
    a.shared
        .as_ref()
        .unwrap()
        .valid_until_ms
        .store(0, Ordering::Release);
    lease::renew(&a).await.unwrap();
    assert!(
        matches!(a.owner_of(&x).await.unwrap(), Owner::Remote { .. }),
        "a came back: x stays with b"
    );

    // A replica that leaves releases at once.
    lease::release(&b).await;
    assert!(!b.lease_is_valid());
    a.forget_owner(&x);
    assert_eq!(a.owner_of(&x).await.unwrap(), Owner::Local);
}

#[tokio::test]
async fn one_leader_at_a_time_and_the_next_when_it_goes() {
    let db = TestDatabase::create().await;
    let s = store(&db).await;
    let takeover = Duration::from_secs(3);
    let (a, b) = (replica(&s, 1, takeover), replica(&s, 2, takeover));
    let a_tasks = [
        tokio::spawn(lease::run(a.clone())),
        tokio::spawn(leader::run(a.clone())),
    ];
    wait_for(|| a.is_leader(), "a leads").await;
    let b_tasks = [
        tokio::spawn(lease::run(b.clone())),
        tokio::spawn(leader::run(b.clone())),
    ];
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(a.is_leader() && !b.is_leader(), "one leader");
    // a's tasks end (its connection closes, as when the process dies).
    for t in a_tasks {
        t.abort();
    }
    wait_for(|| b.is_leader(), "b leads after a").await;
    for t in b_tasks {
        t.abort();
    }
}

async fn wait_for(f: impl Fn() -> bool, what: &str) {
    for _ in 0..100 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out: {what}");
}

#[derive(Default)]
struct Seen {
    notices: Mutex<Vec<crate::store::notice::CommitNotice>>,
    resyncs: Mutex<usize>,
}

impl listen::Replicated for Seen {
    fn apply(&self, notice: crate::store::notice::CommitNotice) {
        self.notices.lock().unwrap().push(notice);
    }

    fn resync(&self) -> futures_util::future::BoxFuture<'_, ()> {
        *self.resyncs.lock().unwrap() += 1;
        Box::pin(async {})
    }
}

#[tokio::test]
async fn commit_notices_reach_another_replica_in_commit_order() {
    let db = TestDatabase::create().await;
    let (writer, reader) = (store(&db).await, store(&db).await);
    let seen = Arc::new(Seen::default());
    let listening = tokio::spawn(listen::run(reader.pool().clone(), seen.clone()));
    wait_for(|| *seen.resyncs.lock().unwrap() == 1, "listening").await;
    let change = |joined| MembershipChange {
        slug: slug("a"),
        room_id: "!r:hs".try_into().unwrap(),
        joined,
    };
    writer
        .apply(&[WriteOp::Membership(change(true))])
        .await
        .unwrap();
    writer
        .apply(&[
            WriteOp::Transaction(txn("t1", vec![delivery("$e1", &["a", "b"])])),
            WriteOp::Membership(change(false)),
        ])
        .await
        .unwrap();
    wait_for(|| seen.notices.lock().unwrap().len() == 2, "two notices").await;
    let notices = seen.notices.lock().unwrap().clone();
    assert!(notices.iter().all(|n| n.origin == writer.origin()));
    assert_eq!(
        notices[0].memberships,
        [(slug("a"), "!r:hs".try_into().unwrap(), true)]
    );
    assert_eq!(
        notices[1].memberships,
        [(slug("a"), "!r:hs".try_into().unwrap(), false)]
    );
    let grew: Vec<_> = notices[1].inbox.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(grew, ["a", "b"]);
    listening.abort();
}
