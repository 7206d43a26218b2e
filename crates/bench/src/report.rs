//! The results of every phase, carried between invocations, and the report
//! built from them: one row per figure with its target, the baseline it is
//! compared with, the ratio and a verdict.
//!
//! Results travel through a state file because one benchmark run takes two
//! invocations: the submit phase must run with no worker (so the queue only
//! fills), the others with one. The baseline is measured in the second, so
//! every ratio to it still compares figures taken in the same run. The
//! figures of the original design (FastAPI + Celery + Docker) are not
//! measured at all: they are fixed references, and labelled as such.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::baseline::{spread, BaselineResult};
use crate::jobs::{LatencyResult, ThroughputResult};
use crate::judge::JudgeResult;
use crate::load::LoadResult;
use crate::procfs::{CpuSplit, Memory, RssResult};

// The targets, each with the figure of the original design (the seed's
// FastAPI + Celery + Docker deployment) it is set against. Those `ORIGINAL_`
// figures are fixed numbers, recorded once and written here: this benchmark
// does not run the original design, so they were not measured in the run
// being reported, nor necessarily on its machine. The report marks every
// one of them, and every ratio to one, with FIXED_REFERENCE_MARK and says
// so below the table; the JSON gives them as `fixed_reference`.

/// (a) target, and the original design's figure.
const SUBMIT_TARGET_RPS: f64 = 20_000.0;
const SUBMIT_ORIGINAL_RPS: f64 = 1_187.0;
/// (b) target: at most this much over the bare program's p50; and the
/// original design's p50 (no sandbox).
const LATENCY_SLACK_MS: f64 = 2.0;
const LATENCY_ORIGINAL_P50_MS: f64 = 13.3;
/// (c) target: this share of the bare parallel rate; and the original
/// design's rate.
const THROUGHPUT_SHARE: f64 = 0.85;
const THROUGHPUT_ORIGINAL_JOBS_PER_S: f64 = 140.0;
/// (d) target for each process, and the original 50-process worker.
const RSS_TARGET_MIB: f64 = 25.0;
const RSS_ORIGINAL_WORKER_MIB: f64 = 1.1 * 1024.0;
/// (e) targets: a judged test at most this much over the bare binary's
/// p50, and the whole judged job at least this many times faster than the
/// same tests as separate submissions.
const JUDGE_TEST_SLACK_MS: f64 = 1.0;
const JUDGE_SPEEDUP: f64 = 5.0;

/// Marks an original-design figure (and a ratio to one) in the text report.
const FIXED_REFERENCE_MARK: &str = "[fixed ref]";
/// What the mark means, printed under the table.
const FIXED_REFERENCE_NOTE: &str = "fixed reference figure of the original design \
     (the seed's FastAPI + Celery + Docker deployment), written into the benchmark \
     (crates/bench/src/report.rs); not measured in this run or necessarily on this \
     machine, so a ratio to it is indicative only";

/// A figure of the original design a row is compared with (see above).
#[derive(Debug, Clone, Serialize)]
pub struct FixedReference {
    pub value: f64,
    pub unit: &'static str,
    /// Always false: this benchmark does not run the original design.
    pub measured_in_this_run: bool,
    pub source: &'static str,
}

impl FixedReference {
    fn new(value: f64, unit: &'static str) -> Self {
        Self {
            value,
            unit,
            measured_in_this_run: false,
            source: FIXED_REFERENCE_NOTE,
        }
    }
}

/// Everything measured so far in this run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Results {
    pub submit: Option<LoadResult>,
    pub baseline: Option<BaselineResult>,
    pub latency: Option<LatencyResult>,
    pub throughput: Option<ThroughputResult>,
    pub rss: Option<RssResult>,
    /// (e) and (f): judge mode, C and Java.
    #[serde(default)]
    pub judge: Option<JudgeResult>,
    #[serde(default)]
    pub judge_java: Option<JudgeResult>,
    /// (g): live output over SSE.
    #[serde(default)]
    pub live: Option<crate::live::LiveResult>,
    /// (b') and (c'): (b) and (c) with python's prefork on.
    #[serde(default)]
    pub latency_prefork: Option<LatencyResult>,
    #[serde(default)]
    pub throughput_prefork: Option<ThroughputResult>,
    /// Per phase, the share of its time some task on the host waited for a
    /// CPU: how much to trust the figures of a noisy run.
    #[serde(default)]
    pub cpu_pressure: BTreeMap<String, f64>,
}

impl Results {
    /// Reads the state file; a missing file is an empty run.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("parsing {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        write_json(path, self)
    }
}

pub fn write_json(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(value).context("serializing")?;
    std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))
}

/// Whether a figure met its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Miss,
    /// A reference figure with no target of its own.
    Info,
    NotMeasured,
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub measure: String,
    pub value: Option<f64>,
    pub unit: &'static str,
    pub target: Option<f64>,
    pub target_text: String,
    pub baseline_text: String,
    pub ratio: Option<f64>,
    pub ratio_text: String,
    pub verdict: Verdict,
    /// Why it missed, by how much; or what else to know about the figure.
    pub note: String,
    /// The original design's figure the row mentions, if any: a fixed
    /// number, not measured in this run.
    pub fixed_reference: Option<FixedReference>,
}

impl Row {
    fn not_measured(measure: &str, target_text: String) -> Self {
        Self {
            measure: measure.to_owned(),
            value: None,
            unit: "",
            target: None,
            target_text,
            baseline_text: String::new(),
            ratio: None,
            ratio_text: String::new(),
            verdict: Verdict::NotMeasured,
            note: String::new(),
            fixed_reference: None,
        }
    }
}

