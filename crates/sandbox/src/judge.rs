//! Judge mode's sandbox layer: one submission, compiled once, run on many
//! tests, each in a fresh step; and an optional custom checker, compiled once
//! per job and run sandboxed after each test, where the submission cannot
//! reach it.
//!
//! This module only runs things and reports what happened. Verdicts
//! (`accepted`, `wrong_answer`, …), the built-in comparisons (`exact`,
//! `lines`, `tokens`, …), test sets, output caps for results and progress
//! reports are the caller's (the worker's): it gets a [`StepReport`] per
//! step, as from [`Sandbox::execute`].
//!
//! The entry point is [`Sandbox::execute_tests`]:
//!
//! - the submission ([`Program`]; its `stdin`, `args` and `run_limits` are
//!   not used: each [`TestRun`] brings its own) is compiled once, with its
//!   `compile_limits`; a failed compile ends the job ([`Judged::compile`]);
//! - then the checker, when there is one ([`CheckerProgram`]); a failed
//!   compile ends the job too ([`Judged::checker_compile`]), before any test;
//! - then each test in order: a fresh step with the test's stdin, arguments
//!   and limits; when the run ended on its own with an exit code (any code:
//!   [`checker_runs_after`]), the checker's step, as
//!   `<checker> input output answer` in its own directory, under its
//!   `run_limits`; then the observer ([`TestObserver::finished`]), whose
//!   `false` ends the job (stop on first failure).
//!
//! What a checker's exit means is the caller's call; the usual (testlib's)
//! convention is 0 accepted, 1 wrong answer, 2 presentation error, anything
//! else — another code, a signal, a limit — an error of the checker (a judge
//! error, not the submission's fault). Its stderr is its message.
//!
//! The native backend runs the whole job in one slot (no job ever waits for
//! a second one), compiles each program once, and keeps the checker in a
//! directory no step of the submission can see (docs/judge-sandbox.md). The
//! docker backend also compiles each program once, in a container of its
//! own, and gives every test (and every checker run) a fresh container with
//! that compile's `/work`. Backends without their own implementation get [`execute_per_test`], which
//! keeps the same guarantees by calling [`Sandbox::execute`] per test, and
//! so compiles per test.

use std::sync::Arc;

use async_trait::async_trait;

use crate::limits::Limits;
use crate::report::{StepReport, Termination};
use crate::{Language, Program, Sandbox, SandboxError};

/// The names of the files a checker finds in its working directory after
/// each test, in the order they are its arguments: the test's input (the
/// submission's stdin), the submission's stdout (as the sandbox captured
/// it, so cut at the test's output cap), and the expected answer. A
/// checker's own files may not use these names.
pub const CHECKER_FILES: [&str; 3] = ["input", "output", "answer"];

/// The names of the files an interactor finds in its working directory
/// during each test, in the order they are its arguments: the test's input
/// (read-only), where it may write its own output (discarded), and, when
/// the test has an expected output, that (read-only) as `answer`:
/// testlib's `interactor <input> <output> [<answer>]`.
pub const INTERACTOR_FILES: [&str; 3] = CHECKER_FILES;

/// An interactor's arguments for a test: `input output`, and `answer`
/// when the test has an expected answer.
pub fn interactor_args(test: &TestRun) -> Vec<String> {
    let given = if test.answer.is_empty() { 2 } else { 3 };
    INTERACTOR_FILES[..given]
        .iter()
        .map(|name| name.to_string())
        .collect()
}

/// One test of a judged submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRun {
    pub stdin: Vec<u8>,
    /// Command-line arguments appended to the language's run command.
    pub args: Vec<String>,
    /// The run's limits (time, CPU time of the whole tree, memory,
    /// processes, output, scratch).
    pub limits: Limits,
    /// The expected output, handed to a custom checker as its `answer`
    /// file; not used without one.
    pub answer: Vec<u8>,
}

/// A custom checker: compiled once per job, run after each test as
/// `<run command> input output answer` with its own directory (its sources
/// and, read-only, the three [`CHECKER_FILES`]) as the working directory.
#[derive(Debug, Clone)]
pub struct CheckerProgram {
    pub language: Arc<Language>,
    pub source: String,
    /// Extra source files `(name, contents)`, plain names other than the
    /// [`CHECKER_FILES`] and the checker's main source.
    pub files: Vec<(String, String)>,
    pub compile_limits: Limits,
    /// The limits of each of the checker's runs.
    pub run_limits: Limits,
}

/// What happened on one test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestOutcome {
    /// The submission's run.
    pub run: StepReport,
    /// The custom checker's step, when there is one and the run ended on
    /// its own with an exit code ([`checker_runs_after`]).
    pub checker: Option<StepReport>,
    /// In an interactive job ([`Sandbox::execute_interactive`]), the
    /// interactor's step, which ran alongside the submission's (whose
    /// `stdout` is then empty: it went to the interactor).
    pub interactor: Option<StepReport>,
}

