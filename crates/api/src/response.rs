//! The success bodies, shaped so a client written against the seed sees
//! exactly the fields it knows (`task_id`; `status` + `result`) and can ignore
//! the ones this implementation adds.
//!
//! Some text appears twice in an answer, never in the store: a success's
//! `result.output` is its `stdout`, and a compile error's `result` quotes its
//! `compile_output`. Both are borrowed from the one stored result while the
//! answer is written.

use std::borrow::Cow;

use code_runner_queue::judge::{TestResult, TestSummary};
use code_runner_queue::{JobResult, TaskId, TaskState, Verdict};
use serde::Serialize;

/// `POST /run-code` → `{"task_id": "<uuid>"}`.
#[derive(Serialize)]
pub(crate) struct TaskCreated {
    pub(crate) task_id: TaskId,
}

/// `GET /results/{task_id}` for a task that exists.
///
/// Serialized field order puts the seed's `status` and `result` first, then
/// the extras; a pending task has no extras but its id, its `state` and,
/// once a worker has started it, `started_at_ms`.
#[derive(Serialize)]
pub(crate) struct TaskStatus<'a> {
    status: &'static str,
    result: SeedResult<'a>,
    task_id: TaskId,
    /// `queued`, `running` or `finished`: what `PENDING` hides.
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at_ms: Option<u64>,
    /// Judge mode, while running: the tests finished so far (without their
    /// output). A finished task's tests are in `details`.
    #[serde(skip_serializing_if = "Option::is_none")]
    tests: Option<&'a [TestResult]>,
    #[serde(flatten)]
    details: Option<Details<'a>>,
}

/// The seed's `result`: `null`, `{"output": ...}` or the failure message.
#[derive(Serialize)]
#[serde(untagged)]
enum SeedResult<'a> {
    Pending,
    Success { output: &'a str },
    Failure(Cow<'a, str>),
}

/// Everything about a finished task beyond the seed's fields.
#[derive(Serialize)]
struct Details<'a> {
    verdict: Verdict,
    stdout: &'a str,
    stderr: &'a str,
    compile_output: Option<&'a str>,
    exit_code: Option<i32>,
    signal: Option<i32>,
    output_truncated: bool,
    wall_time_ms: u64,
    /// The compile step's wall time, for compiled languages.
    #[serde(skip_serializing_if = "Option::is_none")]
    compile_time_ms: Option<u64>,
    cpu_time_ms: u64,
    /// `null` when the sandbox could not measure it.
    memory_peak_kib: Option<u64>,
    /// When the task was submitted; `None` for results stored before this
    /// field existed.
    queued_at_ms: Option<u64>,
    finished_at_ms: u64,
    language: Option<&'a str>,
    version: Option<&'a str>,
    /// Judge mode (SPEC §7): each test's result, in the order given.
    #[serde(skip_serializing_if = "Option::is_none")]
    tests: Option<&'a [TestResult]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<&'a TestSummary>,
}

impl<'a> TaskStatus<'a> {
    /// `running_since`: when a worker started the task, if it is pending
    /// and one has.
    pub(crate) fn new(task_id: TaskId, state: &'a TaskState, running_since: Option<u64>) -> Self {
        match state {
            TaskState::Pending => Self {
                status: "PENDING",
                result: SeedResult::Pending,
                task_id,
                state: if running_since.is_some() {
                    "running"
                } else {
                    "queued"
                },
                started_at_ms: running_since,
                tests: None,
                details: None,
            },
            TaskState::Done(result) => {
                let (status, seed_result) = match result.verdict {
                    // A judged job's `accepted` is the seed's success too.
                    Verdict::Ok | Verdict::Accepted => (
                        "SUCCESS",
                        SeedResult::Success {
                            output: &result.stdout,
                        },
                    ),
                    _ => ("FAILURE", SeedResult::Failure(failure_message(result))),
                };
                let non_empty = |text: &'a str| (!text.is_empty()).then_some(text);
                Self {
                    status,
                    result: seed_result,
                    task_id,
                    state: "finished",
                    started_at_ms: Some(result.started_at_ms),
                    tests: None,
                    details: Some(Details {
                        verdict: result.verdict,
                        stdout: &result.stdout,
                        stderr: &result.stderr,
                        compile_output: result.compile_output.as_deref(),
                        exit_code: result.exit_code,
                        signal: result.signal,
                        output_truncated: result.output_truncated,
                        wall_time_ms: result.wall_time_ms,
                        compile_time_ms: result.compile_time_ms,
                        cpu_time_ms: result.cpu_time_ms,
                        memory_peak_kib: result.memory_peak_kib,
                        queued_at_ms: (result.submitted_at_ms > 0)
                            .then_some(result.submitted_at_ms),
                        finished_at_ms: result.finished_at_ms,
                        language: non_empty(&result.language),
                        version: non_empty(&result.language_version),
                        tests: result.judge.as_ref().map(|j| j.tests.as_slice()),
                        summary: result.judge.as_ref().map(|j| &j.summary),
                    }),
                }
            }
        }
    }
}

