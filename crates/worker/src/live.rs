//! Live jobs (SPEC §9): the worker's half of [`code_runner_queue::live`].
//!
//! - [`Forwarder`]: takes the sandbox's output chunks from a bounded
//!   channel and appends them to the task's output log, batching whatever
//!   has piled up while the last append was on its way. The sandbox never
//!   waits for it: when Redis is slow the channel fills and the sandbox
//!   drops chunks from the live view (their bytes stay in the result; the
//!   next chunk's offset shows the gap). Every chunk reported is appended
//!   before the job's result is stored, so a reader sees the output, then
//!   the result.
//! - [`pump_input`]: an interactive job's stdin and signals, read from the
//!   task's input log and handed to the sandbox.
//!
//! Chunks are split only at UTF-8 character boundaries (an incomplete
//! character at a chunk's end waits for the next chunk of its stream), so
//! clients that show text never see half a character.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use code_runner_queue::{LiveEvent, LiveLog, LiveStream, Queue, TaskId};
use code_runner_sandbox::{LiveIo, OutputChunk, OutputStream, StdinEvent};
use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinHandle;

use crate::error_chain;

/// Output chunks the sandbox may get ahead of the appends to the queue
/// before it starts dropping them from the live view.
pub const OUTPUT_BUFFER_CHUNKS: usize = 1024;

/// Most chunks appended in one round trip.
const BATCH: usize = 64;

/// How long the worker waits, after the job, for the last appends; past
/// this the rest of the live view is given up (the result has it all).
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one read of the input log waits before reading again.
const INPUT_WAIT: Duration = Duration::from_secs(10);

/// Stdin chunks waiting to be written into the program.
const STDIN_BUFFER: usize = 64;

/// A live job's channels to the sandbox and the tasks that serve them.
pub(crate) struct LiveJob {
    pub io: LiveIo,
    /// Ends by itself once every sender of `io` is gone.
    forwarder: Option<JoinHandle<()>>,
    /// Stopped when the job ends, also when it is aborted (cancelled).
    input: Option<JoinHandle<()>>,
}

impl Drop for LiveJob {
    fn drop(&mut self) {
        if let Some(input) = self.input.take() {
            input.abort();
        }
    }
}

impl LiveJob {
    /// Starts forwarding output (and, for an interactive job, pumping input).
    pub(crate) fn start(queue: Arc<dyn Queue>, id: TaskId, interactive: bool) -> Self {
        let (output, chunks) = mpsc::channel(OUTPUT_BUFFER_CHUNKS);
        let forwarder = tokio::spawn(forward(queue.clone(), id, chunks));
        let (io, input) = if interactive {
            let (stdin_tx, stdin_rx) = mpsc::channel(STDIN_BUFFER);
            let (signal_tx, signal_rx) = mpsc::channel(16);
            let pump = tokio::spawn(pump_input(queue, id, stdin_tx, signal_tx));
            (
                LiveIo {
                    output,
                    stdin: Some(Arc::new(Mutex::new(stdin_rx))),
                    signals: Some(Arc::new(Mutex::new(signal_rx))),
                },
                Some(pump),
            )
        } else {
            (
                LiveIo {
                    output,
                    stdin: None,
                    signals: None,
                },
                None,
            )
        };
        Self {
            io,
            forwarder: Some(forwarder),
            input,
        }
    }

    /// After the job: stops reading input and waits (bounded) until every
    /// chunk reported has been appended.
    pub(crate) async fn finish(mut self) {
        let Some(mut forwarder) = self.forwarder.take() else {
            return;
        };
        // Closes the output channel once the sandbox's copies are gone.
        drop(self);
        if tokio::time::timeout(FLUSH_TIMEOUT, &mut forwarder)
            .await
            .is_err()
        {
            tracing::warn!("live output not appended in time; the result has it");
            forwarder.abort();
        }
    }
}

/// Appends the chunks to the task's output log until the channel closes.
async fn forward(queue: Arc<dyn Queue>, id: TaskId, mut chunks: mpsc::Receiver<OutputChunk>) {
    let mut split = Utf8Split::default();
    let mut batch = Vec::with_capacity(BATCH);
    let mut failed = false;
    while chunks.recv_many(&mut batch, BATCH).await > 0 {
        let events: Vec<LiveEvent> = batch.drain(..).filter_map(|c| split.take(c)).collect();
        if failed || events.is_empty() {
            continue;
        }
        if let Err(e) = queue.live_append(&id, LiveLog::Output, &events).await {
            // One failure gives up the live view of this job; its result is
            // stored as always.
            tracing::warn!(error = %error_chain(&e), "cannot append live output; no more for this job");
            failed = true;
        }
    }
    let rest = split.flush();
    if !failed && !rest.is_empty() {
        let _ = queue.live_append(&id, LiveLog::Output, &rest).await;
    }
}

/// Holds back an incomplete UTF-8 character at the end of a chunk until
/// the next chunk of the same stream.
#[derive(Default)]
struct Utf8Split {
    /// Per stream: the held-back bytes and the offset of their first.
    held: HashMap<LiveStream, (u64, Vec<u8>)>,
}

impl Utf8Split {
    fn take(&mut self, chunk: OutputChunk) -> Option<LiveEvent> {
        let stream = match chunk.stream {
            OutputStream::CompileStdout => LiveStream::CompileStdout,
            OutputStream::CompileStderr => LiveStream::CompileStderr,
            OutputStream::Stdout => LiveStream::Stdout,
            OutputStream::Stderr => LiveStream::Stderr,
        };
        let (mut offset, mut data) = (chunk.offset, chunk.data);
        if let Some((held_at, mut held)) = self.held.remove(&stream) {
            if held_at + held.len() as u64 == offset {
                held.extend_from_slice(&data);
                (offset, data) = (held_at, held);
            }
            // After a gap the held bytes cannot be completed: they are
            // dropped with the chunks that were.
        }
        let keep = incomplete_tail(&data);
        if keep > 0 {
            let tail = data.split_off(data.len() - keep);
            self.held.insert(stream, (offset + data.len() as u64, tail));
        }
        (!data.is_empty()).then_some(LiveEvent::Output {
            stream,
            offset,
            data,
        })
    }

