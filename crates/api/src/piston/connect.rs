//! `GET /api/v2/connect`: Piston's WebSocket for an interactive run, on the
//! machinery of `/run-code/ws` (`crate::live::ws`): the job goes through the
//! queue as an interactive job, its stdin through the task's input log and
//! its output back through its output log.
//!
//! Client to server: `{"type":"init", ...}` (the fields of
//! `/api/v2/execute`; its `stdin` is ignored, as Piston does) within
//! [`INIT_TIMEOUT`]; then `{"type":"data","stream":"stdin","data":"..."}`
//! and `{"type":"signal","signal":"SIGINT"}`.
//!
//! Server to client: `{"type":"runtime","language","version"}` once the
//! job is queued, `{"type":"stage","stage":"run"}` when a worker starts it
//! (a failed compile: `stage` `compile`, then its `exit`), `{"type":"data",
//! "stream":"stdout"|"stderr","data"}` as the program writes,
//! `{"type":"exit","stage","code","signal"}` (plus `error` for a limit),
//! then a close `4999 Job Completed`.
//!
//! Piston's close codes: `4000` a second init, `4001` no init in time,
//! `4002` a notified error (a bad init, sent as `{"type":"error",
//! "message"}` first; also a binary frame, stdin over the limit, a queue
//! failure), `4003` data before init, `4004` a stream other than stdin,
//! `4005` an unknown signal. Unlike Piston, the job keeps the output cap
//! and every limit of a normal job, and signals do reach the program.
//!
//! Piston's protocol has no end-of-input message: the program's stdin ends
//! when the client disconnects (after which the task is cancelled within
//! `DISCONNECT_GRACE`) or after `IDLE` without a message; an extension
//! `{"type":"data","stream":"stdin","eof":true}` ends it at once.

use std::time::Duration;

use axum::extract::ws::{rejection::WebSocketUpgradeRejection, Message, WebSocketUpgrade};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use code_runner_queue::{Job, LiveMode, LiveStream, TaskId, TaskState};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};

use super::request::{parse, Invalid};
use super::response::ExecuteResponse;
use super::runtimes::{Runtime, Runtimes};
use crate::access::Caller;
use crate::live::ws::{close_frame, run_session, signal_number, ClientInput, Protocol, Render};
use crate::live::{text, Watched};
use crate::state::AppState;

/// How long the init message may take, as Piston.
pub(crate) const INIT_TIMEOUT: Duration = Duration::from_secs(1);

/// Piston's close codes.
mod close {
    pub const ALREADY_INITIALIZED: u16 = 4000;
    pub const INIT_TIMEOUT: u16 = 4001;
    pub const NOTIFIED_ERROR: u16 = 4002;
    pub const NOT_INITIALIZED: u16 = 4003;
    pub const STDIN_ONLY: u16 = 4004;
    pub const INVALID_SIGNAL: u16 = 4005;
    pub const COMPLETED: u16 = 4999;
}

const PISTON: Protocol = Protocol {
    parse: parse_message,
    binary: (
        close::NOTIFIED_ERROR,
        "binary frames are not accepted: send JSON text frames",
    ),
    after_eof: (close::NOTIFIED_ERROR, "stdin after the end of input"),
    limit_code: close::NOTIFIED_ERROR,
    unavailable_code: close::NOTIFIED_ERROR,
};

/// `GET /api/v2/connect`.
pub(crate) async fn connect(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    extensions: axum::http::Extensions,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let Ok(upgrade) = upgrade else {
        return super::refuse(
            axum::http::StatusCode::UPGRADE_REQUIRED,
            "/api/v2/connect speaks WebSocket only: open it with a WebSocket client",
        );
    };
    let limit = state.config().max_piston_body_bytes();
    let hold = match crate::live::admit_websocket(&state, &headers, &extensions, limit) {
        Ok(hold) => hold,
        Err(crate::live::WsRefused::Origin) => {
            return super::refuse(
                axum::http::StatusCode::FORBIDDEN,
                "WebSocket connections from this Origin are not allowed (see --cors-origins)",
            )
        }
        Err(crate::live::WsRefused::Busy) => {
            return crate::error::ApiError::BodiesBusy.into_response()
        }
    };
    upgrade
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| async move {
            let total = crate::live::ws::TOTAL;
            let _ = tokio::time::timeout(total, session(state, caller, socket, hold)).await;
        })
        .into_response()
}

