//! The raw system calls of the keeper and of the step processes it starts:
//! namespaces, mounts, capabilities, seccomp and `exec`.
//!
//! A step's init and program share the keeper's memory (see
//! `clone_into_namespaces`) and must allocate nothing: everything they need
//! is prepared by the caller, and these wrappers only translate return
//! codes into `io::Result` (`write_failure` reports an error without
//! `io::Error`'s allocating `Display`).
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};

fn check(rc: libc::c_long) -> io::Result<libc::c_long> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Starts `child` as PID 1 of new PID, mount, IPC and UTS namespaces,
/// sharing this process's memory (`CLONE_VM`) but nothing else: its own
/// descriptor table, file system root and directory, signal handlers and
/// credentials, as after `fork`. No copy of this process's page tables is
/// made for it, and none is torn down at its end, and neither process pays
/// copy-on-write faults on the other's account.
///
/// `child` itself is moved to the top of `stack`, where the child finds it:
/// nothing of this call's frame is read after it returns. Unlike
/// [`spawn_sharing_memory`], this process goes on at once, in the same
/// memory as the child, so `child` must allocate nothing (this process's
/// allocator takes no locks: it believes itself single-threaded), write
/// nothing this process owns, and read only what this process keeps alive
/// and unchanged until it has reaped the child. `stack` must stay mapped
/// until then too. `child` ends with `_exit` (one that returns exits with
/// 127). The two share the thread-local `errno`, so the child's failing
/// calls may change the `errno` this process is about to read, and the
/// other way round: the child's path makes none it can avoid.
pub(super) fn clone_into_namespaces<F: FnOnce()>(
    stack: &mut ChildStack,
    child: F,
) -> io::Result<libc::pid_t> {
    extern "C" fn trampoline<F: FnOnce()>(arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: `arg` is where `child` was moved, at the top of this
        // process's own stack, read once.
        let child = unsafe { arg.cast::<F>().read() };
        child();
        exit_now(127)
    }
    assert!(
        std::mem::size_of::<F>() <= 256 && std::mem::align_of::<F>() <= 16,
        "a small closure"
    );
    // The closure goes at the top of the child's stack, 16-byte aligned;
    // the child's frames start below it.
    let slot = (stack.top() as usize - 256) as *mut F;
    // SAFETY: the top 256 bytes of the stack's mapping, aligned, room for
    // `child` (checked above), unused by anyone while no child runs on it.
    unsafe { slot.write(child) };
    let flags = libc::CLONE_VM
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS
        | libc::SIGCHLD;
    // SAFETY: the child runs `trampoline` on its own stack; what it may
    // touch of this process's memory is the caller's contract (see above).
    let pid = unsafe { libc::clone(trampoline::<F>, slot.cast(), flags, slot.cast()) };
    if pid < 0 {
        let error = io::Error::last_os_error();
        // SAFETY: no child took it: it is still ours to drop, once.
        drop(unsafe { slot.read() });
        return Err(error);
    }
    Ok(pid)
}

/// The stack a child started by [`spawn_sharing_memory`] runs on: its own
/// mapping, with an inaccessible page below it, so that an overflow faults
/// rather than writing over the parent's memory.
pub(super) struct ChildStack {
    base: *mut libc::c_void,
    len: usize,
}

/// The address ranges of the stacks made by [`ChildStack::new`] (at most
/// two: the keeper's init and program stacks), as (start, end) pairs.
static CHILD_STACKS: [(AtomicUsize, AtomicUsize); 2] = [
    (AtomicUsize::new(0), AtomicUsize::new(0)),
    (AtomicUsize::new(0), AtomicUsize::new(0)),
];

/// Whether this code runs on one of the [`ChildStack`]s: in a step's init
/// or program, not the keeper.
pub(super) fn on_child_stack() -> bool {
    let local = 0u8;
    let here = std::hint::black_box(&local) as *const u8 as usize;
    CHILD_STACKS.iter().any(|(start, end)| {
        (start.load(Ordering::Relaxed)..end.load(Ordering::Relaxed)).contains(&here)
    })
}

impl ChildStack {
    pub(super) fn new(size: usize) -> io::Result<Self> {
        let page = 4096;
        let len = size.next_multiple_of(page) + page;
        // SAFETY: a fresh anonymous private mapping; no memory is aliased.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = Self { base, len };
        // SAFETY: the lowest page of the mapping just made.
        check(unsafe { libc::mprotect(base, page, libc::PROT_NONE) }.into())?;
        if let Some((start, end)) = CHILD_STACKS
            .iter()
            .find(|(start, _)| start.load(Ordering::Relaxed) == 0)
        {
            start.store(base as usize, Ordering::Relaxed);
            end.store(base as usize + len, Ordering::Relaxed);
        }
        Ok(stack)
    }

