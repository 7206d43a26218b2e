//! The worker: takes jobs from the queue, runs each one in a fresh sandbox and
//! stores its result, up to `concurrency` jobs at once.
//!
//! [`Worker::run_until_stopped`] is the loop; [`Worker::try_execute_jobs`] is
//! one step of it (reserve what fits in the free slots, start those jobs), so
//! tests can drive the worker without sleeping.
//!
//! Reliability (issue 4): every `reclaim_interval` a step first takes over
//! deliveries that dead workers left past the visibility timeout; results are
//! stored with retries while Redis is away; a background watcher stops jobs
//! whose task was cancelled (`leases`); on shutdown the loop stops taking
//! jobs, lets the running ones finish within `shutdown_grace`, and releases
//! the rest for another worker.

mod cpu_gate;
pub mod judge;
mod leases;
mod live;
mod report;
mod sources;
mod verdict;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use code_runner_queue::{Delivery, Job, JobResult, Queue, Redelivery, TaskId, Verdict};
use code_runner_sandbox::{Language, LanguageTable, Limits, Program, Sandbox};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;

pub use cpu_gate::default_cpu_parallelism;
pub use sources::files_refusal;
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
    /// When a delivery left unacknowledged (its worker died) is taken over,
    /// and how many deliveries a job gets. Every worker sharing a queue
    /// should use the same values.
    pub redelivery: Redelivery,
    /// After a shutdown signal, how long running jobs may take to finish
    /// before they are stopped and released to another worker.
    pub shutdown_grace: Duration,
    /// How often the worker asks whether any running job was cancelled.
    pub cancel_check: Duration,
    /// Jobs that may enter the sandbox at once before the next waits
    /// (`cpu_gate`): at least 1; `concurrency` or more turns the gate off.
    pub cpu_parallelism: usize,
    /// How long a job holds its place at the gate at most.
    pub cpu_hold: Duration,
}

impl WorkerConfig {
    pub fn new(concurrency: usize) -> Self {
        let (run_limits, compile_limits) = (Limits::RUN_DEFAULT, Limits::COMPILE_DEFAULT);
        Self {
            concurrency,
            consumer: default_consumer_name(),
            poll_wait: Duration::from_secs(1),
            run_limits,
            compile_limits,
            redelivery: Redelivery {
                visibility_timeout: default_visibility_timeout(&run_limits, &compile_limits),
                ..Redelivery::default()
            },
            shutdown_grace: Duration::from_secs(45),
            cancel_check: Duration::from_millis(500),
            cpu_parallelism: default_cpu_parallelism(),
            cpu_hold: DEFAULT_CPU_HOLD,
        }
    }

    /// How often a step looks for deliveries to reclaim: a quarter of the
    /// visibility timeout, so a lost job waits at most 1.25 times it, but
    /// at most every 250 ms and at least every 15 s.
    pub fn reclaim_interval(&self) -> Duration {
        (self.redelivery.visibility_timeout / 4)
            .clamp(Duration::from_millis(250), Duration::from_secs(15))
    }
}

/// How long a job holds its place at the CPU gate at most, by default: a
/// python hello takes about 25 ms with 4 at once on 2 cores.
pub const DEFAULT_CPU_HOLD: Duration = Duration::from_millis(50);

/// Margin of the default visibility timeout over the longest a job can take
/// (sandbox set-up and clean-up, storing the result while Redis is slow).
pub const VISIBILITY_MARGIN: Duration = Duration::from_secs(30);

