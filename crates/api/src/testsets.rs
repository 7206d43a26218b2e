//! Test sets (SPEC §7): `POST /testsets` stores a list of tests once, and a
//! run request names it (`"tests": "sha256:<hex>"`) instead of carrying it,
//! so large test data crosses the network once and sits in Redis once.
//!
//! Decisions:
//! - The body is `{"tests": [...]}` with the tests of an inline request,
//!   validated the same way (the same `422`s, at `["body", "tests", ...]`);
//!   other fields are ignored, as in `POST /run-code`.
//! - A set has no request to take defaults from: a test without `stdin` or
//!   `args` has none (not the run request's), and its `name` is its 1-based
//!   position, fixed when stored.
//! - The id is `sha256:` and the hex SHA-256 of the canonical JSON, the
//!   validated tests re-serialized ([`TestSet`]: fields in a fixed order,
//!   empty ones left out, names filled in), so the same tests give the same
//!   id however they were spelt; storing them again refreshes the TTL.
//! - `--max-testset-bytes` bounds the body as sent (`413`, before reading it
//!   when `Content-Length` says so); `--max-tests` bounds the set, here and
//!   again when a run request names it. The per-request `--max-test-bytes`
//!   does not apply: sets are for test data too large to send with each run.
//! - The TTL (`--testset-ttl-secs`) is refreshed whenever the API stores,
//!   reads or accepts a run naming the set; the worker's fetch does not
//!   refresh it. A set that expired between the submit and the job's start
//!   ends the job `judge_error` (see the worker).

use std::borrow::Cow;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use code_runner_queue::judge::TestSet;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::echo::echo_raw;
use crate::error::{ApiError, LocPart, ValidationIssue};
use crate::request::{ensure_json_content_type, json_invalid, missing_body, pick};
use crate::state::{ApiConfig, AppState};

