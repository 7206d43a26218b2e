//! The in-process backend: the [`Queue`] semantics of the Redis backend without
//! Redis, so `code-runner serve` runs with nothing else installed.
//!
//! Jobs wait in a FIFO and waiting consumers are woken through a
//! [`Notify`]; a delivered job moves to an in-flight map (the Redis group's
//! pending list) until it is completed, so a delivery that times out can be
//! reclaimed like on Redis. Task states live in a map with an expiry time
//! each. Because the TTL is the same for every write, expiry times grow in
//! write order, so a second FIFO of `(expires_at, id)` lets every write purge
//! what has expired in amortised O(1) instead of scanning the map. Locks are
//! `std` mutexes held for a few pointer moves and never across an `.await`;
//! when both are needed, `states` is taken before `jobs`.
//!
//! Memory has a budget ([`EmbeddedConfig::max_bytes`]): the unfinished jobs
//! and the stored states are counted in bytes (their strings plus
//! [`RECORD_OVERHEAD_BYTES`] each). A write that would go over it first
//! evicts finished results, oldest finished first, from a third FIFO kept in
//! the order they finished; an evicted task is unknown from then on (the API
//! answers `404`). Only when the unfinished jobs alone fill the budget is a
//! submit refused ([`QueueError::Full`]); a result is always stored, so the
//! budget can be overrun by at most the results of the jobs running at that
//! moment, until the next write evicts.
//!
//! Fair share: a pending task remembers the client it counts against, and a
//! map holds each such client's number of pending tasks, decremented when the
//! task gets its final state or expires.

mod live;
mod observe;

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::{
    may_see, Cancelled, ClientQuota, Delivery, Job, JobResult, Queue, QueueError, Redelivery,
    TaskId, TaskState, RECORD_OVERHEAD_BYTES,
};

/// How an [`EmbeddedQueue`] is bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbeddedConfig {
    /// How long a state (pending or final) is kept after its last write.
    pub result_ttl: Duration,
    /// Most unfinished jobs (queued + in flight); `None`: no limit.
    pub max_queue_length: Option<u64>,
    /// Most bytes of unfinished jobs and stored states together (see the
    /// module documentation); `None`: no limit.
    pub max_bytes: Option<u64>,
}

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
    /// Most unfinished jobs (queued + in flight); `None`: no limit.
    max_queue_length: Option<u64>,
    /// See [`EmbeddedConfig::max_bytes`].
    max_bytes: Option<u64>,
    jobs: Mutex<Jobs>,
    /// Woken on every submit, so a waiting `reserve` does not poll.
    job_added: Notify,
    states: Mutex<States>,
    /// Source of unique delivery receipts.
    next_receipt: AtomicU64,
    /// Result waiters, running marks, worker reports, counters.
    observe: observe::Observe,
    /// Test sets by id: their JSON, number of tests and expiry.
    testsets: Mutex<HashMap<String, StoredTestSet>>,
    /// Live runs' output and input logs.
    live: live::LiveLogs,
    /// How long live logs are kept once their task's result is stored.
    live_after_result: Duration,
}

#[derive(Debug)]
struct StoredTestSet {
    json: Arc<str>,
    tests: usize,
    expires_at: Instant,
}

/// Every unfinished job: waiting, or delivered and not yet acknowledged.
#[derive(Debug, Default)]
struct Jobs {
    queued: VecDeque<Delivery>,
    /// By receipt number, i.e. in submission order, like a pending list.
    in_flight: BTreeMap<u64, InFlight>,
    /// [`Job::size_bytes`] of every job in `queued` and `in_flight`.
    bytes: u64,
}

impl Jobs {
    /// Forgets a job that left `queued` or `in_flight` for good.
    fn dropped(&mut self, job: &Job) {
        self.bytes = self.bytes.saturating_sub(job.size_bytes());
    }
}

#[derive(Debug)]
struct InFlight {
    delivery: Delivery,
    /// When it was (last) delivered; `None` once released, i.e. reclaimable now.
    since: Option<Instant>,
}

