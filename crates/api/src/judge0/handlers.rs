//! The Judge0 routes' handlers and Judge0's error shapes: `422` with
//! `{"field": ["message"]}`, `400`/`413`/`429`/`503` with `{"error": "..."}`,
//! `404` with `{"status": 404, "error": "Not Found"}`.

use std::time::Duration;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use code_runner_queue::judge::JudgeSpec;
use code_runner_queue::{Job, TaskId, TaskState};
use serde_json::{json, Map, Value};

use super::body;
use super::request::{parse_submission, Errors, Limits, Submission};
use super::response::{render, Fields, Meta, Outcome, Shared};
use super::tables::{by_id, display_name, IDS, STATUSES};
use super::{callback, MAX_BATCH};
use crate::access::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// Why a Judge0 request was not served, in Judge0's shapes.
#[derive(Debug)]
pub(crate) enum Judge0Error {
    /// `422 {"field": ["message", ...]}`.
    Validation(Errors),
    /// `400 {"error": "..."}`.
    BadRequest(String),
    /// `404 {"status": 404, "error": "Not Found"}` (Rails' JSON 404).
    NotFound,
    /// One of the service's own refusals (body too large, rate limit, queue
    /// full or unavailable): its status and headers, Judge0's body shape.
    Api(ApiError),
}

impl From<ApiError> for Judge0Error {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

impl IntoResponse for Judge0Error {
    fn into_response(self) -> Response {
        match self {
            Self::Validation(errors) => {
                (StatusCode::UNPROCESSABLE_ENTITY, Json(errors)).into_response()
            }
            Self::BadRequest(error) => {
                (StatusCode::BAD_REQUEST, Json(json!({"error": error}))).into_response()
            }
            Self::NotFound => (
                StatusCode::NOT_FOUND,
                Json(json!({"status": 404, "error": "Not Found"})),
            )
                .into_response(),
            Self::Api(error) => {
                let message = error.to_string();
                // The service's own answer (it logs internal causes once),
                // with Judge0's body.
                let (mut parts, _) = error.into_response().into_parts();
                parts.headers.remove(header::CONTENT_LENGTH);
                let body = Json(json!({"error": message})).into_response();
                let (_, body) = body.into_parts();
                Response::from_parts(parts, body)
            }
        }
    }
}

/// Gives the refusals of the shared layers (API keys, rate limits, body
/// bounds: `{"detail": "..."}`) Judge0's shape on Judge0's routes:
/// `{"error": "..."}`, same status and headers.
pub(crate) async fn error_shape(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // Error bodies are small (at most 64 KiB, see `error`).
    let Ok(bytes) = axum::body::to_bytes(body, 1024 * 1024).await else {
        return Response::from_parts(parts, axum::body::Body::empty());
    };
    let detail = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|body| body.get("detail")?.as_str().map(str::to_owned));
    match detail {
        Some(detail) => {
            parts.headers.remove(header::CONTENT_LENGTH);
            let (_, body) = Json(json!({"error": detail})).into_response().into_parts();
            Response::from_parts(parts, body)
        }
        None => Response::from_parts(parts, axum::body::Body::from(bytes)),
    }
}

/// The query parameters Judge0 reads.
#[derive(Debug, Default)]
struct Query {
    base64: bool,
    wait: bool,
    fields: Option<String>,
    tokens: Option<String>,
}

impl Query {
    /// Judge0 1.13.1 takes only the exact string `true` as true.
    fn parse(query: Option<&str>) -> Self {
        let mut parsed = Self::default();
        for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match name.as_ref() {
                "base64_encoded" => parsed.base64 = value == "true",
                "wait" => parsed.wait = value == "true",
                "fields" => parsed.fields = Some(value.into_owned()),
                "tokens" => parsed.tokens = Some(value.into_owned()),
                _ => {}
            }
        }
        parsed
    }

    fn fields(&self) -> Result<Fields, Judge0Error> {
        Fields::parse(self.fields.as_deref()).map_err(Judge0Error::BadRequest)
    }
}

