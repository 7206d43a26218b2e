//! Judge mode's request fields (SPEC §7), read and checked: `tests`,
//! `checker`, `interactor` and `stop_on_first_failure` on `POST /run-code`, with the
//! FastAPI-shaped `422` issues of the rest of the body (`request`).
//!
//! ```python
//! class Test(BaseModel, extra="forbid"):
//!     name: str | None = None              # <= 128 characters; default: its 1-based position
//!     stdin: str | None = None             # default: the request's stdin
//!     expected_output: str | None = None   # default: ""
//!     args: list[str] | None = None        # as the request's; default: the request's args
//!     time_limit_ms: int | None = None     # as the request's; default: the request's
//!     memory_limit_mb: int | None = None   # as the request's; default: the request's
//!
//! class CodeRequest(BaseModel):            # the fields judge mode adds
//!     tests: list[Test] | None = None      # 1 ..= --max-tests (1,000)
//!     checker: Checker = {"type": "lines"} # only with tests
//!     interactor: Interactor | None = None # only with tests, never with checker
//!     stop_on_first_failure: bool = False  # only with tests
//!
//! Checker = Exact | Lines | Tokens | Unordered   # {"type": ...} and nothing else
//!         | Float(abs: float >= 0 | None, rel: float >= 0 | None)
//!         | Custom(language: Language, code: str, files: list[CheckerFile] | None)
//!
//! class Interactor(BaseModel, extra="forbid"):
//!     language: Language
//!     code: str
//!     files: list[CheckerFile] | None = None
//! ```
//!
//! Decisions:
//! - Each test and each checker forbids unknown fields (`extra_forbidden`,
//!   the field named in the message: `loc` holds only fixed names), unlike
//!   the request itself, which ignores them as FastAPI does: a misspelt
//!   `expected_ouput` would otherwise judge every test against nothing.
//! - `tests: []` is refused (`too_short`): a judge job with no test would be
//!   accepted having checked nothing.
//! - `checker`, `interactor` or `stop_on_first_failure` without `tests` is
//!   refused (`value_error` at that field): it would silently do nothing.
//! - With an `interactor`, `checker` is refused (`value_error` at
//!   `checker`): the interactor's exit code is the verdict. Each test's
//!   `stdin` is the interactor's `input` file (the submission reads only
//!   what the interactor writes), and its `expected_output`, when given,
//!   the interactor's `answer` file (testlib's optional third argument).
//! - The request's `stdin`, `args`, `time_limit_ms` and `memory_limit_mb`
//!   are the defaults of each test that does not give its own.
//! - `float` may give `abs`, `rel`, both or neither (then numbers must be
//!   equal as numbers: `1e3` matches `1000`); each is a number `>= 0`.
//! - A custom checker's (or an interactor's) files follow the extra files'
//!   rules (`request`) and may not be named `input`, `output` or `answer`
//!   (the test files it is given) nor like its own source.
//! - Sizes: more than `--max-tests` tests is a `422` (`too_long`), checked
//!   before any test is read; tests whose stdin, expected output and
//!   arguments add up to more than `--max-test-bytes` is a `413`, as is a
//!   checker or an interactor whose code and files are over the code limit.

use std::borrow::Cow;
use std::fmt;

use code_runner_queue::judge::{CheckerSpec, HelperProgram, JudgeSpec, TestCase};
use code_runner_queue::SourceFile;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::echo::{echo_raw, echo_str};
use crate::error::{ApiError, LocPart, ValidationIssue};
use crate::request::{
    allowed_range, raw_list, FILE_NAME_PATTERN, MAX_ARGS, MAX_ARG_CHARS, MAX_FILES,
};
use crate::state::{ApiConfig, Languages};

/// The request fields judge mode adds, in the order issues are reported.
pub(crate) const JUDGE_FIELDS: [&str; 4] =
    ["tests", "checker", "interactor", "stop_on_first_failure"];
/// The fields of a test.
pub(crate) const TEST_FIELDS: [&str; 6] = [
    "name",
    "stdin",
    "expected_output",
    "args",
    "time_limit_ms",
    "memory_limit_mb",
];
/// The built-in checkers' names and `custom`, as `checker.type` takes them.
pub(crate) const CHECKER_TYPES: [&str; 6] =
    ["exact", "lines", "tokens", "float", "unordered", "custom"];
/// Names a custom checker's files may not take: the test files it is given.
pub(crate) const CHECKER_FILE_NAMES: [&str; 3] = ["input", "output", "answer"];
/// The longest test name, in characters.
pub(crate) const MAX_TEST_NAME_CHARS: usize = 128;

/// What a test takes from the request when it does not say.
pub(crate) struct Defaults<'a> {
    pub(crate) stdin: &'a str,
    pub(crate) args: &'a [String],
}

