//! The HTTP layer of code-runner: it validates a request, enqueues a job and
//! reads results back. It never runs user code; workers do, on the other side
//! of the [`Queue`](code_runner_queue::Queue).
//!
//! The seed's API (FastAPI + Celery) must keep working for its clients, so the
//! routes, bodies and error shapes follow it exactly and everything this
//! implementation adds lives in extra fields:
//!
//! | route | answer |
//! |---|---|
//! | `POST /run-code` | `200 {"task_id": "<uuid>"}`; with `?wait=true`, the task's status once finished |
//! | `GET /results/{task_id}` | `{"status": "PENDING" \| "SUCCESS" \| "FAILURE", "result": ...}` + extras, or `404`; `?wait=N` waits |
//! | `DELETE /results/{task_id}` | cancels a pending task: its new status (`FAILURE`, `verdict: "cancelled"`); `409` if already finished, `404` if unknown |
//! | `GET /health` | `200 {"status": "ok"}` |
//! | `GET /ready`, `/languages`, `/stats`, `/metrics` | readiness, the language table, statistics, Prometheus metrics |
//! | `GET /openapi.json`, `/docs`, `/` | the OpenAPI document, Swagger UI, the web playground |
//!
//! Layout:
//! - `state`: [`AppState`], [`ApiConfig`], [`SupportedLanguage`] and the
//!   alias table built from them once at start-up;
//! - `routes`: the router and one handler per route;
//! - `request`: the `POST /run-code` body parser, with FastAPI/pydantic-shaped
//!   validation errors; `main_file`: the name a program's own source is saved
//!   under, which no extra file may take;
//! - `response`: the success bodies;
//! - `error`: the one error type, turning every failure into a stable status
//!   and `{"detail": ...}` body;
//! - `service`: `/languages`, `/ready`, `/stats`, `/metrics`;
//! - `access`: optional API keys, rate limit and CORS;
//! - `openapi`: the OpenAPI document; `assets`: the playground and Swagger UI;
//! - `echo`: bounded echoes of request input for `422` answers.
//!
//! [`router`] builds the service without serving it, so tests drive it
//! in-process; [`serve`] runs it on a bound listener until a shutdown future
//! resolves.

mod access;
mod assets;
mod echo;
mod error;
mod main_file;
mod openapi;
mod request;
mod response;
mod routes;
mod service;
mod state;

use std::future::Future;
use std::net::SocketAddr;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;

pub use access::{AccessConfig, ApiKeys, RateLimit};
pub use routes::router;
pub use state::{ApiConfig, AppState, SupportedLanguage};

/// Serves the API on `listener` until `shutdown` resolves, then stops
/// accepting connections and waits for requests in flight to finish.
///
/// Taking a bound listener (rather than an address) lets tests bind
/// `127.0.0.1:0` and production hand in whatever socket it set up. No request
/// here waits on a job, so draining is quick; a caller that needs a hard cap
/// wraps this future in a timeout.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Answers are one small write each; Nagle's algorithm would only add
    // latency on keep-alive connections.
    let listener = listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!("failed to set TCP_NODELAY on an accepted connection: {err}");
        }
    });
    if state.needs_peer_address() {
        // The rate limits and the cap of unfinished jobs count per client
        // IP (without API keys), so they need the peer address; without
        // them, requests skip that cost.
        let service = router(state).into_make_service_with_connect_info::<SocketAddr>();
        return axum::serve(listener, service)
            .with_graceful_shutdown(shutdown)
            .await;
    }
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
