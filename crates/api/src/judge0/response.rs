//! Judge0's submission object: what a submission remembers of its request
//! ([`Meta`]), how our task state maps to Judge0's status, output and
//! units ([`Outcome`]), and the JSON the client asked for (`fields`,
//! `base64_encoded`).

use code_runner_queue::{JobResult, TaskId, TaskState, Verdict};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::tables::status_description;
use super::wire::{decimal, encode64, seconds, timestamp};

/// What a Judge0 submission keeps of its request, to answer `fields=*` and
/// to judge `expected_output`. Stored beside the task (see `handlers`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Meta {
    pub(crate) source_code: String,
    pub(crate) language_id: u32,
    pub(crate) language_name: String,
    pub(crate) stdin: Option<String>,
    pub(crate) expected_output: Option<String>,
    pub(crate) cpu_time_limit: f64,
    pub(crate) cpu_extra_time: f64,
    pub(crate) wall_time_limit: f64,
    pub(crate) memory_limit: u64,
    pub(crate) stack_limit: u64,
    pub(crate) max_processes_and_or_threads: u64,
    pub(crate) enable_per_process_and_thread_time_limit: bool,
    pub(crate) enable_per_process_and_thread_memory_limit: bool,
    pub(crate) max_file_size: u64,
    pub(crate) number_of_runs: u64,
    pub(crate) compiler_options: Option<String>,
    pub(crate) command_line_arguments: Option<String>,
    pub(crate) redirect_stderr_to_stdout: bool,
    pub(crate) callback_url: Option<String>,
    pub(crate) enable_network: bool,
    pub(crate) created_at_ms: u64,
    /// Set when the submission is one test of a judge-mode job shared by a
    /// batch's submissions of one source (compiled once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) shared: Option<Shared>,
}

/// Where a batch submission's run is: test `test` of the job `job`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Shared {
    pub(crate) job: TaskId,
    pub(crate) test: usize,
}

/// Every field of a submission, in Judge0's order (`fields=*`).
pub(crate) const ALL_FIELDS: [&str; 35] = [
    "source_code",
    "language_id",
    "stdin",
    "expected_output",
    "stdout",
    "status_id",
    "created_at",
    "finished_at",
    "time",
    "memory",
    "stderr",
    "token",
    "number_of_runs",
    "cpu_time_limit",
    "cpu_extra_time",
    "wall_time_limit",
    "memory_limit",
    "stack_limit",
    "max_processes_and_or_threads",
    "enable_per_process_and_thread_time_limit",
    "enable_per_process_and_thread_memory_limit",
    "max_file_size",
    "compile_output",
    "exit_code",
    "exit_signal",
    "message",
    "wall_time",
    "compiler_options",
    "command_line_arguments",
    "redirect_stderr_to_stdout",
    "callback_url",
    "additional_files",
    "enable_network",
    "status",
    "language",
];

/// The fields answered without a `fields` parameter.
pub(crate) const DEFAULT_FIELDS: [&str; 8] = [
    "token",
    "time",
    "memory",
    "stdout",
    "stderr",
    "compile_output",
    "message",
    "status",
];

/// Which fields to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fields(Vec<&'static str>);

impl Fields {
    pub(crate) fn default_set() -> Self {
        Self(DEFAULT_FIELDS.to_vec())
    }

    /// Judge0's `fields` parameter: absent for the default 8, `*` for all,
    /// or names split on `,` without trimming; unknown names are listed in
    /// the error, as Judge0 does (`invalid fields: [foo, bar]`).
    pub(crate) fn parse(param: Option<&str>) -> Result<Self, String> {
        let Some(param) = param.filter(|p| !p.is_empty()) else {
            return Ok(Self::default_set());
        };
        if param == "*" {
            return Ok(Self(ALL_FIELDS.to_vec()));
        }
        let mut fields = Vec::new();
        let mut invalid = Vec::new();
        for name in param.split(',') {
            match ALL_FIELDS.iter().find(|f| **f == name) {
                Some(field) => fields.push(*field),
                None => invalid.push(name),
            }
        }
        if invalid.is_empty() {
            Ok(Self(fields))
        } else {
            Err(format!("invalid fields: [{}]", invalid.join(", ")))
        }
    }
}

