//! Prefork: a pristine python interpreter per slot, started ahead, from
//! which each python run of the slot is forked instead of exec'd.
//!
//! A python hello spends most of its time starting the interpreter (about
//! 15 ms of CPU here, against well under 1 ms for the program). With
//! `prefork = true` in the language table, the keeper starts a zygote once
//! per slot (`prefork.py`, run by the language's interpreter, with the
//! capabilities the keeper has inside the slot's user namespace, and never
//! any user code). For each run step the keeper makes the step's init exactly
//! as for any step (fresh PID, mount, IPC and UTS namespaces; fresh `/proc`,
//! `/tmp`, `/dev/shm`; the other job directory hidden) and at once sends the
//! zygote a pidfd of the init. The zygote joins the init's PID namespace for
//! its children only and forks while the init makes its mounts; the child,
//! born in the step's PID namespace, waits until the init says its mounts
//! are made, joins the init's other namespaces, tells the init its pid (the
//! init ends the step when the program ends), confines itself as an exec'd
//! program is confined (see
//! `prefork.py`) and runs the job's file in its copy of the interpreter.
//! The zygote, outside the step and out of the program's sight, is the
//! program's parent: it tells the keeper the program's pid (for signals)
//! and writes its wait status to the step's status pipe.
//!
//! Nothing of a job reaches the zygote: the program is a copy-on-write child
//! in other namespaces, without capabilities, under the seccomp filter, and
//! holding none of the zygote's descriptors. What a fork shares with the
//! zygote and a fresh interpreter would not (the hash secret, say) is listed
//! in `docs/prefork.md`.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use super::sys;

/// The zygote's program, run with `-c`.
const SCRIPT: &str = include_str!("prefork.py");

/// A running zygote: a child of the keeper.
pub(super) struct Zygote {
    interpreter: CString,
    pid: libc::pid_t,
    control: OwnedFd,
}

impl Zygote {
    /// Starts `interpreter` (`argv[0]` of the language's run command) on the
    /// zygote's script, with the step's environment and the seccomp filter
    /// its programs install; `signals`, the keeper's changed signal
    /// dispositions, set back to the defaults before its exec.
    pub(super) fn start(
        interpreter: &CStr,
        envp: &[CString],
        filter: &[libc::sock_filter],
        signals: u64,
    ) -> io::Result<Self> {
        let (ours, theirs) = sys::seqpacket_pair()?;
        let hex: String = filter
            .iter()
            .flat_map(|i| {
                let mut bytes = [0u8; 8];
                bytes[..2].copy_from_slice(&i.code.to_ne_bytes());
                bytes[2] = i.jt;
                bytes[3] = i.jf;
                bytes[4..].copy_from_slice(&i.k.to_ne_bytes());
                bytes
            })
            .map(|b| format!("{b:02x}"))
            .collect();
        let argv = [
            interpreter.to_owned(),
            CString::new("-c")?,
            CString::new(SCRIPT)?,
            CString::new(hex)?,
        ];
        let null = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")?;
        let null = OwnedFd::from(null);
        let pid = sys::fork()?;
        if pid == 0 {
            // The zygote: the socket as 3, /dev/null as stdin and stdout,
            // the keeper's stderr (the worker's log) kept for its failures.
            let started = (|| -> io::Result<io::Error> {
                sys::dup_to(&null, 0)?;
                sys::dup_to(&null, 1)?;
                sys::dup_to(&theirs, 3)?;
                // dup2 onto itself keeps close-on-exec: clear it either way.
                sys::clear_cloexec(3)?;
                sys::close_from(4)?;
                sys::reset_signals(signals);
                Ok(sys::execve(&argv, envp))
            })();
            let error = match started {
                Ok(e) | Err(e) => e,
            };
            sys::write_raw(
                2,
                format!("code-runner keeper: start the zygote: {error}\n").as_bytes(),
            );
            sys::exit_now(127)
        }
        Ok(Self {
            interpreter: interpreter.to_owned(),
            pid,
            control: ours,
        })
    }

    pub(super) fn interpreter(&self) -> &CStr {
        &self.interpreter
    }

    /// Whether the zygote is still there (reaping it when it is not).
    pub(super) fn alive(&self) -> bool {
        !sys::reaped(self.pid)
    }

    /// Asks the zygote for a program in the step whose init is `init`:
    /// `job` is the request's JSON; `pipes` the read end of the init's
    /// ready pipe and the write ends of the init's arrival pipe, of the
    /// step's status pipe and of the keeper's program pipe; `stdio` the
    /// program's standard descriptors.
    pub(super) fn fork_into(
        &self,
        job: &[u8],
        init: &OwnedFd,
        pipes: [&OwnedFd; 4],
        stdio: &[OwnedFd; 3],
    ) -> io::Result<()> {
        let fds = [
            init.as_raw_fd(),
            pipes[0].as_raw_fd(),
            pipes[1].as_raw_fd(),
            pipes[2].as_raw_fd(),
            pipes[3].as_raw_fd(),
            stdio[0].as_raw_fd(),
            stdio[1].as_raw_fd(),
            stdio[2].as_raw_fd(),
        ];
        let sent = crate::native::sys::send_with_fds(self.control.as_raw_fd(), job, &fds)?;
        if sent != job.len() {
            return Err(io::Error::other("the zygote took part of a request"));
        }
        Ok(())
    }
}

impl Drop for Zygote {
    fn drop(&mut self) {
        sys::kill(self.pid);
        sys::reap(self.pid);
    }
}
