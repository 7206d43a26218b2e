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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Command-line arguments for the program (after the run command).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Extra source files written next to the main one (multi-file programs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<SourceFile>,
    /// The run step's wall-clock (and CPU) limit the client asked for, in
    /// milliseconds; `None` means the worker's configured limit. Never above it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_limit_ms: Option<u64>,
    /// The run step's memory limit the client asked for, in MiB; `None`
    /// means the worker's configured limit. Never above it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit_mb: Option<u64>,
    /// Whom the task belongs to: a tag derived from the API key that
    /// submitted it (a hash, never the key itself), or `None` without keys.
    /// Reads and cancels that name another owner find no such task (see
    /// [`Queue::state_for`](crate::Queue::state_for)). ASCII letters, digits
    /// and `-_.:/` only; the Redis backend hex-encodes anything else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Judge mode (SPEC §7): the tests to run the program on and how to
    /// check each one. `None` for a plain run; records queued before judge
    /// mode existed read as `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<crate::judge::JudgeSpec>,
    /// Live runs (SPEC §9, see [`crate::live`]): the worker reports the
    /// job's progress and output to the task's live log as it runs, and an
    /// interactive job also takes stdin and signals from its input log.
    /// `None`: a plain job, whose output is seen only in its result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveMode>,
}

/// How a live job is watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveMode {
    /// Output chunks are reported as they are written (`"stream": true`).
    Stream,
    /// Streamed, and the program's stdin comes from the client while it
    /// runs (a WebSocket), after the job's own `stdin`.
    Interactive,
}

/// What a stored record costs beyond its strings, in the in-process store's
/// byte budget: a rough allowance for the map entry, the struct and the
/// allocator, so that a flood of empty records is not free.
pub const RECORD_OVERHEAD_BYTES: u64 = 256;

impl Job {
    /// Roughly the bytes the job takes in memory: its strings plus
    /// [`RECORD_OVERHEAD_BYTES`] (and a little per argument and file).
    pub fn size_bytes(&self) -> u64 {
        let args: usize = self.args.iter().map(|a| a.len() + 24).sum();
        let files: usize = self
            .files
            .iter()
            .map(|f| f.name.len() + f.content.len() + 48)
            .sum();
        let strings = self.language.len()
            + self.code.len()
            + self.stdin.len()
            + args
            + files
            + self.owner.as_ref().map_or(0, String::len)
            + self.judge.as_ref().map_or(0, |j| j.size_bytes() as usize);
        strings as u64 + RECORD_OVERHEAD_BYTES
    }

    /// A job with only the seed's fields (plus optional stdin), every
    /// addition at its default.
    pub fn new(
        id: TaskId,
        language: impl Into<String>,
        code: impl Into<String>,
        submitted_at_ms: u64,
    ) -> Self {
        Self {
            id,
            language: language.into(),
            code: code.into(),
            stdin: String::new(),
            submitted_at_ms,
            args: Vec::new(),
            files: Vec::new(),
            time_limit_ms: None,
            memory_limit_mb: None,
            owner: None,
            judge: None,
            live: None,
        }
    }
}

/// An extra source file of a multi-file program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFile {
    /// A plain file name (no directories), checked by the API; never the
    /// name of the main source nor of another file of the job (see
    /// [`SourceFile::name_clashes`]).
    pub name: String,
    pub content: String,
}

/// Why an extra file's name cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameClash {
    /// It is the name the program's own source is saved under.
    MainSource,
    /// An earlier file of the job (at this index) has the same name.
    Repeated { first: usize },
}

impl SourceFile {
    /// The files of `files` whose names cannot be used, by index, in order:
    /// each file is written next to the main source (saved as `main_file`,
    /// when it is known) under its own name, so two files of one name would
    /// silently keep one, and a file named like the main source would take
    /// its place. The API refuses such a request; a worker refuses such a
    /// job (queued by another API version) before it reaches the sandbox.
    pub fn name_clashes(main_file: Option<&str>, files: &[SourceFile]) -> Vec<(usize, NameClash)> {
        let mut first_of = std::collections::HashMap::with_capacity(files.len());
        let mut clashes = Vec::new();
        for (index, file) in files.iter().enumerate() {
            if main_file == Some(file.name.as_str()) {
                clashes.push((index, NameClash::MainSource));
            } else if let Some(&first) = first_of.get(file.name.as_str()) {
                clashes.push((index, NameClash::Repeated { first }));
            } else {
                first_of.insert(file.name.as_str(), index);
            }
        }
        clashes
    }
}

