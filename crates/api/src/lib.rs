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
//! - `openapi`: the OpenAPI document; `assets`: the playground and Swagger UI,
//!   and the security headers of every answer;
//! - `echo`: bounded echoes of request input for `422` answers;
//! - `server`: the accept loop, with its timeouts and connection cap;
//! - `judge0`: Judge0 CE 1.13.1's API (`/submissions`, ...) over the same queue;
//! - `piston`: the Piston v2 API (`/api/v2/...`), on by default.
//!
//! [`router`] builds the service without serving it, so tests drive it
//! in-process; [`serve_with`] runs it on a bound listener until a shutdown
//! future resolves, within the bounds of a [`ServeConfig`].

mod access;
mod assets;
mod echo;
mod error;
mod judge;
mod judge0;
mod known_fields;
mod live;
mod main_file;
mod openapi;
mod piston;
mod request;
mod response;
mod routes;
mod server;
mod service;
mod state;
mod testsets;

use std::future::Future;

use axum::routing::get;
use tokio::net::TcpListener;

pub use access::{AccessConfig, ApiKeys, RateLimit};
pub use judge0::Judge0Config;
pub use routes::router;
pub use server::{MetricsAccess, ServeConfig, SPARE_CONNECTIONS};
pub use state::{ApiConfig, AppState, SupportedLanguage};

/// Serves the API on `listener` with the default [`ServeConfig`] until
/// `shutdown` resolves; see [`serve_with`].
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, &ServeConfig::default(), shutdown).await
}

/// Serves the API on `listener` until `shutdown` resolves, then stops
/// accepting connections and waits for requests in flight to finish.
///
/// Taking a bound listener (rather than an address) lets tests bind
/// `127.0.0.1:0` and production hand in whatever socket it set up. No request
/// here waits on a job, so draining is quick; a caller that needs a hard cap
/// wraps this future in a timeout. The timeouts and the connection cap of
/// `config` are described in `server`.
pub async fn serve_with(
    listener: TcpListener,
    state: AppState,
    config: &ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The rate limits and the cap of unfinished jobs count per client IP
    // (without API keys), so they need the peer address; without them,
    // requests skip that cost.
    let peer_addresses = state.needs_peer_address();
    // Room for at least one body of the largest size.
    let config = ServeConfig {
        max_body_memory: config
            .max_body_memory
            .max(state.config().max_body_bytes())
            .max(state.config().max_testset_bytes),
        ..config.clone()
    };
    let router = routes::router_with(state, config.metrics);
    server::serve_router(listener, router, &config, peer_addresses, shutdown).await
}

/// Serves `GET /metrics` alone (open, no API key) on `listener`, for
/// [`MetricsAccess::OwnPort`]: a port that only the metrics collector can
/// reach. Same bounds as the API's port.
pub async fn serve_metrics(
    listener: TcpListener,
    state: AppState,
    config: &ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = axum::Router::new()
        .route("/metrics", get(service::metrics))
        .fallback(routes::route_not_found)
        .with_state(state);
    server::serve_router(listener, router, config, false, shutdown).await
}
