//! Watching tasks and the service, against both backends: waiting for a
//! result (woken when it is stored, hundreds of waiters at once), the running
//! mark, worker heartbeats and statistics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use code_runner_queue::stats::{Counters, WorkerReport};
use code_runner_queue::{
    EmbeddedQueue, Job, JobResult, Queue, RedisQueue, RedisQueueConfig, TaskId, TaskState, Verdict,
};
use code_runner_testkit::{unique_prefix, RedisServer};

const TTL: Duration = Duration::from_secs(600);
/// Upper bound for anything that should happen "soon".
const CAP: Duration = Duration::from_secs(10);

enum Backend {
    Embedded,
    Redis(RedisServer),
}

impl Backend {
    async fn queue(&self) -> Arc<dyn Queue> {
        match self {
            Backend::Embedded => Arc::new(EmbeddedQueue::new(TTL)),
            Backend::Redis(server) => Arc::new(redis_queue(server, &unique_prefix()).await),
        }
    }
}

async fn redis_queue(server: &RedisServer, prefix: &str) -> RedisQueue {
    RedisQueue::connect(RedisQueueConfig {
        key_prefix: prefix.to_owned(),
        result_ttl: TTL,
        ..RedisQueueConfig::new(server.url())
    })
    .await
    .expect("connect to the test redis-server")
}

fn job() -> Job {
    Job::new(TaskId::new(), "python", "print(1)", 1)
}

fn ok(stdout: &str) -> JobResult {
    let mut result = JobResult::internal_error("", 2);
    result.verdict = Verdict::Ok;
    result.message = None;
    result.stdout = stdout.to_owned();
    result
}

/// What a spawned waiter answered, within `CAP`; `why` names it when it
/// was not woken in time.
async fn woken(
    waiter: tokio::task::JoinHandle<Result<Option<TaskState>, code_runner_queue::QueueError>>,
    why: &str,
) -> Option<TaskState> {
    tokio::time::timeout(CAP, waiter)
        .await
        .unwrap_or_else(|_| panic!("{why}"))
        .unwrap()
        .unwrap()
}

fn is_done(state: &Option<TaskState>) -> bool {
    matches!(state, Some(TaskState::Done(_)))
}

async fn wait_answers_at_once_for_finished_and_unknown_tasks(b: &Backend) {
    let q = b.queue().await;
    let j = job();
    q.submit(&j).await.unwrap();
    let delivery = q.reserve("w", 1, CAP).await.unwrap().remove(0);
    q.complete(&delivery, &ok("x")).await.unwrap();
    let started = Instant::now();
    assert!(is_done(&q.wait_for_result(&j.id, CAP).await.unwrap()));
    assert_eq!(q.wait_for_result(&TaskId::new(), CAP).await.unwrap(), None);
    assert!(started.elapsed() < Duration::from_secs(2));
}

