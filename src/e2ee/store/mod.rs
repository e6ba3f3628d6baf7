//! A write-through persistent [`CryptoStore`] for `matrix-sdk-crypto`.
//!
//! [`DurableStore`] answers every read from a [`MemoryStore`]. Every write is first turned into
//! [`CryptoRow`]s, handed to a [`CryptoRows`] sink and awaited (so the change is durable before
//! the `OlmMachine` goes on), and only then applied to the memory store. Writes are serialised,
//! so rows reach the sink in the order the memory store applies them.
//!
//! If the sink fails, the write returns an error and the memory store does not take the change;
//! but objects the `OlmMachine` shares with it (an outbound group session, the cached account)
//! may already have moved on in memory, so a failed write should end that machine: drop it and
//! build a new one from the stored rows.
//!
//! A row's value is the JSON of the crate's own pickle type (`PickledAccount`, `PickledSession`,
//! ...) or serde type (`DeviceData`, `UserIdentityData`, ...), wrapped with the row's kind and key
//! and sealed with [`StoreCipher`] (XChaCha20-Poly1305), so private keys never sit in clear in
//! the database. Row keys name things (user, device, room and session ids) and are in clear.
//! [`DurableStore::restore`] opens the rows (checking each was sealed for its own kind and key,
//! so values swapped between rows are refused) and feeds them into a fresh memory store, account
//! first, so an `OlmMachine` built on it has the same state. In memory the pickles are in clear,
//! as in any [`MemoryStore`].
//!
//! Persisted (see [`kind`]): the account, the private cross-signing identity, Olm sessions,
//! inbound group sessions (with the backup version they were marked as backed up to), outbound
//! group sessions, devices (deleted devices delete their rows), user identities, tracked users
//! with their dirty flag, Olm message hashes (one row per decrypted Olm message, never pruned, as
//! in the memory store), withheld-key info, room settings and custom values.
//!
//! Memory-only (lost on restart; agents do not use them): the backup decryption key and
//! version, the dehydrated-device pickle key, outgoing secret and key requests (gossip), the
//! secret inbox, the to-device `next_batch` token, received room-key bundles, rooms pending a
//! key bundle, "all room keys downloaded" markers, and cross-process leases.
//!
//! [`CryptoStore`]: matrix_sdk_crypto::store::CryptoStore

mod restore;
mod rows;
#[cfg(test)]
mod tests;
mod trait_impl;

use std::sync::Arc;

use matrix_sdk_crypto::{
    olm::PrivateCrossSigningIdentity,
    store::{CryptoStoreError, MemoryStore},
};
use matrix_sdk_store_encryption::StoreCipher;
use tokio::sync::{Mutex, RwLock};

pub use rows::kind;

pub use crate::store::CryptoRow;

/// Where a [`DurableStore`] persists its rows (the project's database).
#[async_trait::async_trait]
pub trait CryptoRows: Send + Sync + std::fmt::Debug {
    /// Persists the rows durably, in order (a later row for the same kind+key replaces an earlier
    /// one).
    async fn write(&self, rows: Vec<CryptoRow>) -> Result<(), String>;
}

/// What went wrong in a [`DurableStore`]; reaches callers boxed in
/// [`CryptoStoreError::Backend`].
#[derive(Debug, thiserror::Error)]
pub enum DurableStoreError {
    /// The sink failed to persist rows; the write was not applied to the memory store.
    #[error("the crypto row sink failed: {0}")]
    Sink(String),
    /// A value could not be sealed or opened (e.g. the rows were sealed with another key).
    #[error("could not seal or open a {kind:?} row: {source}")]
    Cipher {
        /// The kind of the row.
        kind: String,
        /// The cipher's error.
        #[source]
        source: matrix_sdk_store_encryption::Error,
    },
    /// A value, or the envelope around it, is not the JSON it should be.
    #[error("a {kind:?} row does not hold the expected JSON: {source}")]
    Json {
        /// The kind of the row.
        kind: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A row's sealed value was sealed for another kind or key (rows swapped in the database).
    #[error(
        "the {kind:?} row {key:?} holds a value sealed as the {sealed_kind:?} row {sealed_key:?}"
    )]
    Misplaced {
        /// The row's kind.
        kind: String,
        /// The row's key.
        key: String,
        /// The kind sealed inside the value.
        sealed_kind: String,
        /// The key sealed inside the value.
        sealed_key: String,
    },
    /// A stored row has a kind this version does not know.
    #[error("unknown crypto row kind {0:?}")]
    UnknownKind(String),
}

impl From<DurableStoreError> for CryptoStoreError {
    fn from(error: DurableStoreError) -> Self {
        CryptoStoreError::backend(error)
    }
}

/// A [`MemoryStore`] whose writes are also persisted, sealed, through a [`CryptoRows`] sink.
pub struct DurableStore {
    memory: MemoryStore,
    sink: Arc<dyn CryptoRows>,
    cipher: Arc<StoreCipher>,
    /// Held across "persist rows, then apply to memory", so the sink sees writes in the order
    /// the memory store applies them.
    write_order: Mutex<()>,
    /// Kept here rather than read back from the memory store, whose `save_changes` forgets the
    /// identity whenever a change set does not carry one.
    private_identity: RwLock<Option<PrivateCrossSigningIdentity>>,
}

impl std::fmt::Debug for DurableStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableStore")
            .field("sink", &self.sink)
            .finish_non_exhaustive()
    }
}

impl DurableStore {
    /// A store holding nothing yet (a new agent device).
    pub fn new(sink: Arc<dyn CryptoRows>, cipher: Arc<StoreCipher>) -> Self {
        Self::with_contents(MemoryStore::new(), None, sink, cipher)
    }

    /// A store rebuilt from stored rows (kind, key, sealed value), in any order.
    ///
    /// Fails, without panicking, if a row cannot be opened with `cipher`, was sealed for another
    /// kind or key, has an unknown kind, or does not unpickle.
    pub async fn restore(
        rows: Vec<(String, String, Vec<u8>)>,
        sink: Arc<dyn CryptoRows>,
        cipher: Arc<StoreCipher>,
    ) -> Result<Self, CryptoStoreError> {
        let restored = restore::rebuild(rows, &cipher).await?;
        Ok(Self::with_contents(
            restored.memory,
            restored.private_identity,
            sink,
            cipher,
        ))
    }

    fn with_contents(
        memory: MemoryStore,
        private_identity: Option<PrivateCrossSigningIdentity>,
        sink: Arc<dyn CryptoRows>,
        cipher: Arc<StoreCipher>,
    ) -> Self {
        Self {
            memory,
            sink,
            cipher,
            write_order: Mutex::new(()),
            private_identity: RwLock::new(private_identity),
        }
    }

    /// Hands rows to the sink and waits until they are durable.
    async fn persist(&self, rows: Vec<CryptoRow>) -> Result<(), CryptoStoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.sink
            .write(rows)
            .await
            .map_err(|message| DurableStoreError::Sink(message).into())
    }
}
