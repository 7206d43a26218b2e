//! The in-process backend: the [`Queue`] semantics of the Redis backend without
//! Redis, so `code-runner serve` runs with nothing else installed.
//!
//! Jobs wait in a FIFO and waiting consumers are woken through a
//! [`Notify`]; task states live in a map with an expiry time each. Because the
//! TTL is the same for every write, expiry times grow in write order, so a
//! second FIFO of `(expires_at, id)` lets every write purge what has expired
//! in amortised O(1) instead of scanning the map. Locks are `std` mutexes held
//! for a few pointer moves and never across an `.await`.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::{Delivery, Job, JobResult, Queue, QueueError, TaskId, TaskState};

/// An in-process queue and state store. Cloning is cheap and every clone
/// shares the same queue.
#[derive(Clone, Debug)]
pub struct EmbeddedQueue {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// How long a state (pending or final) is kept after its last write.
    result_ttl: Duration,
    jobs: Mutex<VecDeque<Delivery>>,
    /// Woken on every submit, so a waiting `reserve` does not poll.
    job_added: Notify,
    states: Mutex<States>,
    /// Source of unique delivery receipts.
    next_receipt: AtomicU64,
}

#[derive(Debug, Default)]
struct States {
    by_id: HashMap<TaskId, Stored>,
    /// Every write's expiry in write order (hence in time order); an entry is
    /// stale when the task was written again later, which `purge` detects by
    /// comparing with the map's expiry.
    expiries: VecDeque<(Instant, TaskId)>,
}

#[derive(Debug)]
struct Stored {
    state: TaskState,
    expires_at: Instant,
}

impl EmbeddedQueue {
    /// An empty queue whose task states expire `result_ttl` after their last write.
    pub fn new(result_ttl: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                result_ttl,
                jobs: Mutex::new(VecDeque::new()),
                job_added: Notify::new(),
                states: Mutex::new(States::default()),
                next_receipt: AtomicU64::new(1),
            }),
        }
    }

    /// Takes up to `max` queued jobs without waiting.
    fn take(&self, max: usize) -> Vec<Delivery> {
        let mut jobs = lock(&self.inner.jobs);
        let n = max.min(jobs.len());
        let taken: Vec<Delivery> = jobs.drain(..n).collect();
        let more_left = !jobs.is_empty();
        drop(jobs);
        if more_left && !taken.is_empty() {
            // Pass the wake-up on: the submit that woke us may have been meant
            // for a job we left, and another consumer may be waiting for it.
            self.inner.job_added.notify_one();
        }
        taken
    }
}

impl Inner {
    fn expires_at(&self, now: Instant) -> Instant {
        // A TTL too large to represent means "never" in practice; clamp to a
        // century instead of panicking on overflow.
        now.checked_add(self.result_ttl)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
    }
}

impl States {
    /// Drops every state whose expiry has passed.
    fn purge(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.expiries.front() {
            if at > now {
                break;
            }
            self.expiries.pop_front();
            if let Entry::Occupied(e) = self.by_id.entry(id) {
                // Only when this expiry is the latest write's; otherwise the
                // task was rewritten and a later queue entry covers it.
                if e.get().expires_at <= now {
                    e.remove();
                }
            }
        }
    }

    fn put(&mut self, id: TaskId, state: TaskState, expires_at: Instant) {
        self.by_id.insert(id, Stored { state, expires_at });
        self.expiries.push_back((expires_at, id));
    }
}

/// Locks a mutex, recovering the data if a thread panicked while holding it:
/// every critical section here leaves the data consistent, so the poison flag
/// carries no information worth failing a request for.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[async_trait]
impl Queue for EmbeddedQueue {
    /// Like the Redis backend, a task id that is already known is not queued
    /// again, so a retried submit cannot run a job twice.
    async fn submit(&self, job: &Job) -> Result<(), QueueError> {
        let now = Instant::now();
        {
            let mut states = lock(&self.inner.states);
            states.purge(now);
            if states.by_id.contains_key(&job.id) {
                return Ok(());
            }
            states.put(job.id, TaskState::Pending, self.inner.expires_at(now));
            // The job is queued while the state lock is still held, so no
            // reader can see the pending state of a job that is not queued yet
            // and a concurrent submit of the same id cannot queue it twice.
            let receipt = self
                .inner
                .next_receipt
                .fetch_add(1, Ordering::Relaxed)
                .to_string();
            lock(&self.inner.jobs).push_back(Delivery {
                job: job.clone(),
                receipt,
            });
        }
        self.inner.job_added.notify_one();
        Ok(())
    }

