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

/// The language table the suite's programs use: the built-in one.
fn language_table() -> code_runner_sandbox::LanguageTable {
    code_runner_sandbox::LanguageTable::builtin()
}

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
    // The test's own failure first: a job that failed (an engine error, a
    // timeout) may be why something is left, and is the thing to read.
    if let Err(e) = outcome {
        let (containers, volumes) = leftovers(sandbox.instance()).await;
        eprintln!("left after the failed test: containers {containers:?}, volumes {volumes:?}");
        std::panic::resume_unwind(e.into_panic());
    }
    assert_nothing_left(sandbox.instance()).await;
}

/// A suite function on its own sandbox.
async fn with_sandbox<F, Fut>(name: &str, test: F)
where
    F: FnOnce(Arc<dyn Sandbox>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_config(config(name), |sandbox| test(sandbox)).await;
}

every_backend_test!(with_sandbox);

/// The runtime this test runs a job under: `CODE_RUNNER_DOCKER_OTHER_RUNTIME`,
/// by default gVisor's `runsc` (`scripts/register-runsc.sh` installs and
/// registers it).
fn other_runtime() -> String {
    std::env::var("CODE_RUNNER_DOCKER_OTHER_RUNTIME").unwrap_or_else(|_| "runsc".into())
}

/// A configured runtime other than the engine's default reaches the job
/// containers, and a job runs under it. The runtime must be registered with
/// the engine: the test fails (never falls back to runc) when it is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_runtime_reaches_the_container() {
    let docker = engine().await;
    let info = docker.info().await.unwrap();
    let default = info.default_runtime.clone().unwrap_or_default();
    let mut registered: Vec<String> = info.runtimes.unwrap_or_default().into_keys().collect();
    registered.sort();
    let chosen = other_runtime();
    assert!(
        registered.contains(&chosen),
        "runtime {chosen:?} is not registered with the engine (it has {registered:?}): \
         run scripts/register-runsc.sh, or name a registered one in CODE_RUNNER_DOCKER_OTHER_RUNTIME"
    );
    assert_ne!(
        chosen, default,
        "{chosen:?} is the engine's default runtime: the test would not show the setting applies"
    );
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

/// Jobs that run at the same time run as different uids, none of them root:
/// the kernel's per-uid quotas (processes, inotify instances, descriptors in
/// flight, pipe buffers) are each job's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_jobs_run_as_different_uids() {
    with_config(config("uids"), |sandbox| async move {
        let source = "import os, time\ntime.sleep(1.5)\nprint(os.getuid(), os.getgid())";
        let runs = (0..4).map(|_| {
            let sandbox = sandbox.clone();
            async move { suite::run(sandbox.as_ref(), suite::program("python", source)).await }
        });
        let mut uids = Vec::new();
        for execution in suite::futures_join_all(runs).await {
            let out = suite::stdout(&execution);
            let ids: Vec<u32> = out.split_whitespace().map(|n| n.parse().unwrap()).collect();
            assert_eq!(ids.len(), 2, "{execution:?}");
            assert!(ids[0] >= 60_000 && ids[1] == ids[0], "uid:gid {out}");
            uids.push(ids[0]);
        }
        let mut distinct = uids.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(
            distinct.len(),
            uids.len(),
            "a uid shared by concurrent jobs: {uids:?}"
        );
    })
    .await;
}

