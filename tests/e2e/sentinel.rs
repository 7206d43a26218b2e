//! Redis that fails over: a primary, two replicas and three Sentinels, all
//! real `redis-server` processes on loopback ports; the real API and two
//! workers on a `redis+sentinel://` URL; the primary SIGKILLed in the middle
//! of 1,000 jobs (after the 300th acknowledged submit; 16 clients submit
//! 200 jobs a second in all, retrying a 503 after 50 ms), its replicas cut off for the 300 ms before (frozen, their
//! links closed: replication lag; without it, on loopback, no write is
//! ever acknowledged and not yet copied when the kill lands). Then:
//!
//! - the API answered only 2xx and 503, and 503 only from the fault (the
//!   replicas cut off) until the failover ended (the window is printed);
//! - the API and both workers found the new primary by themselves (each
//!   logs "Redis primary moved");
//! - every job acknowledged to a client (2xx with an id) before, during or
//!   after the failover ends `SUCCESS` printing its own token, and no
//!   result confirmed to a worker ("result stored", logged once a replica
//!   has it) was lost: no job has two. The workers' logs also say how many
//!   jobs ran twice (a result that never reached a replica is lost with
//!   the primary, and its job runs again after the visibility timeout).
//!
//! Before the failover the test measures what durable writes cost: POST
//! latency through an API with `WAIT 1` (the default behind Sentinel) and
//! one with `--redis-wait-replicas 0`, on a key prefix no worker reads.
//!
//! `SENTINEL_TEST_WAIT_REPLICAS=0` runs the failover with WAIT off, to see
//! acknowledged jobs lost (the test then fails if any is).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use code_runner_testkit::unique_prefix;
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::helpers::{free_port, spawn_app, Options, TestApp};

const MASTER: &str = "cr-primary";
const JOBS: usize = 1000;
/// The primary is killed once this many submits were acknowledged.
const KILL_AFTER: usize = 300;
const SUBMITTERS: usize = 16;
/// Each submitter sends at most one job per this interval (16 of them:
/// 200 jobs/s), so that submitting spans the failover: flat out, a release
/// build acknowledges all 1,000 within the replicas' 300 ms of lag.
const SUBMIT_EVERY: Duration = Duration::from_millis(80);
/// How long both replicas are cut off before the primary is killed.
const REPLICA_LAG: Duration = Duration::from_millis(300);
/// POSTs per API in the WAIT cost measurement.
const LATENCY_SAMPLES: usize = 300;

/// A `redis-server` (data node or Sentinel), killed and its directory
/// removed on drop. `extra` are more arguments for a data node (a later
/// `--bind` replaces the loopback one), or more lines of a Sentinel's
/// configuration.
pub(crate) struct Node {
    name: String,
    pub(crate) port: u16,
    child: Option<Child>,
    dir: PathBuf,
}

