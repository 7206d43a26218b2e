//! Reading a `POST /run-code` body into a run request, with the errors
//! FastAPI + pydantic v2 would give for the seed's model:
//!
//! ```python
//! class CodeRequest(BaseModel):
//!     language: Language          # enum: python, javascript, java, cpp, c
//!     code: str
//!     stdin: str | None = None    # added by this implementation
//! ```
//!
//! Well-formed requests, nearly all of them, are parsed once, straight into
//! typed fields (borrowing `language` from the body). Only when that fails is
//! the body read again as a generic JSON value to say exactly what is wrong:
//! a bad request can afford a second pass, a good one should not pay for the
//! bookkeeping.
//!
//! Choices where the seed is silent:
//! - Empty `code` is accepted: it is a valid (empty) program in every
//!   language we run, and the seed's `code: str` accepts it too. The worker
//!   reports whatever the toolchain makes of it.
//! - `stdin` may be absent or `null` (no input) or a string; it shares the
//!   request-body limit with `code` rather than having its own.
//! - Unknown fields are ignored, as FastAPI does; if a field is repeated the
//!   last one wins, as Python's `json` module does.
//! - A `language` that is not a string gets the same `enum` error as an
//!   unknown name, as pydantic gives, so the answer lists the choices.
//! - Malformed JSON is located by byte offset (Python gives a character
//!   offset; they agree for ASCII bodies).

use std::borrow::Cow;

use axum::http::{header, HeaderMap};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::error::{ApiError, LocPart, ValidationIssue};
use crate::state::Languages;

/// A validated run request, language resolved to its canonical name.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RunRequest {
    pub(crate) language: String,
    pub(crate) code: String,
    pub(crate) stdin: String,
}

/// Refuses a body declared as something other than JSON.
///
/// A missing `Content-Type` is accepted: hand-written clients often leave it
/// out, and the body still has to parse as JSON. Note that `curl -d` without
/// `-H` *does* send one (`application/x-www-form-urlencoded`) and gets a `415`
/// that says how to fix the call.
pub(crate) fn ensure_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(header::CONTENT_TYPE) {
        None => Ok(()),
        Some(value) if value.to_str().is_ok_and(is_json_media_type) => Ok(()),
        Some(value) => Err(ApiError::UnsupportedMediaType {
            content_type: String::from_utf8_lossy(value.as_bytes()).into_owned(),
        }),
    }
}

/// `application/json` or any `application/*+json`, parameters allowed, as
/// FastAPI and axum's `Json` accept.
fn is_json_media_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    let subtype = subtype.as_bytes();
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case(b"json")
            || (subtype.len() > 5 && subtype[subtype.len() - 5..].eq_ignore_ascii_case(b"+json")))
}

/// Parses and validates a run request body.
pub(crate) fn parse_run_request(
    body: &[u8],
    languages: &Languages,
    max_code_bytes: usize,
) -> Result<RunRequest, ApiError> {
    // serde's derived struct would also take the fields as an array
    // (`["python", "x"]`); the model only accepts an object.
    let fast = match body.iter().find(|byte| !byte.is_ascii_whitespace()) {
        Some(b'{') => serde_json::from_slice::<FastBody<'_>>(body).ok(),
        _ => None,
    };
    let request = match fast {
        Some(fast) => match languages.resolve(&fast.language) {
            Some(language) => RunRequest {
                language: language.to_owned(),
                code: fast.code,
                stdin: fast.stdin.unwrap_or_default(),
            },
            None => {
                let input = Value::String(fast.language.into_owned());
                return Err(ApiError::Validation(vec![unknown_language(
                    input, languages,
                )]));
            }
        },
        None => validate_slowly(body, languages)?,
    };
    // After validation, as FastAPI would only get here with a valid model.
    if request.code.len() > max_code_bytes {
        return Err(ApiError::CodeTooLarge {
            size: request.code.len(),
            limit: max_code_bytes,
        });
    }
    Ok(request)
}

/// The happy path: exactly the fields we need, `language` borrowed from the
/// body when it has no escapes (it never does), unknown fields skipped.
#[derive(Deserialize)]
struct FastBody<'a> {
    #[serde(borrow)]
    language: Cow<'a, str>,
    code: String,
    #[serde(default)]
    stdin: Option<String>,
}

