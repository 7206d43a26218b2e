//! Running a judged job: the submission compiled once and run on each test
//! (`Sandbox::execute_tests`), each test given its verdict as it finishes
//! (by a built-in [`Comparator`] or the custom checker's exit code), and the
//! job's result built from them.
//!
//! Per test, in this order (the first that applies):
//!
//! - the run hit a limit: `time_limit`, `memory_limit`, `output_limit`;
//! - it was killed by a signal or exited with a code other than 0:
//!   `runtime_error` (a custom checker that ran anyway is ignored);
//! - otherwise the checker decides: a built-in one says `accepted` or
//!   `wrong_answer` (with a note on where the output differs); a custom
//!   one's exit code 0 is `accepted`, 1 `wrong_answer`, 2
//!   `presentation_error`, anything else (another code, a signal, a limit,
//!   no run) `judge_error`, its stderr being the test's `checker_message`.
//!
//! With an interactor (an interactive problem), the interactor's exit code
//! decides instead of a checker, as testlib-based judges do; per test, the
//! first that applies (no rule depends on which side ended first, which
//! two sandboxes cannot tell apart reliably):
//!
//! - the submission hit a limit: `time_limit`, `memory_limit`,
//!   `output_limit` (a deadlock is the submission's `time_limit`: both sides
//!   wait, and it is killed at its wall clock);
//! - the interactor exited 1 (`wrong_answer`) or 2 (`presentation_error`):
//!   whatever the submission did after (it reads end of file) is a
//!   consequence; a submission that crashes mid-conversation is therefore
//!   usually reported as the interactor saw it (end of file: most
//!   interactors say 1 or 2);
//! - the submission was killed by a signal, or exited with a code other
//!   than 0: `runtime_error`;
//! - the interactor exited 0: `accepted`;
//! - anything else of the interactor (another code, a signal, a limit):
//!   `judge_error`.
//!
//! Neither side ever gets `EPIPE` or `SIGPIPE`: what one writes after the
//! other is over is read and dropped by the sandbox.
//!
//! Its stderr is the test's `checker_message` either way.
//!
//! The job's verdict is `accepted` when every test was, else the first
//! failing test's verdict (`compile_error` when the submission did not
//! compile, `judge_error` when the checker did not); the seed's message
//! says which test: `Wrong answer on test 3`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use code_runner_queue::judge::{
    CheckerSpec, JudgeReport, JudgeSpec, TestCase, TestResult, TestSummary,
};
use code_runner_queue::{Job, JobResult, Queue, Verdict};
use code_runner_sandbox::language::Substitutions;
use code_runner_sandbox::{
    CheckerProgram, Execution, Judged, Language, LanguageTable, Limits, Program, Sandbox,
    StepReport, Termination, TestObserver, TestOutcome, TestRun, CHECKER_FILES,
};

use super::checkers::{Checked, Comparator};

/// The most of a test's stdout (and, apart, of its stderr) a result keeps.
pub const TEST_OUTPUT_CAP: usize = 64 * 1024;
/// The most of all tests' stdout and stderr one result keeps together; once
/// used up, later tests keep none (and are flagged as cut).
pub const JOB_OUTPUT_BUDGET: usize = 8 * 1024 * 1024;
/// The most of a checker's message (a custom checker's stderr) kept.
pub const CHECKER_MESSAGE_CAP: usize = 4 * 1024;
/// The job's time budget beyond its steps' wall-clock limits: set-up,
/// clean-up and the time between steps.
pub const JOB_SLACK: Duration = Duration::from_secs(10);
/// Per test on top of its limits (the step's own set-up and tear-down).
pub const PER_TEST_SLACK: Duration = Duration::from_millis(200);
/// How often, at most, a running job's progress (the tests finished so far)
/// is published to the queue.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// The worker's limits a judged job runs under.
#[derive(Debug, Clone, Copy)]
pub struct JudgeLimits {
    /// The worker's run limits: the ceiling of every test's, and a custom
    /// checker's own limits for each of its runs.
    pub run: Limits,
    /// The compile limits, of the submission and of the checker.
    pub compile: Limits,
}

