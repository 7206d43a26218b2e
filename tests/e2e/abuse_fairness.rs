//! Abuse of the API's memory and of other clients' share of the queue
//! (issue 11, items 3 to 5), end to end against the real binary:
//!
//! - stdin has a size limit of its own (`413` naming the field);
//! - the in-process store keeps results within a byte budget, evicting the
//!   oldest finished ones (then `404`);
//! - a compile error's diagnostics are stored once, not twice;
//! - a client at its cap of unfinished jobs gets `429` with `Retry-After`
//!   while another client (another loopback address) still gets in, and the
//!   cap is released when its jobs finish;
//! - `?wait=` and `DELETE` have a rate limit of their own;
//! - with API keys, a task belongs to its key: another key gets `404`;
//! - serving beyond loopback with neither keys nor a rate limit is warned of.

use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use code_runner_testkit::{unique_prefix, RedisServer};
use serde_json::{json, Value};

use crate::helpers::{free_port, spawn_app, Options, TestApp, BIN};

fn limited() -> Vec<String> {
    ["--time-limit-ms", "3000", "--memory-limit-mb", "128"]
        .map(String::from)
        .to_vec()
}

fn flags(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// An HTTP client whose connections come from `ip` (any address of
/// 127.0.0.0/8 works on loopback), so one test can be several clients.
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// `POST /run-code` with `body` from `client`, optionally with an API key.
async fn post(
    app: &TestApp,
    client: &reqwest::Client,
    key: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut request = client.post(format!("{}/run-code", app.address)).json(&body);
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    request.send().await.expect("POST /run-code")
}

async fn task_id(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["task_id"].as_str().unwrap().to_owned()
}

/// Polls a task (with `key`) until it is finished.
async fn finished(app: &TestApp, key: Option<&str>, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut request = app.client.get(format!("{}/results/{id}", app.address));
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        if body["status"] != "PENDING" {
            return body;
        }
        assert!(Instant::now() < deadline, "task {id} still pending");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The default stdin limit is 256 KiB: one byte more is refused before
/// anything is queued, with a `413` that names the field; at the limit the
/// program reads all of it.
#[tokio::test]
async fn stdin_over_its_own_limit_is_413_naming_the_field() {
    let app = spawn_app(Options {
        worker_flags: limited(),
        ..Options::default()
    })
    .await;
    let limit = 256 * 1024;
    let code = "import sys\nprint(len(sys.stdin.read()))";
    let response = post(
        &app,
        &app.client,
        None,
        json!({"language": "python", "code": code, "stdin": "x".repeat(limit + 1)}),
    )
    .await;
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.starts_with("stdin is"), "{detail}");
    assert!(detail.contains(&limit.to_string()), "{detail}");

    let response = post(
        &app,
        &app.client,
        None,
        json!({"language": "python", "code": code, "stdin": "x".repeat(limit)}),
    )
    .await;
    let id = task_id(response).await;
    let body = finished(&app, None, &id).await;
    assert_eq!(body["stdout"], format!("{limit}\n"), "{body}");
}

/// `serve` with a 3 MiB store: five results of 1 MB each leave the three
/// newest; the two oldest answer `404`, as an unknown task does.
#[tokio::test]
async fn the_embedded_store_evicts_the_oldest_results_at_its_budget() {
    let app = spawn_app(Options {
        embedded: true,
        worker_flags: flags(&["--time-limit-ms", "5000"]),
        common_flags: flags(&["--max-store-bytes", "3145728"]),
        ..Options::default()
    })
    .await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let code = format!("import sys\nsys.stdout.write('{n}' * 1_000_000)");
        let id = app.submit("python", &code).await;
        let body = app.wait_result(&id).await;
        assert_eq!(body["status"], "SUCCESS", "{}", body["result"]);
        ids.push(id);
    }
    for (n, id) in ids.iter().enumerate() {
        let (status, body) = app.result(id).await;
        if n < 2 {
            assert_eq!(status, 404, "result {n} was kept");
            assert_eq!(body, json!({"detail": "Task not found"}));
        } else {
            assert_eq!(status, 200, "result {n} was evicted");
            assert_eq!(body["stdout"].as_str().unwrap().len(), 1_000_000);
        }
    }
}

