//! Live runs over HTTP (SPEC §9, docs/live.md): what clients see of a
//! task while it runs.
//!
//! - `sse`: `GET /results/{id}/events`, Server-Sent Events.
//! - `ws`: `GET /run-code/ws`, a WebSocket that submits an interactive job,
//!   carries its stdin in and its output out.
//! - Piston's `/api/v2/connect` (`crate::piston::connect`) on the same
//!   machinery.
//!
//! All of them read a task through [`watch`]: its state, then the entries
//! of its live output log (`code_runner_queue::live`) as the worker
//! appends them, then its final result. The log may be written by a worker
//! on another machine; nothing here waits for a worker, and a worker never
//! waits for a client.

pub(crate) mod sse;
pub(crate) mod ws;

use std::time::Duration;

use code_runner_queue::live::MAX_LIVE_WAIT;
use code_runner_queue::{LiveEvent, LiveLog, LiveStream, TaskId, TaskState};
use tokio::sync::mpsc;

use crate::state::AppState;

/// What a watcher reports, in order.
#[derive(Debug)]
// `Finished` is large, but one is sent per watch: boxing would only add
// an allocation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Watched {
    /// `queued` or `running`; `id` when it came from the log.
    State { id: Option<String>, state: String },
    /// A chunk of output, with its log entry id and byte offset.
    Output {
        id: Option<String>,
        stream: LiveStream,
        offset: u64,
        data: Vec<u8>,
    },
    /// The final state; always the last.
    Finished(TaskState),
    /// The queue failed; the watch is over.
    Unavailable,
}

/// How long one blocking read of the log waits before looking again.
const READ_WAIT: Duration = Duration::from_secs(10);

/// How long a watcher waits for its reader to take an event; a reader that
/// does not read for this long (a client that stopped reading) is dropped.
pub(crate) const SLOW_READER: Duration = Duration::from_secs(30);

/// Watches task `id` (whose state `initial` the caller has read, as its
/// owner) from the log entry `after` on. The events come through a small
/// channel; the watch stops when the receiver is dropped or stops taking
/// events for [`SLOW_READER`].
pub(crate) fn watch(
    state: AppState,
    id: TaskId,
    owner: Option<String>,
    initial: TaskState,
    after: Option<String>,
) -> mpsc::Receiver<Watched> {
    let (events, receiver) = mpsc::channel(16);
    tokio::spawn(async move {
        let closed = events.clone();
        tokio::select! {
            () = run_watch(&state, id, owner.as_deref(), initial, after, &events) => {}
            () = closed.closed() => {}
        }
    });
    receiver
}

/// Sends one event; false when the reader is gone or too slow.
async fn send(events: &mpsc::Sender<Watched>, event: Watched) -> bool {
    matches!(
        tokio::time::timeout(SLOW_READER, events.send(event)).await,
        Ok(Ok(()))
    )
}

