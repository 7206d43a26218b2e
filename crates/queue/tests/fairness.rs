//! Fair share and memory, on both backends (the Redis one on a real
//! `redis-server`): a client's cap of unfinished jobs, the owner of a task,
//! and the in-process store's byte budget.

use std::sync::Arc;
use std::time::Duration;

use code_runner_queue::{
    Cancelled, ClientQuota, EmbeddedConfig, EmbeddedQueue, Job, JobResult, Queue, QueueError,
    RedisQueue, RedisQueueConfig, TaskId, TaskState, Verdict, RECORD_OVERHEAD_BYTES,
};
use code_runner_testkit::{unique_prefix, RedisServer};

const LONG_TTL: Duration = Duration::from_secs(600);
const CAP: Duration = Duration::from_secs(10);

enum Harness {
    Embedded,
    Redis { server: RedisServer, prefix: String },
}

impl Harness {
    async fn queue(&self, result_ttl: Duration) -> Arc<dyn Queue> {
        match self {
            Harness::Embedded => Arc::new(EmbeddedQueue::new(result_ttl)),
            Harness::Redis { server, prefix } => Arc::new(
                RedisQueue::connect(RedisQueueConfig {
                    key_prefix: prefix.clone(),
                    result_ttl,
                    ..RedisQueueConfig::new(server.url())
                })
                .await
                .unwrap(),
            ),
        }
    }
}

fn job() -> Job {
    Job::new(TaskId::new(), "python", "print(1)", 1)
}

fn owned_by(owner: &str) -> Job {
    let mut job = job();
    job.owner = Some(owner.to_owned());
    job
}

fn ok(stdout: &str) -> JobResult {
    let mut result = JobResult::internal_error("", 2);
    result.verdict = Verdict::Ok;
    result.message = None;
    result.stdout = stdout.to_owned();
    result
}

fn quota(client: &str, max_unfinished: u64) -> Option<ClientQuota<'_>> {
    Some(ClientQuota {
        client,
        max_unfinished,
    })
}

/// Takes the next job and completes it.
async fn run_next(q: &dyn Queue, stdout: &str) -> TaskId {
    let delivery = q.reserve("c", 1, CAP).await.unwrap().remove(0);
    q.complete(&delivery, &ok(stdout)).await.unwrap();
    delivery.job.id
}

mod cases {
    use super::*;

    /// Two unfinished jobs per client: the third is refused and nothing of
    /// it is written, other clients (and submissions without a quota) still
    /// get in, and a job that finishes or is cancelled frees its place.
    pub async fn a_client_at_its_cap_is_refused_until_a_job_finishes(h: &Harness) {
        let q = h.queue(LONG_TTL).await;
        let a = "ip:192.0.2.1";
        let (first, second, third) = (job(), job(), job());
        q.submit_for(&first, quota(a, 2)).await.unwrap();
        q.submit_for(&second, quota(a, 2)).await.unwrap();
        match q.submit_for(&third, quota(a, 2)).await {
            Err(QueueError::ClientFull { limit: 2 }) => {}
            other => panic!("expected ClientFull, got {other:?}"),
        }
        assert_eq!(q.state(&third.id).await.unwrap(), None);
        q.submit_for(&job(), quota("ip:192.0.2.2", 2))
            .await
            .unwrap();
        q.submit(&job()).await.unwrap();

        assert_eq!(run_next(q.as_ref(), "1").await, first.id);
        q.submit_for(&third, quota(a, 2)).await.unwrap();
        assert!(matches!(
            q.cancel(&second.id, 5).await.unwrap(),
            Cancelled::Now(_)
        ));
        q.submit_for(&job(), quota(a, 2)).await.unwrap();
        assert!(matches!(
            q.submit_for(&job(), quota(a, 2)).await,
            Err(QueueError::ClientFull { .. })
        ));
        // A retried submit of a known job is not refused: it is a no-op.
        q.submit_for(&third, quota(a, 2)).await.unwrap();
    }

    /// A pending task that expires no longer counts against its client.
    pub async fn a_client_cap_forgets_expired_tasks(h: &Harness) {
        let q = h.queue(Duration::from_secs(1)).await;
        let a = "ip:192.0.2.1";
        q.submit_for(&job(), quota(a, 1)).await.unwrap();
        assert!(q.submit_for(&job(), quota(a, 1)).await.is_err());
        tokio::time::sleep(Duration::from_millis(1500)).await;
        q.submit_for(&job(), quota(a, 1)).await.unwrap();
    }

