//! `code-runner-bench`: measures a running code-runner deployment and the bare
//! program it runs, and prints one report with targets and ratios.
//!
//! Phases, each selectable with `--phase`:
//!
//! - `submit` (a): `POST /run-code` req/s over many keep-alive connections;
//!   run it with no worker, so the queue only fills.
//! - `baseline`: bare `/usr/bin/python3 -c "print('hi')"`, alone and in
//!   parallel. With `latency` or `throughput` in the same invocation, each
//!   part is taken half just before and half just after the figure it is
//!   compared with, so other load on the machine weighs on both sides.
//! - `latency` (b): one python hello job at a time, submit to result.
//! - `throughput` (c): many jobs at once, submit to last completion.
//! - `rss` (d): idle resident memory of the API and worker processes.
//! - `judge` (e): a C program judged on 1,000 tests in one job: per-test
//!   time against the same binary started bare, and the job against 1,000
//!   separate submissions.
//! - `judge-java` (f): a Java solution judged on 100 tests (one compile)
//!   against 100 separate submissions.
//! - `live` (g): live output (issue 15): the delay from a program's write
//!   to the SSE client, p50 and p99, and phase (c)'s jobs each followed by
//!   an SSE client (500 attached) against (c) with none.
//!
//! `scripts/bench.sh` runs `submit` first, then starts a worker and runs the
//! rest; `--state FILE` carries results from one invocation to the next so
//! the final report holds the whole run. Every phase also records the host's
//! CPU pressure, which says how far a noisy machine can be trusted.
//!
//! Layout: [`http`] is the lean client, [`load`] phase (a), [`jobs`] phases
//! (b) and (c), [`judge`] phases (e) and (f), [`baseline`] the bare program, [`procfs`] memory, CPU time
//! and pressure, [`stats`] the percentiles and [`report`] the targets and
//! the table.

mod baseline;
mod http;
mod jobs;
mod judge;
mod live;
mod load;
mod procfs;
mod report;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use hyper::StatusCode;
use tokio::runtime::Runtime;

use crate::http::{Conn, Target};
use crate::report::Results;

#[derive(Debug, Parser)]
#[command(
    name = "code-runner-bench",
    version,
    about = "Benchmarks a running code-runner deployment against the bare program, in one run."
)]
struct Cli {
    /// The deployment's API; must be a loopback address.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    server: String,

    /// Phases to run, comma-separated. The order is fixed: submit; baseline
    /// halves around latency and around throughput; rss; judge; judge-java.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "all")]
    phase: Vec<Phase>,

    /// Pid of the API process (phase rss; phases submit and throughput
    /// report its CPU use).
    #[arg(long)]
    api_pid: Option<u32>,

    /// Pid of the worker process (phase rss; phase throughput reports its
    /// CPU use per job).
    #[arg(long)]
    worker_pid: Option<u32>,

    /// Pid of the Redis server (phase throughput reports its CPU use per
    /// job).
    #[arg(long)]
    redis_pid: Option<u32>,

    /// Results carried between invocations: read at start, rewritten after
    /// every phase, so a later invocation reports the whole run.
    #[arg(long)]
    state: Option<PathBuf>,

    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,

    /// Do not print the report table (for an invocation whose results are
    /// only carried to a later one).
    #[arg(long)]
    no_report: bool,

    /// How long to wait for `GET /health` before the first HTTP phase.
    #[arg(long, default_value_t = 15)]
    ready_timeout_secs: u64,

    #[command(flatten)]
    load: LoadArgs,

    #[command(flatten)]
    jobs: JobArgs,

    #[command(flatten)]
    baseline: BaselineArgs,

    #[command(flatten)]
    judge: JudgeArgs,

    #[command(flatten)]
    live: LiveArgs,

