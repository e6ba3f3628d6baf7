//! Reading request bodies: the size limit (413) and JSON parsing that tells "not JSON"
//! (`M_NOT_JSON`) from "wrong shape" (`M_BAD_JSON`, naming the field).

use actix_web::web::Bytes;
use serde::{de::DeserializeOwned, Deserialize};
use serde_json::error::Category;

use super::error::ApiError;

/// Maps the payload extractor's failure (the limit is set with `PayloadConfig`).
pub fn payload(body: Result<Bytes, actix_web::Error>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.as_response_error().status_code() == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(limit)
        } else {
            ApiError::NotJson(format!("cannot read the request body: {e}"))
        }
    })
}

/// A whole request body of at most `limit` bytes, parsed as JSON ([`payload`] then
/// [`json`]).
pub fn read_json<T: DeserializeOwned>(
    body: Result<Bytes, actix_web::Error>,
    limit: usize,
) -> Result<T, ApiError> {
    json(&payload(body, limit)?)
}

/// Parses JSON, naming the offending field on shape errors.
pub fn json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    json_borrowed(bytes)
}

/// [`json`] for types that borrow from the body (no copies of raw event JSON). Every body
/// is a JSON object: serde would also fill a struct from an array of its fields in order,
/// which no client means.
pub fn json_borrowed<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, ApiError> {
    // JSON is UTF-8: checked once for the whole body, so that serde_json reads it as text
    // and checks no string again (a check per string was a tenth of the inbound path).
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ApiError::NotJson(format!("body is not valid JSON: not UTF-8 ({e})")))?;
    if text.bytes().find(|b| !b.is_ascii_whitespace()) != Some(b'{') {
        // Parsed anyway, so that a body which is not JSON at all is told apart.
        let _: T = parse_with_path(text)?;
        return Err(ApiError::BadJson("the body must be a JSON object".into()));
    }
    // Without the field path first: tracking it costs every body, and only a refused one
    // needs it (it is parsed again to say where it went wrong).
    match serde_json::from_str(text) {
        Ok(value) => Ok(value),
        Err(_) => parse_with_path(text),
    }
}

/// Parses JSON, naming the offending field on shape errors.
fn parse_with_path<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            Category::Syntax | Category::Eof | Category::Io => {
                ApiError::NotJson(format!("body is not valid JSON: {inner}"))
            }
            Category::Data if path == "." => ApiError::BadJson(strip_position(&inner)),
            Category::Data => ApiError::BadJson(format!("{path}: {}", strip_position(&inner))),
        }
    })
}

/// serde_json appends " at line 1 column 42"; the field path says more.
fn strip_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruma::OwnedRoomId;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        room_id: OwnedRoomId,
        n: u8,
    }

    #[test]
    fn errors_name_the_field() {
        assert!(matches!(json::<Body>(b"{nope"), Err(ApiError::NotJson(_))));
        let Err(ApiError::BadJson(m)) = json::<Body>(br#"{"room_id":"x","n":1}"#) else {
            panic!()
        };
        assert!(m.starts_with("room_id:"), "{m}");
        let Err(ApiError::BadJson(m)) = json::<Body>(br#"{"room_id":"!a"}"#) else {
            panic!()
        };
        assert!(m.contains("missing field `n`"), "{m}");
        let Err(ApiError::BadJson(m)) = json::<Body>(br#"{"room_id":"!a","n":1,"x":2}"#) else {
            panic!()
        };
        assert!(m.contains("unknown field `x`"), "{m}");
        assert!(json::<Body>(br#" {"room_id":"!a","n":1}"#).is_ok());
    }

    #[test]
    fn a_body_that_is_not_utf8_is_not_json() {
        let Err(ApiError::NotJson(m)) = json::<Body>(b"{\"room_id\":\"!\xff\",\"n\":1}") else {
            panic!()
        };
        assert!(m.contains("not UTF-8"), "{m}");
        // Also where the value would be ignored: JSON text is UTF-8 throughout.
        let Err(ApiError::NotJson(_)) = json_borrowed::<serde::de::IgnoredAny>(b"{\"x\":\"\xc3\"}")
        else {
            panic!()
        };
    }

    #[test]
    fn a_body_is_an_object_not_an_array_of_its_fields() {
        let Err(ApiError::BadJson(m)) = json::<Body>(br#"["!a", 1]"#) else {
            panic!()
        };
        assert_eq!(m, "the body must be a JSON object");
    }
}
