//! The raw system calls of the keeper and of the step processes it starts:
//! namespaces, mounts, capabilities, seccomp and `exec`.
//!
//! The keeper is single-threaded, so its children may allocate after `fork`;
//! still, everything a child needs is prepared by the caller and these
//! wrappers only translate return codes into `io::Result`.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

fn check(rc: libc::c_long) -> io::Result<libc::c_long> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// A fork-like `clone` into new PID, mount, IPC and UTS namespaces: the
/// child is PID 1 of its own namespace. Returns 0 in the child.
pub(super) fn clone_into_namespaces() -> io::Result<libc::pid_t> {
    let flags = libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
    // SAFETY: with a null stack, clone behaves like fork: the child continues
    // on a copy of this (single-threaded) process's stack.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    check(rc).map(|pid| pid as libc::pid_t)
}

/// `fork`; returns 0 in the child.
pub(super) fn fork() -> io::Result<libc::pid_t> {
    // SAFETY: the keeper is single-threaded.
    check(unsafe { libc::fork() } as libc::c_long).map(|pid| pid as libc::pid_t)
}

pub(super) fn mount(
    source: &CStr,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> io::Result<()> {
    // SAFETY: every pointer is null or a valid NUL-terminated string.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.map_or(std::ptr::null(), CStr::as_ptr),
            flags,
            data.map_or(std::ptr::null(), |d| d.as_ptr().cast()),
        )
    };
    check(rc.into()).map(drop)
}

/// Detaches the mount at `target`; its files are freed without being walked.
pub(super) fn detach(target: &CStr) -> io::Result<()> {
    // SAFETY: `target` is a valid NUL-terminated string.
    check(unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) }.into()).map(drop)
}

pub(super) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }.into())?;
    // SAFETY: both descriptors were just created and are owned by no one else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub(super) fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open has no memory preconditions.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: a new descriptor owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Waits until one of `fds` is readable (or hung up); true for each that is.
pub(super) fn poll_readable<const N: usize>(fds: [RawFd; N]) -> io::Result<[bool; N]> {
    let mut polled = fds.map(|fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    });
    loop {
        // SAFETY: `polled` is a valid array of N pollfd.
        let rc = unsafe { libc::poll(polled.as_mut_ptr(), N as libc::nfds_t, -1) };
        if rc >= 0 {
            return Ok(polled.map(|p| p.revents != 0));
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// Reaps `pid`: its wait status and the CPU time of it and every child it
/// reaped, in microseconds.
pub(super) fn wait_with_usage(pid: libc::pid_t) -> io::Result<(i32, u64)> {
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid value; wait4 fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both out-pointers are valid.
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc == pid {
            break;
        }
        let error = io::Error::last_os_error();
        if rc >= 0 || error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Ok((status, micros(usage.ru_utime) + micros(usage.ru_stime)))
}

/// Waits for any child; `None` when there are none left.
pub(super) fn wait_any() -> Option<(libc::pid_t, i32)> {
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid > 0 {
            return Some((pid, status));
        }
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return None;
        }
    }
}

pub(super) fn kill(pid: libc::pid_t) {
    if pid > 0 {
        // SAFETY: kill has no memory preconditions.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Dies with SIGKILL when the parent does.
pub(super) fn die_with_parent() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) }.into())
        .map(drop)
}

pub(super) fn setsid() -> io::Result<()> {
    // SAFETY: no preconditions.
    check(unsafe { libc::setsid() }.into()).map(drop)
}

/// Makes `fd` the descriptor number `target` (without close-on-exec).
pub(super) fn dup_to(fd: &OwnedFd, target: RawFd) -> io::Result<()> {
    // SAFETY: dup2 on a valid descriptor.
    check(unsafe { libc::dup2(fd.as_raw_fd(), target) }.into()).map(drop)
}

/// Closes every descriptor from `first` up.
pub(super) fn close_from(first: RawFd) {
    // SAFETY: closing descriptors this process no longer uses; callers own
    // nothing at or above `first` that they touch afterwards.
    unsafe { libc::syscall(libc::SYS_close_range, first as libc::c_uint, u32::MAX, 0) };
}

