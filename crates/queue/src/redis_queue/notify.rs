//! Waking clients that wait for a task's result, through Redis pub/sub.
//!
//! Whatever gives a task its final state (`complete.lua`, a cancel, a job
//! retired after too many deliveries) publishes on the task's channel
//! `{prefix}:done:{id}` in the same atomic script. Each API process holds
//! **one** subscriber connection, owned by one task (the "actor" below), and
//! fans the messages out to any number of in-process waiters through a
//! [`Notify`] per task: a thousand clients waiting on a thousand tasks cost
//! one connection and a thousand subscriptions on it, not a thousand
//! connections, and nothing polls.
//!
//! The actor keeps the reference count of waiters per channel: the first
//! waiter of a task subscribes, the last one to leave unsubscribes. Requests
//! are batched (one `SUBSCRIBE a b c` for everything that arrived together).
//! A waiter is answered only once Redis has confirmed its subscription, so
//! reading the state *after* that can never miss a result: either the result
//! was written before (the read sees it) or after (the message arrives).
//!
//! A message that is a task's final state itself (`complete.lua` publishes
//! small ones whole) is kept with the channel's waiters ([`Signal`]), so
//! that they answer from it without reading the state back: one Redis
//! round trip less between a job's end and its waiting client.
//!
//! When the subscriber connection drops, the actor reconnects, subscribes to
//! every channel again and then wakes every waiter, so each re-reads its
//! task's state: a result published while the connection was down is not
//! missed, only noticed late. Until a new connection has its subscriptions
//! (Redis may refuse them: an ACL), each failed try waits longer before the
//! next, from 50 ms to 1 s.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use super::primary::Primary;
use redis::aio::{PubSubSink, PubSubStream};
use tokio::sync::{mpsc, oneshot, Notify};

/// What the waiters of one channel are woken by: the wake-up itself, and
/// the final state when the message carried it.
#[derive(Debug, Default)]
pub(super) struct Signal {
    pub(super) notify: Notify,
    published: std::sync::Mutex<Option<Arc<[u8]>>>,
}

impl Signal {
    /// The final state a message on the channel carried, if one did.
    pub(super) fn published(&self) -> Option<Arc<[u8]>> {
        self.published
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Wakes the waiters, with the message's payload when it is a state (a
    /// JSON object; other publishers send `done`).
    fn wake(&self, payload: &[u8]) {
        if payload.first() == Some(&b'{') {
            *self.published.lock().unwrap_or_else(|p| p.into_inner()) = Some(payload.into());
        }
        self.notify.notify_waiters();
    }
}

use crate::QueueError;

/// Longest a (re)connection attempt of the subscriber may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Back-off between failed reconnection attempts: from the first to the last.
const RECONNECT_DELAYS: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(1));

/// The handle the queue keeps; the actor runs until every handle is dropped.
#[derive(Debug)]
pub(super) struct Notifier {
    commands: mpsc::UnboundedSender<Command>,
}

enum Command {
    Watch {
        channel: String,
        reply: oneshot::Sender<Arc<Signal>>,
    },
    Unwatch {
        channel: String,
    },
}

/// One waiter's registration; unregisters itself when dropped.
pub(super) struct Watch {
    pub(super) signal: Arc<Signal>,
    channel: String,
    commands: mpsc::UnboundedSender<Command>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Unwatch {
            channel: std::mem::take(&mut self.channel),
        });
    }
}

/// A registration sent to the actor and not yet confirmed. Dropping it
/// before the confirmation still unregisters, so a waiter that gives up
/// early leaves no subscription behind.
struct PendingWatch {
    channel: Option<String>,
    commands: mpsc::UnboundedSender<Command>,
}

impl Drop for PendingWatch {
    fn drop(&mut self) {
        if let Some(channel) = self.channel.take() {
            let _ = self.commands.send(Command::Unwatch { channel });
        }
    }
}