/// Reads the judge-mode fields (`raw`: `tests`, `checker`, `interactor`,
/// `stop_on_first_failure`, as [`JUDGE_FIELDS`], `null` meaning absent):
/// `Some(None)` for a plain run, `Some(Some(spec))` for a judged one, or
/// `None` after pushing the issues found.
pub(crate) fn parse(
    raw: [Option<&RawValue>; 4],
    defaults: &Defaults<'_>,
    languages: &Languages,
    config: &ApiConfig,
    issues: &mut Vec<ValidationIssue>,
) -> Option<Option<JudgeSpec>> {
    let [tests, checker, interactor, stop] = raw.map(|raw| raw.filter(|raw| raw.get() != "null"));
    let before = issues.len();
    let Some(tests_raw) = tests else {
        for (field, given) in [
            ("checker", checker),
            ("interactor", interactor),
            ("stop_on_first_failure", stop),
        ] {
            if let Some(raw) = given {
                issues.push(ValidationIssue {
                    kind: "value_error",
                    loc: vec![LocPart::Key("body"), LocPart::Key(field)],
                    msg: Cow::Owned(format!(
                        "Value error, '{field}' is a judge-mode field: it needs 'tests'"
                    )),
                    input: echo_raw(raw),
                    ctx: None,
                });
            }
        }
        return (issues.len() == before).then_some(None);
    };
    // A stored test set's id (`POST /testsets`): whether it exists is
    // checked at submit (`routes`), where the queue is at hand.
    let (tests, testset) = if tests_raw.get().starts_with('"') {
        match string_of(tests_raw).filter(|id| crate::testsets::is_id(id)) {
            Some(id) => (Some(Vec::new()), Some(id)),
            None => {
                issues.push(ValidationIssue {
                    kind: "value_error",
                    loc: loc(&[LocPart::Key("tests")]),
                    msg: Cow::Borrowed(
                        "Value error, 'tests' is a list of tests or a stored test set's id, \
                         'sha256:' and 64 lowercase hex digits",
                    ),
                    input: echo_raw(tests_raw),
                    ctx: None,
                });
                (None, None)
            }
        }
    } else {
        (test_list(tests_raw, defaults, config, issues), None)
    };
    let checker = match (checker, interactor) {
        (None, _) => Some(CheckerSpec::Lines),
        (Some(raw), Some(_)) => {
            issues.push(ValidationIssue {
                kind: "value_error",
                loc: loc(&[LocPart::Key("checker")]),
                msg: Cow::Borrowed(
                    "Value error, a job with an 'interactor' is judged by the interactor's exit code: leave out 'checker'",
                ),
                input: echo_raw(raw),
                ctx: None,
            });
            None
        }
        (Some(raw), None) => parse_checker(raw, languages, issues),
    };
    let interactor = match interactor {
        None => Some(None),
        Some(raw) => parse_interactor(raw, languages, issues).map(Some),
    };
    let stop_on_first_failure = match stop {
        None => Some(false),
        Some(raw) => match raw.get() {
            "true" => Some(true),
            "false" => Some(false),
            _ => {
                issues.push(ValidationIssue {
                    kind: "bool_type",
                    loc: vec![LocPart::Key("body"), LocPart::Key("stop_on_first_failure")],
                    msg: Cow::Borrowed("Input should be a valid boolean"),
                    input: echo_raw(raw),
                    ctx: None,
                });
                None
            }
        },
    };
    match (tests, checker, interactor, stop_on_first_failure) {
        (Some(tests), Some(checker), Some(interactor), Some(stop_on_first_failure))
            if issues.len() == before =>
        {
            Some(Some(JudgeSpec {
                tests,
                checker,
                interactor,
                stop_on_first_failure,
                testset,
            }))
        }
        _ => None,
    }
}

/// Refuses a valid judged request whose test data or checker is over its
/// size limit (`413`), before anything is queued.
pub(crate) fn check_sizes(spec: Option<&JudgeSpec>, config: &ApiConfig) -> Result<(), ApiError> {
    let Some(spec) = spec else {
        return Ok(());
    };
    let size = spec
        .tests
        .iter()
        .fold(0usize, |sum, test| sum.saturating_add(test.data_bytes()));
    if size > config.max_test_bytes {
        return Err(ApiError::JudgeTooLarge {
            what: "the tests' stdin, expected output and arguments",
            size,
            limit: config.max_test_bytes,
        });
    }
    let programs = [
        match &spec.checker {
            CheckerSpec::Custom { code, files, .. } => Some((code, files)),
            _ => None,
        }
        .map(|program| ("the checker's code and files", program)),
        spec.interactor
            .as_ref()
            .map(|i| ("the interactor's code and files", (&i.code, &i.files))),
    ];
    for (what, (code, files)) in programs.into_iter().flatten() {
        let size = files
            .iter()
            .fold(code.len(), |sum, f| sum.saturating_add(f.content.len()));
        if size > config.max_code_bytes {
            return Err(ApiError::JudgeTooLarge {
                what,
                size,
                limit: config.max_code_bytes,
            });
        }
    }
    Ok(())
}

fn loc(parts: &[LocPart]) -> Vec<LocPart> {
    let mut loc = vec![LocPart::Key("body")];
    loc.extend_from_slice(parts);
    loc
}

fn string_of(raw: &RawValue) -> Option<String> {
    if !raw.get().starts_with('"') {
        return None;
    }
    serde_json::from_str(raw.get()).ok()
}

