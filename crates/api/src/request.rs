//! Reading a `POST /run-code` body into a run request, with the errors
//! FastAPI + pydantic v2 would give for the seed's model:
//!
//! ```python
//! class CodeRequest(BaseModel):
//!     language: Language          # enum: python, javascript, java, cpp, c
//!     code: str
//!     # added by this implementation:
//!     stdin: str | None = None
//!     args: list[str] | None = None           # <= 64, each <= 1024 chars, no NUL
//!     files: list[SourceFile] | None = None   # <= 32; plain, unreserved, distinct names
//!     time_limit_ms: int | None = None        # 1 ..= the server's limit
//!     memory_limit_mb: int | None = None      # 16 ..= the server's limit
//! ```
//!
//! Integers are strict (a JSON string is not a number), but a whole float
//! (`100.0`) is an integer, as in JSON Schema.
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

use code_runner_queue::{NameClash, SourceFile};

use crate::error::{ApiError, LocPart, ValidationIssue};
use crate::state::{ApiConfig, Languages};

/// A validated run request, language resolved to its canonical name.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RunRequest {
    pub(crate) language: String,
    pub(crate) code: String,
    pub(crate) stdin: String,
    pub(crate) args: Vec<String>,
    pub(crate) files: Vec<SourceFile>,
    pub(crate) time_limit_ms: Option<u64>,
    pub(crate) memory_limit_mb: Option<u64>,
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

/// Most command-line arguments a request may give.
pub const MAX_ARGS: usize = 64;
/// Longest single argument, in characters (as JSON Schema counts them).
pub const MAX_ARG_CHARS: usize = 1024;
/// Most extra source files a request may give.
pub const MAX_FILES: usize = 32;
/// What an extra file's name must look like: a plain file name of at most
/// 128 characters, no directories, not hidden (so never `.` or `..`).
pub const FILE_NAME_PATTERN: &str = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$";
/// The smallest memory limit a request may ask for, in MiB (the sandbox's floor).
pub const MIN_MEMORY_LIMIT_MB: u64 = 16;

