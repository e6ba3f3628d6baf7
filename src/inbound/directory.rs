//! The read-mostly routing directory shared across threads: which hosted agents are
//! joined to which room, which rooms are encrypted or upgraded, who types where, and each agent's
//! display name (for mention detection). Read for
//! every inbound event. Memberships have one writer, [`Directory::apply`], called by the
//! after-commit step (for what the homeserver reported and for the agents' own joins and
//! leaves) and at start-up with what the store holds.

use dashmap::{DashMap, DashSet};
use ruma::{OwnedRoomId, OwnedUserId, RoomId};
use smallvec::SmallVec;

use crate::{
    ids::AgentSlug,
    store::{MembershipChange, RoomTyping, RoomUpgrade},
};

/// Most upgrades followed from one room to its newest replacement.
const MAX_UPGRADES_FOLLOWED: usize = 16;

/// Agents of one room; most rooms hold few agents.
pub type RoomAgents = SmallVec<[AgentSlug; 4]>;

#[derive(Default)]
pub struct Directory {
    rooms: DashMap<OwnedRoomId, RoomAgents>,
    /// The same facts by agent (for an agent's own view of its rooms).
    agent_rooms: DashMap<AgentSlug, SmallVec<[OwnedRoomId; 2]>>,
    display_names: DashMap<AgentSlug, String>,
    /// Rooms known to be encrypted (recorded in the store first, like memberships).
    encrypted: DashSet<OwnedRoomId>,
    /// Rooms replaced by an upgrade, with their replacement (recorded in the store first).
    upgrades: DashMap<OwnedRoomId, OwnedRoomId>,
    /// Who types in each room where someone does, as the last recorded transaction said
    /// (memory only: typing lasts seconds).
    typing: DashMap<OwnedRoomId, Vec<OwnedUserId>>,
}

impl Directory {
    /// Agents joined to `room` (a copy: no guard escapes).
    pub fn agents_in(&self, room: &RoomId) -> RoomAgents {
        self.rooms.get(room).map(|a| a.clone()).unwrap_or_default()
    }

    /// The rooms `slug` is joined to.
    pub fn rooms_of(&self, slug: &AgentSlug) -> Vec<OwnedRoomId> {
        self.agent_rooms
            .get(slug)
            .map(|r| r.to_vec())
            .unwrap_or_default()
    }

    /// Whether `slug` is joined to `room`.
    pub fn is_joined(&self, room: &RoomId, slug: &AgentSlug) -> bool {
        self.rooms.get(room).is_some_and(|a| a.contains(slug))
    }

    /// Notes that `room` is encrypted (a room never stops being); `true` when it was not
    /// known to be.
    pub fn mark_encrypted(&self, room: &RoomId) -> bool {
        !self.encrypted.contains(room) && self.encrypted.insert(room.to_owned())
    }

    /// Whether `room` is known to be encrypted.
    pub fn is_encrypted(&self, room: &RoomId) -> bool {
        self.encrypted.contains(room)
    }

    /// The encrypted rooms among those `slug` is joined to.
    pub fn encrypted_rooms_of(&self, slug: &AgentSlug) -> Vec<OwnedRoomId> {
        let mut rooms = self.rooms_of(slug);
        rooms.retain(|r| self.is_encrypted(r));
        rooms
    }

    /// Every agent joined to an encrypted room, each once, in slug order.
    pub fn agents_in_encrypted_rooms(&self) -> Vec<AgentSlug> {
        let mut agents: Vec<AgentSlug> = self
            .encrypted
            .iter()
            .flat_map(|room| self.agents_in(&room))
            .collect();
        agents.sort_unstable();
        agents.dedup();
        agents
    }

    /// Notes that `room` was replaced by `replacement`.
    pub fn record_upgrade(&self, upgrade: &RoomUpgrade) {
        let (room, replacement) = (&upgrade.room_id, &upgrade.replacement);
        self.upgrades.insert(room.clone(), replacement.clone());
    }

    /// The newest room that replaced `room` through upgrades (following a chain of them),
    /// when there is one.
    pub fn replacement_of(&self, room: &RoomId) -> Option<OwnedRoomId> {
        let mut newest: Option<OwnedRoomId> = None;
        // A chain of upgrades is short; a cycle (only a homeserver's mistake) ends here.
        for _ in 0..MAX_UPGRADES_FOLLOWED {
            let from = newest.as_deref().unwrap_or(room);
            match self.upgrades.get(from) {
                Some(next) if *next != *room => newest = Some(next.clone()),
                _ => break,
            }
        }
        newest
    }

    /// The users typing in `room`, sorted.
    pub fn typing_in(&self, room: &RoomId) -> Vec<OwnedUserId> {
        self.typing.get(room).map(|t| t.clone()).unwrap_or_default()
    }

