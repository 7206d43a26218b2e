//! The service's configuration: one typed struct per role, read from command
//! line flags with an environment variable behind each (flag > env > default),
//! and checked once at start-up.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use code_runner_sandbox::{DockerConfig, KeeperCommand, LanguageTable, Limits, NativeConfig};

/// The sandbox backends a worker can run jobs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SandboxKind {
    Native,
    Docker,
}

/// How the service's own threads are scheduled against the programs it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scheduling {
    /// `SCHED_BATCH` for the process, and so for its runtime threads, the
    /// keepers and the programs: a woken thread waits for the running
    /// program's next scheduling point rather than preempting it.
    Batch,
    /// The host's default policy (`SCHED_OTHER`) left as it is.
    Normal,
}

/// Settings every role shares.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Redis URL (e.g. redis://127.0.0.1:6379/), or Redis Sentinel's
    /// (redis+sentinel://[:password@]host:port,host:port/master-name[/db]),
    /// whose primary is found again after a failover. Without it, `serve`
    /// uses an in-process queue; `api` and `worker` require it.
    #[arg(long, env = "CODE_RUNNER_REDIS_URL")]
    pub redis_url: Option<String>,

    /// Durable writes: after each submit and each result, wait (Redis
    /// `WAIT`) until this many replicas have it, so that a failover cannot
    /// lose an acknowledged job; 0 does not wait. Default: 1 with a
    /// redis+sentinel:// URL, 0 otherwise.
    #[arg(long, env = "CODE_RUNNER_REDIS_WAIT_REPLICAS",
          value_parser = clap::value_parser!(u32).range(0..=64))]
    pub redis_wait_replicas: Option<u32>,

    /// Longest the replicas get to confirm a durable write, in milliseconds;
    /// past it the write is reported failed (the API answers 503).
    #[arg(long, env = "CODE_RUNNER_REDIS_WAIT_TIMEOUT_MS", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub redis_wait_timeout_ms: u64,

    /// Prefix of every Redis key, so several deployments can share one Redis.
    #[arg(long, env = "CODE_RUNNER_KEY_PREFIX", default_value = "code-runner")]
    pub key_prefix: String,

    /// How long results are kept, in seconds; then GET answers 404.
    #[arg(long, env = "CODE_RUNNER_RESULT_TTL_SECS", default_value_t = 86_400,
          value_parser = clap::value_parser!(u64).range(1..=30 * 86_400))]
    pub result_ttl_secs: u64,

    /// A language table (TOML) replacing the built-in one.
    #[arg(long, env = "CODE_RUNNER_LANGUAGES")]
    pub languages: Option<PathBuf>,

    /// Most jobs waiting or running at once; beyond it `POST /run-code`
    /// answers 503 with `Retry-After` and queues nothing.
    #[arg(long, env = "CODE_RUNNER_MAX_QUEUE_LENGTH", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub max_queue_length: u64,

    /// Memory budget of the in-process queue (`serve` without a Redis URL),
    /// in bytes: unfinished jobs and stored results together. Past it the
    /// oldest finished results are evicted (then GET answers 404), and when
    /// unfinished jobs alone fill it, `POST /run-code` answers 503.
    #[arg(long, env = "CODE_RUNNER_MAX_STORE_BYTES", default_value_t = 256 * 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1024 * 1024..=1024 * 1024 * 1024 * 1024))]
    pub max_store_bytes: u64,

    /// On SIGTERM, how long running jobs (worker) and requests in flight (API)
    /// get to finish, in seconds; then the worker stops its jobs and hands
    /// them back to the queue, and the API closes its connections.
    #[arg(long, env = "CODE_RUNNER_SHUTDOWN_GRACE_SECS", default_value_t = 45,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub shutdown_grace_secs: u64,

    /// Scheduling policy of the process and everything it starts: `batch`
    /// (`SCHED_BATCH`; under load, about 14 context switches and 0.4 ms of
    /// CPU fewer per job, docs/benchmarks.md) or `normal` (the host's default).
    #[arg(long, env = "CODE_RUNNER_SCHEDULING", value_enum, default_value_t = Scheduling::Batch)]
    pub scheduling: Scheduling,
}

