//! One slot's long-lived sandbox, seen from the worker: bubblewrap around a
//! keeper (see `keeper`), in the slot's cgroup, as the slot's host uid.
//!
//! A slot runs one job at a time. The sandbox is started when the slot is
//! first used and reused by the slot's later jobs; each job gets a fresh
//! `/work` and each step fresh PID, mount, IPC and UTS namespaces with a
//! fresh `/proc`, `/tmp` and `/dev/shm`. A slot whose keeper misbehaves, or
//! whose job was abandoned half-way, is dropped, which kills it whole; the
//! slot's next job starts a new one.

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::Interest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

use super::bwrap::SlotArgs;
use super::cgroup::SlotCgroup;
use super::protocol::{self, Reply, Request, StepEnd, StepSpec};
use super::supervise::{self, Supervised};
use super::sys::{self, Confinement};
use crate::SandboxError;

/// How long a keeper may take to start, or to answer a request that is not
/// a step, before its slot is given up as broken.
const KEEPER_TIMEOUT: Duration = Duration::from_secs(10);

/// The keeper executable and the arguments that select it (the worker's own
/// binary with `keeper`, or the standalone `code-runner-keeper`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeeperCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
}

impl KeeperCommand {
    /// `code-runner-keeper` next to the running executable or one directory
    /// up (where cargo puts binaries relative to tests and examples).
    pub fn beside_current_exe() -> Self {
        let name = "code-runner-keeper";
        let exe = std::env::current_exe().unwrap_or_default();
        let program = exe
            .ancestors()
            .skip(1)
            .take(2)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
            .unwrap_or_else(|| PathBuf::from(name));
        Self {
            program,
            args: Vec::new(),
        }
    }
}

/// Where a slot's sandbox comes from.
pub(crate) struct SlotSpawn<'a> {
    pub bwrap: &'a Path,
    pub keeper: &'a KeeperCommand,
    pub uid: u32,
    pub mounts: Vec<PathBuf>,
    pub cgroup: SlotCgroup,
}

/// A running slot sandbox.
pub(crate) struct SlotProcess {
    /// Killed when dropped (`kill_on_drop`), and with it every process of
    /// the slot: the one way a slot is given up.
    _bwrap: tokio::process::Child,
    requests: OwnedWriteHalf,
    replies: OwnedReadHalf,
    mounts: Vec<PathBuf>,
    cgroup: SlotCgroup,
    /// Set when the keeper was lost; such a sandbox is never reused.
    broken: bool,
    /// The processes the keeper said it keeps besides itself (a zygote).
    helpers: u32,
    /// Whether the keeper said the next step's init is already waiting.
    standby: bool,
    /// A `Clear` was sent whose answer has not been read yet.
    clearing: bool,
}

impl SlotProcess {
    pub(crate) async fn start(spawn: SlotSpawn<'_>) -> Result<Self, SandboxError> {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()
            .map_err(SandboxError::setup("create the keeper's socket"))?;
        let keeper_exe = File::open(&spawn.keeper.program).map_err(SandboxError::setup(
            format!("open keeper {}", spawn.keeper.program.display()),
        ))?;
        let theirs = OwnedFd::from(theirs);
        let keeper_exe = OwnedFd::from(keeper_exe);
        let mut argv: Vec<OsString> =
            vec![format!("/proc/self/fd/{}", keeper_exe.as_raw_fd()).into()];
        argv.extend(spawn.keeper.args.iter().map(OsString::from));
        argv.push(theirs.as_raw_fd().to_string().into());
        let args = SlotArgs {
            mounts: &spawn.mounts,
            argv: &argv,
        }
        .build();
        let mut command = tokio::process::Command::new(spawn.bwrap);
        command
            .args(args)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        Confinement {
            cgroup_fds: spawn.cgroup.join_files()?,
            inherited_fds: vec![theirs, keeper_exe],
            rlimits: vec![(libc::RLIMIT_CORE, 0, 0)],
            uid: spawn.uid,
        }
        .install(&mut command);
        let bwrap = command.spawn().map_err(|source| SandboxError::Spawn {
            program: spawn.bwrap.display().to_string(),
            source,
        })?;
        // `command` (and with it the descriptors the child inherited) must go
        // now: a keeper end left open here would hide the keeper's exit.
        drop(command);
        ours.set_nonblocking(true)
            .map_err(SandboxError::setup("keeper socket"))?;
        let (replies, requests) = UnixStream::from_std(ours)
            .map_err(SandboxError::setup("keeper socket"))?
            .into_split();
        let mut slot = SlotProcess {
            _bwrap: bwrap,
            requests,
            replies,
            mounts: spawn.mounts,
            cgroup: spawn.cgroup,
            broken: false,
            helpers: 0,
            standby: false,
            clearing: false,
        };
        match slot.answer().await? {
            Reply::Ready => {
                slot.cgroup.record_idle();
                Ok(slot)
            }
            other => Err(keeper_error(format!("expected Ready, got {other:?}"))),
        }
    }

