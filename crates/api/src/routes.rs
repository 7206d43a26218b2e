//! The router and one handler per route.
//!
//! Handlers are kept to the work a request needs: `POST /run-code` reads the
//! body once, validates it, hands one job to the queue and answers with its
//! id. There is no per-request logging at `info`: at tens of thousands of
//! requests a second it would cost more than the request.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, Path, RawQuery, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use code_runner_queue::{Cancelled, Job, LiveMode, TaskId, TaskState};

use crate::access::Caller;
use crate::error::ApiError;
use crate::request::{
    bool_flag, ensure_json_content_type, parse_run_request, wait_flag, wait_seconds, RunRequest,
};
use crate::response::{TaskCreated, TaskStatus};
use crate::server::{BodyBounds, MetricsAccess};
use crate::state::AppState;
use crate::{access, assets, service};

/// Builds the API's router. It serves nothing by itself: [`crate::serve`]
/// does, and tests call it in-process.
pub fn router(state: AppState) -> Router {
    router_with(state, MetricsAccess::Open)
}

/// The router, with `GET /metrics` open, behind the API keys, or left to a
/// port of its own (see [`MetricsAccess`]).
pub(crate) fn router_with(state: AppState, metrics: MetricsAccess) -> Router {
    let body_limit = state.config().max_body_bytes();
    // The routes API keys protect (when configured; see `access`).
    let mut jobs = Router::new()
        .route("/run-code", access::limit_rate(post(run_code), &state))
        .route(
            "/testsets",
            access::limit_rate(
                post(crate::testsets::store)
                    .layer(DefaultBodyLimit::max(state.config().max_testset_bytes)),
                &state,
            ),
        )
        .route("/testsets/{testset_id}", get(crate::testsets::fetch))
        .route(
            "/run-code/ws",
            access::limit_rate(get(crate::live::ws::run_code_ws), &state),
        )
        .route(
            "/results/{task_id}/events",
            access::limit_waits(get(crate::live::sse::events), &state),
        )
        .route(
            "/results/{task_id}",
            access::limit_waits(get(task_result).delete(cancel_task), &state),
        )
        .route("/stats", get(service::stats));
    let mut open = Router::new();
    match metrics {
        MetricsAccess::Open => open = open.route("/metrics", get(service::metrics)),
        MetricsAccess::KeyRequired => jobs = jobs.route("/metrics", get(service::metrics)),
        MetricsAccess::OwnPort => {}
    }
    if state.config().judge0.enabled {
        open = open.merge(crate::judge0::routes(&state));
    }
    let router = Router::new()
        .merge(access::require_keys(jobs, &state))
        .merge(open)
        .route("/health", get(health))
        .route("/ready", get(service::ready))
        .route("/languages", get(service::languages))
        .merge(assets::routes())
        .merge(crate::piston::routes(&state))
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // axum's own default (2 MB) would cut off code near our limit or
        // let through far more than it; the rejection is mapped to JSON in
        // `run_code`.
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state.clone());
    assets::security_headers(access::cors(router, &state.config().access))
}

/// `POST /run-code`: validates and enqueues; with `?wait=true`, answers the
/// task's status once it is finished (or the longest wait has passed).
///
/// Takes the raw request rather than a `Json<T>` extractor so the body is
/// parsed exactly once, by our own parser, which gives FastAPI's error shapes.
async fn run_code(
    State(state): State<AppState>,
    caller: Caller,
    request: Request,
) -> Result<Response, ApiError> {
    let wait = wait_flag(request.uri().query())?;
    let stream = bool_flag(request.uri().query(), "stream")?;
    ensure_json_content_type(request.headers())?;
    let run = read_run_request(&state, request).await?;
    let live = stream.then_some(LiveMode::Stream);
    let job = enqueue(&state, &caller, run, live).await?;
    if !wait {
        return Ok(Json(TaskCreated { task_id: job.id }).into_response());
    }
    let timeout = Duration::from_secs(state.config().max_wait_secs);
    let task = state
        .queue()
        .wait_for_result_for(&job.id, caller.owner(), timeout)
        .await
        .map_err(ApiError::QueueUnavailable)?;
    task_status(&state, job.id, task).await
}

/// Checks a parsed run request's sizes (and test set) and submits its job,
/// live as `live` says, counted against the caller's quota.
pub(crate) async fn enqueue(
    state: &AppState,
    caller: &Caller,
    run: RunRequest,
    live: Option<LiveMode>,
) -> Result<Job, ApiError> {
    service::check_sizes(&run, state.config())?;
    crate::judge::check_sizes(run.judge.as_ref(), state.config())?;
    if let Some(id) = run.judge.as_ref().and_then(|spec| spec.testset.as_deref()) {
        crate::testsets::check_reference(state, id).await?;
    }
    let job = Job {
        id: TaskId::new(),
        language: run.language,
        code: run.code,
        stdin: run.stdin,
        submitted_at_ms: now_ms(),
        args: run.args,
        files: run.files,
        time_limit_ms: run.time_limit_ms,
        memory_limit_mb: run.memory_limit_mb,
        owner: caller.owner().map(str::to_owned),
        judge: run.judge,
        live,
    };
    let quota = caller.quota(&state.config().access);
    state
        .queue()
        .submit_for(&job, quota)
        .await
        .map_err(ApiError::queue)?;
    Ok(job)
}

/// Bodies above this size are parsed on a blocking thread, so a large (and
/// possibly malformed) one does not hold up the async threads.
const PARSE_INLINE_MAX: usize = 64 * 1024;

