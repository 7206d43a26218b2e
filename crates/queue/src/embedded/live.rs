//! Live logs in process (see [`crate::live`]): per task and direction, a
//! list of entries with ids `0-<n>`, readers woken through a [`Notify`].
//! A log expires `result_ttl` after its last append; expired logs are
//! dropped by the next append. Their bytes are bounded by the jobs' output
//! caps and are not counted in the queue's byte budget.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::live::{entry_order, LiveEntry, LiveEvent, LiveLog, LIVE_READ_COUNT, MAX_LIVE_WAIT};
use crate::TaskId;

#[derive(Debug, Default)]
pub(super) struct LiveLogs {
    logs: Mutex<HashMap<(TaskId, LiveLog), Log>>,
}

#[derive(Debug)]
struct Log {
    entries: Vec<LiveEvent>,
    expires_at: Instant,
    appended: Arc<Notify>,
}

impl Log {
    fn new(ttl: Duration) -> Self {
        Self {
            entries: Vec::new(),
            expires_at: Instant::now() + ttl,
            appended: Arc::new(Notify::new()),
        }
    }
}

impl LiveLogs {
    pub(super) fn append(&self, id: &TaskId, log: LiveLog, events: &[LiveEvent], ttl: Duration) {
        let mut logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        logs.retain(|_, log| log.expires_at > now);
        let entry = logs.entry((*id, log)).or_insert_with(|| Log::new(ttl));
        entry.entries.extend_from_slice(events);
        entry.expires_at = now + ttl;
        entry.appended.notify_waiters();
    }

    pub(super) async fn read(
        &self,
        id: &TaskId,
        log: LiveLog,
        after: Option<&str>,
        wait: Duration,
        ttl: Duration,
    ) -> Vec<LiveEntry> {
        // Entry `0-n` is the n-th (from 1); a read after `0-n` starts at index n.
        let (_, start) = entry_order(after);
        let start = usize::try_from(start).unwrap_or(usize::MAX);
        let deadline = tokio::time::Instant::now() + wait.min(MAX_LIVE_WAIT);
        loop {
            let appended = {
                let mut logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
                let entry = logs.entry((*id, log)).or_insert_with(|| Log::new(ttl));
                let found: Vec<LiveEntry> = entry
                    .entries
                    .iter()
                    .enumerate()
                    .skip(start)
                    .take(LIVE_READ_COUNT)
                    .map(|(index, event)| LiveEntry {
                        id: format!("0-{}", index + 1),
                        event: event.clone(),
                    })
                    .collect();
                if !found.is_empty() {
                    return found;
                }
                entry.appended.clone()
            };
            let notified = appended.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // An append between the unlock and `enable` would be missed:
            // look once more now that the waiter is registered.
            {
                let logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
                if logs
                    .get(&(*id, log))
                    .is_some_and(|entry| entry.entries.len() > start)
                {
                    continue;
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Vec::new();
            }
        }
    }
}
