//! The token table over a real (SQLite) store: issue, authenticate, expire, throttle, revoke.

use serde_json::json;

use super::*;
use crate::store::sqlite::SqliteStore;

async fn access(admin: &[&str]) -> (tempfile::TempDir, Access) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = Arc::new(SqliteStore::open(&url).await.unwrap());
    let admin: Vec<SecretString> = admin.iter().map(|t| SecretString::from(*t)).collect();
    let rates = Rates {
        issued: NonZeroU32::new(100).unwrap(),
        admin: NonZeroU32::new(1000).unwrap(),
    };
    (dir, Access::new(store, &admin, rates))
}

fn request(v: serde_json::Value) -> TokenRequest {
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn issued_tokens_work_until_revoked_and_survive_a_reload() {
    let (dir, access) = access(&["admin-token-0123456789abcdef0123456789"]).await;
    assert!(access
        .authenticate(Some("admin-token-0123456789abcdef0123456789"))
        .is_ok());
    let (record, value) = access
        .issue(request(
            json!({"name": "p", "scopes": ["send"], "agents": ["p-*"]}),
        ))
        .await
        .unwrap();
    let value = value.expose_secret();
    let principal = access.authenticate(Some(value)).unwrap();
    assert_eq!(principal.id.as_ref(), Some(&record.id));

    // A second table over the same store (a restart) knows it.
    let store = Arc::new(
        SqliteStore::open(&format!("sqlite://{}", dir.path().join("t.db").display()))
            .await
            .unwrap(),
    );
    let rates = access.rates;
    let reloaded = Access::new(store, &[], rates);
    assert_eq!(reloaded.load().await.unwrap(), 1);
    assert!(reloaded.authenticate(Some(value)).is_ok());

    assert!(access.revoke(&record.id).await.unwrap());
    assert_eq!(
        access.authenticate(Some(value)).unwrap_err(),
        Refusal::Unknown
    );
    assert!(!access.revoke(&record.id).await.unwrap());
    assert!(access.issued().await.unwrap().is_empty());
    assert_eq!(access.authenticate(None).unwrap_err(), Refusal::Missing);
    assert_eq!(
        access.authenticate(Some("nope")).unwrap_err(),
        Refusal::Unknown
    );
}

#[tokio::test]
async fn invalid_requests_store_nothing() {
    let (_dir, access) = access(&[]).await;
    let err = access
        .issue(request(
            json!({"name": "p", "scopes": ["send"], "agents": ["P"]}),
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, IssueError::Invalid(m) if m.starts_with("agents[0]")));
    assert!(access.issued().await.unwrap().is_empty());
    assert_eq!(
        access.authenticate(Some("any")).unwrap_err(),
        Refusal::Disabled
    );
}

#[tokio::test]
async fn expired_and_throttled_tokens_are_refused() {
    let (_dir, access) = access(&[]).await;
    let (mut record, value) = request(json!({"name": "e", "scopes": ["read"], "agents": ["*"]}))
        .issue(now_s() - 10)
        .unwrap();
    record.expires_at = Some(now_s() - 1);
    access.admit(record);
    assert_eq!(
        access
            .authenticate(Some(value.expose_secret()))
            .unwrap_err(),
        Refusal::Expired
    );

    let (_, value) = access
        .issue(request(
            json!({"name": "r", "scopes": ["read"], "agents": ["*"], "rate_per_s": 2}),
        ))
        .await
        .unwrap();
    let value = value.expose_secret();
    assert!(access.authenticate(Some(value)).is_ok());
    assert!(access.authenticate(Some(value)).is_ok());
    assert!(matches!(
        access.authenticate(Some(value)),
        Err(Refusal::Throttled(wait)) if wait > Duration::ZERO
    ));
}
