//! The system calls the worker side of the native backend makes directly:
//! confining bubblewrap between `fork` and `exec`, and passing descriptors
//! to a slot's keeper. (The keeper's own are in `keeper::sys`.)
//!
//! This is the only module of the crate allowed `unsafe`. The code that runs
//! after `fork` in a multi-threaded process must not allocate or lock, so
//! everything it needs (paths, file descriptors, numbers) is prepared before
//! the fork and it only makes raw system calls.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

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

/// Whether `fd`, a socket, has something to read now (`MSG_PEEK`: nothing
/// is taken from it, and it does not wait).
pub(crate) fn readable_now(fd: RawFd) -> bool {
    let mut byte = 0u8;
    // SAFETY: recv(2) into a valid one-byte buffer; MSG_PEEK leaves the
    // data in the socket.
    let peeked = unsafe {
        libc::recv(
            fd,
            std::ptr::addr_of_mut!(byte).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    peeked > 0
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

/// The most descriptors one message carries: a step's stdin, stdout and
/// stderr, and a checker step's three test files; or a prefork request's
/// eight (see `keeper::prefork`).
pub(crate) const MAX_PASSED_FDS: usize = 8;

/// An anonymous in-memory file (`memfd_create`, close-on-exec) holding
/// `bytes`, for the keeper to copy into a step's directory.
pub(crate) fn memfd_with(name: &std::ffi::CStr, bytes: &[u8]) -> io::Result<OwnedFd> {
    use std::io::Write;
    // SAFETY: `name` is a valid NUL-terminated string.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor owned by no one else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes)?;
    Ok(file.into())
}

/// The whole text of a kernel-generated file (a cgroup control file, a
/// `/proc` file), read in one `pread` from its start so that it is one
/// snapshot: a second read at another offset could start a new one. The
/// buffer grows, and the file is read again, until a read leaves room to
/// spare; past 1 MiB it is an error.
pub(crate) fn read_snapshot(file: &std::fs::File) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut buffer = vec![0u8; 8 << 10];
    loop {
        match file.read_at(&mut buffer, 0) {
            Ok(n) if n < buffer.len() => {
                buffer.truncate(n);
                return Ok(buffer);
            }
            Ok(_) if buffer.len() < 1 << 20 => buffer.resize(buffer.len() * 2, 0),
            Ok(_) => return Err(io::Error::other("a file of more than 1 MiB")),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Sends `bytes` on the stream socket `socket` with `fds` attached to them
/// (`SCM_RIGHTS`); returns how many bytes went out. The descriptors travel
/// with the first byte, so a short write still delivered them.
pub(crate) fn send_with_fds(socket: RawFd, bytes: &[u8], fds: &[RawFd]) -> io::Result<usize> {
    assert!(fds.len() <= MAX_PASSED_FDS);
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr().cast_mut().cast(),
        iov_len: bytes.len(),
    };
    let mut control = [0u64; 8];
    // SAFETY: zeroed msghdr is valid; every pointer set below outlives the call.
    let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
    header.msg_iov = &mut iov;
    header.msg_iovlen = 1;
    if !fds.is_empty() {
        let data_len = std::mem::size_of_val(fds) as u32;
        // SAFETY: CMSG_* compute sizes and walk `control`, which is large
        // enough (and aligned) for one header with MAX_PASSED_FDS descriptors.
        unsafe {
            header.msg_control = control.as_mut_ptr().cast();
            header.msg_controllen = libc::CMSG_SPACE(data_len) as usize;
            let cmsg = libc::CMSG_FIRSTHDR(&header);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(data_len) as usize;
            std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(cmsg).cast(), fds.len());
        }
    }
    // SAFETY: `header` describes valid buffers.
    let sent = unsafe { libc::sendmsg(socket, &header, libc::MSG_NOSIGNAL) };
    if sent < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(sent as usize)
    }
}

/// Receives into `buffer` from the stream socket `socket`, with any
/// descriptors attached (opened close-on-exec). `Ok((0, _))` is end of stream.
pub(crate) fn recv_with_fds(socket: RawFd, buffer: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut fds = Vec::new();
    let (received, truncated) = recv_each_fd(socket, buffer, |fd| fds.push(fd))?;
    if truncated {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "too many descriptors in one message",
        ));
    }
    Ok((received, fds))
}