#[derive(Debug, Default)]
struct States {
    by_id: HashMap<TaskId, Stored>,
    /// Every write's expiry in write order (hence in time order); an entry is
    /// stale when the task was written again later, which `purge` detects by
    /// comparing with the map's expiry.
    expiries: VecDeque<(Instant, TaskId)>,
    /// Final states in the order they were written, for eviction; an entry
    /// is stale when its task is gone or was written again (another `seq`).
    finished: VecDeque<(u64, TaskId)>,
    /// Numbers every write, so stale `finished` entries can be told apart.
    next_seq: u64,
    /// The bytes of every state in `by_id` (see [`Stored::bytes`]).
    bytes: u64,
    /// Pending tasks per client, for the clients that have a quota.
    unfinished: HashMap<String, u64>,
}

#[derive(Debug)]
struct Stored {
    state: TaskState,
    expires_at: Instant,
    /// See [`Job::owner`].
    owner: Option<String>,
    /// The client a pending task counts against; `None` once final.
    client: Option<String>,
    /// What the state costs in the budget.
    bytes: u64,
    seq: u64,
}

impl Stored {
    fn new(state: TaskState, expires_at: Instant, owner: Option<String>) -> Self {
        let result = match &state {
            TaskState::Pending => RECORD_OVERHEAD_BYTES,
            TaskState::Done(result) => result.size_bytes(),
        };
        let bytes = result + owner.as_ref().map_or(0, |o| o.len() as u64);
        Self {
            state,
            expires_at,
            owner,
            client: None,
            bytes,
            seq: 0,
        }
    }
}

impl EmbeddedQueue {
    /// An empty queue whose task states expire `result_ttl` after their last
    /// write, with no limit on its length.
    pub fn new(result_ttl: Duration) -> Self {
        Self::with_max_queue_length(result_ttl, None)
    }

    /// Like [`EmbeddedQueue::new`]; a submit beyond `max_queue_length`
    /// unfinished jobs fails with [`QueueError::Full`].
    pub fn with_max_queue_length(result_ttl: Duration, max_queue_length: Option<u64>) -> Self {
        Self::with_config(EmbeddedConfig {
            result_ttl,
            max_queue_length,
            max_bytes: None,
        })
    }

    /// A queue bounded as `config` says.
    pub fn with_config(config: EmbeddedConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                result_ttl: config.result_ttl,
                max_queue_length: config.max_queue_length,
                max_bytes: config.max_bytes,
                jobs: Mutex::new(Jobs::default()),
                job_added: Notify::new(),
                states: Mutex::new(States::default()),
                next_receipt: AtomicU64::new(1),
                observe: observe::Observe::default(),
                testsets: Mutex::new(HashMap::new()),
                live: live::LiveLogs::default(),
                live_after_result: crate::live::LIVE_AFTER_RESULT,
            }),
        }
    }

    /// Takes up to `max` queued jobs without waiting. Jobs whose task is
    /// already final (cancelled while queued) are dropped, never delivered.
    fn take(&self, max: usize) -> Vec<Delivery> {
        let now = Instant::now();
        let states = lock(&self.inner.states);
        let mut jobs = lock(&self.inner.jobs);
        let mut taken = Vec::new();
        while taken.len() < max {
            let Some(delivery) = jobs.queued.pop_front() else {
                break;
            };
            if states.is_final(&delivery.job.id, now) {
                tracing::debug!(task_id = %delivery.job.id, "task already final; not running it");
                jobs.dropped(&delivery.job);
                continue;
            }
            jobs.in_flight.insert(
                receipt_number(&delivery.receipt),
                InFlight {
                    delivery: delivery.clone(),
                    since: Some(now),
                },
            );
            taken.push(delivery);
        }
        let more_left = !jobs.queued.is_empty();
        drop(jobs);
        drop(states);
        if more_left && !taken.is_empty() {
            // Pass the wake-up on: the submit that woke us may have been meant
            // for a job we left, and another consumer may be waiting for it.
            self.inner.job_added.notify_one();
        }
        taken
    }
}

