//! The Piston v2 API (`/api/v2/...`) against the live service, through two
//! real Piston clients, unchanged: the `piston_rs` crate (crates.io) and its
//! Python binding `piston-rspy` (PyPI, in the virtualenv `scripts/test.sh`
//! prepares); then the shapes, units and refusals over plain HTTP, and the
//! switch that turns the API off.
//!
//! Both clients default to the public emkc.org host. They are only ever
//! built with the local URL (`Client::with_url`), which is checked; the
//! Python script adds guards of its own (see `piston_rspy_client.py`).

use std::path::PathBuf;

use serde_json::{json, Value};

use crate::helpers::{free_port, spawn_app, Options, TestApp};

/// API and worker with the same limits; 3000 ms is the run timeout Piston
/// clients send by default, so it must be allowed.
fn piston_app() -> Options {
    let limits: Vec<String> = ["--time-limit-ms", "3000", "--memory-limit-mb", "128"]
        .map(String::from)
        .to_vec();
    Options {
        worker_flags: limits.clone(),
        api_flags: limits,
        ..Options::default()
    }
}

/// The base URL a Piston client is given: loopback, always.
fn base_url(app: &TestApp) -> String {
    let url = format!("{}/api/v2", app.address);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    url
}

fn local_client(app: &TestApp) -> piston_rs::Client {
    let url = base_url(app);
    let client = piston_rs::Client::with_url(&url);
    assert_eq!(
        client.get_url(),
        url,
        "the client must talk to the local server"
    );
    client
}

/// Each reads "hello" from stdin and prints it with its arguments.
const PROGRAMS: [(&str, &str); 5] = [
    (
        "python",
        "import sys\nprint(input() + ' ' + ','.join(sys.argv[1:]))\n",
    ),
    (
        "javascript",
        "const line = require('fs').readFileSync(0, 'utf8').split('\\n')[0];\n\
         console.log(line + ' ' + process.argv.slice(2).join(','));\n",
    ),
    (
        "java",
        "import java.util.Scanner;\n\
         public class Main { public static void main(String[] a) {\n\
           String line = new Scanner(System.in).nextLine();\n\
           System.out.println(line + \" \" + String.join(\",\", a)); } }\n",
    ),
    (
        "c",
        "#include <stdio.h>\n#include <string.h>\n\
         int main(int argc, char **argv) { char b[64];\n\
           if (!fgets(b, sizeof b, stdin)) return 3; b[strcspn(b, \"\\n\")] = 0;\n\
           printf(\"%s \", b); for (int i = 1; i < argc; i++) printf(i > 1 ? \",%s\" : \"%s\", argv[i]);\n\
           printf(\"\\n\"); return 0; }\n",
    ),
    (
        "c++",
        "#include <iostream>\n#include <string>\n\
         int main(int argc, char **argv) { std::string line; std::getline(std::cin, line);\n\
           std::cout << line << ' '; for (int i = 1; i < argc; i++) std::cout << (i > 1 ? \",\" : \"\") << argv[i];\n\
           std::cout << '\\n'; }\n",
    ),
];

fn executor(language: &str, code: &str) -> piston_rs::Executor {
    piston_rs::Executor::new()
        .set_language(language)
        .set_version("*")
        .add_file(piston_rs::File::default().set_content(code))
}

#[tokio::test]
async fn piston_rs_runs_every_language_with_stdin_and_args() {
    let app = spawn_app(piston_app()).await;
    let client = local_client(&app);
    let runtimes = client.fetch_runtimes().await.expect("GET /api/v2/runtimes");
    for (language, _) in PROGRAMS {
        assert!(
            runtimes.iter().any(|r| r.language == language),
            "{language} is not among {runtimes:?}"
        );
    }
    let runs = PROGRAMS.map(|(language, code)| {
        let client = &client;
        async move {
            let request = executor(language, code)
                .set_stdin("hello")
                .add_args(vec!["1", "2"]);
            (language, client.execute(&request).await.expect("execute"))
        }
    });
    for (language, response) in futures_join(runs).await {
        assert!(response.is_ok(), "{language}: {}", response.run.stderr);
        assert_eq!(response.language, language);
        assert_eq!(
            response.run.stdout, "hello 1,2\n",
            "{language}: {response:?}"
        );
        assert_eq!(response.run.code, Some(0), "{language}");
        assert_eq!(response.run.signal, None, "{language}");
        let compiled = matches!(language, "java" | "c" | "c++");
        assert_eq!(response.compile.is_some(), compiled, "{language}");
        if let Some(compile) = &response.compile {
            assert_eq!(compile.code, Some(0), "{language}: {}", compile.output);
        }
    }
}