/// Everything a sandbox did for one judged job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Judged {
    /// The submission's compile step, for compiled languages. When it
    /// failed, nothing else ran.
    pub compile: Option<StepReport>,
    /// The checker's (or, in an interactive job, the interactor's) compile
    /// step, for one in a compiled language. When it failed, no test ran.
    pub checker_compile: Option<StepReport>,
    /// One outcome per test run, in the order given: fewer than the tests
    /// given when the observer stopped the job (the rest were skipped) or a
    /// compile failed. Each keeps at most [`KEPT_OUTPUT`] bytes of each of
    /// its streams (the observer saw them whole), so that a job of a
    /// thousand tests at the output cap does not hold a gigabyte.
    pub tests: Vec<TestOutcome>,
}

/// The most of each stream (stdout, stderr, of the run and of the checker)
/// a test's outcome keeps in [`Judged::tests`] once its observer has seen it.
pub const KEPT_OUTPUT: usize = 64 * 1024;

impl Judged {
    /// Keeps a test's outcome, its output cut to [`KEPT_OUTPUT`] per stream.
    pub fn keep(&mut self, mut outcome: TestOutcome) {
        let reports = std::iter::once(&mut outcome.run)
            .chain(outcome.checker.as_mut())
            .chain(outcome.interactor.as_mut());
        for report in reports {
            report.stdout.truncate(KEPT_OUTPUT);
            report.stdout.shrink_to_fit();
            report.stderr.truncate(KEPT_OUTPUT);
            report.stderr.shrink_to_fit();
        }
        self.tests.push(outcome);
    }
}

/// Told about each test as soon as it (and its checker) finished, while the
/// job goes on; the job waits for the answer.
#[async_trait]
pub trait TestObserver: Send {
    /// After each test, with its index in the list given. `false` ends the
    /// job here: no further test runs (stop on first failure).
    async fn finished(&mut self, index: usize, outcome: &TestOutcome) -> bool;
}

/// A closure is an observer: `&mut |_, _| true` runs every test.
#[async_trait]
impl<F> TestObserver for F
where
    F: FnMut(usize, &TestOutcome) -> bool + Send,
{
    async fn finished(&mut self, index: usize, outcome: &TestOutcome) -> bool {
        self(index, outcome)
    }
}

/// Whether the checker runs after a test with this run: when the program
/// ended on its own with an exit code, whatever the code. Not after a limit
/// (time, memory, output) or a signal.
pub fn checker_runs_after(run: &StepReport) -> bool {
    run.termination == Termination::Exited && run.exit_code.is_some()
}

/// Refuses a checker whose extra files would collide with the test files
/// or its own main source, or are not plain names.
pub(crate) fn check_checker_files(
    checker: &CheckerProgram,
    main_source: &str,
) -> Result<(), SandboxError> {
    let reserved = |name: &str| CHECKER_FILES.contains(&name) || name == main_source;
    for (name, _) in &checker.files {
        if reserved(name) || !crate::is_plain_file_name(name) {
            return Err(invalid(format!(
                "checker file {name:?}: not a plain name, or one of {CHECKER_FILES:?} or the checker's source"
            )));
        }
    }
    if CHECKER_FILES.contains(&main_source) {
        return Err(invalid(format!(
            "the checker's language names its source {main_source:?}, one of {CHECKER_FILES:?}"
        )));
    }
    Ok(())
}

fn invalid(what: String) -> SandboxError {
    SandboxError::setup(what)(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        "invalid judge job",
    ))
}

/// Checks every limit of a judged job before anything runs.
pub(crate) fn validate(
    program: &Program,
    checker: Option<&CheckerProgram>,
    tests: &[TestRun],
) -> Result<(), SandboxError> {
    program.compile_limits.validate()?;
    for test in tests {
        test.limits.validate()?;
    }
    if let Some(checker) = checker {
        checker.compile_limits.validate()?;
        checker.run_limits.validate()?;
        let main = checker
            .language
            .source_file(&crate::language::Substitutions {
                main: checker.language.main_name(&checker.source),
                memory_mb: checker.run_limits.memory_mb(),
            });
        check_checker_files(checker, &main)?;
    }
    Ok(())
}