    /// Idle pause before reading memory (phase rss).
    #[arg(long, default_value_t = 3)]
    idle_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Phase {
    Submit,
    Baseline,
    Latency,
    Throughput,
    Rss,
    /// (e): judge mode, C, 1,000 tests in one job.
    Judge,
    /// (f): judge mode, Java, 100 tests in one job.
    JudgeJava,
    /// (g): live output over SSE: write-to-client delay; throughput with
    /// an SSE client per job.
    Live,
    /// (b'): (b) against a worker whose python runs are forked from a
    /// pristine interpreter (`prefork = true`).
    LatencyPrefork,
    /// (c'): (c) against such a worker.
    ThroughputPrefork,
    All,
}

/// Phases (e) and (f) settings.
#[derive(Debug, clap::Args)]
struct JudgeArgs {
    /// Tests in the judged C job of phase (e) (at most the server's
    /// `--max-tests`, 1,000 by default).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    judge_tests: u64,
    /// Separate C submissions the job is compared with in phase (e).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(0..=100_000))]
    judge_separate_jobs: u64,
    /// Bare runs of the compiled C program (half before, half after the job).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(2..=100_000))]
    judge_bare_runs: u64,
    /// Tests in the judged Java job of phase (f), and separate Java
    /// submissions it is compared with.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    judge_java_tests: u64,
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=100_000))]
    judge_java_separate_jobs: u64,
    /// Separate Java submissions unfinished at once (submitted all at once,
    /// most compiles pass the compile time limit on a small machine).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=256))]
    judge_java_separate_in_flight: u16,
    /// Deadline of one judged job, and of each set of separate submissions,
    /// in seconds.
    #[arg(long, default_value_t = 600)]
    judge_timeout_secs: u64,
}

/// Phase (g) settings.
#[derive(Debug, clap::Args)]
struct LiveArgs {
    /// Ticker jobs (a line every 100 ms) followed one after another.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=1000))]
    live_jobs: u64,
    /// Lines each ticker prints (80: 8 s, under the default 10 s limit).
    #[arg(long, default_value_t = 80, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    live_lines: u64,
    /// Hello jobs each followed by its own SSE client, all at once (0
    /// skips this part).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(0..=100_000))]
    live_sse_clients: u64,
}

/// Phase (a) settings.
#[derive(Debug, clap::Args)]
struct LoadArgs {
    /// Keep-alive connections, one task each.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=1024))]
    connections: u16,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(0..=600))]
    warmup_secs: u64,
    /// Seconds measured.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=600))]
    duration_secs: u64,
    /// Threads of the load generator's runtime. One leaves the most CPU to the
    /// API and Redis on a small machine.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    client_threads: u16,
}

/// Phases (b) and (c) settings.
#[derive(Debug, clap::Args)]
struct JobArgs {
    /// Jobs measured one after another in phase (b).
    #[arg(long, default_value_t = 200)]
    latency_runs: usize,
    /// Jobs before those, not measured (they also wait out a starting worker).
    #[arg(long, default_value_t = 10)]
    latency_warmups: usize,
    /// Poll `GET /results/{id}` this often, in milliseconds, instead of
    /// waiting for each result with `?wait=` (the default, and what a client
    /// after low latency does).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1000))]
    poll_ms: Option<u64>,
    /// Longest one job may take before it counts as failed, in seconds.
    #[arg(long, default_value_t = 30)]
    job_timeout_secs: u64,
    /// Jobs submitted at once in phase (c).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    throughput_jobs: u64,
    /// Jobs run before phase (c)'s (and (c')'s) clock starts, not measured:
    /// twice the worker's default 50 slots, so that each has started its
    /// sandbox (and zygote) before the rate is taken.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=100_000))]
    throughput_warmup: u64,
    /// Connections submitting (and then polling) at once in phase (c).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    throughput_connections: u16,
    /// Deadline of the whole of phase (c), in seconds.
    #[arg(long, default_value_t = 300)]
    throughput_timeout_secs: u64,
}

/// Baseline settings.
#[derive(Debug, clap::Args)]
struct BaselineArgs {
    /// Bare runs one after another (half before, half after phase (b)).
    #[arg(long, default_value_t = 100)]
    baseline_runs: usize,
    /// Bare processes kept running at once.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=256))]
    baseline_parallel: u16,
    /// Seconds of bare parallel runs (half before, half after phase (c)).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=600))]
    baseline_secs: u64,
}