/// Where a task is: waiting or running, or finished with a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
// `Done` is large and `Pending` empty, but a state is built once per read or
// write and moved rarely: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
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
    // Judge mode (SPEC §7): a job's overall verdict and each test's.
    /// Every test's output was accepted.
    Accepted,
    /// The output was wrong (a built-in checker, or a checker's exit 1).
    WrongAnswer,
    /// A custom checker's exit 2.
    PresentationError,
    /// The checker failed (did not compile, crashed, another exit code, a
    /// limit): not the submission's fault.
    JudgeError,
    /// A test not run after an earlier failure (`stop_on_first_failure`).
    Skipped,
}

impl Verdict {
    /// Every verdict, in the order documentation lists them.
    pub const ALL: [Verdict; 13] = [
        Verdict::Ok,
        Verdict::CompileError,
        Verdict::RuntimeError,
        Verdict::TimeLimit,
        Verdict::MemoryLimit,
        Verdict::OutputLimit,
        Verdict::Cancelled,
        Verdict::InternalError,
        Verdict::Accepted,
        Verdict::WrongAnswer,
        Verdict::PresentationError,
        Verdict::JudgeError,
        Verdict::Skipped,
    ];

    /// The wire name, as serde writes it (`time_limit`).
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::CompileError => "compile_error",
            Verdict::RuntimeError => "runtime_error",
            Verdict::TimeLimit => "time_limit",
            Verdict::MemoryLimit => "memory_limit",
            Verdict::OutputLimit => "output_limit",
            Verdict::Cancelled => "cancelled",
            Verdict::InternalError => "internal_error",
            Verdict::Accepted => "accepted",
            Verdict::WrongAnswer => "wrong_answer",
            Verdict::PresentationError => "presentation_error",
            Verdict::JudgeError => "judge_error",
            Verdict::Skipped => "skipped",
        }
    }
}

/// The final result of a task, written once by the worker that ran it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    pub verdict: Verdict,
    /// Human-readable reason for any verdict but `ok` (the seed's FAILURE
    /// text). `None` for a compile error whose diagnostics are in
    /// `compile_output`: they are stored once, and the API's answer quotes
    /// them after "Compilation failed:".
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
    /// The run step's wall time (the compile step's is `compile_time_ms`).
    pub wall_time_ms: u64,
    /// The compile step's wall time; `None` for interpreted languages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compile_time_ms: Option<u64>,
    pub cpu_time_ms: u64,
    /// `None` when the sandbox could not measure it (never a made-up 0).
    #[serde(default)]
    pub memory_peak_kib: Option<u64>,
    pub started_at_ms: u64,
    pub finished_at_ms: u64,
    /// When the job was queued (the job's `submitted_at_ms`); 0 in results
    /// stored before this field existed.
    #[serde(default)]
    pub submitted_at_ms: u64,
    /// The canonical language name the job ran as; empty when unknown.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub language: String,
    /// That language's toolchain version, from the worker's language table.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub language_version: String,
    /// Judge mode: each test's result and the summary; `None` for a plain run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<crate::judge::JudgeReport>,
}

impl JobResult {
    /// Roughly the bytes the result takes in memory: its strings plus
    /// [`RECORD_OVERHEAD_BYTES`].
    pub fn size_bytes(&self) -> u64 {
        let strings = self.message.as_ref().map_or(0, String::len)
            + self.stdout.len()
            + self.stderr.len()
            + self.compile_output.as_ref().map_or(0, String::len)
            + self.language.len()
            + self.language_version.len()
            + self.judge.as_ref().map_or(0, |j| j.size_bytes() as usize);
        strings as u64 + RECORD_OVERHEAD_BYTES
    }

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
            compile_time_ms: None,
            cpu_time_ms: 0,
            memory_peak_kib: None,
            started_at_ms: at_ms,
            finished_at_ms: at_ms,
            submitted_at_ms: 0,
            language: String::new(),
            language_version: String::new(),
            judge: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_clashes_are_the_main_sources_name_and_every_repeat() {
        let files: Vec<SourceFile> = ["a.h", "Foo.java", "b.h", "a.h", "a.h"]
            .into_iter()
            .map(|name| SourceFile {
                name: name.into(),
                content: String::new(),
            })
            .collect();
        assert_eq!(
            SourceFile::name_clashes(Some("Foo.java"), &files),
            [
                (1, NameClash::MainSource),
                (3, NameClash::Repeated { first: 0 }),
                (4, NameClash::Repeated { first: 0 }),
            ]
        );
        assert_eq!(
            SourceFile::name_clashes(None, &files[..2]),
            [],
            "no main source known: only repeats"
        );
    }
}
