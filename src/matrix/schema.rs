//! Matrix identifiers at the bridge API's boundary: how its OpenAPI document describes them
//! (ruma's types have no schema of their own: strings of the shape ruma accepts, so that
//! generated valid input is valid here too; request and answer types name these in
//! `#[schema(value_type = ...)]`), and the one rule of the spec ruma does not enforce,
//! the 255-byte limit of every identifier ([`bounded`] and its variants).

use utoipa::openapi::{schema::Schema, ObjectBuilder, RefOr, Type};

/// Longest Matrix identifier, in bytes.
const MAX_ID: usize = 255;
/// A server name as ruma reads it: a DNS name or IPv4 address, with an optional port (of
/// at most four digits, so that it is always below 65536).
const SERVER: &str = "[A-Za-z0-9.-]+(:[0-9]{1,4})?";
/// The opaque part of an identifier: printable ASCII except `:` (the historical user-id
/// alphabet, and what room and event ids of recent room versions use).
const OPAQUE: &str = "[!-9;-~]+";

/// `#[serde(deserialize_with = "crate::matrix::schema::bounded")]`: a Matrix identifier
/// (user, room, event or alias id) of at most 255 bytes, as the spec says and the document
/// promises. ruma accepts longer ones once any crate in the build asks it to (the crypto
/// crate does), so the limit is kept here.
pub fn bounded<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de> + AsRef<str>,
{
    let id = T::deserialize(d)?;
    within_limit(id.as_ref()).map_err(serde::de::Error::custom)?;
    Ok(id)
}

/// [`bounded`] for an optional field (with `#[serde(default)]`).
pub fn optional_bounded<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de> + AsRef<str>,
{
    let id = <Option<T> as serde::Deserialize>::deserialize(d)?;
    if let Some(id) = &id {
        within_limit(id.as_ref()).map_err(serde::de::Error::custom)?;
    }
    Ok(id)
}

/// [`bounded`] for a list of identifiers.
pub fn bounded_list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de> + AsRef<str>,
{
    let ids = <Vec<T> as serde::Deserialize>::deserialize(d)?;
    for id in &ids {
        within_limit(id.as_ref()).map_err(serde::de::Error::custom)?;
    }
    Ok(ids)
}

/// An identifier from a path or a string field, parsed by ruma and held to the limit.
pub fn parse_bounded<'a, T>(s: &'a str) -> Result<T, String>
where
    T: TryFrom<&'a str>,
    T::Error: std::fmt::Display,
{
    within_limit(s)?;
    T::try_from(s).map_err(|e| e.to_string())
}

fn within_limit(id: &str) -> Result<(), String> {
    if id.len() > MAX_ID {
        return Err(format!("a Matrix identifier is at most {MAX_ID} bytes"));
    }
    Ok(())
}

fn id(description: &str, pattern: String, example: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .max_length(Some(MAX_ID))
        .description(Some(description))
        .examples([example])
        .into()
}