/// The report as written by `--json`.
#[derive(Debug, Serialize)]
pub struct JsonReport<'a> {
    pub rows: &'a [Row],
    pub results: &'a Results,
}

pub fn rows(results: &Results) -> Vec<Row> {
    let mut rows = vec![submit_row(results.submit.as_ref())];
    rows.extend(baseline_rows(results.baseline.as_ref()));
    rows.extend(latency_rows(
        results.latency.as_ref(),
        results.baseline.as_ref(),
    ));
    rows.push(throughput_row(
        results.throughput.as_ref(),
        results.baseline.as_ref(),
    ));
    rows.extend(prefork_rows(
        results.latency_prefork.as_ref(),
        results.throughput_prefork.as_ref(),
        results.baseline.as_ref(),
    ));
    rows.extend(rss_rows(results.rss.as_ref()));
    rows.extend(judge_rows(results.judge.as_ref()));
    rows.extend(judge_java_rows(results.judge_java.as_ref()));
    rows.extend(live_rows(
        results.live.as_ref(),
        results.throughput.as_ref(),
    ));
    rows
}

/// The target of phase (g): a line reaches the SSE client within 5 ms (p50).
const LIVE_DELAY_TARGET_MS: f64 = 5.0;

fn live_rows(
    live: Option<&crate::live::LiveResult>,
    throughput: Option<&ThroughputResult>,
) -> Vec<Row> {
    let measure = "(g) live line: write -> SSE client, p50";
    let target_text = format!("<= {LIVE_DELAY_TARGET_MS} ms");
    let Some(live) = live else {
        return vec![Row::not_measured(measure, target_text)];
    };
    let met = live.delay.p50_ms <= LIVE_DELAY_TARGET_MS;
    let mut rows = vec![Row {
        measure: measure.to_owned(),
        value: Some(live.delay.p50_ms),
        unit: "ms",
        target: Some(LIVE_DELAY_TARGET_MS),
        target_text,
        baseline_text: String::new(),
        ratio: None,
        ratio_text: String::new(),
        verdict: if met { Verdict::Pass } else { Verdict::Miss },
        note: format!(
            "p99 {:.2} ms, max {:.2} ms; {} ticker jobs, {} of {} lines received (a line every 100 ms, stamped with time.time_ns() in the program)",
            live.delay.p99_ms,
            live.delay.max_ms,
            live.jobs,
            live.lines_received,
            live.lines_expected
        ),
        fixed_reference: None,
    }];
    if let Some(sse) = &live.sse_throughput {
        let plain = throughput.map(|t| t.jobs_per_s);
        rows.push(Row {
            measure: format!("(g) (c) with {} SSE clients attached", sse.jobs),
            value: Some(sse.jobs_per_s),
            unit: "jobs/s",
            target: None,
            target_text: "vs (c), none attached; no failure".to_owned(),
            baseline_text: plain.map_or_else(String::new, |p| format!("(c) {p:.1} jobs/s")),
            ratio: plain.map(|p| sse.jobs_per_s / p),
            ratio_text: plain.map_or_else(String::new, |p| {
                format!("{:.2}x (c)", sse.jobs_per_s / p)
            }),
            // A rate of jobs whose streams failed measures nothing.
            verdict: if sse.failures > 0 {
                Verdict::Miss
            } else {
                Verdict::Info
            },
            note: format!(
                "each job submitted with ?stream=true and followed by its own SSE client; {:.2} s first submit to last end event; failures {}",
                sse.elapsed_s, sse.failures
            ),
            fixed_reference: None,
        });
    }
    rows
}

/// Whether every test of a judged job was accepted, and if not why.
fn judged_note(judge: &JudgeResult) -> String {
    let mut note = format!(
        "{} tests, {} accepted (verdict {}); per test p99 {:.0} ms, cpu p50 {:.0} ms (whole ms, as the result gives them); progress answers seen {}",
        judge.tests,
        judge.passed,
        judge.verdict,
        judge.per_test.p99_ms,
        judge.per_test_cpu.p50_ms,
        judge.progress_answers
    );
    if let Some(problem) = &judge.problem {
        note = format!("{note}; NOT ALL ACCEPTED: {}", one_line(problem));
    }
    note
}

/// The job against the same program as separate submissions: (ratio, its
/// text, the baseline's text, whether all separate ones were right).
fn separate_comparison(judge: &JudgeResult) -> Option<(f64, String, String, bool)> {
    let separate = judge.separate.as_ref()?;
    let ratio = separate.elapsed_s / judge.job_s.max(1e-9);
    let mut baseline = format!("{} separate: {:.2} s", separate.jobs, separate.elapsed_s);
    if separate.failures > 0 {
        baseline = format!("{baseline} ({} failed)", separate.failures);
    }
    Some((
        ratio,
        format!("{ratio:.1}x faster"),
        baseline,
        separate.failures == 0,
    ))
}

fn separate_note(judge: &JudgeResult) -> String {
    judge
        .separate
        .as_ref()
        .map_or_else(String::new, |separate| {
            let submitted = if separate.submit_s > 0.0 {
                format!("submitted at once over {:.2} s", separate.submit_s)
            } else {
                "a few unfinished at a time".to_owned()
            };
            let mut note = format!(
                "; separate: {} {submitted}, {:.1} jobs/s, failures {}",
                separate.jobs, separate.jobs_per_s, separate.failures
            );
            if let Some(first) = &separate.first_failure {
                note = format!("{note}, first: {}", one_line(first));
            }
            note
        })
}

