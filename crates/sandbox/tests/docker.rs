//! The sandbox suite against the docker backend, on the real engine: the same
//! suite functions as `tests/native.rs`, each on its own `DockerSandbox`
//! (its own instance label and pools), closed afterwards with a check that
//! none of its containers or volumes is left. Then what only this backend
//! has: the configured OCI runtime reaches the containers, an unknown runtime
//! or a missing image is refused at construction, leftovers are swept.
//!
//! Needs a Docker engine and the job image (`scripts/build-images.sh runner`;
//! `CODE_RUNNER_DOCKER_IMAGE` names another); `CODE_RUNNER_DOCKER_RUNTIME`
//! runs the suite on another runtime (default runc). A missing part fails.

#[macro_use]
mod suite;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, ListVolumesOptions, RemoveContainerOptions,
};
use bollard::Docker;
use code_runner_sandbox::docker::default_instance;
use code_runner_sandbox::{DockerConfig, DockerSandbox, Sandbox, SandboxError};

fn image() -> String {
    std::env::var("CODE_RUNNER_DOCKER_IMAGE").unwrap_or_else(|_| "code-runner-runner:latest".into())
}

fn runtime() -> String {
    std::env::var("CODE_RUNNER_DOCKER_RUNTIME").unwrap_or_else(|_| "runc".into())
}

/// An instance name of its own for each sandbox of each test process.
fn instance(name: &str) -> String {
    format!("test-{}-{name}", std::process::id())
}

fn config(name: &str) -> DockerConfig {
    DockerConfig {
        image: image(),
        runtime: runtime(),
        instance: instance(name),
        // Ten jobs at once: a pool that covers the burst, as a deployment's
        // would, so the test measures running in parallel, not creation.
        pool_size: if name == "concurrent_jobs_run_in_parallel" {
            10
        } else {
            2
        },
        slots: 16,
        ..DockerConfig::default()
    }
}

async fn engine() -> Docker {
    Docker::connect_with_local_defaults()
        .unwrap()
        .negotiate_version()
        .await
        .expect("a Docker engine")
}

/// Ids of every container (running or not) and volume with this instance label.
async fn leftovers(instance: &str) -> (Vec<String>, Vec<String>) {
    let docker = engine().await;
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("code-runner.instance={instance}")],
    )]);
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters.clone()),
            ..Default::default()
        }))
        .await
        .unwrap();
    let volumes = docker
        .list_volumes(Some(ListVolumesOptions {
            filters: Some(filters),
        }))
        .await
        .unwrap();
    (
        containers.into_iter().filter_map(|c| c.id).collect(),
        volumes
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.name)
            .collect(),
    )
}

async fn assert_nothing_left(instance: &str) {
    let (containers, volumes) = leftovers(instance).await;
    assert!(
        containers.is_empty() && volumes.is_empty(),
        "{instance} left containers {containers:?} and volumes {volumes:?}"
    );
}

/// Runs a test on a fresh sandbox with warm pools, then closes the sandbox
/// and checks that nothing of it is left, on failure too.
async fn with_config<F, Fut>(config: DockerConfig, test: F)
where
    F: FnOnce(Arc<DockerSandbox>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let sandbox = Arc::new(
        DockerSandbox::new(config)
            .await
            .expect("docker sandbox usable (a Docker engine and scripts/build-images.sh runner)"),
    );
    assert!(
        sandbox.wait_for_pools(Duration::from_secs(60)).await,
        "pools not filled"
    );
    let outcome = tokio::spawn(test(sandbox.clone())).await;
    sandbox.close().await;
    assert_nothing_left(sandbox.instance()).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// A suite function on its own sandbox.
async fn with_sandbox<F, Fut>(name: &str, test: F)
where
    F: FnOnce(Arc<dyn Sandbox>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_config(config(name), |sandbox| test(sandbox)).await;
}

macro_rules! suite_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            with_sandbox(stringify!($name), suite::$name).await;
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
                with_sandbox(stringify!($name), suite::attacks::$name).await;
            }
        )*};
    }

    every_attack_test!(attack_tests);
}

