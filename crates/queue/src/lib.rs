//! The queue between the API and the workers, and the store of task states.
//!
//! The API calls [`Queue::submit`], [`Queue::state`] and [`Queue::cancel`];
//! workers call [`Queue::reserve`], [`Queue::reclaim`], [`Queue::complete`],
//! [`Queue::release`] and [`Queue::settled`]. Two backends implement the same
//! trait and pass the same conformance tests:
//!
//! - [`RedisQueue`]: jobs in a Redis Stream read through a consumer group,
//!   task states under per-task keys with a TTL, so any number of API and
//!   worker processes share one Redis.
//! - [`EmbeddedQueue`]: the same semantics inside one process, so
//!   `code-runner serve` works with nothing else installed.
//!
//! Reliability, in both backends:
//!
//! - A delivery is a lease: if it is neither completed nor released within a
//!   visibility timeout (its worker died), [`Queue::reclaim`] hands it to
//!   another worker; after [`Redelivery::max_deliveries`] deliveries the task
//!   ends as `internal_error` instead of being retried for ever.
//! - The first final state of a task wins; every later one (a redelivered job
//!   that had in fact finished, a run racing a cancellation) is ignored.
//! - [`Queue::submit`] refuses work beyond a maximum queue length
//!   ([`QueueError::Full`]) in the same atomic step that would enqueue it.
//! - [`Queue::cancel`] gives a pending task its final `cancelled` state at
//!   once; a worker never starts a task that is already final, and stops one
//!   it is running when [`Queue::settled`] reports it.
//! - [`Queue::submit_for`] also refuses a client's job beyond its own cap of
//!   unfinished jobs ([`QueueError::ClientFull`]), counted in the backend
//!   (a sorted set per client in Redis, so every API process sees the same
//!   count), in the same atomic step.
//!
//! Ownership: a job may carry an owner ([`Job::owner`], a hash of the API
//! key that submitted it). [`Queue::state_for`], [`Queue::wait_for_result_for`]
//! and [`Queue::cancel_for`] given another owner find no such task; the
//! owner stays with the task's final state too.
//!
//! Memory: the embedded backend keeps its jobs and results within a byte
//! budget ([`EmbeddedConfig::max_bytes`]), evicting the oldest finished
//! results first.
//!
//! Watching, in both backends (see [`stats`]):
//!
//! - [`Queue::wait_for_result`] returns once the task is final, woken by the
//!   backend (Redis pub/sub on one shared subscriber connection per process;
//!   an in-process notification), never by polling.
//! - [`Queue::mark_running`] / [`Queue::running_since`] tell a running task
//!   from a queued one.
//! - Workers send a heartbeat with [`Queue::report_worker`];
//!   [`Queue::stats`] reads the queue length, live workers and job counters.

mod embedded;
mod job;
pub mod judge;
pub mod live;
mod redis_queue;
pub mod stats;

use std::time::Duration;

use async_trait::async_trait;

pub use embedded::{EmbeddedConfig, EmbeddedQueue};
pub use job::{
    Job, JobResult, LiveMode, NameClash, SourceFile, TaskId, TaskState, Verdict,
    RECORD_OVERHEAD_BYTES,
};
pub use live::{LiveEntry, LiveEvent, LiveLog, LiveStream};
pub use redis_queue::{
    RedisQueue, RedisQueueConfig, SentinelUrl, SentinelUrlError, COMMAND_DEADLINE, SENTINEL_SCHEME,
    WAIT_TIMEOUT,
};

/// A job handed to one worker, with what that worker needs to acknowledge it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub job: Job,
    /// Backend-specific receipt (the stream entry id for Redis). A redelivery
    /// of the same job carries the same receipt.
    pub receipt: String,
    /// How many times the job has been handed out, this time included: 1 for
    /// a first delivery, more when workers died (or shut down) holding it.
    pub attempt: u32,
}

/// When a delivery that was never acknowledged goes to another worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redelivery {
    /// How long a delivery may stay unacknowledged before it is presumed lost
    /// (its worker killed or gone). Must exceed the longest a live worker can
    /// take over one job, or a slow job is run twice (harmless to its result,
    /// since the first final result wins, but wasted work).
    pub visibility_timeout: Duration,
    /// Deliveries allowed per job. A job whose worker died this many times
    /// ends as `internal_error` rather than being handed out again, so a job
    /// that kills its worker cannot loop for ever.
    pub max_deliveries: u32,
}