impl Notifier {
    /// Starts the actor (it connects on its own, in the background).
    pub(super) fn start(primary: Arc<Primary>) -> Self {
        let (commands, receiver) = mpsc::unbounded_channel();
        tokio::spawn(Actor::new(primary).run(receiver));
        Self { commands }
    }

    /// Registers interest in `channel`; returns once Redis has confirmed the
    /// subscription. Errors only when the actor is gone (the queue is being
    /// dropped); while Redis is unreachable this waits, so callers bound it
    /// with their own deadline.
    pub(super) async fn watch(&self, channel: String) -> Result<Watch, QueueError> {
        let (reply, confirmed) = oneshot::channel();
        let mut pending = PendingWatch {
            channel: Some(channel.clone()),
            commands: self.commands.clone(),
        };
        self.commands
            .send(Command::Watch {
                channel: channel.clone(),
                reply,
            })
            .map_err(|_| QueueError::Closed)?;
        let signal = confirmed.await.map_err(|_| QueueError::Closed)?;
        pending.channel = None;
        Ok(Watch {
            signal,
            channel,
            commands: self.commands.clone(),
        })
    }
}

struct Entry {
    signal: Arc<Signal>,
    waiters: usize,
}

struct Actor {
    /// Each (re)connection goes to the primary current at that moment.
    primary: Arc<Primary>,
    /// Channels with at least one waiter.
    entries: HashMap<String, Entry>,
    /// Channels Redis has confirmed on the current connection.
    subscribed: HashSet<String>,
    /// Waiters to answer once their channel is confirmed.
    unconfirmed: Vec<(String, oneshot::Sender<Arc<Signal>>)>,
    /// Channels whose first waiter came or last waiter left since the
    /// subscriptions were last made to match (all of them on a new
    /// connection).
    changed: HashSet<String>,
}