/// What one run (a plain job's, or one test's of a judge-mode job) left.
struct Run<'a> {
    verdict: Verdict,
    stdout: &'a str,
    stderr: &'a str,
    signal: Option<i32>,
    exit_code: Option<i32>,
    cpu_time_ms: u64,
    wall_time_ms: u64,
    memory_kib: Option<u64>,
    message: Option<&'a str>,
    compile_output: Option<&'a str>,
    finished_at_ms: u64,
}

/// A task's state in Judge0's terms.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Outcome {
    pub(crate) status_id: u8,
    pub(crate) stdout: Option<String>,
    pub(crate) stderr: Option<String>,
    pub(crate) compile_output: Option<String>,
    pub(crate) message: Option<String>,
    /// CPU time, in milliseconds.
    pub(crate) time_ms: Option<u64>,
    pub(crate) wall_time_ms: Option<u64>,
    /// Peak memory, KB.
    pub(crate) memory_kb: Option<u64>,
    pub(crate) exit_code: Option<i32>,
    pub(crate) exit_signal: Option<i32>,
    pub(crate) finished_at_ms: Option<u64>,
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

/// Judge0's comparison of `stdout` with `expected_output`: trailing
/// whitespace is removed from each line and from the end.
pub(crate) fn output_matches(stdout: &str, expected: &str) -> bool {
    fn normalize(text: &str) -> String {
        let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
        lines.join("\n").trim_end().to_owned()
    }
    normalize(stdout) == normalize(expected)
}

/// Judge0's status id for a runtime error: by signal (SIGSEGV 7, SIGXFSZ 8,
/// SIGFPE 9, SIGABRT 10, any other 12), or 11 (NZEC) for an exit code.
fn runtime_error_status(signal: Option<i32>) -> u8 {
    match signal {
        Some(11) => 7,
        Some(25) => 8,
        Some(8) => 9,
        Some(6) => 10,
        Some(_) => 12,
        None => 11,
    }
}

impl Outcome {
    /// Queued (1) or running (2).
    pub(crate) fn pending(running: bool) -> Self {
        Self {
            status_id: if running { 2 } else { 1 },
            ..Self::default()
        }
    }

    /// A finished task: status by verdict (and `expected_output`), outputs
    /// `null` when empty, CPU time as `time`, memory in KB.
    pub(crate) fn finished(result: &JobResult, meta: Option<&Meta>) -> Self {
        Self::from_run(
            &Run {
                verdict: result.verdict,
                stdout: &result.stdout,
                stderr: &result.stderr,
                signal: result.signal,
                exit_code: result.exit_code,
                cpu_time_ms: result.cpu_time_ms,
                wall_time_ms: result.wall_time_ms,
                memory_kib: result.memory_peak_kib,
                message: result.message.as_deref(),
                compile_output: result.compile_output.as_deref(),
                finished_at_ms: result.finished_at_ms,
            },
            meta,
        )
    }

    /// Test `index` of a finished judge-mode job that ran a batch's
    /// submissions of one source as its tests (see `handlers`): the
    /// compile's outcome is every test's; a test's own time is its run's.
    pub(crate) fn finished_test(result: &JobResult, index: usize, meta: Option<&Meta>) -> Self {
        let test = result.judge.as_ref().and_then(|j| j.tests.get(index));
        match test {
            Some(test) if result.verdict != Verdict::CompileError => Self::from_run(
                &Run {
                    verdict: test.verdict,
                    stdout: &test.stdout,
                    stderr: &test.stderr,
                    signal: test.signal,
                    exit_code: test.exit_code,
                    cpu_time_ms: test.cpu_time_ms,
                    wall_time_ms: test.time_ms,
                    memory_kib: test.memory_peak_kib,
                    message: test.checker_message.as_deref(),
                    compile_output: result.compile_output.as_deref(),
                    finished_at_ms: result.finished_at_ms,
                },
                meta,
            ),
            _ => Self::finished(result, meta),
        }
    }