impl<'a> TaskStatus<'a> {
    /// A pending task's judge progress (ignored once it is finished).
    pub(crate) fn with_progress(mut self, tests: Option<&'a [TestResult]>) -> Self {
        if self.details.is_none() {
            self.tests = tests;
        }
        self
    }
}

/// The seed promises a human-readable string for every failure. Workers set
/// `message`, except for a compile error, whose diagnostics they store once,
/// in `compile_output`: its message is made here. Should a worker leave out
/// another message, say at least what kind of failure it was rather than
/// hand seed clients a `null` they do not expect.
fn failure_message(result: &JobResult) -> Cow<'_, str> {
    if let Some(message) = &result.message {
        return Cow::Borrowed(message);
    }
    match result.verdict {
        Verdict::CompileError => match result.compile_output.as_deref() {
            Some(diagnostics) if !diagnostics.is_empty() => {
                Cow::Owned(format!("Compilation failed:\n{diagnostics}"))
            }
            _ => Cow::Borrowed("Compilation failed"),
        },
        Verdict::RuntimeError => match (result.exit_code, result.signal) {
            (_, Some(signal)) => Cow::Owned(format!("Killed by signal {signal}")),
            (Some(code), None) => Cow::Owned(format!("Exited with code {code}")),
            (None, None) => Cow::Borrowed("Runtime error"),
        },
        Verdict::TimeLimit => Cow::Borrowed("Time limit exceeded"),
        Verdict::MemoryLimit => Cow::Borrowed("Memory limit exceeded"),
        Verdict::OutputLimit => Cow::Borrowed("Output limit exceeded"),
        Verdict::Cancelled => Cow::Borrowed("Cancelled"),
        // Judge mode: workers name the failing test; without a message,
        // at least the kind of failure.
        Verdict::WrongAnswer => Cow::Borrowed("Wrong answer"),
        Verdict::PresentationError => Cow::Borrowed("Presentation error"),
        Verdict::JudgeError => Cow::Borrowed("Judge error"),
        // `Ok` and `Accepted` never reach here, nor `Skipped` (a test's
        // verdict, never a job's); an internal error without a message is
        // still an internal error.
        Verdict::Ok | Verdict::Accepted | Verdict::Skipped | Verdict::InternalError => {
            Cow::Borrowed("Internal error")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pending_has_only_the_seed_fields_and_the_id() {
        let id = TaskId::new();
        let body = serde_json::to_value(TaskStatus::new(id, &TaskState::Pending, None)).unwrap();
        assert_eq!(
            body,
            json!({"status": "PENDING", "result": null, "task_id": id.to_string(), "state": "queued"})
        );
        let body = serde_json::to_value(TaskStatus::new(id, &TaskState::Pending, Some(7))).unwrap();
        assert_eq!(body["state"], "running");
        assert_eq!(body["started_at_ms"], 7);
    }

    #[test]
    fn failures_without_a_message_still_say_something() {
        let mut result = JobResult::internal_error("x", 0);
        result.message = None;
        result.verdict = Verdict::RuntimeError;
        result.exit_code = Some(3);
        assert_eq!(failure_message(&result), "Exited with code 3");
        result.signal = Some(9);
        assert_eq!(failure_message(&result), "Killed by signal 9");
        result.verdict = Verdict::CompileError;
        result.compile_output = Some("main.c:1: error".into());
        assert_eq!(
            failure_message(&result),
            "Compilation failed:\nmain.c:1: error"
        );
    }
}