/// A Piston error message and close.
fn refusal(code: u16, reason: &str) -> Vec<Message> {
    vec![
        Message::Text(
            json!({ "type": "error", "message": reason })
                .to_string()
                .into(),
        ),
        close_frame(code, reason),
    ]
}

async fn session(
    state: AppState,
    caller: Caller,
    socket: axum::extract::ws::WebSocket,
    mut hold: crate::live::WsHold,
) {
    let (mut sink, mut stream) = socket.split();
    let started = async {
        let first = match tokio::time::timeout(INIT_TIMEOUT, next_text(&mut stream)).await {
            Err(_) => return Err(refusal(close::INIT_TIMEOUT, "Initialization Timeout")),
            Ok(None) => return Err(Vec::new()),
            Ok(Some(Err(()))) => {
                return Err(refusal(
                    close::NOTIFIED_ERROR,
                    "binary frames are not accepted: send JSON text frames",
                ))
            }
            Ok(Some(Ok(text))) => text,
        };
        init(&state, &caller, first).await
    };
    let (id, runtime) = match started.await {
        Ok(started) => started,
        Err(messages) => {
            for message in messages {
                let _ = sink.send(message).await;
            }
            return;
        }
    };
    hold.first_parsed();
    let hello =
        json!({ "type": "runtime", "language": runtime.language, "version": runtime.version });
    if sink
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        crate::live::ws::gone(&state, id, caller.owner().map(str::to_owned));
        return;
    }
    run_session(
        &state,
        id,
        caller.owner().map(str::to_owned),
        sink,
        stream,
        state.config().max_stdin_bytes,
        &PISTON,
        render(runtime),
    )
    .await;
}