/// Runs a judged job and builds its result (`started_at_ms`: when the job
/// started; the caller adds the language and submission time). With a
/// `queue`, the tests finished so far are published to it while the job
/// runs (without their output, at most every [`PROGRESS_INTERVAL`], by a
/// task of their own so the sandbox never waits for Redis).
#[allow(clippy::too_many_arguments)]
pub async fn execute_judged(
    queue: Option<&Arc<dyn Queue>>,
    sandbox: &dyn Sandbox,
    languages: &LanguageTable,
    language: &Arc<Language>,
    job: &Job,
    spec: &JudgeSpec,
    limits: JudgeLimits,
    started_at_ms: u64,
) -> JobResult {
    let judge_error = |message: String| {
        let mut result = JobResult::internal_error(message, started_at_ms);
        result.verdict = Verdict::JudgeError;
        result.judge = Some(JudgeReport::new(
            spec.tests
                .iter()
                .map(|t| TestResult {
                    verdict: Verdict::JudgeError,
                    ..TestResult::skipped(t.name.clone())
                })
                .collect(),
        ));
        result
    };
    // The judge's own program (a custom checker or an interactor), under
    // the worker's limits.
    let helper = |role: &str, name: &str, code: &str, files: &[code_runner_queue::SourceFile]| {
        let Some(helper_language) = languages.get(name) else {
            return Err(Box::new(judge_error(format!(
                "Judge error: the {role}'s language {name:?} is not supported by this worker"
            ))));
        };
        let helper = CheckerProgram {
            language: helper_language.clone(),
            source: code.to_owned(),
            files: files
                .iter()
                .map(|f| (f.name.clone(), f.content.clone()))
                .collect(),
            compile_limits: limits.compile,
            run_limits: limits.run,
        };
        if let Some(message) = checker_files_refusal(&helper, role) {
            return Err(Box::new(judge_error(format!("Judge error: {message}"))));
        }
        Ok(helper)
    };
    let (comparator, checker, interactor) = match (&spec.interactor, &spec.checker) {
        (Some(interactor), _) => {
            match helper(
                "interactor",
                &interactor.language,
                &interactor.code,
                &interactor.files,
            ) {
                Ok(interactor) => (None, None, Some(interactor)),
                Err(result) => return *result,
            }
        }
        (
            None,
            CheckerSpec::Custom {
                language: name,
                code,
                files,
            },
        ) => match helper("checker", name, code, files) {
            Ok(checker) => (None, Some(checker), None),
            Err(result) => return *result,
        },
        (None, other) => (Some(comparator_of(other)), None, None),
    };
    let job_limits = crate::job_limits(job, limits.run);
    let tests: Vec<TestRun> = spec
        .tests
        .iter()
        .map(|test| TestRun {
            stdin: test.stdin.clone().into_bytes(),
            args: if test.args.is_empty() {
                job.args.clone()
            } else {
                test.args.clone()
            },
            limits: test_limits(test, job, limits.run),
            answer: test.expected_output.clone().into_bytes(),
        })
        .collect();
    let budget = job_time_budget(&tests, checker.as_ref().or(interactor.as_ref()), &limits);
    let program = Program {
        language: language.clone(),
        source: job.code.clone(),
        stdin: Vec::new(),
        args: Vec::new(),
        files: job
            .files
            .iter()
            .map(|f| (f.name.clone(), f.content.clone()))
            .collect(),
        compile_limits: limits.compile,
        run_limits: job_limits,
    };
    let (progress, publisher) = match queue {
        Some(queue) => {
            let (sender, receiver) = tokio::sync::watch::channel(Vec::new());
            let publisher = tokio::spawn(publish_progress(queue.clone(), job.id, receiver));
            (Some(sender), Some(publisher))
        }
        None => (None, None),
    };
    let mut observer = Observer {
        spec,
        comparator,
        results: Vec::with_capacity(spec.tests.len()),
        output_budget: JOB_OUTPUT_BUDGET,
        progress,
        published_at: None,
    };
    let judged = tokio::time::timeout(budget, async {
        match interactor {
            Some(interactor) => {
                sandbox
                    .execute_interactive(program, interactor, tests, &mut observer)
                    .await
            }
            None => {
                sandbox
                    .execute_tests(program, checker, tests, &mut observer)
                    .await
            }
        }
    })
    .await;
    // The publisher ends once the sender is gone and its last write is done.
    observer.progress = None;
    if let Some(publisher) = publisher {
        if tokio::time::timeout(Duration::from_secs(2), publisher)
            .await
            .is_err()
        {
            tracing::debug!("progress publisher still writing; left behind");
        }
    }
    let finished_at_ms = crate::now_ms();
    match judged {
        Ok(Ok(judged)) => build_result(
            spec,
            &judged,
            observer.results,
            started_at_ms,
            finished_at_ms,
        ),
        Ok(Err(code_runner_sandbox::SandboxError::Unavailable(why)))
            if spec.interactor.is_some() =>
        {
            // A worker with a single slot, or a backend that cannot join two
            // steps: the job cannot be judged here.
            tracing::warn!(task_id = %job.id, %why, "interactive job refused by the sandbox");
            let mut result = judge_error(format!("Judge error: {why}"));
            result.finished_at_ms = finished_at_ms;
            result
        }
        Ok(Err(e)) => {
            tracing::error!(task_id = %job.id, error = %crate::error_chain(&e), "sandbox failed on a judged job");
            let mut result =
                JobResult::internal_error(crate::sandbox_failure_message(&job.id), started_at_ms);
            result.finished_at_ms = finished_at_ms;
            result.judge = Some(partial_report(spec, observer.results));
            result
        }
        Err(_) => {
            tracing::warn!(task_id = %job.id, ?budget, "judged job over its time budget; stopped");
            let mut result = JobResult::internal_error(
                format!(
                    "Internal error: the job took longer than its time budget ({} s: the tests' and \
                     the compiles' time limits and a margin) and was stopped",
                    budget.as_secs()
                ),
                started_at_ms,
            );
            result.finished_at_ms = finished_at_ms;
            result.judge = Some(partial_report(spec, observer.results));
            result
        }
    }
}

