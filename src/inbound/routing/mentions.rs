//! Whether a message mentions an agent: `m.mentions.user_ids`, or for older clients the
//! body holding the agent's user id or display name.

use smallvec::SmallVec;

use super::MessageContent;
use crate::{ids::AgentSlug, ids::Namespaces, inbound::directory::Directory};

/// What an event's content says about mentions, prepared once per event:
/// `m.mentions.user_ids` naming agents, or (older clients) the body containing an agent's
/// user id or display name.
pub(super) struct Mentioned<'c> {
    /// Agents named in `m.mentions.user_ids`.
    slugs: SmallVec<[AgentSlug; 4]>,
    body: Option<&'c str>,
    /// The body mentions some user id of the agent namespace (`@<prefix>`).
    body_has_agent_ids: bool,
    /// The lowercased body, made on first use for display-name checks.
    lower: std::cell::OnceCell<String>,
}

impl<'c> Mentioned<'c> {
    pub(super) fn new(content: &'c MessageContent, ns: &Namespaces) -> Self {
        let slugs = content
            .mentions
            .iter()
            .flat_map(|m| m.user_ids.iter())
            .filter_map(|u| ns.agent_slug(u))
            .collect();
        let body = content.body.as_deref();
        Self {
            slugs,
            body,
            body_has_agent_ids: body.is_some_and(|b| b.contains(ns.agent_id_prefix())),
            lower: std::cell::OnceCell::new(),
        }
    }

    pub(super) fn names(&self, slug: &AgentSlug, ns: &Namespaces, directory: &Directory) -> bool {
        if self.slugs.contains(slug) {
            return true;
        }
        let Some(body) = self.body else {
            return false;
        };
        if self.body_has_agent_ids && body.contains(ns.agent_user_id(slug).as_str()) {
            return true;
        }
        directory.with_display_name(slug, |name| {
            name.is_some_and(|n| {
                let lower = self.lower.get_or_init(|| body.to_lowercase());
                lower.contains(&n.to_lowercase())
            })
        })
    }
}