/// The default visibility timeout: the longest a job can run (compile and
/// run wall-clock limits) plus [`VISIBILITY_MARGIN`]; 70 s with the default limits.
pub fn default_visibility_timeout(run: &Limits, compile: &Limits) -> Duration {
    run.wall_time + compile.wall_time + VISIBILITY_MARGIN
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
    /// Admission to the sandbox (`cpu_gate`); `None` when it would admit
    /// every slot anyway.
    gate: Option<cpu_gate::CpuGate>,
    running: JoinSet<()>,
    /// The deliveries of the running jobs, to stop them when cancelled and
    /// release them at shutdown.
    leases: Arc<leases::Leases>,
    /// When this worker last looked for deliveries to reclaim; `None`: never.
    last_reclaim: Option<Instant>,
    /// Finished jobs not yet counted in a heartbeat (see `report`).
    tally: Arc<report::Tally>,
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
        if config.cpu_parallelism == 0 {
            return Err(WorkerError::Config(
                "cpu parallelism must be at least 1".into(),
            ));
        }
        config
            .run_limits
            .validate()
            .and_then(|()| config.compile_limits.validate())
            .map_err(|e| WorkerError::Config(e.to_string()))?;
        Ok(Self {
            slots: Arc::new(Semaphore::new(config.concurrency)),
            gate: (config.cpu_parallelism < config.concurrency)
                .then(|| cpu_gate::CpuGate::new(config.cpu_parallelism, config.cpu_hold)),
            queue,
            sandbox,
            languages,
            config,
            running: JoinSet::new(),
            leases: Arc::default(),
            last_reclaim: None,
            tally: Arc::default(),
        })
    }

    /// Runs jobs until `shutdown` resolves, then lets the running ones finish
    /// within `shutdown_grace`, stops and releases whatever is left, and
    /// returns.
    ///
    /// A reserve call is never cancelled half-way (jobs it read would stay
    /// unacknowledged), so shutdown is noticed while waiting for a free slot
    /// or between two reserve calls, within `poll_wait`.
    pub async fn run_until_stopped(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut backoff = Duration::from_millis(100);
        tracing::info!(
            consumer = %self.config.consumer,
            concurrency = self.config.concurrency,
            cpu_parallelism = self.config.cpu_parallelism.min(self.config.concurrency),
            visibility_timeout = ?self.config.redelivery.visibility_timeout,
            max_deliveries = self.config.redelivery.max_deliveries,
            "worker started"
        );
        let watcher = tokio::spawn(leases::watch_settled(
            self.leases.clone(),
            self.queue.clone(),
            self.config.cancel_check,
        ));
        let beat = || report::Beat {
            queue: self.queue.clone(),
            tally: self.tally.clone(),
            leases: self.leases.clone(),
            concurrency: self.config.concurrency,
            worker: self.config.consumer.clone(),
        };
        let (reporter, last_beat) = (tokio::spawn(beat().run()), beat());
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
                    // Backs off, but still notices a shutdown meanwhile.
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
            // Reap finished jobs so the set does not grow.
            while self.running.try_join_next().is_some() {}
        }
        let grace = self.config.shutdown_grace;
        tracing::info!(
            running = self.leases.len(),
            ?grace,
            "worker stopping: no new jobs; finishing running ones"
        );
        let finished = tokio::time::timeout(grace, async {
            while self.running.join_next().await.is_some() {}
        })
        .await;
        watcher.abort();
        if finished.is_err() {
            let released = self.leases.abandon_all(self.queue.as_ref()).await;
            tracing::warn!(
                released,
                "shutdown grace period over; stopped and released the unfinished jobs"
            );
            while self.running.join_next().await.is_some() {}
        }
        reporter.abort();
        let _ = tokio::time::timeout(report::LAST_REPORT_TIMEOUT, last_beat.send(true)).await;
        tracing::info!("worker stopped");
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
        let mut deliveries = Vec::new();
        let reclaim_due = self
            .last_reclaim
            .is_none_or(|at| at.elapsed() >= self.config.reclaim_interval());
        if reclaim_due {
            // Jobs of dead workers first: they have waited longest.
            deliveries = self
                .queue
                .reclaim(&self.config.consumer, free, &self.config.redelivery)
                .await?;
            self.last_reclaim = Some(Instant::now());
        }
        if deliveries.is_empty() {
            deliveries = self
                .queue
                .reserve(&self.config.consumer, free, self.config.poll_wait)
                .await?;
        }
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
        if delivery.attempt > 1 {
            tracing::info!(parent: &span, attempt = delivery.attempt, "running a redelivered job");
        }
        let leases = self.leases.clone();
        let tally = self.tally.clone();
        let gate = self.gate.clone();
        let store_for = self.config.redelivery.visibility_timeout;
        let consumer = self.config.consumer.clone();
        // Held until the lease is recorded, so the job cannot remove its
        // lease before it exists.
        let mut table = self.leases.lock();
        let lease_number = table.insert_pending();
        let leased = delivery.clone();
        let abort = self.running.spawn(
            async move {
                let started_at_ms = now_ms();
                tracing::debug!(attempt = delivery.attempt, "job started");
                // Lets clients tell "running" from "queued" (best effort),
                // and says whether the task was cancelled while queued (or
                // finished by an earlier delivery): then the job must not
                // run. A plain job starts without waiting for the answer (a
                // Redis round trip before every job), and is stopped should
                // it say so; the answer is in before the result is stored,
                // so the mark never lands after the result. A live job's
                // watchers see the mark before its output.
                let begin = {
                    let (queue, id) = (queue.clone(), delivery.job.id);
                    let receipt = delivery.receipt.clone();
                    async move {
                        match queue.begin(&id, &receipt, started_at_ms).await {
                            Ok(wanted) => wanted,
                            Err(e) => {
                                tracing::debug!(error = %error_chain(&e), "cannot mark the job as running");
                                true
                            }
                        }
                    }
                };
                let mut beginning = None;
                if delivery.job.live.is_some() {
                    if !begin.await {
                        tracing::debug!("task already final; not running it");
                        leases.remove(lease_number);
                        return;
                    }
                } else {
                    beginning = Some(AbortOnDrop(tokio::spawn(begin.in_current_span())));
                }
                let job = async {
                    // A live job's watchers see it start (a plain job's live
                    // log is never written).
                    let live = match delivery.job.live {
                        Some(mode) if delivery.job.judge.is_none() => {
                            let running = [code_runner_queue::LiveEvent::State("running".into())];
                            if let Err(e) = queue
                                .live_append(&delivery.job.id, code_runner_queue::LiveLog::Output, &running)
                                .await
                            {
                                tracing::debug!(error = %error_chain(&e), "cannot append to the live log");
                            }
                            let interactive = mode == code_runner_queue::LiveMode::Interactive;
                            Some(live::LiveJob::start(queue.clone(), delivery.job.id, interactive))
                        }
                        _ => None,
                    };
                    let result = match languages.get(&delivery.job.language) {
                        None => JobResult::internal_error(
                            format!(
                                "language {:?} is not supported by this worker",
                                delivery.job.language
                            ),
                            started_at_ms,
                        ),
                        Some(language) => {
                            let executed = async {
                                match &delivery.job.judge {
                                    Some(spec) => {
                                        let judged = execute_judged_job(
                                            &queue,
                                            sandbox.as_ref(),
                                            &languages,
                                            language,
                                            &delivery.job,
                                            spec,
                                            judge::JudgeLimits {
                                                run: run_limits,
                                                compile: compile_limits,
                                            },
                                            started_at_ms,
                                        );
                                        // A judged job may run longer than the
                                        // visibility timeout: keep its lease.
                                        keeping_the_lease(
                                            judged,
                                            queue.as_ref(),
                                            &consumer,
                                            &delivery,
                                            store_for,
                                        )
                                        .await
                                    }
                                    None => {
                                        let run_limits = job_limits(&delivery.job, run_limits);
                                        let limits = (run_limits, compile_limits);
                                        execute(
                                            sandbox.as_ref(),
                                            language,
                                            &delivery.job,
                                            limits,
                                            started_at_ms,
                                            live.as_ref().map(|live| live.io.clone()),
                                        )
                                        .await
                                    }
                                }
                            };
                            let mut result = match &gate {
                                Some(gate) => gate.run(executed).await,
                                None => executed.await,
                            };
                            result.language_version = language.version.clone();
                            result
                        }
                    };
                    if let Some(live) = live {
                        live.finish().await;
                    }
                    result
                };
                let mut result = match beginning {
                    None => job.await,
                    Some(mut beginning) => {
                        tokio::pin!(job);
                        let (result, wanted) = tokio::select! {
                            result = &mut job => (Some(result), (&mut beginning.0).await),
                            wanted = &mut beginning.0 => (None, wanted),
                        };
                        // A task already final: its delivery is retired, and
                        // its job stopped (dropping it stops the program).
                        if !wanted.unwrap_or(true) {
                            tracing::debug!("task already final; its job stopped or not stored");
                            leases.remove(lease_number);
                            return;
                        }
                        match result {
                            Some(result) => result,
                            None => job.await,
                        }
                    }
                };
                result.language = delivery.job.language.clone();
                result.submitted_at_ms = delivery.job.submitted_at_ms;
                tracing::debug!(verdict = ?result.verdict, "job finished");
                tally.record(&result);
                store_result(queue.as_ref(), &delivery, &result, store_for).await;
                if delivery.job.judge.is_some() {
                    // The result has the tests now; best effort.
                    let _ = queue.report_progress(&delivery.job.id, &[]).await;
                }
                leases.remove(lease_number);
                drop(permit);
            }
            .instrument(span),
        );
        table.fill(
            lease_number,
            leases::Lease {
                delivery: leased,
                abort,
            },
        );
    }
}

