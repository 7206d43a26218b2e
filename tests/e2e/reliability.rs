//! No job lost (issue 4), with real processes: a worker killed mid-job, Redis
//! down and restarting, graceful shutdown of workers and the API, the maximum
//! queue length, cancellation and result expiry.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{spawn_app, Options, TestApp};

fn flags(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A python job that sleeps, then prints `token`.
fn sleeper(seconds: f64, token: &str) -> String {
    format!("import time\ntime.sleep({seconds})\nprint('{token}')")
}

/// Polls `GET /results/{id}` until it is final, tolerating 503s (Redis down).
async fn wait_final(app: &TestApp, id: &str, cap: Duration) -> Value {
    let deadline = Instant::now() + cap;
    loop {
        let response = app
            .client
            .get(format!("{}/results/{id}", app.address))
            .send()
            .await;
        if let Ok(response) = response {
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            match status {
                200 if body["status"] != "PENDING" => return body,
                200 | 503 => {}
                other => panic!("GET /results/{id}: {other} {body}"),
            }
        }
        assert!(
            Instant::now() < deadline,
            "task {id} not final within {cap:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until a worker's log shows it started `id`'s job (the sandbox is
/// running it).
async fn wait_running(app: &TestApp, worker: &str, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !app
        .log(worker)
        .lines()
        .any(|l| l.contains(id) && l.contains("job started"))
    {
        assert!(
            Instant::now() < deadline,
            "{worker} never started {id}:\n{}",
            app.log(worker)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn delete(app: &TestApp, id: &str) -> (u16, Value) {
    let response = app
        .client
        .delete(format!("{}/results/{id}", app.address))
        .send()
        .await
        .expect("DELETE /results");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

#[tokio::test]
async fn a_killed_workers_job_is_finished_by_the_next_worker() {
    let mut app = spawn_app(Options {
        worker_flags: flags(&["--visibility-timeout-secs", "2"]),
        ..Options::default()
    })
    .await;
    let id = app.submit("python", &sleeper(3.0, "finished-once")).await;
    wait_running(&app, "worker-0", &id).await;
    app.signal("worker-0", "KILL");
    app.wait_exit("worker-0", Duration::from_secs(5)).await;
    // The job's sandbox died with its worker (bwrap --die-with-parent).
    app.start_worker("worker-1");

    let body = wait_final(&app, &id, Duration::from_secs(30)).await;
    assert_eq!(body["status"], "SUCCESS", "{body}");
    assert_eq!(body["result"]["output"], "finished-once\n");
    let log = app.log("worker-1");
    assert!(
        log.contains("reclaimed a job whose delivery timed out") && log.contains(&id),
        "{log}"
    );
}

#[tokio::test]
async fn redis_down_answers_503_at_once_and_everything_recovers() {
    let mut app = spawn_app(Options {
        aof: true,
        worker_flags: flags(&["--concurrency", "1"]),
        ..Options::default()
    })
    .await;
    // One job runs while Redis goes down; two wait in the queue behind it.
    let running = app.submit("python", &sleeper(2.0, "ran-through")).await;
    wait_running(&app, "worker-0", &running).await;
    let queued: Vec<String> = vec![
        app.submit("python", "print('queued-1')").await,
        app.submit("python", "print('queued-2')").await,
    ];

    app.redis_mut().stop();
    for _ in 0..3 {
        let t0 = Instant::now();
        let response = app
            .client
            .post(format!("{}/run-code", app.address))
            .json(&json!({"language": "python", "code": "print(1)"}))
            .send()
            .await
            .unwrap();
        let took = t0.elapsed();
        assert_eq!(response.status(), 503);
        let body: Value = response.json().await.unwrap();
        assert!(body["detail"].is_string(), "{body}");
        assert!(took < Duration::from_millis(1500), "POST took {took:?}");

        let t0 = Instant::now();
        let (status, body) = app.result(&queued[0]).await;
        let took = t0.elapsed();
        assert_eq!(status, 503, "{body}");
        assert!(body["detail"].is_string(), "{body}");
        assert!(took < Duration::from_millis(1500), "GET took {took:?}");
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    app.redis_mut().start_again();

    // The running job's result is stored once Redis is back; the queued jobs
    // survived the restart (AOF) and the worker, reconnected, runs them.
    let body = wait_final(&app, &running, Duration::from_secs(30)).await;
    assert_eq!(body["result"]["output"], "ran-through\n", "{body}");
    for (n, id) in queued.iter().enumerate() {
        let body = wait_final(&app, id, Duration::from_secs(30)).await;
        assert_eq!(
            body["result"]["output"],
            format!("queued-{}\n", n + 1),
            "{body}"
        );
    }
    // New work is accepted again.
    let body = app.run("python", "print('after')").await;
    assert_eq!(body["result"]["output"], "after\n");
}

#[tokio::test]
async fn sigterm_lets_the_worker_finish_its_jobs_and_exit_0() {
    let mut app = spawn_app(Options {
        worker_flags: flags(&["--shutdown-grace-secs", "20"]),
        ..Options::default()
    })
    .await;
    let id = app
        .submit("python", &sleeper(2.0, "finished-in-grace"))
        .await;
    wait_running(&app, "worker-0", &id).await;
    app.signal("worker-0", "TERM");
    let status = app.wait_exit("worker-0", Duration::from_secs(20)).await;
    assert!(status.success(), "worker exited with {status}");
    let (code, body) = app.result(&id).await;
    assert_eq!(code, 200);
    assert_eq!(body["status"], "SUCCESS", "{body}");
    assert_eq!(body["result"]["output"], "finished-in-grace\n");

    // A job queued now waits for a worker: the stopped one took nothing new.
    let later = app.submit("python", "print('later')").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.result(&later).await.1["status"], "PENDING");
}

#[tokio::test]
async fn a_job_unfinished_at_the_end_of_the_grace_period_goes_to_another_worker_at_once() {
    let mut app = spawn_app(Options {
        // A visibility timeout far longer than the test: only the release
        // can make the job come back in time.
        worker_flags: flags(&[
            "--shutdown-grace-secs",
            "1",
            "--visibility-timeout-secs",
            "600",
        ]),
        ..Options::default()
    })
    .await;
    let id = app.submit("python", &sleeper(3.0, "second-try")).await;
    wait_running(&app, "worker-0", &id).await;
    app.signal("worker-0", "TERM");
    let status = app.wait_exit("worker-0", Duration::from_secs(10)).await;
    assert!(status.success(), "worker exited with {status}");
    assert_eq!(app.result(&id).await.1["status"], "PENDING");

    app.start_worker("worker-1");
    let body = wait_final(&app, &id, Duration::from_secs(30)).await;
    assert_eq!(body["result"]["output"], "second-try\n", "{body}");
}

#[tokio::test]
async fn sigterm_stops_the_api_cleanly() {
    let mut app = spawn_app(Options::default()).await;
    let id = app.submit("python", "print('x')").await;
    app.wait_result(&id).await;
    app.signal("api", "TERM");
    let status = app.wait_exit("api", Duration::from_secs(10)).await;
    assert!(status.success(), "api exited with {status}");
}

#[tokio::test]
async fn a_full_queue_answers_503_with_retry_after_and_queues_nothing() {
    let app = spawn_app(Options {
        workers: 0,
        common_flags: flags(&["--max-queue-length", "3"]),
        ..Options::default()
    })
    .await;
    let mut accepted = Vec::new();
    for _ in 0..3 {
        accepted.push(app.submit("python", "print(1)").await);
    }
    for _ in 0..2 {
        let response = app
            .client
            .post(format!("{}/run-code", app.address))
            .json(&json!({"language": "python", "code": "print(1)"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 503);
        let retry_after = response
            .headers()
            .get("retry-after")
            .expect("Retry-After header")
            .to_str()
            .unwrap()
            .parse::<u64>()
            .expect("Retry-After in seconds");
        assert!(retry_after >= 1);
        let body: Value = response.json().await.unwrap();
        let detail = body["detail"].as_str().expect("detail");
        assert!(detail.contains("full"), "{detail}");
    }
    // Nothing was queued by the refused requests.
    let redis = app.redis.as_ref().unwrap();
    let xlen = std::process::Command::new("redis-cli")
        .args(["-p", &redis.port().to_string(), "XLEN"])
        .arg(format!("{}:jobs", app.prefix))
        .output()
        .expect("redis-cli");
    assert_eq!(String::from_utf8_lossy(&xlen.stdout).trim(), "3");
}

#[tokio::test]
async fn delete_cancels_queued_and_running_jobs() {
    let app = spawn_app(Options {
        worker_flags: flags(&["--concurrency", "1"]),
        ..Options::default()
    })
    .await;
    let running = app.submit("python", &sleeper(60.0, "never")).await;
    wait_running(&app, "worker-0", &running).await;
    let queued = app.submit("python", "print('never either')").await;

    let (status, body) = delete(&app, &queued).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "FAILURE");
    assert_eq!(body["verdict"], "cancelled");
    assert_eq!(body["result"], "Cancelled");

    let (status, body) = delete(&app, &running).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["verdict"], "cancelled");

    // The running job is stopped (its sandbox killed) within about a second:
    // by its lease's watch, or, when the cancel came before the worker's
    // start mark reached Redis (`begin`, sent beside the job's start), at
    // that mark's answer.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !app.log("worker-0").lines().any(|l| {
        l.contains(&running)
            && (l.contains("stopped it") || l.contains("task already final; its job stopped"))
    }) {
        assert!(
            Instant::now() < deadline,
            "the running job was not stopped:\n{}",
            app.log("worker-0")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for id in [&running, &queued] {
        let (_, body) = app.result(id).await;
        assert_eq!(body["verdict"], "cancelled", "{body}");
        assert_eq!(body["status"], "FAILURE");
    }
    // The queued job never ran to an end: the worker asks whether a task
    // is still wanted as its job starts (in parallel with the start, one
    // Redis round trip it makes anyway to mark the job running), and stops
    // a cancelled one at the answer, storing nothing.
    // The worker may be taking it just now: wait for that answer.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = app.log("worker-0");
        let lines = || log.lines().filter(|l| l.contains(&queued));
        assert!(!lines().any(|l| l.contains("job finished")), "{log}");
        if !lines().any(|l| l.contains("job started"))
            || lines().any(|l| l.contains("task already final"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "{log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // (That the stopped job's sandbox slot is then reused is checked by
    // crates/worker/tests/stopping.rs.)

    // Already final: 409, result unchanged. Unknown or malformed: 404.
    let (status, body) = delete(&app, &running).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["detail"].is_string());
    let (status, _) = delete(&app, "5b0f3a86-2f4c-4a43-9b54-7a0c8a3b1d11").await;
    assert_eq!(status, 404);
    let (status, _) = delete(&app, "not-a-task").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn results_expire_after_their_ttl() {
    let app = spawn_app(Options {
        common_flags: flags(&["--result-ttl-secs", "1"]),
        ..Options::default()
    })
    .await;
    let id = app.submit("python", "print('short-lived')").await;
    let body = app.wait_result(&id).await;
    assert_eq!(body["result"]["output"], "short-lived\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = app.result(&id).await;
        if status == 404 {
            assert!(body["detail"].is_string(), "{body}");
            break;
        }
        assert_eq!(status, 200);
        assert!(Instant::now() < deadline, "the result never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