/// The built-in comparison a checker spec names (not `custom`).
fn comparator_of(spec: &CheckerSpec) -> Comparator {
    match *spec {
        CheckerSpec::Exact => Comparator::Exact,
        CheckerSpec::Tokens => Comparator::Tokens,
        CheckerSpec::Float { abs, rel } => Comparator::Float { abs, rel },
        CheckerSpec::Unordered => Comparator::Unordered,
        CheckerSpec::Lines | CheckerSpec::Custom { .. } => Comparator::Lines,
    }
}

/// A test's run limits: the worker's, lowered to the test's own time and
/// memory limits, else to the job's.
fn test_limits(test: &TestCase, job: &Job, worker: Limits) -> Limits {
    crate::lowered_limits(
        worker,
        test.time_limit_ms.or(job.time_limit_ms),
        test.memory_limit_mb.or(job.memory_limit_mb),
    )
}

/// The longest the whole job may take: both compiles, every test's wall
/// clock and its checker's (or interactor's), and margins. Past it the job
/// is stopped.
pub fn job_time_budget(
    tests: &[TestRun],
    checker: Option<&CheckerProgram>,
    limits: &JudgeLimits,
) -> Duration {
    let checker_run = checker.map_or(Duration::ZERO, |c| c.run_limits.wall_time);
    let compiles = limits.compile.wall_time * if checker.is_some() { 2 } else { 1 };
    tests
        .iter()
        .map(|t| t.limits.wall_time + checker_run + PER_TEST_SLACK)
        .sum::<Duration>()
        + compiles
        + JOB_SLACK
}

