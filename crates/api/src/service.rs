//! The service endpoints: `GET /languages`, `GET /ready`, `GET /stats` (JSON)
//! and `GET /metrics` (Prometheus text format 0.0.4); and the checks of a
//! run request against the service's memory budget ([`check_sizes`]).
//!
//! Statistics come from [`Queue::stats`](code_runner_queue::Queue::stats):
//! one Redis round trip per call, whatever the job rate, because workers
//! send their counters with their heartbeat rather than per job. The API
//! keeps no per-request counters of its own, so serving requests costs
//! nothing extra.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use code_runner_queue::stats::{HistogramData, QueueStats, TimeHistogram, TIME_BUCKETS_MS};
use code_runner_queue::Verdict;
use serde::Serialize;
use serde_json::json;

use crate::error::ApiError;
use crate::request::RunRequest;
use crate::state::{ApiConfig, AppState, SupportedLanguage};

/// Refuses a valid run request whose `stdin` is over its own limit (`413`
/// naming the field), before anything is queued: with the code limit, this
/// is what bounds the memory (and the Redis space) one queued job takes.
pub(crate) fn check_sizes(run: &RunRequest, config: &ApiConfig) -> Result<(), ApiError> {
    if run.stdin.len() > config.max_stdin_bytes {
        return Err(ApiError::StdinTooLarge {
            size: run.stdin.len(),
            limit: config.max_stdin_bytes,
        });
    }
    Ok(())
}

#[derive(Serialize)]
struct LanguageBody<'a> {
    /// Judge0's language id, while the Judge0 API is on: its SDK reads the
    /// `id` of each entry (see `judge0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u32>,
    name: &'a str,
    version: &'a str,
    aliases: &'a [String],
    file_name: &'a str,
}

/// `GET /languages`: every language, in table order.
pub(crate) async fn languages(State(state): State<AppState>) -> Response {
    let judge0 = state.config().judge0.enabled;
    let body: Vec<LanguageBody<'_>> = state
        .languages()
        .all()
        .iter()
        .map(|l: &SupportedLanguage| LanguageBody {
            id: judge0
                .then(|| crate::judge0::tables::primary_id(&l.name))
                .flatten(),
            name: &l.name,
            version: &l.version,
            aliases: &l.aliases,
            file_name: &l.file_name,
        })
        .collect();
    Json(body).into_response()
}

/// `GET /ready`: `200` when the queue answers, `503` otherwise. A worker
/// that cannot use its sandbox never starts, so the API's readiness is its
/// queue's.
pub(crate) async fn ready(State(state): State<AppState>) -> Response {
    match state.queue().ping().await {
        Ok(()) => Json(json!({"status": "ready", "queue": "ok"})).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check: queue unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "queue": "unavailable"})),
            )
                .into_response()
        }
    }
}

#[derive(Serialize)]
struct StatsBody<'a> {
    queued: u64,
    running: u64,
    workers: Vec<WorkerBody<'a>>,
    slots: Slots,
    jobs: Jobs<'a>,
}

#[derive(Serialize)]
struct WorkerBody<'a> {
    name: &'a str,
    slots: u32,
    busy: u32,
    last_seen_ms_ago: u64,
}

#[derive(Serialize)]
struct Slots {
    total: u64,
    busy: u64,
    idle: u64,
}

#[derive(Serialize)]
struct Jobs<'a> {
    total: u64,
    by_verdict: BTreeMap<&'a str, u64>,
    by_language: BTreeMap<&'a str, u64>,
}

fn slots(stats: &QueueStats) -> Slots {
    let total: u64 = stats.workers.iter().map(|w| u64::from(w.slots)).sum();
    let busy: u64 = stats
        .workers
        .iter()
        .map(|w| u64::from(w.busy.min(w.slots)))
        .sum();
    Slots {
        total,
        busy,
        idle: total - busy,
    }
}

/// `GET /stats`: the queue, the workers and the job counters as JSON.
pub(crate) async fn stats(State(state): State<AppState>) -> Result<Response, ApiError> {
    let stats = state
        .queue()
        .stats()
        .await
        .map_err(ApiError::QueueUnavailable)?;
    let now = now_ms();
    let mut by_verdict = BTreeMap::new();
    let mut by_language = BTreeMap::new();
    let jobs = stats.totals.jobs();
    for (&(language, verdict), &n) in &jobs {
        *by_verdict.entry(verdict).or_insert(0) += n;
        *by_language.entry(language).or_insert(0) += n;
    }
    let body = StatsBody {
        queued: stats.queued,
        running: stats.running,
        workers: stats
            .workers
            .iter()
            .map(|w| WorkerBody {
                name: &w.worker,
                slots: w.slots,
                busy: w.busy,
                last_seen_ms_ago: now.saturating_sub(w.seen_at_ms),
            })
            .collect(),
        slots: slots(&stats),
        jobs: Jobs {
            total: by_verdict.values().sum(),
            by_verdict,
            by_language,
        },
    };
    Ok(Json(body).into_response())
}

/// `GET /metrics`: Prometheus text format.
pub(crate) async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let stats = state
        .queue()
        .stats()
        .await
        .map_err(ApiError::QueueUnavailable)?;
    let languages: Vec<&str> = state
        .languages()
        .all()
        .iter()
        .map(|l| l.name.as_str())
        .collect();
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render_metrics(&stats, &languages),
    )
        .into_response())
}

