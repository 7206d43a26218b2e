//! Phases (b) and (c): a python hello job end to end, one at a time for its
//! latency, then many at once for the rate the deployment completes them.
//!
//! A job is correct when it ends `SUCCESS` with output exactly `"hi\n"`; any
//! other end, or no end before the deadline, is a failure and is counted,
//! never silently dropped. The server's own timestamps (when the worker
//! started and finished the job) are read too, to split the latency into
//! queue wait, sandbox time and polling lag.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use hyper::body::Bytes;
use hyper::StatusCode;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use crate::http::{Conn, Target};
use crate::stats::Summary;

/// The output every python hello job must print.
pub const EXPECTED_OUTPUT: &str = "hi\n";

/// The fields of `GET /results/{id}` read here.
#[derive(Debug, Deserialize)]
struct ResultBody {
    status: String,
    #[serde(default)]
    result: serde_json::Value,
    started_at_ms: Option<u64>,
    finished_at_ms: Option<u64>,
    wall_time_ms: Option<u64>,
}

/// A finished job as the server reported it.
#[derive(Debug, Clone)]
struct Finished {
    correct: bool,
    /// What the server answered, for a job that is not correct.
    wrong: Option<String>,
    started_at_ms: Option<u64>,
    finished_at_ms: Option<u64>,
    wall_time_ms: Option<u64>,
}

/// The JSON body of every job, serialized once.
pub fn hello_body() -> Bytes {
    let body = serde_json::json!({"language": "python", "code": "print('hi')"});
    Bytes::from(body.to_string())
}

/// Wall-clock milliseconds since the epoch, the unit of the server's stamps.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

