//! Reading a `POST /api/v2/execute` body into a job, with Piston's checks
//! and Piston's messages (`400 {"message": ...}`).
//!
//! The body is JSON whatever its `Content-Type` says: Piston refuses
//! anything but `application/json` with `415`, but the npm client its
//! readme endorses sends `text/plain`, so this server is lenient.
//!
//! How Piston's fields become a job:
//! - `files[0]` is the program (saved under our language table's name for
//!   it, whatever its `name`); the other files are written next to it under
//!   their names (`file<i>.code` when unnamed). Every file must be text once
//!   decoded (`utf8`, `base64` or `hex`; an unknown encoding is `utf8`, as
//!   in Piston), since jobs carry text.
//! - `stdin` gets a trailing newline when it has none, as Piston does.
//! - `run_timeout` and `run_cpu_time` (ms) become the job's time limit (the
//!   smaller one: it limits wall and CPU time at once, so `run_cpu_time`
//!   only counts when given); `run_memory_limit` (bytes) its memory limit, in whole
//!   MiB rounded down. `-1` is the server's maximum, `0` or absent Piston's
//!   default (3000 ms; no memory limit, i.e. the server's maximum), more
//!   than the maximum is refused as Piston refuses it.
//! - `compile_timeout`, `compile_cpu_time` and `compile_memory_limit` are
//!   checked but not applied: compiles run within the workers' own compile
//!   limits.

use base64::Engine;
use code_runner_queue::SourceFile;
use serde_json::{Map, Value};

use super::runtimes::{Runtime, Runtimes};
use crate::error::{LocPart, ValidationIssue};
use crate::request::{
    check_args, check_files, is_valid_file_name, FILE_NAME_PATTERN, MIN_MEMORY_LIMIT_MB,
};
use crate::state::{ApiConfig, Languages};

/// Piston's default run time limit (wall and CPU), in ms.
const DEFAULT_RUN_TIMEOUT_MS: u64 = 3_000;

const MIB: u64 = 1024 * 1024;

/// A request Piston's way of saying no: `400` with a message.
#[derive(Debug, PartialEq)]
pub(crate) enum Invalid {
    /// `400`, as Piston answers any bad request.
    BadRequest(String),
    /// `413`: code or stdin over the server's limit.
    TooLarge(String),
}

/// A valid execute request: the runtime it chose and the job's fields.
#[derive(Debug)]
pub(crate) struct Execute {
    pub(crate) runtime: Runtime,
    pub(crate) code: String,
    pub(crate) files: Vec<SourceFile>,
    pub(crate) stdin: String,
    pub(crate) args: Vec<String>,
    pub(crate) time_limit_ms: Option<u64>,
    pub(crate) memory_limit_mb: Option<u64>,
}

fn bad(message: impl Into<String>) -> Invalid {
    Invalid::BadRequest(message.into())
}