fn string_type(loc: Vec<LocPart>, raw: &RawValue) -> ValidationIssue {
    ValidationIssue {
        kind: "string_type",
        loc,
        msg: Cow::Borrowed("Input should be a valid string"),
        input: echo_raw(raw),
        ctx: None,
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

fn too_long(loc: Vec<LocPart>, actual: usize, max: usize) -> ValidationIssue {
    ValidationIssue {
        kind: "too_long",
        loc,
        msg: Cow::Owned(format!(
            "List should have at most {max} items after validation, not {actual}"
        )),
        input: Value::Null,
        ctx: Some(json!({ "field_type": "List", "max_length": max, "actual_length": actual })),
    }
}

fn missing(loc: Vec<LocPart>, object: &RawValue) -> ValidationIssue {
    ValidationIssue {
        kind: "missing",
        loc,
        msg: Cow::Borrowed("Field required"),
        input: echo_raw(object),
        ctx: None,
    }
}

/// The entries of a JSON object, as raw values (the last of a repeated
/// key), or `None` when `raw` is not an object.
fn entries(raw: &RawValue) -> Option<Vec<(String, &RawValue)>> {
    struct Entries;
    impl<'de> Visitor<'de> for Entries {
        type Value = Vec<(String, &'de RawValue)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut found: Vec<(String, &'de RawValue)> = Vec::new();
            while let Some(key) = map.next_key::<String>()? {
                let value = map.next_value::<&RawValue>()?;
                found.retain(|(k, _)| *k != key);
                found.push((key, value));
            }
            Ok(found)
        }
    }
    if !raw.get().starts_with('{') {
        return None;
    }
    let mut reader = serde_json::Deserializer::from_str(raw.get());
    reader.deserialize_map(Entries).ok()
}

/// The values of `names` in an object's entries, and the first other key.
fn known<'a, const N: usize>(
    entries: &[(String, &'a RawValue)],
    names: [&'static str; N],
) -> ([Option<&'a RawValue>; N], Option<(String, &'a RawValue)>) {
    let mut found = [None; N];
    let mut extra = None;
    for (key, value) in entries {
        match names.iter().position(|name| name == key) {
            Some(index) => found[index] = Some(*value).filter(|v| v.get() != "null"),
            None => {
                if extra.is_none() {
                    extra = Some((key.clone(), *value));
                }
            }
        }
    }
    (found, extra)
}

fn extra_forbidden(
    loc: Vec<LocPart>,
    key: &str,
    value: &RawValue,
    allowed: &[&str],
) -> ValidationIssue {
    let key = crate::echo::cut(key, 64);
    ValidationIssue {
        kind: "extra_forbidden",
        loc,
        msg: Cow::Owned(format!(
            "Extra inputs are not permitted: unknown field '{key}' (allowed: {})",
            allowed.join(", ")
        )),
        input: echo_raw(value),
        ctx: Some(json!({ "field": key })),
    }
}

pub(crate) fn test_list(
    raw: &RawValue,
    defaults: &Defaults<'_>,
    config: &ApiConfig,
    issues: &mut Vec<ValidationIssue>,
) -> Option<Vec<TestCase>> {
    let field = [LocPart::Key("tests")];
    let items = match raw_list(raw, config.max_tests) {
        Ok(items) => items,
        Err(None) => {
            issues.push(list_type(loc(&field), raw));
            return None;
        }
        Err(Some(len)) => {
            issues.push(too_long(loc(&field), len, config.max_tests));
            return None;
        }
    };
    if items.is_empty() {
        issues.push(ValidationIssue {
            kind: "too_short",
            loc: loc(&field),
            msg: Cow::Borrowed("List should have at least 1 item after validation, not 0"),
            input: json!([]),
            ctx: Some(json!({ "field_type": "List", "min_length": 1, "actual_length": 0 })),
        });
        return None;
    }
    let before = issues.len();
    let mut tests = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        if let Some(test) = parse_test(index, item, defaults, config, issues) {
            tests.push(test);
        }
    }
    (issues.len() == before).then_some(tests)
}

fn parse_test(
    index: usize,
    raw: &RawValue,
    defaults: &Defaults<'_>,
    config: &ApiConfig,
    issues: &mut Vec<ValidationIssue>,
) -> Option<TestCase> {
    let at = |key: Option<&'static str>| {
        let mut parts = vec![LocPart::Key("tests"), LocPart::Offset(index)];
        parts.extend(key.map(LocPart::Key));
        loc(&parts)
    };
    let Some(entries) = entries(raw) else {
        issues.push(ValidationIssue {
            kind: "model_type",
            loc: at(None),
            msg: Cow::Borrowed("Input should be a valid dictionary or object"),
            input: echo_raw(raw),
            ctx: None,
        });
        return None;
    };
    let before = issues.len();
    let ([name, stdin, expected, args, time, memory], extra) = known(&entries, TEST_FIELDS);
    if let Some((key, value)) = extra {
        issues.push(extra_forbidden(at(None), &key, value, &TEST_FIELDS));
    }
    let mut text = |key: &'static str, raw: Option<&RawValue>| -> Option<Option<String>> {
        match raw {
            None => Some(None),
            Some(raw) => match string_of(raw) {
                Some(text) => Some(Some(text)),
                None => {
                    issues.push(string_type(at(Some(key)), raw));
                    None
                }
            },
        }
    };
    let name = text("name", name);
    let stdin = text("stdin", stdin);
    let expected = text("expected_output", expected);
    if let Some(Some(name)) = &name {
        if name.chars().count() > MAX_TEST_NAME_CHARS {
            issues.push(ValidationIssue {
                kind: "string_too_long",
                loc: at(Some("name")),
                msg: Cow::Owned(format!(
                    "String should have at most {MAX_TEST_NAME_CHARS} characters"
                )),
                input: echo_str(name),
                ctx: Some(json!({ "max_length": MAX_TEST_NAME_CHARS })),
            });
        }
    }
    let args = match args {
        None => Some(defaults.args.to_vec()),
        Some(raw) => arg_list(raw, &at(Some("args")), issues),
    };
    let time = time.and_then(|raw| {
        integer(
            raw,
            "time_limit_ms",
            at(Some("time_limit_ms")),
            config,
            issues,
        )
    });
    let memory = memory.and_then(|raw| {
        integer(
            raw,
            "memory_limit_mb",
            at(Some("memory_limit_mb")),
            config,
            issues,
        )
    });
    if issues.len() != before {
        return None;
    }
    Some(TestCase {
        name: name.flatten().unwrap_or_else(|| (index + 1).to_string()),
        stdin: stdin.flatten().unwrap_or_else(|| defaults.stdin.to_owned()),
        expected_output: expected.flatten().unwrap_or_default(),
        args: args.unwrap_or_default(),
        time_limit_ms: time,
        memory_limit_mb: memory,
    })
}

/// A test's `args`, with the request's rules for `args`.
fn arg_list(
    raw: &RawValue,
    at: &[LocPart],
    issues: &mut Vec<ValidationIssue>,
) -> Option<Vec<String>> {
    let items = match raw_list(raw, MAX_ARGS) {
        Ok(items) => items,
        Err(None) => {
            issues.push(list_type(at.to_vec(), raw));
            return None;
        }
        Err(Some(len)) => {
            issues.push(too_long(at.to_vec(), len, MAX_ARGS));
            return None;
        }
    };
    let before = issues.len();
    let mut args = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let mut here = at.to_vec();
        here.push(LocPart::Offset(index));
        let Some(arg) = string_of(item) else {
            issues.push(string_type(here, item));
            continue;
        };
        if arg.len() > MAX_ARG_CHARS && arg.chars().count() > MAX_ARG_CHARS {
            issues.push(ValidationIssue {
                kind: "string_too_long",
                loc: here,
                msg: Cow::Owned(format!(
                    "String should have at most {MAX_ARG_CHARS} characters"
                )),
                input: echo_str(&arg),
                ctx: Some(json!({ "max_length": MAX_ARG_CHARS })),
            });
        } else if arg.contains('\0') {
            issues.push(ValidationIssue {
                kind: "value_error",
                loc: here,
                msg: Cow::Borrowed("Value error, an argument cannot contain a NUL character"),
                input: echo_str(&arg),
                ctx: None,
            });
        } else {
            args.push(arg);
        }
    }
    (issues.len() == before).then_some(args)
}