/// The Prometheus exposition of `stats`. Every language of the table gets
/// its series from the start (at zero), so `rate()` works from the first
/// job; languages only workers know (another table) are added as they come.
pub(crate) fn render_metrics(stats: &QueueStats, table: &[&str]) -> String {
    let mut out = String::with_capacity(8 * 1024);
    let slots = slots(stats);
    gauge(
        &mut out,
        "code_runner_queue_depth",
        "Jobs waiting for a worker.",
        stats.queued,
    );
    gauge(
        &mut out,
        "code_runner_jobs_running",
        "Jobs on a worker and not finished yet.",
        stats.running,
    );
    gauge(
        &mut out,
        "code_runner_workers",
        "Workers heard from in the last 10 seconds.",
        stats.workers.len() as u64,
    );
    let _ = writeln!(
        out,
        "# HELP code_runner_worker_slots Job slots of the live workers, by state.\n\
         # TYPE code_runner_worker_slots gauge\n\
         code_runner_worker_slots{{state=\"busy\"}} {}\n\
         code_runner_worker_slots{{state=\"idle\"}} {}",
        slots.busy, slots.idle
    );

    let jobs = stats.totals.jobs();
    let mut languages: BTreeSet<&str> = table.iter().copied().collect();
    languages.extend(jobs.keys().map(|(language, _)| *language));
    let _ = writeln!(
        out,
        "# HELP code_runner_jobs_total Jobs finished, by language and verdict.\n\
         # TYPE code_runner_jobs_total counter"
    );
    for language in &languages {
        let mut verdicts: BTreeSet<&str> = Verdict::ALL.iter().map(|v| v.as_str()).collect();
        verdicts.extend(
            jobs.keys()
                .filter(|(l, _)| l == language)
                .map(|(_, verdict)| *verdict),
        );
        for verdict in verdicts {
            let n = jobs.get(&(*language, verdict)).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "code_runner_jobs_total{{language=\"{}\",verdict=\"{}\"}} {n}",
                escape(language),
                escape(verdict)
            );
        }
    }
    for (histogram, name, help) in [
        (
            TimeHistogram::Run,
            "code_runner_job_run_seconds",
            "Wall time of programs' run step, by language.",
        ),
        (
            TimeHistogram::QueueWait,
            "code_runner_job_queue_wait_seconds",
            "Time from submission to a worker starting the job, by language.",
        ),
    ] {
        let data = stats.totals.histograms(histogram);
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for language in &languages {
            let empty = HistogramData::default();
            let h = data.get(language).unwrap_or(&empty);
            let label = escape(language);
            let mut cumulative = 0;
            for (i, count) in h.buckets.iter().enumerate() {
                cumulative += count;
                let le = match TIME_BUCKETS_MS.get(i) {
                    Some(ms) => format_seconds(*ms),
                    None => "+Inf".to_owned(),
                };
                let _ = writeln!(
                    out,
                    "{name}_bucket{{language=\"{label}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "{name}_sum{{language=\"{label}\"}} {}\n{name}_count{{language=\"{label}\"}} {}",
                format_seconds(h.sum_ms),
                h.count
            );
        }
    }
    out
}

fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
}

/// Milliseconds as Prometheus seconds: `2.5`, `0.005`, `10`.
fn format_seconds(ms: u64) -> String {
    let text = format!("{}.{:03}", ms / 1000, ms % 1000);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use code_runner_queue::stats::{Counters, WorkerStatus};

    #[test]
    fn metrics_are_valid_prometheus_text() {
        let mut totals = Counters::default();
        totals.record_job("python", Verdict::Ok, 2_500, 4);
        totals.record_job("py\"thon", Verdict::TimeLimit, 70_000, 0);
        let stats = QueueStats {
            queued: 3,
            running: 1,
            workers: vec![WorkerStatus {
                worker: "w".into(),
                slots: 4,
                busy: 1,
                seen_at_ms: 0,
            }],
            totals,
        };
        let text = render_metrics(&stats, &["python", "c"]);
        assert!(text.contains("\ncode_runner_queue_depth 3\n"), "{text}");
        assert!(text.contains("code_runner_worker_slots{state=\"idle\"} 3\n"));
        assert!(text.contains("code_runner_jobs_total{language=\"python\",verdict=\"ok\"} 1\n"));
        assert!(text.contains("code_runner_jobs_total{language=\"c\",verdict=\"ok\"} 0\n"));
        assert!(
            text.contains("code_runner_job_run_seconds_bucket{language=\"python\",le=\"2.5\"} 1\n")
        );
        assert!(
            text.contains("code_runner_job_run_seconds_bucket{language=\"python\",le=\"1\"} 0\n")
        );
        assert!(text.contains("code_runner_job_run_seconds_sum{language=\"python\"} 2.5\n"));
        assert!(text.contains(
            "code_runner_job_run_seconds_bucket{language=\"py\\\"thon\",le=\"+Inf\"} 1\n"
        ));
        // Every sample line is `name{labels} value` or `name value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }

    #[test]
    fn seconds_are_short() {
        assert_eq!(format_seconds(5), "0.005");
        assert_eq!(format_seconds(2_500), "2.5");
        assert_eq!(format_seconds(10_000), "10");
        assert_eq!(format_seconds(0), "0");
    }
}
