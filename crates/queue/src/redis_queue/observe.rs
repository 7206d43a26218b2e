//! The Redis side of watching tasks and the service: waiting for a result
//! (see `notify`), the "running" mark of a task, worker heartbeats and the
//! statistics read by `GET /stats` and `GET /metrics`.
//!
//! Keys, for a prefix `P`:
//!
//! | key / channel        | type          | holds                                              |
//! |----------------------|---------------|----------------------------------------------------|
//! | `P:done:{id}`        | pub/sub channel | the final state when the task gets it (`done` when large) |
//! | `P:running:{id}`     | string, TTL ≤ 1 h | when a worker started the task's job (ms)      |
//! | `P:worker-status`    | hash          | worker name → JSON of [`WorkerStatus`]              |
//! | `P:stats`            | hash          | cumulative [`Counters`] of every worker             |

use std::collections::HashMap;
use std::time::{Duration, Instant};

use redis::Value;

use super::notify::Notifier;
use super::{now_ms, RedisQueue};
use crate::stats::{Counters, QueueStats, WorkerReport, WorkerStatus, WORKER_LIVENESS};
use crate::{QueueError, TaskId, TaskState};

/// A worker status this old is deleted from the hash when stats are read
/// (a worker that died without saying goodbye).
const FORGET_WORKER_AFTER: Duration = Duration::from_secs(3600);

/// How long a running mark is kept (see `set_running`).
const RUNNING_MARK_TTL_MS: u64 = 3_600_000;

/// Pause before reading a waited-for task again after a failed read.
const WAIT_READ_RETRY: Duration = Duration::from_millis(200);

/// The names of the keys above.
#[derive(Debug)]
pub(super) struct ObserveKeys {
    done_prefix: String,
    running_prefix: String,
    /// Judge mode: a running job's finished tests, as JSON.
    progress_prefix: String,
    worker_status: String,
    stats: String,
}

impl ObserveKeys {
    pub(super) fn new(prefix: &str) -> Self {
        Self {
            done_prefix: format!("{prefix}:done:"),
            running_prefix: format!("{prefix}:running:"),
            progress_prefix: format!("{prefix}:progress:"),
            worker_status: format!("{prefix}:worker-status"),
            stats: format!("{prefix}:stats"),
        }
    }

    /// The channel a task's final state is announced on.
    pub(super) fn done_channel(&self, id: &TaskId) -> String {
        format!("{}{id}", self.done_prefix)
    }

    fn running(&self, id: &TaskId) -> String {
        format!("{}{id}", self.running_prefix)
    }

    fn progress(&self, id: &TaskId) -> String {
        format!("{}{id}", self.progress_prefix)
    }
}

impl RedisQueue {
    fn observe_keys(&self) -> &ObserveKeys {
        &self.inner.keys.observe
    }

    fn notifier(&self) -> &Notifier {
        self.inner
            .notifier
            .get_or_init(|| Notifier::start(self.inner.primary.clone()))
    }

