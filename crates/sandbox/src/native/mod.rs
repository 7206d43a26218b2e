//! The native backend: bubblewrap (Debian's `bwrap`) builds one long-lived
//! sandbox per slot, and a keeper inside it starts every step in fresh
//! namespaces; the worker does what neither does.
//!
//! Per slot (once, when the slot is first used, and again whenever it had to
//! be given up): an unprivileged host uid leased to the slot, a cgroup, and
//! bubblewrap with new user, network, PID, IPC and UTS namespaces and a
//! read-only root around the keeper. Per job: a fresh size- and
//! inode-limited tmpfs at `/work` holding the sources. Per step: the step's
//! memory and process limits on the slot's cgroup, new PID, mount, IPC and
//! UTS namespaces with a fresh `/proc`, `/tmp` and `/dev/shm`, rlimits, no
//! capabilities, no_new_privs, the seccomp filters, an empty environment, and
//! a supervisor here that enforces the wall clock and the output cap. The
//! design and its measured cost are in `keeper` and the README.
//!
//! Why bubblewrap for the slot rather than namespaces made in-process: it is
//! a separate single-threaded process, so the worker never forks inside its
//! multi-threaded runtime; it brings up loopback in the new network
//! namespace and maps the slot uid; and it is the Flatpak sandbox,
//! security-maintained by Debian.

mod bwrap;
mod cgroup;
pub mod doctor;
mod judge;
pub mod keeper;
mod protocol;
// Shared with the docker backend, whose container init installs the same filters.
pub(crate) mod seccomp;
mod slot;
mod supervise;
mod sys;
mod uids;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use tokio::sync::Semaphore;

use crate::judge::{CheckerProgram, Judged, TestObserver, TestRun};
use crate::language::Substitutions;
use crate::limits::Limits;
use crate::live::{LiveIo, OutputStream};
use crate::report::{Execution, Observed, StepReport, Termination};
use crate::{Program, Sandbox, SandboxError};
use cgroup::CgroupLayout;
use protocol::{StepSpec, View, Workspace};
pub use slot::KeeperCommand;
use slot::{SlotProcess, SlotSpawn};
use supervise::Supervised;
use uids::UidLeases;

/// Runs the calling process's threads, and every process it starts from
/// now on, under `SCHED_BATCH` (see `docs/benchmarks.md`): a service thread
/// woken while a program runs on its core lets the program run on to its
/// next scheduling point rather than preempting it, so that under load the
/// API, the worker, the keepers and the programs switch less often. On an
/// idle core nothing changes: the woken thread runs at once. Call it before
/// any other thread exists.
pub fn schedule_as_batch() -> std::io::Result<()> {
    sys::schedule_as_batch()
}

/// Files a job's `/work`, `/tmp` or `/dev/shm` may hold: enough for a
/// compiler's temporaries and a program's own, few enough that an
/// inode-filling loop stops early.
const INODES: u64 = 4096;

/// How many of the most recently freed slots `take_slot` looks at for one
/// whose keeper is done clearing.
const SLOT_CHOICE: usize = 8;

/// Settings of the native backend.
#[derive(Debug, Clone)]
pub struct NativeConfig {
    /// The bubblewrap binary.
    pub bwrap: PathBuf,
    /// The keeper executable that runs inside each slot's sandbox.
    pub keeper: KeeperCommand,
    /// Slots run as host uids from here up, each leased by one slot of one
    /// worker at a time (see `uids`), so concurrent jobs never share a uid.
    pub first_uid: u32,
    /// Where the uid leases are kept; shared by every worker of this host.
    pub uid_lock_dir: PathBuf,
    /// How many jobs may run at once.
    pub slots: u32,
    /// CPU quota of each slot, in cores (CFS quota on cgroup v1, `cpu.max`
    /// on v2): one job's threads cannot take the CPUs of the others.
    pub cpus_per_slot: f64,
    /// The cgroup (a path inside each hierarchy) the slot cgroups are made
    /// under; `None`: the worker's own cgroup. A container whose own cgroup
    /// is read-only is given a delegated subtree this way
    /// (docs/native-container.md).
    pub cgroup_path: Option<PathBuf>,
}