/// The configured runtime is the one the engine starts the job containers
/// with: a registered runtime other than the engine's default when there is
/// one (kata or runsc where installed), so the setting is seen to apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_runtime_reaches_the_container() {
    let docker = engine().await;
    let info = docker.info().await.unwrap();
    let default = info.default_runtime.clone().unwrap_or_default();
    let registered: Vec<String> = info.runtimes.unwrap_or_default().into_keys().collect();
    let chosen = ["kata", "runsc", "io.containerd.runc.v2", "runc"]
        .into_iter()
        .find(|r| registered.iter().any(|x| x == r) && (*r != default || *r == "runc"))
        .unwrap_or("runc")
        .to_string();
    let config = DockerConfig {
        runtime: chosen.clone(),
        pool_size: 1,
        ..config("runtime")
    };
    with_config(config, move |sandbox| async move {
        // A job that runs long enough to be inspected, next to the pools.
        let job = {
            let sandbox = sandbox.clone();
            tokio::spawn(async move {
                suite::run(
                    sandbox.as_ref(),
                    suite::program("python", "import time\ntime.sleep(1.5)\nprint('ran')"),
                )
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(700)).await;
        let (containers, _) = leftovers(sandbox.instance()).await;
        assert!(
            containers.len() >= 2,
            "pool and job containers: {containers:?}"
        );
        let docker = engine().await;
        let mut running = 0;
        for id in &containers {
            let Ok(inspect) = docker.inspect_container(id, None).await else {
                continue; // removed meanwhile
            };
            let host = inspect.host_config.unwrap();
            assert_eq!(host.runtime.as_deref(), Some(chosen.as_str()), "{id}");
            assert_eq!(host.network_mode.as_deref(), Some("none"));
            assert_eq!(host.readonly_rootfs, Some(true));
            assert!(host.binds.unwrap_or_default().is_empty(), "no bind mounts");
            for mount in inspect.mounts.unwrap_or_default() {
                let kind = mount.typ.as_ref().map(|t| t.to_string());
                assert_ne!(kind.as_deref(), Some("bind"), "{mount:?}");
            }
            running += usize::from(inspect.state.and_then(|s| s.running) == Some(true));
        }
        // Pooled containers are started ahead of their job (a refill may
        // still be starting), and the job's own container runs.
        assert!(running >= 2, "{running} of {containers:?} running");
        let execution = job.await.unwrap();
        assert_eq!(suite::stdout(&execution), "ran\n", "{execution:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_runtime_is_refused_at_construction() {
    let error = DockerSandbox::new(DockerConfig {
        runtime: "no-such-runtime".into(),
        ..config("unknown-runtime")
    })
    .await
    .expect_err("an unknown runtime must be refused");
    let message = error.to_string();
    assert!(matches!(error, SandboxError::Unavailable(_)), "{error:?}");
    assert!(message.contains("\"no-such-runtime\""), "{message}");
    assert!(
        message.contains("runc"),
        "lists the registered runtimes: {message}"
    );
    assert_nothing_left(&instance("unknown-runtime")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_image_is_refused_at_construction() {
    let error = DockerSandbox::new(DockerConfig {
        image: "code-runner-no-such-image:latest".into(),
        ..config("missing-image")
    })
    .await
    .expect_err("a missing image must be refused");
    assert!(
        error.to_string().contains("scripts/build-images.sh"),
        "{error}"
    );
}

/// Every way a job ends — success, compile error, time limit, output limit,
/// memory limit, a job abandoned by its caller — removes its containers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_container_is_left_behind() {
    let sandbox = Arc::new(DockerSandbox::new(config("leftovers")).await.unwrap());
    let quick = |language: &str, source: &str| {
        let mut p = suite::program(language, source);
        p.run_limits.wall_time = Duration::from_secs(2);
        p
    };
    let jobs = [
        quick("python", "print('ok')"),
        quick("c", "int main( {"),
        quick("cpp", "#include <cstdio>\nint main(){ puts(\"hi\"); }"),
        quick("python", "import time\ntime.sleep(60)"),
        quick("python", "while True: print('x' * 1000)"),
        quick("python", "x = bytearray(1 << 30)"),
    ];
    let runs = jobs.into_iter().map(|p| {
        let sandbox = sandbox.clone();
        async move { sandbox.execute(p).await.expect("sandbox works") }
    });
    suite::futures_join_all(runs).await;
    // Abandoned mid-run: the caller's future is dropped.
    let abandoned = tokio::time::timeout(
        Duration::from_millis(800),
        sandbox.execute(quick("python", "import time\ntime.sleep(60)")),
    )
    .await;
    assert!(abandoned.is_err(), "the job should still have been running");
    sandbox.close().await;
    assert_nothing_left(sandbox.instance()).await;
}

/// A worker that died leaves labelled containers; the next start-up of the
/// same instance removes them, and those of an instance whose own container
/// is gone, but never another live worker's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftovers_are_swept_at_start_up() {
    let docker = engine().await;
    let mine = instance("sweep");
    let gone_worker = "0123456789ab"; // a container id no container has
    let live_worker = instance("sweep-other");
    let mut made = Vec::new();
    for owner in [
        mine.as_str(),
        mine.as_str(),
        gone_worker,
        live_worker.as_str(),
    ] {
        let body = bollard::models::ContainerCreateBody {
            image: Some(image()),
            labels: Some(HashMap::from([
                ("code-runner.sandbox".to_string(), "docker".to_string()),
                ("code-runner.instance".to_string(), owner.to_string()),
            ])),
            ..Default::default()
        };
        let created = docker
            .create_container(None::<CreateContainerOptions>, body)
            .await
            .unwrap();
        made.push(created.id);
    }
    let sandbox = DockerSandbox::new(DockerConfig {
        pool_size: 0,
        ..config("sweep")
    })
    .await
    .unwrap();
    let exists = |id: String| {
        let docker = docker.clone();
        async move { docker.inspect_container(&id, None).await.is_ok() }
    };
    assert!(!exists(made[0].clone()).await, "own leftover swept");
    assert!(!exists(made[1].clone()).await, "own leftover swept");
    assert!(
        !exists(made[2].clone()).await,
        "orphan of a gone worker swept"
    );
    assert!(
        exists(made[3].clone()).await,
        "a live worker's container kept"
    );
    docker
        .remove_container(
            &made[3],
            Some(RemoveContainerOptions {
                force: true,
                v: true,
                link: false,
            }),
        )
        .await
        .unwrap();
    sandbox.close().await;
    assert_nothing_left(&mine).await;
    assert!(!default_instance().is_empty());
}