    /// [`Queue::wait_for_result`](crate::Queue::wait_for_result) on Redis.
    pub(super) async fn wait_done(
        &self,
        id: &TaskId,
        owner: Option<&str>,
        timeout: Duration,
    ) -> Result<Option<TaskState>, QueueError> {
        use crate::Queue;
        // Most calls are for tasks that are finished already (or unknown):
        // answer those without touching the subscriber.
        let state = self.state_for(id, owner).await?;
        if !matches!(state, Some(TaskState::Pending)) || timeout.is_zero() {
            return Ok(state);
        }
        let deadline = tokio::time::Instant::from_std(Instant::now() + timeout);
        let channel = self.observe_keys().done_channel(id);
        let watch = match tokio::time::timeout_at(deadline, self.notifier().watch(channel)).await {
            Ok(watch) => watch?,
            // The subscriber could not confirm in time (Redis restarting?):
            // answer with the state as it is now.
            Err(_) => return self.state_for(id, owner).await,
        };
        let mut woken = false;
        loop {
            let notified = watch.signal.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Woken by a message that carried the final state: no read.
            // (One that cannot be read is read from the key instead.)
            if let Some(bytes) = watch.signal.published().filter(|_| woken) {
                match super::decode_state(id, &bytes, owner) {
                    Ok(state) if !matches!(state, Some(TaskState::Pending)) => return Ok(state),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(task_id = %id, error = %e, "a published state could not be read; reading the task");
                    }
                }
            }
            woken = true;
            match self.state_for(id, owner).await {
                Ok(state) if !matches!(state, Some(TaskState::Pending)) => return Ok(state),
                Ok(_) => {}
                // A read that fails while there is time left (Redis slow or
                // restarting) is tried again shortly rather than failing the
                // wait; only the last read, at the deadline, reports an error.
                Err(e) => {
                    tracing::debug!(task_id = %id, error = %e, "reading a waited-for task failed; retrying");
                    let retry = tokio::time::Instant::now() + WAIT_READ_RETRY;
                    let _ = tokio::time::timeout_at(retry.min(deadline), notified).await;
                    if tokio::time::Instant::now() >= deadline {
                        return self.state_for(id, owner).await;
                    }
                    continue;
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.state_for(id, owner).await;
            }
        }
    }

    /// Atomic unit `begin.lua`: the running mark, unless the task is final
    /// (then its entry is retired and `false` returned).
    pub(super) async fn begin_atomic(
        &self,
        id: &TaskId,
        receipt: &str,
        at_ms: u64,
    ) -> Result<bool, QueueError> {
        let mut invocation = super::BEGIN.prepare_invoke();
        invocation
            .key(&self.inner.keys.jobs)
            .key(self.inner.keys.task(id))
            .key(self.observe_keys().running(id))
            .arg(&self.inner.keys.group)
            .arg(receipt)
            .arg(at_ms)
            .arg(self.inner.ttl_ms.min(RUNNING_MARK_TTL_MS));
        let invocation = &invocation;
        let settled: i64 = self
            .on_shared("begin script", move |mut conn| async move {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
        Ok(settled == 0)
    }

    pub(super) async fn set_running(&self, id: &TaskId, at_ms: u64) -> Result<(), QueueError> {
        let mut cmd = redis::cmd("SET");
        // Only read while the task is pending, and no job runs for an hour
        // (compile and run limits are at most 10 minutes each): the mark
        // need not outlive that, whatever the results' TTL.
        cmd.arg(self.observe_keys().running(id))
            .arg(at_ms)
            .arg("PX")
            .arg(self.inner.ttl_ms.min(RUNNING_MARK_TTL_MS));
        let cmd = &cmd;
        self.on_shared("SET running mark", move |mut conn| async move {
            cmd.query_async::<()>(&mut conn).await
        })
        .await
    }

    /// Judge mode's progress: one `SET` with the running mark's expiry
    /// (`DEL` for an empty list).
    pub(super) async fn set_progress(
        &self,
        id: &TaskId,
        tests: &[crate::judge::TestResult],
    ) -> Result<(), QueueError> {
        let key = self.observe_keys().progress(id);
        let cmd = if tests.is_empty() {
            let mut cmd = redis::cmd("DEL");
            cmd.arg(key);
            cmd
        } else {
            let json = serde_json::to_string(tests).map_err(|source| QueueError::Corrupt {
                id: id.to_string(),
                source,
            })?;
            let mut cmd = redis::cmd("SET");
            cmd.arg(key)
                .arg(json)
                .arg("PX")
                .arg(self.inner.ttl_ms.min(RUNNING_MARK_TTL_MS));
            cmd
        };
        let cmd = &cmd;
        self.on_shared("SET progress", move |mut conn| async move {
            cmd.query_async::<()>(&mut conn).await
        })
        .await
    }

    pub(super) async fn get_progress(
        &self,
        id: &TaskId,
    ) -> Result<Option<Vec<crate::judge::TestResult>>, QueueError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.observe_keys().progress(id));
        let cmd = &cmd;
        let json = self
            .on_shared("GET progress", move |mut conn| async move {
                cmd.query_async::<Option<String>>(&mut conn).await
            })
            .await?;
        json.map(|json| {
            serde_json::from_str(&json).map_err(|source| QueueError::Corrupt {
                id: id.to_string(),
                source,
            })
        })
        .transpose()
    }