impl Default for NativeConfig {
    fn default() -> Self {
        Self {
            bwrap: PathBuf::from("/usr/bin/bwrap"),
            keeper: KeeperCommand::beside_current_exe(),
            first_uid: 200_000,
            uid_lock_dir: PathBuf::from("/run/code-runner-uids"),
            slots: 50,
            cpus_per_slot: 1.0,
            cgroup_path: None,
        }
    }
}

/// Runs programs in per-slot bubblewrap sandboxes with cgroup limits.
pub struct NativeSandbox {
    config: NativeConfig,
    cgroups: CgroupLayout,
    uids: UidLeases,
    slots: Semaphore,
    /// The companion slots: one per slot, taken by an interactive job's
    /// interactor beside its job slot, so that such a job never waits for
    /// (nor takes) a second job slot; their indices follow the job slots'.
    helper_slots: Semaphore,
    free_slots: Mutex<Vec<u32>>,
    /// Each slot's sandbox while no job uses it. A job takes it out and puts
    /// it back only after a clean end, so a job abandoned half-way (its
    /// future dropped) drops the sandbox, which kills it whole.
    idle: Vec<Mutex<Option<SlotProcess>>>,
    sequence: AtomicU64,
    /// The cores this process may use, read once: the standard library reads
    /// the cgroup's CPU quota files on every call.
    cores: usize,
}

impl std::fmt::Debug for NativeSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeSandbox")
            .field("config", &self.config)
            .finish()
    }
}

impl NativeSandbox {
    /// Checks that this host can run sandboxes (root, bubblewrap, the keeper,
    /// cgroups) and prepares the worker's cgroup directories.
    pub fn new(config: NativeConfig) -> Result<Self, SandboxError> {
        if sys::euid() != 0 {
            return Err(SandboxError::Unavailable(
                "the native sandbox needs root (to manage cgroups and per-slot uids)".into(),
            ));
        }
        if !config.bwrap.is_file() {
            return Err(SandboxError::Unavailable(format!(
                "bubblewrap not found at {} (apt-get install bubblewrap)",
                config.bwrap.display()
            )));
        }
        if !config.keeper.program.is_file() {
            return Err(SandboxError::Unavailable(format!(
                "the sandbox keeper was not found at {} (build it: cargo build -p code-runner-sandbox --bin code-runner-keeper)",
                config.keeper.program.display()
            )));
        }
        if config.slots == 0 {
            return Err(SandboxError::Unavailable("slots must be at least 1".into()));
        }
        if !(0.01..=1024.0).contains(&config.cpus_per_slot) {
            return Err(SandboxError::Unavailable(format!(
                "cpus per slot must be between 0.01 and 1024, got {}",
                config.cpus_per_slot
            )));
        }
        let cgroups = CgroupLayout::detect(config.cgroup_path.as_deref())?;
        // A uid for every job slot and every companion slot.
        let all_slots = config.slots.saturating_mul(2);
        let uids = UidLeases::acquire(&config.uid_lock_dir, config.first_uid, all_slots)?;
        // Compiled here too (the keeper compiles its own copy) so that a
        // filter this host cannot take fails at start-up, not per job.
        seccomp::SeccompFilters::compile()?;
        Ok(Self {
            uids,
            slots: Semaphore::new(config.slots as usize),
            helper_slots: Semaphore::new(config.slots as usize),
            free_slots: Mutex::new((0..all_slots).rev().collect()),
            idle: (0..all_slots).map(|_| Mutex::new(None)).collect(),
            sequence: AtomicU64::new(0),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            config,
            cgroups,
        })
    }

