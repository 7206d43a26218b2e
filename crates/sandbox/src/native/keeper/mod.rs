//! The keeper: a small long-lived process inside a slot's sandbox that
//! starts each step of the slot's jobs in fresh namespaces.
//!
//! bubblewrap builds the slot's sandbox once: the unprivileged slot uid, a
//! user namespace, a network namespace with only loopback, and a read-only
//! root holding `/usr` and the toolchains. The keeper runs in it with
//! capabilities that are only good inside that user namespace. Per job it
//! mounts a fresh `/work`; per step it clones a child into new PID, mount,
//! IPC and UTS namespaces (the step's init), which mounts a fresh `/proc`,
//! `/tmp` and `/dev/shm` and forks the program. The program drops every
//! capability, sets no_new_privs, installs the seccomp filters and execs.
//! When the program exits, its init exits, and the kernel kills whatever
//! else is left in the step's PID namespace.
//!
//! This keeps a fresh sandbox per step while paying for bubblewrap, the user
//! and network namespaces and the cgroups once per slot rather than once per
//! step: what a step costs is a clone, four mounts, a fork and the exec.
//!
//! The keeper is single-threaded and answers one request at a time (see
//! `protocol`). It is a separate executable (`code-runner-keeper`, or
//! `code-runner keeper`), started by the worker's `slot` module.

mod sys;

use std::ffi::{CStr, CString};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;

use super::protocol::{self, Reply, Request, StepEnd, StepSpec, Workspace};
use super::seccomp::SeccompFilters;

const WORK: &CStr = c"/work";

/// The keeper's entry point: the last command-line argument is the number of
/// the inherited control socket. Exits when the worker closes it.
pub fn main() -> ! {
    let code = match run() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("code-runner keeper: {e}");
            1
        }
    };
    std::process::exit(code)
}

fn run() -> io::Result<()> {
    let control_fd: RawFd = std::env::args()
        .next_back()
        .and_then(|arg| arg.parse().ok())
        .ok_or_else(|| io::Error::other("usage: keeper CONTROL_FD"))?;
    let control = sys::inherited_fd(control_fd)?;
    sys::set_cloexec(control_fd)?;
    // Nothing else inherited is the keeper's business (bubblewrap passed the
    // descriptor of this very executable, for one).
    sys::close_from(control_fd + 1)?;
    for fd in 3..control_fd {
        let _ = sys::inherited_fd(fd).map(drop);
    }
    // bubblewrap runs its command in a user namespace nested in the one that
    // owns its mount namespace (to map the sandbox uid after mounting
    // devpts); mounting needs a mount namespace this one owns. The mounts it
    // copies stay locked, so nothing below can uncover what they cover.
    sys::unshare_mounts()?;
    let filters = SeccompFilters::compile().map_err(io::Error::other)?;
    let mut keeper = Keeper {
        control: UnixStream::from(control),
        filters: filters.programs().map(to_sock_filters).to_vec(),
        work_mounted: false,
        userns_closed: false,
    };
    keeper.reply(&Reply::Ready)?;
    while let Some((request, fds)) = keeper.receive()? {
        keeper.handle(request, fds)?;
    }
    Ok(())
}

struct Keeper {
    control: UnixStream,
    filters: Vec<Vec<libc::sock_filter>>,
    work_mounted: bool,
    /// Whether a step's init has set the slot's user namespace limit to 0
    /// (it stays so; later steps need not set it again).
    userns_closed: bool,
}