/// Parses and validates a run request body.
pub(crate) fn parse_run_request(
    body: &[u8],
    languages: &Languages,
    config: &ApiConfig,
) -> Result<RunRequest, ApiError> {
    // serde's derived struct would also take the fields as an array
    // (`["python", "x"]`); the model only accepts an object.
    let fast = match body.iter().find(|byte| !byte.is_ascii_whitespace()) {
        Some(b'{') => serde_json::from_slice::<FastBody<'_>>(body).ok(),
        _ => None,
    };
    let request = match fast {
        Some(fast) => {
            let mut issues = Vec::new();
            let language = match languages.resolve(&fast.language) {
                Some(language) => Some(language.to_owned()),
                None => {
                    let input = Value::String(fast.language.into_owned());
                    issues.push(unknown_language(input, languages));
                    None
                }
            };
            let args = fast.args.unwrap_or_default();
            check_args(&args, &mut issues);
            let files: Vec<SourceFile> = fast
                .files
                .unwrap_or_default()
                .into_iter()
                .map(|f| SourceFile {
                    name: f.name,
                    content: f.content,
                })
                .collect();
            // (Only with files: reading Java's class costs a pass over the code.)
            let main_file = language
                .as_deref()
                .filter(|_| !files.is_empty())
                .and_then(|language| languages.main_file_name(language, &fast.code));
            check_files(&files, languages, main_file.as_deref(), &mut issues);
            let limits = [
                (fast.time_limit_ms, "time_limit_ms"),
                (fast.memory_limit_mb, "memory_limit_mb"),
            ];
            for (value, field) in limits {
                if let Some(value) = value {
                    check_range(field, value, Value::from(value), config, &mut issues);
                }
            }
            match language {
                Some(language) if issues.is_empty() => RunRequest {
                    language,
                    code: fast.code,
                    stdin: fast.stdin.unwrap_or_default(),
                    args,
                    files,
                    time_limit_ms: fast.time_limit_ms,
                    memory_limit_mb: fast.memory_limit_mb,
                },
                _ => return Err(ApiError::Validation(issues)),
            }
        }
        None => validate_slowly(body, languages, config)?,
    };
    // After validation, as FastAPI would only get here with a valid model.
    if request.code.len() > config.max_code_bytes {
        return Err(ApiError::CodeTooLarge {
            size: request.code.len(),
            limit: config.max_code_bytes,
        });
    }
    if !request.files.is_empty() {
        let total = request.files.iter().fold(request.code.len(), |sum, f| {
            sum.saturating_add(f.content.len())
        });
        if total > config.max_code_bytes {
            return Err(ApiError::SourcesTooLarge {
                size: total,
                limit: config.max_code_bytes,
            });
        }
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
    #[serde(default)]
    args: Option<Vec<String>>,
    #[serde(default)]
    files: Option<Vec<FastFile>>,
    #[serde(default)]
    time_limit_ms: Option<u64>,
    #[serde(default)]
    memory_limit_mb: Option<u64>,
}

#[derive(Deserialize)]
struct FastFile {
    name: String,
    content: String,
}

/// The authority on what a body means: reads it as generic JSON and reports
/// every problem at once, in field order, like pydantic.
fn validate_slowly(
    body: &[u8],
    languages: &Languages,
    config: &ApiConfig,
) -> Result<RunRequest, ApiError> {
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
    let args = match object.get("args") {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(value) => string_list("args", value, &mut issues),
    };
    if let Some(args) = &args {
        check_args(args, &mut issues);
    }
    let files = match object.get("files") {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(value) => file_list(value, &mut issues),
    };
    if let Some(files) = &files {
        let main_file = match (&language, &code) {
            (Some(language), Some(code)) if !files.is_empty() => {
                languages.main_file_name(language, code)
            }
            _ => None,
        };
        check_files(files, languages, main_file.as_deref(), &mut issues);
    }
    let time_limit_ms = integer_field("time_limit_ms", &object, config, &mut issues);
    let memory_limit_mb = integer_field("memory_limit_mb", &object, config, &mut issues);

    match (
        language,
        code,
        stdin,
        args,
        files,
        time_limit_ms,
        memory_limit_mb,
    ) {
        (
            Some(language),
            Some(code),
            Some(stdin),
            Some(args),
            Some(files),
            Some(time_limit_ms),
            Some(memory_limit_mb),
        ) if issues.is_empty() => Ok(RunRequest {
            language,
            code,
            stdin,
            args,
            files,
            time_limit_ms,
            memory_limit_mb,
        }),
        _ => Err(ApiError::Validation(issues)),
    }
}

/// A list of strings, or the issues saying why not.
fn string_list(
    field: &'static str,
    value: &Value,
    issues: &mut Vec<ValidationIssue>,
) -> Option<Vec<String>> {
    let Value::Array(items) = value else {
        issues.push(list_type(
            vec![LocPart::Key("body"), LocPart::Key(field)],
            value,
        ));
        return None;
    };
    let mut strings = Vec::with_capacity(items.len());
    let before = issues.len();
    for (index, item) in items.iter().enumerate() {
        match item {
            Value::String(text) => strings.push(text.clone()),
            other => issues.push(ValidationIssue {
                kind: "string_type",
                loc: vec![
                    LocPart::Key("body"),
                    LocPart::Key(field),
                    LocPart::Offset(index),
                ],
                msg: Cow::Borrowed("Input should be a valid string"),
                input: other.clone(),
                ctx: None,
            }),
        }
    }
    (issues.len() == before).then_some(strings)
}

/// The `files` list, or the issues saying why not.
fn file_list(value: &Value, issues: &mut Vec<ValidationIssue>) -> Option<Vec<SourceFile>> {
    let Value::Array(items) = value else {
        issues.push(list_type(
            vec![LocPart::Key("body"), LocPart::Key("files")],
            value,
        ));
        return None;
    };
    let mut files = Vec::with_capacity(items.len());
    let before = issues.len();
    for (index, item) in items.iter().enumerate() {
        let loc = |key: Option<&'static str>| {
            let mut loc = vec![
                LocPart::Key("body"),
                LocPart::Key("files"),
                LocPart::Offset(index),
            ];
            loc.extend(key.map(LocPart::Key));
            loc
        };
        let Value::Object(file) = item else {
            issues.push(ValidationIssue {
                kind: "model_type",
                loc: loc(None),
                msg: Cow::Borrowed(
                    "Input should be a valid dictionary or object with 'name' and 'content'",
                ),
                input: item.clone(),
                ctx: None,
            });
            continue;
        };
        let mut text = |key: &'static str| match file.get(key) {
            Some(Value::String(text)) => Some(text.clone()),
            None => {
                issues.push(ValidationIssue {
                    kind: "missing",
                    loc: loc(Some(key)),
                    msg: Cow::Borrowed("Field required"),
                    input: item.clone(),
                    ctx: None,
                });
                None
            }
            Some(other) => {
                issues.push(ValidationIssue {
                    kind: "string_type",
                    loc: loc(Some(key)),
                    msg: Cow::Borrowed("Input should be a valid string"),
                    input: other.clone(),
                    ctx: None,
                });
                None
            }
        };
        if let (Some(name), Some(content)) = (text("name"), text("content")) {
            files.push(SourceFile { name, content });
        }
    }
    (issues.len() == before).then_some(files)
}

