//! Wiring of the long-running roles: build the queue, the sandbox and the
//! language table from the configuration, then run the API, the worker or both
//! until SIGTERM or Ctrl-C.

use std::sync::Arc;

use anyhow::Context;
use code_runner_api::{ApiConfig, AppState, SupportedLanguage};
use code_runner_queue::{EmbeddedQueue, Queue, RedisQueue, RedisQueueConfig};
use code_runner_sandbox::{LanguageTable, NativeSandbox};
use code_runner_worker::{Worker, WorkerConfig};
use tokio::sync::watch;

use crate::config::{ApiArgs, CommonArgs, WorkerArgs};

pub async fn serve(common: CommonArgs, api: ApiArgs, worker: WorkerArgs) -> anyhow::Result<()> {
    let languages = common.language_table()?;
    let queue = match &common.redis_url {
        Some(_) => connect_redis(&common).await?,
        None => {
            tracing::info!("no Redis URL: using the in-process queue");
            Arc::new(EmbeddedQueue::new(common.result_ttl())) as Arc<dyn Queue>
        }
    };
    let worker = build_worker(queue.clone(), languages.clone(), &worker)?;
    let stop = shutdown_signal();
    let worker_stop = stop.clone();
    let worker_task = tokio::spawn(worker.run_until_stopped(wait_for(worker_stop)));
    run_api(queue, &languages, &api, stop).await?;
    worker_task.await.context("worker task")?;
    Ok(())
}

pub async fn api(common: CommonArgs, api: ApiArgs) -> anyhow::Result<()> {
    let languages = common.language_table()?;
    let queue = connect_redis(&common).await?;
    run_api(queue, &languages, &api, shutdown_signal()).await
}

pub async fn worker(common: CommonArgs, worker: WorkerArgs) -> anyhow::Result<()> {
    let languages = common.language_table()?;
    let queue = connect_redis(&common).await?;
    let worker = build_worker(queue, languages, &worker)?;
    worker.run_until_stopped(wait_for(shutdown_signal())).await;
    Ok(())
}

async fn connect_redis(common: &CommonArgs) -> anyhow::Result<Arc<dyn Queue>> {
    let url = common
        .redis_url
        .clone()
        .context("--redis-url (or CODE_RUNNER_REDIS_URL) is required for this role")?;
    let config = RedisQueueConfig {
        key_prefix: common.key_prefix.clone(),
        result_ttl: common.result_ttl(),
        ..RedisQueueConfig::new(url)
    };
    let queue = RedisQueue::connect(config)
        .await
        .context("connecting to Redis")?;
    Ok(Arc::new(queue))
}

fn build_worker(
    queue: Arc<dyn Queue>,
    languages: Arc<LanguageTable>,
    args: &WorkerArgs,
) -> anyhow::Result<Worker> {
    let sandbox = NativeSandbox::new(args.native_config(args.concurrency))
        .context("starting the native sandbox")?;
    let config = WorkerConfig {
        run_limits: args.run_limits()?,
        compile_limits: args.compile_limits()?,
        ..WorkerConfig::new(args.concurrency as usize)
    };
    Ok(Worker::new(queue, Arc::new(sandbox), languages, config)?)
}

async fn run_api(
    queue: Arc<dyn Queue>,
    languages: &LanguageTable,
    args: &ApiArgs,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let supported = languages
        .iter()
        .map(|l| SupportedLanguage {
            name: l.name.clone(),
            version: l.version.clone(),
            aliases: l.aliases.clone(),
        })
        .collect();
    let config = ApiConfig {
        max_code_bytes: args.max_code_bytes as usize,
    };
    let state = AppState::new(queue, supported, config);
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("binding {}", args.bind))?;
    tracing::info!(address = %listener.local_addr()?, "API listening");
    code_runner_api::serve(listener, state, wait_for(stop))
        .await
        .context("serving HTTP")
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
