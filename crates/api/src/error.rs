//! The one error type of the HTTP layer and its wire shape.
//!
//! Every failure a handler can meet is an [`ApiError`] variant, and each
//! variant maps to one status code and a `{"detail": ...}` body, the shape
//! FastAPI gives the seed's clients: a list of pydantic-style issues for
//! `422`, a sentence a person can act on for everything else. Internal causes
//! (the queue) are logged here, once, with their cause chain, and never sent
//! to the client.
//!
//! No error body is larger than [`MAX_ERROR_BODY_BYTES`], whatever the
//! request: a `422` lists at most [`MAX_ISSUES`] issues and counts the rest
//! in an extra `issues_omitted` field, and each issue's `input` is a bounded
//! echo (see `echo`).

use std::borrow::Cow;
use std::fmt;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use code_runner_queue::QueueError;
use serde::Serialize;
use serde_json::Value;

/// Why a request was not served.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// The body is not a valid run request (FastAPI's `422`).
    #[error("request validation failed")]
    Validation(Vec<ValidationIssue>),

    #[error("code is {size} bytes; the limit is {limit} bytes")]
    CodeTooLarge { size: usize, limit: usize },

    #[error("code and files are {size} bytes together; the limit is {limit} bytes")]
    SourcesTooLarge { size: usize, limit: usize },

    #[error("stdin is {size} bytes; the limit is {limit} bytes")]
    StdinTooLarge { size: usize, limit: usize },

    #[error("request body is larger than the limit of {limit} bytes")]
    BodyTooLarge { limit: usize },

    /// Judge mode: the tests' data, or a custom checker, over its limit.
    #[error("{what} are {size} bytes together; the limit is {limit} bytes")]
    JudgeTooLarge {
        what: &'static str,
        size: usize,
        limit: usize,
    },

    #[error(
        "unsupported Content-Type '{content_type}': send the body as JSON with \
         'Content-Type: application/json' (curl: -H 'Content-Type: application/json')"
    )]
    UnsupportedMediaType { content_type: String },

    /// The client went away or broke the transfer mid-body.
    #[error("could not read the request body")]
    BodyUnreadable,

    /// Never issued, expired, or not a task id at all: the seed's Celery would
    /// answer an eternal `PENDING` here, the spec wants a clear `404`.
    #[error("Task not found")]
    TaskNotFound,

    /// Never stored, or expired (`GET /testsets/{id}`).
    #[error("Test set not found")]
    TestSetNotFound,

    /// Starlette's text for an unknown route.
    #[error("Not Found")]
    RouteNotFound,

    /// Starlette's text for a known route called with the wrong method.
    #[error("Method Not Allowed")]
    MethodNotAllowed,

    #[error("queue unavailable, try again")]
    QueueUnavailable(#[source] QueueError),

    /// Backpressure: the queue holds its maximum number of unfinished jobs.
    #[error("the queue is full ({limit} jobs waiting or running); try again later")]
    QueueFull { limit: u64 },

    /// `DELETE /results/{id}` of a task that already has its final result.
    #[error("Task already finished; its result is unchanged")]
    AlreadyFinished,

    #[error(
        "Not authenticated: send an API key as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'"
    )]
    Unauthenticated,

    #[error("Invalid API key")]
    InvalidApiKey,

    #[error(
        "Rate limit exceeded: at most {per_minute} {what} per minute; retry in {retry_after_secs} s"
    )]
    RateLimited {
        per_minute: u32,
        /// What the limit counts: "submissions", "waits and cancels".
        what: &'static str,
        retry_after_secs: u64,
    },

    /// Fair share: this client (API key, or address without keys) already
    /// has its maximum of jobs queued or running.
    #[error(
        "Too many unfinished jobs: this client already has {limit} unfinished jobs (queued or \
         running); retry when one has finished"
    )]
    TooManyUnfinished { limit: u64 },

    /// A query parameter (`?wait=`) is not valid (FastAPI's `422`).
    #[error("query validation failed")]
    QueryValidation(Vec<ValidationIssue>),

    /// The body did not arrive whole within the body-read timeout.
    #[error(
        "the request body did not arrive within {secs} s; send it faster or in a smaller request"
    )]
    BodyTimeout { secs: u64 },

    /// The memory budget of bodies being received is spent.
    #[error("the server is receiving too many request bodies at once; try again shortly")]
    BodiesBusy,

    /// A WebSocket opened by a browser page of an origin that is neither in
    /// `--cors-origins` nor the server's own.
    #[error("WebSocket connections from this Origin are not allowed (see --cors-origins)")]
    OriginNotAllowed,

    /// `GET /results/{id}/events`: the client (or the server) has its
    /// maximum of event streams open.
    #[error("too many event streams open ({limit} at most {whose}); close one or poll GET /results/{{id}}")]
    TooManyWatchers { limit: usize, whose: &'static str },

    /// `GET /results/{id}/events` with a `Last-Event-ID` that no event of
    /// this API ever had (ids look like `1700000000000-0`).
    #[error(
        "Last-Event-ID is not an event id of this stream (ids look like \"1700000000000-0\"); \
         reconnect without it to get the whole story"
    )]
    BadLastEventId,

    /// A WebSocket route called without a WebSocket handshake.
    #[error(
        "this route speaks WebSocket only: open it with a WebSocket client (Upgrade: websocket)"
    )]
    WebSocketRequired,

    /// The server holds its maximum number of open connections.
    #[error("the server has too many open connections ({limit}); try again shortly")]
    TooManyConnections { limit: usize },
}

