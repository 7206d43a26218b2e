//! Durable writes (`RedisQueueConfig::wait_replicas`): a submit and a result
//! succeed only once a replica has them. With no replica attached, both
//! fail with `QueueError::NotReplicated` after the `WAIT` timeout; with a
//! real replica (`redis-server --replicaof`) they succeed, and the replica
//! holds the job.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use code_runner_queue::{
    Job, JobResult, Queue, QueueError, RedisQueue, RedisQueueConfig, TaskId, TaskState,
};
use code_runner_testkit::{unique_prefix, RedisServer};

/// A replica `redis-server` of `primary_port`, killed on drop.
struct Replica {
    child: Child,
    port: u16,
}

impl Replica {
    fn start(primary_port: u16) -> Replica {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("/usr/bin/redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--replicaof", "127.0.0.1", &primary_port.to_string()])
            .arg("--dir")
            .arg(std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start /usr/bin/redis-server (install redis-server: scripts/test.sh)");
        Replica { child, port }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn queue(url: String, prefix: &str) -> RedisQueue {
    RedisQueue::connect(RedisQueueConfig {
        key_prefix: prefix.to_owned(),
        wait_replicas: 1,
        // Long enough for a replica's acknowledgement on two loaded cores
        // (200 ms once was not, in CI), well under the command deadline.
        wait_timeout: Duration::from_secs(1),
        command_deadline: Duration::from_secs(5),
        ..RedisQueueConfig::new(url)
    })
    .await
    .expect("connect to the test redis-server")
}

#[tokio::test]
async fn writes_wait_for_a_replica_and_fail_without_one() {
    let primary = RedisServer::start();
    let prefix = unique_prefix();
    let queue = queue(primary.url(), &prefix).await;

    let lonely = Job::new(TaskId::new(), "python", "print(1)", 1);
    let started = Instant::now();
    match queue.submit(&lonely).await {
        Err(QueueError::NotReplicated {
            acked: 0,
            wanted: 1,
            ..
        }) => {}
        other => panic!("submit without a replica: {other:?}"),
    }
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "gave up before the WAIT timeout"
    );

    let replica = Replica::start(primary.port());
    let deadline = Instant::now() + Duration::from_secs(10);
    let job = Job::new(TaskId::new(), "python", "print(2)", 1);
    // Until the replica has synced, submits keep failing; then they succeed.
    loop {
        match queue.submit(&job).await {
            Ok(()) => break,
            Err(QueueError::NotReplicated { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!("submit with a replica: {other:?}"),
        }
    }
    // The replica has the job's state already: WAIT returned only once it did.
    let key = format!("{prefix}:task:{}", job.id);
    assert!(
        get(replica.port, &key).starts_with(r#"{"state":"pending""#),
        "replica lacks the submitted job"
    );

    let delivery = queue
        .reserve("w", 10, Duration::from_secs(1))
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.job.id == job.id)
        .expect("the job is delivered");
    queue
        .complete(&delivery, &JobResult::internal_error("done", 2))
        .await
        .unwrap();
    assert!(
        get(replica.port, &key).starts_with(r#"{"state":"done""#),
        "replica lacks the result"
    );
    assert!(matches!(
        queue.state(&job.id).await.unwrap(),
        Some(TaskState::Done(_))
    ));
}

/// `GET key` on the server at `port`, with redis-cli.
fn get(port: u16, key: &str) -> String {
    let out = Command::new("/usr/bin/redis-cli")
        .args(["-p", &port.to_string(), "GET", key])
        .output()
        .expect("run /usr/bin/redis-cli (install redis-tools: scripts/test.sh)");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
