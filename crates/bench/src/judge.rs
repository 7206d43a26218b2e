//! Phases (e) and (f): judge mode, one submission with many tests.
//!
//! (e) A C program that reads an integer and prints it, judged on 1,000
//! tests in one job: the per-test wall time the result reports (`time_ms`)
//! against the same binary, compiled here with gcc, started bare (fork +
//! exec + wait, stdin written from memory), half the bare runs just before
//! the job and half just after; and the whole job against 1,000 separate
//! submissions of the program, submitted at once as in phase (c).
//!
//! (f) A Java solution judged on 100 tests: one compile for the job, against
//! 100 separate submissions (each compiled on its own).
//!
//! Every test must be `accepted` and every separate submission print its
//! input back; anything else is counted and reported, never dropped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hyper::body::Bytes;
use hyper::StatusCode;
use serde::{Deserialize, Serialize};

use crate::http::{Conn, Target};
use crate::jobs::{self, ThroughputConfig, ThroughputResult};
use crate::stats::Summary;

/// Reads an integer, prints it: the program of phase (e).
pub const C_ECHO: &str = "#include <stdio.h>\n\
int main(void) {\n\
    long long x;\n\
    if (scanf(\"%lld\", &x) != 1) return 1;\n\
    printf(\"%lld\\n\", x);\n\
    return 0;\n\
}\n";

/// The same in Java: the program of phase (f).
pub const JAVA_ECHO: &str = "import java.io.*;\n\
\n\
public class Main {\n\
    public static void main(String[] args) throws IOException {\n\
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));\n\
        long x = Long.parseLong(in.readLine().trim());\n\
        System.out.println(x);\n\
    }\n\
}\n";

/// The input of the separate submissions (each test `i` reads `i`).
const SEPARATE_INPUT: &str = "42\n";

/// What one judge-mode phase measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JudgeResult {
    pub language: String,
    pub tests: usize,
    /// Tests `accepted`, by the result's summary.
    pub passed: usize,
    /// The job's verdict.
    pub verdict: String,
    /// Per test: `time_ms` (wall) and `cpu_time_ms` as the result gives them
    /// (whole milliseconds).
    pub per_test: Summary,
    pub per_test_cpu: Summary,
    /// Σ `time_ms` over the tests.
    pub tests_wall_ms: u64,
    /// Client side: submit → the answer that saw the job done.
    pub job_s: f64,
    /// Server side: worker started → finished (ms resolution).
    pub server_job_ms: Option<u64>,
    /// The job's CPU time (compile included) minus the tests': the compile's
    /// CPU time.
    pub compile_cpu_ms: Option<u64>,
    /// Answers `PENDING` with some tests finished (progress) seen while
    /// waiting.
    pub progress_answers: usize,
    /// Why the job is not all accepted, when it is not.
    pub problem: Option<String>,
    /// The bare binary, one start at a time (phase (e) only).
    pub bare: Option<Summary>,
    /// p50 of each bare part (before / after the job).
    #[serde(default)]
    pub bare_p50_parts_ms: Vec<f64>,
    /// The same program as that many separate submissions.
    pub separate: Option<ThroughputResult>,
}

pub struct JudgeConfig {
    pub language: &'static str,
    pub code: &'static str,
    pub tests: usize,
    /// Bare runs of the compiled C program (0: no bare baseline).
    pub bare_runs: usize,
    /// Separate submissions compared with (0: none).
    pub separate_jobs: usize,
    pub separate_connections: usize,
    /// At most this many separate submissions unfinished at once (each
    /// connection submits its next after its last finished); `None`: all
    /// submitted at once, as in phase (c).
    pub separate_in_flight: Option<usize>,
    pub job_timeout: Duration,
    pub separate_timeout: Duration,
}

/// The job's request: `tests` tests, test `i` reading `i` and expecting it.
fn judged_body(config: &JudgeConfig) -> Bytes {
    let tests: Vec<serde_json::Value> = (1..=config.tests)
        .map(
            |i| serde_json::json!({"stdin": format!("{i}\n"), "expected_output": format!("{i}\n")}),
        )
        .collect();
    let body = serde_json::json!({
        "language": config.language,
        "code": config.code,
        "tests": tests,
        "checker": {"type": "exact"},
    });
    Bytes::from(body.to_string())
}

fn separate_body(config: &JudgeConfig) -> Bytes {
    let body = serde_json::json!({
        "language": config.language,
        "code": config.code,
        "stdin": SEPARATE_INPUT,
    });
    Bytes::from(body.to_string())
}