    /// Records who types in a room (a room where nobody does is forgotten).
    pub fn set_typing(&self, now: RoomTyping) {
        if now.users.is_empty() {
            self.typing.remove(&now.room_id);
        } else {
            self.typing.insert(now.room_id, now.users);
        }
    }

    /// Forgets a deleted agent: its memberships and display name.
    pub fn forget(&self, slug: &AgentSlug) {
        for room in self.rooms_of(slug) {
            self.apply(&MembershipChange {
                slug: slug.clone(),
                room_id: room,
                joined: false,
            });
        }
        self.display_names.remove(slug);
    }

    /// Makes the memberships exactly `now` (a full list from the store): joins what is
    /// missing, leaves what is no longer there.
    pub fn replace_memberships(&self, now: &[(AgentSlug, OwnedRoomId)]) {
        let wanted: std::collections::HashSet<(&AgentSlug, &RoomId)> =
            now.iter().map(|(s, r)| (s, r.as_ref())).collect();
        let mut stale = Vec::new();
        for entry in &self.agent_rooms {
            for room in entry.value() {
                if !wanted.contains(&(entry.key(), room.as_ref())) {
                    stale.push((entry.key().clone(), room.clone()));
                }
            }
        }
        for (slug, room_id) in stale {
            self.leave(&room_id, &slug);
        }
        for (slug, room) in now {
            self.join(room, slug);
        }
    }

    /// Records a membership; returns whether it changed anything.
    pub fn apply(&self, change: &MembershipChange) -> bool {
        if change.joined {
            self.join(&change.room_id, &change.slug)
        } else {
            self.leave(&change.room_id, &change.slug)
        }
    }

    /// Records that `slug` is joined to `room`; returns whether this is new.
    fn join(&self, room: &RoomId, slug: &AgentSlug) -> bool {
        let mut entry = self.rooms.entry(room.to_owned()).or_default();
        if entry.contains(slug) {
            return false;
        }
        entry.push(slug.clone());
        drop(entry);
        self.agent_rooms
            .entry(slug.clone())
            .or_default()
            .push(room.to_owned());
        true
    }

    /// Records that `slug` left `room`; returns whether it was joined.
    fn leave(&self, room: &RoomId, slug: &AgentSlug) -> bool {
        let mut removed = false;
        if let Some(mut agents) = self.rooms.get_mut(room) {
            let before = agents.len();
            agents.retain(|a| a != slug);
            removed = agents.len() != before;
        }
        self.rooms.remove_if(room, |_, agents| agents.is_empty());
        if removed {
            if let Some(mut rooms) = self.agent_rooms.get_mut(slug) {
                rooms.retain(|r| r != room);
            }
            self.agent_rooms
                .remove_if(slug, |_, rooms| rooms.is_empty());
        }
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

    fn change(slug: &str, joined: bool) -> MembershipChange {
        MembershipChange {
            slug: AgentSlug::parse(slug).unwrap(),
            room_id: "!r".try_into().unwrap(),
            joined,
        }
    }

    #[test]
    fn join_and_leave() {
        let d = Directory::default();
        let room = <&RoomId>::try_from("!r").unwrap();
        let a = AgentSlug::parse("a").unwrap();
        assert!(d.apply(&change("a", true)));
        assert!(!d.apply(&change("a", true)));
        assert!(d.apply(&change("b", true)));
        assert_eq!(d.agents_in(room).len(), 2);
        assert!(d.is_joined(room, &a));
        assert_eq!(d.rooms_of(&a), [room]);
        assert!(d.apply(&change("a", false)));
        assert!(d.rooms_of(&a).is_empty());
        assert!(!d.apply(&change("a", false)));
        assert!(!d.is_joined(room, &a));
        assert!(d.apply(&change("b", false)));
        assert!(d.agents_in(room).is_empty());
    }

    /// Upgrades are followed to the newest room; a cycle ends, and a room never replaces
    /// itself.
    #[test]
    fn the_newest_replacement_is_found_through_a_chain() {
        let dir = Directory::default();
        let up = |from: &str, to: &str| {
            dir.record_upgrade(&RoomUpgrade {
                room_id: from.try_into().unwrap(),
                replacement: to.try_into().unwrap(),
            });
        };
        let room = |r: &str| -> OwnedRoomId { r.try_into().unwrap() };
        assert_eq!(dir.replacement_of(&room("!a")), None);
        up("!a", "!b");
        up("!b", "!c");
        assert_eq!(dir.replacement_of(&room("!a")), Some(room("!c")));
        assert_eq!(dir.replacement_of(&room("!b")), Some(room("!c")));
        assert_eq!(dir.replacement_of(&room("!c")), None);
        up("!c", "!a");
        assert_eq!(dir.replacement_of(&room("!a")), Some(room("!c")));
        up("!x", "!y");
        up("!y", "!z");
        up("!z", "!y");
        assert!(dir.replacement_of(&room("!x")).is_some(), "a cycle ends");
    }
}
