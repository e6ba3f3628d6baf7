//! Facts about rooms the store keeps for the routing directory: encrypted rooms and
//! upgrades.

use super::{commit, open, txn, Backend};
use crate::store::{RoomUpgrade, WriteOp};

on_every_backend!(
    encrypted_rooms_are_kept_once_from_transactions_and_joins,
    room_upgrades_are_kept_from_transactions,
);

async fn encrypted_rooms_are_kept_once_from_transactions_and_joins(backend: Backend) {
    let s = open(backend).await;
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
async fn room_upgrades_are_kept_from_transactions(backend: Backend) {
    let s = open(backend).await;
    let upgrade = |from: &str, to: &str| RoomUpgrade {
        room_id: from.try_into().unwrap(),
        replacement: to.try_into().unwrap(),
    };
    let mut t = txn("t-up", vec![]);
    t.upgrades = vec![upgrade("!a", "!b"), upgrade("!c", "!d")];
    commit(&s, vec![t.clone()]).await;
    let mut later = txn("t-up-again", vec![]);
    later.upgrades = vec![upgrade("!a", "!e")];
    commit(&s, vec![later]).await;
    // The first transaction again: a duplicate, whose upgrade of !a is not written over.
    commit(&s, vec![t]).await;
    let mut upgrades = s.room_upgrades().await.unwrap();
    upgrades.sort_by(|x, y| x.room_id.cmp(&y.room_id));
    assert_eq!(upgrades, [upgrade("!a", "!e"), upgrade("!c", "!d")]);
}
