//! Watches one running sandbox: feeds its stdin, collects stdout and stderr
//! through pipes under the output cap, and kills it when the wall clock or
//! the cap runs out.

use std::process::ExitStatus;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Child;

/// What the supervisor saw of one sandbox.
#[derive(Debug)]
pub(crate) struct Supervised {
    pub status: Option<ExitStatus>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub timed_out: bool,
    pub output_exceeded: bool,
    pub wall_time: Duration,
}

/// Runs `child` to its end or its limits. The child must have been spawned
/// with piped stdout and stderr (and piped stdin when `stdin` is not empty).
pub(crate) async fn supervise(
    mut child: Child,
    stdin: Vec<u8>,
    wall_limit: Duration,
    output_cap: u64,
    started: Instant,
) -> Supervised {
    if let Some(mut pipe) = child.stdin.take() {
        // A program that never reads its input must not stall us: the writer
        // runs on its own and simply fails once the sandbox is gone.
        tokio::spawn(async move {
            let _ = pipe.write_all(&stdin).await;
        });
    }
    let mut out_pipe = child.stdout.take();
    let mut err_pipe = child.stderr.take();
    let mut seen = Supervised {
        status: None,
        stdout: Vec::new(),
        stderr: Vec::new(),
        timed_out: false,
        output_exceeded: false,
        wall_time: Duration::ZERO,
    };
    let mut out_buf = vec![0u8; 32 * 1024];
    let mut err_buf = vec![0u8; 32 * 1024];
    let deadline = tokio::time::sleep_until((started + wall_limit).into());
    tokio::pin!(deadline);
    loop {
        if seen.status.is_some() && out_pipe.is_none() && err_pipe.is_none() {
            break;
        }
        tokio::select! {
            read = read_some(&mut out_pipe, &mut out_buf) => {
                if let Some(chunk) = read {
                    let chunk = &out_buf[..chunk];
                    if !seen.take_output(chunk, true, output_cap) {
                        let _ = child.start_kill();
                        out_pipe = None;
                        err_pipe = None;
                    }
                } else {
                    out_pipe = None;
                }
            }
            read = read_some(&mut err_pipe, &mut err_buf) => {
                if let Some(chunk) = read {
                    let chunk = &err_buf[..chunk];
                    if !seen.take_output(chunk, false, output_cap) {
                        let _ = child.start_kill();
                        out_pipe = None;
                        err_pipe = None;
                    }
                } else {
                    err_pipe = None;
                }
            }
            status = child.wait(), if seen.status.is_none() => {
                seen.wall_time = started.elapsed();
                seen.status = status.ok();
            }
            () = &mut deadline => {
                // Killing bubblewrap takes its PID namespace, and with it
                // every process of the job, down.
                seen.timed_out = seen.status.is_none();
                let _ = child.start_kill();
                if seen.status.is_none() {
                    seen.status = child.wait().await.ok();
                    seen.wall_time = started.elapsed();
                }
                break;
            }
        }
    }
    seen
}

impl Supervised {
    /// Keeps what fits under the cap; false when the cap was reached.
    fn take_output(&mut self, chunk: &[u8], is_stdout: bool, cap: u64) -> bool {
        let used = (self.stdout.len() + self.stderr.len()) as u64;
        let room = cap.saturating_sub(used) as usize;
        let kept = &chunk[..chunk.len().min(room)];
        if is_stdout {
            self.stdout.extend_from_slice(kept);
        } else {
            self.stderr.extend_from_slice(kept);
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
async fn read_some<R: AsyncReadExt + Unpin>(pipe: &mut Option<R>, buf: &mut [u8]) -> Option<usize> {
    match pipe {
        Some(reader) => match reader.read(buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => Some(n),
        },
        None => std::future::pending().await,
    }
}