/// An integer within the server's range for `field` (as the request's own
/// `time_limit_ms` and `memory_limit_mb`).
fn integer(
    raw: &RawValue,
    field: &str,
    at: Vec<LocPart>,
    config: &ApiConfig,
    issues: &mut Vec<ValidationIssue>,
) -> Option<u64> {
    let value = echo_raw(raw);
    let Value::Number(number) = &value else {
        issues.push(ValidationIssue {
            kind: "int_type",
            loc: at,
            msg: Cow::Borrowed("Input should be a valid integer"),
            input: value,
            ctx: None,
        });
        return None;
    };
    let integer = match (number.as_u64(), number.as_i64(), number.as_f64()) {
        (Some(n), ..) => n,
        (None, Some(_), _) => 0,
        (None, None, Some(f)) if f.fract() == 0.0 => {
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
                loc: at,
                msg: Cow::Borrowed(
                    "Input should be a valid integer, got a number with a fractional part",
                ),
                input: value,
                ctx: None,
            });
            return None;
        }
    };
    let (min, max, unit) = allowed_range(field, config);
    let (kind, ctx) = if integer < min {
        ("greater_than_equal", json!({ "ge": min }))
    } else if integer > max {
        ("less_than_equal", json!({ "le": max }))
    } else {
        return Some(integer);
    };
    issues.push(ValidationIssue {
        kind,
        loc: at,
        msg: Cow::Owned(format!(
            "Input should be between {min} and {max} ({unit}), the range this server allows"
        )),
        input: value,
        ctx: Some(ctx),
    });
    None
}

fn parse_checker(
    raw: &RawValue,
    languages: &Languages,
    issues: &mut Vec<ValidationIssue>,
) -> Option<CheckerSpec> {
    let at = |key: Option<&'static str>| {
        let mut parts = vec![LocPart::Key("checker")];
        parts.extend(key.map(LocPart::Key));
        loc(&parts)
    };
    let Some(entries) = entries(raw) else {
        issues.push(ValidationIssue {
            kind: "model_attributes_type",
            loc: at(None),
            msg: Cow::Borrowed(
                "Input should be a valid dictionary or object to extract fields from",
            ),
            input: echo_raw(raw),
            ctx: None,
        });
        return None;
    };
    let ([kind], _) = known(&entries, ["type"]);
    let Some(kind_raw) = kind else {
        issues.push(ValidationIssue {
            kind: "union_tag_not_found",
            loc: at(None),
            msg: Cow::Borrowed("Unable to extract tag using discriminator 'type'"),
            input: echo_raw(raw),
            ctx: Some(json!({ "discriminator": "'type'" })),
        });
        return None;
    };
    let expected_tags = "'exact', 'lines', 'tokens', 'float', 'unordered', 'custom'";
    let kind = match string_of(kind_raw) {
        Some(kind) if CHECKER_TYPES.contains(&kind.as_str()) => kind,
        _ => {
            let tag = string_of(kind_raw).unwrap_or_else(|| kind_raw.get().to_owned());
            let tag = crate::echo::cut(&tag, 64).into_owned();
            issues.push(ValidationIssue {
                kind: "union_tag_invalid",
                loc: at(None),
                msg: Cow::Owned(format!(
                    "Input tag '{tag}' found using 'type' does not match any of the expected tags: {expected_tags}"
                )),
                input: echo_raw(raw),
                ctx: Some(json!({ "discriminator": "'type'", "tag": tag, "expected_tags": expected_tags })),
            });
            return None;
        }
    };
    let before = issues.len();
    let fields: &[&'static str] = match kind.as_str() {
        "float" => &["type", "abs", "rel"],
        "custom" => &["type", "language", "code", "files"],
        _ => &["type"],
    };
    if let Some((key, value)) = entries
        .iter()
        .find(|(key, _)| !fields.contains(&key.as_str()))
    {
        issues.push(extra_forbidden(at(None), key, value, fields));
    }
    let spec = match kind.as_str() {
        "exact" => CheckerSpec::Exact,
        "lines" => CheckerSpec::Lines,
        "tokens" => CheckerSpec::Tokens,
        "unordered" => CheckerSpec::Unordered,
        "float" => {
            let ([abs, rel], _) = known(&entries, ["abs", "rel"]);
            let mut tolerance = |key: &'static str, raw: Option<&RawValue>| {
                let raw = raw?;
                let value = echo_raw(raw);
                match value.as_f64() {
                    Some(number) if number >= 0.0 && number.is_finite() => Some(number),
                    Some(_) => {
                        issues.push(ValidationIssue {
                            kind: "greater_than_equal",
                            loc: at(Some(key)),
                            msg: Cow::Borrowed("Input should be greater than or equal to 0"),
                            input: value,
                            ctx: Some(json!({ "ge": 0 })),
                        });
                        None
                    }
                    None => {
                        issues.push(ValidationIssue {
                            kind: "float_type",
                            loc: at(Some(key)),
                            msg: Cow::Borrowed("Input should be a valid number"),
                            input: value,
                            ctx: None,
                        });
                        None
                    }
                }
            };
            let abs = tolerance("abs", abs);
            let rel = tolerance("rel", rel);
            CheckerSpec::Float { abs, rel }
        }
        _ => {
            let (language, code, files) =
                parse_program("checker", &entries, raw, languages, issues)?;
            CheckerSpec::Custom {
                language,
                code,
                files,
            }
        }
    };
    (issues.len() == before).then_some(spec)
}

/// An interactor: `{language, code, files?}` and nothing else.
fn parse_interactor(
    raw: &RawValue,
    languages: &Languages,
    issues: &mut Vec<ValidationIssue>,
) -> Option<HelperProgram> {
    let Some(entries) = entries(raw) else {
        issues.push(ValidationIssue {
            kind: "model_attributes_type",
            loc: loc(&[LocPart::Key("interactor")]),
            msg: Cow::Borrowed(
                "Input should be a valid dictionary or object to extract fields from",
            ),
            input: echo_raw(raw),
            ctx: None,
        });
        return None;
    };
    let fields = ["language", "code", "files"];
    let before = issues.len();
    if let Some((key, value)) = entries
        .iter()
        .find(|(key, _)| !fields.contains(&key.as_str()))
    {
        issues.push(extra_forbidden(
            loc(&[LocPart::Key("interactor")]),
            key,
            value,
            &fields,
        ));
    }
    let (language, code, files) = parse_program("interactor", &entries, raw, languages, issues)?;
    (issues.len() == before).then_some(HelperProgram {
        language,
        code,
        files,
    })
}

