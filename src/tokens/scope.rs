//! What a bridge token may do: its scopes (SPEC "Clients, scopes and tokens"). `admin`
//! implies every other scope.

use std::fmt;

use enumset::{EnumSet, EnumSetType};

/// One scope of a bridge token.
#[derive(Debug, EnumSetType)]
pub enum Scope {
    /// Messages, typing and the other acts of its agents in rooms.
    Send,
    /// Its agents' inboxes, state and listing.
    Read,
    /// Creating and renaming its agents.
    Profile,
    /// Creating rooms (joining only its agents into them).
    Provision,
    /// Everything, issued tokens included.
    Admin,
}

impl Scope {
    /// Every scope, in the order they are written.
    pub const ALL: [Scope; 5] = [
        Scope::Send,
        Scope::Read,
        Scope::Profile,
        Scope::Provision,
        Scope::Admin,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Send => "send",
            Self::Read => "read",
            Self::Profile => "profile",
            Self::Provision => "provision",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.as_str() == s)
    }
}

/// In the bridge API's OpenAPI document: one of the scope names.
impl utoipa::PartialSchema for Scope {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .enum_values(Some(Self::ALL.map(Self::as_str)))
            .into()
    }
}

impl utoipa::ToSchema for Scope {}

impl serde::Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The scopes of one token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(EnumSet<Scope>);

impl Scopes {
    /// Every scope (the environment's admin tokens).
    pub fn admin() -> Self {
        Self(EnumSet::only(Scope::Admin))
    }

    /// Whether a request needing `scope` is allowed.
    pub fn allows(self, scope: Scope) -> bool {
        self.0.contains(Scope::Admin) || self.0.contains(scope)
    }

    pub fn is_admin(self) -> bool {
        self.0.contains(Scope::Admin)
    }

    /// Whether any scope that acts for agents is present (`send`, `read`, `profile`).
    pub fn acts_for_agents(self) -> bool {
        !self
            .0
            .is_disjoint(Scope::Send | Scope::Read | Scope::Profile)
    }

    /// Parses a list of scope names (duplicates allowed); the error names the bad item as
    /// `scopes[i]`.
    pub fn parse_list<S: AsRef<str>>(names: &[S]) -> Result<Self, String> {
        if names.is_empty() {
            return Err("scopes: name at least one scope".into());
        }
        let mut set = EnumSet::new();
        for (i, name) in names.iter().enumerate() {
            let name = name.as_ref();
            let scope = Scope::parse(name).ok_or_else(|| {
                format!(
                    "scopes[{i}]: unknown scope {name:?}; one of {}",
                    Scope::ALL.map(Scope::as_str).join(", ")
                )
            })?;
            set.insert(scope);
        }
        Ok(Self(set))
    }

    /// The scopes, in [`Scope::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        self.0.iter()
    }

    /// The stored form: names joined by commas.
    pub fn to_text(self) -> String {
        self.iter().map(Scope::as_str).collect::<Vec<_>>().join(",")
    }

    /// Reads the stored form back.
    pub fn from_text(text: &str) -> Option<Self> {
        let names: Vec<&str> = text.split(',').collect();
        Self::parse_list(&names).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_allows_everything_and_others_only_themselves() {
        let admin = Scopes::admin();
        assert!(Scope::ALL.iter().all(|s| admin.allows(*s)));
        let some = Scopes::parse_list(&["send", "read", "send"]).unwrap();
        assert!(some.allows(Scope::Send) && some.allows(Scope::Read));
        assert!(!some.allows(Scope::Profile) && !some.allows(Scope::Admin));
        assert!(some.acts_for_agents());
        assert!(!Scopes::parse_list(&["provision"])
            .unwrap()
            .acts_for_agents());
    }

    #[test]
    fn bad_lists_name_the_item() {
        let err = Scopes::parse_list(&["send", "sned"]).unwrap_err();
        assert!(
            err.starts_with("scopes[1]: unknown scope \"sned\""),
            "{err}"
        );
        assert!(Scopes::parse_list::<&str>(&[])
            .unwrap_err()
            .starts_with("scopes:"));
        assert!(Scopes::parse_list(&["Send"]).is_err());
    }

    #[test]
    fn the_stored_form_round_trips() {
        let s = Scopes::parse_list(&["provision", "send"]).unwrap();
        assert_eq!(s.to_text(), "send,provision");
        assert_eq!(Scopes::from_text(&s.to_text()), Some(s));
        assert_eq!(Scopes::from_text(""), None);
    }
}
