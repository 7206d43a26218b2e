//! `DELETE /results/{id}` and the full-queue answer, in-process on the
//! embedded queue (the same router `code-runner serve` runs); the Redis
//! deployment is covered end to end in `tests/e2e/reliability.rs`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use code_runner_api::{router, ApiConfig, AppState, SupportedLanguage};
use code_runner_queue::{EmbeddedQueue, JobResult, Queue, TaskId, Verdict};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

fn app(queue: Arc<EmbeddedQueue>) -> Router {
    let python = SupportedLanguage {
        name: "python".into(),
        version: "test".into(),
        aliases: Vec::new(),
        file_name: "main.py".into(),
    };
    router(AppState::new(queue, vec![python], ApiConfig::default()))
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, header::HeaderMap, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).expect("a JSON body");
    (status, headers, body)
}

async fn submit(app: &Router) -> (StatusCode, header::HeaderMap, Value) {
    let body = json!({"language": "python", "code": "print(1)"}).to_string();
    let request = Request::post("/run-code")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap();
    send(app, request).await
}

async fn delete(app: &Router, id: &str) -> (StatusCode, Value) {
    let request = Request::delete(format!("/results/{id}"))
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = send(app, request).await;
    (status, body)
}

#[tokio::test]
async fn delete_cancels_a_pending_task_once() {
    let queue = Arc::new(EmbeddedQueue::new(Duration::from_secs(60)));
    let app = app(queue.clone());
    let (status, _, body) = submit(&app).await;
    assert_eq!(status, StatusCode::OK);
    let id = body["task_id"].as_str().unwrap().to_owned();

    let (status, body) = delete(&app, &id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "FAILURE");
    assert_eq!(body["result"], "Cancelled");
    assert_eq!(body["verdict"], "cancelled");
    assert_eq!(body["task_id"], id.as_str());

    // The job is never handed to a worker.
    let got = queue
        .reserve("w", 10, Duration::from_millis(50))
        .await
        .unwrap();
    assert!(got.is_empty(), "{got:?}");

    // Cancelling again: 409, and the result stays.
    let (status, body) = delete(&app, &id).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        body,
        json!({"detail": "Task already finished; its result is unchanged"})
    );
    let request = Request::get(format!("/results/{id}"))
        .body(Body::empty())
        .unwrap();
    let (_, _, body) = send(&app, request).await;
    assert_eq!(body["verdict"], "cancelled");
}

#[tokio::test]
async fn delete_of_a_finished_task_is_409_and_changes_nothing() {
    let queue = Arc::new(EmbeddedQueue::new(Duration::from_secs(60)));
    let app = app(queue.clone());
    let (_, _, body) = submit(&app).await;
    let id = body["task_id"].as_str().unwrap().to_owned();
    let delivery = queue
        .reserve("w", 1, Duration::from_secs(5))
        .await
        .unwrap()
        .remove(0);
    let mut result = JobResult::internal_error("", 1);
    result.verdict = Verdict::Ok;
    result.message = None;
    result.stdout = "1\n".into();
    queue.complete(&delivery, &result).await.unwrap();

    let (status, _) = delete(&app, &id).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let request = Request::get(format!("/results/{id}"))
        .body(Body::empty())
        .unwrap();
    let (_, _, body) = send(&app, request).await;
    assert_eq!(body["status"], "SUCCESS");
    assert_eq!(body["result"], json!({"output": "1\n"}));
}

#[tokio::test]
async fn delete_of_an_unknown_or_malformed_id_is_404() {
    let app = app(Arc::new(EmbeddedQueue::new(Duration::from_secs(60))));
    for id in [TaskId::new().to_string(), "not-a-task".to_owned()] {
        let (status, body) = delete(&app, &id).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body, json!({"detail": "Task not found"}));
    }
}

#[tokio::test]
async fn a_full_queue_answers_503_with_retry_after() {
    let queue = Arc::new(EmbeddedQueue::with_max_queue_length(
        Duration::from_secs(60),
        Some(2),
    ));
    let app = app(queue.clone());
    for _ in 0..2 {
        assert_eq!(submit(&app).await.0, StatusCode::OK);
    }
    let (status, headers, body) = submit(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers[header::RETRY_AFTER], "5");
    assert_eq!(
        body,
        json!({"detail": "the queue is full (2 jobs waiting or running); try again later"})
    );
    let queued = queue
        .reserve("w", 10, Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(queued.len(), 2, "the refused job was queued");
}
