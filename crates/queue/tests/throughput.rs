//! A throughput check for `RedisQueue::submit`, the API's hot path (the target
//! is 20,000 submits/s on a 2-core machine). Ignored by default because it
//! measures rather than checks behaviour; run it in release mode:
//!
//! ```text
//! cargo test --release -p code-runner-queue --test throughput -- --ignored --nocapture
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use code_runner_queue::{Job, Queue, RedisQueue, RedisQueueConfig, TaskId};
use code_runner_testkit::{unique_prefix, RedisServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run in release with --ignored --nocapture"]
async fn submit_throughput() {
    const TOTAL: usize = 100_000;
    // Like the API: many requests in flight at once on one shared connection.
    const IN_FLIGHT: usize = 256;

    let server = RedisServer::start();
    let queue = Arc::new(
        RedisQueue::connect(RedisQueueConfig {
            url: server.url(),
            key_prefix: unique_prefix(),
            result_ttl: Duration::from_secs(600),
            max_queue_length: None,
            command_deadline: code_runner_queue::COMMAND_DEADLINE,
            ..RedisQueueConfig::default()
        })
        .await
        .unwrap(),
    );
    let code = "print('Hello from Celery!')\n".repeat(8);

    let t0 = Instant::now();
    let tasks: Vec<_> = (0..IN_FLIGHT)
        .map(|i| {
            let queue = Arc::clone(&queue);
            let code = code.clone();
            tokio::spawn(async move {
                for _ in (i..TOTAL).step_by(IN_FLIGHT) {
                    let job = Job {
                        id: TaskId::new(),
                        language: "python".into(),
                        code: code.clone(),
                        stdin: String::new(),
                        submitted_at_ms: 0,
                        args: Vec::new(),
                        files: Vec::new(),
                        time_limit_ms: None,
                        memory_limit_mb: None,
                        owner: None,
                        judge: None,
                        live: None,
                    };
                    queue.submit(&job).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let took = t0.elapsed();
    let rate = TOTAL as f64 / took.as_secs_f64();
    println!("{TOTAL} submits in {took:?}: {rate:.0}/s");
}
