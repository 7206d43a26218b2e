//! The service's configuration: one typed struct per role, read from command
//! line flags with an environment variable behind each (flag > env > default),
//! and checked once at start-up.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use code_runner_sandbox::{LanguageTable, Limits, NativeConfig};

/// Settings every role shares.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Redis URL (e.g. redis://127.0.0.1:6379/). Without it, `serve` uses an
    /// in-process queue; `api` and `worker` require it.
    #[arg(long, env = "CODE_RUNNER_REDIS_URL")]
    pub redis_url: Option<String>,

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
}

impl CommonArgs {
    pub fn result_ttl(&self) -> Duration {
        Duration::from_secs(self.result_ttl_secs)
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

    /// Largest accepted `code`, in bytes (413 above it).
    #[arg(long, env = "CODE_RUNNER_MAX_CODE_BYTES", default_value_t = 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1..=64 * 1024 * 1024))]
    pub max_code_bytes: u64,
}

/// Settings of a worker: how many jobs at once, and each job's limits.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// Jobs run at once.
    #[arg(long, env = "CODE_RUNNER_CONCURRENCY", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,

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

    /// Where per-job scratch tmpfs mounts are made.
    #[arg(
        long,
        env = "CODE_RUNNER_SCRATCH_ROOT",
        default_value = "/run/code-runner"
    )]
    pub scratch_root: PathBuf,

    /// Lowest host uid for sandbox slots; each slot leases its own uid from here up.
    #[arg(long, env = "CODE_RUNNER_FIRST_UID", default_value_t = 200_000,
          value_parser = clap::value_parser!(u32).range(1000..=4_000_000_000))]
    pub first_uid: u32,

    /// The bubblewrap binary.
    #[arg(long, env = "CODE_RUNNER_BWRAP", default_value = "/usr/bin/bwrap")]
    pub bwrap: PathBuf,
}

impl WorkerArgs {
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

    pub fn native_config(&self, slots: u32) -> NativeConfig {
        NativeConfig {
            bwrap: self.bwrap.clone(),
            scratch_root: self.scratch_root.clone(),
            first_uid: self.first_uid,
            slots,
            ..NativeConfig::default()
        }
    }
}