fn server_note(judge: &JudgeResult) -> String {
    let overhead = judge
        .server_job_ms
        .map(|job| job.saturating_sub(judge.tests_wall_ms));
    format!(
        "worker: job {} ms, tests' wall {} ms, the rest (compile, set-up) {} ms; compile CPU {} ms",
        judge
            .server_job_ms
            .map_or_else(|| "?".to_owned(), |ms| ms.to_string()),
        judge.tests_wall_ms,
        overhead.map_or_else(|| "?".to_owned(), |ms| ms.to_string()),
        judge
            .compile_cpu_ms
            .map_or_else(|| "?".to_owned(), |ms| ms.to_string()),
    )
}

fn judge_rows(judge: Option<&JudgeResult>) -> Vec<Row> {
    let test_measure = "(e) C judged test p50 (time_ms)";
    let job_measure = "(e) C judged job, whole";
    let Some(judge) = judge else {
        return vec![
            Row::not_measured(
                test_measure,
                format!("<= bare p50 + {JUDGE_TEST_SLACK_MS} ms"),
            ),
            Row::not_measured(
                job_measure,
                format!(">= {JUDGE_SPEEDUP}x faster than separate"),
            ),
        ];
    };
    let all_accepted = judge.problem.is_none();
    let bare = judge.bare;
    let limit = bare.map(|bare| bare.p50_ms + JUDGE_TEST_SLACK_MS);
    let p50 = judge.per_test.p50_ms;
    let mut test_note = judged_note(judge);
    if let Some(bare) = bare {
        test_note = format!(
            "{test_note}; bare: {} runs, p99 {:.2} ms, {}",
            bare.count,
            bare.p99_ms,
            parts_text(
                &judge.bare_p50_parts_ms,
                "p50",
                "ms",
                spread(&judge.bare_p50_parts_ms)
            )
        );
    }
    if let Some(limit) = limit.filter(|&limit| p50 > limit) {
        test_note = format!("{:.2} ms over; {test_note}", p50 - limit);
    }
    let test_row = Row {
        measure: format!("(e) C judged test p50 (time_ms), {} tests", judge.tests),
        value: Some(p50),
        unit: "ms",
        target: limit,
        target_text: limit.map_or_else(
            || format!("<= bare p50 + {JUDGE_TEST_SLACK_MS} ms"),
            |limit| format!("<= {limit:.2} ms (bare + {JUDGE_TEST_SLACK_MS})"),
        ),
        baseline_text: bare.map_or_else(String::new, |bare| {
            format!("bare fork+exec+wait p50 {:.2} ms", bare.p50_ms)
        }),
        ratio: bare.map(|bare| p50 / bare.p50_ms.max(1e-9)),
        ratio_text: bare.map_or_else(String::new, |bare| {
            format!("bare {:+.2} ms", p50 - bare.p50_ms)
        }),
        verdict: match limit {
            None => Verdict::NotMeasured,
            Some(limit) => pass_if(p50 <= limit && all_accepted),
        },
        note: test_note,
        fixed_reference: None,
    };
    let comparison = separate_comparison(judge);
    let mut job_note = format!(
        "submit to result, client side; {}{}",
        server_note(judge),
        separate_note(judge)
    );
    if let Some((ratio, ..)) = comparison
        .as_ref()
        .filter(|(ratio, ..)| *ratio < JUDGE_SPEEDUP)
    {
        job_note = format!("{:.1}x short; {job_note}", JUDGE_SPEEDUP - ratio);
    }
    let job_row = Row {
        measure: format!("{job_measure}, {} tests", judge.tests),
        value: Some(judge.job_s),
        unit: "s",
        target: comparison
            .as_ref()
            .and(judge.separate.as_ref())
            .map(|separate| separate.elapsed_s / JUDGE_SPEEDUP),
        target_text: format!(">= {JUDGE_SPEEDUP}x faster than separate"),
        baseline_text: comparison
            .as_ref()
            .map_or_else(String::new, |(_, _, baseline, _)| baseline.clone()),
        ratio: comparison.as_ref().map(|(ratio, ..)| *ratio),
        ratio_text: comparison
            .as_ref()
            .map_or_else(String::new, |(_, text, ..)| text.clone()),
        verdict: match &comparison {
            None => Verdict::NotMeasured,
            Some((ratio, _, _, separate_ok)) => {
                pass_if(*ratio >= JUDGE_SPEEDUP && all_accepted && *separate_ok)
            }
        },
        note: job_note,
        fixed_reference: None,
    };
    vec![test_row, job_row]
}

fn judge_java_rows(judge: Option<&JudgeResult>) -> Vec<Row> {
    let measure = "(f) Java judged job, whole";
    let Some(judge) = judge else {
        return vec![Row::not_measured(measure, "one compile".to_owned())];
    };
    let comparison = separate_comparison(judge);
    vec![Row {
        measure: format!("{measure}, {} tests", judge.tests),
        value: Some(judge.job_s),
        unit: "s",
        target: None,
        target_text: "one compile".to_owned(),
        baseline_text: comparison
            .as_ref()
            .map_or_else(String::new, |(_, _, baseline, _)| baseline.clone()),
        ratio: comparison.as_ref().map(|(ratio, ..)| *ratio),
        ratio_text: comparison
            .as_ref()
            .map_or_else(String::new, |(_, text, ..)| text.clone()),
        verdict: Verdict::Info,
        note: format!(
            "{}; {}; per test p50 {:.0} ms{}",
            if judge.problem.is_some() {
                format!("NOT ALL ACCEPTED: {}", judged_note(judge))
            } else {
                format!("{} tests accepted", judge.passed)
            },
            server_note(judge),
            judge.per_test.p50_ms,
            separate_note(judge)
        ),
        fixed_reference: None,
    }]
}

