//! Agents, their deletion, their inboxes' depths, and provisioning keys, as written and
//! read back.

use super::{commit, delivery, open, sent_key, slug, txn, Backend};
use crate::store::{
    AgentRecord, MembershipChange, ProvisionKey, RequestDigest, Retention, WriteOp,
};

on_every_backend!(
    agents_are_counted_and_named,
    a_deleted_agent_goes_with_its_rows_and_one_made_in_the_same_batch_stays,
    a_provisioning_key_keeps_its_first_answer,
    inbox_depths_count_what_each_inbox_retains,
);

fn agent(name: &str, display_name: Option<&str>) -> WriteOp {
    WriteOp::Agent(AgentRecord {
        slug: slug(name),
        registered: false,
        display_name: display_name.map(Into::into),
        avatar_url: None,
    })
}

async fn agents_are_counted_and_named(backend: Backend) {
    let s = open(backend).await;
    s.ping().await.unwrap();
    assert_eq!(s.agent_count().await.unwrap(), 0);
    assert!(s.agent(&slug("a")).await.unwrap().is_none());
    s.apply(&[
        agent("a", Some("Alpha")),
        agent("b", None),
        agent("c", Some("")),
    ])
    .await
    .unwrap();
    assert_eq!(s.agent_count().await.unwrap(), 3);
    let b = s.agent(&slug("b")).await.unwrap().unwrap();
    assert_eq!(
        (b.registered, b.display_name, b.avatar_url),
        (false, None, None)
    );
    // Only agents with a name that is not empty.
    assert_eq!(
        s.display_names().await.unwrap(),
        [(slug("a"), "Alpha".to_owned())]
    );
}

/// A deletion takes the agent's record, memberships, send keys and inbox; it is applied
/// before the rest of its batch, so an agent of the name made in the same batch stays.
async fn a_deleted_agent_goes_with_its_rows_and_one_made_in_the_same_batch_stays(backend: Backend) {
    let s = open(backend).await;
    let member = |name: &str| {
        WriteOp::Membership(MembershipChange {
            slug: slug(name),
            room_id: "!r".try_into().unwrap(),
            joined: true,
        })
    };
    let sent = |name: &str| WriteOp::Sent {
        key: sent_key(name, "!r", "k"),
        request: RequestDigest::of("m.room.message", b"{}"),
        event_id: "$s".try_into().unwrap(),
    };
    s.apply(&[
        agent("a", Some("A")),
        agent("b", Some("B")),
        member("a"),
        member("b"),
        sent("a"),
        sent("b"),
    ])
    .await
    .unwrap();
    commit(&s, vec![txn("t", vec![delivery("$e", &["a", "b"])])]).await;
    s.apply(&[WriteOp::DeleteAgent(slug("a"))]).await.unwrap();
    assert!(s.agent(&slug("a")).await.unwrap().is_none());
    let members: Vec<_> = s.memberships().await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].0, slug("b"));
    assert!(s
        .sent_event(&sent_key("a", "!r", "k"))
        .await
        .unwrap()
        .is_none());
    assert!(s
        .sent_event(&sent_key("b", "!r", "k"))
        .await
        .unwrap()
        .is_some());
    assert!(s.read_inbox(&slug("a"), 0, 10).await.unwrap().is_empty());
    assert_eq!(s.read_inbox(&slug("b"), 0, 10).await.unwrap().len(), 1);

    // Made again and deleted in one batch, in that order: the deletion goes first.
    s.apply(&[
        agent("b", Some("B2")),
        WriteOp::DeleteAgent(slug("b")),
        member("b"),
    ])
    .await
    .unwrap();
    let b = s.agent(&slug("b")).await.unwrap().unwrap();
    assert_eq!(b.display_name.as_deref(), Some("B2"));
    assert_eq!(
        s.memberships().await.unwrap().len(),
        1,
        "the new membership"
    );
    assert!(s.read_inbox(&slug("b"), 0, 10).await.unwrap().is_empty());
    assert!(s
        .sent_event(&sent_key("b", "!r", "k"))
        .await
        .unwrap()
        .is_none());
}

async fn a_provisioning_key_keeps_its_first_answer(backend: Backend) {
    let s = open(backend).await;
    assert!(s.provision_key("k\u{0}1").await.unwrap().is_none());
    let key = |answer: &str| ProvisionKey {
        txn_id: "k\u{0}1".into(),
        request: RequestDigest::of("provision", answer.as_bytes()),
        answer: answer.into(),
    };
    s.put_provision_key(&key(r#"{"room_id":"!first"}"#))
        .await
        .unwrap();
    s.put_provision_key(&key(r#"{"room_id":"!second"}"#))
        .await
        .unwrap();
    assert_eq!(
        s.provision_key("k\u{0}1").await.unwrap(),
        Some(key(r#"{"room_id":"!first"}"#))
    );
    assert!(s.provision_key("k").await.unwrap().is_none());
}

/// One query answers the depth of every agent asked about, in the order asked, counting
/// each agent's rows only (an event for two agents is one row in each inbox), and follows
/// retention and deletion.
async fn inbox_depths_count_what_each_inbox_retains(backend: Backend) {
    let s = open(backend).await;
    s.apply(&[agent("a", None), agent("b", None), agent("c", None)])
        .await
        .unwrap();
    assert!(s.inbox_depths(&[]).await.unwrap().is_empty());
    let all = [slug("c"), slug("a"), slug("b"), slug("unknown")];
    assert_eq!(s.inbox_depths(&all).await.unwrap(), [0, 0, 0, 0]);
    commit(
        &s,
        vec![
            txn(
                "t1",
                vec![delivery("$1", &["a", "b"]), delivery("$2", &["a"])],
            ),
            txn("t2", vec![delivery("$3", &["a"])]),
        ],
    )
    .await;
    assert_eq!(s.inbox_depths(&all).await.unwrap(), [0, 3, 1, 0]);
    assert_eq!(s.inbox_depth().await.unwrap(), 4, "the total agrees");
    // Retention keeps two rows per agent.
    let keep = Retention::inbox(2, std::time::Duration::from_secs(3600));
    assert_eq!(s.prune(&keep).await.unwrap(), 1);
    assert_eq!(s.inbox_depths(&all).await.unwrap(), [0, 2, 1, 0]);
    s.apply(&[WriteOp::DeleteAgent(slug("a"))]).await.unwrap();
    assert_eq!(
        s.inbox_depths(&[slug("a"), slug("b")]).await.unwrap(),
        [0, 1]
    );
}