impl Node {
    pub(crate) fn start(
        name: &str,
        dir_root: &std::path::Path,
        extra: &[String],
        sentinel: bool,
    ) -> Node {
        let port = free_port();
        let dir = dir_root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let log = std::fs::File::create(dir.join("log")).unwrap();
        let mut command = Command::new("/usr/bin/redis-server");
        if sentinel {
            let config = dir.join("sentinel.conf");
            std::fs::write(
                &config,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {}\n{}\n",
                    dir.display(),
                    extra.join("\n")
                ),
            )
            .unwrap();
            command.arg(&config).arg("--sentinel");
        } else {
            command
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&dir)
                .args(extra);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start /usr/bin/redis-server (install redis-server: scripts/test.sh): {e}")
            });
        let node = Node {
            name: name.to_owned(),
            port,
            child: Some(child),
            dir,
        };
        node.wait_until(Duration::from_secs(10), "answer PING", |n| {
            n.cli(&["PING"]) == "PONG"
        });
        node
    }

    /// `redis-cli -p PORT ARGS`, its output trimmed ("" when it fails).
    fn cli(&self, args: &[&str]) -> String {
        cli(self.port, args)
    }

    fn wait_until(&self, cap: Duration, what: &str, ok: impl Fn(&Node) -> bool) {
        let deadline = Instant::now() + cap;
        while !ok(self) {
            assert!(
                Instant::now() < deadline,
                "{} did not {what} within {cap:?}; log:\n{}",
                self.name,
                std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `signal` (`STOP`, `CONT`) to the server.
    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("a running server").id();
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {}", self.name);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `redis-cli PSUBSCRIBE '<prefix>:done:*'` on one server, writing what it
/// receives to a file; killed on drop. The result script publishes on a
/// task's channel only when it writes a final result, and Redis passes a
/// PUBLISH on to replicas with the other writes: what a server's subscriber
/// saw is one message per result in that server's data.
pub(crate) struct Subscriber {
    child: Child,
    file: PathBuf,
    prefix: String,
}

impl Subscriber {
    pub(crate) async fn start(port: u16, prefix: &str, file: PathBuf) -> Subscriber {
        let child = Command::new("/usr/bin/redis-cli")
            .args(["-p", &port.to_string(), "PSUBSCRIBE"])
            .arg(format!("{prefix}:done:*"))
            .stdout(std::fs::File::create(&file).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("run /usr/bin/redis-cli (install redis-tools: scripts/test.sh)");
        let subscriber = Subscriber {
            child,
            file,
            prefix: prefix.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(&subscriber.file)
            .unwrap_or_default()
            .contains("psubscribe")
        {
            assert!(
                Instant::now() < deadline,
                "redis-cli PSUBSCRIBE did not subscribe"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        subscriber
    }

    /// Results published per task id so far.
    pub(crate) fn results(&self) -> HashMap<String, usize> {
        let channel = format!("{}:done:", self.prefix);
        let mut counts = HashMap::new();
        for line in std::fs::read_to_string(&self.file)
            .unwrap_or_default()
            .lines()
        {
            if let Some(id) = line.strip_prefix(&channel) {
                *counts.entry(id.to_owned()).or_default() += 1;
            }
        }
        counts
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.file);
    }
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("/usr/bin/redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("run /usr/bin/redis-cli (install redis-tools: scripts/test.sh)");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A primary, two replicas, three Sentinels (quorum 2, down after 1 s).
struct Deployment {
    data: Vec<Node>,
    sentinels: Vec<Node>,
    root: PathBuf,
}

impl Deployment {
    fn start() -> Deployment {
        let root = std::env::temp_dir().join(format!("code-runner-sentinel-{}", unique_prefix()));
        std::fs::create_dir_all(&root).unwrap();
        let primary = Node::start("primary", &root, &[], false);
        let replica_of = [
            "--replicaof".to_owned(),
            "127.0.0.1".to_owned(),
            primary.port.to_string(),
        ];
        let mut data = vec![primary];
        for n in 1..=2 {
            data.push(Node::start(
                &format!("replica-{n}"),
                &root,
                &replica_of,
                false,
            ));
        }
        for replica in &data[1..] {
            replica.wait_until(Duration::from_secs(10), "sync with the primary", |n| {
                n.cli(&["INFO", "replication"])
                    .contains("master_link_status:up")
            });
        }
        let monitor = vec![
            format!("sentinel monitor {MASTER} 127.0.0.1 {} 2", data[0].port),
            format!("sentinel down-after-milliseconds {MASTER} 1000"),
            // An election that fails (votes split, the replica picked slow
            // to answer on loaded cores) is tried again after twice this:
            // 10 s made one CI run's window 20 s.
            format!("sentinel failover-timeout {MASTER} 3000"),
            format!("sentinel parallel-syncs {MASTER} 2"),
        ];
        let sentinels: Vec<Node> = (1..=3)
            .map(|n| Node::start(&format!("sentinel-{n}"), &root, &monitor, true))
            .collect();
        // Each Sentinel must know both replicas (from the primary's INFO)
        // and the two other Sentinels (from their hello messages, every 2 s).
        for sentinel in &sentinels {
            sentinel.wait_until(
                Duration::from_secs(20),
                "see the replicas and Sentinels",
                |n| {
                    let replicas = n
                        .cli(&["SENTINEL", "REPLICAS", MASTER])
                        .matches("name")
                        .count();
                    let others = n
                        .cli(&["SENTINEL", "SENTINELS", MASTER])
                        .matches("name")
                        .count();
                    replicas == 2 && others == 2
                },
            );
        }
        Deployment {
            data,
            sentinels,
            root,
        }
    }

    fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        format!("redis+sentinel://{}/{MASTER}", hosts.join(","))
    }

    /// The port the Sentinels name as primary now.
    fn primary_port(&self) -> Option<u16> {
        let reply = self.sentinels[0].cli(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER]);
        reply.lines().nth(1)?.trim().parse().ok()
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        self.sentinels.clear();
        self.data.clear();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// One POST's outcome, times relative to the run's start.
#[derive(Debug, Clone)]
struct Post {
    at: Duration,
    took: Duration,
    status: u16,
}

async fn post_job(client: &reqwest::Client, address: &str, code: &str) -> (u16, Option<String>) {
    match client
        .post(format!("{address}/run-code"))
        .json(&json!({"language": "python", "code": code}))
        .send()
        .await
    {
        Ok(response) => {
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, body["task_id"].as_str().map(str::to_owned))
        }
        Err(_) => (0, None),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Sequential POST latency (p50, p99) through the API at `address`.
async fn latencies(address: &str, n: usize) -> (Duration, Duration) {
    let client = reqwest::Client::new();
    let mut took = Vec::with_capacity(n);
    for i in 0..n {
        let started = Instant::now();
        let (status, _) = post_job(&client, address, &format!("print({i})")).await;
        took.push(started.elapsed());
        assert_eq!(status, 200, "measurement POST failed");
    }
    took.sort();
    (percentile(&took, 0.5), percentile(&took, 0.99))
}

/// Submits per second through the API at `address`: `n` POSTs from
/// `clients` concurrent clients.
async fn throughput(address: &str, n: usize, clients: usize) -> f64 {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut set = JoinSet::new();
    for _ in 0..clients {
        let (next, address) = (next.clone(), address.to_owned());
        set.spawn(async move {
            let client = reqwest::Client::new();
            while next.fetch_add(1, Ordering::SeqCst) < n {
                let (status, _) = post_job(&client, &address, "print(1)").await;
                assert_eq!(status, 200, "measurement POST failed");
            }
        });
    }
    while let Some(done) = set.join_next().await {
        done.unwrap();
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// Starts an API on its own port as `name` with `flags`, and waits until it answers.
async fn start_api(app: &mut TestApp, name: &str, flags: &[String]) -> String {
    let port = free_port();
    let mut args = vec![
        "api".to_owned(),
        "--bind".into(),
        format!("127.0.0.1:{port}"),
    ];
    args.extend(flags.iter().cloned());
    app.start(name, &args);
    let address = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = app.client.get(format!("{address}/health")).send().await {
            if r.status().is_success() {
                return address;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{name} did not come up: {}",
            app.log(name)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What the workers' logs say about one task.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Tally {
    /// Runs that ended ("job finished").
    pub(crate) runs: usize,
    /// Results the store accepted ("result stored").
    pub(crate) stored: usize,
    /// Results the store refused, the task being final already.
    pub(crate) refused: usize,
}

/// Per task id, from every worker log of `app` (with `code_runner_queue=debug`).
pub(crate) fn worker_tallies(logs: &[(String, String)]) -> HashMap<String, Tally> {
    let mut tallies: HashMap<String, Tally> = HashMap::new();
    for (name, log) in logs {
        if !name.starts_with("worker") && !name.starts_with("host") {
            continue;
        }
        for line in log.lines() {
            let finished = line.contains("job finished");
            let stored = line.contains("result stored");
            let refused = line.contains("later one ignored");
            if !finished && !stored && !refused {
                continue;
            }
            // The job's span names it; a line outside it, its field.
            let Some(id) = ["job_id=", "task_id="].iter().find_map(|key| {
                line.split(key)
                    .nth(1)
                    .and_then(|rest| rest.split([' ', '}']).next())
            }) else {
                continue;
            };
            let tally = tallies.entry(id.to_owned()).or_default();
            tally.runs += usize::from(finished);
            tally.stored += usize::from(stored);
            tally.refused += usize::from(refused);
        }
    }
    tallies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sentinel_failover_loses_no_acknowledged_job() {
    let mut redis = Deployment::start();
    let url = redis.url();
    let wait_replicas = std::env::var("SENTINEL_TEST_WAIT_REPLICAS").ok();
    let mut common = vec!["--result-ttl-secs".to_owned(), "600".into()];
    if let Some(n) = &wait_replicas {
        common.extend(["--redis-wait-replicas".to_owned(), n.clone()]);
    }
    let mut app = spawn_app(Options {
        workers: 2,
        redis_url: Some(url.clone()),
        common_flags: common,
        api_flags: ["--max-unfinished-per-client", "100000"]
            .map(String::from)
            .to_vec(),
        // A result written just before the kill whose WAIT failed is lost
        // with the primary, and its job runs again after this timeout.
        worker_flags: [
            "--concurrency",
            "4",
            "--time-limit-ms",
            "10000",
            "--visibility-timeout-secs",
            "10",
        ]
        .map(String::from)
        .to_vec(),
        log_filter: Some("info,code_runner_worker=debug,code_runner_queue=debug".to_owned()),
        ..Options::default()
    })
    .await;

    // --- What WAIT costs: two more APIs on a prefix no worker reads. ---
    let measure_prefix = unique_prefix();
    let base = |wait: &str| {
        [
            "--redis-url",
            &url,
            "--key-prefix",
            &measure_prefix,
            "--max-unfinished-per-client",
            "100000",
            "--redis-wait-replicas",
            wait,
        ]
        .map(String::from)
        .to_vec()
    };
    let with_wait = start_api(&mut app, "api-wait", &base("1")).await;
    let without_wait = start_api(&mut app, "api-nowait", &base("0")).await;
    // Warm both up, then alternate rounds so load hits both alike.
    latencies(&with_wait, 20).await;
    latencies(&without_wait, 20).await;
    let mut on = Vec::new();
    let mut off = Vec::new();
    for _ in 0..3 {
        on.push(latencies(&with_wait, LATENCY_SAMPLES / 3).await);
        off.push(latencies(&without_wait, LATENCY_SAMPLES / 3).await);
    }
    let mut rate_on = Vec::new();
    let mut rate_off = Vec::new();
    for _ in 0..3 {
        rate_on.push(throughput(&with_wait, LATENCY_SAMPLES, SUBMITTERS).await);
        rate_off.push(throughput(&without_wait, LATENCY_SAMPLES, SUBMITTERS).await);
    }
    rate_on.sort_by(f64::total_cmp);
    rate_off.sort_by(f64::total_cmp);
    app.signal("api-wait", "KILL");
    app.signal("api-nowait", "KILL");
    let median = |v: &Vec<(Duration, Duration)>, f: fn(&(Duration, Duration)) -> Duration| {
        let mut x: Vec<Duration> = v.iter().map(f).collect();
        x.sort();
        x[x.len() / 2]
    };
    println!(
        "WAIT cost, sequential POST /run-code, {LATENCY_SAMPLES} each: \
         WAIT 1: p50 {:?} p99 {:?}; no WAIT: p50 {:?} p99 {:?}",
        median(&on, |x| x.0),
        median(&on, |x| x.1),
        median(&off, |x| x.0),
        median(&off, |x| x.1),
    );
    println!(
        "WAIT cost, {SUBMITTERS} concurrent clients, {LATENCY_SAMPLES} POSTs, median of 3: \
         WAIT 1: {:.0} submits/s; no WAIT: {:.0} submits/s",
        rate_on[1], rate_off[1]
    );

    // --- The failover in the middle of 1,000 jobs. ---
    let old_primary = redis.primary_port().expect("Sentinels name a primary");
    assert_eq!(old_primary, redis.data[0].port);
    let started = Instant::now();
    let acked = Arc::new(AtomicUsize::new(0));
    let next = Arc::new(AtomicUsize::new(0));
    let posts: Arc<Mutex<Vec<Post>>> = Arc::default();
    let ids: Arc<Mutex<Vec<(usize, String)>>> = Arc::default();
    let mut submitters = JoinSet::new();
    for _ in 0..SUBMITTERS {
        let (acked, next, posts, ids) = (acked.clone(), next.clone(), posts.clone(), ids.clone());
        let client = app.client.clone();
        let address = app.address.clone();
        submitters.spawn(async move {
            loop {
                let job = next.fetch_add(1, Ordering::SeqCst);
                if job >= JOBS {
                    return;
                }
                let code = format!("print('token-{job}')");
                let began = Instant::now();
                // Retried until acknowledged, as a client would.
                loop {
                    let at = started.elapsed();
                    let (status, id) = post_job(&client, &address, &code).await;
                    let took = started.elapsed() - at;
                    posts.lock().unwrap().push(Post { at, took, status });
                    if (200..300).contains(&status) {
                        ids.lock()
                            .unwrap()
                            .push((job, id.expect("2xx with a task_id")));
                        acked.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(SUBMIT_EVERY.saturating_sub(began.elapsed())).await;
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
    }
    while acked.load(Ordering::SeqCst) < KILL_AFTER {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // Replicas cut off, as by a network hiccup: on loopback they otherwise
    // copy each write within microseconds, and no kill could land between
    // a write's acknowledgement and its replication. Frozen, so they cannot
    // reconnect; their links closed by the primary, so what it writes from
    // now on reaches no replica (a frozen replica's socket alone would
    // still buffer it in the kernel).
    let fault_at = started.elapsed();
    for replica in &redis.data[1..] {
        replica.signal("STOP");
    }
    let closed = redis.data[0].cli(&["CLIENT", "KILL", "TYPE", "replica"]);
    assert_eq!(closed, "2", "replica links closed by the primary");
    tokio::time::sleep(REPLICA_LAG).await;
    let killed_at = started.elapsed();
    redis.data[0].kill();
    for replica in &redis.data[1..] {
        replica.signal("CONT");
    }
    println!(
        "replicas cut off at {fault_at:?} (after {KILL_AFTER} acknowledged submits), primary (port \
         {old_primary}) SIGKILLed {REPLICA_LAG:?} later"
    );
    let submit_cap = Duration::from_secs(60);
    tokio::time::timeout(submit_cap, async {
        while let Some(done) = submitters.join_next().await {
            done.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| panic!("1,000 submits not acknowledged within {submit_cap:?}"));
    let submitted_by = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(30);
    let new_primary = loop {
        match redis.primary_port() {
            Some(port) if port != old_primary => break port,
            _ => {
                assert!(
                    Instant::now() < deadline,
                    "no failover within 30 s of the kill"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };

    // Statuses: 2xx or 503 only; 503 only after the kill.
    let posts = posts.lock().unwrap().clone();
    let others: Vec<&Post> = posts
        .iter()
        .filter(|p| !(200..300).contains(&p.status) && p.status != 503)
        .collect();
    assert!(
        others.is_empty(),
        "answers other than 2xx and 503: {:?}",
        &others[..others.len().min(10)]
    );
    let unavailable: Vec<&Post> = posts.iter().filter(|p| p.status == 503).collect();
    if let Some(early) = unavailable.iter().find(|p| p.at + p.took < fault_at) {
        panic!("503 before the fault: {early:?}");
    }
    let first_503 = unavailable.iter().map(|p| p.at + p.took).min();
    let last_503 = unavailable.iter().map(|p| p.at + p.took).max();
    let first_ok_after = posts
        .iter()
        .filter(|p| p.at > killed_at && (200..300).contains(&p.status))
        .filter(|p| last_503.is_none_or(|last| p.at >= last))
        .map(|p| p.at + p.took)
        .min();
    let slowest_ok = posts
        .iter()
        .filter(|p| (200..300).contains(&p.status))
        .map(|p| p.took)
        .max()
        .unwrap_or_default();
    println!(
        "failover: {} POSTs, {} answered 503, first 503 {:?} after the fault, last 503 {:?} after \
         the fault ({:?} after the kill), first 2xx after the last 503 at {:?} after the kill; \
         slowest 2xx {slowest_ok:?}; all submits acknowledged {:?} after the start; new primary \
         port {new_primary}",
        posts.len(),
        unavailable.len(),
        first_503.map(|t| t - fault_at),
        last_503.map(|t| t - fault_at),
        last_503.map(|t| t.saturating_sub(killed_at)),
        first_ok_after.map(|t| t.saturating_sub(killed_at)),
        submitted_by,
    );
    if let Some(last) = last_503 {
        assert!(
            last - killed_at < Duration::from_secs(20),
            "503s went on {:?} after the kill",
            last - killed_at
        );
    }

    // Every acknowledged job ends SUCCESS with its own token.
    let ids = ids.lock().unwrap().clone();
    assert_eq!(ids.len(), JOBS);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut waiting: Vec<(usize, String)> = ids.clone();
    let mut lost = Vec::new();
    let mut wrong = Vec::new();
    while !waiting.is_empty() {
        let mut still = Vec::new();
        let mut checks = JoinSet::new();
        for (job, id) in waiting {
            let client = app.client.clone();
            let address = app.address.clone();
            checks.spawn(async move {
                let r = client.get(format!("{address}/results/{id}")).send().await;
                let (status, body) = match r {
                    Ok(r) => (
                        r.status().as_u16(),
                        r.json::<Value>().await.unwrap_or(Value::Null),
                    ),
                    Err(_) => (0, Value::Null),
                };
                (job, id, status, body)
            });
            if checks.len() >= 32 {
                let (job, id, status, body) = checks.join_next().await.unwrap().unwrap();
                sort_result(job, id, status, body, &mut still, &mut lost, &mut wrong);
            }
        }
        while let Some(done) = checks.join_next().await {
            let (job, id, status, body) = done.unwrap();
            sort_result(job, id, status, body, &mut still, &mut lost, &mut wrong);
        }
        waiting = still;
        if !waiting.is_empty() {
            assert!(
                Instant::now() < deadline,
                "{} jobs still pending 120 s after the last submit",
                waiting.len()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let finished_by = started.elapsed();
    let tallies = worker_tallies(&app.logs());
    let mut ran_twice = 0;
    let mut not_one = Vec::new();
    for (_, id) in &ids {
        let tally = tallies.get(id).copied().unwrap_or_default();
        if tally.runs > 1 {
            ran_twice += 1;
        }
        // A worker logs "result stored" once a replica has the result too
        // (WAIT), so a second one means the first was lost. None is fine:
        // the write landed but its reply did not (the primary died, or the
        // job was stopped as finished while its write waited for WAIT), and
        // the result the client reads was checked above.
        if tally.stored > 1 {
            not_one.push((id.clone(), tally));
        }
    }
    let moved: Vec<String> = app
        .logs()
        .into_iter()
        .filter(|(name, log)| {
            (name == "api" || name.starts_with("worker")) && log.contains("Redis primary moved")
        })
        .map(|(name, _)| name)
        .collect();
    println!(
        "{JOBS} jobs: all final by {finished_by:?}; lost (acknowledged, then unknown): {}; \
         wrong output: {}; jobs run twice: {ran_twice}; processes that moved to the new primary: {moved:?}",
        lost.len(),
        wrong.len()
    );
    assert!(lost.is_empty(), "acknowledged jobs lost: {lost:?}");
    assert!(
        wrong.is_empty(),
        "jobs with another job's output or a failure: {wrong:?}"
    );
    if let Some((id, _)) = not_one.first() {
        let lines: Vec<String> = app
            .logs()
            .into_iter()
            .flat_map(|(name, log)| {
                log.lines()
                    .filter(|l| l.contains(id.as_str()))
                    .map(|l| format!("{name}: {l}"))
                    .collect::<Vec<_>>()
            })
            .collect();
        panic!(
            "jobs with more than one confirmed result (a confirmed one was lost): \
             {not_one:?}\nlog of the first:\n{}",
            lines.join("\n")
        );
    }
    for name in ["api", "worker-0", "worker-1"] {
        assert!(
            moved.iter().any(|m| m == name),
            "{name} never moved to the new primary"
        );
    }
}

/// Files one result check: still pending, lost (404), wrong, or fine.
fn sort_result(
    job: usize,
    id: String,
    status: u16,
    body: Value,
    still: &mut Vec<(usize, String)>,
    lost: &mut Vec<(usize, String)>,
    wrong: &mut Vec<(usize, String, Value)>,
) {
    match status {
        200 if body["status"] == "PENDING" => still.push((job, id)),
        200 if body["status"] == "SUCCESS"
            && body["result"]["output"] == json!(format!("token-{job}\n")) => {}
        200 => wrong.push((job, id, body)),
        404 => lost.push((job, id)),
        // 503 or no answer: ask again.
        _ => still.push((job, id)),
    }
}