macro_rules! id_schema {
    ($(#[$doc:meta])* $name:ident, $describe:literal, $pattern:expr, $example:literal) => {
        $(#[$doc])*
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                id($describe, $pattern, $example)
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

id_schema!(
    /// `@localpart:server`.
    UserId,
    "A Matrix user id",
    format!("^@{OPAQUE}:{SERVER}$"),
    "@alice:example.org"
);
id_schema!(
    /// `!opaque` (room version 12) or `!opaque:server`.
    RoomId,
    "A Matrix room id",
    format!("^!{OPAQUE}(:{SERVER})?$"),
    "!abc:example.org"
);
id_schema!(
    /// `$opaque` or `$opaque:server`.
    EventId,
    "A Matrix event id",
    format!("^\\${OPAQUE}(:{SERVER})?$"),
    "$abc"
);
id_schema!(
    /// `#alias:server`.
    RoomAlias,
    "A Matrix room alias",
    format!("^#{OPAQUE}:{SERVER}$"),
    "#team:example.org"
);
id_schema!(
    /// `mxc://server/media-id`.
    MxcUri,
    "A Matrix content URI",
    format!("^mxc://{SERVER}/[A-Za-z0-9_-]+$"),
    "mxc://example.org/abc"
);

#[cfg(test)]
mod tests {
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use ruma::{OwnedEventId, OwnedMxcUri, OwnedRoomAliasId, OwnedRoomId, OwnedUserId};

    use super::*;

    /// A random string of `alphabet`, `len` characters.
    fn draw(rng: &mut StdRng, alphabet: &[u8], len: std::ops::RangeInclusive<usize>) -> String {
        let n = rng.random_range(len);
        (0..n)
            .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
            .collect()
    }

    fn the_pattern_of<T: utoipa::PartialSchema>() -> regex::Regex {
        let schema = serde_json::to_value(T::schema()).unwrap();
        regex::Regex::new(schema["pattern"].as_str().unwrap()).unwrap()
    }

    /// Strings drawn from the patterns' pieces, odd ones included: every one the pattern
    /// admits, ruma accepts.
    #[test]
    fn what_the_patterns_admit_ruma_accepts() {
        let opaque: Vec<u8> = (b'!'..=b'~').filter(|c| *c != b':').collect();
        let host: Vec<u8> = (b'a'..=b'z')
            .chain(b'A'..=b'Z')
            .chain(b'0'..=b'9')
            .chain([b'.', b'-'])
            .collect();
        let mut rng = StdRng::seed_from_u64(7);
        let server = |rng: &mut StdRng| {
            let port = if rng.random_bool(0.3) {
                format!(":{}", rng.random_range(0..99_999))
            } else {
                String::new()
            };
            format!("{}{port}", draw(rng, &host, 1..=20))
        };
        let (user, room, event, alias, mxc) = (
            the_pattern_of::<UserId>(),
            the_pattern_of::<RoomId>(),
            the_pattern_of::<EventId>(),
            the_pattern_of::<RoomAlias>(),
            the_pattern_of::<MxcUri>(),
        );
        let media: Vec<u8> = host
            .iter()
            .copied()
            .filter(|c| *c != b'.')
            .chain([b'_'])
            .collect();
        let mut checked = 0;
        for _ in 0..2000 {
            let local = draw(&mut rng, &opaque, 1..=30);
            let s = format!("@{local}:{}", server(&mut rng));
            if user.is_match(&s) && s.len() <= MAX_ID {
                OwnedUserId::try_from(s.as_str()).unwrap_or_else(|e| panic!("{s}: {e}"));
                checked += 1;
            }
            let tail = if rng.random_bool(0.5) {
                format!(":{}", server(&mut rng))
            } else {
                String::new()
            };
            let s = format!("!{local}{tail}");
            if room.is_match(&s) {
                OwnedRoomId::try_from(s.as_str()).unwrap_or_else(|e| panic!("{s}: {e}"));
                checked += 1;
            }
            let s = format!("${local}{tail}");
            if event.is_match(&s) {
                OwnedEventId::try_from(s.as_str()).unwrap_or_else(|e| panic!("{s}: {e}"));
                checked += 1;
            }
            let s = format!("#{local}:{}", server(&mut rng));
            if alias.is_match(&s) {
                OwnedRoomAliasId::try_from(s.as_str()).unwrap_or_else(|e| panic!("{s}: {e}"));
                checked += 1;
            }
            let s = format!(
                "mxc://{}/{}",
                server(&mut rng),
                draw(&mut rng, &media, 1..=20)
            );
            if mxc.is_match(&s) {
                let uri = OwnedMxcUri::from(s.as_str());
                uri.validate().unwrap_or_else(|e| panic!("{s}: {e}"));
                checked += 1;
            }
        }
        // The draws mostly fit the patterns: the test is not vacuous.
        assert!(checked > 7000, "only {checked} of 10000 draws checked");
    }

    #[test]
    fn identifiers_past_255_bytes_are_refused() {
        #[derive(serde::Deserialize, Debug)]
        struct Body {
            #[serde(deserialize_with = "bounded")]
            id: ruma::OwnedEventId,
            #[serde(default, deserialize_with = "optional_bounded")]
            other: Option<ruma::OwnedEventId>,
        }
        let read =
            |v: serde_json::Value| serde_json::from_value::<Body>(v).map_err(|e| e.to_string());
        let fits = format!("${}", "a".repeat(254));
        let long = format!("${}", "a".repeat(255));
        let body = read(serde_json::json!({ "id": fits })).unwrap();
        assert_eq!(body.id.as_str().len(), 255);
        assert!(body.other.is_none());
        assert!(read(serde_json::json!({ "id": long }))
            .unwrap_err()
            .contains("at most 255"));
        let e = read(serde_json::json!({ "id": "$a", "other": long })).unwrap_err();
        assert!(e.contains("at most 255"), "{e}");
        assert!(read(serde_json::json!({ "id": "$a", "other": null })).is_ok());

        let room = format!("!{}", "r".repeat(254));
        assert!(parse_bounded::<OwnedRoomId>(&room).is_ok());
        let e = parse_bounded::<OwnedRoomId>(&format!("{room}r")).unwrap_err();
        assert!(e.contains("at most 255"), "{e}");
        let users = |n: usize| serde_json::json!([format!("@{}:s", "u".repeat(n))]);
        #[derive(serde::Deserialize)]
        struct Mentions(#[serde(deserialize_with = "bounded_list")] Vec<OwnedUserId>);
        assert_eq!(
            serde_json::from_value::<Mentions>(users(252))
                .unwrap()
                .0
                .len(),
            1
        );
        assert!(serde_json::from_value::<Mentions>(users(253)).is_err());
    }
}