/// Submits one job; its task id.
pub async fn submit(conn: &mut Conn, body: &Bytes) -> anyhow::Result<String> {
    let (status, answer) = conn.post_json("/run-code", body.clone()).await?;
    if status != StatusCode::OK {
        bail!(
            "POST /run-code answered {status}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    let answer: serde_json::Value =
        serde_json::from_slice(&answer).context("POST /run-code answer is not JSON")?;
    answer["task_id"]
        .as_str()
        .map(str::to_owned)
        .context("no task_id in the POST /run-code answer")
}

/// The job's state: `None` while it is pending. With `wait_secs`, the
/// server answers once the job is done (or that long has passed).
async fn poll(
    conn: &mut Conn,
    task_id: &str,
    wait_secs: Option<u64>,
    expected: &str,
) -> anyhow::Result<Option<Finished>> {
    let path = match wait_secs {
        Some(secs) => format!("/results/{task_id}?wait={secs}"),
        None => format!("/results/{task_id}"),
    };
    let (status, answer) = conn.get(&path).await?;
    if status != StatusCode::OK {
        bail!(
            "GET /results/{task_id} answered {status}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    let body: ResultBody = serde_json::from_slice(&answer).context("result body")?;
    if body.status == "PENDING" {
        return Ok(None);
    }
    let output = body
        .result
        .get("output")
        .and_then(serde_json::Value::as_str);
    let correct = body.status == "SUCCESS" && output == Some(expected);
    Ok(Some(Finished {
        correct,
        wrong: (!correct).then(|| format!("{} {}", body.status, body.result)),
        started_at_ms: body.started_at_ms,
        finished_at_ms: body.finished_at_ms,
        wall_time_ms: body.wall_time_ms,
    }))
}

/// The server's answer for a wrong job, cut to a line.
fn wrong_text(finished: &Finished) -> String {
    let text = finished.wrong.as_deref().unwrap_or("?");
    text.chars().take(300).collect()
}

// ---------------------------------------------------------------- latency (b)

#[derive(Debug, Clone)]
pub struct LatencyConfig {
    pub warmups: usize,
    pub runs: usize,
    /// `None`: wait for each result with `GET /results/{id}?wait=` (what a
    /// client after low latency does); else poll this often.
    pub poll_every: Option<Duration>,
    /// Longest a single job may take before it counts as failed.
    pub job_timeout: Duration,
}

/// What phase (b) measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LatencyResult {
    pub runs: usize,
    /// 0 when results were waited for (`?wait=`) rather than polled.
    pub poll_every_ms: f64,
    /// Submit to the answer that saw the job done, correct jobs only.
    pub end_to_end: Summary,
    /// Jobs that failed, printed something else or did not finish in time.
    pub failures: usize,
    /// Why the first of them failed.
    #[serde(default)]
    pub first_failure: Option<String>,
    /// Server side: submit → worker started (ms resolution).
    pub queue_wait: Summary,
    /// Server side: worker started → finished (sandbox set-up, run, clean-up).
    pub worker_time: Summary,
    /// The program's own wall time inside the sandbox.
    pub program_wall: Summary,
}

/// One correct job: client latency and the server's stamps.
struct Sample {
    elapsed: Duration,
    submitted_ms: u64,
    finished: Finished,
}

pub async fn latency(target: &Target, config: &LatencyConfig) -> anyhow::Result<LatencyResult> {
    let body = hello_body();
    let mut conn = Conn::connect(target).await?;
    let mut samples = Vec::with_capacity(config.runs);
    let mut failures = Failures::default();
    for run in 0..config.warmups + config.runs {
        let sample = one_job(&mut conn, &body, config).await;
        if let Err(e) = &sample {
            eprintln!("latency: job {run} failed: {e:#}");
            // The connection may be the broken part; start afresh.
            conn = Conn::connect(target).await?;
        }
        if run < config.warmups {
            // Warm-ups also give a worker that is still starting time to be ready.
            continue;
        }
        match sample {
            Ok(sample) if sample.finished.correct => samples.push(sample),
            Ok(sample) => {
                let why = wrong_text(&sample.finished);
                eprintln!("latency: job {run} is wrong: {why}");
                failures.add(why);
            }
            Err(e) => failures.add(format!("{e:#}")),
        }
    }
    Ok(latency_result(config, &samples, failures))
}

/// Failed jobs: how many, and the first reason.
#[derive(Default)]
struct Failures {
    count: usize,
    first: Option<String>,
}

impl Failures {
    fn add(&mut self, why: String) {
        self.count += 1;
        self.first.get_or_insert(why);
    }
}

fn latency_result(config: &LatencyConfig, samples: &[Sample], failures: Failures) -> LatencyResult {
    let elapsed: Vec<Duration> = samples.iter().map(|s| s.elapsed).collect();
    let (mut queue_wait, mut worker_time, mut program_wall) = (Vec::new(), Vec::new(), Vec::new());
    for sample in samples {
        let f = &sample.finished;
        if let (Some(started), Some(finished)) = (f.started_at_ms, f.finished_at_ms) {
            queue_wait.push(started.saturating_sub(sample.submitted_ms));
            worker_time.push(finished.saturating_sub(started));
        }
        program_wall.extend(f.wall_time_ms);
    }
    LatencyResult {
        runs: config.runs,
        poll_every_ms: config
            .poll_every
            .map_or(0.0, |every| every.as_secs_f64() * 1000.0),
        end_to_end: Summary::from_durations(&elapsed),
        failures: failures.count,
        first_failure: failures.first,
        queue_wait: Summary::from_millis(&queue_wait),
        worker_time: Summary::from_millis(&worker_time),
        program_wall: Summary::from_millis(&program_wall),
    }
}

/// Submits a job, then waits for its result (`?wait=`), or polls every
/// `poll_every`, until it is done.
async fn one_job(conn: &mut Conn, body: &Bytes, config: &LatencyConfig) -> anyhow::Result<Sample> {
    let submitted_ms = now_ms();
    let start = Instant::now();
    let deadline = start + config.job_timeout;
    let task_id = submit(conn, body).await?;
    let mut ticks = config.poll_every.map(|every| {
        let mut ticks = tokio::time::interval_at(start + every, every);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticks
    });
    while Instant::now() < deadline {
        let wait_secs = match &mut ticks {
            Some(ticks) => {
                ticks.tick().await;
                None
            }
            // The server caps the wait at its own longest; a still-pending
            // answer just means asking again.
            None => Some(config.job_timeout.as_secs().max(1)),
        };
        if let Some(finished) = poll(conn, &task_id, wait_secs, EXPECTED_OUTPUT).await? {
            return Ok(Sample {
                elapsed: start.elapsed(),
                submitted_ms,
                finished,
            });
        }
    }
    bail!(
        "task {task_id} still pending after {:?}",
        config.job_timeout
    )
}

// ------------------------------------------------------------- throughput (c)

#[derive(Debug, Clone)]
pub struct ThroughputConfig {
    pub jobs: usize,
    /// Every job's request body, and the output each must print: the
    /// python hello ([`hello_body`], [`EXPECTED_OUTPUT`]) in phase (c).
    pub body: Bytes,
    pub expected: String,
    /// Connections submitting at once.
    pub connections: usize,
    /// Connections waiting for results at once (`?wait=`), each for one job
    /// at a time: a little over the worker's concurrency, so that every
    /// running job has a waiter.
    pub poll_window: usize,
    pub timeout: Duration,
    /// Jobs run to their end before the clock starts, not measured: enough
    /// for every slot of the worker to have started its sandbox (and, with
    /// prefork, its zygote) once, so that the rate is the steady state a
    /// long-running worker sees rather than its first minute's.
    pub warmup: usize,
    /// The API, the worker and Redis, when known: their CPU per job is
    /// reported (`ThroughputResult::cpu`).
    pub pids: [Option<u32>; 3],
}

/// What phase (c) measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThroughputResult {
    pub jobs: usize,
    /// `jobs` / (first submit → last completion seen by polling).
    pub jobs_per_s: f64,
    pub elapsed_s: f64,
    /// Time to submit all jobs.
    pub submit_s: f64,
    /// The same rate from the server's stamps (first submit → last
    /// `finished_at_ms`): free of polling lag, at millisecond resolution.
    pub server_jobs_per_s: Option<f64>,
    pub failures: usize,
    /// Why the first of them failed.
    #[serde(default)]
    pub first_failure: Option<String>,
    /// Jobs not finished when the deadline passed (also counted in failures).
    pub unfinished: usize,
    /// Jobs run before the measured ones (`ThroughputConfig::warmup`).
    #[serde(default)]
    pub warmup: usize,
    /// Where the machine's CPU went per measured job, from the first submit
    /// to the last answer.
    #[serde(default)]
    pub cpu: Option<crate::procfs::CpuSplit>,
}

pub async fn throughput(
    target: &Target,
    config: &ThroughputConfig,
) -> anyhow::Result<ThroughputResult> {
    let body = config.body.clone();
    let mut conns = Vec::with_capacity(config.connections);
    for _ in 0..config.connections.max(1) {
        conns.push(Conn::connect(target).await?);
    }
    if config.warmup > 0 {
        let (again, ids) = submit_all(conns, &body, config.warmup).await?;
        conns = again;
        let warmed = wait_all(target, ids, config, Instant::now() + config.timeout).await?;
        let wrong = warmed.done.iter().filter(|(_, f)| !f.correct).count();
        if wrong + warmed.unfinished > 0 {
            bail!(
                "{} of {} warm-up jobs failed or did not finish",
                wrong + warmed.unfinished,
                config.warmup
            );
        }
    }
    let meter = crate::procfs::CpuMeter::start(config.pids)?;
    let first_submit_ms = now_ms();
    let start = Instant::now();
    let (conns, ids) = submit_all(conns, &body, config.jobs).await?;
    let submit_s = start.elapsed().as_secs_f64();
    drop(conns);
    let polled = wait_all(target, ids, config, start + config.timeout).await?;
    let cpu = meter.finish(config.jobs as u64)?;

    let last_seen = polled.done.iter().map(|(at, _)| *at).max().unwrap_or(start);
    let elapsed_s = (last_seen - start).as_secs_f64();
    let last_finished_ms = polled
        .done
        .iter()
        .filter_map(|(_, f)| f.finished_at_ms)
        .max();
    let wrong: Vec<&Finished> = polled
        .done
        .iter()
        .map(|(_, f)| f)
        .filter(|f| !f.correct)
        .collect();
    for finished in wrong.iter().take(5) {
        eprintln!("throughput: a job is wrong: {}", wrong_text(finished));
    }
    let failures = wrong.len() + polled.unfinished;
    Ok(ThroughputResult {
        jobs: config.jobs,
        jobs_per_s: config.jobs as f64 / elapsed_s.max(1e-9),
        elapsed_s,
        submit_s,
        server_jobs_per_s: last_finished_ms
            .filter(|_| polled.unfinished == 0)
            .map(|last| {
                config.jobs as f64 / (last.saturating_sub(first_submit_ms).max(1) as f64 / 1000.0)
            }),
        failures,
        first_failure: wrong.first().map(|f| wrong_text(f)).or_else(|| {
            (polled.unfinished > 0)
                .then(|| format!("{} jobs still pending at the deadline", polled.unfinished))
        }),
        unfinished: polled.unfinished,
        warmup: config.warmup,
        cpu: Some(cpu),
    })
}

/// Submits `jobs` jobs spread over the connections; the ids in no set order.
async fn submit_all(
    conns: Vec<Conn>,
    body: &Bytes,
    jobs: usize,
) -> anyhow::Result<(Vec<Conn>, Vec<String>)> {
    let per_conn = jobs.div_ceil(conns.len());
    let mut tasks = JoinSet::new();
    for (index, mut conn) in conns.into_iter().enumerate() {
        let count = per_conn.min(jobs.saturating_sub(index * per_conn));
        let body = body.clone();
        tasks.spawn(async move {
            let mut ids = Vec::with_capacity(count);
            for _ in 0..count {
                ids.push(submit(&mut conn, &body).await?);
            }
            anyhow::Ok((conn, ids))
        });
    }
    let mut conns = Vec::new();
    let mut per_conn_ids = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (conn, some) = joined.context("submit task panicked")??;
        conns.push(conn);
        per_conn_ids.push(some.into_iter());
    }
    // Interleaved, so the list is about in submission order (each
    // connection submitted its share one after another).
    let mut ids = Vec::with_capacity(jobs);
    while ids.len() < jobs {
        let before = ids.len();
        ids.extend(per_conn_ids.iter_mut().filter_map(Iterator::next));
        if ids.len() == before {
            break;
        }
    }
    Ok((conns, ids))
}

/// Waits for every job with `GET /results/{id}?wait=`, the way a client
/// that wants each result as soon as it is there does: `poll_window`
/// connections, each waiting for one job at a time, the jobs dealt out in
/// submission order. One request per job (two when a job outlasts a wait)
/// rather than a poll per job every round, which took the API and Redis
/// about 20 requests per job (and their CPU from the jobs measured).
async fn wait_all(
    target: &Target,
    ids: Vec<String>,
    config: &ThroughputConfig,
    deadline: Instant,
) -> anyhow::Result<Polled> {
    let waiters = config.poll_window.clamp(1, ids.len().max(1));
    let mut shares: Vec<Vec<String>> = vec![Vec::new(); waiters];
    for (index, id) in ids.into_iter().enumerate() {
        shares[index % waiters].push(id);
    }
    let mut tasks = JoinSet::new();
    for share in shares {
        let mut conn = Conn::connect(target).await?;
        let expected = config.expected.clone();
        tasks.spawn(async move {
            let mut done = Vec::with_capacity(share.len());
            let mut unfinished = 0;
            for id in share {
                loop {
                    if Instant::now() >= deadline {
                        unfinished += 1;
                        break;
                    }
                    // Under the client's request timeout (10 s).
                    if let Some(finished) = poll(&mut conn, &id, Some(5), &expected).await? {
                        done.push((Instant::now(), finished));
                        break;
                    }
                }
            }
            anyhow::Ok((done, unfinished))
        });
    }
    let mut polled = Polled {
        done: Vec::new(),
        unfinished: 0,
    };
    while let Some(joined) = tasks.join_next().await {
        let (mut done, unfinished) = joined.context("wait task panicked")??;
        polled.done.append(&mut done);
        polled.unfinished += unfinished;
    }
    Ok(polled)
}

/// Finished jobs with when they were seen, and how many never finished.
struct Polled {
    done: Vec<(Instant, Finished)>,
    unfinished: usize,
}
