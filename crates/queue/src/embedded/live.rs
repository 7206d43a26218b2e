//! Live logs in process (see [`crate::live`]): per task and direction, a
//! list of entries with ids `0-<n>`, readers woken through a [`Notify`].
//! A log expires `result_ttl` after its last append, and
//! [`LIVE_AFTER_RESULT`](crate::live::LIVE_AFTER_RESULT) after its task's
//! result is stored ([`LiveLogs::settle`]); expired logs are dropped by the
//! next append or result. Their bytes count in the queue's byte budget
//! ([`LiveLogs::bytes`]); when they alone exceed it, the logs of finished
//! tasks are dropped first, soonest to expire first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::live::{entry_order, LiveEntry, LiveEvent, LiveLog, LIVE_READ_COUNT, MAX_LIVE_WAIT};
use crate::TaskId;

#[derive(Debug, Default)]
pub(super) struct LiveLogs {
    logs: Mutex<HashMap<(TaskId, LiveLog), Log>>,
    /// The bytes of every log's entries.
    bytes: std::sync::atomic::AtomicU64,
}

#[derive(Debug)]
struct Log {
    entries: Vec<LiveEvent>,
    expires_at: Instant,
    appended: Arc<Notify>,
    bytes: u64,
    /// The task's result is stored: appends no longer extend the expiry.
    settled: bool,
}

impl Log {
    fn new(ttl: Duration) -> Self {
        Self {
            entries: Vec::new(),
            expires_at: Instant::now() + ttl,
            appended: Arc::new(Notify::new()),
            bytes: 0,
            settled: false,
        }
    }
}

/// What an entry costs in the byte budget: its data and some overhead.
fn event_bytes(event: &LiveEvent) -> u64 {
    let data = match event {
        LiveEvent::Output { data, .. } | LiveEvent::Stdin(data) => data.len(),
        LiveEvent::State(state) => state.len(),
        LiveEvent::StdinEnd | LiveEvent::Signal(_) => 0,
    };
    data as u64 + 64
}

impl LiveLogs {
    /// The bytes the logs hold, for the queue's byte budget.
    pub(super) fn bytes(&self) -> u64 {
        self.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Drops the expired logs; then, while the logs exceed `budget`, the
    /// logs of finished tasks, soonest to expire first.
    fn purge(&self, logs: &mut HashMap<(TaskId, LiveLog), Log>, budget: Option<u64>) {
        let now = Instant::now();
        logs.retain(|_, log| log.expires_at > now);
        let mut total: u64 = logs.values().map(|log| log.bytes).sum();
        if let Some(budget) = budget {
            if total > budget {
                let mut settled: Vec<_> = logs
                    .iter()
                    .filter(|(_, log)| log.settled)
                    .map(|(key, log)| (log.expires_at, *key))
                    .collect();
                settled.sort_by_key(|(expires_at, _)| *expires_at);
                for (_, key) in settled {
                    if total <= budget {
                        break;
                    }
                    if let Some(log) = logs.remove(&key) {
                        total -= log.bytes;
                    }
                }
            }
        }
        self.bytes
            .store(total, std::sync::atomic::Ordering::Relaxed);
    }

    pub(super) fn append(
        &self,
        id: &TaskId,
        log: LiveLog,
        events: &[LiveEvent],
        ttl: Duration,
        budget: Option<u64>,
    ) {
        let mut logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let entry = logs.entry((*id, log)).or_insert_with(|| Log::new(ttl));
        entry.entries.extend_from_slice(events);
        entry.bytes += events.iter().map(event_bytes).sum::<u64>();
        if !entry.settled {
            entry.expires_at = now + ttl;
        }
        entry.appended.notify_waiters();
        self.purge(&mut logs, budget);
    }

    /// The task's result is stored: its logs expire `keep` from now (or
    /// sooner), whatever is appended later.
    pub(super) fn settle(&self, id: &TaskId, keep: Duration) {
        let mut logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        let until = Instant::now() + keep;
        for log in [LiveLog::Output, LiveLog::Input] {
            if let Some(entry) = logs.get_mut(&(*id, log)) {
                entry.settled = true;
                entry.expires_at = entry.expires_at.min(until);
            }
        }
        self.purge(&mut logs, None);
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
