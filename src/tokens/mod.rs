//! Bearer tokens as the daemon keeps and compares them: by SHA-256 digest, in constant
//! time, so neither a token's content nor its length shows in how long a comparison takes,
//! and a stored digest never reveals the token. What an issued bridge token may do:
//! [`scope`] and agent [`pattern`]s; the tokens themselves: [`issued`].

pub mod issued;
pub mod pattern;
pub mod scope;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The SHA-256 of a token. Compared only with [`matches`](Self::matches) (no `PartialEq`:
/// that would not be constant-time).
#[derive(Clone, Copy)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Constant-time equality.
    pub fn matches(&self, other: &TokenDigest) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    /// The stored form.
    pub fn to_bytes(self) -> [u8; 32] {
        self.0
    }

    /// Reads the stored form back.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }
}

/// A digest as a map key: hashed like any key (with the map's random keys), and compared
/// in constant time, so finding a token in a table tells nothing of how close a guess was.
#[derive(Clone, Copy)]
pub struct DigestKey([u8; 32]);

impl PartialEq for DigestKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for DigestKey {}

impl std::hash::Hash for DigestKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write(&self.0);
    }
}

impl TokenDigest {
    /// The digest as a map key.
    pub fn key(self) -> DigestKey {
        DigestKey(self.0)
    }
}

impl std::fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenDigest(..)")
    }
}

/// The digests of the homeserver's and the metrics token, made once at start-up (bridge
/// tokens: [`crate::access`]).
#[derive(Debug)]
pub struct KnownTokens {
    /// The homeserver's (`MOSAIC_HS_TOKEN`).
    pub hs: TokenDigest,
    /// `/metrics`'s (`MOSAIC_METRICS_TOKEN`); `None`: `/metrics` is open.
    pub metrics: Option<TokenDigest>,
}

/// Whether `token` can be a bearer token: visible ASCII only (no space, no control
/// character), as an HTTP header value carries it unchanged.
pub fn is_well_formed(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_only_the_same_token() {
        let secret = TokenDigest::of(&"x".repeat(40));
        assert!(TokenDigest::of(&"x".repeat(40)).matches(&secret));
        assert!(!TokenDigest::of(&"x".repeat(39)).matches(&secret));
        assert!(!TokenDigest::of("").matches(&secret));
        let bytes = secret.to_bytes();
        assert!(TokenDigest::from_bytes(&bytes).unwrap().matches(&secret));
        assert!(TokenDigest::from_bytes(&bytes[1..]).is_none());
        let keys: std::collections::HashSet<_> =
            ["a", "b", "a"].map(|t| TokenDigest::of(t).key()).into();
        assert_eq!(keys.len(), 2);
        assert!(keys.contains(&TokenDigest::of("b").key()));
        assert!(!keys.contains(&TokenDigest::of("c").key()));
        assert_eq!(format!("{secret:?}"), "TokenDigest(..)");
    }

    #[test]
    fn well_formed_tokens_are_visible_ascii() {
        assert!(is_well_formed("abcXYZ019-._~+/="));
        for bad in ["", "a b", "a\tb", "a\nb", "a\u{7f}", "ä", "a\u{0}"] {
            assert!(!is_well_formed(bad), "{bad:?}");
        }
    }
}
