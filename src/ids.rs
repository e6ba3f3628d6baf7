//! Identifiers of this service: the agent slug, and the mapping between slugs, agent
//! user ids and room aliases (the registration's namespaces), compiled once at start-up.

use std::{fmt, sync::Arc};

use ruma::{OwnedRoomAliasId, OwnedServerName, OwnedUserId, RoomAliasId, UserId};
use serde::{Deserialize, Serialize};

/// Longest accepted agent slug.
pub const MAX_SLUG_LEN: usize = 64;
/// Longest alias name a provisioning request may give (the prefix aside; the bridge's
/// provisioning route refuses longer ones).
pub const MAX_ALIAS_NAME_LEN: usize = 200;
/// Matrix's limit on the length of a user id or room alias, in bytes.
pub const MAX_ID_BYTES: usize = 255;

/// Length of the longest agent user id: `@<agent_prefix><slug of MAX_SLUG_LEN>:<server>`.
pub fn longest_agent_id(agent_prefix: &str, server_name: &str) -> usize {
    "@:".len() + agent_prefix.len() + MAX_SLUG_LEN + server_name.len()
}

/// Length of the longest alias the daemon can create:
/// `#<alias_prefix><name of MAX_ALIAS_NAME_LEN>:<server>` (a name without the prefix gets it).
pub fn longest_alias(alias_prefix: &str, server_name: &str) -> usize {
    "#:".len() + alias_prefix.len() + MAX_ALIAS_NAME_LEN + server_name.len()
}

/// An agent's name on the bridge API: 1–64 characters of `[a-z0-9_-]`, starting with a
/// letter or digit. Cheap to clone (shared).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct AgentSlug(Arc<str>);

/// Why a string is not an agent slug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SlugError {
    /// Empty or longer than 64 characters.
    #[error("must be 1 to 64 characters long")]
    Length,
    /// Starts with `_` or `-`.
    #[error("must start with a lowercase letter or a digit")]
    Start,
    /// Contains a character outside `[a-z0-9_-]`.
    #[error("may only contain a-z, 0-9, '_' and '-'")]
    Charset,
}

impl AgentSlug {
    /// Validates `s` as a slug.
    pub fn parse(s: &str) -> Result<Self, SlugError> {
        if s.is_empty() || s.len() > MAX_SLUG_LEN {
            return Err(SlugError::Length);
        }
        let bytes = s.as_bytes();
        if !(bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit()) {
            return Err(SlugError::Start);
        }
        if !bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-')
        {
            return Err(SlugError::Charset);
        }
        Ok(Self(Arc::from(s)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// In the bridge API's OpenAPI document: a string of the slug's shape.
impl utoipa::PartialSchema for AgentSlug {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .pattern(Some("^[a-z0-9][a-z0-9_-]{0,63}$"))
            .min_length(Some(1))
            .max_length(Some(MAX_SLUG_LEN))
            .description(Some("An agent's name: 1 to 64 characters of [a-z0-9_-], starting with a letter or digit."))
            .examples(["coder-1"])
            .into()
    }
}

impl utoipa::ToSchema for AgentSlug {}

impl fmt::Display for AgentSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AgentSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgentSlug({})", &self.0)
    }
}

impl<'de> Deserialize<'de> for AgentSlug {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        AgentSlug::parse(&s)
            .map_err(|e| serde::de::Error::custom(format!("invalid agent slug: {e}")))
    }
}

/// The registration's namespaces: which user ids and aliases belong to this service. The
/// config check guarantees that every id it makes fits Matrix's length limit
/// ([`longest_agent_id`], [`longest_alias`]).
#[derive(Debug, Clone)]
pub struct Namespaces {
    server_name: OwnedServerName,
    agent_prefix: String,
    /// `@` + agent_prefix, for quick scans of message bodies.
    agent_id_prefix: String,
    alias_prefix: String,
    sender: OwnedUserId,
}

impl Namespaces {
    pub fn new(
        server_name: OwnedServerName,
        agent_prefix: &str,
        alias_prefix: &str,
        sender_localpart: &str,
    ) -> Self {
        let sender = UserId::parse(format!("@{sender_localpart}:{server_name}"))
            .expect("sender localpart and length validated by config");
        Self {
            server_name,
            agent_prefix: agent_prefix.to_owned(),
            agent_id_prefix: format!("@{agent_prefix}"),
            alias_prefix: alias_prefix.to_owned(),
            sender,
        }
    }

    pub fn server_name(&self) -> &OwnedServerName {
        &self.server_name
    }

    /// The AS sender bot.
    pub fn sender(&self) -> &OwnedUserId {
        &self.sender
    }

    /// `@<agent_prefix>`: how every agent user id starts.
    pub fn agent_id_prefix(&self) -> &str {
        &self.agent_id_prefix
    }

    /// `@<agent_prefix><slug>:<server>`.
    pub fn agent_user_id(&self, slug: &AgentSlug) -> OwnedUserId {
        UserId::parse(format!(
            "@{}{}:{}",
            self.agent_prefix, slug, self.server_name
        ))
        .expect("slug charset is a subset of the localpart charset; length checked by config")
    }

    /// The slug of an agent user of this service, or `None` for any other user.
    pub fn agent_slug(&self, user: &UserId) -> Option<AgentSlug> {
        if user.server_name() != self.server_name {
            return None;
        }
        let slug = user.localpart().strip_prefix(self.agent_prefix.as_str())?;
        AgentSlug::parse(slug).ok()
    }

