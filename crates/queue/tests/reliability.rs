//! The reliability half of the queue's conformance suite, run against both
//! backends like `conformance.rs`: lost deliveries are reclaimed after the
//! visibility timeout and given up after `max_deliveries`, the first final
//! result wins over a redelivery, released deliveries come back at once,
//! cancellation, and the maximum queue length.
//!
//! `redis_only` covers what needs a real server: the pending list scanned
//! past `XAUTOCLAIM`'s per-call window, jobs surviving a Redis crash with the
//! AOF on, and commands failing fast (then recovering) while Redis is down.

use std::sync::Arc;
use std::time::{Duration, Instant};

use code_runner_queue::{
    Cancelled, EmbeddedQueue, Job, JobResult, Queue, QueueError, Redelivery, RedisQueue,
    RedisQueueConfig, TaskId, TaskState, Verdict,
};
use code_runner_testkit::{unique_prefix, RedisServer};

const LONG_TTL: Duration = Duration::from_secs(600);
/// Upper bound for anything that should happen "soon".
const CAP: Duration = Duration::from_secs(10);
/// A visibility timeout short enough for tests to wait out.
const SHORT: Duration = Duration::from_millis(300);

enum Harness {
    Embedded,
    Redis { server: RedisServer, prefix: String },
}

impl Harness {
    async fn queue(&self) -> Arc<dyn Queue> {
        self.queue_with(None).await
    }

    /// A queue sharing this harness's data, with a maximum length.
    async fn queue_with(&self, max_queue_length: Option<u64>) -> Arc<dyn Queue> {
        match self {
            Harness::Embedded => Arc::new(EmbeddedQueue::with_max_queue_length(
                LONG_TTL,
                max_queue_length,
            )),
            Harness::Redis { server, prefix } => Arc::new(
                RedisQueue::connect(RedisQueueConfig {
                    key_prefix: prefix.clone(),
                    result_ttl: LONG_TTL,
                    max_queue_length,
                    ..RedisQueueConfig::new(server.url())
                })
                .await
                .expect("connect to the test redis-server"),
            ),
        }
    }
}

fn job() -> Job {
    Job::new(TaskId::new(), "python", "print('hi')", 1)
}

fn ok_result(stdout: &str) -> JobResult {
    let mut result = JobResult::internal_error("", 1);
    result.verdict = Verdict::Ok;
    result.message = None;
    result.stdout = stdout.into();
    result.exit_code = Some(0);
    result
}

fn policy(visibility_timeout: Duration, max_deliveries: u32) -> Redelivery {
    Redelivery {
        visibility_timeout,
        max_deliveries,
    }
}

async fn done(q: &dyn Queue, id: &TaskId) -> JobResult {
    match q.state(id).await.unwrap() {
        Some(TaskState::Done(result)) => result,
        other => panic!("task {id} is not done: {other:?}"),
    }
}

mod cases {
    use super::*;