/// A compile error's diagnostics are stored once (`compile_output`), not a
/// second time in the failure message; the answer still says both.
#[tokio::test]
async fn a_compile_error_stores_its_diagnostics_once() {
    let app = spawn_app(Options {
        worker_flags: limited(),
        ..Options::default()
    })
    .await;
    let mut code = String::from("int main(void) {\n");
    for n in 0..1500 {
        code.push_str(&format!("    undefined_name_{n} = {n};\n"));
    }
    code.push_str("}\n");
    let id = app.submit("c", &code).await;
    let body = app.wait_result(&id).await;
    assert_eq!(body["verdict"], "compile_error", "{body}");
    let diagnostics = body["compile_output"].as_str().unwrap();
    assert!(diagnostics.len() > 100_000, "{}", diagnostics.len());
    let message = body["result"].as_str().unwrap();
    assert!(message.starts_with("Compilation failed"), "{message}");
    assert!(message.contains("undefined_name_1499"));

    let redis = app.redis.as_ref().unwrap();
    let stored = Command::new("redis-cli")
        .args(["-p", &redis.port().to_string(), "STRLEN"])
        .arg(format!("{}:task:{id}", app.prefix))
        .output()
        .expect("redis-cli");
    let stored: usize = String::from_utf8_lossy(&stored.stdout)
        .trim()
        .parse()
        .unwrap();
    assert!(
        stored < diagnostics.len() * 3 / 2,
        "{stored} bytes stored for {} bytes of diagnostics",
        diagnostics.len()
    );
}

/// Two unfinished jobs per client: the third is `429` with `Retry-After`,
/// another client (127.0.0.2) still gets in, and once the first client's
/// jobs finish it may submit again.
async fn a_client_at_its_cap_waits_while_others_get_in(embedded: bool) {
    let app = spawn_app(Options {
        embedded,
        worker_flags: [limited(), flags(&["--concurrency", "4"])].concat(),
        api_flags: flags(&["--max-unfinished-per-client", "2"]),
        ..Options::default()
    })
    .await;
    let a = client_from("127.0.0.1");
    let b = client_from("127.0.0.2");
    let sleeper = json!({"language": "python", "code": "import time\ntime.sleep(1)\nprint('up')"});
    let first = task_id(post(&app, &a, None, sleeper.clone()).await).await;
    let second = task_id(post(&app, &a, None, sleeper.clone()).await).await;
    let refused = post(&app, &a, None, sleeper.clone()).await;
    assert_eq!(refused.status(), 429);
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let body: Value = refused.json().await.unwrap();
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("2 unfinished"), "{detail}");

    let other = task_id(post(&app, &b, None, sleeper.clone()).await).await;
    for id in [&first, &second, &other] {
        assert_eq!(finished(&app, None, id).await["stdout"], "up\n");
    }
    // Finished jobs no longer count.
    task_id(post(&app, &a, None, sleeper.clone()).await).await;
    task_id(post(&app, &a, None, sleeper).await).await;
}

#[tokio::test]
async fn a_client_at_its_cap_gets_429_while_another_gets_in_redis() {
    a_client_at_its_cap_waits_while_others_get_in(false).await;
}

#[tokio::test]
async fn a_client_at_its_cap_gets_429_while_another_gets_in_embedded() {
    a_client_at_its_cap_waits_while_others_get_in(true).await;
}

