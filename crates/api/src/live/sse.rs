//! `GET /results/{id}/events`: a task's story as Server-Sent Events.
//!
//! Events, in order (the data is JSON):
//!
//! | event | data | id |
//! |---|---|---|
//! | `state` | `{"state": "queued" \| "running"}` | the log entry's, when from the log |
//! | `compile_stdout`, `compile_stderr`, `stdout`, `stderr` | `{"offset": N, "data": "..."}` | the log entry's |
//! | `result` | the body `GET /results/{id}` answers once the task is finished | none |
//! | `end` | `{}` | none |
//!
//! The stream closes after `end`. A client that reconnects with
//! `Last-Event-ID` gets the log's entries after that one, nothing before
//! it, then the rest as above. A finished task's story comes at once; a
//! job submitted without `?stream=true` has no log, and its output comes
//! whole from its result, just before the `result` event. Same access
//! rules as `GET /results/{id}`: another API key's task is `404`.
//!
//! Bounds: a client may hold `max_event_streams_per_client` streams at once, the server
//! [`TOTAL`] (`429` beyond); a stream is closed after `max_wait_secs`
//! without `end`, and the client resumes with `Last-Event-ID`.

use std::convert::Infallible;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use code_runner_queue::live::is_entry_id;
use code_runner_queue::TaskId;
use futures_util::stream;
use serde_json::json;

use super::{text, watch, Watched};
use crate::access::Caller;
use crate::error::ApiError;
use crate::response::TaskStatus;
use crate::state::AppState;

/// The most event streams the process serves at once.
pub(crate) const TOTAL: usize = 512;

/// Open event streams, per client and in all.
#[derive(Debug, Default)]
pub(crate) struct Watchers(
    std::sync::Arc<std::sync::Mutex<(usize, std::collections::HashMap<String, usize>)>>,
);

/// One open event stream's place in [`Watchers`], given back when dropped.
pub(crate) struct Watcher {
    watchers: std::sync::Arc<std::sync::Mutex<(usize, std::collections::HashMap<String, usize>)>>,
    client: String,
}

impl Watchers {
    fn enter(&self, client: &str, per_client: usize) -> Result<Watcher, ApiError> {
        let mut open = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if open.0 >= TOTAL {
            return Err(ApiError::TooManyWatchers {
                limit: TOTAL,
                whose: "on this server",
            });
        }
        let mine = open.1.entry(client.to_owned()).or_default();
        if *mine >= per_client {
            return Err(ApiError::TooManyWatchers {
                limit: per_client,
                whose: "per client",
            });
        }
        *mine += 1;
        open.0 += 1;
        Ok(Watcher {
            watchers: self.0.clone(),
            client: client.to_owned(),
        })
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let mut open = self.watchers.lock().unwrap_or_else(|p| p.into_inner());
        open.0 -= 1;
        if let Some(mine) = open.1.get_mut(&self.client) {
            *mine -= 1;
            if *mine == 0 {
                open.1.remove(&self.client);
            }
        }
    }
}

/// `GET /results/{task_id}/events`.
pub(crate) async fn events(
    State(state): State<AppState>,
    caller: Caller,
    task_id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Ok(Path(task_id)) = task_id else {
        return Err(ApiError::TaskNotFound);
    };
    let id: TaskId = task_id.parse().map_err(|_| ApiError::TaskNotFound)?;
    let after = match headers.get("last-event-id") {
        None => None,
        Some(value) => match value.to_str() {
            Ok(text) if is_entry_id(text.trim()) => Some(text.trim().to_owned()),
            _ => return Err(ApiError::BadLastEventId),
        },
    };
    let owner = caller.owner().map(str::to_owned);
    let task = state
        .queue()
        .state_for(&id, owner.as_deref())
        .await
        .map_err(ApiError::QueueUnavailable)?
        .ok_or(ApiError::TaskNotFound)?;
    let watcher = state
        .watchers()
        .enter(caller.client(), state.config().max_event_streams_per_client)?;
    let lifetime = std::time::Duration::from_secs(state.config().max_wait_secs.max(1));
    let watched = watch(state, id, owner, task, after);
    let events = stream::unfold(Some(watched), move |receiver| async move {
        let mut receiver = receiver?;
        match receiver.recv().await {
            Some(Watched::Finished(task)) => {
                let result = Event::default()
                    .event("result")
                    .data(json_of(&TaskStatus::new(id, &task, None)));
                // `end` follows, then the stream closes.
                Some((
                    stream::iter(vec![
                        Ok::<_, Infallible>(result),
                        Ok(Event::default().event("end").data("{}")),
                    ]),
                    None,
                ))
            }
            Some(Watched::Unavailable) => {
                let gone = Event::default()
                    .event("error")
                    .data(r#"{"detail":"queue unavailable, try again"}"#);
                Some((stream::iter(vec![Ok(gone)]), None))
            }
            Some(event) => Some((stream::iter(vec![Ok(to_event(event))]), Some(receiver))),
            None => None,
        }
    });
    // Closed after its lifetime without `end`: the client resumes.
    let events = futures_util::StreamExt::take_until(
        futures_util::StreamExt::flatten(events),
        tokio::time::sleep(lifetime),
    );
    let events = futures_util::StreamExt::map(events, move |event| {
        let _held = &watcher;
        event
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

fn to_event(event: Watched) -> Event {
    let (id, event) = match event {
        Watched::State { id, state } => (
            id,
            Event::default()
                .event("state")
                .data(json!({ "state": state }).to_string()),
        ),
        Watched::Output {
            id,
            stream,
            offset,
            data,
        } => (
            id,
            Event::default()
                .event(stream.name())
                .data(json!({ "offset": offset, "data": text(&data) }).to_string()),
        ),
        Watched::Finished(_) | Watched::Unavailable => unreachable!("handled by the caller"),
    };
    match id {
        Some(id) => event.id(id),
        None => event,
    }
}

fn json_of(status: &TaskStatus<'_>) -> String {
    serde_json::to_string(status).unwrap_or_else(|_| "{}".into())
}
