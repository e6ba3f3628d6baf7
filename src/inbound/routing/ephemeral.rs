//! Receipts and typing of others as inbox items (with `appservice.receive_ephemeral`).
//! Each becomes one item per user and fact, sent by that user to the room's agents other
//! than itself:
//! - `m.receipt`: `{"event_id", "receipt_type", "thread_id"?}` at the receipt's time; a
//!   receipt is a fact, so its item id is derived from it and a repeated receipt is not
//!   delivered twice. Private receipts (`m.read.private`) are never passed on.
//! - `m.typing`: `{"typing": true|false}` when a user starts or stops typing. The homeserver
//!   sends the whole set of typing users each time; the directory remembers the last set
//!   of each room (in memory: after a restart, a user who was typing and stops
//!   is not reported), and the items are the difference.
//!
//! An ephemeral event has no id; items get one starting with `$` (the inbox stores every
//! item under an event id) that the bridge API does not show. Presence and unknown types
//! are ignored; a malformed typing or receipt event is skipped and counted.

use std::{borrow::Cow, collections::BTreeMap, sync::Arc};

use ruma::{OwnedEventId, OwnedUserId, RoomId, UserId};
use serde::Deserialize;
use serde_json::{json, value::RawValue};
use sha2::{Digest, Sha256};

use super::{agents_in, has_control, Routed, SkipReason};
use crate::{
    ids::Namespaces,
    inbound::directory::Directory,
    store::{
        EventDelivery, InboxEvent, RoomTyping, RECEIPT_ITEM as RECEIPT, TYPING_ITEM as TYPING,
    },
};

/// Receipts only their own user may see.
const PRIVATE_RECEIPT: &str = "m.read.private";

#[derive(Deserialize)]
struct RawEphemeral<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    room_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    content: &'a RawValue,
}

#[derive(Deserialize)]
struct TypingContent {
    user_ids: Vec<OwnedUserId>,
}

/// `{event id: {receipt type: {user: receipt}}}`.
type ReceiptContent = BTreeMap<OwnedEventId, BTreeMap<String, BTreeMap<OwnedUserId, Receipt>>>;

#[derive(Deserialize)]
struct Receipt {
    #[serde(default)]
    ts: Option<serde_json::Value>,
    #[serde(default)]
    thread_id: Option<String>,
}

/// Turns a transaction's ephemeral events into deliveries and typing sets.
pub(super) struct Items<'a> {
    ns: &'a Namespaces,
    directory: &'a Directory,
    routed: &'a mut Routed,
    now_ms: i64,
}