/// A test set's id: `sha256:` and 64 lowercase hex digits.
pub(crate) fn is_id(id: &str) -> bool {
    id.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// `POST /testsets`: validates and stores a set; answers its id.
pub(crate) async fn store(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    ensure_json_content_type(request.headers())?;
    let (body, reserved) =
        crate::routes::read_body(request, state.config().max_testset_bytes).await?;
    let config = state.config().clone();
    let (id, json, tests) = tokio::task::spawn_blocking(move || {
        let _reserved = reserved;
        let set = parse(&body, &config)?;
        let json = serde_json::to_string(&set).expect("tests serialize");
        let id = format!("sha256:{:x}", Sha256::digest(json.as_bytes()));
        Ok::<_, ApiError>((id, json, set.tests.len()))
    })
    .await
    .unwrap_or_else(|panicked| std::panic::resume_unwind(panicked.into_panic()))?;
    state
        .queue()
        .store_testset(&id, &json, tests, state.config().testset_ttl)
        .await
        .map_err(ApiError::queue)?;
    Ok(axum::Json(json!({ "testset_id": id })).into_response())
}

/// `GET /testsets/{testset_id}`: the stored set, or `404`.
pub(crate) async fn fetch(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Ok(Path(id)) = id else {
        return Err(ApiError::TestSetNotFound);
    };
    if !is_id(&id) {
        return Err(ApiError::TestSetNotFound);
    }
    let json = state
        .queue()
        .testset(&id, Some(state.config().testset_ttl))
        .await
        .map_err(ApiError::QueueUnavailable)?
        .ok_or(ApiError::TestSetNotFound)?;
    // `{"tests":[...]}` as stored, with the id first; not parsed again.
    let tests = json
        .strip_prefix("{\"tests\":")
        .and_then(|rest| rest.strip_suffix('}'))
        .unwrap_or("[]");
    let body = format!("{{\"testset_id\":\"{id}\",\"tests\":{tests}}}");
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// At submit: the set a run request names exists (its TTL refreshed) and
/// has at most `--max-tests` tests; else a `422` at `["body", "tests"]`.
pub(crate) async fn check_reference(state: &AppState, id: &str) -> Result<(), ApiError> {
    let config = state.config();
    let tests = state
        .queue()
        .testset_len(id, config.testset_ttl)
        .await
        .map_err(ApiError::QueueUnavailable)?;
    let issue = |kind, msg: String, ctx| ValidationIssue {
        kind,
        loc: vec![LocPart::Key("body"), LocPart::Key("tests")],
        msg: Cow::Owned(msg),
        input: Value::String(id.to_owned()),
        ctx,
    };
    match tests {
        None => Err(ApiError::Validation(vec![issue(
            "value_error",
            format!(
                "Value error, no test set {id} is stored (never stored, or expired): \
                 store it with POST /testsets"
            ),
            None,
        )])),
        Some(n) if n > config.max_tests => Err(ApiError::Validation(vec![issue(
            "too_long",
            format!(
                "List should have at most {} items after validation, not {n}",
                config.max_tests
            ),
            Some(
                json!({ "field_type": "List", "max_length": config.max_tests, "actual_length": n }),
            ),
        )])),
        Some(_) => Ok(()),
    }
}

/// Reads and validates a `POST /testsets` body.
fn parse(body: &[u8], config: &ApiConfig) -> Result<TestSet, ApiError> {
    let invalid = |issue| ApiError::Validation(vec![issue]);
    if body.is_empty() {
        return Err(invalid(missing_body()));
    }
    let whole = serde_json::from_slice::<&RawValue>(body)
        .map_err(|err| invalid(json_invalid(body, &err)))?;
    let Some([tests]) = pick(whole, ["tests"]) else {
        if whole.get() == "null" {
            return Err(invalid(missing_body()));
        }
        return Err(invalid(ValidationIssue {
            kind: "model_attributes_type",
            loc: vec![LocPart::Key("body")],
            msg: Cow::Borrowed(
                "Input should be a valid dictionary or object to extract fields from",
            ),
            input: echo_raw(whole),
            ctx: None,
        }));
    };
    let Some(tests) = tests.filter(|raw| raw.get() != "null") else {
        return Err(invalid(ValidationIssue {
            kind: "missing",
            loc: vec![LocPart::Key("body"), LocPart::Key("tests")],
            msg: Cow::Borrowed("Field required"),
            input: echo_raw(whole),
            ctx: None,
        }));
    };
    let defaults = crate::judge::Defaults {
        stdin: "",
        args: &[],
    };
    let mut issues = Vec::new();
    match crate::judge::test_list(tests, &defaults, config, &mut issues) {
        Some(tests) if issues.is_empty() => Ok(TestSet { tests }),
        _ => Err(ApiError::Validation(issues)),
    }
}

/// Adds both routes to the OpenAPI document (`openapi::document`), and the
/// id form of a run request's `tests`.
pub(crate) fn document(doc: &mut Value, config: &ApiConfig) {
    const NOTE: &str = "Judge mode's test sets (see docs/judge.md).";
    let id = json!({"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"});
    let error = |description: &str| json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let invalid = json!({"description": "Invalid request", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}}});
    let tests = json!({
        "type": "array",
        "minItems": 1,
        "maxItems": config.max_tests,
        "items": {"$ref": "#/components/schemas/Test"},
    });
    let stored = json!({
        "type": "object",
        "required": ["testset_id"],
        "properties": {"testset_id": id.clone()},
    });
    let found = json!({
        "type": "object",
        "required": ["testset_id", "tests"],
        "properties": {"testset_id": id.clone(), "tests": tests.clone()},
    });
    doc["paths"]["/testsets"] = json!({"post": {
        "tags": ["jobs", "judge"],
        "operationId": "store_testset",
        "summary": "Store a test set.",
        "description": format!("{NOTE} Stores the tests (validated as a run request's; absent fields take no request's values) for --testset-ttl-secs ({} s), refreshed on each use, and answers their id, the same for the same tests. A run request names the set with `\"tests\": \"<id>\"`.", config.testset_ttl.as_secs()),
        "requestBody": {"required": true, "content": {"application/json": {"schema": {
            "type": "object",
            "required": ["tests"],
            "properties": {"tests": tests},
        }}}},
        "responses": {
            "200": {"description": "Stored", "content": {"application/json": {"schema": stored}},
                    "links": {"GetTestSet": {"operationId": "get_testset", "parameters": {"testset_id": "$response.body#/testset_id"}}}},
            "401": error("API key missing or wrong (only when keys are configured)"),
            "408": error("The body did not arrive within the body-read timeout"),
            "413": error(&format!("Body over --max-testset-bytes ({} bytes)", config.max_testset_bytes)),
            "415": error("Body not declared as JSON"),
            "422": invalid,
            "429": error("Rate limit exceeded (only when configured)"),
            "503": error("Queue unavailable, or the server has too many open connections"),
        },
    }});
    doc["paths"]["/testsets/{testset_id}"] = json!({"get": {
        "tags": ["jobs", "judge"],
        "operationId": "get_testset",
        "summary": "Read a stored test set.",
        "description": format!("{NOTE} Refreshes its TTL."),
        "parameters": [{"name": "testset_id", "in": "path", "required": true, "schema": {"type": "string"},
                        "description": "The id `POST /testsets` answered"}],
        "responses": {
            "200": {"description": "The set", "content": {"application/json": {"schema": found}}},
            "401": error("API key missing or wrong (only when keys are configured)"),
            "404": error("Never stored, or expired"),
            "503": error("Queue unavailable"),
        },
    }});
    let request = &mut doc["components"]["schemas"]["RunCodeRequest"]["properties"]["tests"];
    let inline = request.take();
    *request = json!({
        "description": inline["description"].as_str().map(|d| format!("{d} Or a stored test set's id (`POST /testsets`): it must exist (422 otherwise).")),
        "anyOf": [
            {"type": "array", "minItems": 1, "maxItems": config.max_tests, "items": {"$ref": "#/components/schemas/Test"}},
            id,
            {"type": "null"},
        ],
    });
}
