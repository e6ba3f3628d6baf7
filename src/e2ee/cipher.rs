//! The store cipher that seals every crypto row (matrix-sdk-store-encryption's
//! `StoreCipher`, XChaCha20-Poly1305): made at random by the first daemon that needs it,
//! kept in the store sealed with a key derived from `MOSAIC_E2EE_KEY` (SHA-256 of the
//! secret: it is a random string of at least 32 characters, so no slow passphrase
//! derivation is needed), and opened with that key by every start and replica. Without the
//! right secret no row can be read: the daemon refuses to start rather than make new
//! devices.

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::store::{Store, StoreError};

/// The name of the cipher's row in `e2ee_keys`.
const NAME: &str = "store_cipher";

/// Why the store cipher cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum CipherError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error(
        "the stored encryption keys cannot be opened with MOSAIC_E2EE_KEY (a different secret \
         from the one they were sealed with?): {0}"
    )]
    WrongKey(String),
    #[error("cannot make a store cipher: {0}")]
    Make(String),
}

/// The store's cipher, made and kept the first time.
pub async fn open(
    store: &dyn Store,
    secret: &SecretString,
) -> Result<matrix_sdk_store_encryption::StoreCipher, CipherError> {
    use matrix_sdk_store_encryption::StoreCipher;
    let key: [u8; 32] = Sha256::digest(secret.expose_secret().as_bytes()).into();
    let sealed = match store.e2ee_key(NAME).await? {
        Some(sealed) => sealed,
        None => {
            let made = StoreCipher::new().map_err(|e| CipherError::Make(e.to_string()))?;
            let sealed = made
                .export_with_key(&key)
                .map_err(|e| CipherError::Make(e.to_string()))?;
            // Another replica may have kept its own first: that one counts.
            store.put_e2ee_key_once(NAME, &sealed).await?
        }
    };
    StoreCipher::import_with_key(&key, &sealed).map_err(|e| CipherError::WrongKey(e.to_string()))
}
