//! The docker backend: every step of a job (compile, run) runs in its own
//! fresh container, made through the Docker Engine API (bollard) with a
//! configurable OCI runtime (`runc`, `kata`, `runsc`), and removed afterwards.
//!
//! Per step: a container from the [`pool`] (created and started ahead of
//! time, never used) or, when the pool is empty, a new one; the worker
//! attaches to it and writes the job on its standard input to
//! `code-runner-init`, its PID 1 (see [`launch`] and `docker/init.c`): the
//! sources, which the init writes into `/work` itself (no host bind mount,
//! no archive extraction by the engine), the command, rlimits and seccomp
//! filters. The init starts the program, kills whatever the program left when
//! it exits, and reports its status and the container's cgroup statistics.
//! Output comes back through the attach stream under the output cap; the
//! wall clock, the cap and every exit path end in the container's removal,
//! which also takes its `/work` volume.
//!
//! Why the sources go through the attach stream rather than the engine's
//! archive upload (`PUT /containers/{id}/archive`): measured here, one upload
//! costs 50-150 ms (the engine mounts the container's file systems and
//! extracts in a re-executed, chrooted helper), more than the whole latency
//! target of a job; and extraction by the engine, which runs as root on the
//! host and resolves paths in a file system the container controls, is what
//! `docker cp` CVEs (CVE-2018-15664, CVE-2019-14271) were made of. The init
//! writes the same bytes as the job user, inside the container.
//!
//! Why a container per step rather than two `exec`s in one: each step gets
//! the limits it was created with (memory, processes, CPU-time ulimit) and its
//! own statistics and OOM count, with no `docker update` in between (which
//! Kata and gVisor support only in part), and the compile step's processes
//! cannot reach the run step. What the compile step leaves in `/work` is
//! copied out (`GET /containers/{id}/archive`) while its container still runs
//! and every process in it is dead, and re-packed (plain files only) for the
//! run step's container.
//!
//! The hardened settings are built in one place, [`settings::container_body`].
//! Every live container runs as a uid no other container of the sandbox has
//! ([`uids`]), under the configured parent cgroup ([`cgroup`]) whose limits
//! bound all the jobs together. Containers are labelled with the worker's
//! instance name; leftovers of a worker that died are removed when it starts
//! again. The design, with the settings' reasons: `docs/docker.md`.

mod archive;
pub mod cgroup;
mod judge;
mod launch;
mod pool;
mod relay;
mod settings;
mod uids;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bollard::container::{AttachContainerResults, LogOutput};
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, DownloadFromContainerOptions,
    KillContainerOptions, ListContainersOptions, ListVolumesOptions, RemoveContainerOptions,
    RemoveVolumeOptions,
};
use bollard::Docker;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;

use crate::judge::{CheckerProgram, Judged, TestObserver, TestRun};
use crate::language::Substitutions;
use crate::limits::Limits;
use crate::native::seccomp::SeccompFilters;
use crate::report::{Execution, Observed, StepReport, Termination};
use crate::{Program, Sandbox, SandboxError};
use archive::Entry;
pub use cgroup::CgroupParent;
use cgroup::EngineCgroups;
use launch::{Header, Output, Status};
use pool::{Pool, Profile};
use settings::{ContainerSpec, LABEL_INSTANCE, LABEL_SANDBOX, LABEL_UID, PROGRAM_ENV};
use uids::Uids;

/// How long a pooled container is trusted to still run without asking the
/// engine (which costs a round trip).
const POOLED_UNCHECKED: Duration = Duration::from_secs(60);

/// How long the init has to report once asked to stop at the wall clock.
const STOP_REPORT_WAIT: Duration = Duration::from_secs(1);
/// How long a job container's removal is tried again before it is given up
/// (its uid retired, the container left for the next start-up's sweep).
const REMOVAL_PATIENCE: Duration = Duration::from_secs(60);

/// The OCI runtimes this backend is documented for; any runtime the engine
/// has registered is accepted.
pub const KNOWN_RUNTIMES: [&str; 3] = ["runc", "kata", "runsc"];