impl CommonArgs {
    /// Replicas each durable write waits for: the flag, else 1 behind
    /// Sentinel (a failover is expected there) and 0 otherwise.
    pub fn wait_replicas(&self) -> u32 {
        self.redis_wait_replicas.unwrap_or_else(|| {
            let sentinel = self
                .redis_url
                .as_deref()
                .is_some_and(|url| url.starts_with(code_runner_queue::SENTINEL_SCHEME));
            u32::from(sentinel)
        })
    }

    pub fn result_ttl(&self) -> Duration {
        Duration::from_secs(self.result_ttl_secs)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    pub fn language_table(&self) -> anyhow::Result<Arc<LanguageTable>> {
        let table = match &self.languages {
            Some(path) => LanguageTable::from_file(path)
                .with_context(|| format!("loading language table {}", path.display()))?,
            None => LanguageTable::builtin(),
        };
        Ok(Arc::new(table))
    }
}

/// Settings of the HTTP API.
#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// Address to listen on.
    #[arg(long, env = "CODE_RUNNER_BIND", default_value = "127.0.0.1:8000")]
    pub bind: SocketAddr,

    /// Threads of the API's async runtime (and of `serve`'s, which runs the
    /// worker on it too). A request costs the API tens of microseconds; on
    /// two cores one thread serves more submissions per second than two
    /// and leaves more CPU to the jobs (cross-thread wake-ups cost more than
    /// they bring: `docs/benchmarks.md`). Default: one per two cores this
    /// process may use; for `serve`, one per core (the worker's inline work,
    /// such as a judge's checker, must not hold up the API's requests).
    #[arg(long, env = "CODE_RUNNER_API_THREADS",
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub api_threads: Option<u32>,

    /// Largest accepted `code`, in bytes (413 above it).
    #[arg(long, env = "CODE_RUNNER_MAX_CODE_BYTES", default_value_t = 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1..=64 * 1024 * 1024))]
    pub max_code_bytes: u64,

