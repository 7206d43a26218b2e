//! Many hosts, shown: worker "hosts" are network namespaces joined to Redis
//! over veth pairs, made by the test (as root) and always removed, even when
//! it panics ([`Hosts`]'s `Drop`). Redis listens on the host side of each
//! pair; the API stays on loopback; one `code-runner worker --concurrency 50`
//! runs inside each namespace and reaches Redis only over its veth.
//!
//! 400 jobs that each sleep 2 s run on 1, 2 and 4 hosts (about 16, 8 and
//! 4 s; the jobs/s are printed; 4 hosts must be at least 1.5 times as fast
//! as 1: the 2 cores, not the queue, bound 4 hosts). Then, with 4 hosts, one host is cut off mid-run: its link set down
//! and its processes (worker, sandboxes, programs) frozen with SIGSTOP. Its
//! jobs are reclaimed by the others once the visibility timeout (5 s here)
//! passes; every job ends `SUCCESS` with its own output, and exactly one
//! result is accepted per job: the test counts the messages the result
//! script publishes (`P:done:<id>`, only when it writes) with `redis-cli
//! PSUBSCRIBE`, whichever host wrote it.
//!
//! Workers are started with `nsenter --net=/run/netns/NAME`, not `ip netns
//! exec NAME`: the latter also mounts a fresh sysfs on `/sys` (the netns's
//! view of `/sys/class/net`), which hides the cgroup hierarchies mounted
//! under `/sys/fs/cgroup` that the native sandbox needs. The sandbox's own
//! per-job network namespace (`bwrap --unshare-net`) is made from whatever
//! namespace the worker is in; a job checks that it still cannot reach
//! Redis over the host's veth.
//!
//! `MANY_HOSTS_VISIBILITY_SECS=600` runs the cut-off with a visibility
//! timeout longer than the test waits, to see the cut-off host's jobs stay
//! unfinished without reclaim (the test then fails).

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::helpers::{spawn_app, Options, TestApp, BIN};
use crate::sentinel::{worker_tallies, Node, Subscriber, Tally};

const JOBS: usize = 400;
const SLOTS: &str = "50";
const HOSTS: usize = 4;
/// How much faster 4 hosts must be than 1 (see the check).
const MIN_SPEEDUP: f64 = 1.5;
const SLEEP_CODE: &str = "import time\ntime.sleep(2)\nprint('slept-{i}')";

/// Runs a command that must succeed (`ip ...`).
fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One "host": a network namespace and its veth pair.
struct Host {
    netns: String,
    host_if: String,
    ns_if: String,
    /// Redis's address on this host's link (the host side).
    gateway: String,
}

/// The namespaces and veth pairs; removed on drop, panics included.
struct Hosts {
    hosts: Vec<Host>,
}

impl Hosts {
    /// `n` namespaces `crmh-<pid>-<i>` with links `crh<i>-<pid>` (host
    /// side, 10.A.B.4i+1/30) and `crn<i>-<pid>` (inside, 10.A.B.4i+2/30),
    /// in a 10.A.B.0/24 no interface of this machine uses.
    fn create(n: usize) -> Hosts {
        remove_stale();
        let pid = std::process::id();
        let existing = String::from_utf8_lossy(
            &Command::new("ip")
                .args(["-4", "-o", "addr"])
                .output()
                .expect("run ip (install iproute2)")
                .stdout,
        )
        .into_owned();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let mut base = None;
        for k in 0..50u32 {
            let candidate = format!("10.{}.{}", 200 + (pid + k) % 50, (nanos / 7 + k) % 250);
            if !existing.contains(&format!("{candidate}.")) {
                base = Some(candidate);
                break;
            }
        }
        let base = base.expect("no free 10.x.y.0/24");
        let mut hosts = Hosts { hosts: Vec::new() };
        for i in 0..n {
            let tag = pid % 100_000;
            let host = Host {
                netns: format!("crmh-{pid}-{i}"),
                host_if: format!("crh{i}-{tag}"),
                ns_if: format!("crn{i}-{tag}"),
                gateway: format!("{base}.{}", 4 * i + 1),
            };
            let inside = format!("{base}.{}/30", 4 * i + 2);
            // Pushed first, so a failure half-way is cleaned up too.
            hosts.hosts.push(host);
            let host = hosts.hosts.last().unwrap();
            run("ip", &["netns", "add", &host.netns]);
            run(
                "ip",
                &[
                    "link",
                    "add",
                    &host.host_if,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &host.ns_if,
                    "netns",
                    &host.netns,
                ],
            );
            run(
                "ip",
                &[
                    "addr",
                    "add",
                    &format!("{}/30", host.gateway),
                    "dev",
                    &host.host_if,
                ],
            );
            run("ip", &["link", "set", &host.host_if, "up"]);
            let ns = host.netns.as_str();
            run(
                "ip",
                &["-n", ns, "addr", "add", &inside, "dev", &host.ns_if],
            );
            run("ip", &["-n", ns, "link", "set", &host.ns_if, "up"]);
            run("ip", &["-n", ns, "link", "set", "lo", "up"]);
        }
        hosts
    }

