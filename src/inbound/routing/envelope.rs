//! The fields routing reads from a room event (its envelope), borrowed from the body, and the
//! check of its identifiers. An envelope is read one of two ways with the same result: with
//! the transaction body's single parse ([`ReadEvents`], the common case), or from an event's
//! raw text on its own ([`RawEnvelope`]'s derived `Deserialize`, the reference), which a body
//! takes when one of its events could not be read in the single parse (so that the event is
//! skipped, or counted in the fingerprint by its content, exactly as before).

use std::borrow::Cow;

use ruma::{EventId, IdParseError, RoomId, UserId};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::SkipReason;

/// The fields routing needs, borrowed from the body: the content stays raw until needed
/// and the identifiers are checked in place ([`RawEnvelope::check`]), so an event in a room
/// no agent is in costs no allocation. Strings are `Cow`s: one with a JSON escape cannot be
/// borrowed, and must not make a valid event unreadable.
#[derive(Deserialize, Debug)]
pub struct RawEnvelope<'a> {
    #[serde(borrow)]
    pub(super) event_id: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) room_id: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) sender: Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    pub(super) kind: Cow<'a, str>,
    #[serde(default, borrow)]
    pub(super) state_key: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(super) origin_server_ts: i64,
    #[serde(borrow)]
    pub(super) content: &'a RawValue,
}

/// An event whose identifiers are valid.
pub(super) struct Envelope<'a> {
    pub(super) event_id: &'a EventId,
    pub(super) room_id: &'a RoomId,
    pub(super) sender: &'a UserId,
    pub(super) kind: &'a str,
    pub(super) state_key: Option<&'a str>,
    pub(super) origin_server_ts: i64,
    pub(super) content: &'a RawValue,
}

/// Whether an identifier holds a control character: never stored (the store's text columns
/// end at a NUL, so such an id would be stored as another).
pub(super) fn has_control(id: &str) -> bool {
    // No early exit, so that the loop is vectorised (ids are short, and have none).
    id.bytes()
        .fold(false, |found, b| found | b.is_ascii_control())
}

/// The room id and sender last found valid in a transaction: the next event's, when the
/// same text, are not checked again (a transaction's events mostly share them; checking
/// them was a tenth of routing).
#[derive(Default)]
pub(super) struct Checked<'a> {
    room_id: Option<&'a RoomId>,
    sender: Option<&'a UserId>,
}

/// Equal fields, `content` by its text (for the tests that compare the two ways of reading).
#[cfg(test)]
impl PartialEq for RawEnvelope<'_> {
    fn eq(&self, o: &Self) -> bool {
        let fields = |e: &Self| {
            let ids = [&e.event_id, &e.room_id, &e.sender, &e.kind].map(|c| c.to_string());
            (ids, e.state_key.clone(), e.origin_server_ts)
        };
        fields(self) == fields(o) && self.content.get() == o.content.get()
    }
}

impl<'a> RawEnvelope<'a> {
    /// The event, if its identifiers are valid and its content is an object (the store
    /// keeps content as an object's JSON text).
    pub(super) fn check(
        &'a self,
        checked: &mut Checked<'a>,
    ) -> Result<Envelope<'a>, (SkipReason, String)> {
        let id = |e: IdParseError| (SkipReason::InvalidId, e.to_string());
        let known_room = checked.room_id.filter(|r| r.as_str() == self.room_id);
        let known_sender = checked.sender.filter(|s| s.as_str() == self.sender);
        let unchecked = [
            Some(&self.event_id),
            known_room.is_none().then_some(&self.room_id),
            known_sender.is_none().then_some(&self.sender),
        ];
        if unchecked.into_iter().flatten().any(|i| has_control(i)) {
            let error = "an identifier holds a control character";
            return Err((SkipReason::InvalidId, error.into()));
        }
        let event_id = <&EventId>::try_from(self.event_id.as_ref()).map_err(id)?;
        let room_id = match known_room {
            Some(room_id) => room_id,
            None => <&RoomId>::try_from(self.room_id.as_ref()).map_err(id)?,
        };
        let sender = match known_sender {
            Some(sender) => sender,
            None => <&UserId>::try_from(self.sender.as_ref()).map_err(id)?,
        };
        (checked.room_id, checked.sender) = (Some(room_id), Some(sender));
        let ev = Envelope {
            event_id,
            room_id,
            sender,
            kind: &self.kind,
            state_key: self.state_key.as_deref(),
            origin_server_ts: self.origin_server_ts,
            content: self.content,
        };
        if !ev.content.get().trim_start().starts_with('{') {
            return Err((SkipReason::BadContent, "content is not an object".into()));
        }
        Ok(ev)
    }
}

/// A transaction's `events`, read in the body's single parse: every event's envelope, unless
/// one of them could not be read that way (not an object, a field missing, of another type
/// or given twice), in which case the body's events are read again raw ([`ReadEvents::all`]
/// is `None`). Measured reason for reading them this way rather than as raw values first:
/// that second scan of the body was a quarter of the inbound path's instructions.
#[derive(Debug, Default)]
pub struct ReadEvents<'a> {
    /// `None` once an event could not be read.
    envelopes: Option<Vec<RawEnvelope<'a>>>,
    /// Events in the array, read or not.
    len: usize,
}

impl<'a> ReadEvents<'a> {
    /// Every event's envelope, in order; `None` when some event must be read from its raw
    /// text instead.
    pub fn all(&self) -> Option<&[RawEnvelope<'a>]> {
        self.envelopes.as_deref()
    }

    /// [`ReadEvents::all`], owned.
    pub fn into_all(self) -> Option<Vec<RawEnvelope<'a>>> {
        self.envelopes
    }

    /// Events in the array, read or not.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for ReadEvents<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(one_pass::EventsVisitor(std::marker::PhantomData))
    }
}

mod one_pass;

#[cfg(test)]
mod tests;
