//! What the homeserver client trusts: the built-in roots (Mozilla's, from webpki-roots) and
//! the system's CA store (rustls-native-certs: the distribution's bundle, or the files
//! `SSL_CERT_FILE` and `SSL_CERT_DIR` name), so a homeserver whose certificate comes from a
//! private CA installed on the machine is reached like any other.

use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};

/// The built-in roots and every certificate of the system store that parses. What cannot be
/// read is logged and skipped: the built-in roots still apply.
pub fn roots() -> RootCertStore {
    let mut store = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let builtin = store.len();
    let system = rustls_native_certs::load_native_certs();
    for error in &system.errors {
        tracing::warn!(%error, "part of the system CA store could not be read");
    }
    let (added, unusable) = store.add_parsable_certificates(system.certs);
    tracing::info!(
        builtin,
        system = added,
        unusable,
        "homeserver TLS: trusting the built-in roots and the system CA store"
    );
    store
}

/// TLS for homeserver connections (ring; TLS 1.2 and 1.3), trusting `roots`.
pub fn client_config(roots: RootCertStore) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The built-in roots are always there, whatever the system store holds.
    #[test]
    fn the_built_in_roots_are_kept() {
        let store = roots();
        assert!(store.len() >= webpki_roots::TLS_SERVER_ROOTS.len());
        let config = client_config(store);
        assert!(config.alpn_protocols.is_empty(), "HTTP/1.1 only");
    }
}