    /// Largest accepted `stdin`, in bytes (413 above it).
    #[arg(long, env = "CODE_RUNNER_MAX_STDIN_BYTES", default_value_t = 256 * 1024,
          value_parser = clap::value_parser!(u64).range(1..=64 * 1024 * 1024))]
    pub max_stdin_bytes: u64,

    /// Most jobs one client (API key, or client address without keys: an
    /// IPv4 address or an IPv6 /64) may have queued or running at once;
    /// beyond it `POST /run-code` answers 429 with `Retry-After`.
    #[arg(long, env = "CODE_RUNNER_MAX_UNFINISHED_PER_CLIENT", default_value_t = 1_000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub max_unfinished_per_client: u64,

    /// Longest a request may wait for its result (`POST /run-code?wait=true`,
    /// `GET /results/{id}?wait=N`), in seconds.
    #[arg(long, env = "CODE_RUNNER_MAX_WAIT_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub max_wait_secs: u64,

    /// Most `GET /results/{id}/events` streams one client (API key, or
    /// address without keys) may hold open at once (429 beyond).
    #[arg(long, env = "CODE_RUNNER_MAX_EVENT_STREAMS_PER_CLIENT", default_value_t = 16,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_event_streams_per_client: u64,

    /// API keys, comma-separated. When set, `/run-code`, `/results` and
    /// `/stats` need one (`Authorization: Bearer KEY` or `X-API-Key: KEY`).
    #[arg(long, env = "CODE_RUNNER_API_KEYS", value_parser = parse_api_keys, hide_env_values = true)]
    pub api_keys: Option<code_runner_api::ApiKeys>,

    /// Submissions (`POST /run-code`) allowed per minute per API key, or per
    /// client IP without keys. Unset: no rate limit.
    #[arg(long, env = "CODE_RUNNER_RATE_LIMIT_PER_MINUTE",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub rate_limit_per_minute: Option<u32>,

    /// Submissions a client may send in one burst (default: the per-minute rate).
    #[arg(long, env = "CODE_RUNNER_RATE_LIMIT_BURST",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub rate_limit_burst: Option<u32>,

    /// `GET /results/{id}?wait=N` and `DELETE /results/{id}` allowed per
    /// minute per client, in a bucket of their own (burst: the same number).
    /// Default: four times --rate-limit-per-minute when that is set, else
    /// no limit.
    #[arg(long, env = "CODE_RUNNER_RATE_LIMIT_WAIT_PER_MINUTE",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub rate_limit_wait_per_minute: Option<u32>,

    /// Origins allowed to call the API from a browser (CORS), comma-separated,
    /// or `*` for any. Unset: no CORS headers (same-origin only).
    #[arg(long, env = "CODE_RUNNER_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Seconds a client has to send a request's head (request line and
    /// headers), from connecting or from the end of the previous answer on a
    /// kept-alive connection: so also the keep-alive idle timeout. Then the
    /// connection is closed.
    #[arg(long, env = "CODE_RUNNER_HEADER_TIMEOUT_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout_secs: u64,

    /// Seconds a client has to send a whole `POST /run-code` body; then the
    /// answer is 408 and the connection is closed.
    #[arg(long, env = "CODE_RUNNER_BODY_TIMEOUT_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub body_timeout_secs: u64,

    /// Most connections the API serves at once (lowered to fit the open-file
    /// limit). Past it, 64 more are accepted to answer `/health`, and 503 to
    /// anything else; beyond those, new connections are closed at once.
    #[arg(long, env = "CODE_RUNNER_MAX_CONNECTIONS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,

    /// MiB of request bodies the API receives at once: each body being read
    /// holds its declared size (the body limit if undeclared) until parsed;
    /// past it, `POST /run-code` answers 503 with `Retry-After` at once.
    /// Raised to one largest body if lower.
    #[arg(long, env = "CODE_RUNNER_MAX_BODY_MEMORY_MB", default_value_t = 256,
          value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub max_body_memory_mb: u64,

    /// Judge mode: most tests one `POST /run-code` may give (422 above it).
    #[arg(long, env = "CODE_RUNNER_MAX_TESTS", default_value_t = 1_000,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_tests: u64,

    /// Judge mode: largest total of the tests' stdin, expected output and
    /// arguments in one request, in bytes (413 above it).
    #[arg(long, env = "CODE_RUNNER_MAX_TEST_BYTES", default_value_t = 16 * 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1..=256 * 1024 * 1024))]
    pub max_test_bytes: u64,

    /// Test sets: largest `POST /testsets` body, in bytes (413 above it).
    #[arg(long, env = "CODE_RUNNER_MAX_TESTSET_BYTES", default_value_t = 64 * 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1..=1024 * 1024 * 1024))]
    pub max_testset_bytes: u64,

    /// Test sets: seconds a stored set is kept after its last use (stored,
    /// read, or named by a run request).
    #[arg(long, env = "CODE_RUNNER_TESTSET_TTL_SECS", default_value_t = 24 * 60 * 60,
          value_parser = clap::value_parser!(u64).range(1..=365 * 24 * 60 * 60))]
    pub testset_ttl_secs: u64,

    /// `GET /metrics` needs an API key, as `/stats` does (needs --api-keys).
    #[arg(
        long,
        env = "CODE_RUNNER_METRICS_REQUIRE_KEY",
        conflicts_with = "metrics_bind"
    )]
    pub metrics_require_key: bool,

    /// Serve `GET /metrics` on this address instead (open, no key): a port
    /// only the metrics collector can reach. The API's port then answers 404.
    #[arg(long, env = "CODE_RUNNER_METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,

    /// Do not serve Judge0's API (`/submissions`, `/statuses`, ...; see
    /// docs/judge0.md), which is on by default.
    #[arg(long, env = "CODE_RUNNER_NO_JUDGE0_API")]
    pub no_judge0_api: bool,

    /// Let Judge0 `callback_url`s name loopback, private and link-local
    /// addresses (refused by default).
    #[arg(long, env = "CODE_RUNNER_JUDGE0_ALLOW_PRIVATE_CALLBACKS")]
    pub judge0_allow_private_callbacks: bool,
    /// Do not serve the Piston v2 API (`/api/v2/execute`, `/api/v2/runtimes`;
    /// see docs/piston.md), which is on by default.
    #[arg(long, env = "CODE_RUNNER_NO_PISTON_API")]
    pub no_piston_api: bool,
}

