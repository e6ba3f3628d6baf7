//! The serde visitors behind [`ReadEvents`]: each event of the array is read straight into a
//! [`RawEnvelope`] while the body is parsed, accepting exactly what the derived
//! `Deserialize` of [`RawEnvelope`] accepts with the same values. Anything else is a syntax
//! error (the body is refused, as before) or leaves the event unread, never an error: that
//! event is then read from its raw text by the derived code, which says why it is skipped.

use std::{borrow::Cow, fmt, marker::PhantomData};

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::{RawEnvelope, ReadEvents};

/// Room events in a transaction are usually 50 at most (Synapse's batch): one allocation.
const USUAL_EVENTS: usize = 64;

pub(super) struct EventsVisitor<'a>(pub(super) PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for EventsVisitor<'a> {
    type Value = ReadEvents<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut envelopes = Some(Vec::with_capacity(seq.size_hint().unwrap_or(USUAL_EVENTS)));
        let mut len = 0;
        while let Some(Event(envelope)) = seq.next_element()? {
            len += 1;
            // Past an unread event the envelopes are of no use: the events are read raw.
            envelopes = envelopes.zip(envelope).map(|(mut all, e)| {
                all.push(e);
                all
            });
        }
        Ok(ReadEvents { envelopes, len })
    }
}

/// One event: its envelope, or `None` when it cannot be read in the single parse.
struct Event<'a>(Option<RawEnvelope<'a>>);

impl<'de: 'a, 'a> de::Deserialize<'de> for Event<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(EventVisitor(PhantomData))
    }
}

struct EventVisitor<'a>(PhantomData<&'a ()>);

/// The envelope's fields as met; `unread` once one of them is missing, of another type
/// or given twice.
#[derive(Default)]
struct Fields<'a> {
    event_id: Option<Cow<'a, str>>,
    room_id: Option<Cow<'a, str>>,
    sender: Option<Cow<'a, str>>,
    kind: Option<Cow<'a, str>>,
    state_key: Option<Option<Cow<'a, str>>>,
    origin_server_ts: Option<i64>,
    content: Option<&'a RawValue>,
    unread: bool,
}

impl<'a> Fields<'a> {
    /// Keeps a field's value: the first one, when it has the expected type.
    fn keep<T>(&mut self, slot: fn(&mut Self) -> &mut Option<T>, value: Option<T>) {
        match value {
            Some(v) if slot(self).is_none() => *slot(self) = Some(v),
            _ => self.unread = true,
        }
    }

    fn envelope(self) -> Option<RawEnvelope<'a>> {
        if self.unread {
            return None;
        }
        Some(RawEnvelope {
            event_id: self.event_id?,
            room_id: self.room_id?,
            sender: self.sender?,
            kind: self.kind?,
            state_key: self.state_key.flatten(),
            origin_server_ts: self.origin_server_ts.unwrap_or_default(),
            content: self.content?,
        })
    }
}

impl<'de: 'a, 'a> Visitor<'de> for EventVisitor<'a> {
    type Value = Event<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a room event")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut f = Fields::default();
        while let Some(key) = map.next_key::<Field>()? {
            match key {
                Field::EventId => f.keep(|f| &mut f.event_id, map.next_value::<Any>()?.text()),
                Field::RoomId => f.keep(|f| &mut f.room_id, map.next_value::<Any>()?.text()),
                Field::Sender => f.keep(|f| &mut f.sender, map.next_value::<Any>()?.text()),
                Field::Type => f.keep(|f| &mut f.kind, map.next_value::<Any>()?.text()),
                Field::StateKey => {
                    let value = match map.next_value::<Any>()? {
                        Any::Null => Some(None),
                        other => other.text().map(Some),
                    };
                    f.keep(|f| &mut f.state_key, value);
                }
                Field::OriginServerTs => {
                    let value = match map.next_value::<Any>()? {
                        Any::Integer(n) => Some(n),
                        _ => None,
                    };
                    f.keep(|f| &mut f.origin_server_ts, value);
                }
                Field::Content => f.keep(|f| &mut f.content, Some(map.next_value()?)),
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Event(f.envelope()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        IgnoredAny.visit_seq(seq).map(|_| Event(None))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Event(None))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Event(None))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Event(None))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Event(None))
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Event(None))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Event(None))
    }
}

/// The envelope's keys, matched as the derived code matches them (after unescaping).
enum Field {
    EventId,
    RoomId,
    Sender,
    Type,
    StateKey,
    OriginServerTs,
    Content,
    Other,
}

impl<'de> de::Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_identifier(FieldVisitor)
    }
}

struct FieldVisitor;

impl Visitor<'_> for FieldVisitor {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E>(self, key: &str) -> Result<Field, E> {
        Ok(match key {
            "event_id" => Field::EventId,
            "room_id" => Field::RoomId,
            "sender" => Field::Sender,
            "type" => Field::Type,
            "state_key" => Field::StateKey,
            "origin_server_ts" => Field::OriginServerTs,
            "content" => Field::Content,
            _ => Field::Other,
        })
    }
}

/// A field's value by the types the envelope's fields take: text (borrowed when it has no
/// escape), a whole number that fits an `i64`, null, or anything else.
enum Any<'a> {
    Text(Cow<'a, str>),
    Integer(i64),
    Null,
    Other,
}

impl<'a> Any<'a> {
    fn text(self) -> Option<Cow<'a, str>> {
        match self {
            Any::Text(t) => Some(t),
            _ => None,
        }
    }
}

impl<'de: 'a, 'a> de::Deserialize<'de> for Any<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AnyVisitor(PhantomData))
    }
}

struct AnyVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for AnyVisitor<'a> {
    type Value = Any<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Any<'a>, E> {
        Ok(Any::Text(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Any<'a>, E> {
        Ok(Any::Text(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Any<'a>, E> {
        Ok(Any::Text(Cow::Owned(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Any<'a>, E> {
        Ok(Any::Integer(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Any<'a>, E> {
        Ok(i64::try_from(v).map_or(Any::Other, Any::Integer))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Any<'a>, E> {
        Ok(Any::Other)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Any<'a>, E> {
        Ok(Any::Other)
    }

    fn visit_unit<E>(self) -> Result<Any<'a>, E> {
        Ok(Any::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Any<'a>, A::Error> {
        IgnoredAny.visit_seq(seq).map(|_| Any::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Any<'a>, A::Error> {
        IgnoredAny.visit_map(map).map(|_| Any::Other)
    }
}