/// The `language`, `code` and `files` of the judge's own program at
/// `field` (`checker` or `interactor`).
fn parse_program(
    field: &'static str,
    entries: &[(String, &RawValue)],
    raw: &RawValue,
    languages: &Languages,
    issues: &mut Vec<ValidationIssue>,
) -> Option<(String, String, Vec<SourceFile>)> {
    let at = |key: Option<&'static str>| {
        let mut parts = vec![LocPart::Key(field)];
        parts.extend(key.map(LocPart::Key));
        loc(&parts)
    };
    {
        {
            let ([language, code, files], _) = known(entries, ["language", "code", "files"]);
            let language = match language {
                None => {
                    issues.push(missing(at(Some("language")), raw));
                    None
                }
                Some(raw) => match string_of(raw).as_deref().and_then(|n| languages.resolve(n)) {
                    Some(language) => Some(language.to_owned()),
                    None => {
                        let expected = languages.expected();
                        issues.push(ValidationIssue {
                            kind: "enum",
                            loc: at(Some("language")),
                            msg: Cow::Owned(format!("Input should be {expected}")),
                            input: echo_raw(raw),
                            ctx: Some(json!({ "expected": expected })),
                        });
                        None
                    }
                },
            };
            let code = match code {
                None => {
                    issues.push(missing(at(Some("code")), raw));
                    None
                }
                Some(raw) => {
                    let code = string_of(raw);
                    if code.is_none() {
                        issues.push(string_type(at(Some("code")), raw));
                    }
                    code
                }
            };
            let files = match files {
                None => Some(Vec::new()),
                Some(files) => checker_files(field, files, issues),
            };
            if let (Some(files), Some(language), Some(code)) = (&files, &language, &code) {
                check_checker_file_names(field, files, languages, language, code, issues);
            }
            match (language, code, files) {
                (Some(language), Some(code), Some(files)) => Some((language, code, files)),
                _ => None,
            }
        }
    }
}

/// A custom checker's (or interactor's: `owner`) `files`: at most
/// [`MAX_FILES`] `{name, content}`.
fn checker_files(
    owner: &'static str,
    raw: &RawValue,
    issues: &mut Vec<ValidationIssue>,
) -> Option<Vec<SourceFile>> {
    let field = [LocPart::Key(owner), LocPart::Key("files")];
    let items = match raw_list(raw, MAX_FILES) {
        Ok(items) => items,
        Err(None) => {
            issues.push(list_type(loc(&field), raw));
            return None;
        }
        Err(Some(len)) => {
            issues.push(too_long(loc(&field), len, MAX_FILES));
            return None;
        }
    };
    let before = issues.len();
    let mut files = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let at = |key: Option<&'static str>| {
            let mut parts = field.to_vec();
            parts.push(LocPart::Offset(index));
            parts.extend(key.map(LocPart::Key));
            loc(&parts)
        };
        let Some(entries) = entries(item) else {
            issues.push(ValidationIssue {
                kind: "model_type",
                loc: at(None),
                msg: Cow::Borrowed(
                    "Input should be a valid dictionary or object with 'name' and 'content'",
                ),
                input: echo_raw(item),
                ctx: None,
            });
            continue;
        };
        let ([name, content], _) = known(&entries, ["name", "content"]);
        let mut text = |key: &'static str, raw: Option<&RawValue>| match raw {
            None => {
                issues.push(missing(at(Some(key)), item));
                None
            }
            Some(raw) => {
                let text = string_of(raw);
                if text.is_none() {
                    issues.push(string_type(at(Some(key)), raw));
                }
                text
            }
        };
        if let (Some(name), Some(content)) = (text("name", name), text("content", content)) {
            files.push(SourceFile { name, content });
        }
    }
    (issues.len() == before).then_some(files)
}

/// A custom checker's file names: plain, not a name programs are saved
/// under, not `input`/`output`/`answer`, not the checker's own source's,
/// none twice.
fn check_checker_file_names(
    owner: &'static str,
    files: &[SourceFile],
    languages: &Languages,
    language: &str,
    code: &str,
    issues: &mut Vec<ValidationIssue>,
) {
    let main_file = languages.main_file_name(language, code);
    let clashes = SourceFile::name_clashes(main_file.as_deref(), files);
    for (index, file) in files.iter().enumerate() {
        let at = loc(&[
            LocPart::Key(owner),
            LocPart::Key("files"),
            LocPart::Offset(index),
            LocPart::Key("name"),
        ]);
        let clash = clashes.iter().find(|(at, _)| *at == index).map(|(_, c)| *c);
        let msg = if !crate::request::is_valid_file_name(&file.name) {
            issues.push(ValidationIssue {
                kind: "string_pattern_mismatch",
                loc: at,
                msg: Cow::Owned(format!(
                    "String should match pattern '{FILE_NAME_PATTERN}': a plain file name, no directories"
                )),
                input: echo_str(&file.name),
                ctx: Some(json!({ "pattern": FILE_NAME_PATTERN })),
            });
            continue;
        } else if CHECKER_FILE_NAMES.contains(&file.name.as_str()) {
            format!(
                "Value error, '{}' is the name of a file the {owner} is given (input, output, answer); give the {owner}'s file another name",
                file.name
            )
        } else if languages.is_source_file_name(&file.name) {
            format!(
                "Value error, '{}' is reserved for programs' own source; give the {owner}'s file another name",
                file.name
            )
        } else {
            match clash {
                Some(code_runner_queue::NameClash::MainSource) => format!(
                    "Value error, '{}' is the name the {owner}'s own source is saved under; give the file another name",
                    file.name
                ),
                Some(code_runner_queue::NameClash::Repeated { first }) => format!(
                    "Value error, '{}' is given twice (files {first} and {index}); each file needs a name of its own",
                    file.name
                ),
                None => continue,
            }
        };
        issues.push(ValidationIssue {
            kind: "value_error",
            loc: at,
            msg: Cow::Owned(msg),
            input: echo_str(&file.name),
            ctx: None,
        });
    }
}

