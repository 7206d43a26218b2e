//! The Redis backend: jobs in a Redis Stream read through a consumer group,
//! task states in per-task keys with a TTL, so any number of API and worker
//! processes can share one Redis.
//!
//! Keys, for a prefix `P` (default `code-runner`):
//!
//! | key / name       | type            | holds                                        |
//! |------------------|-----------------|----------------------------------------------|
//! | `P:jobs`         | stream          | one entry per unfinished job: fields `id`, `job` (JSON of [`Job`]) |
//! | `P:workers`      | consumer group  | on `P:jobs`; tracks which worker holds which entry, since when, and how often it was delivered |
//! | `P:task:{id}`    | string, TTL     | JSON of [`TaskState`], with the task's owner (see [`Job::owner`]) second and, while pending, the client it counts against |
//! | `P:client:{client}` | sorted set, TTL | a client's unfinished task ids, scored by when their pending state expires (only with a [`ClientQuota`]) |
//! | `P:testset:{id}` | hash, TTL       | a test set (SPEC §7): fields `json` (its canonical JSON) and `tests` (how many) |
//! | `P:live:{id}`, `P:input:{id}` | stream, TTL | a live run's output and input logs (see [`crate::live`]); kept `LIVE_AFTER_RESULT` once the result is stored |
//!
//! Each operation that must be atomic is one Lua script in its own file
//! (`submit.lua`, `complete.lua`, `reclaim.lua`, `settled.lua`, `begin.lua`,
//! `cancel.lua`),
//! run by EVALSHA through [`redis::Script`], which loads it again after a Redis
//! restart (NOSCRIPT).
//!
//! Lost workers: an entry stays in the group's pending list, under the
//! consumer that read it, until `complete.lua` acknowledges it. `reclaim.lua`
//! moves entries idle past the visibility timeout to a live consumer with
//! `XAUTOCLAIM`, which also counts deliveries; a job past its allowed
//! deliveries gets an `internal_error` result instead. With AOF persistence
//! the stream, the group and its pending list survive a Redis restart.
//!
//! Failing fast: a reconnect makes one attempt, so while Redis refuses
//! connections callers (the API) get an error in milliseconds; and every
//! non-blocking command has an overall deadline
//! ([`RedisQueueConfig::command_deadline`], 1 s by default) covering a
//! reconnect and one retry, so a Redis that hangs or a host that is gone
//! cannot hang them either.
//!
//! Connections: every non-blocking command shares one multiplexed
//! [`ConnectionManager`] (pipelined, reconnects by itself), which is what lets
//! one API process do tens of thousands of submits a second. `XREADGROUP ...
//! BLOCK` would stall every other command on a multiplexed connection while it
//! waits, so blocking reads use dedicated connections from a small pool, one
//! per concurrent `reserve` call.
//!
//! High availability: with a `redis+sentinel://` URL the primary is the one
//! Redis Sentinel names, found again after a failover (see `primary`);
//! with [`RedisQueueConfig::wait_replicas`] each submit and result is
//! followed by `WAIT`, so that what a caller was told is stored survives
//! the failover (docs/redis-ha.md).
//!
//! Completed entries are deleted from the stream (not trimmed with `MAXLEN`,
//! which could drop jobs nobody has read yet), so the stream stays as long as
//! the backlog.
//!
//! What Redis holds per task is bounded by what the API accepts: an entry of
//! the job's JSON (no longer than the request body that carried it: JSON
//! escapes are never longer than the escapes a body must use) while it is
//! unfinished, and one state: the pending one (a few dozen bytes) or the
//! result (the output as the worker capped it, once).

mod live;
mod notify;
mod observe;
mod primary;

pub use primary::{SentinelUrl, SentinelUrlError, SENTINEL_SCHEME};

use std::fmt;
use std::future::Future;
use std::io;
use std::str::FromStr;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::streams::{StreamId, StreamReadReply};
use redis::{AsyncConnectionConfig, Cmd, FromRedisValue, RedisError, RedisResult, Script, Value};
use serde::Serialize;

use crate::{
    may_see, Cancelled, ClientQuota, Delivery, Job, JobResult, Queue, QueueError, Redelivery,
    TaskId, TaskState,
};

/// The atomic submit: pending state (if the id is new) plus the stream entry.
static SUBMIT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("submit.lua")));

/// The atomic complete: first final state wins, then XACK + XDEL.
static COMPLETE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("complete.lua")));

/// Takes over entries of dead consumers (XAUTOCLAIM) with their delivery counts.
static RECLAIM: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("reclaim.lua")));

/// Which tasks are final; retires their entries.
static SETTLED: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("settled.lua")));

/// Marks a started task running, or retires its entry if it is final.
static BEGIN: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("begin.lua")));

/// Extends a delivery's lease while its consumer still holds it.
static TOUCH: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("touch.lua")));

/// The atomic cancel: a final `cancelled` state unless the task has one.
static CANCEL: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("cancel.lua")));

/// Stream field holding the task id on its own, so a job whose JSON cannot be
/// read can still be given a final state.
const FIELD_ID: &str = "id";
/// Stream field holding the JSON of the [`Job`].
const FIELD_JOB: &str = "job";

