//! Live runs through the queue (SPEC §9): per task, an *output* log the
//! worker appends to (state changes and output chunks) and, for interactive
//! runs, an *input* log the API appends to (stdin chunks, end of input,
//! signals). Both are append-only logs read from any entry on, so a
//! client that reconnects resumes where it stopped (`Last-Event-ID`), and
//! the API process holding a client need not be on the worker's machine.
//!
//! - Redis: one stream per task and direction, `P:live:{id}` and
//!   `P:input:{id}`, expiring with the task's state (`result_ttl`);
//!   readers block in `XREAD`.
//! - Embedded: the same logs in process, readers woken by a notification.
//!
//! Entry ids are the backend's (`<ms>-<seq>` for Redis, `0-<n>` embedded):
//! opaque to clients, increasing within a log, and valid only with it.
//!
//! What a log holds is bounded by the job: output chunks only up to the
//! job's output cap (the sandbox stops reporting there), input by the
//! API's own limits on an interactive connection.

use std::time::Duration;

/// Which log of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LiveLog {
    /// Worker to clients: [`LiveEvent::State`] and [`LiveEvent::Output`].
    Output,
    /// Client to worker: stdin, its end, signals.
    Input,
}

/// Which stream of which step an output chunk is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LiveStream {
    CompileStdout,
    CompileStderr,
    Stdout,
    Stderr,
}

impl LiveStream {
    /// The name clients see (the SSE event name).
    pub fn name(self) -> &'static str {
        match self {
            LiveStream::CompileStdout => "compile_stdout",
            LiveStream::CompileStderr => "compile_stderr",
            LiveStream::Stdout => "stdout",
            LiveStream::Stderr => "stderr",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "compile_stdout" => LiveStream::CompileStdout,
            "compile_stderr" => LiveStream::CompileStderr,
            "stdout" => LiveStream::Stdout,
            "stderr" => LiveStream::Stderr,
            _ => return None,
        })
    }
}

/// One entry of a live log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveEvent {
    /// The task's progress: `running` when a worker starts it.
    State(String),
    /// Bytes the program wrote; `offset` is the bytes of that stream before
    /// them (a gap means chunks were dropped from the live view).
    Output {
        stream: LiveStream,
        offset: u64,
        data: Vec<u8>,
    },
    /// Bytes for the program's stdin.
    Stdin(Vec<u8>),
    /// The end of the program's input.
    StdinEnd,
    /// A signal (its number) for the running program.
    Signal(i32),
}

/// A log entry and its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveEntry {
    pub id: String,
    pub event: LiveEvent,
}

/// How long a task's live logs are kept once its result is stored: a
/// client that comes later gets the whole output from the result, as for a
/// job that was not streamed.
pub const LIVE_AFTER_RESULT: Duration = Duration::from_secs(5 * 60);

/// Longest a single blocking read of a log waits.
pub const MAX_LIVE_WAIT: Duration = Duration::from_secs(30);

/// Most entries one read returns.
pub const LIVE_READ_COUNT: usize = 256;

impl LiveEvent {
    /// `(kind, offset or signal, data)`: how an entry is stored.
    pub(crate) fn to_fields(&self) -> (&'static str, i64, &[u8]) {
        match self {
            LiveEvent::State(state) => ("state", 0, state.as_bytes()),
            LiveEvent::Output {
                stream,
                offset,
                data,
            } => (
                stream.name(),
                i64::try_from(*offset).unwrap_or(i64::MAX),
                data,
            ),
            LiveEvent::Stdin(data) => ("stdin", 0, data),
            LiveEvent::StdinEnd => ("stdin_end", 0, &[]),
            LiveEvent::Signal(signal) => ("signal", i64::from(*signal), &[]),
        }
    }

    /// The event stored as [`LiveEvent::to_fields`] wrote it; `None` for
    /// anything else.
    pub(crate) fn from_fields(kind: &str, number: i64, data: Vec<u8>) -> Option<Self> {
        Some(match kind {
            "state" => LiveEvent::State(String::from_utf8(data).ok()?),
            "stdin" => LiveEvent::Stdin(data),
            "stdin_end" => LiveEvent::StdinEnd,
            "signal" => LiveEvent::Signal(i32::try_from(number).ok()?),
            other => LiveEvent::Output {
                stream: LiveStream::from_name(other)?,
                offset: u64::try_from(number).ok()?,
                data,
            },
        })
    }
}

/// True for a string that can be a live entry id: `<digits>-<digits>`.
pub fn is_entry_id(id: &str) -> bool {
    // Both parts must fit a u64, as Redis's stream ids do: a larger one
    // would make Redis answer an error, not an empty read.
    let part = |p: &str| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u64>().is_ok()
    };
    match id.split_once('-') {
        Some((ms, seq)) => part(ms) && part(seq),
        None => false,
    }
}

/// An entry id as `(ms, seq)`, for comparisons; `(0, 0)` for none.
pub(crate) fn entry_order(id: Option<&str>) -> (u64, u64) {
    id.and_then(|id| {
        let (ms, seq) = id.split_once('-')?;
        Some((ms.parse().ok()?, seq.parse().ok()?))
    })
    .unwrap_or((0, 0))
}

#[cfg(test)]
mod entry_id_tests {
    use super::is_entry_id;

    #[test]
    fn entry_ids_are_two_u64_parts() {
        assert!(is_entry_id("1700000000000-0"));
        assert!(is_entry_id("18446744073709551615-18446744073709551615"));
        assert!(!is_entry_id("18446744073709551616-0"));
        assert!(!is_entry_id("0-99999999999999999999"));
        assert!(!is_entry_id("x"));
        assert!(!is_entry_id("-1"));
        assert!(!is_entry_id("1-+2"));
    }
}
