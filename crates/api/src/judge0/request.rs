//! Judge0's submission request: the body fields (JSON; numbers and booleans
//! may come as strings, as Rails casts them), their defaults and limits, and
//! Judge0's `422` shape, `{"field": ["message", ...]}`.
//!
//! Fields the service cannot honour are accepted and ignored when their
//! value asks for nothing beyond the default (`stack_limit`,
//! `cpu_extra_time`, `number_of_runs`, ...; see docs/judge0.md), and refused
//! with Judge0's own "not allowed" message when honouring them is the point
//! (`enable_network: true`, `additional_files`).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::response::Meta;
use super::tables::{by_id, display_name, ARCHIVED};
use super::wire::decode64;
use crate::request::MAX_ARGS;
use crate::state::{ApiConfig, SupportedLanguage};

/// Judge0's validation errors: each field's messages.
pub(crate) type Errors = BTreeMap<String, Vec<String>>;

/// Judge0's 1.13.1 defaults and the maxima the service can honour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Limits {
    pub(crate) cpu_time_limit: f64,
    pub(crate) max_cpu_time_limit: f64,
    pub(crate) wall_time_limit: f64,
    pub(crate) max_wall_time_limit: f64,
    pub(crate) memory_limit: u64,
    pub(crate) max_memory_limit: u64,
}

/// Judge0's smallest memory limit, KB.
pub(crate) const MIN_MEMORY_LIMIT_KB: u64 = 2048;
/// Judge0's longest `compiler_options` / `command_line_arguments`.
const MAX_OPTIONS_CHARS: usize = 512;

impl Limits {
    /// Judge0's defaults (5 s CPU, 10 s wall, 128000 KB), lowered to what
    /// the workers enforce at most.
    pub(crate) fn of(config: &ApiConfig) -> Self {
        let max_secs = config.max_time_limit_ms as f64 / 1000.0;
        let max_kb = config.max_memory_limit_mb.saturating_mul(1024);
        Self {
            cpu_time_limit: max_secs.min(5.0),
            max_cpu_time_limit: max_secs,
            wall_time_limit: max_secs.min(10.0),
            max_wall_time_limit: max_secs,
            memory_limit: max_kb.min(128_000),
            max_memory_limit: max_kb,
        }
    }
}

/// A valid submission: what the job needs and what the submission keeps.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Submission {
    /// Our canonical language name.
    pub(crate) language: String,
    pub(crate) args: Vec<String>,
    /// The job's time limit: the CPU limit asked for, else the wall limit
    /// asked for, else the workers' own.
    pub(crate) time_limit_ms: Option<u64>,
    pub(crate) memory_limit_mb: Option<u64>,
    pub(crate) meta: Meta,
}

/// Reads a value Rails would cast to a number: a JSON number or a numeric
/// string.
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|n| n.is_finite())
}

/// Reads a value Rails would cast to a boolean.
fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => Some(n.as_f64() != Some(0.0)),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "t" | "1" | "on" | "yes" => Some(true),
            "false" | "f" | "0" | "off" | "no" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Rails' rendering of a bound in a message: `15`, `0.5`.
fn bound(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}

struct Parser<'a> {
    body: &'a Map<String, Value>,
    base64: bool,
    errors: Errors,
}

