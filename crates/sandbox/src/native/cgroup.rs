//! Control groups: the kernel's limits on a step's memory, process count and
//! CPU share, and its accounting of CPU time, peak memory and OOM kills.
//!
//! Two layouts are supported. Hosts with the v1/v2 hybrid (the development
//! machines) keep the controllers in v1 hierarchies, one per controller;
//! modern hosts have one v2 hierarchy. Every slot gets its own cgroup when
//! its sandbox starts, under a directory that belongs to this worker process;
//! the keeper lives in it, and each step's limits are set on it just before
//! the step (a slot runs one step at a time). Moving processes between
//! cgroups, and creating and removing cgroups, happen once per slot instead
//! of once per step: on v1 they wait for RCU grace periods, milliseconds each.
//!
//! Besides limits, a slot's cgroup is how the worker knows a slot is clean:
//! after a job its process count and its `shmem` (memory nothing but a file
//! or an in-flight descriptor can hold) must be back where they were when
//! the slot was fresh, or the slot is rebuilt (see `SlotCgroup::residue`).

use std::fs::{self, OpenOptions};
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::limits::Limits;
use crate::SandboxError;

const V1_CONTROLLERS: [&str; 4] = ["memory", "pids", "cpuacct", "cpu"];
/// The CFS period the per-slot CPU quota is expressed in (the kernel default).
const CPU_PERIOD_US: u64 = 100_000;
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Where this worker's slot cgroups live.
#[derive(Debug, Clone)]
pub(crate) enum CgroupLayout {
    /// One directory per v1 controller: memory, pids, cpuacct and cpu (the
    /// last two may be one hierarchy, `cpu,cpuacct`).
    V1 {
        memory: PathBuf,
        pids: PathBuf,
        cpuacct: PathBuf,
        cpu: PathBuf,
    },
    /// One v2 directory whose children get memory, pids and cpu.
    V2 { base: PathBuf },
}

/// What the kernel counted for one step.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct CgroupStats {
    pub memory_peak_bytes: Option<u64>,
    pub oom_kills: u64,
    pub cpu_time: Duration,
}

impl CgroupLayout {
    /// Finds the hierarchy in use and creates this worker's directory in it.
    /// Leftovers of workers that died are removed on the way.
    ///
    /// The directory is made in this process's own cgroup, or, when `under`
    /// is given, in that cgroup (a path inside each hierarchy, such as a
    /// subtree the host delegated to a container and bound over the
    /// container's read-only cgroup mount: see docs/native-container.md).
    pub(crate) fn detect(under: Option<&Path>) -> Result<Self, SandboxError> {
        let own = own_cgroups(under).map_err(SandboxError::setup("read /proc/self/cgroup"))?;
        let tag = format!("code-runner-{}", std::process::id());
        let root = Path::new(CGROUP_ROOT);
        if root.join("cgroup.controllers").exists() {
            return Self::detect_v2(&own, &tag, under.is_none());
        }
        let mut dirs = Vec::new();
        for controller in V1_CONTROLLERS {
            let parent = v1_parent(&own, controller).map_err(SandboxError::Unavailable)?;
            remove_stale(&parent);
            let dir = parent.join(&tag);
            create_dir(&dir)?;
            dirs.push(dir);
        }
        let [memory, pids, cpuacct, cpu] =
            <[PathBuf; 4]>::try_from(dirs).expect("four controllers");
        Ok(CgroupLayout::V1 {
            memory,
            pids,
            cpuacct,
            cpu,
        })
    }