/// The authority on what a body means: reads it as generic JSON and reports
/// every problem at once, in field order, like pydantic.
fn validate_slowly(body: &[u8], languages: &Languages) -> Result<RunRequest, ApiError> {
    // FastAPI treats an absent body (and a JSON `null`) as a missing one.
    if body.is_empty() {
        return Err(invalid(missing_body()));
    }
    let object = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => object,
        Ok(Value::Null) => return Err(invalid(missing_body())),
        Ok(other) => {
            return Err(invalid(ValidationIssue {
                kind: "model_attributes_type",
                loc: vec![LocPart::Key("body")],
                msg: Cow::Borrowed(
                    "Input should be a valid dictionary or object to extract fields from",
                ),
                input: other,
                ctx: None,
            }))
        }
        Err(err) => return Err(invalid(json_invalid(body, &err))),
    };

    let mut issues = Vec::new();
    let language = match object.get("language") {
        None => {
            issues.push(missing("language", &object));
            None
        }
        Some(Value::String(name)) => match languages.resolve(name) {
            Some(language) => Some(language.to_owned()),
            None => {
                issues.push(unknown_language(Value::String(name.clone()), languages));
                None
            }
        },
        Some(other) => {
            issues.push(unknown_language(other.clone(), languages));
            None
        }
    };
    let code = match object.get("code") {
        None => {
            issues.push(missing("code", &object));
            None
        }
        Some(value) => string_field("code", value, &mut issues),
    };
    let stdin = match object.get("stdin") {
        None | Some(Value::Null) => Some(String::new()),
        Some(value) => string_field("stdin", value, &mut issues),
    };

    match (language, code, stdin) {
        (Some(language), Some(code), Some(stdin)) if issues.is_empty() => Ok(RunRequest {
            language,
            code,
            stdin,
        }),
        _ => Err(ApiError::Validation(issues)),
    }
}

fn invalid(issue: ValidationIssue) -> ApiError {
    ApiError::Validation(vec![issue])
}

fn missing_body() -> ValidationIssue {
    ValidationIssue {
        kind: "missing",
        loc: vec![LocPart::Key("body")],
        msg: Cow::Borrowed("Field required"),
        input: Value::Null,
        ctx: None,
    }
}

fn missing(field: &'static str, object: &Map<String, Value>) -> ValidationIssue {
    ValidationIssue {
        kind: "missing",
        loc: vec![LocPart::Key("body"), LocPart::Key(field)],
        msg: Cow::Borrowed("Field required"),
        input: Value::Object(object.clone()),
        ctx: None,
    }
}

fn string_field(
    field: &'static str,
    value: &Value,
    issues: &mut Vec<ValidationIssue>,
) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        other => {
            issues.push(ValidationIssue {
                kind: "string_type",
                loc: vec![LocPart::Key("body"), LocPart::Key(field)],
                msg: Cow::Borrowed("Input should be a valid string"),
                input: other.clone(),
                ctx: None,
            });
            None
        }
    }
}

fn unknown_language(input: Value, languages: &Languages) -> ValidationIssue {
    let expected = languages.expected();
    ValidationIssue {
        kind: "enum",
        loc: vec![LocPart::Key("body"), LocPart::Key("language")],
        msg: Cow::Owned(format!("Input should be {expected}")),
        input,
        ctx: Some(json!({ "expected": expected })),
    }
}

/// FastAPI's answer to a body that is not JSON: `input` is `{}` and `ctx`
/// carries the parser's own words.
fn json_invalid(body: &[u8], err: &serde_json::Error) -> ValidationIssue {
    let message = err.to_string();
    // serde_json appends " at line L column C"; the offset in `loc` says it.
    let reason = match message.rfind(" at line ") {
        Some(at) => &message[..at],
        None => &message,
    };
    ValidationIssue {
        kind: "json_invalid",
        loc: vec![
            LocPart::Key("body"),
            LocPart::Offset(byte_offset(body, err.line(), err.column(), err.is_eof())),
        ],
        msg: Cow::Borrowed("JSON decode error"),
        input: json!({}),
        ctx: Some(json!({ "error": reason })),
    }
}

