//! Authorisation of bridge requests, decided in one place. The bridge middleware
//! ([`super::auth`]) authenticates the token and leaves its [`Principal`] in the request; a
//! handler takes a [`Grant<S>`] (the principal, checked for scope `S`) or an
//! [`AgentGrant<S>`] (also checked for the path's `{agent}`), and asks the grant about any
//! other agent it acts for. Refusals never depend on whether an agent exists.

use std::{future::Ready, marker::PhantomData, sync::Arc};

use actix_web::{dev::Payload, FromRequest, HttpMessage, HttpRequest};

use super::{bridge::slug_param, error::ApiError};
use crate::{
    access::Principal,
    actors::agent::Joining,
    ids::AgentSlug,
    tokens::{pattern::AgentPattern, scope::Scope},
};

/// The scope a handler needs, as a type.
pub trait NeedsScope {
    const SCOPE: Scope;
}

macro_rules! scope_markers {
    ($($name:ident => $scope:ident),* $(,)?) => {$(
        #[doc = concat!("The `", stringify!($scope), "` scope.")]
        pub struct $name;
        impl NeedsScope for $name {
            const SCOPE: Scope = Scope::$scope;
        }
    )*};
}

scope_markers! {
    SendScope => Send,
    ReadScope => Read,
    ProfileScope => Profile,
    ProvisionScope => Provision,
    AdminScope => Admin,
}

/// A caller holding scope `S`.
pub struct Grant<S> {
    principal: Arc<Principal>,
    scope: PhantomData<S>,
}

impl<S: NeedsScope> Grant<S> {
    fn of(req: &HttpRequest) -> Result<Self, ApiError> {
        let principal = req
            .extensions()
            .get::<Arc<Principal>>()
            .cloned()
            .ok_or(ApiError::Internal)?;
        principal.check(S::SCOPE)?;
        Ok(Self {
            principal,
            scope: PhantomData,
        })
    }

    /// Whether the caller may act for `slug` with scope `S`.
    pub fn agent(&self, slug: &AgentSlug) -> Result<(), ApiError> {
        Ok(self.principal.check_agent(S::SCOPE, slug)?)
    }

    /// Whether the caller may also act for `slug` with `scope` (a request that needs more
    /// than its route's scope for some of what it asks, such as a state type the daemon
    /// owns); refused naming the scope otherwise.
    pub fn also(&self, scope: Scope, slug: &AgentSlug) -> Result<(), ApiError> {
        Ok(self.principal.check_agent(scope, slug)?)
    }

    /// How `slug` may get into a room this request names: through the sender bot's invite
    /// only when the caller could have chosen the room for it (`provision` for the agent).
    pub fn joining(&self, slug: &AgentSlug) -> Joining {
        if self.principal.may(Scope::Provision, slug) {
            Joining::SenderBotInvites
        } else {
            Joining::ByItself
        }
    }

    /// The agents the caller acts for.
    pub fn patterns(&self) -> &[AgentPattern] {
        self.principal.patterns()
    }

    /// Whether `slug` is one of the caller's agents.
    pub fn covers(&self, slug: &AgentSlug) -> bool {
        self.principal.covers(slug)
    }
}

impl<S: NeedsScope> FromRequest for Grant<S> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Self::of(req))
    }
}

/// A caller holding scope `S` for the agent named by the path's `{agent}`.
pub struct AgentGrant<S> {
    pub slug: AgentSlug,
    pub grant: Grant<S>,
}

impl<S: NeedsScope> FromRequest for AgentGrant<S> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready((|| {
            let grant = Grant::<S>::of(req)?;
            let raw = req.match_info().get("agent").ok_or(ApiError::Internal)?;
            let slug = slug_param(raw)?;
            grant.agent(&slug)?;
            Ok(Self { slug, grant })
        })())
    }
}