/// Runs the job's program in the sandbox (`limits`: run, compile) and turns
/// what happened into its result; or, when its extra files cannot be set up
/// next to its source, refuses it without reaching the sandbox (`sources`).
///
/// A failure of the sandbox itself is logged in full, with the task id, for
/// the operator; the user is told only that it happened and the task id to
/// quote: the error names host paths (cgroups, the slot's directories) and
/// the sandbox's internals, which are none of a client's business.
async fn execute(
    sandbox: &dyn Sandbox,
    language: &Arc<Language>,
    job: &Job,
    (run_limits, compile_limits): (Limits, Limits),
    started_at_ms: u64,
    live: Option<code_runner_sandbox::LiveIo>,
) -> JobResult {
    if let Some(message) = sources::refusal(language, job, &run_limits) {
        tracing::info!(%message, "job refused: its extra files cannot be set up");
        let mut result = JobResult::internal_error(message, started_at_ms);
        result.verdict = Verdict::CompileError;
        return result;
    }
    let program = Program {
        language: language.clone(),
        source: job.code.clone(),
        stdin: job.stdin.clone().into_bytes(),
        args: job.args.clone(),
        files: job
            .files
            .iter()
            .map(|f| (f.name.clone(), f.content.clone()))
            .collect(),
        compile_limits,
        run_limits,
    };
    let executed = match live {
        Some(live) => sandbox.execute_live(program, live).await,
        None => sandbox.execute(program).await,
    };
    match executed {
        Ok(execution) => job_result(&execution, &run_limits, started_at_ms, now_ms()),
        Err(e) => {
            tracing::error!(task_id = %job.id, error = %error_chain(&e), "sandbox failed");
            JobResult::internal_error(sandbox_failure_message(&job.id), started_at_ms)
        }
    }
}

