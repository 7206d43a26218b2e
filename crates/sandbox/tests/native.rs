//! The sandbox suite against the native backend (bubblewrap + cgroups).
//! Needs root, `bwrap` and cgroups: a missing part fails the suite.

mod suite;

use std::sync::{Arc, OnceLock};

use code_runner_sandbox::{NativeConfig, NativeSandbox, Sandbox};

fn sandbox() -> Arc<dyn Sandbox> {
    static SANDBOX: OnceLock<Arc<NativeSandbox>> = OnceLock::new();
    SANDBOX
        .get_or_init(|| {
            let config = NativeConfig {
                scratch_root: std::env::temp_dir().join("code-runner-tests"),
                ..NativeConfig::default()
            };
            Arc::new(
                NativeSandbox::new(config)
                    .expect("native sandbox usable (run as root with bubblewrap installed)"),
            )
        })
        .clone()
}

macro_rules! suite_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            suite::$name(sandbox()).await;
        }
    )*};
}

suite_tests!(
    hello_in_every_language,
    failing_program_in_every_language,
    exact_bytes_and_unicode,
    compile_error_is_reported,
    wall_time_limit_kills_the_tree,
    cpu_time_limit,
    memory_limit_kills,
    java_and_node_work_under_the_memory_limit,
    output_is_capped,
    process_limit_holds,
    stdin_reaches_the_program,
    isolation_basics,
    concurrent_jobs_run_in_parallel,
);
