//! Wiring of the long-running roles: build the queue, the sandbox and the
//! language table from the configuration, then run the API, the worker or both
//! until SIGTERM or Ctrl-C.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use code_runner_api::{ApiConfig, AppState, SupportedLanguage};
use code_runner_queue::{
    EmbeddedConfig, EmbeddedQueue, Queue, RedisQueue, RedisQueueConfig, COMMAND_DEADLINE,
};
use code_runner_sandbox::language::Substitutions;
use code_runner_sandbox::{DockerSandbox, LanguageTable, NativeSandbox, Sandbox};
use code_runner_worker::{Worker, WorkerConfig};
use tokio::sync::watch;

use crate::config::{ApiArgs, CommonArgs, ProgramLimitArgs, SandboxKind, WorkerArgs};

pub async fn serve(common: CommonArgs, api: ApiArgs, worker: WorkerArgs) -> anyhow::Result<()> {
    let languages = common.language_table()?;
    let (sandbox, docker) = build_sandbox(&worker).await?;
    let queue = match &common.redis_url {
        Some(_) => match connect_redis(&common, COMMAND_DEADLINE).await {
            Ok(queue) => queue,
            Err(e) => {
                close_sandbox(docker).await;
                return Err(e);
            }
        },
        None => {
            tracing::info!("no Redis URL: using the in-process queue");
            Arc::new(EmbeddedQueue::with_config(EmbeddedConfig {
                result_ttl: common.result_ttl(),
                max_queue_length: Some(common.max_queue_length),
                max_bytes: Some(common.max_store_bytes),
            })) as Arc<dyn Queue>
        }
    };
    let worker_args = worker;
    let worker = build_worker(
        queue.clone(),
        sandbox,
        languages.clone(),
        &worker_args,
        &common,
    )?;
    let stop = shutdown_signal();
    let worker_stop = stop.clone();
    let worker_task = tokio::spawn(worker.run_until_stopped(wait_for(worker_stop)));
    let mut config = api.api_config(&worker_args.program_limits())?;
    config.judge0.result_ttl = common.result_ttl();
    run_api(
        queue,
        &languages,
        &api,
        config,
        stop,
        common.shutdown_grace(),
    )
    .await?;
    worker_task.await.context("worker task")?;
    close_sandbox(docker).await;
    Ok(())
}

pub async fn api(common: CommonArgs, api: ApiArgs, limits: ProgramLimitArgs) -> anyhow::Result<()> {
    let languages = common.language_table()?;
    let mut config = api.api_config(&limits)?;
    config.judge0.result_ttl = common.result_ttl();
    let queue = connect_redis(&common, COMMAND_DEADLINE).await?;
    run_api(
        queue,
        &languages,
        &api,
        config,
        shutdown_signal(),
        common.shutdown_grace(),
    )
    .await
}

pub async fn worker(common: CommonArgs, worker: WorkerArgs) -> anyhow::Result<()> {
    let languages = common.language_table()?;
    // Workers retry every failed queue operation themselves, so they give a
    // busy Redis (or a busy host) more time than the API, which answers 503.
    let (sandbox, docker) = build_sandbox(&worker).await?;
    let queue = match connect_redis(&common, WORKER_COMMAND_DEADLINE).await {
        Ok(queue) => queue,
        Err(e) => {
            close_sandbox(docker).await;
            return Err(e);
        }
    };
    let worker = build_worker(queue, sandbox, languages, &worker, &common)?;
    worker.run_until_stopped(wait_for(shutdown_signal())).await;
    close_sandbox(docker).await;
    Ok(())
}

/// Deadline of a worker's queue operations (the API's is the default,
/// [`COMMAND_DEADLINE`]).
const WORKER_COMMAND_DEADLINE: Duration = Duration::from_secs(5);

