//! The worker: takes jobs from the queue, runs each one in a fresh sandbox and
//! stores its result, up to `concurrency` jobs at once.
//!
//! [`Worker::run_until_stopped`] is the loop; [`Worker::try_execute_jobs`] is
//! one step of it (reserve what fits in the free slots, start those jobs), so
//! tests can drive the worker without sleeping.

mod verdict;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use code_runner_queue::{Delivery, JobResult, Queue};
use code_runner_sandbox::{LanguageTable, Limits, Program, Sandbox};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;

pub use verdict::job_result;

/// Settings of one worker process.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Jobs run at once (the seed's Celery concurrency: 50).
    pub concurrency: usize,
    /// This worker's name in the consumer group; unique per process.
    pub consumer: String,
    /// How long one reserve call waits for work before looping.
    pub poll_wait: Duration,
    pub run_limits: Limits,
    pub compile_limits: Limits,
}

impl WorkerConfig {
    pub fn new(concurrency: usize) -> Self {
        Self {
            concurrency,
            consumer: default_consumer_name(),
            poll_wait: Duration::from_secs(1),
            run_limits: Limits::RUN_DEFAULT,
            compile_limits: Limits::COMPILE_DEFAULT,
        }
    }
}

/// A unique consumer name: host name and process id.
pub fn default_consumer_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}-{}", host.trim(), std::process::id())
}

/// What one step of the loop did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// This many jobs were started.
    Started(usize),
    /// Nothing was queued within the wait.
    EmptyQueue,
}

/// Takes jobs from a queue and runs them in a sandbox.
pub struct Worker {
    queue: Arc<dyn Queue>,
    sandbox: Arc<dyn Sandbox>,
    languages: Arc<LanguageTable>,
    config: WorkerConfig,
    slots: Arc<Semaphore>,
    running: JoinSet<()>,
}

/// Why the worker stopped.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("worker configuration: {0}")]
    Config(String),
}

impl Worker {
    pub fn new(
        queue: Arc<dyn Queue>,
        sandbox: Arc<dyn Sandbox>,
        languages: Arc<LanguageTable>,
        config: WorkerConfig,
    ) -> Result<Self, WorkerError> {
        if config.concurrency == 0 {
            return Err(WorkerError::Config("concurrency must be at least 1".into()));
        }
        config
            .run_limits
            .validate()
            .and_then(|()| config.compile_limits.validate())
            .map_err(|e| WorkerError::Config(e.to_string()))?;
        Ok(Self {
            slots: Arc::new(Semaphore::new(config.concurrency)),
            queue,
            sandbox,
            languages,
            config,
            running: JoinSet::new(),
        })
    }

    /// Runs jobs until `shutdown` resolves, then waits for the running ones.
    ///
    /// A reserve call is never cancelled half-way (jobs it read would stay
    /// unacknowledged), so shutdown is noticed while waiting for a free slot
    /// or between two reserve calls, within `poll_wait`.
    pub async fn run_until_stopped(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut backoff = Duration::from_millis(100);
        tracing::info!(consumer = %self.config.consumer, concurrency = self.config.concurrency, "worker started");
        loop {
            let permit = tokio::select! {
                () = &mut shutdown => break,
                permit = self.slots.clone().acquire_owned() => permit.expect("the worker never closes its semaphore"),
            };
            let stopping = tokio::select! {
                biased;
                () = &mut shutdown => true,
                () = std::future::ready(()) => false,
            };
            if stopping {
                break;
            }
            match self.reserve_and_start(permit).await {
                Ok(_) => backoff = Duration::from_millis(100),
                Err(e) => {
                    tracing::error!(error = %error_chain(&e), "cannot reserve jobs; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
            // Reap finished jobs so the set does not grow.
            while self.running.try_join_next().is_some() {}
        }
        tracing::info!(
            running = self.running.len(),
            "worker stopping; finishing running jobs"
        );
        while self.running.join_next().await.is_some() {}
    }

    /// One step of the loop: waits for a free slot, reserves as many jobs as
    /// there are free slots and starts them.
    pub async fn try_execute_jobs(&mut self) -> Result<Outcome, code_runner_queue::QueueError> {
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the worker never closes its semaphore");
        self.reserve_and_start(permit).await
    }

    async fn reserve_and_start(
        &mut self,
        first: OwnedSemaphorePermit,
    ) -> Result<Outcome, code_runner_queue::QueueError> {
        let free = 1 + self.slots.available_permits();
        let deliveries = self
            .queue
            .reserve(&self.config.consumer, free, self.config.poll_wait)
            .await?;
        if deliveries.is_empty() {
            return Ok(Outcome::EmptyQueue);
        }
        let started = deliveries.len();
        let mut permit = Some(first);
        for delivery in deliveries {
            let permit = match permit.take() {
                Some(p) => p,
                // Only this loop takes permits, so the ones counted above are still free.
                None => self
                    .slots
                    .clone()
                    .try_acquire_owned()
                    .expect("reserved no more jobs than free slots"),
            };
            self.start(delivery, permit);
        }
        Ok(Outcome::Started(started))
    }

    /// Waits until every started job has stored its result.
    pub async fn wait_idle(&mut self) {
        while self.running.join_next().await.is_some() {}
    }

    fn start(&mut self, delivery: Delivery, permit: OwnedSemaphorePermit) {
        let queue = self.queue.clone();
        let sandbox = self.sandbox.clone();
        let languages = self.languages.clone();
        let (run_limits, compile_limits) = (self.config.run_limits, self.config.compile_limits);
        let span = tracing::info_span!("job", job_id = %delivery.job.id, language = %delivery.job.language);
        self.running.spawn(
            async move {
                let started_at_ms = now_ms();
                let result = match languages.get(&delivery.job.language) {
                    None => JobResult::internal_error(
                        format!(
                            "language {:?} is not supported by this worker",
                            delivery.job.language
                        ),
                        started_at_ms,
                    ),
                    Some(language) => {
                        let program = Program {
                            language: language.clone(),
                            source: delivery.job.code.clone(),
                            stdin: delivery.job.stdin.clone().into_bytes(),
                            compile_limits,
                            run_limits,
                        };
                        match sandbox.execute(program).await {
                            Ok(execution) => {
                                job_result(&execution, &run_limits, started_at_ms, now_ms())
                            }
                            Err(e) => {
                                tracing::error!(error = %error_chain(&e), "sandbox failed");
                                JobResult::internal_error(
                                    format!("sandbox failed: {e}"),
                                    started_at_ms,
                                )
                            }
                        }
                    }
                };
                tracing::debug!(verdict = ?result.verdict, "job finished");
                if let Err(e) = queue.complete(&delivery, &result).await {
                    // Left unacknowledged: the job is redelivered after the
                    // visibility timeout rather than lost.
                    tracing::error!(error = %error_chain(&e), "cannot store result");
                }
                drop(permit);
            }
            .instrument(span),
        );
    }
}

/// An error and its causes on one line, for logs.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
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
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
