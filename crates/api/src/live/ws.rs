//! `GET /run-code/ws`: an interactive run over a WebSocket.
//!
//! Client to server, text frames of JSON:
//!
//! 1. First, within [`FIRST_MESSAGE`]: a run request, the same body as
//!    `POST /run-code` (judge mode excepted), validated the same way.
//! 2. Then any number of `{"type":"stdin","data":"..."}`, one
//!    `{"type":"eof"}` (the end of the program's input), and
//!    `{"type":"signal","signal":"SIGINT"}` (also `SIGTERM`, `SIGKILL`,
//!    `SIGHUP`, `SIGQUIT`, `SIGUSR1`, `SIGUSR2`; with or without `SIG`).
//!
//! Server to client: `{"type":"accepted","task_id"}`, `{"type":"state",
//! "state"}`, `{"type":"stdout"|"stderr"|"compile_stdout"|"compile_stderr",
//! "offset","data"}`, then `{"type":"result", ...}` (the body of `GET
//! /results/{id}`), then a close `1000 finished`.
//!
//! Closes ([`close`]): `1008` for a message that breaks the protocol (not
//! a run request first, unknown type, bad signal, stdin after eof, stdin
//! over the job's stdin limit), `1003` for a binary frame, `1013` when the
//! queue refuses the job, `1011` when the queue fails; each with an `error`
//! message first saying why. Nothing the client sent before is lost: it is
//! in the job's input log; the program's input ends there, and the task is
//! cancelled [`DISCONNECT_GRACE`] later if still running, as for a client
//! that disconnects (and for a session ended by `SLOW_READER` or [`TOTAL`]).
//!
//! Timeouts: no client message for [`IDLE`] ends the program's input (it
//! runs on to its limits, its output still sent); the connection is closed
//! after [`TOTAL`] whatever happens.
//!
//! A client that disconnects before the result: its program's input ends,
//! and after [`DISCONNECT_GRACE`] the task is cancelled if still running,
//! so a vanished client holds a sandbox slot for seconds, not for the
//! job's whole time limit. A client that stops reading: the job is not
//! affected (its output goes to the queue, not to the socket); the socket
//! is dropped once a send has waited `SLOW_READER`.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use code_runner_queue::{LiveEvent, LiveLog, LiveMode, TaskId, TaskState};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{admit_websocket, text, watch, Watched, WsHold, WsRefused, SLOW_READER};
use crate::access::Caller;
use crate::error::ApiError;
use crate::response::TaskStatus;
use crate::state::AppState;

/// How long the first message (the run request) may take.
pub(crate) const FIRST_MESSAGE: Duration = Duration::from_secs(10);
/// No client message for this long ends the program's input.
pub(crate) const IDLE: Duration = Duration::from_secs(60);
/// The longest a connection stays open.
pub(crate) const TOTAL: Duration = Duration::from_secs(15 * 60);
/// The most signals one session may send (`1008` beyond).
pub(crate) const MAX_SIGNALS: usize = 64;
/// How long a job whose client left may run before it is cancelled.
pub(crate) const DISCONNECT_GRACE: Duration = Duration::from_secs(5);

/// Close codes (RFC 6455 §7.4.1).
pub(crate) mod close {
    pub const FINISHED: u16 = 1000;
    pub const UNSUPPORTED_DATA: u16 = 1003;
    pub const POLICY: u16 = 1008;
    pub const INTERNAL: u16 = 1011;
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

/// `GET /run-code/ws`.
pub(crate) async fn run_code_ws(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    extensions: axum::http::Extensions,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let upgrade = upgrade.map_err(|_| ApiError::WebSocketRequired)?;
    let limit = state.config().max_body_bytes();
    let hold = match admit_websocket(&state, &headers, &extensions, limit) {
        Ok(hold) => hold,
        Err(WsRefused::Origin) => return Err(ApiError::OriginNotAllowed),
        Err(WsRefused::Busy) => return Err(ApiError::BodiesBusy),
    };
    Ok(upgrade
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| async move {
            let _ = tokio::time::timeout(TOTAL, session(state, caller, socket, hold)).await;
        })
        .into_response())
}

/// What ended a session's inbound side.
pub(crate) enum Inbound {
    /// The client closed or vanished.
    Gone,
    /// The client broke the protocol; the close is on its way.
    Refused,
}

/// What a client sends after its first message.
#[derive(Debug, PartialEq)]
pub(crate) enum ClientInput {
    Stdin(String),
    Eof,
    Signal(i32),
}