    /// The full alias for a requested alias name: the configured prefix is prepended when
    /// the name does not already carry it (aliases outside the namespace are refused by the
    /// homeserver with `M_EXCLUSIVE`). Returns the localpart and the full alias.
    pub fn alias_for(&self, name: &str) -> (String, OwnedRoomAliasId) {
        let local = if name.starts_with(self.alias_prefix.as_str()) {
            name.to_owned()
        } else {
            format!("{}{}", self.alias_prefix, name)
        };
        let full = RoomAliasId::parse(format!("#{local}:{}", self.server_name))
            .expect("alias charset validated by the caller; length checked by config");
        (local, full)
    }

    /// Whether an alias is inside this service's alias namespace.
    pub fn owns_alias(&self, alias: &RoomAliasId) -> bool {
        alias.server_name() == self.server_name
            && alias.alias().starts_with(self.alias_prefix.as_str())
    }

    /// Regex of the exclusive user namespace for agents (for the registration).
    pub fn agent_regex(&self) -> String {
        format!(
            "^@{}[a-z0-9][a-z0-9_-]*:{}$",
            regex::escape(&self.agent_prefix),
            regex::escape(self.server_name.as_str())
        )
    }

    /// Regex matching exactly the sender bot.
    pub fn sender_regex(&self) -> String {
        format!("^{}$", regex::escape(self.sender.as_str()))
    }

    /// Regex of the exclusive alias namespace.
    pub fn alias_regex(&self) -> String {
        format!(
            "^#{}.*:{}$",
            regex::escape(&self.alias_prefix),
            regex::escape(self.server_name.as_str())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::schema::parse_bounded;

    fn ns() -> Namespaces {
        Namespaces::new(
            "hs.local".try_into().unwrap(),
            "agent-",
            "mosaic-",
            "mosaic-as",
        )
    }

    #[test]
    fn slugs() {
        assert!(AgentSlug::parse("alpha").is_ok());
        assert!(AgentSlug::parse("0-a_b").is_ok());
        assert_eq!(AgentSlug::parse(""), Err(SlugError::Length));
        assert_eq!(AgentSlug::parse(&"a".repeat(65)), Err(SlugError::Length));
        assert!(AgentSlug::parse(&"a".repeat(64)).is_ok());
        assert_eq!(AgentSlug::parse("-a"), Err(SlugError::Start));
        assert_eq!(AgentSlug::parse("Alpha"), Err(SlugError::Start));
        assert_eq!(AgentSlug::parse("a.b"), Err(SlugError::Charset));
    }

    #[test]
    fn user_ids_round_trip() {
        let ns = ns();
        let slug = AgentSlug::parse("alpha").unwrap();
        let uid = ns.agent_user_id(&slug);
        assert_eq!(uid.as_str(), "@agent-alpha:hs.local");
        assert_eq!(ns.agent_slug(&uid), Some(slug));
        assert_eq!(
            ns.agent_slug(<&UserId>::try_from("@agent-alpha:other").unwrap()),
            None
        );
        assert_eq!(
            ns.agent_slug(<&UserId>::try_from("@alice:hs.local").unwrap()),
            None
        );
        assert_eq!(ns.agent_slug(ns.sender()), None);
    }

    #[test]
    fn aliases_get_the_prefix_once() {
        let ns = ns();
        assert_eq!(ns.alias_for("ops").1.as_str(), "#mosaic-ops:hs.local");
        assert_eq!(
            ns.alias_for("mosaic-ops").1.as_str(),
            "#mosaic-ops:hs.local"
        );
        assert!(ns.owns_alias(&ns.alias_for("x").1));
    }

    /// The longest ids the config allows are valid Matrix ids; one byte more is not (the
    /// limit the bridge holds identifiers to, as ruma no longer does in this build).
    #[test]
    fn the_longest_ids_fit_exactly() {
        let server = "s".repeat(MAX_ID_BYTES - longest_agent_id("agent-", ""));
        let ns = Namespaces::new(server.as_str().try_into().unwrap(), "agent-", "m-", "bot");
        let slug = AgentSlug::parse(&"a".repeat(MAX_SLUG_LEN)).unwrap();
        assert_eq!(ns.agent_user_id(&slug).as_str().len(), MAX_ID_BYTES);
        let too_long = format!("@agent-{slug}:{server}x");
        assert!(parse_bounded::<ruma::OwnedUserId>(&too_long).is_err());

        let server = "s".repeat(MAX_ID_BYTES - longest_alias("m-", ""));
        let ns = Namespaces::new(server.as_str().try_into().unwrap(), "agent-", "m-", "bot");
        let (_, alias) = ns.alias_for(&"n".repeat(MAX_ALIAS_NAME_LEN));
        assert_eq!(alias.as_str().len(), MAX_ID_BYTES);
        assert!(parse_bounded::<ruma::OwnedRoomAliasId>(&format!("{alias}x")).is_err());
    }

    #[test]
    fn regexes_escape() {
        let ns = ns();
        assert_eq!(ns.agent_regex(), r"^@agent\-[a-z0-9][a-z0-9_-]*:hs\.local$");
        assert_eq!(ns.alias_regex(), r"^#mosaic\-.*:hs\.local$");
        assert_eq!(ns.sender_regex(), r"^@mosaic\-as:hs\.local$");
    }
}
