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
use std::fmt;
use std::marker::PhantomData;

use axum::http::{header, HeaderMap};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use code_runner_queue::{NameClash, SourceFile};

use crate::echo::{cut, echo_raw, echo_str};
use crate::error::{ApiError, LocPart, ValidationIssue};
use crate::state::{ApiConfig, Languages};

/// A validated run request, language resolved to its canonical name.
#[derive(Debug, PartialEq)]
pub(crate) struct RunRequest {
    pub(crate) language: String,
    pub(crate) code: String,
    pub(crate) stdin: String,
    pub(crate) args: Vec<String>,
    pub(crate) files: Vec<SourceFile>,
    pub(crate) time_limit_ms: Option<u64>,
    pub(crate) memory_limit_mb: Option<u64>,
    /// Judge mode's tests and checker (`judge`), when `tests` is given.
    pub(crate) judge: Option<code_runner_queue::judge::JudgeSpec>,
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
            // Echoed in the answer: a header can be 100 KB long.
            content_type: cut(&String::from_utf8_lossy(value.as_bytes()), 256).into_owned(),
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
                    issues.push(unknown_language(echo_str(&fast.language), languages));
                    None
                }
            };
            let args = fast.args.map(|args| args.0).unwrap_or_default();
            check_args(&args, &mut issues);
            let files: Vec<SourceFile> = fast
                .files
                .map(|files| files.0)
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
            let judge_fields = [
                fast.tests,
                fast.checker,
                fast.interactor,
                fast.stop_on_first_failure,
            ];
            let stdin = fast.stdin.unwrap_or_default();
            let defaults = crate::judge::Defaults {
                stdin: &stdin,
                args: &args,
            };
            let judge =
                crate::judge::parse(judge_fields, &defaults, languages, config, &mut issues);
            match (language, judge) {
                (Some(language), Some(judge)) if issues.is_empty() => RunRequest {
                    language,
                    code: fast.code,
                    stdin,
                    args,
                    files,
                    time_limit_ms: fast.time_limit_ms,
                    memory_limit_mb: fast.memory_limit_mb,
                    judge,
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
    args: Option<AtMost<String, MAX_ARGS>>,
    #[serde(default)]
    files: Option<AtMost<FastFile, MAX_FILES>>,
    #[serde(default)]
    time_limit_ms: Option<u64>,
    #[serde(default)]
    memory_limit_mb: Option<u64>,
    // Judge mode's fields, read by `judge`.
    #[serde(default, borrow)]
    tests: Option<&'a RawValue>,
    #[serde(default, borrow)]
    checker: Option<&'a RawValue>,
    #[serde(default, borrow)]
    interactor: Option<&'a RawValue>,
    #[serde(default, borrow)]
    stop_on_first_failure: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct FastFile {
    name: String,
    content: String,
}

/// A list of at most `N` items: a longer one fails the fast path at its
/// item `N + 1`, before a million of them are held, and the slow path says
/// how long it is.
struct AtMost<T, const N: usize>(Vec<T>);

impl<'de, T: Deserialize<'de>, const N: usize> Deserialize<'de> for AtMost<T, N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Items<T, const N: usize>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for Items<T, N> {
            type Value = AtMost<T, N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a list of at most {N} items")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(N));
                while let Some(item) = seq.next_element()? {
                    if items.len() == N {
                        return Err(serde::de::Error::invalid_length(N + 1, &self));
                    }
                    items.push(item);
                }
                Ok(AtMost(items))
            }
        }
        deserializer.deserialize_seq(Items(PhantomData))
    }
}