    /// For `doctor`: where this process would make its slot cgroups (one
    /// directory per v1 controller, or its own v2 cgroup), given the text of
    /// `/proc/self/cgroup`; an error names what is missing.
    pub(crate) fn parents(own: &str) -> Result<Vec<(String, PathBuf)>, String> {
        if Path::new(CGROUP_ROOT).join("cgroup.controllers").exists() {
            let dir = v2_own_dir(own)?;
            let available = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
            for needed in ["memory", "pids", "cpu"] {
                if !available.split_whitespace().any(|c| c == needed) {
                    return Err(format!(
                        "cgroup v2 controller `{needed}` is not delegated to {}",
                        dir.display()
                    ));
                }
            }
            return Ok(vec![("v2 (memory, pids, cpu)".to_owned(), dir)]);
        }
        V1_CONTROLLERS
            .into_iter()
            .map(|c| v1_parent(own, c).map(|dir| (format!("v1 {c}"), dir)))
            .collect()
    }

    /// On v2 a cgroup with processes cannot hand controllers to children, so
    /// the worker first moves itself into a leaf beside the slot cgroups
    /// (`in_own`: the directory is the worker's own cgroup; a given one
    /// holds none of its processes).
    fn detect_v2(own: &str, tag: &str, in_own: bool) -> Result<Self, SandboxError> {
        let own_dir = v2_own_dir(own).map_err(SandboxError::Unavailable)?;
        let available = fs::read_to_string(own_dir.join("cgroup.controllers")).unwrap_or_default();
        for needed in ["memory", "pids", "cpu"] {
            if !available.split_whitespace().any(|c| c == needed) {
                return Err(SandboxError::Unavailable(format!(
                    "cgroup v2 controller `{needed}` is not delegated to {}",
                    own_dir.display()
                )));
            }
        }
        remove_stale(&own_dir);
        if in_own {
            let leaf = own_dir.join(format!("{tag}-supervisor"));
            create_dir(&leaf)?;
            write(&leaf.join("cgroup.procs"), &std::process::id().to_string())?;
        }
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

    /// Creates the cgroup(s) of one slot, with its CPU quota (`cpus` cores:
    /// CFS quota on v1, `cpu.max` on v2). Memory and process limits are set
    /// per step.
    pub(crate) fn create_slot(&self, name: &str, cpus: f64) -> Result<SlotCgroup, SandboxError> {
        let (roles, version) = match self {
            CgroupLayout::V1 {
                memory,
                pids,
                cpuacct,
                cpu,
            } => (
                [
                    memory.join(name),
                    pids.join(name),
                    cpuacct.join(name),
                    cpu.join(name),
                ],
                1,
            ),
            CgroupLayout::V2 { base } => {
                let dir = base.join(name);
                ([dir.clone(), dir.clone(), dir.clone(), dir], 2)
            }
        };
        // Pushed one by one so that a failure removes what was made.
        let [memory, pids, cpuacct, cpu] = roles;
        let mut slot = SlotCgroup {
            dirs: Vec::new(),
            memory,
            pids,
            cpuacct,
            version,
            memsw: false,
            last_limits: None,
            idle: None,
            detached: false,
            files: ControlFiles::default(),
        };
        for dir in [&slot.memory, &slot.pids, &slot.cpuacct, &cpu] {
            if !slot.dirs.contains(dir) {
                create_dir(dir)?;
                slot.dirs.push(dir.clone());
            }
        }
        slot.memsw = version == 1 && slot.memory.join("memory.memsw.limit_in_bytes").exists();
        let quota = ((cpus * CPU_PERIOD_US as f64).round() as u64).max(1_000);
        if version == 1 {
            write(&cpu.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
            write(&cpu.join("cpu.cfs_quota_us"), &quota.to_string())?;
        } else {
            write(&cpu.join("cpu.max"), &format!("{quota} {CPU_PERIOD_US}"))?;
            let swap = slot.memory.join("memory.swap.max");
            if swap.exists() {
                write(&swap, "0")?;
            }
        }
        Ok(slot)
    }
}

/// The cgroup(s) of one slot: its keeper and, one step at a time, the step's
/// processes. Dropping it kills whatever is left in it and removes it.
#[derive(Debug)]
pub(crate) struct SlotCgroup {
    /// Every distinct directory of the slot (one per v1 hierarchy).
    dirs: Vec<PathBuf>,
    memory: PathBuf,
    pids: PathBuf,
    /// Where CPU time is counted (v1 `cpuacct`).
    cpuacct: PathBuf,
    version: u8,
    /// v1: whether swap is accounted (`memory.memsw.*` exists).
    memsw: bool,
    /// `(pids.max, memory limit)` as last written.
    last_limits: Option<(u64, u64)>,
    /// What the slot held when fresh and idle (see `record_idle`).
    idle: Option<Held>,
    /// Set on the copy `Drop` hands to the runtime, so that copy, if itself
    /// dropped unfinished, does not hand itself on again.
    detached: bool,
    /// The control files read or written at every step, kept open.
    files: ControlFiles,
}

/// A slot's control files, each opened once (for reading and writing where
/// the file allows both) and then read from its start or written at every
/// use: an open is a path walk through the cgroup file system and a close,
/// a dozen per job otherwise.
#[derive(Debug, Default)]
struct ControlFiles(std::sync::Mutex<std::collections::HashMap<PathBuf, std::sync::Arc<fs::File>>>);

impl ControlFiles {
    fn open(&self, dir: &Path, name: &str) -> io::Result<std::sync::Arc<fs::File>> {
        let path = dir.join(name);
        let mut files = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(file) = files.get(&path) {
            return Ok(file.clone());
        }
        // A file the kernel lets no one write (`memory.stat`) is opened for
        // reading; any other failure is not remembered.
        let file = match OpenOptions::new().read(true).write(true).open(&path) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) => {
                fs::File::open(&path)?
            }
            other => other?,
        };
        let file = std::sync::Arc::new(file);
        files.insert(path, file.clone());
        Ok(file)
    }

