//! The native backend: each step runs under bubblewrap (Debian's `bwrap`)
//! started as a subprocess, with the worker doing what bubblewrap does not.
//!
//! Per job: a slot (one of `slots`, each with its own unprivileged host uid),
//! a scratch tmpfs mounted at `/work`, then a compile step when the language
//! has one and the run step. Per step: a fresh cgroup with the memory and
//! process limits, rlimits, the uid drop, new user/PID/mount/network/IPC/UTS
//! namespaces, a read-only root, an empty environment, and a supervisor that
//! enforces the wall clock and the output cap.
//!
//! Why bubblewrap rather than namespaces made in-process (e.g. `hakoniwa`):
//! it is a separate single-threaded process, so the worker never forks inside
//! its multi-threaded runtime; it runs its own PID 1 so programs keep normal
//! signal behaviour; it brings up loopback in the new network namespace; and
//! it is the Flatpak sandbox, security-maintained by Debian. Measurements are
//! in `../shared/notes/native-sandbox.md` and the README.

mod bwrap;
mod cgroup;
mod scratch;
// Shared with the docker backend, whose container init installs the same filters.
pub(crate) mod seccomp;
mod supervise;
mod sys;
mod uids;

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use async_trait::async_trait;
use tokio::sync::Semaphore;

use crate::language::Substitutions;
use crate::limits::Limits;
use crate::report::{Execution, Observed, StepReport, Termination};
use crate::{Program, Sandbox, SandboxError};
use cgroup::CgroupLayout;
use scratch::Scratch;
use seccomp::SeccompFilters;
use supervise::supervise;
use sys::{Confinement, Rlimit};
use uids::UidLeases;

/// Settings of the native backend.
#[derive(Debug, Clone)]
pub struct NativeConfig {
    /// The bubblewrap binary.
    pub bwrap: PathBuf,
    /// Where scratch tmpfs mounts are made (created 0711, root-owned).
    pub scratch_root: PathBuf,
    /// Slots run as host uids from here up, each leased by one slot of one
    /// worker at a time (see `uids`), so concurrent jobs never share a uid.
    pub first_uid: u32,
    /// Where the uid leases are kept; shared by every worker of this host.
    pub uid_lock_dir: PathBuf,
    /// How many jobs may run at once.
    pub slots: u32,
}

impl Default for NativeConfig {
    fn default() -> Self {
        Self {
            bwrap: PathBuf::from("/usr/bin/bwrap"),
            scratch_root: PathBuf::from("/run/code-runner"),
            first_uid: 200_000,
            uid_lock_dir: PathBuf::from("/run/code-runner-uids"),
            slots: 50,
        }
    }
}

/// Runs programs under bubblewrap with cgroup limits.
pub struct NativeSandbox {
    config: NativeConfig,
    cgroups: CgroupLayout,
    scratch_root: PathBuf,
    uids: UidLeases,
    seccomp: SeccompFilters,
    slots: Semaphore,
    free_slots: Mutex<Vec<u32>>,
    sequence: AtomicU64,
}

impl std::fmt::Debug for NativeSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeSandbox")
            .field("config", &self.config)
            .finish()
    }
}

impl NativeSandbox {
    /// Checks that this host can run sandboxes (root, bubblewrap, cgroups)
    /// and prepares the worker's cgroup and scratch directories.
    pub fn new(config: NativeConfig) -> Result<Self, SandboxError> {
        if sys::euid() != 0 {
            return Err(SandboxError::Unavailable(
                "the native sandbox needs root (to manage cgroups, mounts and per-slot uids)"
                    .into(),
            ));
        }
        if !config.bwrap.is_file() {
            return Err(SandboxError::Unavailable(format!(
                "bubblewrap not found at {} (apt-get install bubblewrap)",
                config.bwrap.display()
            )));
        }
        if config.slots == 0 {
            return Err(SandboxError::Unavailable("slots must be at least 1".into()));
        }
        let cgroups = CgroupLayout::detect()?;
        let scratch_root = prepare_scratch_root(&config.scratch_root)?;
        let uids = UidLeases::acquire(&config.uid_lock_dir, config.first_uid, config.slots)?;
        let seccomp = SeccompFilters::compile()?;
        Ok(Self {
            uids,
            seccomp,
            slots: Semaphore::new(config.slots as usize),
            free_slots: Mutex::new((0..config.slots).rev().collect()),
            sequence: AtomicU64::new(0),
            config,
            cgroups,
            scratch_root,
        })
    }

