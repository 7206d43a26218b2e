//! Reads an execute body as JSON, keeping only what Piston's fields need:
//! the known top-level fields, and of each `files[]` object its `name`,
//! `content` and `encoding`. Anything else is skipped unread (serde's
//! `IgnoredAny`), so a body padded with unknown fields costs no more memory
//! than its known parts; a whole `serde_json::Value` of it would take many
//! times its size.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The visitor methods of the scalar kinds, each giving a small `Value` of
/// that kind (only its kind matters to the checks).
macro_rules! scalars {
    () => {
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
            Ok(Value::from(v))
        }
        fn visit_str<E>(self, _: &str) -> Result<Value, E> {
            Ok(Value::String(String::new()))
        }
        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
    };
}

/// The top-level fields an execute body may have.
pub(crate) const FIELDS: [&str; 11] = [
    "language",
    "version",
    "files",
    "stdin",
    "args",
    "compile_timeout",
    "run_timeout",
    "compile_cpu_time",
    "run_cpu_time",
    "compile_memory_limit",
    "run_memory_limit",
];

/// The fields of a `files[]` entry.
const FILE_FIELDS: [&str; 3] = ["name", "content", "encoding"];

/// Why a body could not be read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Not JSON at all (the parser's words).
    NotJson(String),
    /// JSON, but not an object.
    NotObject,
}

/// The body's known fields.
pub(crate) fn read(body: &[u8]) -> Result<Map<String, Value>, BodyError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let fields = deserializer.deserialize_any(Top).map_err(|e| {
        if e.is_data() {
            BodyError::NotObject
        } else {
            BodyError::NotJson(e.to_string())
        }
    })?;
    deserializer
        .end()
        .map_err(|e| BodyError::NotJson(e.to_string()))?;
    Ok(fields)
}

/// The body: an object, of which the known fields are kept.
struct Top;

impl<'de> Visitor<'de> for Top {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut kept = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == "files" {
                kept.insert(key, map.next_value_seed(Files)?);
            } else if FIELDS.contains(&key.as_str()) {
                kept.insert(key, map.next_value::<Value>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(kept)
    }
}

/// `files`: a list whose objects keep their known fields. Anything else
/// is kept as a marker of its kind (the checks only say it is not a list).
struct Files;

impl<'de> DeserializeSeed<'de> for Files {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Files {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of files")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut files = Vec::new();
        while let Some(file) = seq.next_element_seed(File)? {
            files.push(file);
        }
        Ok(Value::Array(files))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Value::Object(Map::new()))
    }

    scalars!();
}

/// One `files[]` entry: an object keeps `name`, `content` and `encoding`.
struct File;

impl<'de> DeserializeSeed<'de> for File {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for File {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a file object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut kept = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if FILE_FIELDS.contains(&key.as_str()) {
                kept.insert(key, map.next_value::<Value>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Value::Object(kept))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Value::Array(Vec::new()))
    }

    scalars!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_skipped_at_both_levels() {
        let body = json!({
            "language": "py", "version": "*", "junk": [0, 1, {"a": "b"}],
            "files": [{"content": "print(1)", "name": "a.py", "extra": "x".repeat(1000)}, 7],
            "stdin": "s", "run_timeout": -1,
        });
        let kept = read(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            Value::Object(kept),
            json!({"language": "py", "version": "*", "stdin": "s", "run_timeout": -1,
                   "files": [{"content": "print(1)", "name": "a.py"}, 7]})
        );
    }

    #[test]
    fn not_json_and_not_an_object_are_told_apart() {
        assert!(matches!(
            read(b"{\"language\":"),
            Err(BodyError::NotJson(_))
        ));
        assert!(matches!(read(b"[1, 2]"), Err(BodyError::NotObject)));
        assert!(matches!(read(b"\"text\""), Err(BodyError::NotObject)));
        assert!(matches!(read(b"{} {}"), Err(BodyError::NotJson(_))));
        let kept = read(br#"{"files": {"content": "x"}}"#).unwrap();
        assert_eq!(kept["files"], json!({}));
        let kept = read(br#"{"files": "main.py"}"#).unwrap();
        assert!(kept["files"].is_string());
    }
}