/// Where a submission's [`Meta`] is kept: the queue's key-value store of
/// test sets, under a name no test set id can take (those are `sha256:`).
fn meta_key(token: &TaskId) -> String {
    format!("judge0:{token}")
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Reads a JSON body of at most `limit` bytes with `read` (an empty one
/// reads as `{}`; the Content-Type is not checked, as clients of Judge0 do
/// not all send it). Only the known fields are kept (see [`body`]).
async fn read_json(
    request: Request,
    limit: usize,
    read: fn(&[u8]) -> Result<Value, serde_json::Error>,
) -> Result<Value, Judge0Error> {
    let (body, reserved) = crate::routes::read_body(request, limit).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    let parsed = if body.len() <= 64 * 1024 {
        read(&body)
    } else {
        tokio::task::spawn_blocking(move || {
            let _reserved = reserved;
            read(&body)
        })
        .await
        .unwrap_or_else(|panicked| std::panic::resume_unwind(panicked.into_panic()))
    };
    parsed.map_err(|_| Judge0Error::BadRequest("request body is not valid JSON".into()))
}

/// Parses one submission and checks what the parser cannot: sizes against
/// the service's limits and the callback's target.
/// The callback's host name must resolve by `deadline`.
async fn validate(
    state: &AppState,
    body: &Value,
    base64: bool,
    deadline: std::time::Instant,
) -> Result<Submission, Errors> {
    let config = state.config();
    let mut submission = parse_submission(
        body,
        base64,
        state.languages().all(),
        &Limits::of(config),
        now_ms(),
    )?;
    let mut errors = Errors::new();
    let meta = &submission.meta;
    let too_long = |size: usize, limit: usize| {
        format!("is too long ({size} bytes; the maximum is {limit} bytes)")
    };
    if meta.source_code.len() > config.max_code_bytes {
        errors.insert(
            "source_code".into(),
            vec![too_long(meta.source_code.len(), config.max_code_bytes)],
        );
    }
    for (field, value) in [
        ("stdin", &meta.stdin),
        ("expected_output", &meta.expected_output),
    ] {
        let size = value.as_ref().map_or(0, String::len);
        if size > config.max_stdin_bytes {
            errors.insert(field.into(), vec![too_long(size, config.max_stdin_bytes)]);
        }
    }
    if let Some(url) = &meta.callback_url {
        if let Err(message) =
            callback::check_by(url, config.judge0.allow_private_callbacks, deadline).await
        {
            errors.insert("callback_url".into(), vec![message]);
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    submission.meta.created_at_ms = now_ms();
    Ok(submission)
}

/// How long a submission's [`Meta`] is kept: as long as its result, plus
/// the longest its callback waits for the job to finish.
fn meta_ttl(state: &AppState) -> Duration {
    state
        .config()
        .judge0
        .result_ttl
        .saturating_add(callback::LONGEST_WAIT)
}

/// Stores a submission's [`Meta`] once its job was accepted by the queue
/// (a refused submission leaves nothing behind). A failure is logged: the
/// job is queued and its token is answered; it reads without its request
/// fields.
async fn store_meta(state: &AppState, token: &TaskId, meta: &Meta) {
    let stored = serde_json::to_string(meta).expect("a submission's meta serializes");
    if let Err(error) = state
        .queue()
        .store_testset(&meta_key(token), &stored, 0, meta_ttl(state))
        .await
    {
        tracing::warn!(%token, %error, "judge0: the submission's request fields were not stored");
    }
}

/// Enqueues the submission's job, then stores its [`Meta`] and starts its
/// callback's delivery.
async fn enqueue(
    state: &AppState,
    caller: &Caller,
    submission: Submission,
) -> Result<TaskId, Judge0Error> {
    let id = TaskId::new();
    let meta = submission.meta;
    let job = Job {
        id,
        language: submission.language,
        code: meta.source_code.clone(),
        stdin: meta.stdin.clone().unwrap_or_default(),
        submitted_at_ms: meta.created_at_ms,
        args: submission.args,
        files: Vec::new(),
        time_limit_ms: submission.time_limit_ms,
        memory_limit_mb: submission.memory_limit_mb,
        owner: caller.owner().map(str::to_owned),
        judge: None,
        live: None,
    };
    let quota = caller.quota(&state.config().access);
    state
        .queue()
        .submit_for(&job, quota)
        .await
        .map_err(ApiError::queue)?;
    store_meta(state, &id, &meta).await;
    if meta.callback_url.is_some() {
        callback::spawn(state.clone(), id, job.owner, meta);
    }
    Ok(id)
}

/// Enqueues submissions of one language and one source as one judge-mode
/// job, each submission one of its tests (the program is compiled once),
/// each with a token of its own whose [`Meta::shared`] names the job and
/// the test.
async fn enqueue_shared(
    state: &AppState,
    caller: &Caller,
    submissions: Vec<Submission>,
) -> Result<Vec<TaskId>, Judge0Error> {
    let job_id = TaskId::new();
    let tokens: Vec<TaskId> = submissions.iter().map(|_| TaskId::new()).collect();
    let tests: Vec<Value> = submissions
        .iter()
        .enumerate()
        .map(|(index, s)| {
            json!({
                "name": (index + 1).to_string(),
                "stdin": s.meta.stdin.clone().unwrap_or_default(),
                "expected_output": s.meta.expected_output.clone().unwrap_or_default(),
                "args": s.args,
                "time_limit_ms": s.time_limit_ms,
                "memory_limit_mb": s.memory_limit_mb,
            })
        })
        .collect();
    // Built from its JSON form, so that every judge-mode option not named
    // here (a custom checker, an interactor, ...) keeps its default: plain
    // tests, the `lines` checker, no early stop.
    let spec: JudgeSpec = serde_json::from_value(json!({
        "tests": tests,
        "checker": {"type": "lines"},
        "stop_on_first_failure": false,
    }))
    .expect("a judge-mode spec of plain tests reads");
    crate::judge::check_sizes(Some(&spec), state.config())?;
    let first = &submissions[0];
    let job = Job {
        id: job_id,
        language: first.language.clone(),
        code: first.meta.source_code.clone(),
        stdin: String::new(),
        submitted_at_ms: first.meta.created_at_ms,
        args: Vec::new(),
        files: Vec::new(),
        time_limit_ms: None,
        memory_limit_mb: None,
        owner: caller.owner().map(str::to_owned),
        judge: Some(spec),
        live: None,
    };
    let quota = caller.quota(&state.config().access);
    state
        .queue()
        .submit_for(&job, quota)
        .await
        .map_err(ApiError::queue)?;
    let mut metas = Vec::with_capacity(submissions.len());
    for (test, (submission, token)) in submissions.into_iter().zip(&tokens).enumerate() {
        let mut meta = submission.meta;
        meta.shared = Some(Shared { job: job_id, test });
        store_meta(state, token, &meta).await;
        metas.push(meta);
    }
    for (meta, token) in metas.into_iter().zip(&tokens) {
        if meta.callback_url.is_some() {
            callback::spawn(state.clone(), *token, job.owner.clone(), meta);
        }
    }
    Ok(tokens)
}

async fn load_meta(state: &AppState, token: &TaskId) -> Option<Meta> {
    let stored = state
        .queue()
        .testset(&meta_key(token), None)
        .await
        .ok()
        .flatten()?;
    serde_json::from_str(&stored).ok()
}

/// The submission's JSON, or `None` for an unknown token (or another API
/// key's).
async fn lookup(
    state: &AppState,
    caller: &Caller,
    token: &str,
    fields: &Fields,
    base64: bool,
    task: Option<TaskState>,
) -> Result<Option<Map<String, Value>>, Judge0Error> {
    let Ok(id) = token.parse::<TaskId>() else {
        return Ok(None);
    };
    let meta = load_meta(state, &id).await;
    // A batch submission run as one test of a shared job reads that job.
    let (task_id, test) = match meta.as_ref().and_then(|m| m.shared) {
        Some(shared) => (shared.job, Some(shared.test)),
        None => (id, None),
    };
    let task = match task {
        Some(task) => task,
        None => match state
            .queue()
            .state_for(&task_id, caller.owner())
            .await
            .map_err(ApiError::QueueUnavailable)?
        {
            Some(task) => task,
            None => return Ok(None),
        },
    };
    let running = match task {
        TaskState::Pending => state
            .queue()
            .running_since(&task_id)
            .await
            .map_err(ApiError::QueueUnavailable)?
            .is_some(),
        TaskState::Done(_) => false,
    };
    let outcome = Outcome::of(&task, running, test, meta.as_ref());
    Ok(Some(render(
        &id.to_string(),
        meta.as_ref(),
        &outcome,
        fields,
        base64,
    )))
}

/// `POST /submissions`: `201 {"token"}`; with `?wait=true`, `201` and the
/// submission once finished (or as it is after the longest wait).
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    request: Request,
) -> Result<Response, Judge0Error> {
    let query = Query::parse(request.uri().query());
    let fields = query.fields()?;
    let limit = state.config().max_judge0_body_bytes();
    let submission = {
        // Dropped before the wait: only the submission's own fields stay.
        let body = read_json(request, limit, body::submission).await?;
        let deadline = std::time::Instant::now() + callback::TIMEOUT;
        validate(&state, &body, query.base64, deadline)
            .await
            .map_err(Judge0Error::Validation)?
    };
    let id = enqueue(&state, &caller, submission).await?;
    if !query.wait {
        return Ok((StatusCode::CREATED, Json(json!({"token": id}))).into_response());
    }
    let timeout = Duration::from_secs(state.config().max_wait_secs);
    let task = state
        .queue()
        .wait_for_result_for(&id, caller.owner(), timeout)
        .await
        .map_err(ApiError::QueueUnavailable)?;
    let body = lookup(
        &state,
        &caller,
        &id.to_string(),
        &fields,
        query.base64,
        task,
    )
    .await?
    .ok_or(Judge0Error::NotFound)?;
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET /submissions/{token}`.
pub(crate) async fn fetch(
    State(state): State<AppState>,
    caller: Caller,
    token: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, Judge0Error> {
    let query = Query::parse(query.as_deref());
    let fields = query.fields()?;
    let Ok(Path(token)) = token else {
        return Err(Judge0Error::NotFound);
    };
    let body = lookup(&state, &caller, &token, &fields, query.base64, None)
        .await?
        .ok_or(Judge0Error::NotFound)?;
    Ok(Json(body).into_response())
}

/// `POST /submissions/batch`: one `{"token"}` or validation-error object
/// per submission, in order; `201` when at least one was valid, else `422`.
pub(crate) async fn create_batch(
    State(state): State<AppState>,
    caller: Caller,
    request: Request,
) -> Result<Response, Judge0Error> {
    let query = Query::parse(request.uri().query());
    let limit = state.config().max_judge0_batch_body_bytes();
    let body = read_json(request, limit, body::batch).await?;
    let items = match body.get("submissions") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        _ => {
            return Err(Judge0Error::BadRequest(
                "there should be at least one submission in a batch".into(),
            ))
        }
    };
    if items.len() > MAX_BATCH {
        return Err(Judge0Error::BadRequest(format!(
            "number of submissions in a batch should be less than or equal to {MAX_BATCH}"
        )));
    }
    // Checked at once (their callbacks' host names resolved concurrently),
    // within one deadline for the whole batch.
    let deadline = std::time::Instant::now() + callback::TIMEOUT;
    let checked = futures_util::future::join_all(
        items
            .iter()
            .map(|item| validate(&state, item, query.base64, deadline)),
    )
    .await;
    drop(body);
    let any_valid = checked.iter().any(Result::is_ok);
    // Valid submissions of one language and one source run as one job
    // (compiled once); a submission alone in its group runs by itself.
    let mut groups: Vec<((String, String), Vec<usize>)> = Vec::new();
    for (index, item) in checked.iter().enumerate() {
        if let Ok(submission) = item {
            let key = (
                submission.language.clone(),
                submission.meta.source_code.clone(),
            );
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, members)) => members.push(index),
                None => groups.push((key, vec![index])),
            }
        }
    }
    let mut answer: Vec<Value> = checked
        .iter()
        .map(|item| match item {
            Ok(_) => Value::Null,
            Err(errors) => json!(errors),
        })
        .collect();
    let mut checked: Vec<Option<Submission>> = checked.into_iter().map(Result::ok).collect();
    // A group the queue refuses (the client's cap of unfinished jobs, a full
    // queue) answers an error object for each of its submissions; the
    // others keep their tokens. When none was queued, the refusal itself
    // is the answer (its status and `Retry-After`).
    let mut queued = false;
    let mut refusal = None;
    for (_, members) in groups {
        let submissions: Vec<Submission> = members
            .iter()
            .filter_map(|&index| checked[index].take())
            .collect();
        let tokens = if submissions.len() == 1 {
            let submission = submissions.into_iter().next().expect("one submission");
            enqueue(&state, &caller, submission)
                .await
                .map(|id| vec![id])
        } else {
            enqueue_shared(&state, &caller, submissions).await
        };
        match tokens {
            Ok(tokens) => {
                queued = true;
                for (index, token) in members.into_iter().zip(tokens) {
                    answer[index] = json!({"token": token});
                }
            }
            Err(error) => {
                let message = match &error {
                    Judge0Error::Api(api) => api.to_string(),
                    other => format!("{other:?}"),
                };
                for index in members {
                    answer[index] = json!({"error": message});
                }
                refusal.get_or_insert(error);
            }
        }
    }
    if let (false, Some(refusal)) = (queued, refusal) {
        return Err(refusal);
    }
    let status = if any_valid {
        StatusCode::CREATED
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, Json(answer)).into_response())
}

/// `GET /submissions/batch?tokens=a,b,c` (or a `tokens` header):
/// `{"submissions": [...]}` in order, `null` for an unknown token.
pub(crate) async fn fetch_batch(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, Judge0Error> {
    let query = Query::parse(query.as_deref());
    let fields = query.fields()?;
    let tokens = query
        .tokens
        .clone()
        .or_else(|| {
            headers
                .get("tokens")
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let tokens: Vec<&str> = tokens.split(',').filter(|t| !t.is_empty()).collect();
    if tokens.is_empty() {
        return Err(Judge0Error::BadRequest(
            "there should be at least one submission in a batch".into(),
        ));
    }
    if tokens.len() > MAX_BATCH {
        return Err(Judge0Error::BadRequest(format!(
            "number of submissions in a batch should be less than or equal to {MAX_BATCH}"
        )));
    }
    let mut submissions = Vec::with_capacity(tokens.len());
    for token in tokens {
        let found = lookup(&state, &caller, token.trim(), &fields, query.base64, None).await?;
        submissions.push(found.map_or(Value::Null, Value::Object));
    }
    Ok(Json(json!({"submissions": submissions})).into_response())
}

/// `GET /languages/{id}`: a language we run under any id we accept.
pub(crate) async fn language(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, Judge0Error> {
    let languages = state.languages().all();
    let mapping = id
        .ok()
        .and_then(|Path(id)| id.parse::<u32>().ok())
        .and_then(|id| by_id(id, languages))
        .ok_or(Judge0Error::NotFound)?;
    let source_file = languages
        .iter()
        .find(|l| l.name == mapping.canonical)
        .map(|l| l.file_name.clone());
    Ok(Json(json!({
        "id": mapping.id,
        "name": display_name(mapping, languages),
        "is_archived": false,
        "source_file": source_file,
        "compile_cmd": null,
        "run_cmd": null,
    }))
    .into_response())
}

/// `GET /languages/all`: every id we accept, sorted by name.
pub(crate) async fn all_languages(State(state): State<AppState>) -> Response {
    let languages = state.languages().all();
    let mut all: Vec<(String, u32)> = IDS
        .iter()
        .filter_map(|m| by_id(m.id, languages))
        .map(|m| (display_name(m, languages), m.id))
        .collect();
    all.sort();
    let body: Vec<Value> = all
        .into_iter()
        .map(|(name, id)| json!({"id": id, "name": name, "is_archived": false}))
        .collect();
    Json(body).into_response()
}

/// `GET /statuses`.
pub(crate) async fn statuses() -> Response {
    let body: Vec<Value> = STATUSES
        .iter()
        .map(|(id, description)| json!({"id": id, "description": description}))
        .collect();
    Json(body).into_response()
}

/// `GET /about`: `version` is the Judge0 release this API follows, which
/// the SDK needs to resolve its language aliases.
pub(crate) async fn about() -> Response {
    Json(json!({
        "version": super::VERSION,
        "homepage": null,
        "source_code": null,
        "maintainer": "code-runner (a Judge0 CE 1.13.1 compatible API)",
    }))
    .into_response()
}

/// `GET /config_info`: Judge0's 39 keys, with this service's values.
pub(crate) async fn config_info(State(state): State<AppState>) -> Response {
    let limits = Limits::of(state.config());
    Json(json!({
        "maintenance_mode": false,
        "enable_wait_result": true,
        "enable_compiler_options": true,
        "allowed_languages_for_compile_options": [],
        "enable_command_line_arguments": true,
        "enable_submission_delete": false,
        "enable_callbacks": true,
        "callbacks_max_tries": callback::MAX_TRIES,
        "callbacks_timeout": callback::TIMEOUT.as_secs_f64(),
        "enable_additional_files": false,
        "max_queue_size": 0,
        "cpu_time_limit": limits.cpu_time_limit,
        "max_cpu_time_limit": limits.max_cpu_time_limit,
        "cpu_extra_time": 1.0,
        "max_cpu_extra_time": 5.0,
        "wall_time_limit": limits.wall_time_limit,
        "max_wall_time_limit": limits.max_wall_time_limit,
        "memory_limit": limits.memory_limit,
        "max_memory_limit": limits.max_memory_limit,
        "stack_limit": 64_000,
        "max_stack_limit": 128_000,
        "max_processes_and_or_threads": 60,
        "max_max_processes_and_or_threads": 120,
        "enable_per_process_and_thread_time_limit": false,
        "allow_enable_per_process_and_thread_time_limit": true,
        "enable_per_process_and_thread_memory_limit": false,
        "allow_enable_per_process_and_thread_memory_limit": true,
        "max_file_size": 1024,
        "max_max_file_size": 4096,
        "number_of_runs": 1,
        "max_number_of_runs": 20,
        "redirect_stderr_to_stdout": false,
        "max_extract_size": 10_240,
        "enable_batched_submissions": true,
        "max_submission_batch_size": MAX_BATCH,
        "submission_cache_duration": 0.0,
        "use_docs_as_homepage": false,
        "allow_enable_network": false,
        "enable_network": false,
    }))
    .into_response()
}

/// `GET /workers`: one queue, its length, and the workers' slots.
pub(crate) async fn workers(State(state): State<AppState>) -> Result<Response, Judge0Error> {
    let stats = state
        .queue()
        .stats()
        .await
        .map_err(ApiError::QueueUnavailable)?;
    let total: u64 = stats.workers.iter().map(|w| u64::from(w.slots)).sum();
    let busy: u64 = stats
        .workers
        .iter()
        .map(|w| u64::from(w.busy.min(w.slots)))
        .sum();
    Ok(Json(json!([{
        "queue": "default",
        "size": stats.queued,
        "available": total,
        "idle": total - busy,
        "working": busy,
        "paused": 0,
        "failed": 0,
    }]))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_info_has_the_39_keys_the_sdk_requires() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let queue = std::sync::Arc::new(code_runner_queue::EmbeddedQueue::new(
            Duration::from_secs(60),
        ));
        let state = AppState::new(queue, Vec::new(), crate::ApiConfig::default());
        let response = runtime.block_on(config_info(State(state)));
        let bytes = runtime
            .block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
            .unwrap();
        let body: Map<String, Value> = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body.len(), 39);
        assert_eq!(body["max_submission_batch_size"], 20);
        assert!(body["cpu_time_limit"].is_f64());
    }
}