impl ApiArgs {
    /// The API's configuration, with the largest limits a request may ask
    /// for taken from the program limits the workers enforce.
    pub fn api_config(
        &self,
        limits: &ProgramLimitArgs,
    ) -> anyhow::Result<code_runner_api::ApiConfig> {
        let rate_limit = match (self.rate_limit_per_minute, self.rate_limit_burst) {
            (None, None) => None,
            (None, Some(_)) => anyhow::bail!(
                "--rate-limit-burst needs --rate-limit-per-minute (CODE_RUNNER_RATE_LIMIT_PER_MINUTE)"
            ),
            (Some(per_minute), burst) => Some(code_runner_api::RateLimit {
                per_minute,
                burst: burst.unwrap_or(per_minute),
            }),
        };
        let cors_origins: Vec<String> = self
            .cors_origins
            .iter()
            .map(|origin| origin.trim().to_owned())
            .filter(|origin| !origin.is_empty())
            .collect();
        if let Some(bad) = cors_origins
            .iter()
            .find(|o| *o != "*" && !(o.starts_with("http://") || o.starts_with("https://")))
        {
            anyhow::bail!("CORS origin {bad:?} must be `*` or start with http:// or https://");
        }
        let wait_rate_limit = self
            .rate_limit_wait_per_minute
            .or_else(|| rate_limit.map(|limit| limit.per_minute.saturating_mul(4)))
            .map(|per_minute| code_runner_api::RateLimit {
                per_minute,
                burst: per_minute,
            });
        Ok(code_runner_api::ApiConfig {
            max_code_bytes: self.max_code_bytes as usize,
            max_stdin_bytes: self.max_stdin_bytes as usize,
            max_time_limit_ms: limits.time_limit_ms,
            max_memory_limit_mb: limits.memory_limit_mb,
            max_wait_secs: self.max_wait_secs,
            max_event_streams_per_client: self.max_event_streams_per_client as usize,
            max_tests: self.max_tests as usize,
            max_test_bytes: self.max_test_bytes as usize,
            max_testset_bytes: usize::try_from(self.max_testset_bytes)?,
            testset_ttl: Duration::from_secs(self.testset_ttl_secs),
            access: code_runner_api::AccessConfig {
                api_keys: self.api_keys.clone().unwrap_or_default(),
                rate_limit,
                wait_rate_limit,
                max_unfinished_per_client: Some(self.max_unfinished_per_client),
                cors_origins,
            },
            judge0: code_runner_api::Judge0Config {
                enabled: !self.no_judge0_api,
                allow_private_callbacks: self.judge0_allow_private_callbacks,
                // Set from the common arguments (`--result-ttl-secs`).
                ..code_runner_api::Judge0Config::default()
            },
            piston_api: !self.no_piston_api,
        })
    }
}

impl ApiArgs {
    /// `--api-threads`, or one per two usable cores.
    pub fn runtime_threads(&self) -> usize {
        threads_or_one_per(self.api_threads, 2)
    }

    /// `serve`'s threads: `--api-threads`, or one per usable core.
    pub fn serve_threads(&self) -> usize {
        threads_or_one_per(self.api_threads, 1)
    }

    /// How the API is served: timeouts, connection cap, where `/metrics` is.
    pub fn serve_config(&self) -> anyhow::Result<code_runner_api::ServeConfig> {
        let metrics = if self.metrics_bind.is_some() {
            code_runner_api::MetricsAccess::OwnPort
        } else if self.metrics_require_key {
            if self.api_keys.as_ref().is_none_or(|keys| keys.is_empty()) {
                anyhow::bail!(
                    "--metrics-require-key (CODE_RUNNER_METRICS_REQUIRE_KEY) needs API keys (--api-keys)"
                );
            }
            code_runner_api::MetricsAccess::KeyRequired
        } else {
            code_runner_api::MetricsAccess::Open
        };
        Ok(code_runner_api::ServeConfig {
            header_timeout: Duration::from_secs(self.header_timeout_secs),
            body_timeout: Duration::from_secs(self.body_timeout_secs),
            max_connections: usize::try_from(self.max_connections)?,
            max_body_memory: usize::try_from(self.max_body_memory_mb * 1024 * 1024)?,
            metrics,
        })
    }
}