    /// The whole text of `dir/name` (`sys::read_snapshot`); empty when it
    /// cannot be read.
    fn read(&self, dir: &Path, name: &str) -> String {
        self.open(dir, name)
            .and_then(|file| super::sys::read_snapshot(&file))
            .ok()
            .and_then(|text| String::from_utf8(text).ok())
            .unwrap_or_default()
    }

    fn read_number(&self, dir: &Path, name: &str) -> u64 {
        self.read(dir, name).trim().parse().unwrap_or(0)
    }

    fn write(&self, dir: &Path, name: &str, value: &str) -> Result<(), SandboxError> {
        use std::os::unix::fs::FileExt;
        let what = || format!("write {value:?} to {}", dir.join(name).display());
        let file = self
            .open(dir, name)
            .map_err(|e| SandboxError::setup(what())(e))?;
        match file.write_at(value.as_bytes(), 0) {
            Ok(n) if n == value.len() => Ok(()),
            Ok(_) => Err(SandboxError::setup(what())(io::Error::from(
                io::ErrorKind::WriteZero,
            ))),
            Err(e) => Err(SandboxError::setup(what())(e)),
        }
    }

    /// CPU time of everything ever in the cgroup.
    fn cpu_usage(&self, dir: &Path, version: u8) -> Duration {
        if version == 1 {
            Duration::from_nanos(self.read_number(dir, "cpuacct.usage"))
        } else {
            Duration::from_micros(keyed(&self.read(dir, "cpu.stat"), "usage_usec"))
        }
    }
}

/// What a slot holds that only its processes, files or in-flight
/// descriptors can hold: compared between a fresh slot and one a job left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Held {
    pub processes: u64,
    pub shmem_bytes: u64,
}

/// How far a slot's `shmem` may drift from its fresh value before the slot
/// counts as holding something of a job (the keeper's own tmpfs root and
/// `/dev` hold a few pages).
const SHMEM_SLACK: u64 = 256 << 10;

/// What a slot's cgroup held just before a step, to tell the step's share.
#[derive(Debug)]
pub(crate) struct StepBaseline {
    usage_bytes: u64,
    oom_kills: u64,
    cpu: Duration,
    /// v2: the `memory.peak` descriptor the step's peak is read through
    /// (the kernel keeps one peak per open file once it is reset).
    peak_file: Option<fs::File>,
}