/// [`judge::execute_judged`], after the checks [`execute`] makes of the
/// submission's extra files.
#[allow(clippy::too_many_arguments)]
async fn execute_judged_job(
    queue: &Arc<dyn Queue>,
    sandbox: &dyn Sandbox,
    languages: &LanguageTable,
    language: &Arc<Language>,
    job: &Job,
    spec: &code_runner_queue::judge::JudgeSpec,
    limits: judge::JudgeLimits,
    started_at_ms: u64,
) -> JobResult {
    if let Some(message) = sources::refusal(language, job, &limits.run) {
        tracing::info!(%message, "job refused: its extra files cannot be set up");
        let mut result = JobResult::internal_error(message, started_at_ms);
        result.verdict = Verdict::CompileError;
        return result;
    }
    let resolved;
    let spec = match &spec.testset {
        None => spec,
        Some(id) => match fetch_testset(queue.as_ref(), id).await {
            Ok(tests) => {
                resolved = code_runner_queue::judge::JudgeSpec {
                    tests,
                    testset: None,
                    ..spec.clone()
                };
                &resolved
            }
            Err(message) => {
                tracing::info!(testset = %id, %message, "judged job without its test set");
                let mut result = JobResult::internal_error(message, started_at_ms);
                result.verdict = Verdict::JudgeError;
                result.judge = Some(code_runner_queue::judge::JudgeReport::new(Vec::new()));
                return result;
            }
        },
    };
    judge::execute_judged(
        Some(queue),
        sandbox,
        languages,
        language,
        job,
        spec,
        limits,
        started_at_ms,
    )
    .await
}