fn parse_cpus(text: &str) -> Result<f64, String> {
    let cpus: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of cores"))?;
    if (0.01..=1024.0).contains(&cpus) {
        Ok(cpus)
    } else {
        Err(format!("{cpus} cores is outside 0.01..=1024"))
    }
}

fn parse_api_keys(text: &str) -> Result<code_runner_api::ApiKeys, String> {
    code_runner_api::ApiKeys::parse(text)
}

/// A program's time and memory limits, as the `api` role needs them to
/// check what requests ask for: the same flags and variables as the
/// worker's, so the `api` and `worker` processes of a deployment share one
/// setting. (`serve` uses the worker's.)
#[derive(Debug, Clone, Args)]
pub struct ProgramLimitArgs {
    /// Wall-clock limit of a program, in milliseconds: the largest a request may ask for.
    #[arg(long, env = "CODE_RUNNER_TIME_LIMIT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub time_limit_ms: u64,

    /// Memory limit of a program, in MiB: the largest a request may ask for.
    #[arg(long, env = "CODE_RUNNER_MEMORY_LIMIT_MB", default_value_t = 256,
          value_parser = clap::value_parser!(u64).range(16..=65_536))]
    pub memory_limit_mb: u64,
}

/// Settings of a worker: how many jobs at once, and each job's limits.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// Jobs run at once.
    #[arg(long, env = "CODE_RUNNER_CONCURRENCY", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,

    /// Jobs that may start in the sandbox at once; each further one waits
    /// until one of them ends or has run for --cpu-hold-ms, so that a burst
    /// of short programs runs a few at a time at full speed instead of all
    /// sharing the cores (docs/deployment.md). Default: twice the cores the
    /// worker may use; --concurrency or more turns the gate off.
    #[arg(long, env = "CODE_RUNNER_CPU_PARALLELISM",
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub cpu_parallelism: Option<u32>,

    /// How long a job holds its place at the --cpu-parallelism gate at
    /// most, in milliseconds.
    #[arg(long, env = "CODE_RUNNER_CPU_HOLD_MS", default_value_t = 50,
          value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub cpu_hold_ms: u64,

    /// Threads of the worker's async runtime. The worker's own work is small
    /// (about 0.3 ms of CPU per job); on one thread it wakes and switches
    /// least, and a thread keeps up with far more jobs than 8 cores run.
    /// Default: one per 8 cores this process may use. (`serve` runs both
    /// roles on one runtime, of --api-threads.)
    #[arg(long, env = "CODE_RUNNER_WORKER_THREADS",
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub runtime_threads: Option<u32>,

    /// Wall-clock limit of a program, in milliseconds.
    #[arg(long, env = "CODE_RUNNER_TIME_LIMIT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub time_limit_ms: u64,

    /// Memory limit of a program's whole process tree, in MiB.
    #[arg(long, env = "CODE_RUNNER_MEMORY_LIMIT_MB", default_value_t = 256,
          value_parser = clap::value_parser!(u64).range(16..=65_536))]
    pub memory_limit_mb: u64,

    /// Processes and threads a program may have at once.
    #[arg(long, env = "CODE_RUNNER_MAX_PROCESSES", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=16_384))]
    pub max_processes: u32,

    /// Cap on stdout + stderr, in bytes; the rest is cut.
    #[arg(long, env = "CODE_RUNNER_OUTPUT_LIMIT_BYTES", default_value_t = 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1..=256 * 1024 * 1024))]
    pub output_limit_bytes: u64,

    /// Wall-clock limit of a compiler, in milliseconds.
    #[arg(long, env = "CODE_RUNNER_COMPILE_TIME_LIMIT_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub compile_time_limit_ms: u64,

    /// Memory limit of a compiler, in MiB.
    #[arg(long, env = "CODE_RUNNER_COMPILE_MEMORY_LIMIT_MB", default_value_t = 1024,
          value_parser = clap::value_parser!(u64).range(16..=65_536))]
    pub compile_memory_limit_mb: u64,

    /// Lowest host uid for sandbox slots; each slot leases its own uid from here up.
    #[arg(long, env = "CODE_RUNNER_FIRST_UID", default_value_t = 200_000,
          value_parser = clap::value_parser!(u32).range(1000..=4_000_000_000))]
    pub first_uid: u32,

    /// CPU quota of each sandbox slot, in cores (native sandbox: CFS quota
    /// on cgroup v1, `cpu.max` on v2), so that one job's threads cannot
    /// starve the other slots.
    #[arg(long, env = "CODE_RUNNER_CPUS_PER_SLOT", default_value_t = 1.0,
          value_parser = parse_cpus)]
    pub cpus_per_slot: f64,

    /// The bubblewrap binary.
    #[arg(long, env = "CODE_RUNNER_BWRAP", default_value = "/usr/bin/bwrap")]
    pub bwrap: PathBuf,

    /// The cgroup, a path inside each hierarchy (such as `/`), that the
    /// native sandbox makes its slot cgroups under; default: the worker's
    /// own cgroup. For a container given a delegated cgroup subtree bound
    /// over its read-only cgroup mount (docs/native-container.md).
    #[arg(long, env = "CODE_RUNNER_CGROUP_PATH")]
    pub cgroup_path: Option<PathBuf>,

    /// Where jobs run: `native` (bubblewrap and cgroups, from this process)
    /// or `docker` (a fresh container per step, through the Docker engine
    /// at DOCKER_HOST or /var/run/docker.sock).
    #[arg(long, env = "CODE_RUNNER_SANDBOX", value_enum, default_value_t = SandboxKind::Native)]
    pub sandbox: SandboxKind,

    /// OCI runtime of the job containers (docker sandbox): runc, kata, runsc,
    /// or any other runtime registered in the engine; checked at start-up.
    #[arg(long, env = "CODE_RUNNER_DOCKER_RUNTIME", default_value = "runc")]
    pub docker_runtime: String,

    /// The job image (docker sandbox; scripts/build-images.sh builds it).
    #[arg(
        long,
        env = "CODE_RUNNER_DOCKER_IMAGE",
        default_value = "code-runner-runner:latest"
    )]
    pub docker_image: String,

    /// Started, never-used containers kept ready per limit profile (docker
    /// sandbox), so a job does not wait for one to be made; 0 disables.
    #[arg(long, env = "CODE_RUNNER_DOCKER_POOL_SIZE", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(0..=256))]
    pub docker_pool_size: u32,

    /// CPU quota of each job container, in cores (docker sandbox).
    #[arg(long, env = "CODE_RUNNER_DOCKER_CPUS", default_value_t = 1.0, value_parser = parse_cpus)]
    pub docker_cpus: f64,

    /// This worker's name in its containers' labels (docker sandbox); it
    /// removes what an earlier run of the same name left. Default: the host
    /// name. Workers sharing an engine need distinct names.
    #[arg(long, env = "CODE_RUNNER_DOCKER_INSTANCE")]
    pub docker_instance: Option<String>,

    /// Parent cgroup of every job container (docker sandbox): auto (the
    /// worker's own container where the engine can nest there), worker,
    /// none, a cgroup path (cgroupfs driver) or a slice (systemd driver).
    #[arg(long, env = "CODE_RUNNER_DOCKER_CGROUP_PARENT", default_value = "auto")]
    pub docker_cgroup_parent: String,

    /// First uid of the job containers (docker sandbox); each live container
    /// has its own from here up. Workers sharing a host need their own ranges.
    #[arg(long, env = "CODE_RUNNER_DOCKER_FIRST_UID", default_value_t = 60_000,
          value_parser = clap::value_parser!(u32).range(1000..=4_000_000_000))]
    pub docker_first_uid: u32,

    /// How long a job may stay with a worker without a result before it is
    /// presumed lost (worker killed) and handed to another, in seconds.
    /// Default: the compile and run time limits plus 30 s (70 s by default).
    #[arg(long, env = "CODE_RUNNER_VISIBILITY_TIMEOUT_SECS",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub visibility_timeout_secs: Option<u64>,

    /// Deliveries a job gets; when its worker has died this many times it
    /// ends as FAILURE (internal_error) instead of being retried again.
    #[arg(long, env = "CODE_RUNNER_MAX_DELIVERIES", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_deliveries: u32,
}

