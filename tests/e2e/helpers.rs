//! Spawns the real service as separate processes — `code-runner api` and
//! `code-runner worker`s on a real `redis-server`, or `code-runner serve` —
//! on random ports, and talks HTTP to it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use code_runner_testkit::{unique_prefix, RedisServer};
use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_code-runner");

/// A running deployment; every process stops when it is dropped.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub redis: Option<RedisServer>,
    pub prefix: String,
    processes: Vec<(String, Child)>,
    logs: PathBuf,
    /// The arguments every worker was started with, to start more.
    worker_args: Vec<String>,
    /// `RUST_LOG` of every process.
    log_filter: String,
}

/// How to start a deployment.
pub struct Options {
    pub workers: usize,
    /// Extra flags for every worker (limits, concurrency).
    pub worker_flags: Vec<String>,
    /// `serve` in one process with the embedded queue instead of api + workers.
    pub embedded: bool,
    /// Extra flags for every process (API, workers, `serve`).
    pub common_flags: Vec<String>,
    /// Extra flags for the API process (or `serve`): keys, rate limits, CORS.
    pub api_flags: Vec<String>,
    /// Redis with the append-only file on (`appendfsync always`), so it can
    /// be restarted ([`TestApp::redis_mut`]) without losing data.
    pub aof: bool,
    /// Use this Redis (e.g. a `redis+sentinel://` URL) instead of starting one.
    pub redis_url: Option<String>,
    /// `RUST_LOG` of every process, instead of `info,code_runner_worker=debug`.
    pub log_filter: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            workers: 1,
            worker_flags: Vec::new(),
            embedded: false,
            common_flags: Vec::new(),
            api_flags: Vec::new(),
            aof: false,
            redis_url: None,
            log_filter: None,
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub async fn spawn_app(options: Options) -> TestApp {
    let port = free_port();
    let prefix = unique_prefix();
    let logs = std::env::temp_dir().join(format!("code-runner-e2e-{prefix}"));
    std::fs::create_dir_all(&logs).unwrap();
    let mut app = TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::new(),
        redis: None,
        prefix: prefix.clone(),
        processes: Vec::new(),
        logs,
        worker_args: Vec::new(),
        log_filter: options
            .log_filter
            .clone()
            .unwrap_or_else(|| "info,code_runner_worker=debug".to_owned()),
    };
    let bind = format!("127.0.0.1:{port}");
    if options.embedded {
        let mut args = vec!["serve".to_string(), "--bind".into(), bind];
        args.extend(options.worker_flags.iter().cloned());
        args.extend(options.common_flags.iter().cloned());
        args.extend(options.api_flags.iter().cloned());
        app.start("serve", &args);
    } else {
        let url = match options.redis_url {
            Some(url) => url,
            None => {
                let redis = if options.aof {
                    RedisServer::start_with_aof()
                } else {
                    RedisServer::start()
                };
                let url = redis.url();
                app.redis = Some(redis);
                url
            }
        };
        let mut common = vec![
            "--redis-url".to_string(),
            url,
            "--key-prefix".into(),
            prefix,
        ];
        common.extend(options.common_flags.iter().cloned());
        let mut api = vec!["api".to_string(), "--bind".into(), bind];
        api.extend(common.iter().cloned());
        api.extend(options.api_flags.iter().cloned());
        app.start("api", &api);
        let mut worker = vec!["worker".to_string()];
        worker.extend(common.iter().cloned());
        worker.extend(options.worker_flags.iter().cloned());
        app.worker_args = worker;
        for n in 0..options.workers {
            app.start_worker(&format!("worker-{n}"));
        }
    }
    app.wait_healthy().await;
    app
}