/// Connects to Redis, waiting for it (with back-off, logging each failure)
/// when it is not up yet: a process started before Redis, or while it
/// restarts, comes up by itself once Redis does. A malformed URL fails at once.
async fn connect_redis(
    common: &CommonArgs,
    command_deadline: Duration,
) -> anyhow::Result<Arc<dyn Queue>> {
    let url = common
        .redis_url
        .clone()
        .context("--redis-url (or CODE_RUNNER_REDIS_URL) is required for this role")?;
    let config = RedisQueueConfig {
        key_prefix: common.key_prefix.clone(),
        result_ttl: common.result_ttl(),
        max_queue_length: Some(common.max_queue_length),
        command_deadline,
        wait_replicas: common.wait_replicas(),
        wait_timeout: Duration::from_millis(common.redis_wait_timeout_ms),
        ..RedisQueueConfig::new(url)
    };
    let mut backoff = Duration::from_millis(250);
    loop {
        match RedisQueue::connect(config.clone()).await {
            Ok(queue) => return Ok(Arc::new(queue)),
            Err(e @ code_runner_queue::QueueError::Redis { op: "open url", .. }) => {
                return Err(e).context("connecting to Redis");
            }
            Err(e) => {
                tracing::warn!(
                    error = %code_runner_worker::error_chain(&e),
                    retry_in = ?backoff,
                    "cannot reach Redis yet; waiting for it"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// The sandbox, made before anything else so that a host that cannot run it
/// (an unknown OCI runtime, a missing image, no bubblewrap) stops the process
/// at once; with the docker sandbox also the sandbox itself, to be closed
/// once the worker has stopped (its pooled containers are removed).
async fn build_sandbox(
    args: &WorkerArgs,
) -> anyhow::Result<(Arc<dyn Sandbox>, Option<Arc<DockerSandbox>>)> {
    Ok(match args.sandbox {
        SandboxKind::Native => {
            let sandbox = NativeSandbox::new(args.native_config(args.concurrency))
                .context("starting the native sandbox")?;
            (Arc::new(sandbox), None)
        }
        SandboxKind::Docker => {
            let sandbox = DockerSandbox::new(args.docker_config()?)
                .await
                .context("starting the docker sandbox")?;
            let sandbox = Arc::new(sandbox);
            (sandbox.clone(), Some(sandbox))
        }
    })
}

fn build_worker(
    queue: Arc<dyn Queue>,
    sandbox: Arc<dyn Sandbox>,
    languages: Arc<LanguageTable>,
    args: &WorkerArgs,
    common: &CommonArgs,
) -> anyhow::Result<Worker> {
    let config = WorkerConfig {
        run_limits: args.run_limits()?,
        compile_limits: args.compile_limits()?,
        redelivery: args.redelivery()?,
        shutdown_grace: common.shutdown_grace(),
        cpu_parallelism: args
            .cpu_parallelism
            .map_or_else(code_runner_worker::default_cpu_parallelism, |n| n as usize),
        cpu_hold: Duration::from_millis(args.cpu_hold_ms),
        ..WorkerConfig::new(args.concurrency as usize)
    };
    Ok(Worker::new(queue, sandbox, languages, config)?)
}

async fn close_sandbox(docker: Option<Arc<DockerSandbox>>) {
    if let Some(sandbox) = docker {
        sandbox.close().await;
    }
}

async fn run_api(
    queue: Arc<dyn Queue>,
    languages: &LanguageTable,
    args: &ApiArgs,
    config: ApiConfig,
    stop: watch::Receiver<bool>,
    grace: Duration,
) -> anyhow::Result<()> {
    let supported = languages
        .iter()
        .map(|l| SupportedLanguage {
            name: l.name.clone(),
            version: l.version.clone(),
            aliases: l.aliases.clone(),
            // The default `{main}` (`Main`): a Java class of another name
            // is saved under that name instead.
            file_name: l.source_file(&Substitutions {
                main: l.main_name(""),
                memory_mb: 0,
            }),
        })
        .collect();
    if let Some(warning) = config.exposure_warning(args.bind) {
        tracing::warn!("{warning}");
    }
    let state = AppState::new(queue, supported, config);
    let serve_config = args.serve_config()?;
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("binding {}", args.bind))?;
    tracing::info!(address = %listener.local_addr()?, "API listening");
    if let Some(bind) = args.metrics_bind {
        let metrics = tokio::net::TcpListener::bind(bind)
            .await
            .with_context(|| format!("binding {bind} (metrics)"))?;
        tracing::info!(address = %metrics.local_addr()?, "metrics listening");
        let (state, config, stop) = (state.clone(), serve_config.clone(), stop.clone());
        tokio::spawn(async move {
            if let Err(err) =
                code_runner_api::serve_metrics(metrics, state, &config, wait_for(stop)).await
            {
                tracing::error!("serving metrics: {err}");
            }
        });
    }
    // On a shutdown signal `serve` stops accepting and drains the requests
    // in flight; a request still running `grace` later is cut off.
    let drain_cap = {
        let stop = stop.clone();
        async move {
            wait_for(stop).await;
            tokio::time::sleep(grace).await;
        }
    };
    tokio::select! {
        served = code_runner_api::serve_with(listener, state, &serve_config, wait_for(stop)) => {
            served.context("serving HTTP")?;
            tracing::info!("API stopped");
        }
        () = drain_cap => {
            tracing::warn!(?grace, "requests still in flight after the shutdown grace period; closing them");
        }
    }
    Ok(())
}

/// A flag that turns true on SIGTERM or Ctrl-C.
fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
        let _ = tx.send(true);
    });
    rx
}

async fn wait_for(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}
