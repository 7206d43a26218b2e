//! Judge mode on the native backend: a whole job in one slot, held from the
//! first compile to the last test, so a job never waits for a second slot.
//!
//! The submission's sources go into the job's `/work` and the checker's into
//! `/judge`, two tmpfs mounts of the keeper's; each is compiled once, by the
//! first step in its directory. Every test is then a fresh step in `/work`
//! (fresh PID, mount, IPC and UTS namespaces, `/tmp`, `/dev/shm`, `/proc`)
//! under the test's limits, and the checker a fresh step in `/judge`. A step
//! sees one of the two directories, never both (`protocol::View`); the
//! test's files reach `/judge` only for the checker's step (`StepSpec::files`).
//!
//! An interactive job (an interactor instead of a checker) takes two slots
//! at once, held from the first compile to the last test: the submission
//! runs in one, the interactor in the other (each in its slot's `/work`),
//! so neither can see, signal or starve the other, and each step has its
//! own cgroup limits. Per test, both steps start together, joined by two
//! pipes the worker makes and hands to both keepers (the interactor's
//! stdout is the submission's stdin and the other way round), and the
//! test is over when both have ended. A deadlock ends at the wall clock of
//! the side that waited longest to be killed; when one side ends, the
//! other reads end of file, and what it still writes is read and dropped
//! by the worker (never `EPIPE` nor `SIGPIPE`, whose timing would make
//! verdicts depend on which side ended first).
//!
//! A test that took the keeper down with it (a program that ran the slot out
//! of memory after making itself less attractive to the OOM killer than the
//! keeper) still reports as itself; the slot is then started again and both
//! programs compiled again, unreported, before the next test.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;

use super::protocol::{View, Workspace};
use super::slot::{keeper_error, SlotProcess};
use super::{run_step, source_files, NativeSandbox, Step, INODES};
use crate::judge::{
    self, checker_runs_after, CheckerProgram, Judged, TestObserver, TestOutcome, TestRun,
    CHECKER_FILES,
};
use crate::language::{Language, Substitutions};
use crate::limits::Limits;
use crate::report::StepReport;
use crate::{Program, SandboxError};

/// One of a job's two programs and its directory.
struct Part {
    language: Arc<Language>,
    main: String,
    files: Vec<(String, String)>,
    /// The tmpfs size of its directory.
    bytes: u64,
    compile_limits: Limits,
}

impl Part {
    fn new(
        language: &Arc<Language>,
        source: &str,
        files: &[(String, String)],
        compile_limits: Limits,
        bytes: u64,
    ) -> Result<Self, SandboxError> {
        let main = language.main_name(source);
        let subs = Substitutions {
            main: main.clone(),
            memory_mb: compile_limits.memory_mb(),
        };
        Ok(Part {
            files: source_files(language, &subs, source, files)?,
            language: language.clone(),
            main,
            bytes,
            compile_limits,
        })
    }

    fn workspace(&self) -> Workspace {
        Workspace {
            bytes: self.bytes,
            inodes: INODES,
            files: self.files.clone(),
        }
    }