/// Receives one message into `buffer` from `socket` (a stream or
/// sequenced-packet socket) and hands each descriptor attached to it
/// (opened close-on-exec) to `take`; returns how many bytes came (0 at the
/// end of the stream) and whether the kernel dropped descriptors for want
/// of room (`MSG_CTRUNC`: more than `MAX_PASSED_FDS`). Allocates nothing
/// itself: a step's init, which must not, waits for its step with it.
pub(crate) fn recv_each_fd(
    socket: RawFd,
    buffer: &mut [u8],
    mut take: impl FnMut(OwnedFd),
) -> io::Result<(usize, bool)> {
    let mut iov = libc::iovec {
        iov_base: buffer.as_mut_ptr().cast(),
        iov_len: buffer.len(),
    };
    let mut control = [0u64; 8];
    // SAFETY: zeroed msghdr is valid; every pointer set below outlives the call.
    let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
    header.msg_iov = &mut iov;
    header.msg_iovlen = 1;
    header.msg_control = control.as_mut_ptr().cast();
    header.msg_controllen = std::mem::size_of_val(&control);
    let received = loop {
        // SAFETY: `header` describes valid buffers.
        let n = unsafe { libc::recvmsg(socket, &mut header, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    };
    // SAFETY: the kernel filled `control` with `msg_controllen` bytes of
    // well-formed control messages; SCM_RIGHTS data is an array of ints,
    // each a new descriptor this process now owns.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&header);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                let count =
                    ((*cmsg).cmsg_len - libc::CMSG_LEN(0) as usize) / std::mem::size_of::<RawFd>();
                for i in 0..count {
                    take(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&header, cmsg);
        }
    }
    Ok((received, header.msg_flags & libc::MSG_CTRUNC != 0))
}

/// For `doctor`: runs `program args` as host uid `uid` (no groups) after
/// `unshare(flags)` in the child, the way bubblewrap starts a slot; the
/// error is the one `unshare` (or the uid drop) gave.
pub(crate) fn probe_unshare(
    program: &std::path::Path,
    args: &[&str],
    uid: u32,
    flags: libc::c_int,
) -> io::Result<std::process::ExitStatus> {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(program);
    command
        .args(args)
        .env_clear()
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: the closure makes only async-signal-safe system calls on
    // plain integers; it neither allocates nor locks.
    unsafe {
        command.pre_exec(move || {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setresgid(uid, uid, uid) != 0
                || libc::setresuid(uid, uid, uid) != 0
                || libc::unshare(flags) != 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.status()
}

/// Makes the calling thread `SCHED_BATCH`, and with it every thread and
/// process it starts from now on (both inherit the policy): such a thread,
/// woken while another runs on its core, does not preempt it but waits for
/// the running one's next scheduling point. Called on the main thread before
/// the runtime starts.
pub(crate) fn schedule_as_batch() -> io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: a system call on the calling thread with a valid pointer.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_now_peeks_without_taking_or_waiting() {
        use std::io::{Read, Write};
        let (mut ours, mut theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        // Nothing sent: not readable, and the call did not block.
        assert!(!readable_now(ours.as_raw_fd()));
        theirs.write_all(b"answer").unwrap();
        assert!(readable_now(ours.as_raw_fd()));
        // Peeking took nothing: the whole answer is still there.
        assert!(readable_now(ours.as_raw_fd()));
        let mut answer = [0u8; 6];
        ours.read_exact(&mut answer).unwrap();
        assert_eq!(&answer, b"answer");
        assert!(!readable_now(ours.as_raw_fd()));
        // A closed peer is not an answer either (the keeper gone: the
        // slot's clear then fails when the job reads it).
        drop(theirs);
        assert!(!readable_now(ours.as_raw_fd()));
    }
}