/// Why a custom checker's (or an interactor's: `role`) extra files cannot
/// be set up (the sandbox's rule: plain names, none of [`CHECKER_FILES`]
/// nor the program's source, none twice), or `None`.
fn checker_files_refusal(checker: &CheckerProgram, role: &str) -> Option<String> {
    let main = checker.language.source_file(&Substitutions {
        main: checker.language.main_name(&checker.source),
        memory_mb: checker.run_limits.memory_mb(),
    });
    let mut seen = std::collections::HashSet::new();
    checker.files.iter().find_map(|(name, _)| {
        let bad = !code_runner_sandbox::is_plain_file_name(name)
            || CHECKER_FILES.contains(&name.as_str())
            || *name == main
            || !seen.insert(name.as_str());
        bad.then(|| {
            format!(
                "the {role}'s file {name:?} cannot be used (a plain name other than {CHECKER_FILES:?}, \
                 the {role}'s own source {main:?} and its other files)"
            )
        })
    })
}

/// Gives each test its verdict as it finishes and says whether to go on.
struct Observer<'a> {
    spec: &'a JudgeSpec,
    /// The built-in comparison; `None` with a custom checker.
    comparator: Option<Comparator>,
    results: Vec<TestResult>,
    /// Bytes of output the result may still keep.
    output_budget: usize,
    /// Where progress goes (see [`publish_progress`]), if anywhere.
    progress: Option<tokio::sync::watch::Sender<Vec<TestResult>>>,
    published_at: Option<Instant>,
}

/// Writes each progress snapshot to the queue, the latest one only when
/// they come faster than Redis answers, until the sender is dropped.
async fn publish_progress(
    queue: Arc<dyn Queue>,
    id: code_runner_queue::TaskId,
    mut receiver: tokio::sync::watch::Receiver<Vec<TestResult>>,
) {
    while receiver.changed().await.is_ok() {
        let tests = receiver.borrow_and_update().clone();
        if let Err(e) = queue.report_progress(&id, &tests).await {
            tracing::debug!(error = %crate::error_chain(&e), "cannot publish judge progress");
        }
    }
}

#[async_trait]
impl TestObserver for Observer<'_> {
    async fn finished(&mut self, index: usize, outcome: &TestOutcome) -> bool {
        let Some(test) = self.spec.tests.get(index) else {
            return false;
        };
        let (verdict, checker_message) = test_verdict(outcome, self.comparator, test);
        let run = &outcome.run;
        let (stdout, stdout_cut) = self.keep(&run.stdout);
        let (stderr, stderr_cut) = self.keep(&run.stderr);
        self.results.push(TestResult {
            name: test.name.clone(),
            verdict,
            time_ms: run.wall_time.as_millis() as u64,
            cpu_time_ms: run.cpu_time.as_millis() as u64,
            memory_peak_kib: run.memory_peak_bytes.map(|b| b / 1024),
            exit_code: run.exit_code,
            signal: run.signal,
            stdout,
            // The sandbox's flag covers both streams.
            stdout_truncated: stdout_cut || run.output_truncated,
            stderr,
            stderr_truncated: stderr_cut || run.output_truncated,
            checker_message,
        });
        self.publish();
        !(self.spec.stop_on_first_failure && verdict != Verdict::Accepted)
    }
}