/// The authority on what a body means: reads it as JSON and reports every
/// problem at once, in field order, like pydantic.
///
/// The body is never turned into a tree of JSON values: the fields the model
/// knows are kept as raw text borrowed from the body (others are skipped),
/// lists are measured before their items are looked at, and every `input`
/// is a bounded echo. So a small body cannot make a large answer, nor take
/// much more memory than itself.
fn validate_slowly(
    body: &[u8],
    languages: &Languages,
    config: &ApiConfig,
) -> Result<RunRequest, ApiError> {
    // FastAPI treats an absent body (and a JSON `null`) as a missing one.
    if body.is_empty() {
        return Err(invalid(missing_body()));
    }
    let whole = match serde_json::from_slice::<&RawValue>(body) {
        Ok(raw) => raw,
        Err(err) => return Err(invalid(json_invalid(body, &err))),
    };
    let Some(fields) = pick(whole, BODY_FIELDS) else {
        if whole.get() == "null" {
            return Err(invalid(missing_body()));
        }
        return Err(invalid(ValidationIssue {
            kind: "model_attributes_type",
            loc: vec![LocPart::Key("body")],
            msg: Cow::Borrowed(
                "Input should be a valid dictionary or object to extract fields from",
            ),
            input: echo_raw(whole),
            ctx: None,
        }));
    };
    let [language_raw, code_raw, stdin, args, files, time_limit_ms, memory_limit_mb] = fields;
    // `null` is an absent value for the optional fields (and a wrongly
    // typed one for the required fields).
    let [stdin, args, files, time_limit_ms, memory_limit_mb] =
        [stdin, args, files, time_limit_ms, memory_limit_mb]
            .map(|raw| raw.filter(|raw| raw.get() != "null"));
    // The whole body, echoed once for however many fields are missing.
    let mut body_echo = None;
    let mut missing_field = |field: &'static str| ValidationIssue {
        kind: "missing",
        loc: vec![LocPart::Key("body"), LocPart::Key(field)],
        msg: Cow::Borrowed("Field required"),
        input: body_echo.get_or_insert_with(|| echo_raw(whole)).clone(),
        ctx: None,
    };

    let mut issues = Vec::new();
    let language = match language_raw {
        None => {
            issues.push(missing_field("language"));
            None
        }
        Some(raw) => match string_of(raw) {
            Some(name) => match languages.resolve(&name) {
                Some(language) => Some(language.to_owned()),
                None => {
                    issues.push(unknown_language(echo_str(&name), languages));
                    None
                }
            },
            None => {
                issues.push(unknown_language(echo_raw(raw), languages));
                None
            }
        },
    };
    let code = match code_raw {
        None => {
            issues.push(missing_field("code"));
            None
        }
        Some(raw) => string_field("code", raw, &mut issues),
    };
    let stdin = match stdin {
        None => Some(String::new()),
        Some(raw) => string_field("stdin", raw, &mut issues),
    };
    let args = match args {
        None => Some(Vec::new()),
        Some(raw) => string_list("args", raw, MAX_ARGS, &mut issues),
    };
    if let Some(args) = &args {
        check_args(args, &mut issues);
    }
    let files = match files {
        None => Some(Vec::new()),
        Some(raw) => file_list(raw, &mut issues),
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
    let time_limit_ms = integer_field("time_limit_ms", time_limit_ms, config, &mut issues);
    let memory_limit_mb = integer_field("memory_limit_mb", memory_limit_mb, config, &mut issues);
    let judge = match (&stdin, &args) {
        (Some(stdin), Some(args)) => {
            let judge_fields = pick(whole, crate::judge::JUDGE_FIELDS).unwrap_or_default();
            let defaults = crate::judge::Defaults { stdin, args };
            crate::judge::parse(judge_fields, &defaults, languages, config, &mut issues)
        }
        _ => None,
    };

    match (
        language,
        code,
        stdin,
        args,
        files,
        time_limit_ms,
        memory_limit_mb,
        judge,
    ) {
        (
            Some(language),
            Some(code),
            Some(stdin),
            Some(args),
            Some(files),
            Some(time_limit_ms),
            Some(memory_limit_mb),
            Some(judge),
        ) if issues.is_empty() => Ok(RunRequest {
            language,
            code,
            stdin,
            args,
            files,
            time_limit_ms,
            memory_limit_mb,
            judge,
        }),
        _ => Err(ApiError::Validation(issues)),
    }
}

/// The fields of the request model, in the order issues are reported.
const BODY_FIELDS: [&str; 7] = [
    "language",
    "code",
    "stdin",
    "args",
    "files",
    "time_limit_ms",
    "memory_limit_mb",
];