impl TestApp {
    /// Starts `code-runner ARGS` as `name`, logging to its own file.
    pub fn start(&mut self, name: &str, args: &[String]) {
        let log = std::fs::File::create(self.logs.join(format!("{name}.log"))).unwrap();
        let child = Command::new(BIN)
            .args(args)
            .env("RUST_LOG", &self.log_filter)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BIN} {name}: {e}"));
        self.processes.push((name.to_owned(), child));
    }

    async fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = self
                .client
                .get(format!("{}/health", self.address))
                .send()
                .await
            {
                if r.status().is_success() {
                    return;
                }
            }
            let exited = self
                .processes
                .iter_mut()
                .find_map(|(name, child)| Some((name.clone(), child.try_wait().ok()??)));
            if let Some((name, status)) = exited {
                panic!("{name} exited early ({status}): {}", self.log(&name));
            }
            assert!(Instant::now() < deadline, "service did not become healthy");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts one more worker process (same flags as the others) as `name`;
    /// a name used before gets a fresh log.
    pub fn start_worker(&mut self, name: &str) {
        let args = self.worker_args.clone();
        self.start(name, &args);
    }

    fn child(&mut self, name: &str) -> &mut Child {
        self.processes
            .iter_mut()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, child)| child)
            .unwrap_or_else(|| panic!("no process named {name}"))
    }

    /// The process id of the process `name`.
    pub fn pid(&self, name: &str) -> u32 {
        self.processes
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, child)| child.id())
            .unwrap_or_else(|| panic!("no process named {name}"))
    }

    /// Sends `signal` (e.g. `KILL`, `TERM`) to the process `name`.
    pub fn signal(&mut self, name: &str, signal: &str) {
        let pid = self.child(name).id();
        // kill(2) needs unsafe, which this crate forbids: use kill(1).
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {name} ({pid}) failed");
    }

    /// Waits (at most `cap`) for the process `name` to exit.
    pub async fn wait_exit(&mut self, name: &str, cap: Duration) -> ExitStatus {
        let deadline = Instant::now() + cap;
        loop {
            if let Some(status) = self.child(name).try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not exit within {cap:?}; log:\n{}",
                self.log(name)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The Redis server, to stop or restart it.
    pub fn redis_mut(&mut self) -> &mut RedisServer {
        self.redis.as_mut().expect("a deployment with Redis")
    }

    /// Every process's name and stderr log, killed ones included.
    pub fn logs(&self) -> Vec<(String, String)> {
        self.processes
            .iter()
            .map(|(name, _)| (name.clone(), self.log(name)))
            .collect()
    }

    /// The stderr log of one process.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.logs.join(format!("{name}.log"))).unwrap_or_default()
    }

    pub async fn post_raw(
        &self,
        body: impl Into<reqwest::Body>,
        content_type: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}/run-code", self.address))
            .body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        request.send().await.expect("POST /run-code")
    }

    /// Submits a job and returns its task id.
    pub async fn submit(&self, language: &str, code: &str) -> String {
        let response = self
            .client
            .post(format!("{}/run-code", self.address))
            .json(&json!({"language": language, "code": code}))
            .send()
            .await
            .expect("POST /run-code");
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["task_id"].as_str().expect("task_id").to_owned()
    }

    pub async fn result(&self, task_id: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}/results/{task_id}", self.address))
            .send()
            .await
            .expect("GET /results");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON body"))
    }

    /// Polls until the task is no longer PENDING (hard cap: 60 s).
    pub async fn wait_result(&self, task_id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, body) = self.result(task_id).await;
            assert_eq!(status, 200, "{body}");
            if body["status"] != "PENDING" {
                return body;
            }
            assert!(Instant::now() < deadline, "task {task_id} still pending");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn run(&self, language: &str, code: &str) -> Value {
        let id = self.submit(language, code).await;
        self.wait_result(&id).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // SIGTERM first, so workers clean up their cgroups and mounts.
        for (_, child) in &mut self.processes {
            // kill(2) needs unsafe, which this crate forbids: use kill(1).
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                // Killed on purpose earlier (chaos tests): no such process.
                .stderr(Stdio::null())
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for (_, child) in &mut self.processes {
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.logs);
    }
}