    /// Takes a free slot; it goes back when the guard drops, also when the
    /// job's future is dropped half-way (a cancelled or abandoned job).
    fn take_slot(&self) -> SlotGuard<'_> {
        // The semaphore admits at most `slots` callers, so the list is never empty.
        let slot = self
            .free_slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .expect("a free slot behind the semaphore");
        SlotGuard {
            free_slots: &self.free_slots,
            slot,
        }
    }

    async fn run_job(
        &self,
        program: &Program,
        uid: u32,
        name: &str,
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
        let scratch_bytes = program
            .compile_limits
            .scratch_bytes
            .max(program.run_limits.scratch_bytes);
        let scratch = Scratch::create(&self.scratch_root, name, uid, scratch_bytes)?;
        scratch.write_file(
            &language.source_file(&run_subs),
            program.source.as_bytes(),
            uid,
        )?;
        for (file_name, contents) in &program.files {
            // The API only lets plain names through; refuse anything else here
            // too rather than trust every caller.
            if !crate::is_plain_file_name(file_name) {
                return Err(SandboxError::setup(format!("extra file {file_name:?}"))(
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a plain file name"),
                ));
            }
            scratch.write_file(file_name, contents.as_bytes(), uid)?;
        }

        let mut compile = None;
        if let Some(argv) = language.compile_command(&compile_subs) {
            let step = Step {
                name: format!("{name}-c"),
                argv,
                limits: &program.compile_limits,
                stdin: Vec::new(),
                memory_marker: None,
            };
            let report = self.run_step(&scratch, uid, &language.mounts, step).await?;
            if !report.succeeded() {
                return Ok(Execution {
                    compile: Some(report),
                    run: None,
                });
            }
            compile = Some(report);
        }
        let step = Step {
            name: format!("{name}-r"),
            argv: {
                let mut argv = language.run_command(&run_subs);
                argv.extend(program.args.iter().cloned());
                argv
            },
            limits: &program.run_limits,
            stdin: program.stdin.clone(),
            memory_marker: language.memory_error_marker.as_deref(),
        };
        let run = self.run_step(&scratch, uid, &language.mounts, step).await?;
        Ok(Execution {
            compile,
            run: Some(run),
        })
    }

    async fn run_step(
        &self,
        scratch: &Scratch,
        uid: u32,
        mounts: &[PathBuf],
        step: Step<'_>,
    ) -> Result<StepReport, SandboxError> {
        let limits = step.limits;
        let cgroup = self.cgroups.create_step(&step.name, limits)?;
        let seccomp_fds = self.seccomp.pipes()?;
        let args = bwrap::BwrapArgs {
            scratch: scratch.path(),
            mounts,
            limits,
            seccomp_fds: &seccomp_fds.each_ref().map(|fd| fd.as_raw_fd()),
            argv: &step.argv,
        }
        .build();
        let mut command = tokio::process::Command::new(&self.config.bwrap);
        command
            .args(args)
            .env_clear()
            .stdin(if step.stdin.is_empty() {
                Stdio::null()
            } else {
                Stdio::piped()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        Confinement {
            cgroup_fds: cgroup.join_files()?,
            inherited_fds: seccomp_fds.into(),
            rlimits: rlimits(limits),
            uid,
        }
        .install(&mut command);
        let started = Instant::now();
        let child = command.spawn().map_err(|source| SandboxError::Spawn {
            program: self.config.bwrap.display().to_string(),
            source,
        })?;
        let seen = supervise(
            child,
            step.stdin,
            limits.wall_time,
            limits.output_bytes,
            started,
        )
        .await;
        let stats = cgroup.stats();
        cgroup.remove().await;

        let (exit_code, signal) = match seen.status {
            Some(status) => split_status(status),
            None => (None, None),
        };
        let termination = Termination::classify(
            &Observed {
                output_exceeded: seen.output_exceeded,
                timed_out: seen.timed_out,
                signal,
                cpu_time: stats.cpu_time,
                oom_kills: stats.oom_kills,
                stderr: &seen.stderr,
                memory_marker: step.memory_marker,
            },
            limits.cpu_time,
        );
        Ok(StepReport {
            stdout: seen.stdout,
            stderr: seen.stderr,
            exit_code,
            signal,
            termination,
            output_truncated: seen.output_exceeded,
            wall_time: seen.wall_time,
            cpu_time: stats.cpu_time,
            memory_peak_bytes: stats.memory_peak_bytes,
        })
    }
}

#[async_trait]
impl Sandbox for NativeSandbox {
    async fn execute(&self, program: Program) -> Result<Execution, SandboxError> {
        program.compile_limits.validate()?;
        program.run_limits.validate()?;
        let _permit = self
            .slots
            .acquire()
            .await
            .map_err(|_| SandboxError::Unavailable("sandbox closed".into()))?;
        let slot = self.take_slot();
        let uid = self.uids.uid(slot.slot);
        let name = format!(
            "code-runner-{}-{}",
            std::process::id(),
            self.sequence.fetch_add(1, Ordering::Relaxed)
        );
        let result = self.run_job(&program, uid, &name).await;
        drop(slot);
        result
    }
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
    name: String,
    argv: Vec<String>,
    limits: &'a Limits,
    stdin: Vec<u8>,
    memory_marker: Option<&'a str>,
}

fn rlimits(limits: &Limits) -> Vec<Rlimit> {
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
        // No RLIMIT_NPROC: it counts every task of the slot's uid on the
        // host, including bubblewrap's exited helpers until the host's init
        // reaps them, so sequential jobs of one slot failed to fork. The pids
        // cgroup is the per-job process limit.
    ]
}

/// bubblewrap exits with the program's code, or 128 + the signal that killed it.
fn split_status(status: std::process::ExitStatus) -> (Option<i32>, Option<i32>) {
    use std::os::unix::process::ExitStatusExt;
    if let Some(signal) = status.signal() {
        return (None, Some(signal));
    }
    match status.code() {
        Some(code) if code > 128 && code <= 128 + 64 => (None, Some(code - 128)),
        code => (code, None),
    }
}

fn prepare_scratch_root(root: &Path) -> Result<PathBuf, SandboxError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(root)
        .map_err(SandboxError::setup(format!("create {}", root.display())))?;
    // Traversable by the slot uids (to reach their own mount), listable by no one.
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o711))
        .map_err(SandboxError::setup(format!("chmod {}", root.display())))?;
    sweep_stale_scratch(root);
    Ok(root.to_owned())
}

/// Unmounts scratch directories left by workers that died.
fn sweep_stale_scratch(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let alive = name
            .strip_prefix("code-runner-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| {
                pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
            });
        if !alive {
            let path = entry.path();
            let _ = sys::unmount(&path);
            let _ = std::fs::remove_dir(&path);
        }
    }
}
