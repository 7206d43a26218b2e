//! Control groups: the kernel's limits on a step's memory and process count,
//! and its accounting of CPU time and peak memory.
//!
//! Two layouts are supported. Hosts with the v1/v2 hybrid (the development
//! machines) keep the controllers in v1 hierarchies, one per controller;
//! modern hosts have one v2 hierarchy. Every step gets its own cgroup, created
//! before the sandbox starts and removed after its last process is gone, under
//! a directory that belongs to this worker process.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::limits::Limits;
use crate::SandboxError;

const V1_CONTROLLERS: [&str; 3] = ["memory", "pids", "cpuacct"];
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Where this worker's step cgroups live.
#[derive(Debug, Clone)]
pub(crate) enum CgroupLayout {
    /// One directory per v1 controller: memory, pids, cpuacct.
    V1 {
        memory: PathBuf,
        pids: PathBuf,
        cpuacct: PathBuf,
    },
    /// One v2 directory whose children get memory, pids and cpu.
    V2 { base: PathBuf },
}

/// What the kernel counted for one step.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct CgroupStats {
    pub memory_peak_bytes: u64,
    pub cpu_time: Duration,
    pub oom_kills: u64,
}

impl CgroupLayout {
    /// Finds the hierarchy in use and creates this worker's directory in it.
    /// Leftovers of workers that died are removed on the way.
    pub(crate) fn detect() -> Result<Self, SandboxError> {
        let own = fs::read_to_string("/proc/self/cgroup")
            .map_err(SandboxError::setup("read /proc/self/cgroup"))?;
        let tag = format!("code-runner-{}", std::process::id());
        let root = Path::new(CGROUP_ROOT);
        if root.join("cgroup.controllers").exists() {
            return Self::detect_v2(&own, &tag);
        }
        let mut dirs = Vec::new();
        for controller in V1_CONTROLLERS {
            let relative = own
                .lines()
                .filter_map(|line| {
                    // "hierarchy-id:controller,list:/path"
                    let mut fields = line.splitn(3, ':');
                    fields.next();
                    fields.next().zip(fields.next())
                })
                .find(|(controllers, _)| controllers.split(',').any(|c| c == controller))
                .map(|(_, path)| path.trim_start_matches('/').to_owned())
                .ok_or_else(|| {
                    SandboxError::Unavailable(format!(
                        "no cgroup v1 `{controller}` controller and no cgroup v2 hierarchy"
                    ))
                })?;
            let parent = root.join(controller).join(relative);
            remove_stale(&parent);
            let dir = parent.join(&tag);
            create_dir(&dir)?;
            dirs.push(dir);
        }
        let [memory, pids, cpuacct] = <[PathBuf; 3]>::try_from(dirs).expect("three controllers");
        Ok(CgroupLayout::V1 {
            memory,
            pids,
            cpuacct,
        })
    }

    /// On v2 a cgroup with processes cannot hand controllers to children, so
    /// the worker first moves itself into a leaf beside the step cgroups.
    fn detect_v2(own: &str, tag: &str) -> Result<Self, SandboxError> {
        let relative = own
            .lines()
            .find_map(|line| line.strip_prefix("0::"))
            .ok_or_else(|| SandboxError::Unavailable("no cgroup v2 entry".into()))?
            .trim_start_matches('/');
        let own_dir = Path::new(CGROUP_ROOT).join(relative);
        let available = fs::read_to_string(own_dir.join("cgroup.controllers")).unwrap_or_default();
        for needed in ["memory", "pids"] {
            if !available.split_whitespace().any(|c| c == needed) {
                return Err(SandboxError::Unavailable(format!(
                    "cgroup v2 controller `{needed}` is not delegated to {}",
                    own_dir.display()
                )));
            }
        }
        remove_stale(&own_dir);
        let leaf = own_dir.join(format!("{tag}-supervisor"));
        create_dir(&leaf)?;
        write(&leaf.join("cgroup.procs"), &std::process::id().to_string())?;
        let wanted: Vec<&str> = ["memory", "pids", "cpu"]
            .into_iter()
            .filter(|c| available.split_whitespace().any(|a| a == *c))
            .collect();
        let enable = wanted
            .iter()
            .map(|c| format!("+{c}"))
            .collect::<Vec<_>>()
            .join(" ");
        write(&own_dir.join("cgroup.subtree_control"), &enable)?;
        let base = own_dir.join(tag);
        create_dir(&base)?;
        write(&base.join("cgroup.subtree_control"), &enable)?;
        Ok(CgroupLayout::V2 { base })
    }

    /// Creates the cgroup(s) of one step with its limits applied.
    pub(crate) fn create_step(
        &self,
        name: &str,
        limits: &Limits,
    ) -> Result<StepCgroup, SandboxError> {
        let memory = limits.memory_bytes.to_string();
        let pids = limits.processes.to_string();
        match self {
            CgroupLayout::V1 {
                memory: m,
                pids: p,
                cpuacct: c,
            } => {
                let dirs = vec![m.join(name), p.join(name), c.join(name)];
                // Pushed one by one so that a failure removes what was made.
                let mut step = StepCgroup {
                    dirs: Vec::new(),
                    version: 1,
                    detached: false,
                };
                for dir in &dirs {
                    create_dir(dir)?;
                    step.dirs.push(dir.clone());
                }
                write(&dirs[0].join("memory.limit_in_bytes"), &memory)?;
                // Swap counts as memory where swap accounting exists.
                let memsw = dirs[0].join("memory.memsw.limit_in_bytes");
                if memsw.exists() {
                    write(&memsw, &memory)?;
                }
                write(&dirs[1].join("pids.max"), &pids)?;
                Ok(step)
            }
            CgroupLayout::V2 { base } => {
                let dir = base.join(name);
                create_dir(&dir)?;
                let step = StepCgroup {
                    dirs: vec![dir.clone()],
                    version: 2,
                    detached: false,
                };
                write(&dir.join("memory.max"), &memory)?;
                let swap = dir.join("memory.swap.max");
                if swap.exists() {
                    write(&swap, "0")?;
                }
                write(&dir.join("pids.max"), &pids)?;
                Ok(step)
            }
        }
    }
}

