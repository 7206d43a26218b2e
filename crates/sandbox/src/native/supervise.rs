//! Watches one running step: feeds its stdin, collects stdout and stderr
//! through pipes under the output cap, and has the keeper kill the step when
//! the wall clock, the CPU time of its whole process tree (read from the
//! slot's cgroup) or the cap runs out.

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use super::cgroup::CpuMeter;
use super::protocol::{Reply, Request, StepEnd};
use super::slot::{keeper_error, read_reply, send};
use crate::live::{LiveIo, OutputStream, StdinEvent};
use crate::SandboxError;

/// How long a keeper may take to report a step it was told to kill.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// The shortest wait between two readings of a step's CPU time: bounds how
/// far past its CPU limit a step can run (this times the slot's cores).
const CPU_CHECK_MIN: Duration = Duration::from_millis(10);

/// What the supervisor saw of one step.
#[derive(Debug)]
pub(crate) struct Supervised {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub timed_out: bool,
    pub output_exceeded: bool,
    pub wall_time: Duration,
    /// Where the output is reported as it comes, for a live step.
    live: Option<StepLive>,
}

/// The worker's ends of a step's stdin, stdout and stderr; a step whose
/// stdin and stdout are joined to another step's (an interactive test) has
/// only stderr here.
pub(crate) struct Pipes {
    stdin: Option<pipe::Sender>,
    stdout: Option<pipe::Receiver>,
    stderr: pipe::Receiver,
}

impl Pipes {
    pub(crate) fn new(
        stdin: Option<OwnedFd>,
        stdout: Option<OwnedFd>,
        stderr: OwnedFd,
    ) -> std::io::Result<Self> {
        Ok(Self {
            stdin: stdin.map(pipe::Sender::from_owned_fd).transpose()?,
            stdout: stdout.map(pipe::Receiver::from_owned_fd).transpose()?,
            stderr: pipe::Receiver::from_owned_fd(stderr)?,
        })
    }
}

/// What the supervisor enforces on one step.
pub(crate) struct StepLimits {
    pub wall_limit: Duration,
    pub output_cap: u64,
    /// CPU time of the whole tree, every process and thread together.
    pub cpu_limit: Duration,
    /// The most CPU time the step can use per second of wall time (its
    /// slot's CPU quota): readings are spaced so none can be missed by more
    /// than `CPU_CHECK_MIN` worth.
    pub cpu_rate: f64,
    pub cpu_meter: CpuMeter,
}

/// A live step: where its output chunks go, under which names, and
/// whether its stdin and signals come from the client too.
#[derive(Debug)]
pub(crate) struct StepLive {
    pub io: LiveIo,
    pub stdout: OutputStream,
    pub stderr: OutputStream,
    pub interactive: bool,
}

