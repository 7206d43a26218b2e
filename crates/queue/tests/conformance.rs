//! The behaviour every [`Queue`] backend must have, written once and run
//! against each backend: the in-process `EmbeddedQueue` and `RedisQueue` on a
//! real `redis-server` (started per test by `code-runner-testkit`, so nothing
//! outlives a test, and isolated by key prefix besides).
//!
//! The `redis_only` module covers what only the Redis backend can get wrong:
//! foreign entries in the stream, blocking reads sharing a process with
//! ordinary commands, stream clean-up, and a lost consumer group.
//!
//! Waiting always polls with a hard cap; timings are asserted loosely, since
//! CI machines are slow and busy.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use code_runner_queue::{
    EmbeddedQueue, Job, JobResult, Queue, RedisQueue, RedisQueueConfig, TaskId, TaskState, Verdict,
};
use code_runner_testkit::{unique_prefix, RedisServer};

/// TTL for tests that are not about expiry: long enough never to matter.
const LONG_TTL: Duration = Duration::from_secs(600);
/// Upper bound for anything that should happen "soon".
const CAP: Duration = Duration::from_secs(10);

/// Makes queues of one backend; owns whatever the backend needs (a server).
enum Harness {
    Embedded,
    Redis { server: RedisServer, prefix: String },
}

impl Harness {
    fn embedded() -> Self {
        Harness::Embedded
    }

    fn redis() -> Self {
        Harness::Redis {
            server: RedisServer::start(),
            prefix: unique_prefix(),
        }
    }

    /// A queue with the given TTL. Every queue made by one harness shares the
    /// same prefix, as the API and the workers of one deployment do.
    async fn queue(&self, result_ttl: Duration) -> Arc<dyn Queue> {
        match self {
            Harness::Embedded => Arc::new(EmbeddedQueue::new(result_ttl)),
            Harness::Redis { server, prefix } => Arc::new(
                RedisQueue::connect(RedisQueueConfig {
                    url: server.url(),
                    key_prefix: prefix.clone(),
                    result_ttl,
                    max_queue_length: None,
                    command_deadline: code_runner_queue::COMMAND_DEADLINE,
                    ..RedisQueueConfig::default()
                })
                .await
                .expect("connect to the test redis-server"),
            ),
        }
    }
}

fn job() -> Job {
    Job {
        id: TaskId::new(),
        language: "python".into(),
        code: "print('Hello from Celery!')".into(),
        stdin: String::new(),
        submitted_at_ms: 1,
        args: Vec::new(),
        files: Vec::new(),
        time_limit_ms: None,
        memory_limit_mb: None,
        owner: None,
        judge: None,
        live: None,
    }
}

fn ok_result(stdout: &str) -> JobResult {
    let mut result = JobResult::internal_error("", 1);
    result.verdict = Verdict::Ok;
    result.message = None;
    result.stdout = stdout.into();
    result.exit_code = Some(0);
    result
}

