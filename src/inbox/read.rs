//! Reading one agent's inbox: from the in-memory tail when it covers the cursor (the usual
//! case for a reader that keeps up), else from the store; waiting on the tail's signal (no
//! polling); and the JSON of inbox items, written from fragments.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde::Serialize;
use serde_json::value::RawValue;

use super::{slots::Slot, tail::InboxTail};
use crate::{
    ids::AgentSlug,
    store::{InboxEntry, InboxEvent, Store, StoreResult},
};

/// One agent's inbox as one reader sees it; holds one of the agent's stream slots.
pub struct InboxReader {
    pub(super) store: Arc<dyn Store>,
    pub(super) tail: Arc<InboxTail>,
    pub(super) slug: AgentSlug,
    pub(super) _slot: Slot,
}

impl InboxReader {
    pub fn slug(&self) -> &AgentSlug {
        &self.slug
    }

    /// The cursor of the newest entry (0 for an empty inbox): what `since=latest` reads
    /// after.
    pub async fn latest(&self) -> StoreResult<i64> {
        match self.tail.latest() {
            Some(latest) => Ok(latest),
            None => self.store.latest_cursor(&self.slug).await,
        }
    }

    /// Entries after `since`, at most `limit`. A tail that covers `since` holds every
    /// entry after it, so only a read from the store can find that retention removed some.
    async fn read(&self, since: i64, limit: usize) -> StoreResult<Batch> {
        if let Some(entries) = self.tail.read_after(since, limit) {
            return Ok(Batch {
                entries,
                gap: false,
            });
        }
        let entries = self
            .store
            .read_inbox(&self.slug, since, limit as u32)
            .await?;
        // Cursor 0 asks for the oldest entry kept: nothing was promised before it.
        let gap = since > 0 && since < self.store.inbox_floor(&self.slug).await?;
        Ok(Batch { entries, gap })
    }

    /// Entries after `since`, waiting up to `timeout` for the first one.
    pub async fn wait(&self, since: i64, limit: usize, timeout: Duration) -> StoreResult<Batch> {
        let deadline = Instant::now() + timeout;
        let mut gap = false;
        loop {
            // Registered before reading, so a push between the read and the wait wakes us.
            let notified = self.tail.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let mut batch = self.read(since, limit).await?;
            gap |= batch.gap;
            batch.gap = gap;
            let left = deadline.saturating_duration_since(Instant::now());
            if !batch.entries.is_empty() || left.is_zero() {
                return Ok(batch);
            }
            if tokio::time::timeout(left, notified).await.is_err() {
                return Ok(batch);
            }
        }
    }
}

/// What one read of an inbox found.
#[derive(Debug, Default)]
pub struct Batch {
    /// Entries after the cursor, oldest first.
    pub entries: Vec<InboxEntry>,
    /// Retention removed entries after the cursor: the reader missed them.
    pub gap: bool,
}

/// The members of an inbox item that are the same for every recipient. Receipts and
/// typing have no event id of their own (what the store keeps them under is not shown).
#[derive(Serialize)]
struct SharedMembers<'a> {
    room_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<&'a str>,
    sender: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    content: &'a RawValue,
    origin_server_ts: i64,
}

/// `"room_id":...,"origin_server_ts":...` (the object's members without the braces),
/// serialised by the first of the event's readers.
fn shared_members(ev: &InboxEvent) -> &str {
    ev.json_members.get_or_init(|| {
        let mut json = serde_json::to_string(&SharedMembers {
            room_id: ev.room_id.as_str(),
            event_id: (!ev.is_ephemeral()).then_some(ev.event_id.as_str()),
            sender: ev.sender.as_str(),
            kind: &ev.event_type,
            content: &ev.content,
            origin_server_ts: ev.origin_server_ts,
        })
        .expect("strings and raw JSON serialise");
        json.pop();
        json.remove(0);
        json.into_boxed_str()
    })
}

/// Appends one inbox item: `{"cursor":"<n>","mentioned":<bool>,<members>}`, with
/// `"encrypted":true` for an `m.room.encrypted` event (which the agent cannot read, but
/// must not miss), `"decrypted":true` for one the daemon decrypted (its clear type and
/// content), and with it `"redelivered":true` when the agent had this event before as
/// `encrypted` (its key came later). The pieces are a number, booleans and members
/// serde_json wrote, so the whole is valid JSON.
pub fn write_item(out: &mut Vec<u8>, entry: &InboxEntry) {
    out.extend_from_slice(b"{\"cursor\":\"");
    out.extend_from_slice(entry.cursor.to_string().as_bytes());
    out.extend_from_slice(if entry.mentioned {
        b"\",\"mentioned\":true,"
    } else {
        b"\",\"mentioned\":false,"
    });
    if entry.event.event_type == "m.room.encrypted" {
        out.extend_from_slice(b"\"encrypted\":true,");
    } else if entry.event.redelivered {
        out.extend_from_slice(b"\"decrypted\":true,\"redelivered\":true,");
    } else if entry.event.decrypted {
        out.extend_from_slice(b"\"decrypted\":true,");
    }
    out.extend_from_slice(shared_members(&entry.event).as_bytes());
    out.push(b'}');
}