impl<'a> Items<'a> {
    pub fn new(ns: &'a Namespaces, directory: &'a Directory, routed: &'a mut Routed) -> Self {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        Self {
            ns,
            directory,
            routed,
            now_ms,
        }
    }

    /// Routes one ephemeral event.
    pub fn route(&mut self, txn_id: &str, raw: &RawValue) {
        let Ok(ev) = serde_json::from_str::<RawEphemeral<'_>>(raw.get()) else {
            // Not something this daemon reads (presence has no room): only fingerprinted.
            return;
        };
        if ev.kind != TYPING && ev.kind != RECEIPT {
            return;
        }
        let room = ev
            .room_id
            .as_deref()
            .filter(|r| !has_control(r))
            .map(<&RoomId>::try_from);
        let Some(Ok(room)) = room else {
            let error = format!("{} without a valid room id", ev.kind);
            self.routed
                .skipped
                .note(txn_id, None, SkipReason::InvalidId, &error);
            return;
        };
        let outcome = match &*ev.kind {
            TYPING => serde_json::from_str(ev.content.get()).map(|c| self.typing(room, c)),
            _ => serde_json::from_str(ev.content.get()).map(|c| self.receipts(room, c)),
        };
        // The store's text columns end at a NUL: such a user would be stored as another.
        if let Ok(dropped @ 1..) = outcome {
            let error = format!("{}: {dropped} user ids hold a control character", ev.kind);
            self.routed
                .skipped
                .note(txn_id, None, SkipReason::InvalidId, &error);
            return;
        }
        if let Err(e) = outcome {
            let error = format!("{}: {e}", ev.kind);
            self.routed
                .skipped
                .note(txn_id, None, SkipReason::BadContent, &error);
        }
    }

    /// Returns how many user ids it dropped (holding a control character).
    fn typing(&mut self, room: &RoomId, content: TypingContent) -> usize {
        let typing = &mut self.routed.write.typing;
        let mut now = content.user_ids;
        let given = now.len();
        now.retain(|u| !has_control(u.as_str()));
        let dropped = given - now.len();
        now.sort();
        now.dedup();
        let earlier = typing.iter().position(|t| t.room_id == room);
        let before = match earlier {
            Some(i) => typing.remove(i).users,
            None => self.directory.typing_in(room),
        };
        let started = now.iter().filter(|u| !before.contains(u));
        let stopped = before.iter().filter(|u| !now.contains(u));
        let changes: Vec<(OwnedUserId, bool)> = started
            .map(|u| (u.clone(), true))
            .chain(stopped.map(|u| (u.clone(), false)))
            .collect();
        typing.push(RoomTyping {
            room_id: room.to_owned(),
            users: now,
        });
        for (user, is_typing) in changes {
            let id = format!("${}", uuid::Uuid::new_v4().simple());
            let content = json!({ "typing": is_typing });
            self.deliver(id, room, &user, TYPING, &content, self.now_ms);
        }
        dropped
    }

    /// Returns how many receipts it dropped (their user id holding a control character).
    fn receipts(&mut self, room: &RoomId, content: ReceiptContent) -> usize {
        let mut dropped = 0;
        for (event, by_type) in content {
            for (receipt_type, by_user) in by_type {
                if receipt_type == PRIVATE_RECEIPT {
                    continue;
                }
                for (user, receipt) in by_user {
                    if has_control(user.as_str()) || has_control(event.as_str()) {
                        dropped += 1;
                        continue;
                    }
                    let thread = receipt.thread_id;
                    let fact = [room.as_str(), user.as_str(), &receipt_type, event.as_str()];
                    let id = fact_id(&fact, thread.as_deref());
                    let mut content = json!({ "event_id": event, "receipt_type": receipt_type });
                    if let Some(thread) = thread {
                        content["thread_id"] = thread.into();
                    }
                    let ts = receipt.ts.as_ref().and_then(serde_json::Value::as_i64);
                    self.deliver(id, room, &user, RECEIPT, &content, ts.unwrap_or(0));
                }
            }
        }
        dropped
    }

    /// One item from `sender` to the room's agents but `sender` (none: nothing).
    fn deliver(
        &mut self,
        id: String,
        room: &RoomId,
        sender: &UserId,
        kind: &str,
        content: &serde_json::Value,
        ts: i64,
    ) {
        let write = &mut self.routed.write;
        let mut agents = agents_in(self.directory, room, &write.memberships);
        let own = self.ns.agent_slug(sender);
        agents.retain(|a| Some(&*a) != own.as_ref());
        if agents.is_empty() {
            return;
        }
        let Ok(event_id) = OwnedEventId::try_from(id) else {
            return;
        };
        let content = serde_json::value::to_raw_value(content).expect("JSON values serialise");
        write.deliveries.push(EventDelivery {
            event: Arc::new(InboxEvent {
                event_id,
                room_id: room.to_owned(),
                sender: sender.to_owned(),
                event_type: kind.to_owned(),
                content,
                origin_server_ts: ts,
                decrypted: false,
                redelivered: false,
                json_members: Default::default(),
            }),
            recipients: agents.into_iter().map(|a| (a, false)).collect(),
        });
    }
}

/// The id of the item stating `fact`: the same fact, the same id.
fn fact_id(fact: &[&str], thread: Option<&str>) -> String {
    let mut hash = Sha256::new();
    for part in fact.iter().copied().chain(thread) {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    format!("${}", hex::encode(hash.finalize()))
}

#[cfg(test)]
mod tests;