    fn from_run(run: &Run<'_>, meta: Option<&Meta>) -> Self {
        let expected = meta.and_then(|m| m.expected_output.as_deref());
        let status_id = match run.verdict {
            // Judged here by Judge0's own comparison, whatever a judge-mode
            // checker said; without `expected_output`, a run that ended
            // well is accepted.
            Verdict::Ok | Verdict::Accepted | Verdict::WrongAnswer | Verdict::PresentationError => {
                match expected {
                    Some(expected) if !output_matches(run.stdout, expected) => 4,
                    _ => 3,
                }
            }
            Verdict::TimeLimit => 5,
            Verdict::CompileError => 6,
            Verdict::RuntimeError => runtime_error_status(run.signal),
            // Judge0 has no memory status: a kill by the memory cgroup is
            // SIGKILL there, "Runtime Error (Other)".
            Verdict::MemoryLimit => 12,
            // Judge0 writes output to a file capped by `max_file_size`, so
            // too much output ends with SIGXFSZ.
            Verdict::OutputLimit => 8,
            Verdict::Cancelled
            | Verdict::InternalError
            | Verdict::JudgeError
            | Verdict::Skipped => 13,
        };
        let compile_output = run.compile_output.and_then(non_empty);
        if status_id == 6 {
            return Self {
                status_id,
                compile_output,
                finished_at_ms: Some(run.finished_at_ms),
                ..Self::default()
            };
        }
        let mut stdout = run.stdout.to_owned();
        let mut stderr = run.stderr.to_owned();
        if meta.is_some_and(|m| m.redirect_stderr_to_stdout) {
            stdout.push_str(&std::mem::take(&mut stderr));
        }
        let message = match (status_id, run.signal, run.exit_code) {
            (5, _, _) => Some("Time limit exceeded".to_owned()),
            (7..=12, Some(signal), _) if run.verdict == Verdict::RuntimeError => {
                Some(format!("Caught fatal signal {signal}"))
            }
            (11, None, Some(code)) => Some(format!("Exited with error status {code}")),
            (3 | 4, _, _) => None,
            _ => run.message.map(str::to_owned),
        };
        let ran = !matches!(
            run.verdict,
            Verdict::Cancelled | Verdict::InternalError | Verdict::Skipped | Verdict::JudgeError
        );
        Self {
            status_id,
            stdout: non_empty(&stdout),
            stderr: non_empty(&stderr),
            compile_output,
            message,
            time_ms: ran.then_some(run.cpu_time_ms),
            wall_time_ms: ran.then_some(run.wall_time_ms),
            memory_kb: if ran { run.memory_kib } else { None },
            // Judge0 reports 0 when the program has no exit code (killed).
            exit_code: ran.then_some(run.exit_code.unwrap_or(0)),
            exit_signal: run.signal,
            finished_at_ms: Some(run.finished_at_ms),
        }
    }

    /// The outcome of a task's state (`running`: a worker has started it);
    /// `test`: the submission is that test of a shared judge-mode job.
    pub(crate) fn of(
        task: &TaskState,
        running: bool,
        test: Option<usize>,
        meta: Option<&Meta>,
    ) -> Self {
        match (task, test) {
            (TaskState::Pending, _) => Self::pending(running),
            (TaskState::Done(result), None) => Self::finished(result, meta),
            (TaskState::Done(result), Some(index)) => Self::finished_test(result, index, meta),
        }
    }
}

