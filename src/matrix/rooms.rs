//! Rooms as the homeserver has them: creating one (retried only where the caller says a
//! repeat cannot make a second room), the default room version, an alias's room, and a
//! state event's content.

use http::Method;
use ruma::{OwnedRoomId, RoomAliasId, RoomId, UserId};
use serde_json::Value;

use super::{
    retry::Retries,
    wire::{Capabilities, RoomIdAnswer},
    HomeserverClient, HomeserverError,
};

impl HomeserverClient {
    /// `POST /createRoom` as `user`. `retries`: [`Retries::Any`] only when a repeat cannot
    /// create a second room (the body claims an alias, which only one room can have).
    pub async fn create_room(
        &self,
        user: &UserId,
        body: &Value,
        retries: Retries,
    ) -> Result<OwnedRoomId, HomeserverError> {
        let url = self.url(&["v3", "createRoom"], Some(user));
        self.call_with::<RoomIdAnswer>(
            "create_room",
            Method::POST,
            url,
            Some(body),
            self.deadline(),
            retries,
        )
        .await
        .map(|a| a.room_id)
    }

    /// The homeserver's default room version for new rooms.
    pub async fn default_room_version(&self, user: &UserId) -> Result<String, HomeserverError> {
        let url = self.url(&["v3", "capabilities"], Some(user));
        let caps: Capabilities = self
            .call_with(
                "capabilities",
                Method::GET,
                url,
                None::<&()>,
                self.deadline(),
                Retries::Any,
            )
            .await?;
        Ok(caps
            .capabilities
            .room_versions
            .map(|v| v.default)
            .unwrap_or_else(|| "1".into()))
    }

    /// The room an alias names, or `None` when it names none.
    pub async fn room_of_alias(
        &self,
        alias: &RoomAliasId,
    ) -> Result<Option<OwnedRoomId>, HomeserverError> {
        let url = self.url(&["v3", "directory", "room", alias.as_str()], None);
        let answer = self
            .call_with::<RoomIdAnswer>(
                "alias",
                Method::GET,
                url,
                None::<&()>,
                self.deadline(),
                Retries::Any,
            )
            .await;
        match answer {
            Ok(a) => Ok(Some(a.room_id)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The content of a state event, read as `user`.
    pub async fn state_content(
        &self,
        user: &UserId,
        room: &RoomId,
        event_type: &str,
        state_key: &str,
    ) -> Result<Value, HomeserverError> {
        let url = self.url(
            &["v3", "rooms", room.as_str(), "state", event_type, state_key],
            Some(user),
        );
        self.call_with(
            "state_read",
            Method::GET,
            url,
            None::<&()>,
            self.deadline(),
            Retries::Any,
        )
        .await
    }
}
