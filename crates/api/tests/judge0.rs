//! Judge0's API in-process, against the real embedded queue: the routes'
//! shapes, the job a submission becomes, the mapping of a finished job back
//! to Judge0's fields, and every kind of bad input answered in Judge0's own
//! error shape (never a 500). Finished tasks are produced the way a worker
//! produces them, with `Queue::reserve` + `Queue::complete`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use code_runner_api::{router, ApiConfig, ApiKeys, AppState, Judge0Config, SupportedLanguage};
use code_runner_queue::{Delivery, EmbeddedQueue, JobResult, Queue, Verdict};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

fn languages() -> Vec<SupportedLanguage> {
    let language = |name: &str, version: &str, file_name: &str| SupportedLanguage {
        name: name.to_owned(),
        version: version.to_owned(),
        aliases: Vec::new(),
        file_name: file_name.to_owned(),
    };
    vec![
        language("python", "3.11", "main.py"),
        language("javascript", "node 20", "main.js"),
        language("java", "OpenJDK 17", "Main.java"),
        language("cpp", "g++ 12", "main.cpp"),
        language("c", "gcc 12", "main.c"),
    ]
}

struct App {
    queue: Arc<EmbeddedQueue>,
    router: Router,
}

fn app_with(config: ApiConfig) -> App {
    let queue = Arc::new(EmbeddedQueue::new(Duration::from_secs(60)));
    let state = AppState::new(queue.clone(), languages(), config);
    App {
        queue,
        router: router(state),
    }
}

fn app() -> App {
    app_with(ApiConfig::default())
}

/// Ruby's `Base64.encode64` of short text (under 45 bytes: one line).
fn b64(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    assert!(bytes.len() < 45);
    out.push('\n');
    out
}