/// Drives a started step to its end: the keeper's `Exited` and the end of
/// both output pipes (every process of the step is gone by then).
pub(crate) async fn supervise(
    requests: &mut OwnedWriteHalf,
    replies: &mut OwnedReadHalf,
    pipes: Pipes,
    stdin: Vec<u8>,
    mut limits: StepLimits,
    started: Instant,
    live: Option<StepLive>,
) -> Result<(Supervised, StepEnd), SandboxError> {
    let Pipes {
        stdin: stdin_pipe,
        stdout,
        stderr,
    } = pipes;
    // A program that never reads its input must not stall us: the writer
    // runs on its own and simply fails once the step is gone. Dropping the
    // pipe at the end is the program's end of input.
    // An interactive step's stdin goes on with what the client sends,
    // until its end of input; the writer is stopped with the step.
    let live_stdin = live
        .as_ref()
        .filter(|live| live.interactive)
        .and_then(|live| live.io.stdin.clone());
    let writer = stdin_pipe.map(|mut stdin_pipe| {
        tokio::spawn(async move {
            if !stdin.is_empty() && stdin_pipe.write_all(&stdin).await.is_err() {
                return;
            }
            if let Some(events) = live_stdin {
                let mut events = events.lock().await;
                while let Some(StdinEvent::Data(bytes)) = events.recv().await {
                    if stdin_pipe.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
            }
        })
    });
    let _writer = AbortOnDrop(writer);
    let signal_source = live
        .as_ref()
        .filter(|live| live.interactive)
        .and_then(|live| live.io.signals.clone());
    let mut signals = match &signal_source {
        Some(source) => Some(source.lock().await),
        None => None,
    };
    let (mut out_pipe, mut err_pipe) = (stdout, Some(stderr));
    let mut seen = Supervised {
        stdout: Vec::new(),
        stderr: Vec::new(),
        timed_out: false,
        output_exceeded: false,
        wall_time: Duration::ZERO,
        live,
    };
    let mut end: Option<StepEnd> = None;
    let mut killed = false;
    let (mut out_buf, mut err_buf) = (vec![0u8; 32 * 1024], vec![0u8; 32 * 1024]);
    let deadline = tokio::time::sleep_until((started + limits.wall_limit).into());
    tokio::pin!(deadline);
    // No tree can use its CPU limit faster than its quota allows.
    let cpu_check = tokio::time::sleep(next_cpu_check(
        limits.cpu_limit,
        Duration::ZERO,
        limits.cpu_rate,
    ));
    tokio::pin!(cpu_check);
    let reply = read_reply(replies);
    tokio::pin!(reply);
    loop {
        if end.is_some() && out_pipe.is_none() && err_pipe.is_none() {
            break;
        }
        let mut over_cap = false;
        // In this order when several are ready at once: the step's end
        // before its deadline (a worker woken late, its threads yielding to
        // running programs, must not call a step that ended in time timed
        // out), and the limits before more output (a flood cannot hold
        // them off).
        tokio::select! {
            biased;
            answer = &mut reply, if end.is_none() => {
                seen.wall_time = started.elapsed();
                match answer {
                    Ok(Reply::Exited(step_end)) => end = Some(step_end),
                    Ok(Reply::Failed(what)) => return Err(keeper_error(what)),
                    Ok(other) => return Err(keeper_error(format!("unexpected {other:?}"))),
                    Err(e) => return Err(keeper_error(format!("lost during a step: {e}"))),
                }
            }
            () = &mut deadline => {
                if killed {
                    return Err(keeper_error("a killed step did not end".into()));
                }
                seen.timed_out = end.is_none();
                killed = true;
                if end.is_none() {
                    send(requests, &Request::Kill, &[]).await
                        .map_err(|e| keeper_error(format!("send kill: {e}")))?;
                }
                deadline.as_mut().reset((Instant::now() + KILL_GRACE).into());
            }
            () = &mut cpu_check, if !killed && end.is_none() => {
                let used = limits.cpu_meter.used();
                if used >= limits.cpu_limit {
                    seen.timed_out = true;
                    killed = true;
                    send(requests, &Request::Kill, &[]).await
                        .map_err(|e| keeper_error(format!("send kill: {e}")))?;
                    deadline.as_mut().reset((Instant::now() + KILL_GRACE).into());
                } else {
                    let wait = next_cpu_check(limits.cpu_limit, used, limits.cpu_rate);
                    cpu_check.as_mut().reset((Instant::now() + wait).into());
                }
            }
            signal = next_signal(&mut signals), if !killed && end.is_none() => match signal {
                None => signals = None,
                Some(libc::SIGKILL) => {
                    killed = true;
                    send(requests, &Request::Kill, &[]).await
                        .map_err(|e| keeper_error(format!("send kill: {e}")))?;
                    deadline.as_mut().reset((Instant::now() + KILL_GRACE).into());
                }
                Some(signal) => {
                    send(requests, &Request::Signal(signal), &[]).await
                        .map_err(|e| keeper_error(format!("send signal: {e}")))?;
                }
            },
            read = read_some(&mut out_pipe, &mut out_buf) => match read {
                Some(n) => over_cap = !seen.take_output(&out_buf[..n], true, limits.output_cap),
                None => out_pipe = None,
            },
            read = read_some(&mut err_pipe, &mut err_buf) => match read {
                Some(n) => over_cap = !seen.take_output(&err_buf[..n], false, limits.output_cap),
                None => err_pipe = None,
            },
        }
        if over_cap {
            // Stop reading; what is left in the pipes goes with them.
            out_pipe = None;
            err_pipe = None;
            if !killed && end.is_none() {
                killed = true;
                send(requests, &Request::Kill, &[])
                    .await
                    .map_err(|e| keeper_error(format!("send kill: {e}")))?;
                deadline
                    .as_mut()
                    .reset((Instant::now() + KILL_GRACE).into());
            }
        }
    }
    let end = end.expect("the loop ends only after Exited");
    Ok((seen, end))
}

/// Aborts the stdin writer when the step is over (it may be waiting for a
/// client's input that will never come).
struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

/// The next signal from an interactive client; never resolves without one.
async fn next_signal(
    signals: &mut Option<tokio::sync::MutexGuard<'_, tokio::sync::mpsc::Receiver<i32>>>,
) -> Option<i32> {
    match signals {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

/// When to read the CPU time next: not before the tree could have used what
/// is left of its limit at full speed.
fn next_cpu_check(limit: Duration, used: Duration, rate: f64) -> Duration {
    let left = limit.saturating_sub(used).as_secs_f64();
    Duration::from_secs_f64(left / rate.max(0.01)).max(CPU_CHECK_MIN)
}

impl Supervised {
    /// A step that ended with its whole slot (whose output is lost with it).
    pub(crate) fn killed_with_the_slot() -> Self {
        Self {
            stdout: Vec::new(),
            stderr: Vec::new(),
            timed_out: false,
            output_exceeded: false,
            wall_time: Duration::ZERO,
            live: None,
        }
    }

    /// Keeps what fits under the cap; false when the cap was reached.
    fn take_output(&mut self, chunk: &[u8], is_stdout: bool, cap: u64) -> bool {
        let used = (self.stdout.len() + self.stderr.len()) as u64;
        let room = cap.saturating_sub(used) as usize;
        let kept = &chunk[..chunk.len().min(room)];
        let kept_before = if is_stdout {
            let before = self.stdout.len();
            self.stdout.extend_from_slice(kept);
            before
        } else {
            let before = self.stderr.len();
            self.stderr.extend_from_slice(kept);
            before
        };
        if let Some(live) = &self.live {
            let stream = if is_stdout { live.stdout } else { live.stderr };
            // Never waits: a full channel drops the chunk from the live view.
            live.io.report(stream, kept_before as u64, kept);
        }
        if kept.len() < chunk.len() {
            self.output_exceeded = true;
            return false;
        }
        true
    }
}

/// Reads from a pipe that may already be closed; `None` at end of file (and
/// never resolves for a closed pipe, so `select!` ignores it).
async fn read_some(pipe: &mut Option<pipe::Receiver>, buf: &mut [u8]) -> Option<usize> {
    match pipe {
        Some(reader) => match reader.read(buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => Some(n),
        },
        None => std::future::pending().await,
    }
}