fn submit_row(submit: Option<&LoadResult>) -> Row {
    let measure = "(a) POST /run-code, no worker";
    let target_text = format!(">= {} req/s", thousands(SUBMIT_TARGET_RPS));
    let Some(submit) = submit else {
        return Row::not_measured(measure, target_text);
    };
    let rps = submit.requests_per_s;
    let errors = submit.non_200 + submit.io_errors;
    let verdict = pass_if(rps >= SUBMIT_TARGET_RPS && errors == 0);
    let api_cores = submit
        .api_cores
        .map_or_else(String::new, |cores| format!(", api {cores:.2} cores"));
    let mut note = format!(
        "{} conns, {:.0} s; latency p50 {:.2} ms, p99 {:.2} ms; non-200 {}, I/O errors {}; \
         CPU: generator {:.2} cores{api_cores}",
        submit.connections,
        submit.duration_s,
        submit.latency.p50_ms,
        submit.latency.p99_ms,
        submit.non_200,
        submit.io_errors,
        submit.generator_cores
    );
    if let Some(first) = &submit.first_non_200 {
        note = format!("{note}; first non-200: {first}");
    }
    if rps < SUBMIT_TARGET_RPS {
        note = format!(
            "{:.1}% short; {note}",
            (1.0 - rps / SUBMIT_TARGET_RPS) * 100.0
        );
    }
    Row {
        measure: format!("{measure}, {} conns", submit.connections),
        value: Some(rps),
        unit: "req/s",
        target: Some(SUBMIT_TARGET_RPS),
        target_text,
        baseline_text: format!(
            "original {} req/s {FIXED_REFERENCE_MARK}",
            thousands(SUBMIT_ORIGINAL_RPS)
        ),
        ratio: Some(rps / SUBMIT_ORIGINAL_RPS),
        ratio_text: format!(
            "{:.1}x original {FIXED_REFERENCE_MARK}",
            rps / SUBMIT_ORIGINAL_RPS
        ),
        verdict,
        note,
        fixed_reference: Some(FixedReference::new(SUBMIT_ORIGINAL_RPS, "req/s")),
    }
}

fn baseline_rows(baseline: Option<&BaselineResult>) -> Vec<Row> {
    let Some(baseline) = baseline else {
        return vec![Row::not_measured("bare python3 (baseline)", String::new())];
    };
    let failures = if baseline.failures == 0 {
        String::new()
    } else {
        format!("{} runs did not print \"hi\"", baseline.failures)
    };
    let info = |measure: String, value: f64, unit: &'static str, note: String| Row {
        measure,
        value: Some(value),
        unit,
        target: None,
        target_text: String::new(),
        baseline_text: String::new(),
        ratio: None,
        ratio_text: String::new(),
        verdict: Verdict::Info,
        note,
        fixed_reference: None,
    };
    let sequential = &baseline.sequential;
    let (sequential_drift, rate_drift) = baseline.drift();
    vec![
        info(
            "bare python3 -c, sequential p50".into(),
            sequential.p50_ms,
            "ms",
            format!(
                "{} runs; p99 {:.1} ms, mean {:.1} ms; {} {failures}",
                sequential.count,
                sequential.p99_ms,
                sequential.mean_ms,
                parts_text(
                    &baseline.sequential_p50_parts_ms,
                    "p50",
                    "ms",
                    sequential_drift
                )
            ),
        ),
        info(
            format!("bare python3 -c, {} in parallel", baseline.parallel),
            baseline.processes_per_s,
            "proc/s",
            format!(
                "{} processes; {} {failures}",
                baseline.parallel_processes,
                parts_text(&baseline.rate_parts, "rate", "proc/s", rate_drift)
            ),
        ),
    ]
}

/// "before/after (b): p50 17.0 / 18.1 ms, 6 % apart" for a baseline taken
/// in parts around the figure it is compared with.
fn parts_text(parts: &[f64], what: &str, unit: &str, drift: f64) -> String {
    if parts.len() < 2 {
        return "taken in one part".to_owned();
    }
    let values: Vec<String> = parts.iter().map(|value| format!("{value:.1}")).collect();
    format!(
        "parts before/after: {what} {} {unit}, {:.0}% apart",
        values.join(" / "),
        drift * 100.0
    )
}

