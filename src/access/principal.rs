//! The caller of a bridge request as authentication found it: its scopes, the agents it
//! acts for, its expiry and its rate limiter. What a request may do is decided here, by
//! [`Principal::check`] and [`Principal::check_agent`], and nowhere else.

use std::{num::NonZeroU32, time::Duration};

use governor::{clock::Clock, DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::{
    ids::AgentSlug,
    store::now_s,
    tokens::{
        issued::TokenId,
        pattern::AgentPattern,
        scope::{Scope, Scopes},
    },
};

/// Why an authenticated request is refused. Both read the same whether or not the agent
/// exists: nothing here looks at agents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("this token lacks the {0} scope")]
    Scope(Scope),
    #[error("this token lacks the {scope} scope for agent {slug}")]
    Agent { scope: Scope, slug: AgentSlug },
}

/// Every agent, the patterns of an admin token.
const EVERY_AGENT: &[AgentPattern] = &[AgentPattern::Any];

pub struct Principal {
    /// The issued token's id; `None` for the environment's admin tokens.
    pub id: Option<TokenId>,
    scopes: Scopes,
    agents: Box<[AgentPattern]>,
    /// Unix seconds.
    expires_at: Option<i64>,
    limiter: DefaultDirectRateLimiter,
}

impl Principal {
    pub fn new(
        id: Option<TokenId>,
        scopes: Scopes,
        agents: Vec<AgentPattern>,
        expires_at: Option<i64>,
        rate_per_s: NonZeroU32,
    ) -> Self {
        Self {
            id,
            scopes,
            agents: agents.into_boxed_slice(),
            expires_at,
            limiter: RateLimiter::direct(Quota::per_second(rate_per_s)),
        }
    }

    /// Whether the token has expired (the clock is read only for tokens that expire).
    pub fn is_expired(&self) -> bool {
        self.expires_at.is_some_and(|at| at <= now_s())
    }

    /// Takes one request from the token's rate; `Err` says how long until the next one
    /// is allowed.
    pub fn throttle(&self) -> Result<(), Duration> {
        self.limiter
            .check()
            .map_err(|wait| wait.wait_time_from(governor::clock::DefaultClock::default().now()))
    }

    /// Whether the token has `scope` (admin has every scope).
    pub fn check(&self, scope: Scope) -> Result<(), Denied> {
        if self.scopes.allows(scope) {
            Ok(())
        } else {
            Err(Denied::Scope(scope))
        }
    }

    /// Whether the token has `scope` for agent `slug`.
    pub fn check_agent(&self, scope: Scope, slug: &AgentSlug) -> Result<(), Denied> {
        self.check(scope)?;
        if self.may(scope, slug) {
            Ok(())
        } else {
            Err(Denied::Agent {
                scope,
                slug: slug.clone(),
            })
        }
    }

    /// [`check_agent`](Self::check_agent) as a yes or no.
    pub fn may(&self, scope: Scope, slug: &AgentSlug) -> bool {
        self.scopes.allows(scope) && self.covers(slug)
    }

    /// Whether `slug` is one of the token's agents.
    pub fn covers(&self, slug: &AgentSlug) -> bool {
        self.patterns().iter().any(|p| p.covers(slug))
    }

    /// The token's agent patterns (every agent for an admin token).
    pub fn patterns(&self) -> &[AgentPattern] {
        if self.scopes.is_admin() {
            EVERY_AGENT
        } else {
            &self.agents
        }
    }
}

impl std::fmt::Debug for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Principal")
            .field("id", &self.id)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(scopes: &[&str], agents: &[&str], rate: u32) -> Principal {
        Principal::new(
            None,
            Scopes::parse_list(scopes).unwrap(),
            agents
                .iter()
                .map(|p| AgentPattern::parse(p).unwrap())
                .collect(),
            Some(now_s() + 100),
            NonZeroU32::new(rate).unwrap(),
        )
    }

    fn slug(s: &str) -> AgentSlug {
        AgentSlug::parse(s).unwrap()
    }

    #[test]
    fn scope_and_agent_are_both_needed() {
        let p = principal(&["send"], &["planner-*"], 10);
        assert_eq!(p.check_agent(Scope::Send, &slug("planner-1")), Ok(()));
        assert_eq!(p.check(Scope::Read), Err(Denied::Scope(Scope::Read)));
        assert_eq!(
            p.check_agent(Scope::Read, &slug("planner-1")),
            Err(Denied::Scope(Scope::Read))
        );
        let other = p.check_agent(Scope::Send, &slug("coder")).unwrap_err();
        assert_eq!(
            other.to_string(),
            "this token lacks the send scope for agent coder"
        );
        let admin = principal(&["admin"], &[], 10);
        assert_eq!(admin.check_agent(Scope::Profile, &slug("anyone")), Ok(()));
        assert_eq!(admin.patterns(), EVERY_AGENT);
    }

    #[test]
    fn expiry_and_rate() {
        let p = principal(&["read"], &["*"], 3);
        assert!(!p.is_expired());
        let old = Principal::new(
            None,
            Scopes::admin(),
            Vec::new(),
            Some(now_s()),
            1.try_into().unwrap(),
        );
        assert!(old.is_expired());
        for _ in 0..3 {
            assert_eq!(p.throttle(), Ok(()));
        }
        let wait = p.throttle().unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(334),
            "{wait:?}"
        );
    }
}