    /// Marks this sandbox as not to be reused (its keeper is gone).
    pub(crate) fn mark_broken(&mut self) {
        self.broken = true;
    }

    /// The keeper's own processes besides itself, as of the last clear:
    /// a zygote, and the next step's init, waiting.
    pub(crate) fn helpers(&self) -> u32 {
        self.helpers + u32::from(self.standby)
    }

    /// Whether the next job's first step finds its init in the slot
    /// already (cloned by the keeper when it cleared the last job).
    pub(crate) fn init_waiting(&self) -> bool {
        self.standby
    }

    pub(crate) fn is_broken(&self) -> bool {
        self.broken
    }

    /// True when this sandbox can run a job that needs `mounts`.
    pub(crate) fn usable_for(&self, mounts: &[PathBuf]) -> bool {
        mounts.iter().all(|m| self.mounts.contains(m))
    }

    pub(crate) fn mounts(&self) -> &[PathBuf] {
        &self.mounts
    }

    pub(crate) fn cgroup(&mut self) -> &mut SlotCgroup {
        &mut self.cgroup
    }

    /// Asks the keeper to end the job: detach its `/work` and move to a
    /// fresh network namespace. The answer is read by `finish_clear`, when
    /// the slot is next taken, so that this work is off the finished job's
    /// path; a keeper that cannot be asked breaks the slot.
    pub(crate) async fn begin_clear(&mut self) {
        if self.broken || self.clearing {
            return;
        }
        match send(&mut self.requests, &Request::Clear, &[]).await {
            Ok(()) => self.clearing = true,
            Err(_) => self.broken = true,
        }
    }

    /// Whether a job can start here without waiting for the keeper: no
    /// `Clear` is outstanding, or its answer is in the socket already.
    pub(crate) fn cleared(&self) -> bool {
        !self.clearing || sys::readable_now(self.replies.as_ref().as_raw_fd())
    }

    /// Waits for the answer to `begin_clear`, if one is due.
    pub(crate) async fn finish_clear(&mut self) -> Result<(), SandboxError> {
        if !self.clearing {
            return Ok(());
        }
        self.clearing = false;
        match self.answer().await {
            Ok(Reply::Done { helpers, standby }) => {
                self.helpers = helpers;
                self.standby = standby;
                Ok(())
            }
            Ok(Reply::Failed(what)) => Err(keeper_error(what)),
            Ok(other) => Err(keeper_error(format!("unexpected {other:?}"))),
            Err(e) => Err(e),
        }
    }