fn latency_rows(latency: Option<&LatencyResult>, baseline: Option<&BaselineResult>) -> Vec<Row> {
    let measure = "(b) python hello latency p50";
    let Some(latency) = latency else {
        return vec![Row::not_measured(
            measure,
            format!("<= bare p50 + {LATENCY_SLACK_MS} ms"),
        )];
    };
    let e2e = &latency.end_to_end;
    let bare = baseline.map(|b| b.sequential);
    let limit = bare.map(|bare| bare.p50_ms + LATENCY_SLACK_MS);
    let met = limit.is_some_and(|limit| e2e.p50_ms <= limit);
    let fetch = if latency.poll_every_ms > 0.0 {
        format!("poll every {} ms", latency.poll_every_ms)
    } else {
        "results waited for with ?wait=".to_owned()
    };
    let mut note = format!(
        "{} runs, {fetch}; failures {}; server: queue wait p50 {:.0} ms, worker p50 {:.0} ms (program {:.0} ms)",
        latency.runs,
        latency.failures,
        latency.queue_wait.p50_ms,
        latency.worker_time.p50_ms,
        latency.program_wall.p50_ms
    );
    if let Some(first) = &latency.first_failure {
        note = format!("{note}; first failure: {}", one_line(first));
    }
    if let Some(limit) = limit.filter(|&limit| e2e.p50_ms > limit) {
        note = format!("{:.1} ms over; {note}", e2e.p50_ms - limit);
    }
    let ratio = |ours: f64, bare: f64| {
        (
            ours / bare,
            format!("{:.2}x bare ({:+.1} ms)", ours / bare, ours - bare),
        )
    };
    let (p50_ratio, p50_text) = bare.map_or((None, String::new()), |bare| {
        let (r, t) = ratio(e2e.p50_ms, bare.p50_ms);
        (Some(r), t)
    });
    let (p99_ratio, p99_text) = bare.map_or((None, String::new()), |bare| {
        let (r, t) = ratio(e2e.p99_ms, bare.p99_ms);
        (Some(r), t)
    });
    vec![
        Row {
            measure: measure.into(),
            value: Some(e2e.p50_ms),
            unit: "ms",
            target: limit,
            target_text: limit.map_or_else(
                || format!("<= bare p50 + {LATENCY_SLACK_MS} ms"),
                |limit| format!("<= {limit:.1} ms (bare + {LATENCY_SLACK_MS})"),
            ),
            baseline_text: bare.map_or_else(String::new, |bare| {
                format!("bare p50 {:.1} ms", bare.p50_ms)
            }),
            ratio: p50_ratio,
            ratio_text: p50_text,
            verdict: if bare.is_none() {
                Verdict::NotMeasured
            } else {
                pass_if(met && latency.failures == 0)
            },
            note: format!(
                "original {LATENCY_ORIGINAL_P50_MS} ms {FIXED_REFERENCE_MARK}, no sandbox; {note}"
            ),
            fixed_reference: Some(FixedReference::new(LATENCY_ORIGINAL_P50_MS, "ms")),
        },
        Row {
            measure: "(b) python hello latency p99".into(),
            value: Some(e2e.p99_ms),
            unit: "ms",
            target: None,
            target_text: String::new(),
            baseline_text: bare.map_or_else(String::new, |bare| {
                format!("bare p99 {:.1} ms", bare.p99_ms)
            }),
            ratio: p99_ratio,
            ratio_text: p99_text,
            verdict: Verdict::Info,
            note: format!("mean {:.1} ms, max {:.1} ms", e2e.mean_ms, e2e.max_ms),
            fixed_reference: None,
        },
    ]
}

fn throughput_row(throughput: Option<&ThroughputResult>, baseline: Option<&BaselineResult>) -> Row {
    let measure = "(c) python hello throughput";
    let share = THROUGHPUT_SHARE * 100.0;
    let Some(throughput) = throughput else {
        return Row::not_measured(measure, format!(">= {share:.0}% of bare parallel"));
    };
    let rate = throughput.jobs_per_s;
    let bare = baseline.map(|b| b.processes_per_s);
    let target = bare.map(|bare| bare * THROUGHPUT_SHARE);
    let ratio = bare.map(|bare| rate / bare);
    let mut note = format!(
        "{} jobs in {:.2} s (submitted in {:.2} s) after {} warm-up jobs; failures {}; server-stamped {}; original {THROUGHPUT_ORIGINAL_JOBS_PER_S} jobs/s {FIXED_REFERENCE_MARK}",
        throughput.jobs,
        throughput.elapsed_s,
        throughput.submit_s,
        throughput.warmup,
        throughput.failures,
        throughput
            .server_jobs_per_s
            .map_or_else(|| "n/a".to_owned(), |r| format!("{r:.1} jobs/s"))
    );
    if let Some(first) = &throughput.first_failure {
        note = format!("{note}; first failure: {}", one_line(first));
    }
    if let Some(cpu) = &throughput.cpu {
        note = format!(
            "{note}; {}",
            cpu_split_text(cpu, baseline.and_then(|b| b.cpu.as_ref()))
        );
    }
    if let Some(ratio) = ratio.filter(|&ratio| ratio < THROUGHPUT_SHARE) {
        note = format!(
            "{:.0}% of bare, {:.0} points short; {note}",
            ratio * 100.0,
            (THROUGHPUT_SHARE - ratio) * 100.0
        );
    }
    Row {
        measure: measure.into(),
        value: Some(rate),
        unit: "jobs/s",
        target,
        target_text: target.map_or_else(
            || format!(">= {share:.0}% of bare"),
            |target| format!(">= {target:.1} jobs/s ({share:.0}% of bare)"),
        ),
        baseline_text: bare.map_or_else(String::new, |bare| format!("bare {bare:.1} proc/s")),
        ratio,
        ratio_text: ratio.map_or_else(String::new, |ratio| format!("{ratio:.2}x bare")),
        verdict: match ratio {
            None => Verdict::NotMeasured,
            Some(ratio) => pass_if(ratio >= THROUGHPUT_SHARE && throughput.failures == 0),
        },
        note,
        fixed_reference: Some(FixedReference::new(
            THROUGHPUT_ORIGINAL_JOBS_PER_S,
            "jobs/s",
        )),
    }
}