/// An optional positive integer within the server's range: `Some(None)` when
/// absent or null, `None` after pushing an issue.
fn integer_field(
    field: &'static str,
    object: &Map<String, Value>,
    config: &ApiConfig,
    issues: &mut Vec<ValidationIssue>,
) -> Option<Option<u64>> {
    let loc = || vec![LocPart::Key("body"), LocPart::Key(field)];
    let value = match object.get(field) {
        None | Some(Value::Null) => return Some(None),
        Some(value) => value,
    };
    let Value::Number(number) = value else {
        issues.push(ValidationIssue {
            kind: "int_type",
            loc: loc(),
            msg: Cow::Borrowed("Input should be a valid integer"),
            input: value.clone(),
            ctx: None,
        });
        return None;
    };
    let integer = if let Some(n) = number.as_u64() {
        n
    } else if number.as_i64().is_some() {
        // Negative: below any range.
        0
    } else {
        match number.as_f64() {
            Some(f) if f.fract() == 0.0 => {
                // Whole floats are integers to pydantic (and JSON Schema);
                // out-of-range ones are caught by the range check.
                if f <= 0.0 {
                    0
                } else if f >= u64::MAX as f64 {
                    u64::MAX
                } else {
                    f as u64
                }
            }
            _ => {
                issues.push(ValidationIssue {
                    kind: "int_from_float",
                    loc: loc(),
                    msg: Cow::Borrowed(
                        "Input should be a valid integer, got a number with a fractional part",
                    ),
                    input: value.clone(),
                    ctx: None,
                });
                return None;
            }
        }
    };
    let before = issues.len();
    check_range(field, integer, value.clone(), config, issues);
    (issues.len() == before).then_some(Some(integer))
}

/// The range the server allows for a numeric field: `(min, max, unit)`.
pub(crate) fn allowed_range(field: &str, config: &ApiConfig) -> (u64, u64, &'static str) {
    match field {
        "time_limit_ms" => (1, config.max_time_limit_ms, "ms"),
        _ => (MIN_MEMORY_LIMIT_MB, config.max_memory_limit_mb, "MiB"),
    }
}

fn check_range(
    field: &'static str,
    value: u64,
    input: Value,
    config: &ApiConfig,
    issues: &mut Vec<ValidationIssue>,
) {
    let (min, max, unit) = allowed_range(field, config);
    let (kind, ctx) = if value < min {
        ("greater_than_equal", json!({ "ge": min }))
    } else if value > max {
        ("less_than_equal", json!({ "le": max }))
    } else {
        return;
    };
    issues.push(ValidationIssue {
        kind,
        loc: vec![LocPart::Key("body"), LocPart::Key(field)],
        msg: Cow::Owned(format!(
            "Input should be between {min} and {max} ({unit}), the range this server allows"
        )),
        input,
        ctx: Some(ctx),
    });
}

