//! Issued tokens, and agents listed by pattern range.

use serde_json::json;

use super::{open, slug, Backend};
use crate::{
    store::{now_s, AgentRecord, WriteOp},
    tokens::{
        issued::{TokenRecord, TokenRequest},
        pattern::AgentPattern,
    },
};

on_every_backend!(
    tokens_round_trip_and_delete_once,
    the_same_digest_is_never_stored_twice,
    agents_are_listed_within_a_pattern_range,
);

fn issue(name: &str, agents: &[&str]) -> TokenRecord {
    let req: TokenRequest = serde_json::from_value(json!({
        "name": name, "scopes": ["send", "read"], "agents": agents,
        "rate_per_s": 7, "expires_in_s": 60,
    }))
    .unwrap();
    req.issue(now_s()).unwrap().0
}

async fn tokens_round_trip_and_delete_once(backend: Backend) {
    let s = open(backend).await;
    let a = issue("a", &["planner-*", "solo"]);
    let b = issue("b", &["*"]);
    s.put_token(&a).await.unwrap();
    s.put_token(&b).await.unwrap();
    let all = s.tokens().await.unwrap();
    assert_eq!(all.len(), 2);
    let got = all.iter().find(|t| t.id == a.id).unwrap();
    assert_eq!(got.name, "a");
    assert!(got.digest.matches(&a.digest));
    assert_eq!(got.scopes, a.scopes);
    assert_eq!(got.agents, a.agents);
    assert_eq!((got.rate_per_s, got.expires_at), (Some(7), a.expires_at));
    assert!(s.delete_token(&a.id).await.unwrap());
    assert!(!s.delete_token(&a.id).await.unwrap());
    let left = s.tokens().await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, b.id);
}

async fn the_same_digest_is_never_stored_twice(backend: Backend) {
    let s = open(backend).await;
    let a = issue("a", &["x"]);
    s.put_token(&a).await.unwrap();
    let mut copy = issue("copy", &["x"]);
    copy.digest = a.digest;
    assert!(s.put_token(&copy).await.is_err());
    assert_eq!(s.tokens().await.unwrap().len(), 1);
}

async fn agents_are_listed_within_a_pattern_range(backend: Backend) {
    let s = open(backend).await;
    let ops: Vec<_> = ["pl", "pl-a", "pl-b", "pl_", "plz", "other"]
        .iter()
        .map(|name| {
            WriteOp::Agent(AgentRecord {
                slug: slug(name),
                registered: true,
                display_name: None,
                avatar_url: None,
            })
        })
        .collect();
    s.apply(&ops).await.unwrap();
    let list = |pattern: &str, after: Option<&str>, limit| {
        let range = AgentPattern::parse(pattern).unwrap().range();
        let after = after.map(slug);
        let s = &s;
        async move {
            s.agents(after.as_ref(), &range, limit)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.slug.to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list("pl-*", None, 10).await, ["pl-a", "pl-b"]);
    assert_eq!(list("pl-*", Some("pl-a"), 10).await, ["pl-b"]);
    assert_eq!(list("pl", None, 10).await, ["pl"]);
    assert_eq!(list("*", Some("pl_"), 10).await, ["plz"]);
    assert_eq!(list("*", None, 2).await, ["other", "pl"]);
}