impl WorkerArgs {
    /// `--runtime-threads`, or one per 8 usable cores.
    pub fn runtime_threads(&self) -> usize {
        threads_or_one_per(self.runtime_threads, 8)
    }

    /// When an unacknowledged job is handed to another worker.
    pub fn redelivery(&self) -> anyhow::Result<code_runner_queue::Redelivery> {
        let visibility_timeout = match self.visibility_timeout_secs {
            Some(secs) => Duration::from_secs(secs),
            None => code_runner_worker::default_visibility_timeout(
                &self.run_limits()?,
                &self.compile_limits()?,
            ),
        };
        Ok(code_runner_queue::Redelivery {
            visibility_timeout,
            max_deliveries: self.max_deliveries,
        })
    }

    /// The program limits, as the API of `serve` checks requests against them.
    pub fn program_limits(&self) -> ProgramLimitArgs {
        ProgramLimitArgs {
            time_limit_ms: self.time_limit_ms,
            memory_limit_mb: self.memory_limit_mb,
        }
    }

    pub fn run_limits(&self) -> anyhow::Result<Limits> {
        let limits = Limits {
            wall_time: Duration::from_millis(self.time_limit_ms),
            cpu_time: Duration::from_millis(self.time_limit_ms),
            memory_bytes: self.memory_limit_mb * 1024 * 1024,
            processes: self.max_processes,
            output_bytes: self.output_limit_bytes,
            ..Limits::RUN_DEFAULT
        };
        limits.validate().context("program limits")?;
        Ok(limits)
    }

