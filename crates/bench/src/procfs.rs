//! What `/proc` tells: a process's resident memory, for phase (d); the CPU
//! time it used, to show where the cores went in phases (a) and (c) and in
//! the bare baseline; and the host's CPU pressure, to show how much other
//! work competed with each phase.
//!
//! Memory is read after the work is done and the processes have idled.
//! `VmRSS` is the figure with a target; `VmHWM` (the peak) is kept beside it
//! because an allocator that returns memory late can make an idle figure look
//! better than what the process needed under load.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// One process's memory, in KiB.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Memory {
    pub pid: u32,
    pub rss_kib: u64,
    pub peak_kib: u64,
}

impl Memory {
    pub fn rss_mib(&self) -> f64 {
        self.rss_kib as f64 / 1024.0
    }
}

/// What phase (d) measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RssResult {
    pub idle_s: f64,
    pub api: Memory,
    pub worker: Memory,
}

pub fn read(pid: u32) -> anyhow::Result<Memory> {
    let path = PathBuf::from(format!("/proc/{pid}/status"));
    let status = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {} (is process {pid} running?)", path.display()))?;
    Ok(Memory {
        pid,
        rss_kib: field_kib(&status, "VmRSS:")
            .with_context(|| format!("no VmRSS in {}", path.display()))?,
        peak_kib: field_kib(&status, "VmHWM:")
            .with_context(|| format!("no VmHWM in {}", path.display()))?,
    })
}

/// CPU time (user + system) a process has used so far, in seconds; at the
/// 10 ms resolution of `/proc/PID/stat`. `pid` `None` is this process.
pub fn cpu_seconds(pid: Option<u32>) -> anyhow::Result<f64> {
    let path = match pid {
        Some(pid) => PathBuf::from(format!("/proc/{pid}/stat")),
        None => PathBuf::from("/proc/self/stat"),
    };
    let stat =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    cpu_ticks(&stat)
        .map(|ticks| ticks as f64 / USER_HZ)
        .with_context(|| format!("no utime/stime in {}", path.display()))
}

/// The whole machine's CPU time so far (every core; all but idle and
/// iowait), its idle and iowait time, and its context switches, from
/// `/proc/stat`.
#[derive(Debug, Clone, Copy)]
pub struct HostCpu {
    pub busy_s: f64,
    pub idle_s: f64,
    pub context_switches: u64,
}

pub fn host_cpu() -> anyhow::Result<HostCpu> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    parse_host_cpu(&stat).context("no cpu or ctxt line in /proc/stat")
}

/// The `cpu` line's user, nice, system, irq, softirq and steal ticks (guest
/// time is inside user already), its idle and iowait ticks, and the `ctxt`
/// line.
fn parse_host_cpu(stat: &str) -> Option<HostCpu> {
    let cpu = stat.lines().find(|line| line.starts_with("cpu "))?;
    let ticks: Vec<u64> = cpu
        .split_whitespace()
        .skip(1)
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    let sum = |fields: &[usize]| -> u64 { fields.iter().filter_map(|&i| ticks.get(i)).sum() };
    let busy = sum(&[0, 1, 2, 5, 6, 7]);
    let idle = sum(&[3, 4]);
    let context_switches = stat
        .lines()
        .find_map(|line| line.strip_prefix("ctxt "))?
        .trim()
        .parse()
        .ok()?;
    Some(HostCpu {
        busy_s: busy as f64 / USER_HZ,
        idle_s: idle as f64 / USER_HZ,
        context_switches,
    })
}

/// Where the machine's CPU went over a span of work, per unit of work (a
/// job, or a bare process), in milliseconds: the whole machine, and the
/// service's processes that were named (their own threads; not the
/// sandboxes they start), and this benchmark itself.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct CpuSplit {
    pub host_ms: f64,
    pub api_ms: Option<f64>,
    pub worker_ms: Option<f64>,
    pub redis_ms: Option<f64>,
    pub client_ms: f64,
    pub context_switches: f64,
    /// The share of the span the machine's cores were busy (0 to 1): a rate
    /// below bare's is either this below bare's (cores left idle while jobs
    /// waited) or more CPU per job. `None` in results of older runs.
    #[serde(default)]
    pub busy_share: Option<f64>,
}

impl CpuSplit {
    /// What the whole machine spent besides the named processes and this
    /// benchmark: the programs, their sandboxes and the kernel's threads.
    pub fn rest_ms(&self) -> f64 {
        self.host_ms
            - self.api_ms.unwrap_or(0.0)
            - self.worker_ms.unwrap_or(0.0)
            - self.redis_ms.unwrap_or(0.0)
            - self.client_ms
    }
}