impl SlotCgroup {
    /// Open files that move the writer into the slot's cgroups.
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

    /// What the slot holds now.
    pub(crate) fn held(&self) -> Held {
        Held {
            processes: self.files.read_number(&self.pids, "pids.current"),
            shmem_bytes: keyed(&self.files.read(&self.memory, "memory.stat"), "shmem"),
        }
    }

    /// Remembers what the fresh, idle slot holds (its keeper and
    /// bubblewrap's init), the baseline every later job must return it to.
    pub(crate) fn record_idle(&mut self) {
        self.idle = Some(self.held());
    }

    /// What a finished job left in the slot beyond its fresh baseline: a
    /// process, or memory held by a file or by a descriptor in flight (a
    /// memfd sent over a socket that only the kernel's garbage collector
    /// will free) — `None` when the slot is clean.
    /// `helpers`: processes the keeper keeps between jobs beyond the fresh
    /// baseline (a prefork zygote, started during a job).
    pub(crate) fn residue(&self, helpers: u32) -> Option<String> {
        let idle = self.idle?;
        let now = self.held();
        if now.processes > idle.processes + u64::from(helpers) {
            return Some(format!(
                "{} processes left (fresh: {})",
                now.processes, idle.processes
            ));
        }
        if now.shmem_bytes > idle.shmem_bytes + SHMEM_SLACK {
            return Some(format!(
                "{} KiB of shared memory held (fresh: {} KiB)",
                now.shmem_bytes >> 10,
                idle.shmem_bytes >> 10
            ));
        }
        None
    }

    /// A meter of the CPU time the slot's processes used since `baseline`
    /// was taken (its reading is the meter's zero: no second read).
    pub(crate) fn cpu_meter(&self, baseline: &StepBaseline) -> CpuMeter {
        let file = if self.version == 1 {
            "cpuacct.usage"
        } else {
            "cpu.stat"
        };
        CpuMeter {
            file: self.files.open(&self.cpuacct, file).ok(),
            version: self.version,
            start: baseline.cpu,
        }
    }

    /// Applies a step's limits on top of what the slot already holds and
    /// cannot give back (the keeper, and the job's `/work` and `/judge`: the
    /// sources and what a compile step left), and of `files_bytes` the
    /// keeper is about to write for the step (a checker's test files), and
    /// starts counting. `init_waiting`: the step's init is in the slot
    /// already, counted among its processes.
    pub(crate) fn begin_step(
        &mut self,
        limits: &Limits,
        first_of_job: bool,
        files_bytes: u64,
        init_waiting: bool,
    ) -> Result<StepBaseline, SandboxError> {
        let memory_dir = &self.memory;
        let (pids_dir, cpu_dir) = (&self.pids, &self.cpuacct);
        let usage_file = if self.version == 1 {
            "memory.usage_in_bytes"
        } else {
            "memory.current"
        };
        let files = &self.files;
        let usage_bytes = files.read_number(memory_dir, usage_file);
        // The keeper and bubblewrap's init stay; the step's init is one more,
        // unless it is there already, waiting (`init_waiting`).
        let processes = files.read_number(pids_dir, "pids.current");
        let pids_max = processes + u64::from(limits.processes) + u64::from(!init_waiting);
        // Before a job's first step the slot holds nothing of a job's: its
        // sources are written within the step's budget.
        let held = if first_of_job {
            0
        } else {
            keyed(&files.read(memory_dir, "memory.stat"), "shmem")
        };
        let memory = limits.memory_bytes + KEEPER_ALLOWANCE + held + files_bytes;
        let cpu = files.cpu_usage(cpu_dir, self.version);
        // Most steps repeat the slot's previous limits: no need to write them.
        let unchanged = self.last_limits == Some((pids_max, memory));
        if !unchanged {
            write(&pids_dir.join("pids.max"), &pids_max.to_string())?;
        }
        let memory_text = memory.to_string();
        if self.version == 1 {
            if !unchanged {
                set_v1_memory_limit(memory_dir, &memory_text, self.memsw)?;
                self.last_limits = Some((pids_max, memory));
            }
            files.write(memory_dir, "memory.max_usage_in_bytes", "0")?;
            return Ok(StepBaseline {
                usage_bytes,
                oom_kills: keyed(&files.read(memory_dir, "memory.oom_control"), "oom_kill"),
                cpu,
                peak_file: None,
            });
        }
        if !unchanged {
            write(&memory_dir.join("memory.max"), &memory_text)?;
            self.last_limits = Some((pids_max, memory));
        }
        // Kernels before 6.12 cannot reset the peak: then it is not known.
        let peak_file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(memory_dir.join("memory.peak"))
            .ok()
            .filter(|file| {
                use std::io::Write;
                let mut file = file;
                file.write_all(b"reset").is_ok()
            });
        Ok(StepBaseline {
            usage_bytes,
            oom_kills: keyed(&files.read(memory_dir, "memory.events"), "oom_kill"),
            cpu,
            peak_file,
        })
    }

