//! How homeserver calls look on the wire: Client-Server API URLs (each path segment and
//! the `user_id` query percent-encoded), JSON request bodies, the answers the client reads,
//! and Matrix error answers.

use std::time::Duration;

use http::Uri;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use ruma::{OwnedEventId, OwnedRoomId, UserId};
use serde::{Deserialize, Serialize};

use super::HomeserverError;

/// Characters escaped in a path segment: all but RFC 3986's unreserved characters,
/// sub-delimiters, `:` and `@` (so room and user ids stay readable in logs).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@');
/// Characters escaped in a query value: all but the unreserved ones.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Answer of `POST /rooms/{id}/send` and state sends.
#[derive(Deserialize)]
pub(super) struct EventIdAnswer {
    pub(super) event_id: OwnedEventId,
}

/// Answer of `POST /createRoom` and `POST /join`.
#[derive(Deserialize)]
pub(super) struct RoomIdAnswer {
    pub(super) room_id: OwnedRoomId,
}

#[derive(Deserialize)]
pub(super) struct Capabilities {
    pub(super) capabilities: CapabilityMap,
}
#[derive(Deserialize)]
pub(super) struct CapabilityMap {
    #[serde(rename = "m.room_versions")]
    pub(super) room_versions: Option<RoomVersions>,
}
#[derive(Deserialize)]
pub(super) struct RoomVersions {
    pub(super) default: String,
}

/// Nothing: endpoints whose answer we do not read.
#[derive(Deserialize)]
pub(super) struct Empty {}

/// `<base>/_matrix/client` of a homeserver base URL (which may have a path of its own).
pub(super) fn client_prefix(base: &url::Url) -> String {
    format!("{}/_matrix/client", base.as_str().trim_end_matches('/'))
}

/// `<prefix>/<segments...>[?user_id=<user>]`, each segment and the user id percent-encoded.
pub(super) fn client_url(prefix: &str, segments: &[&str], user: Option<&UserId>) -> Uri {
    client_url_with(prefix, segments, user, &[])
}

/// [`client_url`] with more query parameters (each value percent-encoded).
pub(super) fn client_url_with(
    prefix: &str,
    segments: &[&str],
    user: Option<&UserId>,
    query: &[(&str, &str)],
) -> Uri {
    let mut url = String::with_capacity(prefix.len() + 160);
    url.push_str(prefix);
    for segment in segments {
        url.push('/');
        url.extend(utf8_percent_encode(segment, SEGMENT));
    }
    let mut separator = '?';
    if let Some(user) = user {
        url.push_str("?user_id=");
        url.extend(utf8_percent_encode(user.as_str(), QUERY_VALUE));
        separator = '&';
    }
    for (name, value) in query {
        url.push(separator);
        url.push_str(name);
        url.push('=');
        url.extend(utf8_percent_encode(value, QUERY_VALUE));
        separator = '&';
    }
    // The base is an http(s) URL without query or fragment (the config checks it) and
    // every other part is percent-encoded.
    Uri::try_from(url).expect("a valid URI")
}

/// The body of a call that may give a reason (a leave, a redaction): `{"reason"}` when
/// there is one, `{}` otherwise.
pub(super) fn reason_body(reason: Option<&str>) -> serde_json::Value {
    match reason {
        Some(reason) => serde_json::json!({ "reason": reason }),
        None => serde_json::json!({}),
    }
}

pub(super) fn bytes_of(body: &impl Serialize) -> bytes::Bytes {
    bytes::Bytes::from(serde_json::to_vec(body).expect("request bodies serialise"))
}

/// Reads a Matrix error answer.
pub(super) fn status_error(
    status: u16,
    body: &[u8],
    retry_header: Option<Duration>,
) -> HomeserverError {
    #[derive(Deserialize)]
    struct MatrixError {
        errcode: Option<String>,
        error: Option<String>,
        retry_after_ms: Option<u64>,
    }
    let parsed = serde_json::from_slice::<MatrixError>(body).ok();
    let (errcode, error, retry_ms) = match parsed {
        Some(m) => (m.errcode, m.error, m.retry_after_ms),
        None => (None, None, None),
    };
    HomeserverError::Status {
        status,
        errcode: errcode.unwrap_or_else(|| "M_UNKNOWN".into()),
        error: error.unwrap_or_else(|| format!("HTTP {status}")),
        retry_after: retry_ms.map(Duration::from_millis).or(retry_header),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_the_base_path_and_encode_every_part() {
        let base = url::Url::parse("https://hs.example:8448/matrix/").unwrap();
        let prefix = client_prefix(&base);
        assert_eq!(prefix, "https://hs.example:8448/matrix/_matrix/client");
        let user = UserId::parse("@agent-a:hs.example").unwrap();
        let uri = client_url(
            &prefix,
            &[
                "v3",
                "rooms",
                "!r/x y?#%é:hs",
                "send",
                "m.room.message",
                "mas.1",
            ],
            Some(&user),
        );
        assert_eq!(
            uri.to_string(),
            "https://hs.example:8448/matrix/_matrix/client/v3/rooms/\
             !r%2Fx%20y%3F%23%25%C3%A9:hs/send/m.room.message/mas.1?user_id=%40agent-a%3Ahs.example"
        );
        let bare = url::Url::parse("http://127.0.0.1:8008").unwrap();
        assert_eq!(
            client_url(&client_prefix(&bare), &["v3", "register"], None).to_string(),
            "http://127.0.0.1:8008/_matrix/client/v3/register"
        );
    }

    #[test]
    fn error_bodies_are_read() {
        let e = status_error(
            429,
            br#"{"errcode":"M_LIMIT_EXCEEDED","error":"slow","retry_after_ms":250}"#,
            None,
        );
        assert_eq!(e.errcode(), Some("M_LIMIT_EXCEEDED"));
        assert!(
            matches!(e, HomeserverError::Status { retry_after: Some(d), .. } if d == Duration::from_millis(250))
        );
        let e = status_error(
            502,
            b"<html>bad gateway</html>",
            Some(Duration::from_secs(2)),
        );
        assert_eq!(e.errcode(), Some("M_UNKNOWN"));
        assert_eq!(e.status(), Some(502));
    }
}