    /// Takes a free slot; it goes back when the guard drops, also when the
    /// job's future is dropped half-way (a cancelled or abandoned job).
    ///
    /// The most recently freed slot whose keeper has answered its last
    /// `Clear` (among the last `SLOT_CHOICE` freed), else the most recently
    /// freed: a job should not wait for a slot still clearing (its init's
    /// exit and its `/work`'s unmount each wait for an RCU grace period,
    /// milliseconds where the kernel runs them unexpedited, as real-time
    /// kernels do) while another is ready; and recently used slots are the
    /// warm ones.
    fn take_slot(&self) -> SlotGuard<'_> {
        let mut free = self.free_slots.lock().unwrap_or_else(|p| p.into_inner());
        // The semaphore admits at most `slots` callers, so the list is never empty.
        let index = slot_to_take(&free, |slot| {
            self.idle[slot as usize]
                .try_lock()
                .is_ok_and(|idle| idle.as_ref().is_some_and(SlotProcess::cleared))
        })
        .expect("a free slot behind the semaphore");
        let slot = free.remove(index);
        drop(free);
        SlotGuard {
            free_slots: &self.free_slots,
            slot,
        }
    }

    /// The slot's idle sandbox when it can run a job needing `mounts` and
    /// its last job left nothing behind, else a new one (with every mount the
    /// old one had, so that slots settle on the union of what the languages
    /// need).
    async fn sandbox_for(
        &self,
        slot: u32,
        mounts: &[PathBuf],
    ) -> Result<SlotProcess, SandboxError> {
        let idle = self.idle[slot as usize]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let mut wanted = mounts.to_vec();
        if let Some(mut process) = idle {
            wanted.extend(process.mounts().iter().cloned());
            // The last job's /work is gone and the keeper is in a fresh
            // network namespace once this answer is in; then the slot must
            // be back at what it held when fresh: no process, no memory held
            // by a file or a descriptor in flight (a socket cycle that only
            // the kernel's garbage collector will free, with a memfd in it).
            let cleared = process.finish_clear().await;
            let helpers = process.helpers();
            match cleared {
                Err(e) => {
                    tracing::warn!(slot, error = %e, "slot keeper failed to clear; rebuilding the slot")
                }
                Ok(()) => match process.cgroup().residue(helpers) {
                    Some(residue) => {
                        tracing::info!(slot, %residue, "a job left something in its slot; rebuilding the slot")
                    }
                    None if process.usable_for(mounts) => return Ok(process),
                    None => {}
                },
            }
        }
        wanted.sort();
        wanted.dedup();
        let name = format!(
            "slot-{slot}-{}",
            self.sequence.fetch_add(1, Ordering::Relaxed)
        );
        SlotProcess::start(SlotSpawn {
            bwrap: &self.config.bwrap,
            keeper: &self.config.keeper,
            uid: self.uids.uid(slot),
            mounts: wanted,
            cgroup: self.cgroups.create_slot(&name, self.config.cpus_per_slot)?,
        })
        .await
    }

    async fn run_job(
        &self,
        process: &mut SlotProcess,
        program: &Program,
        live: Option<&LiveIo>,
    ) -> Result<Execution, SandboxError> {
        let language = &program.language;
        let main = language.main_name(&program.source);
        let compile_subs = Substitutions {
            main: main.clone(),
            memory_mb: program.compile_limits.memory_mb(),
        };
        let run_subs = Substitutions {
            main,
            memory_mb: program.run_limits.memory_mb(),
        };
        let files = source_files(language, &run_subs, &program.source, &program.files)?;
        // Written by the keeper when the first step starts.
        let mut workspace = Some(Workspace {
            bytes: program
                .compile_limits
                .scratch_bytes
                .max(program.run_limits.scratch_bytes),
            inodes: INODES,
            files,
        });

        let mut compile = None;
        if let Some(argv) = language.compile_command(&compile_subs) {
            let step = Step {
                argv,
                limits: &program.compile_limits,
                stdin: Vec::new(),
                live: live.map(|io| supervise::StepLive {
                    io: io.clone(),
                    stdout: OutputStream::CompileStdout,
                    stderr: OutputStream::CompileStderr,
                    interactive: false,
                }),
                ..Step::new(View::Solution, workspace.take(), true)
            };
            let report = run_step(process, step, self.cpu_rate()).await?;
            let succeeded = report.succeeded();
            compile = Some(report);
            if !succeeded {
                process.begin_clear().await;
                return Ok(Execution { compile, run: None });
            }
        }
        let step = Step {
            argv: {
                let mut argv = language.run_command(&run_subs);
                argv.extend(program.args.iter().cloned());
                argv
            },
            limits: &program.run_limits,
            stdin: program.stdin.clone(),
            live: live.map(|io| supervise::StepLive {
                io: io.clone(),
                stdout: OutputStream::Stdout,
                stderr: OutputStream::Stderr,
                interactive: io.stdin.is_some() || io.signals.is_some(),
            }),
            prefork: language.prefork,
            last_of_job: true,
            ..Step::new(View::Solution, workspace.take(), compile.is_none())
        };
        let run = run_step(process, step, self.cpu_rate()).await?;
        process.begin_clear().await;
        Ok(Execution {
            compile,
            run: Some(run),
        })
    }

    /// One job in a free slot, live when `live` is given.
    async fn execute_in_slot(
        &self,
        program: Program,
        live: Option<&LiveIo>,
    ) -> Result<Execution, SandboxError> {
        program.compile_limits.validate()?;
        program.run_limits.validate()?;
        let _permit = self
            .slots
            .acquire()
            .await
            .map_err(|_| SandboxError::Unavailable("sandbox closed".into()))?;
        let slot = self.take_slot();
        let mut process = self
            .sandbox_for(slot.slot, &program.language.mounts)
            .await?;
        let result = self.run_job(&mut process, &program, live).await;
        if result.is_ok() && !process.is_broken() {
            *self.idle[slot.slot as usize]
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(process);
        }
        drop(slot);
        result
    }

    /// The most CPU time a step can use per second: its slot's quota, or
    /// every core of the machine when the quota is larger.
    fn cpu_rate(&self) -> f64 {
        self.config.cpus_per_slot.min(self.cores as f64)
    }
}