    /// What the kernel counted for the step since `begin_step`.
    pub(crate) fn end_step(&self, baseline: StepBaseline) -> CgroupStats {
        let memory_dir = &self.memory;
        let (peak, oom_kills, cpu_dir) = if self.version == 1 {
            (
                Some(
                    self.files
                        .read_number(memory_dir, "memory.max_usage_in_bytes"),
                ),
                keyed(
                    &self.files.read(memory_dir, "memory.oom_control"),
                    "oom_kill",
                ),
                &self.cpuacct,
            )
        } else {
            let peak = baseline.peak_file.and_then(|mut file| {
                use std::io::{Read, Seek};
                let mut text = String::new();
                file.rewind().ok()?;
                file.read_to_string(&mut text).ok()?;
                text.trim().parse().ok()
            });
            let oom_kills = keyed(&self.files.read(memory_dir, "memory.events"), "oom_kill");
            (peak, oom_kills, &self.cpuacct)
        };
        CgroupStats {
            memory_peak_bytes: peak.map(|peak: u64| peak.saturating_sub(baseline.usage_bytes)),
            oom_kills: oom_kills.saturating_sub(baseline.oom_kills),
            // Every process of the step counts, also children reaped by no
            // one (SIGCHLD ignored), which the init's rusage would miss.
            cpu_time: self
                .files
                .cpu_usage(cpu_dir, self.version)
                .saturating_sub(baseline.cpu),
        }
    }