async fn wait_gives_up_after_its_timeout(b: &Backend) {
    let q = b.queue().await;
    let j = job();
    q.submit(&j).await.unwrap();
    let started = Instant::now();
    let state = q
        .wait_for_result(&j.id, Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(state, Some(TaskState::Pending));
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(290), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
}

async fn waiters_are_woken_by_the_result(b: &Backend) {
    let q = b.queue().await;
    let j = job();
    q.submit(&j).await.unwrap();
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let q = q.clone();
            tokio::spawn(async move { q.wait_for_result(&j.id, Duration::from_secs(30)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let delivery = q.reserve("w", 1, CAP).await.unwrap().remove(0);
    let completed_at = Instant::now();
    q.complete(&delivery, &ok("hello")).await.unwrap();
    for waiter in waiters {
        let state = woken(waiter, "waiter was not woken").await;
        match state {
            Some(TaskState::Done(result)) => assert_eq!(result.stdout, "hello"),
            other => panic!("{other:?}"),
        }
    }
    assert!(completed_at.elapsed() < Duration::from_secs(5));
}

async fn waiters_are_woken_by_a_cancel(b: &Backend) {
    let q = b.queue().await;
    let j = job();
    q.submit(&j).await.unwrap();
    let waiter = {
        let q = q.clone();
        tokio::spawn(async move { q.wait_for_result(&j.id, Duration::from_secs(30)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    q.cancel(&j.id, 5).await.unwrap();
    let state = woken(waiter, "waiter was not woken by the cancel").await;
    match state {
        Some(TaskState::Done(result)) => assert_eq!(result.verdict, Verdict::Cancelled),
        other => panic!("{other:?}"),
    }
}

async fn hundreds_of_waiters_at_once(b: &Backend) {
    let q = b.queue().await;
    let mut jobs = Vec::new();
    for _ in 0..300 {
        let j = job();
        q.submit(&j).await.unwrap();
        jobs.push(j);
    }
    // 300 tasks, two waiters each, plus 100 more on the first task.
    let mut waiters = Vec::new();
    for (n, j) in jobs.iter().enumerate() {
        let copies = if n == 0 { 102 } else { 2 };
        for _ in 0..copies {
            let q = q.clone();
            let id = j.id;
            waiters.push(tokio::spawn(async move {
                q.wait_for_result(&id, Duration::from_secs(60)).await
            }));
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut left = jobs.len();
    while left > 0 {
        for delivery in q.reserve("w", 100, CAP).await.unwrap() {
            q.complete(&delivery, &ok(&delivery.job.id.to_string()))
                .await
                .unwrap();
            left -= 1;
        }
    }
    let started = Instant::now();
    for waiter in waiters {
        let state = woken(waiter, "a waiter was not woken").await;
        assert!(is_done(&state), "{state:?}");
    }
    assert!(started.elapsed() < CAP);
}

async fn running_mark_tells_queued_from_running(b: &Backend) {
    let q = b.queue().await;
    let j = job();
    q.submit(&j).await.unwrap();
    assert_eq!(q.running_since(&j.id).await.unwrap(), None);
    let delivery = q.reserve("w", 1, CAP).await.unwrap().remove(0);
    q.mark_running(&j.id, 1234).await.unwrap();
    assert_eq!(q.running_since(&j.id).await.unwrap(), Some(1234));
    q.complete(&delivery, &ok("")).await.unwrap();
}

/// Judge mode's progress: kept while the task runs, forgotten when emptied.
async fn judge_progress_is_kept_while_running(b: &Backend) {
    use code_runner_queue::judge::TestResult;
    let q = b.queue().await;
    let j = job();
    q.submit(&j).await.unwrap();
    assert_eq!(q.progress(&j.id).await.unwrap(), None);
    let delivery = q.reserve("w", 1, CAP).await.unwrap().remove(0);
    q.mark_running(&j.id, 1).await.unwrap();
    let mut test = TestResult::skipped("1".into());
    test.verdict = Verdict::Accepted;
    test.checker_message = Some("fine".into());
    q.report_progress(&j.id, std::slice::from_ref(&test))
        .await
        .unwrap();
    assert_eq!(q.progress(&j.id).await.unwrap(), Some(vec![test]));
    q.complete(&delivery, &ok("")).await.unwrap();
    q.report_progress(&j.id, &[]).await.unwrap();
    assert_eq!(q.progress(&j.id).await.unwrap(), None);
}

async fn stats_count_queue_workers_and_jobs(b: &Backend) {
    let q = b.queue().await;
    for _ in 0..3 {
        q.submit(&job()).await.unwrap();
    }
    let delivery = q.reserve("w", 1, CAP).await.unwrap().remove(0);
    q.mark_running(&delivery.job.id, 1).await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut counters = Counters::default();
    counters.record_job("python", Verdict::Ok, 40, 3);
    counters.record_job("c", Verdict::CompileError, 0, 3);
    let report = |worker: &str, busy, stopping| WorkerReport {
        worker: worker.to_owned(),
        slots: 4,
        busy,
        counters: counters.clone(),
        at_ms: now,
        stopping,
    };
    q.report_worker(&report("w1", 1, false)).await.unwrap();
    q.report_worker(&report("w2", 0, false)).await.unwrap();
    q.report_worker(&report("w2", 0, true)).await.unwrap();

    let stats = q.stats().await.unwrap();
    assert_eq!(stats.queued, 2, "{stats:?}");
    assert_eq!(stats.running, 1, "{stats:?}");
    assert_eq!(stats.workers.len(), 1, "{stats:?}");
    assert_eq!(stats.workers[0].worker, "w1");
    assert_eq!((stats.workers[0].slots, stats.workers[0].busy), (4, 1));
    let jobs = stats.totals.jobs();
    assert_eq!(jobs[&("python", "ok")], 3, "{stats:?}");
    assert_eq!(jobs[&("c", "compile_error")], 3, "{stats:?}");
    q.complete(&delivery, &ok("")).await.unwrap();
}

macro_rules! cases {
    ($backend:ident, $make:expr; $($case:ident),* $(,)?) => {
        mod $backend {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let backend = $make;
                    super::$case(&backend).await;
                }
            )*
        }
    };
}

macro_rules! suite {
    ($backend:ident, $make:expr) => {
        cases!($backend, $make;
            wait_answers_at_once_for_finished_and_unknown_tasks,
            wait_gives_up_after_its_timeout,
            waiters_are_woken_by_the_result,
            waiters_are_woken_by_a_cancel,
            hundreds_of_waiters_at_once,
            running_mark_tells_queued_from_running,
            judge_progress_is_kept_while_running,
            stats_count_queue_workers_and_jobs,
        );
    };
}

suite!(embedded, Backend::Embedded);
suite!(redis, Backend::Redis(RedisServer::start()));

/// Every waiter of one API process shares one subscriber connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_waiters_share_one_subscriber_connection() {
    let server = RedisServer::start();
    let q = Arc::new(redis_queue(&server, &unique_prefix()).await);
    let mut ids = Vec::new();
    for _ in 0..200 {
        let j = job();
        q.submit(&j).await.unwrap();
        ids.push(j.id);
    }
    let waiters: Vec<_> = ids
        .iter()
        .map(|&id| {
            let q = q.clone();
            tokio::spawn(async move { q.wait_for_result(&id, Duration::from_secs(2)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let client = ::redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let clients: String = ::redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut conn)
        .await
        .unwrap();
    let subscribers: Vec<&str> = clients
        .lines()
        .filter(|line| !line.contains(" sub=0 "))
        .collect();
    assert_eq!(subscribers.len(), 1, "{clients}");
    assert!(subscribers[0].contains(" sub=200 "), "{clients}");
    for waiter in waiters {
        let state = waiter.await.unwrap().unwrap();
        assert_eq!(state, Some(TaskState::Pending));
    }
    // Every waiter gave up: their subscriptions are gone again.
    let deadline = Instant::now() + CAP;
    loop {
        let channels: Vec<String> = ::redis::cmd("PUBSUB")
            .arg("CHANNELS")
            .query_async(&mut conn)
            .await
            .unwrap();
        if channels.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} channels left",
            channels.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Takes the next job off the queue, checks it is `id`, and completes it
/// with `stdout`.
async fn complete_next(q: &RedisQueue, id: &TaskId, stdout: &str) {
    let delivery = q.reserve("w", 1, CAP).await.unwrap().remove(0);
    assert_eq!(&delivery.job.id, id);
    q.complete(&delivery, &ok(stdout)).await.unwrap();
}

/// The connections the server has accepted so far (`INFO stats`).
async fn connections_received(conn: &mut ::redis::aio::MultiplexedConnection) -> u64 {
    let info: String = ::redis::cmd("INFO")
        .arg("stats")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("total_connections_received:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("INFO stats has total_connections_received")
}

/// Waits until Redis counts a subscriber of `channel` (`PUBSUB NUMSUB`);
/// fails after `CAP`, naming `who`.
async fn wait_for_subscriber(
    conn: &mut ::redis::aio::MultiplexedConnection,
    channel: &str,
    who: &str,
) {
    let deadline = Instant::now() + CAP;
    loop {
        let counts: (String, u64) = ::redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query_async(conn)
            .await
            .unwrap();
        if counts.1 > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{who} never subscribed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A result stored while the subscriber connection is down still wakes its
/// waiter: on reconnecting, every waiter re-reads its task's state. And the
/// new connection subscribes again to the channel of every task still
/// waited for, whose result then wakes its waiter as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_waiters_survive_a_lost_subscriber_connection() {
    let server = RedisServer::start();
    let prefix = unique_prefix();
    let q = Arc::new(redis_queue(&server, &prefix).await);
    let j = job();
    q.submit(&j).await.unwrap();
    let waiter = {
        let q = q.clone();
        tokio::spawn(async move { q.wait_for_result(&j.id, Duration::from_secs(30)).await })
    };
    let k = job();
    q.submit(&k).await.unwrap();
    let later = {
        let q = q.clone();
        tokio::spawn(async move { q.wait_for_result(&k.id, Duration::from_secs(30)).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let client = ::redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let killed: u64 = ::redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(killed, 1);
    complete_next(q.as_ref(), &j.id, "late").await;
    let state = woken(waiter, "waiter not woken after the reconnect").await;
    assert!(is_done(&state), "{state:?}");

    let channel = format!("{prefix}:done:{}", k.id);
    wait_for_subscriber(
        &mut conn,
        &channel,
        "the waited-for task after the reconnect",
    )
    .await;
    assert!(
        !later.is_finished(),
        "the second waiter answered before its result"
    );
    complete_next(q.as_ref(), &k.id, "after").await;
    let state = woken(later, "second waiter not woken by its result").await;
    assert!(is_done(&state), "{state:?}");
}

/// A subscriber connection whose SUBSCRIBE Redis refuses (here an ACL) is
/// tried again with back-off, not in a tight loop that would hammer the
/// server; the waiter still answers at its deadline, with the state as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_subscribe_is_retried_with_back_off() {
    let server = RedisServer::start();
    let client = ::redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let () = ::redis::cmd("ACL")
        .arg("SETUSER")
        .arg("nosub")
        .arg("on")
        .arg(">pw")
        .arg("~*")
        .arg("&*")
        .arg("+@all")
        .arg("-subscribe")
        .arg("-psubscribe")
        .arg("-ssubscribe")
        .query_async(&mut conn)
        .await
        .unwrap();
    let q = RedisQueue::connect(RedisQueueConfig {
        key_prefix: unique_prefix(),
        result_ttl: TTL,
        ..RedisQueueConfig::new(format!("redis://nosub:pw@127.0.0.1:{}/", server.port()))
    })
    .await
    .expect("connect as the user that may not subscribe");
    let j = job();
    q.submit(&j).await.unwrap();
    let before = connections_received(&mut conn).await;
    let state = q
        .wait_for_result(&j.id, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(state, Some(TaskState::Pending));
    let after = connections_received(&mut conn).await;
    // Back-off from 50 ms doubling to 1 s: about six tries in 2 s.
    assert!(
        after - before <= 10,
        "{} connections in 2 s for a refused SUBSCRIBE",
        after - before
    );
}

/// A final state small enough is published whole on the task's channel
/// (`complete.lua`), and a waiter answers from the message without reading
/// the state back; a published state of another owner is not shown to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_waiters_answer_from_the_published_state() {
    let server = RedisServer::start();
    let prefix = unique_prefix();
    let q = Arc::new(redis_queue(&server, &prefix).await);
    let client = ::redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();

    // What complete.lua publishes: the state it stored.
    let k = job();
    q.submit(&k).await.unwrap();
    let channel = format!("{prefix}:done:{}", k.id);
    let listener = {
        let (client, channel) = (client.clone(), channel.clone());
        std::thread::spawn(move || {
            let mut conn = client.get_connection().unwrap();
            let mut pubsub = conn.as_pubsub();
            pubsub.subscribe(&channel).unwrap();
            pubsub
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            pubsub.get_message().unwrap().get_payload_bytes().to_vec()
        })
    };
    wait_for_subscriber(&mut conn, &channel, "the listener").await;
    let delivery = q.reserve("w", 1, CAP).await.unwrap().remove(0);
    q.complete(&delivery, &ok("published")).await.unwrap();
    let published = listener.join().unwrap();
    let stored: Vec<u8> = ::redis::cmd("GET")
        .arg(format!("{prefix}:task:{}", k.id))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(published, stored);

    // A waiter on a task still pending everywhere but in the message.
    let waiting = |owner: Option<&'static str>| {
        let j = match owner {
            Some(owner) => {
                let mut j = job();
                j.owner = Some(owner.to_owned());
                j
            }
            None => job(),
        };
        let q = q.clone();
        async move {
            q.submit(&j).await.unwrap();
            let id = j.id;
            let waiter = tokio::spawn(async move {
                q.wait_for_result_for(&id, owner, Duration::from_secs(3))
                    .await
            });
            (id, waiter)
        }
    };
    let (id, waiter) = waiting(None).await;
    let channel = format!("{prefix}:done:{id}");
    wait_for_subscriber(&mut conn, &channel, "the waiter").await;
    let _: u64 = ::redis::cmd("PUBLISH")
        .arg(&channel)
        .arg(&published)
        .query_async(&mut conn)
        .await
        .unwrap();
    let state = waiter.await.unwrap().unwrap();
    assert_eq!(state, Some(TaskState::Done(ok("published"))));
    assert_eq!(q.state(&id).await.unwrap(), Some(TaskState::Pending));

    // The same message naming another owner: nothing to show this waiter.
    let (id, waiter) = waiting(Some("owner-a")).await;
    let channel = format!("{prefix}:done:{id}");
    wait_for_subscriber(&mut conn, &channel, "the waiter").await;
    let rest = published
        .strip_prefix(br#"{"state":"done","#.as_slice())
        .expect("a stored final state starts with its state");
    let foreign = [br#"{"state":"done","owner":"owner-b","#.as_slice(), rest].concat();
    let _: u64 = ::redis::cmd("PUBLISH")
        .arg(&channel)
        .arg(&foreign)
        .query_async(&mut conn)
        .await
        .unwrap();
    let state = waiter.await.unwrap().unwrap();
    assert_eq!(state, None);
}
