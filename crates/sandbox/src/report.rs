//! What a sandbox reports about a program it ran.

use std::time::Duration;

/// Why a step's processes stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// The program exited or died by a signal on its own; see the exit code.
    Exited,
    /// The wall-clock or the CPU-time limit ran out.
    TimeLimit,
    /// The memory cgroup killed a process (the kernel's OOM count).
    MemoryLimit,
    /// Output went past the cap; the sandbox was killed.
    OutputLimit,
}

/// The outcome of one step (compile or run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Exit code of the program, when it exited by itself.
    pub exit_code: Option<i32>,
    /// Signal that killed the program, when one did.
    pub signal: Option<i32>,
    pub termination: Termination,
    /// True when stdout/stderr were cut at the output cap.
    pub output_truncated: bool,
    pub wall_time: Duration,
    /// CPU time of the whole process tree.
    pub cpu_time: Duration,
    /// Peak memory of the whole process tree; `None` where the kernel cannot
    /// tell a step's own peak (cgroup v2 before Linux 6.12 cannot reset it).
    pub memory_peak_bytes: Option<u64>,
}

impl StepReport {
    /// True when the step ran to the end and exited with status 0.
    pub fn succeeded(&self) -> bool {
        self.termination == Termination::Exited && self.exit_code == Some(0)
    }
}

/// Everything a sandbox did for one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    /// The compile step, for compiled languages.
    pub compile: Option<StepReport>,
    /// The run step; absent when compiling failed.
    pub run: Option<StepReport>,
}

/// What a backend observed about a finished step, to classify it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Observed {
    pub output_exceeded: bool,
    pub timed_out: bool,
    pub signal: Option<i32>,
    pub cpu_time: Duration,
    pub oom_kills: u64,
}

impl Termination {
    /// Why a step ended. A limit the sandbox enforced outranks how the
    /// program then ended; memory before time, since running out of memory
    /// often leaves a program stuck until the clock runs out. Every backend
    /// classifies with this one function, and only from what the kernel and
    /// the supervisor saw: the memory verdict is the memory cgroup's OOM
    /// count, never text the program printed.
    pub(crate) fn classify(seen: &Observed, cpu_limit: Duration) -> Self {
        let ran_out_of_memory = seen.oom_kills > 0;
        if seen.output_exceeded {
            Termination::OutputLimit
        } else if ran_out_of_memory {
            Termination::MemoryLimit
        } else if seen.timed_out
            || seen.signal == Some(libc::SIGXCPU)
            || (seen.signal == Some(libc::SIGKILL) && seen.cpu_time >= cpu_limit)
        {
            Termination::TimeLimit
        } else {
            Termination::Exited
        }
    }
}
