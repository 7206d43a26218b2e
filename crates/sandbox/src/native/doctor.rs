//! `code-runner doctor`: checks that a host, a container or a pod has what
//! the native sandbox needs, and says exactly how to fix what is missing.
//!
//! Every check tries the real thing where it can, as the worker would: it
//! drops to the first sandbox uid and creates the user namespace (and then
//! the others), runs bubblewrap with a slot's namespaces and a fresh
//! `/proc`, makes and removes a cgroup where the worker makes its slots,
//! compiles the sandbox's seccomp filter, and looks for every toolchain of
//! the language table. A failed attempt is matched to its usual cause (a
//! container's seccomp profile, AppArmor, a masked `/proc`, a read-only
//! cgroup mount, a sysctl) and the finding names the setting that fixes it.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{cgroup, seccomp, sys};
use crate::LanguageTable;

/// What `doctor` needs to know about the worker it checks for.
#[derive(Debug, Clone)]
pub struct DoctorConfig {
    /// The bubblewrap binary the worker would run.
    pub bwrap: PathBuf,
    /// The first sandbox uid (the namespace probes run as it).
    pub first_uid: u32,
    /// Where the worker keeps its uid leases.
    pub uid_lock_dir: PathBuf,
    /// A program that exits 0 when run with `--version` (this binary): what
    /// the namespace probes exec once they made their namespaces.
    pub probe_program: PathBuf,
    /// The worker's `--cgroup-path`, if any (else its own cgroup).
    pub cgroup_path: Option<PathBuf>,
}

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Present and working.
    Ok,
    /// Required and missing (or not working): the worker cannot run.
    Missing,
    /// Worth knowing, not required.
    Note,
}

/// One check's result.
#[derive(Debug, Clone)]
pub struct Finding {
    /// What was checked, e.g. `bubblewrap`.
    pub check: String,
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// How to fix it (for `Missing`, always given).
    pub fix: Option<String>,
}

