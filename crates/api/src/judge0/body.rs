//! Reads a submission body (or a batch's) as JSON, keeping only what the
//! parser of [`super::request`] reads: the known fields, each a scalar
//! (a list or an object in a known field is kept as an empty marker of its
//! kind: the parser only says it is not a string, a number or a boolean).
//! Anything else is skipped unread ([`crate::known_fields`]).

use serde_json::Value;

use crate::known_fields::{self, Shape};

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

/// One submission: its known fields, each a scalar.
static SUBMISSION: Shape = Shape::Object {
    fields: &FIELDS,
    each: &Shape::Scalar,
    special: &[],
};

/// `submissions`: a list of submissions.
static SUBMISSIONS: Shape = Shape::List(&SUBMISSION);

/// A batch: `{"submissions": [...]}`.
static BATCH: Shape = Shape::Object {
    fields: &["submissions"],
    each: &SUBMISSIONS,
    special: &[],
};

/// A submission body: its known fields (a marker of its kind when the body
/// is not an object: the parser then says what is missing).
pub(crate) fn submission(body: &[u8]) -> Result<Value, serde_json::Error> {
    known_fields::read(body, &SUBMISSION)
}

/// A batch body: `{"submissions": [...]}` with each item's known fields;
/// `submissions` when not a list, and the body when not an object, are
/// kept as markers of their kind.
pub(crate) fn batch(body: &[u8]) -> Result<Value, serde_json::Error> {
    known_fields::read(body, &BATCH)
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