/// Runs the futures concurrently (one worker runs several jobs at once).
async fn futures_join<T>(futures: [impl std::future::Future<Output = T>; 5]) -> Vec<T> {
    let [a, b, c, d, e] = futures;
    let (a, b, c, d, e) = tokio::join!(a, b, c, d, e);
    vec![a, b, c, d, e]
}

#[tokio::test]
async fn piston_rs_sees_a_compile_error_a_timeout_and_a_refusal() {
    let app = spawn_app(piston_app()).await;
    let client = local_client(&app);

    let response = client
        .execute(&executor("c", "int main(void) { return 0 }\n"))
        .await
        .unwrap();
    assert!(response.is_ok(), "{}", response.run.stderr);
    let compile = response.compile.as_ref().expect("a compile stage");
    assert!(compile.is_err(), "{compile:?}");
    assert!(compile.stderr.contains("error"), "{}", compile.stderr);
    // Piston copies a failed compile into `run`.
    assert_eq!(response.run.stderr, compile.stderr);
    assert_eq!(response.run.code, compile.code);

    let response = client
        .execute(&executor("python", "while True:\n    pass\n").set_run_timeout(500))
        .await
        .unwrap();
    assert!(response.is_ok());
    assert_eq!(response.run.signal.as_deref(), Some("SIGKILL"));
    assert_eq!(response.run.code, None);

    // piston_rs turns a non-200 into a result whose stderr is the answer.
    let response = client.execute(&executor("cobol", "x")).await.unwrap();
    assert_eq!(response.status, 400);
    assert!(
        response.run.stderr.contains("cobol-* runtime is unknown"),
        "{}",
        response.run.stderr
    );
}

/// The Python of the virtual environment `scripts/test.sh` prepares (with
/// piston-rspy installed).
fn test_python() -> PathBuf {
    let python = std::env::var_os("CODE_RUNNER_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/py-venv/bin/python")
        });
    assert!(
        python.exists(),
        "{} not found: run scripts/test.sh, which creates it with piston-rspy",
        python.display()
    );
    python
}

#[tokio::test]
async fn piston_rspy_runs_every_language_a_compile_error_and_a_timeout() {
    let app = spawn_app(piston_app()).await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/piston_rspy_client.py");
    // Every proxy variable points at a closed port on loopback, and only
    // 127.0.0.1 is exempt: the client's HTTP stack can reach nothing else.
    let dead_proxy = format!("http://127.0.0.1:{}", free_port());
    let mut command = tokio::process::Command::new(test_python());
    command.arg(script).arg(base_url(&app));
    for name in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
        command.env(name, &dead_proxy);
        command.env(name.to_lowercase(), &dead_proxy);
    }
    command
        .env("NO_PROXY", "127.0.0.1")
        .env("no_proxy", "127.0.0.1");
    let output = command.output().await.expect("run piston_rspy_client.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.trim() == "ok",
        "piston_rspy_client.py failed:\n{stdout}\n{}\napi log:\n{}",
        String::from_utf8_lossy(&output.stderr),
        app.log("api")
    );
}

