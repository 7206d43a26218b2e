//! The resource limits of one sandboxed step, as data.
//!
//! Every limit is enforced by the kernel (cgroups, rlimits, a tmpfs size) or
//! by the supervising worker (wall clock, output cap), never by the program.
//! Values are checked when built: zero never means "unlimited".

use std::time::Duration;

/// Limits for one step (compile or run) of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time; the whole process tree is killed when it runs out.
    pub wall_time: Duration,
    /// CPU time of the whole process tree, every process and thread together
    /// (read from the cgroup by the supervisor; RLIMIT_CPU per process too).
    pub cpu_time: Duration,
    /// Memory of the whole tree, page cache and tmpfs included (memory cgroup).
    pub memory_bytes: u64,
    /// Processes and threads of the whole tree (pids cgroup).
    pub processes: u32,
    /// Standard output and standard error together; the rest is cut.
    pub output_bytes: u64,
    /// Size of the writable scratch directory `/work` and of `/tmp`.
    pub scratch_bytes: u64,
    /// Largest file a process may write (RLIMIT_FSIZE).
    pub file_size_bytes: u64,
    /// Open file descriptors per process (RLIMIT_NOFILE).
    pub open_files: u32,
}

/// A limit outside what the sandbox accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name} must be between {min} and {max} {unit}, got {value}")]
pub struct LimitError {
    pub name: &'static str,
    pub value: u64,
    pub min: u64,
    pub max: u64,
    pub unit: &'static str,
}

const MIB: u64 = 1024 * 1024;

impl Limits {
    /// Defaults for running a program: 10 s, 256 MiB, 64 processes, 1 MiB of output.
    pub const RUN_DEFAULT: Limits = Limits {
        wall_time: Duration::from_secs(10),
        cpu_time: Duration::from_secs(10),
        memory_bytes: 256 * MIB,
        processes: 64,
        output_bytes: MIB,
        scratch_bytes: 64 * MIB,
        file_size_bytes: 64 * MIB,
        open_files: 256,
    };

    /// Defaults for a compiler: more time and memory than the program gets.
    pub const COMPILE_DEFAULT: Limits = Limits {
        wall_time: Duration::from_secs(30),
        cpu_time: Duration::from_secs(30),
        memory_bytes: 1024 * MIB,
        processes: 128,
        output_bytes: MIB,
        scratch_bytes: 64 * MIB,
        file_size_bytes: 64 * MIB,
        open_files: 512,
    };

    /// Checks every field against the sandbox's accepted range.
    pub fn validate(&self) -> Result<(), LimitError> {
        check(
            "wall_time",
            self.wall_time.as_millis() as u64,
            1,
            600_000,
            "ms",
        )?;
        check(
            "cpu_time",
            self.cpu_time.as_millis() as u64,
            1,
            600_000,
            "ms",
        )?;
        check("memory", self.memory_bytes / MIB, 16, 64 * 1024, "MiB")?;
        check("processes", u64::from(self.processes), 1, 16_384, "")?;
        check("output", self.output_bytes, 1, 256 * MIB, "bytes")?;
        check("scratch", self.scratch_bytes / MIB, 1, 16 * 1024, "MiB")?;
        check(
            "file_size",
            self.file_size_bytes,
            1,
            16 * 1024 * MIB,
            "bytes",
        )?;
        check("open_files", u64::from(self.open_files), 16, 65_536, "")?;
        Ok(())
    }

    /// The memory limit in MiB, as language templates see it.
    pub fn memory_mb(&self) -> u64 {
        self.memory_bytes / MIB
    }

    /// RLIMIT_CPU in whole seconds, rounded up so a 1.5 s limit is not 1 s.
    pub fn cpu_seconds(&self) -> u64 {
        self.cpu_time.as_millis().div_ceil(1000).max(1) as u64
    }
}

fn check(
    name: &'static str,
    value: u64,
    min: u64,
    max: u64,
    unit: &'static str,
) -> Result<(), LimitError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(LimitError {
            name,
            value,
            min,
            max,
            unit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Limits::RUN_DEFAULT.validate().unwrap();
        Limits::COMPILE_DEFAULT.validate().unwrap();
    }

    #[test]
    fn zero_is_never_unlimited() {
        let mut l = Limits::RUN_DEFAULT;
        l.wall_time = Duration::ZERO;
        assert!(l.validate().is_err());
        let mut l = Limits::RUN_DEFAULT;
        l.memory_bytes = 0;
        assert!(l.validate().is_err());
        let mut l = Limits::RUN_DEFAULT;
        l.processes = 0;
        assert!(l.validate().is_err());
        let mut l = Limits::RUN_DEFAULT;
        l.output_bytes = 0;
        assert!(l.validate().is_err());
    }

    #[test]
    fn cpu_seconds_round_up() {
        let mut l = Limits::RUN_DEFAULT;
        l.cpu_time = Duration::from_millis(1500);
        assert_eq!(l.cpu_seconds(), 2);
        l.cpu_time = Duration::from_millis(1);
        assert_eq!(l.cpu_seconds(), 1);
    }
}
