//! The bare baseline: the same hello program started directly, with no
//! service, queue or sandbox, measured in the same run as the service so
//! every ratio compares like with like on the same (noisy) machine.
//!
//! Each part can be taken in halves, one just before and one just after the
//! service figure it is compared with, so that load from other work on the
//! machine weighs on both sides alike; how far the two halves differ is
//! reported as the run's noise.
//!
//! The environment is cleared (only `PATH` is kept) because the host's
//! environment slows some runtimes down; the sandbox gives its programs a
//! minimal one too.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::procfs::{CpuMeter, CpuSplit};
use crate::stats::Summary;

const PYTHON: &str = "/usr/bin/python3";
/// Runs before the first sequential part, to fill the page cache.
const WARMUPS: usize = 5;

/// Wall times of runs one after another.
#[derive(Debug, Default)]
pub struct SequentialPart {
    wall: Vec<Duration>,
    failures: u64,
}

/// Processes completed with some running at once.
#[derive(Debug, Default)]
pub struct ParallelPart {
    processes: u64,
    failures: u64,
    elapsed: Duration,
    /// Where the machine's CPU went, per process.
    cpu: Option<CpuSplit>,
}

impl ParallelPart {
    fn rate(&self) -> f64 {
        self.processes as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// What the baseline measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BaselineResult {
    /// (i) wall time of one run, runs one after another (all parts).
    pub sequential: Summary,
    /// p50 of each sequential part, in the order taken.
    pub sequential_p50_parts_ms: Vec<f64>,
    /// (ii) processes completed per second with `parallel` at once.
    pub parallel: usize,
    pub processes_per_s: f64,
    pub parallel_processes: u64,
    /// The rate of each parallel part, in the order taken.
    pub rate_parts: Vec<f64>,
    /// Runs that did not exit 0 with output `"hi\n"`, in any part.
    pub failures: u64,
    /// The machine's CPU per process in the parallel parts (all of it: the
    /// programs, this benchmark starting them, the kernel), and context
    /// switches per process: what phase (c)'s split is compared with.
    #[serde(default)]
    pub cpu: Option<CpuSplit>,
}

impl BaselineResult {
    pub fn from_parts(
        sequential: &[SequentialPart],
        parallel: usize,
        parallels: &[ParallelPart],
    ) -> Self {
        let wall: Vec<Duration> = sequential
            .iter()
            .flat_map(|part| part.wall.iter().copied())
            .collect();
        let processes = parallels.iter().map(|part| part.processes).sum();
        let elapsed: Duration = parallels.iter().map(|part| part.elapsed).sum();
        let failures = sequential.iter().map(|part| part.failures).sum::<u64>()
            + parallels.iter().map(|part| part.failures).sum::<u64>();
        Self {
            sequential: Summary::from_durations(&wall),
            sequential_p50_parts_ms: sequential
                .iter()
                .map(|part| Summary::from_durations(&part.wall).p50_ms)
                .collect(),
            parallel,
            processes_per_s: processes as f64 / elapsed.as_secs_f64().max(1e-9),
            parallel_processes: processes,
            rate_parts: parallels.iter().map(ParallelPart::rate).collect(),
            failures,
            cpu: weighted_cpu(parallels),
        }
    }