    /// Kills every process left in the slot and removes its cgroups, waiting
    /// (at most about a second) for the kernel to let go of dying processes.
    pub(crate) async fn remove(mut self) {
        self.files = ControlFiles::default();
        for _ in 0..100 {
            self.kill_all();
            self.dirs.retain(|dir| fs::remove_dir(dir).is_err());
            if self.dirs.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tracing::warn!(dirs = ?self.dirs, "slot cgroup still busy; leaving it for the start-up sweep");
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

impl Drop for SlotCgroup {
    fn drop(&mut self) {
        // Only reached when `remove` was not: the job's future was dropped
        // (cancelled, or abandoned at shutdown). Its processes are being
        // killed right now, so removal needs the retry loop: hand it to the
        // runtime when there is one, else try once and leave the rest to the
        // start-up sweep.
        if self.dirs.is_empty() {
            return;
        }
        // Nothing of the slot's stays open while it is removed.
        self.files = ControlFiles::default();
        let mut rest = SlotCgroup {
            dirs: std::mem::take(&mut self.dirs),
            memory: self.memory.clone(),
            pids: self.pids.clone(),
            cpuacct: self.cpuacct.clone(),
            version: self.version,
            memsw: self.memsw,
            last_limits: None,
            idle: None,
            detached: true,
            files: ControlFiles::default(),
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

/// Reads the CPU time a slot's processes used since the meter was made,
/// through a descriptor kept open (one `pread` a reading).
#[derive(Debug)]
pub(crate) struct CpuMeter {
    file: Option<std::sync::Arc<fs::File>>,
    version: u8,
    start: Duration,
}

impl CpuMeter {
    /// CPU time used since the meter was made.
    pub(crate) fn used(&mut self) -> Duration {
        self.total().saturating_sub(self.start)
    }

    fn total(&mut self) -> Duration {
        use std::os::unix::fs::FileExt;
        let Some(file) = &self.file else {
            return Duration::ZERO;
        };
        let mut buf = [0u8; 512];
        let n = file.read_at(&mut buf, 0).unwrap_or(0);
        let text = std::str::from_utf8(&buf[..n]).unwrap_or("");
        if self.version == 1 {
            Duration::from_nanos(text.trim().parse().unwrap_or(0))
        } else {
            Duration::from_micros(keyed(text, "usage_usec"))
        }
    }
}

/// Room for what a slot holds besides the step: bubblewrap's init and the
/// keeper (a few MiB together).
const KEEPER_ALLOWANCE: u64 = 16 << 20;

/// The text of `/proc/self/cgroup`, or as it would read for a process in
/// cgroup `under` of every hierarchy.
pub(crate) fn own_cgroups(under: Option<&Path>) -> io::Result<String> {
    match under {
        Some(path) => Ok(own_cgroup_text(path)),
        None => fs::read_to_string("/proc/self/cgroup"),
    }
}

/// `/proc/self/cgroup` as it would read for a process in cgroup `path` of
/// every hierarchy.
fn own_cgroup_text(path: &Path) -> String {
    let path = Path::new("/").join(path);
    let path = path.display();
    let mut text: String = V1_CONTROLLERS
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{}:{c}:{path}\n", i + 1))
        .collect();
    text.push_str(&format!("0::{path}\n"));
    text
}

/// The directory of this process's cgroup in the v1 `controller` hierarchy
/// (`/proc/self/cgroup` lines are "hierarchy-id:controller,list:/path").
fn v1_parent(own: &str, controller: &str) -> Result<PathBuf, String> {
    let relative = own
        .lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, ':');
            fields.next();
            fields.next().zip(fields.next())
        })
        .find(|(controllers, _)| controllers.split(',').any(|c| c == controller))
        .map(|(_, path)| path.trim_start_matches('/').to_owned())
        .ok_or_else(|| {
            format!("no cgroup v1 `{controller}` controller and no cgroup v2 hierarchy")
        })?;
    // `cpu` and `cpuacct` are often one hierarchy: one real directory.
    let mount = Path::new(CGROUP_ROOT).join(controller);
    let mount = fs::canonicalize(&mount).unwrap_or(mount);
    Ok(mount.join(relative))
}

/// The directory of this process's v2 cgroup.
fn v2_own_dir(own: &str) -> Result<PathBuf, String> {
    let relative = own
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .ok_or_else(|| "no cgroup v2 entry".to_owned())?
        .trim_start_matches('/');
    Ok(Path::new(CGROUP_ROOT).join(relative))
}

/// Sets a v1 memory limit, and the memory+swap limit to the same value where
/// swap is accounted (the kernel wants memsw >= memory at every moment, so the
/// order depends on the direction of the change).
fn set_v1_memory_limit(dir: &Path, value: &str, with_memsw: bool) -> Result<(), SandboxError> {
    let limit = dir.join("memory.limit_in_bytes");
    let memsw = dir.join("memory.memsw.limit_in_bytes");
    if !with_memsw {
        return write(&limit, value);
    }
    if write(&limit, value).is_err() {
        write(&memsw, value)?;
        write(&limit, value)?;
    }
    write(&memsw, value)
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
