//! The parent cgroup of every job container: what bounds all the jobs of a
//! worker together.
//!
//! Job containers are made through the engine, so by default they are
//! siblings of the worker's own container: a deployment's limits on the
//! worker (compose's `cpus: '16'`, `memory: 7G`) bound the worker process and
//! nothing of its jobs. With a parent, every job container's cgroup is created
//! below it, and the kernel charges the jobs' memory, CPU and processes to it
//! as well (cgroup limits are hierarchical).
//!
//! [`CgroupParent`] says which parent:
//!
//! - `auto` (the default): the worker's own container when the worker runs
//!   in a container of this engine and the engine can nest containers there
//!   (the `cgroupfs` driver on cgroup v1), so the compose service's limits
//!   bound the jobs with no set-up; the engine's default otherwise (a
//!   warning says so when the worker is in a container).
//! - `worker`: the worker's own container, or the sandbox refuses to start.
//! - `none`: the engine's default (job containers are siblings).
//! - anything else: that parent, whose limits the deployment sets — a path
//!   such as `/code-runner-jobs` with the `cgroupfs` driver, a slice such as
//!   `code-runner-jobs.slice` with the `systemd` driver. The engine creates
//!   it when it does not exist (then without limits).
//!
//! Why the worker's own cgroup works only on cgroup v1 with `cgroupfs`: under
//! cgroup v2 a cgroup that holds processes (the worker's) cannot hand the
//! memory or CPU controllers down to child cgroups (the "no internal
//! processes" rule), so the engine cannot set a job container's limits
//! there; and with the `systemd` driver a container is a scope, which cannot
//! hold other units — a parent there must be a slice.

use std::fmt;
use std::str::FromStr;

use bollard::models::{SystemInfo, SystemInfoCgroupDriverEnum, SystemInfoCgroupVersionEnum};
use bollard::Docker;

use crate::SandboxError;

/// The parent cgroup of the job containers; see the module's documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CgroupParent {
    /// The worker's own container where the engine can nest there, else the
    /// engine's default.
    #[default]
    Auto,
    /// The worker's own container, or the sandbox refuses to start.
    Worker,
    /// The engine's default: job containers are siblings of the worker's.
    EngineDefault,
    /// A cgroup path (`cgroupfs` driver) or a slice (`systemd` driver).
    Path(String),
}

impl FromStr for CgroupParent {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(match value.trim() {
            "" | "auto" => Self::Auto,
            "worker" => Self::Worker,
            "none" => Self::EngineDefault,
            path => {
                let plain = |name: &str| {
                    !name.is_empty()
                        && name != "."
                        && name != ".."
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"._-:@".contains(&b))
                };
                let valid = if let Some(rest) = path.strip_prefix('/') {
                    rest.split('/').all(plain)
                } else {
                    path.ends_with(".slice") && plain(path)
                };
                if !valid {
                    return Err(format!(
                        "cgroup parent {path:?}: expected auto, worker, none, an absolute cgroup path \
                         (/code-runner-jobs) or a systemd slice (code-runner-jobs.slice)"
                    ));
                }
                Self::Path(path.to_owned())
            }
        })
    }
}

impl fmt::Display for CgroupParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Worker => f.write_str("worker"),
            Self::EngineDefault => f.write_str("none"),
            Self::Path(path) => f.write_str(path),
        }
    }
}

/// The engine's cgroup driver and version, as `docker info` gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EngineCgroups {
    pub systemd: bool,
    pub v1: bool,
}

impl EngineCgroups {
    pub(crate) fn of(info: &SystemInfo) -> Self {
        Self {
            systemd: info.cgroup_driver == Some(SystemInfoCgroupDriverEnum::SYSTEMD),
            v1: info.cgroup_version == Some(SystemInfoCgroupVersionEnum::_1),
        }
    }

    /// Whether a container's own cgroup can be the parent of others.
    fn nests_in_containers(self) -> bool {
        !self.systemd && self.v1
    }
}

/// The parent every job container gets (`HostConfig.CgroupParent`), `None`
/// for the engine's default; an error when the setting cannot hold.
pub(crate) async fn resolve(
    setting: &CgroupParent,
    docker: &Docker,
    engine: EngineCgroups,
) -> Result<Option<String>, SandboxError> {
    match setting {
        CgroupParent::EngineDefault => Ok(None),
        CgroupParent::Path(path) => {
            let slice = !path.starts_with('/');
            if engine.systemd != slice {
                return Err(SandboxError::Unavailable(if engine.systemd {
                    format!(
                        "cgroup parent {path:?}: the engine uses the systemd cgroup driver, \
                         which takes a slice (code-runner-jobs.slice)"
                    )
                } else {
                    format!(
                        "cgroup parent {path:?}: the engine uses the cgroupfs driver, \
                         which takes an absolute path (/code-runner-jobs)"
                    )
                }));
            }
            Ok(Some(path.clone()))
        }
        CgroupParent::Auto | CgroupParent::Worker => {
            let strict = *setting == CgroupParent::Worker;
            let refuse = |why: String| {
                if strict {
                    Err(SandboxError::Unavailable(format!(
                        "cgroup parent \"worker\": {why}; configure a parent whose limits the \
                         deployment sets (see docs/docker.md)"
                    )))
                } else {
                    Ok(None)
                }
            };
            let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            let Some(id) = own_container_id(&mountinfo) else {
                return refuse("the worker does not run in a container".into());
            };
            let Ok(own) = docker.inspect_container(&id, None).await else {
                return refuse("the worker's container is not one of this engine's".into());
            };
            if !engine.nests_in_containers() {
                if !strict {
                    tracing::warn!(
                        "the job containers are not bounded by the worker container's limits: \
                         this engine (systemd driver or cgroup v2) cannot nest containers in a \
                         container; set a cgroup parent whose limits the deployment sets \
                         (see docs/docker.md)"
                    );
                }
                return refuse(
                    "this engine (systemd driver or cgroup v2) cannot nest containers in a container"
                        .into(),
                );
            }
            let proc_cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
            let configured = own.host_config.and_then(|h| h.cgroup_parent);
            Ok(Some(own_cgroup(&proc_cgroup, &id, configured.as_deref())))
        }
    }
}

