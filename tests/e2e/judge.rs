//! Judge mode end to end (SPEC §7): `POST /run-code` with `tests`, through
//! the queue and a worker's sandbox, to each test's verdict in
//! `GET /results/{id}`: every built-in checker, custom checkers in Python
//! and C++, limits per test, stop on first failure, a compile error, 200
//! tests in one job, bad requests, and two workers on one Redis.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, Options, TestApp};

fn flags(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// One `serve` process (embedded queue), with modest limits.
async fn app() -> TestApp {
    spawn_app(Options {
        embedded: true,
        worker_flags: flags(&["--time-limit-ms", "3000", "--memory-limit-mb", "128"]),
        ..Options::default()
    })
    .await
}

const CPP_SUM: &str = "#include <iostream>\nint main() { long long a, b; std::cin >> a >> b; std::cout << a + b << \"\\n\"; }\n";
/// Prints its stdin back.
const PY_ECHO: &str = "import sys\nsys.stdout.write(sys.stdin.read())";

/// Submits `body` with `?wait=true` and returns the finished task's status.
async fn judge(app: &TestApp, body: Value) -> Value {
    let response = app
        .client
        .post(format!("{}/run-code?wait=true", app.address))
        .json(&body)
        .send()
        .await
        .expect("POST /run-code");
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{answer}");
    if answer["status"] == "PENDING" {
        return app.wait_result(answer["task_id"].as_str().unwrap()).await;
    }
    answer
}

/// Submits `body` and returns the task id (without waiting).
async fn submit(app: &TestApp, body: Value) -> String {
    let response = app
        .post_raw(body.to_string(), Some("application/json"))
        .await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    answer["task_id"].as_str().unwrap().to_owned()
}

fn sum_tests(count: usize) -> Vec<Value> {
    (0..count)
        .map(|i| {
            let (a, b) = (i as i64 * 7 - 3, 1_000_000_007 + i as i64);
            json!({"stdin": format!("{a} {b}\n"), "expected_output": format!("{}\n", a + b)})
        })
        .collect()
}

fn verdicts(answer: &Value) -> Vec<&str> {
    answer["tests"]
        .as_array()
        .unwrap_or_else(|| panic!("no tests in {answer}"))
        .iter()
        .map(|t| t["verdict"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_cpp_sum_passes_five_tests() {
    let app = app().await;
    let answer = judge(
        &app,
        json!({"language": "cpp", "code": CPP_SUM, "tests": sum_tests(5)}),
    )
    .await;
    assert_eq!(answer["status"], "SUCCESS", "{answer}");
    assert_eq!(answer["verdict"], "accepted");
    assert_eq!(verdicts(&answer), ["accepted"; 5]);
    assert_eq!(
        answer["summary"],
        json!({"total": 5, "passed": 5, "failed": 0, "skipped": 0, "first_failure": null})
    );
    let first = &answer["tests"][0];
    assert_eq!(first["name"], "1");
    assert_eq!(first["stdout"], "1000000004\n");
    assert_eq!(first["exit_code"], 0);
    assert!(first["time_ms"].as_u64().is_some());
    assert!(first.get("checker_message").is_some());
}

#[tokio::test]
async fn a_wrong_answer_names_its_test_and_the_rest_still_run() {
    let app = app().await;
    let mut tests = sum_tests(5);
    tests[2]["name"] = json!("third");
    tests[2]["expected_output"] = json!("42\n");
    let answer = judge(
        &app,
        json!({"language": "cpp", "code": CPP_SUM, "tests": tests}),
    )
    .await;
    assert_eq!(answer["status"], "FAILURE", "{answer}");
    assert_eq!(answer["verdict"], "wrong_answer");
    assert_eq!(answer["result"], "Wrong answer on test third");
    assert_eq!(
        verdicts(&answer),
        [
            "accepted",
            "accepted",
            "wrong_answer",
            "accepted",
            "accepted"
        ]
    );
    let message = answer["tests"][2]["checker_message"].as_str().unwrap();
    assert!(
        message.contains("line 1") && message.contains("\"42\""),
        "{message}"
    );
    assert_eq!(answer["summary"]["first_failure"], "third");
    assert_eq!(answer["summary"]["failed"], 1);

    // Stop on the first failure: the rest are skipped.
    let mut tests = sum_tests(5);
    tests[1]["expected_output"] = json!("0\n");
    let answer = judge(
        &app,
        json!({"language": "cpp", "code": CPP_SUM, "tests": tests, "stop_on_first_failure": true}),
    )
    .await;
    assert_eq!(answer["result"], "Wrong answer on test 2", "{answer}");
    assert_eq!(
        verdicts(&answer),
        ["accepted", "wrong_answer", "skipped", "skipped", "skipped"]
    );
    assert_eq!(
        answer["summary"],
        json!({"total": 5, "passed": 1, "failed": 1, "skipped": 3, "first_failure": "2"})
    );
    assert_eq!(answer["tests"][3]["stdout"], "");
}

#[tokio::test]
async fn every_built_in_checker_end_to_end() {
    let app = app().await;
    // (checker, what the program prints, expected output, verdict)
    let cases = [
        (json!({"type": "exact"}), "3\n", "3\n", "accepted"),
        (json!({"type": "exact"}), "3", "3\n", "wrong_answer"),
        (json!({"type": "lines"}), "3", "3\n", "accepted"),
        (
            json!({"type": "lines"}),
            "1 2  \r\n3\r\n\n",
            "1 2\n3\n",
            "accepted",
        ),
        (
            json!({"type": "lines"}),
            "1  2\n3\n",
            "1 2\n3\n",
            "wrong_answer",
        ),
        (json!({"type": "tokens"}), "1  2\n3", "1 2\n3\n", "accepted"),
        (
            json!({"type": "tokens"}),
            "1 2 3 4",
            "1 2 3\n",
            "wrong_answer",
        ),
        (
            json!({"type": "float", "abs": 1e-6}),
            "0.3333333 1e3\n",
            "0.333333333 1000\n",
            "accepted",
        ),
        (
            json!({"type": "float", "abs": 1e-9}),
            "0.3333333\n",
            "0.333333333\n",
            "wrong_answer",
        ),
        (
            json!({"type": "float", "rel": 1e-3}),
            "1000000.5\n",
            "1000000\n",
            "accepted",
        ),
        (
            json!({"type": "unordered"}),
            "b\na\nc\n",
            "a\nb\nc\n",
            "accepted",
        ),
        (
            json!({"type": "unordered"}),
            "a\na\n",
            "a\nb\n",
            "wrong_answer",
        ),
        (json!({"type": "lines"}), "b\na\n", "a\nb\n", "wrong_answer"),
    ];
    let mut ids = Vec::new();
    for (checker, printed, expected, _) in &cases {
        ids.push(
            submit(
                &app,
                json!({
                    "language": "python", "code": PY_ECHO, "checker": checker,
                    "tests": [{"stdin": printed, "expected_output": expected}],
                }),
            )
            .await,
        );
    }
    for ((checker, printed, expected, verdict), id) in cases.iter().zip(&ids) {
        let answer = app.wait_result(id).await;
        assert_eq!(
            answer["verdict"], *verdict,
            "{checker} on {printed:?} against {expected:?}: {answer}"
        );
        let status = if *verdict == "accepted" {
            "SUCCESS"
        } else {
            "FAILURE"
        };
        assert_eq!(answer["status"], status);
    }
}

/// A custom checker in Python: exit 0 when the output is the answer, 2 when
/// only the spacing differs, 7 (a judge error) on a `crash` line, else 1,
/// saying why on stderr.
const PY_CHECKER: &str = r#"
import sys
inp, out, ans = (open(name).read() for name in sys.argv[1:4])
if out.strip() == "crash":
    print("checker crashed on purpose", file=sys.stderr)
    sys.exit(7)
if out == ans:
    sys.exit(0)
if out.split() == ans.split():
    print("spacing differs", file=sys.stderr)
    sys.exit(2)
print(f"expected {ans.strip()!r}, got {out.strip()!r} for input {inp.strip()!r}", file=sys.stderr)
sys.exit(1)
"#;

#[tokio::test]
async fn a_custom_checker_in_python_decides_each_test() {
    let app = app().await;
    let answer = judge(
        &app,
        json!({
            "language": "python", "code": PY_ECHO,
            "checker": {"type": "custom", "language": "python", "code": PY_CHECKER},
            "tests": [
                {"name": "same", "stdin": "5\n", "expected_output": "5\n"},
                {"name": "wrong", "stdin": "6\n", "expected_output": "5\n"},
                {"name": "spacing", "stdin": "1  2\n", "expected_output": "1 2\n"},
                {"name": "crash", "stdin": "crash\n", "expected_output": "x\n"},
            ],
        }),
    )
    .await;
    assert_eq!(
        verdicts(&answer),
        [
            "accepted",
            "wrong_answer",
            "presentation_error",
            "judge_error"
        ],
        "{answer}"
    );
    assert_eq!(answer["verdict"], "wrong_answer");
    assert_eq!(answer["result"], "Wrong answer on test wrong");
    let messages: Vec<&Value> = answer["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["checker_message"])
        .collect();
    assert_eq!(*messages[0], Value::Null);
    assert_eq!(
        messages[1], "expected '5', got '6' for input '6'\n",
        "the checker saw input, output and answer"
    );
    assert_eq!(messages[2], "spacing differs\n");
    let crash = messages[3].as_str().unwrap();
    assert!(
        crash.contains("exited with code 7") && crash.contains("crashed on purpose"),
        "{crash}"
    );

    // Only the crash: the job's verdict is the checker's fault.
    let answer = judge(
        &app,
        json!({
            "language": "python", "code": PY_ECHO,
            "checker": {"type": "custom", "language": "python", "code": PY_CHECKER},
            "tests": [{"stdin": "1\n", "expected_output": "1\n"}, {"stdin": "crash\n"}],
        }),
    )
    .await;
    assert_eq!(answer["verdict"], "judge_error", "{answer}");
    assert_eq!(answer["result"], "Judge error on test 2");
}

/// Compares two integers; 1 with a message when they differ.
const CPP_CHECKER: &str = r#"
#include <fstream>
#include <iostream>
int main(int argc, char** argv) {
    std::ifstream out(argv[2]), ans(argv[3]);
    long long got, want;
    if (!(out >> got)) { std::cerr << "no number printed"; return 2; }
    ans >> want;
    if (got != want) { std::cerr << "expected " << want << ", got " << got; return 1; }
    return 0;
}
"#;

#[tokio::test]
async fn a_custom_checker_in_cpp_and_one_that_does_not_compile() {
    let app = app().await;
    let mut tests = sum_tests(3);
    tests[1]["expected_output"] = json!("  7 ");
    let answer = judge(
        &app,
        json!({
            "language": "cpp", "code": CPP_SUM, "tests": tests,
            "checker": {"type": "custom", "language": "cpp", "code": CPP_CHECKER},
        }),
    )
    .await;
    assert_eq!(
        verdicts(&answer),
        ["accepted", "wrong_answer", "accepted"],
        "{answer}"
    );
    assert_eq!(
        answer["tests"][1]["checker_message"],
        "expected 7, got 1000000012"
    );

    let answer = judge(
        &app,
        json!({
            "language": "cpp", "code": CPP_SUM, "tests": sum_tests(2),
            "checker": {"type": "custom", "language": "cpp", "code": "int main( {"},
        }),
    )
    .await;
    assert_eq!(answer["verdict"], "judge_error", "{answer}");
    assert_eq!(verdicts(&answer), ["judge_error", "judge_error"]);
    let message = answer["result"].as_str().unwrap();
    assert!(
        message.starts_with("Judge error: the checker did not compile"),
        "{message}"
    );
}

#[tokio::test]
async fn a_test_over_its_time_limit_and_a_compile_error() {
    let app = app().await;
    let code = "import time\nn = float(input())\ntime.sleep(n)\nprint(n)";
    let answer = judge(
        &app,
        json!({
            "language": "python", "code": code,
            "tests": [
                {"stdin": "0\n", "expected_output": "0.0\n"},
                {"name": "slow", "stdin": "2\n", "expected_output": "2.0\n", "time_limit_ms": 500},
                {"stdin": "0.1\n", "expected_output": "0.1\n"},
            ],
        }),
    )
    .await;
    assert_eq!(
        verdicts(&answer),
        ["accepted", "time_limit", "accepted"],
        "{answer}"
    );
    assert_eq!(answer["verdict"], "time_limit");
    assert_eq!(answer["result"], "Time limit exceeded on test slow");

    let answer = judge(
        &app,
        json!({"language": "cpp", "code": "int main( {", "tests": sum_tests(3)}),
    )
    .await;
    assert_eq!(answer["verdict"], "compile_error", "{answer}");
    assert_eq!(answer["status"], "FAILURE");
    assert!(
        answer["result"]
            .as_str()
            .unwrap()
            .starts_with("Compilation failed"),
        "{answer}"
    );
    assert_eq!(verdicts(&answer), ["skipped"; 3]);

    // A runtime error comes before the checker.
    let answer = judge(
        &app,
        json!({"language": "python", "code": "print(1)\nraise SystemExit(3)",
               "tests": [{"expected_output": "1\n"}]}),
    )
    .await;
    assert_eq!(answer["verdict"], "runtime_error", "{answer}");
    assert_eq!(answer["tests"][0]["exit_code"], 3);
    assert_eq!(answer["result"], "Runtime error on test 1");
}

#[tokio::test]
async fn a_running_job_shows_the_tests_finished_so_far() {
    let app = app().await;
    let tests: Vec<Value> = (0..8)
        .map(|i| json!({"stdin": format!("{i}\n"), "expected_output": format!("{i}\n")}))
        .collect();
    let id = submit(
        &app,
        json!({"language": "python", "code": "import time\ntime.sleep(0.4)\nprint(input())", "tests": tests}),
    )
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut seen = Vec::new();
    loop {
        let (_, answer) = app.result(&id).await;
        if answer["status"] != "PENDING" {
            assert_eq!(answer["verdict"], "accepted", "{answer}");
            break;
        }
        if let Some(tests) = answer["tests"].as_array() {
            assert_eq!(answer["state"], "running");
            assert!(tests.iter().all(|t| t["verdict"] == "accepted"), "{answer}");
            seen.push(tests.len());
        }
        assert!(std::time::Instant::now() < deadline, "still pending");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        seen.iter().any(|&n| (1..8).contains(&n)),
        "no partial progress seen: {seen:?}"
    );
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
}

#[tokio::test]
async fn two_hundred_tests_in_one_job() {
    let app = app().await;
    let answer = judge(
        &app,
        json!({"language": "cpp", "code": CPP_SUM, "tests": sum_tests(200), "checker": {"type": "tokens"}}),
    )
    .await;
    assert_eq!(answer["verdict"], "accepted", "{}", answer["summary"]);
    assert_eq!(answer["summary"]["passed"], 200);
    assert_eq!(answer["tests"][199]["name"], "200");
}

#[tokio::test]
async fn bad_judge_requests_are_refused_naming_the_field() {
    let app = spawn_app(Options {
        embedded: true,
        api_flags: flags(&["--max-tests", "5", "--max-test-bytes", "100"]),
        ..Options::default()
    })
    .await;
    let base = || json!({"language": "python", "code": "print(1)"});
    let cases = [
        (json!({"tests": {"stdin": ""}}), json!(["body", "tests"])),
        (json!({"tests": []}), json!(["body", "tests"])),
        (
            json!({"tests": [{}, {}, {}, {}, {}, {}]}),
            json!(["body", "tests"]),
        ),
        (
            json!({"tests": [{"expected": "1"}]}),
            json!(["body", "tests", 0]),
        ),
        (
            json!({"tests": [{"time_limit_ms": -5}]}),
            json!(["body", "tests", 0, "time_limit_ms"]),
        ),
        (
            json!({"tests": [{}], "checker": {"type": "fuzzy"}}),
            json!(["body", "checker"]),
        ),
        (
            json!({"tests": [{}], "checker": {"type": "float", "abs": -0.1}}),
            json!(["body", "checker", "abs"]),
        ),
        (
            json!({"tests": [{}], "checker": {"type": "custom", "language": "brainfuck", "code": ""}}),
            json!(["body", "checker", "language"]),
        ),
        (
            json!({"checker": {"type": "lines"}}),
            json!(["body", "checker"]),
        ),
        (
            json!({"tests": [{}], "stop_on_first_failure": 1}),
            json!(["body", "stop_on_first_failure"]),
        ),
        (
            json!({"interactor": {"language": "python", "code": ""}}),
            json!(["body", "interactor"]),
        ),
        (
            json!({"tests": [{}], "interactor": {"language": "python", "code": ""},
                   "checker": {"type": "tokens"}}),
            json!(["body", "checker"]),
        ),
        (
            json!({"tests": [{}], "interactor": {"language": "python", "code": "", "type": "custom"}}),
            json!(["body", "interactor"]),
        ),
        (
            json!({"tests": [{}], "interactor": {"language": "cobol", "code": ""}}),
            json!(["body", "interactor", "language"]),
        ),
        (
            json!({"tests": [{}], "interactor": {"language": "python"}}),
            json!(["body", "interactor", "code"]),
        ),
        (
            json!({"tests": [{}], "interactor": "print(1)"}),
            json!(["body", "interactor"]),
        ),
        (
            json!({"tests": [{}], "interactor": {"language": "python", "code": "",
                   "files": [{"name": "input", "content": ""}]}}),
            json!(["body", "interactor", "files", 0, "name"]),
        ),
    ];
    for (extra, loc) in cases {
        let mut body = base();
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let response = app
            .post_raw(body.to_string(), Some("application/json"))
            .await;
        assert_eq!(response.status(), 422, "{body}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["detail"][0]["loc"], loc, "{body}: {answer}");
    }
    let mut body = base();
    body["tests"] = json!([{"stdin": "x".repeat(60), "expected_output": "y".repeat(41)}]);
    let response = app
        .post_raw(body.to_string(), Some("application/json"))
        .await;
    assert_eq!(response.status(), 413);
    let answer: Value = response.json().await.unwrap();
    assert!(
        answer["detail"]
            .as_str()
            .unwrap()
            .contains("the limit is 100 bytes"),
        "{answer}"
    );
    // A request without tests is as before.
    let response = app
        .post_raw(base().to_string(), Some("application/json"))
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn judge_jobs_on_two_workers_sharing_redis() {
    let app = spawn_app(Options {
        workers: 2,
        worker_flags: flags(&[
            "--time-limit-ms",
            "3000",
            "--memory-limit-mb",
            "128",
            "--concurrency",
            "1",
        ]),
        ..Options::default()
    })
    .await;
    let mut ids = Vec::new();
    for i in 0..6 {
        let mut tests = sum_tests(10);
        if i % 2 == 1 {
            tests[9]["expected_output"] = json!("nope\n");
        }
        ids.push(
            submit(
                &app,
                json!({"language": "cpp", "code": CPP_SUM, "tests": tests}),
            )
            .await,
        );
    }
    for (i, id) in ids.iter().enumerate() {
        let answer = app.wait_result(id).await;
        let expected = if i % 2 == 1 {
            "wrong_answer"
        } else {
            "accepted"
        };
        assert_eq!(answer["verdict"], expected, "{answer}");
        assert_eq!(answer["summary"]["total"], 10);
    }
    for worker in ["worker-0", "worker-1"] {
        assert!(
            app.log(worker).contains("job finished"),
            "{worker} ran no job:\n{}",
            app.log(worker)
        );
    }
}

/// A judged job longer than the visibility timeout keeps its lease: the
/// other worker never takes it over (nor runs it a second time).
#[tokio::test]
async fn a_judged_job_longer_than_the_visibility_timeout_runs_once() {
    let app = spawn_app(Options {
        workers: 2,
        worker_flags: flags(&[
            "--time-limit-ms",
            "3000",
            "--memory-limit-mb",
            "128",
            "--visibility-timeout-secs",
            "1",
        ]),
        ..Options::default()
    })
    .await;
    let tests: Vec<Value> = (0..8)
        .map(|i| json!({"stdin": format!("{i}\n"), "expected_output": format!("{i}\n")}))
        .collect();
    let answer = judge(
        &app,
        json!({"language": "python", "code": "import time\ntime.sleep(0.4)\nprint(input())", "tests": tests}),
    )
    .await;
    assert_eq!(answer["verdict"], "accepted", "{answer}");
    assert!(answer["wall_time_ms"].as_u64().unwrap() > 3_000, "{answer}");
    for worker in ["worker-0", "worker-1"] {
        let log = app.log(worker);
        assert!(
            !log.contains("redelivered") && !log.contains("reclaimed"),
            "{worker} took the job over:\n{log}"
        );
    }
}

/// The guessing game's interactor (C++): the secret in its `input` file,
/// `higher` / `lower` / `=` to each guess, at most 30 guesses.
const GUESS_INTERACTOR: &str = r#"
#include <cstdio>
int main(int argc, char **argv) {
    FILE *in = fopen(argv[1], "r");
    long secret;
    if (!in || fscanf(in, "%ld", &secret) != 1) return 3;
    for (int i = 0; i < 30; i++) {
        long guess;
        if (scanf("%ld", &guess) != 1) { fprintf(stderr, "no guess\n"); return 2; }
        if (guess == secret) { puts("="); fflush(stdout); fprintf(stderr, "ok in %d\n", i + 1); return 0; }
        puts(guess < secret ? "higher" : "lower");
        fflush(stdout);
    }
    fprintf(stderr, "too many guesses\n");
    return 1;
}
"#;

const PY_GUESSER: &str = "lo, hi = 1, 10**9\nwhile True:\n    mid = (lo + hi) // 2\n    print(mid, flush=True)\n    r = input()\n    if r == '=':\n        break\n    if r == 'higher':\n        lo = mid + 1\n    else:\n        hi = mid - 1\n";

const CPP_GUESSER: &str = "#include <iostream>\n#include <string>\nint main() { long lo = 1, hi = 1000000000; std::string r;\n  while (true) { long mid = (lo + hi) / 2; std::cout << mid << std::endl;\n    if (!(std::cin >> r) || r == \"=\") return 0;\n    if (r == \"higher\") lo = mid + 1; else hi = mid - 1; } }\n";

/// An interactive problem end to end: a C++ interactor, binary searches in
/// Python and C++ accepted on every test; a linear search (too many
/// guesses) a wrong answer named by test; a program that never answers a
/// time limit (the deadlock ends at the test's wall clock); a program that
/// crashes a runtime error. The interactor's stderr is the test's
/// `checker_message`.
#[tokio::test]
async fn an_interactive_guessing_game() {
    let app = app().await;
    let tests = json!([
        {"name": "small", "stdin": "3\n"},
        {"name": "large", "stdin": "999999937\n", "expected_output": "999999937"},
        {"name": "one", "stdin": "1\n"},
    ]);
    let interactor = json!({"language": "cpp", "code": GUESS_INTERACTOR});
    for (language, code) in [("python", PY_GUESSER), ("cpp", CPP_GUESSER)] {
        let status = judge(
            &app,
            json!({"language": language, "code": code, "tests": tests, "interactor": interactor}),
        )
        .await;
        assert_eq!(status["status"], "SUCCESS", "{language}: {status}");
        assert_eq!(status["verdict"], "accepted", "{status}");
        for test in status["tests"].as_array().unwrap() {
            assert_eq!(test["verdict"], "accepted", "{test}");
            assert!(
                test["checker_message"]
                    .as_str()
                    .unwrap()
                    .starts_with("ok in "),
                "{test}"
            );
            assert_eq!(test["stdout"], "", "{test}");
        }
    }

    let linear = "i = 1\nwhile True:\n    print(i, flush=True)\n    if input() == '=':\n        break\n    i += 1\n";
    let status = judge(
        &app,
        json!({"language": "python", "code": linear, "tests": tests, "interactor": interactor}),
    )
    .await;
    assert_eq!(status["status"], "FAILURE", "{status}");
    assert_eq!(status["verdict"], "wrong_answer", "{status}");
    assert_eq!(status["result"], "Wrong answer on test large", "{status}");
    let verdicts: Vec<&str> = status["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(
        verdicts,
        ["accepted", "wrong_answer", "accepted"],
        "{status}"
    );
    assert_eq!(status["tests"][1]["checker_message"], "too many guesses\n");

    let silent = "import sys\nsys.stdin.read()\n";
    let status = judge(
        &app,
        json!({"language": "python", "code": silent, "time_limit_ms": 1000,
               "tests": [{"stdin": "5\n"}], "interactor": interactor}),
    )
    .await;
    assert_eq!(status["verdict"], "time_limit", "{status}");
    let time_ms = status["tests"][0]["time_ms"].as_u64().unwrap();
    assert!((1000..2500).contains(&time_ms), "{status}");

    let crash = "print(5, flush=True)\nraise SystemExit(3)\n";
    let status = judge(
        &app,
        json!({"language": "python", "code": crash, "tests": [{"stdin": "5\n"}],
               "interactor": interactor}),
    )
    .await;
    assert_eq!(status["verdict"], "runtime_error", "{status}");
}

/// A worker killed in the middle of a judged job: the job is redelivered
/// after the visibility timeout to a worker started afterwards, judged
/// again from its first test, and its one result holds every test once.
#[tokio::test]
async fn a_judged_job_whose_worker_is_killed_is_judged_again_once() {
    let mut app = spawn_app(Options {
        workers: 1,
        worker_flags: flags(&[
            "--time-limit-ms",
            "3000",
            "--memory-limit-mb",
            "128",
            "--visibility-timeout-secs",
            "2",
        ]),
        ..Options::default()
    })
    .await;
    let tests: Vec<Value> = (0..10)
        .map(|i| json!({"stdin": format!("{i}\n"), "expected_output": format!("{i}\n")}))
        .collect();
    let id = submit(
        &app,
        json!({"language": "python", "code": "import time\ntime.sleep(0.25)\nprint(input())", "tests": tests}),
    )
    .await;
    // Kill the worker once a few tests are done.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, status) = app.result(&id).await;
        let done = status["tests"].as_array().map_or(0, Vec::len);
        if done >= 2 {
            assert_eq!(status["status"], "PENDING", "{status}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no progress: {status}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    app.signal("worker-0", "KILL");
    app.wait_exit("worker-0", std::time::Duration::from_secs(10))
        .await;
    app.start_worker("worker-1");
    let answer = app.wait_result(&id).await;
    assert_eq!(answer["verdict"], "accepted", "{answer}");
    let names: Vec<&str> = answer["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (1..=10).map(|n| n.to_string()).collect();
    assert_eq!(names, expected, "{answer}");
    assert_eq!(answer["summary"]["passed"], 10, "{answer}");
    let log = app.log("worker-1");
    assert!(
        log.contains("running a redelivered job") && log.contains(&id),
        "worker-1 did not take the job over:\n{log}"
    );
}

/// An interactive job takes one worker slot like any job (its interactor
/// runs in the slot's companion): on a worker with two slots, a judged job
/// submitted while an interactive one deadlocks for seconds runs at once
/// and is judged within its own budget, and a one-slot worker runs
/// interactive jobs too.
#[tokio::test]
async fn an_interactive_job_takes_no_slot_from_other_jobs() {
    let app = spawn_app(Options {
        embedded: true,
        worker_flags: flags(&[
            "--time-limit-ms",
            "3000",
            "--memory-limit-mb",
            "128",
            "--concurrency",
            "2",
        ]),
        ..Options::default()
    })
    .await;
    let waiting = "import sys\nsys.stdin.read()\n";
    let stuck = submit(
        &app,
        json!({"language": "python", "code": waiting, "time_limit_ms": 2000,
               "tests": [{"stdin": "1"}, {"stdin": "2"}, {"stdin": "3"}],
               "interactor": {"language": "python", "code": waiting}}),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let begun = std::time::Instant::now();
    let answer = judge(
        &app,
        json!({"language": "python", "code": "print(1)",
               "tests": [{"expected_output": "1", "time_limit_ms": 1000}]}),
    )
    .await;
    assert_eq!(answer["verdict"], "accepted", "{answer}");
    assert!(
        begun.elapsed() < std::time::Duration::from_secs(3),
        "waited for the interactive job: {:?}",
        begun.elapsed()
    );
    let (_, status) = app.result(&stuck).await;
    assert_eq!(status["status"], "PENDING", "{status}");
    let stuck = app.wait_result(&stuck).await;
    assert_eq!(stuck["verdict"], "time_limit", "{stuck}");

    let single = spawn_app(Options {
        embedded: true,
        worker_flags: flags(&["--concurrency", "1"]),
        ..Options::default()
    })
    .await;
    let answer = judge(
        &single,
        json!({"language": "python", "code": PY_GUESSER, "tests": [{"stdin": "42"}],
               "interactor": {"language": "cpp", "code": GUESS_INTERACTOR}}),
    )
    .await;
    assert_eq!(answer["verdict"], "accepted", "{answer}");
}