    /// The highest address, 16-byte aligned (the stack grows down).
    fn top(&self) -> *mut libc::c_void {
        ((self.base as usize + self.len) & !15) as *mut libc::c_void
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// Starts `child` in a new process that shares this one's memory until it
/// execs or exits, as `posix_spawn` does (`CLONE_VM | CLONE_VFORK`): no
/// copy of this process's page tables is made for a process that is about
/// to exec, and none is torn down at its exec. This process sleeps
/// meanwhile; `child` runs on `stack` and should end in `execve` or `_exit`
/// (one that returns exits with 127), allocating nothing on its way there,
/// not even to report a failure: when this process is a step's init, the
/// keeper runs on in the same memory.
pub(super) fn spawn_sharing_memory(
    stack: &mut ChildStack,
    child: &mut dyn FnMut(),
) -> io::Result<libc::pid_t> {
    extern "C" fn trampoline(arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: `arg` is the `&mut &mut dyn FnMut` passed below, alive
        // while this process sleeps in clone.
        let child = unsafe { &mut *arg.cast::<&mut dyn FnMut()>() };
        child();
        exit_now(127)
    }
    let mut child = child;
    // SAFETY: the child runs `trampoline` on its own stack, and this process
    // does not run until the child has exec'd or exited (CLONE_VFORK).
    let pid = unsafe {
        libc::clone(
            trampoline,
            stack.top(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&mut child as *mut &mut dyn FnMut()).cast(),
        )
    };
    check(pid.into()).map(|pid| pid as libc::pid_t)
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

/// Sends `signal` to the process `pid` and to its process group (the
/// program is a session leader; what it started shares its group).
pub(super) fn signal(pid: libc::pid_t, signal: i32) {
    if pid > 0 {
        // SAFETY: kill has no memory preconditions.
        unsafe {
            libc::kill(-pid, signal);
            libc::kill(pid, signal);
        }
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

/// Closes every descriptor from `first` up: with `close_range` where the
/// kernel has it (Linux 5.9 and later), else one `close` per descriptor
/// number the process may hold. An error means some may still be open, and
/// the caller must not go on to run a program.
pub(super) fn close_from(first: RawFd) -> io::Result<()> {
    // SAFETY: closing descriptors this process no longer uses; callers own
    // nothing at or above `first` that they touch afterwards.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first as libc::c_uint, u32::MAX, 0) };
    if rc == 0 {
        return Ok(());
    }
    let error = io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::ENOSYS) | Some(libc::EINVAL) | Some(libc::EPERM) => close_each_from(first),
        _ => Err(error),
    }
}

/// `close_from` without `close_range`: every number below the descriptor
/// limit (the hard one: a soft limit lowered later leaves higher ones open).
fn close_each_from(first: RawFd) -> io::Result<()> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid out-pointer.
    check(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }.into())?;
    let end = limit.rlim_max.max(limit.rlim_cur).min(1 << 20) as RawFd;
    for fd in first.max(0)..end {
        // SAFETY: as above; EBADF for numbers not open is expected.
        unsafe { libc::close(fd) };
    }
    Ok(())
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

/// Drops the capability bounding set: no exec of this process or its
/// children can gain a capability again: this is the one place it is
/// dropped (every step's init and program inherit it). Its current
/// capabilities stay
/// (the keeper's, to make mounts and namespaces). Each drop makes new
/// credentials, so done once in the keeper rather than in every program.
pub(super) fn drop_bounding_set() -> io::Result<()> {
    for cap in 0..64u32 {
        // SAFETY: prctl with integer arguments only.
        match unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(cap), 0, 0, 0) } {
            // EINVAL past the kernel's last capability; anything else (or
            // at capability 0) means the set could not be read: refuse to
            // run with it unknown.
            rc if rc < 0 => {
                let error = io::Error::last_os_error();
                if cap > 0 && error.raw_os_error() == Some(libc::EINVAL) {
                    break;
                }
                return Err(error);
            }
            0 => {}
            // SAFETY: as above.
            _ => check(
                unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) }
                    .into(),
            )
            .map(drop)?,
        }
    }
    Ok(())
}