/// The submission as JSON, with the `fields` asked for; with `base64`, the
/// text fields (and `message`, as Judge0 1.13.1 does) base64-encoded.
pub(crate) fn render(
    token: &str,
    meta: Option<&Meta>,
    outcome: &Outcome,
    fields: &Fields,
    base64: bool,
) -> Map<String, Value> {
    let text = |value: Option<&str>| match value {
        None => Value::Null,
        Some(text) if base64 => Value::String(encode64(text.as_bytes())),
        Some(text) => Value::String(text.to_owned()),
    };
    let mut out = Map::new();
    for &field in &fields.0 {
        let value = match field {
            "token" => Value::from(token),
            "status" => serde_json::json!({
                "id": outcome.status_id,
                "description": status_description(outcome.status_id),
            }),
            "status_id" => Value::from(outcome.status_id),
            "stdout" => text(outcome.stdout.as_deref()),
            "stderr" => text(outcome.stderr.as_deref()),
            "compile_output" => text(outcome.compile_output.as_deref()),
            "message" => text(outcome.message.as_deref()),
            "time" => outcome.time_ms.map(seconds).into(),
            "wall_time" => outcome.wall_time_ms.map(seconds).into(),
            "memory" => outcome.memory_kb.into(),
            "exit_code" => outcome.exit_code.into(),
            "exit_signal" => outcome.exit_signal.into(),
            "finished_at" => outcome.finished_at_ms.map(timestamp).into(),
            "additional_files" => Value::Null,
            _ => match meta {
                Some(meta) => meta_field(meta, field, &text),
                None => Value::Null,
            },
        };
        out.insert(field.to_owned(), value);
    }
    out
}

