//! The router and one handler per route.
//!
//! Handlers are kept to the work a request needs: `POST /run-code` reads the
//! body once, validates it, hands one job to the queue and answers with its
//! id. There is no per-request logging at `info`: at tens of thousands of
//! requests a second it would cost more than the request.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use code_runner_queue::{Job, TaskId};

use crate::error::ApiError;
use crate::request::{ensure_json_content_type, parse_run_request};
use crate::response::{TaskCreated, TaskStatus};
use crate::state::AppState;

/// Builds the API's router. It serves nothing by itself: [`crate::serve`]
/// does, and tests call it in-process.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config().max_body_bytes();
    Router::new()
        .route("/run-code", post(run_code))
        .route("/results/{task_id}", get(task_result))
        .route("/health", get(health))
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // axum's own default (2 MB) would cut off code near our limit or
        // let through far more than it; the rejection is mapped to JSON in
        // `run_code`.
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// `POST /run-code`: validates and enqueues; never waits for the job.
///
/// Takes the raw request rather than a `Json<T>` extractor so the body is
/// parsed exactly once, by our own parser, which gives FastAPI's error shapes.
async fn run_code(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<TaskCreated>, ApiError> {
    ensure_json_content_type(request.headers())?;
    let body = Bytes::from_request(request, &())
        .await
        .map_err(|rejection| body_error(&rejection, &state))?;
    let run = parse_run_request(&body, state.languages(), state.config().max_code_bytes)?;
    let job = Job {
        id: TaskId::new(),
        language: run.language,
        code: run.code,
        stdin: run.stdin,
        submitted_at_ms: now_ms(),
    };
    state
        .queue()
        .submit(&job)
        .await
        .map_err(ApiError::QueueUnavailable)?;
    Ok(Json(TaskCreated { task_id: job.id }))
}

fn body_error(rejection: &BytesRejection, state: &AppState) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::BodyTooLarge {
            limit: state.config().max_body_bytes(),
        }
    } else {
        ApiError::BodyUnreadable
    }
}

/// `GET /results/{task_id}`: the task's state, or `404` when there is no
/// such task. A path that is not even a task id is just another unknown task.
async fn task_result(
    State(state): State<AppState>,
    task_id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Ok(Path(task_id)) = task_id else {
        return Err(ApiError::TaskNotFound);
    };
    let id: TaskId = task_id.parse().map_err(|_| ApiError::TaskNotFound)?;
    match state
        .queue()
        .state(&id)
        .await
        .map_err(ApiError::QueueUnavailable)?
    {
        Some(task) => Ok(Json(TaskStatus::new(id, &task)).into_response()),
        None => Err(ApiError::TaskNotFound),
    }
}

/// `GET /health`: the process is up and serving. Says nothing about the
/// queue; readiness is a separate question.
async fn health() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
}

async fn route_not_found() -> ApiError {
    ApiError::RouteNotFound
}

/// axum still adds the `Allow` header listing the route's methods.
async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Milliseconds since the Unix epoch; 0 if the clock is before it, which
/// only a badly broken host would report.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}