/// Parses and checks an execute body.
pub(crate) fn parse(
    body: &[u8],
    runtimes: &Runtimes,
    languages: &Languages,
    config: &ApiConfig,
) -> Result<Execute, Invalid> {
    // Only the known fields are read into memory (`body`).
    let body = super::body::read(body).map_err(|e| match e {
        super::body::BodyError::NotJson(e) => bad(format!(
            "the request body is not valid JSON ({e}); send a JSON object"
        )),
        super::body::BodyError::NotObject => bad("the request body must be a JSON object"),
    })?;
    let language = match body.get("language") {
        Some(Value::String(language)) => language,
        _ => return Err(bad("language is required as a string")),
    };
    let version = match body.get("version") {
        Some(Value::String(version)) => version,
        _ => return Err(bad("version is required as a string")),
    };
    let files = match body.get("files") {
        Some(Value::Array(files)) => files,
        _ => return Err(bad("files is required as an array")),
    };
    for (index, file) in files.iter().enumerate() {
        if !matches!(file.get("content"), Some(Value::String(_))) {
            return Err(bad(format!(
                "files[{index}].content is required as a string"
            )));
        }
    }
    let runtime = runtimes
        .select(language, version)
        .ok_or_else(|| bad(format!("{language}-{version} runtime is unknown")))?;
    if files.is_empty() {
        return Err(bad("files must include at least one utf8 encoded file"));
    }
    let mut texts = Vec::with_capacity(files.len());
    for (index, file) in files.iter().enumerate() {
        texts.push(decode_file(index, file)?);
    }
    let mut texts = texts.into_iter();
    let code = texts.next().unwrap_or_default();
    let extra: Vec<SourceFile> = texts
        .enumerate()
        .map(|(offset, content)| {
            let index = offset + 1;
            let name = match files[index].get("name") {
                Some(Value::String(name)) if !name.is_empty() => name.clone(),
                _ => format!("file{index}.code"),
            };
            SourceFile { name, content }
        })
        .collect();
    for (index, file) in files.iter().enumerate() {
        match file.get("name") {
            None | Some(Value::Null) => {}
            Some(Value::String(name)) if name.is_empty() || is_valid_file_name(name) => {}
            Some(Value::String(_)) => {
                return Err(bad(format!(
                    "files[{index}].name: String should match pattern '{FILE_NAME_PATTERN}': a \
                     plain file name, no directories"
                )))
            }
            Some(_) => return Err(bad(format!("files[{index}].name must be a string"))),
        }
    }
    let main_file = (!extra.is_empty())
        .then(|| languages.main_file_name(&runtime.canonical, &code))
        .flatten();
    let mut issues = Vec::new();
    check_files(&extra, languages, main_file.as_deref(), &mut issues);
    if let Some(issue) = issues.first() {
        return Err(bad(message_of(issue, "files", 1)));
    }

    let mut stdin = match body.get("stdin") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(stdin)) => stdin.clone(),
        Some(_) => return Err(bad("If specified, stdin must be a string")),
    };
    if !stdin.ends_with('\n') {
        stdin.push('\n');
    }
    let args = match body.get("args") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(args)) => args
            .iter()
            .map(|arg| arg.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("If specified, args must be an array of strings"))?,
        Some(_) => return Err(bad("If specified, args must be an array of strings")),
    };
    check_args(&args, &mut issues);
    if let Some(issue) = issues.first() {
        return Err(bad(message_of(issue, "args", 0)));
    }

    let (time_limit_ms, memory_limit_mb) = limits(&body, config)?;

    let sources = extra
        .iter()
        .fold(code.len(), |sum, f| sum.saturating_add(f.content.len()));
    if sources > config.max_code_bytes {
        return Err(Invalid::TooLarge(format!(
            "files are {sources} bytes together once decoded; the limit is {} bytes",
            config.max_code_bytes
        )));
    }
    if stdin.len() > config.max_stdin_bytes {
        return Err(Invalid::TooLarge(format!(
            "stdin is {} bytes; the limit is {} bytes",
            stdin.len(),
            config.max_stdin_bytes
        )));
    }
    Ok(Execute {
        runtime: runtime.clone(),
        code,
        files: extra,
        stdin,
        args,
        time_limit_ms,
        memory_limit_mb,
    })
}

/// A file's text: its `content` decoded by its `encoding`.
fn decode_file(index: usize, file: &Value) -> Result<String, Invalid> {
    let content = file.get("content").and_then(Value::as_str).unwrap_or("");
    let encoding = match file.get("encoding") {
        None | Some(Value::Null) => None,
        Some(Value::String(encoding)) => Some(encoding.as_str()),
        Some(_) => {
            return Err(bad(format!(
                "If specified, files[{index}].encoding must be a string"
            )))
        }
    };
    let bytes = match encoding {
        Some("base64") => base64::engine::general_purpose::STANDARD
            .decode(content)
            .map_err(|e| bad(format!("files[{index}].content is not valid base64: {e}")))?,
        Some("hex") => hex::decode(content)
            .map_err(|e| bad(format!("files[{index}].content is not valid hex: {e}")))?,
        // `utf8`, absent, or anything else (Piston reads it as utf8).
        _ => return Ok(content.to_owned()),
    };
    String::from_utf8(bytes).map_err(|_| {
        bad(format!(
            "files[{index}] is not UTF-8 text once decoded; this server runs text files only"
        ))
    })
}

