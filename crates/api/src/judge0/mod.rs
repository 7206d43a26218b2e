//! Judge0 CE 1.13.1's API, so that a client of Judge0 (its official Python
//! SDK, its IDE, `curl` scripts) switches to this service by changing only
//! its base URL. It is a second front door to the same queue, workers,
//! sandbox, limits, API keys and rate limits as `POST /run-code`.
//!
//! | route | answer |
//! |---|---|
//! | `POST /submissions` | `201 {"token"}`; `?wait=true`: the submission once finished |
//! | `GET /submissions/{token}` | the submission (`?fields=`, `?base64_encoded=`) |
//! | `POST /submissions/batch` | one token or error object per submission |
//! | `GET /submissions/batch?tokens=` | `{"submissions": [...]}` |
//! | `GET /languages/{id}`, `/languages/all`, `/statuses`, `/about`, `/config_info`, `/workers` | Judge0's tables, with this service's values |
//!
//! `GET /languages` is the service's own route: its entries gain Judge0's
//! `id`, which is all the SDK reads from it (see `service::languages` and
//! docs/judge0.md).
//!
//! Layout: `tables` (language ids, statuses), `wire` (base64, timestamps,
//! decimal seconds), `request` (the body and Judge0's `422`s), `response`
//! (status mapping, units, `fields`), `handlers` (the routes, Judge0's
//! error shapes), `callback` (`callback_url` delivery).

mod body;
mod callback;
mod handlers;
pub(crate) mod openapi;
mod request;
mod response;
pub(crate) mod tables;
mod wire;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

use crate::access;
use crate::state::AppState;

/// The Judge0 release whose API this follows, as `GET /about` reports it:
/// the SDK resolves its language aliases (`judge0.PYTHON`) by it.
pub(crate) const VERSION: &str = "1.13.1";

/// Judge0's `MAX_SUBMISSION_BATCH_SIZE`.
pub(crate) const MAX_BATCH: usize = 20;

/// The Judge0 API's switches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judge0Config {
    /// Serve the Judge0 routes (on by default).
    pub enabled: bool,
    /// Let `callback_url` name loopback, private and link-local addresses
    /// (off by default: a callback could otherwise probe the internal
    /// network from the API's host).
    pub allow_private_callbacks: bool,
    /// How long the queue keeps results (`--result-ttl-secs`): a
    /// submission's request fields are kept for as long, plus the longest a
    /// callback waits for its job (an hour), from the submit.
    pub result_ttl: std::time::Duration,
}

impl Default for Judge0Config {
    fn default() -> Self {
        Self {
            enabled: true,
            allow_private_callbacks: false,
            result_ttl: std::time::Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// The Judge0 routes: submissions behind the API keys (when configured)
/// and the rate limit of submissions; the tables open, as `/languages` is.
/// Every refusal has Judge0's `{"error": ...}` shape.
pub(crate) fn routes(state: &AppState) -> Router<AppState> {
    // Judge0's bodies have their own limits (code, stdin and expected
    // output; no test data), also when no Content-Length announces them.
    let single = state.config().max_judge0_body_bytes();
    let batch = state.config().max_judge0_batch_body_bytes();
    let create = || {
        access::limit_rate(
            post(handlers::create).layer(DefaultBodyLimit::max(single)),
            state,
        )
    };
    let jobs = Router::new()
        .route("/submissions", create())
        .route("/submissions/", create())
        .route(
            "/submissions/batch",
            access::limit_rate(
                post(handlers::create_batch).layer(DefaultBodyLimit::max(batch)),
                state,
            )
            .get(handlers::fetch_batch),
        )
        .route("/submissions/{token}", get(handlers::fetch))
        .route("/submissions/{token}/", get(handlers::fetch))
        .route("/workers", get(handlers::workers));
    Router::new()
        .merge(access::require_keys(jobs, state))
        .route("/languages/all", get(handlers::all_languages))
        .route("/languages/{id}", get(handlers::language))
        .route("/statuses", get(handlers::statuses))
        .route("/about", get(handlers::about))
        .route("/config_info", get(handlers::config_info))
        .layer(axum::middleware::map_response(handlers::error_shape))
}
