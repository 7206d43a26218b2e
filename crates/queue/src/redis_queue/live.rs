//! Live logs in Redis (see [`crate::live`]): one stream per task and
//! direction, `P:live:{id}` (output) and `P:input:{id}` (input), each
//! `PEXPIRE`d to the result TTL on every append until the task's result is
//! stored, then to [`LIVE_AFTER_RESULT`] (or the result TTL when shorter),
//! which later appends no longer extend. Readers use `XREAD`
//! (exclusive of the id they give, so nothing is read twice); a blocking
//! read holds a dedicated connection from the pool for its wait.

use std::time::Duration;

use redis::streams::{StreamId, StreamReadReply};
use redis::Value;

use super::{redis_err, RedisQueue, BLOCKING_GRACE};
use crate::live::{
    LiveEntry, LiveEvent, LiveLog, LIVE_AFTER_RESULT, LIVE_READ_COUNT, MAX_LIVE_WAIT,
};
use crate::{QueueError, TaskId};

/// Sets a log's expiry to `ARGV[1]` ms unless its task's result is stored
/// (its expiry then at most `ARGV[2]` ms, the after-result keep).
const EXTEND: &str = "local t = redis.call('PTTL', KEYS[1]) \
    if t < 0 or t > tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end return 0";

impl RedisQueue {
    /// How long logs are kept once their task's result is stored, in ms.
    fn live_after_result_ms(&self) -> u64 {
        (LIVE_AFTER_RESULT.as_millis() as u64).min(self.inner.ttl_ms)
    }

    /// The task's result is stored: its logs expire soon.
    pub(super) async fn settle_live(&self, id: &TaskId) -> Result<(), QueueError> {
        let keep = self.live_after_result_ms();
        let keys = [
            self.live_key(id, LiveLog::Output),
            self.live_key(id, LiveLog::Input),
        ];
        self.on_shared("PEXPIRE live", |mut conn| {
            let mut pipe = redis::pipe();
            for key in &keys {
                pipe.cmd("PEXPIRE").arg(key).arg(keep).ignore();
            }
            async move { pipe.query_async::<()>(&mut conn).await }
        })
        .await
    }

    fn live_key(&self, id: &TaskId, log: LiveLog) -> String {
        let kind = match log {
            LiveLog::Output => "live",
            LiveLog::Input => "input",
        };
        format!("{}:{kind}:{id}", self.inner.keys.prefix)
    }

    pub(super) async fn append_live(
        &self,
        id: &TaskId,
        log: LiveLog,
        events: &[LiveEvent],
    ) -> Result<(), QueueError> {
        if events.is_empty() {
            return Ok(());
        }
        let key = self.live_key(id, log);
        let ttl_ms = self.inner.ttl_ms;
        let keep_ms = self.live_after_result_ms();
        self.on_shared("XADD live", |mut conn| {
            let mut pipe = redis::pipe();
            for event in events {
                let (kind, number, data) = event.to_fields();
                pipe.cmd("XADD")
                    .arg(&key)
                    .arg("*")
                    .arg("k")
                    .arg(kind)
                    .arg("n")
                    .arg(number)
                    .arg("d")
                    .arg(data)
                    .ignore();
            }
            if keep_ms < ttl_ms {
                pipe.cmd("EVAL")
                    .arg(EXTEND)
                    .arg(1)
                    .arg(&key)
                    .arg(ttl_ms)
                    .arg(keep_ms)
                    .ignore();
            } else {
                pipe.cmd("PEXPIRE").arg(&key).arg(ttl_ms).ignore();
            }
            async move { pipe.query_async::<()>(&mut conn).await }
        })
        .await
    }

    pub(super) async fn read_live(
        &self,
        id: &TaskId,
        log: LiveLog,
        after: Option<&str>,
        wait: Duration,
    ) -> Result<Vec<LiveEntry>, QueueError> {
        let key = self.live_key(id, log);
        let after = after.unwrap_or("0-0").to_owned();
        let wait = wait.min(MAX_LIVE_WAIT);
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT").arg(LIVE_READ_COUNT);
        if !wait.is_zero() {
            cmd.arg("BLOCK").arg(wait.as_millis().max(1) as u64);
        }
        cmd.arg("STREAMS").arg(&key).arg(&after);
        let reply: Option<StreamReadReply> = if wait.is_zero() {
            self.on_shared("XREAD live", |mut conn| {
                let cmd = cmd.clone();
                async move { cmd.query_async(&mut conn).await }
            })
            .await?
        } else {
            let node = self.inner.primary.node();
            let mut conn = match Self::pooled_blocking_connection(&node) {
                Some(conn) => conn,
                None => self.new_blocking_connection(&node).await?,
            };
            match tokio::time::timeout(wait + BLOCKING_GRACE, cmd.query_async(&mut conn)).await {
                Ok(Ok(reply)) => {
                    Self::return_blocking_connection(&node, conn);
                    reply
                }
                Ok(Err(e)) => {
                    self.inner.primary.suspect(&e);
                    return Err(redis_err("XREAD live")(e));
                }
                Err(_) => {
                    return Err(QueueError::Timeout {
                        op: "XREAD live",
                        waited: wait + BLOCKING_GRACE,
                    })
                }
            }
        };
        Ok(reply
            .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .filter_map(decode_entry)
            .collect())
    }
}

/// A stored entry as an event; an entry that is not one is skipped.
fn decode_entry(entry: StreamId) -> Option<LiveEntry> {
    let text = |name: &str| match entry.map.get(name)? {
        Value::BulkString(bytes) => Some(bytes.clone()),
        Value::SimpleString(text) => Some(text.clone().into_bytes()),
        _ => None,
    };
    let kind = String::from_utf8(text("k")?).ok()?;
    let number: i64 = std::str::from_utf8(&text("n")?).ok()?.parse().ok()?;
    let data = text("d").unwrap_or_default();
    let event = LiveEvent::from_fields(&kind, number, data)?;
    Some(LiveEntry {
        id: entry.id,
        event,
    })
}
