//! Serving the router over TCP with the bounds a public server needs: a
//! deadline for every part of a request, and a cap on open connections
//! that still leaves room for `GET /health`.
//!
//! `axum::serve` has no timer at all: a client that trickles a request's
//! head, stalls its body or just keeps a connection open holds it for ever,
//! and enough of them exhaust the process's file descriptors, after which
//! not even `/health` is answered. Here each connection is served by hyper's
//! HTTP/1 connection (as `axum::serve` does, without HTTP/2) built with:
//!
//! - **a head deadline** ([`ServeConfig::header_timeout`], hyper's
//!   `header_read_timeout`): the request line and headers must arrive whole
//!   within it, counted from the connection's opening or, on a kept-alive
//!   connection, from the end of the previous answer; so it is also the
//!   keep-alive idle timeout. Then hyper closes the connection.
//! - **a body deadline** ([`ServeConfig::body_timeout`]): `POST /run-code`
//!   must receive its whole body within it, counted from when it starts
//!   reading it (after the API key and rate-limit checks); then it answers
//!   `408` and closes the connection, freeing what was read. A total
//!   deadline, not one per chunk, so a body trickled a byte at a time is cut
//!   off too. (A body no route reads is never read.)
//! - **a memory budget for bodies** ([`ServeConfig::max_body_memory`]): a
//!   body being received holds its declared size (the body limit when it
//!   declares none) of the budget until it is parsed; when the budget is
//!   spent, `POST /run-code` answers `503` with `Retry-After` before reading
//!   it. So stalled uploads cannot pin more memory than the budget.
//! - **a connection cap** ([`ServeConfig::max_connections`], lowered to fit
//!   the process's open-file limit): past it, up to [`SPARE_CONNECTIONS`]
//!   more are accepted with a short head deadline and no keep-alive, to
//!   answer `/health` as usual and anything else `503` with `Retry-After`;
//!   when those are all taken, a new one closes the oldest spare, so that
//!   clients holding spares open cannot lock out a health probe.
//!
//! A body declared larger than the limit (`Content-Length`) is refused with
//! `413` by the handler before a byte of it is read, so the client gets no
//! `100 Continue` (see `routes`).
//!
//! On shutdown the listener is closed, idle connections are closed at once
//! and the others once their answer is sent (`Graceful`). Connections may
//! be upgraded to WebSockets (live runs); an upgraded one is its
//! handler's, with that handler's timeouts, and keeps its place under the
//! connection cap until it closes.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::response::IntoResponse;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Semaphore};
use tower::ServiceExt;

use crate::error::ApiError;

/// How the API is served; see the module's documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// Time to send a request's head, from the connection's opening or the
    /// end of the previous answer (so also the keep-alive idle timeout).
    pub header_timeout: Duration,
    /// Time to send a `POST /run-code` body, from when it is first read.
    pub body_timeout: Duration,
    /// Most connections served at once (lowered to fit the open-file limit).
    pub max_connections: usize,
    /// Most bytes of request bodies being received at once (raised to one
    /// body limit if lower).
    pub max_body_memory: usize,
    /// Where `GET /metrics` is served (see [`MetricsAccess`]).
    pub metrics: MetricsAccess,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            max_connections: 1000,
            max_body_memory: 256 * 1024 * 1024,
            metrics: MetricsAccess::Open,
        }
    }
}

/// Who may read `GET /metrics`, which shows what `/stats` shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MetricsAccess {
    /// Anyone (the default, as for the seed's service endpoints).
    #[default]
    Open,
    /// Callers with an API key, as for `/stats` (when keys are configured).
    KeyRequired,
    /// Not on the API's port: served on a port of its own
    /// ([`crate::serve_metrics`]).
    OwnPort,
}

/// Connections accepted past the cap, to answer `/health` (and `503` to the
/// rest) rather than leave probes unanswered.
pub const SPARE_CONNECTIONS: usize = 64;

/// The head deadline of a spare connection.
const SPARE_HEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// The body deadline and memory budget, for the handler that reads a body
/// (`run_code`); absent when the router is called in-process.
#[derive(Debug, Clone)]
pub(crate) struct BodyBounds {
    pub(crate) timeout: Duration,
    /// The memory budget of bodies being received, in KiB.
    pub(crate) budget: Arc<Semaphore>,
}

/// A served connection's place under the connection cap, in every request's
/// extensions: a WebSocket handler keeps it for the socket's lifetime, so
/// upgraded connections count against `--max-connections` too.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionSlot(#[allow(dead_code)] Arc<tokio::sync::OwnedSemaphorePermit>);