impl App {
    async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|err| {
                panic!(
                    "{status} is not JSON ({err}): {:?}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        (status, body)
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.send(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    async fn post(&self, uri: &str, body: impl Into<Body>) -> (StatusCode, Value) {
        self.send(
            Request::post(uri)
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.into())
                .unwrap(),
        )
        .await
    }

    async fn reserve_one(&self) -> Delivery {
        let mut got = self
            .queue
            .reserve("test-worker", 1, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(got.len(), 1, "expected one queued job");
        got.remove(0)
    }
}

fn finished(verdict: Verdict, stdout: &str) -> JobResult {
    JobResult {
        verdict,
        message: None,
        stdout: stdout.to_owned(),
        stderr: String::new(),
        compile_output: None,
        exit_code: Some(0),
        signal: None,
        output_truncated: false,
        wall_time_ms: 31,
        compile_time_ms: None,
        cpu_time_ms: 17,
        memory_peak_kib: Some(8_192),
        started_at_ms: 1_700_000_000_000,
        finished_at_ms: 1_700_000_000_031,
        submitted_at_ms: 1_699_999_999_990,
        language: "python".to_owned(),
        language_version: "3.11".to_owned(),
        judge: None,
    }
}

#[tokio::test]
async fn judge0_preflight_routes_answer_what_the_sdk_reads() {
    let app = app();
    let (status, languages) = app.get("/languages").await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<(u64, &str)> = languages
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["id"].as_u64().unwrap(), l["name"].as_str().unwrap()))
        .collect();
    assert_eq!(
        ids,
        [
            (71, "python"),
            (63, "javascript"),
            (62, "java"),
            (52, "cpp"),
            (50, "c")
        ],
        "our own entries, with Judge0's 1.13.1 ids added"
    );
    assert_eq!(languages[0]["file_name"], "main.py", "our fields stay");
    let (_, config) = app.get("/config_info").await;
    assert_eq!(config.as_object().unwrap().len(), 39);
    assert_eq!(app.get("/about").await.1["version"], "1.13.1");
    let (_, statuses) = app.get("/statuses").await;
    assert_eq!(statuses.as_array().unwrap().len(), 14);
    assert_eq!(statuses[3], json!({"id": 4, "description": "Wrong Answer"}));
    let (status, python) = app.get("/languages/113").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(python["name"], "Python (3.11)");
    assert_eq!(python["source_file"], "main.py");
    let (_, all) = app.get("/languages/all").await;
    assert_eq!(all.as_array().unwrap().len(), 19);
    let (_, workers) = app.get("/workers").await;
    assert_eq!(workers[0]["queue"], "default");
}

#[tokio::test]
async fn judge0_submission_becomes_a_job_and_its_result_judge0_fields() {
    let app = app();
    let body = json!({
        "source_code": b64("print(input())"), "language_id": 71, "stdin": b64("hi"),
        "expected_output": b64("hi\n"), "cpu_time_limit": 2, "memory_limit": 65536,
        "command_line_arguments": "-x 1", "stack_limit": 1000, "number_of_runs": 3,
    });
    let (status, created) = app
        .post(
            "/submissions?base64_encoded=true&wait=false",
            body.to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created.as_object().unwrap().len(), 1);
    let token = created["token"].as_str().unwrap().to_owned();
    assert_eq!(uuid::Uuid::parse_str(&token).unwrap().get_version_num(), 4);

    let (_, queued) = app.get(&format!("/submissions/{token}")).await;
    assert_eq!(
        queued["status"],
        json!({"id": 1, "description": "In Queue"})
    );
    assert_eq!(queued["stdout"], Value::Null);

    let delivery = app.reserve_one().await;
    let job = &delivery.job;
    assert_eq!(job.language, "python");
    assert_eq!(job.code, "print(input())");
    assert_eq!(job.stdin, "hi");
    assert_eq!(job.args, ["-x", "1"]);
    assert_eq!(job.time_limit_ms, Some(2_000));
    assert_eq!(job.memory_limit_mb, Some(64));
    app.queue
        .complete(&delivery, &finished(Verdict::Ok, "hi\n"))
        .await
        .unwrap();

    let (status, done) = app
        .get(&format!(
            "/submissions/{token}?base64_encoded=true&fields=*"
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(done["status"], json!({"id": 3, "description": "Accepted"}));
    assert_eq!(done["stdout"], b64("hi\n"));
    assert_eq!(done["source_code"], b64("print(input())"));
    assert_eq!(done["time"], "0.017");
    assert_eq!(done["wall_time"], "0.031");
    assert_eq!(done["memory"], 8_192);
    assert_eq!(done["cpu_time_limit"], "2.0");
    assert_eq!(done["memory_limit"], 65_536);
    assert_eq!(
        done["stack_limit"], 1000,
        "accepted and echoed, not enforced"
    );
    assert_eq!(done["language"], json!({"id": 71, "name": "Python (3.11)"}));
    assert_eq!(done["finished_at"], "2023-11-14T22:13:20.031Z");
    assert!(done["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(done.as_object().unwrap().len(), 35);

    let (_, plain) = app
        .get(&format!("/submissions/{token}?fields=stdout,status_id"))
        .await;
    assert_eq!(plain, json!({"stdout": "hi\n", "status_id": 3}));
}

#[tokio::test]
async fn judge0_wrong_output_is_wrong_answer_and_a_crash_is_nzec() {
    let app = app();
    let mut tokens = Vec::new();
    for body in [
        json!({"source_code": "print(1)", "language_id": 71, "expected_output": "2"}),
        json!({"source_code": "exit(3)", "language_id": "71"}),
    ] {
        let (status, created) = app.post("/submissions", body.to_string()).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        tokens.push(created["token"].as_str().unwrap().to_owned());
    }
    let delivery = app.reserve_one().await;
    app.queue
        .complete(&delivery, &finished(Verdict::Ok, "1\n"))
        .await
        .unwrap();
    let delivery = app.reserve_one().await;
    let mut crashed = finished(Verdict::RuntimeError, "");
    crashed.exit_code = Some(3);
    app.queue.complete(&delivery, &crashed).await.unwrap();

    let (_, batch) = app
        .get(&format!(
            "/submissions/batch?tokens={},{},{}&fields=status_id,message,exit_code",
            tokens[0],
            tokens[1],
            uuid::Uuid::new_v4()
        ))
        .await;
    assert_eq!(
        batch,
        json!({"submissions": [
            {"status_id": 4, "message": null, "exit_code": 0},
            {"status_id": 11, "message": "Exited with error status 3", "exit_code": 3},
            null,
        ]})
    );
}

#[tokio::test]
async fn judge0_bad_input_is_answered_in_judge0s_shapes() {
    let app = app();
    let cases: Vec<(&str, String, StatusCode, Value)> = vec![
        (
            "/submissions",
            "{}".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"source_code": ["can't be blank"], "language_id": ["can't be blank"]}),
        ),
        (
            "/submissions",
            String::new(),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"source_code": ["can't be blank"], "language_id": ["can't be blank"]}),
        ),
        (
            "/submissions",
            json!({"source_code": "x", "language_id": 9999}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"language_id": ["language with id 9999 doesn't exist"]}),
        ),
        (
            "/submissions",
            json!({"source_code": "x", "language_id": 4}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"language_id": ["language with id 4 is archived and cannot be used anymore"]}),
        ),
        (
            "/submissions",
            json!({"source_code": "x", "language_id": 71, "wall_time_limit": 99,
                   "memory_limit": 1, "max_processes_and_or_threads": -1})
            .to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"wall_time_limit": ["must be less than or equal to 10"],
                   "memory_limit": ["must be greater than or equal to 2048"],
                   "max_processes_and_or_threads": ["must be greater than 0"]}),
        ),
        (
            "/submissions",
            json!({"source_code": "x", "language_id": 71,
                   "callback_url": "http://127.0.0.1:9/hook"})
            .to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"callback_url": ["must not point to a loopback, private or link-local address"]}),
        ),
        (
            "/submissions",
            "{not json".into(),
            StatusCode::BAD_REQUEST,
            json!({"error": "request body is not valid JSON"}),
        ),
        (
            "/submissions?fields=stdout,foo,bar",
            json!({"source_code": "x", "language_id": 71}).to_string(),
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid fields: [foo, bar]"}),
        ),
        (
            "/submissions/batch",
            json!({"submissions": []}).to_string(),
            StatusCode::BAD_REQUEST,
            json!({"error": "there should be at least one submission in a batch"}),
        ),
        (
            "/submissions/batch",
            "[1, 2]".into(),
            StatusCode::BAD_REQUEST,
            json!({"error": "there should be at least one submission in a batch"}),
        ),
        (
            "/submissions/batch",
            json!({"submissions": vec![json!({}); 21]}).to_string(),
            StatusCode::BAD_REQUEST,
            json!({"error": "number of submissions in a batch should be less than or equal to 20"}),
        ),
        (
            "/submissions/batch",
            json!({"submissions": [{"language_id": 71}, {"source_code": "x"}]}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!([{"source_code": ["can't be blank"]}, {"language_id": ["can't be blank"]}]),
        ),
    ];
    for (uri, body, status, expected) in cases {
        let (got_status, got) = app.post(uri, body.clone()).await;
        assert_eq!((got_status, &got), (status, &expected), "POST {uri} {body}");
    }
    let not_found = json!({"status": 404, "error": "Not Found"});
    for uri in [
        format!("/submissions/{}", uuid::Uuid::new_v4()),
        "/submissions/not-a-token".to_owned(),
        "/languages/9999".to_owned(),
        "/languages/abc".to_owned(),
    ] {
        assert_eq!(
            app.get(&uri).await,
            (StatusCode::NOT_FOUND, not_found.clone()),
            "GET {uri}"
        );
    }
    assert_eq!(
        app.get("/submissions/batch").await,
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "there should be at least one submission in a batch"})
        )
    );
    assert!(
        app.queue
            .reserve("test-worker", 1, Duration::from_millis(10))
            .await
            .unwrap()
            .is_empty(),
        "nothing bad was queued"
    );
}

