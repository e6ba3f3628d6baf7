//! Reading a room as an agent: its history (`/messages`, paginated with the homeserver's
//! tokens), its current state and its joined members, each asked as the agent's user so
//! that the homeserver shows what that user may see and nothing more. The answers are the
//! homeserver's JSON, passed on.

use http::Method;
use ruma::{RoomId, UserId};
use serde_json::Value;

use super::{retry::Retries, HomeserverClient, HomeserverError};

/// Which way `/messages` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From newest to oldest (from the end when no token is given).
    Backward,
    /// From oldest to newest.
    Forward,
}

impl HomeserverClient {
    /// A page of `room`'s history as `user` sees it.
    pub async fn room_messages(
        &self,
        user: &UserId,
        room: &RoomId,
        from: Option<&str>,
        dir: Direction,
        limit: u32,
    ) -> Result<Value, HomeserverError> {
        let limit = limit.to_string();
        let mut query = vec![
            ("dir", if dir == Direction::Forward { "f" } else { "b" }),
            ("limit", limit.as_str()),
        ];
        if let Some(from) = from {
            query.push(("from", from));
        }
        let url = self.url_with(
            &["v3", "rooms", room.as_str(), "messages"],
            Some(user),
            &query,
        );
        self.read("messages", url).await
    }

    /// `room`'s current state events as `user` sees them.
    pub async fn room_state(&self, user: &UserId, room: &RoomId) -> Result<Value, HomeserverError> {
        let url = self.url(&["v3", "rooms", room.as_str(), "state"], Some(user));
        self.read("room_state", url).await
    }

    /// `room`'s joined members (`{"joined": {user: {display_name, avatar_url}}}`) as
    /// `user` sees them.
    pub async fn joined_members(
        &self,
        user: &UserId,
        room: &RoomId,
    ) -> Result<Value, HomeserverError> {
        let url = self.url(
            &["v3", "rooms", room.as_str(), "joined_members"],
            Some(user),
        );
        self.read("joined_members", url).await
    }

    async fn read(&self, label: &'static str, url: http::Uri) -> Result<Value, HomeserverError> {
        self.call_with(
            label,
            Method::GET,
            url,
            None::<&()>,
            self.deadline(),
            Retries::Any,
        )
        .await
    }
}
