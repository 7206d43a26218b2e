//! The keeper: a small long-lived process inside a slot's sandbox that
//! starts each step of the slot's jobs in fresh namespaces.
//!
//! bubblewrap builds the slot's sandbox once: the unprivileged slot uid, a
//! user namespace, a network namespace with only loopback, and a read-only
//! root holding `/usr` and the toolchains. The keeper runs in it with
//! capabilities that are only good inside that user namespace. Per job it
//! mounts a fresh `/work`; per step it clones a child into new PID, mount,
//! IPC and UTS namespaces (the step's init, which shares the keeper's memory:
//! no copy of the keeper is made and torn down per step), which mounts a
//! fresh `/proc`, `/tmp` and `/dev/shm` and starts the program (in that
//! memory too until the exec, as `posix_spawn` does). The init installs
//! the seccomp filters (the program inherits them); the program drops every
//! capability, sets no_new_privs and execs. Neither the init nor the program allocates on its way: the
//! keeper's allocator runs on beside them. The step's init is cloned ahead
//! when the slot's last job is cleared, so that a job's first step finds its
//! namespaces and mounts made (see `Standby`). The keeper is not dumpable, so
//! neither is its init (PID 1, the one process of the keeper's memory a
//! program can name), but for a moment before each program's exec, while no
//! untrusted code runs, when the program sets its own OOM score.
//! When the program exits, its init exits, and the kernel kills whatever
//! else is left in the step's PID namespace.
//!
//! Judge mode adds a second directory per job, `/judge`, for a custom
//! checker: a tmpfs of its own, mounted by the keeper like `/work`. A step
//! sees one of the two, never both (`protocol::View`): the step's init
//! detaches the other in the step's private mount namespace before it forks
//! the program, and mounts `/judge` read-only there for a checker's run. The
//! keeper made both mounts in its own mount namespace, so they are not locked
//! in the step's copy of it (the mounts bubblewrap made are). Before a
//! checker's run the keeper writes the test's files into `/judge`, and it
//! removes them when the step ends: while a test of the submission runs,
//! `/judge` holds only the checker.
//!
//! This keeps a fresh sandbox per step while paying for bubblewrap, the user
//! and network namespaces and the cgroups once per slot rather than once per
//! step: what a step costs is a clone, four mounts, a spawn and the exec.
//!
//! The keeper is single-threaded and answers one request at a time (see
//! `protocol`). It is a separate executable (`code-runner-keeper`, or
//! `code-runner keeper`), started by the worker's `slot` module.

mod prefork;
mod sys;

use std::ffi::{CStr, CString};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;

use super::protocol::{self, Reply, Request, StepEnd, StepSpec, View, Workspace};
use super::seccomp::SeccompFilters;

const WORK: &CStr = c"/work";
/// The stack the program runs on between its clone and its exec.
const PROGRAM_STACK: usize = 256 << 10;
/// The stack a step's init runs on.
const INIT_STACK: usize = 256 << 10;
const JUDGE: &CStr = c"/judge";