    pub fn compile_limits(&self) -> anyhow::Result<Limits> {
        let limits = Limits {
            wall_time: Duration::from_millis(self.compile_time_limit_ms),
            cpu_time: Duration::from_millis(self.compile_time_limit_ms),
            memory_bytes: self.compile_memory_limit_mb * 1024 * 1024,
            ..Limits::COMPILE_DEFAULT
        };
        limits.validate().context("compiler limits")?;
        Ok(limits)
    }

    pub fn docker_config(&self) -> anyhow::Result<DockerConfig> {
        let defaults = DockerConfig::default();
        Ok(DockerConfig {
            image: self.docker_image.clone(),
            runtime: self.docker_runtime.clone(),
            instance: self.docker_instance.clone().unwrap_or(defaults.instance),
            pool_size: self.docker_pool_size as usize,
            pool_profiles: vec![self.run_limits()?, self.compile_limits()?],
            cpus: self.docker_cpus,
            slots: self.concurrency,
            cgroup_parent: self
                .docker_cgroup_parent
                .parse()
                .map_err(anyhow::Error::msg)
                .context("--docker-cgroup-parent")?,
            first_uid: self.docker_first_uid,
            ..defaults
        })
    }

    pub fn native_config(&self, slots: u32) -> NativeConfig {
        NativeConfig {
            bwrap: self.bwrap.clone(),
            // This binary is its own keeper (`code-runner keeper`).
            keeper: KeeperCommand {
                program: std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into()),
                args: vec!["keeper".into()],
            },
            first_uid: self.first_uid,
            slots,
            cpus_per_slot: self.cpus_per_slot,
            cgroup_path: self.cgroup_path.clone(),
            ..NativeConfig::default()
        }
    }
}

/// A runtime's threads: the setting, or one per `cores` cores this process
/// may use (at least one).
fn threads_or_one_per(setting: Option<u32>, cores: usize) -> usize {
    setting.map_or_else(
        || {
            std::thread::available_parallelism()
                .map_or(1, usize::from)
                .div_ceil(cores)
        },
        |threads| threads as usize,
    )
}