/// A refusal: an `error` message, then a close with `code` and `reason`.
pub(crate) fn refusal(code: u16, reason: &str) -> [Message; 2] {
    [
        Message::Text(
            json!({ "type": "error", "message": reason })
                .to_string()
                .into(),
        ),
        close_frame(code, reason),
    ]
}

pub(crate) fn close_frame(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.chars().take(120).collect::<String>().into(),
    }))
}

async fn session(state: AppState, caller: Caller, socket: WebSocket, mut hold: WsHold) {
    let (mut sink, mut stream) = socket.split();
    let first = match first_text(&mut stream).await {
        Ok(text) => text,
        Err(refused) => {
            for message in refused {
                let _ = sink.send(message).await;
            }
            return;
        }
    };
    let (job, stdin_sent) = match accept(&state, &caller, first).await {
        Ok(job) => job,
        Err(refused) => {
            for message in refused {
                let _ = sink.send(message).await;
            }
            return;
        }
    };
    hold.first_parsed();
    let accepted = json!({ "type": "accepted", "task_id": job.to_string() });
    if sink
        .send(Message::Text(accepted.to_string().into()))
        .await
        .is_err()
    {
        gone(&state, job, caller.owner().map(str::to_owned));
        return;
    }
    // The run request's own stdin counts in the stdin limit.
    let stdin_limit = state.config().max_stdin_bytes.saturating_sub(stdin_sent);
    run_session(
        &state,
        job,
        caller.owner().map(str::to_owned),
        sink,
        stream,
        stdin_limit,
        &OURS,
        ours(job),
    )
    .await;
}

/// The first text frame, or the messages that refuse the connection.
pub(crate) async fn first_text<S>(stream: &mut S) -> Result<String, Vec<Message>>
where
    S: futures_util::Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let deadline = tokio::time::Instant::now() + FIRST_MESSAGE;
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => {
                return Err(
                    refusal(close::POLICY, "no run request within 10 s of connecting").into(),
                )
            }
            Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return Err(Vec::new()),
            Ok(Some(Ok(Message::Text(text)))) => return Ok(text.to_string()),
            Ok(Some(Ok(Message::Binary(_)))) => {
                return Err(refusal(
                    close::UNSUPPORTED_DATA,
                    "binary frames are not accepted: send the run request as a text frame of JSON",
                )
                .into())
            }
            Ok(Some(Ok(_))) => continue, // ping, pong
        }
    }
}

/// Parses and submits the run request; the refusal when it is not one.
async fn accept(
    state: &AppState,
    caller: &Caller,
    first: String,
) -> Result<(TaskId, usize), Vec<Message>> {
    let run = if first.len() <= super::PARSE_INLINE_MAX {
        crate::request::parse_run_request(first.as_bytes(), state.languages(), state.config())
    } else {
        let state = state.clone();
        tokio::task::spawn_blocking(move || {
            crate::request::parse_run_request(first.as_bytes(), state.languages(), state.config())
        })
        .await
        .unwrap_or_else(|panicked| std::panic::resume_unwind(panicked.into_panic()))
    }
    .map_err(|e| refuse_api_error(&e))?;
    if run.judge.is_some() {
        return Err(refusal(
            close::POLICY,
            "judge mode (tests) cannot run interactively: use POST /run-code",
        )
        .into());
    }
    let stdin = run.stdin.len();
    let job = crate::routes::enqueue(state, caller, run, Some(LiveMode::Interactive))
        .await
        .map_err(|e| refuse_api_error(&e))?;
    Ok((job.id, stdin))
}

/// An API error as a refusal: its message (the `detail` HTTP would give),
/// and a close code by its kind.
pub(crate) fn refuse_api_error(error: &ApiError) -> Vec<Message> {
    let code = match error {
        ApiError::QueueFull { .. } | ApiError::TooManyUnfinished { .. } => close::TRY_AGAIN_LATER,
        ApiError::QueueUnavailable(_) => close::INTERNAL,
        _ => close::POLICY,
    };
    let detail = match error {
        ApiError::Validation(issues) => crate::error::issues_summary(issues),
        other => other.to_string(),
    };
    if let ApiError::QueueUnavailable(_) = error {
        tracing::error!("queue unavailable; refusing a WebSocket run");
    }
    let reason = match code {
        close::TRY_AGAIN_LATER => "try again later",
        close::INTERNAL => "queue unavailable, try again",
        _ => "invalid run request",
    };
    let mut messages = vec![Message::Text(
        json!({ "type": "error", "message": detail })
            .to_string()
            .into(),
    )];
    messages.push(close_frame(code, reason));
    messages
}

