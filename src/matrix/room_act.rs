//! What an agent does in a room, besides typing and joining: messages (edits included),
//! reactions, redactions, read receipts, leaving, and events of other types. Each becomes one Matrix request, prepared once:
//! its kind and JSON body name it for a client's idempotency key (the same key with another
//! request is a conflict), and the body is what is sent.

use http::Method;
use ruma::{
    events::{reaction::ReactionEventContent, relation::Annotation},
    EventId, OwnedEventId, RoomId, UserId,
};
use serde_json::{json, value::RawValue};

use super::{
    content::OutgoingMessage,
    retry::Retries,
    wire::{reason_body, Empty, EventIdAnswer},
    HomeserverClient, HomeserverError,
};

/// One act of an agent in a room, carried out in the room's order.
#[derive(Debug, Clone)]
pub enum RoomAct {
    /// A message (boxed: it is the largest act by far).
    Message(Box<OutgoingMessage>),
    /// An `m.annotation` of `event` with `key` (an emoji, usually).
    Reaction { event: OwnedEventId, key: String },
    /// Redacts `event`, saying why when `reason` is given.
    Redaction {
        event: OwnedEventId,
        reason: Option<String>,
    },
    /// A read receipt at `event`, in `thread` when given (a threaded receipt); without a
    /// thread also the read marker.
    Receipt {
        event: OwnedEventId,
        thread: Option<OwnedEventId>,
    },
    /// Leaves the room, saying why when `reason` is given.
    Leave { reason: Option<String> },
    /// Any other event: a state event when `state_key` is given, else a room event.
    Custom {
        event_type: String,
        state_key: Option<String>,
        content: Box<RawValue>,
    },
}

/// An act's request, serialised once.
pub struct Prepared {
    /// What kind of request it is (part of what a client key names).
    pub kind: &'static str,
    pub body: Box<RawValue>,
}

impl RoomAct {
    /// The act's request.
    pub fn prepare(&self) -> Prepared {
        let (kind, body) = match self {
            Self::Message(m) => ("m.room.message", raw(&m.to_content())),
            Self::Reaction { event, key } => (
                "m.reaction",
                raw(&ReactionEventContent::new(Annotation::new(
                    event.clone(),
                    key.clone(),
                ))),
            ),
            Self::Redaction { event, reason } => (
                "redaction",
                raw(&json!({ "redacts": event, "reason": reason })),
            ),
            Self::Receipt { event, thread } => (
                "receipt",
                raw(&json!({ "event_id": event, "thread_id": thread })),
            ),
            Self::Leave { reason } => ("leave", raw(&json!({ "reason": reason }))),
            Self::Custom {
                event_type,
                state_key,
                content,
            } => (
                "custom",
                raw(&json!({ "type": event_type, "state_key": state_key, "content": content })),
            ),
        };
        Prepared { kind, body }
    }

    /// Whether the act ends the agent's typing in the room (a message does; Synapse does
    /// not end it by itself).
    pub fn ends_typing(&self) -> bool {
        matches!(self, Self::Message(_))
    }

    /// Whether the act would be encrypted in an encrypted room (so that, sent in the clear
    /// there, it is refused unless the caller allows it). Redactions, receipts and leaving
    /// are never encrypted.
    pub fn encryptable(&self) -> bool {
        match self {
            Self::Message(_) | Self::Reaction { .. } => true,
            Self::Custom { state_key, .. } => state_key.is_none(),
            _ => false,
        }
    }

