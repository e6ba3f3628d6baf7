//! What of a room's current state encryption needs (its joined and invited members, how its
//! key rotates, who may read its history), read from the homeserver's `/state` and kept per
//! room until a transaction shows a change: an `m.room.member`, `m.room.encryption` or
//! `m.room.history_visibility` state event in the room ([`RoomStates::changed`]). A read
//! that began before a change is not kept, so a kept state is never older than the last
//! change the daemon has seen. At most [`MAX_ROOMS`] rooms are kept; past that, all are
//! dropped and read again as needed.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use dashmap::{mapref::entry::Entry, DashMap};
use ruma::{
    events::room::{encryption::RoomEncryptionEventContent, history_visibility::HistoryVisibility},
    OwnedRoomId, OwnedUserId, RoomId,
};
use serde::Deserialize;
use serde_json::Value;

use super::E2eeError;
use crate::matrix::{HomeserverClient, HomeserverError};

/// Rooms whose state is kept at most.
pub const MAX_ROOMS: usize = 10_000;

/// The kept room states, shared by every agent's machine (the state of a room is the same
/// for all its members).
#[derive(Default)]
pub struct RoomStates {
    rooms: DashMap<OwnedRoomId, Slot>,
    /// Counts the changes seen and the times everything was dropped, daemon-wide.
    clock: AtomicU64,
    /// The clock when everything was last dropped: reads begun before are not kept.
    dropped_at: AtomicU64,
}

struct Slot {
    /// The clock at the room's last change (0: none seen since the slot was made).
    changed_at: u64,
    state: Option<Arc<RoomCryptoState>>,
}

impl RoomStates {
    /// `room`'s state: kept, or read from the homeserver as `user` (and kept).
    pub async fn get(
        &self,
        hs: &HomeserverClient,
        user: &ruma::UserId,
        room: &RoomId,
    ) -> Result<Arc<RoomCryptoState>, E2eeError> {
        let began = match self.kept(room) {
            Ok(state) => return Ok(state),
            Err(began) => began,
        };
        let state = Arc::new(RoomCryptoState::read(&hs.room_state(user, room).await?)?);
        self.keep(room, began, state.clone());
        Ok(state)
    }

    /// The kept state, or the clock now (when a read begins).
    fn kept(&self, room: &RoomId) -> Result<Arc<RoomCryptoState>, u64> {
        let began = self.clock.load(Ordering::SeqCst);
        match self.rooms.get(room).and_then(|slot| slot.state.clone()) {
            Some(state) => Ok(state),
            None => Err(began),
        }
    }

    /// Keeps what a read begun at `began` found, unless the room changed (or everything was
    /// dropped) since.
    fn keep(&self, room: &RoomId, began: u64, state: Arc<RoomCryptoState>) {
        if self.dropped_at.load(Ordering::SeqCst) > began {
            return;
        }
        if self.rooms.len() >= MAX_ROOMS {
            let now = self.clock.fetch_add(1, Ordering::SeqCst) + 1;
            self.dropped_at.store(now, Ordering::SeqCst);
            self.rooms.clear();
            return;
        }
        match self.rooms.entry(room.to_owned()) {
            Entry::Occupied(mut slot) => {
                if slot.get().changed_at <= began {
                    slot.get_mut().state = Some(state);
                }
            }
            Entry::Vacant(slot) => {
                slot.insert(Slot {
                    changed_at: 0,
                    state: Some(state),
                });
            }
        }
    }

    /// A transaction shows a change of `room`'s members, encryption or history settings:
    /// its kept state goes, and reads begun before are not kept.
    pub fn changed(&self, room: &RoomId) {
        let now = self.clock.fetch_add(1, Ordering::SeqCst) + 1;
        self.rooms.insert(
            room.to_owned(),
            Slot {
                changed_at: now,
                state: None,
            },
        );
    }
}

/// What of a room's state encryption needs.
#[derive(Debug)]
pub struct RoomCryptoState {
    pub members: Vec<OwnedUserId>,
    pub encryption: RoomEncryptionEventContent,
    pub history_visibility: HistoryVisibility,
}

#[derive(Deserialize)]
struct StateEvent {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    state_key: String,
    content: Value,
}

