//! Which backend a store URL names, and opening it.

use std::{str::FromStr, sync::Arc, time::Duration};

use secrecy::{ExposeSecret, SecretString};
use sqlx::{postgres::PgConnectOptions, Connection, PgConnection};

use super::{postgres, sqlite, Store, StoreError, StoreResult};
use crate::config::SyncMode;

/// The backends this build has, by URL scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// Which backend `url` names; the error names the scheme only (a URL may carry a
/// password).
fn backend_of(url: &str) -> Result<Backend, StoreError> {
    if url.starts_with("sqlite:") {
        return Ok(Backend::Sqlite);
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Backend::Postgres);
    }
    // Only what comes before the first ':' (or nothing, when that would not be a scheme).
    let scheme = url
        .split_once(':')
        .map(|(scheme, _)| scheme)
        .filter(|s| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        })
        .unwrap_or("(none)");
    Err(StoreError::Unsupported(format!(
        "scheme {scheme:?}: the store URL must start with sqlite:, postgres:// or postgresql://"
    )))
}

/// Whether `url` names the embedded SQLite store (one replica only).
pub fn is_embedded(url: &str) -> bool {
    matches!(backend_of(url), Ok(Backend::Sqlite))
}

/// Whether this build has a backend for `url`; the error names the scheme only (a URL may
/// carry a password). `check-config` and [`open`] both ask here.
pub fn check_url(url: &str) -> Result<(), StoreError> {
    backend_of(url).map(drop)
}

/// Whether the store `url` names can be used as configured, for `check-config`: for
/// PostgreSQL one connection (with `password` when given) within `timeout`, closed at once,
/// nothing created or migrated; for SQLite nothing (the file is made at the first start).
/// The error names the server, database and role, never a password.
pub async fn check_reachable(
    url: &str,
    password: Option<&SecretString>,
    timeout: Duration,
) -> Result<(), String> {
    if backend_of(url).map_err(|e| e.to_string())? != Backend::Postgres {
        return Ok(());
    }
    let mut options = PgConnectOptions::from_str(url).map_err(|e| e.to_string())?;
    if let Some(password) = password {
        options = options.password(password.expose_secret());
    }
    let target = format!(
        "database {:?} on {}:{} as {:?}",
        options.get_database().unwrap_or("(the role's)"),
        options.get_host(),
        options.get_port(),
        options.get_username()
    );
    match tokio::time::timeout(timeout, PgConnection::connect_with(&options)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(format!("cannot use the PostgreSQL {target}: {e}")),
        Err(_) => Err(format!(
            "cannot use the PostgreSQL {target}: no answer within {timeout:?}"
        )),
    }
}

/// Opens the store named by `url` (creating and migrating it when needed), its commits as
/// durable as `sync` asks; `password` (PostgreSQL only) replaces the URL's.
pub async fn open(
    url: &str,
    password: Option<&SecretString>,
    sync: SyncMode,
) -> StoreResult<Arc<dyn Store>> {
    let backend = backend_of(url)?;
    if sync == SyncMode::Normal {
        tracing::warn!(
            "store.sync = \"normal\": commits are not flushed to disk before they are \
             acknowledged; a power or node loss can lose transactions the homeserver was told \
             were recorded (it will not send them again)"
        );
    }
    Ok(match backend {
        Backend::Sqlite => Arc::new(sqlite::SqliteStore::open_with(url, sync).await?),
        Backend::Postgres => Arc::new(postgres::PgStore::open(url, password, sync).await?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_picks_the_backend_and_an_error_shows_no_more_than_it() {
        for (url, backend) in [
            ("sqlite://x.db", Backend::Sqlite),
            ("sqlite::memory:", Backend::Sqlite),
            ("postgres://u:secret@db/mosaic", Backend::Postgres),
            ("postgresql://db/mosaic?sslmode=require", Backend::Postgres),
        ] {
            assert_eq!(backend_of(url).unwrap(), backend, "{url}");
        }
        for (url, shown) in [
            ("mysql://u:secret@db/mosaic", "\"mysql\""),
            ("u:secret@db/mosaic", "\"u\""),
            ("postgres:/secret@db", "\"postgres\""),
            ("secret/x:y", "(none)"),
            ("", "(none)"),
        ] {
            let err = check_url(url).unwrap_err().to_string();
            assert!(err.contains(shown), "{url}: {err}");
            assert!(!err.contains("secret"), "{url}: {err}");
        }
    }
}