/// A per-uid kernel quota, held to the full by one job, leaves a concurrent
/// job untouched: `RLIMIT_NPROC` (the processes of the uid on the whole host)
/// and `fs.inotify.max_user_instances`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_jobs_per_uid_quotas_do_not_starve_another() {
    // A uid range no other test's sandbox uses, so that only these two jobs
    // (and this sandbox's pooled containers, one process each) count.
    let config = DockerConfig {
        first_uid: 64_000,
        ..config("quotas")
    };
    with_config(config, |sandbox| async move {
        // 30 processes and every inotify instance the uid may have, for 6 s.
        let holder = r#"
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
limit = int(open('/proc/sys/fs/inotify/max_user_instances').read())
kids = []
for _ in range(30):
    pid = os.fork()
    if pid == 0:
        time.sleep(6)
        os._exit(0)
    kids.append(pid)
held = 0
while held < limit + 10 and libc.inotify_init1(0) >= 0:
    held += 1
print('processes', len(kids) + 1, 'inotify', held >= limit - 10)
sys.stdout.flush()
for pid in kids:
    os.waitpid(pid, 0)
"#;
        // From 1.5 s on, for 2.5 s: may it fork under an RLIMIT_NPROC of 16
        // (itself, its init and a child: 3), and make an inotify instance?
        let prober = r#"
import ctypes, errno, os, resource, time
libc = ctypes.CDLL(None, use_errno=True)
time.sleep(1.5)
resource.setrlimit(resource.RLIMIT_NPROC, (16, 16))
failures = []
end = time.monotonic() + 2.5
while time.monotonic() < end:
    try:
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
    except OSError as e:
        failures.append('fork: ' + errno.errorcode[e.errno])
    fd = libc.inotify_init1(0)
    if fd < 0:
        failures.append('inotify: ' + errno.errorcode[ctypes.get_errno()])
    else:
        os.close(fd)
    time.sleep(0.1)
print(sorted(set(failures)) or 'ok')
"#;
        let holding = {
            let sandbox = sandbox.clone();
            tokio::spawn(async move {
                suite::run(sandbox.as_ref(), suite::program("python", holder)).await
            })
        };
        let probing = suite::run(sandbox.as_ref(), suite::program("python", prober)).await;
        let held = holding.await.unwrap();
        assert_eq!(
            suite::stdout(&held),
            "processes 31 inotify True\n",
            "the holder held its quotas: {held:?}"
        );
        assert_eq!(suite::stdout(&probing), "ok\n", "{probing:?}");
    })
    .await;
}

/// A parent cgroup made by the test, with a memory limit of its own; removed
/// when dropped from every cgroup hierarchy, with whatever the engine made
/// in it (under cgroup v1 the engine makes it in every hierarchy, the
/// hybrid's unified one included).
struct ParentCgroup {
    name: String,
    /// Every cgroup file system (v1 hierarchies and the v2 one).
    roots: Vec<std::path::PathBuf>,
    memory_root: std::path::PathBuf,
}

impl ParentCgroup {
    fn new(name: &str, v1: bool, memory_bytes: u64) -> Self {
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
        let mut roots = Vec::new();
        let mut memory_root = None;
        for line in mounts.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            let (path, kind, options) = (fields[1], fields[2], fields[3]);
            if kind != "cgroup" && kind != "cgroup2" {
                continue;
            }
            roots.push(std::path::PathBuf::from(path));
            let memory = if v1 {
                kind == "cgroup" && options.split(',').any(|o| o == "memory")
            } else {
                kind == "cgroup2"
            };
            if memory {
                memory_root = Some(std::path::PathBuf::from(path));
            }
        }
        let memory_root = memory_root.expect("a memory cgroup hierarchy");
        let parent = Self {
            name: name.into(),
            roots,
            memory_root,
        };
        let dir = parent.memory_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let write = |file: &str, value: &str| {
            std::fs::write(dir.join(file), value).unwrap_or_else(|e| panic!("{file}: {e}"))
        };
        if v1 {
            write("memory.limit_in_bytes", &memory_bytes.to_string());
            if dir.join("memory.memsw.limit_in_bytes").exists() {
                write("memory.memsw.limit_in_bytes", &memory_bytes.to_string());
            }
        } else {
            write("memory.max", &memory_bytes.to_string());
            write("memory.swap.max", "0");
        }
        parent
    }

    fn memory_dir(&self) -> std::path::PathBuf {
        self.memory_root.join(&self.name)
    }
}

impl Drop for ParentCgroup {
    fn drop(&mut self) {
        for root in &self.roots {
            let dir = root.join(&self.name);
            for _ in 0..50 {
                // Children first (what the engine left, if anything).
                if let Ok(entries) = std::fs::read_dir(&dir) {
                    for entry in entries.flatten() {
                        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                            let _ = std::fs::remove_dir(entry.path());
                        }
                    }
                }
                if !dir.exists() || std::fs::remove_dir(&dir).is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            assert!(!dir.exists() || std::thread::panicking(), "{dir:?} left");
        }
    }
}