/// How a WebSocket protocol (ours, Piston's) reads client messages and
/// closes: [`run_session`] is the same for both.
pub(crate) struct Protocol {
    /// One client message after the first; `(close code, reason)` when it
    /// breaks the protocol.
    pub(crate) parse: fn(&str) -> Result<ClientInput, (u16, String)>,
    /// The close for a binary frame.
    pub(crate) binary: (u16, &'static str),
    /// The close for stdin after the end of input.
    pub(crate) after_eof: (u16, &'static str),
    /// The close code for stdin over the limit, and for a failing queue.
    pub(crate) limit_code: u16,
    pub(crate) unavailable_code: u16,
}

/// Ours: see the module documentation.
pub(crate) const OURS: Protocol = Protocol {
    parse: |text| parse_input(text).map_err(|reason| (close::POLICY, reason)),
    binary: (
        close::UNSUPPORTED_DATA,
        "binary frames are not accepted: send JSON text frames",
    ),
    after_eof: (close::POLICY, "stdin after the end of input (eof)"),
    limit_code: close::POLICY,
    unavailable_code: close::INTERNAL,
};

/// Turns watched events into our protocol's messages.
fn ours(id: TaskId) -> Render {
    Box::new(move |event| {
        let value = match event {
            Watched::State { state, .. } => json!({ "type": "state", "state": state }),
            Watched::Output {
                stream,
                offset,
                data,
                ..
            } => json!({ "type": stream.name(), "offset": offset, "data": text(&data) }),
            Watched::Finished(task) => {
                let status =
                    serde_json::to_value(TaskStatus::new(id, &task, None)).unwrap_or(Value::Null);
                let mut result = json!({ "type": "result" });
                if let (Some(result), Value::Object(fields)) = (result.as_object_mut(), status) {
                    result.extend(fields);
                }
                return vec![
                    Message::Text(result.to_string().into()),
                    close_frame(close::FINISHED, "finished"),
                ];
            }
            Watched::Unavailable => {
                return refusal(close::INTERNAL, "queue unavailable, try again").into()
            }
        };
        vec![Message::Text(value.to_string().into())]
    })
}

/// Maps watched events to the messages a protocol sends for them; after
/// `Finished` or `Unavailable` these end with a close frame.
pub(crate) type Render = Box<dyn FnMut(Watched) -> Vec<Message> + Send>;

/// Drives an accepted session: the client's input to the task's input log,
/// the task's output log to the client, the result and the close.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_session<K, S>(
    state: &AppState,
    id: TaskId,
    owner: Option<String>,
    mut sink: K,
    stream: S,
    stdin_limit: usize,
    protocol: &'static Protocol,
    mut render: Render,
) where
    K: futures_util::Sink<Message> + Unpin + Send,
    S: futures_util::Stream<Item = Result<Message, axum::Error>> + Unpin + Send,
{
    let (out, mut outgoing) = mpsc::channel::<Message>(32);
    let mut watched = watch(state.clone(), id, owner.clone(), TaskState::Pending, None);
    let finish = out.clone();
    let producer = async move {
        while let Some(event) = watched.recv().await {
            let last = matches!(event, Watched::Finished(_) | Watched::Unavailable);
            for message in render(event) {
                if finish.send(message).await.is_err() {
                    return;
                }
            }
            if last {
                return;
            }
        }
    };
    let sender = async move {
        while let Some(message) = outgoing.recv().await {
            let closing = matches!(message, Message::Close(_));
            match tokio::time::timeout(SLOW_READER, sink.send(message)).await {
                Ok(Ok(())) if !closing => {}
                _ => break,
            }
        }
        let _ = sink.close().await;
    };
    // However the session ends (client gone, refused, too slow a reader,
    // the total timeout dropping this future): as `gone`.
    let _gone = OnEnd(Some((state.clone(), id, owner.clone())));
    let inbound = inbound(state, id, stream, stdin_limit, protocol, out.clone());
    drop(out);
    tokio::pin!(producer, sender, inbound);
    let mut producer_done = false;
    loop {
        tokio::select! {
            () = &mut sender => break,
            () = &mut producer, if !producer_done => producer_done = true,
            end = &mut inbound => {
                if let Inbound::Refused = end {
                    // Let the close go out (bounded), then leave.
                    let _ = tokio::time::timeout(Duration::from_secs(2), &mut sender).await;
                }
                return;
            }
        }
    }
}

/// Calls [`gone`] when dropped.
struct OnEnd(Option<(AppState, TaskId, Option<String>)>);

impl Drop for OnEnd {
    fn drop(&mut self) {
        if let Some((state, id, owner)) = self.0.take() {
            gone(&state, id, owner);
        }
    }
}

/// The client is gone: its program's input ends, and the task is cancelled
/// after [`DISCONNECT_GRACE`] unless it has finished by then.
pub(crate) fn gone(state: &AppState, id: TaskId, owner: Option<String>) {
    let state = state.clone();
    tokio::spawn(async move {
        let _ = state
            .queue()
            .live_append(&id, LiveLog::Input, &[LiveEvent::StdinEnd])
            .await;
        tokio::time::sleep(DISCONNECT_GRACE).await;
        if let Ok(Some(TaskState::Pending)) = state.queue().state_for(&id, owner.as_deref()).await {
            tracing::debug!(task_id = %id, "interactive client gone; cancelling its task");
            let _ = state
                .queue()
                .cancel_for(&id, owner.as_deref(), crate::live::now_ms())
                .await;
        }
    });
}

/// Reads the client's messages into the task's input log until the client
/// leaves or breaks the protocol; ends the input after [`IDLE`] of silence.
async fn inbound<S>(
    state: &AppState,
    id: TaskId,
    mut stream: S,
    stdin_limit: usize,
    protocol: &'static Protocol,
    out: mpsc::Sender<Message>,
) -> Inbound
where
    S: futures_util::Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let mut ended = false;
    let mut sent = 0usize;
    let mut signals = 0usize;
    let refuse = |code: u16, reason: &str| {
        let out = out.clone();
        let messages = refusal(code, reason);
        async move {
            for message in messages {
                let _ = out.send(message).await;
            }
            Inbound::Refused
        }
    };
    loop {
        let next = if ended {
            stream.next().await
        } else {
            match tokio::time::timeout(IDLE, stream.next()).await {
                Ok(next) => next,
                Err(_) => {
                    ended = true;
                    let _ = append(state, &id, LiveEvent::StdinEnd).await;
                    continue;
                }
            }
        };
        let text = match next {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Inbound::Gone,
            Some(Ok(Message::Binary(_))) => {
                let (code, reason) = protocol.binary;
                return refuse(code, reason).await;
            }
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(_)) => continue,
        };
        let input = match (protocol.parse)(&text) {
            Ok(input) => input,
            Err((code, reason)) => return refuse(code, &reason).await,
        };
        let event = match input {
            ClientInput::Stdin(_) if ended => {
                let (code, reason) = protocol.after_eof;
                return refuse(code, reason).await;
            }
            ClientInput::Stdin(data) => {
                sent = sent.saturating_add(data.len());
                if sent > stdin_limit {
                    return refuse(
                        protocol.limit_code,
                        &format!("stdin over the limit of {stdin_limit} bytes"),
                    )
                    .await;
                }
                LiveEvent::Stdin(data.into_bytes())
            }
            ClientInput::Eof if ended => continue,
            ClientInput::Eof => {
                ended = true;
                LiveEvent::StdinEnd
            }
            ClientInput::Signal(signal) => {
                signals += 1;
                if signals > MAX_SIGNALS {
                    return refuse(
                        protocol.limit_code,
                        &format!("more than {MAX_SIGNALS} signals in one session"),
                    )
                    .await;
                }
                LiveEvent::Signal(signal)
            }
        };
        if append(state, &id, event).await.is_err() {
            return refuse(protocol.unavailable_code, "queue unavailable, try again").await;
        }
    }
}