/// Takes the readings a [`CpuSplit`] is made from, at the start of a span.
pub struct CpuMeter {
    host: HostCpu,
    client: f64,
    pids: [(Option<u32>, f64); 3],
}

impl CpuMeter {
    /// `pids`: the API, the worker and Redis, each when known.
    pub fn start(pids: [Option<u32>; 3]) -> anyhow::Result<Self> {
        let mut read = [(None, 0.0); 3];
        for (slot, pid) in read.iter_mut().zip(pids) {
            *slot = (
                pid,
                pid.map(|pid| cpu_seconds(Some(pid)))
                    .transpose()?
                    .unwrap_or(0.0),
            );
        }
        Ok(Self {
            host: host_cpu()?,
            client: cpu_seconds(None)?,
            pids: read,
        })
    }

    /// The split since `start`, per each of `units`.
    pub fn finish(&self, units: u64) -> anyhow::Result<CpuSplit> {
        let per = |seconds: f64| seconds * 1000.0 / units.max(1) as f64;
        let host = host_cpu()?;
        let mut used = [None; 3];
        for (out, (pid, before)) in used.iter_mut().zip(self.pids) {
            if let Some(pid) = pid {
                *out = Some(per(cpu_seconds(Some(pid))? - before));
            }
        }
        let [api_ms, worker_ms, redis_ms] = used;
        let busy = host.busy_s - self.host.busy_s;
        let idle = host.idle_s - self.host.idle_s;
        Ok(CpuSplit {
            host_ms: per(busy),
            busy_share: (busy + idle > 0.0).then(|| busy / (busy + idle)),
            api_ms,
            worker_ms,
            redis_ms,
            client_ms: per(cpu_seconds(None)? - self.client),
            context_switches: host
                .context_switches
                .saturating_sub(self.host.context_switches) as f64
                / units.max(1) as f64,
        })
    }
}

/// Clock ticks per second of `/proc/PID/stat`: `USER_HZ`, 100 on every Linux
/// architecture this runs on.
const USER_HZ: f64 = 100.0;

/// utime + stime: fields 14 and 15, counted after the command name, which is
/// in parentheses and may itself contain spaces.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Measures the share of a span of time during which some runnable task on
/// the host waited for a CPU (Linux PSI, `/proc/pressure/cpu`). On a quiet
/// machine a sequential phase stays near 0; other builds and tests push it up.
pub struct PressureClock {
    started: Instant,
    stalled_us: u64,
}

impl PressureClock {
    /// `None` when the kernel does not report pressure.
    pub fn start() -> Option<Self> {
        Some(Self {
            started: Instant::now(),
            stalled_us: cpu_stalled_us()?,
        })
    }

    pub fn stalled_share(&self) -> Option<f64> {
        let stalled = cpu_stalled_us()?.saturating_sub(self.stalled_us);
        let elapsed = self.started.elapsed().as_secs_f64() * 1e6;
        Some((stalled as f64 / elapsed.max(1.0)).min(1.0))
    }
}

/// The `total=` of the `some` line: microseconds, since boot, during which
/// at least one task waited for a CPU.
fn cpu_stalled_us() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/pressure/cpu").ok()?;
    let some = text.lines().find(|line| line.starts_with("some "))?;
    some.split_whitespace()
        .find_map(|field| field.strip_prefix("total="))?
        .parse()
        .ok()
}

/// The value of a `Name:   1234 kB` line.
fn field_kib(status: &str, name: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_status() {
        let memory = read(std::process::id()).unwrap();
        assert!(memory.rss_kib > 0);
        assert!(memory.peak_kib >= memory.rss_kib);
    }

    #[test]
    fn parses_cpu_ticks_after_a_name_with_spaces() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0";
        assert_eq!(cpu_ticks(stat), Some(10));
        assert!(cpu_seconds(None).unwrap() >= 0.0);
    }

    #[test]
    fn parses_host_cpu_busy_apart_from_idle_and_iowait() {
        let stat = "cpu  100 5 50 1000 40 3 2 1 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nctxt 12345\n";
        let host = parse_host_cpu(stat).unwrap();
        assert!((host.busy_s - 1.61).abs() < 1e-9, "{host:?}");
        assert!((host.idle_s - 10.40).abs() < 1e-9, "{host:?}");
        assert_eq!(host.context_switches, 12345);
        assert!(host_cpu().unwrap().busy_s > 0.0);
    }

    #[test]
    fn parses_kib_lines() {
        let status = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(field_kib(status, "VmRSS:"), Some(1024));
        assert_eq!(field_kib(status, "VmHWM:"), Some(2048));
        assert_eq!(field_kib(status, "VmSwap:"), None);
    }
}