/// Serves `router` on `listener` until `shutdown` resolves, within the
/// bounds of `config`. `peer_addresses` puts each request's peer address in
/// its extensions (`ConnectInfo`), for the rate limiter.
pub(crate) async fn serve_router(
    listener: TcpListener,
    router: Router,
    config: &ServeConfig,
    peer_addresses: bool,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let cap = connection_cap(config.max_connections);
    let permits = Arc::new(Semaphore::new(cap));
    let spares = Arc::new(Mutex::new(Spares::default()));
    let graceful = Graceful::new();
    let bounds = BodyBounds {
        timeout: config.body_timeout,
        budget: Arc::new(Semaphore::new(config.max_body_memory.div_ceil(1024))),
    };
    let mut served = http1::Builder::new();
    served
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout);
    let mut spare = http1::Builder::new();
    spare
        .timer(TokioTimer::new())
        .header_read_timeout(SPARE_HEADER_TIMEOUT.min(config.header_timeout))
        .keep_alive(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    accept_failed(err).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let permit = permits.clone().try_acquire_owned().ok();
        // Answers are one small write each; Nagle's algorithm would only
        // add latency on keep-alive connections.
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!("failed to set TCP_NODELAY on an accepted connection: {err}");
        }
        let peer = peer_addresses.then_some(peer);
        let router = router.clone();
        match permit {
            Some(permit) => {
                let bounds = bounds.clone();
                let slot = ConnectionSlot(Arc::new(permit));
                let held = slot.clone();
                let service = service_fn(move |mut request: hyper::Request<Incoming>| {
                    request.extensions_mut().insert(slot.clone());
                    call(router.clone(), request, bounds.clone(), peer)
                });
                spawn(&graceful, &served, tcp, service, held, None);
            }
            None => {
                let bounds = bounds.clone();
                let service = service_fn(move |request| {
                    let (router, bounds) = (router.clone(), bounds.clone());
                    async move {
                        if request.uri().path() == "/health" {
                            call(router, request, bounds, peer).await
                        } else {
                            Ok(ApiError::TooManyConnections { limit: cap }.into_response())
                        }
                    }
                });
                let (guard, evicted) = Spare::open(&spares);
                spawn(&graceful, &spare, tcp, service, guard, Some(evicted));
            }
        }
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Graceful shutdown of the served connections: each finishes its request
/// in flight and closes; [`Graceful::shutdown`] waits for all of them.
/// (hyper-util's `GracefulShutdown` does the same but cannot watch a
/// connection that may be upgraded to a WebSocket.) An upgraded connection
/// has left hyper: its handler ends it.
struct Graceful {
    stopping: tokio::sync::watch::Sender<()>,
    /// One clone per open connection; `closed` sees the last one go.
    open: tokio::sync::mpsc::Sender<()>,
    closed: tokio::sync::mpsc::Receiver<()>,
}

impl Graceful {
    fn new() -> Self {
        let (open, closed) = tokio::sync::mpsc::channel(1);
        Self {
            stopping: tokio::sync::watch::Sender::new(()),
            open,
            closed,
        }
    }

    async fn shutdown(self) {
        let Self {
            stopping,
            open,
            mut closed,
        } = self;
        stopping.send_replace(());
        drop(open);
        // `None` once every connection's sender is gone.
        let _ = closed.recv().await;
    }
}