impl Finding {
    fn ok(check: impl Into<String>, detail: impl Into<String>) -> Self {
        Finding {
            check: check.into(),
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    fn missing(
        check: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Finding {
            check: check.into(),
            status: Status::Missing,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    fn note(check: impl Into<String>, detail: impl Into<String>) -> Self {
        Finding {
            check: check.into(),
            status: Status::Note,
            detail: detail.into(),
            fix: None,
        }
    }
}

/// Runs every check; the worker can start when none is `Missing`.
pub fn check(config: &DoctorConfig, languages: &LanguageTable) -> Vec<Finding> {
    let mut findings = Vec::new();
    let root = sys::euid() == 0;
    findings.push(check_root(root));
    if root {
        findings.push(check_capabilities());
        findings.push(check_own_user_namespace());
    }
    findings.push(check_bwrap(&config.bwrap));
    findings.extend(check_user_namespaces(config, root));
    findings.push(check_bwrap_sandbox(config, root));
    findings.extend(check_seccomp());
    findings.extend(check_cgroups(config.cgroup_path.as_deref()));
    findings.push(check_uid_leases(&config.uid_lock_dir));
    findings.extend(check_languages(languages));
    findings
}

/// True when a required check failed.
pub fn any_missing(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.status == Status::Missing)
}

fn check_root(root: bool) -> Finding {
    if root {
        Finding::ok(
            "root",
            "running as uid 0 (jobs run as unprivileged per-slot uids)",
        )
    } else {
        Finding::missing(
            "root",
            format!("running as uid {}", sys::euid()),
            "run the worker (and doctor) as root: it writes its slots' cgroups and switches to a \
             per-slot uid before it starts bubblewrap; in a container: user \"0:0\" (no \
             privileged, see docs/native-container.md)",
        )
    }
}

/// Whether root here is the host's root: it is on a bare host; in a
/// container with an unmasked `/proc` (which the sandbox needs) the host's
/// root could write host-wide sysctls, a user namespace of the container's
/// own avoids that (docs/native-container.md).
fn check_own_user_namespace() -> Finding {
    let map = fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    let outer_root = map.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let inner: u64 = fields.next()?.parse().ok()?;
        let outer: u64 = fields.next()?.parse().ok()?;
        let count: u64 = fields.next()?.parse().ok()?;
        (inner == 0 && count >= 1).then_some(outer)
    });
    match outer_root {
        Some(0) | None => Finding::note(
            "user namespace of the worker",
            "root here is the host's root (no user namespace of its own): fine on a bare host; \
             in a container with an unmasked /proc it could write host sysctls -- run it in its \
             own (the native image's entrypoint, userns-remap, Kubernetes hostUsers: false)",
        ),
        Some(outer) => Finding::ok(
            "user namespace of the worker",
            format!("root here is host uid {outer}, not the host's root"),
        ),
    }
}

/// The capabilities the worker uses as root: taking the slot uids, and
/// killing a slot's processes (which run as another uid).
const NEEDED_CAPS: [(u32, &str); 3] = [(5, "KILL"), (6, "SETGID"), (7, "SETUID")];

fn check_capabilities() -> Finding {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    let missing: Vec<&str> = NEEDED_CAPS
        .iter()
        .filter(|(bit, _)| effective & (1 << bit) == 0)
        .map(|(_, name)| *name)
        .collect();
    if missing.is_empty() {
        Finding::ok(
            "capabilities",
            format!("KILL, SETGID, SETUID present (CapEff {effective:016x})"),
        )
    } else {
        Finding::missing(
            "capabilities",
            format!(
                "CAP_{} missing (CapEff {effective:016x})",
                missing.join(", CAP_")
            ),
            format!(
                "grant them to the worker: compose cap_add: [{}] (docker run --cap-add), \
                 Kubernetes securityContext.capabilities.add",
                missing.join(", ")
            ),
        )
    }
}

fn check_bwrap(bwrap: &Path) -> Finding {
    let meta = match fs::metadata(bwrap) {
        Ok(meta) if meta.is_file() => meta,
        _ => return Finding::missing(
            "bubblewrap",
            format!("{} not found", bwrap.display()),
            "apt-get install bubblewrap (Debian/Ubuntu; dnf install bubblewrap on Fedora/RHEL), \
                 or point --bwrap / CODE_RUNNER_BWRAP at it",
        ),
    };
    if meta.permissions().mode() & 0o111 == 0 {
        return Finding::missing(
            "bubblewrap",
            format!("{} is not executable", bwrap.display()),
            format!("chmod 755 {}", bwrap.display()),
        );
    }
    match Command::new(bwrap).arg("--version").output() {
        Ok(out) if out.status.success() => {
            let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            let setuid = if meta.permissions().mode() & 0o4000 != 0 {
                " (setuid: not needed, user namespaces are used)"
            } else {
                ""
            };
            Finding::ok(
                "bubblewrap",
                format!("{} at {}{setuid}", version, bwrap.display()),
            )
        }
        Ok(out) => Finding::missing(
            "bubblewrap",
            format!(
                "{} --version failed: {}",
                bwrap.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            "reinstall bubblewrap (apt-get install --reinstall bubblewrap)",
        ),
        Err(e) => Finding::missing(
            "bubblewrap",
            format!("cannot run {}: {e}", bwrap.display()),
            "reinstall bubblewrap (apt-get install --reinstall bubblewrap)",
        ),
    }
}

fn read_sysctl(path: &str) -> Option<i64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Why an unprivileged `unshare` may have failed, from what can be read.
fn namespace_causes(error: &io::Error) -> String {
    let mut causes = Vec::new();
    if read_sysctl("/proc/sys/user/max_user_namespaces") == Some(0) {
        causes.push(
            "user.max_user_namespaces is 0: sysctl -w user.max_user_namespaces=15000 (on the host)"
                .to_owned(),
        );
    }
    if read_sysctl("/proc/sys/kernel/unprivileged_userns_clone") == Some(0) {
        causes.push("kernel.unprivileged_userns_clone is 0: sysctl -w kernel.unprivileged_userns_clone=1 (on the host)".to_owned());
    }
    if read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == Some(1) {
        causes.push(
            "kernel.apparmor_restrict_unprivileged_userns is 1 (Ubuntu 23.10+): give the worker an \
             AppArmor profile that allows userns (Ubuntu ships bwrap-userns-restrict), or \
             sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 on the host"
                .to_owned(),
        );
    }
    if seccomp_mode() == Some(2) && error.raw_os_error() == Some(libc::EPERM) {
        causes.push(
            "this process is under a seccomp filter (a container's profile; Docker's default \
             refuses unshare and namespace flags without CAP_SYS_ADMIN): run the container with \
             --security-opt seccomp=deploy/native/seccomp.json (Kubernetes: a Localhost \
             seccompProfile with the same rules)"
                .to_owned(),
        );
    }
    if causes.is_empty() {
        causes.push(
            "check the container runtime's seccomp profile (deploy/native/seccomp.json) and the \
             host's user-namespace sysctls"
                .to_owned(),
        );
    }
    causes.join("; or ")
}

fn check_user_namespaces(config: &DoctorConfig, root: bool) -> Vec<Finding> {
    let mut findings = Vec::new();
    if !root {
        findings.push(Finding::note(
            "user namespaces",
            "not probed: the probe runs as the first sandbox uid, which needs root",
        ));
        return findings;
    }
    let uid = config.first_uid;
    let probes = [
        ("user namespace", libc::CLONE_NEWUSER),
        (
            "namespaces in it",
            libc::CLONE_NEWUSER
                | libc::CLONE_NEWNS
                | libc::CLONE_NEWPID
                | libc::CLONE_NEWNET
                | libc::CLONE_NEWIPC
                | libc::CLONE_NEWUTS,
        ),
    ];
    for (what, flags) in probes {
        let check = format!("{what} (as uid {uid})");
        match sys::probe_unshare(&config.probe_program, &["--version"], uid, flags) {
            Ok(status) if status.success() => findings.push(Finding::ok(
                check,
                if flags == libc::CLONE_NEWUSER {
                    "unshare(CLONE_NEWUSER) works".to_owned()
                } else {
                    "user, mount, PID, network, IPC and UTS namespaces can be created".to_owned()
                },
            )),
            Ok(status) => findings.push(Finding::missing(
                check,
                format!("the probe ran but exited with {status}"),
                format!(
                    "run {} --version by hand to see why",
                    config.probe_program.display()
                ),
            )),
            Err(e) => {
                let fix = namespace_causes(&e);
                findings.push(Finding::missing(check, format!("unshare failed: {e}"), fix));
                // The wider probe would fail for the same reason.
                break;
            }
        }
    }
    findings
}

/// Runs bubblewrap the way a slot does (new namespaces, a fresh `/proc`,
/// read-only binds, a read-only root), as the first sandbox uid.
fn check_bwrap_sandbox(config: &DoctorConfig, root: bool) -> Finding {
    let check = "bubblewrap sandbox";
    if !config.bwrap.is_file() {
        return Finding::missing(check, "not tried: no bubblewrap", "see `bubblewrap` above");
    }
    let mut command = Command::new(&config.bwrap);
    command.args([
        "--unshare-user",
        "--unshare-ipc",
        "--unshare-pid",
        "--unshare-uts",
        "--unshare-net",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--ro-bind",
        "/usr",
        "/usr",
    ]);
    for dir in ["bin", "lib", "lib64", "sbin"] {
        let host = Path::new("/").join(dir);
        if let Ok(target) = fs::read_link(&host) {
            command.arg("--symlink").arg(target).arg(format!("/{dir}"));
        } else if host.is_dir() {
            command.arg("--ro-bind").arg(&host).arg(&host);
        }
    }
    command.args([
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
        "--remount-ro",
        "/",
        "--",
        "/usr/bin/test",
        "-d",
        "/proc/self",
    ]);
    command
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if root {
        command.uid(config.first_uid).gid(config.first_uid);
    }
    let out = match command.output() {
        Ok(out) => out,
        Err(e) => {
            return Finding::missing(
                check,
                format!("cannot run {}: {e}", config.bwrap.display()),
                "see `bubblewrap` above",
            )
        }
    };
    if out.status.success() {
        return Finding::ok(
            check,
            "new user, PID, network, IPC, UTS and mount namespaces, a fresh /proc, a read-only root",
        );
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    let fix = if stderr.contains("proc") {
        "the container runtime masks parts of /proc, and the kernel then refuses a fresh /proc in \
         a new user namespace: Docker --security-opt systempaths=unconfined (compose security_opt), \
         Kubernetes securityContext.procMount: Unmasked with hostUsers: false"
    } else if stderr.contains("make / slave") || stderr.contains("mount") {
        "mounts are refused: on an AppArmor host the container's profile (docker-default) denies \
         mount: --security-opt apparmor=unconfined or a profile allowing mount (Kubernetes \
         appArmorProfile); on SELinux hosts a type such as spc_t"
    } else if stderr.contains("uid map") {
        "writing the uid map is refused: kernel.apparmor_restrict_unprivileged_userns=1 (Ubuntu \
         23.10+) needs an AppArmor profile allowing userns (bwrap-userns-restrict) or the sysctl at 0"
    } else if stderr.contains("namespace") || stderr.contains("Operation not permitted") {
        "namespaces are refused: see `user namespace` above (seccomp profile \
         deploy/native/seccomp.json, user-namespace sysctls)"
    } else {
        "run the bubblewrap command of a slot by hand (docs/native-sandbox.md) to see why"
    };
    Finding::missing(check, format!("bubblewrap failed: {stderr}"), fix)
}

fn seccomp_mode() -> Option<u32> {
    fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Seccomp:"))
        .and_then(|v| v.trim().parse().ok())
}

fn check_seccomp() -> Vec<Finding> {
    let mut findings = Vec::new();
    match seccomp_mode() {
        None => findings.push(Finding::missing(
            "seccomp",
            "the kernel reports no seccomp support (no Seccomp: in /proc/self/status)",
            "use a kernel built with CONFIG_SECCOMP and CONFIG_SECCOMP_FILTER (every distribution kernel is)",
        )),
        Some(mode) => {
            match seccomp::SeccompFilters::compile() {
                Ok(_) => findings.push(Finding::ok(
                    "seccomp",
                    "the kernel filters system calls; the sandbox's filter compiles",
                )),
                Err(e) => findings.push(Finding::missing(
                    "seccomp",
                    format!("the sandbox's filter does not compile here: {e}"),
                    "this architecture is not supported by the filter (x86_64 and aarch64 are)",
                )),
            }
            if mode == 2 {
                findings.push(Finding::note(
                    "seccomp (this process)",
                    "already under a filter (a container's profile); the namespace probes show whether it lets the sandbox through",
                ));
            }
        }
    }
    let apparmor = fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .map(|s| s.trim() == "Y")
        .unwrap_or(false);
    let profile = fs::read_to_string("/proc/self/attr/current")
        .map(|s| s.trim().trim_end_matches('\0').to_owned())
        .unwrap_or_default();
    findings.push(Finding::note(
        "apparmor",
        if apparmor {
            format!("enabled; this process's profile: {profile}")
        } else {
            "not enabled on this kernel: nothing to configure".to_owned()
        },
    ));
    findings
}

fn check_cgroups(under: Option<&Path>) -> Vec<Finding> {
    let own = match cgroup::own_cgroups(under) {
        Ok(own) => own,
        Err(e) => {
            return vec![Finding::missing(
                "cgroups",
                format!("cannot read /proc/self/cgroup: {e}"),
                "mount /proc (and use a kernel with cgroups)",
            )]
        }
    };
    let probe = format!("code-runner-doctor-{}", std::process::id());
    match cgroup::CgroupLayout::parents(&own) {
        Err(problem) => vec![Finding::missing(
            "cgroups",
            problem,
            "the worker needs the memory, pids, cpu and cpuacct controllers (v1) or memory, pids \
             and cpu delegated to its cgroup (v2): see docs/native-container.md",
        )],
        Ok(parents) => {
            let mut findings = Vec::new();
            for (what, parent) in parents {
                let check = format!("cgroup {what}");
                let dir = parent.join(&probe);
                match fs::create_dir(&dir).and_then(|()| fs::remove_dir(&dir)) {
                    Ok(()) => findings.push(Finding::ok(
                        check,
                        format!("{} is writable (slot cgroups go there)", parent.display()),
                    )),
                    Err(e) => findings.push(Finding::missing(
                        check,
                        format!("cannot create a cgroup in {}: {e}", parent.display()),
                        if e.raw_os_error() == Some(libc::EROFS) {
                            "the cgroup file system is mounted read-only (as in any unprivileged \
                             container): delegate a subtree instead -- cgroup v1: make \
                             /sys/fs/cgroup/<controller>/code-runner-native/slots on the host \
                             (scripts/native-cgroups.sh up), bind it read-write over \
                             /sys/fs/cgroup/<controller> and set CODE_RUNNER_CGROUP_PATH=/ \
                             (docker-compose.native.yml); cgroup v2: a writable cgroup of the \
                             container's own (containerd cgroup_writable, systemd Delegate=yes)"
                        } else {
                            "run as root, or delegate the subtree to the worker's user \
                             (systemd: Delegate=yes; chown the directory and its cgroup.procs)"
                        },
                    )),
                }
            }
            findings
        }
    }
}

fn check_uid_leases(dir: &Path) -> Finding {
    match fs::create_dir_all(dir) {
        Ok(()) => {
            let probe = dir.join(format!(".doctor-{}", std::process::id()));
            match fs::write(&probe, b"").and_then(|()| fs::remove_file(&probe)) {
                Ok(()) => Finding::ok("uid leases", format!("{} is writable", dir.display())),
                Err(e) => Finding::missing(
                    "uid leases",
                    format!("cannot write in {}: {e}", dir.display()),
                    "give the worker a writable /run (a tmpfs on a read-only container: tmpfs: [/run])",
                ),
            }
        }
        Err(e) => Finding::missing(
            "uid leases",
            format!("cannot create {}: {e}", dir.display()),
            "give the worker a writable /run (a tmpfs on a read-only container: tmpfs: [/run])",
        ),
    }
}

/// The Debian package that usually provides a toolchain binary.
fn package_of(binary: &Path) -> Option<&'static str> {
    let name = binary.file_name()?.to_str()?;
    Some(match name {
        n if n.starts_with("python3") => "python3",
        "node" | "nodejs" => "nodejs",
        "java" | "javac" => "openjdk-17-jdk-headless",
        "gcc" => "gcc libc6-dev",
        "g++" => "g++",
        _ => return None,
    })
}

fn check_languages(languages: &LanguageTable) -> Vec<Finding> {
    let mut findings = Vec::new();
    for language in languages.iter() {
        let check = format!("language {}", language.name);
        let mut problems = Vec::new();
        let mut fixes = Vec::new();
        let commands = language
            .compile
            .iter()
            .chain(std::iter::once(&language.run));
        let mut seen = Vec::new();
        for argv in commands {
            let Some(program) = argv.first().map(PathBuf::from) else {
                continue;
            };
            // `./main` is what the compile step makes, inside the sandbox.
            if !program.is_absolute() || seen.contains(&program) {
                continue;
            }
            let executable = fs::metadata(&program)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false);
            if !executable {
                problems.push(format!("{} is missing", program.display()));
                fixes.push(match package_of(&program) {
                    Some(package) => format!("apt-get install {package}"),
                    None => format!("install {}", program.display()),
                });
            }
            seen.push(program);
        }
        for mount in &language.mounts {
            if !mount.exists() {
                problems.push(format!(
                    "{} (bound into its sandbox) is missing",
                    mount.display()
                ));
            }
        }
        if problems.is_empty() {
            findings.push(Finding::ok(
                check,
                seen.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            ));
        } else {
            fixes.push(
                "or drop the language from the table given with --languages / CODE_RUNNER_LANGUAGES"
                    .to_owned(),
            );
            findings.push(Finding::missing(
                check,
                problems.join("; "),
                fixes.join(", "),
            ));
        }
    }
    findings
}

/// The findings as text, one check a line, with the fix under each missing one.
pub fn render(findings: &[Finding]) -> String {
    let width = findings.iter().map(|f| f.check.len()).max().unwrap_or(0);
    let mut out = String::new();
    for finding in findings {
        let status = match finding.status {
            Status::Ok => "ok",
            Status::Missing => "MISSING",
            Status::Note => "note",
        };
        out.push_str(&format!(
            "{status:<8} {:<width$}  {}\n",
            finding.check, finding.detail
        ));
        if let Some(fix) = &finding.fix {
            out.push_str(&format!("{:<8} {:<width$}  fix: {fix}\n", "", ""));
        }
    }
    let missing = findings
        .iter()
        .filter(|f| f.status == Status::Missing)
        .count();
    if missing == 0 {
        out.push_str("everything the native sandbox needs is here\n");
    } else {
        out.push_str(&format!(
            "{missing} required check(s) failed: the native worker cannot run here\n"
        ));
    }
    out
}