/// The keeper's entry point: the last command-line argument is the number of
/// the inherited control socket. Exits when the worker closes it.
pub fn main() -> ! {
    // A step's init and program share the keeper's memory, where a panic's
    // report would allocate: they end at once instead (they run on the
    // stacks `sys::ChildStack` maps). A partial backstop: a formatted
    // panic's message is made before the hook runs, and the panic count
    // is the keeper's; the step's path is kept free of panics.
    std::panic::set_hook(Box::new(|info| {
        if sys::on_child_stack() {
            sys::exit_now(127);
        }
        eprintln!("code-runner keeper: {info}");
    }));
    let code = match run() {
        Ok(()) => 0,
        // The worker closed its end while the keeper still had something
        // to say (a CLI that exits before reading the answer to its job's
        // `Clear`): the same end as a closed socket read, and nothing to
        // print on the stderr it shares with that worker.
        Err(e) if e.get_ref().is_some_and(|inner| inner.is::<WorkerGone>()) => 0,
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
    // Likewise the network namespace: bubblewrap's belongs to its outer user
    // namespace, which a prefork zygote (see `prefork`) could not join a
    // step's copy of; the keeper's own is its first job's, as each next
    // job gets a fresh one.
    sys::new_network_namespace()?;
    let network = NetworkFiles::open()?;
    let fresh_network = network.fingerprint()?;
    let filters = SeccompFilters::compile().map_err(io::Error::other)?;
    // Every step's init and program inherits these: no exec in the slot can
    // gain a capability, and the keeper's memory, which each init shares
    // (see `run_step`), is out of reach of the programs' uid through /proc
    // or ptrace.
    sys::drop_bounding_set()?;
    sys::not_dumpable()?;
    // Before any step: what each step's init sets back.
    let signals = sys::changed_signals();
    let mut keeper = Keeper {
        control: UnixStream::from(control),
        filters: filters.programs().map(to_sock_filters).into(),
        work_mounted: false,
        judge_mounted: false,
        userns_closed: false,
        zygote: None,
        network,
        fresh_network,
        ending_init: None,
        standby: None,
        generation: 0,
        work_options: None,
        work_fresh: false,
        tmp_options: None,
        init_stack: sys::ChildStack::new(INIT_STACK)?,
        program_stack: sys::ChildStack::new(PROGRAM_STACK)?,
        step_data: None,
        signals,
    };
    keeper.reply(&Reply::Ready)?;
    while let Some((request, fds)) = keeper.receive()? {
        keeper.handle(request, fds)?;
    }
    Ok(())
}

struct Keeper {
    control: UnixStream,
    filters: std::rc::Rc<[Vec<libc::sock_filter>]>,
    work_mounted: bool,
    judge_mounted: bool,
    /// Whether a step's init has set the slot's user namespace limit to 0
    /// (it stays so; later steps need not set it again).
    userns_closed: bool,
    /// The slot's python zygote, once a prefork step asked for one.
    zygote: Option<prefork::Zygote>,
    /// The counter files of the keeper's network namespace.
    network: NetworkFiles,
    /// Their fingerprint when the namespace was new.
    fresh_network: Vec<u8>,
    /// The last step's init, still to be reaped (`reap_step`).
    ending_init: Option<libc::pid_t>,
    /// The next step's init, cloned while the slot waits for its next job
    /// (see `Standby`).
    standby: Option<Standby>,
    /// Counts the changes to what a step's init copies of the keeper when
    /// it is cloned: the mounts at `/work` and `/judge`, and the network
    /// namespace. A standby init made before the last change is stale.
    generation: u64,
    /// The options of the last job's `/work`, which the next job's fresh
    /// one is mounted with ahead (`end_job`).
    work_options: Option<CString>,
    /// Whether `/work` is such a fresh mount, which no step has seen.
    work_fresh: bool,
    /// The options of the last step's `/tmp` and `/dev/shm`, which a
    /// standby init mounts.
    tmp_options: Option<CString>,
    /// The stack each step's init runs on, one step at a time: it stays
    /// mapped while an init may run on it.
    init_stack: sys::ChildStack,
    /// The stack each step's program runs on until its exec.
    program_stack: sys::ChildStack,
    /// What the running (or ending) step's init reads, kept until the init
    /// is reaped: it shares the keeper's memory.
    step_data: Option<std::rc::Rc<InitData>>,
    /// The signals whose disposition the keeper's runtime changed
    /// (`sys::changed_signals`).
    signals: u64,
}

impl Keeper {
    fn handle(&mut self, request: Request, fds: Vec<OwnedFd>) -> io::Result<()> {
        if matches!(request, Request::Clear | Request::Run(_)) {
            self.reap_step()?;
        }
        if matches!(request, Request::Clear) {
            // A job that ran no step (a judge job with no test, the other
            // side of an interactive pair whose compile failed) leaves the
            // last Clear's init waiting: it goes before anything of the job
            // is cleared (its socket would count in the network
            // namespace), and before another init is cloned on its stack.
            self.standby = None;
        }
        let reply = match request {
            Request::Clear => match self.end_job() {
                Ok(()) => {
                    // The next job's init, ready before the answer so that
                    // the worker, which counts the slot's processes when
                    // the next step starts, knows whether it is there. One
                    // that cannot be made now is made when the step starts.
                    self.standby = match self.tmp_options.clone() {
                        Some(options) => self.new_standby(options, true).ok(),
                        None => None,
                    };
                    Reply::Done {
                        helpers: u32::from(self.zygote.is_some()),
                        standby: self.standby.is_some(),
                    }
                }
                Err(e) => Reply::Failed(e.to_string()),
            },
            Request::Run(spec) => {
                if fds.len() != 3 + spec.files.len() {
                    return Err(io::Error::other(format!(
                        "a run request with {} files needs {} descriptors, got {}",
                        spec.files.len(),
                        3 + spec.files.len(),
                        fds.len()
                    )));
                }
                let mut fds = fds.into_iter();
                let stdio: [OwnedFd; 3] = std::array::from_fn(|_| fds.next().expect("counted"));
                let dir = directory(spec.view);
                if let Some(workspace) = &spec.workspace {
                    if let Err(e) = self.prepare(dir, workspace) {
                        return self.reply(&Reply::Failed(format!("prepare {dir:?}: {e}")));
                    }
                }
                if let Err(e) = self.put_files(dir, &spec.files, fds) {
                    return self.reply(&Reply::Failed(format!("write the test's files: {e}")));
                }
                let ran = self.run_step(&spec, stdio)?;
                let removed = remove_files(dir, &spec.files);
                match (ran, removed) {
                    (Ok(end), Ok(())) => Reply::Exited(end),
                    (Err(e), _) => Reply::Failed(format!("start step: {e}")),
                    (Ok(_), Err(e)) => Reply::Failed(format!("remove the test's files: {e}")),
                }
            }
            // A kill or signal that crossed the step's end on the wire.
            Request::Kill | Request::Signal(_) => return Ok(()),
        };
        self.reply(&reply)
    }

    fn mounted(&mut self, dir: &CStr) -> &mut bool {
        if dir == WORK {
            &mut self.work_mounted
        } else {
            &mut self.judge_mounted
        }
    }

    /// Mounts a fresh tmpfs at `dir` (`/work` or `/judge`), detaching the
    /// one before, and writes the workspace's files into it.
    fn prepare(&mut self, dir: &'static CStr, workspace: &Workspace) -> io::Result<()> {
        let options = CString::new(format!(
            "size={},nr_inodes={},mode=0700",
            workspace.bytes, workspace.inodes
        ))?;
        // A `/work` mounted when the last job ended (`end_job`), with these
        // options, is as fresh as a new one: no step has seen it since.
        let fresh = dir == WORK && self.work_fresh && self.work_options.as_ref() == Some(&options);
        if !fresh {
            self.clear(dir)?;
            self.mount_tmpfs(dir, &options)?;
        }
        if dir == WORK {
            self.work_fresh = false;
            self.work_options = Some(options);
        }
        for (name, contents) in &workspace.files {
            // A fresh tmpfs no job has touched yet: nothing to follow, but
            // refuse links and existing files anyway.
            let mut file = create_file(dir, name, 0o644)?;
            file.write_all(contents.as_bytes())?;
        }
        Ok(())
    }

    /// Writes a checker step's files into `dir`, each from the start of its
    /// descriptor. Whatever had the name goes first (only the keeper and a
    /// checker's compile ever write `/judge`, and nothing of a step runs
    /// now), so no link or special file planted there is ever followed.
    fn put_files(
        &mut self,
        dir: &'static CStr,
        names: &[String],
        contents: impl Iterator<Item = OwnedFd>,
    ) -> io::Result<()> {
        if !names.is_empty() && !*self.mounted(dir) {
            return Err(io::Error::other(format!("{dir:?} is not mounted")));
        }
        remove_files(dir, names)?;
        for (name, contents) in names.iter().zip(contents) {
            let mut file = create_file(dir, name, 0o444)?;
            let mut contents = std::fs::File::from(contents);
            io::Seek::rewind(&mut contents)?;
            io::copy(&mut contents, &mut file)?;
        }
        Ok(())
    }

    /// Ends a job: its `/work` goes, and unless the job left its network
    /// namespace as it found it, the next job gets a network namespace of
    /// its own, so nothing of this job's sockets (abstract names,
    /// connections in `TIME_WAIT`, a socket cycle waiting for the kernel's
    /// garbage collector) nor its interface counters reach it. Most jobs
    /// never open a socket; making and tearing down a namespace costs more
    /// than a millisecond of CPU (the kernel registers and later frees its
    /// sysctl tables and protocol state), read the fingerprint costs about
    /// a tenth of that.
    ///
    /// Then the next job's `/work` is mounted, empty, with the options of
    /// this job's: a standby init cloned now (see `Standby`) has it in its
    /// copy of the keeper's mounts, and the keeper writes the next job's
    /// files into it (the same file system in both).
    fn end_job(&mut self) -> io::Result<()> {
        for dir in [WORK, JUDGE] {
            self.clear(dir)
                .map_err(|e| io::Error::new(e.kind(), format!("clear {dir:?}: {e}")))?;
        }
        let renew = |e: io::Error| io::Error::new(e.kind(), format!("new network namespace: {e}"));
        if self.network.fingerprint().map_err(renew)? != self.fresh_network {
            self.renew_network().map_err(renew)?;
        }
        if let Some(options) = self.work_options.clone() {
            self.mount_tmpfs(WORK, &options)
                .map_err(|e| io::Error::new(e.kind(), format!("mount /work: {e}")))?;
            self.work_fresh = true;
        }
        Ok(())
    }

    /// Mounts a new tmpfs at `dir` (`/work` or `/judge`, unmounted).
    fn mount_tmpfs(&mut self, dir: &CStr, options: &CStr) -> io::Result<()> {
        self.generation += 1;
        sys::mount(
            c"tmpfs",
            dir,
            Some(c"tmpfs"),
            libc::MS_NOSUID | libc::MS_NODEV,
            Some(options),
        )?;
        *self.mounted(dir) = true;
        Ok(())
    }

    fn clear(&mut self, dir: &CStr) -> io::Result<()> {
        if *self.mounted(dir) {
            self.generation += 1;
            sys::detach(dir)?;
            *self.mounted(dir) = false;
            if dir == WORK {
                self.work_fresh = false;
            }
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
        if spec.prefork {
            if let Err(e) = self.zygote(spec) {
                return Ok(Err(e));
            }
        }
        let (work, judge) = (self.work_mounted, self.judge_mounted);
        let prepared = match PreparedStep::new(spec, work, judge) {
            Ok(prepared) => prepared,
            Err(e) => return Ok(Err(e)),
        };
        self.tmp_options = Some(prepared.tmp_options.clone());
        // A step has started: `/work` is no longer as no step has seen it.
        self.work_fresh = false;
        // The init made while the slot waited, if it has what the keeper
        // has now (mounts, network namespace) and the step's `/tmp`, and,
        // if it runs under the filters already, the step needs no mount of
        // its own; else a new one, cloned below.
        let waiting = match self.standby.take() {
            Some(standby)
                if standby.generation == self.generation
                    && standby.data.tmp_options == prepared.tmp_options
                    && !(standby.data.filtered_early && prepared.needs_mounts()) =>
            {
                Some(standby)
            }
            stale => {
                drop(stale);
                None
            }
        };
        let (status_read, status_write) = sys::pipe()?;
        let arrival = match spec.prefork {
            true => Some((sys::pipe()?, sys::pipe()?)),
            false => None,
        };
        // Not dumpable whatever an earlier step's program left (it makes
        // the memory dumpable for a moment, and its init may have been
        // killed before making it not so again): no other process shares
        // the memory now but a waiting init.
        sys::not_dumpable()?;
        // The step's descriptors, which the init takes as its own
        // (`step_init`): the standard three and the status pipe, and with
        // prefork the ready pipe's write end and the arrival pipe's read end.
        let mut step_fds = StepFds::default();
        for fd in [&stdio[0], &stdio[1], &stdio[2], &status_write] {
            step_fds.push(fd.as_raw_fd());
        }
        if let Some(((_, ready), (arrival, _))) = &arrival {
            step_fds.push(ready.as_raw_fd());
            step_fds.push(arrival.as_raw_fd());
        }
        let (init_guard, data) = match waiting {
            // The waiting init gets them, and the step, in one message.
            Some(Standby {
                guard, step, data, ..
            }) => {
                if data.step.set(prepared).is_err() {
                    return Err(io::Error::other("an init given two steps"));
                }
                let sent =
                    crate::native::sys::send_with_fds(step.as_raw_fd(), &[1], step_fds.as_slice());
                if let Err(e) = sent {
                    // Gone before its step (killed): kill and reap it.
                    drop(guard);
                    return Ok(Err(io::Error::new(
                        e.kind(),
                        format!("reach the step's init: {e}"),
                    )));
                }
                (guard, data)
            }
            // A new init copies them with the keeper's descriptor table.
            None => match self.clone_init(
                prepared.tmp_options.clone(),
                InitStart::Now(Box::new(prepared), step_fds),
            ) {
                Ok((guard, _, data)) => (guard, data),
                Err(e) => return Ok(Err(e)),
            },
        };
        let init = init_guard.pid();
        // Kept until the init is reaped: it reads the step there.
        self.step_data = Some(data);
        // Whatever way this function is left, the init is gone or still
        // has the prepared step: an error ends the keeper, after it has
        // killed and reaped the init (the kernel takes the rest of the step
        // with it), so that nothing runs on in memory about to be freed.
        let mut guard = init_guard;
        let zygote = if spec.prefork {
            self.zygote.as_ref()
        } else {
            None
        };
        let pidfd = sys::pidfd_open(init)?;
        // The program's pid, when it is not the init's child (prefork).
        let mut program = None;
        if let (Some(zygote), Some(((ready, ready_write), (arrival_read, arrival)))) =
            (zygote, arrival)
        {
            drop((ready_write, arrival_read));
            // The zygote forks the program now, while the init makes its
            // mounts; the program joins the step only once the init says
            // they are made (the other job directory hidden above all): it
            // reads the init's ready pipe first. An init that failed has
            // gone and closed its end, and the program ends there.
            let job = serde_json::json!({
                "argv": spec.argv,
                "env": spec.env,
                "rlimits": spec.rlimits,
                "dir": directory(spec.view).to_str().expect("ASCII"),
            });
            let (program_read, program_write) = sys::pipe()?;
            let sent = zygote.fork_into(
                job.to_string().as_bytes(),
                &pidfd,
                [&ready, &arrival, &status_write, &program_write],
                &stdio,
            );
            if let Err(e) = sent {
                sys::kill(init);
                sys::wait_with_usage(init)?;
                guard.disarm();
                self.step_data = None;
                self.zygote = None;
                return Ok(Err(io::Error::new(
                    e.kind(),
                    format!("reach the zygote: {e}"),
                )));
            }
            drop((ready, program_write));
            let mut pid = [0u8; 4];
            if sys::read_full(program_read.as_raw_fd(), &mut pid)? == 4 {
                program = Some(libc::pid_t::from_ne_bytes(pid));
            }
        }
        drop(status_write);
        drop(stdio);
        // The step ends with the program's status: the init writes it (the
        // zygote does, with prefork) and exits, and the kernel then takes
        // down the step's namespaces, its mounts and whatever else is left
        // in it. The answer does not wait for that teardown; the next
        // request does (`reap_step`), so that nothing of this step is left
        // when the slot is cleared or another step starts.
        let mut status = None;
        let mut status_open = true;
        let mut init_done = false;
        while status.is_none() && !init_done {
            let status_fd = if status_open {
                status_read.as_raw_fd()
            } else {
                -1
            };
            let [control_ready, done, status_ready] =
                sys::poll_readable([self.control.as_raw_fd(), pidfd.as_raw_fd(), status_fd])?;
            init_done = done;
            if status_ready {
                status = read_status(&status_read)?;
                // Every writer gone without a status: the init's end says.
                status_open = status.is_some();
            }
            if control_ready && status.is_none() && !init_done {
                match self.receive() {
                    Ok(Some((Request::Kill, _))) => sys::kill(init),
                    Ok(Some((Request::Signal(signal), _))) => signal_program(init, program, signal),
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
        // A program killed (SIGKILL) may have gone with an init that failed:
        // the init's end says which, so wait for it.
        let killed =
            status.is_some_and(|s| libc::WIFSIGNALED(s) && libc::WTERMSIG(s) == libc::SIGKILL);
        if !init_done && spec.last_of_job && !killed {
            // The status is in; the init is on its way out (and may, with
            // prefork, still be making its mounts: the prepared step stays
            // until it is reaped).
            self.ending_init = Some(init);
            guard.disarm();
            let (exit_code, signal) = split_wait_status(status.expect("the loop's end"));
            return Ok(Ok(StepEnd {
                exit_code,
                signal,
                // The worker takes the step's CPU time from the cgroup.
                cpu_micros: 0,
            }));
        }
        let (init_status, cpu_micros) = sys::wait_with_usage(init)?;
        guard.disarm();
        self.step_data = None;
        // With prefork the init can end before the zygote has reaped the
        // program and written its status: wait for it (or for the end of
        // every writer).
        if status.is_none() && status_open {
            status = read_status(&status_read)?;
        }
        // An init that exited by itself (0) got past its set-up, the user
        // namespace limit included. A known status alone does not say so:
        // with prefork it comes from the zygote, whose program ends at once
        // when the init failed before its mounts were made.
        self.userns_closed |= status.is_some() && init_status == 0;
        // An init ends with a code of its own (127) only when it could not
        // set the step up; with prefork, its program may have been forked
        // already and went with it.
        let init_failed = libc::WIFEXITED(init_status) && libc::WEXITSTATUS(init_status) != 0;
        let (exit_code, signal) = match status {
            Some(status) if !init_failed => split_wait_status(status),
            // Killed before the program's end was seen (the worker's kill,
            // or an OOM kill of the init itself), or failed.
            _ => match split_wait_status(init_status) {
                (_, Some(signal)) => (None, Some(signal)),
                (code, None) => (code, None),
            },
        };
        Ok(Ok(StepEnd {
            exit_code,
            signal,
            cpu_micros,
        }))
    }

    /// Waits for the end of the last step's init, when its answer did not
    /// (see `run_step`): once it has exited, the kernel has killed whatever
    /// was left in the step and taken down its namespaces.
    fn reap_step(&mut self) -> io::Result<()> {
        if let Some(init) = self.ending_init.take() {
            let (init_status, _) = sys::wait_with_usage(init)?;
            self.step_data = None;
            // Its program's status came in: see `run_step`.
            self.userns_closed |= init_status == 0;
        }
        Ok(())
    }

    /// Clones the next step's init (see `Standby`), which mounts the step's
    /// `/tmp`, `/dev/shm` (with `tmp_options`) and `/proc` and waits on its
    /// socket for its step; with `filter_early`, it installs the seccomp
    /// filters before it waits (then it can serve only a step that needs no
    /// mount of its own).
    fn new_standby(&mut self, tmp_options: CString, filter_early: bool) -> io::Result<Standby> {
        let (guard, step, data) = self.clone_init(tmp_options, InitStart::Wait { filter_early })?;
        Ok(Standby {
            guard,
            step: step.ok_or_else(|| io::Error::other("a waiting init without a socket"))?,
            generation: self.generation,
            data,
        })
    }

    /// Clones a step's init: one that waits for its step (and the keeper's
    /// end of its socket), or one given its step and descriptors now.
    fn clone_init(
        &mut self,
        tmp_options: CString,
        start: InitStart,
    ) -> io::Result<(InitGuard, Option<OwnedFd>, std::rc::Rc<InitData>)> {
        // One init at a time runs on `init_stack`.
        if self.standby.is_some() || self.ending_init.is_some() {
            return Err(io::Error::other("an init is still on the init stack"));
        }
        // The init shares the keeper's memory, which no program may reach.
        sys::not_dumpable()?;
        let (filtered_early, step, fds, sockets) = match start {
            InitStart::Wait { filter_early } => {
                let (step, init_end) = sys::seqpacket_pair()?;
                (filter_early, None, None, Some((init_end, step)))
            }
            InitStart::Now(step, fds) => (false, Some(*step), Some(fds), None),
        };
        let data = std::rc::Rc::new(InitData {
            tmp_options,
            close_userns: !self.userns_closed,
            signals: self.signals,
            filters: self.filters.clone(),
            filtered_early,
            fds,
            step: std::cell::OnceCell::new(),
        });
        if let Some(step) = step {
            if data.step.set(step).is_err() {
                return Err(io::Error::other("an init given two steps"));
            }
        }
        // The init reads `data`, which the keeper keeps (in `Standby`, then
        // `step_data`) until it has reaped the init; it gets descriptor
        // numbers, which name its own copies; the closure itself is moved
        // to the init's stack.
        let init_data: &InitData = &data;
        let socket_fds = sockets
            .as_ref()
            .map(|(init_end, step)| (init_end.as_raw_fd(), step.as_raw_fd()));
        let program_stack = &mut self.program_stack;
        let init_main = move || {
            // A panic must not unwind into the keeper's frames.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                step_init(init_data, program_stack, socket_fds)
            }));
            sys::exit_now(127)
        };
        let pid = sys::clone_into_namespaces(&mut self.init_stack, init_main)?;
        Ok((InitGuard(Some(pid)), sockets.map(|(_, step)| step), data))
    }

    /// Makes sure a live zygote of the step's interpreter is there.
    fn zygote(&mut self, spec: &StepSpec) -> io::Result<()> {
        let interpreter = CString::new(spec.argv.first().map_or("", String::as_str))?;
        if let Some(zygote) = &self.zygote {
            if zygote.interpreter() == interpreter.as_c_str() && zygote.alive() {
                return Ok(());
            }
        }
        self.zygote = None;
        let envp = spec
            .env
            .iter()
            .map(|(k, v)| CString::new(format!("{k}={v}")))
            .collect::<Result<Vec<_>, _>>()?;
        let filter = self.filters.first().map_or(&[][..], Vec::as_slice);
        if self.filters.len() != 1 {
            return Err(io::Error::other("prefork takes exactly one seccomp filter"));
        }
        self.zygote = Some(prefork::Zygote::start(
            &interpreter,
            &envp,
            filter,
            self.signals,
        )?);
        // The socket pair to the zygote counts in the network namespace it
        // was made in, where the program would see it: the job gets another.
        self.renew_network()
    }

    /// Moves the keeper to a new network namespace and takes its
    /// fingerprint there. Should anything fail once the keeper has moved,
    /// the fingerprint is left empty, so that the next job's end renews the
    /// namespace again rather than compare files of the old one.
    fn renew_network(&mut self) -> io::Result<()> {
        self.generation += 1;
        sys::new_network_namespace()?;
        self.fresh_network = Vec::new();
        self.network = NetworkFiles::open()?;
        self.fresh_network = self.network.fingerprint()?;
        Ok(())
    }

    fn receive(&mut self) -> io::Result<Option<(Request, Vec<OwnedFd>)>> {
        let mut prefix = [0u8; 4];
        // A worker that closes its end before reading the keeper's last
        // answer makes this read fail with ECONNRESET, not return 0.
        let (mut got, fds) = match super::sys::recv_with_fds(self.control.as_raw_fd(), &mut prefix)
        {
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(None),
            received => received?,
        };
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
        self.control
            .write_all(&protocol::encode(reply))
            .map_err(|e| match e.kind() {
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => {
                    io::Error::other(WorkerGone)
                }
                _ => e,
            })
    }
}

impl Drop for Keeper {
    /// An init still ending (the last step's, answered early) runs in this
    /// memory: it goes before anything it may read is freed.
    fn drop(&mut self) {
        drop(InitGuard(self.ending_init.take()));
        // And a standby init too (its guard kills and reaps it).
        self.standby = None;
    }
}

/// A step's init cloned ahead, when the last job ended, while the worker
/// reads its result and the slot waits for the next one: its namespaces are
/// made and its `/tmp`, `/dev/shm` and `/proc` mounted, and it waits on its
/// socket for the step. A step then costs a message and the program's start
/// rather than the clone and the mounts. Its copy of the keeper's mount
/// table and its network namespace are those of its clone: it serves only
/// while `generation` says the keeper changed neither (a prefork zygote
/// started, which renews the network namespace, or a job's `/judge`
/// mounted, say), else a new init is cloned for the step as it starts.
struct Standby {
    /// Kills and reaps it when dropped unused; first, so that it is gone
    /// before `data` is freed.
    guard: InitGuard,
    /// The keeper's end of the init's socket.
    step: OwnedFd,
    /// The keeper's `generation` at the clone.
    generation: u64,
    /// What the init reads.
    /// (Shared, not boxed: moving a `Box` would claim it unique while the
    /// init holds a reference into it.)
    data: std::rc::Rc<InitData>,
}

/// What a step's init reads of the keeper's memory: what it sets up while
/// it waits, and then its step, kept by the keeper until the init is
/// reaped.
struct InitData {
    tmp_options: CString,
    close_userns: bool,
    /// The keeper's changed signal dispositions, which the init sets back.
    signals: u64,
    /// The seccomp filters, which the init installs before it starts the
    /// program: before it waits for its step when `filtered_early`, else
    /// once the step's own mounts are made.
    filters: std::rc::Rc<[Vec<libc::sock_filter>]>,
    filtered_early: bool,
    /// For an init cloned with its step: the numbers of the step's
    /// descriptors, whose copies it has (the clone copied the keeper's
    /// table). `None` for a waiting init, which receives them.
    fds: Option<StepFds>,
    step: std::cell::OnceCell<PreparedStep>,
}

/// How a step's init starts (`Keeper::clone_init`).
enum InitStart {
    /// Waiting for its step, on a socket.
    Wait { filter_early: bool },
    /// With its step and the step's descriptors.
    Now(Box<PreparedStep>, StepFds),
}

/// The numbers of a step's descriptors (see `run_step`), four or six.
#[derive(Default, Clone, Copy)]
struct StepFds {
    fds: [RawFd; 6],
    count: usize,
}

impl StepFds {
    fn push(&mut self, fd: RawFd) {
        self.fds[self.count] = fd;
        self.count += 1;
    }

    fn as_slice(&self) -> &[RawFd] {
        &self.fds[..self.count]
    }
}

/// Kills and reaps a step's init when dropped armed: the way out of
/// `run_step` on an error, which leaves nothing running in the keeper's
/// memory (the init's exit takes the rest of its step with it).
struct InitGuard(Option<libc::pid_t>);

impl InitGuard {
    fn pid(&self) -> libc::pid_t {
        self.0.expect("an armed guard")
    }

    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for InitGuard {
    fn drop(&mut self) {
        if let Some(init) = self.0.take() {
            sys::kill(init);
            let _ = sys::wait_with_usage(init);
        }
    }
}

/// The control socket's other end is closed: the worker is gone.
#[derive(Debug)]
struct WorkerGone;

impl std::fmt::Display for WorkerGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the worker closed the control socket")
    }
}

impl std::error::Error for WorkerGone {}

/// Everything a step's processes need, made before the clone.
struct PreparedStep {
    /// The step's working directory, `/work` or `/judge`.
    dir: &'static CStr,
    /// The job's other directory, when mounted: detached in the step's
    /// mount namespace, so the step cannot see it.
    hide: Option<&'static CStr>,
    /// Mounted read-only in the step's mount namespace (a checker's run).
    read_only: Option<&'static CStr>,
    argv: Vec<CString>,
    /// Read only through `exec_arrays`, which points into it.
    _envp: Vec<CString>,
    /// `argv` and `envp` as the NULL-terminated arrays `execve` takes, made
    /// here so that the program allocates nothing between its clone and
    /// its exec (it shares the init's memory until then).
    exec_arrays: sys::ExecArrays,
    tmp_options: CString,
    rlimits: Vec<(u32, u64, u64)>,
}

impl PreparedStep {
    fn new(spec: &StepSpec, work_mounted: bool, judge_mounted: bool) -> io::Result<Self> {
        if spec.argv.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty argv"));
        }
        let argv = spec
            .argv
            .iter()
            .map(|a| CString::new(a.as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        let envp = spec
            .env
            .iter()
            .map(|(k, v)| CString::new(format!("{k}={v}")))
            .collect::<Result<Vec<_>, _>>()?;
        let tmp_options = CString::new(format!(
            "size={},nr_inodes={},mode=1777",
            spec.tmp_bytes, spec.tmp_inodes
        ))?;
        let dir = directory(spec.view);
        let (other, other_mounted) = match spec.view {
            View::Solution => (JUDGE, judge_mounted),
            View::CheckerCompile | View::Checker => (WORK, work_mounted),
        };
        let read_only = (spec.view == View::Checker).then_some(JUDGE);
        if read_only.is_some() && !judge_mounted {
            return Err(io::Error::other("a checker's run before /judge was made"));
        }
        Ok(Self {
            dir,
            hide: other_mounted.then_some(other),
            read_only,
            exec_arrays: sys::ExecArrays::new(&argv, &envp),
            argv,
            _envp: envp,
            tmp_options,
            rlimits: spec.rlimits.clone(),
        })
    }
}

impl PreparedStep {
    /// Whether the step's init mounts anything for the step itself (see
    /// `step_mounts`), which a filtered init could not.
    fn needs_mounts(&self) -> bool {
        self.hide.is_some() || self.read_only.is_some()
    }
}

/// Sends `signal` to the program the step's init `init` started (its only
/// child, found in `/proc`), and to the program's process group; SIGKILL
/// goes to the init, which takes the whole step with it. A program already
/// gone is nothing to signal.
fn signal_program(init: libc::pid_t, program: Option<libc::pid_t>, signal: i32) {
    if signal == libc::SIGKILL {
        return sys::kill(init);
    }
    let program = program.or_else(|| {
        let children = std::fs::read_to_string(format!("/proc/{init}/task/{init}/children"));
        children
            .ok()
            .and_then(|text| text.split_whitespace().next()?.parse::<libc::pid_t>().ok())
    });
    if let Some(program) = program {
        sys::signal(program, signal);
    }
}

/// The files of `/proc/self/net` that `NetworkFiles::fingerprint` reads,
/// kept open and read from their start each time (six opens and closes per
/// job otherwise). Each shows the network namespace its opener was in when
/// it opened it, so they are opened again in every new namespace.
struct NetworkFiles {
    /// The interface and protocol counters, whole.
    counters: Vec<std::fs::File>,
    /// `sockstat` and `sockstat6`, whose socket counts are picked out.
    sockets: Vec<std::fs::File>,
}

impl NetworkFiles {
    fn open() -> io::Result<Self> {
        let open = |names: &[&str]| -> io::Result<Vec<std::fs::File>> {
            let mut files = Vec::new();
            for name in names {
                match std::fs::File::open(format!("/proc/self/net/{name}")) {
                    Ok(file) => files.push(file),
                    // A kernel without IPv6 has no `snmp6` or `sockstat6`.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(files)
        };
        Ok(Self {
            counters: open(&["dev", "snmp", "snmp6", "netstat"])?,
            sockets: open(&["sockstat", "sockstat6"])?,
        })
    }

    /// What a job can change in the keeper's network namespace and find
    /// again, as the kernel shows it: the interface counters (every packet
    /// on loopback), the protocol counters (every connection, datagram, ICMP
    /// message, IPv4 or IPv6), and how many sockets exist (a socket the
    /// kernel still holds after its processes are gone, waiting for the
    /// garbage collector or closing) and are in `TIME_WAIT`. Programs can
    /// make no other socket families (seccomp), and no routes, addresses or
    /// sysctls (no capabilities). The host-wide figures of `sockstat`
    /// (orphans, allocated sockets, memory) are left out: they move with the
    /// host, not the job.
    fn fingerprint(&self) -> io::Result<Vec<u8>> {
        let mut fingerprint = Vec::with_capacity(16 << 10);
        for file in &self.counters {
            fingerprint.extend(super::sys::read_snapshot(file)?);
        }
        for file in &self.sockets {
            let text = super::sys::read_snapshot(file)?;
            for line in String::from_utf8_lossy(&text).lines() {
                let words: Vec<&str> = line.split_whitespace().collect();
                let Some((label, pairs)) = words.split_first() else {
                    continue;
                };
                fingerprint.extend(label.as_bytes());
                for pair in pairs.chunks(2) {
                    if let [name @ ("used" | "inuse" | "tw"), value] = pair {
                        fingerprint.extend(format!(" {name} {value}").as_bytes());
                    }
                }
                fingerprint.push(b'\n');
            }
        }
        Ok(fingerprint)
    }
}

/// The step's PID 1: fresh mounts, then it waits on `socket` for its step
/// (`data.step`, set by the keeper before it sends the step's descriptors:
/// the standard three and a status pipe), then the program as its only
/// child. It reports the program's wait status through the status pipe and
/// exits when the program does, which makes the kernel kill everything else
/// in the step. `keepers_end` is its copy of the keeper's end of the socket.
///
/// A prefork step (two more descriptors: the init's end of the ready pipe
/// and of the arrival pipe) gets its program from the slot's zygote instead: the
/// init says when its mounts are made, and the program, forked into the
/// step's namespaces and adopted by this init, sends its pid when it is
/// here. No pid means no program: the step ends as 127.
///
/// The init shares the keeper's memory (`sys::clone_into_namespaces`): it
/// allocates nothing, and the program it spawns runs on `program_stack`.
fn step_init(
    data: &InitData,
    program_stack: &mut sys::ChildStack,
    sockets: Option<(RawFd, RawFd)>,
) -> ! {
    // The keeper's handlers (Rust's for SIGSEGV and SIGBUS) would run on
    // the keeper's memory if a program sent PID 1 their signal; with none,
    // the kernel drops what a program sends its namespace's init. The
    // program, cloned from this init, starts with these dispositions and
    // this mask.
    sys::reset_signals(data.signals);
    // What every step has, made before the step is known; a failure is
    // reported to the step once its descriptors are here. The filters
    // apply to this init and to the program it starts (seccomp is per
    // process: the keeper, which shares this memory, has none).
    let mut set_up = init_mounts(data);
    if data.filtered_early {
        set_up = set_up.and_then(|()| install_filters(data));
    }
    let mut received: [Option<OwnedFd>; 6] = Default::default();
    let count = match (data.fds, sockets) {
        // Cloned with its step: its copies of the step's descriptors.
        (Some(fds), _) => {
            for (slot, &fd) in received.iter_mut().zip(fds.as_slice()) {
                *slot = Some(sys::copied_fd(fd));
            }
            fds.count
        }
        // Waiting: they come on its socket (its copy of the keeper's end
        // goes first, so that the keeper's closing its own ends the wait).
        (None, Some((socket, keepers_end))) => {
            drop(sys::copied_fd(keepers_end));
            let count = match sys::receive_fds(socket, &mut received) {
                Ok(count) => count,
                Err(_) => sys::exit_now(127),
            };
            drop(sys::copied_fd(socket));
            count
        }
        (None, None) => sys::exit_now(127),
    };
    let [stdin, stdout, stderr, status, ready, arrival] = received;
    let (Some(stdin), Some(stdout), Some(stderr), Some(status)) = (stdin, stdout, stderr, status)
    else {
        // The keeper let this init go unused (or sent too little).
        sys::exit_now(127)
    };
    let stdio = [stdin, stdout, stderr];
    let prefork = match (count, ready, arrival) {
        (4, None, None) => None,
        (6, Some(ready), Some(arrival)) => Some((ready, arrival)),
        _ => sys::exit_now(127),
    };
    let Some(step) = data.step.get() else {
        sys::exit_now(127)
    };
    let set_up = set_up.and_then(|()| {
        if data.filtered_early {
            // The keeper sends such an init no step with mounts of its own.
            if step.needs_mounts() {
                return Err(io::Error::from_raw_os_error(libc::EPERM));
            }
            return Ok(());
        }
        step_mounts(step)?;
        install_filters(data)
    });
    if let Err(e) = set_up {
        fail_step(&stdio, "set up the step", &e);
    }
    // The program holds the pipes; this init must not keep them open. Nor
    // anything else of the keeper's (its control socket above all): this
    // init keeps only the status pipe, as descriptor 3.
    let program = match prefork {
        // The program shares the init's memory until its exec, which the
        // init sleeps through: no copy of the init is made to be thrown
        // away at the exec.
        None => {
            let mut child = || {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    exec_program(step, &stdio)
                }));
                sys::exit_now(127)
            };
            match sys::spawn_sharing_memory(program_stack, &mut child) {
                Ok(pid) => {
                    // The program made the shared memory dumpable for a
                    // moment; whatever way it left, it is not now.
                    if sys::not_dumpable().is_err() {
                        sys::kill(pid);
                        sys::exit_now(127);
                    }
                    drop(stdio);
                    pid
                }
                Err(e) => fail_step(&stdio, "start the program", &e),
            }
        }
        Some((ready, arrival)) => {
            drop(stdio);
            drop(status);
            sys::write_raw(ready.as_raw_fd(), &[1]);
            drop(ready);
            // Nothing else of the keeper's stays open here either.
            const ARRIVAL_FD: RawFd = 3;
            if arrival.as_raw_fd() != ARRIVAL_FD && sys::dup_to(&arrival, ARRIVAL_FD).is_err() {
                sys::exit_now(127);
            }
            std::mem::forget(arrival);
            if sys::close_from(ARRIVAL_FD + 1).is_err() {
                sys::exit_now(127);
            }
            for fd in 0..ARRIVAL_FD {
                let _ = sys::inherited_fd(fd).map(drop);
            }
            let mut pid = [0u8; 4];
            let program = match sys::read_full(ARRIVAL_FD, &mut pid) {
                Ok(4) if libc::pid_t::from_ne_bytes(pid) > 1 => libc::pid_t::from_ne_bytes(pid),
                _ => sys::exit_now(127),
            };
            prefork_init(program)
        }
    };
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

/// A prefork step's init once its program is here: the program is not its
/// child (its parent, the zygote, reports its status), so it waits
/// for the program's end through a pidfd, and lets the kernel reap what it
/// adopts. Then it exits, which ends the step.
fn prefork_init(program: libc::pid_t) -> ! {
    sys::ignore_children();
    if let Ok(pidfd) = sys::pidfd_open(program) {
        let _ = sys::poll_readable([pidfd.as_raw_fd()]);
    }
    sys::exit_now(0)
}

/// The mounts every step's init makes, before its step is known.
fn init_mounts(data: &InitData) -> io::Result<()> {
    sys::die_with_parent()?;
    // Nothing mounted here may reach the keeper's mount namespace.
    sys::mount(c"none", c"/", None, libc::MS_REC | libc::MS_PRIVATE, None)?;
    let nodev = libc::MS_NOSUID | libc::MS_NODEV;
    for target in [c"/tmp", c"/dev/shm"] {
        sys::mount(
            c"tmpfs",
            target,
            Some(c"tmpfs"),
            nodev,
            Some(&data.tmp_options),
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
    if data.close_userns {
        sys::write_file(c"/proc/sys/user/max_user_namespaces", b"0")?;
    }
    Ok(())
}

/// Installs the seccomp filters on this process (the init, whose program
/// inherits them). The init still has its capabilities in the slot's user
/// namespace, which lets it install them without no_new_privs; the program
/// sets that before its exec.
fn install_filters(data: &InitData) -> io::Result<()> {
    for filter in data.filters.iter() {
        sys::install_filter(filter)?;
    }
    Ok(())
}

/// The mounts of the step's view, once the step is known.
fn step_mounts(step: &PreparedStep) -> io::Result<()> {
    // The submission and the checker each see only their own directory.
    // The keeper made both mounts, so they are not locked in this copy of
    // its mount namespace: detaching one here uncovers the empty, read-only
    // directory of bubblewrap's root beneath it, and changes nothing for
    // the keeper.
    if let Some(hidden) = step.hide {
        sys::detach(hidden)?;
    }
    if let Some(dir) = step.read_only {
        sys::mount(
            c"none",
            dir,
            None,
            libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
            None,
        )?;
    }
    Ok(())
}

/// The program's process: its descriptors, directory, limits and the end of
/// every privilege, then `exec`.
fn exec_program(step: &PreparedStep, stdio: &[OwnedFd; 3]) -> ! {
    let result = (|| -> io::Result<io::Error> {
        sys::setsid()?;
        // When the slot's cgroup runs out of memory, the kernel kills the
        // most attractive process in it: make that the program (raising the
        // score needs no privilege; a program may lower its own back to 0:
        // see docs/security.md). This process, a vfork child, sets only its
        // own score (a write by the init would be the keeper's too, as they
        // share their memory); its /proc files are the slot uid's only
        // while that memory is dumpable, which it is for these few calls:
        // no process that could use that runs now (the last step's are
        // gone, the program is not yet exec'd). Should the init be killed
        // meanwhile, the keeper makes the memory not dumpable again before
        // its next step (`run_step`).
        sys::set_dumpable(true)?;
        let adjusted = sys::write_file(c"/proc/self/oom_score_adj", b"1000");
        sys::not_dumpable()?;
        adjusted?;
        // Its signal dispositions and mask are the init's, set back to the
        // defaults before this process was cloned (`step_init`).
        for (target, fd) in stdio.iter().enumerate() {
            sys::dup_to(fd, target as RawFd)?;
        }
        sys::close_from(3)?;
        sys::chdir(step.dir)?;
        for &(resource, soft, hard) in &step.rlimits {
            sys::setrlimit(resource, soft, hard)?;
        }
        // The seccomp filters are the init's, inherited (`step_init`).
        sys::drop_all_capabilities()?;
        Ok(step.exec_arrays.execve())
    })();
    // The keeper runs on in this memory: nothing allocated on the way out.
    let (what, error): (&[u8], _) = match result {
        Ok(exec_error) => (b"exec", exec_error),
        Err(e) => (b"confine the program", e),
    };
    let name = step.argv[0].as_bytes();
    sys::write_failure(
        2,
        &[b"code-runner: cannot ", what, b" ", name, b": "],
        &error,
    );
    sys::exit_now(127)
}

/// The working directory of a step with this view.
fn directory(view: View) -> &'static CStr {
    match view {
        View::Solution => WORK,
        View::CheckerCompile | View::Checker => JUDGE,
    }
}

/// Creates a new file `name` in `dir`: never through a link, never an
/// existing one.
fn create_file(dir: &CStr, name: &str, mode: u32) -> io::Result<std::fs::File> {
    // The worker checks names too; a keeper does not trust its input.
    if !crate::is_plain_file_name(name) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a plain file name",
        ));
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dir_path(dir).join(name))
}