pub(super) fn set_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor number; an invalid one gives EBADF.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) }.into()).map(drop)
}

pub(super) fn chdir(path: &CStr) -> io::Result<()> {
    // SAFETY: `path` is a valid NUL-terminated string.
    check(unsafe { libc::chdir(path.as_ptr()) }.into()).map(drop)
}

pub(super) fn setrlimit(resource: u32, soft: u64, hard: u64) -> io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `limit` is a valid rlimit.
    check(unsafe { libc::setrlimit(resource as libc::__rlimit_resource_t, &limit) }.into())
        .map(drop)
}

/// Drops every capability for good: the bounding and ambient sets, then the
/// effective, permitted and inheritable ones; then sets no_new_privs, so no
/// exec can give any back.
pub(super) fn drop_all_capabilities() -> io::Result<()> {
    // SAFETY: prctl and capset with integer arguments and valid structs.
    unsafe {
        for cap in 0..64 {
            // EINVAL past the kernel's last capability: nothing to drop there.
            libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0);
        }
        check(
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
                0,
                0,
                0,
            )
            .into(),
        )?;
        #[repr(C)]
        struct Header {
            version: u32,
            pid: i32,
        }
        #[repr(C)]
        #[derive(Clone, Copy)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        const VERSION_3: u32 = 0x2008_0522;
        let header = Header {
            version: VERSION_3,
            pid: 0,
        };
        let data = [Data {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }; 2];
        check(libc::syscall(libc::SYS_capset, &header, data.as_ptr()))?;
        check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0).into())?;
    }
    Ok(())
}

/// Installs one seccomp filter program on this thread.
pub(super) fn install_filter(program: &[libc::sock_filter]) -> io::Result<()> {
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `fprog` points at `program`, valid for the call.
    check(
        unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER as libc::c_ulong,
                &fprog as *const libc::sock_fprog,
            )
        }
        .into(),
    )
    .map(drop)
}

/// Replaces this process with `argv`; returns only on failure.
pub(super) fn execve(argv: &[CString], envp: &[CString]) -> io::Error {
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|e| e.as_ptr()).collect();
    envp_ptrs.push(std::ptr::null());
    // SAFETY: both arrays are NULL-terminated arrays of valid strings.
    unsafe { libc::execve(argv_ptrs[0], argv_ptrs.as_ptr(), envp_ptrs.as_ptr()) };
    io::Error::last_os_error()
}

/// Writes all of `bytes` to `fd`, ignoring failures (used on the way out).
pub(super) fn write_raw(fd: RawFd, bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        // SAFETY: `rest` is valid for its length.
        let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        if n <= 0 {
            return;
        }
        rest = &rest[n as usize..];
    }
}

/// Ends this process at once, without running destructors or atexit hooks
/// (which belong to the keeper, not to its copy).
pub(super) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// Takes ownership of an inherited descriptor, checking that it is open.
pub(super) fn inherited_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_GETFD only queries the descriptor.
    check(unsafe { libc::fcntl(fd, libc::F_GETFD) }.into())?;
    // SAFETY: the descriptor is open and handed to this process to own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Moves the keeper into a mount namespace of its own user namespace.
pub(super) fn unshare_mounts() -> io::Result<()> {
    // SAFETY: unshare has no memory preconditions.
    check(unsafe { libc::unshare(libc::CLONE_NEWNS) }.into()).map(drop)
}

/// Gives the program default signal dispositions and an empty signal mask:
/// what it would get from a shell, not what the keeper's runtime set (Rust
/// ignores SIGPIPE, and `execve` keeps ignored signals ignored).
pub(super) fn reset_signals() {
    // SAFETY: signal and sigprocmask with valid arguments; numbers the
    // kernel or libc refuses (SIGKILL, SIGSTOP, libc's own) just fail.
    unsafe {
        for signal in 1..libc::SIGRTMAX() {
            libc::signal(signal, libc::SIG_DFL);
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
}

/// Makes this process's `/proc` entries root's, so that the program cannot
/// open or change them (its `oom_score_adj`, say), though it runs as the
/// same uid.
pub(super) fn not_dumpable() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    check(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) }.into()).map(drop)
}
