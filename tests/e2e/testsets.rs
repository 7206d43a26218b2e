//! Test sets end to end (SPEC §7): `POST /testsets` stores a set and answers
//! its id (the same for the same tests), `GET /testsets/{id}` reads it back
//! (404 when unknown), and a run request naming the id is judged on it; an
//! unknown or expired id is a 422 at submit, a body over
//! `--max-testset-bytes` a 413.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{spawn_app, Options, TestApp};

const PY_SUM: &str = "a, b = map(int, input().split())\nprint(a + b)";

fn flags(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

async fn app(api_flags: &[&str]) -> TestApp {
    spawn_app(Options {
        embedded: true,
        worker_flags: flags(&["--time-limit-ms", "3000", "--memory-limit-mb", "128"]),
        api_flags: flags(api_flags),
        ..Options::default()
    })
    .await
}

fn sum_tests(count: usize) -> Value {
    (0..count)
        .map(|i| json!({"stdin": format!("{i} {}\n", i * 2), "expected_output": format!("{}\n", i * 3)}))
        .collect()
}

async fn post(app: &TestApp, path: &str, body: &Value) -> (u16, Value) {
    let response = app
        .client
        .post(format!("{}{path}", app.address))
        .json(body)
        .send()
        .await
        .expect("POST");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    let response = app
        .client
        .get(format!("{}{path}", app.address))
        .send()
        .await
        .expect("GET");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn store(app: &TestApp, tests: &Value) -> String {
    let (status, answer) = post(app, "/testsets", &json!({ "tests": tests })).await;
    assert_eq!(status, 200, "{answer}");
    answer["testset_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_stored_set_has_one_id_reads_back_and_judges_a_run() {
    let app = app(&[]).await;
    let tests = sum_tests(3);
    let id = store(&app, &tests).await;
    assert!(id.starts_with("sha256:") && id.len() == 7 + 64, "{id}");
    // The same tests, spelt otherwise (defaults written out, keys reordered,
    // an ignored field): the same canonical set, the same id.
    let spelt: Vec<Value> = tests
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"expected_output": t["expected_output"], "name": (i + 1).to_string(), "stdin": t["stdin"], "args": []}))
        .collect();
    let (status, answer) = post(&app, "/testsets", &json!({"tests": spelt, "note": "x"})).await;
    assert_eq!(
        (status, answer["testset_id"].as_str()),
        (200, Some(id.as_str()))
    );
    let (status, other) = post(&app, "/testsets", &json!({"tests": sum_tests(2)})).await;
    assert_eq!(status, 200);
    assert_ne!(other["testset_id"].as_str(), Some(id.as_str()));

    let (status, answer) = get(&app, &format!("/testsets/{id}")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["testset_id"], json!(id));
    assert_eq!(answer["tests"].as_array().unwrap().len(), 3);
    assert_eq!(
        answer["tests"][1],
        json!({"name": "2", "stdin": "1 2\n", "expected_output": "3\n"})
    );
    let unknown = format!("sha256:{}", "0".repeat(64));
    assert_eq!(get(&app, &format!("/testsets/{unknown}")).await.0, 404);
    assert_eq!(get(&app, "/testsets/not-an-id").await.0, 404);

    // A run naming the set is judged on its tests.
    let (status, answer) = post(
        &app,
        "/run-code?wait=true",
        &json!({"language": "python", "code": PY_SUM, "tests": id}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let answer = if answer["status"] == "PENDING" {
        app.wait_result(answer["task_id"].as_str().unwrap()).await
    } else {
        answer
    };
    assert_eq!(answer["verdict"], "accepted", "{answer}");
    assert_eq!(answer["summary"]["total"], 3, "{answer}");
    assert_eq!(answer["summary"]["passed"], 3, "{answer}");

    // An unknown id, or not an id at all: 422 at the field, nothing queued.
    for bad in [json!(unknown), json!("sha256:xyz")] {
        let (status, answer) = post(
            &app,
            "/run-code",
            &json!({"language": "python", "code": PY_SUM, "tests": bad}),
        )
        .await;
        assert_eq!(status, 422, "{answer}");
        assert_eq!(
            answer["detail"][0]["loc"],
            json!(["body", "tests"]),
            "{answer}"
        );
    }
}

#[tokio::test]
async fn bad_sets_are_422_naming_the_field_and_large_ones_413() {
    let app = app(&["--max-testset-bytes", "2000", "--max-tests", "5"]).await;
    let (status, answer) = post(&app, "/testsets", &json!({"tests": [{"stdin": 5}]})).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(
        answer["detail"][0]["loc"],
        json!(["body", "tests", 0, "stdin"])
    );
    let (status, answer) = post(&app, "/testsets", &json!({})).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["detail"][0]["loc"], json!(["body", "tests"]));
    let (status, answer) = post(&app, "/testsets", &json!({"tests": sum_tests(6)})).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["detail"][0]["type"], "too_long");
    // Over the set limit, though far under the run body limit: 413, from
    // the declared length.
    let big = json!({"tests": [{"stdin": "x".repeat(3000)}]});
    let (status, answer) = post(&app, "/testsets", &big).await;
    assert_eq!(status, 413, "{answer}");
}

#[tokio::test]
async fn an_expired_set_is_422_at_submit() {
    let app = app(&["--testset-ttl-secs", "1"]).await;
    let id = store(&app, &sum_tests(1)).await;
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(get(&app, &format!("/testsets/{id}")).await.0, 404);
    let (status, answer) = post(
        &app,
        "/run-code",
        &json!({"language": "python", "code": PY_SUM, "tests": id}),
    )
    .await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["detail"][0]["loc"], json!(["body", "tests"]));
    assert!(
        answer["detail"][0]["msg"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{answer}"
    );
}