/// Reads and parses a `POST /run-code` body: refused with `413` from its
/// `Content-Length` before a byte is read (so no `100 Continue` is sent),
/// read within the body deadline (`408` after it) and the memory budget of
/// bodies being received (`503` before reading when it is spent) when served
/// by [`crate::serve_with`], parsed off the async threads when large.
pub(crate) async fn read_run_request(
    state: &AppState,
    request: Request,
) -> Result<RunRequest, ApiError> {
    let (body, reserved) = read_body(request, state.config().max_body_bytes()).await?;
    if body.len() <= PARSE_INLINE_MAX {
        return parse_run_request(&body, state.languages(), state.config());
    }
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let _reserved = reserved;
        parse_run_request(&body, state.languages(), state.config())
    })
    .await
    .unwrap_or_else(|panicked| std::panic::resume_unwind(panicked.into_panic()))
}

/// Reads a body of at most `limit` bytes, with the bounds of
/// [`read_run_request`]; `POST /testsets` reads its own (larger) bodies so.
/// The reservation of the body memory budget comes with the body: hold it
/// until the body is parsed.
pub(crate) async fn read_body(
    request: Request,
    limit: usize,
) -> Result<(Bytes, Option<tokio::sync::OwnedSemaphorePermit>), ApiError> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(ApiError::BodyTooLarge { limit });
    }
    let bounds = request.extensions().get::<BodyBounds>().cloned();
    // Held until the body is parsed: what it declares, or the limit.
    let _reserved = match &bounds {
        Some(bounds) => {
            let size = declared.map_or(limit, |length| length as usize);
            let kib = u32::try_from(size.div_ceil(1024)).unwrap_or(u32::MAX);
            let reserved = bounds.budget.clone().try_acquire_many_owned(kib);
            Some(reserved.map_err(|_| ApiError::BodiesBusy)?)
        }
        None => None,
    };
    let read = Bytes::from_request(request, &());
    let body = match bounds {
        Some(BodyBounds { timeout, .. }) => {
            tokio::time::timeout(timeout, read)
                .await
                .map_err(|_| ApiError::BodyTimeout {
                    secs: timeout.as_secs(),
                })?
        }
        None => read.await,
    }
    .map_err(|rejection| body_error(&rejection, limit))?;
    Ok((body, _reserved))
}

fn body_error(rejection: &BytesRejection, limit: usize) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::BodyTooLarge { limit }
    } else {
        ApiError::BodyUnreadable
    }
}

/// `GET /results/{task_id}`: the task's state, or `404` when there is no
/// such task. A path that is not even a task id is just another unknown task,
/// and so is another API key's task.
///
/// With `?wait=N`, a pending task is waited for up to N seconds (woken when
/// its result is stored, not by polling).
async fn task_result(
    State(state): State<AppState>,
    caller: Caller,
    task_id: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let Ok(Path(task_id)) = task_id else {
        return Err(ApiError::TaskNotFound);
    };
    let id: TaskId = task_id.parse().map_err(|_| ApiError::TaskNotFound)?;
    let wait = wait_seconds(query.as_deref(), state.config().max_wait_secs)?;
    let owner = caller.owner();
    let task = if wait == 0 {
        state.queue().state_for(&id, owner).await
    } else {
        state
            .queue()
            .wait_for_result_for(&id, owner, Duration::from_secs(wait))
            .await
    }
    .map_err(ApiError::QueueUnavailable)?;
    task_status(&state, id, task).await
}

/// `DELETE /results/{task_id}`: cancels a pending task. A queued job never
/// runs; a running one is stopped by its worker within a second. Answers the
/// task's new status (`FAILURE`, `verdict: "cancelled"`), `409` when the task
/// had already finished (its result is unchanged), `404` when there is no
/// such task (or it is another API key's, which is left alone).
async fn cancel_task(
    State(state): State<AppState>,
    caller: Caller,
    task_id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Ok(Path(task_id)) = task_id else {
        return Err(ApiError::TaskNotFound);
    };
    let id: TaskId = task_id.parse().map_err(|_| ApiError::TaskNotFound)?;
    match state
        .queue()
        .cancel_for(&id, caller.owner(), now_ms())
        .await
        .map_err(ApiError::queue)?
    {
        Cancelled::Now(result) => {
            let task = TaskState::Done(result);
            Ok(Json(TaskStatus::new(id, &task, None)).into_response())
        }
        Cancelled::AlreadyFinished(_) => Err(ApiError::AlreadyFinished),
        Cancelled::NotFound => Err(ApiError::TaskNotFound),
    }
}

/// The answer for a task's state: its status body, or `404`.
async fn task_status(
    state: &AppState,
    id: TaskId,
    task: Option<TaskState>,
) -> Result<Response, ApiError> {
    let Some(task) = task else {
        return Err(ApiError::TaskNotFound);
    };
    let running_since = match task {
        TaskState::Pending => state
            .queue()
            .running_since(&id)
            .await
            .map_err(ApiError::QueueUnavailable)?,
        TaskState::Done(_) => None,
    };
    // Judge mode: a running job's finished tests (best effort).
    let progress = match running_since {
        Some(_) => state.queue().progress(&id).await.ok().flatten(),
        None => None,
    };
    let status = TaskStatus::new(id, &task, running_since).with_progress(progress.as_deref());
    Ok(Json(status).into_response())
}

/// `GET /health`: the process is up and serving. Says nothing about the
/// queue; readiness is a separate question.
async fn health() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
}

pub(crate) async fn route_not_found() -> ApiError {
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
