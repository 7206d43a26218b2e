//! The worker's heartbeat: every [`REPORT_INTERVAL`] it tells the queue how
//! many of its slots are busy and what it finished since the last beat, so
//! the API's `/stats` and `/metrics` can show live workers, busy and idle
//! slots, jobs by language and verdict and run-time histograms without a
//! Redis write per job.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use code_runner_queue::stats::{Counters, WorkerReport, REPORT_INTERVAL};
use code_runner_queue::{JobResult, Queue};

/// Counts of finished jobs not yet reported; shared with the job tasks.
#[derive(Debug, Default)]
pub(crate) struct Tally(Mutex<Counters>);

impl Tally {
    /// Counts a finished job: its verdict, run time and time spent queued.
    pub(crate) fn record(&self, result: &JobResult) {
        let waited = result.started_at_ms.saturating_sub(result.submitted_at_ms);
        let waited = if result.submitted_at_ms == 0 {
            0
        } else {
            waited
        };
        self.0.lock().unwrap_or_else(|p| p.into_inner()).record_job(
            &result.language,
            result.verdict,
            result.wall_time_ms,
            waited,
        );
    }

    fn take(&self) -> Counters {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Puts back counts a failed report could not deliver.
    fn restore(&self, counters: &Counters) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .merge(counters);
    }
}

/// What the heartbeat needs to know about its worker.
pub(crate) struct Beat {
    pub(crate) queue: Arc<dyn Queue>,
    pub(crate) tally: Arc<Tally>,
    /// The running jobs: their number is the busy slots. (Not the free
    /// permits: the loop holds one while it waits for work.)
    pub(crate) leases: Arc<crate::leases::Leases>,
    pub(crate) concurrency: usize,
    pub(crate) worker: String,
}

impl Beat {
    /// Sends one report; `stopping` makes it the last one.
    pub(crate) async fn send(&self, stopping: bool) {
        let counters = self.tally.take();
        let busy = self.leases.len().min(self.concurrency);
        let report = WorkerReport {
            worker: self.worker.clone(),
            slots: u32::try_from(self.concurrency).unwrap_or(u32::MAX),
            busy: u32::try_from(busy).unwrap_or(u32::MAX),
            counters,
            at_ms: crate::now_ms(),
            stopping,
        };
        if let Err(e) = self.queue.report_worker(&report).await {
            tracing::debug!(error = %crate::error_chain(&e), "cannot send the worker report; keeping its counts for the next");
            self.tally.restore(&report.counters);
        }
    }

    /// Reports every interval until the task is aborted.
    pub(crate) async fn run(self) {
        let mut interval = tokio::time::interval(REPORT_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            self.send(false).await;
        }
    }
}

/// How long the last report at shutdown may take.
pub(crate) const LAST_REPORT_TIMEOUT: Duration = Duration::from_secs(2);
