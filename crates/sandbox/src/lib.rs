//! Runs one program in a fresh, isolated, resource-limited sandbox.
//!
//! - [`Sandbox`]: the one trait every backend implements (and the one shared
//!   test suite every backend passes).
//! - [`LanguageTable`]: how each language is compiled and run.
//! - [`Limits`]: the resource limits of a step, as data.
//! - [`judge`]: judge mode — one submission compiled once and run on many
//!   tests, each a fresh step, with an optional custom checker the
//!   submission cannot reach ([`Sandbox::execute_tests`]).
//! - [`native`]: the default backend — bubblewrap for namespaces and mounts,
//!   cgroups (v1 or v2) for memory, processes and CPU accounting, rlimits, and
//!   an unprivileged host uid per slot.
//! - [`docker`]: a fresh container per step through the Docker Engine API,
//!   with a configurable OCI runtime (`runc`, `kata`, `runsc`) and a pool of
//!   pre-started containers.
//!
//! This crate knows nothing of HTTP or queues: the worker turns a job into a
//! [`Program`] and an [`Execution`] back into a result (in judge mode, a
//! [`Program`] and [`TestRun`]s, and a [`Judged`] back).

pub mod docker;
pub mod judge;
pub mod language;
pub mod limits;
pub mod live;
pub mod native;
mod report;

use std::sync::Arc;

use async_trait::async_trait;

pub use docker::{DockerConfig, DockerSandbox};
pub use judge::{
    CheckerProgram, Judged, TestObserver, TestOutcome, TestRun, CHECKER_FILES, INTERACTOR_FILES,
};
pub use language::{Language, LanguageTable, LanguageTableError, DEFAULT_TABLE};
pub use limits::{LimitError, Limits};
pub use live::{LiveIo, OutputChunk, OutputStream, StdinEvent};
pub use native::{KeeperCommand, NativeConfig, NativeSandbox};
pub use report::{Execution, StepReport, Termination};

/// One program to run, with its limits.
#[derive(Debug, Clone)]
pub struct Program {
    pub language: Arc<Language>,
    pub source: String,
    pub stdin: Vec<u8>,
    /// Command-line arguments appended to the language's run command.
    pub args: Vec<String>,
    /// Extra source files `(name, contents)`, written into the scratch
    /// directory next to the main source before compiling. Names are plain
    /// file names (checked by the API; the scratch writer refuses links).
    pub files: Vec<(String, String)>,
    pub compile_limits: Limits,
    pub run_limits: Limits,
}

impl Program {
    /// `source` in `language` with the default limits, and no stdin,
    /// arguments or extra files.
    pub fn new(language: Arc<Language>, source: impl Into<String>) -> Self {
        Self {
            language,
            source: source.into(),
            stdin: Vec::new(),
            args: Vec::new(),
            files: Vec::new(),
            compile_limits: Limits::COMPILE_DEFAULT,
            run_limits: Limits::RUN_DEFAULT,
        }
    }
}

/// A way to run untrusted programs.
#[async_trait]
pub trait Sandbox: Send + Sync + 'static {
    /// Compiles (when the language needs it) and runs `program` in a fresh
    /// sandbox that is destroyed before this returns. An `Err` means the
    /// sandbox itself failed, never that the program did.
    async fn execute(&self, program: Program) -> Result<Execution, SandboxError>;

    /// [`Sandbox::execute`], reporting output chunks through `live` as the
    /// program writes them and, for an interactive run, feeding it the
    /// client's stdin and signals (see [`live`]). The default reports the
    /// whole output once the job is over and takes no live stdin.
    async fn execute_live(
        &self,
        program: Program,
        live: LiveIo,
    ) -> Result<Execution, SandboxError> {
        let execution = self.execute(program).await?;
        live::report_at_end(&live, &execution);
        Ok(execution)
    }

    /// Judge mode: compiles `program` once (its `stdin`, `args` and
    /// `run_limits` are not used) and `checker`, when given, once; then runs
    /// each test in a fresh step with the test's stdin, arguments and
    /// limits, the checker after it (see [`judge`]), and tells `observer`
    /// after each test, which may end the job there. Everything of the job
    /// is destroyed before this returns. An `Err` means the sandbox itself
    /// failed (tests the observer already saw stand as reported).
    ///
    /// The default implementation ([`judge::execute_per_test`]) goes
    /// through [`Sandbox::execute`] alone and compiles for every test; the
    /// native and docker backends compile once and run the whole job in one
    /// slot.
    async fn execute_tests(
        &self,
        program: Program,
        checker: Option<CheckerProgram>,
        tests: Vec<TestRun>,
        observer: &mut dyn TestObserver,
    ) -> Result<Judged, SandboxError> {
        judge::execute_per_test(self, program, checker, tests, observer).await
    }

    /// Interactive judge mode: compiles `program` and `interactor` once
    /// each, then per test runs both at once, each in a fresh step under its
    /// own limits (the test's for the submission, the interactor's
    /// `run_limits` for it), the interactor's stdout piped to the
    /// submission's stdin and the submission's stdout to the interactor's
    /// stdin; the interactor is started as `<interactor> input output
    /// [answer]` ([`judge::interactor_args`]) with the test's stdin as its
    /// `input` file and the test's answer, when it has one, as `answer`.
    /// Each test's outcome carries both steps
    /// ([`TestOutcome::interactor`]); the submission's `stdout` is empty.
    ///
    /// Backends that cannot join two steps by pipes answer
    /// [`SandboxError::Unavailable`] (the default).
    async fn execute_interactive(
        &self,
        program: Program,
        interactor: CheckerProgram,
        tests: Vec<TestRun>,
        observer: &mut dyn TestObserver,
    ) -> Result<Judged, SandboxError> {
        let _ = (program, interactor, tests, observer);
        Err(SandboxError::Unavailable(
            "interactive judging (an interactor) is not supported by this sandbox backend".into(),
        ))
    }
}

/// A failure of the sandbox machinery (not of the program).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("sandbox set-up failed: {what}")]
    Setup {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start {program}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid limits")]
    Limits(#[from] LimitError),
    #[error("the sandbox is not usable here: {0}")]
    Unavailable(String),
}

impl SandboxError {
    pub(crate) fn setup(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| SandboxError::Setup { what, source }
    }
}

/// True for a name that can only mean one file directly inside the scratch
/// directory: not empty, at most 255 bytes, no `/` or NUL, and not `.`, `..`
/// or any other name starting with a dot.
pub fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && !name.starts_with('.') && !name.contains(['/', '\0'])
}
