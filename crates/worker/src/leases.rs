//! The deliveries a worker holds while their jobs run, and what happens to
//! them when a job must stop before it ends.
//!
//! Every running job has a [`Lease`]: its delivery and the handle that aborts
//! its task. Aborting drops the job's future, and with it the sandbox's
//! `execute` future, which kills the sandbox (the child is `kill_on_drop`;
//! cgroups and the scratch mount are owned by guards that clean up on drop).
//! Two things stop a job early:
//!
//! - its task got a final state elsewhere: cancelled through the API, or
//!   finished by another delivery. [`watch_settled`] asks the queue every
//!   `cancel_check` and stops those jobs; their delivery is then completed
//!   (the stored final state wins, so this only acknowledges it).
//! - the worker is shutting down and the grace period ran out:
//!   [`Leases::abandon_all`] stops every job left and releases its delivery,
//!   so another worker takes it at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use code_runner_queue::{Delivery, JobResult, Queue, TaskId};
use tokio::task::AbortHandle;

use crate::error_chain;

/// A running job's delivery and the handle that stops it.
#[derive(Debug)]
pub(crate) struct Lease {
    pub(crate) delivery: Delivery,
    pub(crate) abort: AbortHandle,
}

/// The running jobs of one worker, by a worker-local number (the same task
/// can, rarely, be delivered to one worker twice).
#[derive(Debug, Default)]
pub(crate) struct Leases {
    inner: Mutex<LeaseTable>,
}

#[derive(Debug, Default)]
pub(crate) struct LeaseTable {
    next: u64,
    by_number: HashMap<u64, Lease>,
}

impl LeaseTable {
    /// A number for a job about to be spawned, for [`LeaseTable::fill`] and
    /// [`Leases::remove`].
    pub(crate) fn insert_pending(&mut self) -> u64 {
        let number = self.next;
        self.next += 1;
        number
    }

    /// Records the lease of the job spawned under `number`.
    pub(crate) fn fill(&mut self, number: u64, lease: Lease) {
        self.by_number.insert(number, lease);
    }
}

impl Leases {
    /// Locked while a job is spawned and its lease recorded, so the job
    /// cannot finish (and remove its lease) before the lease exists.
    pub(crate) fn lock(&self) -> MutexGuard<'_, LeaseTable> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called by a job when it is done with its delivery.
    pub(crate) fn remove(&self, number: u64) {
        self.lock().by_number.remove(&number);
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().by_number.len()
    }

    fn running_tasks(&self) -> Vec<TaskId> {
        self.lock()
            .by_number
            .values()
            .map(|l| l.delivery.job.id)
            .collect()
    }

    /// Stops the jobs of `settled` tasks and returns their deliveries.
    fn stop_tasks(&self, settled: &[TaskId]) -> Vec<Delivery> {
        let mut table = self.lock();
        let numbers: Vec<u64> = table
            .by_number
            .iter()
            .filter(|(_, l)| settled.contains(&l.delivery.job.id))
            .map(|(&n, _)| n)
            .collect();
        numbers
            .into_iter()
            .filter_map(|n| table.by_number.remove(&n))
            .map(|lease| {
                lease.abort.abort();
                lease.delivery
            })
            .collect()
    }

    /// Stops every job still running and releases its delivery, so another
    /// worker takes it at once. A release that fails (Redis down) leaves the
    /// delivery to be reclaimed after the visibility timeout instead.
    pub(crate) async fn abandon_all(&self, queue: &dyn Queue) -> usize {
        let abandoned: Vec<Lease> = self.lock().by_number.drain().map(|(_, l)| l).collect();
        for lease in &abandoned {
            lease.abort.abort();
        }
        for lease in &abandoned {
            let id = lease.delivery.job.id;
            match queue.release(&lease.delivery).await {
                Ok(()) => {
                    tracing::warn!(task_id = %id, "job not finished within the shutdown grace period; released for another worker")
                }
                Err(e) => tracing::error!(
                    task_id = %id,
                    error = %error_chain(&e),
                    "cannot release an unfinished job; it is redelivered after the visibility timeout"
                ),
            }
        }
        abandoned.len()
    }
}

/// Every `every`, asks the queue which running tasks are already final and
/// stops their jobs. Runs until aborted.
pub(crate) async fn watch_settled(leases: Arc<Leases>, queue: Arc<dyn Queue>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let running = leases.running_tasks();
        if running.is_empty() {
            continue;
        }
        let settled = match queue.settled(&running).await {
            Ok(settled) => settled,
            Err(e) => {
                tracing::debug!(error = %error_chain(&e), "cannot check for cancelled jobs");
                continue;
            }
        };
        if settled.is_empty() {
            continue;
        }
        for delivery in leases.stop_tasks(&settled) {
            let id = delivery.job.id;
            tracing::info!(task_id = %id, "job cancelled (or finished elsewhere); stopped it");
            // The stored final state is kept; this acknowledges the delivery.
            let ack = JobResult::cancelled(crate::now_ms());
            if let Err(e) = queue.complete(&delivery, &ack).await {
                tracing::warn!(task_id = %id, error = %error_chain(&e), "cannot acknowledge a stopped job; it is retired when redelivered");
            }
        }
    }
}