impl Cli {
    fn runs(&self, phase: Phase) -> bool {
        self.phase.contains(&phase) || self.phase.contains(&Phase::All)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("code-runner-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let target = Target::parse(&cli.server)?;
    let pids = rss_pids(cli)?;
    let mut session = Session {
        cli,
        target,
        runtime: runtime(cli.load.client_threads)?,
        results: match &cli.state {
            Some(path) => Results::load(path)?,
            None => Results::default(),
        },
        sequential: Vec::new(),
        parallel: Vec::new(),
    };
    let needs_server = [
        Phase::Submit,
        Phase::Latency,
        Phase::Throughput,
        Phase::Judge,
        Phase::JudgeJava,
        Phase::Live,
        Phase::LatencyPrefork,
        Phase::ThroughputPrefork,
    ]
    .iter()
    .any(|&phase| cli.runs(phase));
    if needs_server {
        let timeout = Duration::from_secs(cli.ready_timeout_secs);
        session
            .runtime
            .block_on(wait_ready(&session.target, timeout))?;
    }
    if cli.runs(Phase::Submit) {
        session.submit()?;
    }
    session.latency_with_baseline()?;
    session.throughput_with_baseline()?;
    if let Some((api, worker)) = pids {
        session.rss(api, worker)?;
    }
    if cli.runs(Phase::Judge) {
        session.judge(false)?;
    }
    if cli.runs(Phase::JudgeJava) {
        session.judge(true)?;
    }
    if cli.runs(Phase::Live) {
        session.live()?;
    }
    // Not part of `all`: they need a worker started with prefork on.
    if cli.phase.contains(&Phase::LatencyPrefork) {
        session.latency(true)?;
    }
    if cli.phase.contains(&Phase::ThroughputPrefork) {
        session.throughput(true)?;
    }
    finish(cli, &session.results)
}

/// One invocation: what it was asked, and what it measured so far.
struct Session<'a> {
    cli: &'a Cli,
    target: Target,
    runtime: Runtime,
    results: Results,
    /// Baseline parts taken so far in this invocation.
    sequential: Vec<baseline::SequentialPart>,
    parallel: Vec<baseline::ParallelPart>,
}

impl Session<'_> {
    /// Runs one phase, records the host's CPU pressure over it, and saves
    /// the results so far.
    fn phase<T>(
        &mut self,
        name: &str,
        measure: impl FnOnce(&mut Self) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let pressure = procfs::PressureClock::start();
        let value = measure(self).with_context(|| format!("phase {name}"))?;
        if let Some(share) = pressure.and_then(|clock| clock.stalled_share()) {
            self.results.cpu_pressure.insert(name.to_owned(), share);
        }
        self.save()?;
        Ok(value)
    }

    fn save(&self) -> anyhow::Result<()> {
        match &self.cli.state {
            Some(path) => self.results.save(path),
            None => Ok(()),
        }
    }

    fn submit(&mut self) -> anyhow::Result<()> {
        let config = load::LoadConfig {
            connections: usize::from(self.cli.load.connections),
            warmup: Duration::from_secs(self.cli.load.warmup_secs),
            duration: Duration::from_secs(self.cli.load.duration_secs),
            body: jobs::hello_body(),
            api_pid: self.cli.api_pid,
        };
        self.phase("submit", |s| {
            let result = s.runtime.block_on(load::run(&s.target, &config))?;
            progress(&format!(
                "submit: {:.0} req/s (non-200 {}, I/O errors {})",
                result.requests_per_s, result.non_200, result.io_errors
            ));
            s.results.submit = Some(result);
            Ok(())
        })
    }

    /// Phase (b), between two halves of the sequential baseline when both
    /// are asked for (or the whole baseline alone).
    fn latency_with_baseline(&mut self) -> anyhow::Result<()> {
        let runs = self.cli.baseline.baseline_runs;
        let (bare, latency) = (
            self.cli.runs(Phase::Baseline),
            self.cli.runs(Phase::Latency),
        );
        let first = if latency { runs / 2 } else { runs };
        if bare {
            self.sequential_part("baseline-sequential-1", first, true)?;
        }
        if latency {
            self.latency(false)?;
        }
        if bare && latency {
            self.sequential_part("baseline-sequential-2", runs - first, false)?;
        }
        Ok(())
    }

    /// Phase (c), between two halves of the parallel baseline likewise.
    fn throughput_with_baseline(&mut self) -> anyhow::Result<()> {
        let total = Duration::from_secs(self.cli.baseline.baseline_secs);
        let (bare, throughput) = (
            self.cli.runs(Phase::Baseline),
            self.cli.runs(Phase::Throughput),
        );
        let half = if throughput { total / 2 } else { total };
        if bare {
            self.parallel_part("baseline-parallel-1", half)?;
        }
        if throughput {
            self.throughput(false)?;
        }
        if bare && throughput {
            self.parallel_part("baseline-parallel-2", total - half)?;
        }
        if bare {
            let result = baseline::BaselineResult::from_parts(
                &self.sequential,
                usize::from(self.cli.baseline.baseline_parallel),
                &self.parallel,
            );
            progress(&format!(
                "baseline: p50 {:.1} ms, {:.1} proc/s with {} in parallel",
                result.sequential.p50_ms, result.processes_per_s, result.parallel
            ));
            self.results.baseline = Some(result);
            self.save()?;
        }
        Ok(())
    }