/// Removes the entries `names` of `dir` (a file, a link itself, a FIFO), if
/// there; a directory of that name is an error.
fn remove_files(dir: &CStr, names: &[String]) -> io::Result<()> {
    for name in names {
        if !crate::is_plain_file_name(name) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a plain file name",
            ));
        }
        match std::fs::remove_file(dir_path(dir).join(name)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

fn dir_path(dir: &CStr) -> &std::path::Path {
    use std::os::unix::ffi::OsStrExt;
    std::path::Path::new(std::ffi::OsStr::from_bytes(dir.to_bytes()))
}

/// A step that cannot start tells the program's stderr why and ends as 127,
/// allocating nothing (its init shares the keeper's memory).
fn fail_step(stdio: &[OwnedFd; 3], what: &str, error: &io::Error) -> ! {
    sys::write_failure(
        stdio[2].as_raw_fd(),
        &[b"code-runner: cannot ", what.as_bytes(), b": "],
        error,
    );
    sys::exit_now(127)
}

/// The program's wait status from the step's status pipe; `None` when every
/// writer closed it without one.
fn read_status(status: &OwnedFd) -> io::Result<Option<i32>> {
    let mut bytes = [0u8; 4];
    Ok((sys::read_full(status.as_raw_fd(), &mut bytes)? == 4).then(|| i32::from_ne_bytes(bytes)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    /// What a checker's compile could leave in `/judge` under a test file's
    /// name — a link to a file outside, a FIFO — is removed, never followed
    /// or opened; a directory of that name is an error, not a way around.
    #[test]
    fn test_files_replace_planted_entries_without_following_them() {
        let base = std::env::temp_dir().join(format!("keeper-files-{}", std::process::id()));
        let dir = base.join("judge");
        std::fs::create_dir_all(&dir).unwrap();
        let outside = base.join("outside");
        std::fs::write(&outside, "keep").unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("input")).unwrap();
        let made = std::process::Command::new("/usr/bin/mkfifo")
            .arg(dir.join("output"))
            .status()
            .unwrap();
        assert!(made.success());
        let c_dir = CString::new(dir.as_os_str().as_bytes()).unwrap();
        let names = ["input".to_owned(), "output".to_owned()];
        remove_files(&c_dir, &names).unwrap();
        for name in &names {
            create_file(&c_dir, name, 0o444)
                .unwrap()
                .write_all(b"new")
                .unwrap();
        }
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(dir.join("input")).unwrap(), "new");
        assert_eq!(std::fs::read_to_string(dir.join("output")).unwrap(), "new");
        // Once there, a name is never opened again: only a new file is written.
        assert!(create_file(&c_dir, "input", 0o444).is_err());
        std::fs::create_dir(dir.join("answer")).unwrap();
        std::fs::write(dir.join("answer").join("x"), "").unwrap();
        assert!(remove_files(&c_dir, &["answer".to_owned()]).is_err());
        assert!(remove_files(&c_dir, &["../outside".to_owned()]).is_err());
        assert!(create_file(&c_dir, "../outside", 0o444).is_err());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
