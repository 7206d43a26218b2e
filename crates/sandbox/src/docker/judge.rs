//! Judge mode on the docker backend: one submission compiled once, run on
//! many tests, each in a fresh container; and an optional custom checker,
//! compiled once in a container of its own, run after each test in another
//! fresh container.
//!
//! The submission's compile step runs as in [`Sandbox::execute`]: its
//! `/work` is copied out once (the tar archive, re-packed as plain files) and
//! given to every test's container, made under the test's limits (from the
//! pool when a profile serves them). The checker's compile step does the
//! same with its own sources, and each checker step gets the checker's
//! re-packed `/work` plus the test's three [`CHECKER_FILES`] (any bytes,
//! read-only), which travel like every other file: in the header the init
//! reads. A container holds one program's files only, so neither program
//! can reach the other's. The job holds one slot from the first compile to
//! the last test, and runs one container at a time.
//!
//! [`Sandbox::execute`]: crate::Sandbox::execute

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::archive::Entry;
use super::{source_entries, DockerSandbox, Inner, Step};
use crate::judge::{
    self, checker_runs_after, CheckerProgram, Judged, TestObserver, TestOutcome, TestRun,
    CHECKER_FILES,
};
use crate::language::{Language, Substitutions};
use crate::limits::Limits;
use crate::report::StepReport;
use crate::{Program, SandboxError};

/// One of a job's two programs.
struct Part {
    language: Arc<Language>,
    main: String,
    /// Its sources, then (once compiled) what its compile step left.
    work: Vec<Entry>,
    compile_limits: Limits,
}

impl Part {
    fn new(
        language: &Arc<Language>,
        source: &str,
        files: &[(String, String)],
        compile_limits: Limits,
        run_limits: &Limits,
    ) -> Result<Self, SandboxError> {
        let main = language.main_name(source);
        // Named as `execute` and `judge::validate` name it: under the run
        // limits' substitutions.
        let source_file = language.source_file(&Substitutions {
            main: main.clone(),
            memory_mb: run_limits.memory_mb(),
        });
        Ok(Part {
            work: source_entries(&source_file, source, files)?,
            language: language.clone(),
            main,
            compile_limits,
        })
    }

    /// The run command under `limits` (a JVM's heap follows the memory
    /// limit), then `args`.
    fn run_command(&self, limits: &Limits, args: &[String]) -> Vec<String> {
        let mut argv = self.language.run_command(&Substitutions {
            main: self.main.clone(),
            memory_mb: limits.memory_mb(),
        });
        argv.extend(args.iter().cloned());
        argv
    }

    /// Compiles the part in a container of its own when its language has a
    /// compile step, keeping what the step left in `/work`: the report, and
    /// whether the job can go on.
    async fn compile(
        &mut self,
        inner: &Arc<Inner>,
    ) -> Result<(Option<StepReport>, bool), SandboxError> {
        let Some(argv) = self.language.compile_command(&Substitutions {
            main: self.main.clone(),
            memory_mb: self.compile_limits.memory_mb(),
        }) else {
            return Ok((None, true));
        };
        let step = Step {
            argv,
            limits: &self.compile_limits,
            stdin: Vec::new(),
            keep_work: true,
            link: None,
        };
        let (report, work) = inner.run_step(step, &self.work).await?;
        match work {
            Some(work) if report.succeeded() => {
                self.work = work;
                Ok((Some(report), true))
            }
            _ => Ok((Some(report), false)),
        }
    }
}

/// The checker, compiled, and the limits of its steps.
struct Checker {
    part: Part,
    /// Its run limits, with a scratch directory that also holds the
    /// largest test's three files (as the native backend sizes it).
    limits: Limits,
    /// Its run limits as given: what its run command is made for.
    run_limits: Limits,
}