impl Observer<'_> {
    /// Hands the tests finished so far, without their output, to the
    /// publisher: after the first test, then at most every
    /// [`PROGRESS_INTERVAL`].
    fn publish(&mut self) {
        let Some(sender) = &self.progress else {
            return;
        };
        if self
            .published_at
            .is_some_and(|at| at.elapsed() < PROGRESS_INTERVAL)
        {
            return;
        }
        self.published_at = Some(Instant::now());
        let snapshot = self
            .results
            .iter()
            .map(|t| TestResult {
                stdout: String::new(),
                stderr: String::new(),
                ..t.clone()
            })
            .collect();
        let _ = sender.send(snapshot);
    }

    /// Up to [`TEST_OUTPUT_CAP`] bytes of `bytes` as text (within the job's
    /// budget), and whether any was left out.
    fn keep(&mut self, bytes: &[u8]) -> (String, bool) {
        let cap = TEST_OUTPUT_CAP.min(self.output_budget);
        let (text, cut) = cut_text(bytes, cap);
        self.output_budget -= text.len().min(self.output_budget);
        (text, cut)
    }
}

/// `bytes` as text (invalid UTF-8 replaced), at most `cap` bytes of it cut
/// at a character boundary, and whether it was cut.
fn cut_text(bytes: &[u8], cap: usize) -> (String, bool) {
    let mut text = String::from_utf8_lossy(&bytes[..bytes.len().min(cap + 4)]).into_owned();
    if text.len() <= cap && bytes.len() <= cap + 4 {
        return (text, false);
    }
    let mut end = cap.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    (text, true)
}

/// One test's verdict and checker message (see the module's rules).
fn test_verdict(
    outcome: &TestOutcome,
    comparator: Option<Comparator>,
    test: &TestCase,
) -> (Verdict, Option<String>) {
    let run = &outcome.run;
    if let Some(interactor) = &outcome.interactor {
        return interactive_verdict(run, interactor);
    }
    match run.termination {
        Termination::TimeLimit => return (Verdict::TimeLimit, None),
        Termination::MemoryLimit => return (Verdict::MemoryLimit, None),
        Termination::OutputLimit => return (Verdict::OutputLimit, None),
        Termination::Exited if !run.succeeded() => return (Verdict::RuntimeError, None),
        Termination::Exited => {}
    }
    if let Some(comparator) = comparator {
        return match comparator.check(&run.stdout, test.expected_output.as_bytes()) {
            Checked::Accepted => (Verdict::Accepted, None),
            Checked::WrongAnswer(message) => (Verdict::WrongAnswer, Some(message)),
        };
    }
    let Some(checker) = &outcome.checker else {
        return (Verdict::JudgeError, Some("the checker did not run".into()));
    };
    checker_verdict(checker, "checker")
}

/// How the submission's own run failed, if it did: a limit, else a signal
/// or an exit code other than 0.
fn run_failure(run: &StepReport) -> Option<Verdict> {
    match run.termination {
        Termination::TimeLimit => Some(Verdict::TimeLimit),
        Termination::MemoryLimit => Some(Verdict::MemoryLimit),
        Termination::OutputLimit => Some(Verdict::OutputLimit),
        Termination::Exited if !run.succeeded() => Some(Verdict::RuntimeError),
        Termination::Exited => None,
    }
}

/// An interactive test's verdict (see the module's rules).
fn interactive_verdict(run: &StepReport, interactor: &StepReport) -> (Verdict, Option<String>) {
    let (said, message) = checker_verdict(interactor, "interactor");
    match run_failure(run) {
        Some(limit) if run.termination != Termination::Exited => (limit, message),
        _ if matches!(said, Verdict::WrongAnswer | Verdict::PresentationError) => (said, message),
        Some(failure) => (failure, message),
        None => (said, message),
    }
}