impl Default for Redelivery {
    fn default() -> Self {
        Self {
            visibility_timeout: Duration::from_secs(70),
            max_deliveries: 3,
        }
    }
}

/// What [`Queue::cancel`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Cancelled {
    /// The task was pending (queued or running); it now has this final
    /// `cancelled` result, and its job will not run (or is being stopped).
    Now(JobResult),
    /// The task had already finished (possibly by an earlier cancel); its
    /// result is unchanged.
    AlreadyFinished(JobResult),
    /// No such task: never issued, or expired.
    NotFound,
}

/// Whom a submission counts against, and how many unfinished (queued or
/// running) jobs that client may have at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientQuota<'a> {
    /// The client's name, e.g. `ip:192.0.2.7` or `key:<hash>`. ASCII
    /// letters, digits and `-_.:/` (the Redis backend hex-encodes anything
    /// else).
    pub client: &'a str,
    /// At least 1.
    pub max_unfinished: u64,
}

/// Whether a task of `owner` may be seen by a caller asking as `asker`: a
/// caller that names no owner sees every task, and a task without an owner
/// is every caller's.
pub(crate) fn may_see(owner: Option<&str>, asker: Option<&str>) -> bool {
    match (asker, owner) {
        (Some(asker), Some(owner)) => asker == owner,
        _ => true,
    }
}