async fn execute(app: &TestApp, body: Value) -> (u16, Value) {
    let response = app
        .client
        .post(format!("{}/api/v2/execute", app.address))
        .json(&body)
        .send()
        .await
        .expect("POST /api/v2/execute");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

#[tokio::test]
async fn answers_have_pistons_shape_units_and_encodings() {
    let app = spawn_app(piston_app()).await;

    let runtimes: Value = app
        .client
        .get(format!("{}/api/v2/runtimes", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let python = runtimes
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["language"] == "python")
        .expect("python");
    assert_eq!(python["version"], "3.11.0");
    assert!(python["aliases"].as_array().unwrap().contains(&json!("py")));
    let cpp = runtimes
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["language"] == "c++")
        .expect("c++ under Piston's name");
    assert!(cpp["aliases"].as_array().unwrap().contains(&json!("cpp")));

    // Memory in bytes, times in milliseconds.
    let (status, body) = execute(
        &app,
        json!({"language": "py", "version": "3.x", "files": [{"content":
            "import time\nx = bytearray(40 * 1024 * 1024)\ntime.sleep(0.3)\nprint(len(x))"}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["language"], "python");
    assert_eq!(body["version"], "3.11.0");
    assert!(body.get("compile").is_none(), "{body}");
    let run = &body["run"];
    assert_eq!(run["stdout"], "41943040\n");
    assert_eq!(run["status"], Value::Null);
    let memory = run["memory"].as_u64().expect("memory in bytes");
    assert!(
        memory >= 40 * 1024 * 1024,
        "{memory} bytes < 40 MiB: not bytes?"
    );
    let wall = run["wall_time"].as_u64().expect("wall_time in ms");
    assert!((300..3_000).contains(&wall), "{wall} ms: not milliseconds?");
    assert!(run["cpu_time"].as_u64().is_some(), "{run}");

    // A non-zero exit; stderr in `output` after stdout.
    let (_, body) = execute(
        &app,
        json!({"language": "python", "version": "*", "files": [{"content":
            "import sys\nprint('o')\nsys.stdout.flush()\nsys.stderr.write('e')\nsys.exit(3)"}]}),
    )
    .await;
    let run = &body["run"];
    assert_eq!(
        (&run["code"], &run["status"], &run["signal"]),
        (&json!(3), &json!("RE"), &Value::Null),
        "{run}"
    );
    assert_eq!(run["output"], "o\ne");
    assert_eq!(run["message"], "Exited with code 3");

    // Death by a signal.
    let (_, body) = execute(
        &app,
        json!({"language": "python", "version": "*", "files": [{"content":
            "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)"}]}),
    )
    .await;
    let run = &body["run"];
    assert_eq!(
        (&run["status"], &run["signal"]),
        (&json!("SG"), &json!("SIGTERM")),
        "{run}"
    );

    // A timeout: TO, killed.
    let (_, body) = execute(
        &app,
        json!({"language": "python", "version": "*", "run_timeout": 300,
               "files": [{"content": "while True: pass"}]}),
    )
    .await;
    let run = &body["run"];
    assert_eq!(
        (&run["status"], &run["signal"], &run["code"]),
        (&json!("TO"), &json!("SIGKILL"), &Value::Null),
        "{run}"
    );

    // base64 and hex files, several of them; stdin gets its newline.
    let (status, body) = execute(
        &app,
        json!({"language": "python3", "version": "3.11.0", "stdin": "7", "args": ["a b"],
               "files": [
                   {"name": "main.py", "encoding": "base64",
                    "content": "aW1wb3J0IHN5cywgbGliCnByaW50KGxpYi54LCByZXByKHN5cy5zdGRpbi5yZWFkKCkpLCBzeXMuYXJndlsxOl0p"},
                   {"name": "lib.py", "encoding": "hex", "content": "78203d203432"},
               ]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["run"]["stdout"], "42 '7\\n' ['a b']\n", "{body}");

    // -1 is the server's maximum; the npm client's text/plain is read as JSON.
    let response = app
        .client
        .post(format!("{}/api/v2/execute", app.address))
        .header("content-type", "text/plain;charset=UTF-8")
        .body(
            json!({"language": "javascript", "version": "*", "run_timeout": -1,
                   "run_memory_limit": -1, "compile_timeout": 10000, "compile_memory_limit": -1,
                   "args": ["1", "2", "3"], "files": [{"content": "console.log(process.argv.length)"}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["run"]["stdout"], "5\n", "{body}");
    let response = app
        .client
        .post(format!("{}/api/v2/execute", app.address))
        .body(r#"{"language": "c", "version": "12", "files": [{"content": "int main(void) { return 0; }"}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "no Content-Type at all");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["compile"]["code"], 0, "{body}");
    assert_eq!(body["run"]["code"], 0, "{body}");
}

#[tokio::test]
async fn bad_input_gets_pistons_error_shape_never_a_500() {
    let mut options = piston_app();
    options
        .api_flags
        .extend(["--max-code-bytes", "1000"].map(String::from));
    let app = spawn_app(options).await;
    let file = json!([{"content": "print(1)"}]);
    let cases = [
        (
            json!({"version": "*", "files": file}),
            "language is required as a string",
        ),
        (
            json!({"language": "python", "files": file}),
            "version is required as a string",
        ),
        (
            json!({"language": "python", "version": "*"}),
            "files is required as an array",
        ),
        (
            json!({"language": "python", "version": "*", "files": [{"name": "x"}]}),
            "files[0].content is required as a string",
        ),
        (
            json!({"language": "brainfuck", "version": "*", "files": file}),
            "brainfuck-* runtime is unknown",
        ),
        (
            json!({"language": "python", "version": "3.12.0", "files": file}),
            "python-3.12.0 runtime is unknown",
        ),
        (
            json!({"language": "python", "version": "*", "files": []}),
            "files must include at least one utf8 encoded file",
        ),
        (
            json!({"language": "python", "version": "*", "files": file, "run_timeout": 3001}),
            "run_timeout cannot exceed the configured limit of 3000",
        ),
        (
            json!({"language": "python", "version": "*", "files": file, "run_memory_limit": 129 * 1024 * 1024}),
            "run_memory_limit cannot exceed the configured limit of 134217728",
        ),
        (
            json!({"language": "python", "version": "*", "files": file, "compile_timeout": "1s"}),
            "If specified, compile_timeout must be a number",
        ),
        (
            json!({"language": "python", "version": "*", "files": file, "run_timeout": -2}),
            "run_timeout must be non-negative",
        ),
        (
            json!({"language": "python", "version": "*", "files": file, "args": "1 2"}),
            "If specified, args must be an array of strings",
        ),
        (
            json!({"language": "python", "version": "*", "files": [{"content": "/w==", "encoding": "base64"}]}),
            "files[0] is not UTF-8 text once decoded; this server runs text files only",
        ),
        (json!(["python"]), "the request body must be a JSON object"),
    ];
    for (body, message) in cases {
        let (status, answer) = execute(&app, body.clone()).await;
        assert_eq!(
            (status, answer),
            (400, json!({ "message": message })),
            "{body}"
        );
    }
    let (status, answer) = execute(
        &app,
        json!({"language": "python", "version": "*",
               "files": [{"content": "x"}, {"name": "../../etc/passwd", "content": "y"}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .starts_with("files[1].name: "),
        "{answer}"
    );

    let post = |body: &'static str| {
        app.client
            .post(format!("{}/api/v2/execute", app.address))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for malformed in ["{\"language\": ", "", "null", "language=python"] {
        let response = post(malformed).await.unwrap();
        assert_eq!(response.status(), 400, "{malformed:?}");
        let answer: Value = response.json().await.unwrap();
        let message = answer["message"].as_str().expect("a message");
        assert!(
            message.starts_with("the request body"),
            "{malformed:?}: {message}"
        );
        assert_eq!(answer.as_object().unwrap().len(), 1, "{answer}");
    }

    // Over the code limit once decoded: 413, Piston's shape.
    let (status, answer) = execute(
        &app,
        json!({"language": "python", "version": "*",
               "files": [{"content": "x".repeat(600)}, {"name": "b.py", "content": "y".repeat(600)}]}),
    )
    .await;
    assert_eq!(
        (status, answer),
        (
            413,
            json!({"message": "files are 1200 bytes together once decoded; the limit is 1000 bytes"})
        )
    );

    // The body's own limit: files (hex doubles them) and stdin, doubled for
    // JSON escapes, no test data: (2 × 1000 + 256 KiB) × 2 + 64 KiB here.
    let limit = (2 * 1000 + 256 * 1024) * 2 + 64 * 1024;
    let padded = |junk: usize| {
        json!({"language": "python", "version": "*", "files": [{"content": "print(1)"}],
               "junk": "j".repeat(junk)})
    };
    let (status, answer) = execute(&app, padded(limit)).await;
    assert_eq!(status, 413, "{answer}");
    assert!(answer["message"].is_string(), "{answer}");
    // Under it, an unknown field is skipped unread (not kept in memory).
    let (status, answer) = execute(&app, padded(limit / 2)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["run"]["stdout"], "1\n", "{answer}");

    // Unknown routes under /api/v2, and the WebSocket asked over plain HTTP.
    let response = app
        .client
        .get(format!("{}/api/v2/packages", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"message": "Not Found"})
    );
    // The WebSocket route, asked without a handshake (see `live` for the
    // protocol itself).
    let response = app
        .client
        .get(format!("{}/api/v2/connect", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 426);
    let answer: Value = response.json().await.unwrap();
    assert!(
        answer["message"].as_str().unwrap().contains("WebSocket"),
        "{answer}"
    );
    let response = app
        .client
        .get(format!("{}/api/v2/execute", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    let answer: Value = response.json().await.unwrap();
    assert!(answer["message"].is_string(), "{answer}");
}

#[tokio::test]
async fn keys_and_rate_limits_apply_and_the_api_can_be_turned_off() {
    let key = "piston-key-0001";
    let mut options = piston_app();
    options
        .api_flags
        .extend(["--api-keys", key, "--rate-limit-per-minute", "1"].map(String::from));
    let app = spawn_app(options).await;
    let request = executor("python", "print(6 * 7)");

    // No key: 401 in Piston's shape (piston_rs hands the answer back).
    let response = local_client(&app).execute(&request).await.unwrap();
    assert_eq!(response.status, 401);
    let answer: Value = serde_json::from_str(
        response
            .run
            .stderr
            .strip_prefix("401 Unauthorized: ")
            .unwrap(),
    )
    .unwrap();
    assert!(
        answer["message"].as_str().unwrap().contains("API key"),
        "{answer}"
    );

    // The key as Piston clients send it: bare, in Authorization.
    let url = base_url(&app);
    let keyed = piston_rs::Client::with_url_and_key(&url, key);
    assert_eq!(keyed.get_url(), url);
    let response = keyed.execute(&request).await.unwrap();
    assert!(response.is_ok(), "{}", response.run.stderr);
    assert_eq!(response.run.stdout, "42\n");
    // The runtimes stay open, as /languages does.
    assert!(!local_client(&app)
        .fetch_runtimes()
        .await
        .unwrap()
        .is_empty());

    // One a minute: the second is refused.
    let response = keyed.execute(&request).await.unwrap();
    assert_eq!(response.status, 429, "{}", response.run.stderr);
    assert!(
        response.run.stderr.contains("\"message\""),
        "{}",
        response.run.stderr
    );

    // Off: no Piston route, nothing in the OpenAPI document.
    let off = spawn_app(Options {
        embedded: true,
        api_flags: vec!["--no-piston-api".into()],
        ..Options::default()
    })
    .await;
    let response = off
        .client
        .get(format!("{}/api/v2/runtimes", off.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let doc: Value = off
        .client
        .get(format!("{}/openapi.json", off.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"].get("/api/v2/execute").is_none());
    let doc: Value = app
        .client
        .get(format!("{}/openapi.json", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        doc["paths"]["/api/v2/execute"]["post"]["tags"],
        json!(["piston"])
    );
    assert_eq!(
        doc["paths"]["/api/v2/runtimes"]["get"]["tags"],
        json!(["piston"])
    );
}

#[tokio::test]
async fn a_job_that_cannot_finish_within_the_longest_wait_is_cancelled_and_says_so() {
    let mut options = piston_app();
    options
        .api_flags
        .extend(["--max-wait-secs", "1"].map(String::from));
    let app = spawn_app(options).await;
    let started = std::time::Instant::now();
    let (status, body) = execute(
        &app,
        json!({"language": "python", "version": "*", "run_timeout": 3000,
               "files": [{"content": "while True: pass"}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        started.elapsed() < std::time::Duration::from_millis(2_900),
        "waited past the cap"
    );
    let run = &body["run"];
    assert_eq!(run["status"], "XX", "{body}");
    assert_eq!(run["code"], Value::Null);
    let message = run["message"].as_str().unwrap();
    assert!(message.contains("did not finish within 1 s"), "{message}");
    assert!(body.get("compile").is_none());
}
