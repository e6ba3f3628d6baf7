//! End-to-end encryption for agents (`[e2ee] enabled`): an agent in an encrypted room gets
//! a device of its own ([`DEVICE_ID`], created by the application service, MSC4190) and a
//! crypto machine (matrix-sdk-crypto's `OlmMachine`: Olm and Megolm through vodozemac; no
//! cryptography is written here). The machine keeps its state in a [`store::DurableStore`]:
//! every change is sealed with the store cipher and written through the group commit
//! before the machine goes on, and a machine is restored from those rows, so a restart
//! changes no device and loses no session.
//!
//! - [`cipher`]: the store cipher, made once and kept sealed with `MOSAIC_E2EE_KEY`;
//! - [`store`]: the machine's store, and its rows;
//! - [`requests`]: the machine's outgoing requests (key upload, query, claim, to-device),
//!   sent as the agent's device (MSC3202 masquerading);
//! - [`E2ee::machine`]: opens an agent's machine, making its device and keys the first
//!   time.

use std::sync::Arc;

use matrix_sdk_crypto::{store::CryptoStoreError, MegolmError, OlmError, OlmMachine};
use matrix_sdk_store_encryption::StoreCipher;
use ruma::DeviceId;

pub mod cipher;
pub mod one_replica;
pub mod open;
pub mod outbound;
pub mod probe;
pub mod pushed;
pub mod requests;
pub mod room_state;
pub mod store;

use self::{
    open::{OpenMachine, OpenMachines},
    store::{CryptoRow, CryptoRows, DurableStore},
};
use crate::{
    ids::{AgentSlug, Namespaces},
    matrix::{HomeserverClient, HomeserverError},
    store::{writer::CommitWriter, Store, StoreError, WriteOp},
};

/// Every agent's device id: one device per agent user, the same across restarts.
pub const DEVICE_ID: &str = "MOSAICAS";
/// The display name other users' clients show for an agent's device.
const DEVICE_NAME: &str = "mosaic-as agent";

/// What can go wrong with an agent's encryption.
#[derive(Debug, thiserror::Error)]
pub enum E2eeError {
    #[error("homeserver: {0}")]
    Homeserver(#[from] HomeserverError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("crypto store: {0}")]
    CryptoStore(#[from] CryptoStoreError),
    #[error("olm: {0}")]
    Olm(#[from] OlmError),
    #[error("megolm: {0}")]
    Megolm(#[from] MegolmError),
}

/// Why encryption cannot start.
#[derive(Debug, thiserror::Error)]
pub enum E2eeStartError {
    #[error(transparent)]
    Cipher(#[from] cipher::CipherError),
    #[error(transparent)]
    OneReplica(#[from] one_replica::OneReplicaError),
}

/// The daemon's encryption: what every agent's machine needs.
pub struct E2ee {
    hs: HomeserverClient,
    store: Arc<dyn Store>,
    writer: CommitWriter,
    cipher: Arc<StoreCipher>,
    ns: Namespaces,
    /// The machines open now.
    pub open: OpenMachines,
    /// What the homeserver was seen to deliver (for `/ready`).
    pub delivery: probe::Delivery,
    /// Rooms' state as encryption needs it, kept between sends.
    pub rooms: room_state::RoomStates,
    /// On a shared store: this replica's hold on running encryption.
    pub one_replica: Option<one_replica::OneReplica>,
}

impl E2ee {
    pub fn new(
        hs: HomeserverClient,
        store: Arc<dyn Store>,
        writer: CommitWriter,
        cipher: StoreCipher,
        ns: Namespaces,
        one_replica: Option<one_replica::OneReplica>,
    ) -> Self {
        Self {
            hs,
            store,
            writer,
            cipher: Arc::new(cipher),
            ns,
            open: OpenMachines::default(),
            delivery: probe::Delivery::default(),
            rooms: room_state::RoomStates::default(),
            one_replica,
        }
    }

    /// `slug`'s crypto machine: restored from the store, or, the first time, made new with
    /// its device created and its keys uploaded. Whatever the machine still has to send
    /// (keys not yet uploaded, after a crash) is sent before it is handed out.
    pub async fn machine(&self, slug: &AgentSlug) -> Result<Arc<OpenMachine>, E2eeError> {
        let user = self.ns.agent_user_id(slug);
        let device = <&DeviceId>::from(DEVICE_ID);
        let rows = self.store.e2ee_items(slug).await?;
        let sink: Arc<dyn CryptoRows> = Arc::new(WriterRows {
            writer: self.writer.clone(),
            slug: slug.clone(),
        });
        let store = if rows.is_empty() {
            // The device first: the machine's first upload names it.
            self.hs.create_device(&user, device, DEVICE_NAME).await?;
            DurableStore::new(sink, self.cipher.clone())
        } else {
            DurableStore::restore(rows, sink, self.cipher.clone()).await?
        };
        let machine = OlmMachine::with_store(&user, device, store, None).await?;
        // Device lists may have changed while the machine was closed: the users it
        // tracks are queried again before it next encrypts.
        machine.mark_all_tracked_users_as_dirty().await?;
        requests::flush(&machine, &self.hs).await?;
        if self.delivery.take_probe() {
            if let Err(e) = self.send_probe(&machine).await {
                tracing::warn!(error = %e, "cannot send the to-device probe");
            }
        }
        Ok(self.open.opened(slug, machine))
    }

    /// Sends the machine's own device a to-device message of [`probe::PROBE_TYPE`]: a
    /// homeserver that pushes to-device messages to the appservice brings it back.
    async fn send_probe(&self, machine: &OlmMachine) -> Result<(), E2eeError> {
        use ruma::{
            api::client::to_device::send_event_to_device::v3::Request, serde::Raw,
            to_device::DeviceIdOrAllDevices, TransactionId,
        };
        let content = serde_json::value::to_raw_value(&serde_json::json!({}))
            .expect("an empty object serialises");
        let device = DeviceIdOrAllDevices::DeviceId(machine.device_id().to_owned());
        let messages = [(
            machine.user_id().to_owned(),
            [(device, Raw::from_json(content))].into(),
        )]
        .into();
        let request = Request::new_raw(probe::PROBE_TYPE.into(), TransactionId::new(), messages);
        let (user, device) = (machine.user_id(), machine.device_id());
        self.hs
            .call_as_device("send_to_device", user, device, request)
            .await?;
        Ok(())
    }
}

/// An agent's crypto rows, written through the group commit.
struct WriterRows {
    writer: CommitWriter,
    slug: AgentSlug,
}

impl std::fmt::Debug for WriterRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterRows")
            .field("slug", &self.slug)
            .finish()
    }
}

#[async_trait::async_trait]
impl CryptoRows for WriterRows {
    async fn write(&self, rows: Vec<CryptoRow>) -> Result<(), String> {
        self.writer
            .write(WriteOp::Crypto(crate::store::CryptoWrite {
                slug: self.slug.clone(),
                rows,
            }))
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}
