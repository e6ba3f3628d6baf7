//! Which agents a bridge token acts for: an exact slug, a prefix (`planner-*`) or every
//! agent (`*`).

use std::fmt;

use crate::ids::{AgentSlug, MAX_SLUG_LEN};

/// One agent pattern of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentPattern {
    /// `*`: every agent.
    Any,
    /// `prefix*`: every agent whose slug starts with the prefix (itself a valid slug start).
    Prefix(Box<str>),
    /// One agent.
    Exact(AgentSlug),
}

/// The slugs a pattern covers as a range in slug order: from `from` (inclusive) to `to`
/// (exclusive; `None`: no end). Slugs are ASCII below `0x7f`, so `prefix + "\x7f"` ends a
/// prefix's range and `slug + "\0"` an exact one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlugRange {
    pub from: String,
    pub to: Option<String>,
}

impl SlugRange {
    /// The slugs in both ranges; `None` when there can be none.
    pub fn intersect(&self, other: &SlugRange) -> Option<SlugRange> {
        let from = self.from.as_str().max(other.from.as_str()).to_owned();
        let to = match (&self.to, &other.to) {
            (None, to) | (to, None) => to.clone(),
            (Some(a), Some(b)) => Some(a.min(b).clone()),
        };
        match &to {
            Some(to) if *to <= from => None,
            _ => Some(SlugRange { from, to }),
        }
    }
}

impl AgentPattern {
    /// Parses one pattern; the error says why, for the caller to name the field.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s == "*" {
            return Ok(Self::Any);
        }
        if let Some(prefix) = s.strip_suffix('*') {
            if prefix.len() >= MAX_SLUG_LEN {
                return Err(format!(
                    "prefix longer than {} characters",
                    MAX_SLUG_LEN - 1
                ));
            }
            return match AgentSlug::parse(prefix) {
                Ok(_) => Ok(Self::Prefix(prefix.into())),
                Err(e) => Err(format!("{s:?} is not a slug prefix followed by '*': {e}")),
            };
        }
        AgentSlug::parse(s)
            .map(Self::Exact)
            .map_err(|e| format!("{s:?} is not a slug, 'prefix*' or '*': {e}"))
    }

    /// Whether `slug` is one of the agents this pattern names.
    pub fn covers(&self, slug: &AgentSlug) -> bool {
        match self {
            Self::Any => true,
            Self::Prefix(p) => slug.as_str().starts_with(&**p),
            Self::Exact(s) => s == slug,
        }
    }

    /// The pattern's agents as a range in slug order, for listing them from the store.
    pub fn range(&self) -> SlugRange {
        match self {
            Self::Any => SlugRange {
                from: String::new(),
                to: None,
            },
            Self::Prefix(p) => SlugRange {
                from: p.to_string(),
                to: Some(format!("{p}\x7f")),
            },
            Self::Exact(s) => SlugRange {
                from: s.to_string(),
                to: Some(format!("{s}\0")),
            },
        }
    }
}

impl fmt::Display for AgentPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("*"),
            Self::Prefix(p) => write!(f, "{p}*"),
            Self::Exact(s) => f.write_str(s.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slug(s: &str) -> AgentSlug {
        AgentSlug::parse(s).unwrap()
    }

    #[test]
    fn patterns_cover_what_they_name() {
        let any = AgentPattern::parse("*").unwrap();
        let prefix = AgentPattern::parse("planner-*").unwrap();
        let exact = AgentPattern::parse("planner").unwrap();
        assert!(any.covers(&slug("x")));
        assert!(prefix.covers(&slug("planner-1")) && prefix.covers(&slug("planner-")));
        assert!(!prefix.covers(&slug("planner")) && !prefix.covers(&slug("coder-1")));
        assert!(exact.covers(&slug("planner")) && !exact.covers(&slug("planner-1")));
        for p in ["*", "planner-*", "planner", "a*"] {
            assert_eq!(AgentPattern::parse(p).unwrap().to_string(), p);
        }
    }

    #[test]
    fn bad_patterns_are_refused() {
        let too_long = format!("{}*", "a".repeat(64));
        for bad in [
            "",
            "**",
            "-x*",
            "Planner-*",
            "a*b",
            "pl anner",
            "*x",
            &too_long,
        ] {
            assert!(AgentPattern::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ranges_hold_exactly_the_covered_slugs() {
        let prefix = AgentPattern::parse("pl-*").unwrap().range();
        let inside = |s: &str, r: &SlugRange| {
            s >= r.from.as_str() && r.to.as_deref().is_none_or(|to| s < to)
        };
        for s in ["pl-", "pl-a", "pl-zzz", "pl-___"] {
            assert!(inside(s, &prefix), "{s}");
        }
        for s in ["pl", "pl_", "pla", "pm"] {
            assert!(!inside(s, &prefix), "{s}");
        }
        let exact = AgentPattern::parse("pl").unwrap().range();
        assert!(inside("pl", &exact) && !inside("pl-", &exact) && !inside("pk", &exact));
        assert!(inside("anything", &AgentPattern::Any.range()));
    }

    /// A search within a token's patterns: the intersection holds exactly the slugs both
    /// ranges hold, and is empty (`None`) when they are disjoint.
    #[test]
    fn ranges_intersect() {
        let range = |p: &str| AgentPattern::parse(p).unwrap().range();
        let within = |a: &str, b: &str| range(a).intersect(&range(b));
        assert_eq!(within("*", "pl-*"), Some(range("pl-*")));
        assert_eq!(within("pl-*", "*"), Some(range("pl-*")));
        assert_eq!(within("pl-*", "pl-a*"), Some(range("pl-a*")));
        assert_eq!(within("pl-a*", "pl-*"), Some(range("pl-a*")));
        assert_eq!(within("pl-*", "pl-a"), Some(range("pl-a")));
        assert_eq!(within("pl-a", "pl-a*"), Some(range("pl-a")));
        assert_eq!(within("pl-a", "pl-b*"), None);
        assert_eq!(within("pl-*", "co-*"), None);
        assert_eq!(within("co-*", "pl-*"), None);
        assert_eq!(within("pl", "pl-*"), None);
    }
}
