//! `code-runner doctor`: prints what the native sandbox needs on this host,
//! container or pod, each check ok or missing with its fix, and exits
//! non-zero when something required is missing. The checks themselves are
//! `code_runner_sandbox::native::doctor`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use code_runner_sandbox::native::doctor::{self, DoctorConfig};
use code_runner_sandbox::{LanguageTable, NativeConfig};

/// What to check for: the worker's own settings, from the same flags and
/// environment variables.
#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// The bubblewrap binary the worker would run.
    #[arg(long, env = "CODE_RUNNER_BWRAP", default_value = "/usr/bin/bwrap")]
    pub bwrap: PathBuf,

    /// Lowest host uid of the sandbox slots (the probes run as it).
    #[arg(long, env = "CODE_RUNNER_FIRST_UID", default_value_t = 200_000,
          value_parser = clap::value_parser!(u32).range(1000..=4_000_000_000))]
    pub first_uid: u32,

    /// A language table (TOML) replacing the built-in one: its toolchains
    /// are what is looked for.
    #[arg(long, env = "CODE_RUNNER_LANGUAGES")]
    pub languages: Option<PathBuf>,

    /// The worker's --cgroup-path: the cgroup the slots are made under
    /// (default: this process's own).
    #[arg(long, env = "CODE_RUNNER_CGROUP_PATH")]
    pub cgroup_path: Option<PathBuf>,
}

/// Runs the checks and prints them; the exit status is 0 when nothing
/// required is missing, 1 otherwise.
pub fn run(args: DoctorArgs) -> anyhow::Result<u8> {
    let languages = match &args.languages {
        Some(path) => LanguageTable::from_file(path)
            .with_context(|| format!("loading language table {}", path.display()))?,
        None => LanguageTable::builtin(),
    };
    let config = DoctorConfig {
        bwrap: args.bwrap,
        first_uid: args.first_uid,
        uid_lock_dir: NativeConfig::default().uid_lock_dir,
        probe_program: std::env::current_exe().context("finding this executable")?,
        cgroup_path: args.cgroup_path,
    };
    let findings = doctor::check(&config, &languages);
    print!("{}", doctor::render(&findings));
    Ok(if doctor::any_missing(&findings) { 1 } else { 0 })
}