    /// Another owner finds no such task: state, wait and cancel, while it is
    /// pending and once it is final; its own owner (and a caller that names
    /// none) sees it.
    pub async fn a_task_belongs_to_its_owner(h: &Harness) {
        let q = h.queue(LONG_TTL).await;
        let j = owned_by("owner-a");
        q.submit(&j).await.unwrap();
        assert_eq!(q.state_for(&j.id, Some("owner-b")).await.unwrap(), None);
        assert_eq!(
            q.state_for(&j.id, Some("owner-a")).await.unwrap(),
            Some(TaskState::Pending)
        );
        assert_eq!(q.state(&j.id).await.unwrap(), Some(TaskState::Pending));
        let started = std::time::Instant::now();
        let waited = q
            .wait_for_result_for(&j.id, Some("owner-b"), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(waited, None);
        assert!(started.elapsed() < Duration::from_secs(4), "it waited");
        assert_eq!(
            q.cancel_for(&j.id, Some("owner-b"), 5).await.unwrap(),
            Cancelled::NotFound
        );
        assert_eq!(q.state(&j.id).await.unwrap(), Some(TaskState::Pending));

        run_next(q.as_ref(), "mine").await;
        assert_eq!(q.state_for(&j.id, Some("owner-b")).await.unwrap(), None);
        assert_eq!(
            q.state_for(&j.id, Some("owner-a")).await.unwrap(),
            Some(TaskState::Done(ok("mine")))
        );
        assert_eq!(
            q.cancel_for(&j.id, Some("owner-b"), 5).await.unwrap(),
            Cancelled::NotFound
        );
        assert!(matches!(
            q.cancel_for(&j.id, Some("owner-a"), 5).await.unwrap(),
            Cancelled::AlreadyFinished(_)
        ));

        // A cancelled task keeps its owner.
        let k = owned_by("owner-a");
        q.submit(&k).await.unwrap();
        assert!(matches!(
            q.cancel_for(&k.id, Some("owner-a"), 5).await.unwrap(),
            Cancelled::Now(_)
        ));
        assert_eq!(q.state_for(&k.id, Some("owner-b")).await.unwrap(), None);
        assert!(matches!(
            q.state_for(&k.id, Some("owner-a")).await.unwrap(),
            Some(TaskState::Done(_))
        ));

        // A task without an owner is anyone's; names that are not plain
        // compare like any other.
        let open = job();
        q.submit(&open).await.unwrap();
        assert!(q.state_for(&open.id, Some("x")).await.unwrap().is_some());
        let odd = owned_by("a \"quoted\" owner}");
        q.submit(&odd).await.unwrap();
        assert!(q
            .state_for(&odd.id, Some("a \"quoted\" owner}"))
            .await
            .unwrap()
            .is_some());
        assert!(q
            .state_for(&odd.id, Some("a \"quoted\" owner"))
            .await
            .unwrap()
            .is_none());
    }
}

macro_rules! suite {
    ($backend:ident, $make:expr) => {
        mod $backend {
            use super::*;
            suite!(@cases $make;
                a_client_at_its_cap_is_refused_until_a_job_finishes,
                a_client_cap_forgets_expired_tasks,
                a_task_belongs_to_its_owner,
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

suite!(embedded_queue, Harness::Embedded);
suite!(
    redis_queue,
    Harness::Redis {
        server: RedisServer::start(),
        prefix: unique_prefix(),
    }
);

/// Several API processes on one Redis count a client's jobs together, and
/// what Redis holds names the owner, never more than once.
mod redis_only {
    use super::*;

    #[tokio::test]
    async fn the_client_cap_is_shared_by_every_queue_on_one_redis() {
        let h = Harness::Redis {
            server: RedisServer::start(),
            prefix: unique_prefix(),
        };
        let (api1, api2) = (h.queue(LONG_TTL).await, h.queue(LONG_TTL).await);
        let a = "key:0123456789abcdef";
        api1.submit_for(&job(), quota(a, 2)).await.unwrap();
        api2.submit_for(&job(), quota(a, 2)).await.unwrap();
        assert!(matches!(
            api1.submit_for(&job(), quota(a, 2)).await,
            Err(QueueError::ClientFull { limit: 2 })
        ));
        assert!(matches!(
            api2.submit_for(&job(), quota(a, 2)).await,
            Err(QueueError::ClientFull { limit: 2 })
        ));
        // A worker (any process) finishing one frees a place for all.
        run_next(api2.as_ref(), "x").await;
        api1.submit_for(&job(), quota(a, 2)).await.unwrap();
    }

    #[tokio::test]
    async fn stored_states_carry_the_owner_and_the_client_by_prefix() {
        let server = RedisServer::start();
        let prefix = unique_prefix();
        let h = Harness::Redis {
            server,
            prefix: prefix.clone(),
        };
        let q = h.queue(LONG_TTL).await;
        let Harness::Redis { server, .. } = &h else {
            unreachable!()
        };
        let mut raw = redis::Client::open(server.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let j = owned_by("0a1b2c");
        q.submit_for(&j, quota("ip:192.0.2.9", 5)).await.unwrap();
        let key = format!("{prefix}:task:{}", j.id);
        let stored: String = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut raw)
            .await
            .unwrap();
        assert_eq!(
            stored,
            r#"{"state":"pending","owner":"0a1b2c","client":"ip:192.0.2.9"}"#
        );
        let members: Vec<String> = redis::cmd("ZRANGE")
            .arg(format!("{prefix}:client:ip:192.0.2.9"))
            .arg(0)
            .arg(-1)
            .query_async(&mut raw)
            .await
            .unwrap();
        assert_eq!(members, [j.id.to_string()]);

        run_next(q.as_ref(), "out").await;
        let stored: String = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut raw)
            .await
            .unwrap();
        assert!(
            stored.starts_with(r#"{"state":"done","owner":"0a1b2c","verdict":"ok""#),
            "{stored}"
        );
        assert_eq!(stored.matches("0a1b2c").count(), 1);
        assert_eq!(stored.matches("\"out\"").count(), 1, "{stored}");
        let members: Vec<String> = redis::cmd("ZRANGE")
            .arg(format!("{prefix}:client:ip:192.0.2.9"))
            .arg(0)
            .arg(-1)
            .query_async(&mut raw)
            .await
            .unwrap();
        assert!(members.is_empty());
        // Final by its prefix for the scripts, too.
        assert_eq!(q.settled(&[j.id]).await.unwrap(), [j.id]);
    }
}

/// The in-process store's byte budget.
mod embedded_budget {
    use super::*;

    fn queue(max_bytes: u64) -> EmbeddedQueue {
        EmbeddedQueue::with_config(EmbeddedConfig {
            result_ttl: LONG_TTL,
            max_queue_length: None,
            max_bytes: Some(max_bytes),
        })
    }

    /// Room for three 100 kB results: after five, the two oldest are gone
    /// (unknown, as if they had never been) and the three newest are kept.
    #[tokio::test]
    async fn the_oldest_finished_results_are_evicted_at_the_budget() {
        let size = 100_000;
        let per_result = size as u64 + 2 * RECORD_OVERHEAD_BYTES;
        let q = queue(3 * per_result + RECORD_OVERHEAD_BYTES);
        let mut ids = Vec::new();
        for n in 0..5 {
            let j = job();
            q.submit(&j).await.unwrap();
            let delivery = q.reserve("c", 1, CAP).await.unwrap().remove(0);
            q.complete(&delivery, &ok(&n.to_string().repeat(size)))
                .await
                .unwrap();
            ids.push(j.id);
        }
        for (n, id) in ids.iter().enumerate() {
            let state = q.state(id).await.unwrap();
            assert_eq!(state.is_some(), n >= 2, "result {n}: {}", state.is_some());
        }
        assert!(matches!(
            q.cancel(&ids[0], 5).await.unwrap(),
            Cancelled::NotFound
        ));
    }

    /// Pending tasks are never evicted: when unfinished jobs fill the
    /// budget, a submit is refused as a full queue until one finishes.
    #[tokio::test]
    async fn unfinished_jobs_that_fill_the_budget_refuse_more() {
        let q = queue(64 * 1024);
        let big = |n: usize| {
            let mut j = job();
            j.stdin = "i".repeat(n);
            j
        };
        let (first, second) = (big(40_000), big(40_000));
        q.submit(&first).await.unwrap();
        match q.submit(&second).await {
            Err(QueueError::Full { limit: 1 }) => {}
            other => panic!("expected Full, got {other:?}"),
        }
        assert_eq!(q.state(&second.id).await.unwrap(), None);
        assert_eq!(q.state(&first.id).await.unwrap(), Some(TaskState::Pending));
        run_next(&q, &"d".repeat(10_000)).await;
        q.submit(&second).await.unwrap();
        // The finished result is evicted to make room; the pending job
        // never is.
        let third = big(20_000);
        q.submit(&third).await.unwrap();
        assert_eq!(q.state(&first.id).await.unwrap(), None);
        assert_eq!(q.state(&second.id).await.unwrap(), Some(TaskState::Pending));
    }
}