pub fn run(
    runtime: &tokio::runtime::Runtime,
    target: &Target,
    config: &JudgeConfig,
) -> anyhow::Result<JudgeResult> {
    let bare_dir = if config.bare_runs > 0 {
        Some(compile_bare()?)
    } else {
        None
    };
    let mut bare_parts = Vec::new();
    if let Some(dir) = &bare_dir {
        bare_parts.push(bare_runs(&dir.0.join("echo"), config.bare_runs / 2)?);
    }
    let mut result = runtime.block_on(judged_job(target, config))?;
    if let Some(dir) = &bare_dir {
        bare_parts.push(bare_runs(
            &dir.0.join("echo"),
            config.bare_runs - config.bare_runs / 2,
        )?);
        let all: Vec<Duration> = bare_parts.iter().flatten().copied().collect();
        result.bare = Some(Summary::from_durations(&all));
        result.bare_p50_parts_ms = bare_parts
            .iter()
            .map(|part| Summary::from_durations(part).p50_ms)
            .collect();
    }
    if config.separate_jobs > 0 {
        let separate = ThroughputConfig {
            jobs: config.separate_jobs,
            body: separate_body(config),
            expected: SEPARATE_INPUT.to_owned(),
            connections: config.separate_connections,
            poll_window: 64,
            warmup: 0,
            timeout: config.separate_timeout,
            pids: [None; 3],
        };
        result.separate = Some(match config.separate_in_flight {
            None => runtime.block_on(jobs::throughput(target, &separate))?,
            Some(in_flight) => runtime.block_on(in_flight_limited(target, &separate, in_flight))?,
        });
    }
    Ok(result)
}

/// The separate submissions with at most `in_flight` unfinished at once:
/// that many connections, each submitting a job and waiting for its result
/// (`?wait=5`) before the next. Same figures as [`jobs::throughput`].
async fn in_flight_limited(
    target: &Target,
    config: &ThroughputConfig,
    in_flight: usize,
) -> anyhow::Result<ThroughputResult> {
    let in_flight = in_flight.clamp(1, config.jobs.max(1));
    let start = Instant::now();
    let deadline = start + config.timeout;
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..in_flight {
        let count = config.jobs / in_flight + usize::from(index < config.jobs % in_flight);
        let (target, body, expected) =
            (target.clone(), config.body.clone(), config.expected.clone());
        tasks.spawn(async move {
            let mut conn = Conn::connect(&target).await?;
            let mut wrong = Vec::new();
            let mut unfinished = 0;
            for _ in 0..count {
                let task_id = jobs::submit(&mut conn, &body).await?;
                let done = loop {
                    if Instant::now() >= deadline {
                        break None;
                    }
                    let path = format!("/results/{task_id}?wait=5");
                    let (status, answer) = conn.get(&path).await?;
                    if status != StatusCode::OK {
                        bail!("GET {path} answered {status}");
                    }
                    let body: serde_json::Value = serde_json::from_slice(&answer)?;
                    if body["status"] != "PENDING" {
                        break Some(body);
                    }
                };
                match done {
                    None => unfinished += 1,
                    Some(body) => {
                        let output = body["result"].get("output").and_then(|o| o.as_str());
                        if body["status"] != "SUCCESS" || output != Some(expected.as_str()) {
                            wrong.push(format!("{} {}", body["status"], body["result"]));
                        }
                    }
                }
            }
            anyhow::Ok((wrong, unfinished))
        });
    }
    let (mut wrong, mut unfinished) = (Vec::new(), 0);
    while let Some(joined) = tasks.join_next().await {
        let (mut some, more) = joined.context("separate submission task panicked")??;
        wrong.append(&mut some);
        unfinished += more;
    }
    let elapsed_s = start.elapsed().as_secs_f64();
    Ok(ThroughputResult {
        jobs: config.jobs,
        jobs_per_s: config.jobs as f64 / elapsed_s.max(1e-9),
        elapsed_s,
        submit_s: 0.0,
        server_jobs_per_s: None,
        failures: wrong.len() + unfinished,
        first_failure: wrong
            .first()
            .map(|w| w.chars().take(300).collect())
            .or_else(|| {
                (unfinished > 0).then(|| format!("{unfinished} jobs unfinished at the deadline"))
            }),
        unfinished,
        cpu: None,
        warmup: 0,
    })
}