/// Polls `check` until it returns true or `cap` passes; returns the last answer.
async fn eventually<F, Fut>(cap: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + cap;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The suite. Each case takes a harness so it can make queues with its own TTL.
mod cases {
    use super::*;

    pub async fn submit_then_state_is_pending(h: &Harness) {
        let q = h.queue(LONG_TTL).await;
        let j = job();
        q.submit(&j).await.unwrap();
        assert_eq!(q.state(&j.id).await.unwrap(), Some(TaskState::Pending));
    }

    pub async fn unknown_id_has_no_state(h: &Harness) {
        let q = h.queue(LONG_TTL).await;
        assert_eq!(q.state(&TaskId::new()).await.unwrap(), None);
    }

    pub async fn ping_answers(h: &Harness) {
        h.queue(LONG_TTL).await.ping().await.unwrap();
    }

    pub async fn reserve_delivers_a_job_once_across_consumers(h: &Harness) {
        let q = h.queue(LONG_TTL).await;
        let j = job();
        q.submit(&j).await.unwrap();

        let first = q.reserve("consumer-a", 10, CAP).await.unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].job, j);

        let short = Duration::from_millis(200);
        assert!(q.reserve("consumer-b", 10, short).await.unwrap().is_empty());
        assert!(q.reserve("consumer-a", 10, short).await.unwrap().is_empty());
    }

    pub async fn reserve_takes_at_most_max(h: &Harness) {
        let q = h.queue(LONG_TTL).await;
        for _ in 0..5 {
            q.submit(&job()).await.unwrap();
        }
        let got = q.reserve("c", 2, CAP).await.unwrap();
        assert_eq!(got.len(), 2);
        let rest = q.reserve("c", 10, CAP).await.unwrap();
        assert_eq!(rest.len(), 3);
    }

    pub async fn reserve_keeps_submission_order(h: &Harness) {
        let q = h.queue(LONG_TTL).await;
        let jobs: Vec<Job> = (0..5).map(|_| job()).collect();
        for j in &jobs {
            q.submit(j).await.unwrap();
        }
        let got: Vec<Job> = q
            .reserve("c", 10, CAP)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.job)
            .collect();
        assert_eq!(got, jobs);
    }

    pub async fn reserve_with_max_zero_returns_at_once(h: &Harness) {
        let q = h.queue(LONG_TTL).await;
        q.submit(&job()).await.unwrap();
        let t0 = Instant::now();
        assert!(q.reserve("c", 0, CAP).await.unwrap().is_empty());
        assert!(t0.elapsed() < CAP / 2);
        // The job is still there for a real reserve.
        assert_eq!(q.reserve("c", 1, CAP).await.unwrap().len(), 1);
    }

    pub async fn reserve_on_empty_queue_waits_then_returns_nothing(h: &Harness) {
        let q = h.queue(LONG_TTL).await;
        let wait = Duration::from_millis(300);
        let t0 = Instant::now();
        let got = q.reserve("c", 5, wait).await.unwrap();
        let took = t0.elapsed();
        assert!(got.is_empty());
        assert!(
            took >= Duration::from_millis(200),
            "returned early: {took:?}"
        );
        assert!(
            took < Duration::from_secs(5),
            "waited far too long: {took:?}"
        );
    }

    pub async fn reserve_with_zero_wait_does_not_block(h: &Harness) {
        let q = h.queue(LONG_TTL).await;
        let t0 = Instant::now();
        assert!(q.reserve("c", 5, Duration::ZERO).await.unwrap().is_empty());
        assert!(t0.elapsed() < Duration::from_secs(2));
    }

    pub async fn waiting_reserve_is_woken_by_submit(h: &Harness) {
        let q = h.queue(LONG_TTL).await;
        let long_wait = Duration::from_secs(20);
        let waiter = {
            let q = Arc::clone(&q);
            tokio::spawn(async move { q.reserve("c", 1, long_wait).await })
        };
        // Give the reserve a moment to start waiting; correctness does not
        // depend on it (a job already queued is returned at once).
        tokio::time::sleep(Duration::from_millis(100)).await;
        let j = job();
        let t0 = Instant::now();
        q.submit(&j).await.unwrap();
        let got = tokio::time::timeout(CAP, waiter)
            .await
            .expect("reserve was not woken by the submit")
            .unwrap()
            .unwrap();
        assert!(t0.elapsed() < long_wait / 2);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].job, j);
    }

    pub async fn complete_stores_done_and_first_result_wins(h: &Harness) {
        let q = h.queue(LONG_TTL).await;
        let j = job();
        q.submit(&j).await.unwrap();
        let delivery = q.reserve("c", 1, CAP).await.unwrap().remove(0);

        let first = ok_result("first\n");
        q.complete(&delivery, &first).await.unwrap();
        assert_eq!(
            q.state(&j.id).await.unwrap(),
            Some(TaskState::Done(first.clone()))
        );

        // A redelivered copy finishing later must not replace the result.
        let mut second = ok_result("second\n");
        second.verdict = Verdict::RuntimeError;
        q.complete(&delivery, &second).await.unwrap();
        assert_eq!(q.state(&j.id).await.unwrap(), Some(TaskState::Done(first)));

        // A completed job is not delivered again.
        let again = q.reserve("c", 1, Duration::from_millis(200)).await;
        assert!(again.unwrap().is_empty());
    }

    pub async fn resubmitting_a_known_id_changes_nothing(h: &Harness) {
        let q = h.queue(LONG_TTL).await;
        let j = job();
        q.submit(&j).await.unwrap();
        q.submit(&j).await.unwrap();
        let delivery = q.reserve("c", 10, CAP).await.unwrap();
        assert_eq!(delivery.len(), 1, "the job was queued twice");

        let done = ok_result("out\n");
        q.complete(&delivery[0], &done).await.unwrap();
        q.submit(&j).await.unwrap();
        assert_eq!(q.state(&j.id).await.unwrap(), Some(TaskState::Done(done)));
        let again = q.reserve("c", 10, Duration::from_millis(200)).await;
        assert!(again.unwrap().is_empty());
    }

    pub async fn states_expire_after_the_ttl(h: &Harness) {
        let q = h.queue(Duration::from_secs(1)).await;
        let finished = job();
        let waiting = job();
        q.submit(&finished).await.unwrap();
        q.submit(&waiting).await.unwrap();
        let delivery = q.reserve("c", 1, CAP).await.unwrap().remove(0);
        assert_eq!(delivery.job, finished);
        q.complete(&delivery, &ok_result("x")).await.unwrap();
        assert!(matches!(
            q.state(&finished.id).await.unwrap(),
            Some(TaskState::Done(_))
        ));

        let gone = eventually(Duration::from_secs(5), || {
            let q = Arc::clone(&q);
            async move {
                q.state(&finished.id).await.unwrap().is_none()
                    && q.state(&waiting.id).await.unwrap().is_none()
            }
        })
        .await;
        assert!(gone, "states still present well after their 1 s TTL");
    }

    pub async fn many_jobs_two_consumers_each_delivered_exactly_once(h: &Harness) {
        const JOBS: usize = 200;
        let q = h.queue(LONG_TTL).await;
        let submitted: HashSet<TaskId> = {
            let mut ids = HashSet::new();
            for _ in 0..JOBS {
                let j = job();
                q.submit(&j).await.unwrap();
                ids.insert(j.id);
            }
            ids
        };

        let seen = Arc::new(std::sync::Mutex::new(Vec::<TaskId>::new()));
        let deadline = Instant::now() + Duration::from_secs(30);
        let consumers: Vec<_> = ["consumer-a", "consumer-b"]
            .into_iter()
            .map(|name| {
                let q = Arc::clone(&q);
                let seen = Arc::clone(&seen);
                tokio::spawn(async move {
                    let mut mine = 0usize;
                    while seen.lock().unwrap().len() < JOBS && Instant::now() < deadline {
                        let batch = q
                            .reserve(name, 7, Duration::from_millis(100))
                            .await
                            .unwrap();
                        for d in batch {
                            seen.lock().unwrap().push(d.job.id);
                            q.complete(&d, &ok_result(name)).await.unwrap();
                            mine += 1;
                        }
                    }
                    mine
                })
            })
            .collect();
        let mut per_consumer = Vec::new();
        for c in consumers {
            per_consumer.push(c.await.unwrap());
        }

        let seen = seen.lock().unwrap().clone();
        let mut counts: HashMap<TaskId, usize> = HashMap::new();
        for id in &seen {
            *counts.entry(*id).or_default() += 1;
        }
        let duplicated: Vec<_> = counts.iter().filter(|(_, &n)| n > 1).collect();
        assert!(duplicated.is_empty(), "delivered twice: {duplicated:?}");
        let delivered: HashSet<TaskId> = counts.keys().copied().collect();
        assert_eq!(delivered, submitted, "per consumer: {per_consumer:?}");
        for id in &submitted {
            assert!(matches!(
                q.state(id).await.unwrap(),
                Some(TaskState::Done(_))
            ));
        }
    }

    const SET_ID: &str = "sha256:00000000000000000000000000000000000000000000000000000000000000ab";
    const SET_JSON: &str = r#"{"tests":[{"name":"1","stdin":"1 2\n","expected_output":"3\n"}]}"#;

    pub async fn testsets_are_stored_and_fetched_and_unknown_ones_are_none(h: &Harness) {
        let q = h.queue(LONG_TTL).await;
        let other = SET_ID.replace("ab", "cd");
        assert_eq!(q.testset(&other, None).await.unwrap(), None);
        assert_eq!(q.testset_len(&other, LONG_TTL).await.unwrap(), None);
        q.store_testset(SET_ID, SET_JSON, 1, LONG_TTL)
            .await
            .unwrap();
        // Stored twice (the same id is the same content): still one set.
        q.store_testset(SET_ID, SET_JSON, 1, LONG_TTL)
            .await
            .unwrap();
        assert_eq!(
            q.testset(SET_ID, None).await.unwrap().as_deref(),
            Some(SET_JSON)
        );
        assert_eq!(
            q.testset(SET_ID, Some(LONG_TTL)).await.unwrap().as_deref(),
            Some(SET_JSON)
        );
        assert_eq!(q.testset_len(SET_ID, LONG_TTL).await.unwrap(), Some(1));
        assert_eq!(q.testset(&other, None).await.unwrap(), None);
    }

    pub async fn testsets_expire_after_their_ttl_which_use_refreshes(h: &Harness) {
        let q = h.queue(LONG_TTL).await;
        let ttl = Duration::from_millis(600);
        q.store_testset(SET_ID, SET_JSON, 1, ttl).await.unwrap();
        // Used every 300 ms for 1.2 s: twice the TTL, and still there.
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert_eq!(q.testset_len(SET_ID, ttl).await.unwrap(), Some(1));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(q.testset(SET_ID, Some(ttl)).await.unwrap().is_some());
        // A fetch without a TTL does not refresh it: gone a TTL later.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(q.testset(SET_ID, None).await.unwrap().is_some());
        assert!(
            eventually(CAP, || async {
                q.testset(SET_ID, None).await.unwrap().is_none()
            })
            .await,
            "the set never expired"
        );
        assert_eq!(q.testset_len(SET_ID, ttl).await.unwrap(), None);
    }

    pub async fn live_logs_are_read_in_order_resumed_after_an_id_and_wake_readers(h: &Harness) {
        use code_runner_queue::{LiveEvent, LiveLog, LiveStream};
        let q = h.queue(LONG_TTL).await;
        let id = TaskId::new();
        let chunk = |offset: u64, text: &str| LiveEvent::Output {
            stream: LiveStream::Stdout,
            offset,
            data: text.as_bytes().to_vec(),
        };
        // Nothing yet: a zero wait answers at once.
        let started = Instant::now();
        let none = q
            .live_read(&id, LiveLog::Output, None, Duration::ZERO)
            .await
            .unwrap();
        assert!(none.is_empty());
        assert!(started.elapsed() < Duration::from_secs(1));
        q.live_append(
            &id,
            LiveLog::Output,
            &[LiveEvent::State("running".into()), chunk(0, "ab")],
        )
        .await
        .unwrap();
        let first = q
            .live_read(&id, LiveLog::Output, None, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(first.len(), 2);
        assert_eq!(first[0].event, LiveEvent::State("running".into()));
        assert_eq!(first[1].event, chunk(0, "ab"));
        // After the last id: nothing again, and a blocked reader is woken
        // by the next append.
        let last = first[1].id.clone();
        let reader = {
            let (q, last) = (q.clone(), last.clone());
            tokio::spawn(async move {
                q.live_read(&id, LiveLog::Output, Some(&last), Duration::from_secs(5))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        q.live_append(&id, LiveLog::Output, &[chunk(2, "cd")])
            .await
            .unwrap();
        let woken = tokio::time::timeout(CAP, reader)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(woken.len(), 1);
        assert_eq!(woken[0].event, chunk(2, "cd"));
        // Resuming after the first entry repeats nothing and misses nothing.
        let resumed = q
            .live_read(&id, LiveLog::Output, Some(&first[0].id), Duration::ZERO)
            .await
            .unwrap();
        let events: Vec<LiveEvent> = resumed.into_iter().map(|e| e.event).collect();
        assert_eq!(events, [chunk(0, "ab"), chunk(2, "cd")]);
        // The input log is another log; other tasks' logs are apart.
        q.live_append(
            &id,
            LiveLog::Input,
            &[
                LiveEvent::Stdin(b"x".to_vec()),
                LiveEvent::StdinEnd,
                LiveEvent::Signal(2),
            ],
        )
        .await
        .unwrap();
        let input = q
            .live_read(&id, LiveLog::Input, None, Duration::ZERO)
            .await
            .unwrap();
        let input: Vec<LiveEvent> = input.into_iter().map(|e| e.event).collect();
        assert_eq!(
            input,
            [
                LiveEvent::Stdin(b"x".to_vec()),
                LiveEvent::StdinEnd,
                LiveEvent::Signal(2)
            ]
        );
        let other = q
            .live_read(
                &TaskId::new(),
                LiveLog::Output,
                None,
                Duration::from_millis(100),
            )
            .await
            .unwrap();
        assert!(other.is_empty());
    }
}

/// Generates one `#[tokio::test]` per case for a backend.
macro_rules! suite {
    ($backend:ident, $make:expr) => {
        mod $backend {
            use super::*;
            suite!(@cases $make;
                submit_then_state_is_pending,
                unknown_id_has_no_state,
                ping_answers,
                reserve_delivers_a_job_once_across_consumers,
                reserve_takes_at_most_max,
                reserve_keeps_submission_order,
                reserve_with_max_zero_returns_at_once,
                reserve_on_empty_queue_waits_then_returns_nothing,
                reserve_with_zero_wait_does_not_block,
                waiting_reserve_is_woken_by_submit,
                complete_stores_done_and_first_result_wins,
                resubmitting_a_known_id_changes_nothing,
                states_expire_after_the_ttl,
                many_jobs_two_consumers_each_delivered_exactly_once,
                testsets_are_stored_and_fetched_and_unknown_ones_are_none,
                testsets_expire_after_their_ttl_which_use_refreshes,
                live_logs_are_read_in_order_resumed_after_an_id_and_wake_readers,
            );
        }
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let harness = $make;
                cases::$case(&harness).await;
            }
        )*
    };
}

suite!(embedded_queue, Harness::embedded());
suite!(redis_queue, Harness::redis());

/// Behaviour only the Redis backend can get wrong.
mod redis_only {
    use super::*;
    use redis::aio::MultiplexedConnection;

    struct Fixture {
        server: RedisServer,
        prefix: String,
        queue: Arc<RedisQueue>,
        /// A plain connection for looking at (and tampering with) Redis directly.
        raw: MultiplexedConnection,
    }

    impl Fixture {
        async fn new() -> Self {
            let server = RedisServer::start();
            let prefix = unique_prefix();
            let queue = Arc::new(
                RedisQueue::connect(RedisQueueConfig {
                    url: server.url(),
                    key_prefix: prefix.clone(),
                    result_ttl: LONG_TTL,
                    max_queue_length: None,
                    command_deadline: code_runner_queue::COMMAND_DEADLINE,
                    ..RedisQueueConfig::default()
                })
                .await
                .unwrap(),
            );
            let raw = redis::Client::open(server.url())
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap();
            Fixture {
                server,
                prefix,
                queue,
                raw,
            }
        }

        fn jobs_key(&self) -> String {
            format!("{}:jobs", self.prefix)
        }

        async fn xadd(&self, fields: &[(&str, &str)]) {
            let mut cmd = redis::cmd("XADD");
            cmd.arg(self.jobs_key()).arg("*");
            for (k, v) in fields {
                cmd.arg(*k).arg(*v);
            }
            let _: String = cmd.query_async(&mut self.raw.clone()).await.unwrap();
        }

        async fn stream_len(&self) -> u64 {
            redis::cmd("XLEN")
                .arg(self.jobs_key())
                .query_async(&mut self.raw.clone())
                .await
                .unwrap()
        }

        /// Entries delivered to some consumer and not yet acknowledged.
        async fn pending_count(&self) -> u64 {
            let summary: redis::Value = redis::cmd("XPENDING")
                .arg(self.jobs_key())
                .arg(format!("{}:workers", self.prefix))
                .query_async(&mut self.raw.clone())
                .await
                .unwrap();
            match summary {
                redis::Value::Array(items) => redis::from_redis_value(items[0].clone()).unwrap(),
                other => panic!("unexpected XPENDING reply {other:?}"),
            }
        }

        async fn blocked_clients(&self) -> u64 {
            let info: String = redis::cmd("INFO")
                .arg("clients")
                .query_async(&mut self.raw.clone())
                .await
                .unwrap();
            info.lines()
                .find_map(|l| l.strip_prefix("blocked_clients:"))
                .and_then(|n| n.trim().parse().ok())
                .expect("INFO clients reports blocked_clients")
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn malformed_entries_are_skipped_without_blocking_later_jobs() {
        let f = Fixture::new().await;
        let q = &f.queue;
        let recoverable = TaskId::new();
        let recoverable_id = recoverable.to_string();
        // No recognisable fields at all: can only be discarded.
        f.xadd(&[("junk", "\u{1}\u{2}garbage")]).await;
        // A task id, but the job is not JSON: the task gets an internal error.
        f.xadd(&[("id", &recoverable_id), ("job", "{not json")])
            .await;
        // Valid JSON naming a task, but not a job.
        let other = TaskId::new();
        let half = format!(r#"{{"id":"{other}","language":42}}"#);
        f.xadd(&[("job", &half)]).await;
        let good = job();
        q.submit(&good).await.unwrap();

        let mut got = Vec::new();
        let deadline = Instant::now() + CAP;
        while got.is_empty() && Instant::now() < deadline {
            got = q
                .reserve("c", 10, Duration::from_millis(500))
                .await
                .unwrap();
        }
        assert_eq!(got.len(), 1, "expected only the good job: {got:?}");
        assert_eq!(got[0].job, good);

        for id in [recoverable, other] {
            match q.state(&id).await.unwrap() {
                Some(TaskState::Done(r)) => {
                    assert_eq!(r.verdict, Verdict::InternalError);
                    assert!(r.message.unwrap().contains("could not be read"));
                }
                state => panic!("task {id} of an unreadable entry has state {state:?}"),
            }
        }

        q.complete(&got[0], &ok_result("ok\n")).await.unwrap();
        assert_eq!(f.stream_len().await, 0, "entries left in the stream");
        assert_eq!(f.pending_count().await, 0, "entries left unacknowledged");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_blocked_reserve_does_not_stall_other_commands() {
        let f = Fixture::new().await;
        let q = Arc::clone(&f.queue);
        let wait = Duration::from_secs(2);
        let reserve = {
            let q = Arc::clone(&q);
            tokio::spawn(async move {
                let t0 = Instant::now();
                let got = q.reserve("blocked", 1, wait).await;
                (got, t0.elapsed())
            })
        };
        assert!(
            eventually(CAP, || async { f.blocked_clients().await >= 1 }).await,
            "the reserve never blocked in Redis"
        );

        // Reads while the reserve blocks: nothing here can wake it.
        let t0 = Instant::now();
        for _ in 0..100 {
            assert_eq!(q.state(&TaskId::new()).await.unwrap(), None);
        }
        q.ping().await.unwrap();
        let reads_took = t0.elapsed();
        assert!(!reserve.is_finished(), "the reserve ended before its wait");
        assert!(
            reads_took < wait / 2,
            "100 reads took {reads_took:?} beside a blocked reserve"
        );

        // Submits: the first wakes the reserve, the rest must not wait for it.
        let t0 = Instant::now();
        for _ in 0..100 {
            q.submit(&job()).await.unwrap();
        }
        let submits_took = t0.elapsed();
        assert!(
            submits_took < wait / 2,
            "100 submits took {submits_took:?} beside a blocked reserve"
        );

        let (got, _) = tokio::time::timeout(CAP, reserve).await.unwrap().unwrap();
        assert_eq!(got.unwrap().len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropped_connections_are_replaced_without_errors() {
        let f = Fixture::new().await;
        let q = &f.queue;
        // Warm up both kinds of connection (shared, and a pooled blocking one).
        q.submit(&job()).await.unwrap();
        assert_eq!(q.reserve("c", 10, CAP).await.unwrap().len(), 1);

        // What a Redis restart or an idle-timeout proxy does to every client.
        let _: u64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("normal")
            .arg("SKIPME")
            .arg("yes")
            .query_async(&mut f.raw.clone())
            .await
            .unwrap();

        let j = job();
        q.submit(&j).await.unwrap();
        assert_eq!(q.state(&j.id).await.unwrap(), Some(TaskState::Pending));
        let got = q.reserve("c", 10, CAP).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].job, j);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn completed_entries_leave_the_stream() {
        let f = Fixture::new().await;
        let q = &f.queue;
        for _ in 0..10 {
            q.submit(&job()).await.unwrap();
        }
        assert_eq!(f.stream_len().await, 10);
        let deliveries = q.reserve("c", 10, CAP).await.unwrap();
        assert_eq!(f.pending_count().await, 10);
        for d in &deliveries {
            q.complete(d, &ok_result("")).await.unwrap();
        }
        assert_eq!(f.stream_len().await, 0);
        assert_eq!(f.pending_count().await, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lost_consumer_group_is_recreated_without_losing_jobs() {
        let f = Fixture::new().await;
        let q = &f.queue;
        let _: () = redis::cmd("DEL")
            .arg(f.jobs_key())
            .query_async(&mut f.raw.clone())
            .await
            .unwrap();
        // The submit re-creates the stream, but not the group.
        let j = job();
        q.submit(&j).await.unwrap();
        let got = q.reserve("c", 10, CAP).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].job, j);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_corrupt_state_is_reported_not_hidden() {
        let f = Fixture::new().await;
        let id = TaskId::new();
        let _: () = redis::cmd("SET")
            .arg(format!("{}:task:{id}", f.prefix))
            .arg("not json")
            .query_async(&mut f.raw.clone())
            .await
            .unwrap();
        let err = f.queue.state(&id).await.unwrap_err();
        assert!(matches!(err, code_runner_queue::QueueError::Corrupt { .. }));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connect_to_a_dead_server_fails_with_context() {
        let f = Fixture::new().await;
        let url = f.server.url();
        drop(f);
        let err = RedisQueue::connect(RedisQueueConfig::new(url))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                code_runner_queue::QueueError::Redis { op: "connect", .. }
            ),
            "{err:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn live_logs_expire_shortly_after_the_result() {
        use code_runner_queue::{LiveEvent, LiveLog, LiveMode};
        let f = Fixture::new().await;
        let q = &f.queue;
        let mut j = job();
        j.live = Some(LiveMode::Interactive);
        q.submit(&j).await.unwrap();
        let delivery = q.reserve("c", 1, Duration::from_millis(100)).await.unwrap();
        q.live_append(
            &j.id,
            LiveLog::Output,
            &[LiveEvent::State("running".into())],
        )
        .await
        .unwrap();
        q.live_append(&j.id, LiveLog::Input, &[LiveEvent::StdinEnd])
            .await
            .unwrap();
        q.complete(&delivery[0], &ok_result("x")).await.unwrap();
        // A late input append does not extend it again.
        q.live_append(&j.id, LiveLog::Input, &[LiveEvent::StdinEnd])
            .await
            .unwrap();
        let keep = code_runner_queue::live::LIVE_AFTER_RESULT.as_millis() as i64;
        for kind in ["live", "input"] {
            let ttl: i64 = redis::cmd("PTTL")
                .arg(format!("{}:{kind}:{}", f.prefix, j.id))
                .query_async(&mut f.raw.clone())
                .await
                .unwrap();
            assert!(ttl > 0 && ttl <= keep, "{kind}: {ttl} ms");
        }
    }
}