/// Drops every capability for good: the ambient set, then the effective,
/// permitted and inheritable ones; then sets no_new_privs, so no exec can
/// give any back. The bounding set is the keeper's, emptied once at its
/// start (`drop_bounding_set`) and inherited: it can only shrink, so there
/// is nothing left in it to drop (the attack suite reads it from inside).
pub(super) fn drop_all_capabilities() -> io::Result<()> {
    // SAFETY: prctl and capset with integer arguments and valid structs.
    unsafe {
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

/// `execve`'s argument and environment arrays, NULL-terminated, pointing
/// into strings their owner keeps alive and unchanged.
pub(super) struct ExecArrays {
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

impl ExecArrays {
    /// Arrays pointing into `argv` and `envp` (whose heap buffers must
    /// outlive them; moving the `Vec`s or `CString`s does not move those).
    pub(super) fn new(argv: &[CString], envp: &[CString]) -> Self {
        let array = |strings: &[CString]| {
            strings
                .iter()
                .map(|s| s.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        Self {
            argv: array(argv),
            envp: array(envp),
        }
    }

    /// `execve`, allocating nothing; returns only on failure.
    pub(super) fn execve(&self) -> io::Error {
        // SAFETY: both arrays are NULL-terminated arrays of valid strings
        // (see `new`), and argv has at least its terminator.
        unsafe { libc::execve(self.argv[0], self.argv.as_ptr(), self.envp.as_ptr()) };
        io::Error::last_os_error()
    }
}

/// `execve` of `argv` with `envp`; returns only on failure.
pub(super) fn execve(argv: &[CString], envp: &[CString]) -> io::Error {
    ExecArrays::new(argv, envp).execve()
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

/// Writes `contents` to the existing file `path` with one `write`,
/// allocating nothing (for `/proc` and `/sys` files).
pub(super) fn write_file(path: &CStr, contents: &[u8]) -> io::Result<()> {
    // SAFETY: `path` is a valid NUL-terminated string.
    let fd = check(unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) }.into())?
        as RawFd;
    // SAFETY: `contents` is valid for its length.
    let written = unsafe { libc::write(fd, contents.as_ptr().cast(), contents.len()) };
    let result = match written {
        n if n < 0 => Err(io::Error::last_os_error()),
        n if n as usize != contents.len() => Err(io::ErrorKind::WriteZero.into()),
        _ => Ok(()),
    };
    // SAFETY: the descriptor opened above, closed once.
    unsafe { libc::close(fd) };
    result
}

/// Writes `parts`, then `error` as `io::Error` displays it ("No such file
/// or directory (os error 2)"), then a newline to `fd`, allocating nothing
/// (`io::Error`'s own `Display` allocates the OS's message).
pub(super) fn write_failure(fd: RawFd, parts: &[&[u8]], error: &io::Error) {
    use std::fmt::Write as _;
    /// A `fmt::Write` into a fixed buffer that drops what does not fit.
    struct Buffer {
        bytes: [u8; 512],
        len: usize,
    }
    impl Buffer {
        fn push(&mut self, bytes: &[u8]) {
            let n = bytes.len().min(self.bytes.len() - self.len);
            self.bytes[self.len..self.len + n].copy_from_slice(&bytes[..n]);
            self.len += n;
        }
    }
    impl std::fmt::Write for Buffer {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.push(s.as_bytes());
            Ok(())
        }
    }
    let mut buffer = Buffer {
        bytes: [0; 512],
        len: 0,
    };
    for part in parts {
        buffer.push(part);
    }
    match error.raw_os_error() {
        Some(code) => {
            let mut message = [0 as libc::c_char; 256];
            // SAFETY: `message` has room for its length; the XSI strerror_r
            // (the libc crate's) NUL-terminates what it writes.
            let rc = unsafe { libc::strerror_r(code, message.as_mut_ptr(), message.len()) };
            if rc == 0 {
                // SAFETY: NUL-terminated by strerror_r.
                let text = unsafe { CStr::from_ptr(message.as_ptr()) };
                buffer.push(text.to_bytes());
            }
            let _ = write!(buffer, " (os error {code})");
        }
        None => {
            let _ = write!(buffer, "{}", error.kind());
        }
    }
    buffer.push(b"\n");
    write_raw(fd, &buffer.bytes[..buffer.len]);
}

/// Ends this process at once, without running destructors or atexit hooks
/// (which belong to the keeper, whose memory a step's processes share).
pub(super) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// Lets the kernel reap this process's children (and those it adopts) as
/// they end, with no zombie left for anyone to wait for.
pub(super) fn ignore_children() {
    // SAFETY: setting a disposition, no memory preconditions.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
}

/// Whether the child `pid` has ended (reaping it if so); never blocks.
pub(super) fn reaped(pid: libc::pid_t) -> bool {
    let mut status = 0;
    // SAFETY: a valid out-pointer; WNOHANG never blocks.
    unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) != 0 }
}

/// Waits for the child `pid` to end and reaps it.
pub(super) fn reap(pid: libc::pid_t) {
    let mut status = 0;
    loop {
        // SAFETY: a valid out-pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
}

/// A connected pair of Unix sequenced-packet sockets (close-on-exec).
pub(super) fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    check(rc.into())?;
    // SAFETY: both descriptors were just created and are owned by no one else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Waits for one message on the sequenced-packet socket `socket` and takes
/// the descriptors attached to it (opened close-on-exec) into `fds`;
/// returns how many came, 0 when the other end closed (more than `N` is an
/// error, and none is kept). Allocates nothing: a step's init waiting for
/// its step calls it.
pub(super) fn receive_fds<const N: usize>(
    socket: RawFd,
    fds: &mut [Option<OwnedFd>; N],
) -> io::Result<usize> {
    let mut byte = [0u8; 1];
    let mut count = 0;
    let (received, truncated) = crate::native::sys::recv_each_fd(socket, &mut byte, |fd| {
        if let Some(slot) = fds.get_mut(count) {
            *slot = Some(fd);
        }
        count += 1;
    })?;
    if received == 0 && count == 0 {
        return Ok(0);
    }
    if count > N || truncated {
        fds.iter_mut().for_each(|fd| drop(fd.take()));
        return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
    }
    Ok(count)
}

/// Lets descriptor `fd` through the next `exec`.
pub(super) fn clear_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_SETFD on a descriptor number has no memory preconditions.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }.into()).map(drop)
}