/// A custom checker's (or interactor's: `role`) decision from its step:
/// exit 0, 1, 2; else a judge error.
fn checker_verdict(checker: &StepReport, role: &str) -> (Verdict, Option<String>) {
    let (stderr, _) = cut_text(&checker.stderr, CHECKER_MESSAGE_CAP);
    let message = (!stderr.trim().is_empty()).then_some(stderr);
    let verdict = match (checker.termination, checker.exit_code, checker.signal) {
        (Termination::Exited, Some(0), None) => Verdict::Accepted,
        (Termination::Exited, Some(1), None) => Verdict::WrongAnswer,
        (Termination::Exited, Some(2), None) => Verdict::PresentationError,
        _ => {
            let why = match (checker.termination, checker.exit_code, checker.signal) {
                (Termination::TimeLimit, ..) => "went over its time limit".to_owned(),
                (Termination::MemoryLimit, ..) => "went over its memory limit".to_owned(),
                (Termination::OutputLimit, ..) => "went over its output limit".to_owned(),
                (_, _, Some(signal)) => format!("was killed by signal {signal}"),
                (_, Some(code), None) => format!("exited with code {code} (not 0, 1 or 2)"),
                (_, None, None) => "ended abnormally".to_owned(),
            };
            let mut text = format!("the {role} {why}");
            if let Some(stderr) = &message {
                text.push_str(": ");
                text.push_str(stderr);
            }
            return (Verdict::JudgeError, Some(text));
        }
    };
    (verdict, message)
}

/// The result of a judged job the sandbox ran to its end (or until the
/// observer stopped it).
fn build_result(
    spec: &JudgeSpec,
    judged: &Judged,
    mut results: Vec<TestResult>,
    started_at_ms: u64,
    finished_at_ms: u64,
) -> JobResult {
    let compile_failed = judged.compile.as_ref().is_some_and(|c| !c.succeeded());
    if compile_failed {
        // The seed's compile-error result, with every test skipped.
        let execution = Execution {
            compile: judged.compile.clone(),
            run: None,
        };
        let mut result = crate::job_result(
            &execution,
            &Limits::RUN_DEFAULT,
            started_at_ms,
            finished_at_ms,
        );
        result.judge = Some(partial_report(spec, Vec::new()));
        return result;
    }
    let mut result = JobResult::internal_error(String::new(), started_at_ms);
    result.finished_at_ms = finished_at_ms;
    result.compile_output = judged.compile.as_ref().map(compile_text);
    let role = if spec.interactor.is_some() {
        "interactor"
    } else {
        "checker"
    };
    if let Some(checker) = judged.checker_compile.as_ref().filter(|c| !c.succeeded()) {
        let (diagnostics, _) = cut_text(compile_text(checker).as_bytes(), CHECKER_MESSAGE_CAP);
        let why = match checker.termination {
            Termination::TimeLimit => "went over its compile time limit",
            Termination::MemoryLimit => "went over its compile memory limit",
            Termination::OutputLimit => "went over its compile output limit",
            Termination::Exited => "did not compile",
        };
        result.verdict = Verdict::JudgeError;
        result.message = Some(format!("Judge error: the {role} {why}\n{diagnostics}"));
        result.judge = Some(JudgeReport::new(
            spec.tests
                .iter()
                .map(|t| TestResult {
                    verdict: Verdict::JudgeError,
                    checker_message: Some(format!("the {role} {why}")),
                    ..TestResult::skipped(t.name.clone())
                })
                .collect(),
        ));
        return result;
    }
    let ran = results.len();
    results.extend(
        spec.tests[ran.min(spec.tests.len())..]
            .iter()
            .map(|t| TestResult::skipped(t.name.clone())),
    );
    let summary = TestSummary::of(&results);
    let failing = results
        .iter()
        .find(|t| !matches!(t.verdict, Verdict::Accepted | Verdict::Skipped));
    match failing {
        None if summary.passed == summary.total => {
            result.verdict = Verdict::Accepted;
            result.message = None;
        }
        None => {
            // Fewer tests reported than given without a failure: the
            // sandbox stopped early by itself.
            result.verdict = Verdict::InternalError;
            result.message = Some(format!(
                "Internal error: only {} of {} tests ran",
                summary.passed, summary.total
            ));
        }
        Some(test) => {
            result.verdict = test.verdict;
            result.message = Some(format!(
                "{} on test {}",
                verdict_phrase(test.verdict),
                test.name
            ));
        }
    }
    result.wall_time_ms = results.iter().map(|t| t.time_ms).sum();
    result.cpu_time_ms = results.iter().map(|t| t.cpu_time_ms).sum::<u64>()
        + judged
            .compile
            .as_ref()
            .map_or(0, |c| c.cpu_time.as_millis() as u64);
    result.memory_peak_kib = results.iter().filter_map(|t| t.memory_peak_kib).max();
    result.judge = Some(JudgeReport {
        tests: results,
        summary,
    });
    result
}