impl Keeper {
    fn handle(&mut self, request: Request, fds: Vec<OwnedFd>) -> io::Result<()> {
        let reply = match request {
            Request::Clear => match self.end_job() {
                Ok(()) => Reply::Done,
                Err(e) => Reply::Failed(e.to_string()),
            },
            Request::Run(spec) => {
                let Ok(stdio) = <[OwnedFd; 3]>::try_from(fds) else {
                    return Err(io::Error::other("a run request needs 3 descriptors"));
                };
                if let Some(workspace) = &spec.workspace {
                    if let Err(e) = self.prepare(workspace) {
                        return self.reply(&Reply::Failed(format!("prepare /work: {e}")));
                    }
                }
                match self.run_step(&spec, stdio)? {
                    Ok(end) => Reply::Exited(end),
                    Err(e) => Reply::Failed(format!("start step: {e}")),
                }
            }
            // A kill that crossed the step's end on the wire.
            Request::Kill => return Ok(()),
        };
        self.reply(&reply)
    }

    fn prepare(&mut self, workspace: &Workspace) -> io::Result<()> {
        self.clear()?;
        let options = CString::new(format!(
            "size={},nr_inodes={},mode=0700",
            workspace.bytes, workspace.inodes
        ))?;
        sys::mount(
            c"tmpfs",
            WORK,
            Some(c"tmpfs"),
            libc::MS_NOSUID | libc::MS_NODEV,
            Some(&options),
        )?;
        self.work_mounted = true;
        for (name, contents) in &workspace.files {
            // The worker checks names too; a keeper does not trust its input.
            if !crate::is_plain_file_name(name) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a plain file name",
                ));
            }
            // A fresh tmpfs no job has touched yet: nothing to follow, but
            // refuse links and existing files anyway.
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .custom_flags(libc::O_NOFOLLOW)
                .open(std::path::Path::new("/work").join(name))?;
            file.write_all(contents.as_bytes())?;
        }
        Ok(())
    }

    /// Ends a job: its `/work` goes, and the next job gets a network
    /// namespace of its own, so nothing of this job's sockets (abstract
    /// names, connections in `TIME_WAIT`, a socket cycle waiting for the
    /// kernel's garbage collector) nor its interface counters reach it.
    fn end_job(&mut self) -> io::Result<()> {
        self.clear()
            .map_err(|e| io::Error::new(e.kind(), format!("clear /work: {e}")))?;
        sys::new_network_namespace()
            .map_err(|e| io::Error::new(e.kind(), format!("new network namespace: {e}")))
    }

    fn clear(&mut self) -> io::Result<()> {
        if self.work_mounted {
            sys::detach(WORK)?;
            self.work_mounted = false;
        }
        Ok(())
    }

    /// Runs one step to its end. The outer error ends the keeper (the worker
    /// is gone or the keeper is broken); the inner one is a step that could
    /// not start.
    fn run_step(
        &mut self,
        spec: &StepSpec,
        stdio: [OwnedFd; 3],
    ) -> io::Result<Result<StepEnd, io::Error>> {
        let prepared = match PreparedStep::new(spec, &self.filters, !self.userns_closed) {
            Ok(prepared) => prepared,
            Err(e) => return Ok(Err(e)),
        };
        let (status_read, status_write) = sys::pipe()?;
        let init = match sys::clone_into_namespaces() {
            Ok(0) => {
                // A panic must not unwind into the copy of the keeper's loop.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    step_init(&prepared, stdio, status_write)
                }));
                sys::exit_now(127)
            }
            Ok(pid) => pid,
            Err(e) => return Ok(Err(e)),
        };
        drop(status_write);
        drop(stdio);
        let pidfd = sys::pidfd_open(init)?;
        loop {
            let [control_ready, init_done] =
                sys::poll_readable([self.control.as_raw_fd(), pidfd.as_raw_fd()])?;
            if init_done {
                break;
            }
            if control_ready {
                match self.receive() {
                    Ok(Some((Request::Kill, _))) => sys::kill(init),
                    Ok(Some((other, _))) => {
                        sys::kill(init);
                        return Err(io::Error::other(format!(
                            "request {other:?} while a step runs"
                        )));
                    }
                    Ok(None) | Err(_) => {
                        sys::kill(init);
                        return Err(io::Error::other("worker gone"));
                    }
                }
            }
        }
        let (init_status, cpu_micros) = sys::wait_with_usage(init)?;
        let mut program_status = [0u8; 4];
        let known = std::fs::File::from(status_read)
            .read_exact(&mut program_status)
            .is_ok();
        // A known status means the init got past its set-up, the user
        // namespace limit included.
        self.userns_closed |= known;
        let (exit_code, signal) = if known {
            split_wait_status(i32::from_ne_bytes(program_status))
        } else {
            // Killed before the program's end was seen (the worker's kill,
            // or an OOM kill of the init itself).
            match split_wait_status(init_status) {
                (_, Some(signal)) => (None, Some(signal)),
                (code, None) => (code, None),
            }
        };
        Ok(Ok(StepEnd {
            exit_code,
            signal,
            cpu_micros,
        }))
    }

    fn receive(&mut self) -> io::Result<Option<(Request, Vec<OwnedFd>)>> {
        let mut prefix = [0u8; 4];
        let (mut got, fds) = super::sys::recv_with_fds(self.control.as_raw_fd(), &mut prefix)?;
        if got == 0 {
            return Ok(None);
        }
        while got < prefix.len() {
            let n = self.control.read(&mut prefix[got..])?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            got += n;
        }
        let mut body = vec![0u8; protocol::body_len(prefix)?];
        self.control.read_exact(&mut body)?;
        Ok(Some((protocol::decode(&body)?, fds)))
    }

    fn reply(&mut self, reply: &Reply) -> io::Result<()> {
        self.control.write_all(&protocol::encode(reply))
    }
}