/// Serves one connection in a task of its own, holding `guard` (its permit)
/// until it ends, or until `evicted` fires.
fn spawn<S>(
    graceful: &Graceful,
    builder: &http1::Builder,
    tcp: TcpStream,
    service: S,
    guard: impl Send + 'static,
    evicted: Option<oneshot::Receiver<()>>,
) where
    S: hyper::service::HttpService<Incoming, ResBody = axum::body::Body> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // With upgrades, so that a WebSocket (`/run-code/ws`, Piston's
    // `/api/v2/connect`) can take the connection over; once it has, the
    // socket lives in its handler's task, bounded by that handler's own
    // timeouts, and that task holds the connection's slot
    // ([`ConnectionSlot`]) until the socket closes.
    let connection = builder
        .serve_connection(TokioIo::new(tcp), service)
        .with_upgrades();
    let (mut stopping, open) = (graceful.stopping.subscribe(), graceful.open.clone());
    let connection = async move {
        let _open = open;
        tokio::pin!(connection);
        tokio::select! {
            ended = connection.as_mut() => return ended,
            _ = stopping.changed() => {}
        }
        connection.as_mut().graceful_shutdown();
        connection.await
    };
    tokio::spawn(async move {
        let evicted = async {
            match evicted {
                Some(evicted) => {
                    // Fired, or the sender dropped: either way, stop.
                    let _ = evicted.await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ended = connection => {
                // Timeouts, resets and malformed requests end here; none is ours.
                if let Err(err) = ended {
                    tracing::debug!("connection ended: {err}");
                }
            }
            () = evicted => tracing::debug!("spare connection closed for a newer one"),
        }
        drop(guard);
    });
}

/// The open spare connections, oldest first, each with the switch that
/// closes it. When all [`SPARE_CONNECTIONS`] are taken, a new one closes the
/// oldest: a spare is only ever needed for a moment (one `/health`, or one
/// `503`), so clients that keep spares open cannot lock out a health probe.
#[derive(Default)]
struct Spares {
    next: u64,
    open: VecDeque<(u64, oneshot::Sender<()>)>,
}

/// One spare connection's place in [`Spares`], given up when dropped.
struct Spare {
    spares: Arc<Mutex<Spares>>,
    id: u64,
}

impl Spare {
    /// Takes a place (closing the oldest spare when all are taken); the
    /// receiver fires when this one is closed in turn.
    fn open(spares: &Arc<Mutex<Spares>>) -> (Self, oneshot::Receiver<()>) {
        let (close, evicted) = oneshot::channel();
        let mut list = spares
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if list.open.len() >= SPARE_CONNECTIONS {
            if let Some((_, oldest)) = list.open.pop_front() {
                let _ = oldest.send(());
            }
        }
        list.next += 1;
        let id = list.next;
        list.open.push_back((id, close));
        let spare = Self {
            spares: spares.clone(),
            id,
        };
        (spare, evicted)
    }
}

impl Drop for Spare {
    fn drop(&mut self) {
        let mut list = self
            .spares
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        list.open.retain(|(id, _)| *id != self.id);
    }
}

/// Hands one request to the router, with what it needs from the connection.
async fn call(
    router: Router,
    mut request: hyper::Request<Incoming>,
    bounds: BodyBounds,
    peer: Option<SocketAddr>,
) -> Result<axum::response::Response, std::convert::Infallible> {
    request.extensions_mut().insert(bounds);
    if let Some(peer) = peer {
        request.extensions_mut().insert(ConnectInfo(peer));
    }
    router.oneshot(request.map(axum::body::Body::new)).await
}

/// Accepting failed: the process is out of file descriptors (or memory).
/// Waiting a little lets connections close instead of spinning.
async fn accept_failed(err: io::Error) {
    if matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::warn!("accept error: {err}; pausing for 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// `wanted`, lowered so that the connections (and the spare ones) leave a
/// quarter of the process's open-file limit, at least 64 descriptors, for
/// everything else: Redis, logs, in `serve` mode the worker's jobs. Without
/// that, `accept` fails with `Too many open files` before the cap is met.
fn connection_cap(wanted: usize) -> usize {
    let Ok((soft, _)) = rlimit::getrlimit(rlimit::Resource::NOFILE) else {
        return wanted;
    };
    let soft = usize::try_from(soft).unwrap_or(usize::MAX);
    let room = soft
        .saturating_sub((soft / 4).max(64))
        .saturating_sub(SPARE_CONNECTIONS)
        .max(1);
    if wanted > room {
        tracing::warn!(
            wanted,
            cap = room,
            open_file_limit = soft,
            "the connection cap is lowered to fit the open-file limit; raise it (ulimit -n) to allow more"
        );
        return room;
    }
    wanted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_fits_the_open_file_limit() {
        let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        let cap = connection_cap(usize::MAX);
        assert!(
            soft < 256 || (cap + SPARE_CONNECTIONS) as u64 <= soft * 3 / 4,
            "{cap} {soft}"
        );
        assert_eq!(connection_cap(10), 10.min(cap));
    }

    #[tokio::test]
    async fn a_new_spare_closes_the_oldest_when_all_are_taken() {
        let spares = Arc::new(Mutex::new(Spares::default()));
        let mut open: Vec<_> = (0..SPARE_CONNECTIONS)
            .map(|_| Spare::open(&spares))
            .collect();
        let (_newest, _) = Spare::open(&spares);
        let (_, oldest) = &mut open[0];
        assert!(oldest.try_recv().is_ok(), "the oldest spare was not closed");
        assert!(open[1].1.try_recv().is_err());
        drop(open);
        assert_eq!(spares.lock().unwrap().open.len(), 1);
    }
}