    fn compile_command(&self) -> Option<Vec<String>> {
        self.language.compile_command(&Substitutions {
            main: self.main.clone(),
            memory_mb: self.compile_limits.memory_mb(),
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
}

/// A judged job in its slot.
struct Job<'a> {
    sandbox: &'a NativeSandbox,
    slot: u32,
    mounts: &'a [PathBuf],
    process: &'a mut SlotProcess,
    solution: Part,
    checker: Option<(Part, Limits)>,
    /// The directories not made yet in this slot: the first step in each
    /// carries its workspace.
    work_pending: bool,
    judge_pending: bool,
    /// No step of the job has run in this slot yet.
    first_step: bool,
}

impl NativeSandbox {
    pub(super) async fn judge(
        &self,
        program: Program,
        checker: Option<CheckerProgram>,
        tests: Vec<TestRun>,
        observer: &mut dyn TestObserver,
    ) -> Result<Judged, SandboxError> {
        judge::validate(&program, checker.as_ref(), &tests)?;
        let largest_test = tests.iter().map(|t| t.limits.scratch_bytes).max();
        let solution = Part::new(
            &program.language,
            &program.source,
            &program.files,
            program.compile_limits,
            largest_test
                .unwrap_or(0)
                .max(program.compile_limits.scratch_bytes),
        )?;
        let checker = match &checker {
            None => None,
            Some(checker) => {
                // Room for the checker's own files and, one test at a time,
                // the largest test's three.
                let test_files = tests
                    .iter()
                    .map(|t| t.stdin.len() as u64 + t.answer.len() as u64 + t.limits.output_bytes)
                    .max()
                    .unwrap_or(0);
                let bytes = checker
                    .compile_limits
                    .scratch_bytes
                    .max(checker.run_limits.scratch_bytes)
                    + test_files;
                let part = Part::new(
                    &checker.language,
                    &checker.source,
                    &checker.files,
                    checker.compile_limits,
                    bytes,
                )?;
                Some((part, checker.run_limits))
            }
        };
        let mut mounts = program.language.mounts.clone();
        if let Some((part, _)) = &checker {
            mounts.extend(part.language.mounts.iter().cloned());
        }
        let _permit = self
            .slots
            .acquire()
            .await
            .map_err(|_| SandboxError::Unavailable("sandbox closed".into()))?;
        let slot = self.take_slot();
        let mut process = self.sandbox_for(slot.slot, &mounts).await?;
        let mut job = Job {
            sandbox: self,
            slot: slot.slot,
            mounts: &mounts,
            process: &mut process,
            solution,
            checker,
            work_pending: true,
            judge_pending: true,
            first_step: true,
        };
        let result = job.run(tests, observer).await;
        if result.is_ok() {
            process.begin_clear().await;
        }
        if result.is_ok() && !process.is_broken() {
            *self.idle[slot.slot as usize]
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(process);
        }
        drop(slot);
        result
    }
}

impl Job<'_> {
    async fn run(
        &mut self,
        tests: Vec<TestRun>,
        observer: &mut dyn TestObserver,
    ) -> Result<Judged, SandboxError> {
        let mut judged = Judged::default();
        let (compile, compiled) = self.compile(View::Solution).await?;
        judged.compile = compile;
        if !compiled {
            return Ok(judged);
        }
        if self.checker.is_some() {
            let (compile, compiled) = self.compile(View::CheckerCompile).await?;
            judged.checker_compile = compile;
            if !compiled {
                return Ok(judged);
            }
        }
        for (index, mut test) in tests.into_iter().enumerate() {
            self.recover().await?;
            let stdin = if self.checker.is_some() {
                test.stdin.clone()
            } else {
                std::mem::take(&mut test.stdin)
            };
            let argv = self.solution.run_command(&test.limits, &test.args);
            let prefork = self.solution.language.prefork;
            let run = self
                .step_with(
                    View::Solution,
                    argv,
                    &test.limits,
                    stdin,
                    Vec::new(),
                    None,
                    prefork,
                )
                .await?;
            let checker = match &self.checker {
                Some(_) if checker_runs_after(&run) => {
                    self.recover().await?;
                    Some(self.check(&test, &run).await?)
                }
                _ => None,
            };
            let outcome = TestOutcome {
                run,
                checker,
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

    /// Compiles the submission (`View::Solution`) or the checker
    /// (`View::CheckerCompile`) when its language has a compile step: the
    /// report, and whether the job can go on.
    async fn compile(&mut self, view: View) -> Result<(Option<StepReport>, bool), SandboxError> {
        let part = match view {
            View::Solution => &self.solution,
            _ => &self.checker.as_ref().expect("a checker").0,
        };
        let Some(argv) = part.compile_command() else {
            return Ok((None, true));
        };
        let limits = part.compile_limits;
        let report = self
            .step(view, argv, &limits, Vec::new(), Vec::new())
            .await?;
        let succeeded = report.succeeded();
        Ok((Some(report), succeeded))
    }

    /// The checker's run after one test, on its three files.
    async fn check(
        &mut self,
        test: &TestRun,
        run: &StepReport,
    ) -> Result<StepReport, SandboxError> {
        let (part, limits) = self.checker.as_ref().expect("a checker");
        let limits = *limits;
        let argv = part.run_command(&limits, &CHECKER_FILES.map(String::from));
        let mut files = Vec::with_capacity(3);
        for (name, bytes) in [c"input", c"output", c"answer"].into_iter().zip([
            &test.stdin,
            &run.stdout,
            &test.answer,
        ]) {
            let contents = super::sys::memfd_with(name, bytes)
                .map_err(SandboxError::setup("a test file in memory"))?;
            let name = name.to_str().expect("ASCII").to_owned();
            files.push((name, contents, bytes.len() as u64));
        }
        debug_assert!(files.iter().map(|f| f.0.as_str()).eq(CHECKER_FILES));
        self.step(View::Checker, argv, &limits, Vec::new(), files)
            .await
    }

    /// One step in the view's directory, made first when this is the first
    /// step there.
    async fn step(
        &mut self,
        view: View,
        argv: Vec<String>,
        limits: &Limits,
        stdin: Vec<u8>,
        files: Vec<(String, OwnedFd, u64)>,
    ) -> Result<StepReport, SandboxError> {
        self.step_with(view, argv, limits, stdin, files, None, false)
            .await
    }

    /// [`Job::step`], with `link` (when given) as the step's stdin and
    /// stdout instead of `stdin` and a collected stdout, and forked from the
    /// slot's zygote when `prefork` (a run of a prefork language).
    #[allow(clippy::too_many_arguments)]
    async fn step_with(
        &mut self,
        view: View,
        argv: Vec<String>,
        limits: &Limits,
        stdin: Vec<u8>,
        files: Vec<(String, OwnedFd, u64)>,
        link: Option<(OwnedFd, OwnedFd)>,
        prefork: bool,
    ) -> Result<StepReport, SandboxError> {
        let pending = match view {
            View::Solution => &mut self.work_pending,
            View::CheckerCompile | View::Checker => &mut self.judge_pending,
        };
        let workspace = if std::mem::take(pending) {
            Some(match view {
                View::Solution => self.solution.workspace(),
                _ => self.checker.as_ref().expect("a checker").0.workspace(),
            })
        } else {
            None
        };
        let step = Step {
            argv,
            limits,
            stdin,
            files,
            link,
            prefork,
            ..Step::new(view, workspace, std::mem::take(&mut self.first_step))
        };
        run_step(self.process, step, self.sandbox.cpu_rate()).await
    }

    /// When the last step took the slot's keeper down, starts the slot
    /// again and compiles both programs again (unreported: they compiled
    /// before, in this job).
    async fn recover(&mut self) -> Result<(), SandboxError> {
        if !self.process.is_broken() {
            return Ok(());
        }
        tracing::info!(
            slot = self.slot,
            "a test took its slot down; starting it again for the job's next test"
        );
        *self.process = self.sandbox.sandbox_for(self.slot, self.mounts).await?;
        self.work_pending = true;
        self.judge_pending = true;
        self.first_step = true;
        let mut views = vec![View::Solution];
        if self.checker.is_some() {
            views.push(View::CheckerCompile);
        }
        for view in views {
            let (report, compiled) = self.compile(view).await?;
            if !compiled || self.process.is_broken() {
                return Err(keeper_error(format!(
                    "compiling again in a restarted slot failed: {report:?}"
                )));
            }
        }
        Ok(())
    }
}

impl NativeSandbox {
    /// Interactive judge mode (see the module's notes).
    pub(super) async fn judge_interactive(
        &self,
        program: Program,
        interactor: CheckerProgram,
        tests: Vec<TestRun>,
        observer: &mut dyn TestObserver,
    ) -> Result<Judged, SandboxError> {
        judge::validate(&program, Some(&interactor), &tests)?;
        let largest_test = tests.iter().map(|t| t.limits.scratch_bytes).max();
        let solution = Part::new(
            &program.language,
            &program.source,
            &program.files,
            program.compile_limits,
            largest_test
                .unwrap_or(0)
                .max(program.compile_limits.scratch_bytes),
        )?;
        // Room for the interactor's own files, its output, and one test's
        // input and answer at a time.
        let test_files = tests
            .iter()
            .map(|t| t.stdin.len() as u64 + t.answer.len() as u64)
            .max()
            .unwrap_or(0);
        let interactor_limits = interactor.run_limits;
        let interactor_part = Part::new(
            &interactor.language,
            &interactor.source,
            &interactor.files,
            interactor.compile_limits,
            interactor
                .compile_limits
                .scratch_bytes
                .max(interactor_limits.scratch_bytes)
                .saturating_add(test_files),
        )?;
        let solution_mounts = program.language.mounts.clone();
        let interactor_mounts = interactor.language.mounts.clone();
        // A job slot as any job, and a companion slot for the interactor:
        // there are as many companions as job slots, so this never waits
        // when the worker runs no more jobs than it has slots.
        let closed = |_| SandboxError::Unavailable("sandbox closed".into());
        let _permit = self.slots.acquire().await.map_err(closed)?;
        let _helper_permit = self.helper_slots.acquire().await.map_err(closed)?;
        let solution_slot = self.take_slot();
        let interactor_slot = self.take_slot();
        let mut solution_process = self
            .sandbox_for(solution_slot.slot, &solution_mounts)
            .await?;
        let mut interactor_process = self
            .sandbox_for(interactor_slot.slot, &interactor_mounts)
            .await?;
        let result = {
            let mut pair = Pair {
                solution: Job {
                    sandbox: self,
                    slot: solution_slot.slot,
                    mounts: &solution_mounts,
                    process: &mut solution_process,
                    solution,
                    checker: None,
                    work_pending: true,
                    judge_pending: true,
                    first_step: true,
                },
                interactor: Job {
                    sandbox: self,
                    slot: interactor_slot.slot,
                    mounts: &interactor_mounts,
                    process: &mut interactor_process,
                    solution: interactor_part,
                    checker: None,
                    work_pending: true,
                    judge_pending: true,
                    first_step: true,
                },
                interactor_limits,
            };
            pair.run(tests, observer).await
        };
        for (process, slot) in [
            (solution_process, &solution_slot),
            (interactor_process, &interactor_slot),
        ] {
            let mut process = process;
            if result.is_ok() {
                process.begin_clear().await;
            }
            if result.is_ok() && !process.is_broken() {
                *self.idle[slot.slot as usize]
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(process);
            }
        }
        drop(solution_slot);
        drop(interactor_slot);
        result
    }
}

/// An interactive job: the submission's slot and the interactor's.
struct Pair<'a, 'b> {
    solution: Job<'a>,
    interactor: Job<'b>,
    interactor_limits: Limits,
}

impl Pair<'_, '_> {
    async fn run(
        &mut self,
        tests: Vec<TestRun>,
        observer: &mut dyn TestObserver,
    ) -> Result<Judged, SandboxError> {
        let mut judged = Judged::default();
        let (compile, compiled) = self.solution.compile(View::Solution).await?;
        judged.compile = compile;
        if !compiled {
            return Ok(judged);
        }
        let (compile, compiled) = self.interactor.compile(View::Solution).await?;
        judged.checker_compile = compile;
        if !compiled {
            return Ok(judged);
        }
        for (index, test) in tests.into_iter().enumerate() {
            self.solution.recover().await?;
            self.interactor.recover().await?;
            let (run, interactor) = self.test(&test).await?;
            let outcome = TestOutcome {
                run,
                checker: None,
                interactor: Some(interactor),
            };
            let go_on = observer.finished(index, &outcome).await;
            judged.keep(outcome);
            if !go_on {
                break;
            }
        }
        Ok(judged)
    }

    /// One test: both steps at once, joined by two pipes.
    async fn test(&mut self, test: &TestRun) -> Result<(StepReport, StepReport), SandboxError> {
        let pipe = || -> Result<(OwnedFd, OwnedFd), SandboxError> {
            let (read, write) = std::io::pipe().map_err(SandboxError::setup("pipe"))?;
            Ok((read.into(), write.into()))
        };
        // to_solution: the interactor writes, the submission reads.
        let (solution_in, interactor_out) = pipe()?;
        let (interactor_in, solution_out) = pipe()?;
        let mut files = Vec::with_capacity(2);
        let given = [(c"input", &test.stdin), (c"answer", &test.answer)];
        let wanted = judge::interactor_args(test);
        for (name, bytes) in given {
            let name_str = name.to_str().expect("ASCII");
            if !wanted.iter().any(|w| w == name_str) {
                continue;
            }
            let contents = super::sys::memfd_with(name, bytes)
                .map_err(SandboxError::setup("a test file in memory"))?;
            files.push((name_str.to_owned(), contents, bytes.len() as u64));
        }
        let solution_argv = self.solution.solution.run_command(&test.limits, &test.args);
        let interactor_argv = self
            .interactor
            .solution
            .run_command(&self.interactor_limits, &wanted);
        let interactor_limits = self.interactor_limits;
        // The worker keeps each read end too, so that no write ever fails
        // with EPIPE (or SIGPIPE): once a side's step is over, what the
        // other still writes to it is read and dropped until that one ends
        // too (at the latest at its own limits). A verdict never depends on
        // which side happened to end first.
        let keep = |fd: &OwnedFd| fd.try_clone().map_err(SandboxError::setup("pipe"));
        let (solution_in_kept, interactor_in_kept) = (keep(&solution_in)?, keep(&interactor_in)?);
        let (solution, interactor) = (&mut self.solution, &mut self.interactor);
        let (run, interaction) = tokio::join!(
            async move {
                let run = solution
                    .step_with(
                        View::Solution,
                        solution_argv,
                        &test.limits,
                        Vec::new(),
                        Vec::new(),
                        Some((solution_in, solution_out)),
                        solution.solution.language.prefork,
                    )
                    .await;
                drain(solution_in_kept);
                run
            },
            async move {
                let interaction = interactor
                    .step_with(
                        View::Solution,
                        interactor_argv,
                        &interactor_limits,
                        Vec::new(),
                        files,
                        Some((interactor_in, interactor_out)),
                        interactor.solution.language.prefork,
                    )
                    .await;
                drain(interactor_in_kept);
                interaction
            },
        );
        Ok((run?, interaction?))
    }
}

/// Reads and drops what comes through a pipe whose reader's step is over,
/// until its writer closes it, on a task of its own.
fn drain(read_end: OwnedFd) {
    tokio::spawn(async move {
        // Non-blocking from here on: nobody else reads this pipe any more.
        let Ok(mut pipe) = tokio::net::unix::pipe::Receiver::from_owned_fd(read_end) else {
            return;
        };
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(1..) = tokio::io::AsyncReadExt::read(&mut pipe, &mut buf).await {}
    });
}
