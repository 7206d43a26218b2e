//! The in-process side of watching tasks and the service, mirroring the
//! Redis backend's `observe` module: waiters woken by a [`Notify`] per task
//! (one shared by every waiter of that task), running marks, worker
//! heartbeats and cumulative counters.
//!
//! The queue calls [`Observe::finished`] wherever a task gets its final
//! state; that is all the backend has to do for waiters to wake.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;

use super::lock;
use crate::judge::TestResult;
use crate::stats::{Counters, QueueStats, WorkerReport, WorkerStatus, WORKER_LIVENESS};
use crate::TaskId;

#[derive(Debug, Default)]
pub(super) struct Observe {
    /// Tasks with at least one waiter: the notification and how many wait.
    waiters: Mutex<HashMap<TaskId, (Arc<Notify>, usize)>>,
    /// Started and not yet finished jobs: when they started.
    running: Mutex<HashMap<TaskId, u64>>,
    /// Judge mode: the tests a running job finished so far.
    progress: Mutex<HashMap<TaskId, Vec<TestResult>>>,
    workers: Mutex<HashMap<String, WorkerStatus>>,
    totals: Mutex<Counters>,
}

/// A waiter's registration; unregisters when dropped.
pub(super) struct Watch<'a> {
    observe: &'a Observe,
    id: TaskId,
    pub(super) notify: Arc<Notify>,
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        let mut waiters = lock(&self.observe.waiters);
        if let Some((_, count)) = waiters.get_mut(&self.id) {
            *count -= 1;
            if *count == 0 {
                waiters.remove(&self.id);
            }
        }
    }
}

impl Observe {
    pub(super) fn watch(&self, id: TaskId) -> Watch<'_> {
        let mut waiters = lock(&self.waiters);
        let (notify, count) = waiters
            .entry(id)
            .or_insert_with(|| (Arc::new(Notify::new()), 0));
        *count += 1;
        Watch {
            observe: self,
            id,
            notify: notify.clone(),
        }
    }

    /// The task has its final state: wake its waiters, drop its running mark.
    pub(super) fn finished(&self, id: &TaskId) {
        lock(&self.running).remove(id);
        lock(&self.progress).remove(id);
        if let Some((notify, _)) = lock(&self.waiters).get(id) {
            notify.notify_waiters();
        }
    }

    pub(super) fn mark_running(&self, id: TaskId, at_ms: u64) {
        lock(&self.running).insert(id, at_ms);
    }

    pub(super) fn running_since(&self, id: &TaskId) -> Option<u64> {
        lock(&self.running).get(id).copied()
    }

    /// Keeps the progress of a task that is running (not of one finished
    /// or never started, so nothing outlives its task); empty forgets it.
    pub(super) fn set_progress(&self, id: TaskId, tests: &[TestResult]) {
        let running = lock(&self.running).contains_key(&id);
        let mut progress = lock(&self.progress);
        if tests.is_empty() || !running {
            progress.remove(&id);
        } else {
            progress.insert(id, tests.to_vec());
        }
    }

    pub(super) fn progress(&self, id: &TaskId) -> Option<Vec<TestResult>> {
        lock(&self.progress).get(id).cloned()
    }

    pub(super) fn report(&self, report: &WorkerReport) {
        lock(&self.totals).merge(&report.counters);
        let mut workers = lock(&self.workers);
        if report.stopping {
            workers.remove(&report.worker);
        } else {
            workers.insert(
                report.worker.clone(),
                WorkerStatus {
                    worker: report.worker.clone(),
                    slots: report.slots,
                    busy: report.busy,
                    seen_at_ms: report.at_ms,
                },
            );
        }
    }

    pub(super) fn stats(&self, queued: u64) -> QueueStats {
        let live_since = now_ms().saturating_sub(duration_ms(WORKER_LIVENESS));
        let mut workers: Vec<WorkerStatus> = lock(&self.workers)
            .values()
            .filter(|w| w.seen_at_ms >= live_since)
            .cloned()
            .collect();
        workers.sort_by(|a, b| a.worker.cmp(&b.worker));
        QueueStats {
            queued,
            running: lock(&self.running).len() as u64,
            workers,
            totals: lock(&self.totals).clone(),
        }
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, duration_ms)
}