/// A validation issue of the shared checks as one Piston message, its
/// location in Piston's terms: `files[1].name: ...`. `shift` turns the
/// index in the list checked into the index in the request.
fn message_of(issue: &ValidationIssue, field: &str, shift: usize) -> String {
    let mut path = field.to_owned();
    for part in issue.loc.iter().skip(2) {
        match part {
            LocPart::Offset(index) => path.push_str(&format!("[{}]", index + shift)),
            LocPart::Key(key) => {
                path.push('.');
                path.push_str(key);
            }
        }
    }
    let message = issue
        .msg
        .strip_prefix("Value error, ")
        .unwrap_or(&issue.msg);
    format!("{path}: {message}")
}

/// A limit as Piston reads it: absent, `null` or `0` is its default;
/// `-1` the server's maximum; a number otherwise.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Limit {
    Default,
    Maximum,
    Value(f64),
}

fn limit(body: &Map<String, Value>, name: &str) -> Result<Limit, Invalid> {
    let value = match body.get(name) {
        None | Some(Value::Null) => return Ok(Limit::Default),
        Some(value) => value
            .as_f64()
            .ok_or_else(|| bad(format!("If specified, {name} must be a number")))?,
    };
    if value == 0.0 {
        Ok(Limit::Default)
    } else if value == -1.0 {
        Ok(Limit::Maximum)
    } else if value < 0.0 {
        Err(bad(format!("{name} must be non-negative")))
    } else {
        Ok(Limit::Value(value))
    }
}

