//! Who calls the bridge and what it may do. Every bridge token — the environment's admin
//! tokens and the issued ones — sits in one table keyed by its SHA-256 digest, with its
//! [`Principal`]: scopes, agent patterns, expiry, rate limiter. Issuing and revoking write
//! the store first and then the table, so a token answered as issued is usable, and one
//! answered as revoked is refused, from the next request on.
//!
//! Tokens are looked up by their digest, and the map compares digests in constant time
//! ([`DigestKey`]); besides, the digest of a guess shares nothing useful with the digest of
//! a real token, so neither the probe nor the comparison tells anything about a token.

pub mod principal;

use std::{num::NonZeroU32, sync::Arc, time::Duration};

use dashmap::DashMap;
use secrecy::{ExposeSecret, SecretString};

pub use self::principal::{Denied, Principal};
use crate::{
    store::{now_s, Store, StoreError, StoreResult},
    tokens::{
        issued::{TokenId, TokenRecord, TokenRequest},
        scope::Scopes,
        DigestKey, TokenDigest,
    },
};

/// Default request rates (`limits.token_rate_per_s`, `limits.admin_rate_per_s`).
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    /// An issued token without its own `rate_per_s`.
    pub issued: NonZeroU32,
    /// The environment's admin tokens, and issued admin tokens without their own rate.
    pub admin: NonZeroU32,
}

/// Why a bridge request is not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No token at all opens the bridge (`MOSAIC_BRIDGE_TOKENS=""`, none issued).
    #[error("the bridge API is disabled")]
    Disabled,
    #[error("missing bridge token")]
    Missing,
    #[error("invalid bridge token")]
    Unknown,
    #[error("this bridge token has expired")]
    Expired,
    #[error("this token's request rate is exceeded")]
    Throttled(Duration),
}

/// Why a token could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// A field of the request is invalid (the message names it).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Access {
    by_digest: DashMap<DigestKey, Arc<Principal>>,
    store: Arc<dyn Store>,
    rates: Rates,
}

impl Access {
    /// The table with the environment's admin tokens; [`load`](Self::load) adds the issued
    /// ones.
    pub fn new(store: Arc<dyn Store>, admin_tokens: &[SecretString], rates: Rates) -> Self {
        let by_digest = DashMap::new();
        for token in admin_tokens {
            let principal = Principal::new(None, Scopes::admin(), Vec::new(), None, rates.admin);
            by_digest.insert(
                TokenDigest::of(token.expose_secret()).key(),
                Arc::new(principal),
            );
        }
        Self {
            by_digest,
            store,
            rates,
        }
    }

    /// Adds the issued tokens the store holds (at start-up); how many.
    pub async fn load(&self) -> StoreResult<usize> {
        let tokens = self.store.tokens().await?;
        let n = tokens.len();
        for t in tokens {
            self.admit(t);
        }
        Ok(n)
    }

    /// Makes the issued tokens those the store holds now (another replica issued or
    /// revoked some): new ones admitted, revoked ones refused. Those still held keep their
    /// rate limiter.
    pub async fn reload(&self) -> StoreResult<()> {
        let tokens = self.store.tokens().await?;
        let ids: std::collections::HashSet<TokenId> = tokens.iter().map(|t| t.id.clone()).collect();
        self.by_digest
            .retain(|_, p| p.id.as_ref().is_none_or(|id| ids.contains(id)));
        for t in tokens {
            if !self.by_digest.contains_key(&t.digest.key()) {
                self.admit(t);
            }
        }
        Ok(())
    }

    fn admit(&self, t: TokenRecord) {
        let default = if t.scopes.is_admin() {
            self.rates.admin
        } else {
            self.rates.issued
        };
        let rate = t.rate_per_s.and_then(NonZeroU32::new).unwrap_or(default);
        let principal = Principal::new(Some(t.id), t.scopes, t.agents, t.expires_at, rate);
        self.by_digest.insert(t.digest.key(), Arc::new(principal));
    }

    /// The principal of a presented bearer token, after its expiry and its rate. With no
    /// token at all in the table the bridge is disabled (looked at only on a refusal: it
    /// visits every shard of the map).
    pub fn authenticate(&self, bearer: Option<&str>) -> Result<Arc<Principal>, Refusal> {
        let found = bearer.and_then(|t| self.by_digest.get(&TokenDigest::of(t).key()));
        let Some(principal) = found.map(|p| p.clone()) else {
            return Err(match (self.by_digest.is_empty(), bearer) {
                (true, _) => Refusal::Disabled,
                (false, None) => Refusal::Missing,
                (false, Some(_)) => Refusal::Unknown,
            });
        };
        if principal.is_expired() {
            return Err(Refusal::Expired);
        }
        principal.throttle().map_err(Refusal::Throttled)?;
        Ok(principal)
    }

    /// Issues a token: stored (as its digest), then usable. The value is in the answer
    /// only.
    pub async fn issue(
        &self,
        request: TokenRequest,
    ) -> Result<(TokenRecord, SecretString), IssueError> {
        let (record, value) = request.issue(now_s()).map_err(IssueError::Invalid)?;
        self.store.put_token(&record).await?;
        self.admit(record.clone());
        Ok((record, value))
    }

    /// Revokes an issued token: deleted from the store, then refused. Whether it existed.
    pub async fn revoke(&self, id: &TokenId) -> StoreResult<bool> {
        let existed = self.store.delete_token(id).await?;
        self.by_digest.retain(|_, p| p.id.as_ref() != Some(id));
        Ok(existed)
    }

    /// Every issued token (never a value).
    pub async fn issued(&self) -> StoreResult<Vec<TokenRecord>> {
        self.store.tokens().await
    }
}

#[cfg(test)]
mod tests;