fn check_args(args: &[String], issues: &mut Vec<ValidationIssue>) {
    if args.len() > MAX_ARGS {
        issues.push(too_long("args", args.len(), MAX_ARGS));
        return;
    }
    for (index, arg) in args.iter().enumerate() {
        let loc = vec![
            LocPart::Key("body"),
            LocPart::Key("args"),
            LocPart::Offset(index),
        ];
        if arg.len() > MAX_ARG_CHARS && arg.chars().count() > MAX_ARG_CHARS {
            issues.push(ValidationIssue {
                kind: "string_too_long",
                loc,
                msg: Cow::Owned(format!(
                    "String should have at most {MAX_ARG_CHARS} characters"
                )),
                input: Value::String(arg.clone()),
                ctx: Some(json!({ "max_length": MAX_ARG_CHARS })),
            });
        } else if arg.contains('\0') {
            issues.push(ValidationIssue {
                kind: "value_error",
                loc,
                msg: Cow::Borrowed("Value error, an argument cannot contain a NUL character"),
                input: Value::String(arg.clone()),
                ctx: None,
            });
        }
    }
}

/// The files' names: each a plain name, none a name programs are saved
/// under, none the name this program is saved under (`main_file`, when the
/// language and code are known), none given twice. One issue per bad name,
/// in order; a repeat is reported at its second (and later) place.
fn check_files(
    files: &[SourceFile],
    languages: &Languages,
    main_file: Option<&str>,
    issues: &mut Vec<ValidationIssue>,
) {
    if files.len() > MAX_FILES {
        issues.push(too_long("files", files.len(), MAX_FILES));
        return;
    }
    let mut clashes = SourceFile::name_clashes(main_file, files)
        .into_iter()
        .peekable();
    for (index, file) in files.iter().enumerate() {
        let clash = clashes
            .next_if(|(at, _)| *at == index)
            .map(|(_, clash)| clash);
        let loc = vec![
            LocPart::Key("body"),
            LocPart::Key("files"),
            LocPart::Offset(index),
            LocPart::Key("name"),
        ];
        let input = Value::String(file.name.clone());
        if !is_valid_file_name(&file.name) {
            issues.push(ValidationIssue {
                kind: "string_pattern_mismatch",
                loc,
                msg: Cow::Owned(format!(
                    "String should match pattern '{FILE_NAME_PATTERN}': a plain file name, no directories"
                )),
                input,
                ctx: Some(json!({ "pattern": FILE_NAME_PATTERN })),
            });
        } else if clash == Some(NameClash::MainSource) {
            issues.push(ValidationIssue {
                kind: "value_error",
                loc,
                msg: Cow::Owned(format!(
                    "Value error, '{}' is the name this program's own source is saved under; give the extra file another name",
                    file.name
                )),
                input,
                ctx: None,
            });
        } else if languages.is_source_file_name(&file.name) {
            issues.push(ValidationIssue {
                kind: "value_error",
                loc,
                msg: Cow::Owned(format!(
                    "Value error, '{}' is reserved for programs' own source; give the extra file another name",
                    file.name
                )),
                input,
                ctx: None,
            });
        } else if let Some(NameClash::Repeated { first }) = clash {
            issues.push(ValidationIssue {
                kind: "value_error",
                loc,
                msg: Cow::Owned(format!(
                    "Value error, '{}' is given twice (files {first} and {index}); each extra file needs a name of its own",
                    file.name
                )),
                input,
                ctx: None,
            });
        }
    }
}

/// [`FILE_NAME_PATTERN`], checked without a regex engine.
fn is_valid_file_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let allowed = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    matches!(bytes.first(), Some(b) if b.is_ascii_alphanumeric() || *b == b'_')
        && bytes.len() <= 128
        && bytes.iter().all(allowed)
}