async fn run_step(
    process: &mut SlotProcess,
    step: Step<'_>,
    cpu_rate: f64,
) -> Result<StepReport, SandboxError> {
    let limits = step.limits;
    // A job's first step finds an empty slot; a later one, the job's /work
    // (and /judge), which stay charged to the slot.
    let files_bytes = step.files.iter().map(|(_, _, len)| len).sum();
    let init_waiting = step.first_of_job && process.init_waiting();
    let baseline =
        process
            .cgroup()
            .begin_step(limits, step.first_of_job, files_bytes, init_waiting)?;
    let cpu_meter = process.cgroup().cpu_meter(&baseline);
    let (names, contents) = step
        .files
        .into_iter()
        .map(|(name, fd, _)| (name, fd))
        .unzip();
    let spec = StepSpec {
        view: step.view,
        workspace: step.workspace,
        files: names,
        argv: step.argv,
        env: step_environment(step.view),
        rlimits: rlimits(limits),
        tmp_bytes: limits.scratch_bytes,
        tmp_inodes: INODES,
        prefork: step.prefork,
        last_of_job: step.last_of_job,
    };
    let io = match step.link {
        Some((stdin, stdout)) => slot::StepIo::Linked { stdin, stdout },
        None => slot::StepIo::Captured(step.stdin),
    };
    let outcome = process
        .run(
            spec,
            io,
            contents,
            supervise::StepLimits {
                wall_limit: limits.wall_time,
                output_cap: limits.output_bytes,
                cpu_limit: limits.cpu_time,
                cpu_rate,
                cpu_meter,
            },
            step.live,
        )
        .await;
    let stats = process.cgroup().end_step(baseline);
    let (seen, end) = match outcome {
        Ok(outcome) => outcome,
        // The OOM killer picks the step's processes first, but a program can
        // make itself small (memory in tmpfs counts in no process's size)
        // and leave the keeper the largest: the step still ran out of
        // memory. The slot is started again for the next job.
        Err(_) if stats.oom_kills > 0 => {
            process.mark_broken();
            (
                Supervised::killed_with_the_slot(),
                protocol::StepEnd {
                    exit_code: None,
                    signal: Some(libc::SIGKILL),
                    cpu_micros: 0,
                },
            )
        }
        Err(e) => {
            process.mark_broken();
            return Err(e);
        }
    };
    // The cgroup counts every process; the init's rusage misses children
    // reaped by no one (SIGCHLD ignored). The larger is the truer.
    let cpu_time = stats
        .cpu_time
        .max(std::time::Duration::from_micros(end.cpu_micros));
    let termination = Termination::classify(
        &Observed {
            output_exceeded: seen.output_exceeded,
            timed_out: seen.timed_out,
            signal: end.signal,
            cpu_time,
            oom_kills: stats.oom_kills,
        },
        limits.cpu_time,
    );
    Ok(StepReport {
        stdout: seen.stdout,
        stderr: seen.stderr,
        exit_code: end.exit_code,
        signal: end.signal,
        termination,
        output_truncated: seen.output_exceeded,
        wall_time: seen.wall_time,
        cpu_time,
        memory_peak_bytes: stats.memory_peak_bytes,
    })
}