/// Receipts are decimal numbers made by `next_receipt`; anything else (a
/// receipt from another backend) matches no delivery.
fn receipt_number(receipt: &str) -> u64 {
    receipt.parse().unwrap_or(0)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
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
            // Only when this expiry is the latest write's; otherwise the
            // task was rewritten and a later queue entry covers it.
            if self.by_id.get(&id).is_some_and(|s| s.expires_at <= now) {
                self.remove(&id);
            }
        }
    }

    /// Stores a state, replacing the task's earlier one.
    fn put(&mut self, id: TaskId, mut stored: Stored) {
        self.remove(&id);
        self.next_seq += 1;
        stored.seq = self.next_seq;
        self.bytes += stored.bytes;
        if let Some(client) = &stored.client {
            *self.unfinished.entry(client.clone()).or_default() += 1;
        }
        if matches!(stored.state, TaskState::Done(_)) {
            self.finished.push_back((stored.seq, id));
        }
        self.expiries.push_back((stored.expires_at, id));
        self.by_id.insert(id, stored);
    }

    /// Forgets a task's state, and its client's count if it was pending.
    fn remove(&mut self, id: &TaskId) {
        let Some(stored) = self.by_id.remove(id) else {
            return;
        };
        self.bytes = self.bytes.saturating_sub(stored.bytes);
        if let Some(client) = stored.client {
            if let Entry::Occupied(mut count) = self.unfinished.entry(client) {
                *count.get_mut() -= 1;
                if *count.get() == 0 {
                    count.remove();
                }
            }
        }
    }

    /// The live (unexpired) record of a task.
    fn stored(&self, id: &TaskId, now: Instant) -> Option<&Stored> {
        self.by_id.get(id).filter(|s| s.expires_at > now)
    }

    /// The live state of a task, if `owner` may see it.
    fn get(&self, id: &TaskId, owner: Option<&str>, now: Instant) -> Option<&TaskState> {
        self.stored(id, now)
            .filter(|s| may_see(s.owner.as_deref(), owner))
            .map(|s| &s.state)
    }

    fn is_final(&self, id: &TaskId, now: Instant) -> bool {
        matches!(self.get(id, None, now), Some(TaskState::Done(_)))
    }

    /// Stores a final state unless the task has one: the first one wins.
    /// Returns false when an earlier final state was kept. The owner stays
    /// the pending state's (or, should that have expired, `owner`).
    fn finish(
        &mut self,
        id: TaskId,
        result: &JobResult,
        owner: Option<&str>,
        now: Instant,
        expires_at: Instant,
    ) -> bool {
        if self.is_final(&id, now) {
            return false;
        }
        let owner = self
            .stored(&id, now)
            .map_or(owner, |s| s.owner.as_deref())
            .map(str::to_owned);
        // Written even when the pending state has expired: a late result is
        // still worth keeping for a client that asks again.
        let stored = Stored::new(TaskState::Done(result.clone()), expires_at, owner);
        self.put(id, stored);
        true
    }

    /// Evicts finished states, oldest first, until `self.bytes + others`
    /// fits in `budget`, sparing `keep` (the state just written). Returns
    /// whether it fits.
    fn evict(&mut self, budget: u64, others: u64, keep: Option<&TaskId>) -> bool {
        while self.bytes + others > budget {
            let Some(&(seq, id)) = self.finished.front() else {
                return false;
            };
            if Some(&id) == keep {
                return false;
            }
            self.finished.pop_front();
            if self.by_id.get(&id).is_some_and(|s| s.seq == seq) {
                tracing::debug!(task_id = %id, "result evicted: the store is at its byte budget");
                self.remove(&id);
            }
        }
        true
    }
}

/// Locks a mutex, recovering the data if a thread panicked while holding it:
/// every critical section here leaves the data consistent, so the poison flag
/// carries no information worth failing a request for.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Inner {
    /// After a final state was written: evicts older results while the
    /// store is over its budget.
    fn evict_after_write(&self, states: &mut States, jobs: &Jobs, written: &TaskId) {
        self.live.settle(written, self.live_after_result);
        if let Some(budget) = self.max_bytes {
            states.evict(budget, jobs.bytes + self.live.bytes(), Some(written));
        }
    }
}