/// The tests seen so far, the rest skipped.
fn partial_report(spec: &JudgeSpec, mut results: Vec<TestResult>) -> JudgeReport {
    let ran = results.len().min(spec.tests.len());
    results.extend(
        spec.tests[ran..]
            .iter()
            .map(|t| TestResult::skipped(t.name.clone())),
    );
    JudgeReport::new(results)
}

fn compile_text(step: &StepReport) -> String {
    let mut text = String::from_utf8_lossy(&step.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&step.stderr));
    text
}

/// How the seed's message names a failing test's verdict.
pub fn verdict_phrase(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::WrongAnswer => "Wrong answer",
        Verdict::PresentationError => "Presentation error",
        Verdict::TimeLimit => "Time limit exceeded",
        Verdict::MemoryLimit => "Memory limit exceeded",
        Verdict::OutputLimit => "Output limit exceeded",
        Verdict::RuntimeError => "Runtime error",
        Verdict::JudgeError => "Judge error",
        Verdict::CompileError => "Compilation error",
        Verdict::Cancelled => "Cancelled",
        Verdict::InternalError => "Internal error",
        Verdict::Accepted | Verdict::Ok => "Accepted",
        Verdict::Skipped => "Skipped",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(termination: Termination, exit_code: Option<i32>, stdout: &str) -> StepReport {
        StepReport {
            stdout: stdout.as_bytes().to_vec(),
            stderr: Vec::new(),
            exit_code,
            signal: None,
            termination,
            output_truncated: false,
            wall_time: Duration::from_millis(3),
            cpu_time: Duration::from_millis(2),
            memory_peak_bytes: Some(4096),
        }
    }

    fn test(expected: &str) -> TestCase {
        TestCase {
            name: "t".into(),
            stdin: String::new(),
            expected_output: expected.into(),
            args: vec![],
            time_limit_ms: None,
            memory_limit_mb: None,
        }
    }

    #[test]
    fn limits_and_runtime_errors_come_before_the_checker() {
        let exited = |code| TestOutcome {
            run: step(Termination::Exited, Some(code), "3\n"),
            checker: Some(step(Termination::Exited, Some(0), "")),
            interactor: None,
        };
        assert_eq!(
            test_verdict(&exited(0), None, &test("3")).0,
            Verdict::Accepted
        );
        assert_eq!(
            test_verdict(&exited(1), None, &test("3")).0,
            Verdict::RuntimeError
        );
        let limit = TestOutcome {
            run: step(Termination::TimeLimit, None, "3\n"),
            checker: None,
            interactor: None,
        };
        assert_eq!(test_verdict(&limit, None, &test("3")).0, Verdict::TimeLimit);
        let (verdict, message) = test_verdict(&exited(0), Some(Comparator::Lines), &test("4"));
        assert_eq!(verdict, Verdict::WrongAnswer);
        assert!(message.unwrap().contains("line 1"));
    }

    #[test]
    fn checker_exit_codes() {
        let with = |termination, code, stderr: &str| {
            let mut s = step(termination, code, "");
            s.stderr = stderr.as_bytes().to_vec();
            checker_verdict(&s, "checker")
        };
        assert_eq!(
            with(Termination::Exited, Some(0), ""),
            (Verdict::Accepted, None)
        );
        assert_eq!(
            with(Termination::Exited, Some(1), "differs at 2\n"),
            (Verdict::WrongAnswer, Some("differs at 2\n".into()))
        );
        assert_eq!(
            with(Termination::Exited, Some(2), "").0,
            Verdict::PresentationError
        );
        let (verdict, message) = with(Termination::Exited, Some(3), "boom");
        assert_eq!(verdict, Verdict::JudgeError);
        assert_eq!(
            message.unwrap(),
            "the checker exited with code 3 (not 0, 1 or 2): boom"
        );
        assert_eq!(
            with(Termination::TimeLimit, None, "").0,
            Verdict::JudgeError
        );
    }

    /// Limits first, then the interactor's 1 or 2, then the submission's
    /// own failures, then the interactor.
    #[test]
    fn interactive_verdicts() {
        let timed = |termination, code, signal, ms| {
            let mut s = step(termination, code, "");
            s.signal = signal;
            s.wall_time = Duration::from_millis(ms);
            s
        };
        let verdict = |run: StepReport, interactor: StepReport| {
            test_verdict(
                &TestOutcome {
                    run,
                    checker: None,
                    interactor: Some(interactor),
                },
                None,
                &test(""),
            )
            .0
        };
        let ok = |ms| timed(Termination::Exited, Some(0), None, ms);
        let said = |code, ms| timed(Termination::Exited, Some(code), None, ms);
        assert_eq!(verdict(ok(5), said(0, 6)), Verdict::Accepted);
        assert_eq!(verdict(ok(5), said(1, 6)), Verdict::WrongAnswer);
        assert_eq!(verdict(ok(5), said(2, 6)), Verdict::PresentationError);
        assert_eq!(verdict(ok(5), said(3, 6)), Verdict::JudgeError);
        // The interactor gave up; the submission then failed reading.
        assert_eq!(verdict(said(1, 9), said(1, 6)), Verdict::WrongAnswer);
        // Accepted by the interactor, then the submission crashed: its
        // own failure.
        let killed = timed(Termination::Exited, None, Some(libc_sigpipe()), 9);
        assert_eq!(verdict(killed, said(0, 6)), Verdict::RuntimeError);
        // The submission crashed; the interactor then read end of file and
        // said so; or it had accepted already.
        let crashed = timed(Termination::Exited, None, Some(11), 4);
        assert_eq!(
            verdict(crashed.clone(), said(2, 5)),
            Verdict::PresentationError
        );
        assert_eq!(verdict(crashed.clone(), said(0, 3)), Verdict::RuntimeError);
        assert_eq!(verdict(crashed, said(3, 5)), Verdict::RuntimeError);
        // Too many guesses: the interactor said 1, the submission then
        // failed on end of file.
        assert_eq!(verdict(said(1, 7), said(1, 6)), Verdict::WrongAnswer);
        // A deadlock: the submission is killed at its wall clock, the
        // interactor reads end of file (and may be seen ending first).
        let waited = timed(Termination::TimeLimit, None, Some(9), 1000);
        assert_eq!(verdict(waited.clone(), said(2, 999)), Verdict::TimeLimit);
        let stuck = timed(Termination::TimeLimit, None, Some(9), 5000);
        assert_eq!(verdict(waited, stuck), Verdict::TimeLimit);
        // The submission stopped reading and the interactor flooded on to
        // its own time limit: the interactor's fault.
        let flooded = timed(Termination::TimeLimit, None, Some(9), 5000);
        assert_eq!(verdict(ok(5), flooded), Verdict::JudgeError);
    }

    fn libc_sigpipe() -> i32 {
        13
    }

    #[test]
    fn output_is_cut_at_a_character_boundary() {
        assert_eq!(cut_text(b"abc", 3), ("abc".into(), false));
        assert_eq!(cut_text(b"abcd", 3), ("abc".into(), true));
        assert_eq!(cut_text("aé".as_bytes(), 2), ("a".into(), true));
        assert_eq!(cut_text(b"a\xffb", 10), ("a\u{fffd}b".into(), false));
    }
}
