//! Reads an execute body as JSON, keeping only what Piston's fields need:
//! the known top-level fields, and of each `files[]` object its `name`,
//! `content` and `encoding`. Anything else is skipped unread
//! ([`crate::known_fields`]).

use serde_json::{Map, Value};

use crate::known_fields::{self, Shape};

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

/// One `files[]` entry.
static FILE: Shape = Shape::Object {
    fields: &FILE_FIELDS,
    each: &Shape::Whole,
    special: &[],
};

/// `files`: a list of entries.
static FILES: Shape = Shape::List(&FILE);

/// The body: its known fields whole, `files` as [`FILES`].
static BODY: Shape = Shape::Object {
    fields: &FIELDS,
    each: &Shape::Whole,
    special: &[("files", &FILES)],
};

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
    match known_fields::read(body, &BODY) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(BodyError::NotObject),
        Err(e) => Err(BodyError::NotJson(e.to_string())),
    }
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
