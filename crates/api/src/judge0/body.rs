//! Reads a submission body (or a batch's) as JSON, keeping only what the
//! parser of [`super::request`] reads: the known fields, each a scalar
//! (a list or an object in a known field is kept as an empty marker of its
//! kind: the parser only says it is not a string, a number or a boolean).
//! Anything else is skipped unread (serde's `IgnoredAny`), so a body padded
//! with unknown fields costs no more memory than its known parts; a whole
//! `serde_json::Value` of it would take many times its size.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The fields of a submission that [`super::request::parse_submission`]
/// reads.
pub(crate) const FIELDS: [&str; 20] = [
    "source_code",
    "language_id",
    "stdin",
    "expected_output",
    "compiler_options",
    "command_line_arguments",
    "cpu_time_limit",
    "cpu_extra_time",
    "wall_time_limit",
    "memory_limit",
    "stack_limit",
    "max_processes_and_or_threads",
    "enable_per_process_and_thread_time_limit",
    "enable_per_process_and_thread_memory_limit",
    "max_file_size",
    "redirect_stderr_to_stdout",
    "enable_network",
    "number_of_runs",
    "additional_files",
    "callback_url",
];

/// A submission body: its known fields (an empty object when the body is
/// not an object: the parser then says what is missing).
pub(crate) fn submission(body: &[u8]) -> Result<Value, serde_json::Error> {
    read(body, Submission)
}

/// A batch body: `{"submissions": [...]}` with each item's known fields;
/// `submissions` when not a list, and the body when not an object, are
/// kept as markers of their kind.
pub(crate) fn batch(body: &[u8]) -> Result<Value, serde_json::Error> {
    read(body, Batch)
}

fn read<V: for<'de> Visitor<'de, Value = Value>>(
    body: &[u8],
    visitor: V,
) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = deserializer.deserialize_any(visitor)?;
    deserializer.end()?;
    Ok(value)
}

/// The visitor methods of the scalar kinds, each keeping its value, and of
/// lists and objects, skipped unread and kept as an empty marker of their
/// kind.
macro_rules! kinds {
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
        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_owned()))
        }
        fn visit_string<E>(self, v: String) -> Result<Value, E> {
            Ok(Value::String(v))
        }
        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_none<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
    };
}

fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Value, A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(Value::Array(Vec::new()))
}

fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Value, A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(Value::Object(Map::new()))
}

/// A known field's value: a scalar, or a marker of a list or an object.
struct Scalar;

impl<'de> DeserializeSeed<'de> for Scalar {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Scalar {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Value, A::Error> {
        skip_seq(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        skip_map(map)
    }

    kinds!();
}

/// One submission: an object keeps its known fields; anything else is
/// kept as a marker of its kind.
struct Submission;

impl<'de> DeserializeSeed<'de> for Submission {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Submission {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a submission")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut kept = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if FIELDS.contains(&key.as_str()) {
                kept.insert(key, map.next_value_seed(Scalar)?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Value::Object(kept))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Value, A::Error> {
        skip_seq(seq)
    }

    kinds!();
}

/// A batch: an object keeps `submissions`, a list of [`Submission`]s (or a
/// marker of its kind).
struct Batch;

impl<'de> Visitor<'de> for Batch {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a batch of submissions")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut kept = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == "submissions" {
                kept.insert(key, map.next_value_seed(Submissions)?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Value::Object(kept))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Value, A::Error> {
        skip_seq(seq)
    }

    kinds!();
}

/// `submissions`: a list of [`Submission`]s.
struct Submissions;

impl<'de> DeserializeSeed<'de> for Submissions {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Submissions {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of submissions")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Submission)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        skip_map(map)
    }

    kinds!();
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn unknown_fields_are_not_kept() {
        let body = json!({
            "source_code": "print(1)", "language_id": 71, "stdin": null,
            "pad": ["x".repeat(1000), {"a": [1, 2]}], "junk": "y".repeat(1000),
            "cpu_time_limit": "2.5", "additional_files": {"big": "z".repeat(1000)},
            "stack_limit": [1, 2, 3],
        });
        let kept = submission(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            kept,
            json!({"source_code": "print(1)", "language_id": 71, "stdin": null,
                   "cpu_time_limit": "2.5", "additional_files": {}, "stack_limit": []})
        );
        let body = json!({"pad": "x".repeat(1000), "submissions": [
            {"source_code": "a", "extra": [1, 2, 3]}, 7, "s", [1], {"language_id": "71"},
        ]});
        let kept = batch(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            kept,
            json!({"submissions": [{"source_code": "a"}, 7, "s", [], {"language_id": "71"}]})
        );
    }

    #[test]
    fn bodies_that_are_not_objects_are_markers_and_bad_json_errors() {
        assert_eq!(submission(b"[1, 2]").unwrap(), json!([]));
        assert_eq!(batch(b"[1, 2]").unwrap(), json!([]));
        assert_eq!(
            batch(br#"{"submissions": {"a": 1}}"#).unwrap(),
            json!({"submissions": {}})
        );
        assert_eq!(submission(b"\"x\"").unwrap(), json!("x"));
        assert!(submission(b"{not json").is_err());
        assert!(submission(b"{} {}").is_err());
        assert!(batch(b"{\"submissions\": [").is_err());
    }
}