    pub(super) async fn get_running(&self, id: &TaskId) -> Result<Option<u64>, QueueError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.observe_keys().running(id));
        let cmd = &cmd;
        self.on_shared("GET running mark", move |mut conn| async move {
            cmd.query_async::<Option<u64>>(&mut conn).await
        })
        .await
    }

    pub(super) async fn store_report(&self, report: &WorkerReport) -> Result<(), QueueError> {
        let keys = self.observe_keys();
        let mut pipe = redis::pipe();
        for (name, n) in report.counters.iter() {
            pipe.cmd("HINCRBY")
                .arg(&keys.stats)
                .arg(name)
                .arg(n)
                .ignore();
        }
        if report.stopping {
            pipe.cmd("HDEL")
                .arg(&keys.worker_status)
                .arg(&report.worker)
                .ignore();
        } else {
            let status = WorkerStatus {
                worker: report.worker.clone(),
                slots: report.slots,
                busy: report.busy,
                seen_at_ms: report.at_ms,
            };
            pipe.cmd("HSET")
                .arg(&keys.worker_status)
                .arg(&report.worker)
                .arg(super::to_json(&status))
                .ignore();
        }
        let pipe = &pipe;
        // Not retried on a dropped connection: HINCRBY is not idempotent, and
        // a lost heartbeat only costs one interval of counts.
        let mut conn = self.shared();
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(super::redis_err("store worker report"))
    }

    pub(super) async fn read_stats(&self) -> Result<QueueStats, QueueError> {
        let keys = self.observe_keys();
        let mut pipe = redis::pipe();
        pipe.cmd("XLEN")
            .arg(&self.inner.keys.jobs)
            .cmd("XPENDING")
            .arg(&self.inner.keys.jobs)
            .arg(&self.inner.keys.group)
            .cmd("HGETALL")
            .arg(&keys.worker_status)
            .cmd("HGETALL")
            .arg(&keys.stats);
        let pipe = &pipe;
        let (length, pending, statuses, totals): (
            u64,
            Value,
            HashMap<String, String>,
            HashMap<String, u64>,
        ) = self
            .on_shared("read stats", move |mut conn| async move {
                pipe.query_async(&mut conn).await
            })
            .await?;
        // XPENDING's summary form: [count, first id, last id, consumers].
        let running = match pending {
            Value::Array(items) => match items.first() {
                Some(Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
                _ => 0,
            },
            _ => 0,
        };
        let now = now_ms();
        let live_since = now.saturating_sub(WORKER_LIVENESS.as_millis() as u64);
        let forget_before = now.saturating_sub(FORGET_WORKER_AFTER.as_millis() as u64);
        let mut workers = Vec::new();
        let mut forgotten = Vec::new();
        for (name, json) in statuses {
            match serde_json::from_str::<WorkerStatus>(&json) {
                Ok(status) if status.seen_at_ms >= live_since => workers.push(status),
                Ok(status) if status.seen_at_ms >= forget_before => {}
                _ => forgotten.push(name),
            }
        }
        workers.sort_by(|a, b| a.worker.cmp(&b.worker));
        if !forgotten.is_empty() {
            let mut cmd = redis::cmd("HDEL");
            cmd.arg(&keys.worker_status).arg(&forgotten);
            let mut conn = self.shared();
            if let Err(e) = cmd.query_async::<()>(&mut conn).await {
                tracing::debug!(error = %e, "cannot forget stale worker statuses");
            }
        }
        let mut counters = Counters::default();
        for (name, n) in totals {
            counters.add(name, n);
        }
        Ok(QueueStats {
            queued: length.saturating_sub(running),
            running,
            workers,
            totals: counters,
        })
    }
}