/// Default overall deadline of one non-blocking operation: waiting for a
/// reconnect, the command, and its one retry. Redis answers these in well
/// under a millisecond; a second covers a busy server, and bounds how long
/// the API takes to answer 503 when Redis hangs or its host is gone.
pub const COMMAND_DEADLINE: Duration = Duration::from_secs(1);
/// Default of [`RedisQueueConfig::wait_timeout`]: replicas on the same
/// network confirm in about a round trip; half the API's deadline leaves the
/// rest for the write itself.
pub const WAIT_TIMEOUT: Duration = Duration::from_millis(500);
/// Longest pause between two attempts to reconnect the shared connection.
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(500);
/// Retries per reconnect cycle after its first attempt: none, so that while
/// Redis refuses connections every command that waits for the reconnect
/// gets its error at once (the API answers 503 in milliseconds, not after a
/// cycle of back-offs); the next command starts a new cycle, so service
/// resumes with the first command after Redis is back. Callers that must
/// not give up (the worker) retry with their own back-off.
const RECONNECT_ATTEMPTS: usize = 0;
/// The consumer released entries are parked under until a reclaim takes them.
const RELEASED_CONSUMER: &str = "released";
/// `XCLAIM ... IDLE` given to a released entry: longer than any visibility
/// timeout, so the next reclaim by any worker takes it.
const RELEASED_IDLE_MS: u64 = 365 * 24 * 60 * 60 * 1000;
/// How long a blocking read may overrun its own BLOCK time before the
/// connection is presumed dead (e.g. a half-open TCP connection).
const BLOCKING_GRACE: Duration = Duration::from_secs(5);
/// Idle blocking connections kept for reuse; more are closed after use.
const MAX_IDLE_BLOCKING: usize = 64;
/// How much of an unreadable payload is logged.
const LOG_PAYLOAD_CHARS: usize = 200;

/// How to reach Redis and how to lay out keys in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisQueueConfig {
    /// A `redis://` (or `rediss://`, `redis+unix://`) URL, or a
    /// `redis+sentinel://` one (see [`SentinelUrl`]).
    pub url: String,
    /// Prepended to every key, so several deployments (or tests) can share one Redis.
    pub key_prefix: String,
    /// How long a task's state is kept after its last write (pending or final);
    /// after that, `GET /results/{id}` answers 404.
    pub result_ttl: Duration,
    /// Most unfinished jobs (waiting or running) the stream may hold; a
    /// submit beyond it fails with [`QueueError::Full`]. `None`: no limit.
    pub max_queue_length: Option<u64>,
    /// Overall deadline of each non-blocking operation (reconnect and one
    /// retry included); also the reply and connect timeouts. Short for the
    /// API, which should answer 503 rather than keep a client waiting;
    /// workers, which retry anyway, can afford a longer one on a busy host.
    pub command_deadline: Duration,
    /// Durable writes: after each submit and each result, `WAIT` until this
    /// many replicas have the write (0: do not wait). A write Redis
    /// acknowledged but no replica had yet is lost when a failover
    /// promotes a replica; with this, an acknowledged job survives it.
    pub wait_replicas: u32,
    /// Longest a `WAIT` takes; when fewer replicas confirm in that time the
    /// operation fails ([`QueueError::NotReplicated`]), so the API answers
    /// 503 instead of acknowledging a job that may be lost.
    pub wait_timeout: Duration,
}

impl RedisQueueConfig {
    /// The defaults (prefix `code-runner`, 24 h TTL) for the Redis at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }
}

impl Default for RedisQueueConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379/".to_owned(),
            key_prefix: "code-runner".to_owned(),
            result_ttl: Duration::from_secs(24 * 60 * 60),
            max_queue_length: None,
            command_deadline: COMMAND_DEADLINE,
            wait_replicas: 0,
            wait_timeout: WAIT_TIMEOUT,
        }
    }
}

/// The [`Queue`] on Redis. Cloning is cheap and clones share connections.
#[derive(Clone)]
pub struct RedisQueue {
    inner: Arc<Inner>,
}

struct Inner {
    /// The primary's connections (the shared one, blocking ones, the
    /// subscriber's client), replaced after a Sentinel failover.
    primary: Arc<primary::Primary>,
    keys: Keys,
    /// `result_ttl` in milliseconds, at least 1 (Redis rejects `PX 0`).
    ttl_ms: u64,
    /// `max_queue_length`, 0 for none (as `submit.lua` takes it).
    max_queue_length: u64,
    /// See [`RedisQueueConfig::command_deadline`].
    command_deadline: Duration,
    /// `(replicas, timeout in ms)` of the `WAIT` after each submit and
    /// result; `None`: no waiting.
    wait: Option<(u32, u64)>,
    /// The one subscriber connection for waiters, started on first use
    /// (workers never wait, so they never open it).
    notifier: std::sync::OnceLock<notify::Notifier>,
}

/// The Redis names derived from the key prefix.
#[derive(Debug)]
struct Keys {
    /// The key prefix itself (`P`), for the live logs' keys.
    prefix: String,
    jobs: String,
    group: String,
    /// `{prefix}:task:`; the task id is appended.
    task_prefix: String,
    /// `{prefix}:client:`; the client's name is appended.
    client_prefix: String,
    /// `{prefix}:testset:`; the set's id (`sha256:<hex>`) is appended.
    testset_prefix: String,
    /// Result channels, running marks, worker statuses, counters.
    observe: observe::ObserveKeys,
}

impl Keys {
    fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            jobs: format!("{prefix}:jobs"),
            group: format!("{prefix}:workers"),
            task_prefix: format!("{prefix}:task:"),
            client_prefix: format!("{prefix}:client:"),
            testset_prefix: format!("{prefix}:testset:"),
            observe: observe::ObserveKeys::new(prefix),
        }
    }

    fn task(&self, id: &TaskId) -> String {
        format!("{}{id}", self.task_prefix)
    }

    fn client(&self, client: &str) -> String {
        format!("{}{client}", self.client_prefix)
    }

    fn testset(&self, id: &str) -> String {
        format!("{}{id}", self.testset_prefix)
    }
}

/// An owner or client name as it is written into states and key names:
/// as given when it is plain (ASCII letters, digits, `-_.:/`), which the
/// scripts can splice into JSON and match without decoding it; otherwise
/// hex-encoded behind an `x`, the same way every time, so comparisons
/// still hold.
fn plain_name(name: &str) -> std::borrow::Cow<'_, str> {
    let plain = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b));
    if plain {
        std::borrow::Cow::Borrowed(name)
    } else {
        let mut hex = String::with_capacity(1 + 2 * name.len());
        hex.push('x');
        for b in name.bytes() {
            hex.push_str(&format!("{b:02x}"));
        }
        std::borrow::Cow::Owned(hex)
    }
}

/// The JSON of a pending state: `state` first, then the owner and client
/// when there are (the scripts find them by these prefixes).
#[derive(Serialize)]
struct PendingRecord<'a> {
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client: Option<&'a str>,
}