/// Reads up to `buffer.len()` bytes from `fd`, retrying when interrupted
/// and until end of file; returns how many it got.
pub(super) fn read_full(fd: RawFd, buffer: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buffer.len() {
        // SAFETY: the rest of `buffer` is valid for writes.
        let n = unsafe { libc::read(fd, buffer[got..].as_mut_ptr().cast(), buffer.len() - got) };
        if n == 0 {
            break;
        }
        if n < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        got += n as usize;
    }
    Ok(got)
}

/// Owns descriptor `fd` of a process whose descriptor table was copied
/// from its parent's (a `clone` without `CLONE_FILES`): the parent's
/// number names this process's copy, and closing it closes only that copy.
pub(super) fn copied_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: the caller's copy of a descriptor open at the clone, owned by
    // nothing else in this process (see above).
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Takes ownership of an inherited descriptor, checking that it is open.
pub(super) fn inherited_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_GETFD only queries the descriptor.
    check(unsafe { libc::fcntl(fd, libc::F_GETFD) }.into())?;
    // SAFETY: the descriptor is open and handed to this process to own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Moves the keeper into a new network namespace of its own user namespace,
/// with its loopback up, leaving the old one (and every socket, name and
/// connection in it) to the kernel once no process of it is left.
pub(super) fn new_network_namespace() -> io::Result<()> {
    // SAFETY: unshare has no memory preconditions.
    check(unsafe { libc::unshare(libc::CLONE_NEWNET) }.into())?;
    loopback_up()
}

/// Brings `lo` up in this process's network namespace (what bubblewrap does
/// for the namespace it makes), through the `SIOCSIFFLAGS` ioctl.
fn loopback_up() -> io::Result<()> {
    #[repr(C)]
    struct IfreqFlags {
        name: [u8; libc::IFNAMSIZ],
        flags: libc::c_short,
        /// The rest of `struct ifreq`'s union (24 bytes on 64-bit Linux).
        _pad: [u8; 22],
    }
    // SAFETY: socket has no memory preconditions.
    let fd = check(
        unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) }.into(),
    )?;
    // SAFETY: a new descriptor owned by no one else.
    let socket = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    let mut request = IfreqFlags {
        name: [0; libc::IFNAMSIZ],
        flags: 0,
        _pad: [0; 22],
    };
    request.name[..2].copy_from_slice(b"lo");
    // SAFETY: `request` is a valid, large enough `struct ifreq` for both calls.
    unsafe {
        check(libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request).into())?;
        request.flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        check(libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &request).into())?;
    }
    Ok(())
}

/// Moves the keeper into a mount namespace of its own user namespace.
pub(super) fn unshare_mounts() -> io::Result<()> {
    // SAFETY: unshare has no memory preconditions.
    check(unsafe { libc::unshare(libc::CLONE_NEWNS) }.into()).map(drop)
}