/// Where the machine's CPU went per job of (c), beside what a bare process
/// took: "CPU per job 12.1 ms (bare 9.9 ms per process): API 0.33, worker
/// 0.45, Redis 0.26, this benchmark 0.14, the rest 10.9 (programs,
/// sandboxes, kernel); 54 context switches per job (bare 7); cores busy
/// 96.5 % of the time (bare 99.8 %)". The rate's ratio to bare is the ratio
/// of the busy shares times the inverse ratio of the CPU per job.
fn cpu_split_text(cpu: &CpuSplit, bare: Option<&CpuSplit>) -> String {
    let named = |name: &str, ms: Option<f64>| ms.map(|ms| format!("{name} {ms:.2}, "));
    let busy = cpu.busy_share.map_or_else(String::new, |share| {
        let bare = bare
            .and_then(|bare| bare.busy_share)
            .map_or_else(String::new, |bare| format!(" (bare {:.1} %)", bare * 100.0));
        format!("; cores busy {:.1} % of the time{bare}", share * 100.0)
    });
    format!(
        "CPU per job {:.1} ms{}: {}{}{}this benchmark {:.2}, the rest {:.1} (programs, sandboxes, kernel); {:.0} context switches per job{}{busy}",
        cpu.host_ms,
        bare.map_or_else(String::new, |bare| format!(" (bare {:.1} ms per process)", bare.host_ms)),
        named("API", cpu.api_ms).unwrap_or_default(),
        named("worker", cpu.worker_ms).unwrap_or_default(),
        named("Redis", cpu.redis_ms).unwrap_or_default(),
        cpu.client_ms,
        cpu.rest_ms(),
        cpu.context_switches,
        bare.map_or_else(String::new, |bare| format!(" (bare {:.0})", bare.context_switches)),
    )
}

/// (b') p50 at most half the bare p50; (c') at least 1.5 times the bare
/// processes per second: a forked python is to beat a fresh one.
const PREFORK_LATENCY_SHARE: f64 = 0.5;
const PREFORK_THROUGHPUT_SHARE: f64 = 1.5;

fn prefork_rows(
    latency: Option<&LatencyResult>,
    throughput: Option<&ThroughputResult>,
    baseline: Option<&BaselineResult>,
) -> Vec<Row> {
    let mut rows = Vec::new();
    let latency_target = format!("<= {PREFORK_LATENCY_SHARE}x bare p50");
    match latency {
        None => rows.push(Row::not_measured(
            "(b') python hello latency p50, prefork",
            latency_target,
        )),
        Some(latency) => {
            let e2e = &latency.end_to_end;
            let bare = baseline.map(|b| b.sequential.p50_ms);
            let target = bare.map(|bare| bare * PREFORK_LATENCY_SHARE);
            let ratio = bare.map(|bare| e2e.p50_ms / bare);
            rows.push(Row {
                measure: "(b') python hello latency p50, prefork".into(),
                value: Some(e2e.p50_ms),
                unit: "ms",
                target,
                target_text: target.map_or(latency_target, |t| {
                    format!("<= {t:.1} ms ({PREFORK_LATENCY_SHARE}x bare)")
                }),
                baseline_text: bare.map_or_else(String::new, |b| format!("bare p50 {b:.1} ms")),
                ratio,
                ratio_text: ratio.map_or_else(String::new, |r| format!("{r:.2}x bare")),
                verdict: match ratio {
                    None => Verdict::NotMeasured,
                    Some(r) => pass_if(r <= PREFORK_LATENCY_SHARE && latency.failures == 0),
                },
                note: format!(
                    "{} runs; failures {}; p99 {:.1} ms; server: worker p50 {:.1} ms (program {:.1} ms)",
                    latency.runs,
                    latency.failures,
                    e2e.p99_ms,
                    latency.worker_time.p50_ms,
                    latency.program_wall.p50_ms
                ),
                fixed_reference: None,
            });
        }
    }
    let throughput_target = format!(">= {PREFORK_THROUGHPUT_SHARE}x bare parallel");
    match throughput {
        None => rows.push(Row::not_measured(
            "(c') python hello throughput, prefork",
            throughput_target,
        )),
        Some(throughput) => {
            let bare = baseline.map(|b| b.processes_per_s);
            let target = bare.map(|bare| bare * PREFORK_THROUGHPUT_SHARE);
            let ratio = bare.map(|bare| throughput.jobs_per_s / bare);
            rows.push(Row {
                measure: "(c') python hello throughput, prefork".into(),
                value: Some(throughput.jobs_per_s),
                unit: "jobs/s",
                target,
                target_text: target.map_or(throughput_target, |t| {
                    format!(">= {t:.1} jobs/s ({PREFORK_THROUGHPUT_SHARE}x bare)")
                }),
                baseline_text: bare.map_or_else(String::new, |b| format!("bare {b:.1} proc/s")),
                ratio,
                ratio_text: ratio.map_or_else(String::new, |r| format!("{r:.2}x bare")),
                verdict: match ratio {
                    None => Verdict::NotMeasured,
                    Some(r) => pass_if(r >= PREFORK_THROUGHPUT_SHARE && throughput.failures == 0),
                },
                note: format!(
                    "{} jobs in {:.2} s after {} warm-up jobs; failures {}{}",
                    throughput.jobs,
                    throughput.elapsed_s,
                    throughput.warmup,
                    throughput.failures,
                    throughput
                        .cpu
                        .as_ref()
                        .map_or_else(String::new, |cpu| format!(
                            "; {}",
                            cpu_split_text(cpu, baseline.and_then(|b| b.cpu.as_ref()))
                        ))
                ),
                fixed_reference: None,
            });
        }
    }
    rows
}