/// A stored state (or one published whole to waiters) as `owner` may see
/// it: `None` for a task of another owner.
fn decode_state(
    id: &TaskId,
    bytes: &[u8],
    owner: Option<&str>,
) -> Result<Option<TaskState>, QueueError> {
    let asker = owner.map(plain_name);
    if !may_see(stored_owner(bytes), asker.as_deref()) {
        return Ok(None);
    }
    serde_json::from_slice(bytes)
        .map(Some)
        .map_err(|source| QueueError::Corrupt {
            id: id.to_string(),
            source,
        })
}

/// The largest final state `complete.lua` publishes whole on the task's
/// channel, so that a waiter needs no read after the message; a larger one
/// (much output) is announced as `done` and read, rather than pushed through
/// the subscriber connection every waiter of the process shares.
const PUBLISHED_STATE_MAX_BYTES: usize = 64 << 10;

/// The owner a stored state names (see `complete.lua`), found by its
/// prefix: `{"state":"…","owner":"…"`.
fn stored_owner(json: &[u8]) -> Option<&str> {
    let rest = json.strip_prefix(br#"{"state":""#)?;
    let end = rest.iter().position(|&b| b == b'"')?;
    let rest = rest[end..].strip_prefix(br#"","owner":""#)?;
    let end = rest.iter().position(|&b| b == b'"')?;
    std::str::from_utf8(&rest[..end]).ok()
}

impl fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisQueue")
            .field("keys", &self.inner.keys)
            .field("ttl_ms", &self.inner.ttl_ms)
            .finish_non_exhaustive()
    }
}

/// Wraps a Redis error with the name of the step that failed.
fn redis_err(op: &'static str) -> impl FnOnce(RedisError) -> QueueError {
    move |source| QueueError::Redis { op, source }
}

/// JSON of a record defined in this crate. Serialization cannot fail for
/// these types: they hold only strings, integers, booleans, options and
/// unit-like enums, and serde_json fails only on non-string map keys or a
/// failing custom `Serialize`, neither of which they have.
fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("queue records always serialize to JSON")
}