fn meta_field(meta: &Meta, field: &str, text: &dyn Fn(Option<&str>) -> Value) -> Value {
    match field {
        "source_code" => text(Some(&meta.source_code)),
        "stdin" => text(meta.stdin.as_deref()),
        "expected_output" => text(meta.expected_output.as_deref()),
        "language_id" => meta.language_id.into(),
        "language" => serde_json::json!({"id": meta.language_id, "name": meta.language_name}),
        "created_at" => timestamp(meta.created_at_ms).into(),
        "number_of_runs" => meta.number_of_runs.into(),
        "cpu_time_limit" => decimal(meta.cpu_time_limit).into(),
        "cpu_extra_time" => decimal(meta.cpu_extra_time).into(),
        "wall_time_limit" => decimal(meta.wall_time_limit).into(),
        "memory_limit" => meta.memory_limit.into(),
        "stack_limit" => meta.stack_limit.into(),
        "max_processes_and_or_threads" => meta.max_processes_and_or_threads.into(),
        "enable_per_process_and_thread_time_limit" => {
            meta.enable_per_process_and_thread_time_limit.into()
        }
        "enable_per_process_and_thread_memory_limit" => {
            meta.enable_per_process_and_thread_memory_limit.into()
        }
        "max_file_size" => meta.max_file_size.into(),
        "compiler_options" => meta.compiler_options.clone().into(),
        "command_line_arguments" => meta.command_line_arguments.clone().into(),
        "redirect_stderr_to_stdout" => meta.redirect_stderr_to_stdout.into(),
        "callback_url" => meta.callback_url.clone().into(),
        "enable_network" => meta.enable_network.into(),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(verdict: Verdict) -> JobResult {
        JobResult {
            stdout: "3\n".into(),
            cpu_time_ms: 12,
            wall_time_ms: 20,
            memory_peak_kib: Some(9_000),
            exit_code: Some(0),
            ..JobResult::internal_error("", 1_000)
        }
        .with_verdict(verdict)
    }

    trait WithVerdict {
        fn with_verdict(self, verdict: Verdict) -> Self;
    }
    impl WithVerdict for JobResult {
        fn with_verdict(mut self, verdict: Verdict) -> Self {
            self.verdict = verdict;
            self.message = None;
            self
        }
    }

    fn expecting(expected: &str) -> Meta {
        Meta {
            expected_output: Some(expected.into()),
            ..Meta::default()
        }
    }

    #[test]
    fn verdicts_map_to_judge0_statuses() {
        let status = |r: &JobResult| Outcome::finished(r, None).status_id;
        assert_eq!(status(&result(Verdict::Ok)), 3);
        assert_eq!(status(&result(Verdict::TimeLimit)), 5);
        assert_eq!(status(&result(Verdict::CompileError)), 6);
        assert_eq!(status(&result(Verdict::MemoryLimit)), 12);
        assert_eq!(status(&result(Verdict::OutputLimit)), 8);
        assert_eq!(status(&result(Verdict::InternalError)), 13);
        let mut crashed = result(Verdict::RuntimeError);
        for (signal, id) in [(Some(11), 7), (Some(25), 8), (Some(8), 9), (Some(6), 10)] {
            crashed.signal = signal;
            assert_eq!(status(&crashed), id, "{signal:?}");
        }
        crashed.signal = Some(9);
        assert_eq!(status(&crashed), 12);
        crashed.signal = None;
        crashed.exit_code = Some(1);
        let outcome = Outcome::finished(&crashed, None);
        assert_eq!(outcome.status_id, 11);
        assert_eq!(
            outcome.message.as_deref(),
            Some("Exited with error status 1")
        );
    }

    #[test]
    fn expected_output_gives_accepted_or_wrong_answer() {
        let ok = result(Verdict::Ok);
        assert_eq!(Outcome::finished(&ok, Some(&expecting("3"))).status_id, 3);
        assert_eq!(
            Outcome::finished(&ok, Some(&expecting("3 \n\n"))).status_id,
            3,
            "trailing whitespace is forgiven"
        );
        assert_eq!(Outcome::finished(&ok, Some(&expecting("4\n"))).status_id, 4);
        assert_eq!(Outcome::finished(&ok, Some(&expecting(" 3"))).status_id, 4);
        assert_eq!(Outcome::finished(&ok, Some(&Meta::default())).status_id, 3);
    }

    #[test]
    fn units_are_seconds_strings_and_kilobytes() {
        let outcome = Outcome::finished(&result(Verdict::Ok), None);
        let out = render(
            "t",
            None,
            &outcome,
            &Fields::parse(Some("*")).unwrap(),
            false,
        );
        assert_eq!(out["time"], "0.012");
        assert_eq!(out["wall_time"], "0.020");
        assert_eq!(out["memory"], 9_000);
        assert_eq!(out["stdout"], "3\n");
        assert_eq!(out["stderr"], Value::Null, "empty output is null");
        assert_eq!(out["finished_at"], "1970-01-01T00:00:01.000Z");
        assert_eq!(out["status"]["id"], 3);
        assert_eq!(out["status"]["description"], "Accepted");
        assert_eq!(out.len(), 35);
    }

    #[test]
    fn base64_covers_outputs_and_message() {
        let mut crashed = result(Verdict::RuntimeError);
        crashed.exit_code = Some(1);
        let outcome = Outcome::finished(&crashed, None);
        let out = render("t", None, &outcome, &Fields::default_set(), true);
        assert_eq!(out["stdout"], "Mwo=\n");
        assert_eq!(out["message"], encode64(b"Exited with error status 1"));
        let mut keys: Vec<&str> = out.keys().map(String::as_str).collect();
        let mut expected = DEFAULT_FIELDS.to_vec();
        keys.sort_unstable();
        expected.sort_unstable();
        assert_eq!(keys, expected, "the default fields");
    }

    #[test]
    fn a_compile_error_has_only_its_compiler_output() {
        let mut failed = result(Verdict::CompileError);
        failed.compile_output = Some("main.c:1: error".into());
        let outcome = Outcome::finished(&failed, None);
        assert_eq!(outcome.status_id, 6);
        assert_eq!(outcome.compile_output.as_deref(), Some("main.c:1: error"));
        assert_eq!((outcome.stdout, outcome.time_ms), (None, None));
    }

    #[test]
    fn fields_are_checked_like_judge0() {
        assert_eq!(Fields::parse(None).unwrap(), Fields::default_set());
        assert_eq!(
            Fields::parse(Some("stdout,status_id")).unwrap(),
            Fields(vec!["stdout", "status_id"])
        );
        assert_eq!(
            Fields::parse(Some("stdout, stderr,foo")).unwrap_err(),
            "invalid fields: [ stderr, foo]"
        );
    }
}