#[async_trait]
impl Sandbox for NativeSandbox {
    async fn execute(&self, program: Program) -> Result<Execution, SandboxError> {
        self.execute_in_slot(program, None).await
    }

    /// Streams from the supervisor's read loop: each chunk is reported as
    /// it is read from the step's pipes.
    async fn execute_live(
        &self,
        program: Program,
        live: LiveIo,
    ) -> Result<Execution, SandboxError> {
        self.execute_in_slot(program, Some(&live)).await
    }

    /// Judge mode in one slot, held for the whole job: the submission and
    /// the checker compiled once each, every test a fresh step, the checker
    /// a step of its own after it (see `judge` and docs/judge-sandbox.md).
    async fn execute_tests(
        &self,
        program: Program,
        checker: Option<CheckerProgram>,
        tests: Vec<TestRun>,
        observer: &mut dyn TestObserver,
    ) -> Result<Judged, SandboxError> {
        self.judge(program, checker, tests, observer).await
    }

    /// Interactive judge mode in two slots, both held for the whole job:
    /// the submission in one, the interactor in the other, each compiled
    /// once, their steps of each test joined by two pipes (see `judge` and
    /// docs/judge-sandbox.md).
    async fn execute_interactive(
        &self,
        program: Program,
        interactor: CheckerProgram,
        tests: Vec<TestRun>,
        observer: &mut dyn TestObserver,
    ) -> Result<Judged, SandboxError> {
        self.judge_interactive(program, interactor, tests, observer)
            .await
    }
}

/// Where in `free` (the free slots, the most recently freed last) the slot
/// `take_slot` takes is: the last one `ready` says is cleared among the
/// last `SLOT_CHOICE`, else the last; `None` when none is free.
fn slot_to_take(free: &[u32], ready: impl Fn(u32) -> bool) -> Option<usize> {
    let last = free.len().checked_sub(1)?;
    let ready = free
        .iter()
        .rev()
        .take(SLOT_CHOICE)
        .position(|&slot| ready(slot));
    Some(ready.map_or(last, |from_end| last - from_end))
}

/// A slot in use; returned to the free list on drop.
struct SlotGuard<'a> {
    free_slots: &'a Mutex<Vec<u32>>,
    slot: u32,
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        self.free_slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(self.slot);
    }
}

/// One sandboxed command of a job.
struct Step<'a> {
    view: View,
    argv: Vec<String>,
    limits: &'a Limits,
    stdin: Vec<u8>,
    /// The view's directory, made fresh for this step (its first there).
    workspace: Option<Workspace>,
    /// Files the keeper writes into the view's directory for this step
    /// alone: `(name, contents, length)`.
    files: Vec<(String, std::os::fd::OwnedFd, u64)>,
    /// The job's first step: nothing of the job is in the slot yet.
    first_of_job: bool,
    /// Instead of `stdin` and a collected stdout: these descriptors as the
    /// step's stdin and stdout (an interactive test's pipes).
    link: Option<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)>,
    /// A live run's step: its output reported as it comes.
    live: Option<supervise::StepLive>,
    /// Forked from the slot's zygote (a run of a `prefork` language).
    prefork: bool,
    /// The job's last step (see `protocol::StepSpec::last_of_job`).
    last_of_job: bool,
}