impl RoomCryptoState {
    /// Reads `/state`'s answer; a room without an algorithm in its encryption state is not
    /// one to encrypt for.
    fn read(state: &Value) -> Result<Self, E2eeError> {
        let bad = |what: &str| {
            E2eeError::Homeserver(HomeserverError::BadResponse(format!("room state: {what}")))
        };
        let events: Vec<StateEvent> = Vec::deserialize(state).map_err(|e| bad(&e.to_string()))?;
        let mut members = Vec::new();
        let mut encryption = None;
        let mut history_visibility = HistoryVisibility::Shared;
        for ev in events {
            match ev.kind.as_str() {
                "m.room.member" => {
                    let membership = ev.content["membership"].as_str();
                    if matches!(membership, Some("join" | "invite")) {
                        if let Ok(user) = OwnedUserId::try_from(ev.state_key) {
                            members.push(user);
                        }
                    }
                }
                "m.room.encryption" if ev.state_key.is_empty() => {
                    encryption = serde_json::from_value(ev.content).ok();
                }
                "m.room.history_visibility" if ev.state_key.is_empty() => {
                    if let Some(v) = ev.content["history_visibility"].as_str() {
                        history_visibility = HistoryVisibility::from(v);
                    }
                }
                _ => {}
            }
        }
        Ok(Self {
            members,
            encryption: encryption.ok_or_else(|| bad("no m.room.encryption algorithm"))?,
            history_visibility,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_room_state_names_members_rotation_and_visibility() {
        let state = json!([
            {"type": "m.room.member", "state_key": "@a:hs", "content": {"membership": "join"}},
            {"type": "m.room.member", "state_key": "@b:hs", "content": {"membership": "invite"}},
            {"type": "m.room.member", "state_key": "@c:hs", "content": {"membership": "leave"}},
            {"type": "m.room.encryption", "state_key": "",
             "content": {"algorithm": "m.megolm.v1.aes-sha2", "rotation_period_msgs": 10}},
            {"type": "m.room.history_visibility", "state_key": "",
             "content": {"history_visibility": "joined"}},
            {"type": "m.room.name", "state_key": "", "content": {"name": "x"}},
        ]);
        let s = RoomCryptoState::read(&state).unwrap();
        assert_eq!(s.members, ["@a:hs", "@b:hs"]);
        assert_eq!(s.encryption.rotation_period_msgs, Some(10u32.into()));
        assert_eq!(s.history_visibility, HistoryVisibility::Joined);

        let plain = json!([{"type": "m.room.member", "state_key": "@a:hs",
                            "content": {"membership": "join"}}]);
        assert!(RoomCryptoState::read(&plain).is_err());
    }

    fn some_state(member: &str) -> Arc<RoomCryptoState> {
        let state = json!([
            {"type": "m.room.member", "state_key": member, "content": {"membership": "join"}},
            {"type": "m.room.encryption", "state_key": "",
             "content": {"algorithm": "m.megolm.v1.aes-sha2"}},
        ]);
        Arc::new(RoomCryptoState::read(&state).unwrap())
    }

    fn members(states: &RoomStates, room: &RoomId) -> Option<Vec<OwnedUserId>> {
        states.kept(room).ok().map(|s| s.members.clone())
    }

    #[test]
    fn a_state_is_kept_until_the_room_changes() {
        let states = RoomStates::default();
        let room = <&RoomId>::try_from("!r:hs").unwrap();
        let began = states.kept(room).unwrap_err();
        states.keep(room, began, some_state("@a:hs"));
        assert_eq!(members(&states, room).unwrap(), ["@a:hs"]);

        states.changed(room);
        assert_eq!(members(&states, room), None);
        let began = states.kept(room).unwrap_err();
        states.keep(room, began, some_state("@b:hs"));
        assert_eq!(members(&states, room).unwrap(), ["@b:hs"]);
    }

    #[test]
    fn a_read_begun_before_a_change_is_not_kept() {
        let states = RoomStates::default();
        let room = <&RoomId>::try_from("!r:hs").unwrap();
        let began = states.kept(room).unwrap_err();
        states.changed(room);
        states.keep(room, began, some_state("@old:hs"));
        assert_eq!(members(&states, room), None);

        // Another room's change does not spoil this room's read.
        let other = <&RoomId>::try_from("!o:hs").unwrap();
        let began = states.kept(room).unwrap_err();
        states.changed(other);
        states.keep(room, began, some_state("@new:hs"));
        assert_eq!(members(&states, room).unwrap(), ["@new:hs"]);
    }

    #[test]
    fn past_the_limit_every_room_is_dropped_and_older_reads_not_kept() {
        let states = RoomStates::default();
        for i in 0..MAX_ROOMS {
            let room = OwnedRoomId::try_from(format!("!r{i}:hs")).unwrap();
            states.keep(&room, 0, some_state("@a:hs"));
        }
        assert_eq!(states.rooms.len(), MAX_ROOMS);
        let room = <&RoomId>::try_from("!last:hs").unwrap();
        states.keep(room, 0, some_state("@a:hs"));
        assert_eq!(states.rooms.len(), 0);
        states.keep(room, 0, some_state("@a:hs"));
        assert_eq!(members(&states, room), None, "a read begun before the drop");
        let began = states.kept(room).unwrap_err();
        states.keep(room, began, some_state("@a:hs"));
        assert!(members(&states, room).is_some());
    }
}