async fn run_watch(
    state: &AppState,
    id: TaskId,
    owner: Option<&str>,
    mut task: TaskState,
    mut after: Option<String>,
    events: &mpsc::Sender<Watched>,
) {
    let queue = state.queue();
    let resumed = after.is_some();
    // Catch up with what the log already holds.
    let first = match queue
        .live_read(&id, LiveLog::Output, after.as_deref(), Duration::ZERO)
        .await
    {
        Ok(entries) => entries,
        Err(_) => {
            send(events, Watched::Unavailable).await;
            return;
        }
    };
    let mut saw_output = false;
    if !resumed && first.is_empty() {
        // No log (a job without live output, or one not started): the
        // state as the task record has it.
        if let TaskState::Pending = task {
            let running = queue.running_since(&id).await.ok().flatten().is_some();
            let state_name = if running { "running" } else { "queued" };
            if !send(
                events,
                Watched::State {
                    id: None,
                    state: state_name.into(),
                },
            )
            .await
            {
                return;
            }
        }
    }
    let mut pending = first;
    let mut result_wait = None;
    loop {
        for entry in pending.drain(..) {
            after = Some(entry.id.clone());
            let event = match entry.event {
                LiveEvent::State(state) => Watched::State {
                    id: Some(entry.id),
                    state,
                },
                LiveEvent::Output {
                    stream,
                    offset,
                    data,
                } => {
                    saw_output = true;
                    Watched::Output {
                        id: Some(entry.id),
                        stream,
                        offset,
                        data,
                    }
                }
                _ => continue,
            };
            if !send(events, event).await {
                return;
            }
        }
        if let TaskState::Done(result) = &task {
            // The worker appends every chunk before it stores the result:
            // once the result is seen, one more read drains the log.
            match queue
                .live_read(&id, LiveLog::Output, after.as_deref(), Duration::ZERO)
                .await
            {
                Ok(more) if !more.is_empty() => {
                    pending = more;
                    continue;
                }
                Ok(_) => {}
                Err(_) => {
                    send(events, Watched::Unavailable).await;
                    return;
                }
            }
            if !saw_output && !resumed {
                // A job that did not stream: its output, whole, from the result.
                let whole = [
                    (
                        LiveStream::CompileStdout,
                        result.compile_output.as_deref().unwrap_or(""),
                    ),
                    (LiveStream::Stdout, result.stdout.as_str()),
                    (LiveStream::Stderr, result.stderr.as_str()),
                ];
                for (stream, text) in whole {
                    if !text.is_empty() {
                        let data = text.as_bytes().to_vec();
                        if !send(
                            events,
                            Watched::Output {
                                id: None,
                                stream,
                                offset: 0,
                                data,
                            },
                        )
                        .await
                        {
                            return;
                        }
                    }
                }
            }
            send(events, Watched::Finished(task)).await;
            return;
        }
        // Pending: wait for more of the log or for the result, whichever
        // comes first; the result wait is kept across log reads.
        let waiting = result_wait
            .get_or_insert_with(|| Box::pin(queue.wait_for_result_for(&id, owner, MAX_LIVE_WAIT)));
        tokio::select! {
            read = queue.live_read(&id, LiveLog::Output, after.as_deref(), READ_WAIT) => match read {
                Ok(entries) => pending = entries,
                Err(_) => {
                    send(events, Watched::Unavailable).await;
                    return;
                }
            },
            done = waiting.as_mut() => {
                result_wait = None;
                match done {
                    Ok(Some(state)) => task = state,
                    // Expired (or another owner's): nothing more to tell.
                    Ok(None) => return,
                    Err(_) => {
                        send(events, Watched::Unavailable).await;
                        return;
                    }
                }
            }
        }
    }
}

/// Output bytes as text for clients (invalid UTF-8 replaced; the worker
/// never splits a character between chunks).
pub(crate) fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// Milliseconds since the Unix epoch (0 before it).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What a WebSocket holds from its upgrade: its connection's place under the
/// connection cap, for the socket's whole life, and, until its first message
/// (the run request) is parsed, one body limit of the body memory budget.
pub(crate) struct WsHold {
    _slot: Option<crate::server::ConnectionSlot>,
    first: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl WsHold {
    /// The first message is parsed: its share of the body budget is free.
    pub(crate) fn first_parsed(&mut self) {
        self.first = None;
    }
}

/// Why a WebSocket upgrade is refused before it happens.
pub(crate) enum WsRefused {
    /// A browser page of an origin that is not allowed (`403`).
    Origin,
    /// The body memory budget is spent (`503`).
    Busy,
}

/// Admits a WebSocket upgrade: refuses a cross-site browser page (an
/// `Origin` that is neither in `--cors-origins` nor the request's own
/// `Host`; no `Origin`, as from non-browser clients, is fine), reserves the
/// first message's share of the body memory budget, and takes over the
/// connection's slot.
pub(crate) fn admit_websocket(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    extensions: &axum::http::Extensions,
    first_limit: usize,
) -> Result<WsHold, WsRefused> {
    if !origin_allowed(&state.config().access.cors_origins, headers) {
        return Err(WsRefused::Origin);
    }
    let first = match extensions.get::<crate::server::BodyBounds>() {
        Some(bounds) => {
            let kib = first_limit.div_ceil(1024);
            let kib = u32::try_from(kib).unwrap_or(u32::MAX);
            let reserved = bounds.budget.clone().try_acquire_many_owned(kib);
            Some(reserved.map_err(|_| WsRefused::Busy)?)
        }
        None => None,
    };
    Ok(WsHold {
        _slot: extensions.get::<crate::server::ConnectionSlot>().cloned(),
        first,
    })
}

/// Whether a WebSocket's `Origin` may open it (see [`admit_websocket`]).
pub(crate) fn origin_allowed(allowed: &[String], headers: &axum::http::HeaderMap) -> bool {
    let Some(origin) = headers.get(axum::http::header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim().trim_end_matches('/');
    if allowed
        .iter()
        .any(|a| a == "*" || a.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok());
    let authority = origin.split_once("://").map(|(_, rest)| rest);
    matches!((host, authority), (Some(host), Some(authority)) if host.eq_ignore_ascii_case(authority))
}

/// A first WebSocket message that large is parsed on a blocking thread.
pub(crate) const PARSE_INLINE_MAX: usize = 64 * 1024;
