//! Restarts of `OlmMachine`s on [`DurableStore`]s, with an in-memory sink standing in for the
//! database.

mod harness;

use std::sync::Arc;

use matrix_sdk_crypto::{
    store::{
        types::{Changes, DeviceChanges},
        CryptoStore,
    },
    types::requests::AnyOutgoingRequest,
    DeviceData, EncryptionSettings, OlmMachine,
};
use matrix_sdk_store_encryption::StoreCipher;
use ruma::{device_id, room_id, user_id};

use self::harness::{
    claim_one_time_key, decrypt_body, encrypt, learn_devices, megolm_session_id, send_room_key,
    upload_keys, Agent, FailingSink, MemorySink,
};
use super::{kind, DurableStore};

#[tokio::test]
async fn a_restarted_machine_keeps_its_account_and_identity_and_uploads_nothing_again() {
    let alice = Agent::start(user_id!("@alice:example.org"), device_id!("ALICEDEVICE")).await;
    let identity_keys = alice.machine.identity_keys();
    let upload = upload_keys(&alice.machine).await;
    assert!(
        upload.device_keys.is_some(),
        "a new device uploads its device keys"
    );
    assert_eq!(
        alice.pending_key_uploads().await,
        0,
        "the counts cover every uploaded key"
    );
    alice.machine.bootstrap_cross_signing(false).await.unwrap();

    let alice = alice.restarted().await;

    assert_eq!(alice.machine.device_id(), device_id!("ALICEDEVICE"));
    let restored_keys = alice.machine.identity_keys();
    assert_eq!(
        restored_keys.ed25519.to_base64(),
        identity_keys.ed25519.to_base64()
    );
    assert_eq!(
        restored_keys.curve25519.to_base64(),
        identity_keys.curve25519.to_base64()
    );
    assert_eq!(
        alice.pending_key_uploads().await,
        0,
        "a restored device uploads nothing again"
    );
    let cross_signing = alice.machine.cross_signing_status().await;
    assert!(cross_signing.has_master && cross_signing.has_self_signing);
}

#[tokio::test]
async fn olm_and_megolm_sessions_survive_a_restart_of_both_sides() {
    let room = room_id!("!room:example.org");
    let alice = Agent::start(user_id!("@alice:example.org"), device_id!("ALICEDEVICE")).await;
    let bob = Agent::start(user_id!("@bob:example.org"), device_id!("BOBDEVICE")).await;
    let alice_upload = upload_keys(&alice.machine).await;
    let bob_upload = upload_keys(&bob.machine).await;
    let uploads = [(&alice.machine, &alice_upload), (&bob.machine, &bob_upload)];
    learn_devices(&alice.machine, &uploads).await;
    learn_devices(&bob.machine, &uploads).await;
    claim_one_time_key(&alice.machine, &bob.machine, &bob_upload).await;
    assert_eq!(send_room_key(&alice.machine, room, &bob.machine).await, 1);
    let before = encrypt(&alice.machine, room, "before-restart").await;
    assert_eq!(
        decrypt_body(&bob.machine, room, &before).await,
        "before-restart"
    );

    let alice = alice.restarted().await;
    let bob = bob.restarted().await;

    let missing = alice
        .machine
        .get_missing_sessions([bob.machine.user_id()].into_iter());
    assert!(
        missing.await.unwrap().is_none(),
        "the Olm session to bob was restored"
    );
    let tracked = alice.machine.tracked_users().await.unwrap();
    assert!(
        tracked.contains(bob.machine.user_id()),
        "alice still tracks bob"
    );
    let requests = alice.machine.outgoing_requests().await.unwrap();
    let queries = requests
        .iter()
        .filter(|r| matches!(r.request(), AnyOutgoingRequest::KeysQuery(_)));
    assert_eq!(
        queries.count(),
        0,
        "tracked users were restored as up to date"
    );
    let reshare = alice.machine.share_room_key(
        room,
        [bob.machine.user_id()].into_iter(),
        EncryptionSettings::default(),
    );
    assert!(
        reshare.await.unwrap().is_empty(),
        "the restored room key was already shared"
    );
    let after = encrypt(&alice.machine, room, "after-restart").await;
    assert_eq!(megolm_session_id(&after), megolm_session_id(&before));
    assert_eq!(
        decrypt_body(&bob.machine, room, &after).await,
        "after-restart"
    );
    assert_eq!(
        decrypt_body(&bob.machine, room, &before).await,
        "before-restart"
    );
}

#[tokio::test]
async fn rows_hold_no_clear_pickles_or_keys() {
    let alice = Agent::start(user_id!("@alice:example.org"), device_id!("ALICEDEVICE")).await;
    upload_keys(&alice.machine).await;
    let identity_keys = alice.machine.identity_keys();
    let rows = alice.sink.rows();
    assert!(rows.iter().any(|(kind, _, _)| kind == kind::ACCOUNT));

    let needles = [
        identity_keys.ed25519.to_base64(),
        identity_keys.curve25519.to_base64(),
        "pickle".to_owned(),
        "uploaded_signed_key_count".to_owned(),
        "@alice:example.org".to_owned(),
    ];
    for (kind, key, value) in &rows {
        let text = String::from_utf8_lossy(value);
        for needle in &needles {
            assert!(
                !text.contains(needle.as_str()),
                "{kind} row {key:?} shows {needle:?}"
            );
        }
    }
}