#[tokio::test]
async fn judge0_batch_with_some_bad_items_queues_the_good_ones() {
    let app = app();
    let (status, answer) = app
        .post(
            "/submissions/batch",
            json!({"submissions": [
                {"source_code": "print(1)", "language_id": 71},
                {"source_code": "x", "language_id": 1},
            ]})
            .to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(answer[0]["token"].is_string(), "{answer}");
    assert_eq!(
        answer[1],
        json!({"language_id": ["language with id 1 doesn't exist"]})
    );
    app.reserve_one().await;
}

#[tokio::test]
async fn judge0_x_auth_token_is_an_api_key() {
    let mut config = ApiConfig::default();
    config.access.api_keys = ApiKeys::parse("judge0-key-0001").unwrap();
    let app = app_with(config);
    let body = json!({"source_code": "print(1)", "language_id": 71}).to_string();
    let (status, _) = app.post("/submissions", body.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, created) = app
        .send(
            Request::post("/submissions")
                .header("X-Auth-Token", "judge0-key-0001")
                .body(Body::from(body.clone()))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, _) = app
        .send(
            Request::post("/submissions")
                .header("X-Auth-Token", "wrong-key-00001")
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/config_info").await.0, StatusCode::OK, "open");
}

#[tokio::test]
async fn judge0_api_can_be_switched_off() {
    let app = app_with(ApiConfig {
        judge0: Judge0Config {
            enabled: false,
            ..Judge0Config::default()
        },
        ..ApiConfig::default()
    });
    let (status, _) = app
        .post(
            "/submissions",
            json!({"source_code": "x", "language_id": 71}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/config_info").await.0, StatusCode::NOT_FOUND);
    let (_, languages) = app.get("/languages").await;
    assert!(languages[0].get("id").is_none(), "{languages}");
}

#[tokio::test]
async fn judge0_batch_of_one_source_is_one_job_with_a_test_per_submission() {
    use code_runner_queue::judge::{JudgeReport, TestResult};

    let app = app();
    let double = "print(int(input()) * 2)";
    let (status, answer) = app
        .post(
            "/submissions/batch",
            json!({"submissions": [
                {"source_code": double, "language_id": 71, "stdin": "1", "expected_output": "2"},
                {"source_code": "print(0)", "language_id": 71},
                {"source_code": double, "language_id": 71, "stdin": "2", "expected_output": "5"},
                {"source_code": double, "language_id": 113, "stdin": "x", "cpu_time_limit": 1},
            ]})
            .to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let tokens: Vec<String> = answer
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["token"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(tokens.len(), 4);

    let first = app.reserve_one().await;
    let second = app.reserve_one().await;
    let (shared, alone) = if first.job.judge.is_some() {
        (first, second)
    } else {
        (second, first)
    };
    assert_eq!(alone.job.code, "print(0)");
    let spec = shared.job.judge.as_ref().unwrap();
    assert_eq!(shared.job.code, double);
    let stdins: Vec<&str> = spec.tests.iter().map(|t| t.stdin.as_str()).collect();
    assert_eq!(stdins, ["1", "2", "x"], "one test per submission, in order");
    assert_eq!(spec.tests[2].time_limit_ms, Some(1_000));

    let (_, pending) = app.get(&format!("/submissions/{}", tokens[0])).await;
    assert_eq!(pending["status"]["id"], 1);

    let test = |verdict: Verdict, stdout: &str, cpu: u64| TestResult {
        verdict,
        time_ms: cpu + 5,
        cpu_time_ms: cpu,
        memory_peak_kib: Some(4_000),
        exit_code: Some(0),
        stdout: stdout.to_owned(),
        ..TestResult::skipped(String::new())
    };
    let mut crashed = test(Verdict::RuntimeError, "", 3);
    crashed.exit_code = Some(1);
    crashed.stderr = "ValueError\n".into();
    let mut result = finished(Verdict::WrongAnswer, "");
    result.cpu_time_ms = 900;
    result.compile_output = None;
    result.judge = Some(JudgeReport::new(vec![
        test(Verdict::Accepted, "2\n", 7),
        test(Verdict::WrongAnswer, "4\n", 8),
        crashed,
    ]));
    app.queue.complete(&shared, &result).await.unwrap();

    let (_, batch) = app
        .get(&format!(
            "/submissions/batch?tokens={},{},{}&fields=status_id,stdout,stderr,time,language_id",
            tokens[0], tokens[2], tokens[3]
        ))
        .await;
    assert_eq!(
        batch,
        json!({"submissions": [
            {"status_id": 3, "stdout": "2\n", "stderr": null, "time": "0.007", "language_id": 71},
            {"status_id": 4, "stdout": "4\n", "stderr": null, "time": "0.008", "language_id": 71},
            {"status_id": 11, "stdout": null, "stderr": "ValueError\n", "time": "0.003", "language_id": 113},
        ]})
    );
    let (_, pending) = app.get(&format!("/submissions/{}", tokens[1])).await;
    assert_eq!(
        pending["status"]["id"], 1,
        "the other source is its own job"
    );
}

#[tokio::test]
async fn judge0_a_shared_batch_that_does_not_compile_is_a_compile_error_for_each() {
    let app = app();
    let (_, answer) = app
        .post(
            "/submissions/batch",
            json!({"submissions": [
                {"source_code": "int main( {", "language_id": 50, "stdin": "1"},
                {"source_code": "int main( {", "language_id": 50, "stdin": "2"},
            ]})
            .to_string(),
        )
        .await;
    let delivery = app.reserve_one().await;
    let mut result = finished(Verdict::CompileError, "");
    result.compile_output = Some("main.c:1: error: expected".into());
    app.queue.complete(&delivery, &result).await.unwrap();
    for token in answer.as_array().unwrap() {
        let (_, done) = app
            .get(&format!(
                "/submissions/{}",
                token["token"].as_str().unwrap()
            ))
            .await;
        assert_eq!(done["status"]["id"], 6, "{done}");
        assert_eq!(done["compile_output"], "main.c:1: error: expected");
        assert_eq!(done["time"], Value::Null);
    }
}

#[tokio::test]
async fn judge0_sizes_over_the_limits_are_refused_in_judge0s_shapes() {
    let config = ApiConfig {
        max_code_bytes: 10,
        max_stdin_bytes: 4,
        ..ApiConfig::default()
    };
    let body_limit = config.max_judge0_body_bytes();
    let app = app_with(config);
    let (status, body) = app
        .post(
            "/submissions",
            json!({"source_code": "x".repeat(11), "language_id": 71, "stdin": "12345"}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body,
        json!({
            "source_code": ["is too long (11 bytes; the maximum is 10 bytes)"],
            "stdin": ["is too long (5 bytes; the maximum is 4 bytes)"],
        })
    );
    let (status, body) = app
        .post(
            "/submissions",
            json!({"source_code": "x", "language_id": 71, "stdin": "y".repeat(body_limit)})
                .to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        body,
        json!({"error": format!("request body is larger than the limit of {body_limit} bytes")})
    );
}

#[tokio::test]
async fn judge0_rate_limited_submissions_get_429_with_retry_after() {
    let mut config = ApiConfig::default();
    config.access.rate_limit = Some(code_runner_api::RateLimit {
        per_minute: 1,
        burst: 1,
    });
    let app = app_with(config);
    let body = json!({"source_code": "print(1)", "language_id": 71}).to_string();
    assert_eq!(
        app.post("/submissions", body.clone()).await.0,
        StatusCode::CREATED
    );
    let response = app
        .router
        .clone()
        .oneshot(
            Request::post("/submissions")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key(header::RETRY_AFTER));
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("Rate limit exceeded"),
        "{body}"
    );
}

#[tokio::test]
async fn judge0_missing_api_key_is_401_in_judge0s_shape() {
    let mut config = ApiConfig::default();
    config.access.api_keys = ApiKeys::parse("judge0-key-0001").unwrap();
    let app = app_with(config);
    let (status, body) = app
        .get(&format!("/submissions/{}", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("Not authenticated"),
        "{body}"
    );
}

#[tokio::test]
async fn judge0_routes_it_does_not_serve_are_refused_cleanly() {
    let app = app();
    let (status, body) = app.get("/submissions").await;
    // The service's own 405 (Judge0 answers the list with 403 unless its
    // authorization token is configured).
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    let (status, _) = app
        .send(
            Request::delete(format!("/submissions/{}", uuid::Uuid::new_v4()))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, _) = app.get("/system_info").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn judge0_bodies_have_their_own_limit_and_unknown_fields_are_skipped() {
    let config = ApiConfig::default();
    let limit = config.max_judge0_body_bytes();
    let batch_limit = config.max_judge0_batch_body_bytes();
    assert!(limit < config.max_body_bytes(), "no test-data allowance");
    let app = app_with(config);
    // A body padded with an unknown field up to `size` bytes.
    let padded = |size: usize| {
        let head = r#"{"source_code":"print(1)","language_id":71,"pad":""#;
        let tail = r#""}"#;
        format!("{head}{}{tail}", "x".repeat(size - head.len() - tail.len()))
    };
    let (status, body) = app.post("/submissions", padded(limit + 1)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        body,
        json!({"error": format!("request body is larger than the limit of {limit} bytes")})
    );
    let (status, body) = app.post("/submissions", padded(limit)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let delivery = app.reserve_one().await;
    assert_eq!(delivery.job.code, "print(1)");

    let item = json!({"source_code": "print(2)", "language_id": 71});
    let batch = |size: usize| {
        let head = format!(r#"{{"submissions":[{item}],"pad":""#);
        let tail = r#""}"#;
        format!("{head}{}{tail}", "x".repeat(size - head.len() - tail.len()))
    };
    let (status, body) = app.post("/submissions/batch", batch(batch_limit + 1)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    let (status, body) = app.post("/submissions/batch", batch(4 * limit)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body[0]["token"].is_string(), "{body}");
}

/// The embedded queue, recording the keys stored beside the tasks (where
/// Judge0's request fields are kept).
struct Recording {
    inner: EmbeddedQueue,
    stored: std::sync::Mutex<Vec<(String, Duration)>>,
}

#[async_trait::async_trait]
impl Queue for Recording {
    async fn submit_for(
        &self,
        job: &code_runner_queue::Job,
        quota: Option<code_runner_queue::ClientQuota<'_>>,
    ) -> Result<(), code_runner_queue::QueueError> {
        self.inner.submit_for(job, quota).await
    }
    async fn state_for(
        &self,
        id: &code_runner_queue::TaskId,
        owner: Option<&str>,
    ) -> Result<Option<code_runner_queue::TaskState>, code_runner_queue::QueueError> {
        self.inner.state_for(id, owner).await
    }
    async fn reserve(
        &self,
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>, code_runner_queue::QueueError> {
        self.inner.reserve(consumer, max, wait).await
    }
    async fn reclaim(
        &self,
        consumer: &str,
        max: usize,
        policy: &code_runner_queue::Redelivery,
    ) -> Result<Vec<Delivery>, code_runner_queue::QueueError> {
        self.inner.reclaim(consumer, max, policy).await
    }
    async fn complete(
        &self,
        delivery: &Delivery,
        result: &JobResult,
    ) -> Result<(), code_runner_queue::QueueError> {
        self.inner.complete(delivery, result).await
    }
    async fn release(&self, delivery: &Delivery) -> Result<(), code_runner_queue::QueueError> {
        self.inner.release(delivery).await
    }
    async fn cancel_for(
        &self,
        id: &code_runner_queue::TaskId,
        owner: Option<&str>,
        at_ms: u64,
    ) -> Result<code_runner_queue::Cancelled, code_runner_queue::QueueError> {
        self.inner.cancel_for(id, owner, at_ms).await
    }
    async fn settled(
        &self,
        ids: &[code_runner_queue::TaskId],
    ) -> Result<Vec<code_runner_queue::TaskId>, code_runner_queue::QueueError> {
        self.inner.settled(ids).await
    }
    async fn ping(&self) -> Result<(), code_runner_queue::QueueError> {
        self.inner.ping().await
    }
    async fn store_testset(
        &self,
        id: &str,
        json: &str,
        tests: usize,
        ttl: Duration,
    ) -> Result<(), code_runner_queue::QueueError> {
        self.stored.lock().unwrap().push((id.to_owned(), ttl));
        self.inner.store_testset(id, json, tests, ttl).await
    }
    async fn testset_len(
        &self,
        id: &str,
        ttl: Duration,
    ) -> Result<Option<usize>, code_runner_queue::QueueError> {
        self.inner.testset_len(id, ttl).await
    }
    async fn testset(
        &self,
        id: &str,
        ttl: Option<Duration>,
    ) -> Result<Option<String>, code_runner_queue::QueueError> {
        self.inner.testset(id, ttl).await
    }
}

#[tokio::test]
async fn judge0_a_refused_submission_leaves_no_stored_fields() {
    let queue = Arc::new(Recording {
        inner: EmbeddedQueue::new(Duration::from_secs(60)),
        stored: std::sync::Mutex::new(Vec::new()),
    });
    let mut config = ApiConfig::default();
    config.access.api_keys = ApiKeys::parse("judge0-key-0001").unwrap();
    config.access.max_unfinished_per_client = Some(1);
    config.judge0.result_ttl = Duration::from_secs(120);
    let router = router(AppState::new(queue.clone(), languages(), config));
    let post = |uri: &str, body: Value| {
        router.clone().oneshot(
            Request::post(uri)
                .header("X-Auth-Token", "judge0-key-0001")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
    };
    let one = |code: &str| json!({"source_code": code, "language_id": 71});
    let response = post("/submissions", one("print(1)")).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        queue.stored.lock().unwrap()[0].1,
        Duration::from_secs(120 + 3600),
        "kept as long as the result, plus a callback's longest wait"
    );
    let response = post("/submissions", one("print(2)")).await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let response = post(
        "/submissions/batch",
        json!({"submissions": [one("print(3)"), one("print(3)")]}),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        queue.stored.lock().unwrap().len(),
        1,
        "refused submissions store nothing"
    );
}

#[tokio::test]
async fn judge0_a_batch_over_the_clients_cap_answers_errors_for_the_refused_items() {
    let mut config = ApiConfig::default();
    config.access.api_keys = ApiKeys::parse("judge0-key-0001").unwrap();
    config.access.max_unfinished_per_client = Some(2);
    let app = app_with(config);
    let batch = |codes: &[&str]| {
        let items: Vec<Value> = codes
            .iter()
            .map(|code| json!({"source_code": code, "language_id": 71}))
            .collect();
        Request::post("/submissions/batch")
            .header("X-Auth-Token", "judge0-key-0001")
            .body(Body::from(json!({"submissions": items}).to_string()))
            .unwrap()
    };
    let (status, answer) = app
        .send(batch(&["print(1)", "print(2)", "print(3)", "print(2)"]))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert!(answer[0]["token"].is_string(), "{answer}");
    assert!(answer[1]["token"].is_string(), "{answer}");
    assert!(answer[3]["token"].is_string(), "{answer}");
    assert!(
        answer[2]["error"].as_str().unwrap().contains("unfinished"),
        "{answer}"
    );
    // Every token answered is a queued job's; nothing else was queued.
    let first = app.reserve_one().await;
    let second = app.reserve_one().await;
    let mut codes = [first.job.code.clone(), second.job.code.clone()];
    codes.sort();
    assert_eq!(codes, ["print(1)", "print(2)"]);
    // With no room at all, the refusal itself answers.
    let (status, answer) = app.send(batch(&["print(4)"])).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{answer}");
    assert!(answer["error"].is_string(), "{answer}");
}
