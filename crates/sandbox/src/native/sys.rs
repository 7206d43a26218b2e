//! The system calls the native backend makes directly: mounting a job's
//! scratch tmpfs, and confining bubblewrap between `fork` and `exec`.
//!
//! This is the only module of the crate allowed `unsafe`. The code that runs
//! after `fork` in a multi-threaded process must not allocate or lock, so
//! everything it needs (paths, file descriptors, numbers) is prepared before
//! the fork and it only makes raw system calls.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Mounts a fresh tmpfs of `size_bytes` at `target`, owned by `uid`, for one job.
pub(crate) fn mount_tmpfs(target: &Path, size_bytes: u64, inodes: u64, uid: u32) -> io::Result<()> {
    let target = cstring(target)?;
    let options = CString::new(format!(
        "size={size_bytes},nr_inodes={inodes},mode=0700,uid={uid},gid={uid}"
    ))
    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: every pointer is a valid NUL-terminated string that outlives the call.
    let rc = unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            target.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            options.as_ptr().cast(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Detaches the tmpfs at `target`. The kernel frees its files without anyone
/// walking them, so links a job planted there are never followed.
pub(crate) fn unmount(target: &Path) -> io::Result<()> {
    let target = cstring(target)?;
    // SAFETY: `target` is a valid NUL-terminated string.
    let rc = unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

/// One resource limit to set in the child: `(resource, soft, hard)`.
pub(crate) type Rlimit = (libc::__rlimit_resource_t, u64, u64);

/// What the child does between `fork` and `exec`, in this order: join the
/// step's cgroups (while still root), set rlimits, drop every group and take
/// the slot's unprivileged uid and gid. bubblewrap then creates the user
/// namespace as that uid, so nothing inside maps to host root.
pub(crate) struct Confinement {
    /// Open `tasks` (v1) or `cgroup.procs` (v2) files of the step's cgroups.
    /// Writing "0" to a v1 `tasks` file moves only the calling thread and so
    /// skips the global lock whose RCU wait makes a `cgroup.procs` write cost
    /// milliseconds; right after fork the child has a single thread anyway.
    pub cgroup_fds: Vec<OwnedFd>,
    /// Descriptors bubblewrap must inherit (the seccomp filters), opened
    /// close-on-exec so that no other child of the worker gets them.
    pub inherited_fds: Vec<OwnedFd>,
    pub rlimits: Vec<Rlimit>,
    pub uid: u32,
}

impl Confinement {
    /// Installs the confinement as `command`'s pre-exec hook.
    pub(crate) fn install(self, command: &mut tokio::process::Command) {
        let Confinement {
            cgroup_fds,
            inherited_fds,
            rlimits,
            uid,
        } = self;
        // SAFETY: the closure only makes async-signal-safe system calls on
        // data prepared before the fork; it neither allocates nor locks.
        unsafe {
            command.pre_exec(move || {
                for fd in &cgroup_fds {
                    if libc::write(fd.as_raw_fd(), b"0".as_ptr().cast(), 1) != 1 {
                        return Err(io::Error::last_os_error());
                    }
                }
                for fd in &inherited_fds {
                    if libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, 0) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                for &(resource, soft, hard) in &rlimits {
                    let limit = libc::rlimit {
                        rlim_cur: soft,
                        rlim_max: hard,
                    };
                    if libc::setrlimit(resource, &limit) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setresgid(uid, uid, uid) != 0
                    || libc::setresuid(uid, uid, uid) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

/// Sends SIGKILL to `pid`; a process that is already gone is not an error.
pub(crate) fn kill(pid: i32) {
    if pid > 0 {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

/// The effective uid of this process.
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid(2) cannot fail and has no preconditions.
    unsafe { libc::geteuid() }
}
