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
    args_and_extra_files_reach_the_program,
    isolation_basics,
    concurrent_jobs_run_in_parallel,
);

mod attacks {
    use super::*;

    macro_rules! attack_tests {
        ($($name:ident),* $(,)?) => {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                suite::attacks::$name(sandbox()).await;
            }
        )*};
    }

    attack_tests!(
        host_secrets_are_out_of_reach,
        dangerous_system_calls_are_refused,
        writes_outside_scratch_fail,
        network_is_unreachable,
        planted_links_and_special_files_are_never_followed,
        fork_bombs_are_contained,
        memory_bomb_over_many_processes_is_one_budget,
        disk_and_inode_fills_stop_at_their_limits,
        output_floods_and_silent_programs_end_with_a_reason,
        nothing_outlives_a_job_or_leaks_to_the_next,
        concurrent_jobs_see_nothing_of_each_other,
        compiler_cannot_read_host_files,
    );
}
