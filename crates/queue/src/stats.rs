//! What the service reports about itself: job counters and run-time
//! histograms added up across workers, the workers seen recently and their
//! busy slots, and the queue's length. `GET /stats` and `GET /metrics` read
//! it through [`Queue::stats`](crate::Queue::stats).
//!
//! Workers do not write a counter per job: each keeps [`Counters`] of what it
//! finished since its last report and sends them with its heartbeat
//! ([`Queue::report_worker`](crate::Queue::report_worker)) every
//! [`REPORT_INTERVAL`], so the cost is one Redis round trip per worker per
//! interval, whatever the job rate. The totals are cumulative, as Prometheus
//! counters must be; a worker that dies loses at most one interval of counts.
//!
//! Counter names are `kind|language|detail` strings so both backends can keep
//! them in one flat map (a Redis hash); [`Counters`] is the only code that
//! writes or reads those names.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Verdict;

/// How often a worker reports its slots and counters.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(2);

/// A worker not heard from for this long is no longer counted as live.
pub const WORKER_LIVENESS: Duration = Duration::from_secs(10);

/// Upper bounds, in milliseconds, of the buckets of both time histograms
/// (run time and time spent queued); a last `+Inf` bucket is implied.
pub const TIME_BUCKETS_MS: [u64; 13] = [
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000,
];

/// The two time histograms kept per language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeHistogram {
    /// Wall time of the run step (the program itself, not its compiler).
    Run,
    /// From submission to the start of the job on a worker.
    QueueWait,
}

impl TimeHistogram {
    fn key(self) -> &'static str {
        match self {
            Self::Run => "run_ms",
            Self::QueueWait => "wait_ms",
        }
    }
}

/// One histogram's data: non-cumulative counts per bucket (the last one is
/// `+Inf`), the sum of all observations and their number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistogramData {
    pub buckets: [u64; TIME_BUCKETS_MS.len() + 1],
    pub sum_ms: u64,
    pub count: u64,
}

/// Named counts, added together across reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Counters(BTreeMap<String, u64>);

impl Counters {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Counts one finished job.
    pub fn record_job(&mut self, language: &str, verdict: Verdict, run_ms: u64, waited_ms: u64) {
        self.add(format!("jobs|{language}|{}", verdict.as_str()), 1);
        self.observe(TimeHistogram::Run, language, run_ms);
        self.observe(TimeHistogram::QueueWait, language, waited_ms);
    }

    fn observe(&mut self, histogram: TimeHistogram, language: &str, ms: u64) {
        let key = histogram.key();
        let bucket = TIME_BUCKETS_MS
            .iter()
            .position(|&bound| ms <= bound)
            .unwrap_or(TIME_BUCKETS_MS.len());
        self.add(format!("{key}|{language}|{bucket}"), 1);
        self.add(format!("{key}|{language}|sum"), ms);
    }

    /// Adds `n` to the counter `name`.
    pub fn add(&mut self, name: String, n: u64) {
        if n > 0 {
            let slot = self.0.entry(name).or_default();
            *slot = slot.saturating_add(n);
        }
    }

    /// Adds every counter of `other` to this one.
    pub fn merge(&mut self, other: &Counters) {
        for (name, &n) in &other.0 {
            self.add(name.clone(), n);
        }
    }

    /// Every counter by its stored name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.0.iter().map(|(name, &n)| (name.as_str(), n))
    }

    /// Jobs finished, by `(language, verdict)`.
    pub fn jobs(&self) -> BTreeMap<(&str, &str), u64> {
        self.iter()
            .filter_map(|(name, n)| {
                let rest = name.strip_prefix("jobs|")?;
                let (language, verdict) = rest.rsplit_once('|')?;
                Some(((language, verdict), n))
            })
            .collect()
    }

    /// One histogram per language.
    pub fn histograms(&self, histogram: TimeHistogram) -> BTreeMap<&str, HistogramData> {
        let prefix = histogram.key();
        let mut by_language: BTreeMap<&str, HistogramData> = BTreeMap::new();
        for (name, n) in self.iter() {
            let Some(rest) = name
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix('|'))
            else {
                continue;
            };
            let Some((language, which)) = rest.rsplit_once('|') else {
                continue;
            };
            let data = by_language.entry(language).or_default();
            if which == "sum" {
                data.sum_ms = data.sum_ms.saturating_add(n);
            } else if let Some(bucket) = which
                .parse::<usize>()
                .ok()
                .and_then(|i| data.buckets.get_mut(i))
            {
                *bucket = bucket.saturating_add(n);
                data.count = data.count.saturating_add(n);
            }
        }
        by_language
    }
}

/// A worker's heartbeat: its slots now, and what it finished since the last one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerReport {
    /// The worker's consumer name (unique per process).
    pub worker: String,
    pub slots: u32,
    pub busy: u32,
    /// Counts since the previous report, added to the totals.
    pub counters: Counters,
    /// When the report was made, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The worker is stopping: add its last counts and forget it.
    pub stopping: bool,
}

/// A live worker as last reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerStatus {
    pub worker: String,
    pub slots: u32,
    pub busy: u32,
    pub seen_at_ms: u64,
}

/// A snapshot of the whole service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Jobs waiting for a worker.
    pub queued: u64,
    /// Jobs handed to a worker and not finished yet (including any held by a
    /// worker that died and not yet reclaimed).
    pub running: u64,
    /// Workers heard from within [`WORKER_LIVENESS`].
    pub workers: Vec<WorkerStatus>,
    /// Cumulative counters of every worker since Redis (or the process, for
    /// the embedded queue) started.
    pub totals: Counters,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_round_trip_through_their_names() {
        let mut c = Counters::default();
        c.record_job("python", Verdict::Ok, 7, 0);
        c.record_job("python", Verdict::TimeLimit, 2_000, 30);
        c.record_job("c++ 17|x", Verdict::Ok, 100_000, 1);
        let mut total = Counters::default();
        total.merge(&c);
        total.merge(&c);
        let jobs = total.jobs();
        assert_eq!(jobs[&("python", "ok")], 2);
        assert_eq!(jobs[&("python", "time_limit")], 2);
        assert_eq!(jobs[&("c++ 17|x", "ok")], 2);
        let run = total.histograms(TimeHistogram::Run);
        let python = &run["python"];
        assert_eq!(python.count, 4);
        assert_eq!(python.sum_ms, 2 * 2_007);
        assert_eq!(python.buckets[1], 2, "7 ms is in the 10 ms bucket");
        assert_eq!(python.buckets[8], 2, "2 s is in the 2.5 s bucket");
        assert_eq!(run["c++ 17|x"].buckets[TIME_BUCKETS_MS.len()], 2, "+Inf");
        let wait = total.histograms(TimeHistogram::QueueWait);
        assert_eq!(wait["python"].buckets[0], 2, "0 ms is in the first bucket");
    }
}
