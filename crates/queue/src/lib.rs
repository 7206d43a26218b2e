//! The queue between the API and the workers, and the store of task states.
//!
//! The API calls [`Queue::submit`] and [`Queue::state`]; workers call
//! [`Queue::reserve`] and [`Queue::complete`]. Two backends implement the same
//! trait and pass the same conformance tests:
//!
//! - [`RedisQueue`]: jobs in a Redis Stream read through a consumer group,
//!   task states under per-task keys with a TTL, so any number of API and
//!   worker processes share one Redis.
//! - [`EmbeddedQueue`]: the same semantics inside one process, so
//!   `code-runner serve` works with nothing else installed.

mod embedded;
mod job;
mod redis_queue;

use std::time::Duration;

use async_trait::async_trait;

pub use embedded::EmbeddedQueue;
pub use job::{Job, JobResult, TaskId, TaskState, Verdict};
pub use redis_queue::{RedisQueue, RedisQueueConfig};

/// A job handed to one worker, with what that worker needs to acknowledge it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub job: Job,
    /// Backend-specific receipt (the stream entry id for Redis).
    pub receipt: String,
}

/// The operations the API and the workers need; each one is atomic.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Records the task as pending and enqueues its job, as one atomic step:
    /// a task is never visible without its job, nor the reverse.
    async fn submit(&self, job: &Job) -> Result<(), QueueError>;

    /// The task's state, or `None` when it was never issued or has expired.
    async fn state(&self, id: &TaskId) -> Result<Option<TaskState>, QueueError>;

    /// Takes up to `max` jobs for `consumer`, waiting at most `wait` for the
    /// first one. An empty vector means nothing arrived in time.
    async fn reserve(
        &self,
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>, QueueError>;

    /// Stores the task's final result and acknowledges its delivery. The first
    /// final result wins: a later one for the same task is ignored.
    async fn complete(&self, delivery: &Delivery, result: &JobResult) -> Result<(), QueueError>;

    /// Checks that the backend answers.
    async fn ping(&self) -> Result<(), QueueError>;
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
    #[error("the queue is closed")]
    Closed,
}