    pub async fn a_lost_delivery_is_reclaimed_after_the_visibility_timeout(h: &Harness) {
        let q = h.queue().await;
        let j = job();
        q.submit(&j).await.unwrap();
        let first = q.reserve("dead", 1, CAP).await.unwrap().remove(0);
        assert_eq!(first.attempt, 1);

        // Not yet: the delivery is still within its visibility timeout.
        let p = policy(SHORT, 3);
        assert!(q.reclaim("alive", 10, &p).await.unwrap().is_empty());

        tokio::time::sleep(SHORT + Duration::from_millis(100)).await;
        let again = q.reclaim("alive", 10, &p).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].job, j);
        assert_eq!(again[0].attempt, 2);
        // Only one worker gets it.
        assert!(q.reclaim("other", 10, &p).await.unwrap().is_empty());

        q.complete(&again[0], &ok_result("done\n")).await.unwrap();
        assert_eq!(done(q.as_ref(), &j.id).await.stdout, "done\n");
        tokio::time::sleep(SHORT + Duration::from_millis(100)).await;
        assert!(q.reclaim("other", 10, &p).await.unwrap().is_empty());
        assert!(q
            .reserve("other", 10, Duration::from_millis(100))
            .await
            .unwrap()
            .is_empty());
    }

    /// A live worker extends its lease (a judged job longer than the
    /// visibility timeout); once it stops, the job is reclaimed, and the
    /// old holder can no longer extend what another worker now holds.
    pub async fn a_touched_delivery_is_not_reclaimed(h: &Harness) {
        let q = h.queue().await;
        let j = job();
        q.submit(&j).await.unwrap();
        let first = q.reserve("slow", 1, CAP).await.unwrap().remove(0);
        let p = policy(SHORT, 3);
        for _ in 0..3 {
            tokio::time::sleep(SHORT / 2).await;
            assert!(q.touch("slow", &first).await.unwrap());
            assert!(q.reclaim("other", 10, &p).await.unwrap().is_empty());
        }
        tokio::time::sleep(SHORT + Duration::from_millis(100)).await;
        let again = q.reclaim("other", 10, &p).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].attempt, 2, "touches count no delivery");
        assert!(!q.touch("slow", &first).await.unwrap());
        assert!(q.touch("other", &again[0]).await.unwrap());
        q.complete(&again[0], &ok_result("")).await.unwrap();
        assert!(!q.touch("other", &again[0]).await.unwrap());
    }

    pub async fn a_redelivered_job_never_replaces_the_first_result(h: &Harness) {
        let q = h.queue().await;
        let j = job();
        q.submit(&j).await.unwrap();
        let slow = q.reserve("slow", 1, CAP).await.unwrap().remove(0);
        tokio::time::sleep(SHORT + Duration::from_millis(100)).await;
        let redelivered = q.reclaim("fast", 1, &policy(SHORT, 3)).await.unwrap();
        assert_eq!(redelivered.len(), 1);

        // The redelivered copy finishes first; the original's late result is ignored.
        q.complete(&redelivered[0], &ok_result("first\n"))
            .await
            .unwrap();
        let mut late = ok_result("second\n");
        late.verdict = Verdict::RuntimeError;
        q.complete(&slow, &late).await.unwrap();
        assert_eq!(done(q.as_ref(), &j.id).await, ok_result("first\n"));
    }

    pub async fn a_finished_job_still_pending_is_not_redelivered(h: &Harness) {
        let q = h.queue().await;
        let j = job();
        q.submit(&j).await.unwrap();
        let _dead = q.reserve("dead", 1, CAP).await.unwrap();
        // Its task got a final state by another way (here: cancelled) while
        // the delivery was held by a worker that then died.
        assert!(matches!(
            q.cancel(&j.id, 5).await.unwrap(),
            Cancelled::Now(_)
        ));
        tokio::time::sleep(SHORT + Duration::from_millis(100)).await;
        assert!(q
            .reclaim("alive", 10, &policy(SHORT, 3))
            .await
            .unwrap()
            .is_empty());
        assert_eq!(done(q.as_ref(), &j.id).await.verdict, Verdict::Cancelled);
        // And it was retired: nothing left to reclaim later.
        tokio::time::sleep(SHORT + Duration::from_millis(100)).await;
        assert!(q
            .reclaim("alive", 10, &policy(SHORT, 3))
            .await
            .unwrap()
            .is_empty());
    }

    pub async fn a_job_whose_workers_keep_dying_ends_as_internal_error(h: &Harness) {
        let q = h.queue().await;
        let j = job();
        q.submit(&j).await.unwrap();
        let p = policy(SHORT, 2);
        let first = q.reserve("w1", 1, CAP).await.unwrap().remove(0);
        assert_eq!(first.attempt, 1);
        tokio::time::sleep(SHORT + Duration::from_millis(100)).await;
        let second = q.reclaim("w2", 1, &p).await.unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].attempt, 2);
        tokio::time::sleep(SHORT + Duration::from_millis(100)).await;
        // A third delivery would exceed max_deliveries: the task fails instead.
        assert!(q.reclaim("w3", 1, &p).await.unwrap().is_empty());
        let result = done(q.as_ref(), &j.id).await;
        assert_eq!(result.verdict, Verdict::InternalError);
        let message = result.message.unwrap();
        assert!(message.contains("delivered 2 times"), "{message}");
        // Nothing left to reclaim or reserve.
        tokio::time::sleep(SHORT + Duration::from_millis(100)).await;
        assert!(q.reclaim("w3", 1, &p).await.unwrap().is_empty());
        assert!(q
            .reserve("w3", 1, Duration::from_millis(100))
            .await
            .unwrap()
            .is_empty());
    }

    pub async fn a_released_delivery_is_reclaimable_at_once_and_not_counted(h: &Harness) {
        let q = h.queue().await;
        let j = job();
        q.submit(&j).await.unwrap();
        let held = q.reserve("stopping", 1, CAP).await.unwrap().remove(0);
        q.release(&held).await.unwrap();
        // A visibility timeout of an hour does not hold a released job back.
        let p = policy(Duration::from_secs(3600), 1);
        let got = q.reclaim("alive", 10, &p).await.unwrap();
        assert_eq!(got.len(), 1, "a released job was not reclaimable at once");
        assert_eq!(got[0].job, j);
        // Released deliveries do not count: with max_deliveries 1 it still runs.
        assert_eq!(got[0].attempt, 1);
        q.complete(&got[0], &ok_result("ok\n")).await.unwrap();
        assert_eq!(done(q.as_ref(), &j.id).await.stdout, "ok\n");
    }

    pub async fn a_cancelled_queued_job_never_runs(h: &Harness) {
        let q = h.queue().await;
        let cancelled = job();
        let kept = job();
        q.submit(&cancelled).await.unwrap();
        q.submit(&kept).await.unwrap();
        let Cancelled::Now(result) = q.cancel(&cancelled.id, 42).await.unwrap() else {
            panic!("a pending task was not cancelled");
        };
        assert_eq!(result.verdict, Verdict::Cancelled);
        assert_eq!(result.finished_at_ms, 42);
        assert_eq!(done(q.as_ref(), &cancelled.id).await, result);

        // A queue may deliver it (Redis does: the check is one round trip
        // at the job's start, not one more per reservation); `begin` then
        // says not to run it, and retires its delivery.
        let got = q.reserve("c", 10, CAP).await.unwrap();
        let mut started = Vec::new();
        for delivery in &got {
            if q.begin(&delivery.job.id, &delivery.receipt, 7)
                .await
                .unwrap()
            {
                started.push(delivery.job.clone());
            }
        }
        assert_eq!(started, vec![kept.clone()], "{got:?}");
        assert_eq!(done(q.as_ref(), &cancelled.id).await, result);
        tokio::time::sleep(SHORT + Duration::from_millis(100)).await;
        let reclaimed = q.reclaim("alive", 10, &policy(SHORT, 3)).await.unwrap();
        assert!(
            reclaimed.iter().all(|d| d.job.id != cancelled.id),
            "{reclaimed:?}"
        );

        // Cancelling again changes nothing and says it had finished.
        assert_eq!(
            q.cancel(&cancelled.id, 43).await.unwrap(),
            Cancelled::AlreadyFinished(result)
        );
    }

    pub async fn cancel_of_a_finished_or_unknown_task_changes_nothing(h: &Harness) {
        let q = h.queue().await;
        assert_eq!(
            q.cancel(&TaskId::new(), 1).await.unwrap(),
            Cancelled::NotFound
        );
        let j = job();
        q.submit(&j).await.unwrap();
        let d = q.reserve("c", 1, CAP).await.unwrap().remove(0);
        q.complete(&d, &ok_result("out\n")).await.unwrap();
        assert_eq!(
            q.cancel(&j.id, 1).await.unwrap(),
            Cancelled::AlreadyFinished(ok_result("out\n"))
        );
        assert_eq!(done(q.as_ref(), &j.id).await, ok_result("out\n"));
    }

    pub async fn settled_names_the_running_tasks_that_are_final(h: &Harness) {
        let q = h.queue().await;
        let jobs: Vec<Job> = (0..3).map(|_| job()).collect();
        for j in &jobs {
            q.submit(j).await.unwrap();
        }
        let running = q.reserve("c", 3, CAP).await.unwrap();
        assert_eq!(running.len(), 3);
        let ids: Vec<TaskId> = jobs.iter().map(|j| j.id).collect();
        assert!(q.settled(&ids).await.unwrap().is_empty());
        assert!(q.settled(&[]).await.unwrap().is_empty());

        q.cancel(&ids[1], 1).await.unwrap();
        assert_eq!(q.settled(&ids).await.unwrap(), vec![ids[1]]);

        // Its worker stops it and completes it; the cancellation stays.
        let d = running.iter().find(|d| d.job.id == ids[1]).unwrap();
        q.complete(d, &ok_result("too late\n")).await.unwrap();
        assert_eq!(done(q.as_ref(), &ids[1]).await.verdict, Verdict::Cancelled);
    }

    pub async fn submit_beyond_the_maximum_length_fails_and_queues_nothing(h: &Harness) {
        let q = h.queue_with(Some(3)).await;
        let jobs: Vec<Job> = (0..3).map(|_| job()).collect();
        for j in &jobs {
            q.submit(j).await.unwrap();
        }
        let refused = job();
        let err = q.submit(&refused).await.unwrap_err();
        assert!(matches!(err, QueueError::Full { limit: 3 }), "{err:?}");
        assert_eq!(q.state(&refused.id).await.unwrap(), None);
        // A retried submit of a job already in is still fine when full.
        q.submit(&jobs[0]).await.unwrap();

        // Running jobs count too; finished ones free room.
        let got = q.reserve("c", 10, CAP).await.unwrap();
        assert_eq!(got.len(), 3, "the refused job was queued");
        assert!(matches!(
            q.submit(&job()).await,
            Err(QueueError::Full { .. })
        ));
        q.complete(&got[0], &ok_result("")).await.unwrap();
        q.submit(&refused).await.unwrap();
        assert_eq!(
            q.state(&refused.id).await.unwrap(),
            Some(TaskState::Pending)
        );
    }
}

