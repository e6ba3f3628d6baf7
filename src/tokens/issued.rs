//! Issued bridge tokens: the request an admin makes (validated field by field), the record
//! the store keeps (the value only as its digest), and the value itself, drawn from the
//! operating system's random source and shown once.

use std::fmt;

use rand::TryRngCore;
use secrecy::SecretString;
use serde::Deserialize;

use super::{pattern::AgentPattern, scope::Scopes, TokenDigest};

/// Most agent patterns on one token.
pub const MAX_PATTERNS: usize = 100;
/// Longest token name.
pub const MAX_NAME_LEN: usize = 100;
/// Highest `rate_per_s` a token may be given.
pub const MAX_RATE_PER_S: u32 = 1_000_000;
/// Longest life of a token: ten years.
pub const MAX_EXPIRES_IN_S: u64 = 10 * 365 * 24 * 3600;
/// Random bytes in a token value (256 bits).
const VALUE_BYTES: usize = 32;

/// An issued token's public id (`tok_` and 16 hex digits), never secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenId(Box<str>);

impl TokenId {
    /// A fresh random id.
    pub fn generate() -> Self {
        Self(format!("tok_{}", hex::encode(random::<8>())).into())
    }

    /// Validates a stored or requested id.
    pub fn parse(s: &str) -> Option<Self> {
        let hex = s.strip_prefix("tok_")?;
        (hex.len() == 16
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| Self(s.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An issued token as the store keeps it.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub id: TokenId,
    pub name: String,
    pub digest: TokenDigest,
    pub scopes: Scopes,
    pub agents: Vec<AgentPattern>,
    /// Requests per second; `None`: the configured default.
    pub rate_per_s: Option<u32>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; `None`: never.
    pub expires_at: Option<i64>,
}

impl TokenRecord {
    pub fn is_expired(&self, now_s: i64) -> bool {
        self.expires_at.is_some_and(|at| at <= now_s)
    }
}

/// The body of `POST /bridge/v1/tokens`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// A name for people (who holds the token), 1 to 100 bytes.
    #[schema(min_length = 1, max_length = 100, examples("planner"))]
    name: String,
    /// At least one scope; `admin` implies the others.
    #[schema(value_type = Vec<super::scope::Scope>, min_items = 1)]
    scopes: Vec<String>,
    /// The agents the token acts for: `*`, `prefix-*` or a slug (at most 100); none for a
    /// token that needs no agent.
    #[serde(default)]
    #[schema(max_items = 100, examples(json!(["planner-*"])))]
    agents: Vec<String>,
    /// Requests per second (default: `limits.token_rate_per_s`), 1 to 1,000,000.
    #[serde(default, deserialize_with = "crate::whole_number::optional")]
    #[schema(minimum = 1, maximum = 1_000_000)]
    rate_per_s: Option<u64>,
    /// Seconds until the token expires, 1 to ten years; none: never.
    #[serde(default, deserialize_with = "crate::whole_number::optional")]
    #[schema(minimum = 1, maximum = 315_360_000)]
    expires_in_s: Option<u64>,
}

impl TokenRequest {
    /// Checks every field (the error names the first bad one) and draws the token: the
    /// record to store and the value to show once.
    pub fn issue(self, now_s: i64) -> Result<(TokenRecord, SecretString), String> {
        let name = self.name;
        if name.trim().is_empty() || name.len() > MAX_NAME_LEN || name.chars().any(char::is_control)
        {
            return Err(format!(
                "name: must be 1 to {MAX_NAME_LEN} bytes, not blank, without control characters"
            ));
        }
        let scopes = Scopes::parse_list(&self.scopes)?;
        if self.agents.len() > MAX_PATTERNS {
            return Err(format!("agents: at most {MAX_PATTERNS} patterns"));
        }
        let agents = self
            .agents
            .iter()
            .enumerate()
            .map(|(i, p)| AgentPattern::parse(p).map_err(|e| format!("agents[{i}]: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        if agents.is_empty() && scopes.acts_for_agents() && !scopes.is_admin() {
            return Err("agents: send, read and profile need at least one agent pattern".into());
        }
        let rate_per_s = match self.rate_per_s {
            None => None,
            Some(r @ 1..) if r <= u64::from(MAX_RATE_PER_S) => Some(r as u32),
            Some(_) => return Err(format!("rate_per_s: must be from 1 to {MAX_RATE_PER_S}")),
        };
        let expires_at = match self.expires_in_s {
            None => None,
            Some(s @ 1..) if s <= MAX_EXPIRES_IN_S => Some(now_s + s as i64),
            Some(_) => {
                return Err(format!(
                    "expires_in_s: must be from 1 to {MAX_EXPIRES_IN_S}"
                ))
            }
        };
        let value = format!("mas_{}", hex::encode(random::<VALUE_BYTES>()));
        let record = TokenRecord {
            id: TokenId::generate(),
            name,
            digest: TokenDigest::of(&value),
            scopes,
            agents,
            rate_per_s,
            created_at: now_s,
            expires_at,
        };
        Ok((record, SecretString::from(value)))
    }
}

/// `N` bytes from the operating system's random source.
fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0; N];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .expect("the operating system's random source works");
    bytes
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;
    use serde_json::json;

    use super::*;

    fn request(v: serde_json::Value) -> Result<(TokenRecord, SecretString), String> {
        serde_json::from_value::<TokenRequest>(v)
            .unwrap()
            .issue(1000)
    }

    #[test]
    fn a_valid_request_draws_a_fresh_256_bit_value() {
        let body = json!({"name": "planner", "scopes": ["send", "read"],
            "agents": ["planner-*"], "rate_per_s": 5, "expires_in_s": 60});
        let (rec, value) = request(body.clone()).unwrap();
        let value = value.expose_secret();
        assert_eq!(value.len(), 4 + 64);
        assert!(TokenDigest::of(value).matches(&rec.digest));
        assert_eq!(rec.expires_at, Some(1060));
        assert_eq!(rec.rate_per_s, Some(5));
        assert!(TokenId::parse(rec.id.as_str()).is_some());
        let (again, other) = request(body).unwrap();
        assert_ne!(other.expose_secret(), value);
        assert_ne!(again.id, rec.id);
        assert!(!rec.is_expired(1059) && rec.is_expired(1060));
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases = [
            (
                json!({"name": " ", "scopes": ["send"], "agents": ["a"]}),
                "name:",
            ),
            (
                json!({"name": "n", "scopes": [], "agents": ["a"]}),
                "scopes:",
            ),
            (
                json!({"name": "n", "scopes": ["root"], "agents": ["a"]}),
                "scopes[0]:",
            ),
            (
                json!({"name": "n", "scopes": ["send"], "agents": ["a", "B*"]}),
                "agents[1]:",
            ),
            (json!({"name": "n", "scopes": ["send"]}), "agents:"),
            (
                json!({"name": "n", "scopes": ["send"], "agents": ["a"], "rate_per_s": 0}),
                "rate_per_s:",
            ),
            (
                json!({"name": "n", "scopes": ["send"], "agents": ["a"], "expires_in_s": 0}),
                "expires_in_s:",
            ),
        ];
        for (body, field) in cases {
            let err = request(body.clone()).unwrap_err();
            assert!(err.starts_with(field), "{body}: {err}");
        }
        assert!(request(json!({"name": "n", "scopes": ["provision"]})).is_ok());
        assert!(request(json!({"name": "n", "scopes": ["admin"]})).is_ok());
    }

    #[test]
    fn ids_are_checked() {
        assert!(TokenId::parse("tok_0123456789abcdef").is_some());
        for bad in [
            "tok_0123",
            "0123456789abcdef",
            "tok_0123456789ABCDEF",
            "tok_../../etc/pass",
        ] {
            assert!(TokenId::parse(bad).is_none(), "{bad}");
        }
    }
}
