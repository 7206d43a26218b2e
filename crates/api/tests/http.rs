//! The API over HTTP, against the real in-process queue: requests go through
//! `router(...)` in-process with `tower::ServiceExt::oneshot`, and one test
//! serves on a real TCP socket. Finished tasks are produced the way a worker
//! produces them, with `Queue::reserve` + `Queue::complete`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use code_runner_api::{router, serve, ApiConfig, AppState, SupportedLanguage};
use code_runner_queue::{
    Delivery, EmbeddedQueue, JobResult, Queue, RedisQueue, RedisQueueConfig, TaskId, Verdict,
};
use code_runner_testkit::RedisServer;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

/// The message every unknown-language error carries for the seed's table.
const EXPECTED: &str = "'python', 'javascript', 'java', 'cpp' or 'c'";

/// The seed's five languages with the aliases and file names of the shipped
/// language table, as the binary hands them to the API (Java's with the
/// default class name, `Main`).
fn seed_languages() -> Vec<SupportedLanguage> {
    let language = |name: &str, aliases: &[&str], file_name: &str| SupportedLanguage {
        name: name.to_owned(),
        version: "test".to_owned(),
        aliases: aliases.iter().map(|alias| alias.to_string()).collect(),
        file_name: file_name.to_owned(),
    };
    vec![
        language("python", &["py", "python3"], "main.py"),
        language("javascript", &["js", "node", "nodejs"], "main.js"),
        language("java", &[], "Main.java"),
        language("cpp", &["c++", "cxx"], "main.cpp"),
        language("c", &[], "main.c"),
    ]
}

struct TestApp {
    queue: Arc<EmbeddedQueue>,
    router: Router,
}

struct TestResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

fn spawn_app() -> TestApp {
    spawn_app_with(ApiConfig::default(), Duration::from_secs(60))
}

fn spawn_app_with(config: ApiConfig, result_ttl: Duration) -> TestApp {
    let queue = Arc::new(EmbeddedQueue::new(result_ttl));
    let state = AppState::new(queue.clone(), seed_languages(), config);
    TestApp {
        queue,
        router: router(state),
    }
}