    /// Cuts host `i` off: its side of the link goes down.
    fn cut(&self, i: usize) {
        let host = &self.hosts[i];
        run(
            "ip",
            &["-n", &host.netns, "link", "set", &host.ns_if, "down"],
        );
    }
}

/// Removes the namespaces and links of earlier runs whose test process is
/// gone without its `Drop` (SIGKILLed, e.g. by a test timeout).
fn remove_stale() {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("run ip (install iproute2)");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let Some((pid, i)) = name
            .strip_prefix("crmh-")
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, i)| Some((pid.parse::<u32>().ok()?, i.parse::<usize>().ok()?)))
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let host_if = format!("crh{i}-{}", pid % 100_000);
        for args in [
            vec!["link", "del", host_if.as_str()],
            vec!["netns", "del", name],
        ] {
            let _ = Command::new("ip")
                .args(&args)
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for host in &self.hosts {
            // Deleting one end deletes the pair; the namespace goes once its
            // last process has (the workers are killed before this runs).
            let _ = Command::new("ip")
                .args(["link", "del", &host.host_if])
                .stderr(Stdio::null())
                .status();
            let _ = Command::new("ip")
                .args(["netns", "del", &host.netns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Worker processes inside the hosts; SIGKILLed with everything they
/// started (frozen or not) on drop.
struct Workers {
    children: Vec<(String, Child)>,
    logs: std::path::PathBuf,
}

impl Workers {
    fn start(&mut self, host: &Host, name: &str, args: &[String]) {
        let log = std::fs::File::create(self.logs.join(format!("{name}.log"))).unwrap();
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", host.netns))
            .arg(BIN)
            .args(args)
            .env(
                "RUST_LOG",
                "info,code_runner_worker=debug,code_runner_queue=debug",
            )
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("run nsenter (util-linux)");
        self.children.push((name.to_owned(), child));
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.logs.join(format!("{name}.log"))).unwrap_or_default()
    }

    fn logs(&self) -> Vec<(String, String)> {
        self.children
            .iter()
            .map(|(name, _)| (name.clone(), self.log(name)))
            .collect()
    }

    fn pid(&self, name: &str) -> u32 {
        self.children
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c.id())
            .unwrap()
    }

    /// Waits until worker `name` logged that it started (connected to Redis,
    /// sandbox slots ready).
    async fn wait_started(&mut self, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.log(name).contains("worker started") {
            let child = &mut self.children.iter_mut().find(|(n, _)| n == name).unwrap().1;
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{name} exited ({status}): {}", self.log(name));
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not start: {}",
                self.log(name)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            for pid in tree(child.id()) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .stderr(Stdio::null())
                    .status();
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.logs);
    }
}

/// `pid` and all its descendants, from `/proc/*/stat`.
fn tree(pid: u32) -> Vec<u32> {
    let mut parents: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may hold spaces or parentheses.
        let Some(ppid) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        parents.entry(ppid).or_default().push(child);
    }
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        if let Some(children) = parents.get(&all[i]) {
            all.extend(children);
        }
        i += 1;
    }
    all
}

/// Freezes `pid` and every descendant with SIGSTOP, walking the tree again
/// until no new process shows up (one may fork while we walk).
fn freeze(pid: u32) -> usize {
    let mut stopped = std::collections::HashSet::new();
    for _ in 0..5 {
        let fresh: Vec<u32> = tree(pid)
            .into_iter()
            .filter(|p| !stopped.contains(p))
            .collect();
        if fresh.is_empty() {
            break;
        }
        for p in fresh {
            let _ = Command::new("kill")
                .args(["-STOP", &p.to_string()])
                .stderr(Stdio::null())
                .status();
            stopped.insert(p);
        }
    }
    stopped.len()
}

