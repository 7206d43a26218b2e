//! The native backend as the suite's test binaries get it (`native.rs`, and
//! `native_prefork.rs` with its own language table): one sandbox per
//! binary, made on first use. Needs root, `bwrap` and cgroups: a missing
//! part fails the binary's tests.

use std::sync::{Arc, OnceLock};

use code_runner_sandbox::{KeeperCommand, NativeConfig, NativeSandbox, Sandbox};

/// The binary's sandbox: the keeper built with the tests, and the worker's
/// cgroup setting, since in the unprivileged container
/// (`scripts/compose-native.sh`) the slot cgroups go under a delegated
/// subtree, not the container's read-only own cgroup.
pub fn sandbox() -> Arc<dyn Sandbox> {
    static SANDBOX: OnceLock<Arc<NativeSandbox>> = OnceLock::new();
    SANDBOX
        .get_or_init(|| {
            let config = NativeConfig {
                keeper: KeeperCommand {
                    program: env!("CARGO_BIN_EXE_code-runner-keeper").into(),
                    args: Vec::new(),
                },
                cgroup_path: std::env::var_os("CODE_RUNNER_CGROUP_PATH").map(Into::into),
                ..NativeConfig::default()
            };
            Arc::new(
                NativeSandbox::new(config)
                    .expect("native sandbox usable (run as root with bubblewrap installed)"),
            )
        })
        .clone()
}

/// Gives a suite function the binary's sandbox.
pub async fn run<F, Fut>(_name: &str, test: F)
where
    F: FnOnce(Arc<dyn Sandbox>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    test(sandbox()).await
}