/// With a parent cgroup configured, every job container's cgroup is made
/// under it, and the parent's limits bound the jobs: a job within its own
/// memory limit (256 MiB) but beyond the parent's (96 MiB) ends at the
/// memory limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_containers_live_under_the_cgroup_parent() {
    let docker = engine().await;
    let info = docker.info().await.unwrap();
    let driver = info
        .cgroup_driver
        .map(|d| d.to_string())
        .unwrap_or_default();
    assert_eq!(
        driver, "cgroupfs",
        "this test makes its parent cgroup with the cgroupfs driver's layout; \
         the systemd driver takes a slice (docs/docker.md)"
    );
    let v1 = info.cgroup_version.map(|v| v.to_string()).as_deref() == Some("1");
    let name = format!("code-runner-test-{}", std::process::id());
    let parent = ParentCgroup::new(&name, v1, 96 << 20);
    let config = DockerConfig {
        pool_size: 1,
        cgroup_parent: format!("/{name}").parse().unwrap(),
        ..config("cgroup-parent")
    };
    let memory_dir = parent.memory_dir();
    with_config(config, move |sandbox| async move {
        let (containers, _) = leftovers(sandbox.instance()).await;
        assert!(!containers.is_empty(), "pooled containers");
        let docker = engine().await;
        for id in &containers {
            let inspect = docker.inspect_container(id, None).await.unwrap();
            let host = inspect.host_config.unwrap();
            assert_eq!(host.cgroup_parent, Some(format!("/{name}")), "{id}");
            let pid = inspect.state.unwrap().pid.unwrap();
            let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
            let memory = cgroups
                .lines()
                .find(|l| {
                    if v1 {
                        l.split(':')
                            .nth(1)
                            .unwrap()
                            .split(',')
                            .any(|c| c == "memory")
                    } else {
                        l.starts_with("0::")
                    }
                })
                .unwrap();
            assert!(
                memory.ends_with(&format!(":/{name}/{id}")),
                "the container's cgroup {memory:?} is not under /{name}"
            );
            assert!(memory_dir.join(id).is_dir(), "{id} under {memory_dir:?}");
        }
        // 160 MiB, written: within the job's limit, beyond the parent's.
        let execution = suite::run(
            sandbox.as_ref(),
            suite::program("python", "x = b'x' * (160 << 20)\nprint('allocated')"),
        )
        .await;
        let report = suite::ran(&execution);
        assert!(
            !suite::stdout(&execution).contains("allocated"),
            "{execution:?}"
        );
        assert_eq!(
            report.termination,
            code_runner_sandbox::Termination::MemoryLimit,
            "{execution:?}"
        );
    })
    .await;
    drop(parent);
}

/// `worker` asks for the worker's own container as the parent: refused at
/// construction outside a container (as in these tests); a parent of the
/// wrong form for the engine's driver is refused too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cgroup_parents_that_cannot_hold_are_refused_at_construction() {
    let systemd = engine()
        .await
        .info()
        .await
        .unwrap()
        .cgroup_driver
        .map(|d| d.to_string())
        == Some("systemd".into());
    let wrong_form = if systemd {
        "/code-runner-jobs"
    } else {
        "code-runner-jobs.slice"
    };
    for setting in ["worker", wrong_form] {
        let error = DockerSandbox::new(DockerConfig {
            cgroup_parent: setting.parse().unwrap(),
            ..config("refused-parent")
        })
        .await
        .expect_err(setting);
        assert!(matches!(error, SandboxError::Unavailable(_)), "{error:?}");
        assert!(error.to_string().contains("cgroup parent"), "{error}");
    }
    assert_nothing_left(&instance("refused-parent")).await;
}

/// At the wall clock the worker asks the init to stop the program, and the
/// init still reports what the kernel counted: the CPU time and the peak
/// memory of a step that the clock ended (the memory verdict too, from the
/// cgroup's OOM count, for a program stuck after running out of memory).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_ended_by_the_wall_clock_still_reports_what_it_used() {
    with_sandbox("wall-clock-report", |sandbox| async move {
        // The clock is short: python's start must not be what it measures
        // (its files read from a cold disk once took the whole 2 s).
        let warm = suite::run(sandbox.as_ref(), suite::program("python", "print(1)")).await;
        assert_eq!(suite::stdout(&warm), "1\n", "{warm:?}");
        let mut p = suite::program("python", "x = bytearray(32 << 20)\nwhile True: x[0] = 1");
        p.run_limits.wall_time = Duration::from_secs(2);
        let execution = suite::run(sandbox.as_ref(), p).await;
        let report = suite::ran(&execution);
        assert_eq!(
            report.termination,
            code_runner_sandbox::Termination::TimeLimit,
            "{execution:?}"
        );
        assert!(
            report.cpu_time >= Duration::from_millis(200),
            "the CPU time of a step the clock ended: {execution:?}"
        );
        assert!(
            report
                .memory_peak_bytes
                .is_some_and(|peak| peak >= 32 << 20),
            "the peak memory of a step the clock ended: {execution:?}"
        );
    })
    .await;
}