/// The job's time limit (ms) and memory limit (MiB); `None` is the
/// server's maximum.
fn limits(
    body: &Map<String, Value>,
    config: &ApiConfig,
) -> Result<(Option<u64>, Option<u64>), Invalid> {
    let max_ms = config.max_time_limit_ms;
    let mut time_ms = max_ms;
    for name in ["run_timeout", "run_cpu_time"] {
        let ms = match limit(body, name)? {
            // Our limit is on wall and CPU time at once: only
            // `run_timeout` has a default of its own.
            Limit::Default if name == "run_cpu_time" => max_ms,
            Limit::Default => DEFAULT_RUN_TIMEOUT_MS.min(max_ms),
            Limit::Maximum => max_ms,
            Limit::Value(ms) if ms > max_ms as f64 => {
                return Err(bad(format!(
                    "{name} cannot exceed the configured limit of {max_ms}"
                )))
            }
            Limit::Value(ms) => (ms.ceil() as u64).max(1),
        };
        time_ms = time_ms.min(ms);
    }
    for name in [
        "compile_timeout",
        "compile_cpu_time",
        "compile_memory_limit",
    ] {
        limit(body, name)?;
    }
    let max_bytes = config.max_memory_limit_mb.saturating_mul(MIB);
    let memory_mb = match limit(body, "run_memory_limit")? {
        Limit::Default | Limit::Maximum => None,
        Limit::Value(bytes) if bytes > max_bytes as f64 => {
            return Err(bad(format!(
                "run_memory_limit cannot exceed the configured limit of {max_bytes}"
            )))
        }
        Limit::Value(bytes) => {
            let mb = bytes as u64 / MIB;
            if mb < MIN_MEMORY_LIMIT_MB {
                return Err(bad(format!(
                    "run_memory_limit must be at least {} bytes ({MIN_MEMORY_LIMIT_MB} MiB), \
                     the smallest limit this server applies",
                    MIN_MEMORY_LIMIT_MB * MIB
                )));
            }
            Some(mb)
        }
    };
    Ok(((time_ms < max_ms).then_some(time_ms), memory_mb))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::SupportedLanguage;
    use serde_json::json;

    fn table() -> Vec<SupportedLanguage> {
        let language = |name: &str, version: &str, file: &str| SupportedLanguage {
            name: name.into(),
            version: version.into(),
            aliases: vec![],
            file_name: file.into(),
        };
        vec![
            language("python", "3.11", "main.py"),
            language("java", "OpenJDK 17", "Main.java"),
            language("cpp", "g++ 12", "main.cpp"),
        ]
    }

    fn config() -> ApiConfig {
        ApiConfig {
            max_code_bytes: 1000,
            max_stdin_bytes: 100,
            max_time_limit_ms: 5_000,
            max_memory_limit_mb: 512,
            ..ApiConfig::default()
        }
    }

    /// What the tests look at: language, extra files, code, args, limits.
    type Parsed = (
        String,
        Vec<SourceFile>,
        String,
        Vec<String>,
        Option<u64>,
        Option<u64>,
    );

    fn run(body: Value) -> Result<Parsed, Invalid> {
        let table = table();
        let runtimes = Runtimes::new(&table);
        let languages = Languages::new(table);
        let bytes = serde_json::to_vec(&body).unwrap();
        parse(&bytes, &runtimes, &languages, &config()).map(|e| {
            (
                e.runtime.canonical.clone(),
                e.files,
                e.code,
                e.args,
                e.time_limit_ms,
                e.memory_limit_mb,
            )
        })
    }

    fn message(body: Value) -> String {
        match run(body) {
            Err(Invalid::BadRequest(message)) => message,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    fn base() -> Value {
        json!({"language": "py", "version": "3.x", "files": [{"content": "print(1)"}]})
    }

    fn with(field: &str, value: Value) -> Value {
        let mut body = base();
        body[field] = value;
        body
    }

    #[test]
    fn a_minimal_request_gets_piston_defaults() {
        let (language, files, code, args, time, memory) = run(base()).unwrap();
        assert_eq!(language, "python");
        assert!(files.is_empty());
        assert_eq!(code, "print(1)");
        assert!(args.is_empty());
        assert_eq!(time, Some(3_000));
        assert_eq!(memory, None);
    }

    #[test]
    fn stdin_gets_a_trailing_newline() {
        let table = table();
        let runtimes = Runtimes::new(&table);
        let languages = Languages::new(table);
        for (given, sent) in [("1 2", "1 2\n"), ("1 2\n", "1 2\n"), ("", "\n")] {
            let body = serde_json::to_vec(&with("stdin", json!(given))).unwrap();
            let execute = parse(&body, &runtimes, &languages, &config()).unwrap();
            assert_eq!(execute.stdin, sent);
        }
    }

    #[test]
    fn files_are_decoded_by_their_encoding() {
        let body = json!({"language": "python", "version": "*", "files": [
            {"name": "main.py", "content": "aW1wb3J0IGxpYg==", "encoding": "base64"},
            {"name": "lib.py", "content": "783d31", "encoding": "hex"},
            {"content": "plain", "encoding": "utf8"},
            {"name": "", "content": "odd", "encoding": "latin1"},
        ]});
        let (_, files, code, ..) = run(body).unwrap();
        assert_eq!(code, "import lib");
        let files: Vec<(&str, &str)> = files
            .iter()
            .map(|f| (f.name.as_str(), f.content.as_str()))
            .collect();
        assert_eq!(
            files,
            [
                ("lib.py", "x=1"),
                ("file2.code", "plain"),
                ("file3.code", "odd")
            ]
        );
    }

    #[test]
    fn limits_follow_piston_units_and_the_server_maximum() {
        let limits = |run_timeout: Value, memory: Value| {
            let mut body = base();
            body["run_timeout"] = run_timeout;
            body["run_memory_limit"] = memory;
            run(body).map(|r| (r.4, r.5))
        };
        assert_eq!(limits(json!(-1), json!(-1)), Ok((None, None)));
        assert_eq!(limits(json!(0), json!(0)), Ok((Some(3_000), None)));
        assert_eq!(limits(json!(null), json!(null)), Ok((Some(3_000), None)));
        assert_eq!(
            limits(json!(1500.2), json!(64 * MIB + 5)),
            Ok((Some(1_501), Some(64)))
        );
        assert_eq!(
            limits(json!(5_000), json!(512 * MIB)),
            Ok((None, Some(512)))
        );
        let mut both = base();
        both["run_timeout"] = json!(4_000);
        both["run_cpu_time"] = json!(2_000);
        assert_eq!(run(both).map(|r| r.4), Ok(Some(2_000)));
        assert_eq!(
            message(with("run_timeout", json!(5_001))),
            "run_timeout cannot exceed the configured limit of 5000"
        );
        assert_eq!(
            message(with("run_memory_limit", json!(512 * MIB + 1))),
            format!(
                "run_memory_limit cannot exceed the configured limit of {}",
                512 * MIB
            )
        );
        assert!(message(with("run_memory_limit", json!(MIB)))
            .starts_with("run_memory_limit must be at least 16777216 bytes"));
        assert_eq!(
            message(with("compile_timeout", json!("10s"))),
            "If specified, compile_timeout must be a number"
        );
        assert_eq!(
            message(with("run_timeout", json!(-5))),
            "run_timeout must be non-negative"
        );
        // Compile limits are checked, not applied.
        let mut compile = base();
        compile["compile_timeout"] = json!(10_000_000);
        compile["compile_memory_limit"] = json!(-1);
        assert!(run(compile).is_ok());
    }

    #[test]
    fn bad_requests_get_piston_messages() {
        for (body, expected) in [
            (
                json!({"version": "*", "files": []}),
                "language is required as a string",
            ),
            (
                json!({"language": 1, "version": "*", "files": []}),
                "language is required as a string",
            ),
            (
                json!({"language": "python", "files": []}),
                "version is required as a string",
            ),
            (
                json!({"language": "python", "version": "*"}),
                "files is required as an array",
            ),
            (
                json!({"language": "python", "version": "*", "files": [{"name": "a"}]}),
                "files[0].content is required as a string",
            ),
            (
                json!({"language": "rust", "version": "*", "files": [{"content": ""}]}),
                "rust-* runtime is unknown",
            ),
            (
                json!({"language": "python", "version": "3.12.0", "files": [{"content": ""}]}),
                "python-3.12.0 runtime is unknown",
            ),
            (
                json!({"language": "python", "version": "*", "files": []}),
                "files must include at least one utf8 encoded file",
            ),
            (
                json!({"language": "python", "version": "*", "files": [{"content": "/w==", "encoding": "base64"}]}),
                "files[0] is not UTF-8 text once decoded; this server runs text files only",
            ),
            (
                with("args", json!("1 2")),
                "If specified, args must be an array of strings",
            ),
            (
                with("args", json!([1, 2])),
                "If specified, args must be an array of strings",
            ),
            (
                with("stdin", json!(5)),
                "If specified, stdin must be a string",
            ),
            (
                json!({"language": "python", "version": "*", "files": [{"content": "", "encoding": 64}]}),
                "If specified, files[0].encoding must be a string",
            ),
            (json!([1]), "the request body must be a JSON object"),
        ] {
            assert_eq!(message(body.clone()), expected, "{body}");
        }
        assert!(message(json!({"language": "python", "version": "*", "files": [{"content": "zz", "encoding": "hex"}]}))
            .starts_with("files[0].content is not valid hex"));
        let table = table();
        let runtimes = Runtimes::new(&table);
        let languages = Languages::new(table);
        let malformed = parse(b"{\"language\": ", &runtimes, &languages, &config());
        assert!(
            matches!(&malformed, Err(Invalid::BadRequest(m)) if m.starts_with("the request body is not valid JSON")),
            "{malformed:?}"
        );
    }

    #[test]
    fn file_names_and_args_are_checked_as_for_run_code() {
        let body = json!({"language": "python", "version": "*", "files": [
            {"content": "x"}, {"name": "../etc/passwd", "content": "y"}
        ]});
        assert!(message(body).starts_with("files[1].name: String should match pattern"));
        let body = json!({"language": "python", "version": "*", "files": [
            {"content": "x"}, {"name": "main.py", "content": "y"}
        ]});
        assert!(message(body).starts_with("files[1].name: "));
        assert!(message(with("args", json!(["ok", "a\u{0}b"]))).starts_with("args[1]: "));
    }

    #[test]
    fn sizes_are_limited() {
        let big = "x".repeat(1001);
        assert!(matches!(
            run(json!({"language": "python", "version": "*", "files": [{"content": big}]})),
            Err(Invalid::TooLarge(_))
        ));
        assert!(matches!(
            run(with("stdin", json!("y".repeat(100)))),
            Err(Invalid::TooLarge(_))
        ));
    }
}