/// The cgroup(s) of one running step. Dropping it kills whatever is left in
/// it and removes it.
#[derive(Debug)]
pub(crate) struct StepCgroup {
    dirs: Vec<PathBuf>,
    version: u8,
    /// Set on the copy `Drop` hands to the runtime, so that copy, if itself
    /// dropped unfinished, does not hand itself on again.
    detached: bool,
}

impl StepCgroup {
    /// Open files that move the writer into the step's cgroups.
    pub(crate) fn join_files(&self) -> Result<Vec<OwnedFd>, SandboxError> {
        let file = if self.version == 1 {
            "tasks"
        } else {
            "cgroup.procs"
        };
        self.dirs
            .iter()
            .map(|dir| {
                let path = dir.join(file);
                OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map(OwnedFd::from)
                    .map_err(SandboxError::setup(format!("open {}", path.display())))
            })
            .collect()
    }

    /// What the kernel counted; zero for anything it could not read.
    pub(crate) fn stats(&self) -> CgroupStats {
        let read = |dir: &Path, file: &str| fs::read_to_string(dir.join(file)).unwrap_or_default();
        if self.version == 1 {
            let (memory, cpuacct) = (&self.dirs[0], &self.dirs[2]);
            CgroupStats {
                memory_peak_bytes: read(memory, "memory.max_usage_in_bytes")
                    .trim()
                    .parse()
                    .unwrap_or(0),
                cpu_time: Duration::from_nanos(
                    read(cpuacct, "cpuacct.usage").trim().parse().unwrap_or(0),
                ),
                oom_kills: keyed(&read(memory, "memory.oom_control"), "oom_kill"),
            }
        } else {
            let dir = &self.dirs[0];
            CgroupStats {
                memory_peak_bytes: read(dir, "memory.peak").trim().parse().unwrap_or(0),
                cpu_time: Duration::from_micros(keyed(&read(dir, "cpu.stat"), "usage_usec")),
                oom_kills: keyed(&read(dir, "memory.events"), "oom_kill"),
            }
        }
    }

    /// Kills every process left in the step and removes its cgroups, waiting
    /// (at most about a second) for the kernel to let go of dying processes.
    pub(crate) async fn remove(mut self) {
        for _ in 0..100 {
            self.kill_all();
            self.dirs.retain(|dir| fs::remove_dir(dir).is_err());
            if self.dirs.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tracing::warn!(dirs = ?self.dirs, "step cgroup still busy; leaving it for the start-up sweep");
        self.dirs.clear();
    }

    fn kill_all(&self) {
        for dir in &self.dirs {
            if self.version == 2 && write(&dir.join("cgroup.kill"), "1").is_ok() {
                continue;
            }
            for pid in fs::read_to_string(dir.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
            {
                if let Ok(pid) = pid.trim().parse() {
                    super::sys::kill(pid);
                }
            }
        }
    }
}

impl Drop for StepCgroup {
    fn drop(&mut self) {
        // Only reached when `remove` was not: the job's future was dropped
        // (cancelled, or abandoned at shutdown). Its processes are being
        // killed right now, so removal needs the retry loop: hand it to the
        // runtime when there is one, else try once and leave the rest to the
        // start-up sweep.
        if self.dirs.is_empty() {
            return;
        }
        let mut rest = StepCgroup {
            dirs: std::mem::take(&mut self.dirs),
            version: self.version,
            detached: true,
        };
        rest.kill_all();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) if !self.detached => {
                runtime.spawn(rest.remove());
            }
            _ => {
                for dir in rest.dirs.drain(..) {
                    let _ = fs::remove_dir(dir);
                }
            }
        }
    }
}

/// The value of `key` in a "key value" per line file.
fn keyed(text: &str, key: &str) -> u64 {
    text.lines()
        .filter_map(|line| line.split_once(' '))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

fn create_dir(dir: &Path) -> Result<(), SandboxError> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(SandboxError::Setup {
            what: format!("create cgroup {}", dir.display()),
            source: e,
        }),
    }
}

fn write(path: &Path, value: &str) -> Result<(), SandboxError> {
    fs::write(path, value).map_err(SandboxError::setup(format!(
        "write {value:?} to {}",
        path.display()
    )))
}

/// Removes the cgroups of workers that are no longer running (a worker killed
/// with SIGKILL cannot clean up after itself).
fn remove_stale(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("code-runner-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        remove_tree(&entry.path());
    }
}

fn remove_tree(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path());
            }
        }
    }
    for pid in fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
    {
        if let Ok(pid) = pid.trim().parse() {
            super::sys::kill(pid);
        }
    }
    if let Err(e) = fs::remove_dir(dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot remove stale cgroup");
    }
}
