//! Live runs (SPEC §9, docs/live.md): Server-Sent Events of a running task,
//! and interactive runs over the WebSocket, on api + two workers + Redis.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{spawn_app, Options, TestApp};
use crate::limited;

async fn two_workers() -> TestApp {
    spawn_app(Options {
        workers: 2,
        worker_flags: limited(),
        ..Options::default()
    })
    .await
}

/// Submits a job with `?stream=true`.
async fn submit_streamed(app: &TestApp, language: &str, code: &str) -> String {
    let response = app
        .client
        .post(format!("{}/run-code?stream=true", app.address))
        .json(&json!({"language": language, "code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["task_id"].as_str().unwrap().to_owned()
}

/// One Server-Sent Event.
#[derive(Debug, Clone)]
struct Event {
    event: String,
    id: Option<String>,
    data: Value,
}

/// A minimal SSE reader over a streaming response.
struct Sse {
    response: reqwest::Response,
    buffer: String,
}

impl Sse {
    async fn open(app: &TestApp, id: &str, last_event_id: Option<&str>) -> Sse {
        let mut request = app
            .client
            .get(format!("{}/results/{id}/events", app.address));
        if let Some(last) = last_event_id {
            request = request.header("Last-Event-ID", last);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        Sse {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (keep-alive comments skipped); `None` at the end.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(at) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..at + 2).collect();
                let (mut event, mut id, mut data) = (String::new(), None, String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if event.is_empty() && data.is_empty() {
                    continue;
                }
                let data = serde_json::from_str(&data).unwrap_or(Value::String(data));
                return Some(Event { event, id, data });
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), self.response.chunk())
                .await
                .expect("an SSE event within 30 s")
                .ok()??;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Every event up to the end of the stream.
    async fn rest(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        while let Some(event) = self.next().await {
            events.push(event);
        }
        events
    }
}

/// The stdout text of `events`, checking that offsets follow each other.
fn stdout_of(events: &[Event], from: u64) -> String {
    let mut text = String::new();
    let mut offset = from;
    for event in events.iter().filter(|e| e.event == "stdout") {
        assert_eq!(event.data["offset"].as_u64(), Some(offset), "{events:?}");
        let data = event.data["data"].as_str().unwrap();
        offset += data.len() as u64;
        text.push_str(data);
    }
    text
}

const PRINT_SLEEP_PRINT: &str =
    "import time\nprint('first', flush=True)\ntime.sleep(2)\nprint('second', flush=True)\n";

#[tokio::test]
async fn live_sse_first_chunk_arrives_before_the_program_ends() {
    // A wall-clock limit above the program's 2 s sleep.
    let mut flags = limited();
    let at = flags.iter().position(|f| f == "--time-limit-ms").unwrap();
    flags[at + 1] = "6000".into();
    let app = spawn_app(Options {
        workers: 2,
        worker_flags: flags,
        ..Options::default()
    })
    .await;
    let id = submit_streamed(&app, "python", PRINT_SLEEP_PRINT).await;
    let mut sse = Sse::open(&app, &id, None).await;
    let mut seen = Vec::new();
    let first = loop {
        let event = sse.next().await.expect("events before the end");
        seen.push(event.clone());
        if event.event == "stdout" {
            break event;
        }
        assert_ne!(
            event.event, "result",
            "the result came before any output: {seen:?}"
        );
    };
    let at_first = Instant::now();
    assert_eq!(first.data["data"], "first\n");
    assert_eq!(first.data["offset"], 0);
    assert!(first.id.is_some());
    // The program is still sleeping: its task is not finished.
    let (_, status) = app.result(&id).await;
    assert_eq!(status["status"], "PENDING", "{status}");
    assert!(seen.iter().any(|e| e.event == "state"), "{seen:?}");
    let rest = sse.rest().await;
    assert!(
        at_first.elapsed() >= Duration::from_millis(1500),
        "the first chunk came only at the end"
    );
    let names: Vec<&str> = rest.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names, ["stdout", "result", "end"], "{rest:?}");
    assert_eq!(rest[0].data["data"], "second\n");
    assert_eq!(rest[0].data["offset"], 6);
    assert_eq!(rest[1].data["verdict"], "ok");
    assert_eq!(rest[1].data["stdout"], "first\nsecond\n");
}

#[tokio::test]
async fn live_sse_resumes_with_last_event_id_without_repeats_or_gaps() {
    let app = two_workers().await;
    let code = "import time\nfor i in range(6):\n    print(f'line {i}', flush=True)\n    time.sleep(0.2)\n";
    let id = submit_streamed(&app, "python", code).await;
    let mut sse = Sse::open(&app, &id, None).await;
    let mut before = Vec::new();
    while before
        .iter()
        .filter(|e: &&Event| e.event == "stdout")
        .count()
        < 2
    {
        before.push(sse.next().await.expect("two chunks"));
    }
    let last = before.last().unwrap().id.clone().expect("an id");
    drop(sse); // the connection drops mid-run
    let mut resumed = Sse::open(&app, &id, Some(&last)).await;
    let after = resumed.rest().await;
    assert!(after.iter().all(|e| e.event != "state"), "{after:?}");
    let text_before = stdout_of(&before, 0);
    let text_after = stdout_of(&after, text_before.len() as u64);
    let expected: String = (0..6).map(|i| format!("line {i}\n")).collect();
    assert_eq!(format!("{text_before}{text_after}"), expected);
    assert_eq!(after.last().unwrap().event, "end");
    // An id this stream never had is refused, not silently replayed.
    let bad = app
        .client
        .get(format!("{}/results/{id}/events", app.address))
        .header("Last-Event-ID", "not-an-id")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("Last-Event-ID"));
}

#[tokio::test]
async fn live_sse_replays_a_finished_task_and_respects_unknown_ids() {
    let app = two_workers().await;
    // Not streamed: its output comes whole from the result.
    let id = app.submit("python", "print('plain')").await;
    app.wait_result(&id).await;
    let events = Sse::open(&app, &id, None).await.rest().await;
    let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names, ["stdout", "result", "end"], "{events:?}");
    assert_eq!(events[0].data["data"], "plain\n");
    // Streamed and finished: the log, replayed at once.
    let id = submit_streamed(&app, "python", "print('a', flush=True)\nprint('b')").await;
    app.wait_result(&id).await;
    let events = Sse::open(&app, &id, None).await.rest().await;
    assert_eq!(events[0].event, "state");
    assert_eq!(stdout_of(&events, 0), "a\nb\n");
    assert_eq!(events.last().unwrap().event, "end");
    let missing = app
        .client
        .get(format!(
            "{}/results/00000000-0000-4000-8000-000000000000/events",
            app.address
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn live_sse_output_cap_ends_a_flood_as_polling_does() {
    let app = two_workers().await;
    let flood = "while True:\n    print('x' * 999, flush=True)\n";
    let id = submit_streamed(&app, "python", flood).await;
    let events = Sse::open(&app, &id, None).await.rest().await;
    let streamed = stdout_of(&events, 0);
    let result = &events[events.len() - 2];
    assert_eq!(result.event, "result");
    assert_eq!(result.data["verdict"], "output_limit");
    let polled = app.wait_result(&id).await;
    assert_eq!(polled["verdict"], "output_limit");
    assert_eq!(polled["output_truncated"], true);
    let final_stdout = polled["stdout"].as_str().unwrap();
    // The cap (64 KiB here) bounds the live view exactly as the result.
    assert!(final_stdout.len() <= 65536);
    assert_eq!(streamed, final_stdout);
}

#[tokio::test]
async fn live_sse_two_hundred_clients_see_the_whole_story() {
    // All from one address here: raise the per-client cap of event streams.
    let app = spawn_app(Options {
        workers: 2,
        worker_flags: limited(),
        api_flags: ["--max-event-streams-per-client", "1000"]
            .map(String::from)
            .to_vec(),
        ..Options::default()
    })
    .await;
    let code = "import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.5)\n";
    let id = submit_streamed(&app, "python", code).await;
    let clients = (0..200).map(|_| {
        let (app, id) = (&app, &id);
        async move {
            let events = Sse::open(app, id, None).await.rest().await;
            (
                stdout_of(&events, 0),
                events.last().map(|e| e.event.clone()),
            )
        }
    });
    let seen = futures_util::future::join_all(clients).await;
    for (stdout, last) in seen {
        assert_eq!(stdout, "0\n1\n2\n");
        assert_eq!(last.as_deref(), Some("end"));
    }
}

#[tokio::test]
async fn live_sse_a_client_that_stops_reading_blocks_nothing() {
    let app = two_workers().await;
    let flood = "while True:\n    print('y' * 999, flush=True)\n";
    let id = submit_streamed(&app, "python", flood).await;
    // Opened and never read: its socket buffers fill up.
    let stalled = Sse::open(&app, &id, None).await;
    let started = Instant::now();
    let result = app.wait_result(&id).await;
    assert_eq!(result["verdict"], "output_limit");
    // Other jobs go on as usual.
    let other = app.run("python", "print('still here')").await;
    assert_eq!(other["stdout"], "still here\n");
    assert!(started.elapsed() < Duration::from_secs(20));
    drop(stalled);
}

// ---------------------------------------------------------------------------
// The WebSocket.

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(app: &TestApp, path: &str) -> Socket {
    let url = format!("{}{path}", app.address.replace("http://", "ws://"));
    let (socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    socket
}

async fn send_json(socket: &mut Socket, value: Value) {
    socket
        .send(Message::Text(value.to_string().into()))
        .await
        .unwrap();
}

/// The next JSON message, or the close frame's code and reason.
async fn receive(socket: &mut Socket) -> Result<Value, (u16, String)> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .expect("a message within 30 s");
        match message {
            Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(&text).unwrap()),
            Some(Ok(Message::Close(frame))) => {
                let frame = frame.expect("a close frame with a code");
                return Err((u16::from(frame.code), frame.reason.to_string()));
            }
            Some(Ok(_)) => continue,
            other => panic!("socket ended without a close frame: {other:?}"),
        }
    }
}

/// Reads until stdout holds `wanted`; returns the messages seen.
async fn until_stdout(socket: &mut Socket, stdout: &mut String, wanted: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    while !stdout.contains(wanted) {
        let message = receive(socket).await.unwrap_or_else(|close| {
            panic!("closed {close:?} before {wanted:?}; stdout {stdout:?}; seen {seen:?}")
        });
        if message["type"] == "stdout" {
            stdout.push_str(message["data"].as_str().unwrap());
        }
        assert_ne!(message["type"], "result", "{message}");
        seen.push(message);
    }
    seen
}

/// Reads to the result and the close; returns the result.
async fn until_result(socket: &mut Socket) -> Value {
    loop {
        let message = receive(socket).await.expect("the result before the close");
        if message["type"] == "result" {
            let close = receive(socket).await.expect_err("a close after the result");
            assert_eq!(close.0, 1000);
            return message;
        }
    }
}

const PY_ECHO: &str = "while True:\n    line = input()\n    if line == 'quit':\n        break\n    print('you said ' + line, flush=True)\nprint('bye')\n";

#[tokio::test]
async fn live_ws_drives_a_python_input_loop() {
    let app = two_workers().await;
    let mut socket = connect(&app, "/run-code/ws").await;
    send_json(&mut socket, json!({"language": "python", "code": PY_ECHO})).await;
    let accepted = receive(&mut socket).await.unwrap();
    assert_eq!(accepted["type"], "accepted");
    let mut stdout = String::new();
    for word in ["hello", "world"] {
        send_json(
            &mut socket,
            json!({"type": "stdin", "data": format!("{word}\n")}),
        )
        .await;
        until_stdout(&mut socket, &mut stdout, &format!("you said {word}\n")).await;
    }
    send_json(&mut socket, json!({"type": "stdin", "data": "quit\n"})).await;
    let result = until_result(&mut socket).await;
    assert_eq!(result["verdict"], "ok", "{result}");
    assert_eq!(result["stdout"], "you said hello\nyou said world\nbye\n");
    let task = accepted["task_id"].as_str().unwrap();
    assert_eq!(app.wait_result(task).await["stdout"], result["stdout"]);
}

const C_SUMS: &str = r#"#include <stdio.h>
int main(void) {
    int a, b;
    while (scanf("%d %d", &a, &b) == 2) {
        printf("%d\n", a + b);
        fflush(stdout);
    }
    printf("done\n");
    return 0;
}
"#;

#[tokio::test]
async fn live_ws_drives_a_c_program_reading_with_scanf() {
    let app = two_workers().await;
    let mut socket = connect(&app, "/run-code/ws").await;
    send_json(&mut socket, json!({"language": "c", "code": C_SUMS})).await;
    assert_eq!(receive(&mut socket).await.unwrap()["type"], "accepted");
    let mut stdout = String::new();
    send_json(&mut socket, json!({"type": "stdin", "data": "2 3\n"})).await;
    until_stdout(&mut socket, &mut stdout, "5\n").await;
    send_json(&mut socket, json!({"type": "stdin", "data": "40 2\n"})).await;
    until_stdout(&mut socket, &mut stdout, "42\n").await;
    send_json(&mut socket, json!({"type": "eof"})).await;
    let result = until_result(&mut socket).await;
    assert_eq!(result["verdict"], "ok", "{result}");
    assert_eq!(result["stdout"], "5\n42\ndone\n");
}

#[tokio::test]
async fn live_ws_a_signal_ends_the_program_with_that_signal() {
    let app = two_workers().await;
    let code = "#include <stdio.h>\n#include <unistd.h>\nint main(void) { puts(\"ready\"); fflush(stdout); for (;;) pause(); }\n";
    for (name, number) in [("SIGINT", 2), ("SIGKILL", 9)] {
        let mut socket = connect(&app, "/run-code/ws").await;
        send_json(&mut socket, json!({"language": "c", "code": code})).await;
        assert_eq!(receive(&mut socket).await.unwrap()["type"], "accepted");
        let mut stdout = String::new();
        until_stdout(&mut socket, &mut stdout, "ready\n").await;
        send_json(&mut socket, json!({"type": "signal", "signal": name})).await;
        let result = until_result(&mut socket).await;
        assert_eq!(result["signal"], number, "{result}");
        assert_ne!(result["verdict"], "time_limit", "{result}");
    }
}

#[tokio::test]
async fn live_ws_bad_input_closes_with_a_clear_reason() {
    let app = two_workers().await;
    // A first message that is not a run request.
    let mut socket = connect(&app, "/run-code/ws").await;
    send_json(&mut socket, json!({"type": "stdin", "data": "hi"})).await;
    let error = receive(&mut socket).await.unwrap();
    assert_eq!(error["type"], "error");
    assert!(
        error["message"].as_str().unwrap().contains("language"),
        "{error}"
    );
    assert_eq!(receive(&mut socket).await.unwrap_err().0, 1008);
    // A binary frame where text is expected.
    let mut socket = connect(&app, "/run-code/ws").await;
    socket
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(receive(&mut socket).await.unwrap()["type"], "error");
    let (code, reason) = receive(&mut socket).await.unwrap_err();
    assert_eq!(code, u16::from(CloseCode::Unsupported));
    assert!(reason.contains("binary"), "{reason}");
    // Stdin after the end of input: closed, and what came before is kept.
    let mut socket = connect(&app, "/run-code/ws").await;
    send_json(
        &mut socket,
        json!({"language": "python", "code": "import sys\nprint(sys.stdin.read())"}),
    )
    .await;
    let accepted = receive(&mut socket).await.unwrap();
    send_json(&mut socket, json!({"type": "stdin", "data": "kept"})).await;
    send_json(&mut socket, json!({"type": "eof"})).await;
    send_json(&mut socket, json!({"type": "stdin", "data": "late"})).await;
    let close = loop {
        match receive(&mut socket).await {
            Ok(message) if message["type"] == "error" => {
                assert!(message["message"]
                    .as_str()
                    .unwrap()
                    .contains("after the end of input"));
            }
            Ok(_) => continue,
            Err(close) => break close,
        }
    };
    assert_eq!(close.0, 1008);
    let task = accepted["task_id"].as_str().unwrap();
    let result = app.wait_result(task).await;
    assert_eq!(result["stdout"], "kept\n", "{result}");
    // A message of an unknown type, and a bad signal.
    for bad in [
        json!({"type": "dance"}),
        json!({"type": "signal", "signal": "SIGSEGV"}),
    ] {
        let mut socket = connect(&app, "/run-code/ws").await;
        send_json(
            &mut socket,
            json!({"language": "python", "code": "input()"}),
        )
        .await;
        assert_eq!(receive(&mut socket).await.unwrap()["type"], "accepted");
        send_json(&mut socket, bad).await;
        let close = loop {
            match receive(&mut socket).await {
                Ok(_) => continue,
                Err(close) => break close,
            }
        };
        assert_eq!(close.0, 1008, "{close:?}");
    }
    // Plain HTTP on the WebSocket route.
    let plain = app
        .client
        .get(format!("{}/run-code/ws", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 426);
}

#[tokio::test]
async fn live_ws_a_vanished_client_frees_its_slot() {
    let app = two_workers().await;
    let mut socket = connect(&app, "/run-code/ws").await;
    // Waits for input for ever (its time limit is 2 s of wall clock here;
    // the point is that its input ends when the client leaves).
    let code = "import sys\ndata = sys.stdin.read()\nprint('read', len(data))\n";
    send_json(&mut socket, json!({"language": "python", "code": code})).await;
    let accepted = receive(&mut socket).await.unwrap();
    send_json(&mut socket, json!({"type": "stdin", "data": "abc"})).await;
    drop(socket);
    let task = accepted["task_id"].as_str().unwrap();
    let result = app.wait_result(task).await;
    assert_eq!(result["stdout"], "read 3\n", "{result}");
}

// ---------------------------------------------------------------------------
// Piston's /api/v2/connect, on the same machinery.

/// API and workers with the run timeout Piston clients send by default.
async fn piston_app() -> TestApp {
    let limits: Vec<String> = ["--time-limit-ms", "3000", "--memory-limit-mb", "128"]
        .map(String::from)
        .to_vec();
    spawn_app(Options {
        workers: 2,
        worker_flags: limits.clone(),
        api_flags: limits,
        ..Options::default()
    })
    .await
}

/// Reads Piston messages until stdout holds `wanted`.
async fn piston_until_stdout(socket: &mut Socket, stdout: &mut String, wanted: &str) {
    while !stdout.contains(wanted) {
        let message = receive(socket)
            .await
            .unwrap_or_else(|close| panic!("closed {close:?}; stdout {stdout:?}"));
        assert_ne!(message["type"], "exit", "{message}");
        if message["type"] == "data" && message["stream"] == "stdout" {
            stdout.push_str(message["data"].as_str().unwrap());
        }
    }
}

/// Reads to the exit message and the close 4999.
async fn piston_until_exit(socket: &mut Socket) -> Value {
    loop {
        let message = receive(socket).await.expect("exit before the close");
        if message["type"] == "exit" {
            let (code, reason) = receive(socket).await.expect_err("a close after exit");
            assert_eq!((code, reason.as_str()), (4999, "Job Completed"));
            return message;
        }
    }
}

#[tokio::test]
async fn live_piston_connect_init_data_both_ways_and_exit() {
    let app = piston_app().await;
    let mut socket = connect(&app, "/api/v2/connect").await;
    send_json(
        &mut socket,
        json!({"type": "init", "language": "python", "version": "*",
               "files": [{"content": PY_ECHO}], "stdin": "ignored\n"}),
    )
    .await;
    let runtime = receive(&mut socket).await.unwrap();
    assert_eq!(runtime["type"], "runtime", "{runtime}");
    assert_eq!(runtime["language"], "python");
    let mut stdout = String::new();
    send_json(
        &mut socket,
        json!({"type": "data", "stream": "stdin", "data": "ping\n"}),
    )
    .await;
    piston_until_stdout(&mut socket, &mut stdout, "you said ping\n").await;
    send_json(
        &mut socket,
        json!({"type": "data", "stream": "stdin", "data": "quit\n"}),
    )
    .await;
    let exit = piston_until_exit(&mut socket).await;
    assert_eq!(exit["stage"], "run");
    assert_eq!(exit["code"], 0, "{exit}");
    assert_eq!(exit["signal"], Value::Null);
}

#[tokio::test]
async fn live_piston_connect_signal_ends_the_program() {
    let app = piston_app().await;
    let mut socket = connect(&app, "/api/v2/connect").await;
    let code = "import time\nprint('ready', flush=True)\ntime.sleep(30)\n";
    send_json(
        &mut socket,
        json!({"type": "init", "language": "python", "version": "*", "files": [{"content": code}]}),
    )
    .await;
    assert_eq!(receive(&mut socket).await.unwrap()["type"], "runtime");
    let mut stdout = String::new();
    piston_until_stdout(&mut socket, &mut stdout, "ready\n").await;
    send_json(&mut socket, json!({"type": "signal", "signal": "SIGKILL"})).await;
    let exit = piston_until_exit(&mut socket).await;
    assert_eq!(exit["signal"], "SIGKILL", "{exit}");
}

#[tokio::test]
async fn live_piston_connect_refuses_bad_input_with_pistons_codes() {
    let app = piston_app().await;
    async fn close_of(socket: &mut Socket) -> (u16, String) {
        loop {
            match receive(socket).await {
                Ok(_) => continue,
                Err(close) => return close,
            }
        }
    }
    // Data before init.
    let mut socket = connect(&app, "/api/v2/connect").await;
    send_json(
        &mut socket,
        json!({"type": "data", "stream": "stdin", "data": "x"}),
    )
    .await;
    assert_eq!(
        close_of(&mut socket).await,
        (4003, "Not yet Initialized".into())
    );
    // An init that never comes.
    let mut socket = connect(&app, "/api/v2/connect").await;
    let started = Instant::now();
    assert_eq!(
        close_of(&mut socket).await,
        (4001, "Initialization Timeout".into())
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // A bad init: an error message, then 4002.
    let mut socket = connect(&app, "/api/v2/connect").await;
    send_json(
        &mut socket,
        json!({"type": "init", "language": "cobol", "version": "*", "files": [{"content": "x"}]}),
    )
    .await;
    let error = receive(&mut socket).await.unwrap();
    assert_eq!(error["type"], "error");
    assert!(
        error["message"].as_str().unwrap().contains("unknown"),
        "{error}"
    );
    assert_eq!(close_of(&mut socket).await.0, 4002);
    // After a good init: a second init, stdout as a stream, a bad signal.
    let cases = [
        (
            json!({"type": "init", "language": "python", "version": "*", "files": [{"content": "x"}]}),
            4000,
        ),
        (
            json!({"type": "data", "stream": "stdout", "data": "x"}),
            4004,
        ),
        (json!({"type": "signal", "signal": "SIGBOGUS"}), 4005),
    ];
    for (bad, code) in cases {
        let mut socket = connect(&app, "/api/v2/connect").await;
        send_json(
            &mut socket,
            json!({"type": "init", "language": "python", "version": "*", "files": [{"content": "input()"}]}),
        )
        .await;
        assert_eq!(receive(&mut socket).await.unwrap()["type"], "runtime");
        send_json(&mut socket, bad).await;
        assert_eq!(close_of(&mut socket).await.0, code);
    }
}

// ---------------------------------------------------------------------------
// The CLI: `code-runner run FILE --server URL [--interactive]`.

#[tokio::test]
async fn live_cli_prints_output_as_it_arrives_and_drives_stdin() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut flags = limited();
    let at = flags.iter().position(|f| f == "--time-limit-ms").unwrap();
    flags[at + 1] = "6000".into();
    let app = spawn_app(Options {
        workers: 2,
        worker_flags: flags,
        ..Options::default()
    })
    .await;
    let dir = std::env::temp_dir().join(format!("live-cli-{}", app.prefix));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("slow.py");
    std::fs::write(&file, PRINT_SLEEP_PRINT).unwrap();
    let mut child = tokio::process::Command::new(crate::helpers::BIN)
        .arg("run")
        .arg(&file)
        .args(["--server", &app.address])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .unwrap()
        .unwrap();
    let at_first = Instant::now();
    assert_eq!(first.as_deref(), Some("first"));
    let second = lines.next_line().await.unwrap();
    assert_eq!(second.as_deref(), Some("second"));
    assert!(
        at_first.elapsed() >= Duration::from_millis(1500),
        "printed only at the end"
    );
    assert!(child.wait().await.unwrap().success());

    let file = dir.join("echo.py");
    std::fs::write(&file, PY_ECHO).unwrap();
    let mut child = tokio::process::Command::new(crate::helpers::BIN)
        .arg("run")
        .arg(&file)
        .args(["--server", &app.address, "--interactive"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    stdin.write_all(b"marco\n").await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .unwrap()
        .unwrap();
    // The answer comes while the program still runs (its input is open).
    assert_eq!(answer.as_deref(), Some("you said marco"));
    stdin.write_all(b"quit\n").await.unwrap();
    assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("bye"));
    assert!(child.wait().await.unwrap().success());
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------
// Bounds of WebSockets (security review).

/// Opens a WebSocket with an optional `Origin`; the handshake's status when
/// refused.
async fn try_connect(app: &TestApp, path: &str, origin: Option<&str>) -> Result<Socket, u16> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!("{}{path}", app.address.replace("http://", "ws://"));
    let mut request = url.into_client_request().unwrap();
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(other) => panic!("handshake failed: {other}"),
    }
}

#[tokio::test]
async fn live_ws_sockets_hold_their_place_under_the_connection_cap() {
    let app = spawn_app(Options {
        embedded: true,
        api_flags: ["--max-connections", "4"].map(String::from).to_vec(),
        ..Options::default()
    })
    .await;
    // Wait for the health probes' connection to go.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Open sockets until the cap (4, one of which may be the test
    // client's kept-alive connection) answers 503.
    let mut sockets = Vec::new();
    let paths = ["/run-code/ws", "/api/v2/connect"];
    let refused = loop {
        let path = paths[sockets.len() % 2];
        match try_connect(&app, path, None).await {
            Ok(socket) => sockets.push(socket),
            Err(status) => break status,
        }
        assert!(sockets.len() <= 4, "upgraded sockets left the cap");
    };
    assert_eq!(refused, 503);
    assert!(sockets.len() >= 3, "{} sockets", sockets.len());
    let answer = reqwest::Client::new()
        .get(format!("{}/languages", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 503);
    // Closing one frees its place.
    let mut first = sockets.remove(0);
    first.close(None).await.unwrap();
    while first.next().await.is_some() {}
    drop(first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answer = reqwest::Client::new()
        .get(format!("{}/languages", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
}

#[tokio::test]
async fn live_ws_refuses_cross_site_origins() {
    let app = spawn_app(Options {
        embedded: true,
        api_flags: ["--cors-origins", "https://ide.example"]
            .map(String::from)
            .to_vec(),
        ..Options::default()
    })
    .await;
    let own = app.address.clone();
    for path in ["/run-code/ws", "/api/v2/connect"] {
        assert_eq!(
            try_connect(&app, path, Some("https://evil.example"))
                .await
                .err(),
            Some(403),
            "{path}"
        );
        assert!(try_connect(&app, path, None).await.is_ok(), "{path}");
        assert!(
            try_connect(&app, path, Some("https://ide.example"))
                .await
                .is_ok(),
            "{path}"
        );
        assert!(try_connect(&app, path, Some(&own)).await.is_ok(), "{path}");
    }
}

#[tokio::test]
async fn live_ws_first_message_is_held_in_the_body_memory_budget() {
    // The budget is raised to one body limit: one socket awaiting its run
    // request holds all of it.
    let app = spawn_app(Options {
        embedded: true,
        api_flags: ["--max-body-memory-mb", "1"].map(String::from).to_vec(),
        ..Options::default()
    })
    .await;
    let mut waiting = try_connect(&app, "/run-code/ws", None).await.unwrap();
    assert_eq!(
        try_connect(&app, "/run-code/ws", None).await.err(),
        Some(503),
        "a second unparsed first message fits the budget"
    );
    // Once its run request is parsed, the budget is free again.
    send_json(
        &mut waiting,
        json!({ "language": "python", "code": "print(1)" }),
    )
    .await;
    let accepted = receive(&mut waiting).await.unwrap();
    assert_eq!(accepted["type"], "accepted", "{accepted}");
    assert!(try_connect(&app, "/run-code/ws", None).await.is_ok());
}

#[tokio::test]
async fn live_ws_the_run_requests_stdin_counts_in_the_stdin_limit() {
    let app = spawn_app(Options {
        embedded: true,
        api_flags: ["--max-stdin-bytes", "16"].map(String::from).to_vec(),
        ..Options::default()
    })
    .await;
    let mut socket = connect(&app, "/run-code/ws").await;
    send_json(
        &mut socket,
        json!({ "language": "python", "code": "import time; time.sleep(5)", "stdin": "0123456789" }),
    )
    .await;
    assert_eq!(receive(&mut socket).await.unwrap()["type"], "accepted");
    send_json(
        &mut socket,
        json!({ "type": "stdin", "data": "abcdefghij" }),
    )
    .await;
    let closed = loop {
        match receive(&mut socket).await {
            Ok(_) => continue,
            Err(close) => break close,
        }
    };
    assert_eq!(closed.0, 1008, "{closed:?}");
}

#[tokio::test]
async fn live_sse_streams_are_capped_per_client_and_end_after_their_lifetime() {
    let app = spawn_app(Options {
        embedded: true,
        api_flags: ["--max-wait-secs", "2"].map(String::from).to_vec(),
        ..Options::default()
    })
    .await;
    let id = submit_streamed(&app, "python", "import time; time.sleep(1.5)").await;
    let mut open = Vec::new();
    for _ in 0..16 {
        open.push(Sse::open(&app, &id, None).await);
    }
    let refused = app
        .client
        .get(format!("{}/results/{id}/events", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429, "a 17th stream of one client");
    drop(open);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A stream that outlives --max-wait-secs ends without `end`.
    let long = submit_streamed(&app, "python", "import time; time.sleep(10)").await;
    let started = Instant::now();
    let events = Sse::open(&app, &long, None).await.rest().await;
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert!(events.iter().all(|e| e.event != "end"), "{events:?}");
}