/// The tests of the stored test set `id` a judged job names, or the message
/// of its `judge_error` when the set is gone (expired between the submit,
/// which checked it, and the job's start) or cannot be read.
async fn fetch_testset(
    queue: &dyn Queue,
    id: &str,
) -> Result<Vec<code_runner_queue::judge::TestCase>, String> {
    let json = match queue.testset(id, None).await {
        Ok(Some(json)) => json,
        Ok(None) => {
            return Err(format!(
                "Judge error: the test set {id} has expired (or was deleted) since the job was \
                 submitted; store it again with POST /testsets and resubmit"
            ))
        }
        Err(e) => {
            tracing::warn!(testset = %id, error = %error_chain(&e), "cannot fetch a test set");
            return Err(format!(
                "Judge error: the test set {id} could not be fetched"
            ));
        }
    };
    match code_runner_queue::judge::TestSet::from_json(&json) {
        Ok(stored) if !stored.tests.is_empty() => Ok(stored.tests),
        _ => Err(format!(
            "Judge error: the stored test set {id} is not valid"
        )),
    }
}

/// Runs `job` while extending `delivery`'s lease every third of the
/// visibility timeout ([`Queue::touch`]), so no other worker takes over a
/// job that is still running here. A worker that dies stops extending it,
/// and the job is reclaimed as before.
async fn keeping_the_lease<T>(
    job: impl Future<Output = T>,
    queue: &dyn Queue,
    consumer: &str,
    delivery: &Delivery,
    visibility_timeout: Duration,
) -> T {
    tokio::pin!(job);
    let every = (visibility_timeout / 3).max(Duration::from_millis(100));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            output = &mut job => return output,
            _ = ticks.tick() => {
                // Bounded, so the job is not held up long by a slow Redis.
                match tokio::time::timeout(Duration::from_secs(1), queue.touch(consumer, delivery)).await {
                    Ok(Ok(true)) => {}
                    Ok(Ok(false)) => tracing::debug!("the delivery is no longer this worker's; not extended"),
                    Ok(Err(e)) => tracing::debug!(error = %error_chain(&e), "cannot extend the lease"),
                    Err(_) => tracing::debug!("extending the lease took over 1 s"),
                }
            }
        }
    }
}

/// What the user reads when the sandbox failed running their task.
pub fn sandbox_failure_message(id: &TaskId) -> String {
    format!("Internal error: the sandbox failed (task {id}); the operator's logs have the details")
}

/// Stores a job's result, retrying with back-off while the queue is
/// unavailable (Redis restarting). Gives up after `give_up_after` — by then
/// the delivery has been handed to another worker — leaving the delivery
/// unacknowledged, so the job is redelivered rather than lost.
async fn store_result(
    queue: &dyn Queue,
    delivery: &Delivery,
    result: &JobResult,
    give_up_after: Duration,
) {
    let started = Instant::now();
    let mut backoff = Duration::from_millis(100);
    loop {
        match queue.complete(delivery, result).await {
            Ok(()) => return,
            Err(e) if started.elapsed() + backoff < give_up_after => {
                tracing::warn!(error = %error_chain(&e), ?backoff, "cannot store result yet; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Err(e) => {
                tracing::error!(error = %error_chain(&e), "cannot store result; the job will be redelivered");
                return;
            }
        }
    }
}

/// The run limits of one job: the worker's own, lowered to what the job
/// asked for. A request can never raise a limit above the worker's: the API
/// refuses such requests, and a value that got here anyway (an API
/// configured with higher maximums than this worker) is capped.
pub fn job_limits(job: &code_runner_queue::Job, worker: Limits) -> Limits {
    lowered_limits(worker, job.time_limit_ms, job.memory_limit_mb)
}

/// The worker's limits lowered to a time (ms) and memory (MiB) limit, when
/// given (and never raised above the worker's).
pub fn lowered_limits(
    worker: Limits,
    time_limit_ms: Option<u64>,
    memory_limit_mb: Option<u64>,
) -> Limits {
    let mut limits = worker;
    if let Some(ms) = time_limit_ms {
        let wall = Duration::from_millis(ms.max(1)).min(worker.wall_time);
        limits.wall_time = wall;
        limits.cpu_time = wall.min(worker.cpu_time);
    }
    if let Some(mb) = memory_limit_mb {
        // The sandbox's own floor is 16 MiB.
        limits.memory_bytes = mb
            .max(16)
            .saturating_mul(1024 * 1024)
            .min(worker.memory_bytes);
    }
    limits
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

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A task aborted when its handle is dropped: a job's running mark, which
/// must not outlive the job (a cancelled job's mark landing after it).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