/// The raw values of the fields `names` of a JSON object (the last one when
/// a field is repeated, as Python's `json` keeps), or `None` when `raw` is
/// not an object. Other fields are skipped without being kept.
pub(crate) fn pick<'a, const N: usize>(
    raw: &'a RawValue,
    names: [&'static str; N],
) -> Option<[Option<&'a RawValue>; N]> {
    struct Fields<const N: usize>([&'static str; N]);
    impl<'de, const N: usize> Visitor<'de> for Fields<N> {
        type Value = [Option<&'de RawValue>; N];
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut found = [None; N];
            while let Some(index) = map.next_key_seed(FieldName(&self.0))? {
                match index {
                    Some(index) => found[index] = Some(map.next_value::<&RawValue>()?),
                    None => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(found)
        }
    }
    if !raw.get().starts_with('{') {
        return None;
    }
    let mut reader = serde_json::Deserializer::from_str(raw.get());
    reader.deserialize_map(Fields(names)).ok()
}

/// A key's index among the wanted names, read without copying it.
struct FieldName<'n>(&'n [&'static str]);

impl<'de> DeserializeSeed<'de> for FieldName<'_> {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for FieldName<'_> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().position(|name| *name == key))
    }
}

/// The items of a JSON list as raw values, if it has at most `max` of them;
/// `Err(None)` when it is not a list, `Err(Some(len))` when it is too long
/// (its items past `max` only counted).
pub(crate) fn raw_list(raw: &RawValue, max: usize) -> Result<Vec<&RawValue>, Option<usize>> {
    struct Items(usize);
    impl<'de> Visitor<'de> for Items {
        type Value = (Vec<&'de RawValue>, usize);
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut items = Vec::new();
            let mut len = 0usize;
            while len < self.0 {
                match seq.next_element::<&RawValue>()? {
                    Some(item) => items.push(item),
                    None => return Ok((items, len)),
                }
                len += 1;
            }
            while seq.next_element::<IgnoredAny>()?.is_some() {
                len += 1;
            }
            Ok((items, len))
        }
    }
    if !raw.get().starts_with('[') {
        return Err(None);
    }
    let mut reader = serde_json::Deserializer::from_str(raw.get());
    match reader.deserialize_seq(Items(max)) {
        Ok((items, len)) if len <= max => Ok(items),
        Ok((_, len)) => Err(Some(len)),
        Err(_) => Err(None),
    }
}

/// The string a raw value holds, if it is one.
fn string_of(raw: &RawValue) -> Option<String> {
    if !raw.get().starts_with('"') {
        return None;
    }
    serde_json::from_str(raw.get()).ok()
}

/// A list of at most `max` strings, or the issues saying why not: one
/// `too_long` for a longer list (its items unread), else one per item that
/// is not a string.
fn string_list(
    field: &'static str,
    raw: &RawValue,
    max: usize,
    issues: &mut Vec<ValidationIssue>,
) -> Option<Vec<String>> {
    let items = match raw_list(raw, max) {
        Ok(items) => items,
        Err(None) => {
            issues.push(list_type(
                vec![LocPart::Key("body"), LocPart::Key(field)],
                raw,
            ));
            return None;
        }
        Err(Some(len)) => {
            issues.push(too_long(field, len, max));
            return None;
        }
    };
    let mut strings = Vec::with_capacity(items.len());
    let before = issues.len();
    for (index, item) in items.into_iter().enumerate() {
        match string_of(item) {
            Some(text) => strings.push(text),
            None => issues.push(ValidationIssue {
                kind: "string_type",
                loc: vec![
                    LocPart::Key("body"),
                    LocPart::Key(field),
                    LocPart::Offset(index),
                ],
                msg: Cow::Borrowed("Input should be a valid string"),
                input: echo_raw(item),
                ctx: None,
            }),
        }
    }
    (issues.len() == before).then_some(strings)
}

/// The `files` list, or the issues saying why not (its length checked first,
/// as for `args`).
fn file_list(raw: &RawValue, issues: &mut Vec<ValidationIssue>) -> Option<Vec<SourceFile>> {
    let items = match raw_list(raw, MAX_FILES) {
        Ok(items) => items,
        Err(None) => {
            issues.push(list_type(
                vec![LocPart::Key("body"), LocPart::Key("files")],
                raw,
            ));
            return None;
        }
        Err(Some(len)) => {
            issues.push(too_long("files", len, MAX_FILES));
            return None;
        }
    };
    let mut files = Vec::with_capacity(items.len());
    let before = issues.len();
    for (index, item) in items.into_iter().enumerate() {
        let loc = |key: Option<&'static str>| {
            let mut loc = vec![
                LocPart::Key("body"),
                LocPart::Key("files"),
                LocPart::Offset(index),
            ];
            loc.extend(key.map(LocPart::Key));
            loc
        };
        let Some([name, content]) = pick(item, ["name", "content"]) else {
            issues.push(ValidationIssue {
                kind: "model_type",
                loc: loc(None),
                msg: Cow::Borrowed(
                    "Input should be a valid dictionary or object with 'name' and 'content'",
                ),
                input: echo_raw(item),
                ctx: None,
            });
            continue;
        };
        let mut text = |key: &'static str, raw: Option<&RawValue>| match raw {
            Some(raw) => match string_of(raw) {
                Some(text) => Some(text),
                None => {
                    issues.push(ValidationIssue {
                        kind: "string_type",
                        loc: loc(Some(key)),
                        msg: Cow::Borrowed("Input should be a valid string"),
                        input: echo_raw(raw),
                        ctx: None,
                    });
                    None
                }
            },
            None => {
                issues.push(ValidationIssue {
                    kind: "missing",
                    loc: loc(Some(key)),
                    msg: Cow::Borrowed("Field required"),
                    input: echo_raw(item),
                    ctx: None,
                });
                None
            }
        };
        if let (Some(name), Some(content)) = (text("name", name), text("content", content)) {
            files.push(SourceFile { name, content });
        }
    }
    (issues.len() == before).then_some(files)
}