impl Parser<'_> {
    fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors
            .entry(field.to_owned())
            .or_default()
            .push(message.into());
    }

    fn present(&self, field: &str) -> Option<&Value> {
        self.body.get(field).filter(|v| !v.is_null())
    }

    /// A text field; with `base64`, decoded (leniently, as Ruby does).
    fn text(&mut self, field: &str, encoded: bool) -> Option<String> {
        let value = self.present(field)?.clone();
        let text = match value {
            Value::String(s) => s,
            _ => {
                self.error(field, "is not a string");
                return None;
            }
        };
        if !(encoded && self.base64) {
            return Some(text);
        }
        match String::from_utf8(decode64(&text)) {
            Ok(decoded) => Some(decoded),
            Err(_) => {
                self.error(field, "is not valid UTF-8 once base64-decoded");
                None
            }
        }
    }

    /// A number within `min..=max`, with Rails' numericality messages.
    fn number(&mut self, field: &str, min: f64, min_inclusive: bool, max: f64) -> Option<f64> {
        let value = self.present(field)?;
        let Some(n) = number(value) else {
            self.error(field, "is not a number");
            return None;
        };
        if INTEGERS.contains(&field) && n.fract() != 0.0 {
            self.error(field, "must be an integer");
            None
        } else if min_inclusive && n < min {
            self.error(
                field,
                format!("must be greater than or equal to {}", bound(min)),
            );
            None
        } else if !min_inclusive && n <= min {
            self.error(field, format!("must be greater than {}", bound(min)));
            None
        } else if n > max {
            self.error(
                field,
                format!("must be less than or equal to {}", bound(max)),
            );
            None
        } else {
            Some(n)
        }
    }

    fn boolean(&mut self, field: &str) -> Option<bool> {
        let value = self.present(field)?;
        match boolean(value) {
            Some(b) => Some(b),
            None => {
                self.error(field, "is not a boolean");
                None
            }
        }
    }

    fn options(&mut self, field: &str) -> Option<String> {
        let text = self.text(field, false)?;
        if text.chars().count() > MAX_OPTIONS_CHARS {
            self.error(
                field,
                format!("is too long (maximum is {MAX_OPTIONS_CHARS} characters)"),
            );
            return None;
        }
        Some(text)
    }
}

/// The fields Judge0 keeps in integer columns.
const INTEGERS: &[&str] = &[
    "memory_limit",
    "stack_limit",
    "max_processes_and_or_threads",
    "max_file_size",
    "number_of_runs",
];

/// Judge0 strips these from command-line arguments before running them.
const STRIPPED: &[char] = &['$', '&', ';', '<', '>', '|', '`'];

