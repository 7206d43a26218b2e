//! Judge0's API on the real service: the official Python SDK (PyPI
//! `judge0`, unchanged, from the virtualenv `scripts/test.sh` prepares) runs
//! `tests/e2e/judge0_sdk.py` against an API, a worker and Redis; and
//! `callback_url` deliveries reach a real local HTTP listener.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::helpers::{spawn_app, Options};

/// The Python of `target/py-venv` (or `CODE_RUNNER_TEST_PYTHON`), which
/// `scripts/test.sh` creates with the `judge0` SDK installed.
fn sdk_python() -> PathBuf {
    let python = std::env::var_os("CODE_RUNNER_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/py-venv/bin/python")
        });
    assert!(
        python.exists(),
        "{} not found: run scripts/test.sh, which creates it with the judge0 SDK",
        python.display()
    );
    python
}

fn worker_flags() -> Vec<String> {
    [
        "--time-limit-ms",
        "3000",
        "--memory-limit-mb",
        "256",
        "--concurrency",
        "4",
    ]
    .map(String::from)
    .to_vec()
}

#[tokio::test]
async fn judge0_official_python_sdk_runs_against_the_service() {
    let app = spawn_app(Options {
        worker_flags: worker_flags(),
        ..Options::default()
    })
    .await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/judge0_sdk.py");
    let output = tokio::time::timeout(
        Duration::from_secs(300),
        tokio::process::Command::new(sdk_python())
            .arg(script)
            .arg(&app.address)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the SDK script finishes within 300 s")
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the Judge0 SDK script failed:\n{stdout}\n{}\nAPI log:\n{}",
        String::from_utf8_lossy(&output.stderr),
        app.log("api")
    );
    assert!(stdout.contains("all to loopback"), "{stdout}");
}

/// A request the listener received: method, path and body.
type Received = Arc<Mutex<Vec<(String, String, Value)>>>;

/// A minimal HTTP/1.1 listener on loopback: answers each request with the
/// next status of `statuses` (the last one repeated) and records it.
async fn listener(statuses: Vec<u16>) -> (String, Received) {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap();
    let received: Received = Arc::default();
    let log = received.clone();
    tokio::spawn(async move {
        let mut served = 0usize;
        loop {
            let Ok((mut stream, _)) = socket.accept().await else {
                return;
            };
            let mut data = Vec::new();
            let mut buffer = [0u8; 8192];
            // Read the head, then as much body as Content-Length says.
            let (head, body) = loop {
                let n = stream.read(&mut buffer).await.unwrap_or(0);
                if n == 0 {
                    break (String::new(), Vec::new());
                }
                data.extend_from_slice(&buffer[..n]);
                if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&data[..end]).into_owned();
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            let (name, value) = l.split_once(':')?;
                            name.eq_ignore_ascii_case("content-length")
                                .then(|| value.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    while data.len() < end + 4 + length {
                        let n = stream.read(&mut buffer).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        data.extend_from_slice(&buffer[..n]);
                    }
                    break (head, data[end + 4..].to_vec());
                }
            };
            let mut words = head.split_whitespace();
            let method = words.next().unwrap_or_default().to_owned();
            let path = words.next().unwrap_or_default().to_owned();
            let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
            log.lock().unwrap().push((method, path, body));
            let status = statuses[served.min(statuses.len() - 1)];
            served += 1;
            let answer =
                format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    (format!("http://{address}/hook"), received)
}

/// Waits (polling, capped) until `received` holds `n` requests.
async fn wait_for(received: &Received, n: usize, cap: Duration) {
    let start = Instant::now();
    while received.lock().unwrap().len() < n {
        assert!(
            start.elapsed() < cap,
            "{} of {n} callbacks within {cap:?}",
            received.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn judge0_callbacks_are_put_once_and_retried_on_500() {
    let app = spawn_app(Options {
        worker_flags: worker_flags(),
        api_flags: vec!["--judge0-allow-private-callbacks".into()],
        ..Options::default()
    })
    .await;
    let (ok_url, ok) = listener(vec![204]).await;
    let (flaky_url, flaky) = listener(vec![500, 200]).await;
    let mut tokens = Vec::new();
    for url in [&ok_url, &flaky_url] {
        let response = app
            .client
            .post(format!("{}/submissions", app.address))
            .json(&json!({
                "source_code": "print(input())", "language_id": 71,
                "stdin": "called back", "callback_url": url,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        tokens.push(body["token"].as_str().unwrap().to_owned());
    }
    wait_for(&ok, 1, Duration::from_secs(30)).await;
    wait_for(&flaky, 2, Duration::from_secs(30)).await;
    // Nothing more arrives once a try succeeded.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (received, token, tries) in [(&ok, &tokens[0], 1), (&flaky, &tokens[1], 2)] {
        let received = received.lock().unwrap();
        assert_eq!(received.len(), tries, "{received:?}");
        for (method, path, body) in received.iter() {
            assert_eq!((method.as_str(), path.as_str()), ("PUT", "/hook"));
            assert_eq!(body["token"], token.as_str());
            assert_eq!(body["status"], json!({"id": 3, "description": "Accepted"}));
            // The 8 default fields, base64-encoded as Judge0 sends them.
            assert_eq!(body["stdout"], "Y2FsbGVkIGJhY2sK\n");
            assert_eq!(body.as_object().unwrap().len(), 8, "{body}");
        }
    }
}

#[tokio::test]
async fn judge0_wait_true_answers_the_finished_submission_and_private_callbacks_are_refused() {
    let app = spawn_app(Options {
        worker_flags: worker_flags(),
        ..Options::default()
    })
    .await;
    let response = app
        .client
        .post(format!(
            "{}/submissions?base64_encoded=false&wait=true&fields=stdout,status,time,memory,language",
            app.address
        ))
        .json(&json!({"source_code": "print(input()[::-1])", "language_id": 113, "stdin": "olleh"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["stdout"], "hello\n", "{body}");
    assert_eq!(body["status"], json!({"id": 3, "description": "Accepted"}));
    assert_eq!(body["language"]["id"], 113);
    let time: f64 = body["time"].as_str().unwrap().parse().unwrap();
    assert!((0.0..3.0).contains(&time), "{body}");
    assert!(body["memory"].as_u64().unwrap() > 0, "{body}");

    // Without --judge0-allow-private-callbacks, callbacks to loopback,
    // private and link-local addresses are refused at submit.
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://169.254.169.254/latest",
        "http://10.0.0.1/hook",
    ] {
        let response = app
            .client
            .post(format!("{}/submissions", app.address))
            .json(&json!({"source_code": "print(1)", "language_id": 71, "callback_url": url}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{url}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body,
            json!({"callback_url": ["must not point to a loopback, private or link-local address"]}),
            "{url}"
        );
    }
}
