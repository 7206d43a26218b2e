//! Phase (g), live output (issue 15): how long a line a program writes
//! takes to reach an SSE client, and what streaming costs throughput.
//!
//! - Delay: a python program prints `time.time_ns()` (CLOCK_REALTIME) and
//!   flushes, every 100 ms; the job is submitted with `?stream=true` and
//!   followed on `GET /results/{id}/events`; each `stdout` event's lines are
//!   compared with this process's CLOCK_REALTIME when the event's bytes
//!   arrive. Same machine, same clock: the difference is the write → worker
//!   → queue (Redis stream) → API → client path, the program's own
//!   `print` and the sandbox's pipe included.
//! - Throughput: the python hello jobs of phase (c), each submitted with
//!   `?stream=true` and followed by its own SSE client, all at once (500 by
//!   default: 500 SSE clients attached), first submit to last `end` event;
//!   compared with phase (c) of the same run, which has no SSE client.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use http_body_util::BodyExt;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, ACCEPT};
use hyper::{Method, StatusCode, Uri};
use serde::{Deserialize, Serialize};

use crate::http::{self, Conn, Target};
use crate::stats::Summary;

/// Phase (g) settings.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// Ticker jobs followed one after another.
    pub jobs: usize,
    /// Lines each ticker prints, one every 100 ms.
    pub lines: usize,
    /// Streaming hello jobs (one SSE client each) for the throughput part;
    /// 0 skips it.
    pub sse_jobs: usize,
    /// Connections submitting those jobs.
    pub connections: usize,
    pub timeout: Duration,
}

/// What phase (g) measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LiveResult {
    /// Write (in the program) → SSE client, per line.
    pub delay: Summary,
    pub jobs: usize,
    /// Lines expected and lines received.
    pub lines_expected: usize,
    pub lines_received: usize,
    /// Streaming hello jobs with an SSE client each, and their rate (first
    /// submit → last `end`); `None` when not run.
    #[serde(default)]
    pub sse_throughput: Option<SseThroughput>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SseThroughput {
    pub jobs: usize,
    pub jobs_per_s: f64,
    pub elapsed_s: f64,
    /// Jobs whose stream did not end with a result printing `hi`.
    pub failures: usize,
}

fn ticker_body(lines: usize) -> Bytes {
    let code = format!(
        "import time\nfor _ in range({lines}):\n    print(time.time_ns(), flush=True)\n    time.sleep(0.1)\n"
    );
    Bytes::from(serde_json::json!({"language": "python", "code": code}).to_string())
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos())
}