fn rss_rows(rss: Option<&RssResult>) -> Vec<Row> {
    let target_text = format!("<= {RSS_TARGET_MIB:.0} MiB");
    let Some(rss) = rss else {
        return vec![
            Row::not_measured("(d) api idle RSS", target_text.clone()),
            Row::not_measured("(d) worker idle RSS", target_text),
        ];
    };
    let row = |measure: &str, memory: &Memory, original: Option<f64>| {
        let mib = memory.rss_mib();
        let mut note = format!(
            "pid {}, peak {:.1} MiB, after {:.0} s idle",
            memory.pid,
            memory.peak_kib as f64 / 1024.0,
            rss.idle_s
        );
        if mib > RSS_TARGET_MIB {
            note = format!("{:.1} MiB over; {note}", mib - RSS_TARGET_MIB);
        }
        Row {
            measure: measure.to_owned(),
            value: Some(mib),
            unit: "MiB",
            target: Some(RSS_TARGET_MIB),
            target_text: target_text.clone(),
            baseline_text: original.map_or_else(String::new, |o| {
                format!("original {:.1} GiB {FIXED_REFERENCE_MARK}", o / 1024.0)
            }),
            ratio: original.map(|o| mib / o),
            ratio_text: original.map_or_else(String::new, |o| {
                format!("{:.3}x original {FIXED_REFERENCE_MARK}", mib / o)
            }),
            verdict: pass_if(mib <= RSS_TARGET_MIB),
            note,
            fixed_reference: original.map(|o| FixedReference::new(o, "MiB")),
        }
    };
    vec![
        row("(d) api idle RSS", &rss.api, None),
        row(
            "(d) worker idle RSS",
            &rss.worker,
            Some(RSS_ORIGINAL_WORKER_MIB),
        ),
    ]
}

/// A server message on one line of the report.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn pass_if(met: bool) -> Verdict {
    if met {
        Verdict::Pass
    } else {
        Verdict::Miss
    }
}

/// A whole number with thousands separators: 20000 → "20,000".
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The report as an aligned text table, then one note line per row that has one.
pub fn render(rows: &[Row], cpu_pressure: &BTreeMap<String, f64>) -> String {
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|row| {
            [
                row.measure.clone(),
                value_text(row),
                row.target_text.clone(),
                row.baseline_text.clone(),
                row.ratio_text.clone(),
                verdict_text(row.verdict).to_owned(),
            ]
        })
        .collect();
    let header = [
        "measure", "result", "target", "baseline", "ratio", "verdict",
    ]
    .map(str::to_owned);
    let mut widths = header.clone().map(|h| h.chars().count());
    for line in &cells {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for line in std::iter::once(&header).chain(&cells) {
        let padded: Vec<String> = line
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(padded.join(" | ").trim_end());
        out.push('\n');
        if std::ptr::eq(line, &header) {
            out.push_str(&widths.map(|w| "-".repeat(w)).join("-+-"));
            out.push('\n');
        }
    }
    out.push('\n');
    for row in rows.iter().filter(|row| !row.note.trim().is_empty()) {
        out.push_str(&format!("{}: {}\n", row.measure, row.note.trim()));
    }
    if rows.iter().any(|row| row.fixed_reference.is_some()) {
        out.push_str(&format!(
            "{FIXED_REFERENCE_MARK}: {FIXED_REFERENCE_NOTE}.\n"
        ));
    }
    if !cpu_pressure.is_empty() {
        let phases: Vec<String> = cpu_pressure
            .iter()
            .map(|(phase, share)| format!("{phase} {:.0}%", share * 100.0))
            .collect();
        out.push_str(&format!(
            "host CPU pressure (share of each phase during which some task waited for a \
             CPU; submit and throughput load both cores themselves, the others should \
             stay near 0 on a quiet machine): {}\n",
            phases.join(", ")
        ));
    }
    out
}

fn value_text(row: &Row) -> String {
    match row.value {
        None => "not measured".to_owned(),
        Some(value) if row.unit == "req/s" => format!("{} {}", thousands(value), row.unit),
        Some(value) if row.unit == "s" || row.measure.starts_with("(e)") => {
            format!("{value:.2} {}", row.unit)
        }
        Some(value) => format!("{value:.1} {}", row.unit),
    }
}