/// The id of the container this process runs in, from the engine's bind
/// mount of the container's `/etc/hostname` (`…/containers/<id>/hostname`):
/// there under every cgroup driver and namespace setting.
pub(crate) fn own_container_id(mountinfo: &str) -> Option<String> {
    mountinfo.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        // id parent major:minor root mount-point ...
        if fields.len() < 5 || fields[4] != "/etc/hostname" {
            return None;
        }
        let id = fields[3]
            .strip_suffix("/hostname")?
            .rsplit_once("/containers/")?
            .1;
        (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_owned())
    })
}

/// The cgroup path of the container `id` (cgroup v1, `cgroupfs` driver):
/// what `/proc/self/cgroup` shows for the memory controller when the
/// container shares the host's cgroup namespace (v1's default), else the
/// engine's layout, `<its CgroupParent or /docker>/<id>`.
pub(crate) fn own_cgroup(proc_self_cgroup: &str, id: &str, configured: Option<&str>) -> String {
    let seen = proc_self_cgroup.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        let memory = controllers.split(',').any(|c| c == "memory");
        (memory && path.ends_with(&format!("/{id}"))).then(|| path.to_owned())
    });
    seen.unwrap_or_else(|| {
        let parent = configured
            .filter(|p| !p.is_empty())
            .unwrap_or("/docker")
            .trim_end_matches('/');
        let parent = if parent.starts_with('/') {
            parent.to_owned()
        } else {
            format!("/{parent}")
        };
        format!("{parent}/{id}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "5f0ac9f5d7a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b";

    #[test]
    fn parses_the_setting() {
        assert_eq!("".parse(), Ok(CgroupParent::Auto));
        assert_eq!("auto".parse(), Ok(CgroupParent::Auto));
        assert_eq!("worker".parse(), Ok(CgroupParent::Worker));
        assert_eq!("none".parse(), Ok(CgroupParent::EngineDefault));
        assert_eq!(
            "/code-runner/jobs".parse(),
            Ok(CgroupParent::Path("/code-runner/jobs".into()))
        );
        assert_eq!(
            "code-runner-jobs.slice".parse(),
            Ok(CgroupParent::Path("code-runner-jobs.slice".into()))
        );
        for bad in ["jobs", "/a/../b", "/a//b", "/a b", "x/y.slice", "/a/"] {
            assert!(bad.parse::<CgroupParent>().is_err(), "{bad}");
        }
        assert_eq!(CgroupParent::Path("/a".into()).to_string(), "/a");
    }

    #[test]
    fn finds_its_own_container() {
        let mountinfo = format!(
            "800 700 0:52 / / rw,relatime - fuse.fuse-overlayfs fuse-overlayfs rw\n\
             812 800 259:1 /var/lib/docker/containers/{ID}/resolv.conf /etc/resolv.conf rw - ext4 /dev/root rw\n\
             813 800 259:1 /var/lib/docker/containers/{ID}/hostname /etc/hostname rw - ext4 /dev/root rw\n"
        );
        assert_eq!(own_container_id(&mountinfo).as_deref(), Some(ID));
        // A host: other containers' layers are mounted, none on /etc/hostname.
        let host =
            "90 29 0:50 / /var/lib/docker/fuse-overlayfs/1a2b/merged rw - fuse fuse-overlayfs rw\n";
        assert_eq!(own_container_id(host), None);
    }

    #[test]
    fn its_cgroup_from_proc_or_the_engine_layout() {
        let proc = format!("5:cpu,cpuacct:/docker/{ID}\n4:memory:/docker/{ID}\n0::/\n");
        assert_eq!(own_cgroup(&proc, ID, None), format!("/docker/{ID}"));
        let nested = format!("4:memory:/code-runner/{ID}\n");
        assert_eq!(own_cgroup(&nested, ID, None), format!("/code-runner/{ID}"));
        // A private cgroup namespace shows "/": the engine's layout.
        let private = "4:memory:/\n0::/\n";
        assert_eq!(own_cgroup(private, ID, None), format!("/docker/{ID}"));
        assert_eq!(own_cgroup(private, ID, Some("")), format!("/docker/{ID}"));
        assert_eq!(
            own_cgroup(private, ID, Some("/code-runner/")),
            format!("/code-runner/{ID}")
        );
    }

    #[test]
    fn nesting_in_a_container_needs_cgroupfs_on_v1() {
        let engine = |systemd, v1| EngineCgroups { systemd, v1 };
        assert!(engine(false, true).nests_in_containers());
        assert!(!engine(false, false).nests_in_containers());
        assert!(!engine(true, true).nests_in_containers());
    }
}