/// An optional positive integer within the server's range: `Some(None)` when
/// absent or null, `None` after pushing an issue.
fn integer_field(
    field: &'static str,
    raw: Option<&RawValue>,
    config: &ApiConfig,
    issues: &mut Vec<ValidationIssue>,
) -> Option<Option<u64>> {
    let loc = || vec![LocPart::Key("body"), LocPart::Key(field)];
    let Some(raw) = raw else {
        return Some(None);
    };
    // Numbers come through exactly; anything else only as its echo.
    let value = &echo_raw(raw);
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

pub(crate) fn check_args(args: &[String], issues: &mut Vec<ValidationIssue>) {
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
                input: echo_str(arg),
                ctx: Some(json!({ "max_length": MAX_ARG_CHARS })),
            });
        } else if arg.contains('\0') {
            issues.push(ValidationIssue {
                kind: "value_error",
                loc,
                msg: Cow::Borrowed("Value error, an argument cannot contain a NUL character"),
                input: echo_str(arg),
                ctx: None,
            });
        }
    }
}

/// The files' names: each a plain name, none a name programs are saved
/// under, none the name this program is saved under (`main_file`, when the
/// language and code are known), none given twice. One issue per bad name,
/// in order; a repeat is reported at its second (and later) place.
pub(crate) fn check_files(
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
        let input = echo_str(&file.name);
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
pub(crate) fn is_valid_file_name(name: &str) -> bool {
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

fn list_type(loc: Vec<LocPart>, raw: &RawValue) -> ValidationIssue {
    ValidationIssue {
        kind: "list_type",
        loc,
        msg: Cow::Borrowed("Input should be a valid list"),
        input: echo_raw(raw),
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
    bool_flag(query, "wait")
}

/// A boolean query parameter (`?wait=true`, `?stream=true`); absent: false.
pub(crate) fn bool_flag(query: Option<&str>, name: &'static str) -> Result<bool, ApiError> {
    match query_param(query, name).as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ApiError::QueryValidation(vec![ValidationIssue {
            kind: "bool_parsing",
            loc: vec![LocPart::Key("query"), LocPart::Key(name)],
            msg: Cow::Borrowed("Input should be a valid boolean, 'true' or 'false'"),
            input: echo_str(other),
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
            input: echo_str(&text),
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

pub(crate) fn missing_body() -> ValidationIssue {
    ValidationIssue {
        kind: "missing",
        loc: vec![LocPart::Key("body")],
        msg: Cow::Borrowed("Field required"),
        input: Value::Null,
        ctx: None,
    }
}

fn string_field(
    field: &'static str,
    raw: &RawValue,
    issues: &mut Vec<ValidationIssue>,
) -> Option<String> {
    let text = string_of(raw);
    if text.is_none() {
        issues.push(ValidationIssue {
            kind: "string_type",
            loc: vec![LocPart::Key("body"), LocPart::Key(field)],
            msg: Cow::Borrowed("Input should be a valid string"),
            input: echo_raw(raw),
            ctx: None,
        });
    }
    text
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
pub(crate) fn json_invalid(body: &[u8], err: &serde_json::Error) -> ValidationIssue {
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
        ctx: Some(json!({ "error": cut(reason, 512) })),
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
                judge: None,
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

    /// The size of the `422` body the issues of `body` make.
    fn answer_bytes(body: &[u8]) -> usize {
        use axum::response::IntoResponse;
        let error = parse_run_request(body, &languages(), &config()).unwrap_err();
        let response = error.into_response();
        let (_, body) = response.into_parts();
        let bytes = futures_bytes(body);
        assert!(serde_json::from_slice::<Value>(&bytes).is_ok());
        bytes.len()
    }

    fn futures_bytes(body: axum::body::Body) -> Vec<u8> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(axum::body::to_bytes(body, usize::MAX))
            .unwrap()
            .to_vec()
    }

    #[test]
    fn long_lists_are_measured_before_their_items() {
        // (The issue's body had 1,081,314; the e2e test sends that one.)
        let many = format!("[{}0]", "0,".repeat(99_999));
        for field in ["args", "files"] {
            let body = format!(r#"{{"language":"python","code":"x","{field}":{many}}}"#);
            let found = issues(&body);
            assert_eq!(found.as_array().unwrap().len(), 1, "{field}");
            assert_eq!(found[0]["type"], "too_long");
            assert_eq!(found[0]["loc"], json!(["body", field]));
            assert_eq!(found[0]["ctx"]["actual_length"], 100_000);
            assert!(answer_bytes(body.as_bytes()) < 1024);
        }
        // Strings too: the fast path stops at the 65th.
        let strings = format!("[{}\"a\"]", "\"a\",".repeat(50_000));
        let found = issues(&format!(
            r#"{{"language":"python","code":"x","args":{strings}}}"#
        ));
        assert_eq!(found[0]["ctx"]["actual_length"], 50_001);
    }

    #[test]
    fn echoes_of_large_inputs_are_bounded() {
        let big = "x".repeat(300_000);
        for body in [
            // A missing field echoes the whole body.
            format!(r#"{{"code":"{big}"}}"#),
            format!(r#"{{"language":"{big}","code":5}}"#),
            format!(r#"{{"language":"python","code":"x","stdin":["{big}"]}}"#),
            format!(r#"{{"language":"python","code":"x","args":["{big}"]}}"#),
            format!(
                r#"{{"language":"python","code":"x","files":[{{"name":"{big}","content":""}}]}}"#
            ),
            format!(r#"{{"language":"python","code":"x","files":[{{"content":"{big}"}}]}}"#),
            format!(r#"{{"language":"python","code":"x","time_limit_ms":"{big}"}}"#),
            format!(r#"["{big}"]"#),
        ] {
            let size = answer_bytes(body.as_bytes());
            assert!(size < 8 * 1024, "{size} bytes for {}", &body[..40]);
        }
    }

    #[test]
    fn at_most_ten_issues_are_listed_and_the_rest_counted() {
        let body = format!(
            r#"{{"language":"python","code":"x","args":[{}1]}}"#,
            "1,".repeat(63)
        );
        let error = parse_run_request(body.as_bytes(), &languages(), &config()).unwrap_err();
        let response = axum::response::IntoResponse::into_response(error);
        let answer: Value = serde_json::from_slice(&futures_bytes(response.into_body())).unwrap();
        assert_eq!(answer["detail"].as_array().unwrap().len(), 10);
        assert_eq!(answer["issues_omitted"], 54);
        assert_eq!(answer["detail"][9]["loc"], json!(["body", "args", 9]));
    }

    #[test]
    fn a_body_that_is_not_utf8_is_json_invalid() {
        let error = parse_run_request(b"{\"code\":\"\xff\"}", &languages(), &config()).unwrap_err();
        let ApiError::Validation(issues) = error else {
            panic!("{error:?}");
        };
        assert_eq!(issues[0].kind, "json_invalid");
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