    /// The room event the act sends, as its type and content, for the acts that are
    /// encrypted in an encrypted room ([`RoomAct::encryptable`]).
    pub fn room_event<'a>(&'a self, prepared: &'a Prepared) -> Option<(&'a str, &'a RawValue)> {
        match self {
            Self::Message(_) | Self::Reaction { .. } => Some((prepared.kind, &prepared.body)),
            Self::Custom {
                event_type,
                state_key: None,
                content,
            } => Some((event_type, content)),
            _ => None,
        }
    }

    /// Whether the act takes the agent out of the room (rather than needing it in).
    pub fn leaves(&self) -> bool {
        matches!(self, Self::Leave { .. })
    }

    /// Carries the act out as `user`; the event it made, when it makes one.
    pub async fn perform(
        &self,
        hs: &HomeserverClient,
        user: &UserId,
        room: &RoomId,
        matrix_txn: &str,
        prepared: &Prepared,
    ) -> Result<Option<OwnedEventId>, HomeserverError> {
        let body = &prepared.body;
        match self {
            Self::Message(_) | Self::Reaction { .. } => hs
                .send_event(user, room, prepared.kind, matrix_txn, body)
                .await
                .map(Some),
            Self::Redaction { event, reason } => hs
                .redact(user, room, event, matrix_txn, reason.as_deref())
                .await
                .map(Some),
            Self::Receipt { event, thread } => hs
                .receipt(user, room, event, thread.as_deref())
                .await
                .map(|()| None),
            Self::Leave { reason } => hs.leave(user, room, reason.as_deref()).await.map(|()| None),
            Self::Custom {
                event_type,
                state_key: Some(state_key),
                content,
            } => hs
                .send_state(user, room, event_type, state_key, content)
                .await
                .map(Some),
            Self::Custom {
                event_type,
                state_key: None,
                content,
            } => hs
                .send_event(user, room, event_type, matrix_txn, content)
                .await
                .map(Some),
        }
    }
}

impl HomeserverClient {
    /// Redacts `event` as `user` (`PUT .../redact/{event}/{txn}`: the transaction id makes
    /// a retry harmless).
    pub async fn redact(
        &self,
        user: &UserId,
        room: &RoomId,
        event: &EventId,
        txn_id: &str,
        reason: Option<&str>,
    ) -> Result<OwnedEventId, HomeserverError> {
        let url = self.url(
            &[
                "v3",
                "rooms",
                room.as_str(),
                "redact",
                event.as_str(),
                txn_id,
            ],
            Some(user),
        );
        let body = reason_body(reason);
        self.call_with::<EventIdAnswer>(
            "redact",
            Method::PUT,
            url,
            Some(&body),
            self.deadline(),
            Retries::Any,
        )
        .await
        .map(|a| a.event_id)
    }

    /// Moves `user`'s read receipt to `event`: in `thread` when given (a threaded
    /// receipt), otherwise the unthreaded receipt and the read marker together. Setting
    /// either again is harmless, so both are retried.
    pub async fn receipt(
        &self,
        user: &UserId,
        room: &RoomId,
        event: &EventId,
        thread: Option<&EventId>,
    ) -> Result<(), HomeserverError> {
        let (label, url, body) = match thread {
            Some(thread) => (
                "receipt",
                self.url(
                    &[
                        "v3",
                        "rooms",
                        room.as_str(),
                        "receipt",
                        "m.read",
                        event.as_str(),
                    ],
                    Some(user),
                ),
                json!({ "thread_id": thread }),
            ),
            None => (
                "read_markers",
                self.url(&["v3", "rooms", room.as_str(), "read_markers"], Some(user)),
                json!({ "m.fully_read": event, "m.read": event }),
            ),
        };
        self.call_with::<Empty>(
            label,
            Method::POST,
            url,
            Some(&body),
            self.deadline(),
            Retries::Any,
        )
        .await
        .map(drop)
    }
}

fn raw(content: &impl serde::Serialize) -> Box<RawValue> {
    serde_json::value::to_raw_value(content).expect("event content serialises")
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn body(act: RoomAct) -> (&'static str, Value) {
        let p = act.prepare();
        (p.kind, serde_json::from_str(p.body.get()).unwrap())
    }

    #[test]
    fn each_act_is_its_own_kind_of_request() {
        let event: OwnedEventId = "$e".try_into().unwrap();
        let (kind, v) = body(RoomAct::Reaction {
            event: event.clone(),
            key: "👍".into(),
        });
        assert_eq!(kind, "m.reaction");
        assert_eq!(
            v,
            json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": "$e", "key": "👍"}})
        );
        let (kind, v) = body(RoomAct::Redaction {
            event: event.clone(),
            reason: Some("typo".into()),
        });
        assert_eq!(
            (kind, v),
            ("redaction", json!({"redacts": "$e", "reason": "typo"}))
        );
        let (kind, _) = body(RoomAct::Receipt {
            event,
            thread: None,
        });
        assert_eq!(kind, "receipt");
    }
}
