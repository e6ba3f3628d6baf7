//! Optional whole numbers in request bodies, read as JSON Schema counts them: `1286` and
//! `1286.0` are the same integer (the OpenAPI document says `integer`, and clients that
//! hold every number as a double write the second form). A fraction, a negative or an
//! out-of-range number is still refused, naming the field.

use std::fmt;

use serde::{de, Deserializer};

/// `#[serde(default, deserialize_with = "crate::whole_number::optional")]` for `Option<u64>`.
pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    d.deserialize_option(OptionalWhole)
}

struct OptionalWhole;

impl<'de> de::Visitor<'de> for OptionalWhole {
    type Value = Option<u64>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a whole number from 0 to 2^64-1, or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        u64::try_from(v)
            .map(Some)
            .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        // 2^64 is exactly representable; every whole double below it converts exactly.
        if v.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&v) {
            Ok(Some(v as u64))
        } else {
            Err(E::invalid_value(de::Unexpected::Float(v), &self))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Deserialize, Debug)]
    struct Body {
        #[serde(default, deserialize_with = "super::optional")]
        n: Option<u64>,
    }

    fn read(v: serde_json::Value) -> Result<Option<u64>, String> {
        serde_json::from_value::<Body>(v)
            .map(|b| b.n)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn whole_numbers_in_either_spelling() {
        assert_eq!(read(json!({})), Ok(None));
        assert_eq!(read(json!({"n": null})), Ok(None));
        assert_eq!(read(json!({"n": 1286})), Ok(Some(1286)));
        assert_eq!(read(json!({"n": 1286.0})), Ok(Some(1286)));
        assert_eq!(read(json!({"n": u64::MAX})), Ok(Some(u64::MAX)));
        for bad in [json!(1.5), json!(-1), json!(-1.0), json!(1e20), json!("1")] {
            assert!(read(json!({ "n": bad })).is_err(), "{bad}");
        }
    }
}
