//! Facts about rooms the store keeps for the routing directory: encrypted rooms and
//! upgrades.

use super::tests::{commit, store, txn};
use super::*;

#[tokio::test]
async fn encrypted_rooms_are_kept_once_from_transactions_and_joins() {
    let (_dir, s) = store().await;
    let mut t = txn("t-enc", vec![]);
    t.encrypted_rooms = vec!["!a".try_into().unwrap(), "!b".try_into().unwrap()];
    commit(&s, vec![t]).await;
    s.apply(&[
        WriteOp::RoomEncrypted("!b".try_into().unwrap()),
        WriteOp::RoomEncrypted("!c".try_into().unwrap()),
    ])
    .await
    .unwrap();
    let mut rooms = s.encrypted_rooms().await.unwrap();
    rooms.sort();
    assert_eq!(rooms, ["!a", "!b", "!c"]);
}

/// An upgrade seen in a transaction is kept, and a later one of the same room replaces
/// it (the newest tombstone counts); a duplicate transaction records nothing.
#[tokio::test]
async fn room_upgrades_are_kept_from_transactions() {
    let (_dir, s) = store().await;
    let upgrade = |from: &str, to: &str| RoomUpgrade {
        room_id: from.try_into().unwrap(),
        replacement: to.try_into().unwrap(),
    };
    let mut t = txn("t-up", vec![]);
    t.upgrades = vec![upgrade("!a", "!b"), upgrade("!c", "!d")];
    commit(&s, vec![t]).await;
    let mut later = txn("t-up-again", vec![]);
    later.upgrades = vec![upgrade("!a", "!e")];
    commit(&s, vec![later]).await;
    let mut upgrades = s.room_upgrades().await.unwrap();
    upgrades.sort_by(|x, y| x.room_id.cmp(&y.room_id));
    assert_eq!(upgrades, [upgrade("!a", "!e"), upgrade("!c", "!d")]);
}