fn verdict_text(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "PASS",
        Verdict::Miss => "MISS",
        Verdict::Info => "",
        Verdict::NotMeasured => "-",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::{Memory, RssResult};
    use crate::stats::Summary;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(1_187.0), "1,187");
        assert_eq!(thousands(20_000.0), "20,000");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }

    #[test]
    fn empty_run_renders_every_row_as_not_measured() {
        let rows = rows(&Results::default());
        assert!(rows.iter().all(|row| row.verdict == Verdict::NotMeasured));
        assert!(render(&rows, &BTreeMap::new()).contains("not measured"));
    }

    /// The original design's figures are fixed numbers, not taken in the
    /// run: every mention says so, in the text and in the JSON.
    #[test]
    fn original_design_figures_are_labelled_fixed_references() {
        let results = Results {
            submit: Some(LoadResult {
                connections: 64,
                duration_s: 10.0,
                requests_per_s: 24_000.0,
                ok: 240_000,
                non_200: 0,
                first_non_200: None,
                io_errors: 0,
                latency: Summary::default(),
                generator_cores: 0.5,
                api_cores: None,
            }),
            throughput: Some(ThroughputResult {
                jobs: 500,
                jobs_per_s: 100.0,
                elapsed_s: 5.0,
                submit_s: 0.1,
                server_jobs_per_s: None,
                failures: 0,
                first_failure: None,
                unfinished: 0,
                warmup: 0,
                cpu: None,
            }),
            rss: Some(RssResult {
                idle_s: 5.0,
                api: Memory {
                    pid: 1,
                    rss_kib: 13_000,
                    peak_kib: 14_000,
                },
                worker: Memory {
                    pid: 2,
                    rss_kib: 11_000,
                    peak_kib: 12_000,
                },
            }),
            ..Results::default()
        };
        let rows = rows(&results);
        let text = render(&rows, &BTreeMap::new());
        let mentions: Vec<&str> = text.lines().filter(|l| l.contains("original")).collect();
        assert!(mentions.len() >= 3, "{text}");
        for line in mentions {
            assert!(
                line.contains(FIXED_REFERENCE_MARK),
                "an original-design figure without its label: {line}"
            );
        }
        assert!(
            text.contains("not measured in this run"),
            "the label is explained: {text}"
        );
        let json = serde_json::to_value(&rows).unwrap();
        let submit = &json[0]["fixed_reference"];
        assert_eq!(submit["value"], 1_187.0, "{json}");
        assert_eq!(submit["measured_in_this_run"], false, "{json}");
        assert!(json[0]["ratio_text"]
            .as_str()
            .unwrap()
            .contains(FIXED_REFERENCE_MARK));
    }

    #[test]
    fn judge_targets() {
        let summary = |p50_ms| Summary {
            count: 1000,
            mean_ms: p50_ms,
            p50_ms,
            p99_ms: p50_ms,
            max_ms: p50_ms,
        };
        let separate = |elapsed_s| ThroughputResult {
            jobs: 1000,
            jobs_per_s: 1000.0 / elapsed_s,
            elapsed_s,
            submit_s: 1.0,
            server_jobs_per_s: None,
            failures: 0,
            first_failure: None,
            unfinished: 0,
            warmup: 0,
            cpu: None,
        };
        let judge = |p50_ms, job_s, separate_s| JudgeResult {
            language: "c".into(),
            tests: 1000,
            passed: 1000,
            verdict: "accepted".into(),
            per_test: summary(p50_ms),
            per_test_cpu: summary(0.0),
            tests_wall_ms: 1000,
            job_s,
            server_job_ms: Some(1500),
            compile_cpu_ms: Some(100),
            progress_answers: 0,
            problem: None,
            bare: Some(summary(0.5)),
            bare_p50_parts_ms: vec![0.5, 0.5],
            separate: Some(separate(separate_s)),
        };
        let verdicts = |j: &JudgeResult| {
            let rows = judge_rows(Some(j));
            (rows[0].verdict, rows[1].verdict)
        };
        assert_eq!(
            verdicts(&judge(1.0, 2.0, 10.0)),
            (Verdict::Pass, Verdict::Pass)
        );
        assert_eq!(
            verdicts(&judge(2.0, 2.0, 9.9)),
            (Verdict::Miss, Verdict::Miss)
        );
        let mut wrong = judge(1.0, 2.0, 10.0);
        wrong.problem = Some("FAILURE".into());
        assert_eq!(verdicts(&wrong), (Verdict::Miss, Verdict::Miss));
        let text = render(&judge_rows(Some(&judge(1.0, 2.0, 10.0))), &BTreeMap::new());
        assert!(text.contains("bare fork+exec+wait p50 0.50 ms"), "{text}");
        assert!(text.contains("5.0x faster"), "{text}");
    }

    #[test]
    fn cpu_split_names_each_part_beside_bare() {
        let cpu = CpuSplit {
            host_ms: 12.0,
            api_ms: Some(0.3),
            worker_ms: Some(0.45),
            redis_ms: None,
            client_ms: 0.15,
            context_switches: 55.4,
            busy_share: Some(0.9654),
        };
        let bare = CpuSplit {
            host_ms: 9.6,
            client_ms: 0.4,
            context_switches: 12.2,
            busy_share: Some(0.9981),
            ..CpuSplit::default()
        };
        assert_eq!(
            cpu_split_text(&cpu, Some(&bare)),
            "CPU per job 12.0 ms (bare 9.6 ms per process): API 0.30, worker 0.45, this benchmark \
             0.15, the rest 11.1 (programs, sandboxes, kernel); 55 context switches per job (bare 12); \
             cores busy 96.5 % of the time (bare 99.8 %)"
        );
        assert!(!cpu_split_text(&cpu, None).contains("bare"));
        // Results of a run before the busy share was measured.
        let old = CpuSplit {
            busy_share: None,
            ..cpu
        };
        assert!(!cpu_split_text(&old, Some(&bare)).contains("busy"));
    }

    #[test]
    fn latency_target_is_bare_p50_plus_slack() {
        let bare = BaselineResult {
            sequential: Summary {
                count: 100,
                mean_ms: 10.0,
                p50_ms: 10.0,
                p99_ms: 12.0,
                max_ms: 13.0,
            },
            sequential_p50_parts_ms: vec![10.0],
            parallel: 2,
            processes_per_s: 200.0,
            parallel_processes: 1000,
            rate_parts: vec![200.0],
            failures: 0,
            cpu: None,
        };
        let latency = |p50_ms| LatencyResult {
            runs: 200,
            poll_every_ms: 5.0,
            end_to_end: Summary {
                count: 200,
                mean_ms: p50_ms,
                p50_ms,
                p99_ms: p50_ms,
                max_ms: p50_ms,
            },
            failures: 0,
            first_failure: None,
            queue_wait: Summary::default(),
            worker_time: Summary::default(),
            program_wall: Summary::default(),
        };
        // Bare p50 10 ms + 2 ms of slack (issue 14's target).
        assert_eq!(
            latency_rows(Some(&latency(11.9)), Some(&bare))[0].verdict,
            Verdict::Pass
        );
        assert_eq!(
            latency_rows(Some(&latency(12.1)), Some(&bare))[0].verdict,
            Verdict::Miss
        );
    }
}