/// Everything a step's processes need, made before the clone.
struct PreparedStep<'a> {
    argv: Vec<CString>,
    envp: Vec<CString>,
    tmp_options: CString,
    rlimits: &'a [(u32, u64, u64)],
    filters: &'a [Vec<libc::sock_filter>],
    close_userns: bool,
}

impl<'a> PreparedStep<'a> {
    fn new(
        spec: &'a StepSpec,
        filters: &'a [Vec<libc::sock_filter>],
        close_userns: bool,
    ) -> io::Result<Self> {
        if spec.argv.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty argv"));
        }
        let argv = spec
            .argv
            .iter()
            .map(|a| CString::new(a.as_bytes()))
            .collect::<Result<_, _>>()?;
        let envp = spec
            .env
            .iter()
            .map(|(k, v)| CString::new(format!("{k}={v}")))
            .collect::<Result<_, _>>()?;
        let tmp_options = CString::new(format!(
            "size={},nr_inodes={},mode=1777",
            spec.tmp_bytes, spec.tmp_inodes
        ))?;
        Ok(Self {
            argv,
            envp,
            tmp_options,
            rlimits: &spec.rlimits,
            filters,
            close_userns,
        })
    }
}

/// The step's PID 1: fresh mounts, then the program as its only child. It
/// reports the program's wait status through `status` and exits when the
/// program does, which makes the kernel kill everything else in the step.
fn step_init(step: &PreparedStep<'_>, stdio: [OwnedFd; 3], status: OwnedFd) -> ! {
    if let Err(e) = init_mounts(step) {
        fail_step(&stdio, "mount the step's file systems", &e);
    }
    let program = match sys::fork() {
        Ok(0) => {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                exec_program(step, &stdio)
            }));
            sys::exit_now(127)
        }
        Ok(pid) => pid,
        Err(e) => fail_step(&stdio, "fork the program", &e),
    };
    // The program holds the pipes; this init must not keep them open. Nor
    // anything else of the keeper's (its control socket above all): this
    // init keeps only the status pipe, as descriptor 3.
    drop(stdio);
    const STATUS_FD: RawFd = 3;
    if status.as_raw_fd() != STATUS_FD && sys::dup_to(&status, STATUS_FD).is_err() {
        sys::exit_now(1);
    }
    std::mem::forget(status);
    if sys::close_from(STATUS_FD + 1).is_err() {
        sys::exit_now(1);
    }
    for fd in 0..STATUS_FD {
        let _ = sys::inherited_fd(fd).map(drop);
    }
    while let Some((pid, wait_status)) = sys::wait_any() {
        if pid == program {
            sys::write_raw(STATUS_FD, &wait_status.to_ne_bytes());
            sys::exit_now(0);
        }
    }
    sys::exit_now(0)
}

