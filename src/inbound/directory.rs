//! The read-mostly routing directory shared across threads: which hosted agents are
//! joined to which room, and each agent's display name (for mention detection). Written on
//! membership and profile changes, read for every inbound event.

use dashmap::DashMap;
use ruma::{OwnedRoomId, RoomId};
use smallvec::SmallVec;

use crate::ids::AgentSlug;

/// Agents of one room; most rooms hold few agents.
pub type RoomAgents = SmallVec<[AgentSlug; 4]>;

#[derive(Default)]
pub struct Directory {
    rooms: DashMap<OwnedRoomId, RoomAgents>,
    display_names: DashMap<AgentSlug, String>,
}

impl Directory {
    /// Agents joined to `room` (a copy: no guard escapes).
    pub fn agents_in(&self, room: &RoomId) -> RoomAgents {
        self.rooms.get(room).map(|a| a.clone()).unwrap_or_default()
    }

    /// Records that `slug` is joined to `room`; returns whether this is new.
    pub fn join(&self, room: &RoomId, slug: &AgentSlug) -> bool {
        let mut entry = self.rooms.entry(room.to_owned()).or_default();
        if entry.contains(slug) {
            return false;
        }
        entry.push(slug.clone());
        true
    }

    /// Records that `slug` left `room`; returns whether it was joined.
    pub fn leave(&self, room: &RoomId, slug: &AgentSlug) -> bool {
        let mut removed = false;
        if let Some(mut agents) = self.rooms.get_mut(room) {
            let before = agents.len();
            agents.retain(|a| a != slug);
            removed = agents.len() != before;
        }
        self.rooms.remove_if(room, |_, agents| agents.is_empty());
        removed
    }

    pub fn set_display_name(&self, slug: &AgentSlug, name: Option<&str>) {
        match name {
            Some(n) if !n.is_empty() => {
                self.display_names.insert(slug.clone(), n.to_owned());
            }
            _ => {
                self.display_names.remove(slug);
            }
        }
    }

    /// Runs `f` on the agent's display name without copying it.
    pub fn with_display_name<R>(&self, slug: &AgentSlug, f: impl FnOnce(Option<&str>) -> R) -> R {
        match self.display_names.get(slug) {
            Some(n) => f(Some(n.as_str())),
            None => f(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_and_leave() {
        let d = Directory::default();
        let room = <&RoomId>::try_from("!r").unwrap();
        let a = AgentSlug::parse("a").unwrap();
        let b = AgentSlug::parse("b").unwrap();
        assert!(d.join(room, &a));
        assert!(!d.join(room, &a));
        assert!(d.join(room, &b));
        assert_eq!(d.agents_in(room).len(), 2);
        assert!(d.leave(room, &a));
        assert!(!d.leave(room, &a));
        assert!(d.leave(room, &b));
        assert!(d.agents_in(room).is_empty());
    }
}