/// Settings of the docker backend.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    /// The engine: `unix:///path`, `tcp://host:port`, or `None` for
    /// `DOCKER_HOST` or else `/var/run/docker.sock`.
    pub docker_host: Option<String>,
    /// The job image (python3, node, a JDK, gcc/g++ and `code-runner-init`;
    /// `docker/runner.Dockerfile`).
    pub image: String,
    /// The OCI runtime of every job container; must be registered in the
    /// engine (`docker info`), or the sandbox refuses to start.
    pub runtime: String,
    /// Names this worker in the containers' labels; a worker sweeps the
    /// leftovers of its instance name at start-up, so each worker sharing
    /// an engine needs its own (the default, the host name, differs per
    /// container of a compose service).
    pub instance: String,
    /// Ready containers kept per profile; 0 disables the pool.
    pub pool_size: usize,
    /// The limits pools are kept for (usually the worker's run and compile
    /// limits); a step whose limits no pool serves gets a new container.
    pub pool_profiles: Vec<Limits>,
    /// CPU quota of each container, in cores.
    pub cpus: f64,
    /// The first of the uids the jobs run as: every live container has one
    /// of its own (group = uid), from `first_uid` up, two per slot and one
    /// per pooled container (so that the kernel's per-uid quotas are each
    /// job's own). Workers sharing a host need ranges of their own.
    pub first_uid: u32,
    /// How many jobs may run at once.
    pub slots: u32,
    /// The cgroup every job container is made under, whose limits bound all
    /// the jobs together ([`CgroupParent`]).
    pub cgroup_parent: CgroupParent,
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self {
            docker_host: None,
            image: "code-runner-runner:latest".into(),
            runtime: "runc".into(),
            instance: default_instance(),
            pool_size: 4,
            pool_profiles: vec![Limits::RUN_DEFAULT, Limits::COMPILE_DEFAULT],
            cpus: 1.0,
            first_uid: 60_000,
            slots: 50,
            cgroup_parent: CgroupParent::Auto,
        }
    }
}

/// The host name: distinct for every container of a compose service.
pub fn default_instance() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "code-runner".into())
}

/// Runs programs in a fresh container per step.
pub struct DockerSandbox {
    inner: Arc<Inner>,
    fillers: Mutex<Vec<JoinHandle<()>>>,
}

struct Inner {
    docker: Docker,
    config: DockerConfig,
    seccomp: SeccompFilters,
    pools: Vec<Arc<Pool>>,
    uids: Uids,
    /// The resolved parent cgroup of every job container; `None`: the
    /// engine's default.
    cgroup_parent: Option<String>,
    slots: Semaphore,
    /// One companion per slot, taken by an interactive job's interactor
    /// beside its job slot (see the native backend).
    helper_slots: Semaphore,
    closed: AtomicBool,
    /// Removals under way, so that `close` can wait for them.
    removing: AtomicUsize,
    removed: Notify,
}

impl std::fmt::Debug for DockerSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerSandbox")
            .field("config", &self.inner.config)
            .finish()
    }
}