/// Turns serde_json's position into a 0-based byte offset into `body`,
/// clamped to its length. Its line is 1-based; its column counts the bytes
/// of that line read so far, which includes the offending byte, except at
/// the end of input where there is none (hence `at_eof`).
fn byte_offset(body: &[u8], line: usize, column: usize, at_eof: bool) -> usize {
    let line_start = match line {
        0 | 1 => 0,
        line => body
            .iter()
            .enumerate()
            .filter(|&(_, &byte)| byte == b'\n')
            .nth(line - 2)
            .map_or(body.len(), |(newline, _)| newline + 1),
    };
    let column = if at_eof {
        column
    } else {
        column.saturating_sub(1)
    };
    (line_start + column).min(body.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::SupportedLanguage;

    fn languages() -> Languages {
        Languages::new(vec![
            SupportedLanguage {
                name: "python".into(),
                version: "3.11".into(),
                aliases: vec!["py".into()],
            },
            SupportedLanguage {
                name: "c".into(),
                version: "gcc 12".into(),
                aliases: vec![],
            },
        ])
    }

    fn issues(body: &str) -> Value {
        match parse_run_request(body.as_bytes(), &languages(), 100) {
            Err(ApiError::Validation(issues)) => serde_json::to_value(issues).unwrap(),
            other => panic!("expected a validation error for {body:?}, got {other:?}"),
        }
    }

    #[test]
    fn fast_path_resolves_aliases_and_defaults_stdin() {
        let request = parse_run_request(
            br#"{"language":"py","code":"print(1)","x":[1]}"#,
            &languages(),
            100,
        )
        .unwrap();
        assert_eq!(
            request,
            RunRequest {
                language: "python".into(),
                code: "print(1)".into(),
                stdin: String::new(),
            }
        );
    }

    #[test]
    fn fields_given_as_an_array_are_not_an_object() {
        let found = issues(r#" ["python", "print(1)"]"#);
        assert_eq!(found[0]["type"], "model_attributes_type");
    }

    #[test]
    fn duplicate_fields_take_the_last_value_like_python() {
        let request = parse_run_request(
            br#"{"language":"c","code":"a","code":"b","stdin":null}"#,
            &languages(),
            100,
        )
        .unwrap();
        assert_eq!(request.code, "b");
        assert_eq!(request.language, "c");
    }

    #[test]
    fn every_field_problem_is_reported_in_field_order() {
        assert_eq!(
            issues(r#"{"language":5,"stdin":[]}"#),
            json!([
                {"type": "enum", "loc": ["body", "language"],
                 "msg": "Input should be 'python' or 'c'", "input": 5,
                 "ctx": {"expected": "'python' or 'c'"}},
                {"type": "missing", "loc": ["body", "code"], "msg": "Field required",
                 "input": {"language": 5, "stdin": []}},
                {"type": "string_type", "loc": ["body", "stdin"],
                 "msg": "Input should be a valid string", "input": []},
            ])
        );
    }

    #[test]
    fn malformed_json_is_located_by_byte_offset_like_python() {
        // (body, the `pos` of Python's JSONDecodeError for it)
        for (body, python_pos) in [
            (r#"{"language": "#, 13),
            (r#"{"language": "python", "code": }"#, 31),
            ("{\n  x}", 4),
            (r#"{"a" 1}"#, 5),
            ("  ", 2),
            ("\n\n", 2),
            (r#"{"a":1"#, 6),
            (r#"{"a":1} x"#, 8),
            ("[1,]", 3),
        ] {
            let found = issues(body);
            assert_eq!(found[0]["type"], "json_invalid", "{body:?}");
            assert_eq!(found[0]["loc"], json!(["body", python_pos]), "{body:?}");
            assert_eq!(found[0]["input"], json!({}));
            let reason = found[0]["ctx"]["error"].as_str().unwrap();
            assert!(!reason.contains(" at line "), "{reason}");
        }
    }

    #[test]
    fn json_media_types() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/problem+json",
        ] {
            assert!(is_json_media_type(ok), "{ok}");
        }
        for bad in [
            "",
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/+json",
            "json",
        ] {
            assert!(!is_json_media_type(bad), "{bad}");
        }
    }
}