/// Parses one submission (a JSON object) against `languages` and the limits.
pub(crate) fn parse_submission(
    body: &Value,
    base64: bool,
    languages: &[SupportedLanguage],
    limits: &Limits,
    created_at_ms: u64,
) -> Result<Submission, Errors> {
    let empty = Map::new();
    let object = match body {
        Value::Object(object) => object,
        _ => &empty,
    };
    let mut p = Parser {
        body: object,
        base64,
        errors: Errors::new(),
    };
    let source_code = p.text("source_code", true);
    if source_code.as_deref().is_none_or(|s| s.trim().is_empty())
        && !p.errors.contains_key("source_code")
    {
        p.error("source_code", "can't be blank");
    }
    let mapping = match p.present("language_id").cloned() {
        None => {
            p.error("language_id", "can't be blank");
            None
        }
        Some(value) => match number(&value) {
            Some(n) if n.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&n) => {
                let language_id = n as u32;
                match by_id(language_id, languages) {
                    Some(mapping) => Some(mapping),
                    None if ARCHIVED.contains(&language_id) => {
                        p.error(
                            "language_id",
                            format!(
                                "language with id {language_id} is archived and cannot be used anymore"
                            ),
                        );
                        None
                    }
                    None => {
                        p.error(
                            "language_id",
                            format!("language with id {language_id} doesn't exist"),
                        );
                        None
                    }
                }
            }
            _ => {
                p.error("language_id", "is not a number");
                None
            }
        },
    };
    let stdin = p.text("stdin", true);
    let expected_output = p.text("expected_output", true);
    let compiler_options = p.options("compiler_options");
    let command_line_arguments = p.options("command_line_arguments");
    let cpu_time_limit = p.number("cpu_time_limit", 0.0, true, limits.max_cpu_time_limit);
    let cpu_extra_time = p.number("cpu_extra_time", 0.0, true, 5.0);
    let wall_time_limit = p.number("wall_time_limit", 1.0, true, limits.max_wall_time_limit);
    let memory_limit = p.number(
        "memory_limit",
        MIN_MEMORY_LIMIT_KB as f64,
        true,
        limits.max_memory_limit as f64,
    );
    let stack_limit = p.number("stack_limit", 0.0, true, 128_000.0);
    let max_processes = p.number("max_processes_and_or_threads", 0.0, false, 120.0);
    let per_process_time = p.boolean("enable_per_process_and_thread_time_limit");
    let per_process_memory = p.boolean("enable_per_process_and_thread_memory_limit");
    let max_file_size = p.number("max_file_size", 0.0, true, 4096.0);
    let redirect = p.boolean("redirect_stderr_to_stdout");
    let enable_network = p.boolean("enable_network");
    if enable_network == Some(true) {
        p.error("enable_network", "enabling network is not allowed");
    }
    let number_of_runs = p.number("number_of_runs", 0.0, false, 20.0);
    if p.present("additional_files").is_some() {
        p.error(
            "additional_files",
            "setting additional files is not allowed",
        );
    }
    let callback_url = p.text("callback_url", false).filter(|u| !u.is_empty());
    let args: Vec<String> = command_line_arguments
        .as_deref()
        .map(|line| {
            line.replace(STRIPPED, "")
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    // The limits of `args` in POST /run-code, which the workers rely on.
    if args.len() > MAX_ARGS {
        p.error(
            "command_line_arguments",
            format!("has more than {MAX_ARGS} arguments"),
        );
    }
    if args.iter().any(|arg| arg.contains('\0')) {
        p.error("command_line_arguments", "must not contain NUL characters");
    }
    if !p.errors.is_empty() {
        return Err(p.errors);
    }
    let mapping = mapping.expect("a valid submission has a language");
    // One limit bounds our runs' CPU and wall time: the CPU limit when the
    // client set one (what judges mean), else the wall limit it set.
    let time_limit_ms = cpu_time_limit
        .or(wall_time_limit)
        .map(|secs| ((secs * 1000.0).round() as u64).max(1));
    let memory_limit_mb = memory_limit.map(|kb| (kb as u64).div_ceil(1024).max(1));
    let meta = Meta {
        source_code: source_code.unwrap_or_default(),
        language_id: mapping.id,
        language_name: display_name(mapping, languages),
        stdin,
        expected_output,
        cpu_time_limit: cpu_time_limit.unwrap_or(limits.cpu_time_limit),
        cpu_extra_time: cpu_extra_time.unwrap_or(1.0),
        wall_time_limit: wall_time_limit.unwrap_or(limits.wall_time_limit),
        memory_limit: memory_limit.map_or(limits.memory_limit, |kb| kb as u64),
        stack_limit: stack_limit.map_or(64_000, |kb| kb as u64),
        max_processes_and_or_threads: max_processes.map_or(60, |n| n as u64),
        enable_per_process_and_thread_time_limit: per_process_time.unwrap_or(false),
        enable_per_process_and_thread_memory_limit: per_process_memory.unwrap_or(false),
        max_file_size: max_file_size.map_or(1024, |kb| kb as u64),
        number_of_runs: number_of_runs.map_or(1, |n| n as u64),
        compiler_options,
        command_line_arguments,
        redirect_stderr_to_stdout: redirect.unwrap_or(false),
        callback_url,
        enable_network: false,
        created_at_ms,
        shared: None,
    };
    Ok(Submission {
        language: mapping.canonical.to_owned(),
        args,
        time_limit_ms,
        memory_limit_mb,
        meta,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::judge0::wire::encode64;

    fn languages() -> Vec<SupportedLanguage> {
        ["python", "c"]
            .into_iter()
            .map(|name| SupportedLanguage {
                name: name.into(),
                version: "3.11".into(),
                aliases: Vec::new(),
                file_name: "main".into(),
            })
            .collect()
    }

    fn limits() -> Limits {
        Limits::of(&ApiConfig::default())
    }

    fn parse(body: Value, base64: bool) -> Result<Submission, Errors> {
        parse_submission(&body, base64, &languages(), &limits(), 0)
    }

    fn errors(body: Value) -> Value {
        serde_json::to_value(parse(body, false).unwrap_err()).unwrap()
    }

    #[test]
    fn a_plain_submission_maps_to_a_job() {
        let submission = parse(
            json!({"source_code": "print(1)", "language_id": "71", "stdin": "x",
                   "cpu_time_limit": "2.5", "memory_limit": 65536,
                   "command_line_arguments": "a  b;rm"}),
            false,
        )
        .unwrap();
        assert_eq!(submission.language, "python");
        assert_eq!(submission.time_limit_ms, Some(2_500));
        assert_eq!(submission.memory_limit_mb, Some(64));
        assert_eq!(submission.args, ["a", "brm"]);
        let many = parse(
            json!({"source_code": "x", "language_id": 71,
                   "command_line_arguments": "a ".repeat(65)}),
            false,
        )
        .unwrap_err();
        assert_eq!(
            many["command_line_arguments"],
            ["has more than 64 arguments"]
        );
        assert_eq!(submission.meta.language_name, "Python (3.11)");
        assert_eq!(submission.meta.stdin.as_deref(), Some("x"));
        assert_eq!(submission.meta.wall_time_limit, 10.0);
        assert_eq!(submission.meta.memory_limit, 65_536);
    }

    #[test]
    fn base64_fields_are_decoded() {
        let submission = parse(
            json!({"source_code": encode64(b"print(1)"), "language_id": 113,
                   "expected_output": encode64(b"1\n"), "stdin": null}),
            true,
        )
        .unwrap();
        assert_eq!(submission.meta.source_code, "print(1)");
        assert_eq!(submission.meta.expected_output.as_deref(), Some("1\n"));
        assert_eq!(submission.meta.stdin, None);
        assert_eq!(submission.meta.language_id, 113);
        let bad = parse(
            json!({"source_code": encode64(&[0xff, 0xfe]), "language_id": 71}),
            true,
        )
        .unwrap_err();
        assert!(bad.contains_key("source_code"));
    }

    #[test]
    fn bad_fields_get_judge0s_messages() {
        assert_eq!(
            errors(json!({})),
            json!({"source_code": ["can't be blank"], "language_id": ["can't be blank"]})
        );
        assert_eq!(
            errors(json!({"source_code": "x", "language_id": 9999})),
            json!({"language_id": ["language with id 9999 doesn't exist"]})
        );
        assert_eq!(
            errors(json!({"source_code": "x", "language_id": 34})),
            json!({"language_id": ["language with id 34 is archived and cannot be used anymore"]})
        );
        assert_eq!(
            errors(
                json!({"source_code": "x", "language_id": "abc", "cpu_time_limit": 99,
                          "wall_time_limit": 0.5, "memory_limit": "lots",
                          "number_of_runs": 0, "enable_network": true,
                          "additional_files": "UEsDBA==", "redirect_stderr_to_stdout": "maybe",
                          "compiler_options": "x".repeat(513), "stack_limit": 1.5,
                          "stdin": 7})
            ),
            json!({
                "language_id": ["is not a number"],
                "cpu_time_limit": ["must be less than or equal to 10"],
                "wall_time_limit": ["must be greater than or equal to 1"],
                "memory_limit": ["is not a number"],
                "number_of_runs": ["must be greater than 0"],
                "enable_network": ["enabling network is not allowed"],
                "additional_files": ["setting additional files is not allowed"],
                "redirect_stderr_to_stdout": ["is not a boolean"],
                "compiler_options": ["is too long (maximum is 512 characters)"],
                "stack_limit": ["must be an integer"],
                "stdin": ["is not a string"],
            })
        );
        assert_eq!(
            errors(json!(["not", "an", "object"])),
            json!({"source_code": ["can't be blank"], "language_id": ["can't be blank"]})
        );
    }

    #[test]
    fn limits_follow_judge0_defaults_within_the_workers_maxima() {
        let limits = limits();
        assert_eq!(limits.cpu_time_limit, 5.0);
        assert_eq!(limits.max_cpu_time_limit, 10.0);
        assert_eq!(limits.memory_limit, 128_000);
        assert_eq!(limits.max_memory_limit, 256 * 1024);
    }
}
