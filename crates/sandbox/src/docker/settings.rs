//! The hardened container settings of one step, built in one place: every
//! isolation and limit the docker backend relies on is in [`container_body`]
//! (what the engine enforces) and [`rlimits`] (what `code-runner-init` sets
//! for the program it starts).

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount, MountType, MountVolumeOptions,
    MountVolumeOptionsDriverConfig, ResourcesUlimits,
};

use crate::limits::Limits;

/// PID 1 of every job container (built into the job image from `docker/init.c`).
pub(crate) const INIT: &str = "/usr/libexec/code-runner-init";

/// The job's scratch directory, its working directory.
pub(crate) const WORK_DIR: &str = "/work";

/// Label every container of the backend carries, so leftovers can be found.
pub(crate) const LABEL_SANDBOX: &str = "code-runner.sandbox";
/// Label naming the worker instance that owns the container.
pub(crate) const LABEL_INSTANCE: &str = "code-runner.instance";
/// Label with the uid the container runs as (see [`super::uids`]).
pub(crate) const LABEL_UID: &str = "code-runner.uid";

/// Files and directories a job may create in `/work` and in `/tmp` each: enough
/// for a compiler's temporaries and a program's own, few enough that an
/// inode-filling loop stops early (as in the native backend).
const INODES: u64 = 4096;

/// The program's environment, as in the native backend.
pub(crate) const PROGRAM_ENV: [&str; 4] = [
    "PATH=/usr/local/bin:/usr/bin:/bin",
    "HOME=/work",
    "LANG=C.UTF-8",
    "TMPDIR=/tmp",
];

/// What a container is made with, besides the step's limits.
#[derive(Debug, Clone)]
pub(crate) struct ContainerSpec<'a> {
    pub image: &'a str,
    pub runtime: &'a str,
    /// The uid (and group) the job runs as: never 0, and no other live
    /// container of the sandbox has it.
    pub uid: u32,
    /// CPU quota in cores.
    pub cpus: f64,
    pub instance: &'a str,
    /// The cgroup the container's own cgroup is made under (see
    /// [`super::cgroup`]); `None`: the engine's default.
    pub cgroup_parent: Option<&'a str>,
}