#[tokio::test]
async fn restoring_with_another_cipher_or_moved_rows_fails() {
    let alice = Agent::start(user_id!("@alice:example.org"), device_id!("ALICEDEVICE")).await;
    upload_keys(&alice.machine).await;
    let rows = alice.sink.rows();

    let other_cipher = Arc::new(StoreCipher::new().unwrap());
    let error = DurableStore::restore(rows.clone(), alice.sink.clone(), other_cipher)
        .await
        .expect_err("rows sealed with another cipher do not open");
    assert!(error.to_string().contains("seal or open"), "{error}");

    let mut moved = rows.clone();
    let device_row = moved
        .iter_mut()
        .find(|(kind, _, _)| kind == kind::DEVICE)
        .unwrap();
    device_row.1 = "@mallory:example.org MALLORY".to_owned();
    let error = DurableStore::restore(moved, alice.sink.clone(), alice.cipher.clone())
        .await
        .expect_err("a value moved to another row is detected");
    assert!(error.to_string().contains("sealed as"), "{error}");

    let mut unknown = rows;
    unknown.push(("something_else".to_owned(), "x".to_owned(), Vec::new()));
    let restored = DurableStore::restore(unknown, alice.sink.clone(), alice.cipher.clone()).await;
    assert!(restored.is_err(), "an unknown kind is refused");
}

#[tokio::test]
async fn a_failing_sink_fails_the_write() {
    let store = DurableStore::new(Arc::new(FailingSink), Arc::new(StoreCipher::new().unwrap()));
    let machine = OlmMachine::with_store(
        user_id!("@alice:example.org"),
        device_id!("ALICEDEVICE"),
        store,
        None,
    )
    .await;
    let error = machine.expect_err("the account could not be persisted");
    assert!(error.to_string().contains("sink failed"), "{error}");
}

#[tokio::test]
async fn tracked_users_custom_values_and_deleted_devices_survive_a_restart() {
    let sink = Arc::new(MemorySink::default());
    let cipher = Arc::new(StoreCipher::new().unwrap());
    let store = DurableStore::new(sink.clone(), cipher.clone());
    let bob = OlmMachine::new(user_id!("@bob:example.org"), device_id!("BOBDEVICE")).await;
    let bob_device = bob
        .get_device(bob.user_id(), bob.device_id(), None)
        .await
        .unwrap()
        .unwrap();
    let bob_device: DeviceData = (*bob_device).clone();
    let carol = OlmMachine::new(user_id!("@carol:example.org"), device_id!("CAROLDEVICE")).await;
    let carol_device = carol
        .get_device(carol.user_id(), carol.device_id(), None)
        .await
        .unwrap();
    let carol_device: DeviceData = (*carol_device.unwrap()).clone();

    let devices = DeviceChanges {
        new: vec![bob_device, carol_device.clone()],
        ..Default::default()
    };
    store
        .save_changes(Changes {
            devices,
            ..Default::default()
        })
        .await
        .unwrap();
    let deleted = DeviceChanges {
        deleted: vec![carol_device],
        ..Default::default()
    };
    store
        .save_changes(Changes {
            devices: deleted,
            ..Default::default()
        })
        .await
        .unwrap();
    store
        .save_tracked_users(&[(bob.user_id(), true), (carol.user_id(), false)])
        .await
        .unwrap();
    store
        .set_custom_value("kept", b"one".to_vec())
        .await
        .unwrap();
    store
        .set_custom_value("removed", b"two".to_vec())
        .await
        .unwrap();
    store.remove_custom_value("removed").await.unwrap();
    drop(store);

    let store = DurableStore::restore(sink.rows(), sink.clone(), cipher)
        .await
        .unwrap();

    let mut tracked: Vec<_> = store
        .load_tracked_users()
        .await
        .unwrap()
        .into_iter()
        .map(|user| (user.user_id.to_string(), user.dirty))
        .collect();
    tracked.sort();
    let expected = [
        ("@bob:example.org".to_owned(), true),
        ("@carol:example.org".to_owned(), false),
    ];
    assert_eq!(tracked, expected);
    assert_eq!(
        store.get_custom_value("kept").await.unwrap(),
        Some(b"one".to_vec())
    );
    assert_eq!(store.get_custom_value("removed").await.unwrap(), None);
    assert!(store
        .get_device(bob.user_id(), bob.device_id())
        .await
        .unwrap()
        .is_some());
    assert!(store
        .get_device(carol.user_id(), carol.device_id())
        .await
        .unwrap()
        .is_none());
}