fn too_long(field: &'static str, actual: usize, max: usize) -> ValidationIssue {
    ValidationIssue {
        kind: "too_long",
        loc: vec![LocPart::Key("body"), LocPart::Key(field)],
        msg: Cow::Owned(format!(
            "List should have at most {max} items after validation, not {actual}"
        )),
        input: Value::Null,
        ctx: Some(json!({ "field_type": "List", "max_length": max, "actual_length": actual })),
    }
}

fn list_type(loc: Vec<LocPart>, value: &Value) -> ValidationIssue {
    ValidationIssue {
        kind: "list_type",
        loc,
        msg: Cow::Borrowed("Input should be a valid list"),
        input: value.clone(),
        ctx: None,
    }
}

/// The last value of query parameter `name`, percent-decoded.
fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .filter(|(key, _)| key == name)
        .last()
        .map(|(_, value)| value.into_owned())
}

/// `POST /run-code?wait=true|false` (absent: false).
pub(crate) fn wait_flag(query: Option<&str>) -> Result<bool, ApiError> {
    match query_param(query, "wait").as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ApiError::QueryValidation(vec![ValidationIssue {
            kind: "bool_parsing",
            loc: vec![LocPart::Key("query"), LocPart::Key("wait")],
            msg: Cow::Borrowed("Input should be a valid boolean, 'true' or 'false'"),
            input: Value::String(other.to_owned()),
            ctx: None,
        }])),
    }
}

/// `GET /results/{id}?wait=SECONDS`, 0 to `max` (absent: 0, no wait).
pub(crate) fn wait_seconds(query: Option<&str>, max: u64) -> Result<u64, ApiError> {
    let Some(text) = query_param(query, "wait") else {
        return Ok(0);
    };
    let issue = |kind, msg: String, ctx| {
        ApiError::QueryValidation(vec![ValidationIssue {
            kind,
            loc: vec![LocPart::Key("query"), LocPart::Key("wait")],
            msg: Cow::Owned(msg),
            input: Value::String(text.clone()),
            ctx,
        }])
    };
    let is_integer = {
        let digits = text.strip_prefix('-').unwrap_or(&text);
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
    };
    if !is_integer {
        return Err(issue(
            "int_parsing",
            "Input should be a valid integer, unable to parse string as an integer".to_owned(),
            None,
        ));
    }
    let range =
        format!("Input should be between 0 and {max} (seconds), the range this server allows");
    if text.starts_with('-') {
        return Err(issue("greater_than_equal", range, Some(json!({ "ge": 0 }))));
    }
    match text.parse::<u64>() {
        Ok(seconds) if seconds <= max => Ok(seconds),
        _ => Err(issue("less_than_equal", range, Some(json!({ "le": max })))),
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
                file_name: "main.py".into(),
            },
            SupportedLanguage {
                name: "c".into(),
                version: "gcc 12".into(),
                aliases: vec![],
                file_name: "main.c".into(),
            },
        ])
    }

    fn config() -> ApiConfig {
        ApiConfig {
            max_code_bytes: 100,
            max_time_limit_ms: 5_000,
            max_memory_limit_mb: 512,
            ..ApiConfig::default()
        }
    }

    fn issues(body: &str) -> Value {
        match parse_run_request(body.as_bytes(), &languages(), &config()) {
            Err(ApiError::Validation(issues)) => serde_json::to_value(issues).unwrap(),
            other => panic!("expected a validation error for {body:?}, got {other:?}"),
        }
    }

    #[test]
    fn fast_path_resolves_aliases_and_defaults_stdin() {
        let request = parse_run_request(
            br#"{"language":"py","code":"print(1)","x":[1]}"#,
            &languages(),
            &config(),
        )
        .unwrap();
        assert_eq!(
            request,
            RunRequest {
                language: "python".into(),
                code: "print(1)".into(),
                stdin: String::new(),
                args: Vec::new(),
                files: Vec::new(),
                time_limit_ms: None,
                memory_limit_mb: None,
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
            &config(),
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