impl EmbeddedQueue {
    /// A live test set, its expiry moved to `ttl` from now when given; the
    /// expired ones are dropped on the way.
    fn live_testset<T>(
        &self,
        id: &str,
        ttl: Option<Duration>,
        read: impl FnOnce(&StoredTestSet) -> T,
    ) -> Option<T> {
        let now = Instant::now();
        let mut sets = lock(&self.inner.testsets);
        sets.retain(|_, set| set.expires_at > now);
        let set = sets.get_mut(id)?;
        if let Some(ttl) = ttl {
            set.expires_at = now + ttl;
        }
        Some(read(set))
    }
}

#[async_trait]
impl Queue for EmbeddedQueue {
    async fn store_testset(
        &self,
        id: &str,
        json: &str,
        tests: usize,
        ttl: Duration,
    ) -> Result<(), QueueError> {
        let now = Instant::now();
        let mut sets = lock(&self.inner.testsets);
        sets.retain(|_, set| set.expires_at > now);
        sets.insert(
            id.to_owned(),
            StoredTestSet {
                json: Arc::from(json),
                tests,
                expires_at: now + ttl,
            },
        );
        Ok(())
    }

    async fn testset_len(&self, id: &str, ttl: Duration) -> Result<Option<usize>, QueueError> {
        Ok(self.live_testset(id, Some(ttl), |set| set.tests))
    }

    async fn testset(&self, id: &str, ttl: Option<Duration>) -> Result<Option<String>, QueueError> {
        Ok(self.live_testset(id, ttl, |set| set.json.to_string()))
    }

    /// Like the Redis backend, a task id that is already known is not queued
    /// again, so a retried submit cannot run a job twice.
    async fn submit_for(
        &self,
        job: &Job,
        quota: Option<ClientQuota<'_>>,
    ) -> Result<(), QueueError> {
        let now = Instant::now();
        {
            let mut states = lock(&self.inner.states);
            states.purge(now);
            if states.by_id.contains_key(&job.id) {
                return Ok(());
            }
            if let Some(quota) = quota {
                let unfinished = states.unfinished.get(quota.client).copied();
                if unfinished.unwrap_or(0) >= quota.max_unfinished {
                    return Err(QueueError::ClientFull {
                        limit: quota.max_unfinished,
                    });
                }
            }
            // The job is queued while the state lock is still held, so no
            // reader can see the pending state of a job that is not queued yet
            // and a concurrent submit of the same id cannot queue it twice.
            let mut jobs = lock(&self.inner.jobs);
            let unfinished = (jobs.queued.len() + jobs.in_flight.len()) as u64;
            if let Some(limit) = self.inner.max_queue_length {
                if unfinished >= limit {
                    return Err(QueueError::Full { limit });
                }
            }
            let mut pending = Stored::new(
                TaskState::Pending,
                self.inner.expires_at(now),
                job.owner.clone(),
            );
            pending.client = quota.map(|q| q.client.to_owned());
            let size = job.size_bytes();
            if let Some(budget) = self.inner.max_bytes {
                let others = jobs.bytes + size + pending.bytes + self.inner.live.bytes();
                if !states.evict(budget, others, None) {
                    tracing::warn!(
                        budget,
                        unfinished,
                        "the in-process queue's unfinished jobs fill its byte budget; refusing a job"
                    );
                    return Err(QueueError::Full { limit: unfinished });
                }
            }
            states.put(job.id, pending);
            jobs.bytes += size;
            let receipt = self
                .inner
                .next_receipt
                .fetch_add(1, Ordering::Relaxed)
                .to_string();
            jobs.queued.push_back(Delivery {
                job: job.clone(),
                receipt,
                attempt: 1,
            });
        }
        self.inner.job_added.notify_one();
        Ok(())
    }