    /// How far apart the parts of each measure are, as a share of their
    /// mean: the noise the machine added during the run.
    pub fn drift(&self) -> (f64, f64) {
        (
            spread(&self.sequential_p50_parts_ms),
            spread(&self.rate_parts),
        )
    }
}

/// The parts' splits, each weighted by its processes; `None` unless every
/// part has one.
fn weighted_cpu(parts: &[ParallelPart]) -> Option<CpuSplit> {
    let total = parts.iter().map(|part| part.processes).sum::<u64>().max(1) as f64;
    let mut sum = CpuSplit {
        busy_share: Some(0.0),
        ..CpuSplit::default()
    };
    for part in parts {
        let (cpu, weight) = (part.cpu?, part.processes as f64 / total);
        sum.host_ms += cpu.host_ms * weight;
        sum.client_ms += cpu.client_ms * weight;
        sum.context_switches += cpu.context_switches * weight;
        // `None` once a part has none (a part read by an older benchmark).
        sum.busy_share = sum
            .busy_share
            .zip(cpu.busy_share)
            .map(|(so_far, share)| so_far + share * weight);
    }
    (!parts.is_empty()).then_some(sum)
}

/// (max − min) / mean; 0 for fewer than two values.
pub fn spread(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let max = values.iter().copied().fold(f64::MIN, f64::max);
    let min = values.iter().copied().fold(f64::MAX, f64::min);
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    if mean > 0.0 {
        (max - min) / mean
    } else {
        0.0
    }
}

/// `runs` runs one after another, after the warm-ups when `warm` is set.
pub fn sequential(runs: usize, warm: bool) -> anyhow::Result<SequentialPart> {
    if warm {
        // The warm-ups' outcome does not count.
        for _ in 0..WARMUPS {
            run_once()?;
        }
    }
    let mut part = SequentialPart {
        wall: Vec::with_capacity(runs),
        failures: 0,
    };
    for _ in 0..runs {
        let start = Instant::now();
        part.failures += u64::from(!run_once()?);
        part.wall.push(start.elapsed());
    }
    Ok(part)
}

/// `parallel` threads each start the program again and again until the
/// deadline; every started run is waited for and counted, and the rate is
/// over the time until the last one ended.
pub fn parallel(parallel: usize, duration: Duration) -> anyhow::Result<ParallelPart> {
    let meter = CpuMeter::start([None; 3])?;
    let start = Instant::now();
    let deadline = start + duration;
    let per_thread = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..parallel.max(1))
            .map(|_| {
                scope.spawn(move || {
                    let (mut done, mut failed) = (0_u64, 0_u64);
                    while Instant::now() < deadline {
                        failed += u64::from(!run_once()?);
                        done += 1;
                    }
                    anyhow::Ok((done, failed))
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|thread| thread.join().expect("baseline thread panicked"))
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    let elapsed = start.elapsed();
    let processes = per_thread.iter().map(|(done, _)| done).sum();
    Ok(ParallelPart {
        processes,
        failures: per_thread.iter().map(|(_, failed)| failed).sum(),
        elapsed,
        cpu: Some(meter.finish(processes)?),
    })
}

/// Runs the program once; whether it printed exactly `"hi\n"` and exited 0.
fn run_once() -> anyhow::Result<bool> {
    let output = Command::new(PYTHON)
        .args(["-c", "print('hi')"])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .with_context(|| format!("starting {PYTHON}"))?;
    Ok(output.status.success() && output.stdout == b"hi\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_of_parts() {
        assert_eq!(spread(&[10.0]), 0.0);
        assert!((spread(&[90.0, 110.0]) - 0.2).abs() < 1e-9);
    }

    #[test]
    fn parts_weigh_by_their_processes() {
        let part = |processes, host_ms, busy_share| ParallelPart {
            processes,
            cpu: Some(CpuSplit {
                host_ms,
                busy_share,
                ..CpuSplit::default()
            }),
            ..ParallelPart::default()
        };
        let both = weighted_cpu(&[part(300, 10.0, Some(1.0)), part(100, 6.0, Some(0.6))]).unwrap();
        assert!((both.host_ms - 9.0).abs() < 1e-9, "{both:?}");
        assert!((both.busy_share.unwrap() - 0.9).abs() < 1e-9, "{both:?}");
        // A part read by an older benchmark has no busy share: nor has the sum.
        for parts in [
            [part(300, 10.0, Some(1.0)), part(100, 6.0, None)],
            [part(100, 6.0, None), part(300, 10.0, Some(1.0))],
        ] {
            assert_eq!(weighted_cpu(&parts).unwrap().busy_share, None);
        }
        assert!(weighted_cpu(&[part(1, 1.0, None), ParallelPart::default()]).is_none());
    }
}
