//! End-to-end tests: the real binary as separate processes (`api`, `worker`s,
//! `serve`), a real `redis-server`, real programs in the real sandbox, all
//! over HTTP as a client of the seed would talk to it.

mod abuse_fairness;
mod abuse_http;
mod chaos;
mod config;
mod doctor;
mod features;
mod helpers;
mod judge;
mod judge0;
mod live;
mod many_hosts;
mod piston;
mod reliability;
mod scheduling;
mod sentinel;
mod testsets;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use helpers::{spawn_app, Options, TestApp};
use serde_json::{json, Value};

/// One deployment per test binary would be cheaper, but each test owning its
/// processes keeps failures independent; limits are small so bad programs end fast.
fn limited() -> Vec<String> {
    [
        "--time-limit-ms",
        "2000",
        "--memory-limit-mb",
        "128",
        "--output-limit-bytes",
        "65536",
    ]
    .map(String::from)
    .to_vec()
}

async fn app() -> TestApp {
    spawn_app(Options {
        worker_flags: limited(),
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn seed_example_answers_exactly_as_the_seed() {
    let app = app().await;
    let id = app.submit("python", "print('Hello from Celery!')").await;
    let (status, pending_or_done) = app.result(&id).await;
    assert_eq!(status, 200);
    assert!(pending_or_done["status"] == "PENDING" || pending_or_done["status"] == "SUCCESS");
    if pending_or_done["status"] == "PENDING" {
        assert_eq!(pending_or_done["result"], Value::Null);
    }
    let body = app.wait_result(&id).await;
    assert_eq!(body["status"], "SUCCESS");
    assert_eq!(body["result"], json!({"output": "Hello from Celery!\n"}));
}

#[tokio::test]
async fn hello_and_failure_in_every_language() {
    // Ten jobs at once, javac among them, on two cores shared with other
    // tests: a 2 s wall clock once ended node's hello at 49 ms of CPU. This
    // test is about output and verdicts, not limits.
    let app = spawn_app(Options {
        worker_flags: ["--time-limit-ms", "10000", "--memory-limit-mb", "256"]
            .map(String::from)
            .to_vec(),
        ..Options::default()
    })
    .await;
    let hello = [
        ("python", "print('hello')"),
        ("javascript", "console.log('hello')"),
        ("java", "public class Main { public static void main(String[] a) { System.out.println(\"hello\"); } }"),
        ("cpp", "#include <iostream>\nint main() { std::cout << \"hello\\n\"; }"),
        ("c", "#include <stdio.h>\nint main(void) { printf(\"hello\\n\"); }"),
    ];
    let failing = [
        ("python", "raise SystemExit('boom')"),
        ("javascript", "throw new Error('boom')"),
        ("java", "public class Main { public static void main(String[] a) { throw new RuntimeException(\"boom\"); } }"),
        ("cpp", "#include <cstdio>\nint main() { std::fputs(\"boom\\n\", stderr); return 2; }"),
        ("c", "#include <stdio.h>\nint main(void) { fputs(\"boom\\n\", stderr); return 2; }"),
    ];
    let mut ids = Vec::new();
    for (language, code) in hello {
        ids.push((language, true, app.submit(language, code).await));
    }
    for (language, code) in failing {
        ids.push((language, false, app.submit(language, code).await));
    }
    for (language, ok, id) in ids {
        let body = app.wait_result(&id).await;
        if ok {
            assert_eq!(body["status"], "SUCCESS", "{language}: {body}");
            assert_eq!(body["result"]["output"], "hello\n", "{language}");
        } else {
            assert_eq!(body["status"], "FAILURE", "{language}: {body}");
            assert_eq!(body["verdict"], "runtime_error", "{language}");
            let message = body["result"]
                .as_str()
                .expect("FAILURE result is a message");
            assert!(message.contains("boom"), "{language}: {message}");
        }
    }
}

#[tokio::test]
async fn output_is_exact_bytes_and_unicode() {
    let app = app().await;
    let body = app
        .run(
            "python",
            "import sys\nsys.stdout.write('héllo 世界 🌍\\n\\n  ')",
        )
        .await;
    assert_eq!(body["result"]["output"], "héllo 世界 🌍\n\n  ");
    let body = app
        .run(
            "c",
            "#include <stdio.h>\nint main(void){fputs(\"no newline\", stdout);}",
        )
        .await;
    assert_eq!(body["result"]["output"], "no newline");
    // Invalid UTF-8 is replaced, not an error.
    let body = app
        .run("python", "import sys\nsys.stdout.buffer.write(b'a\\xffb')")
        .await;
    assert_eq!(body["result"]["output"], "a\u{fffd}b");
}

#[tokio::test]
async fn compile_error_is_a_failure_with_diagnostics() {
    let app = app().await;
    let body = app
        .run("cpp", "int main() { return undefined_name; }")
        .await;
    assert_eq!(body["status"], "FAILURE");
    assert_eq!(body["verdict"], "compile_error");
    let message = body["result"].as_str().unwrap();
    assert!(message.contains("undefined_name"), "{message}");
    assert!(body["compile_output"].as_str().unwrap().contains("error"));
}

#[tokio::test]
async fn limits_end_jobs_with_a_reason() {
    let app = app().await;
    let timeout = app
        .submit("python", "import time\nwhile True: time.sleep(1)")
        .await;
    let memory = app
        .submit("python", "x = bytearray(1024 * 1024 * 1024)")
        .await;
    // Blocking writes straight to fd 1: console.log and process.stdout
    // queue their writes in node's heap, which on two loaded cores once met
    // the wall clock, once the memory limit, before the 64 KiB cap.
    let output = app
        .submit(
            "javascript",
            "const fs = require('fs');\nconst s = 'y'.repeat(1 << 16);\nfor (;;) fs.writeSync(1, s)",
        )
        .await;

    let body = app.wait_result(&timeout).await;
    assert_eq!(
        (body["status"].as_str(), body["verdict"].as_str()),
        (Some("FAILURE"), Some("time_limit")),
        "{body}"
    );
    assert_eq!(body["result"], "Time limit exceeded (2 s)");

    let body = app.wait_result(&memory).await;
    assert_eq!(body["verdict"], "memory_limit", "{body}");
    assert_eq!(body["result"], "Memory limit exceeded (128 MiB)");

    let body = app.wait_result(&output).await;
    assert_eq!(body["verdict"], "output_limit", "{body}");
    assert_eq!(body["output_truncated"], true);
    assert!(body["stdout"].as_str().unwrap().len() <= 65536);
}

#[tokio::test]
async fn unknown_task_is_404() {
    let app = app().await;
    for id in [
        "6f1c1a2e-0000-4000-8000-000000000000",
        "not-a-uuid",
        "..%2F..%2Fetc%2Fpasswd",
    ] {
        let (status, body) = app.result(id).await;
        assert_eq!(status, 404, "{id}: {body}");
        assert!(body["detail"].is_string());
    }
}

#[tokio::test]
async fn bad_requests_get_clear_json_errors_and_queue_nothing() {
    let app = app().await;
    let json_ct = Some("application/json");
    let cases: Vec<(Vec<u8>, Option<&str>, u16)> = vec![
        (b"{not json".to_vec(), json_ct, 422),
        (b"[]".to_vec(), json_ct, 422),
        (br#"{"code": "print(1)"}"#.to_vec(), json_ct, 422),
        (br#"{"language": "python"}"#.to_vec(), json_ct, 422),
        (br#"{"language": 5, "code": "x"}"#.to_vec(), json_ct, 422),
        (
            br#"{"language": "python", "code": ["x"]}"#.to_vec(),
            json_ct,
            422,
        ),
        (
            br#"{"language": "ruby", "code": "puts 1"}"#.to_vec(),
            json_ct,
            422,
        ),
        (
            br#"{"language": "python", "code": "print(1)"}"#.to_vec(),
            Some("text/plain"),
            415,
        ),
    ];
    for (body, content_type, expected) in cases {
        let shown = String::from_utf8_lossy(&body).into_owned();
        let response = app.post_raw(body, content_type).await;
        assert_eq!(response.status().as_u16(), expected, "{shown}");
        let body: Value = response.json().await.expect("JSON error body");
        assert!(body.get("detail").is_some(), "{shown}: {body}");
        if expected == 422 {
            assert!(body["detail"].is_array(), "FastAPI shape: {body}");
        }
    }
    // The unknown language lists the supported ones.
    let response = app
        .post_raw(r#"{"language": "ruby", "code": "x"}"#, json_ct)
        .await;
    let text = response.text().await.unwrap();
    for name in ["python", "javascript", "java", "cpp", "c"] {
        assert!(text.contains(&format!("'{name}'")), "{text}");
    }
    // Over the 1 MiB code limit: 413 naming the limit.
    let big = json!({"language": "python", "code": "#".repeat(1024 * 1024 + 1)}).to_string();
    let response = app.post_raw(big, json_ct).await;
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("1048576"),
        "{body}"
    );
    // Nothing of the above reached a worker.
    let log = app.log("worker-0");
    assert!(!log.contains("job finished"), "{log}");
}

#[tokio::test]
async fn embedded_serve_runs_the_seed_example() {
    let app = spawn_app(Options {
        embedded: true,
        ..Options::default()
    })
    .await;
    let body = app.run("python", "print('Hello from Celery!')").await;
    assert_eq!(body["status"], "SUCCESS");
    assert_eq!(body["result"], json!({"output": "Hello from Celery!\n"}));
    let body = app.run("java", "public class Solution { public static void main(String[] a) { System.out.println(6 * 7); } }").await;
    assert_eq!(body["result"]["output"], "42\n", "{body}");
}

#[tokio::test]
async fn fifty_sleeping_jobs_run_at_once_on_one_worker() {
    // Default limits: fifty interpreters starting at once on two cores must
    // not push a 1.5 s sleep over a tight time limit.
    let app = spawn_app(Options::default()).await;
    let started = Instant::now();
    let mut ids = Vec::new();
    for n in 0..50 {
        ids.push(
            app.submit(
                "python",
                &format!("import time\ntime.sleep(1.5)\nprint({n})"),
            )
            .await,
        );
    }
    for (n, id) in ids.iter().enumerate() {
        let body = app.wait_result(id).await;
        assert_eq!(body["result"]["output"], format!("{n}\n"), "{body}");
    }
    // Serially this is 75 s; fifty at once is 1.5 s plus start-up costs.
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}");
}

#[tokio::test]
async fn two_workers_complete_each_of_200_jobs_exactly_once() {
    // A hundred interpreters at once on two cores take seconds each: this
    // test is about every job running exactly once, so the run limit is the
    // default (10 s), not the tight one other tests use.
    let mut flags = limited();
    let at = flags.iter().position(|f| f == "--time-limit-ms").unwrap();
    flags[at + 1] = "10000".into();
    let app = spawn_app(Options {
        workers: 2,
        worker_flags: flags,
        ..Options::default()
    })
    .await;
    let mut ids = Vec::new();
    for n in 0..200 {
        ids.push((n, app.submit("python", &format!("print({n} * 2)")).await));
    }
    for (n, id) in &ids {
        let body = app.wait_result(id).await;
        assert_eq!(body["result"]["output"], format!("{}\n", n * 2), "{body}");
    }
    // Every job ran on exactly one worker, once: count the workers' own
    // "job finished" records per task id.
    let mut runs: HashMap<String, usize> = HashMap::new();
    let mut per_worker = [0usize; 2];
    for (w, count) in per_worker.iter_mut().enumerate() {
        for line in app
            .log(&format!("worker-{w}"))
            .lines()
            .filter(|l| l.contains("job finished"))
        {
            let id = line
                .split("job_id=")
                .nth(1)
                .and_then(|s| s.split([' ', '}', ':']).next())
                .unwrap();
            *runs.entry(id.to_owned()).or_default() += 1;
            *count += 1;
        }
    }
    assert_eq!(runs.len(), 200, "{per_worker:?}");
    assert!(runs.values().all(|&n| n == 1), "a job ran twice");
    assert!(
        per_worker.iter().all(|&n| n > 0),
        "one worker did nothing: {per_worker:?}"
    );
}

#[tokio::test]
async fn cli_run_prints_output_and_exits_with_the_program_status() {
    let app = app().await;
    let dir = std::env::temp_dir().join(format!("cli-{}", app.prefix));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("prog.py");
    std::fs::write(
        &file,
        "import sys\nprint('out')\nprint('err', file=sys.stderr)\nsys.exit(7)\n",
    )
    .unwrap();
    for server in [None, Some(app.address.clone())] {
        let mut command = tokio::process::Command::new(helpers::BIN);
        command.arg("run").arg(&file);
        if let Some(server) = &server {
            command.arg("--server").arg(server);
        }
        let output = command.output().await.unwrap();
        assert_eq!(output.status.code(), Some(7), "{server:?}: {output:?}");
        assert_eq!(output.stdout, b"out\n");
        assert_eq!(output.stderr, b"err\n");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `code-runner run Foo.java --file Foo.java` (a file named like the
/// program's own source), locally and through a server, is refused with a
/// message naming the file and no host path; nothing runs, no slot breaks.
#[tokio::test]
async fn cli_run_refuses_an_extra_file_named_like_the_source() {
    let app = app().await;
    let dir = std::env::temp_dir().join(format!("cli-clash-{}", app.prefix));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("Foo.java");
    std::fs::write(
        &file,
        "public class Foo { public static void main(String[] a) { System.out.println(1); } }\n",
    )
    .unwrap();
    for server in [None, Some(app.address.clone())] {
        let mut command = tokio::process::Command::new(helpers::BIN);
        command.arg("run").arg(&file).arg("--file").arg(&file);
        if let Some(server) = &server {
            command.arg("--server").arg(server);
        }
        let output = command.output().await.unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_ne!(output.status.code(), Some(0), "{server:?}: {output:?}");
        assert!(stderr.contains("Foo.java"), "{server:?}: {stderr}");
        assert!(
            !stderr.contains("/work") && !stderr.contains("keeper"),
            "{server:?}: {stderr}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `code-runner run FILE --tests DIR`, locally and through a server: a
/// folder of `N.in`/`N.out` pairs judged with one compile, a verdict table,
/// exit 0 only when every test is accepted.
#[tokio::test]
async fn cli_run_judges_a_folder_of_tests() {
    let app = app().await;
    let dir = std::env::temp_dir().join(format!("cli-judge-{}", app.prefix));
    let tests = dir.join("tests");
    std::fs::create_dir_all(&tests).unwrap();
    let file = dir.join("double.c");
    std::fs::write(
        &file,
        "#include <stdio.h>\nint main(void){ long n; if (scanf(\"%ld\", &n) != 1) return 3; printf(\"%ld\\n\", n == 7 ? 0 : 2 * n); return 0; }\n",
    )
    .unwrap();
    for (name, input, output) in [("1", "1", "2"), ("2", "21", "42"), ("10", "-5", "-10")] {
        std::fs::write(tests.join(format!("{name}.in")), input).unwrap();
        std::fs::write(tests.join(format!("{name}.out")), format!("{output}\n")).unwrap();
    }
    for server in [None, Some(app.address.clone())] {
        let mut command = tokio::process::Command::new(helpers::BIN);
        command.arg("run").arg(&file).arg("--tests").arg(&tests);
        if let Some(server) = &server {
            command.arg("--server").arg(server);
        }
        let output = command.output().await.unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{server:?}: {output:?}");
        assert!(stdout.contains("3/3 accepted"), "{server:?}: {stdout}");
        let order: Vec<&str> = stdout
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next())
            .take(3)
            .collect();
        assert_eq!(order, ["1", "2", "10"], "{stdout}");
    }
    // A wrong answer on one test: exit 1, that test named in the table.
    std::fs::write(tests.join("7.in"), "7").unwrap();
    std::fs::write(tests.join("7.out"), "14\n").unwrap();
    for server in [None, Some(app.address.clone())] {
        let mut command = tokio::process::Command::new(helpers::BIN);
        command.arg("run").arg(&file).arg("--tests").arg(&tests);
        if let Some(server) = &server {
            command.arg("--server").arg(server);
        }
        let output = command.output().await.unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(1), "{server:?}: {output:?}");
        let line = stdout
            .lines()
            .find(|l| l.starts_with("7 "))
            .unwrap_or_default();
        assert!(line.contains("wrong_answer"), "{server:?}: {stdout}");
        assert!(stdout.contains("3/4 accepted"), "{server:?}: {stdout}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