impl TestApp {
    async fn send(&self, request: Request<Body>) -> TestResponse {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|err| {
            panic!(
                "{status} answer is not JSON ({err}): {:?}",
                String::from_utf8_lossy(&bytes)
            )
        });
        TestResponse {
            status,
            headers,
            body,
        }
    }

    /// `POST /run-code` declared as JSON.
    async fn post_run(&self, body: impl Into<Body>) -> TestResponse {
        self.send(
            Request::post("/run-code")
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.into())
                .unwrap(),
        )
        .await
    }

    async fn get(&self, uri: &str) -> TestResponse {
        self.send(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    /// Submits code and returns the task id, checking the 200 on the way.
    async fn submit(&self, language: &str, code: &str) -> String {
        let response = self
            .post_run(json!({"language": language, "code": code}).to_string())
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
        response.body["task_id"].as_str().unwrap().to_owned()
    }

    /// Takes the one queued job, as a worker would.
    async fn reserve_one(&self) -> Delivery {
        let mut got = self
            .queue
            .reserve("test-worker", 1, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(got.len(), 1, "expected exactly one queued job");
        got.remove(0)
    }
}

fn finished(verdict: Verdict) -> JobResult {
    JobResult {
        verdict,
        message: None,
        stdout: String::new(),
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

/// The `detail` of a 422 with exactly one issue.
fn single_issue(response: &TestResponse) -> &Value {
    assert_eq!(
        response.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        response.body
    );
    let issues = response.body["detail"].as_array().unwrap();
    assert_eq!(issues.len(), 1, "{}", response.body);
    &issues[0]
}

#[tokio::test]
async fn run_code_answers_with_a_fresh_uuid_task_id_only() {
    let app = spawn_app();
    let response = app
        .post_run(r#"{"language": "python", "code": "print('Hello from Celery!')"}"#)
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.headers[header::CONTENT_TYPE],
        "application/json",
        "seed clients parse the answer as JSON"
    );
    let object = response.body.as_object().unwrap();
    assert_eq!(object.len(), 1, "the seed's answer has task_id only");
    let task_id = object["task_id"].as_str().unwrap();
    let uuid = uuid::Uuid::parse_str(task_id).unwrap();
    assert_eq!(uuid.get_version_num(), 4);
    assert_eq!(task_id, uuid.hyphenated().to_string());

    let other = app.submit("python", "print(2)").await;
    assert_ne!(task_id, other);
}

#[tokio::test]
async fn the_queued_job_holds_the_canonical_language_code_and_stdin() {
    let app = spawn_app();
    let before = now_ms();
    let response = app
        .post_run(
            json!({"language": "py", "code": "print(input())\n", "stdin": "42\n", "extra": [1]})
                .to_string(),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);

    let job = app.reserve_one().await.job;
    assert_eq!(job.id.to_string(), response.body["task_id"]);
    assert_eq!(job.language, "python");
    assert_eq!(job.code, "print(input())\n");
    assert_eq!(job.stdin, "42\n");
    assert!((before..=now_ms()).contains(&job.submitted_at_ms));
}

#[tokio::test]
async fn aliases_resolve_to_canonical_names_and_names_are_case_sensitive() {
    let app = spawn_app();
    for (asked, canonical) in [
        ("python", "python"),
        ("python3", "python"),
        ("js", "javascript"),
        ("node", "javascript"),
        ("java", "java"),
        ("c++", "cpp"),
        ("cxx", "cpp"),
        ("c", "c"),
    ] {
        app.submit(asked, "x").await;
        assert_eq!(app.reserve_one().await.job.language, canonical, "{asked}");
    }

    let response = app.post_run(r#"{"language": "Python", "code": "x"}"#).await;
    assert_eq!(single_issue(&response)["input"], "Python");
}

#[tokio::test]
async fn empty_code_and_null_stdin_are_accepted() {
    let app = spawn_app();
    let response = app
        .post_run(r#"{"language": "c", "code": "", "stdin": null}"#)
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    let job = app.reserve_one().await.job;
    assert_eq!((job.code.as_str(), job.stdin.as_str()), ("", ""));
}

#[tokio::test]
async fn a_missing_content_type_is_accepted_and_json_variants_too() {
    let app = spawn_app();
    let body = r#"{"language": "c", "code": "int main(){}"}"#;
    let response = app
        .send(Request::post("/run-code").body(Body::from(body)).unwrap())
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);

    let response = app
        .send(
            Request::post("/run-code")
                .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
}

#[tokio::test]
async fn a_task_is_pending_right_after_submit() {
    let app = spawn_app();
    let task_id = app.submit("python", "print(1)").await;
    let response = app.get(&format!("/results/{task_id}")).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.body,
        json!({"status": "PENDING", "result": null, "task_id": task_id, "state": "queued"})
    );
}

#[tokio::test]
async fn a_successful_task_answers_the_seed_shape_plus_details() {
    let app = spawn_app();
    let task_id = app.submit("python", "print('Hello from Celery!')").await;
    let delivery = app.reserve_one().await;
    let result = JobResult {
        stdout: "Hello from Celery!\n".to_owned(),
        stderr: "a warning\n".to_owned(),
        ..finished(Verdict::Ok)
    };
    app.queue.complete(&delivery, &result).await.unwrap();

    let response = app.get(&format!("/results/{task_id}")).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.body,
        json!({
            "status": "SUCCESS",
            "result": {"output": "Hello from Celery!\n"},
            "task_id": task_id,
            "verdict": "ok",
            "stdout": "Hello from Celery!\n",
            "stderr": "a warning\n",
            "compile_output": null,
            "exit_code": 0,
            "signal": null,
            "output_truncated": false,
            "wall_time_ms": 31,
            "cpu_time_ms": 17,
            "memory_peak_kib": 8192,
            "started_at_ms": 1_700_000_000_000u64,
            "finished_at_ms": 1_700_000_000_031u64,
            "queued_at_ms": 1_699_999_999_990u64,
            "state": "finished",
            "language": "python",
            "version": "3.11",
        })
    );
}

#[tokio::test]
async fn an_unknown_peak_memory_answers_null_not_zero() {
    let app = spawn_app();
    let task_id = app.submit("python", "print(1)").await;
    let delivery = app.reserve_one().await;
    let result = JobResult {
        memory_peak_kib: None,
        ..finished(Verdict::Ok)
    };
    app.queue.complete(&delivery, &result).await.unwrap();

    let response = app.get(&format!("/results/{task_id}")).await;
    assert_eq!(response.status, StatusCode::OK);
    let body = response.body.as_object().unwrap();
    assert_eq!(body.get("memory_peak_kib"), Some(&Value::Null), "{body:?}");
}

#[tokio::test]
async fn a_failed_task_answers_its_message_as_the_seed_result() {
    let app = spawn_app();
    let task_id = app.submit("cpp", "int main( {").await;
    let delivery = app.reserve_one().await;
    let diagnostics = "main.cpp:1:12: error: expected ')' before '{' token\n";
    let result = JobResult {
        message: Some(diagnostics.to_owned()),
        compile_output: Some(diagnostics.to_owned()),
        exit_code: Some(1),
        ..finished(Verdict::CompileError)
    };
    app.queue.complete(&delivery, &result).await.unwrap();

    let response = app.get(&format!("/results/{task_id}")).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.body,
        json!({
            "status": "FAILURE",
            "result": diagnostics,
            "task_id": task_id,
            "verdict": "compile_error",
            "stdout": "",
            "stderr": "",
            "compile_output": diagnostics,
            "exit_code": 1,
            "signal": null,
            "output_truncated": false,
            "wall_time_ms": 31,
            "cpu_time_ms": 17,
            "memory_peak_kib": 8192,
            "started_at_ms": 1_700_000_000_000u64,
            "finished_at_ms": 1_700_000_000_031u64,
            "queued_at_ms": 1_699_999_999_990u64,
            "state": "finished",
            "language": "python",
            "version": "3.11",
        })
    );
}

#[tokio::test]
async fn every_non_ok_verdict_is_a_failure_with_a_string_result() {
    let app = spawn_app();
    for verdict in [
        Verdict::RuntimeError,
        Verdict::TimeLimit,
        Verdict::MemoryLimit,
        Verdict::OutputLimit,
        Verdict::Cancelled,
        Verdict::InternalError,
    ] {
        let task_id = app.submit("python", "x").await;
        let delivery = app.reserve_one().await;
        let result = JobResult {
            signal: Some(9),
            exit_code: None,
            ..finished(verdict)
        };
        app.queue.complete(&delivery, &result).await.unwrap();
        let body = app.get(&format!("/results/{task_id}")).await.body;
        assert_eq!(body["status"], "FAILURE", "{verdict:?}");
        assert!(
            body["result"].as_str().is_some_and(|text| !text.is_empty()),
            "{verdict:?}: {body}"
        );
        assert_eq!(body["verdict"], json!(verdict));
        assert_eq!(body["signal"], 9);
    }
}

#[tokio::test]
async fn unknown_garbage_and_expired_task_ids_are_404() {
    let app = spawn_app_with(ApiConfig::default(), Duration::from_millis(100));
    let not_found = json!({"detail": "Task not found"});
    for uri in [
        format!("/results/{}", TaskId::new()),
        "/results/not-a-uuid".to_owned(),
        "/results/%FF%FE".to_owned(),
        "/results/a1b2c3d4-e5f6-7890-1234-567890abcdef".to_owned(),
    ] {
        let response = app.get(&uri).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(response.body, not_found, "{uri}");
    }

    // Issued, then expired: never an eternal PENDING.
    let task_id = app.submit("python", "x").await;
    let uri = format!("/results/{task_id}");
    assert_eq!(app.get(&uri).await.body["status"], "PENDING");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let response = app.get(&uri).await;
        if response.status == StatusCode::NOT_FOUND {
            assert_eq!(response.body, not_found);
            break;
        }
        assert!(Instant::now() < deadline, "task never expired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_missing_field_is_422_field_required() {
    let app = spawn_app();
    let response = app.post_run(r#"{"language": "python"}"#).await;
    assert_eq!(
        response.body,
        json!({"detail": [{
            "type": "missing",
            "loc": ["body", "code"],
            "msg": "Field required",
            "input": {"language": "python"},
        }]})
    );
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);

    let response = app.post_run("{}").await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    let locs: Vec<&Value> = response.body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|issue| &issue["loc"])
        .collect();
    assert_eq!(
        locs,
        [&json!(["body", "language"]), &json!(["body", "code"])]
    );
}

#[tokio::test]
async fn a_wrongly_typed_field_is_422_string_type() {
    let app = spawn_app();
    let response = app.post_run(r#"{"language": "python", "code": 42}"#).await;
    assert_eq!(
        *single_issue(&response),
        json!({
            "type": "string_type",
            "loc": ["body", "code"],
            "msg": "Input should be a valid string",
            "input": 42,
        })
    );

    let response = app
        .post_run(r#"{"language": "python", "code": "x", "stdin": {"a": 1}}"#)
        .await;
    let issue = single_issue(&response);
    assert_eq!(issue["type"], "string_type");
    assert_eq!(issue["loc"], json!(["body", "stdin"]));
    assert_eq!(issue["input"], json!({"a": 1}));
}

#[tokio::test]
async fn malformed_json_is_422_json_invalid_at_its_offset() {
    let app = spawn_app();
    let response = app.post_run(r#"{"language": "python", "code": }"#).await;
    let issue = single_issue(&response);
    assert_eq!(issue["type"], "json_invalid");
    assert_eq!(issue["loc"], json!(["body", 31]));
    assert_eq!(issue["msg"], "JSON decode error");
    assert_eq!(issue["input"], json!({}));
    assert!(issue["ctx"]["error"].is_string(), "{issue}");
}

#[tokio::test]
async fn a_body_that_is_not_an_object_is_422() {
    let app = spawn_app();
    for body in [r#"["python", "x"]"#, r#""print(1)""#, "7"] {
        let response = app.post_run(body).await;
        let issue = single_issue(&response);
        assert_eq!(issue["type"], "model_attributes_type", "{body}");
        assert_eq!(issue["loc"], json!(["body"]));
        assert_eq!(
            issue["msg"],
            "Input should be a valid dictionary or object to extract fields from"
        );
        assert_eq!(issue["input"], serde_json::from_str::<Value>(body).unwrap());
    }
    for body in ["", "null"] {
        let response = app.post_run(body).await;
        assert_eq!(
            *single_issue(&response),
            json!({"type": "missing", "loc": ["body"], "msg": "Field required", "input": null}),
            "{body:?}"
        );
    }
}

#[tokio::test]
async fn an_unknown_language_is_422_enum_listing_the_supported_ones() {
    let app = spawn_app();
    let response = app
        .post_run(r#"{"language": "ruby", "code": "puts 1"}"#)
        .await;
    assert_eq!(
        response.body,
        json!({"detail": [{
            "type": "enum",
            "loc": ["body", "language"],
            "msg": format!("Input should be {EXPECTED}"),
            "input": "ruby",
            "ctx": {"expected": EXPECTED},
        }]})
    );

    let response = app.post_run(r#"{"language": null, "code": "x"}"#).await;
    let issue = single_issue(&response);
    assert_eq!(issue["type"], "enum");
    assert_eq!(issue["input"], Value::Null);
}

#[tokio::test]
async fn an_extra_file_named_like_the_programs_own_source_is_422_naming_it() {
    let app = spawn_app();
    // Java saves the program under its first public class's name: an extra
    // `Foo.java` next to `public class Foo` would take its place.
    let java = "import java.util.*;\npublic class Foo { public static void main(String[] a) {} }";
    let response = app
        .post_run(
            json!({
                "language": "java",
                "code": java,
                "files": [
                    {"name": "Helper.java", "content": "class Helper {}"},
                    {"name": "Foo.java", "content": "public class Foo {}"},
                ],
            })
            .to_string(),
        )
        .await;
    let issue = single_issue(&response);
    assert_eq!(issue["type"], "value_error", "{issue}");
    assert_eq!(issue["loc"], json!(["body", "files", 1, "name"]));
    assert_eq!(issue["input"], "Foo.java");
    let msg = issue["msg"].as_str().unwrap();
    assert!(msg.contains("'Foo.java'"), "{msg}");

    // Every language's own name, whatever the language of the request, and
    // Java's `Main.java` when the code has no public class.
    for (language, code, name) in [
        ("python", "print(1)", "main.py"),
        ("c", "int main(void) {}", "main.py"),
        ("javascript", "", "main.js"),
        ("cpp", "", "main.cpp"),
        ("c", "", "main.c"),
        (
            "java",
            "class A { public static void main(String[] a) {} }",
            "Main.java",
        ),
    ] {
        let body = json!({"language": language, "code": code,
                          "files": [{"name": name, "content": ""}]});
        let response = app.post_run(body.to_string()).await;
        let issue = single_issue(&response);
        assert_eq!(issue["loc"], json!(["body", "files", 0, "name"]), "{body}");
        assert_eq!(issue["input"], name, "{body}");
    }
    // The slow path (another field is wrong too) finds it as well.
    let response = app
        .post_run(
            json!({"language": "java", "code": java, "stdin": 5,
                   "files": [{"name": "Foo.java", "content": ""}]})
            .to_string(),
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    let locs: Vec<&Value> = response.body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|issue| &issue["loc"])
        .collect();
    assert_eq!(
        locs,
        [
            &json!(["body", "stdin"]),
            &json!(["body", "files", 0, "name"])
        ]
    );

    // Another Java class may have its own file.
    let response = app
        .post_run(
            json!({"language": "java", "code": java,
                   "files": [{"name": "Helper.java", "content": "class Helper {}"}]})
            .to_string(),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    let job = app.reserve_one().await.job;
    assert_eq!(job.files.len(), 1);
}

#[tokio::test]
async fn an_extra_file_name_given_twice_is_422_naming_the_repeat() {
    let app = spawn_app();
    let response = app
        .post_run(
            json!({
                "language": "c",
                "code": "#include \"a.h\"\nint main(void) {}",
                "files": [
                    {"name": "a.h", "content": "#define A 1"},
                    {"name": "b.h", "content": ""},
                    {"name": "a.h", "content": "#define A 2"},
                ],
            })
            .to_string(),
        )
        .await;
    let issue = single_issue(&response);
    assert_eq!(issue["type"], "value_error", "{issue}");
    assert_eq!(issue["loc"], json!(["body", "files", 2, "name"]));
    assert_eq!(issue["input"], "a.h");
    let msg = issue["msg"].as_str().unwrap();
    assert!(msg.contains("'a.h'") && msg.contains("twice"), "{msg}");
    let queued = app
        .queue
        .reserve("test-worker", 10, Duration::from_millis(10))
        .await
        .unwrap();
    assert!(queued.is_empty(), "nothing is queued");
}

#[tokio::test]
async fn bad_requests_queue_nothing() {
    let app = spawn_app();
    app.post_run(r#"{"language": "ruby", "code": "x"}"#).await;
    app.post_run("{").await;
    let queued = app
        .queue
        .reserve("test-worker", 10, Duration::from_millis(10))
        .await
        .unwrap();
    assert!(queued.is_empty());
}

#[tokio::test]
async fn code_over_the_limit_is_413_counted_in_utf8_bytes() {
    let app = spawn_app_with(
        ApiConfig {
            max_code_bytes: 10,
            ..ApiConfig::default()
        },
        Duration::from_secs(60),
    );
    // Ten bytes exactly: accepted.
    let response = app
        .post_run(json!({"language": "c", "code": "é".repeat(5)}).to_string())
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    // Six characters, twelve bytes.
    let response = app
        .post_run(json!({"language": "c", "code": "é".repeat(6)}).to_string())
        .await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        response.body,
        json!({"detail": "code is 12 bytes; the limit is 10 bytes"})
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_json() {
    let config = ApiConfig {
        max_code_bytes: 10,
        ..ApiConfig::default()
    };
    let limit = config.max_body_bytes();
    let app = spawn_app_with(config, Duration::from_secs(60));
    let body = json!({"language": "c", "code": "x", "stdin": "y".repeat(limit)}).to_string();
    let response = app.post_run(body).await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        response.body,
        json!({"detail": format!("request body is larger than the limit of {limit} bytes")})
    );
}

#[tokio::test]
async fn a_declared_body_over_the_limit_is_413_before_a_byte_is_read() {
    let app = spawn_app();
    let limit = ApiConfig::default().max_body_bytes();
    // The body itself is tiny (and valid): only its declared length is over.
    let response = app
        .send(
            Request::post("/run-code")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::CONTENT_LENGTH, (limit + 1).to_string())
                .body(Body::from(r#"{"language": "c", "code": "x"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(
        response.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        response.body
    );
    assert_eq!(response.headers[header::CONNECTION], "close");
}

#[tokio::test]
async fn amplifying_bodies_get_422s_under_64_kib() {
    let app = spawn_app();
    let zeros = format!("[{}0]", "0,".repeat(1_081_313));
    let big = "x".repeat(2_000_000);
    for (name, body) in [
        (
            "args",
            format!(r#"{{"language":"python","code":"x","args":{zeros}}}"#),
        ),
        (
            "files",
            format!(r#"{{"language":"python","code":"x","files":{zeros}}}"#),
        ),
        ("missing fields", format!(r#"{{"stdin":"{big}"}}"#)),
        (
            "a long unknown language",
            format!(r#"{{"language":"{big}","code":"x"}}"#),
        ),
    ] {
        let response = app
            .send(
                Request::post("/run-code")
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        let size = response.body.to_string().len();
        assert!(size < 64 * 1024, "{name}: {size} bytes");
        if name != "missing fields" && name != "a long unknown language" {
            assert_eq!(
                *single_issue(&response),
                json!({
                    "type": "too_long",
                    "loc": ["body", name],
                    "msg": format!("List should have at most {} items after validation, not 1081314",
                        if name == "args" { 64 } else { 32 }),
                    "input": null,
                    "ctx": {"field_type": "List", "max_length": if name == "args" { 64 } else { 32 },
                            "actual_length": 1_081_314},
                }),
                "{name}"
            );
        }
    }
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let app = spawn_app();
    for uri in [
        "/",
        "/docs",
        "/health",
        "/openapi.json",
        "/nope",
        "/playground/app.js",
        "/codemirror/codemirror.js",
    ] {
        let response = app
            .router
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let headers = response.headers();
        let policy = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(policy.contains("frame-ancestors 'none'"), "{uri}: {policy}");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{uri}");
        assert_eq!(headers[header::REFERRER_POLICY], "no-referrer", "{uri}");
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY", "{uri}");
        let page = uri == "/" || uri == "/docs";
        assert_eq!(
            policy.contains("script-src 'self'"),
            page,
            "{uri}: {policy}"
        );
    }
}

#[tokio::test]
async fn the_vendored_editor_is_served_with_its_license() {
    let app = spawn_app();
    for (uri, kind) in [
        ("/codemirror/codemirror.js", "text/javascript"),
        ("/codemirror/codemirror.css", "text/css"),
        ("/codemirror/python.js", "text/javascript"),
        ("/codemirror/javascript.js", "text/javascript"),
        ("/codemirror/clike.js", "text/javascript"),
        ("/codemirror/matchbrackets.js", "text/javascript"),
        ("/codemirror/LICENSE", "text/plain"),
    ] {
        let response = app
            .router
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        let content_type = response.headers()[header::CONTENT_TYPE].to_str().unwrap();
        assert!(content_type.starts_with(kind), "{uri}: {content_type}");
    }
    let missing = app
        .router
        .clone()
        .oneshot(
            Request::get("/codemirror/../Cargo.toml")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_body_declared_as_something_else_is_415() {
    let app = spawn_app();
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let response = app
            .send(
                Request::post("/run-code")
                    .header(header::CONTENT_TYPE, content_type)
                    .body(Body::from(r#"{"language": "c", "code": "x"}"#))
                    .unwrap(),
            )
            .await;
        assert_eq!(response.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let detail = response.body["detail"].as_str().unwrap();
        assert!(detail.contains(content_type), "{detail}");
        assert!(detail.contains("application/json"), "{detail}");
    }
}

#[tokio::test]
async fn wrong_methods_are_405_and_unknown_routes_404_in_json() {
    let app = spawn_app();
    let response = app.get("/run-code").await;
    assert_eq!(response.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.body, json!({"detail": "Method Not Allowed"}));
    assert_eq!(response.headers[header::ALLOW], "POST");

    // (DELETE is cancellation; PUT is no method of the route.)
    let response = app
        .send(
            Request::builder()
                .method(Method::PUT)
                .uri(format!("/results/{}", TaskId::new()))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.body, json!({"detail": "Method Not Allowed"}));

    for uri in [
        "/nope",
        "/results",
        "/results/",
        "/results/a/b",
        "/docs/nope.js",
    ] {
        let response = app.get(uri).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(response.body, json!({"detail": "Not Found"}), "{uri}");
    }
}

#[tokio::test]
async fn health_is_ok() {
    let app = spawn_app();
    let response = app.get("/health").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body, json!({"status": "ok"}));
    assert_eq!(response.headers[header::CONTENT_TYPE], "application/json");
}

#[tokio::test]
async fn a_queue_that_is_down_is_503_not_500() {
    let redis = RedisServer::start();
    let queue = RedisQueue::connect(RedisQueueConfig {
        key_prefix: code_runner_testkit::unique_prefix(),
        ..RedisQueueConfig::new(redis.url())
    })
    .await
    .unwrap();
    let app = router(AppState::new(
        Arc::new(queue),
        seed_languages(),
        ApiConfig::default(),
    ));
    drop(redis);

    let requests = [
        Request::post("/run-code")
            .body(Body::from(r#"{"language": "c", "code": "x"}"#))
            .unwrap(),
        Request::get(format!("/results/{}", TaskId::new()))
            .body(Body::empty())
            .unwrap(),
    ];
    for request in requests {
        let response = tokio::time::timeout(Duration::from_secs(30), app.clone().oneshot(request))
            .await
            .expect("a dead queue must fail fast, not hang")
            .unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            serde_json::from_slice::<Value>(&bytes).unwrap(),
            json!({"detail": "queue unavailable, try again"})
        );
    }
}

#[tokio::test]
async fn serve_answers_over_tcp_and_stops_on_shutdown() {
    let queue = Arc::new(EmbeddedQueue::new(Duration::from_secs(60)));
    let state = AppState::new(queue.clone(), seed_languages(), ApiConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, state, async {
        stopped.await.ok();
    }));

    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("{base}/run-code"))
        .json(&json!({"language": "python", "code": "print('Hello from Celery!')"}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let task_id = created["task_id"].as_str().unwrap();

    let pending: Value = client
        .get(format!("{base}/results/{task_id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pending["status"], "PENDING");

    let delivery = queue
        .reserve("test-worker", 1, Duration::from_secs(5))
        .await
        .unwrap()
        .remove(0);
    let result = JobResult {
        stdout: "Hello from Celery!\n".to_owned(),
        ..finished(Verdict::Ok)
    };
    queue.complete(&delivery, &result).await.unwrap();
    let done: Value = client
        .get(format!("{base}/results/{task_id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(done["status"], "SUCCESS");
    assert_eq!(done["result"], json!({"output": "Hello from Celery!\n"}));

    let response = client
        .post(format!("{base}/run-code"))
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY);

    // The client's idle keep-alive connection must not hold shutdown up.
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server did not stop after shutdown")
        .unwrap()
        .unwrap();
    assert!(
        client.get(format!("{base}/health")).send().await.is_err(),
        "still serving after shutdown"
    );
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .try_into()
        .unwrap()
}