/// The long-poll answer: `{"events":[...],"next":"<cursor>"}`, with `"gap":true` when
/// retention removed entries the reader had not read.
pub fn answer(entries: &[InboxEntry], next: i64, gap: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + 512 * entries.len());
    out.extend_from_slice(b"{\"events\":[");
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_item(&mut out, entry);
    }
    out.extend_from_slice(b"],\"next\":\"");
    out.extend_from_slice(next.to_string().as_bytes());
    out.extend_from_slice(if gap { b"\",\"gap\":true}" } else { b"\"}" });
    out
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::inbox::test_entry;

    const CONTENT: &str = r#"{"body":"a \"quoted\" line\nand ünïcode","msgtype":"m.text"}"#;

    fn expected(cursor: i64, mentioned: bool) -> Value {
        json!({
            "cursor": cursor.to_string(),
            "room_id": "!r:hs",
            "event_id": format!("$e{cursor}"),
            "sender": "@h:hs",
            "type": "m.room.message",
            "content": serde_json::from_str::<Value>(CONTENT).unwrap(),
            "origin_server_ts": 7,
            "mentioned": mentioned,
        })
    }

    /// The answer written from fragments is the JSON the bridge documents, also when a
    /// second reader reuses the shared members.
    #[test]
    fn answers_are_the_documented_json() {
        let want = json!({ "events": [expected(3, true), expected(4, false)], "next": "4" });
        let entries = [test_entry(3, true, CONTENT), test_entry(4, false, CONTENT)];
        for _ in 0..2 {
            let got: Value = serde_json::from_slice(&answer(&entries, 4, false)).unwrap();
            assert_eq!(got, want);
        }
        let empty: Value = serde_json::from_slice(&answer(&[], 9, false)).unwrap();
        assert_eq!(empty, json!({ "events": [], "next": "9" }));
        let gap: Value = serde_json::from_slice(&answer(&entries, 4, true)).unwrap();
        let want =
            json!({ "events": [expected(3, true), expected(4, false)], "next": "4", "gap": true });
        assert_eq!(gap, want);
    }

    /// Two recipients of one event share its members, and keep their own cursor and
    /// mention flag.
    #[test]
    fn recipients_share_members_not_cursors() {
        let first = test_entry(10, true, CONTENT);
        let second = InboxEntry {
            cursor: 11,
            mentioned: false,
            event: first.event.clone(),
        };
        let a: Value = serde_json::from_slice(&answer(&[first], 10, false)).unwrap();
        let b: Value = serde_json::from_slice(&answer(&[second], 11, false)).unwrap();
        assert_eq!(a["events"][0]["cursor"], "10");
        assert_eq!(a["events"][0]["mentioned"], true);
        assert_eq!(b["events"][0]["cursor"], "11");
        assert_eq!(b["events"][0]["mentioned"], false);
        assert_eq!(a["events"][0]["content"], b["events"][0]["content"]);
    }

    /// Receipts and typing items carry no event id (the one they are stored under is
    /// not a Matrix event's).
    #[test]
    fn ephemeral_items_have_no_event_id() {
        let mut entry = test_entry(8, false, r#"{"typing":true}"#);
        Arc::get_mut(&mut entry.event).unwrap().event_type = "m.typing".into();
        let item: Value = serde_json::from_slice(&answer(&[entry], 8, false)).unwrap();
        let item = &item["events"][0];
        assert_eq!(item.get("event_id"), None, "{item}");
        assert_eq!(item["type"], "m.typing");
        assert_eq!(item["sender"], "@h:hs");
    }

    /// An `m.room.encrypted` item says so; others carry no `encrypted` member.
    #[test]
    fn encrypted_events_are_marked() {
        let content = r#"{"algorithm":"m.megolm.v1.aes-sha2"}"#;
        let plain = test_entry(5, false, content);
        let plain: Value = serde_json::from_slice(&answer(&[plain], 5, false)).unwrap();
        assert!(plain["events"][0].get("encrypted").is_none());
        let mut entry = test_entry(6, false, content);
        std::sync::Arc::get_mut(&mut entry.event)
            .unwrap()
            .event_type = "m.room.encrypted".into();
        let item: Value = serde_json::from_slice(&answer(&[entry], 6, false)).unwrap();
        assert_eq!(item["events"][0]["encrypted"], true);
        assert_eq!(item["events"][0]["type"], "m.room.encrypted");
    }
}