/// The container of one step: the settings that must hold for every job.
///
/// - no network at all (`none`: a loopback only), a private IPC namespace,
///   its own PID, mount and UTS namespaces (hostname `sandbox`);
/// - memory = memory + swap (no swap), a CPU quota, a pids limit, the OOM
///   killer's first choice on the host;
/// - a read-only root file system; `/work` (the scratch directory) and `/tmp`
///   are size- and inode-limited tmpfs, `nosuid,nodev`; `/var` is masked by an
///   empty read-only tmpfs; `/dev/shm` is as large as the scratch directory;
/// - every capability dropped, `no-new-privileges`, the engine's default
///   seccomp profile (the init adds the native backend's filter on top);
/// - a non-root uid of its own (no other live container has it, so the
///   kernel's per-uid quotas are the job's own); ulimits on open files, file
///   size, core dumps and CPU time (the init lowers them to the job's values);
/// - under the configured parent cgroup, whose limits bound all the jobs;
/// - no log driver (output is read through attach, under the output cap, and
///   never stored by the engine); labelled for the start-up sweep.
///
/// `/work` is an anonymous volume backed by tmpfs rather than a `--tmpfs`
/// mount because the engine reads a container's files (`GET archive`, which
/// copies a compile step's output out) from the host side, where a `--tmpfs`
/// mount is not seen; it is removed with the container (`v=true`).
///
/// `RLIMIT_NPROC` is not set under runc: it counts every process of the uid
/// on the whole host, and although no two containers of a sandbox share a
/// uid, two workers on one host with overlapping uid ranges would; the pids
/// limit bounds the processes of each container instead. Under
/// gVisor (`runsc`) the engine's cgroup also holds gVisor's own kernel and its
/// threads, so the pids limit gets headroom for them and the job's own limit
/// is `RLIMIT_NPROC`, which gVisor counts per sandbox.
pub(crate) fn container_body(spec: &ContainerSpec<'_>, limits: &Limits) -> ContainerCreateBody {
    let scratch = limits.scratch_bytes;
    let owner = format!("uid={},gid={}", spec.uid, spec.uid);
    let work_volume = Mount {
        target: Some(WORK_DIR.into()),
        typ: Some(MountType::VOLUME),
        read_only: Some(false),
        volume_options: Some(MountVolumeOptions {
            no_copy: Some(true),
            driver_config: Some(MountVolumeOptionsDriverConfig {
                name: Some("local".into()),
                options: Some(HashMap::from([
                    ("type".into(), "tmpfs".into()),
                    ("device".into(), "tmpfs".into()),
                    (
                        "o".into(),
                        format!("size={scratch},nr_inodes={INODES},{owner},mode=0700,nosuid,nodev"),
                    ),
                ])),
            }),
            labels: Some(labels(spec.instance, spec.uid)),
            ..Default::default()
        }),
        ..Default::default()
    };
    let tmpfs = HashMap::from([
        (
            "/tmp".into(),
            format!("rw,nosuid,nodev,size={scratch},nr_inodes={INODES},mode=1777"),
        ),
        (
            "/var".into(),
            "ro,nosuid,nodev,noexec,size=4k,nr_inodes=16,mode=0755".into(),
        ),
    ]);
    let ulimit = |name: &str, soft: u64, hard: u64| ResourcesUlimits {
        name: Some(name.into()),
        soft: Some(clamp(soft)),
        hard: Some(clamp(hard)),
    };
    let cpu = limits.cpu_seconds();
    let host_config = HostConfig {
        runtime: Some(spec.runtime.into()),
        cgroup_parent: spec.cgroup_parent.map(str::to_owned),
        network_mode: Some("none".into()),
        ipc_mode: Some("private".into()),
        memory: Some(clamp(limits.memory_bytes)),
        memory_swap: Some(clamp(limits.memory_bytes)),
        nano_cpus: Some((spec.cpus * 1e9).round() as i64),
        pids_limit: Some(i64::from(limits.processes) + runtime_pids_headroom(spec.runtime)),
        oom_score_adj: Some(1000),
        readonly_rootfs: Some(true),
        mounts: Some(vec![work_volume]),
        tmpfs: Some(tmpfs),
        shm_size: Some(clamp(scratch)),
        cap_drop: Some(vec!["ALL".into()]),
        security_opt: Some(vec!["no-new-privileges".into()]),
        privileged: Some(false),
        init: Some(false),
        ulimits: Some(vec![
            ulimit(
                "nofile",
                u64::from(limits.open_files),
                u64::from(limits.open_files),
            ),
            ulimit("fsize", limits.file_size_bytes, limits.file_size_bytes),
            ulimit("core", 0, 0),
            // SIGXCPU at the limit, SIGKILL a second later.
            ulimit("cpu", cpu, cpu + 1),
        ]),
        log_config: Some(HostConfigLogConfig {
            typ: Some("none".into()),
            config: None,
        }),
        auto_remove: Some(false),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(spec.image.into()),
        entrypoint: Some(vec![INIT.into()]),
        cmd: Some(Vec::new()),
        env: Some(Vec::new()),
        user: Some(format!("{}:{}", spec.uid, spec.uid)),
        working_dir: Some(WORK_DIR.into()),
        hostname: Some("sandbox".into()),
        network_disabled: Some(true),
        // The init reads its job from standard input: open, attached once.
        open_stdin: Some(true),
        stdin_once: Some(true),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        stop_signal: Some("SIGKILL".into()),
        labels: Some(labels(spec.instance, spec.uid)),
        host_config: Some(host_config),
        ..Default::default()
    }
}