/// The signal by which the worker asks the init to stop counts only from
/// outside the container: the program (the same user) sending it to PID 1
/// changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_program_cannot_stop_its_init() {
    with_sandbox("init-signal", |sandbox| async move {
        let source = "import os, signal, time\n\
                      for s in (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):\n    os.kill(1, s)\n\
                      time.sleep(0.5)\nprint('alive')";
        let execution = suite::run(sandbox.as_ref(), suite::program("python", source)).await;
        assert_eq!(suite::stdout(&execution), "alive\n", "{execution:?}");
        assert!(suite::ran(&execution).succeeded(), "{execution:?}");
    })
    .await;
}

/// A language whose compile step writes 16 random hex digits to `id`, and
/// whose run command is `sh main.sh`: a program compiled twice would see two
/// different ids.
fn random_id_language(name: &str) -> Arc<code_runner_sandbox::Language> {
    Arc::new(code_runner_sandbox::Language {
        name: name.into(),
        version: "test".into(),
        aliases: Vec::new(),
        extensions: Vec::new(),
        source_file: "main.sh".into(),
        compile: Some(vec![
            "/bin/sh".into(),
            "-c".into(),
            "head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \\n' > id".into(),
        ]),
        run: vec!["/bin/sh".into(), "main.sh".into()],
        mounts: Vec::new(),
        main_from: Default::default(),
        prefork: false,
    })
}

/// Which judge implementation a job goes through.
#[derive(Clone, Copy, Debug)]
enum JudgeVia {
    /// The backend's own `execute_tests`.
    Backend,
    /// The generic fallback, `execute_per_test` (compiles per test).
    PerTest,
}

async fn judge_via(
    via: JudgeVia,
    sandbox: &DockerSandbox,
    program: code_runner_sandbox::Program,
    checker: Option<code_runner_sandbox::CheckerProgram>,
    tests: Vec<code_runner_sandbox::TestRun>,
) -> Result<code_runner_sandbox::Judged, SandboxError> {
    let mut observer = |_: usize, _: &code_runner_sandbox::TestOutcome| true;
    match via {
        JudgeVia::Backend => {
            sandbox
                .execute_tests(program, checker, tests, &mut observer)
                .await
        }
        JudgeVia::PerTest => {
            code_runner_sandbox::judge::execute_per_test(
                sandbox,
                program,
                checker,
                tests,
                &mut observer,
            )
            .await
        }
    }
}

/// The body of `judge_compiles_each_program_once`, for either
/// implementation (the fallback must fail it).
async fn compiles_each_program_once(via: JudgeVia, sandbox: Arc<DockerSandbox>) {
    use code_runner_sandbox::{CheckerProgram, Limits, Program, TestRun};
    // The submission prints its compile step's id on stderr and echoes its
    // input; the checker prints its own compile step's id, and accepts when
    // `output` and `input` both equal `answer`, byte for byte, and the test
    // files are read-only.
    let program = Program::new(random_id_language("solution"), "cat id >&2\ncat\n");
    let checker = CheckerProgram {
        language: random_id_language("checker"),
        source: format!(
            "cat id >&2\n{}cmp -s \"$2\" \"$3\" && cmp -s \"$1\" \"$3\"\n",
            // The fallback's files are writable.
            match via {
                JudgeVia::Backend => "[ -w input ] && exit 3\n",
                JudgeVia::PerTest => "",
            }
        ),
        files: Vec::new(),
        compile_limits: Limits::COMPILE_DEFAULT,
        run_limits: Limits::RUN_DEFAULT,
    };
    let tests: Vec<TestRun> = (0u8..6)
        .map(|n| {
            // Not UTF-8 (bytes a text-only path would refuse or mangle),
            // but for the fallback, which refuses them.
            let bytes = match via {
                JudgeVia::Backend => vec![0xff, 0xfe, 0, n, 0x80, b'\n', 0xc3],
                JudgeVia::PerTest => vec![b'a', n + b'0', b'\n'],
            };
            TestRun {
                stdin: bytes.clone(),
                args: Vec::new(),
                limits: Limits::RUN_DEFAULT,
                answer: bytes,
            }
        })
        .collect();
    let judged = judge_via(via, &sandbox, program, Some(checker), tests)
        .await
        .unwrap_or_else(|e| panic!("{via:?}: the job failed: {e}"));
    let compile = judged.compile.as_ref().expect("a compile step");
    assert!(compile.succeeded(), "{compile:?}");
    let checker_compile = judged.checker_compile.as_ref().expect("a checker compile");
    assert!(checker_compile.succeeded(), "{checker_compile:?}");
    assert_eq!(judged.tests.len(), 6);
    let ids = |reports: Vec<&code_runner_sandbox::StepReport>| -> Vec<String> {
        reports
            .into_iter()
            .map(|r| String::from_utf8_lossy(&r.stderr).into_owned())
            .collect()
    };
    let runs = ids(judged.tests.iter().map(|t| &t.run).collect());
    let checks = ids(judged
        .tests
        .iter()
        .map(|t| t.checker.as_ref().expect("the checker ran"))
        .collect());
    for (n, test) in judged.tests.iter().enumerate() {
        assert!(test.run.succeeded(), "{via:?} test {n}: {test:?}");
        let check = test.checker.as_ref().unwrap();
        assert_eq!(check.exit_code, Some(0), "{via:?} test {n}: {check:?}");
    }
    assert_eq!(runs[0].len(), 16, "{runs:?}");
    assert_eq!(checks[0].len(), 16, "{checks:?}");
    assert_ne!(runs[0], checks[0], "the checker has its own compile");
    assert!(
        runs.iter().all(|id| *id == runs[0]),
        "{via:?}: the tests ran more than one compile's output: {runs:?}"
    );
    assert!(
        checks.iter().all(|id| *id == checks[0]),
        "{via:?}: the checker ran more than one compile's output: {checks:?}"
    );
}

