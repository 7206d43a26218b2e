//! The Piston v2 API, so that a user of a Piston client switches to this
//! service by changing only its base URL (`http://host:port/api/v2`).
//!
//! | route | answer |
//! |---|---|
//! | `POST /api/v2/execute` | runs one program and answers when it is done: `{language, version, run, compile?}` |
//! | `GET /api/v2/runtimes` | the language table, Piston's way: `[{language, version, aliases, runtime?}]` |
//! | `GET /api/v2/connect` | Piston's WebSocket: an interactive run, its stdin in and its output out (`connect`) |
//! | any other `/api/v2/...` | `404 {"message": "Not Found"}` |
//!
//! A request is a job like any other: the same queue, workers, sandbox and
//! limits, the same API keys (also as Piston clients send them: a bare key
//! in `Authorization`), rate limit, cap of unfinished jobs and body limit.
//! `execute` waits for the job's result through the queue's notification,
//! as `POST /run-code?wait=true` does, for at most the longest wait.
//!
//! Every refusal is Piston's shape, `{"message": ...}`, with the status this
//! service gives it elsewhere (`400` for a bad request, as Piston; `401`,
//! `413`, `429`, `503`); the shared errors' `{"detail": ...}` is rewritten
//! on the way out.
//!
//! Layout: `request` reads and checks a body, `runtimes` is the language
//! table with Piston's names and SemVer selection, `response` turns a
//! result into Piston's stages and units, `openapi` documents the routes.
//! The mapping's gaps are listed in `docs/piston.md`.

mod body;
mod connect;
mod openapi;
mod request;
mod response;
mod runtimes;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{map_request, map_response};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use code_runner_queue::{Job, TaskId, TaskState};
use serde_json::{json, Value};

pub(crate) use openapi::document;

use self::request::{parse, Invalid};
use self::response::ExecuteResponse;
use self::runtimes::Runtimes;
use crate::access::{self, Caller};
use crate::error::{ApiError, MAX_ERROR_BODY_BYTES};
use crate::state::AppState;

/// The Piston routes, or none when the configuration turns them off.
pub(crate) fn routes(state: &AppState) -> Router<AppState> {
    if !state.config().piston_api {
        return Router::new();
    }
    let jobs = Router::new()
        .route("/api/v2/execute", access::limit_rate(post(execute), state))
        .route(
            "/api/v2/connect",
            access::limit_rate(get(connect::connect), state),
        );
    Router::new()
        .merge(access::require_keys(jobs, state))
        .route("/api/v2/runtimes", get(list_runtimes))
        .route("/api/v2/{*rest}", any(not_found))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(map_response(piston_errors))
        .layer(map_request(bare_key))
}

/// A refusal in Piston's shape.
fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "message": message.into() }))).into_response()
}

/// Bodies above this size are parsed on a blocking thread (as `/run-code`'s).
const PARSE_INLINE_MAX: usize = 64 * 1024;

/// `POST /api/v2/execute`: checks, enqueues, waits, answers Piston's body.
async fn execute(State(state): State<AppState>, caller: Caller, request: Request) -> Response {
    // Piston's body carries files and stdin, no test data: its own limit.
    let limit = state.config().max_piston_body_bytes();
    let (body, reserved) = match crate::routes::read_body(request, limit).await {
        Ok(read) => read,
        Err(error) => return error.into_response(),
    };
    let inline = body.len() <= PARSE_INLINE_MAX;
    let parse_body = {
        let state = state.clone();
        move || {
            let _reserved = reserved;
            let runtimes = Runtimes::new(state.languages().all());
            parse(&body, &runtimes, state.languages(), state.config())
        }
    };
    let parsed = if inline {
        parse_body()
    } else {
        tokio::task::spawn_blocking(parse_body)
            .await
            .unwrap_or_else(|panicked| std::panic::resume_unwind(panicked.into_panic()))
    };
    let execute = match parsed {
        Ok(execute) => execute,
        Err(Invalid::BadRequest(message)) => return refuse(StatusCode::BAD_REQUEST, message),
        Err(Invalid::TooLarge(message)) => return refuse(StatusCode::PAYLOAD_TOO_LARGE, message),
    };
    let job = Job {
        id: TaskId::new(),
        language: execute.runtime.canonical.clone(),
        code: execute.code,
        stdin: execute.stdin,
        submitted_at_ms: now_ms(),
        args: execute.args,
        files: execute.files,
        time_limit_ms: execute.time_limit_ms,
        memory_limit_mb: execute.memory_limit_mb,
        owner: caller.owner().map(str::to_owned),
        judge: None,
        live: None,
    };
    let quota = caller.quota(&state.config().access);
    if let Err(error) = state.queue().submit_for(&job, quota).await {
        return ApiError::queue(error).into_response();
    }
    let wait = Duration::from_secs(state.config().max_wait_secs);
    match state
        .queue()
        .wait_for_result_for(&job.id, caller.owner(), wait)
        .await
    {
        Ok(Some(TaskState::Done(result))) => {
            Json(ExecuteResponse::new(&execute.runtime, &result)).into_response()
        }
        Ok(Some(TaskState::Pending)) => {
            // Nobody will ask for it again: it must not run for nobody.
            let _ = state
                .queue()
                .cancel_for(&job.id, caller.owner(), now_ms())
                .await;
            let message = format!(
                "the job did not finish within {} s (the queue is busy); it was cancelled, \
                 try again later",
                wait.as_secs()
            );
            Json(ExecuteResponse::unfinished(&execute.runtime, message)).into_response()
        }
        Ok(None) => Json(ExecuteResponse::unfinished(
            &execute.runtime,
            "the job's result expired before it could be read; try again".to_owned(),
        ))
        .into_response(),
        Err(error) => ApiError::QueueUnavailable(error).into_response(),
    }
}