/// The `Interactor` schema.
fn schemas_interactor(doc: &mut Value, names: &[&str]) {
    doc["components"]["schemas"]["Interactor"] = json!({
        "type": "object",
        "description": "An interactive problem's interactor (Judge mode, see docs/judge.md).",
        "additionalProperties": false,
        "required": ["language", "code"],
        "properties": {
            "language": {"type": "string", "enum": names},
            "code": {"type": "string"},
            "files": {"type": ["array", "null"], "maxItems": MAX_FILES,
                      "items": {"$ref": "#/components/schemas/CheckerFile"}},
        },
    });
}

/// Adds judge mode to the OpenAPI document (`openapi::document`): the
/// request's `tests`, `checker` and `stop_on_first_failure`, the answer's
/// `tests` and `summary`, the judge verdicts, and a `judge` tag on
/// `POST /run-code` and `GET /results/{task_id}`.
pub(crate) fn document(doc: &mut Value, config: &ApiConfig, languages: &Languages) {
    const NOTE: &str = "Judge mode (see docs/judge.md).";
    let names: Vec<&str> = languages
        .all()
        .iter()
        .flat_map(|l| std::iter::once(l.name.as_str()).chain(l.aliases.iter().map(String::as_str)))
        .collect();
    let mut reserved: Vec<&str> = languages.source_file_names();
    reserved.extend(CHECKER_FILE_NAMES);
    let schemas = &mut doc["components"]["schemas"];
    let limit = |field: &str| {
        let (min, max, _) = allowed_range(field, config);
        json!({"type": ["integer", "null"], "minimum": min, "maximum": max})
    };
    schemas["Test"] = json!({
        "type": "object",
        "description": format!("{NOTE} One test: the program's input and the output it should print. Absent fields take the request's values (`stdin`, `args`, `time_limit_ms`, `memory_limit_mb`); `expected_output` defaults to empty."),
        "additionalProperties": false,
        "properties": {
            "name": {"type": ["string", "null"], "maxLength": MAX_TEST_NAME_CHARS, "description": "How results name the test; default: its 1-based position."},
            "stdin": {"type": ["string", "null"]},
            "expected_output": {"type": ["string", "null"]},
            "args": {"type": ["array", "null"], "maxItems": MAX_ARGS,
                     "items": {"type": "string", "maxLength": MAX_ARG_CHARS, "pattern": "^[^\\u0000]*$"}},
            "time_limit_ms": limit("time_limit_ms"),
            "memory_limit_mb": limit("memory_limit_mb"),
        },
    });
    let simple = |kind: &str, what: &str| {
        json!({
            "type": "object",
            "description": what,
            "additionalProperties": false,
            "required": ["type"],
            "properties": {"type": {"type": "string", "const": kind}},
        })
    };
    schemas["Checker"] = json!({
        "description": format!("{NOTE} How each test's output is judged (default `{{\"type\": \"lines\"}}`)."),
        "oneOf": [
            simple("exact", "Bytes equal."),
            simple("lines", "Equal line by line after removing `\\r` before `\\n`, spaces and tabs at line ends, and empty lines at the end."),
            simple("tokens", "Equal sequences of whitespace-separated tokens."),
            simple("unordered", "The same multiset of lines (normalised as `lines`), in any order."),
            {
                "type": "object",
                "description": "Tokens; two numeric tokens match within `abs` or `rel` times the expected value's magnitude (neither: equal as numbers); other tokens exactly.",
                "additionalProperties": false,
                "required": ["type"],
                "properties": {
                    "type": {"type": "string", "const": "float"},
                    "abs": {"type": ["number", "null"], "minimum": 0},
                    "rel": {"type": ["number", "null"], "minimum": 0},
                },
            },
            {
                "type": "object",
                "description": "A checker program, compiled once per job, run after each test as `checker input output answer` (its working directory holds those three files). Exit 0 accepted, 1 wrong answer, 2 presentation error, anything else judge_error; its stderr is the test's `checker_message`.",
                "additionalProperties": false,
                "required": ["type", "language", "code"],
                "properties": {
                    "type": {"type": "string", "const": "custom"},
                    "language": {"type": "string", "enum": names},
                    "code": {"type": "string"},
                    "files": {"type": ["array", "null"], "maxItems": MAX_FILES,
                              "items": {"$ref": "#/components/schemas/CheckerFile"}},
                },
            },
        ],
    });
    schemas["CheckerFile"] = json!({
        "type": "object",
        "description": "An extra source file of a custom checker: the rules of an extra file, and not `input`, `output` or `answer`.",
        "required": ["name", "content"],
        "properties": {
            "name": {"type": "string", "pattern": FILE_NAME_PATTERN, "not": {"enum": reserved}},
            "content": {"type": "string"},
        },
    });
    let verdicts = [
        "accepted",
        "wrong_answer",
        "presentation_error",
        "time_limit",
        "memory_limit",
        "runtime_error",
        "output_limit",
        "judge_error",
        "skipped",
    ];
    schemas["TestResult"] = json!({
        "type": "object",
        "description": format!("{NOTE} What happened on one test."),
        "required": ["name", "verdict", "time_ms", "cpu_time_ms", "memory_peak_kib", "exit_code",
                     "signal", "stdout", "stdout_truncated", "stderr", "stderr_truncated", "checker_message"],
        "properties": {
            "name": {"type": "string"},
            "verdict": {"type": "string", "enum": verdicts},
            "time_ms": {"type": "integer", "minimum": 0, "description": "Wall time of the run."},
            "cpu_time_ms": {"type": "integer", "minimum": 0},
            "memory_peak_kib": {"type": ["integer", "null"], "minimum": 0, "description": "`null` when not measured or not run."},
            "exit_code": {"type": ["integer", "null"]},
            "signal": {"type": ["integer", "null"]},
            "stdout": {"type": "string", "description": "At most 64 KiB (and 8 MiB for all tests together)."},
            "stdout_truncated": {"type": "boolean"},
            "stderr": {"type": "string"},
            "stderr_truncated": {"type": "boolean"},
            "checker_message": {"type": ["string", "null"], "description": "A built-in checker's note on where the output differs, or a custom checker's stderr."},
        },
    });
    schemas["TestSummary"] = json!({
        "type": "object",
        "description": format!("{NOTE} The tests' counts."),
        "required": ["total", "passed", "failed", "skipped", "first_failure"],
        "properties": {
            "total": {"type": "integer", "minimum": 0},
            "passed": {"type": "integer", "minimum": 0},
            "failed": {"type": "integer", "minimum": 0},
            "skipped": {"type": "integer", "minimum": 0},
            "first_failure": {"type": ["string", "null"], "description": "The name of the first test not accepted."},
        },
    });
    if let Some(values) = schemas["Verdict"]["enum"].as_array_mut() {
        for verdict in [
            "accepted",
            "wrong_answer",
            "presentation_error",
            "judge_error",
            "skipped",
        ] {
            values.push(json!(verdict));
        }
    }
    let request = &mut schemas["RunCodeRequest"];
    request["properties"]["tests"] = json!({
        "type": ["array", "null"],
        "description": format!("{NOTE} Run the program on each test and judge its output. At most {} tests; their stdin, expected output and arguments at most {} bytes together (413 above).", config.max_tests, config.max_test_bytes),
        "minItems": 1,
        "maxItems": config.max_tests,
        "items": {"$ref": "#/components/schemas/Test"},
    });
    request["properties"]["checker"] = json!({
        "description": format!("{NOTE} Only with `tests`."),
        "anyOf": [{"$ref": "#/components/schemas/Checker"}, {"type": "null"}],
    });
    request["properties"]["interactor"] = json!({
        "description": format!("{NOTE} Only with `tests`, never with `checker`: an interactive problem's interactor, compiled once, run beside the program on each test as `interactor input output [answer]` (the test's `stdin` is its `input` file, the test's `expected_output`, when given, its `answer`), its stdout piped to the program's stdin and the program's stdout to its stdin. Exit 0 accepted, 1 wrong answer, 2 presentation error, anything else judge_error; its stderr is the test's `checker_message`."),
        "anyOf": [{"$ref": "#/components/schemas/Interactor"}, {"type": "null"}],
    });
    schemas_interactor(doc, &names);
    let request = &mut doc["components"]["schemas"]["RunCodeRequest"];
    request["properties"]["stop_on_first_failure"] = json!({
        "type": ["boolean", "null"],
        "description": format!("{NOTE} Only with `tests`: run no test after the first that is not accepted (the rest are `skipped`)."),
    });
    request["dependentRequired"] =
        json!({"checker": ["tests"], "interactor": ["tests"], "stop_on_first_failure": ["tests"]});
    let status = &mut doc["components"]["schemas"]["TaskStatus"]["properties"];
    status["tests"] = json!({
        "type": "array",
        "description": format!("{NOTE} Each test's result, in the order given. While the task runs (`PENDING`, state `running`): the tests finished so far, without their output."),
        "items": {"$ref": "#/components/schemas/TestResult"},
    });
    status["summary"] = json!({"$ref": "#/components/schemas/TestSummary"});
    if let Some(tags) = doc["tags"].as_array_mut() {
        tags.push(json!({"name": "judge", "description": "Judge mode: one program, many tests, a verdict for each (fields marked \"Judge mode\")"}));
    }
    for (path, method) in [("/run-code", "post"), ("/results/{task_id}", "get")] {
        if let Some(tags) = doc["paths"][path][method]["tags"].as_array_mut() {
            tags.push(json!("judge"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{parse_run_request, RunRequest};
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
                name: "cpp".into(),
                version: "g++ 12".into(),
                aliases: vec![],
                file_name: "main.cpp".into(),
            },
        ])
    }

    fn config() -> ApiConfig {
        ApiConfig {
            max_time_limit_ms: 5_000,
            max_tests: 3,
            max_test_bytes: 10,
            ..ApiConfig::default()
        }
    }

    fn parse(body: Value) -> Result<RunRequest, ApiError> {
        parse_run_request(body.to_string().as_bytes(), &languages(), &config())
    }

    /// The one issue of a refused body, as JSON, from both the fast and
    /// the slow path (a body whose `code` is not a string takes the slow one).
    fn issue(mut body: Value) -> Value {
        let found = match parse(body.clone()) {
            Err(ApiError::Validation(issues)) => serde_json::to_value(issues).unwrap(),
            other => panic!("expected a 422 for {body}, got {other:?}"),
        };
        assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
        body["code"] = json!(5);
        let slow = match parse(body.clone()) {
            Err(ApiError::Validation(issues)) => serde_json::to_value(issues).unwrap(),
            other => panic!("expected a 422 for {body}, got {other:?}"),
        };
        assert_eq!(slow[1], found[0], "the slow path agrees");
        found[0].clone()
    }

    fn with(extra: Value) -> Value {
        let mut body = json!({"language": "python", "code": "print(1)"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    }

    #[test]
    fn a_plain_request_has_no_judge_part() {
        assert_eq!(parse(with(json!({}))).unwrap().judge, None);
        assert_eq!(parse(with(json!({"tests": null}))).unwrap().judge, None);
    }

    #[test]
    fn tests_take_the_requests_defaults_and_names_default_to_positions() {
        let request = parse(with(json!({
            "stdin": "in", "args": ["a"],
            "tests": [{"expected_output": "1"}, {"name": "big", "stdin": "x", "args": [], "time_limit_ms": 100}],
            "checker": {"type": "float", "abs": 0.5},
            "stop_on_first_failure": true,
        })))
        .unwrap();
        let spec = request.judge.unwrap();
        assert_eq!(spec.tests[0].name, "1");
        assert_eq!(spec.tests[0].stdin, "in");
        assert_eq!(spec.tests[0].args, ["a"]);
        assert_eq!(spec.tests[1].name, "big");
        assert_eq!(spec.tests[1].stdin, "x");
        assert!(spec.tests[1].args.is_empty());
        assert_eq!(spec.tests[1].time_limit_ms, Some(100));
        assert_eq!(
            spec.checker,
            CheckerSpec::Float {
                abs: Some(0.5),
                rel: None
            }
        );
        assert!(spec.stop_on_first_failure);
        let default = parse(with(json!({"tests": [{}]}))).unwrap().judge.unwrap();
        assert_eq!(default.checker, CheckerSpec::Lines);
        assert!(!default.stop_on_first_failure);
    }

    #[test]
    fn a_test_set_id_is_carried_not_its_tests() {
        let id = format!("sha256:{}", "0a".repeat(32));
        let spec = parse(with(json!({"tests": id, "checker": {"type": "tokens"}})))
            .unwrap()
            .judge
            .unwrap();
        assert_eq!(spec.testset.as_deref(), Some(id.as_str()));
        assert!(spec.tests.is_empty());
        assert_eq!(spec.checker, CheckerSpec::Tokens);
    }

    #[test]
    fn every_bad_part_is_a_422_naming_it() {
        let cases = [
            (json!({"tests": 5}), json!(["body", "tests"]), "list_type"),
            // A string must be a test set's id.
            (
                json!({"tests": "x"}),
                json!(["body", "tests"]),
                "value_error",
            ),
            (
                json!({"tests": format!("sha256:{}", "A".repeat(64))}),
                json!(["body", "tests"]),
                "value_error",
            ),
            (json!({"tests": []}), json!(["body", "tests"]), "too_short"),
            (
                json!({"tests": [{}, {}, {}, {}]}),
                json!(["body", "tests"]),
                "too_long",
            ),
            (
                json!({"tests": [5]}),
                json!(["body", "tests", 0]),
                "model_type",
            ),
            (
                json!({"tests": [{"expected_ouput": "3"}]}),
                json!(["body", "tests", 0]),
                "extra_forbidden",
            ),
            (
                json!({"tests": [{}, {"stdin": 3}]}),
                json!(["body", "tests", 1, "stdin"]),
                "string_type",
            ),
            (
                json!({"tests": [{"name": "n".repeat(129)}]}),
                json!(["body", "tests", 0, "name"]),
                "string_too_long",
            ),
            (
                json!({"tests": [{"args": [1]}]}),
                json!(["body", "tests", 0, "args", 0]),
                "string_type",
            ),
            (
                json!({"tests": [{"time_limit_ms": 0}]}),
                json!(["body", "tests", 0, "time_limit_ms"]),
                "greater_than_equal",
            ),
            (
                json!({"tests": [{"time_limit_ms": 5001}]}),
                json!(["body", "tests", 0, "time_limit_ms"]),
                "less_than_equal",
            ),
            (
                json!({"tests": [{"memory_limit_mb": 1.5}]}),
                json!(["body", "tests", 0, "memory_limit_mb"]),
                "int_from_float",
            ),
            (
                json!({"tests": [{}], "checker": "lines"}),
                json!(["body", "checker"]),
                "model_attributes_type",
            ),
            (
                json!({"tests": [{}], "checker": {}}),
                json!(["body", "checker"]),
                "union_tag_not_found",
            ),
            (
                json!({"tests": [{}], "checker": {"type": "regex"}}),
                json!(["body", "checker"]),
                "union_tag_invalid",
            ),
            (
                json!({"tests": [{}], "checker": {"type": "lines", "abs": 1}}),
                json!(["body", "checker"]),
                "extra_forbidden",
            ),
            (
                json!({"tests": [{}], "checker": {"type": "float", "abs": -1}}),
                json!(["body", "checker", "abs"]),
                "greater_than_equal",
            ),
            (
                json!({"tests": [{}], "checker": {"type": "float", "rel": "1"}}),
                json!(["body", "checker", "rel"]),
                "float_type",
            ),
            (
                json!({"tests": [{}], "checker": {"type": "custom", "language": "cobol", "code": ""}}),
                json!(["body", "checker", "language"]),
                "enum",
            ),
            (
                json!({"tests": [{}], "checker": {"type": "custom", "language": "python"}}),
                json!(["body", "checker", "code"]),
                "missing",
            ),
            (
                json!({"tests": [{}], "checker": {"type": "custom", "language": "python", "code": "", "files": [{"name": "answer", "content": ""}]}}),
                json!(["body", "checker", "files", 0, "name"]),
                "value_error",
            ),
            (
                json!({"tests": [{}], "checker": {"type": "custom", "language": "python", "code": "", "files": [{"name": "main.py", "content": ""}]}}),
                json!(["body", "checker", "files", 0, "name"]),
                "value_error",
            ),
            (
                json!({"tests": [{}], "checker": {"type": "custom", "language": "python", "code": "", "files": [{"name": "../x", "content": ""}]}}),
                json!(["body", "checker", "files", 0, "name"]),
                "string_pattern_mismatch",
            ),
            (
                json!({"tests": [{}], "stop_on_first_failure": "yes"}),
                json!(["body", "stop_on_first_failure"]),
                "bool_type",
            ),
            (
                json!({"checker": {"type": "lines"}}),
                json!(["body", "checker"]),
                "value_error",
            ),
            (
                json!({"stop_on_first_failure": true}),
                json!(["body", "stop_on_first_failure"]),
                "value_error",
            ),
        ];
        for (extra, loc, kind) in cases {
            let found = issue(with(extra.clone()));
            assert_eq!(found["loc"], loc, "{extra}: {found}");
            assert_eq!(found["type"], kind, "{extra}: {found}");
        }
    }

    #[test]
    fn a_long_test_list_is_measured_before_its_items() {
        let many = format!("[{}{{}}]", "{},".repeat(99_999));
        let body = format!(r#"{{"language":"python","code":"x","tests":{many}}}"#);
        let Err(ApiError::Validation(issues)) =
            parse_run_request(body.as_bytes(), &languages(), &config())
        else {
            panic!()
        };
        assert_eq!(issues.len(), 1);
        assert_eq!(
            issues[0].ctx,
            Some(json!({"field_type": "List", "max_length": 3, "actual_length": 100_000}))
        );
    }

    #[test]
    fn sizes_over_their_limits_are_413() {
        let request = parse(with(
            json!({"tests": [{"stdin": "12345", "expected_output": "123456"}]}),
        ))
        .unwrap();
        let error = check_sizes(request.judge.as_ref(), &config()).unwrap_err();
        assert!(
            matches!(
                error,
                ApiError::JudgeTooLarge {
                    size: 11,
                    limit: 10,
                    ..
                }
            ),
            "{error:?}"
        );
        let request = parse(with(
            json!({"tests": [{"stdin": "12345", "expected_output": "12345"}]}),
        ))
        .unwrap();
        assert!(check_sizes(request.judge.as_ref(), &config()).is_ok());
    }
}
