//! Admission to the CPU: how many of the worker's running jobs may be in
//! their first moments at once.
//!
//! A worker has many more slots (50) than the machine has cores. When a
//! burst of short programs arrives, starting all of them at once makes
//! them share the cores: each takes many times its CPU time in wall time
//! (so a job near its wall-clock limit can fail it only because of its
//! neighbours), and fifty interpreters switching on two cores thrash the
//! caches: measured on 2 cores, a python hello cost 14.1 ms of CPU among
//! 50 running jobs against 11.7 ms bare, and the worker finished about
//! 10 % more jobs per second with 4 at once than with 50.
//!
//! So a job enters the sandbox holding one of `parallelism` permits (by
//! default twice the cores the worker may use), and gives it back when it
//! ends or after `hold`, whichever comes first. Short jobs, the common case,
//! run a few at a time, each at full speed; a long one (a judge's many
//! tests, a program that waits on its input or sleeps) lets the next job
//! in after `hold` and from then on shares the cores as before. A job never
//! waits more than about `hold` times the jobs ahead of it divided by
//! `parallelism` for the gate, and its limits start counting only once it
//! is through.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

/// The gate; cloned into every job (an `Arc` inside).
#[derive(Debug, Clone)]
pub(crate) struct CpuGate {
    permits: Arc<Semaphore>,
    hold: Duration,
}

impl CpuGate {
    pub(crate) fn new(parallelism: usize, hold: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(parallelism.max(1))),
            hold,
        }
    }

    /// Runs `job` once a permit is free; the permit goes back when the job
    /// ends or after `hold`, whichever comes first.
    pub(crate) async fn run<F: Future>(&self, job: F) -> F::Output {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("the gate never closes its semaphore");
        tokio::pin!(job);
        tokio::select! {
            biased;
            output = &mut job => return output,
            () = tokio::time::sleep(self.hold) => {}
        }
        drop(permit);
        job.await
    }
}

/// The default number of permits: twice the cores this process may use
/// (its CPU affinity and cgroup quota, as the standard library reads them).
pub fn default_cpu_parallelism() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()) * 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// At most `parallelism` short jobs run at once; all of them run.
    #[tokio::test(start_paused = true)]
    async fn short_jobs_run_a_few_at_a_time() {
        let gate = CpuGate::new(2, Duration::from_millis(50));
        let (inside, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut jobs = tokio::task::JoinSet::new();
        for _ in 0..10 {
            let (gate, inside, most) = (gate.clone(), inside.clone(), most.clone());
            jobs.spawn(async move {
                gate.run(async {
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            });
        }
        let started = tokio::time::Instant::now();
        while jobs.join_next().await.is_some() {}
        assert_eq!(most.load(Ordering::SeqCst), 2);
        // Five rounds of two 10 ms jobs.
        assert_eq!(started.elapsed(), Duration::from_millis(50));
    }

    /// A job longer than `hold` lets the next one in after `hold` and still
    /// runs to its end.
    #[tokio::test(start_paused = true)]
    async fn a_long_job_lets_the_next_in_after_the_hold() {
        let gate = CpuGate::new(1, Duration::from_millis(50));
        let long = tokio::spawn({
            let gate = gate.clone();
            async move {
                gate.run(tokio::time::sleep(Duration::from_secs(5))).await;
                tokio::time::Instant::now()
            }
        });
        tokio::task::yield_now().await;
        let started = tokio::time::Instant::now();
        gate.run(async {}).await;
        assert_eq!(started.elapsed(), Duration::from_millis(50));
        let ended = long.await.unwrap();
        assert_eq!(ended - started, Duration::from_secs(5));
    }
}