    async fn state_for(
        &self,
        id: &TaskId,
        owner: Option<&str>,
    ) -> Result<Option<TaskState>, QueueError> {
        let now = Instant::now();
        let states = lock(&self.inner.states);
        // Checked here rather than purged, so reads stay cheap; writes purge.
        Ok(states.get(id, owner, now).cloned())
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

    async fn reclaim(
        &self,
        _consumer: &str,
        max: usize,
        policy: &Redelivery,
    ) -> Result<Vec<Delivery>, QueueError> {
        let now = Instant::now();
        let mut states = lock(&self.inner.states);
        states.purge(now);
        let mut jobs = lock(&self.inner.jobs);
        let mut taken = Vec::new();
        let mut retired = Vec::new();
        for (&number, in_flight) in jobs.in_flight.iter_mut() {
            if taken.len() >= max {
                break;
            }
            let timed_out = in_flight
                .since
                .is_none_or(|since| now.duration_since(since) >= policy.visibility_timeout);
            if !timed_out {
                continue;
            }
            let delivery = &mut in_flight.delivery;
            delivery.attempt += 1;
            in_flight.since = Some(now);
            let id = delivery.job.id;
            if states.is_final(&id, now) {
                retired.push(number);
            } else if delivery.attempt > policy.max_deliveries {
                let deliveries = delivery.attempt - 1;
                tracing::warn!(task_id = %id, deliveries, "job's workers died on every delivery; failing it instead of retrying");
                let result = JobResult::delivery_exhausted(deliveries, now_ms());
                let expires_at = self.inner.expires_at(now);
                states.finish(id, &result, delivery.job.owner.as_deref(), now, expires_at);
                self.inner.observe.finished(&id);
                retired.push(number);
            } else {
                tracing::info!(task_id = %id, attempt = delivery.attempt, "reclaimed a job whose delivery timed out");
                taken.push(delivery.clone());
            }
        }
        for number in retired {
            if let Some(in_flight) = jobs.in_flight.remove(&number) {
                jobs.dropped(&in_flight.delivery.job);
                self.inner
                    .evict_after_write(&mut states, &jobs, &in_flight.delivery.job.id);
            }
        }
        Ok(taken)
    }

    async fn complete(&self, delivery: &Delivery, result: &JobResult) -> Result<(), QueueError> {
        let now = Instant::now();
        let mut states = lock(&self.inner.states);
        states.purge(now);
        let id = delivery.job.id;
        let expires_at = self.inner.expires_at(now);
        let owner = delivery.job.owner.as_deref();
        if !states.finish(id, result, owner, now, expires_at) {
            tracing::debug!(task_id = %id, "task already has a final result; later one ignored");
        }
        self.inner.observe.finished(&id);
        let mut jobs = lock(&self.inner.jobs);
        if let Some(in_flight) = jobs.in_flight.remove(&receipt_number(&delivery.receipt)) {
            jobs.dropped(&in_flight.delivery.job);
        }
        self.inner.evict_after_write(&mut states, &jobs, &id);
        Ok(())
    }

    async fn release(&self, delivery: &Delivery) -> Result<(), QueueError> {
        let mut jobs = lock(&self.inner.jobs);
        if let Some(in_flight) = jobs.in_flight.get_mut(&receipt_number(&delivery.receipt)) {
            in_flight.since = None;
            in_flight.delivery.attempt = delivery.attempt.saturating_sub(1);
        }
        Ok(())
    }

    async fn touch(&self, _consumer: &str, delivery: &Delivery) -> Result<bool, QueueError> {
        let mut jobs = lock(&self.inner.jobs);
        match jobs.in_flight.get_mut(&receipt_number(&delivery.receipt)) {
            // Still this delivery's (not released, not reclaimed since).
            Some(in_flight)
                if in_flight.since.is_some() && in_flight.delivery.attempt == delivery.attempt =>
            {
                in_flight.since = Some(Instant::now());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn cancel_for(
        &self,
        id: &TaskId,
        owner: Option<&str>,
        at_ms: u64,
    ) -> Result<Cancelled, QueueError> {
        let now = Instant::now();
        let mut states = lock(&self.inner.states);
        states.purge(now);
        match states.get(id, owner, now) {
            None => Ok(Cancelled::NotFound),
            Some(TaskState::Done(result)) => Ok(Cancelled::AlreadyFinished(result.clone())),
            Some(TaskState::Pending) => {
                let result = JobResult::cancelled(at_ms);
                let expires_at = self.inner.expires_at(now);
                states.finish(*id, &result, None, now, expires_at);
                self.inner.observe.finished(id);
                // The job stays queued (and counted) until a worker would
                // take it, which drops it; only the result is new here.
                let jobs = lock(&self.inner.jobs);
                self.inner.evict_after_write(&mut states, &jobs, id);
                Ok(Cancelled::Now(result))
            }
        }
    }

    async fn settled(&self, ids: &[TaskId]) -> Result<Vec<TaskId>, QueueError> {
        let now = Instant::now();
        let states = lock(&self.inner.states);
        Ok(ids
            .iter()
            .filter(|id| states.is_final(id, now))
            .copied()
            .collect())
    }

    async fn ping(&self) -> Result<(), QueueError> {
        Ok(())
    }

    async fn wait_for_result_for(
        &self,
        id: &TaskId,
        owner: Option<&str>,
        timeout: Duration,
    ) -> Result<Option<TaskState>, QueueError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let watch = self.inner.observe.watch(*id);
        loop {
            // Registered before the state is read, so a result stored in
            // between still wakes this waiter.
            let notified = watch.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let state = self.state_for(id, owner).await?;
            if !matches!(state, Some(TaskState::Pending)) {
                return Ok(state);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.state_for(id, owner).await;
            }
        }
    }

    async fn mark_running(&self, id: &TaskId, at_ms: u64) -> Result<(), QueueError> {
        self.inner.observe.mark_running(*id, at_ms);
        Ok(())
    }

    async fn running_since(&self, id: &TaskId) -> Result<Option<u64>, QueueError> {
        Ok(self.inner.observe.running_since(id))
    }

    async fn report_progress(
        &self,
        id: &TaskId,
        tests: &[crate::judge::TestResult],
    ) -> Result<(), QueueError> {
        self.inner.observe.set_progress(*id, tests);
        Ok(())
    }

    async fn progress(
        &self,
        id: &TaskId,
    ) -> Result<Option<Vec<crate::judge::TestResult>>, QueueError> {
        Ok(self.inner.observe.progress(id))
    }

    async fn live_append(
        &self,
        id: &TaskId,
        log: crate::LiveLog,
        events: &[crate::LiveEvent],
    ) -> Result<(), QueueError> {
        self.inner
            .live
            .append(id, log, events, self.inner.result_ttl, self.inner.max_bytes);
        Ok(())
    }

    async fn live_read(
        &self,
        id: &TaskId,
        log: crate::LiveLog,
        after: Option<&str>,
        wait: Duration,
    ) -> Result<Vec<crate::LiveEntry>, QueueError> {
        Ok(self
            .inner
            .live
            .read(id, log, after, wait, self.inner.result_ttl)
            .await)
    }

    async fn report_worker(&self, report: &crate::stats::WorkerReport) -> Result<(), QueueError> {
        self.inner.observe.report(report);
        Ok(())
    }

    async fn stats(&self) -> Result<crate::stats::QueueStats, QueueError> {
        let queued = lock(&self.inner.jobs).queued.len() as u64;
        Ok(self.inner.observe.stats(queued))
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
            args: Vec::new(),
            files: Vec::new(),
            time_limit_ms: None,
            memory_limit_mb: None,
            owner: None,
            judge: None,
            live: None,
        }
    }

    #[test]
    fn purge_keeps_rewritten_states_until_their_latest_expiry() {
        let mut states = States::default();
        let id = TaskId::new();
        let t0 = Instant::now();
        let pending = Stored::new(TaskState::Pending, t0 + Duration::from_secs(1), None);
        states.put(id, pending);
        let done = TaskState::Done(JobResult::internal_error("x", 0));
        states.put(
            id,
            Stored::new(done.clone(), t0 + Duration::from_secs(3), None),
        );

        states.purge(t0 + Duration::from_secs(2));
        assert_eq!(states.by_id.get(&id).map(|s| &s.state), Some(&done));
        assert_eq!(states.expiries.len(), 1);

        states.purge(t0 + Duration::from_secs(3));
        assert!(states.by_id.is_empty());
        assert!(states.expiries.is_empty());
        assert_eq!(states.bytes, 0);
    }

    #[test]
    fn a_client_count_follows_its_pending_states() {
        let mut states = States::default();
        let t0 = Instant::now();
        let ids = [TaskId::new(), TaskId::new()];
        for (n, id) in ids.iter().enumerate() {
            let mut pending = Stored::new(
                TaskState::Pending,
                t0 + Duration::from_secs(1 + n as u64),
                None,
            );
            pending.client = Some("ip:192.0.2.1".into());
            states.put(*id, pending);
        }
        assert_eq!(states.unfinished["ip:192.0.2.1"], 2);
        let result = JobResult::internal_error("x", 0);
        assert!(states.finish(ids[0], &result, None, t0, t0 + Duration::from_secs(9)));
        assert_eq!(states.unfinished["ip:192.0.2.1"], 1);
        // Expiry releases it too.
        states.purge(t0 + Duration::from_secs(2));
        assert!(states.unfinished.is_empty());
        assert_eq!(states.by_id.len(), 1);
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

    fn output(bytes: usize) -> Vec<crate::LiveEvent> {
        vec![crate::LiveEvent::Output {
            stream: crate::LiveStream::Stdout,
            offset: 0,
            data: vec![b'x'; bytes],
        }]
    }

    #[tokio::test]
    async fn live_logs_go_shortly_after_the_result() {
        let mut q = EmbeddedQueue::new(Duration::from_secs(3600));
        Arc::get_mut(&mut q.inner).unwrap().live_after_result = Duration::from_millis(50);
        let j = job();
        q.submit(&j).await.unwrap();
        let delivery = q.reserve("c", 1, Duration::from_millis(1)).await.unwrap();
        q.live_append(&j.id, crate::LiveLog::Output, &output(10))
            .await
            .unwrap();
        q.live_append(&j.id, crate::LiveLog::Input, &[crate::LiveEvent::StdinEnd])
            .await
            .unwrap();
        let read = |log| {
            let q = q.clone();
            async move { q.live_read(&j.id, log, None, Duration::ZERO).await.unwrap() }
        };
        assert_eq!(read(crate::LiveLog::Output).await.len(), 1);
        q.complete(&delivery[0], &JobResult::internal_error("x", 0))
            .await
            .unwrap();
        // Kept a little while after the result, for the clients watching.
        assert_eq!(read(crate::LiveLog::Output).await.len(), 1);
        tokio::time::sleep(Duration::from_millis(100)).await;
        // A late append (the API's input) does not bring them back.
        q.live_append(&j.id, crate::LiveLog::Input, &[crate::LiveEvent::StdinEnd])
            .await
            .unwrap();
        assert!(read(crate::LiveLog::Output).await.is_empty());
        assert_eq!(q.inner.live.bytes(), 0);
    }

    #[tokio::test]
    async fn live_logs_count_in_the_byte_budget() {
        let q = EmbeddedQueue::with_config(EmbeddedConfig {
            result_ttl: Duration::from_secs(3600),
            max_queue_length: None,
            max_bytes: Some(64 * 1024),
        });
        let running = job();
        q.submit(&running).await.unwrap();
        q.live_append(&running.id, crate::LiveLog::Output, &output(100 * 1024))
            .await
            .unwrap();
        assert!(
            matches!(q.submit(&job()).await, Err(QueueError::Full { .. })),
            "live bytes were not counted"
        );
    }

    #[tokio::test]
    async fn finished_tasks_live_logs_go_first_over_the_budget() {
        let q = EmbeddedQueue::with_config(EmbeddedConfig {
            result_ttl: Duration::from_secs(3600),
            max_queue_length: None,
            max_bytes: Some(64 * 1024),
        });
        let done = job();
        q.submit(&done).await.unwrap();
        let delivery = q.reserve("c", 1, Duration::from_millis(1)).await.unwrap();
        q.live_append(&done.id, crate::LiveLog::Output, &output(40 * 1024))
            .await
            .unwrap();
        q.complete(&delivery[0], &JobResult::internal_error("x", 0))
            .await
            .unwrap();
        let running = TaskId::new();
        q.live_append(&running, crate::LiveLog::Output, &output(40 * 1024))
            .await
            .unwrap();
        let left = q
            .live_read(&done.id, crate::LiveLog::Output, None, Duration::ZERO)
            .await
            .unwrap();
        assert!(left.is_empty(), "the finished task's log was kept");
        assert!(q.inner.live.bytes() < 64 * 1024);
    }
}