/// `struct sigaction` as the kernel's `rt_sigaction` takes it on x86_64
/// and aarch64 (glibc's wrapper refuses signals 32 and 33, its own, which a
/// process can still inherit ignored).
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// The signals whose disposition is not the default here, one bit each
/// (bit `n - 1` for signal `n`): those the keeper inherited ignored (an
/// ignored signal stays ignored across `exec`; a shell's background job
/// ignores SIGINT and SIGQUIT, say) and those its runtime set (Rust ignores
/// SIGPIPE and catches SIGSEGV and SIGBUS). Read once at the keeper's
/// start; the keeper changes no disposition after it.
pub(super) fn changed_signals() -> u64 {
    let mut changed = 0u64;
    for signal in 1..=64 {
        let mut old = KernelSigaction {
            handler: 0,
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        // SAFETY: rt_sigaction with no new action and a valid out-pointer
        // of the kernel's layout and mask size.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signal,
                std::ptr::null::<KernelSigaction>(),
                &mut old as *mut KernelSigaction,
                std::mem::size_of::<u64>(),
            )
        };
        if rc == 0 && old.handler != libc::SIG_DFL {
            changed |= 1 << (signal - 1);
        }
    }
    changed
}

/// Gives this process default signal dispositions and an empty signal mask:
/// what a program would get from a shell. `changed` is `changed_signals()`:
/// one call per signal that needs it, and none that fails (a failure would
/// write `errno`, which the keeper shares; SIGKILL and SIGSTOP are never
/// in it).
pub(super) fn reset_signals(changed: u64) {
    let default = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for signal in 1..=64 {
        if changed & (1 << (signal - 1)) != 0 {
            // SAFETY: rt_sigaction with a valid new action of the kernel's
            // layout and mask size, and no old one asked for.
            unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    signal,
                    &default as *const KernelSigaction,
                    std::ptr::null_mut::<KernelSigaction>(),
                    std::mem::size_of::<u64>(),
                );
            }
        }
    }
    let empty = 0u64;
    // SAFETY: rt_sigprocmask with a valid set of the kernel's size.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &empty as *const u64,
            std::ptr::null_mut::<u64>(),
            std::mem::size_of::<u64>(),
        );
    }
}

/// Makes this process's `/proc` entries root's, so that the program cannot
/// open or change them (its `oom_score_adj`, say), though it runs as the
/// same uid.
pub(super) fn not_dumpable() -> io::Result<()> {
    set_dumpable(false)
}

/// Sets this process's memory dumpable or not (see `not_dumpable`); with
/// shared memory, that of every process sharing it.
pub(super) fn set_dumpable(dumpable: bool) -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    check(
        unsafe {
            libc::prctl(
                libc::PR_SET_DUMPABLE,
                libc::c_ulong::from(dumpable),
                0,
                0,
                0,
            )
        }
        .into(),
    )
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With `close_range` refused (as on kernels before 5.9), descriptors
    /// above the first are still closed: in a child whose seccomp filter
    /// answers `close_range` with ENOSYS.
    #[test]
    fn close_from_closes_without_close_range() {
        // Built before the fork: the child only makes system calls.
        let filter = [
            // A = seccomp_data.nr
            libc::sock_filter {
                code: 0x20,
                jt: 0,
                jf: 0,
                k: 0,
            },
            // nr == close_range ? errno(ENOSYS) : allow
            libc::sock_filter {
                code: 0x15,
                jt: 0,
                jf: 1,
                k: libc::SYS_close_range as u32,
            },
            libc::sock_filter {
                code: 0x06,
                jt: 0,
                jf: 0,
                k: 0x0005_0000 | libc::ENOSYS as u32,
            },
            libc::sock_filter {
                code: 0x06,
                jt: 0,
                jf: 0,
                k: 0x7fff_0000,
            },
        ];
        let (read, write) = pipe().unwrap();
        // SAFETY: the child makes raw system calls only and ends in _exit.
        let child = unsafe { libc::fork() };
        if child == 0 {
            let code = (|| -> io::Result<i32> {
                dup_to(&read, 700)?;
                dup_to(&write, 701)?;
                // SAFETY: prctl with integer arguments only.
                check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }.into())?;
                install_filter(&filter)?;
                // SAFETY: close_range on numbers this child owns.
                let refused = unsafe { libc::syscall(libc::SYS_close_range, 700u32, u32::MAX, 0) };
                if refused == 0 {
                    return Ok(2);
                }
                close_from(700)?;
                // SAFETY: F_GETFD only queries.
                let open = |fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0;
                Ok(if open(700) || open(701) { 1 } else { 0 })
            })()
            .unwrap_or(3);
            exit_now(code);
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
        assert!(libc::WIFEXITED(status), "status {status}");
        assert_eq!(
            libc::WEXITSTATUS(status),
            0,
            "1: left open, 2: close_range not refused, 3: set-up failed"
        );
    }
}