    /// Runs one step under the wall clock and output cap. `files` holds the
    /// contents of the files `spec.files` names, in order.
    pub(crate) async fn run(
        &mut self,
        spec: StepSpec,
        io: StepIo,
        files: Vec<OwnedFd>,
        limits: supervise::StepLimits,
        live: Option<supervise::StepLive>,
    ) -> Result<(Supervised, StepEnd), SandboxError> {
        let (stderr_read, stderr_write) = std::io::pipe().map_err(SandboxError::setup("pipe"))?;
        let (their_stdin, their_stdout, our_stdin, our_stdout, stdin) = match io {
            StepIo::Captured(stdin) => {
                let (stdin_read, stdin_write) =
                    std::io::pipe().map_err(SandboxError::setup("pipe"))?;
                let (stdout_read, stdout_write) =
                    std::io::pipe().map_err(SandboxError::setup("pipe"))?;
                (
                    OwnedFd::from(stdin_read),
                    OwnedFd::from(stdout_write),
                    Some(OwnedFd::from(stdin_write)),
                    Some(OwnedFd::from(stdout_read)),
                    stdin,
                )
            }
            StepIo::Linked { stdin, stdout } => (stdin, stdout, None, None, Vec::new()),
        };
        let mut theirs: Vec<OwnedFd> = vec![their_stdin, their_stdout, stderr_write.into()];
        theirs.extend(files);
        let raw: Vec<RawFd> = theirs.iter().map(|fd| fd.as_raw_fd()).collect();
        let started = Instant::now();
        send(&mut self.requests, &Request::Run(spec), &raw)
            .await
            .map_err(keeper_io)?;
        // Only the program may hold the write ends now, so that its exit
        // is the end of its output.
        drop(theirs);
        let pipes = supervise::Pipes::new(our_stdin, our_stdout, stderr_read.into())
            .map_err(SandboxError::setup("step pipes"))?;
        supervise::supervise(
            &mut self.requests,
            &mut self.replies,
            pipes,
            stdin,
            limits,
            started,
            live,
        )
        .await
    }

    async fn answer(&mut self) -> Result<Reply, SandboxError> {
        match tokio::time::timeout(KEEPER_TIMEOUT, read_reply(&mut self.replies)).await {
            Ok(reply) => reply.map_err(keeper_io),
            Err(_) => Err(keeper_error("no answer in time".into())),
        }
    }
}

/// A step's stdin and stdout.
pub(crate) enum StepIo {
    /// Pipes of the worker's: these bytes are the step's stdin, and its
    /// stdout is collected under the output cap.
    Captured(Vec<u8>),
    /// Descriptors given as they are (an interactive test's pipes, joined to
    /// the other program's step); the step's stdout is not collected, and
    /// only its stderr counts against the output cap.
    Linked { stdin: OwnedFd, stdout: OwnedFd },
}

/// Sends one request frame, with `fds` attached to its first byte.
pub(crate) async fn send(
    requests: &mut OwnedWriteHalf,
    request: &Request,
    fds: &[RawFd],
) -> std::io::Result<()> {
    let frame = protocol::encode(request);
    let mut sent = 0;
    if !fds.is_empty() {
        let socket: &UnixStream = requests.as_ref();
        let raw = socket.as_raw_fd();
        sent = socket
            .async_io(Interest::WRITABLE, || sys::send_with_fds(raw, &frame, fds))
            .await?;
    }
    requests.write_all(&frame[sent..]).await
}

/// Reads one reply frame. Not cancel-safe: callers keep the future alive.
pub(crate) async fn read_reply(replies: &mut OwnedReadHalf) -> std::io::Result<Reply> {
    let mut prefix = [0u8; 4];
    replies.read_exact(&mut prefix).await?;
    let mut body = vec![0u8; protocol::body_len(prefix)?];
    replies.read_exact(&mut body).await?;
    protocol::decode(&body)
}

fn keeper_io(source: std::io::Error) -> SandboxError {
    SandboxError::Setup {
        what: "talk to the slot's keeper".into(),
        source,
    }
}

pub(crate) fn keeper_error(what: String) -> SandboxError {
    SandboxError::Setup {
        what: format!("slot keeper: {what}"),
        source: std::io::Error::other("keeper failed"),
    }
}