async fn append(state: &AppState, id: &TaskId, event: LiveEvent) -> Result<(), ()> {
    state
        .queue()
        .live_append(id, LiveLog::Input, &[event])
        .await
        .map_err(|e| tracing::warn!(error = %e, "cannot append live input"))
}

/// One client message after the first; the reason to refuse it otherwise.
pub(crate) fn parse_input(text: &str) -> Result<ClientInput, String> {
    let value: Value = serde_json::from_str(text)
        .map_err(|_| "not JSON: each message is a JSON object with a \"type\"".to_owned())?;
    let kind = value.get("type").and_then(Value::as_str).unwrap_or("");
    match kind {
        "stdin" => match value.get("data").and_then(Value::as_str) {
            Some(data) => Ok(ClientInput::Stdin(data.to_owned())),
            None => Err("a stdin message needs \"data\", a string".into()),
        },
        "eof" => Ok(ClientInput::Eof),
        "signal" => {
            let name = value.get("signal").and_then(Value::as_str).unwrap_or("");
            signal_number(name).map(ClientInput::Signal).ok_or_else(|| {
                "unknown signal: use SIGINT, SIGTERM, SIGKILL, SIGHUP, SIGQUIT, SIGUSR1 or SIGUSR2"
                    .to_owned()
            })
        }
        _ => Err("unknown message type: expected \"stdin\", \"eof\" or \"signal\"".into()),
    }
}