/// A judged job compiles the submission once and the checker once: every
/// test's container runs the same compile step's files, and so does every
/// checker's; test files that are not UTF-8 reach the checker intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn judge_compiles_each_program_once() {
    with_config(config("judge_compiles_each_program_once"), |sandbox| {
        compiles_each_program_once(JudgeVia::Backend, sandbox)
    })
    .await;
}

/// The same job (with UTF-8 test files) through the generic fallback
/// (`execute_per_test`, what this backend ran before it had its own) fails
/// the test above on the ids: the proof that the test tells one compile
/// from many.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "PerTest: the tests ran more than one compile's output")]
async fn judge_per_test_fallback_compiles_again() {
    with_config(config("judge_per_test_fallback"), |sandbox| {
        compiles_each_program_once(JudgeVia::PerTest, sandbox)
    })
    .await;
}

/// The wall time of one judged job of 100 tests (a C submission that
/// doubles a number; then the same with a C++ checker), through the
/// backend's own `execute_tests` and (without the checker) through the
/// per-test fallback. A
/// measurement, not a check: `cargo nextest run -p code-runner-sandbox
/// --test docker judge_wall_time_of_100_tests --run-ignored only
/// --no-capture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: prints the wall times"]
async fn judge_wall_time_of_100_tests() {
    with_config(config("judge_wall_time"), |sandbox| async move {
        let source = "#include <stdio.h>\nint main(void){long n; if(scanf(\"%ld\",&n)!=1) return 2; printf(\"%ld\\n\",2*n); return 0;}\n";
        let checker_source = "#include <fstream>\nint main(int, char **argv){std::ifstream o(argv[2]), a(argv[3]); long x, y; return (o >> x) && (a >> y) && x == y ? 0 : 1;}\n";
        let tests: Vec<code_runner_sandbox::TestRun> = (0..100)
            .map(|n| suite::judge::test(&format!("{n}\n"), &format!("{}\n", 2 * n)))
            .collect();
        for with_checker in [false, true] {
            for via in [JudgeVia::Backend, JudgeVia::PerTest] {
                if with_checker && matches!(via, JudgeVia::PerTest) {
                    // Four containers and two compiles per test: over the
                    // test runner's time limit.
                    continue;
                }
                let checker =
                    with_checker.then(|| suite::judge::checker("cpp", checker_source));
                let started = std::time::Instant::now();
                let judged = judge_via(
                    via,
                    &sandbox,
                    suite::program("c", source),
                    checker,
                    tests.clone(),
                )
                .await
                .expect("the job runs");
                let elapsed = started.elapsed();
                assert_eq!(judged.tests.len(), 100);
                assert!(judged.tests.iter().all(|t| t.run.succeeded()
                    && t.checker.as_ref().is_none_or(|c| c.exit_code == Some(0))));
                println!(
                    "100 tests, {}: {via:?}: {:.1} s",
                    if with_checker { "C++ checker" } else { "no checker" },
                    elapsed.as_secs_f64()
                );
            }
        }
    })
    .await;
}