impl Step<'_> {
    /// A step with no command yet (set `argv`, `limits` and `stdin`).
    fn new(view: View, workspace: Option<Workspace>, first_of_job: bool) -> Self {
        Step {
            view,
            argv: Vec::new(),
            limits: &Limits::RUN_DEFAULT,
            stdin: Vec::new(),
            workspace,
            files: Vec::new(),
            first_of_job,
            link: None,
            live: None,
            prefork: false,
            last_of_job: false,
        }
    }
}

/// The files of a job's directory: the main source under the language's
/// name for it, then the extra files, each checked to be a plain name.
fn source_files(
    language: &crate::Language,
    subs: &Substitutions,
    source: &str,
    extra: &[(String, String)],
) -> Result<Vec<(String, String)>, SandboxError> {
    let mut files = vec![(language.source_file(subs), source.to_owned())];
    for (file_name, contents) in extra {
        // The API only lets plain names through; refuse anything else here
        // too rather than trust every caller.
        if !crate::is_plain_file_name(file_name) {
            return Err(SandboxError::setup(format!("extra file {file_name:?}"))(
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a plain file name"),
            ));
        }
        files.push((file_name.clone(), contents.clone()));
    }
    Ok(files)
}

/// What every program finds in its environment, and nothing else: `HOME` is
/// the step's working directory.
fn step_environment(view: View) -> Vec<(String, String)> {
    let home = match view {
        View::Solution => "/work",
        View::CheckerCompile | View::Checker => "/judge",
    };
    [
        ("PATH", "/usr/bin:/bin"),
        ("HOME", home),
        ("LANG", "C.UTF-8"),
        ("TMPDIR", "/tmp"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn rlimits(limits: &Limits) -> Vec<(u32, u64, u64)> {
    let cpu = limits.cpu_seconds();
    vec![
        // SIGXCPU at the limit, SIGKILL a second later for a program that catches it.
        (libc::RLIMIT_CPU, cpu, cpu + 1),
        (
            libc::RLIMIT_FSIZE,
            limits.file_size_bytes,
            limits.file_size_bytes,
        ),
        (
            libc::RLIMIT_NOFILE,
            u64::from(limits.open_files),
            u64::from(limits.open_files),
        ),
        (libc::RLIMIT_CORE, 0, 0),
        // No real-time policy and no nice value below the default, whatever
        // the service was started with: a SCHED_FIFO program would run past
        // its CPU quota where the kernel has no real-time group scheduling,
        // and every thread of the service is SCHED_BATCH.
        (libc::RLIMIT_RTPRIO, 0, 0),
        (libc::RLIMIT_NICE, 0, 0),
        // No RLIMIT_NPROC: it counts every task of the slot's uid on the
        // host, the keeper's included. The pids cgroup is the per-step
        // process limit.
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_takes_the_most_recently_freed_slot_that_is_cleared() {
        // Slot 7 was freed last and is still clearing; 4 before it is ready.
        let free = [1, 2, 4, 7];
        assert_eq!(slot_to_take(&free, |slot| slot != 7), Some(2));
        // All ready: the most recently freed, the warm one.
        assert_eq!(slot_to_take(&free, |_| true), Some(3));
        // None ready: the most recently freed all the same.
        assert_eq!(slot_to_take(&free, |_| false), Some(3));
        assert_eq!(slot_to_take(&[], |_| true), None);
    }

    #[test]
    fn only_the_last_few_freed_slots_are_looked_at() {
        let free: Vec<u32> = (0..20).collect();
        let looked_at = std::cell::RefCell::new(Vec::new());
        let index = slot_to_take(&free, |slot| {
            looked_at.borrow_mut().push(slot);
            slot == 3
        });
        // Slot 3 is ready but further back than SLOT_CHOICE: the last is taken.
        assert_eq!(index, Some(19));
        assert_eq!(looked_at.into_inner(), (12..20).rev().collect::<Vec<u32>>());
    }
}
