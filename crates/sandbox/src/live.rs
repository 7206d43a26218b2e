//! Live runs: a program's output reported chunk by chunk as it writes it,
//! and (interactive runs) its stdin and signals arriving while it runs.
//!
//! The sandbox never waits for whoever reads the chunks: [`LiveIo::output`]
//! is a bounded channel written with `try_send`, and a chunk that finds it
//! full is dropped from the live view (the next one still carries its true
//! byte offset, so a reader sees the gap). The step's captured output, and
//! so the final result, is complete either way: live output is a view, the
//! result is the record.
//!
//! [`Sandbox::execute_live`](crate::Sandbox::execute_live) takes a
//! [`LiveIo`]; backends that cannot stream report the whole output once the
//! step ends ([`report_at_end`]), and ignore live stdin.

use std::sync::Arc;

use tokio::sync::{mpsc, Mutex};

use crate::{Execution, StepReport};

/// Which step and stream a chunk comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    CompileStdout,
    CompileStderr,
    Stdout,
    Stderr,
}

/// Bytes a program wrote, and where they start in their stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputChunk {
    pub stream: OutputStream,
    /// Bytes of this stream before this chunk (counting dropped chunks).
    pub offset: u64,
    pub data: Vec<u8>,
}

/// Input to an interactive run's program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StdinEvent {
    Data(Vec<u8>),
    /// The end of input: the program's stdin is closed.
    End,
}

/// A live run's channels.
#[derive(Debug, Clone)]
pub struct LiveIo {
    /// Where output chunks go; bounded, never waited on.
    pub output: mpsc::Sender<OutputChunk>,
    /// Interactive runs: the program's stdin, after `Program::stdin`, until
    /// [`StdinEvent::End`] or the channel closes. `None`: the program's
    /// stdin is `Program::stdin` alone. Shared only to keep [`LiveIo`]
    /// cloneable; one step takes it.
    pub stdin: Option<Arc<Mutex<mpsc::Receiver<StdinEvent>>>>,
    /// Interactive runs: signals (numbers) to send to the running program.
    pub signals: Option<Arc<Mutex<mpsc::Receiver<i32>>>>,
}

impl LiveIo {
    /// Reports a chunk if there is room; false when it was dropped.
    pub(crate) fn report(&self, stream: OutputStream, offset: u64, data: &[u8]) -> bool {
        if data.is_empty() {
            return true;
        }
        self.output
            .try_send(OutputChunk {
                stream,
                offset,
                data: data.to_vec(),
            })
            .is_ok()
    }
}

/// For backends that cannot stream: the whole output of each step, as one
/// chunk per stream, once the job is over.
pub fn report_at_end(live: &LiveIo, execution: &Execution) {
    let send = |report: &StepReport, out: OutputStream, err: OutputStream| {
        live.report(out, 0, &report.stdout);
        live.report(err, 0, &report.stderr);
    };
    if let Some(compile) = &execution.compile {
        send(
            compile,
            OutputStream::CompileStdout,
            OutputStream::CompileStderr,
        );
    }
    if let Some(run) = &execution.run {
        send(run, OutputStream::Stdout, OutputStream::Stderr);
    }
}