fn init_mounts(step: &PreparedStep<'_>) -> io::Result<()> {
    sys::die_with_parent()?;
    // When the slot's cgroup runs out of memory, the kernel kills the most
    // attractive process in it: make that always one of the step's, never
    // the keeper (raising the score needs no privilege; lowering would).
    std::fs::write("/proc/self/oom_score_adj", "1000")?;
    // Nothing mounted here may reach the keeper's mount namespace.
    sys::mount(c"none", c"/", None, libc::MS_REC | libc::MS_PRIVATE, None)?;
    let nodev = libc::MS_NOSUID | libc::MS_NODEV;
    for target in [c"/tmp", c"/dev/shm"] {
        sys::mount(
            c"tmpfs",
            target,
            Some(c"tmpfs"),
            nodev,
            Some(&step.tmp_options),
        )?;
    }
    sys::mount(
        c"proc",
        c"/proc",
        Some(c"proc"),
        nodev | libc::MS_NOEXEC,
        None,
    )?;
    // The slot's user namespace may hold no further ones (what bubblewrap's
    // --disable-userns gives), besides seccomp refusing them to programs.
    if step.close_userns {
        std::fs::write("/proc/sys/user/max_user_namespaces", "0")?;
    }
    // Last: it takes this init's own /proc files away from it too.
    sys::not_dumpable()
}

/// The program's process: its descriptors, directory, limits and the end of
/// every privilege, then `exec`.
fn exec_program(step: &PreparedStep<'_>, stdio: &[OwnedFd; 3]) -> ! {
    let result = (|| -> io::Result<io::Error> {
        sys::setsid()?;
        sys::reset_signals();
        for (target, fd) in stdio.iter().enumerate() {
            sys::dup_to(fd, target as RawFd)?;
        }
        sys::close_from(3)?;
        sys::chdir(WORK)?;
        for &(resource, soft, hard) in step.rlimits {
            sys::setrlimit(resource, soft, hard)?;
        }
        sys::drop_all_capabilities()?;
        for filter in step.filters {
            sys::install_filter(filter)?;
        }
        Ok(sys::execve(&step.argv, &step.envp))
    })();
    let (what, error) = match result {
        Ok(exec_error) => ("exec", exec_error),
        Err(e) => ("confine the program", e),
    };
    let name = step.argv[0].as_bytes();
    let message = format!(
        "code-runner: cannot {what} {}: {error}\n",
        String::from_utf8_lossy(name)
    );
    sys::write_raw(2, message.as_bytes());
    sys::exit_now(127)
}

/// A step that cannot start tells the program's stderr why and ends as 127.
fn fail_step(stdio: &[OwnedFd; 3], what: &str, error: &io::Error) -> ! {
    let message = format!("code-runner: cannot {what}: {error}\n");
    sys::write_raw(stdio[2].as_raw_fd(), message.as_bytes());
    sys::exit_now(127)
}

/// (exit code, signal) of a wait status.
fn split_wait_status(status: i32) -> (Option<i32>, Option<i32>) {
    if libc::WIFSIGNALED(status) {
        (None, Some(libc::WTERMSIG(status)))
    } else {
        (Some(libc::WEXITSTATUS(status)), None)
    }
}

fn to_sock_filters(bytes: &[u8]) -> Vec<libc::sock_filter> {
    bytes
        .chunks_exact(8)
        .map(|i| libc::sock_filter {
            code: u16::from_ne_bytes([i[0], i[1]]),
            jt: i[2],
            jf: i[3],
            k: u32::from_ne_bytes([i[4], i[5], i[6], i[7]]),
        })
        .collect()
}