/// The job's own rlimits, set by the init for the program only: `(resource,
/// soft, hard)`. They are at most the container's ulimits (see
/// [`Profile::serves`](super::pool::Profile::serves)), so lowering them needs
/// no privilege.
pub(crate) fn rlimits(limits: &Limits, runtime: &str) -> Vec<(u32, u64, u64)> {
    let cpu = limits.cpu_seconds();
    let mut rlimits = vec![
        (libc::RLIMIT_CPU, cpu, cpu + 1),
        (
            libc::RLIMIT_FSIZE,
            limits.file_size_bytes,
            limits.file_size_bytes,
        ),
        (
            libc::RLIMIT_NOFILE,
            u64::from(limits.open_files),
            u64::from(limits.open_files),
        ),
        (libc::RLIMIT_CORE, 0, 0),
    ];
    if runtime_pids_headroom(runtime) > 0 {
        let processes = u64::from(limits.processes);
        rlimits.push((libc::RLIMIT_NPROC, processes, processes));
    }
    rlimits
}

/// Processes and threads of the runtime itself inside the container's pids
/// cgroup: gVisor's kernel (the Sentry) runs there, with threads of its own.
fn runtime_pids_headroom(runtime: &str) -> i64 {
    if runtime == "runsc" || runtime.starts_with("runsc-") {
        1024
    } else {
        0
    }
}

/// The labels of every container (and volume) of this backend.
pub(crate) fn labels(instance: &str, uid: u32) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_SANDBOX.into(), "docker".into()),
        (LABEL_INSTANCE.into(), instance.into()),
        (LABEL_UID.into(), uid.to_string()),
    ])
}

fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ContainerSpec<'static> {
        ContainerSpec {
            image: "img",
            runtime: "runc",
            uid: 60007,
            cpus: 1.0,
            instance: "test",
            cgroup_parent: None,
        }
    }

    #[test]
    fn hardened_by_default() {
        let limits = Limits::RUN_DEFAULT;
        let body = container_body(&spec(), &limits);
        let host = body.host_config.as_ref().unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        assert_eq!(body.network_disabled, Some(true));
        assert_eq!(host.memory, Some(256 * 1024 * 1024));
        assert_eq!(host.memory_swap, host.memory, "no swap");
        assert_eq!(host.pids_limit, Some(64));
        assert_eq!(host.nano_cpus, Some(1_000_000_000));
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!(host.cap_drop.as_deref(), Some(&["ALL".to_string()][..]));
        assert!(host
            .security_opt
            .as_ref()
            .unwrap()
            .contains(&"no-new-privileges".to_string()));
        assert_eq!(host.privileged, Some(false));
        assert_eq!(host.runtime.as_deref(), Some("runc"));
        assert_eq!(body.user.as_deref(), Some("60007:60007"));
        assert_eq!(body.labels.as_ref().unwrap()[LABEL_UID], "60007");
        assert_eq!(host.cgroup_parent, None, "the engine's default");
        assert!(host.binds.is_none(), "never a host bind mount");
        let tmp = &host.tmpfs.as_ref().unwrap()["/tmp"];
        assert!(
            tmp.contains("size=67108864") && tmp.contains("nosuid"),
            "{tmp}"
        );
        let work = &host.mounts.as_ref().unwrap()[0];
        assert_eq!(work.typ, Some(MountType::VOLUME));
        assert!(
            work.source.is_none(),
            "anonymous, removed with the container"
        );
        let names: Vec<_> = host
            .ulimits
            .as_ref()
            .unwrap()
            .iter()
            .map(|u| u.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["nofile", "fsize", "core", "cpu"]);
        assert_eq!(body.labels.as_ref().unwrap()[LABEL_INSTANCE], "test");
        let work_options = work.volume_options.as_ref().unwrap();
        let o = &work_options
            .driver_config
            .as_ref()
            .unwrap()
            .options
            .as_ref()
            .unwrap()["o"];
        assert!(o.contains("uid=60007,gid=60007"), "{o}");
    }

    #[test]
    fn under_the_configured_parent() {
        let spec = ContainerSpec {
            cgroup_parent: Some("/code-runner-jobs"),
            ..spec()
        };
        let body = container_body(&spec, &Limits::RUN_DEFAULT);
        let host = body.host_config.unwrap();
        assert_eq!(host.cgroup_parent.as_deref(), Some("/code-runner-jobs"));
    }
}