    async fn state(&self, id: &TaskId) -> Result<Option<TaskState>, QueueError> {
        let now = Instant::now();
        let states = lock(&self.inner.states);
        // Checked here rather than purged, so reads stay cheap; writes purge.
        Ok(states
            .by_id
            .get(id)
            .filter(|s| s.expires_at > now)
            .map(|s| s.state.clone()))
    }

    async fn reserve(
        &self,
        _consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let deadline = Instant::now() + wait;
        loop {
            // Register for a wake-up before looking, so a submit that lands
            // between the look and the wait is not missed.
            let notified = self.inner.job_added.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();

            let taken = self.take(max);
            if !taken.is_empty() {
                return Ok(taken);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            if tokio::time::timeout(deadline - now, notified)
                .await
                .is_err()
            {
                // One last look: a job may have arrived just as time ran out.
                return Ok(self.take(max));
            }
        }
    }

    async fn complete(&self, delivery: &Delivery, result: &JobResult) -> Result<(), QueueError> {
        let now = Instant::now();
        let mut states = lock(&self.inner.states);
        states.purge(now);
        let id = delivery.job.id;
        if let Some(Stored {
            state: TaskState::Done(_),
            ..
        }) = states.by_id.get(&id)
        {
            tracing::debug!(task_id = %id, "task already has a final result; later one ignored");
            return Ok(());
        }
        // Written even when the pending state has expired: a late result is
        // still worth keeping for a client that asks again.
        states.put(
            id,
            TaskState::Done(result.clone()),
            self.inner.expires_at(now),
        );
        Ok(())
    }

    async fn ping(&self) -> Result<(), QueueError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        Job {
            id: TaskId::new(),
            language: "python".into(),
            code: "print(1)".into(),
            stdin: String::new(),
            submitted_at_ms: 0,
        }
    }

    #[test]
    fn purge_keeps_rewritten_states_until_their_latest_expiry() {
        let mut states = States::default();
        let id = TaskId::new();
        let t0 = Instant::now();
        states.put(id, TaskState::Pending, t0 + Duration::from_secs(1));
        let done = TaskState::Done(JobResult::internal_error("x", 0));
        states.put(id, done.clone(), t0 + Duration::from_secs(3));

        states.purge(t0 + Duration::from_secs(2));
        assert_eq!(states.by_id.get(&id).map(|s| &s.state), Some(&done));
        assert_eq!(states.expiries.len(), 1);

        states.purge(t0 + Duration::from_secs(3));
        assert!(states.by_id.is_empty());
        assert!(states.expiries.is_empty());
    }

    #[tokio::test]
    async fn resubmitting_a_known_id_does_not_queue_it_twice() {
        let q = EmbeddedQueue::new(Duration::from_secs(60));
        let j = job();
        q.submit(&j).await.unwrap();
        q.submit(&j).await.unwrap();
        let got = q.reserve("c", 10, Duration::from_millis(1)).await.unwrap();
        assert_eq!(got.len(), 1);
    }

    #[tokio::test]
    async fn waiting_reserve_is_woken_by_submit() {
        let q = EmbeddedQueue::new(Duration::from_secs(60));
        let waiter = {
            let q = q.clone();
            tokio::spawn(async move { q.reserve("c", 1, Duration::from_secs(30)).await })
        };
        tokio::task::yield_now().await;
        let j = job();
        q.submit(&j).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("reserve was not woken")
            .unwrap()
            .unwrap();
        assert_eq!(got[0].job, j);
    }
}