/// `GET /api/v2/runtimes`.
async fn list_runtimes(State(state): State<AppState>) -> Response {
    Json(Runtimes::new(state.languages().all()).all()).into_response()
}

/// axum still adds the `Allow` header listing the route's methods.
async fn method_not_allowed() -> Response {
    refuse(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}

async fn not_found() -> Response {
    refuse(StatusCode::NOT_FOUND, "Not Found")
}

/// Piston clients send their key bare (`Authorization: KEY`); the shared
/// check wants `Bearer KEY` or `X-API-Key`, so a bare one is moved to
/// `X-API-Key` (unless that is given too).
async fn bare_key(mut request: Request) -> Request {
    let headers = request.headers_mut();
    let bare = headers.get(header::AUTHORIZATION).is_some_and(|value| {
        let value = value.as_bytes();
        !(value.len() > 7 && value[..7].eq_ignore_ascii_case(b"bearer "))
    });
    if bare && !headers.contains_key("x-api-key") {
        if let Some(key) = headers.remove(header::AUTHORIZATION) {
            headers.insert("x-api-key", key);
        }
    }
    request
}

/// Rewrites the shared errors' `{"detail": ...}` into Piston's
/// `{"message": ...}`, keeping the status and headers.
async fn piston_errors(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if response.status().is_success() || !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 2 * MAX_ERROR_BODY_BYTES).await else {
        return refuse(parts.status, "the request failed");
    };
    let rewritten = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(mut object)) if object.contains_key("detail") => {
            let message = match object.remove("detail") {
                Some(Value::String(text)) => text,
                Some(other) => other.to_string(),
                None => String::new(),
            };
            serde_json::to_vec(&json!({ "message": message })).unwrap_or_default()
        }
        _ => return Response::from_parts(parts, Body::from(bytes)),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(rewritten))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn json_body(response: Response) -> Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn shared_errors_take_pistons_shape_and_keep_status_and_headers() {
        let response = piston_errors(ApiError::InvalidApiKey.into_response()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
        assert_eq!(
            json_body(response).await,
            json!({"message": "Invalid API key"})
        );
        let response = piston_errors(ApiError::BodyTooLarge { limit: 10 }.into_response()).await;
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            json_body(response).await,
            json!({"message": "request body is larger than the limit of 10 bytes"})
        );
        // Piston's own answers pass unchanged.
        let response = piston_errors(refuse(StatusCode::BAD_REQUEST, "no")).await;
        assert_eq!(json_body(response).await, json!({"message": "no"}));
    }

    #[tokio::test]
    async fn a_bare_key_is_moved_to_x_api_key() {
        let request = |authorization: &str| {
            Request::builder()
                .header(header::AUTHORIZATION, authorization)
                .body(Body::empty())
                .unwrap()
        };
        let moved = bare_key(request("some-key-0001")).await;
        assert_eq!(moved.headers()["x-api-key"], "some-key-0001");
        assert!(!moved.headers().contains_key(header::AUTHORIZATION));
        let bearer = bare_key(request("Bearer some-key-0001")).await;
        assert_eq!(
            bearer.headers()[header::AUTHORIZATION],
            "Bearer some-key-0001"
        );
        assert!(!bearer.headers().contains_key("x-api-key"));
    }
}