impl DockerSandbox {
    pub(super) async fn judge(
        &self,
        program: Program,
        checker: Option<CheckerProgram>,
        tests: Vec<TestRun>,
        observer: &mut dyn TestObserver,
    ) -> Result<Judged, SandboxError> {
        judge::validate(&program, checker.as_ref(), &tests)?;
        let inner = &self.inner;
        if inner.closed.load(Ordering::SeqCst) {
            return Err(SandboxError::Unavailable("sandbox closed".into()));
        }
        let mut solution = Part::new(
            &program.language,
            &program.source,
            &program.files,
            program.compile_limits,
            &program.run_limits,
        )?;
        let mut checker = match &checker {
            None => None,
            Some(checker) => {
                let test_files = tests
                    .iter()
                    .map(|t| {
                        (t.stdin.len() as u64)
                            .saturating_add(t.answer.len() as u64)
                            .saturating_add(t.limits.output_bytes)
                    })
                    .max()
                    .unwrap_or(0);
                let scratch_bytes = checker
                    .compile_limits
                    .scratch_bytes
                    .max(checker.run_limits.scratch_bytes)
                    .saturating_add(test_files);
                Some(Checker {
                    part: Part::new(
                        &checker.language,
                        &checker.source,
                        &checker.files,
                        checker.compile_limits,
                        &checker.run_limits,
                    )?,
                    limits: Limits {
                        scratch_bytes,
                        ..checker.run_limits
                    },
                    run_limits: checker.run_limits,
                })
            }
        };
        let _permit = inner
            .slots
            .acquire()
            .await
            .map_err(|_| SandboxError::Unavailable("sandbox closed".into()))?;

        let mut judged = Judged::default();
        let (compile, compiled) = solution.compile(inner).await?;
        judged.compile = compile;
        if !compiled {
            return Ok(judged);
        }
        if let Some(checker) = &mut checker {
            let (compile, compiled) = checker.part.compile(inner).await?;
            judged.checker_compile = compile;
            if !compiled {
                return Ok(judged);
            }
        }
        for (index, mut test) in tests.into_iter().enumerate() {
            let stdin = if checker.is_some() {
                test.stdin.clone()
            } else {
                std::mem::take(&mut test.stdin)
            };
            let step = Step {
                argv: solution.run_command(&test.limits, &test.args),
                limits: &test.limits,
                stdin,
                keep_work: false,
                link: None,
            };
            let (run, _) = inner.run_step(step, &solution.work).await?;
            let checked = match &checker {
                Some(checker) if checker_runs_after(&run) => {
                    Some(check(inner, checker, &test, &run).await?)
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
}

/// The checker's step after one test: a fresh container with the checker's
/// `/work` and the test's three files, running `<checker> input output
/// answer`.
async fn check(
    inner: &Arc<Inner>,
    checker: &Checker,
    test: &TestRun,
    run: &StepReport,
) -> Result<StepReport, SandboxError> {
    let mut files = Vec::with_capacity(checker.part.work.len() + CHECKER_FILES.len());
    files.extend(checker.part.work.iter().cloned());
    for (name, bytes) in CHECKER_FILES
        .iter()
        .zip([&test.stdin, &run.stdout, &test.answer])
    {
        files.push(Entry::read_only(name, bytes));
    }
    let step = Step {
        argv: checker
            .part
            .run_command(&checker.run_limits, &CHECKER_FILES.map(String::from)),
        limits: &checker.limits,
        stdin: Vec::new(),
        keep_work: false,
        link: None,
    };
    let (report, _) = inner.run_step(step, &files).await?;
    Ok(report)
}

impl DockerSandbox {
    /// Interactive judge mode: the submission and the interactor compiled
    /// once each (a container of its own each), then per test both run at
    /// once in fresh containers, the worker relaying each one's stdout into
    /// the other's stdin ([`relay`](super::relay)). The job holds two slots
    /// from its first compile to its last test.
    pub(super) async fn judge_interactive(
        &self,
        program: Program,
        interactor: CheckerProgram,
        tests: Vec<TestRun>,
        observer: &mut dyn TestObserver,
    ) -> Result<Judged, SandboxError> {
        judge::validate(&program, Some(&interactor), &tests)?;
        let inner = &self.inner;
        if inner.closed.load(Ordering::SeqCst) {
            return Err(SandboxError::Unavailable("sandbox closed".into()));
        }
        let mut solution = Part::new(
            &program.language,
            &program.source,
            &program.files,
            program.compile_limits,
            &program.run_limits,
        )?;
        let test_files = tests
            .iter()
            .map(|t| (t.stdin.len() as u64).saturating_add(t.answer.len() as u64))
            .max()
            .unwrap_or(0);
        let run_limits = interactor.run_limits;
        let limits = Limits {
            scratch_bytes: interactor
                .compile_limits
                .scratch_bytes
                .max(run_limits.scratch_bytes)
                .saturating_add(test_files),
            ..run_limits
        };
        let mut helper = Part::new(
            &interactor.language,
            &interactor.source,
            &interactor.files,
            interactor.compile_limits,
            &run_limits,
        )?;
        // A job slot as any job, and a companion slot for the interactor
        // (as many as job slots: never waited for).
        let closed = |_| SandboxError::Unavailable("sandbox closed".into());
        let _permit = inner.slots.acquire().await.map_err(closed)?;
        let _helper_permit = inner.helper_slots.acquire().await.map_err(closed)?;

        let mut judged = Judged::default();
        let (compile, compiled) = solution.compile(inner).await?;
        judged.compile = compile;
        if !compiled {
            return Ok(judged);
        }
        let (compile, compiled) = helper.compile(inner).await?;
        judged.checker_compile = compile;
        if !compiled {
            return Ok(judged);
        }
        for (index, test) in tests.into_iter().enumerate() {
            let mut files = helper.work.clone();
            let args = judge::interactor_args(&test);
            for (name, bytes) in [("input", &test.stdin), ("answer", &test.answer)] {
                if args.iter().any(|a| a == name) {
                    files.push(Entry::read_only(name, bytes));
                }
            }
            let (to_solution, to_interactor) = super::relay::pair();
            let solution_step = Step {
                argv: solution.run_command(&test.limits, &test.args),
                limits: &test.limits,
                stdin: Vec::new(),
                keep_work: false,
                link: Some(to_solution),
            };
            let interactor_step = Step {
                argv: helper.run_command(&run_limits, &args),
                limits: &limits,
                stdin: Vec::new(),
                keep_work: false,
                link: Some(to_interactor),
            };
            let (run, interaction) = tokio::join!(
                inner.run_step(solution_step, &solution.work),
                inner.run_step(interactor_step, &files),
            );
            let outcome = TestOutcome {
                run: run?.0,
                checker: None,
                interactor: Some(interaction?.0),
            };
            let go_on = observer.finished(index, &outcome).await;
            judged.keep(outcome);
            if !go_on {
                break;
            }
        }
        Ok(judged)
    }
}