/// The signals a client may send, by name (with or without `SIG`).
pub(crate) fn signal_number(name: &str) -> Option<i32> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    Some(match bare {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "KILL" => 9,
        "USR1" => 10,
        "USR2" => 12,
        "TERM" => 15,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_parse() {
        assert_eq!(
            parse_input(r#"{"type":"stdin","data":"42\n"}"#),
            Ok(ClientInput::Stdin("42\n".into()))
        );
        assert_eq!(parse_input(r#"{"type":"eof"}"#), Ok(ClientInput::Eof));
        assert_eq!(
            parse_input(r#"{"type":"signal","signal":"SIGINT"}"#),
            Ok(ClientInput::Signal(2))
        );
        assert_eq!(
            parse_input(r#"{"type":"signal","signal":"kill"}"#),
            Ok(ClientInput::Signal(9))
        );
        assert!(parse_input(r#"{"type":"signal","signal":"SIGSEGV"}"#).is_err());
        assert!(parse_input(r#"{"type":"stdin"}"#).is_err());
        assert!(parse_input("hello").is_err());
        assert!(parse_input(r#"{"type":"run"}"#).is_err());
    }

    #[tokio::test]
    async fn a_session_that_ends_on_a_dead_sink_ends_the_input() {
        let queue = std::sync::Arc::new(code_runner_queue::EmbeddedQueue::new(
            Duration::from_secs(60),
        ));
        let state = AppState::new(queue.clone(), Vec::new(), crate::ApiConfig::default());
        let id = TaskId::new();
        // A client that takes nothing (as one dropped for reading too slowly)
        // and sends nothing.
        let sink = Box::pin(futures_util::sink::unfold((), |(), _: Message| async {
            Err::<(), ()>(())
        }));
        let stream = futures_util::stream::pending::<Result<Message, axum::Error>>();
        tokio::time::timeout(
            Duration::from_secs(5),
            run_session(&state, id, None, sink, stream, 1024, &OURS, ours(id)),
        )
        .await
        .expect("the session ends with its sink");
        let mut ended = false;
        for _ in 0..50 {
            let input = code_runner_queue::Queue::live_read(
                queue.as_ref(),
                &id,
                LiveLog::Input,
                None,
                Duration::ZERO,
            )
            .await
            .unwrap();
            if input.iter().any(|e| e.event == LiveEvent::StdinEnd) {
                ended = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(ended, "the program's input was not ended");
    }

    #[tokio::test]
    async fn signals_are_capped_per_session() {
        let queue = std::sync::Arc::new(code_runner_queue::EmbeddedQueue::new(
            Duration::from_secs(60),
        ));
        let state = AppState::new(queue.clone(), Vec::new(), crate::ApiConfig::default());
        let id = TaskId::new();
        let sink = Box::pin(futures_util::sink::unfold((), |(), _: Message| async {
            Ok::<(), ()>(())
        }));
        let signal = json!({ "type": "signal", "signal": "SIGINT" }).to_string();
        let messages = (0..200).map(move |_| Ok(Message::Text(signal.clone().into())));
        let stream = futures_util::stream::iter(messages)
            .chain(futures_util::stream::pending::<Result<Message, axum::Error>>());
        tokio::time::timeout(
            Duration::from_secs(5),
            run_session(&state, id, None, sink, stream, 1024, &OURS, ours(id)),
        )
        .await
        .expect("the session is refused");
        let input = code_runner_queue::Queue::live_read(
            queue.as_ref(),
            &id,
            LiveLog::Input,
            None,
            Duration::ZERO,
        )
        .await
        .unwrap();
        let signals = input
            .iter()
            .filter(|e| matches!(e.event, LiveEvent::Signal(_)))
            .count();
        assert_eq!(signals, MAX_SIGNALS);
    }
}
