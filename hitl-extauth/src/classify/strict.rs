//! Strict JSON: exactly one value, UTF-8, no duplicate object keys at any depth.
//!
//! `serde_json` keeps the last of two equal keys; servers written in other languages keep the
//! first, or merge case-insensitively. A gate that reads a different value than the server it
//! guards is no gate, so a document with a repeated key is refused outright.

use std::{cell::RefCell, fmt};

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Why a body is not strict JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrictError {
    #[error("body is not valid UTF-8 (first bad byte at offset {offset})")]
    NotUtf8 { offset: usize },
    #[error("duplicate key {key:?} in the object at {}", pointer_or_root(.path))]
    DuplicateKey {
        key: String,
        /// JSON pointer of the object holding the repeated key.
        path: String,
    },
    #[error("body is not valid JSON: {0}")]
    Syntax(String),
}

fn pointer_or_root(path: &str) -> &str {
    if path.is_empty() {
        "the top level"
    } else {
        path
    }
}

/// Parse `bytes` as one strict JSON value (surrounding whitespace allowed, nothing else).
pub fn parse(bytes: &[u8]) -> Result<Value, StrictError> {
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(StrictError::NotUtf8 {
            offset: e.valid_up_to(),
        });
    }
    let duplicate = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = StrictSeed {
        duplicate: &duplicate,
    }
    .deserialize(&mut de)
    .and_then(|value| de.end().map(|()| value));
    match (parsed, duplicate.into_inner()) {
        (Ok(value), _) => Ok(value),
        (Err(_), Some(dup)) => Err(dup),
        (Err(e), None) => Err(StrictError::Syntax(e.to_string())),
    }
}

/// Builds a [`Value`] like `serde_json` does, but fails on the first repeated key and
/// leaves the details in `duplicate` (the error type of the deserializer can't carry them).
#[derive(Clone, Copy)]
struct StrictSeed<'a> {
    duplicate: &'a RefCell<Option<StrictError>>,
}

impl StrictSeed<'_> {
    /// On the way out of a failed child, prefix the duplicate's path with `segment`.
    fn prefix_path(&self, segment: &str) {
        if let Some(StrictError::DuplicateKey { path, .. }) = &mut *self.duplicate.borrow_mut() {
            let escaped = segment.replace('~', "~0").replace('/', "~1");
            path.insert_str(0, &format!("/{escaped}"));
        }
    }
}

impl<'de> DeserializeSeed<'de> for StrictSeed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // serde_json never produces a non-finite float, so this is never `Null` in practice.
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            match seq.next_element_seed(self) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => return Ok(Value::Array(items)),
                Err(e) => {
                    self.prefix_path(&items.len().to_string());
                    return Err(e);
                }
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                *self.duplicate.borrow_mut() = Some(StrictError::DuplicateKey {
                    key: key.clone(),
                    path: String::new(),
                });
                return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
            }
            match map.next_value_seed(self) {
                Ok(value) => {
                    object.insert(key, value);
                }
                Err(e) => {
                    self.prefix_path(&key);
                    return Err(e);
                }
            }
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parses_plain_documents() {
        assert_eq!(
            parse(br#" {"a": [1, -2, 3.5, true, null, "x"]} "#),
            Ok(json!({"a": [1, -2, 3.5, true, null, "x"]}))
        );
        assert_eq!(parse(b"[]"), Ok(json!([])));
        assert_eq!(parse(b"\"s\""), Ok(json!("s")));
    }

    #[test]
    fn keeps_key_order() {
        let v = parse(br#"{"z":1,"a":2}"#).unwrap();
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["z", "a"]);
    }

    #[test]
    fn unescapes_strings() {
        assert_eq!(parse(br#""tools\u002fcall""#), Ok(json!("tools/call")));
        assert_eq!(parse(br#""tools\/call""#), Ok(json!("tools/call")));
    }

    #[test]
    fn refuses_top_level_duplicate() {
        assert_eq!(
            parse(br#"{"method":"ping","method":"tools/call"}"#),
            Err(StrictError::DuplicateKey {
                key: "method".into(),
                path: String::new()
            })
        );
    }

    #[test]
    fn refuses_nested_duplicate_with_its_path() {
        let err =
            parse(br#"{"params":{"arguments":[{"x":1},{"a/b":{"k":1,"k":2}}]}}"#).unwrap_err();
        assert_eq!(
            err,
            StrictError::DuplicateKey {
                key: "k".into(),
                path: "/params/arguments/1/a~1b".into()
            }
        );
        assert_eq!(
            err.to_string(),
            r#"duplicate key "k" in the object at /params/arguments/1/a~1b"#
        );
    }

    #[test]
    fn duplicate_found_even_when_escaped_differently() {
        // "n\u0061me" is "name": the same key after unescaping.
        assert!(matches!(
            parse(br#"{"name":"a","n\u0061me":"b"}"#),
            Err(StrictError::DuplicateKey { .. })
        ));
    }

    #[test]
    fn same_key_in_sibling_objects_is_fine() {
        assert!(parse(br#"[{"a":1},{"a":2}]"#).is_ok());
        assert!(parse(br#"{"a":{"a":{"a":1}}}"#).is_ok());
    }

    #[test]
    fn refuses_trailing_data_and_multiple_values() {
        assert!(matches!(
            parse(br#"{"a":1} {"b":2}"#),
            Err(StrictError::Syntax(_))
        ));
        assert!(matches!(parse(br#"{"a":1}x"#), Err(StrictError::Syntax(_))));
    }

    #[test]
    fn refuses_non_utf8_with_offset() {
        assert_eq!(
            parse(b"{\"a\":\"\xff\"}"),
            Err(StrictError::NotUtf8 { offset: 6 })
        );
    }

    #[test]
    fn refuses_bom_lone_surrogates_and_garbage() {
        assert!(matches!(
            parse(b"\xEF\xBB\xBF{}"),
            Err(StrictError::Syntax(_))
        ));
        assert!(matches!(parse(br#""\ud800""#), Err(StrictError::Syntax(_))));
        assert!(matches!(parse(b""), Err(StrictError::Syntax(_))));
        assert!(matches!(parse(b"{'a':1}"), Err(StrictError::Syntax(_))));
        assert!(matches!(parse(b"{\"a\":1,}"), Err(StrictError::Syntax(_))));
        assert!(matches!(parse(b"NaN"), Err(StrictError::Syntax(_))));
    }

    #[test]
    fn refuses_absurd_nesting_without_overflowing() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(
            parse(deep.as_bytes()),
            Err(StrictError::Syntax(_))
        ));
    }
}