/// An error and its sources, `outer: inner: root`, for logs.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The pool is a plain Vec that no critical section can leave half-updated,
    // so a poisoned lock is safe to reuse.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl RedisQueue {
    /// Connects to Redis and makes sure the stream and its consumer group exist.
    ///
    /// Fails when Redis cannot be reached, so a misconfigured process stops at
    /// start-up instead of failing every request.
    pub async fn connect(config: RedisQueueConfig) -> Result<Self, QueueError> {
        let manager_config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(config.command_deadline))
            .set_connection_timeout(Some(config.command_deadline))
            // Reconnects back off exponentially from 100 ms; capping each pause
            // and the attempts per cycle means service resumes within moments
            // of Redis coming back, and that commands issued while it is down
            // fail fast instead of queueing behind a long reconnect cycle.
            .set_max_delay(RECONNECT_MAX_DELAY)
            .set_number_of_retries(RECONNECT_ATTEMPTS);
        let primary =
            primary::Primary::connect(config.url.as_str(), manager_config, config.command_deadline)
                .await
                .map_err(|e| {
                    // A URL that cannot work fails at once; an unreachable Redis
                    // is worth waiting for.
                    let op = if e.kind() == redis::ErrorKind::InvalidClientConfig {
                        "open url"
                    } else {
                        "connect"
                    };
                    redis_err(op)(e)
                })?;
        let queue = Self {
            inner: Arc::new(Inner {
                primary: Arc::new(primary),
                keys: Keys::new(&config.key_prefix),
                ttl_ms: u64::try_from(config.result_ttl.as_millis())
                    .unwrap_or(u64::MAX)
                    .max(1),
                max_queue_length: config.max_queue_length.unwrap_or(0),
                command_deadline: config.command_deadline,
                wait: (config.wait_replicas > 0).then(|| {
                    (
                        config.wait_replicas,
                        u64::try_from(config.wait_timeout.as_millis())
                            .unwrap_or(u64::MAX)
                            .max(1),
                    )
                }),
                notifier: std::sync::OnceLock::new(),
            }),
        };
        queue.ensure_group().await?;
        Ok(queue)
    }

    /// Runs one command on the shared connection. When the connection turns
    /// out to have been dropped (Redis restarted, or a proxy closed an idle
    /// socket), the manager is already reconnecting and the command is sent
    /// once more on the new connection, so a Redis restart costs callers
    /// latency rather than errors. That is safe because every command sent
    /// here is idempotent: reads, `submit.lua` (a known id is a no-op),
    /// `complete.lua` (first final state wins; XACK/XDEL repeat harmlessly),
    /// and the other scripts (each a no-op or the same answer when repeated).
    ///
    /// The whole operation, retry included, has `command_deadline`: while
    /// Redis is down, callers get [`QueueError::Timeout`] (or the connection
    /// error) within that time rather than waiting for a reconnect.
    async fn on_shared<T, F, Fut>(&self, op: &'static str, run: F) -> Result<T, QueueError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let primary = &self.inner.primary;
        let attempt = async {
            match run(primary.node().shared.clone()).await {
                Err(e) if e.is_connection_dropped() => {
                    tracing::warn!(op, error = %e, "Redis connection dropped; retrying once");
                    primary.suspect(&e);
                    run(primary.node().shared.clone())
                        .await
                        .inspect_err(|e| primary.suspect(e))
                        .map_err(redis_err(op))
                }
                other => other
                    .inspect_err(|e| primary.suspect(e))
                    .map_err(redis_err(op)),
            }
        };
        let deadline = self.inner.command_deadline;
        match tokio::time::timeout(deadline, attempt).await {
            Ok(done) => done,
            Err(_) => {
                primary.suspect(&io::Error::from(io::ErrorKind::TimedOut).into());
                Err(QueueError::Timeout {
                    op,
                    waited: deadline,
                })
            }
        }
    }

    /// The shared connection of the current primary, for the few callers
    /// that must not retry (see `on_shared`).
    fn shared(&self) -> ConnectionManager {
        self.inner.primary.node().shared.clone()
    }

    /// Runs `eval` (an `EVALSHA` of `script`). Without durable writes, on
    /// the shared connection as `on_shared` does. With them, followed by
    /// `WAIT` in the same pipeline, on a dedicated connection: `WAIT` counts
    /// the replicas that have every write made *on its connection* (so the
    /// two must travel together; after a reconnect a lone `WAIT` would vouch
    /// for nothing), and it blocks its connection until they confirm, which
    /// on the shared one would hold up every other command of the process.
    /// Fails with [`QueueError::NotReplicated`] when too few replicas
    /// confirm in time.
    async fn eval_durably<T: FromRedisValue + Send>(
        &self,
        op: &'static str,
        script: &'static Script,
        eval: Cmd,
    ) -> Result<T, QueueError> {
        let Some((replicas, timeout_ms)) = self.inner.wait else {
            let eval = &eval;
            return self
                .on_shared(op, move |mut conn| async move {
                    match eval.query_async::<T>(&mut conn).await {
                        // A Redis that restarted, or a replica promoted by
                        // a failover, has no scripts loaded.
                        Err(e) if e.code() == Some("NOSCRIPT") => {
                            script.load_async(&mut conn).await?;
                            eval.query_async::<T>(&mut conn).await
                        }
                        other => other,
                    }
                })
                .await;
        };
        let mut pipe = redis::pipe();
        pipe.add_command(eval)
            .cmd("WAIT")
            .arg(replicas)
            .arg(timeout_ms);
        let attempt = async {
            let mut loaded = false;
            let mut retried_dead_connection = false;
            loop {
                let node = self.inner.primary.node();
                let (mut conn, pooled) = match Self::pooled_blocking_connection(&node) {
                    Some(conn) => (conn, true),
                    None => (self.new_blocking_connection(&node).await?, false),
                };
                match pipe.query_async::<(T, u32)>(&mut conn).await {
                    Ok(reply) => {
                        Self::return_blocking_connection(&node, conn);
                        return Ok(reply);
                    }
                    Err(e) if e.code() == Some("NOSCRIPT") && !loaded => {
                        loaded = true;
                        script.load_async(&mut conn).await.map_err(redis_err(op))?;
                        Self::return_blocking_connection(&node, conn);
                    }
                    // Idle since before a Redis restart: once more on a
                    // fresh connection (every script here is idempotent).
                    Err(e) if pooled && e.is_connection_dropped() && !retried_dead_connection => {
                        retried_dead_connection = true;
                        lock(&node.blocking_pool).clear();
                    }
                    Err(e) => {
                        self.inner.primary.suspect(&e);
                        return Err(redis_err(op)(e));
                    }
                }
            }
        };
        let deadline = self.inner.command_deadline;
        let (reply, acked) = match tokio::time::timeout(deadline, attempt).await {
            Ok(done) => done?,
            Err(_) => {
                self.inner
                    .primary
                    .suspect(&io::Error::from(io::ErrorKind::TimedOut).into());
                return Err(QueueError::Timeout {
                    op,
                    waited: deadline,
                });
            }
        };
        if acked < replicas {
            return Err(QueueError::NotReplicated {
                op,
                acked,
                wanted: replicas,
            });
        }
        Ok(reply)
    }

    /// Creates the stream and the consumer group if missing.
    ///
    /// The group starts at id `0`, not `$`: on a new stream the two are the
    /// same, and if the group is ever lost while the stream survives (deleted by
    /// hand, or the stream re-created by a submit after a Redis restart) every
    /// entry still in the stream is an unfinished job, which `0` delivers and
    /// `$` would skip for ever.
    async fn ensure_group(&self) -> Result<(), QueueError> {
        let mut cmd = redis::cmd("XGROUP");
        cmd.arg("CREATE")
            .arg(&self.inner.keys.jobs)
            .arg(&self.inner.keys.group)
            .arg("0")
            .arg("MKSTREAM");
        let cmd = &cmd;
        self.on_shared("XGROUP CREATE", move |mut conn| async move {
            match cmd.query_async::<()>(&mut conn).await {
                // Another process (or an earlier run) created it first.
                Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
                other => other,
            }
        })
        .await
    }

    /// Atomic unit `submit.lua`. Returns false when the task id was already
    /// known, [`QueueError::Full`] when the queue is at its maximum length,
    /// [`QueueError::ClientFull`] when `quota`'s client is at its cap.
    async fn submit_atomic(
        &self,
        job: &Job,
        quota: Option<ClientQuota<'_>>,
    ) -> Result<bool, QueueError> {
        let owner = job.owner.as_deref().map(plain_name);
        let client = quota.map(|q| plain_name(q.client));
        let pending = to_json(&PendingRecord {
            state: "pending",
            owner: owner.as_deref(),
            client: client.as_deref(),
        });
        let mut eval = redis::cmd("EVALSHA");
        eval.arg(SUBMIT.get_hash())
            .arg(if client.is_some() { 3 } else { 2 })
            .arg(self.inner.keys.task(&job.id))
            .arg(&self.inner.keys.jobs);
        if let Some(client) = &client {
            eval.arg(self.inner.keys.client(client));
        }
        eval.arg(pending)
            .arg(self.inner.ttl_ms)
            .arg(job.id.to_string())
            .arg(to_json(job))
            .arg(self.inner.max_queue_length)
            .arg(quota.map_or(0, |q| q.max_unfinished.max(1)))
            .arg(now_ms());
        let reply: Value = self.eval_durably("submit script", &SUBMIT, eval).await?;
        match reply {
            Value::Int(-1) => Err(QueueError::Full {
                limit: self.inner.max_queue_length,
            }),
            Value::Int(-2) => Err(QueueError::ClientFull {
                limit: quota.map_or(0, |q| q.max_unfinished),
            }),
            Value::Nil => Ok(false),
            _ => Ok(true),
        }
    }

    /// Atomic unit `complete.lua`. Returns false when an earlier final
    /// state was kept. `owner`: the job's, when it could be read.
    async fn complete_atomic(
        &self,
        id: &TaskId,
        entry_id: &str,
        result: &JobResult,
        owner: Option<&str>,
    ) -> Result<bool, QueueError> {
        let mut eval = redis::cmd("EVALSHA");
        eval.arg(COMPLETE.get_hash())
            .arg(2)
            .arg(self.inner.keys.task(id))
            .arg(&self.inner.keys.jobs)
            .arg(&self.inner.keys.group)
            .arg(entry_id)
            .arg(done_json(result))
            .arg(self.inner.ttl_ms)
            .arg(owner.map(plain_name).unwrap_or_default().as_ref())
            .arg(PUBLISHED_STATE_MAX_BYTES);
        let written: i64 = self
            .eval_durably("complete script", &COMPLETE, eval)
            .await?;
        Ok(written == 1)
    }

    /// Atomic unit `settled.lua`: which of `tasks` have a final state. With
    /// `entries`, the entries of those that do are acknowledged and deleted.
    async fn settled_atomic(
        &self,
        tasks: &[TaskId],
        entries: Option<&[&str]>,
    ) -> Result<Vec<bool>, QueueError> {
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = SETTLED.prepare_invoke();
        invocation
            .key(&self.inner.keys.jobs)
            .arg(&self.inner.keys.group);
        for (i, id) in tasks.iter().enumerate() {
            invocation
                .key(self.inner.keys.task(id))
                .arg(entries.map_or("", |e| e[i]));
        }
        let invocation = &invocation;
        let flags: Vec<i64> = self
            .on_shared("settled script", move |mut conn| async move {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
        Ok(flags.into_iter().map(|f| f == 1).collect())
    }

    /// Drops the deliveries whose task is already final (cancelled while
    /// queued, or finished by an earlier delivery), retiring their entries;
    /// keeps every delivery when that check fails. The entries are already
    /// this consumer's: an error here must not strand them until the
    /// visibility timeout. Running a task that was in fact cancelled is
    /// harmless: the worker's watch stops it, and its result loses to the
    /// stored one.
    async fn drop_settled_or_keep(&self, deliveries: Vec<Delivery>) -> Vec<Delivery> {
        let ids: Vec<TaskId> = deliveries.iter().map(|d| d.job.id).collect();
        let entries: Vec<&str> = deliveries.iter().map(|d| d.receipt.as_str()).collect();
        match self.settled_atomic(&ids, Some(&entries)).await {
            Ok(settled) => deliveries
                .into_iter()
                .zip(settled)
                .filter_map(|(delivery, settled)| {
                    if settled {
                        tracing::debug!(task_id = %delivery.job.id, "task already final; not running it");
                    }
                    (!settled).then_some(delivery)
                })
                .collect(),
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "cannot check delivered jobs for cancellation; running them");
                deliveries
            }
        }
    }

    /// Atomic unit `reclaim.lua`: entries idle past the visibility timeout,
    /// now this consumer's, with their delivery counts.
    async fn reclaim_atomic(
        &self,
        consumer: &str,
        max: usize,
        min_idle_ms: u64,
    ) -> Result<Vec<(StreamId, u32)>, QueueError> {
        let mut invocation = RECLAIM.prepare_invoke();
        invocation
            .key(&self.inner.keys.jobs)
            .arg(&self.inner.keys.group)
            .arg(consumer)
            .arg(min_idle_ms)
            .arg(max);
        let invocation = &invocation;
        let reply: Vec<(String, Value, u32)> = self
            .on_shared("reclaim script", move |mut conn| async move {
                match invocation.invoke_async(&mut conn).await {
                    // Lost with a Redis restart without persistence; nothing
                    // to reclaim, and the next reserve re-creates it.
                    Err(e) if e.code() == Some("NOGROUP") => Ok(Vec::new()),
                    other => other,
                }
            })
            .await?;
        Ok(reply
            .into_iter()
            .map(|(id, fields, count)| {
                let map = redis::from_redis_value(fields).unwrap_or_default();
                (
                    StreamId {
                        id,
                        map,
                        ..StreamId::default()
                    },
                    count,
                )
            })
            .collect())
    }

    /// Acknowledges and deletes an entry that belongs to no task we can name.
    async fn discard_entry(&self, entry_id: &str) -> Result<(), QueueError> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("XACK")
            .arg(&self.inner.keys.jobs)
            .arg(&self.inner.keys.group)
            .arg(entry_id)
            .ignore()
            .cmd("XDEL")
            .arg(&self.inner.keys.jobs)
            .arg(entry_id)
            .ignore();
        let pipe = &pipe;
        self.on_shared("XACK+XDEL", move |mut conn| async move {
            pipe.query_async::<()>(&mut conn).await
        })
        .await
    }

    /// An idle dedicated connection for a blocking read, if the pool has one.
    fn pooled_blocking_connection(node: &primary::Node) -> Option<MultiplexedConnection> {
        lock(&node.blocking_pool).pop()
    }

    /// A new dedicated connection for blocking reads. It has no response
    /// timeout of its own because a BLOCK read legitimately takes as long as
    /// it was told to wait; `read_new` bounds each read instead.
    async fn new_blocking_connection(
        &self,
        node: &primary::Node,
    ) -> Result<MultiplexedConnection, QueueError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.inner.command_deadline))
            .set_response_timeout(None);
        node.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .inspect_err(|e| self.inner.primary.suspect(e))
            .map_err(redis_err("connect for XREADGROUP"))
    }

    fn return_blocking_connection(node: &primary::Node, conn: MultiplexedConnection) {
        let mut pool = lock(&node.blocking_pool);
        if pool.len() < MAX_IDLE_BLOCKING {
            pool.push(conn);
        }
    }

    /// One `XREADGROUP ... BLOCK block_ms` for new entries, on a dedicated
    /// connection. Tries once more when a pooled connection turns out to be
    /// dead (Redis restarted since it was last used), and re-creates the
    /// consumer group once if Redis lost it (a restart without persistence).
    async fn read_new(
        &self,
        consumer: &str,
        max: usize,
        block_ms: u64,
    ) -> Result<Vec<StreamId>, QueueError> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&self.inner.keys.group)
            .arg(consumer)
            .arg("COUNT")
            .arg(max)
            .arg("BLOCK")
            .arg(block_ms)
            .arg("STREAMS")
            .arg(&self.inner.keys.jobs)
            .arg(">");
        let bound = Duration::from_millis(block_ms) + BLOCKING_GRACE;
        let mut recreated_group = false;
        let mut retried_dead_connection = false;
        loop {
            // The pool belongs to the node: after a failover, reads start
            // on connections to the new primary.
            let node = self.inner.primary.node();
            let (mut conn, pooled) = match Self::pooled_blocking_connection(&node) {
                Some(conn) => (conn, true),
                None => (self.new_blocking_connection(&node).await?, false),
            };
            let read = cmd.query_async::<Option<StreamReadReply>>(&mut conn);
            // On any error the connection is dropped rather than pooled: its
            // state is unknown, and a fresh one costs one round trip.
            let reply = match tokio::time::timeout(bound, read).await {
                Ok(Ok(reply)) => {
                    Self::return_blocking_connection(&node, conn);
                    reply
                }
                Ok(Err(e)) if e.code() == Some("NOGROUP") && !recreated_group => {
                    tracing::warn!(
                        stream = %self.inner.keys.jobs,
                        group = %self.inner.keys.group,
                        "consumer group missing (Redis restarted or flushed?); re-creating it"
                    );
                    recreated_group = true;
                    Self::return_blocking_connection(&node, conn);
                    self.ensure_group().await?;
                    continue;
                }
                Ok(Err(e)) if pooled && e.is_connection_dropped() && !retried_dead_connection => {
                    tracing::debug!(error = %e, "idle XREADGROUP connection was dead; reconnecting");
                    retried_dead_connection = true;
                    // Whatever killed this one (usually a Redis restart) has
                    // most likely killed the other idle ones too: drop them all,
                    // so the retry and later reads start on fresh connections.
                    lock(&node.blocking_pool).clear();
                    continue;
                }
                Ok(Err(e)) => {
                    self.inner.primary.suspect(&e);
                    return Err(redis_err("XREADGROUP")(e));
                }
                Err(_elapsed) => {
                    let e = io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no reply to XREADGROUP BLOCK {block_ms} within {bound:?}"),
                    );
                    let e = RedisError::from(e);
                    self.inner.primary.suspect(&e);
                    return Err(redis_err("XREADGROUP")(e));
                }
            };
            return Ok(reply
                .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
                .unwrap_or_default());
        }
    }

    /// Turns stream entries into deliveries. An entry whose job cannot be read
    /// is retired here so it cannot block the queue or be redelivered for
    /// ever: its task (when the id can be recovered) gets an `internal_error`
    /// final state, and the entry is acknowledged and deleted, with an error
    /// logged either way.
    async fn decode_entries(&self, entries: Vec<StreamId>, attempt: u32) -> Vec<Delivery> {
        let mut deliveries = Vec::with_capacity(entries.len());
        for entry in entries {
            match decode_job(&entry) {
                Ok(job) => deliveries.push(Delivery {
                    job,
                    receipt: entry.id,
                    attempt,
                }),
                Err(why) => self.retire_unreadable(&entry, &why).await,
            }
        }
        deliveries
    }

    async fn retire_unreadable(&self, entry: &StreamId, why: &str) {
        let task_id = recover_task_id(entry);
        let payload = preview(entry.map.get(FIELD_JOB));
        tracing::error!(
            entry_id = %entry.id,
            task_id = task_id.map(|id| id.to_string()),
            payload = %payload,
            reason = %why,
            "unreadable job in the stream; skipping it"
        );
        let retired = match task_id {
            Some(id) => {
                let result = JobResult::internal_error(
                    format!("the queued job could not be read: {why}"),
                    now_ms(),
                );
                // The owner, if any, is kept from the pending state.
                self.complete_atomic(&id, &entry.id, &result, None)
                    .await
                    .map(drop)
            }
            None => self.discard_entry(&entry.id).await,
        };
        if let Err(e) = retired {
            // The entry stays pending in the group; it is not lost, only not
            // retired yet. Failing the whole reserve would lose the good jobs
            // read in the same batch, so log and go on.
            tracing::error!(
                entry_id = %entry.id,
                error = %error_chain(&e),
                "could not retire unreadable stream entry"
            );
        }
    }
}