    fn flush(&mut self) -> Vec<LiveEvent> {
        self.held
            .drain()
            .map(|(stream, (offset, data))| LiveEvent::Output {
                stream,
                offset,
                data,
            })
            .collect()
    }
}

/// How many bytes at the end of `data` start a UTF-8 character that is not
/// complete in it (0 when none, or when the bytes are not UTF-8 anyway).
fn incomplete_tail(data: &[u8]) -> usize {
    for back in 1..=3.min(data.len()) {
        let byte = data[data.len() - back];
        if byte & 0xC0 == 0x80 {
            continue; // a continuation byte: look further back
        }
        let needed = match byte {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => return 0,
        };
        return if needed > back { back } else { 0 };
    }
    0
}

/// Reads the task's input log and hands stdin and signals to the sandbox,
/// until the job ends (the task is aborted) or the input ends.
async fn pump_input(
    queue: Arc<dyn Queue>,
    id: TaskId,
    stdin: mpsc::Sender<StdinEvent>,
    signals: mpsc::Sender<i32>,
) {
    // Stdin goes through a writer of its own, so that a program that does
    // not read its input holds up neither the reading of the log nor its
    // signals. The local queue is bounded by the input log, which the API
    // bounds (the stdin limit, 64 signals).
    let (local, mut pending) = mpsc::unbounded_channel::<StdinEvent>();
    let writer = tokio::spawn(async move {
        while let Some(event) = pending.recv().await {
            let end = matches!(event, StdinEvent::End);
            // Waits while the program is not reading: only this writer.
            if stdin.send(event).await.is_err() || end {
                return;
            }
        }
    });
    let _writer = AbortOnDrop(writer);
    let mut after: Option<String> = None;
    let mut stdin_open = true;
    loop {
        let entries = match queue
            .live_read(&id, LiveLog::Input, after.as_deref(), INPUT_WAIT)
            .await
        {
            Ok(entries) => entries,
            Err(e) => {
                tracing::debug!(error = %error_chain(&e), "cannot read live input; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        for entry in entries {
            after = Some(entry.id);
            match entry.event {
                LiveEvent::Stdin(data) if stdin_open => {
                    let _ = local.send(StdinEvent::Data(data));
                }
                LiveEvent::StdinEnd if stdin_open => {
                    stdin_open = false;
                    let _ = local.send(StdinEvent::End);
                }
                LiveEvent::Signal(signal) => {
                    // A full channel (16 waiting) drops any signal but SIGKILL.
                    if let Err(mpsc::error::TrySendError::Full(signal)) = signals.try_send(signal) {
                        if signal == 9 {
                            let _ = signals.send(signal).await;
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

/// Aborts a task when dropped (the pump is aborted when its job ends).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_character_split_across_chunks_is_sent_whole() {
        let mut split = Utf8Split::default();
        let text = "añb".as_bytes(); // ñ is two bytes
        let first = split.take(OutputChunk {
            stream: OutputStream::Stdout,
            offset: 0,
            data: text[..2].to_vec(),
        });
        assert_eq!(
            first,
            Some(LiveEvent::Output {
                stream: LiveStream::Stdout,
                offset: 0,
                data: b"a".to_vec()
            })
        );
        let second = split.take(OutputChunk {
            stream: OutputStream::Stdout,
            offset: 2,
            data: text[2..].to_vec(),
        });
        assert_eq!(
            second,
            Some(LiveEvent::Output {
                stream: LiveStream::Stdout,
                offset: 1,
                data: "ñb".as_bytes().to_vec()
            })
        );
        assert!(split.flush().is_empty());
    }

    #[test]
    fn incomplete_tails() {
        assert_eq!(incomplete_tail(b"abc"), 0);
        assert_eq!(incomplete_tail(&"ñ".as_bytes()[..1]), 1);
        assert_eq!(incomplete_tail(&"€".as_bytes()[..2]), 2);
        assert_eq!(incomplete_tail("€".as_bytes()), 0);
        assert_eq!(incomplete_tail(&[0xff]), 0);
    }

    #[tokio::test]
    async fn a_signal_is_not_held_up_by_unread_stdin() {
        let queue: Arc<dyn Queue> = Arc::new(code_runner_queue::EmbeddedQueue::new(
            Duration::from_secs(60),
        ));
        let id = TaskId::new();
        let mut events: Vec<LiveEvent> = (0..STDIN_BUFFER * 2)
            .map(|_| LiveEvent::Stdin(b"x\n".to_vec()))
            .collect();
        events.push(LiveEvent::Signal(9));
        queue
            .live_append(&id, LiveLog::Input, &events)
            .await
            .unwrap();
        // The program reads no stdin at all.
        let (stdin_tx, _stdin_rx) = mpsc::channel(STDIN_BUFFER);
        let (signal_tx, mut signal_rx) = mpsc::channel(16);
        let pump = tokio::spawn(pump_input(queue, id, stdin_tx, signal_tx));
        let signal = tokio::time::timeout(Duration::from_secs(5), signal_rx.recv()).await;
        pump.abort();
        assert_eq!(signal.expect("SIGKILL waited behind unread stdin"), Some(9));
    }
}