/// The next text frame; `Err` for a binary one, `None` when the client left.
async fn next_text<S>(stream: &mut S) -> Option<Result<String, ()>>
where
    S: futures_util::Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    loop {
        match stream.next().await? {
            Ok(Message::Text(text)) => return Some(Ok(text.to_string())),
            Ok(Message::Binary(_)) => return Some(Err(())),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// Reads the init message (on a blocking thread when large).
fn parse_init(state: &AppState, first: &str) -> Result<super::request::Execute, Vec<Message>> {
    let value: Value = serde_json::from_str(first)
        .map_err(|_| refusal(close::NOTIFIED_ERROR, "the message is not JSON"))?;
    match value.get("type").and_then(Value::as_str) {
        Some("init") => {}
        _ => return Err(refusal(close::NOT_INITIALIZED, "Not yet Initialized")),
    }
    let runtimes = Runtimes::new(state.languages().all());
    match parse(
        first.as_bytes(),
        &runtimes,
        state.languages(),
        state.config(),
    ) {
        Ok(execute) => Ok(execute),
        Err(Invalid::BadRequest(message) | Invalid::TooLarge(message)) => {
            Err(refusal(close::NOTIFIED_ERROR, &message))
        }
    }
}

/// Reads the init message and submits its job.
async fn init(
    state: &AppState,
    caller: &Caller,
    first: String,
) -> Result<(TaskId, Runtime), Vec<Message>> {
    let execute = if first.len() <= crate::live::PARSE_INLINE_MAX {
        parse_init(state, &first)?
    } else {
        let state = state.clone();
        tokio::task::spawn_blocking(move || parse_init(&state, &first))
            .await
            .unwrap_or_else(|panicked| std::panic::resume_unwind(panicked.into_panic()))?
    };
    let job = Job {
        id: TaskId::new(),
        language: execute.runtime.canonical.clone(),
        code: execute.code,
        // Piston ignores an init's stdin: input comes as data messages.
        stdin: String::new(),
        submitted_at_ms: crate::live::now_ms(),
        args: execute.args,
        files: execute.files,
        time_limit_ms: execute.time_limit_ms,
        memory_limit_mb: execute.memory_limit_mb,
        owner: caller.owner().map(str::to_owned),
        judge: None,
        live: Some(LiveMode::Interactive),
    };
    let quota = caller.quota(&state.config().access);
    if let Err(error) = state.queue().submit_for(&job, quota).await {
        let error = crate::error::ApiError::queue(error);
        return Err(refusal(close::NOTIFIED_ERROR, &error.to_string()));
    }
    Ok((job.id, execute.runtime))
}

/// A client message after init.
fn parse_message(text: &str) -> Result<ClientInput, (u16, String)> {
    let value: Value = serde_json::from_str(text)
        .map_err(|_| (close::NOTIFIED_ERROR, "the message is not JSON".to_owned()))?;
    match value.get("type").and_then(Value::as_str) {
        Some("init") => Err((close::ALREADY_INITIALIZED, "Already Initialized".into())),
        Some("data") => {
            if value.get("stream").and_then(Value::as_str) != Some("stdin") {
                return Err((close::STDIN_ONLY, "Can only write to stdin".into()));
            }
            if value.get("eof").and_then(Value::as_bool) == Some(true) {
                return Ok(ClientInput::Eof);
            }
            match value.get("data").and_then(Value::as_str) {
                Some(data) => Ok(ClientInput::Stdin(data.to_owned())),
                None => Err((
                    close::NOTIFIED_ERROR,
                    "a data message needs \"data\", a string".into(),
                )),
            }
        }
        Some("signal") => value
            .get("signal")
            .and_then(Value::as_str)
            .filter(|name| name.starts_with("SIG"))
            .and_then(signal_number)
            .map(ClientInput::Signal)
            .ok_or((close::INVALID_SIGNAL, "Invalid signal".into())),
        _ => Err((close::NOTIFIED_ERROR, "unknown message type".into())),
    }
}

/// Watched events as Piston's messages.
fn render(runtime: Runtime) -> Render {
    let mut run_announced = false;
    Box::new(move |event| {
        let mut messages = Vec::new();
        let mut say = |value: Value| messages.push(Message::Text(value.to_string().into()));
        match event {
            Watched::State { state, .. } if state == "running" && !run_announced => {
                run_announced = true;
                say(json!({ "type": "stage", "stage": "run" }));
            }
            Watched::State { .. } => {}
            Watched::Output { stream, data, .. } => {
                let name = match stream {
                    LiveStream::Stdout => "stdout",
                    LiveStream::Stderr => "stderr",
                    // Compile output is in the compile stage's exit only.
                    LiveStream::CompileStdout | LiveStream::CompileStderr => return messages,
                };
                say(json!({ "type": "data", "stream": name, "data": text(&data) }));
            }
            Watched::Finished(TaskState::Done(result)) => {
                let response = ExecuteResponse::new(&runtime, &result);
                let (stage, unit) = match &response.compile {
                    Some(compile) if result.verdict == code_runner_queue::Verdict::CompileError => {
                        ("compile", compile)
                    }
                    _ => ("run", &response.run),
                };
                if stage == "compile" {
                    say(json!({ "type": "stage", "stage": "compile" }));
                }
                let mut exit = json!({ "type": "exit", "stage": stage, "code": unit.code, "signal": unit.signal });
                if let Some(message) = &unit.message {
                    exit["error"] = json!(message);
                }
                say(exit);
                messages.push(close_frame(close::COMPLETED, "Job Completed"));
            }
            Watched::Finished(TaskState::Pending) => {}
            Watched::Unavailable => {
                messages = refusal(close::NOTIFIED_ERROR, "queue unavailable, try again");
            }
        }
        messages
    })
}