/// With API keys, key B sees key A's task as unknown: `GET`, `GET ?wait=`
/// and `DELETE` all answer `404`, before and after the task finished.
async fn a_task_belongs_to_its_key(embedded: bool) {
    let (key_a, key_b) = ("key-a-0000000001", "key-b-0000000002");
    let app = spawn_app(Options {
        embedded,
        worker_flags: limited(),
        api_flags: flags(&["--api-keys", &format!("{key_a},{key_b}")]),
        ..Options::default()
    })
    .await;
    let sleeper =
        json!({"language": "python", "code": "import time\ntime.sleep(1)\nprint('mine')"});
    let id = task_id(post(&app, &app.client, Some(key_a), sleeper).await).await;
    let url = format!("{}/results/{id}", app.address);
    let as_b = |request: reqwest::RequestBuilder| request.header("x-api-key", key_b).send();
    let not_found = json!({"detail": "Task not found"});
    for request in [
        app.client.get(&url),
        app.client.get(format!("{url}?wait=1")),
        app.client.delete(&url),
    ] {
        let response = as_b(request).await.unwrap();
        assert_eq!(response.status(), 404);
        assert_eq!(response.json::<Value>().await.unwrap(), not_found);
    }
    // Key B's DELETE cancelled nothing: A's program ran to its end.
    assert_eq!(finished(&app, Some(key_a), &id).await["stdout"], "mine\n");
    for request in [app.client.get(&url), app.client.delete(&url)] {
        assert_eq!(as_b(request).await.unwrap().status(), 404);
    }
    // A's own DELETE of its finished task: 409, as before.
    let response = app
        .client
        .delete(&url)
        .header("x-api-key", key_a)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
}

#[tokio::test]
async fn another_key_gets_404_for_a_task_redis() {
    a_task_belongs_to_its_key(false).await;
}

#[tokio::test]
async fn another_key_gets_404_for_a_task_embedded() {
    a_task_belongs_to_its_key(true).await;
}

/// With a rate limit of 2 submissions a minute, `GET ?wait=` and `DELETE`
/// count against a bucket of their own (4 × the rate: 8 at once): the
/// ninth is `429`, while a plain `GET` and the submission budget are
/// untouched.
#[tokio::test]
async fn wait_and_delete_have_a_rate_limit_of_their_own() {
    let app = spawn_app(Options {
        worker_flags: limited(),
        api_flags: flags(&["--rate-limit-per-minute", "2"]),
        ..Options::default()
    })
    .await;
    let id = task_id(
        post(
            &app,
            &app.client,
            None,
            json!({"language": "python", "code": "print(1)"}),
        )
        .await,
    )
    .await;
    let url = format!("{}/results/{id}", app.address);
    for n in 0..8 {
        let request = if n == 7 {
            app.client.delete(&url)
        } else {
            app.client.get(format!("{url}?wait=5"))
        };
        let status = request.send().await.unwrap().status();
        assert!(status == 200 || status == 409, "request {n}: {status}");
    }
    let refused = app
        .client
        .get(format!("{url}?wait=5"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let refused = app.client.delete(&url).send().await.unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(app.client.get(&url).send().await.unwrap().status(), 200);
    let response = post(
        &app,
        &app.client,
        None,
        json!({"language": "python", "code": "print(2)"}),
    )
    .await;
    assert_eq!(response.status(), 200, "the submission budget was spent");
}

/// Starts `code-runner api` bound to `bind` with `extra` flags, waits until
/// it answers, and returns its stderr log.
async fn api_log(redis: &RedisServer, bind: &str, port: u16, extra: &[&str]) -> String {
    let log_path = std::env::temp_dir().join(format!("code-runner-e2e-{}.log", unique_prefix()));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(BIN)
        .args(["api", "--bind", &format!("{bind}:{port}")])
        .args([
            "--redis-url",
            &redis.url(),
            "--key-prefix",
            &unique_prefix(),
        ])
        .args(extra)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !client
        .get(format!("http://127.0.0.1:{port}/health"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "api did not start");
        assert!(child.try_wait().unwrap().is_none(), "api exited");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log_path).unwrap();
    let _ = std::fs::remove_file(&log_path);
    text
}

#[tokio::test]
async fn serving_beyond_loopback_without_keys_or_rate_limit_is_warned_of() {
    let redis = RedisServer::start();
    let warning = "beyond loopback";
    let open = api_log(&redis, "0.0.0.0", free_port(), &[]).await;
    assert!(open.contains(warning) && open.contains("WARN"), "{open}");
    let limited = api_log(
        &redis,
        "0.0.0.0",
        free_port(),
        &["--rate-limit-per-minute", "60"],
    )
    .await;
    assert!(!limited.contains(warning), "{limited}");
    let local = api_log(&redis, "127.0.0.1", free_port(), &[]).await;
    assert!(!local.contains(warning), "{local}");
}