/// The JSON of a final state as the scripts take it: `{"state":"done",`
/// first (16 bytes, which they replace to add the owner).
fn done_json(result: &JobResult) -> String {
    let json = serde_json::to_string(&DoneRecord {
        state: "done",
        result,
    })
    .expect("queue records always serialize to JSON");
    debug_assert!(json.starts_with(r#"{"state":"done","#));
    json
}

/// [`TaskState::Done`] as serde writes it, without cloning the result.
#[derive(Serialize)]
struct DoneRecord<'a> {
    state: &'static str,
    #[serde(flatten)]
    result: &'a JobResult,
}

/// The job in a stream entry, or why it cannot be read.
fn decode_job(entry: &StreamId) -> Result<Job, String> {
    match entry.map.get(FIELD_JOB) {
        Some(Value::BulkString(bytes)) => {
            serde_json::from_slice(bytes).map_err(|e| format!("invalid job JSON: {e}"))
        }
        Some(other) => Err(format!("field `{FIELD_JOB}` is not a string: {other:?}")),
        None => Err(format!("no `{FIELD_JOB}` field")),
    }
}

/// The task id of an unreadable entry: from its `id` field, or failing that
/// from an `id` in whatever JSON the `job` field holds.
fn recover_task_id(entry: &StreamId) -> Option<TaskId> {
    if let Some(Value::BulkString(bytes)) = entry.map.get(FIELD_ID) {
        if let Some(id) = std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| TaskId::from_str(s).ok())
        {
            return Some(id);
        }
    }
    let Some(Value::BulkString(bytes)) = entry.map.get(FIELD_JOB) else {
        return None;
    };
    let json: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    TaskId::from_str(json.get("id")?.as_str()?).ok()
}