/// Judge mode on any backend, through [`Sandbox::execute`] alone: the
/// default of [`Sandbox::execute_tests`]. Slow but with the same
/// guarantees, because every step is a job of its own:
///
/// - the submission is compiled again for every test (each test is one
///   `execute` with the test's stdin, arguments and limits); the first
///   compile is the one reported, and a later one that fails is an `Err`;
/// - a compiled checker is compiled once up front (an `execute` whose run,
///   on empty files, is discarded) so a failed compile ends the job before
///   any test is reported, then again with every test: each checker run is
///   an `execute` of the checker with the three [`CHECKER_FILES`] as extra
///   files, which never shares a sandbox with the submission;
/// - extra files are text, so test data a checker needs (input, output,
///   answer) must be UTF-8 here: other bytes are an `Err`, never silently
///   changed (the native backend passes any bytes);
/// - each `execute` takes a slot of its own, one after the other, so a job
///   never holds two at once.
///
/// With no tests, the submission is still compiled (and, on this path, run
/// once on empty input, the run discarded) to report its compile step.
pub async fn execute_per_test<S: Sandbox + ?Sized>(
    sandbox: &S,
    program: Program,
    checker: Option<CheckerProgram>,
    tests: Vec<TestRun>,
    observer: &mut dyn TestObserver,
) -> Result<Judged, SandboxError> {
    validate(&program, checker.as_ref(), &tests)?;
    let mut judged = Judged::default();
    if tests.is_empty() {
        let execution = sandbox
            .execute(Program {
                stdin: Vec::new(),
                args: Vec::new(),
                ..program
            })
            .await?;
        judged.compile = execution.compile;
        return Ok(judged);
    }
    let checker_program = |files: [&[u8]; 3]| -> Result<Program, SandboxError> {
        let checker = checker.as_ref().expect("called with a checker");
        let mut extra = checker.files.clone();
        for (name, bytes) in CHECKER_FILES.iter().zip(files) {
            let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
                SandboxError::Unavailable(format!(
                    "this backend passes only UTF-8 test files to a checker, and `{name}` is not"
                ))
            })?;
            extra.push((name.to_string(), text));
        }
        Ok(Program {
            language: checker.language.clone(),
            source: checker.source.clone(),
            stdin: Vec::new(),
            args: CHECKER_FILES.iter().map(|n| n.to_string()).collect(),
            files: extra,
            compile_limits: checker.compile_limits,
            run_limits: checker.run_limits,
        })
    };
    for (index, test) in tests.into_iter().enumerate() {
        let execution = sandbox
            .execute(Program {
                stdin: test.stdin.clone(),
                args: test.args.clone(),
                run_limits: test.limits,
                ..program.clone()
            })
            .await?;
        if index == 0 {
            judged.compile = execution.compile;
        }
        let Some(run) = execution.run else {
            if index == 0 {
                return Ok(judged);
            }
            return Err(SandboxError::Unavailable(format!(
                "the submission compiled for test 1 but not for test {}",
                index + 1
            )));
        };
        let compiled_checker = checker
            .as_ref()
            .is_some_and(|c| c.language.compile.is_some());
        if index == 0 && compiled_checker {
            let compiled = sandbox.execute(checker_program([b"", b"", b""])?).await?;
            let failed = compiled.run.is_none();
            judged.checker_compile = compiled.compile;
            if failed {
                return Ok(judged);
            }
        }
        let checked = match &checker {
            Some(_) if checker_runs_after(&run) => {
                let files = [&test.stdin[..], &run.stdout[..], &test.answer[..]];
                let execution = sandbox.execute(checker_program(files)?).await?;
                match execution.run {
                    Some(report) => Some(report),
                    None => {
                        return Err(SandboxError::Unavailable(
                            "the checker compiled once but not again".into(),
                        ))
                    }
                }
            }
            _ => None,
        };
        let outcome = TestOutcome {
            run,
            checker: checked,
            interactor: None,
        };
        let go_on = observer.finished(index, &outcome).await;
        judged.keep(outcome);
        if !go_on {
            break;
        }
    }
    Ok(judged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Termination;
    use std::time::Duration;

    fn report(bytes: usize) -> StepReport {
        StepReport {
            stdout: vec![b'o'; bytes],
            stderr: vec![b'e'; bytes],
            exit_code: Some(0),
            signal: None,
            termination: Termination::Exited,
            output_truncated: false,
            wall_time: Duration::ZERO,
            cpu_time: Duration::ZERO,
            memory_peak_bytes: None,
        }
    }

    /// A thousand tests at a 1 MiB output cap keep 64 KiB a stream each.
    #[test]
    fn kept_outcomes_hold_at_most_kept_output_per_stream() {
        let mut judged = Judged::default();
        judged.keep(TestOutcome {
            run: report(1 << 20),
            checker: Some(report(KEPT_OUTPUT + 1)),
            interactor: Some(report(KEPT_OUTPUT + 2)),
        });
        judged.keep(TestOutcome {
            run: report(10),
            checker: None,
            interactor: None,
        });
        let [big, small] = &judged.tests[..] else {
            panic!()
        };
        assert_eq!(big.run.stdout.len(), KEPT_OUTPUT);
        assert_eq!(big.run.stderr.len(), KEPT_OUTPUT);
        let checker = big.checker.as_ref().unwrap();
        assert_eq!(checker.stdout.len(), KEPT_OUTPUT);
        assert_eq!(big.interactor.as_ref().unwrap().stderr.len(), KEPT_OUTPUT);
        assert!(big.run.stdout.capacity() <= KEPT_OUTPUT);
        assert_eq!(small.run.stdout.len(), 10);
    }
}