macro_rules! suite {
    ($backend:ident, $make:expr) => {
        mod $backend {
            use super::*;
            suite!(@cases $make;
                a_lost_delivery_is_reclaimed_after_the_visibility_timeout,
                a_touched_delivery_is_not_reclaimed,
                a_redelivered_job_never_replaces_the_first_result,
                a_finished_job_still_pending_is_not_redelivered,
                a_job_whose_workers_keep_dying_ends_as_internal_error,
                a_released_delivery_is_reclaimable_at_once_and_not_counted,
                a_cancelled_queued_job_never_runs,
                cancel_of_a_finished_or_unknown_task_changes_nothing,
                settled_names_the_running_tasks_that_are_final,
                submit_beyond_the_maximum_length_fails_and_queues_nothing,
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

mod redis_only {
    use super::*;

    async fn connect(server: &RedisServer, prefix: &str) -> RedisQueue {
        RedisQueue::connect(RedisQueueConfig {
            key_prefix: prefix.to_owned(),
            result_ttl: LONG_TTL,
            ..RedisQueueConfig::new(server.url())
        })
        .await
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reclaim_finds_a_lost_job_behind_many_live_ones() {
        let server = RedisServer::start();
        let q = connect(&server, &unique_prefix()).await;
        let jobs: Vec<Job> = (0..60).map(|_| job()).collect();
        for j in &jobs {
            q.submit(j).await.unwrap();
        }
        let all = q.reserve("dead", 60, CAP).await.unwrap();
        assert_eq!(all.len(), 60);
        tokio::time::sleep(SHORT + Duration::from_millis(100)).await;
        // A live worker takes the first 59 over (they are busy again)...
        let p = policy(SHORT, 3);
        let taken = q.reclaim("alive", 59, &p).await.unwrap();
        assert_eq!(taken.len(), 59);
        // ...so the last lost one sits behind 59 fresh entries in the pending
        // list, past XAUTOCLAIM's scan window for COUNT 1 (10 entries).
        let last = q.reclaim("other", 1, &p).await.unwrap();
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].job, jobs[59]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queued_and_running_jobs_survive_a_redis_crash_with_aof() {
        let mut server = RedisServer::start_with_aof();
        let prefix = unique_prefix();
        let q = connect(&server, &prefix).await;
        let running = job();
        let queued = job();
        q.submit(&running).await.unwrap();
        let held = q.reserve("dead", 1, CAP).await.unwrap().remove(0);
        q.submit(&queued).await.unwrap();

        server.restart();

        // The same client reconnects by itself; the queued job is there...
        let got = q.reserve("alive", 10, CAP).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].job, queued);
        q.complete(&got[0], &ok_result("")).await.unwrap();
        // ...and so is the delivery held by a worker that died meanwhile.
        tokio::time::sleep(SHORT + Duration::from_millis(100)).await;
        let again = q.reclaim("alive", 10, &policy(SHORT, 3)).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].job, running);
        assert_eq!(again[0].receipt, held.receipt);
        assert_eq!(
            q.state(&running.id).await.unwrap(),
            Some(TaskState::Pending)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commands_fail_fast_while_redis_is_down_and_recover_by_themselves() {
        let mut server = RedisServer::start_with_aof();
        let q = connect(&server, &unique_prefix()).await;
        let j = job();
        q.submit(&j).await.unwrap();

        server.stop();
        for _ in 0..5 {
            let t0 = Instant::now();
            let err = q.state(&j.id).await.unwrap_err();
            let took = t0.elapsed();
            assert!(
                took < Duration::from_millis(1500),
                "a read took {took:?} to fail while Redis was down ({err})"
            );
            let t0 = Instant::now();
            assert!(q.submit(&job()).await.is_err());
            assert!(t0.elapsed() < Duration::from_millis(1500));
        }

        server.start_again();
        let deadline = Instant::now() + CAP;
        loop {
            match q.state(&j.id).await {
                Ok(state) => {
                    assert_eq!(state, Some(TaskState::Pending));
                    break;
                }
                Err(e) => assert!(Instant::now() < deadline, "no recovery: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        q.submit(&job()).await.unwrap();
    }
}
