//! The sandbox suite against the native backend (bubblewrap + keeper + cgroups).
//! Needs root, `bwrap` and cgroups: a missing part fails the suite.

#[macro_use]
mod suite;

use std::sync::{Arc, OnceLock};

use code_runner_sandbox::{KeeperCommand, NativeConfig, NativeSandbox, Sandbox};

fn sandbox() -> Arc<dyn Sandbox> {
    static SANDBOX: OnceLock<Arc<NativeSandbox>> = OnceLock::new();
    SANDBOX
        .get_or_init(|| {
            let config = NativeConfig {
                keeper: KeeperCommand {
                    program: env!("CARGO_BIN_EXE_code-runner-keeper").into(),
                    args: Vec::new(),
                },
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

every_suite_test!(suite_tests);

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

    every_attack_test!(attack_tests);
}