/// Wraps an engine error with the step that failed.
fn engine(what: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> SandboxError {
    let what = what.into();
    move |e| SandboxError::Setup {
        what,
        source: std::io::Error::other(e),
    }
}

fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

impl DockerSandbox {
    /// Connects to the engine and checks, before any job: that the runtime is
    /// registered there, that the job image exists; then removes the
    /// leftovers of this instance and starts filling the pools.
    pub async fn new(config: DockerConfig) -> Result<Self, SandboxError> {
        let pools = if config.pool_size == 0 {
            0
        } else {
            config.pool_profiles.len()
        };
        // Companion slots (interactors) count as slots.
        let uid_count = Uids::needed(config.slots.saturating_mul(2), pools, config.pool_size);
        let uid_end = u64::from(config.first_uid) + u64::from(uid_count);
        if config.first_uid == 0 {
            return Err(SandboxError::Unavailable(
                "jobs must not run as root (first uid 0)".into(),
            ));
        }
        // 65534 is nobody (the API's user in docker-compose.yml), 65535 and
        // 2^32 - 1 mean "no uid" to some interfaces.
        let reserved = [65_534u64, 65_535, u64::from(u32::MAX)];
        if reserved
            .iter()
            .any(|r| (u64::from(config.first_uid)..uid_end).contains(r))
            || uid_end > u64::from(u32::MAX)
        {
            return Err(SandboxError::Unavailable(format!(
                "job uids {}..{uid_end} include 65534 (nobody), 65535 or 2^32-1: choose another first uid",
                config.first_uid
            )));
        }
        if !(config.cpus > 0.0 && config.cpus <= 1024.0) {
            return Err(SandboxError::Unavailable(format!(
                "cpus must be above 0, got {}",
                config.cpus
            )));
        }
        if config.slots == 0 {
            return Err(SandboxError::Unavailable("slots must be at least 1".into()));
        }
        if config.instance.is_empty() || config.instance.contains(['=', ',']) {
            return Err(SandboxError::Unavailable(format!(
                "instance name {:?} must be non-empty, without '=' or ','",
                config.instance
            )));
        }
        for limits in &config.pool_profiles {
            limits.validate()?;
        }
        let docker = connect(config.docker_host.as_deref()).await?;
        let info = docker
            .info()
            .await
            .map_err(engine("read the engine's info"))?;
        let engine_cgroups = EngineCgroups::of(&info);
        let mut runtimes: Vec<String> = info
            .runtimes
            .map(|r| r.into_keys().collect())
            .unwrap_or_default();
        runtimes.sort();
        if !runtimes.contains(&config.runtime) {
            let hint = if KNOWN_RUNTIMES.contains(&config.runtime.as_str()) {
                "register it under \"runtimes\" in /etc/docker/daemon.json and restart the engine (see the README)"
            } else {
                "expected one of runc, kata, runsc"
            };
            return Err(SandboxError::Unavailable(format!(
                "OCI runtime {:?} is not registered in the Docker engine, which offers: {}; {hint}",
                config.runtime,
                runtimes.join(", ")
            )));
        }
        if let Err(e) = docker.inspect_image(&config.image).await {
            return Err(if is_not_found(&e) {
                SandboxError::Unavailable(format!(
                    "job image {} is not on this engine: build it with scripts/build-images.sh",
                    config.image
                ))
            } else {
                engine(format!("inspect image {}", config.image))(e)
            });
        }
        let cgroup_parent = cgroup::resolve(&config.cgroup_parent, &docker, engine_cgroups).await?;
        let mut profiles: Vec<Profile> = Vec::new();
        for limits in &config.pool_profiles {
            if !profiles.iter().any(|p| p.serves(limits)) {
                profiles.push(Profile(*limits));
            }
        }
        let inner = Arc::new(Inner {
            seccomp: SeccompFilters::compile()?,
            pools: if config.pool_size == 0 {
                Vec::new()
            } else {
                profiles
                    .into_iter()
                    .map(|p| Arc::new(Pool::new(p)))
                    .collect()
            },
            uids: Uids::new(config.first_uid, uid_count),
            cgroup_parent,
            slots: Semaphore::new(config.slots as usize),
            helper_slots: Semaphore::new(config.slots as usize),
            closed: AtomicBool::new(false),
            removing: AtomicUsize::new(0),
            removed: Notify::new(),
            docker,
            config,
        });
        let swept = inner.sweep().await?;
        if swept > 0 {
            tracing::info!(
                swept,
                instance = %inner.config.instance,
                "removed job containers left by an earlier run"
            );
        }
        let fillers = inner
            .pools
            .iter()
            .map(|pool| tokio::spawn(inner.clone().fill(pool.clone())))
            .collect();
        tracing::info!(
            image = %inner.config.image,
            runtime = %inner.config.runtime,
            pool_size = inner.config.pool_size,
            uids = %format_args!("{}..{}", inner.config.first_uid, inner.config.first_uid + uid_count),
            cgroup_parent = inner.cgroup_parent.as_deref().unwrap_or("(the engine's default)"),
            "docker sandbox ready"
        );
        Ok(Self {
            inner,
            fillers: Mutex::new(fillers),
        })
    }

    /// The instance name in this sandbox's container labels.
    pub fn instance(&self) -> &str {
        &self.inner.config.instance
    }

    /// Waits until every pool holds `pool_size` ready containers; false when
    /// `timeout` ran out first.
    pub async fn wait_for_pools(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let full = self
                .inner
                .pools
                .iter()
                .all(|p| p.len() >= self.inner.config.pool_size);
            if full {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops filling the pools, removes their containers and waits until
    /// every container of this sandbox is gone. Jobs still running keep their
    /// containers until they end.
    pub async fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        let fillers: Vec<_> =
            std::mem::take(&mut *self.fillers.lock().unwrap_or_else(|p| p.into_inner()));
        // The pools' containers go first: a filler waiting for a free uid
        // gets one back from their removal.
        for pool in &self.inner.pools {
            pool.wake.notify_one();
            for (id, uid) in pool.drain() {
                self.inner.remove_later(id, uid);
            }
        }
        for filler in fillers {
            let _ = filler.await;
        }
        for pool in &self.inner.pools {
            for (id, uid) in pool.drain() {
                self.inner.remove_later(id, uid);
            }
        }
        self.inner.wait_for_removals().await;
    }
}

impl Drop for DockerSandbox {
    fn drop(&mut self) {
        // Without `close`: stop the fillers; the pools' containers are
        // removed in the background when a runtime is there, else by the
        // next start-up's sweep.
        self.inner.closed.store(true, Ordering::SeqCst);
        for pool in &self.inner.pools {
            pool.wake.notify_one();
            for (id, uid) in pool.drain() {
                self.inner.remove_later(id, uid);
            }
        }
    }
}

async fn connect(host: Option<&str>) -> Result<Docker, SandboxError> {
    let docker = match host {
        None => Docker::connect_with_local_defaults(),
        Some(host) => Docker::connect_with_host(host),
    }
    .map_err(engine("connect to the Docker engine"))?;
    docker
        .negotiate_version()
        .await
        .map_err(engine("reach the Docker engine"))
}

/// A job container, removed (with its `/work` volume) when dropped: on
/// every path, a panic or a cancelled job included.
struct Container {
    id: String,
    /// Its uid, given back once the container is removed.
    uid: u32,
    inner: Arc<Inner>,
    /// The pool it came from, refilled once the step is over (not while it
    /// runs: making a container costs CPU the step would be waiting for).
    pool: Option<Arc<Pool>>,
}

impl Drop for Container {
    fn drop(&mut self) {
        self.inner
            .remove_later(std::mem::take(&mut self.id), self.uid);
        if let Some(pool) = &self.pool {
            pool.wake.notify_one();
        }
    }
}

/// One sandboxed command of a job.
struct Step<'a> {
    argv: Vec<String>,
    limits: &'a Limits,
    stdin: Vec<u8>,
    /// Copy `/work` out afterwards, for the run step (a compile step).
    keep_work: bool,
    /// Instead of `stdin` and a collected stdout: the other side of an
    /// interactive test ([`relay`]).
    link: Option<relay::Link>,
}

/// How a step ended, as the worker saw it.
struct Seen {
    timed_out: bool,
    wall_time: Duration,
}

impl Inner {
    fn spec(&self, uid: u32) -> ContainerSpec<'_> {
        ContainerSpec {
            image: &self.config.image,
            runtime: &self.config.runtime,
            uid,
            cpus: self.config.cpus,
            instance: &self.config.instance,
            cgroup_parent: self.cgroup_parent.as_deref(),
        }
    }

    /// Creates and starts a container for `limits`, with a uid of its own;
    /// its init waits for a job.
    async fn create_started(self: &Arc<Self>, limits: &Limits) -> Result<Container, SandboxError> {
        let uid = self.uids.lease().await;
        let body = settings::container_body(&self.spec(uid), limits);
        let created = match self
            .docker
            .create_container(None::<CreateContainerOptions>, body)
            .await
        {
            Ok(created) => created,
            Err(e) => {
                self.uids.give_back(uid);
                return Err(engine("create a job container")(e));
            }
        };
        let container = Container {
            id: created.id,
            uid,
            inner: self.clone(),
            pool: None,
        };
        self.docker
            .start_container(&container.id, None)
            .await
            .map_err(|e| {
                tracing::warn!(container = %container.id, error = %e, "cannot start a job container");
                engine("start a job container")(e)
            })?;
        Ok(container)
    }

    /// A pooled container whose profile serves `limits`, else a new one.
    ///
    /// A container that waited in the pool for a while is checked first: it
    /// is gone if the engine restarted meanwhile.
    async fn acquire(self: &Arc<Self>, limits: &Limits) -> Result<Container, SandboxError> {
        if let Some(pool) = self.pools.iter().find(|p| p.profile.serves(limits)) {
            while let Some((id, uid, started)) = pool.take() {
                let container = Container {
                    id,
                    uid,
                    inner: self.clone(),
                    pool: Some(pool.clone()),
                };
                if started.elapsed() < POOLED_UNCHECKED || self.is_running(&container.id).await {
                    return Ok(container);
                }
                tracing::warn!(container = %container.id, "pooled job container no longer runs; discarded");
            }
        }
        self.create_started(limits).await
    }

    async fn is_running(&self, id: &str) -> bool {
        matches!(
            self.docker.inspect_container(id, None).await,
            Ok(c) if c.state.as_ref().and_then(|s| s.running) == Some(true)
        )
    }

    /// Keeps `pool` full until the sandbox closes.
    async fn fill(self: Arc<Self>, pool: Arc<Pool>) {
        let mut backoff = Duration::from_millis(500);
        loop {
            if self.closed.load(Ordering::SeqCst) {
                return;
            }
            if pool.len() >= self.config.pool_size {
                pool.wake.notified().await;
                continue;
            }
            match self.create_started(&pool.profile.0).await {
                Ok(mut container) => {
                    backoff = Duration::from_millis(500);
                    if self.closed.load(Ordering::SeqCst) {
                        return; // dropped: removed
                    }
                    // The pool holds it (and its uid) now.
                    pool.put(std::mem::take(&mut container.id), container.uid);
                }
                Err(e) => {
                    tracing::warn!(error = %error_chain(&e), "cannot make a pooled job container; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = pool.wake.notified() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    /// Removes a container in the background, then gives its uid back;
    /// `close` waits for it. An empty id: nothing to remove (the uid is held
    /// elsewhere, e.g. by the pool).
    fn remove_later(self: &Arc<Self>, id: String, uid: u32) {
        if id.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(container = %id, "no runtime to remove a job container; the next start-up sweeps it");
            return;
        };
        self.removing.fetch_add(1, Ordering::SeqCst);
        let inner = self.clone();
        runtime.spawn(async move {
            if inner.remove_now(&id).await {
                inner.uids.give_back(uid);
            } else {
                // Processes of the container may still run as the uid:
                // it is not handed out again.
                tracing::warn!(container = %id, uid, "job uid retired: its container's removal failed");
            }
            if inner.removing.fetch_sub(1, Ordering::SeqCst) == 1 {
                inner.removed.notify_waiters();
            }
        });
    }

    /// Removes a container (and its `/work` volume); true once it is gone.
    /// Every error but "no such container" is tried again, waiting longer
    /// each time, for [`REMOVAL_PATIENCE`]: a loaded engine answers a
    /// removal with a 409 (one already under way), or a 500 when the
    /// container's processes have not yet been seen to exit or its file
    /// system is still busy, and a later try succeeds. Seen once in CI: a
    /// judge test on a loaded engine left a container and its volume.
    async fn remove_now(&self, id: &str) -> bool {
        let deadline = Instant::now() + REMOVAL_PATIENCE;
        let mut pause = Duration::from_millis(100);
        loop {
            let options = RemoveContainerOptions {
                force: true,
                v: true,
                link: false,
            };
            match self.docker.remove_container(id, Some(options)).await {
                Ok(()) => return true,
                Err(e) if is_not_found(&e) => return true,
                Err(e) if Instant::now() + pause < deadline => {
                    tracing::debug!(container = %id, error = %e, "removing a job container failed; trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                Err(e) => {
                    tracing::warn!(container = %id, error = %e, "cannot remove a job container");
                    return false;
                }
            }
        }
    }

    async fn wait_for_removals(&self) {
        loop {
            let notified = self.removed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.removing.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Removes the containers (and dangling `/work` volumes) this instance
    /// left, and those of instances whose own container is gone (a worker in
    /// a compose service that was re-created).
    async fn sweep(&self) -> Result<usize, SandboxError> {
        let filters =
            HashMap::from([("label".to_string(), vec![format!("{LABEL_SANDBOX}=docker")])]);
        let containers = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters.clone()),
                ..Default::default()
            }))
            .await
            .map_err(engine("list job containers"))?;
        let mut swept = 0;
        let mut sharing = Vec::new();
        for container in containers {
            let (Some(id), Some(labels)) = (container.id, container.labels) else {
                continue;
            };
            let owner = labels.get(LABEL_INSTANCE).map(String::as_str).unwrap_or("");
            let ours = owner == self.config.instance;
            let orphaned = !ours
                && looks_like_container_id(owner)
                && matches!(self.docker.inspect_container(owner, None).await, Err(ref e) if is_not_found(e));
            if ours || orphaned {
                self.remove_now(&id).await;
                swept += 1;
            } else if labels
                .get(LABEL_UID)
                .and_then(|u| u.parse::<u32>().ok())
                .is_some_and(|u| self.uids.in_range(u))
                && !sharing.iter().any(|s| s == owner)
            {
                sharing.push(owner.to_owned());
            }
        }
        if !sharing.is_empty() {
            tracing::warn!(
                instances = ?sharing,
                "other workers on this engine run jobs with uids of this worker's range: \
                 their jobs and this worker's share per-uid kernel quotas; give each worker \
                 its own first uid"
            );
        }
        let mut volume_filters = filters;
        volume_filters.insert("dangling".into(), vec!["true".into()]);
        if let Ok(volumes) = self
            .docker
            .list_volumes(Some(ListVolumesOptions {
                filters: Some(volume_filters),
            }))
            .await
        {
            for volume in volumes.volumes.unwrap_or_default() {
                if volume.labels.get(LABEL_INSTANCE) == Some(&self.config.instance) {
                    let _ = self
                        .docker
                        .remove_volume(&volume.name, Some(RemoveVolumeOptions { force: true }))
                        .await;
                }
            }
        }
        Ok(swept)
    }

    /// `/work` of a (still running) container, as a tar archive.
    async fn download_work(&self, id: &str, max_bytes: u64) -> Result<Vec<u8>, SandboxError> {
        let mut stream = self.docker.download_from_container(
            id,
            Some(DownloadFromContainerOptions {
                path: settings::WORK_DIR.into(),
            }),
        );
        let mut archive = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                tracing::warn!(container = %id, error = %e, "cannot copy /work out of a job container");
                engine("copy the compile step's output")(e)
            })?;
            archive.extend_from_slice(&chunk);
            if archive.len() as u64 > max_bytes {
                return Err(SandboxError::setup("copy the compile step's output")(
                    std::io::Error::new(std::io::ErrorKind::FileTooLarge, "archive too large"),
                ));
            }
        }
        Ok(archive)
    }

    /// Runs one step in its own container: returns its report and, for a
    /// step that keeps its work and succeeded, `/work` re-packed.
    async fn run_step(
        self: &Arc<Self>,
        mut step: Step<'_>,
        files: &[Entry],
    ) -> Result<(StepReport, Option<Vec<Entry>>), SandboxError> {
        let limits = step.limits;
        let asked = Instant::now();
        let container = self.acquire(limits).await?;
        let acquired = asked.elapsed();
        let AttachContainerResults {
            output: mut stream,
            mut input,
        } = self
            .docker
            .attach_container(
                &container.id,
                Some(AttachContainerOptions {
                    stdin: true,
                    stdout: true,
                    stderr: true,
                    stream: true,
                    logs: false,
                    detach_keys: None,
                }),
            )
            .await
            .map_err(|e| {
                tracing::warn!(container = %container.id, error = %e, "cannot attach to a job container");
                engine("attach to a job container")(e)
            })?;

        let nonce = launch::nonce();
        let rlimits = settings::rlimits(limits, &self.config.runtime);
        let header = Header {
            linger: step.keep_work,
            cpu_limit: limits.cpu_time,
            nonce: &nonce,
            filters: &self.seccomp.programs(),
            rlimits: &rlimits,
            env: &PROGRAM_ENV,
            argv: &step.argv,
            files,
        }
        .encode();
        let stdin = std::mem::take(&mut step.stdin);
        let (link_input, mut relayed) = match step.link.take() {
            Some(link) => (
                Some(link.input),
                Some((relay::Relay::new(&nonce), Some(link.output))),
            ),
            None => (None, None),
        };
        let started = Instant::now();
        // A program that never reads its input must not stall the step: the
        // writer runs on its own and fails once the container is gone.
        let writer = tokio::spawn(async move {
            if input.write_all(&header).await.is_err() {
                return;
            }
            match link_input {
                // Until the other side's stdout ends; dropping the receiver
                // (the container gone) is that side's broken pipe.
                Some(mut chunks) => {
                    while let Some(chunk) = chunks.recv().await {
                        if input.write_all(&chunk).await.is_err() {
                            return;
                        }
                    }
                }
                None if stdin.is_empty() => {}
                None => {
                    if input.write_all(&stdin).await.is_err() {
                        return;
                    }
                }
            }
            let _ = input.shutdown().await;
        });

        let mut output = Output::new(limits.output_bytes);
        let deadline = started + limits.wall_time;
        let mut end =
            read_step_output(&mut stream, &mut output, &nonce, deadline, relayed.as_mut()).await;
        let timed_out = end == StreamEnd::Deadline;
        let wall_time = started.elapsed();
        if timed_out {
            // The wall clock ran out: the init, asked from outside, kills the
            // program and still reports, with the cgroup's OOM count (running
            // out of memory often leaves a program stuck until the clock runs
            // out). When it does not answer promptly, `docker kill` below.
            let ask = self.docker.kill_container(
                &container.id,
                Some(KillContainerOptions {
                    signal: "SIGUSR1".into(),
                }),
            );
            match ask.await {
                Ok(()) => {
                    end = read_step_output(
                        &mut stream,
                        &mut output,
                        &nonce,
                        Instant::now() + STOP_REPORT_WAIT,
                        relayed.as_mut(),
                    )
                    .await;
                }
                Err(e) => {
                    tracing::debug!(container = %container.id, error = %e, "cannot ask the init to stop")
                }
            }
        }
        let exceeded = end == StreamEnd::Exceeded;
        let seen = Seen {
            timed_out,
            wall_time,
        };
        tracing::debug!(
            container = %container.id,
            pooled = container.pool.is_some(),
            acquire_ms = acquired.as_millis() as u64,
            wall_ms = seen.wall_time.as_millis() as u64,
            "step ran"
        );
        writer.abort();
        drop(stream);
        // The other side's end of input.
        drop(relayed);

        let collected = output.finish(&nonce, exceeded);
        let status = match collected.status {
            Some(status) => Some(status),
            // The init did not report: what the engine saw.
            None if seen.timed_out => {
                // The wall clock ran out and the init did not report: the
                // container dies now. Whether the memory limit was hit on the
                // way is in the engine's record, if it comes promptly (gVisor
                // stops slowly).
                let kill_and_look = async {
                    if let Err(e) = self
                        .docker
                        .kill_container(&container.id, None::<KillContainerOptions>)
                        .await
                    {
                        tracing::debug!(container = %container.id, error = %e, "kill after the time limit");
                    }
                    self.engine_status(&container.id).await
                };
                tokio::time::timeout(Duration::from_millis(500), kill_and_look)
                    .await
                    .ok()
                    .flatten()
            }
            // Killed from outside (e.g. the OOM killer took the init too).
            None if !collected.exceeded => self.engine_status(&container.id).await,
            None => None,
        };
        let report = classify(&step, &seen, collected, status);
        let work = if step.keep_work && report.succeeded() {
            let archive = self
                .download_work(
                    &container.id,
                    limits.scratch_bytes.saturating_mul(2) + (1 << 20),
                )
                .await?;
            Some(archive::repack_work(&archive, limits.scratch_bytes)?)
        } else {
            None
        };
        drop(container);
        Ok((report, work))
    }

    /// The exit code and OOM flag the engine recorded, once the container
    /// has stopped (waiting a moment for it). A container killed by SIGKILL
    /// with no OOM recorded yet is looked at a little longer: the engine
    /// learns of an OOM kill from an event that can come after the exit
    /// (seen in CI under load: a memory-limit test read as a plain kill,
    /// once with a 0.5 s grace, hence 2 s). Only a SIGKILL the worker did
    /// not send waits so: an OOM kill, or a program that killed itself.
    async fn engine_status(&self, id: &str) -> Option<Status> {
        let mut oom_grace = 40;
        for _ in 0..80 {
            let state = self.docker.inspect_container(id, None).await.ok()?.state?;
            if state.running != Some(true) {
                let code = state.exit_code.and_then(|c| i32::try_from(c).ok());
                let (exit_code, signal) = match code {
                    Some(c) if c > 128 && c <= 128 + 64 => (None, Some(c - 128)),
                    other => (other, None),
                };
                if signal == Some(libc::SIGKILL) && state.oom_killed != Some(true) && oom_grace > 0
                {
                    oom_grace -= 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                return Some(Status {
                    exit_code,
                    signal,
                    cpu_us: None,
                    memory_peak_bytes: None,
                    oom_kills: state.oom_killed.map(u64::from),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

/// A relayed stdout: what holds back the init's record, and where the rest
/// goes (`None` once the other side stopped reading).
type Relayed = (relay::Relay, Option<tokio::sync::mpsc::Sender<Vec<u8>>>);

/// Why reading a step's output stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamEnd {
    /// The init's records are in: the step is over.
    Complete,
    /// More output than the cap allows.
    Exceeded,
    /// The stream ended (the container is gone) or failed.
    Ended,
    Deadline,
}

/// Reads the attach stream into `output` until the init's records are in,
/// the cap is passed, the stream ends or `deadline` comes. With `relayed`,
/// stdout goes to the other side of an interactive test instead; once that
/// side is over, it is read and dropped (as the native backend drains a
/// pipe whose reader is gone: never a broken pipe).
async fn read_step_output(
    stream: &mut (impl futures_util::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Unpin),
    output: &mut Output,
    nonce: &str,
    deadline: Instant,
    mut relayed: Option<&mut Relayed>,
) -> StreamEnd {
    let until = deadline;
    let deadline = tokio::time::sleep_until(deadline.into());
    tokio::pin!(deadline);
    // Bytes a relay holds back (a possible start of the init's record) go
    // on when nothing follows them soon: the init writes its record in one
    // write, so a start left alone is the program's own data.
    let release = tokio::time::sleep(relay::HOLD_AT_MOST);
    tokio::pin!(release);
    loop {
        let holding = relayed.as_deref().is_some_and(|(relay, _)| relay.holding());
        tokio::select! {
            () = &mut release, if holding => {
                if let Some((relay, sender)) = relayed.as_deref_mut() {
                    let pass = relay.release();
                    if !forward(sender, pass, until).await {
                        return StreamEnd::Deadline;
                    }
                }
            }
            item = stream.next() => {
                let (is_stdout, message) = match item {
                    Some(Ok(LogOutput::StdOut { message })) => (true, message),
                    Some(Ok(LogOutput::StdErr { message })) => (false, message),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "attach stream ended with an error");
                        return StreamEnd::Ended;
                    }
                    None => return StreamEnd::Ended,
                };
                match relayed.as_deref_mut() {
                    Some((relay, sender)) if is_stdout => {
                        let pass = relay.take(&message);
                        if relay.holding() {
                            release.as_mut().reset(tokio::time::Instant::now() + relay::HOLD_AT_MOST);
                        }
                        if !forward(sender, pass, until).await {
                            return StreamEnd::Deadline;
                        }
                    }
                    _ => {
                        if !output.push(is_stdout, &message) {
                            return StreamEnd::Exceeded;
                        }
                    }
                }
                // The init writes its record on both streams once every
                // process of the step is dead: the step is over.
                let relayed_stdout = relayed.as_deref().map(|(relay, _)| relay.tail());
                if output.is_complete(nonce, relayed_stdout) {
                    return StreamEnd::Complete;
                }
            }
            () = &mut deadline => return StreamEnd::Deadline,
        }
    }
}

/// Passes relayed bytes on to the other side, while it reads (once it is
/// over, they are dropped); false when `until` came first.
async fn forward(
    sender: &mut Option<tokio::sync::mpsc::Sender<Vec<u8>>>,
    pass: Vec<u8>,
    until: Instant,
) -> bool {
    let Some(to) = sender.as_ref().filter(|_| !pass.is_empty()) else {
        return true;
    };
    match tokio::time::timeout_at(until.into(), to.send(pass)).await {
        Ok(Ok(())) => true,
        Ok(Err(_)) => {
            *sender = None;
            true
        }
        Err(_) => false,
    }
}

/// The report of a step, classified as the native backend classifies.
fn classify(
    step: &Step<'_>,
    seen: &Seen,
    collected: launch::Collected,
    status: Option<Status>,
) -> StepReport {
    let limits = step.limits;
    let status = status.unwrap_or(Status {
        exit_code: None,
        signal: None,
        cpu_us: None,
        memory_peak_bytes: None,
        oom_kills: None,
    });
    // A step the worker stopped was killed with SIGKILL, as in the native
    // backend.
    let killed = seen.timed_out || collected.exceeded;
    let (exit_code, signal) = if killed {
        (None, Some(libc::SIGKILL))
    } else {
        (status.exit_code, status.signal)
    };
    let cpu_time = Duration::from_micros(status.cpu_us.unwrap_or(0));
    let termination = Termination::classify(
        &Observed {
            output_exceeded: collected.exceeded,
            timed_out: seen.timed_out,
            signal,
            cpu_time,
            oom_kills: status.oom_kills.unwrap_or(0),
        },
        limits.cpu_time,
    );
    StepReport {
        output_truncated: collected.exceeded,
        stdout: collected.stdout,
        stderr: collected.stderr,
        exit_code,
        signal,
        termination,
        wall_time: seen.wall_time,
        cpu_time,
        memory_peak_bytes: status.memory_peak_bytes,
    }
}

#[async_trait]
impl Sandbox for DockerSandbox {
    async fn execute(&self, program: Program) -> Result<Execution, SandboxError> {
        program.compile_limits.validate()?;
        program.run_limits.validate()?;
        let inner = &self.inner;
        if inner.closed.load(Ordering::SeqCst) {
            return Err(SandboxError::Unavailable("sandbox closed".into()));
        }
        let _permit = inner
            .slots
            .acquire()
            .await
            .map_err(|_| SandboxError::Unavailable("sandbox closed".into()))?;

        let language = &program.language;
        let main = language.main_name(&program.source);
        let compile_subs = Substitutions {
            main: main.clone(),
            memory_mb: program.compile_limits.memory_mb(),
        };
        let run_subs = Substitutions {
            main,
            memory_mb: program.run_limits.memory_mb(),
        };
        let mut work = source_entries(
            &language.source_file(&run_subs),
            &program.source,
            &program.files,
        )?;

        let mut compile = None;
        if let Some(argv) = language.compile_command(&compile_subs) {
            let step = Step {
                argv,
                limits: &program.compile_limits,
                stdin: Vec::new(),
                keep_work: true,
                link: None,
            };
            let (report, output) = inner.run_step(step, &work).await?;
            match output {
                Some(output) if report.succeeded() => work = output,
                _ => {
                    return Ok(Execution {
                        compile: Some(report),
                        run: None,
                    })
                }
            }
            compile = Some(report);
        }
        let mut argv = language.run_command(&run_subs);
        argv.extend(program.args.iter().cloned());
        let step = Step {
            argv,
            limits: &program.run_limits,
            stdin: program.stdin,
            keep_work: false,
            link: None,
        };
        let (run, _) = inner.run_step(step, &work).await?;
        Ok(Execution {
            compile,
            run: Some(run),
        })
    }

    /// Compiles each program once, in a container of its own, and runs
    /// every test (and the checker after it) in a fresh container
    /// ([`judge`]).
    async fn execute_tests(
        &self,
        program: Program,
        checker: Option<CheckerProgram>,
        tests: Vec<TestRun>,
        observer: &mut dyn TestObserver,
    ) -> Result<Judged, SandboxError> {
        self.judge(program, checker, tests, observer).await
    }

    /// Interactive judge mode: both programs compiled once, then per test
    /// two fresh containers whose streams the worker relays into each other
    /// ([`judge`], [`relay`]).
    async fn execute_interactive(
        &self,
        program: Program,
        interactor: CheckerProgram,
        tests: Vec<TestRun>,
        observer: &mut dyn TestObserver,
    ) -> Result<Judged, SandboxError> {
        self.judge_interactive(program, interactor, tests, observer)
            .await
    }
}

/// The job's sources as `/work`'s entries: the main source under its
/// language's name, then the extra files.
fn source_entries(
    source_file: &str,
    source: &str,
    files: &[(String, String)],
) -> Result<Vec<Entry>, SandboxError> {
    let mut work = vec![Entry::file(source_file, source.as_bytes())];
    for (name, contents) in files {
        // The API only lets plain names through; refuse anything else
        // here too rather than trust every caller.
        if !crate::is_plain_file_name(name) || work.iter().any(|e| e.path == *name) {
            return Err(SandboxError::setup(format!("extra file {name:?}"))(
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "not a plain file name, or a name given twice",
                ),
            ));
        }
        work.push(Entry::file(name, contents.as_bytes()));
    }
    Ok(work)
}

/// A 12- or 64-hex-digit name: the host name the engine gives a container.
fn looks_like_container_id(name: &str) -> bool {
    matches!(name.len(), 12 | 64) && name.bytes().all(|b| b.is_ascii_hexdigit())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
