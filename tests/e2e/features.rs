//! What users of Judge0 and Piston expect beyond the seed, end to end:
//! stdin, args, files and limits in requests; rich results; waiting in one
//! call (hundreds of waiters on one Redis subscriber); the service endpoints;
//! API keys, rate limits and CORS; the `run` client through a server; the
//! OpenAPI document checked by `schemathesis`; and the web playground driven
//! in a real headless Chromium.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use code_runner_queue::{Job, Queue, RedisQueue, RedisQueueConfig, SourceFile, TaskId};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, Options, TestApp, BIN};

fn limited() -> Vec<String> {
    ["--time-limit-ms", "3000", "--memory-limit-mb", "128"]
        .map(String::from)
        .to_vec()
}

/// API and workers with the same program limits, as a deployment sets them
/// (one `CODE_RUNNER_TIME_LIMIT_MS` for both).
fn limited_app() -> Options {
    Options {
        worker_flags: limited(),
        api_flags: limited(),
        ..Options::default()
    }
}

async fn post(app: &TestApp, query: &str, body: Value) -> (u16, Value) {
    let response = app
        .client
        .post(format!("{}/run-code{query}", app.address))
        .json(&body)
        .send()
        .await
        .expect("POST /run-code");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

#[tokio::test]
async fn requests_carry_stdin_args_files_and_limits() {
    let app = spawn_app(limited_app()).await;
    let (status, body) = post(
        &app,
        "?wait=true",
        json!({
            "language": "python",
            "code": "import sys, helper\nprint(helper.greet(sys.argv[1:]), sys.stdin.read().strip())",
            "stdin": "from stdin\n",
            "args": ["a b", "--c"],
            "files": [{"name": "helper.py", "content": "def greet(a):\n    return repr(a)\n"}],
            "time_limit_ms": 2500,
            "memory_limit_mb": 64,
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "SUCCESS", "{body}");
    assert_eq!(body["stdout"], "['a b', '--c'] from stdin\n");
    assert_eq!(body["language"], "python");
    assert!(body["version"].as_str().is_some_and(|v| !v.is_empty()));
    assert_eq!(body["state"], "finished");
    let queued = body["queued_at_ms"].as_u64().unwrap();
    let started = body["started_at_ms"].as_u64().unwrap();
    let finished = body["finished_at_ms"].as_u64().unwrap();
    assert!(queued <= started && started <= finished, "{body}");

    // A C program with a header file, and a requested time limit that holds.
    let (_, body) = post(
        &app,
        "?wait=true",
        json!({
            "language": "c",
            "code": "#include <stdio.h>\n#include \"n.h\"\nint main(int c, char **v) { printf(\"%d %s\\n\", N, v[1]); }",
            "args": ["x"],
            "files": [{"name": "n.h", "content": "#define N 7\n"}],
        }),
    )
    .await;
    assert_eq!(body["stdout"], "7 x\n", "{body}");
    let (_, body) = post(
        &app,
        "?wait=true",
        json!({"language": "python", "code": "while True: pass", "time_limit_ms": 300}),
    )
    .await;
    assert_eq!(body["verdict"], "time_limit", "{body}");
    assert!(body["wall_time_ms"].as_u64().unwrap() < 2000, "{body}");

    // Out of the server's range: 422 naming it, nothing queued.
    let (status, body) = post(
        &app,
        "",
        json!({"language": "python", "code": "", "time_limit_ms": 3001, "memory_limit_mb": 0}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let msg = body["detail"][0]["msg"].as_str().unwrap();
    assert!(msg.contains("between 1 and 3000"), "{msg}");
    let msg = body["detail"][1]["msg"].as_str().unwrap();
    assert!(msg.contains("between 16 and 128"), "{msg}");
    let (status, body) = post(
        &app,
        "",
        json!({"language": "python", "code": "", "files": [{"name": "../etc/x", "content": ""}]}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["detail"][0]["loc"],
        json!(["body", "files", 0, "name"])
    );
}

/// An extra file named like the program's own source (Java: after its
/// public class), or a name given twice, is refused at the door with a 422
/// naming the file. A job with such files queued by something that does not
/// check them (another API version; straight into Redis here) ends as a
/// `compile_error` naming the file, and the worker's one sandbox slot is not
/// torn down: the next job on it runs.
#[tokio::test]
async fn extra_files_that_clash_with_the_source_or_each_other_are_refused() {
    let app = spawn_app(Options {
        worker_flags: [limited(), vec!["--concurrency".into(), "1".into()]].concat(),
        ..limited_app()
    })
    .await;
    let java = "public class Foo { public static void main(String[] a) { System.out.println(Helper.X); } }";
    let helper = json!({"name": "Helper.java", "content": "class Helper { static int X = 42; }"});
    let foo = json!({"name": "Foo.java", "content": "public class Foo {}"});
    let (status, body) = post(
        &app,
        "",
        json!({"language": "java", "code": java, "files": [helper, foo]}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let issue = &body["detail"][0];
    assert_eq!(issue["loc"], json!(["body", "files", 1, "name"]), "{body}");
    assert_eq!(issue["input"], "Foo.java", "{body}");
    assert!(
        issue["msg"].as_str().unwrap().contains("'Foo.java'"),
        "{body}"
    );
    let header = json!({"name": "a.h", "content": ""});
    let (status, body) = post(
        &app,
        "",
        json!({"language": "c", "code": "int main(void) {}", "files": [header, header]}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["detail"][0]["loc"],
        json!(["body", "files", 1, "name"]),
        "{body}"
    );

    let queue = RedisQueue::connect(RedisQueueConfig {
        key_prefix: app.prefix.clone(),
        ..RedisQueueConfig::new(app.redis.as_ref().unwrap().url())
    })
    .await
    .unwrap();
    let mut job = Job::new(TaskId::new(), "java", java, 0);
    job.files = [
        ("Helper.java", "class Helper { static int X = 42; }"),
        ("Foo.java", ""),
    ]
    .map(|(name, content)| SourceFile {
        name: name.into(),
        content: content.into(),
    })
    .to_vec();
    queue.submit(&job).await.unwrap();
    let body = app.wait_result(&job.id.to_string()).await;
    assert_eq!(body["verdict"], "compile_error", "{body}");
    let message = body["result"].as_str().unwrap();
    assert!(message.contains("'Foo.java'"), "{message}");
    assert!(!message.contains("sandbox"), "{message}");

    job.id = TaskId::new();
    job.files.truncate(1);
    queue.submit(&job).await.unwrap();
    let body = app.wait_result(&job.id.to_string()).await;
    assert_eq!(body["status"], "SUCCESS", "{body}");
    assert_eq!(body["stdout"], "42\n", "{body}");
}

#[tokio::test]
async fn hundreds_of_clients_wait_on_one_subscriber() {
    let app = spawn_app(Options {
        worker_flags: [limited(), vec!["--concurrency".into(), "20".into()]].concat(),
        ..limited_app()
    })
    .await;
    let mut ids = Vec::new();
    for n in 0..20 {
        let id = app
            .submit(
                "python",
                &format!("import time\ntime.sleep(1.5)\nprint({n})"),
            )
            .await;
        ids.push((n, id));
    }
    // 300 waiters: 15 per task.
    let started = Instant::now();
    let mut waiters = Vec::new();
    for (n, id) in &ids {
        for _ in 0..15 {
            let client = app.client.clone();
            let url = format!("{}/results/{id}?wait=30", app.address);
            let n = *n;
            waiters.push(tokio::spawn(async move {
                let body: Value = client.get(url).send().await.unwrap().json().await.unwrap();
                (n, body)
            }));
        }
    }
    // While they wait, the API holds one subscriber connection to Redis.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let redis = app.redis.as_ref().unwrap();
    let clients = Command::new("redis-cli")
        .args(["-p", &redis.port().to_string(), "CLIENT", "LIST"])
        .output()
        .expect("redis-cli");
    let clients = String::from_utf8_lossy(&clients.stdout);
    let subscribers: Vec<&str> = clients.lines().filter(|l| !l.contains(" sub=0 ")).collect();
    assert_eq!(subscribers.len(), 1, "{clients}");
    for waiter in waiters {
        let (n, body) = waiter.await.unwrap();
        assert_eq!(body["status"], "SUCCESS", "{body}");
        assert_eq!(body["stdout"], format!("{n}\n"));
    }
    // Woken by the results, not by a poll or the 30 s timeout.
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "{:?}",
        started.elapsed()
    );

    // A wait that runs out answers the pending state.
    let id = app.submit("python", "import time\ntime.sleep(3)").await;
    let begun = Instant::now();
    let (status, body) = app.result(&format!("{id}?wait=1")).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "PENDING", "{body}");
    assert!(begun.elapsed() >= Duration::from_millis(900));
    let (status, body) = app.result(&format!("{id}?wait=abc")).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(["query", "wait"]));
}

#[tokio::test]
async fn service_endpoints_describe_the_service() {
    let app = spawn_app(limited_app()).await;
    let get = |path: &str| {
        let url = format!("{}{path}", app.address);
        let client = app.client.clone();
        async move { client.get(url).send().await.unwrap() }
    };
    let languages: Value = get("/languages").await.json().await.unwrap();
    let python = languages
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "python")
        .expect("python listed");
    assert_eq!(python["file_name"], "main.py");
    assert!(python["aliases"].as_array().unwrap().contains(&json!("py")));
    let java = languages
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "java")
        .unwrap();
    assert_eq!(java["file_name"], "Main.java");

    let ready = get("/ready").await;
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<Value>().await.unwrap()["status"], "ready");

    let body = app.run("python", "print(1)").await;
    assert_eq!(body["status"], "SUCCESS");
    app.run("python", "raise SystemExit(2)").await;
    // Workers report every 2 s.
    let deadline = Instant::now() + Duration::from_secs(15);
    let stats = loop {
        let stats: Value = get("/stats").await.json().await.unwrap();
        if stats["jobs"]["total"] == 2 && stats["workers"].as_array().unwrap().len() == 1 {
            break stats;
        }
        assert!(
            Instant::now() < deadline,
            "stats never counted the jobs: {stats}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(stats["jobs"]["by_verdict"]["ok"], 1, "{stats}");
    assert_eq!(stats["jobs"]["by_verdict"]["runtime_error"], 1, "{stats}");
    assert_eq!(stats["jobs"]["by_language"]["python"], 2, "{stats}");
    assert_eq!(stats["slots"]["total"], 50, "{stats}");
    assert_eq!(stats["queued"], 0);

    let metrics = get("/metrics").await;
    assert!(metrics.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = metrics.text().await.unwrap();
    for line in [
        "code_runner_queue_depth 0",
        "code_runner_workers 1",
        "code_runner_worker_slots{state=\"idle\"} 50",
        "code_runner_jobs_total{language=\"python\",verdict=\"ok\"} 1",
        "code_runner_jobs_total{language=\"python\",verdict=\"runtime_error\"} 1",
        "code_runner_job_run_seconds_count{language=\"python\"} 2",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }

    let doc: Value = get("/openapi.json").await.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["schemas"]["RunCodeRequest"]["properties"]["time_limit_ms"]["maximum"],
        3000
    );
    let docs = get("/docs").await.text().await.unwrap();
    assert!(docs.contains("/docs/swagger-ui-bundle.js") && !docs.contains("https://"));
    let bundle = get("/docs/swagger-ui-bundle.js").await;
    assert_eq!(bundle.status(), 200);
    let playground = get("/").await.text().await.unwrap();
    assert!(playground.contains("id=\"run\""));
}

#[tokio::test]
async fn api_keys_rate_limits_and_cors() {
    let app = spawn_app(Options {
        api_flags: [
            "--api-keys",
            "first-key-0001,second-key-0002",
            "--rate-limit-per-minute",
            "2",
            "--cors-origins",
            "http://playground.test",
            "--time-limit-ms",
            "3000",
        ]
        .map(String::from)
        .to_vec(),
        ..limited_app()
    })
    .await;
    let submit = |key: Option<(&'static str, &'static str)>| {
        let mut request = app
            .client
            .post(format!("{}/run-code", app.address))
            .json(&json!({"language": "python", "code": "print(1)"}));
        if let Some((name, value)) = key {
            request = request.header(name, value);
        }
        request.send()
    };
    let response = submit(None).await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let body: Value = response.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("X-API-Key"));
    let response = submit(Some(("x-api-key", "wrong-key-0000"))).await.unwrap();
    assert_eq!(response.status(), 401);

    // Two per minute per key: the third is refused with the headers.
    for remaining in ["1", "0"] {
        let response = submit(Some(("authorization", "Bearer first-key-0001")))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["ratelimit-limit"], "2");
        assert_eq!(response.headers()["ratelimit-remaining"], remaining);
    }
    let response = submit(Some(("authorization", "Bearer first-key-0001")))
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    assert_eq!(response.headers()["ratelimit-remaining"], "0");
    // Another key has its own budget.
    let response = submit(Some(("x-api-key", "second-key-0002")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let id = response.json::<Value>().await.unwrap()["task_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Results need a key too; service endpoints do not.
    let url = format!("{}/results/{id}", app.address);
    assert_eq!(app.client.get(&url).send().await.unwrap().status(), 401);
    let response = app
        .client
        .get(&url)
        .header("x-api-key", "second-key-0002")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    for open in [
        "/health",
        "/ready",
        "/languages",
        "/metrics",
        "/openapi.json",
        "/",
    ] {
        let response = app
            .client
            .get(format!("{}{open}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{open}");
    }
    let doc: Value = app
        .client
        .get(format!("{}/openapi.json", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/run-code"]["post"]["security"].is_array());

    // CORS: a preflight from the allowed origin, and the header on answers.
    let response = app
        .client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/run-code", app.address),
        )
        .header("origin", "http://playground.test")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type,x-api-key")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://playground.test"
    );
    let response = app
        .client
        .get(format!("{}/languages", app.address))
        .header("origin", "http://elsewhere.test")
        .send()
        .await
        .unwrap();
    assert!(response
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}

#[tokio::test]
async fn cli_runs_through_a_server_with_stdin_args_files_and_limits() {
    let app = spawn_app(limited_app()).await;
    let dir = std::env::temp_dir().join(format!("code-runner-cli-{}", app.prefix));
    std::fs::create_dir_all(&dir).unwrap();
    let program = dir.join("prog.py");
    std::fs::write(
        &program,
        "import sys, helper\nprint(helper.X, sys.argv[1:], sys.stdin.read().strip())\n\
         print('to stderr', file=sys.stderr)\nsys.exit(3)\n",
    )
    .unwrap();
    std::fs::write(dir.join("helper.py"), "X = 42\n").unwrap();
    std::fs::write(dir.join("in.txt"), "line of input\n").unwrap();
    let output = Command::new(BIN)
        .arg("run")
        .arg(&program)
        .args(["--server", &app.address, "--time-limit-ms", "2000"])
        .arg("--stdin")
        .arg(dir.join("in.txt"))
        .arg("--file")
        .arg(dir.join("helper.py"))
        .args(["--", "one", "two three"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "42 ['one', 'two three'] line of input\n"
    );
    assert_eq!(String::from_utf8_lossy(&output.stderr), "to stderr\n");
    assert_eq!(output.status.code(), Some(3));

    // A limit above the server's is refused with the server's words.
    let output = Command::new(BIN)
        .arg("run")
        .arg(&program)
        .args(["--server", &app.address, "--time-limit-ms", "9000"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("between 1 and 3000"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The Python of the virtual environment `scripts/test.sh` prepares, with
/// `schemathesis` and `selenium` installed.
fn test_python() -> PathBuf {
    let python = std::env::var_os("CODE_RUNNER_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/py-venv/bin/python")
        });
    assert!(
        python.exists(),
        "{} not found: run scripts/test.sh, which creates it with schemathesis and selenium",
        python.display()
    );
    python
}

#[tokio::test]
async fn schemathesis_finds_no_failure_in_the_live_openapi_document() {
    let app = spawn_app(Options {
        embedded: true,
        worker_flags: [
            "--time-limit-ms",
            "1000",
            "--memory-limit-mb",
            "64",
            "--compile-time-limit-ms",
            "10000",
            "--concurrency",
            "8",
            "--max-wait-secs",
            "2",
        ]
        .map(String::from)
        .to_vec(),
        ..Options::default()
    })
    .await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/schemathesis.sh");
    let output = tokio::process::Command::new("bash")
        .arg(script)
        .arg(format!("{}/openapi.json", app.address))
        .env("PYTHON", test_python())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis failed:\n{stdout}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&output.stderr),
        app.log("serve")
    );
}

#[tokio::test]
async fn the_playground_runs_a_program_in_a_real_browser() {
    let app = spawn_app(Options {
        embedded: true,
        worker_flags: limited(),
        ..Options::default()
    })
    .await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/playground.py");
    // The editor, live output (a program sleeping 2 s), interactive runs
    // (a guessing game, an input() loop, SIGINT) and judge mode, in one
    // browser session on loopback only (the script's own guard); bounded so
    // a hung browser fails the test rather than the run.
    let output = tokio::time::timeout(
        Duration::from_secs(300),
        tokio::process::Command::new(test_python())
            .arg(script)
            .arg(&app.address)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the browser test took over 300 s")
    .unwrap();
    assert!(
        output.status.success(),
        "browser test failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