/// Submits `code` for every job number, waits for every result (long
/// polls), returns the task ids by job number and the seconds taken.
async fn run_batch(app: &TestApp, jobs: usize, cap: Duration) -> (Vec<String>, f64, Vec<Value>) {
    let started = Instant::now();
    let ids: Vec<String> = {
        let mut set = JoinSet::new();
        let sem = Arc::new(tokio::sync::Semaphore::new(16));
        for i in 0..jobs {
            let client = app.client.clone();
            let address = app.address.clone();
            let sem = sem.clone();
            set.spawn(async move {
                let _permit = sem.acquire().await.unwrap();
                let code = SLEEP_CODE.replace("{i}", &i.to_string());
                let response = client
                    .post(format!("{address}/run-code"))
                    .json(&json!({"language": "python", "code": code}))
                    .send()
                    .await
                    .expect("POST /run-code");
                assert_eq!(response.status(), 200);
                let body: Value = response.json().await.unwrap();
                (i, body["task_id"].as_str().unwrap().to_owned())
            });
        }
        let mut ids = vec![String::new(); jobs];
        while let Some(done) = set.join_next().await {
            let (i, id) = done.unwrap();
            ids[i] = id;
        }
        ids
    };
    let deadline = started + cap;
    let mut set = JoinSet::new();
    for (i, id) in ids.iter().enumerate() {
        let client = app.client.clone();
        let address = app.address.clone();
        let id = id.clone();
        set.spawn(async move {
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return (i, None);
                }
                let wait = left.as_secs().clamp(1, 20);
                if let Ok(r) = client
                    .get(format!("{address}/results/{id}?wait={wait}"))
                    .send()
                    .await
                {
                    if let Ok(body) = r.json::<Value>().await {
                        if body["status"] != "PENDING" && !body["status"].is_null() {
                            return (i, Some(body));
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }
    let mut results = vec![Value::Null; jobs];
    let mut unfinished = 0;
    while let Some(done) = set.join_next().await {
        match done.unwrap() {
            (i, Some(body)) => results[i] = body,
            (_, None) => unfinished += 1,
        }
    }
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(
        unfinished, 0,
        "{unfinished} of {jobs} jobs without a final result within {cap:?}"
    );
    (ids, secs, results)
}

fn check_outputs(results: &[Value]) {
    let wrong: Vec<(usize, &Value)> = results
        .iter()
        .enumerate()
        .filter(|(i, body)| {
            body["status"] != "SUCCESS" || body["result"]["output"] != json!(format!("slept-{i}\n"))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} jobs failed or printed another job's output, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(3)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_hosts_scale_out_and_reclaim_a_cut_off_hosts_jobs() {
    assert_eq!(
        String::from_utf8_lossy(&Command::new("id").arg("-u").output().unwrap().stdout).trim(),
        "0",
        "network namespaces and veth pairs need root (scripts/test.sh runs as root)"
    );
    // Declared in this order so they drop in reverse: workers (killed),
    // then the namespaces, then Redis and the API.
    let hosts = Hosts::create(HOSTS);
    let scratch = std::env::temp_dir().join(format!(
        "code-runner-many-hosts-{}",
        code_runner_testkit::unique_prefix()
    ));
    std::fs::create_dir_all(&scratch).unwrap();
    let mut bind = vec!["--bind".to_owned(), "127.0.0.1".to_owned()];
    bind.extend(hosts.hosts.iter().map(|h| h.gateway.clone()));
    bind.extend(["--protected-mode".to_owned(), "no".to_owned()]);
    let redis = Node::start("redis", &scratch, &bind, false);
    let app = spawn_app(Options {
        workers: 0,
        redis_url: Some(format!("redis://127.0.0.1:{}/", redis.port)),
        api_flags: ["--max-unfinished-per-client", "100000"]
            .map(String::from)
            .to_vec(),
        ..Options::default()
    })
    .await;
    let visibility = std::env::var("MANY_HOSTS_VISIBILITY_SECS").unwrap_or_else(|_| "5".into());
    let mut workers = Workers {
        children: Vec::new(),
        logs: scratch.join("logs"),
    };
    std::fs::create_dir_all(&workers.logs).unwrap();
    // Every result the store accepts is published on `P:done:<id>` by the
    // same script that writes it, and only then: one message per accepted
    // result, counted here whoever wrote it (a frozen host included).
    let subscriber = Subscriber::start(redis.port, &app.prefix, scratch.join("published")).await;
    let worker_args = |host: &Host| -> Vec<String> {
        [
            "worker",
            "--redis-url",
            &format!("redis://{}:{}/", host.gateway, redis.port),
            "--key-prefix",
            &app.prefix,
            "--concurrency",
            SLOTS,
            // A 2 s sleep, with room for a loaded machine: under a load
            // average of 40, one took over 10 s to start, print and exit.
            "--time-limit-ms",
            "30000",
            "--memory-limit-mb",
            "64",
            "--visibility-timeout-secs",
            &visibility,
            "--shutdown-grace-secs",
            "1",
        ]
        .map(String::from)
        .to_vec()
    };

    let mut figures = Vec::new();
    let mut all_ids = Vec::new();
    for (i, count) in [1, 2, 4].into_iter().enumerate() {
        let running = figures.last().map_or(0, |(hosts, _)| *hosts);
        for n in running..count {
            workers.start(
                &hosts.hosts[n],
                &format!("host-{n}"),
                &worker_args(&hosts.hosts[n]),
            );
        }
        for n in running..count {
            workers.wait_started(&format!("host-{n}")).await;
        }
        if i == 0 {
            // The sandbox's own network namespace still isolates the job
            // from the host's link, whose Redis the worker itself uses.
            let probe = format!(
                "import socket\ns = socket.socket()\ns.settimeout(1)\ntry:\n    s.connect(('{}', {}))\n    print('reached')\nexcept OSError:\n    print('isolated')",
                hosts.hosts[0].gateway, redis.port
            );
            let id = app.submit("python", &probe).await;
            let deadline = Instant::now() + Duration::from_secs(60);
            let body = loop {
                let (_, body) = app.result(&id).await;
                if body["status"] != "PENDING" {
                    break body;
                }
                if Instant::now() > deadline {
                    let log = workers.log("host-0");
                    let tail: Vec<&str> = log.lines().rev().take(30).collect();
                    panic!(
                        "probe job {id} still pending; host-0's log ends:\n{}",
                        tail.join("\n")
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            assert_eq!(body["result"]["output"], "isolated\n", "{body}");
        }
        let (ids, secs, results) = run_batch(&app, JOBS, Duration::from_secs(90)).await;
        check_outputs(&results);
        println!(
            "{count} host(s) x {SLOTS} slots: {JOBS} jobs of 2 s in {secs:.1} s = {:.1} jobs/s",
            JOBS as f64 / secs
        );
        figures.push((count, secs));
        all_ids.extend(ids);
    }

    // One host cut off mid-run: link down, processes frozen.
    let cut = HOSTS - 1;
    let cut_name = format!("host-{cut}");
    let batch = {
        let app = &app;
        async move { run_batch(app, JOBS, Duration::from_secs(60)).await }
    };
    let cutter = async {
        // Jobs of the batch are running on every host after a second.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let cut_at = Instant::now();
        hosts.cut(cut);
        let frozen = freeze(workers.pid(&cut_name));
        println!("{cut_name} cut off (link down, {frozen} processes frozen)");
        cut_at
    };
    let ((ids, secs, results), _) = tokio::join!(batch, cutter);
    check_outputs(&results);
    let logs = workers.logs();
    let tallies: HashMap<String, Tally> = worker_tallies(&logs);
    let accepted = subscriber.results();
    // Jobs the cut-off host had started and did not store a result of:
    // another host ran them again and stored theirs.
    let cut_log = workers.log(&cut_name);
    let cut_tallies = worker_tallies(&[(cut_name.clone(), cut_log.clone())]);
    let mut reclaimed = 0;
    let mut not_one = Vec::new();
    for id in &ids {
        let tally = tallies.get(id).copied().unwrap_or_default();
        let results = accepted.get(id).copied().unwrap_or(0);
        if results != 1 {
            not_one.push((id.clone(), results, tally));
        }
        let stored_by_cut = cut_tallies.get(id).is_some_and(|t| t.stored > 0);
        if cut_log.contains(&format!("job_id={id}")) && !stored_by_cut {
            reclaimed += 1;
        }
    }
    println!(
        "cut-off run: {JOBS} jobs in {secs:.1} s ({:.1} jobs/s); {reclaimed} jobs held by {cut_name} \
         finished elsewhere; every job SUCCESS with its own output",
        JOBS as f64 / secs
    );
    assert!(
        reclaimed > 0,
        "the cut-off host held no job; the cut came too late or too early"
    );
    assert!(
        not_one.is_empty(),
        "jobs without exactly one accepted result (id, results, worker logs): {:?}",
        &not_one[..not_one.len().min(5)]
    );
    for id in &all_ids {
        let results = accepted.get(id).copied().unwrap_or(0);
        assert_eq!(results, 1, "job {id}: {results} accepted results");
    }
    // Checked last, so the cut-off runs (and is reported) on a machine too
    // loaded to show the scaling. 4 hosts cannot reach 4x here: a job costs
    // about 20 ms of CPU (more in a debug build), so 400 of them take the 2
    // cores for seconds on top of the 2 s sleep. Measured: 2.5x (release),
    // 1.6x to 2.4x (debug, with other builds on the cores); 1 host and 4
    // hosts alike (no scale-out) would be 1x.
    let (one, four) = (figures[0].1, figures[2].1);
    assert!(
        one >= MIN_SPEEDUP * four,
        "4 hosts ({four:.1} s) not at least {MIN_SPEEDUP}x as fast as 1 host ({one:.1} s)"
    );
    drop(workers);
    drop(hosts);
    drop(redis);
    let _ = std::fs::remove_dir_all(&scratch);
}
