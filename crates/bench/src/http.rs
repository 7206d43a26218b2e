//! A minimal HTTP/1.1 client: one keep-alive TCP connection per [`Conn`],
//! built on `hyper::client::conn::http1`, talking only to the loopback.
//!
//! It has no pool and no retries on purpose: the load phase wants one
//! connection per task with nothing between the task and the socket, and the
//! job phases want to see every failure rather than have it hidden.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use anyhow::{bail, Context};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How long opening a connection may take; the server is on this machine.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one request of a [`Conn`] may take: a server that stops answering
/// must fail the benchmark, not hang it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The driver of one connection: it must be polled for requests to progress.
pub type Driver = Connection<TokioIo<TcpStream>, Full<Bytes>>;

/// Where the server is: a loopback socket address and its `Host` header.
#[derive(Debug, Clone)]
pub struct Target {
    addr: SocketAddr,
    host: HeaderValue,
}

impl Target {
    /// Parses `http://HOST:PORT[/]`. Refuses anything but plain HTTP to a
    /// loopback address: this tool floods its target, so it must never be
    /// pointed at another machine by mistake.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .with_context(|| format!("server URL {url:?} must start with http://"))?;
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            bail!("server URL {url:?} must be http://HOST:PORT with no path");
        }
        let addr = authority
            .to_socket_addrs()
            .with_context(|| format!("resolving {authority:?} (HOST:PORT expected)"))?
            .find(|addr| addr.ip().is_loopback())
            .with_context(|| format!("{authority:?} is not a loopback address"))?;
        let host = HeaderValue::from_str(authority)
            .with_context(|| format!("{authority:?} is not a valid Host header"))?;
        Ok(Self { addr, host })
    }

    /// The value of the `Host` header of every request.
    pub fn host(&self) -> &HeaderValue {
        &self.host
    }
}

/// Opens a connection and returns its request half and its driver, for a
/// caller that polls the driver itself (the load phase runs both in one task
/// to save a wake-up per request).
pub async fn open(target: &Target) -> anyhow::Result<(SendRequest<Full<Bytes>>, Driver)> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target.addr))
        .await
        .with_context(|| format!("connecting to {}: timed out", target.addr))?
        .with_context(|| format!("connecting to {}", target.addr))?;
    // Requests are small and answered one at a time: Nagle would only delay them.
    stream.set_nodelay(true).context("setting TCP_NODELAY")?;
    let (sender, driver) = http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP/1.1 handshake")?;
    Ok((sender, driver))
}

/// Builds a request; `body` makes it a JSON request.
pub fn request(
    method: Method,
    uri: Uri,
    host: &HeaderValue,
    body: Option<Bytes>,
) -> Request<Full<Bytes>> {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header(HOST, host.clone());
    if body.is_some() {
        builder = builder.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    builder
        .body(Full::new(body.unwrap_or_default()))
        .expect("method, URI and headers are valid by construction")
}

/// Sends one request on `sender` and reads the whole answer.
pub async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> anyhow::Result<(StatusCode, Bytes)> {
    sender.ready().await.context("connection closed")?;
    let response = sender
        .send_request(request)
        .await
        .context("sending the request")?;
    let status = response.status();
    // The body must be read to the end for the connection to be reused.
    let body = response
        .into_body()
        .collect()
        .await
        .context("reading the answer")?
        .to_bytes();
    Ok((status, body))
}

/// One keep-alive connection whose driver runs in its own task; for the
/// phases where a request at a time is enough.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: HeaderValue,
}

impl Conn {
    pub async fn connect(target: &Target) -> anyhow::Result<Self> {
        let (sender, driver) = open(target).await?;
        // The driver ends when the sender is dropped or the socket closes; a
        // failure shows up in the next request, so its own result is ignored.
        tokio::spawn(async move {
            let _ = driver.await;
        });
        Ok(Self {
            sender,
            host: target.host().clone(),
        })
    }

    pub async fn get(&mut self, path: &str) -> anyhow::Result<(StatusCode, Bytes)> {
        let uri = Uri::try_from(path).with_context(|| format!("bad path {path:?}"))?;
        let request = request(Method::GET, uri, &self.host, None);
        self.exchange(request)
            .await
            .with_context(|| format!("GET {path}"))
    }

    pub async fn post_json(
        &mut self,
        path: &'static str,
        body: Bytes,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let request = request(Method::POST, Uri::from_static(path), &self.host, Some(body));
        self.exchange(request)
            .await
            .with_context(|| format!("POST {path}"))
    }

    async fn exchange(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        tokio::time::timeout(REQUEST_TIMEOUT, exchange(&mut self.sender, request))
            .await
            .with_context(|| format!("no answer within {REQUEST_TIMEOUT:?}"))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_loopback_only() {
        assert!(Target::parse("http://127.0.0.1:8000").is_ok());
        assert!(Target::parse("http://127.0.0.1:8000/").is_ok());
        assert!(Target::parse("http://localhost:8000").is_ok());
        assert!(Target::parse("http://10.0.0.1:8000").is_err());
        assert!(Target::parse("https://127.0.0.1:8000").is_err());
        assert!(Target::parse("http://127.0.0.1:8000/api").is_err());
    }
}
