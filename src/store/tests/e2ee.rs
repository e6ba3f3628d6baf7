//! Crypto rows and store keys of end-to-end encryption.

use super::{open, slug, Backend};
use crate::store::{CryptoRow, CryptoWrite, WriteOp};

on_every_backend!(
    crypto_rows_end_as_their_last_write_and_go_with_their_agent,
    a_store_key_is_kept_once,
);

fn row(kind: &'static str, key: &str, value: Option<&[u8]>) -> CryptoRow {
    CryptoRow {
        kind,
        key: key.into(),
        value: value.map(<[u8]>::to_vec),
    }
}

fn write(agent: &str, rows: Vec<CryptoRow>) -> WriteOp {
    WriteOp::Crypto(CryptoWrite {
        slug: slug(agent),
        rows,
    })
}

/// Rows are kept per agent; a later write of a row replaces it, a `None` deletes it (also
/// within one batch, where the last word counts); a deleted agent's rows go with it.
async fn crypto_rows_end_as_their_last_write_and_go_with_their_agent(backend: Backend) {
    let s = open(backend).await;
    s.apply(&[
        write(
            "a",
            vec![
                row("account", "own", Some(b"\x00acc\xff")),
                row("session", "k1 s1", Some(b"one")),
                row("session", "k1 s2", Some(b"two")),
            ],
        ),
        write("b", vec![row("account", "own", Some(b"b's"))]),
        write(
            "a",
            vec![
                row("session", "k1 s1", Some(b"one again")),
                row("session", "k1 s2", None),
            ],
        ),
    ])
    .await
    .unwrap();
    s.apply(&[write("a", vec![row("device", "@u:hs D", Some(b"d"))])])
        .await
        .unwrap();
    let mut rows = s.e2ee_items(&slug("a")).await.unwrap();
    rows.sort();
    let expected: Vec<(String, String, Vec<u8>)> = vec![
        ("account".into(), "own".into(), b"\x00acc\xff".to_vec()),
        ("device".into(), "@u:hs D".into(), b"d".to_vec()),
        ("session".into(), "k1 s1".into(), b"one again".to_vec()),
    ];
    assert_eq!(rows, expected);
    // An agent with an account row has a device; one with other rows only, or none, not.
    let asked = [slug("a"), slug("b"), slug("c")];
    let mut enrolled = s.e2ee_enrolled(&asked).await.unwrap();
    enrolled.sort();
    assert_eq!(enrolled, [slug("a"), slug("b")]);
    s.apply(&[write("c", vec![row("session", "k1 s1", Some(b"x"))])])
        .await
        .unwrap();
    assert_eq!(s.e2ee_enrolled(&[slug("c")]).await.unwrap(), []);

    s.apply(&[WriteOp::DeleteAgent(slug("a"))]).await.unwrap();
    assert!(s.e2ee_items(&slug("a")).await.unwrap().is_empty());
    assert_eq!(s.e2ee_enrolled(&asked).await.unwrap(), [slug("b")]);
    assert_eq!(s.e2ee_items(&slug("b")).await.unwrap().len(), 1);
}

/// The first value kept under a name stays; a second is not kept, and its caller is
/// answered with the first.
async fn a_store_key_is_kept_once(backend: Backend) {
    let s = open(backend).await;
    assert_eq!(s.e2ee_key("store_cipher").await.unwrap(), None);
    let first = s.put_e2ee_key_once("store_cipher", b"first").await.unwrap();
    assert_eq!(first, b"first");
    let second = s
        .put_e2ee_key_once("store_cipher", b"second")
        .await
        .unwrap();
    assert_eq!(second, b"first");
    assert_eq!(s.e2ee_key("store_cipher").await.unwrap().unwrap(), b"first");
}
