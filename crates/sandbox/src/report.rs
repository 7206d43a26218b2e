//! What a sandbox reports about a program it ran.

use std::time::Duration;

/// Why a step's processes stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// The program exited or died by a signal on its own; see the exit code.
    Exited,
    /// The wall-clock or the CPU-time limit ran out.
    TimeLimit,
    /// The memory cgroup killed a process, or the runtime reported running out.
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
    /// Peak memory of the whole process tree.
    pub memory_peak_bytes: u64,
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
