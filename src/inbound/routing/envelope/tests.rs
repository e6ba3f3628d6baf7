//! The single parse reads an envelope exactly when the derived code reads it, to the same
//! values; everything it cannot read is left to the derived code.

use super::*;

/// Values a field can take: of each JSON type, with and without escapes, and out of range.
const VALUES: &[&str] = &[
    r#""$a""#,
    r#""!r\u0041""#,
    r#""@s:hs""#,
    r#""m.room.message""#,
    r#""""#,
    "null",
    "0",
    "-7",
    "1700000000000",
    "9223372036854775807",
    "9223372036854775808",
    "1.5",
    "1e3",
    "true",
    "[1,{}]",
    r#"{"k":[null]}"#,
];

const KEYS: &[&str] = &[
    "event_id",
    "room_id",
    "sender",
    "type",
    "state_key",
    "origin_server_ts",
    "content",
    "unsigned",
    r"event\u005fid",
];

/// Reads one event both ways: the single parse's envelope, and the derived code's.
fn both(event: &str) -> (Option<RawEnvelope<'_>>, Option<RawEnvelope<'_>>) {
    let array = format!("[{event}]");
    let read: ReadEvents<'_> = serde_json::from_str(&array).expect("valid JSON");
    assert_eq!(read.len(), 1);
    let one_pass = read.all().map(|e| owned(&e[0]));
    let derived = serde_json::from_str::<RawEnvelope<'_>>(event).ok();
    (one_pass, derived)
}

/// The envelope with its strings owned (the array's text above does not outlive `both`).
fn owned(e: &RawEnvelope<'_>) -> RawEnvelope<'static> {
    let own = |c: &Cow<'_, str>| Cow::Owned(c.to_string());
    let content: &'static RawValue =
        Box::leak(RawValue::from_string(e.content.get().to_owned()).unwrap());
    RawEnvelope {
        event_id: own(&e.event_id),
        room_id: own(&e.room_id),
        sender: own(&e.sender),
        kind: own(&e.kind),
        state_key: e.state_key.as_ref().map(own),
        origin_server_ts: e.origin_server_ts,
        content,
    }
}

fn assert_same(event: &str) {
    let (one_pass, derived) = both(event);
    assert_eq!(one_pass, derived.as_ref().map(owned), "{event}");
}

/// A valid event with `field` set to `value` (or left out when `value` is `None`).
fn event_with(field: usize, value: Option<&str>) -> String {
    let base = [
        ("event_id", r#""$e""#),
        ("room_id", r#""!r""#),
        ("sender", r#""@s:hs""#),
        ("type", r#""m.room.message""#),
        ("state_key", r#""""#),
        ("origin_server_ts", "5"),
        ("content", r#"{"body":"hi"}"#),
    ];
    let members: Vec<String> = base
        .iter()
        .enumerate()
        .filter_map(|(i, (k, v))| match (i == field, value) {
            (false, _) => Some(format!(r#""{k}":{v}"#)),
            (true, Some(value)) => Some(format!(r#""{k}":{value}"#)),
            (true, None) => None,
        })
        .collect();
    format!("{{{}}}", members.join(","))
}

#[test]
fn every_field_of_every_type_is_read_as_the_derived_code_reads_it() {
    for field in 0..7 {
        assert_same(&event_with(field, None));
        for value in VALUES {
            assert_same(&event_with(field, Some(value)));
        }
    }
}

#[test]
fn escaped_strings_are_read_owned_and_keys_matched_after_unescaping() {
    let event = r#"{"event\u005fid":"$\u00e9","room_id":"!r","sender":"@s:hs",
        "type":"m.room.message","content":{}}"#;
    let (one_pass, derived) = both(event);
    let one_pass = one_pass.expect("read in the single parse");
    assert_eq!(one_pass.event_id, "$é");
    assert_eq!(Some(one_pass), derived.as_ref().map(owned));
}

#[test]
fn a_field_given_twice_or_an_event_not_an_object_is_left_to_the_derived_code() {
    let twice = r#"{"event_id":"$a","event_id":"$b","room_id":"!r","sender":"@s:hs","type":"t","content":{}}"#;
    assert_eq!(both(twice), (None, None));
    // The derived code reads a struct from an array of its fields in order: the single
    // parse does not, and leaves it to that code, so the outcome is unchanged.
    let array = r#"["$a","!r","@s:hs","t",null,1,{}]"#;
    let (one_pass, derived) = both(array);
    assert!(one_pass.is_none() && derived.is_some());
    for other in ["1", "\"text\"", "null", "true", "[]"] {
        assert_eq!(both(other).0, None, "{other}");
    }
}

/// Random variations of a valid event: each field kept, given another value or left out,
/// with extra members (any key, any value) between them; a fixed seed, so the same cases
/// run every time.
#[test]
fn generated_events_are_read_alike() {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let valid = event_with(7, None);
    let valid = &valid[1..valid.len() - 1];
    let mut read = 0;
    for _ in 0..5_000 {
        let mut members = Vec::new();
        for member in valid.split(',') {
            let (key, _) = member.split_once(':').unwrap();
            match next(10) {
                0..=6 => members.push(member.to_owned()),
                7 | 8 => members.push(format!("{key}:{}", VALUES[next(VALUES.len())])),
                _ => {}
            }
            if next(4) == 0 {
                let key = KEYS[next(KEYS.len())];
                members.push(format!(r#""{key}":{}"#, VALUES[next(VALUES.len())]));
            }
        }
        let event = format!("{{{}}}", members.join(","));
        assert_same(&event);
        read += usize::from(both(&event).0.is_some());
    }
    assert!(read > 100, "{read} of the generated events read");
}

#[test]
fn past_an_unread_event_the_events_are_read_raw_and_counted() {
    let good = event_with(7, None);
    let text = format!("[{good},{{}},{good}]");
    let read: ReadEvents<'_> = serde_json::from_str(&text).unwrap();
    assert_eq!((read.len(), read.all().is_none()), (3, true));
    let text = format!("[{good},{good}]");
    let read: ReadEvents<'_> = serde_json::from_str(&text).unwrap();
    assert_eq!(read.all().map(<[_]>::len), Some(2));
    assert!(
        serde_json::from_str::<ReadEvents<'_>>("[{]").is_err(),
        "syntax"
    );
    assert!(
        serde_json::from_str::<ReadEvents<'_>>("{}").is_err(),
        "not an array"
    );
}