/// The largest error body the API sends, in bytes.
pub(crate) const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// The most issues one `422` lists; the rest are counted in `issues_omitted`.
pub(crate) const MAX_ISSUES: usize = 10;

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) | Self::QueryValidation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthenticated | Self::InvalidApiKey => StatusCode::UNAUTHORIZED,
            Self::OriginNotAllowed => StatusCode::FORBIDDEN,
            Self::RateLimited { .. }
            | Self::TooManyUnfinished { .. }
            | Self::TooManyWatchers { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::CodeTooLarge { .. }
            | Self::SourcesTooLarge { .. }
            | Self::StdinTooLarge { .. }
            | Self::JudgeTooLarge { .. }
            | Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::BodyUnreadable | Self::BadLastEventId => StatusCode::BAD_REQUEST,
            Self::WebSocketRequired => StatusCode::UPGRADE_REQUIRED,
            Self::TaskNotFound | Self::TestSetNotFound | Self::RouteNotFound => {
                StatusCode::NOT_FOUND
            }
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::QueueUnavailable(_)
            | Self::QueueFull { .. }
            | Self::TooManyConnections { .. }
            | Self::BodiesBusy => StatusCode::SERVICE_UNAVAILABLE,
            Self::AlreadyFinished => StatusCode::CONFLICT,
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
        }
    }

    /// A queue failure: `503` either way, but a full queue is the client's
    /// cue to slow down, not an outage to log.
    pub(crate) fn queue(error: QueueError) -> Self {
        match error {
            QueueError::Full { limit } => Self::QueueFull { limit },
            QueueError::ClientFull { limit } => Self::TooManyUnfinished { limit },
            other => Self::QueueUnavailable(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let full = matches!(self, Self::QueueFull { .. });
        // How long until one of the client's jobs has likely finished.
        let unfinished = matches!(self, Self::TooManyUnfinished { .. });
        // The connection is not worth keeping: its body is unread (or half
        // read), or the server wants it back.
        let close = matches!(
            self,
            Self::BodyTooLarge { .. }
                | Self::BodyTimeout { .. }
                | Self::TooManyConnections { .. }
                | Self::BodiesBusy
        );
        if let Self::QueueUnavailable(cause) = &self {
            tracing::error!(error = %Chain(cause), "queue unavailable; answering 503");
        }
        let mut response = match self {
            Self::Validation(issues) | Self::QueryValidation(issues) => {
                (status, validation_body(issues)).into_response()
            }
            other => (
                status,
                Json(Detail {
                    detail: other.to_string(),
                }),
            )
                .into_response(),
        };
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // The queue is usually back within moments (a Redis restart or
            // fail-over); tell well-behaved clients when to retry.
            let retry_after = if full {
                // Long enough for the workers to drain some of the queue.
                HeaderValue::from_static("5")
            } else {
                HeaderValue::from_static("1")
            };
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after);
        }
        if unfinished {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if close {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

#[derive(Serialize)]
struct Detail<T> {
    detail: T,
}

/// A `422` body: the first [`MAX_ISSUES`] issues, and how many more there
/// were (an extra field, absent when none were left out).
#[derive(Serialize)]
struct Issues<'a> {
    detail: &'a [ValidationIssue],
    #[serde(skip_serializing_if = "Option::is_none")]
    issues_omitted: Option<usize>,
}

/// Serializes a `422` body within [`MAX_ERROR_BODY_BYTES`]. Issues are
/// built with bounded echoes, so the first attempt fits; should it not
/// (a language table with very long names, say), the echoes are dropped.
fn validation_body(
    mut issues: Vec<ValidationIssue>,
) -> ([(header::HeaderName, HeaderValue); 1], Vec<u8>) {
    let omitted = issues.len().saturating_sub(MAX_ISSUES);
    issues.truncate(MAX_ISSUES);
    let encode = |issues: &[ValidationIssue]| {
        serde_json::to_vec(&Issues {
            detail: issues,
            issues_omitted: (omitted > 0).then_some(omitted),
        })
        .unwrap_or_default()
    };
    let mut body = encode(&issues);
    if body.len() > MAX_ERROR_BODY_BYTES {
        for issue in &mut issues {
            issue.input = Value::Null;
            issue.ctx = None;
        }
        body = encode(&issues);
    }
    if body.len() > MAX_ERROR_BODY_BYTES {
        body = br#"{"detail":"request validation failed"}"#.to_vec();
    }
    let json = HeaderValue::from_static("application/json");
    ([(header::CONTENT_TYPE, json)], body)
}

/// One entry of a `422` body, shaped like pydantic v2's errors as FastAPI
/// renders them (`type`, `loc`, `msg`, `input`, optional `ctx`; no `url`).
#[derive(Debug, Serialize)]
pub(crate) struct ValidationIssue {
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    /// Always starts with `"body"`, then the field name or, for malformed
    /// JSON, the byte offset of the error.
    pub(crate) loc: Vec<LocPart>,
    pub(crate) msg: Cow<'static, str>,
    /// The offending value (the whole body object for a missing field), as
    /// a bounded echo (`echo`): never much more than 2 KiB of JSON.
    pub(crate) input: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ctx: Option<Value>,
}

/// A step of a [`ValidationIssue::loc`] path.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(untagged)]
pub(crate) enum LocPart {
    Key(&'static str),
    Offset(usize),
}

/// A validation failure in one line, for channels without a JSON body (a
/// WebSocket's error message): `body.code: Field required; ...`.
pub(crate) fn issues_summary(issues: &[ValidationIssue]) -> String {
    let mut parts: Vec<String> = issues
        .iter()
        .take(MAX_ISSUES)
        .map(|issue| {
            let loc: Vec<String> = issue
                .loc
                .iter()
                .map(|part| match part {
                    LocPart::Key(key) => (*key).to_owned(),
                    LocPart::Offset(index) => index.to_string(),
                })
                .collect();
            format!("{}: {}", loc.join("."), issue.msg)
        })
        .collect();
    if issues.len() > MAX_ISSUES {
        parts.push(format!("and {} more", issues.len() - MAX_ISSUES));
    }
    format!("invalid run request: {}", parts.join("; "))
}

/// Displays an error with all its sources: `a: b: c`.
struct Chain<'a>(&'a dyn std::error::Error);

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_lists_every_cause() {
        let err = ApiError::QueueUnavailable(QueueError::Closed);
        assert_eq!(
            Chain(&err).to_string(),
            "queue unavailable, try again: the queue is closed"
        );
    }
}