/// The start of a payload, for logs.
fn preview(value: Option<&Value>) -> String {
    match value {
        Some(Value::BulkString(bytes)) => String::from_utf8_lossy(bytes)
            .chars()
            .take(LOG_PAYLOAD_CHARS)
            .collect(),
        Some(other) => format!("{other:?}")
            .chars()
            .take(LOG_PAYLOAD_CHARS)
            .collect(),
        None => "(none)".to_owned(),
    }
}

#[async_trait]
impl Queue for RedisQueue {
    /// A task id that is already known is not queued again, so a submit
    /// retried after a lost reply cannot run the job twice.
    async fn submit_for(
        &self,
        job: &Job,
        quota: Option<ClientQuota<'_>>,
    ) -> Result<(), QueueError> {
        if !self.submit_atomic(job, quota).await? {
            tracing::debug!(task_id = %job.id, "task already known; not queued again");
        }
        Ok(())
    }

    async fn state_for(
        &self,
        id: &TaskId,
        owner: Option<&str>,
    ) -> Result<Option<TaskState>, QueueError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.inner.keys.task(id));
        let cmd = &cmd;
        let raw: Option<Vec<u8>> = self
            .on_shared("GET task state", move |mut conn| async move {
                cmd.query_async(&mut conn).await
            })
            .await?;
        match raw {
            Some(bytes) => decode_state(id, &bytes, owner),
            None => Ok(None),
        }
    }

    /// Not cancel-safe: if the future is dropped while Redis is delivering,
    /// the entries read stay pending in the consumer group, unacknowledged.
    /// Let a reserve run out its (short) wait instead of cancelling it.
    async fn reserve(
        &self,
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let deadline = Instant::now() + wait;
        loop {
            // BLOCK 0 means "for ever" to Redis, so never ask for less than 1 ms.
            let left = deadline.saturating_duration_since(Instant::now());
            let block_ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX).max(1);
            let entries = self.read_new(consumer, max, block_ms).await?;
            if entries.is_empty() {
                return Ok(Vec::new());
            }
            // Whether a task is already final (cancelled while queued) is
            // asked as its job starts (`begin`), not here: one round trip
            // less per job, and none between a job's arrival and its start.
            let deliveries = self.decode_entries(entries, 1).await;
            // When every entry read was unreadable, wait out the rest of the
            // time rather than report "nothing arrived" early.
            if !deliveries.is_empty() || Instant::now() >= deadline {
                return Ok(deliveries);
            }
        }
    }

    async fn complete(&self, delivery: &Delivery, result: &JobResult) -> Result<(), QueueError> {
        let id = delivery.job.id;
        let owner = delivery.job.owner.as_deref();
        if self
            .complete_atomic(&id, &delivery.receipt, result, owner)
            .await?
        {
            tracing::debug!(task_id = %id, "result stored");
        } else {
            tracing::debug!(task_id = %id, "task already has a final result; later one ignored");
        }
        if delivery.job.live.is_some() {
            // Best effort: the logs expire with the result TTL otherwise.
            if let Err(err) = self.settle_live(&id).await {
                tracing::debug!(task_id = %id, "could not shorten the live logs' expiry: {err}");
            }
        }
        Ok(())
    }

    async fn reclaim(
        &self,
        consumer: &str,
        max: usize,
        policy: &Redelivery,
    ) -> Result<Vec<Delivery>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let min_idle_ms = u64::try_from(policy.visibility_timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let claimed = self.reclaim_atomic(consumer, max, min_idle_ms).await?;
        let mut deliveries = Vec::with_capacity(claimed.len());
        for (entry, count) in claimed {
            if count > policy.max_deliveries {
                let Some(id) = recover_task_id(&entry) else {
                    self.retire_unreadable(&entry, "no task id").await;
                    continue;
                };
                tracing::warn!(
                    task_id = %id,
                    deliveries = count - 1,
                    "job's workers died on every delivery; failing it instead of retrying"
                );
                let result = JobResult::delivery_exhausted(count - 1, now_ms());
                let owner = decode_job(&entry).ok().and_then(|job| job.owner);
                if let Err(e) = self
                    .complete_atomic(&id, &entry.id, &result, owner.as_deref())
                    .await
                {
                    // Still pending: the next reclaim retires it. Failing the
                    // call would strand the other entries claimed with it.
                    tracing::error!(task_id = %id, error = %error_chain(&e), "cannot fail an exhausted job yet");
                }
                continue;
            }
            deliveries.extend(self.decode_entries(vec![entry], count).await);
        }
        let deliveries = self.drop_settled_or_keep(deliveries).await;
        for delivery in &deliveries {
            tracing::info!(
                task_id = %delivery.job.id,
                attempt = delivery.attempt,
                "reclaimed a job whose delivery timed out"
            );
        }
        Ok(deliveries)
    }

    /// `XCLAIM` to a parking consumer with a huge idle time (so any reclaim
    /// takes it) and the delivery counter set back by one (so this delivery
    /// does not count); `JUSTID` so the claim itself counts nothing either.
    async fn release(&self, delivery: &Delivery) -> Result<(), QueueError> {
        let mut cmd = redis::cmd("XCLAIM");
        // Handed to a consumer that never reads, so the log and `XINFO`
        // show it as released rather than held by a worker that has gone.
        cmd.arg(&self.inner.keys.jobs)
            .arg(&self.inner.keys.group)
            .arg(RELEASED_CONSUMER)
            .arg(0)
            .arg(&delivery.receipt)
            .arg("IDLE")
            .arg(RELEASED_IDLE_MS)
            .arg("RETRYCOUNT")
            .arg(delivery.attempt.saturating_sub(1))
            .arg("JUSTID");
        let cmd = &cmd;
        self.on_shared("XCLAIM (release)", move |mut conn| async move {
            cmd.query_async::<Value>(&mut conn).await.map(drop)
        })
        .await
    }

    async fn touch(&self, consumer: &str, delivery: &Delivery) -> Result<bool, QueueError> {
        let mut invocation = TOUCH.prepare_invoke();
        invocation
            .key(&self.inner.keys.jobs)
            .arg(&self.inner.keys.group)
            .arg(consumer)
            .arg(&delivery.receipt);
        let invocation = &invocation;
        let touched: i64 = self
            .on_shared("touch script", move |mut conn| async move {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
        Ok(touched == 1)
    }

    async fn cancel_for(
        &self,
        id: &TaskId,
        owner: Option<&str>,
        at_ms: u64,
    ) -> Result<Cancelled, QueueError> {
        let result = JobResult::cancelled(at_ms);
        let mut invocation = CANCEL.prepare_invoke();
        invocation
            .key(self.inner.keys.task(id))
            .arg(done_json(&result))
            .arg(self.inner.ttl_ms)
            .arg(owner.map(plain_name).unwrap_or_default().as_ref());
        let invocation = &invocation;
        let reply: Vec<Value> = self
            .on_shared("cancel script", move |mut conn| async move {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
        match reply.as_slice() {
            [Value::Int(1)] => Ok(Cancelled::Now(result)),
            [Value::Int(2), Value::BulkString(bytes)] => match serde_json::from_slice(bytes) {
                Ok(TaskState::Done(current)) => Ok(Cancelled::AlreadyFinished(current)),
                Ok(TaskState::Pending) => Ok(Cancelled::NotFound),
                Err(source) => Err(QueueError::Corrupt {
                    id: id.to_string(),
                    source,
                }),
            },
            _ => Ok(Cancelled::NotFound),
        }
    }

    async fn settled(&self, ids: &[TaskId]) -> Result<Vec<TaskId>, QueueError> {
        let flags = self.settled_atomic(ids, None).await?;
        Ok(ids
            .iter()
            .zip(flags)
            .filter_map(|(id, settled)| settled.then_some(*id))
            .collect())
    }

    async fn ping(&self) -> Result<(), QueueError> {
        let cmd = &redis::cmd("PING");
        self.on_shared("PING", move |mut conn| async move {
            cmd.query_async::<()>(&mut conn).await
        })
        .await
    }

    async fn wait_for_result_for(
        &self,
        id: &TaskId,
        owner: Option<&str>,
        timeout: Duration,
    ) -> Result<Option<TaskState>, QueueError> {
        self.wait_done(id, owner, timeout).await
    }

    async fn mark_running(&self, id: &TaskId, at_ms: u64) -> Result<(), QueueError> {
        self.set_running(id, at_ms).await
    }

    async fn begin(&self, id: &TaskId, receipt: &str, at_ms: u64) -> Result<bool, QueueError> {
        self.begin_atomic(id, receipt, at_ms).await
    }

    async fn running_since(&self, id: &TaskId) -> Result<Option<u64>, QueueError> {
        self.get_running(id).await
    }

    async fn report_progress(
        &self,
        id: &TaskId,
        tests: &[crate::judge::TestResult],
    ) -> Result<(), QueueError> {
        self.set_progress(id, tests).await
    }

    async fn store_testset(
        &self,
        id: &str,
        json: &str,
        tests: usize,
        ttl: Duration,
    ) -> Result<(), QueueError> {
        let mut pipe = redis::pipe();
        let key = self.inner.keys.testset(id);
        pipe.atomic()
            .cmd("HSET")
            .arg(&key)
            .arg("json")
            .arg(json)
            .arg("tests")
            .arg(tests)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(ttl.as_millis().max(1) as u64)
            .ignore();
        let pipe = &pipe;
        self.on_shared("HSET testset", move |mut conn| async move {
            pipe.query_async::<()>(&mut conn).await
        })
        .await
    }

    async fn testset_len(&self, id: &str, ttl: Duration) -> Result<Option<usize>, QueueError> {
        let mut pipe = redis::pipe();
        let key = self.inner.keys.testset(id);
        pipe.atomic()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(ttl.as_millis().max(1) as u64)
            .ignore()
            .cmd("HGET")
            .arg(&key)
            .arg("tests");
        let pipe = &pipe;
        let (tests,) = self
            .on_shared("HGET testset", move |mut conn| async move {
                pipe.query_async::<(Option<usize>,)>(&mut conn).await
            })
            .await?;
        Ok(tests)
    }

    async fn testset(&self, id: &str, ttl: Option<Duration>) -> Result<Option<String>, QueueError> {
        let mut pipe = redis::pipe();
        let key = self.inner.keys.testset(id);
        pipe.atomic();
        if let Some(ttl) = ttl {
            pipe.cmd("PEXPIRE")
                .arg(&key)
                .arg(ttl.as_millis().max(1) as u64)
                .ignore();
        }
        pipe.cmd("HGET").arg(&key).arg("json");
        let pipe = &pipe;
        let (json,) = self
            .on_shared("HGET testset", move |mut conn| async move {
                pipe.query_async::<(Option<String>,)>(&mut conn).await
            })
            .await?;
        Ok(json)
    }

    async fn progress(
        &self,
        id: &TaskId,
    ) -> Result<Option<Vec<crate::judge::TestResult>>, QueueError> {
        self.get_progress(id).await
    }

    async fn live_append(
        &self,
        id: &TaskId,
        log: crate::LiveLog,
        events: &[crate::LiveEvent],
    ) -> Result<(), QueueError> {
        self.append_live(id, log, events).await
    }

    async fn live_read(
        &self,
        id: &TaskId,
        log: crate::LiveLog,
        after: Option<&str>,
        wait: Duration,
    ) -> Result<Vec<crate::LiveEntry>, QueueError> {
        self.read_live(id, log, after, wait).await
    }

    async fn report_worker(&self, report: &crate::stats::WorkerReport) -> Result<(), QueueError> {
        self.store_report(report).await
    }

    async fn stats(&self) -> Result<crate::stats::QueueStats, QueueError> {
        self.read_stats().await
    }
}