impl Actor {
    fn new(primary: Arc<Primary>) -> Self {
        Self {
            primary,
            entries: HashMap::new(),
            subscribed: HashSet::new(),
            unconfirmed: Vec::new(),
            changed: HashSet::new(),
        }
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut delay = RECONNECT_DELAYS.0;
        loop {
            // A connection counts as working once Redis has taken its
            // subscriptions: until then every failure (no connection, or a
            // SUBSCRIBE refused, say by an ACL) waits before the next try,
            // so a server that keeps refusing is not asked in a tight loop.
            let failure = match self.connect().await {
                Err(e) => format!("cannot open the Redis subscriber connection: {e}"),
                Ok((mut sink, mut stream)) => {
                    // Re-subscribe to everything that has waiters, then let
                    // every waiter re-read its state: results may have been
                    // published while there was no connection.
                    self.subscribed.clear();
                    self.changed = self.entries.keys().cloned().collect();
                    match self.sync_subscriptions(&mut sink).await {
                        Err(e) => format!("cannot subscribe to result channels: {e}"),
                        Ok(()) => {
                            delay = RECONNECT_DELAYS.0;
                            for entry in self.entries.values() {
                                entry.signal.notify.notify_waiters();
                            }
                            if !self.serve(&mut commands, &mut sink, &mut stream).await {
                                return;
                            }
                            // A working connection was lost: try again at once.
                            continue;
                        }
                    }
                }
            };
            tracing::warn!(error = %failure, retry_in = ?delay, "Redis subscriber connection not working; retrying");
            // Keep applying Unwatch commands meanwhile, so a long outage
            // does not pile up registrations nobody holds.
            let sleep = tokio::time::sleep(delay);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    () = &mut sleep => break,
                    command = commands.recv() => match command {
                        Some(command) => self.apply(command),
                        None => return,
                    },
                }
            }
            delay = (delay * 2).min(RECONNECT_DELAYS.1);
        }
    }

    /// Runs a working connection: registrations in, messages out, until the
    /// connection fails (true: reconnect) or every handle is gone (false).
    async fn serve(
        &mut self,
        commands: &mut mpsc::UnboundedReceiver<Command>,
        sink: &mut PubSubSink,
        stream: &mut PubSubStream,
    ) -> bool {
        loop {
            tokio::select! {
                command = commands.recv() => {
                    let Some(command) = command else { return false };
                    self.apply(command);
                    while let Ok(command) = commands.try_recv() {
                        self.apply(command);
                    }
                    if let Err(e) = self.sync_subscriptions(sink).await {
                        tracing::warn!(error = %e, "result subscription failed; reconnecting");
                        return true;
                    }
                }
                message = next(stream) => match message {
                    Some(message) => {
                        if let Some(entry) = self.entries.get(message.get_channel_name()) {
                            entry.signal.wake(message.get_payload_bytes());
                        }
                    }
                    None => {
                        tracing::warn!("Redis subscriber connection closed; reconnecting");
                        return true;
                    }
                },
            }
        }
    }

    async fn connect(&self) -> Result<(PubSubSink, PubSubStream), String> {
        let client = self.primary.node().client.clone();
        match tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub()).await {
            Ok(Ok(pubsub)) => Ok(pubsub.split()),
            Ok(Err(e)) => {
                self.primary.suspect(&e);
                Err(e.to_string())
            }
            Err(_) => Err(format!("no connection within {CONNECT_TIMEOUT:?}")),
        }
    }

    fn apply(&mut self, command: Command) {
        match command {
            Command::Watch { channel, reply } => {
                let entry = self.entries.entry(channel.clone()).or_insert_with(|| {
                    self.changed.insert(channel.clone());
                    Entry {
                        signal: Arc::new(Signal::default()),
                        waiters: 0,
                    }
                });
                entry.waiters += 1;
                self.unconfirmed.push((channel, reply));
            }
            Command::Unwatch { channel } => {
                if let Some(entry) = self.entries.get_mut(&channel) {
                    entry.waiters -= 1;
                    if entry.waiters == 0 {
                        self.entries.remove(&channel);
                        self.changed.insert(channel);
                    }
                }
            }
        }
    }

    /// Makes the connection's subscriptions match the channels with waiters,
    /// then answers the waiters whose channel is now confirmed. Only the
    /// channels whose waiters came or went since the last call are looked
    /// at (`changed`), so a call costs what changed, not what is waiting: a
    /// thousand clients waiting at once would otherwise make each arrival
    /// and departure compare a thousand names.
    async fn sync_subscriptions(&mut self, sink: &mut PubSubSink) -> redis::RedisResult<()> {
        let mut stale = Vec::new();
        let mut new = Vec::new();
        for channel in self.changed.drain() {
            match (
                self.entries.contains_key(&channel),
                self.subscribed.contains(&channel),
            ) {
                (false, true) => stale.push(channel),
                (true, false) => new.push(channel),
                _ => {}
            }
        }
        // On an error the caller reconnects, and a new connection looks at
        // every channel again.
        if !stale.is_empty() {
            sink.unsubscribe(&stale).await?;
            for channel in &stale {
                self.subscribed.remove(channel);
            }
        }
        if !new.is_empty() {
            sink.subscribe(&new).await?;
            self.subscribed.extend(new);
        }
        let mut still_waiting = Vec::new();
        for (channel, reply) in self.unconfirmed.drain(..) {
            match self.entries.get(&channel) {
                Some(entry) if self.subscribed.contains(&channel) => {
                    let _ = reply.send(entry.signal.clone());
                }
                // Registered and already gone again (its waiter gave up):
                // nobody is listening for the answer.
                None => {}
                Some(_) => still_waiting.push((channel, reply)),
            }
        }
        self.unconfirmed = still_waiting;
        Ok(())
    }
}

/// `StreamExt::next`, without a dependency on a stream-utilities crate.
async fn next<S: futures_core::Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *stream).poll_next(cx)).await
}