/// Submits `body` with `?stream=true`; the task id.
async fn submit_streaming(conn: &mut Conn, body: &Bytes) -> anyhow::Result<String> {
    let (status, answer) = conn
        .post_json("/run-code?stream=true", body.clone())
        .await?;
    if status != StatusCode::OK {
        bail!(
            "POST /run-code?stream=true answered {status}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    let answer: serde_json::Value =
        serde_json::from_slice(&answer).context("POST /run-code answer is not JSON")?;
    answer["task_id"]
        .as_str()
        .map(str::to_owned)
        .context("no task_id in the answer")
}

/// One SSE event: its name and data.
#[derive(Debug, PartialEq)]
struct Event {
    name: String,
    data: String,
}

/// Takes the complete events out of `buffer` (blocks ended by a blank line).
fn take_events(buffer: &mut String) -> Vec<Event> {
    let mut events = Vec::new();
    while let Some(cut) = buffer.find("\n\n") {
        let block: String = buffer.drain(..cut + 2).collect();
        let mut name = "message".to_owned();
        let mut data = Vec::new();
        for line in block.lines() {
            if let Some(value) = line.strip_prefix("event:") {
                name = value.trim_start().to_owned();
            } else if let Some(value) = line.strip_prefix("data:") {
                data.push(value.strip_prefix(' ').unwrap_or(value).to_owned());
            }
        }
        if !data.is_empty() {
            events.push(Event {
                name,
                data: data.join("\n"),
            });
        }
    }
    events
}

/// Follows task `id`'s events to the end; calls `on_event` with each and
/// this process's clock when its bytes arrived.
async fn follow(
    target: &Target,
    id: &str,
    mut on_event: impl FnMut(&Event, u128),
) -> anyhow::Result<()> {
    let (mut sender, driver) = http::open(target).await?;
    tokio::spawn(async move {
        let _ = driver.await;
    });
    let uri = Uri::try_from(format!("/results/{id}/events")).context("task id")?;
    let mut request = http::request(Method::GET, uri, target.host(), None);
    request
        .headers_mut()
        .insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
    sender.ready().await.context("connection closed")?;
    let response = sender.send_request(request).await.context("GET events")?;
    if response.status() != StatusCode::OK {
        bail!("GET /results/{id}/events answered {}", response.status());
    }
    let mut body = response.into_body();
    let mut buffer = String::new();
    while let Some(frame) = body.frame().await {
        let at = now_ns();
        let frame = frame.context("reading events")?;
        let Some(bytes) = frame.data_ref() else {
            continue;
        };
        buffer.push_str(&String::from_utf8_lossy(bytes).replace("\r\n", "\n"));
        for event in take_events(&mut buffer) {
            on_event(&event, at);
            if event.name == "end" {
                return Ok(());
            }
        }
    }
    bail!("the event stream of {id} closed before its end event")
}

pub async fn run(target: &Target, config: &LiveConfig) -> anyhow::Result<LiveResult> {
    let mut conn = Conn::connect(target).await?;
    let body = ticker_body(config.lines);
    let mut delays = Vec::new();
    let mut received = 0;
    for _ in 0..config.jobs {
        let id = submit_streaming(&mut conn, &body).await?;
        let mut result = None;
        tokio::time::timeout(
            config.timeout,
            follow(target, &id, |event, at| match event.name.as_str() {
                "stdout" => {
                    let Ok(value) = serde_json::from_str::<serde_json::Value>(&event.data) else {
                        return;
                    };
                    for line in value["data"].as_str().unwrap_or("").lines() {
                        if let Ok(written) = line.trim().parse::<u128>() {
                            received += 1;
                            let delay = at.saturating_sub(written);
                            delays.push(u32::try_from(delay / 1000).unwrap_or(u32::MAX));
                        }
                    }
                }
                "result" => result = Some(event.data.clone()),
                _ => {}
            }),
        )
        .await
        .context("a ticker job outlived the timeout")??;
        let result: serde_json::Value =
            serde_json::from_str(result.as_deref().unwrap_or("null")).unwrap_or_default();
        if result["verdict"] != "ok" {
            bail!("the ticker job {id} ended with {result}");
        }
    }
    let sse_throughput = if config.sse_jobs > 0 {
        Some(sse_throughput(target, config).await?)
    } else {
        None
    };
    Ok(LiveResult {
        delay: Summary::from_micros(delays),
        jobs: config.jobs,
        lines_expected: config.jobs * config.lines,
        lines_received: received,
        sse_throughput,
    })
}

/// `sse_jobs` streaming hello jobs, each followed by its own SSE client
/// from its submission on.
async fn sse_throughput(target: &Target, config: &LiveConfig) -> anyhow::Result<SseThroughput> {
    let body = crate::jobs::hello_body();
    let start = Instant::now();
    let deadline = config.timeout;
    let per_conn = config.sse_jobs.div_ceil(config.connections.max(1));
    let mut submitters = Vec::new();
    for c in 0..config.connections.max(1) {
        let count = per_conn.min(config.sse_jobs.saturating_sub(c * per_conn));
        let (target, body) = (target.clone(), body.clone());
        submitters.push(tokio::spawn(async move {
            let mut conn = Conn::connect(&target).await?;
            let mut followers = Vec::with_capacity(count);
            for _ in 0..count {
                let id = submit_streaming(&mut conn, &body).await?;
                let target = target.clone();
                followers.push(tokio::spawn(async move {
                    let mut ok = false;
                    let followed = follow(&target, &id, |event, _| {
                        if event.name == "result" {
                            ok = event.data.contains("\"verdict\":\"ok\"")
                                && event.data.contains("\"stdout\":\"hi\\n\"");
                        }
                    })
                    .await;
                    (followed.is_ok() && ok, Instant::now())
                }));
            }
            anyhow::Ok(followers)
        }));
    }
    let mut followers = Vec::new();
    for submitter in submitters {
        followers.extend(submitter.await.context("submitter panicked")??);
    }
    let mut failures = 0;
    let mut last = start;
    for follower in followers {
        let (ok, at) = tokio::time::timeout(deadline.saturating_sub(start.elapsed()), follower)
            .await
            .context("streaming jobs outlived the timeout")?
            .context("follower panicked")?;
        failures += usize::from(!ok);
        last = last.max(at);
    }
    let elapsed_s = (last - start).as_secs_f64();
    Ok(SseThroughput {
        jobs: config.sse_jobs,
        jobs_per_s: config.sse_jobs as f64 / elapsed_s.max(1e-9),
        elapsed_s,
        failures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_cut_at_blank_lines() {
        let mut buffer = "event: stdout\nid: 1-0\ndata: {\"offset\":0}\n\n: keep-alive\n\nevent: end\ndata: {}\n\nevent: res".to_owned();
        let events = take_events(&mut buffer);
        assert_eq!(
            events,
            vec![
                Event {
                    name: "stdout".into(),
                    data: "{\"offset\":0}".into()
                },
                Event {
                    name: "end".into(),
                    data: "{}".into()
                },
            ]
        );
        assert_eq!(buffer, "event: res");
    }
}