    fn sequential_part(&mut self, name: &str, runs: usize, warm: bool) -> anyhow::Result<()> {
        let part = self.phase(name, |_| baseline::sequential(runs, warm))?;
        self.sequential.push(part);
        Ok(())
    }

    fn parallel_part(&mut self, name: &str, duration: Duration) -> anyhow::Result<()> {
        let parallel = usize::from(self.cli.baseline.baseline_parallel);
        let part = self.phase(name, |_| baseline::parallel(parallel, duration))?;
        self.parallel.push(part);
        Ok(())
    }

    /// Phase (b), or with `prefork` (b').
    fn latency(&mut self, prefork: bool) -> anyhow::Result<()> {
        let config = jobs::LatencyConfig {
            warmups: self.cli.jobs.latency_warmups,
            runs: self.cli.jobs.latency_runs,
            poll_every: self.cli.jobs.poll_ms.map(Duration::from_millis),
            job_timeout: Duration::from_secs(self.cli.jobs.job_timeout_secs),
        };
        let name = if prefork {
            "latency-prefork"
        } else {
            "latency"
        };
        self.phase(name, |s| {
            let result = s.runtime.block_on(jobs::latency(&s.target, &config))?;
            progress(&format!(
                "{name}: p50 {:.1} ms, p99 {:.1} ms, failures {}",
                result.end_to_end.p50_ms, result.end_to_end.p99_ms, result.failures
            ));
            if prefork {
                s.results.latency_prefork = Some(result);
            } else {
                s.results.latency = Some(result);
            }
            Ok(())
        })
    }

    /// Phase (c), or with `prefork` (c').
    fn throughput(&mut self, prefork: bool) -> anyhow::Result<()> {
        let config = jobs::ThroughputConfig {
            jobs: usize::try_from(self.cli.jobs.throughput_jobs)?,
            body: jobs::hello_body(),
            expected: jobs::EXPECTED_OUTPUT.to_owned(),
            connections: usize::from(self.cli.jobs.throughput_connections),
            // A little over the worker's concurrency (50): a waiter for every
            // job that can be running.
            poll_window: 64,
            timeout: Duration::from_secs(self.cli.jobs.throughput_timeout_secs),
            warmup: usize::try_from(self.cli.jobs.throughput_warmup)?,
            pids: [self.cli.api_pid, self.cli.worker_pid, self.cli.redis_pid],
        };
        let name = if prefork {
            "throughput-prefork"
        } else {
            "throughput"
        };
        self.phase(name, |s| {
            let result = s.runtime.block_on(jobs::throughput(&s.target, &config))?;
            progress(&format!(
                "{name}: {:.1} jobs/s, failures {}",
                result.jobs_per_s, result.failures
            ));
            if prefork {
                s.results.throughput_prefork = Some(result);
            } else {
                s.results.throughput = Some(result);
            }
            Ok(())
        })
    }

    /// Phase (e), or with `java` phase (f).
    fn judge(&mut self, java: bool) -> anyhow::Result<()> {
        let args = &self.cli.judge;
        let timeout = Duration::from_secs(args.judge_timeout_secs);
        let config = if java {
            judge::JudgeConfig {
                language: "java",
                code: judge::JAVA_ECHO,
                tests: usize::try_from(args.judge_java_tests)?,
                bare_runs: 0,
                separate_jobs: usize::try_from(args.judge_java_separate_jobs)?,
                separate_connections: usize::from(self.cli.jobs.throughput_connections),
                // All at once, the worker runs its 50 slots of javac at once
                // and most pass the compile time limit on a small machine:
                // that compares with failures, not compiles.
                separate_in_flight: Some(usize::from(args.judge_java_separate_in_flight)),
                job_timeout: timeout,
                separate_timeout: timeout,
            }
        } else {
            judge::JudgeConfig {
                language: "c",
                code: judge::C_ECHO,
                tests: usize::try_from(args.judge_tests)?,
                bare_runs: usize::try_from(args.judge_bare_runs)?,
                separate_jobs: usize::try_from(args.judge_separate_jobs)?,
                separate_connections: usize::from(self.cli.jobs.throughput_connections),
                separate_in_flight: None,
                job_timeout: timeout,
                separate_timeout: timeout,
            }
        };
        let name = if java { "judge-java" } else { "judge" };
        self.phase(name, |s| {
            let result = judge::run(&s.runtime, &s.target, &config)?;
            progress(&format!(
                "{name}: {} tests, {} accepted, per-test p50 {:.1} ms, job {:.2} s{}{}",
                result.tests,
                result.passed,
                result.per_test.p50_ms,
                result.job_s,
                result
                    .bare
                    .map_or_else(String::new, |b| format!(", bare p50 {:.2} ms", b.p50_ms)),
                result
                    .separate
                    .as_ref()
                    .map_or_else(String::new, |sep| format!(
                        ", {} separate in {:.2} s",
                        sep.jobs, sep.elapsed_s
                    )),
            ));
            if java {
                s.results.judge_java = Some(result);
            } else {
                s.results.judge = Some(result);
            }
            Ok(())
        })
    }

