//! The secrets, read from the environment only (checked in `check.rs`).

use secrecy::SecretString;

/// Secrets read from the environment only. `Debug` never shows their values.
#[derive(Clone)]
pub struct Secrets {
    pub as_token: SecretString,
    pub hs_token: SecretString,
    /// Empty means "bridge disabled": every bridge request is refused.
    pub bridge_tokens: Vec<SecretString>,
    /// The token `/metrics` requires; `None`: `/metrics` is open.
    pub metrics_token: Option<SecretString>,
    /// The PostgreSQL store's password (`MOSAIC_STORE_PASSWORD`), when it needs one.
    pub store_password: Option<SecretString>,
    /// Seals agents' encryption keys in the store (`MOSAIC_E2EE_KEY`); set when
    /// `[e2ee] enabled`.
    pub e2ee_key: Option<SecretString>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("as_token", &"[redacted]")
            .field("hs_token", &"[redacted]")
            .field("bridge_tokens", &self.bridge_tokens.len())
            .field(
                "metrics_token",
                &self.metrics_token.as_ref().map(|_| "[redacted]"),
            )
            .field(
                "store_password",
                &self.store_password.as_ref().map(|_| "[redacted]"),
            )
            .field("e2ee_key", &self.e2ee_key.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}
