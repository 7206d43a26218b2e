//! Phase (a): `POST /run-code` requests per second over many keep-alive
//! connections, for a fixed time after a warm-up.
//!
//! Each connection is one task that sends the same pre-serialized body again
//! and again, a request at a time, and drives its own connection in the same
//! task. Only answers that complete inside the measuring window count, so the
//! warm-up and the requests still in flight at the end are left out. Nothing
//! is shared between tasks while measuring: each returns its own counts.

use std::time::Duration;

use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, StatusCode, Uri};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::http::{self, Target};
use crate::procfs;
use crate::stats::{micros, Summary};

/// How long past the window a connection may take to give up; a server that
/// stops answering must not hang the benchmark.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// Pause before reconnecting after a failed connection, so a dead server is
/// not hammered with connects.
const RECONNECT_PAUSE: Duration = Duration::from_millis(20);

#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// The request body, serialized once.
    pub body: Bytes,
    /// The API process, to report the CPU it used.
    pub api_pid: Option<u32>,
}

/// What phase (a) measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadResult {
    pub connections: usize,
    pub duration_s: f64,
    /// `200` answers per second inside the window.
    pub requests_per_s: f64,
    pub ok: u64,
    /// Answers with any other status.
    pub non_200: u64,
    /// The first such answer, status and start of the body, to say why.
    #[serde(default)]
    pub first_non_200: Option<String>,
    /// Failed connects, sends and reads.
    pub io_errors: u64,
    /// Latency of the `200` answers.
    pub latency: Summary,
    /// Cores the load generator used in the window: it shares the machine
    /// with what it measures, so it must stay small.
    pub generator_cores: f64,
    /// Cores the API process used in the window, when its pid was given.
    pub api_cores: Option<f64>,
}

/// Counts of one connection task.
#[derive(Default)]
struct ConnCounts {
    ok: u64,
    non_200: u64,
    first_non_200: Option<String>,
    io_errors: u64,
    latencies_us: Vec<u32>,
}

/// The measuring window, shared by every task.
#[derive(Clone, Copy)]
struct Window {
    from: Instant,
    until: Instant,
}

impl Window {
    fn contains(self, at: Instant) -> bool {
        at >= self.from && at < self.until
    }
}

pub async fn run(target: &Target, config: &LoadConfig) -> anyhow::Result<LoadResult> {
    let from = Instant::now() + config.warmup;
    let window = Window {
        from,
        until: from + config.duration,
    };
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..config.connections {
        tasks.spawn(connection_task(target.clone(), config.body.clone(), window));
    }
    let cpu = cpu_use(window, config.api_pid).await?;
    let mut total = ConnCounts::default();
    while let Some(counts) = tasks.join_next().await {
        let counts = counts?;
        total.ok += counts.ok;
        total.non_200 += counts.non_200;
        total.first_non_200 = total.first_non_200.or(counts.first_non_200);
        total.io_errors += counts.io_errors;
        total.latencies_us.extend_from_slice(&counts.latencies_us);
    }
    let duration_s = config.duration.as_secs_f64();
    Ok(LoadResult {
        connections: config.connections,
        duration_s,
        requests_per_s: total.ok as f64 / duration_s,
        ok: total.ok,
        non_200: total.non_200,
        first_non_200: total.first_non_200,
        io_errors: total.io_errors,
        latency: Summary::from_micros(total.latencies_us),
        generator_cores: cpu.generator,
        api_cores: cpu.api,
    })
}

/// Cores used during the window.
struct CpuUse {
    generator: f64,
    api: Option<f64>,
}

/// Samples CPU times at both ends of the window; the connection tasks run
/// meanwhile.
async fn cpu_use(window: Window, api_pid: Option<u32>) -> anyhow::Result<CpuUse> {
    let read_api = || {
        api_pid
            .map(|pid| procfs::cpu_seconds(Some(pid)))
            .transpose()
    };
    tokio::time::sleep_until(window.from).await;
    let (generator_from, api_from) = (procfs::cpu_seconds(None)?, read_api()?);
    tokio::time::sleep_until(window.until).await;
    let (generator_to, api_to) = (procfs::cpu_seconds(None)?, read_api()?);
    let seconds = (window.until - window.from).as_secs_f64();
    Ok(CpuUse {
        generator: (generator_to - generator_from) / seconds,
        api: api_from.zip(api_to).map(|(from, to)| (to - from) / seconds),
    })
}

/// One connection's life: (re)connect and send until the window closes.
async fn connection_task(target: Target, body: Bytes, window: Window) -> ConnCounts {
    let mut counts = ConnCounts {
        latencies_us: Vec::with_capacity(16 * 1024),
        ..ConnCounts::default()
    };
    while Instant::now() < window.until {
        match http::open(&target).await {
            Ok((sender, driver)) => {
                let requests = send_until(sender, &target, &body, window, &mut counts);
                // The driver runs in this task too: one wake-up per answer, not two.
                // The whole exchange is bounded, whatever the server does.
                let both = async { tokio::join!(requests, driver) };
                if tokio::time::timeout_at(window.until + STOP_GRACE, both)
                    .await
                    .is_err()
                {
                    counts.io_errors += 1;
                    break;
                }
            }
            Err(_) => {
                counts.io_errors += 1;
                tokio::time::sleep(RECONNECT_PAUSE).await;
            }
        }
    }
    counts
}

/// Sends requests one after another until the window closes or the
/// connection fails; dropping the sender at the end lets the driver finish.
async fn send_until(
    mut sender: SendRequest<http_body_util::Full<Bytes>>,
    target: &Target,
    body: &Bytes,
    window: Window,
    counts: &mut ConnCounts,
) {
    let uri = Uri::from_static("/run-code");
    loop {
        let started = Instant::now();
        if started >= window.until {
            return;
        }
        let request = http::request(Method::POST, uri.clone(), target.host(), Some(body.clone()));
        let answer = http::exchange(&mut sender, request).await;
        let done = Instant::now();
        match answer {
            // Warm-up, or finished after the window: not counted either way.
            Ok(_) if !window.contains(done) => {}
            Ok((StatusCode::OK, _)) => {
                counts.ok += 1;
                counts.latencies_us.push(micros(done - started));
            }
            Ok((status, body)) => {
                counts.non_200 += 1;
                if counts.first_non_200.is_none() {
                    let body = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
                    counts.first_non_200 = Some(format!("{status} {body}"));
                }
            }
            // Counted even outside the window: any failure is worth seeing.
            Err(_) => {
                counts.io_errors += 1;
                return;
            }
        }
    }
}
