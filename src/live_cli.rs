//! The live half of `code-runner run --server`: following a job's output
//! as Server-Sent Events, and `--interactive` runs over the WebSocket
//! `/run-code/ws` (docs/live.md).

use std::io::{BufRead, Write};

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{finish_remote, ResultBody};

/// How often a dropped event stream is resumed before giving up.
const RESUMES: usize = 3;

/// Prints a job's output as its events arrive and returns its result (the
/// body of `GET /results/{id}`); `None` when the server has no event stream
/// for it (the caller waits for the result instead).
pub(crate) async fn follow(request: reqwest::RequestBuilder) -> anyhow::Result<Option<Value>> {
    let mut printed = Printed::default();
    let mut last_id: Option<String> = None;
    let mut resumes = 0;
    loop {
        let mut attempt = request
            .try_clone()
            .context("cannot repeat the events request")?;
        if let Some(id) = &last_id {
            attempt = attempt.header("Last-Event-ID", id);
        }
        let response = match attempt.send().await {
            Ok(response) if response.status().is_success() => response,
            Ok(_) if last_id.is_none() && printed.nothing() => return Ok(None),
            Ok(response) => bail!("the event stream failed ({})", response.status()),
            Err(e) if last_id.is_none() && printed.nothing() => {
                return Err(e).context("opening the event stream")
            }
            Err(e) => return Err(e).context("resuming the event stream"),
        };
        match read_events(response, &mut printed, &mut last_id).await {
            Ok(Some(result)) => {
                printed.complete_from(&result)?;
                return Ok(Some(result));
            }
            Ok(None) | Err(_) if resumes < RESUMES => resumes += 1,
            Ok(None) => bail!("the event stream ended before the result"),
            Err(e) => return Err(e),
        }
    }
}

/// Bytes of each stream printed so far.
#[derive(Default)]
struct Printed {
    stdout: usize,
    stderr: usize,
}

impl Printed {
    fn nothing(&self) -> bool {
        self.stdout == 0 && self.stderr == 0
    }

    /// Prints a chunk of `stream` at `offset`, skipping what was printed.
    fn chunk(&mut self, stream: &str, offset: usize, data: &str) -> anyhow::Result<()> {
        let (count, out): (&mut usize, Box<dyn Write>) = match stream {
            "stdout" => (&mut self.stdout, Box::new(std::io::stdout())),
            "stderr" => (&mut self.stderr, Box::new(std::io::stderr())),
            // Compile output goes to stderr, not counted against the run's.
            "compile_stdout" | "compile_stderr" => {
                eprint!("{data}");
                return Ok(());
            }
            _ => return Ok(()),
        };
        let mut out = out;
        let end = offset + data.len();
        if end <= *count {
            return Ok(());
        }
        let skip = (*count).saturating_sub(offset);
        if let Some(rest) = data.get(skip..) {
            out.write_all(rest.as_bytes())?;
            out.flush()?;
        }
        *count = end;
        Ok(())
    }

    /// Prints what the live view missed (chunks dropped under load): the
    /// result has the whole output.
    fn complete_from(&mut self, result: &Value) -> anyhow::Result<()> {
        for stream in ["stdout", "stderr"] {
            let whole = result[stream].as_str().unwrap_or_default();
            let done = if stream == "stdout" {
                self.stdout
            } else {
                self.stderr
            };
            if whole.len() > done {
                if let Some(rest) = whole.get(done..) {
                    self.chunk(stream, done, rest)?;
                }
            }
        }
        Ok(())
    }
}

/// Reads one event stream: prints chunks, remembers the last id, returns
/// the result when it comes (`None`: the stream ended first).
async fn read_events(
    mut response: reqwest::Response,
    printed: &mut Printed,
    last_id: &mut Option<String>,
) -> anyhow::Result<Option<Value>> {
    let mut buffer = String::new();
    while let Some(bytes) = response.chunk().await? {
        buffer.push_str(&String::from_utf8_lossy(&bytes));
        while let Some(at) = buffer.find("\n\n") {
            let block: String = buffer.drain(..at + 2).collect();
            let (mut event, mut data) = (String::new(), String::new());
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event:") {
                    event = value.trim().to_owned();
                } else if let Some(value) = line.strip_prefix("id:") {
                    *last_id = Some(value.trim().to_owned());
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push_str(value.strip_prefix(' ').unwrap_or(value));
                }
            }
            let data: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
            match event.as_str() {
                "result" => return Ok(Some(data)),
                "error" => bail!(
                    "{}",
                    data["detail"].as_str().unwrap_or("event stream error")
                ),
                "state" | "end" | "" => {}
                stream => {
                    let offset = data["offset"].as_u64().unwrap_or(0) as usize;
                    printed.chunk(stream, offset, data["data"].as_str().unwrap_or(""))?;
                }
            }
        }
    }
    Ok(None)
}

/// `run --interactive`: the job over `/run-code/ws`, this terminal's input
/// as its stdin.
pub(crate) async fn interactive(
    server: &str,
    api_key: Option<&str>,
    body: &Value,
) -> anyhow::Result<u8> {
    let url = match server.split_once("://") {
        Some(("http", rest)) => format!("ws://{rest}/run-code/ws"),
        Some(("https", _)) => {
            bail!("--interactive needs an http:// server (no TLS in this client)")
        }
        _ => bail!("--server must be an http:// URL"),
    };
    let mut request = url
        .as_str()
        .into_client_request()
        .context("the server URL")?;
    if let Some(key) = api_key {
        request
            .headers_mut()
            .insert("x-api-key", key.parse().context("the API key")?);
    }
    let (socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    let (mut sink, mut stream) = socket.split();
    sink.send(Message::Text(body.to_string().into())).await?;
    // Lines typed here, read on a thread of their own (stdin blocks).
    let (lines_tx, mut lines) = tokio::sync::mpsc::channel::<Option<String>>(16);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut line = String::new();
        loop {
            line.clear();
            match stdin.lock().read_line(&mut line) {
                Ok(0) | Err(_) => {
                    let _ = lines_tx.blocking_send(None);
                    return;
                }
                Ok(_) => {
                    if lines_tx.blocking_send(Some(line.clone())).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let mut printed = Printed::default();
    let mut input_open = true;
    loop {
        tokio::select! {
            message = stream.next() => {
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(frame))) => {
                        let reason = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                        bail!("the server closed the connection: {reason}");
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(e).context("the connection failed"),
                    None => bail!("the connection ended before the result"),
                };
                let message: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                match message["type"].as_str().unwrap_or("") {
                    "result" => {
                        printed.complete_from(&message)?;
                        let body: ResultBody = serde_json::from_value(message)
                            .context("reading the result")?;
                        return Ok(finish_remote(body, false));
                    }
                    "error" => bail!("{}", message["message"].as_str().unwrap_or("refused")),
                    "accepted" | "state" => {}
                    stream => {
                        let offset = message["offset"].as_u64().unwrap_or(0) as usize;
                        printed.chunk(stream, offset, message["data"].as_str().unwrap_or(""))?;
                    }
                }
            }
            line = lines.recv(), if input_open => {
                let message = match line.flatten() {
                    Some(data) => json!({ "type": "stdin", "data": data }),
                    None => {
                        input_open = false;
                        json!({ "type": "eof" })
                    }
                };
                sink.send(Message::Text(message.to_string().into())).await?;
            }
            _ = tokio::signal::ctrl_c() => {
                let interrupt = json!({ "type": "signal", "signal": "SIGINT" });
                sink.send(Message::Text(interrupt.to_string().into())).await?;
            }
        }
    }
}