/// The result fields read here.
#[derive(Debug, Deserialize)]
struct JudgedBody {
    status: String,
    #[serde(default)]
    result: serde_json::Value,
    #[serde(default)]
    verdict: Option<String>,
    #[serde(default)]
    tests: Vec<TestBody>,
    #[serde(default)]
    summary: Option<SummaryBody>,
    started_at_ms: Option<u64>,
    finished_at_ms: Option<u64>,
    cpu_time_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct TestBody {
    verdict: String,
    #[serde(default)]
    time_ms: Option<u64>,
    #[serde(default)]
    cpu_time_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct SummaryBody {
    passed: usize,
}

async fn judged_job(target: &Target, config: &JudgeConfig) -> anyhow::Result<JudgeResult> {
    let body = judged_body(config);
    let mut conn = Conn::connect(target).await?;
    let start = Instant::now();
    let deadline = start + config.job_timeout;
    let task_id = jobs::submit(&mut conn, &body).await?;
    let mut progress_answers = 0;
    let done = loop {
        if Instant::now() >= deadline {
            bail!(
                "judged job {task_id} still pending after {:?}",
                config.job_timeout
            );
        }
        // Under the client's 10 s request timeout; pending means ask again.
        let path = format!("/results/{task_id}?wait=5");
        let (status, answer) = conn.get(&path).await?;
        if status != StatusCode::OK {
            bail!(
                "GET {path} answered {status}: {}",
                String::from_utf8_lossy(&answer)
            );
        }
        let body: JudgedBody = serde_json::from_slice(&answer).context("judged result body")?;
        if body.status != "PENDING" {
            break body;
        }
        progress_answers += usize::from(!body.tests.is_empty());
    };
    let job_s = start.elapsed().as_secs_f64();
    let wall: Vec<u64> = done.tests.iter().filter_map(|t| t.time_ms).collect();
    let cpu: Vec<u64> = done.tests.iter().filter_map(|t| t.cpu_time_ms).collect();
    let passed = done.summary.as_ref().map_or(0, |s| s.passed);
    let verdict = done.verdict.clone().unwrap_or_else(|| done.status.clone());
    let problem = (passed != config.tests || done.tests.len() != config.tests).then(|| {
        let first = done
            .tests
            .iter()
            .position(|t| t.verdict != "accepted")
            .map_or_else(String::new, |i| {
                format!("; test {} {}", i + 1, done.tests[i].verdict)
            });
        format!(
            "{} {} ({} of {} accepted{first})",
            done.status, done.result, passed, config.tests
        )
    });
    Ok(JudgeResult {
        language: config.language.to_owned(),
        tests: config.tests,
        passed,
        verdict,
        per_test: Summary::from_millis(&wall),
        per_test_cpu: Summary::from_millis(&cpu),
        tests_wall_ms: wall.iter().sum(),
        job_s,
        server_job_ms: done
            .started_at_ms
            .zip(done.finished_at_ms)
            .map(|(started, finished)| finished.saturating_sub(started)),
        compile_cpu_ms: done
            .cpu_time_ms
            .map(|job| job.saturating_sub(cpu.iter().sum())),
        progress_answers,
        problem,
        bare: None,
        bare_p50_parts_ms: Vec::new(),
        separate: None,
    })
}

/// A temporary directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Compiles [`C_ECHO`] with gcc and the flags of the sandbox's C toolchain
/// (`crates/sandbox/languages.toml`) into a fresh temporary directory.
fn compile_bare() -> anyhow::Result<TempDir> {
    let dir = std::env::temp_dir().join(format!("code-runner-bench-judge.{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = TempDir(dir);
    let source = dir.0.join("echo.c");
    std::fs::write(&source, C_ECHO).context("writing echo.c")?;
    let output = Command::new("gcc")
        .args(["-std=gnu17", "-O2", "-pipe", "-o"])
        .arg(dir.0.join("echo"))
        .arg(&source)
        .arg("-lm")
        .output()
        .context("starting gcc (the bare baseline of phase (e) needs it)")?;
    if !output.status.success() {
        bail!("gcc failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(dir)
}

/// `runs` starts of the bare binary, one after another: fork + exec, the
/// input written to its stdin from memory, wait; each must print its input.
fn bare_runs(program: &Path, runs: usize) -> anyhow::Result<Vec<Duration>> {
    // Page cache and the first exec's costs out of the measured runs.
    for i in 0..5 {
        bare_once(program, i)?;
    }
    let mut wall = Vec::with_capacity(runs);
    for i in 1..=runs {
        let start = Instant::now();
        bare_once(program, i)?;
        wall.push(start.elapsed());
    }
    Ok(wall)
}

fn bare_once(program: &Path, i: usize) -> anyhow::Result<()> {
    let input = format!("{i}\n");
    let mut child = Command::new(program)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    child
        .stdin
        .take()
        .context("no stdin")?
        .write_all(input.as_bytes())
        .context("writing stdin")?;
    let output = child.wait_with_output().context("waiting")?;
    if !output.status.success() || output.stdout != input.as_bytes() {
        bail!("the bare program printed {:?}", output.stdout);
    }
    Ok(())
}
