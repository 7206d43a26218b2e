//! The records that travel through the queue: a job going to a worker, and the
//! state of its task coming back.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The public id of a task, as returned by `POST /run-code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(Uuid);

impl TaskId {
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }
}

impl Default for TaskId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for TaskId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// One program to run, as the API accepted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: TaskId,
    /// Canonical language name (aliases are resolved by the API).
    pub language: String,
    pub code: String,
    /// Bytes given to the program's standard input; empty when absent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stdin: String,
    /// When the API accepted the job, in milliseconds since the Unix epoch.
    pub submitted_at_ms: u64,
}

/// Where a task is: waiting or running, or finished with a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TaskState {
    Pending,
    Done(JobResult),
}

/// The machine-readable kind of a finished task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Ok,
    CompileError,
    RuntimeError,
    TimeLimit,
    MemoryLimit,
    OutputLimit,
    Cancelled,
    InternalError,
}

/// The final result of a task, written once by the worker that ran it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    pub verdict: Verdict,
    /// Human-readable reason for any verdict but `ok` (the seed's FAILURE text).
    pub message: Option<String>,
    /// The program's standard output (UTF-8, invalid bytes replaced).
    pub stdout: String,
    pub stderr: String,
    /// The compiler's output, for compiled languages.
    pub compile_output: Option<String>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// True when output went past the cap and was cut.
    pub output_truncated: bool,
    pub wall_time_ms: u64,
    pub cpu_time_ms: u64,
    pub memory_peak_kib: u64,
    pub started_at_ms: u64,
    pub finished_at_ms: u64,
}

impl JobResult {
    /// A result for a job that never reached its program (e.g. a worker fault).
    pub fn internal_error(message: impl Into<String>, at_ms: u64) -> Self {
        Self {
            verdict: Verdict::InternalError,
            message: Some(message.into()),
            stdout: String::new(),
            stderr: String::new(),
            compile_output: None,
            exit_code: None,
            signal: None,
            output_truncated: false,
            wall_time_ms: 0,
            cpu_time_ms: 0,
            memory_peak_kib: 0,
            started_at_ms: at_ms,
            finished_at_ms: at_ms,
        }
    }
}