/// The operations the API and the workers need; each one is atomic.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Records the task as pending and enqueues its job, as one atomic step:
    /// a task is never visible without its job, nor the reverse.
    async fn submit(&self, job: &Job) -> Result<(), QueueError> {
        self.submit_for(job, None).await
    }

    /// [`Queue::submit`], counting the job against `quota`'s client: when
    /// that client already has `max_unfinished` jobs queued or running, the
    /// job is refused with [`QueueError::ClientFull`] and nothing is written.
    /// A job stops counting when its task gets its final state (completed,
    /// cancelled, or failed after too many deliveries) or expires.
    async fn submit_for(&self, job: &Job, quota: Option<ClientQuota<'_>>)
        -> Result<(), QueueError>;

    /// The task's state, or `None` when it was never issued or has expired.
    async fn state(&self, id: &TaskId) -> Result<Option<TaskState>, QueueError> {
        self.state_for(id, None).await
    }

    /// The task's state as `owner` may see it: `None` as well when the task
    /// belongs to another owner (see [`Job::owner`]). `owner: None` sees
    /// every task.
    async fn state_for(
        &self,
        id: &TaskId,
        owner: Option<&str>,
    ) -> Result<Option<TaskState>, QueueError>;

    /// Takes up to `max` jobs for `consumer`, waiting at most `wait` for the
    /// first one. An empty vector means nothing arrived in time. A job whose
    /// task is already final may be among them: [`Queue::begin`] says so.
    async fn reserve(
        &self,
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>, QueueError>;

    /// Takes over up to `max` deliveries that other consumers (or earlier
    /// runs of this one) have held unacknowledged for longer than
    /// `policy.visibility_timeout`, as when their worker was killed. A job
    /// that has used up `policy.max_deliveries` is not returned: it is given
    /// a final `internal_error` result and acknowledged. Jobs whose task is
    /// already final are acknowledged and not returned either.
    async fn reclaim(
        &self,
        consumer: &str,
        max: usize,
        policy: &Redelivery,
    ) -> Result<Vec<Delivery>, QueueError>;

    /// Stores the task's final result and acknowledges its delivery. The first
    /// final result wins: a later one for the same task is ignored.
    async fn complete(&self, delivery: &Delivery, result: &JobResult) -> Result<(), QueueError>;

    /// Extends a delivery's lease: its visibility timeout starts again, as if
    /// it had just been delivered to `consumer`, so a job that runs longer
    /// than the timeout (a judged job with many tests) is not handed to
    /// another worker while its own is alive. Nothing when the delivery is
    /// no longer `consumer`'s (reclaimed, released or completed): `false`.
    async fn touch(&self, consumer: &str, delivery: &Delivery) -> Result<bool, QueueError> {
        let _ = (consumer, delivery);
        Ok(false)
    }

    /// Gives an unfinished delivery back (a worker shutting down): it stays
    /// unacknowledged and becomes reclaimable at once, without waiting out
    /// the visibility timeout, and this delivery is not counted against
    /// [`Redelivery::max_deliveries`].
    async fn release(&self, delivery: &Delivery) -> Result<(), QueueError>;

    /// Cancels a pending task: it gets a final `cancelled` result at once,
    /// its job is never started, and a worker running it stops it when it
    /// next asks [`Queue::settled`].
    async fn cancel(&self, id: &TaskId, at_ms: u64) -> Result<Cancelled, QueueError> {
        self.cancel_for(id, None, at_ms).await
    }

    /// [`Queue::cancel`] as `owner`: a task of another owner is
    /// [`Cancelled::NotFound`] and is left alone.
    async fn cancel_for(
        &self,
        id: &TaskId,
        owner: Option<&str>,
        at_ms: u64,
    ) -> Result<Cancelled, QueueError>;

    /// Which of `ids` already have a final state (cancelled, or finished by
    /// another delivery), so their running jobs can be stopped.
    async fn settled(&self, ids: &[TaskId]) -> Result<Vec<TaskId>, QueueError>;

    /// Checks that the backend answers.
    async fn ping(&self) -> Result<(), QueueError>;

    // Watching tasks and the service (`stats` and the `observe` modules).
    // Every method has a do-little default so a test double need not
    // implement them; both real backends override all of them.

    /// The task's state once it is final, or as it is when `timeout` runs
    /// out (still pending), or `None` for an unknown task. Woken by the
    /// backend when the result is stored (Redis pub/sub, an in-process
    /// notification), never by polling; any number of callers may wait at once.
    async fn wait_for_result(
        &self,
        id: &TaskId,
        timeout: Duration,
    ) -> Result<Option<TaskState>, QueueError> {
        self.wait_for_result_for(id, None, timeout).await
    }

    /// [`Queue::wait_for_result`] as `owner` (see [`Queue::state_for`]): a
    /// task of another owner is `None` at once, without waiting.
    async fn wait_for_result_for(
        &self,
        id: &TaskId,
        owner: Option<&str>,
        timeout: Duration,
    ) -> Result<Option<TaskState>, QueueError> {
        let _ = timeout;
        self.state_for(id, owner).await
    }

    /// Marks a pending task as started by a worker at `at_ms`, so clients can
    /// tell "queued" from "running". Best effort: nothing depends on it.
    async fn mark_running(&self, id: &TaskId, at_ms: u64) -> Result<(), QueueError> {
        let _ = (id, at_ms);
        Ok(())
    }

    /// A worker starts the job of task `id`, delivered with `receipt`
    /// (see [`Delivery`]), at `at_ms`: marks it running (as
    /// [`Queue::mark_running`]) unless the task already has a final state
    /// (cancelled while queued, or finished by an earlier delivery), in
    /// which case its delivery is retired and `false` says the job must not
    /// run. [`Queue::reserve`] may return such deliveries; a queue that
    /// leaves them out there keeps this default.
    async fn begin(&self, id: &TaskId, receipt: &str, at_ms: u64) -> Result<bool, QueueError> {
        let _ = receipt;
        self.mark_running(id, at_ms).await.map(|()| true)
    }

    /// When a worker started the task's job, if one has (see [`Queue::mark_running`]).
    async fn running_since(&self, id: &TaskId) -> Result<Option<u64>, QueueError> {
        let _ = id;
        Ok(None)
    }

    /// Judge mode: the tests of a running task finished so far (without
    /// their output), so `GET /results/{id}` can show them while it runs.
    /// An empty list forgets them (the worker, once the result is stored).
    /// Best effort, and ignored once the task is final.
    async fn report_progress(
        &self,
        id: &TaskId,
        tests: &[judge::TestResult],
    ) -> Result<(), QueueError> {
        let _ = (id, tests);
        Ok(())
    }

    /// The tests [`Queue::report_progress`] last reported for a task.
    async fn progress(&self, id: &TaskId) -> Result<Option<Vec<judge::TestResult>>, QueueError> {
        let _ = id;
        Ok(None)
    }

    /// Test sets (SPEC §7): stores a set's canonical JSON (`{"tests":[...]}`)
    /// and its number of tests under `id` (`sha256:<hex>`) for `ttl`, replacing
    /// a set stored before under the same id (the same content) and so
    /// refreshing its TTL.
    async fn store_testset(
        &self,
        id: &str,
        json: &str,
        tests: usize,
        ttl: Duration,
    ) -> Result<(), QueueError>;

    /// A stored set's number of tests, its TTL refreshed to `ttl`; `None`
    /// when there is no such set (never stored, or expired).
    async fn testset_len(&self, id: &str, ttl: Duration) -> Result<Option<usize>, QueueError>;

    /// A stored set's canonical JSON, its TTL refreshed to `ttl` when given;
    /// `None` when there is no such set (never stored, or expired).
    async fn testset(&self, id: &str, ttl: Option<Duration>) -> Result<Option<String>, QueueError>;

    /// Live runs (see [`live`]): appends `events` to the task's `log`,
    /// which expires with the task's state. Both real backends override it;
    /// the default drops them.
    async fn live_append(
        &self,
        id: &TaskId,
        log: LiveLog,
        events: &[LiveEvent],
    ) -> Result<(), QueueError> {
        let _ = (id, log, events);
        Ok(())
    }

    /// The entries of the task's `log` after the entry `after` (from the
    /// first when `None`), at most [`live::LIVE_READ_COUNT`]; when there
    /// are none yet, waits up to `wait` (at most [`live::MAX_LIVE_WAIT`])
    /// for the first, woken by the backend. Empty after the wait.
    async fn live_read(
        &self,
        id: &TaskId,
        log: LiveLog,
        after: Option<&str>,
        wait: Duration,
    ) -> Result<Vec<LiveEntry>, QueueError> {
        let _ = (id, log, after);
        tokio::time::sleep(wait.min(live::MAX_LIVE_WAIT)).await;
        Ok(Vec::new())
    }

    /// A worker's heartbeat: its busy and idle slots, and counts of the jobs
    /// it finished since the last one.
    async fn report_worker(&self, report: &stats::WorkerReport) -> Result<(), QueueError> {
        let _ = report;
        Ok(())
    }

    /// Queue length, live workers and cumulative job counts.
    async fn stats(&self) -> Result<stats::QueueStats, QueueError> {
        Ok(stats::QueueStats::default())
    }
}

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("redis {op} failed")]
    Redis {
        op: &'static str,
        #[source]
        source: redis::RedisError,
    },
    #[error("stored record for task {id} is not valid")]
    Corrupt {
        id: String,
        #[source]
        source: serde_json::Error,
    },
    /// Redis did not answer in time; it is down, restarting or overloaded.
    #[error("redis {op} got no answer within {waited:?}")]
    Timeout { op: &'static str, waited: Duration },
    /// Backpressure: the queue already holds `limit` unfinished jobs (or,
    /// in the embedded backend, jobs filling its byte budget).
    #[error("the queue is full ({limit} jobs waiting or running)")]
    Full { limit: u64 },
    /// Fair share: the submitting client already has `limit` unfinished jobs.
    #[error("the client already has {limit} unfinished jobs")]
    ClientFull { limit: u64 },
    #[error("the queue is closed")]
    Closed,
    /// Durable writes: Redis made the write, but fewer replicas than
    /// required confirmed it in time, so a failover could still lose it.
    #[error("redis {op}: {acked} of {wanted} replicas confirmed the write in time")]
    NotReplicated {
        op: &'static str,
        acked: u32,
        wanted: u32,
    },
}

impl JobResult {
    /// The final result of a task cancelled through [`Queue::cancel`].
    pub fn cancelled(at_ms: u64) -> Self {
        let mut result = Self::internal_error("Cancelled", at_ms);
        result.verdict = Verdict::Cancelled;
        result
    }

    /// The final result of a job whose workers all died holding it.
    pub fn delivery_exhausted(deliveries: u32, at_ms: u64) -> Self {
        Self::internal_error(
            format!(
                "Internal error: the job was delivered {deliveries} times and its worker stopped \
                 (killed, crashed or lost) before finishing it each time; not retried again"
            ),
            at_ms,
        )
    }
}