    /// Phase (g).
    fn live(&mut self) -> anyhow::Result<()> {
        let config = live::LiveConfig {
            jobs: usize::try_from(self.cli.live.live_jobs)?,
            lines: usize::try_from(self.cli.live.live_lines)?,
            sse_jobs: usize::try_from(self.cli.live.live_sse_clients)?,
            connections: usize::from(self.cli.jobs.throughput_connections),
            timeout: Duration::from_secs(self.cli.jobs.throughput_timeout_secs),
        };
        self.phase("live", |s| {
            let result = s.runtime.block_on(live::run(&s.target, &config))?;
            progress(&format!(
                "live: write to SSE client p50 {:.2} ms, p99 {:.2} ms ({} of {} lines){}",
                result.delay.p50_ms,
                result.delay.p99_ms,
                result.lines_received,
                result.lines_expected,
                result
                    .sse_throughput
                    .as_ref()
                    .map_or_else(String::new, |t| format!(
                        "; {} jobs with an SSE client each: {:.1} jobs/s, failures {}",
                        t.jobs, t.jobs_per_s, t.failures
                    ))
            ));
            s.results.live = Some(result);
            Ok(())
        })
    }

    fn rss(&mut self, api: u32, worker: u32) -> anyhow::Result<()> {
        let idle = Duration::from_secs(self.cli.idle_secs);
        std::thread::sleep(idle);
        let result = procfs::RssResult {
            idle_s: idle.as_secs_f64(),
            api: procfs::read(api).context("api memory")?,
            worker: procfs::read(worker).context("worker memory")?,
        };
        progress(&format!(
            "rss: api {:.1} MiB, worker {:.1} MiB",
            result.api.rss_mib(),
            result.worker.rss_mib()
        ));
        self.results.rss = Some(result);
        self.save()
    }
}

/// The pids phase rss needs, checked before anything runs.
fn rss_pids(cli: &Cli) -> anyhow::Result<Option<(u32, u32)>> {
    if !cli.runs(Phase::Rss) {
        return Ok(None);
    }
    match (cli.api_pid, cli.worker_pid) {
        (Some(api), Some(worker)) => Ok(Some((api, worker))),
        _ => bail!("phase rss needs --api-pid and --worker-pid"),
    }
}

/// A single-threaded runtime unless asked otherwise: the generator shares
/// the machine with what it measures.
fn runtime(threads: u16) -> anyhow::Result<Runtime> {
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(usize::from(threads));
        builder
    };
    builder
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Polls `GET /health` until it answers 200 or the timeout passes.
async fn wait_ready(target: &Target, timeout: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let healthy = match Conn::connect(target).await {
            Ok(mut conn) => matches!(conn.get("/health").await, Ok((StatusCode::OK, _))),
            Err(_) => false,
        };
        if healthy {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("the server did not answer GET /health within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn progress(line: &str) {
    eprintln!("code-runner-bench: {line}");
}

/// Prints the table and writes the JSON report, as asked.
fn finish(cli: &Cli, results: &Results) -> anyhow::Result<()> {
    let rows = report::rows(results);
    if !cli.no_report {
        print!("{}", report::render(&rows, &results.cpu_pressure));
    }
    if let Some(path) = &cli.json {
        report::write_json(
            path,
            &report::JsonReport {
                rows: &rows,
                results,
            },
        )?;
    }
    Ok(())
}
