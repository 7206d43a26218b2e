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
            let run = self
                .step(View::Solution, argv, &test.limits, stdin, Vec::new())
                .await?;
            let checker = match &self.checker {
                Some(_) if checker_runs_after(&run) => {
                    self.recover().await?;
                    Some(self.check(&test, &run).await?)
                }
                _ => None,
            };
            let outcome = TestOutcome { run, checker };
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
