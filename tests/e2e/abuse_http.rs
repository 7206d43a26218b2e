//! Abuse of the HTTP layer itself, against the real `code-runner api`
//! process on a random port (with a real Redis; no worker is needed): bodies
//! that amplify into huge error answers, clients that trickle, stall or idle,
//! more connections than the process has descriptors for, a declared body
//! over the limit, and the headers and `/metrics` access of issue 11.
//!
//! Settings are given as environment variables, not flags, so that the same
//! test can be pointed at an older build with `CODE_RUNNER_E2E_BIN=path`
//! (which ignores the variables it does not know) to see it fail there.
//! Slow-client tests configure 2-second timeouts and finish in seconds.
//!
//! The RSS figures of the amplification test are printed (`--no-capture`)
//! for the record.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use code_runner_testkit::{unique_prefix, RedisServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{free_port, BIN};

/// The largest error body the API may send (issue 11).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// A running `code-runner api`, stopped when dropped.
struct Api {
    child: Child,
    address: SocketAddr,
    log: PathBuf,
    _redis: RedisServer,
}

/// How to start it: extra environment, an open-file limit.
#[derive(Default)]
struct Start<'a> {
    env: &'a [(&'a str, String)],
    nofile: Option<u32>,
}

fn binary() -> String {
    std::env::var("CODE_RUNNER_E2E_BIN").unwrap_or_else(|_| BIN.to_owned())
}

async fn start(start: Start<'_>) -> Api {
    let redis = RedisServer::start();
    let port = free_port();
    let prefix = unique_prefix();
    let log = std::env::temp_dir().join(format!("code-runner-abuse-{prefix}.log"));
    let mut command = match start.nofile {
        // prlimit(1) sets the limit and runs the binary under it.
        Some(n) => {
            let mut c = Command::new("prlimit");
            c.arg(format!("--nofile={n}:{n}")).arg(binary());
            c
        }
        None => Command::new(binary()),
    };
    command
        .args(["api", "--bind", &format!("127.0.0.1:{port}")])
        .args(["--redis-url", &redis.url(), "--key-prefix", &prefix])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    for (name, value) in start.env {
        command.env(name, value);
    }
    let child = command.spawn().expect("start code-runner api");
    let mut api = Api {
        child,
        address: SocketAddr::from(([127, 0, 0, 1], port)),
        log,
        _redis: redis,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while get_health(api.address, Duration::from_millis(500))
        .await
        .is_none()
    {
        if let Ok(Some(status)) = api.child.try_wait() {
            panic!("the API exited early ({status}): {}", api.log());
        }
        assert!(Instant::now() < deadline, "the API did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    api
}

impl Api {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `(VmRSS, VmHWM)` of the process, in MiB.
    fn memory_mib(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc/PID/status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<f64>()
                        .ok()
                })
                .unwrap_or_else(|| panic!("no {name} in /proc/PID/status"))
                / 1024.0
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// `GET /health` on a fresh connection: its status code, or `None` when no
/// answer came within `within`.
async fn get_health(address: SocketAddr, within: Duration) -> Option<u16> {
    let exchange = async {
        let mut tcp = TcpStream::connect(address).await.ok()?;
        tcp.write_all(b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let head = read_head(&mut tcp).await?;
        status_of(&head)
    };
    tokio::time::timeout(within, exchange).await.ok().flatten()
}

/// Reads up to the end of a response head (`\r\n\r\n`); `None` if the
/// connection closes first.
async fn read_head(tcp: &mut TcpStream) -> Option<String> {
    read_head_from(tcp).await
}

async fn read_head_from(tcp: &mut (impl AsyncReadExt + Unpin)) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tcp.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

fn status_of(head: &str) -> Option<u16> {
    head.split(' ').nth(1)?.parse().ok()
}

/// Waits (at most `cap`) for the server to close `tcp`, reading and
/// dropping whatever it sends: how long that took, or `None` if it is
/// still open at `cap`.
async fn closed_within(tcp: &mut TcpStream, cap: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut sink = [0u8; 4096];
    let wait = async {
        loop {
            match tcp.read(&mut sink).await {
                Ok(0) | Err(_) => return started.elapsed(),
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(cap, wait).await.ok()
}

/// A `POST /run-code` head for a JSON body of `length` bytes.
fn post_head(length: usize, extra: &str) -> String {
    format!(
        "POST /run-code HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n{extra}\r\n"
    )
}

/// The amplifying bodies of issue 11, each just within the default body
/// limit (2 MiB + 64 KiB).
fn amplifying_bodies() -> Vec<(&'static str, String)> {
    let zeros = format!("[{}0]", "0,".repeat(1_081_313));
    vec![
        (
            "args: 1,081,314 integers",
            format!(r#"{{"language":"python","code":"x","args":{zeros}}}"#),
        ),
        (
            "files: 1,081,314 integers",
            format!(r#"{{"language":"python","code":"x","files":{zeros}}}"#),
        ),
        (
            "language and code missing, 2 MB of stdin",
            format!(r#"{{"stdin":"{}"}}"#, "x".repeat(2_100_000)),
        ),
        (
            "64 args that are not strings, each a 30 KB list",
            format!(
                r#"{{"language":"python","code":"x","args":[{}]}}"#,
                vec![format!("[{}0]", "0,".repeat(15_000)); 64].join(",")
            ),
        ),
    ]
}

#[tokio::test]
async fn amplifying_bodies_get_small_422s_and_memory_stays_flat() {
    let api = start(Start::default()).await;
    let client = reqwest::Client::new();
    let (rss_start, _) = api.memory_mib();
    let mut figures = vec![format!("start: RSS {rss_start:.0} MiB")];
    let bodies = amplifying_bodies();
    for (name, body) in &bodies {
        let response = client
            .post(api.url("/run-code"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("POST /run-code");
        assert_eq!(response.status(), 422, "{name}");
        let answer = response.bytes().await.unwrap();
        let (rss, hwm) = api.memory_mib();
        figures.push(format!(
            "{name}: a {} byte 422 for a {} byte body; RSS {rss:.0} MiB, peak {hwm:.0} MiB",
            answer.len(),
            body.len()
        ));
        assert!(
            answer.len() <= MAX_ERROR_BODY,
            "{name}: a {} byte answer",
            answer.len()
        );
    }

    // Eight at once.
    let (args_body, files_body) = (&bodies[0].1, &bodies[1].1);
    let sends = (0..8).map(|n| {
        let body = if n % 2 == 0 { args_body } else { files_body }.clone();
        let request = client
            .post(api.url("/run-code"))
            .header("content-type", "application/json")
            .body(body);
        async move {
            let response = request.send().await.expect("POST /run-code");
            (response.status(), response.bytes().await.unwrap().len())
        }
    });
    for (status, size) in futures_join_all(sends).await {
        assert_eq!(status, 422);
        assert!(size <= MAX_ERROR_BODY, "a {size} byte answer");
    }
    let (rss, hwm) = api.memory_mib();
    figures.push(format!(
        "eight at once: RSS {rss:.0} MiB, peak {hwm:.0} MiB"
    ));
    let health = Instant::now();
    assert_eq!(
        get_health(api.address, Duration::from_secs(5)).await,
        Some(200)
    );
    figures.push(format!("/health after them: {:?}", health.elapsed()));

    // Ten clients that send such a body and never read the answer.
    let mut silent = Vec::new();
    for _ in 0..10 {
        let mut tcp = TcpStream::connect(api.address).await.unwrap();
        tcp.write_all(post_head(args_body.len(), "").as_bytes())
            .await
            .unwrap();
        tcp.write_all(args_body.as_bytes()).await.unwrap();
        silent.push(tcp);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss, hwm) = api.memory_mib();
    figures.push(format!(
        "ten clients not reading their answers, 2 s later: RSS {rss:.0} MiB, peak {hwm:.0} MiB"
    ));
    drop(silent);

    eprintln!("RSS of the API process ({}):", binary());
    for line in &figures {
        eprintln!("  {line}");
    }
    // Each 2.16 MB body is held once while it is parsed; nothing amplifies
    // it (before: 0.56 -> 1.98 GB for eight at once in a release build).
    assert!(
        hwm - rss_start < 150.0,
        "peak RSS grew by {:.0} MiB:\n{}",
        hwm - rss_start,
        figures.join("\n")
    );
}

/// `futures::future::join_all` without the dependency: spawns and awaits.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

fn short_timeouts() -> Vec<(&'static str, String)> {
    vec![
        ("CODE_RUNNER_HEADER_TIMEOUT_SECS", "2".into()),
        ("CODE_RUNNER_BODY_TIMEOUT_SECS", "2".into()),
    ]
}

#[tokio::test]
async fn a_trickling_head_is_closed_at_the_header_timeout() {
    let env = short_timeouts();
    let api = start(Start {
        env: &env,
        ..Start::default()
    })
    .await;
    let mut tcp = TcpStream::connect(api.address).await.unwrap();
    tcp.write_all(b"GET /health HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    let (mut read, mut write) = tcp.split();
    let trickle = async {
        // One header byte every 200 ms, for up to 8 s.
        for _ in 0..40 {
            if write.write_all(b"X").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        std::future::pending::<()>().await;
    };
    let started = Instant::now();
    let mut sink = [0u8; 1024];
    let closed = tokio::select! {
        () = trickle => unreachable!(),
        _ = read.read(&mut sink) => started.elapsed(),
        () = tokio::time::sleep(Duration::from_secs(8)) => {
            panic!("a head trickled for 8 s is still being read (header timeout: 2 s)")
        }
    };
    assert!(
        closed >= Duration::from_millis(1500),
        "closed after {closed:?}"
    );
}

#[tokio::test]
async fn idle_connections_are_closed_at_the_header_timeout() {
    let env = short_timeouts();
    let api = start(Start {
        env: &env,
        ..Start::default()
    })
    .await;
    // A connection that never sends a byte.
    let mut fresh = TcpStream::connect(api.address).await.unwrap();
    // A kept-alive connection after one answer.
    let mut kept = TcpStream::connect(api.address).await.unwrap();
    kept.write_all(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut kept).await.expect("an answer");
    assert_eq!(status_of(&head), Some(200));
    let mut body = [0u8; 15];
    kept.read_exact(&mut body).await.unwrap();
    let (fresh, kept) = tokio::join!(
        closed_within(&mut fresh, Duration::from_secs(8)),
        closed_within(&mut kept, Duration::from_secs(8)),
    );
    let fresh = fresh.expect("an idle new connection still open after 8 s (timeout: 2 s)");
    let kept = kept.expect("an idle kept-alive connection still open after 8 s (timeout: 2 s)");
    assert!(fresh >= Duration::from_millis(1500), "{fresh:?}");
    assert!(kept >= Duration::from_millis(1500), "{kept:?}");
}

#[tokio::test]
async fn stalled_and_trickled_bodies_get_408_at_the_body_timeout() {
    let env = short_timeouts();
    let api = start(Start {
        env: &env,
        ..Start::default()
    })
    .await;
    // A declared 1 MB body of which 11 bytes are sent.
    let mut stalled = TcpStream::connect(api.address).await.unwrap();
    stalled
        .write_all(format!("{}{{\"language\"", post_head(1_000_000, "")).as_bytes())
        .await
        .unwrap();
    // A small body sent one byte every 300 ms (each chunk in time, the
    // whole too slow).
    let body = br#"{"language":"python","code":"print(1)"}"#;
    let mut trickled = TcpStream::connect(api.address).await.unwrap();
    trickled
        .write_all(post_head(body.len(), "").as_bytes())
        .await
        .unwrap();
    let started = Instant::now();
    let (mut trickled_read, mut trickled_write) = trickled.split();
    let trickle = async {
        for byte in body {
            if trickled_write.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    // Read while it trickles: the answer comes before the body is done.
    let trickled_answer = async {
        let head = tokio::time::timeout(Duration::from_secs(8), read_head_from(&mut trickled_read))
            .await
            .expect("a trickled body still read after 8 s (body timeout: 2 s)");
        (head, started.elapsed())
    };
    let stalled_answer = async {
        let head = tokio::time::timeout(Duration::from_secs(8), read_head(&mut stalled))
            .await
            .expect("a stalled body still waited for after 8 s (body timeout: 2 s)");
        (head, started.elapsed())
    };
    let ((), (stalled_head, stalled_after), (trickled_head, trickled_after)) =
        tokio::join!(trickle, stalled_answer, trickled_answer);
    for (name, head, after) in [
        ("stalled", stalled_head, stalled_after),
        ("trickled", trickled_head, trickled_after),
    ] {
        let head = head.unwrap_or_else(|| panic!("{name}: closed without an answer"));
        assert_eq!(status_of(&head), Some(408), "{name}: {head}");
        assert!(
            head.to_ascii_lowercase().contains("connection: close"),
            "{name}: {head}"
        );
        assert!(after >= Duration::from_millis(1500), "{name}: {after:?}");
        assert!(after < Duration::from_secs(6), "{name}: {after:?}");
    }
    assert!(
        closed_within(&mut stalled, Duration::from_secs(2))
            .await
            .is_some(),
        "the stalled connection stays open after its 408"
    );
}

#[tokio::test]
async fn stalled_uploads_cannot_pin_more_than_the_body_memory_budget() {
    let env = vec![
        ("CODE_RUNNER_MAX_BODY_MEMORY_MB", "8".to_owned()),
        ("CODE_RUNNER_BODY_TIMEOUT_SECS", "3".to_owned()),
        // A body limit of ~2.6 MB (no room for judge mode's tests), below
        // the budget, so the budget is not raised to one largest body.
        ("CODE_RUNNER_MAX_TEST_BYTES", "1".to_owned()),
        // Nor for a large test set (`POST /testsets` has a limit of its own,
        // and the budget holds at least one such body).
        ("CODE_RUNNER_MAX_TESTSET_BYTES", "1048576".to_owned()),
    ];
    let api = start(Start {
        env: &env,
        ..Start::default()
    })
    .await;
    // Three uploads of 2.1 MB, stalled after a few bytes: 6.3 of the 8 MiB.
    let mut stalled = Vec::new();
    for _ in 0..3 {
        let mut tcp = TcpStream::connect(api.address).await.unwrap();
        tcp.write_all(format!("{}{{\"language\"", post_head(2_100_000, "")).as_bytes())
            .await
            .unwrap();
        stalled.push(tcp);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A fourth would pass the budget: refused at once, unread.
    let mut fourth = TcpStream::connect(api.address).await.unwrap();
    fourth
        .write_all(post_head(2_100_000, "").as_bytes())
        .await
        .unwrap();
    let head = tokio::time::timeout(Duration::from_secs(2), read_head(&mut fourth))
        .await
        .expect("a fourth stalled-size upload was not refused within 2 s (budget: 8 MiB)")
        .expect("closed without an answer");
    assert_eq!(status_of(&head), Some(503), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}"
    );
    // A small request still fits.
    let client = reqwest::Client::new();
    let response = client
        .post(api.url("/run-code"))
        .json(&serde_json::json!({"language": "python", "code": "print(1)"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Once the stalled ones have had their 408, a large body is read again.
    for tcp in &mut stalled {
        let head = tokio::time::timeout(Duration::from_secs(6), read_head(tcp))
            .await
            .expect("no 408")
            .expect("closed without an answer");
        assert_eq!(status_of(&head), Some(408), "{head}");
    }
    let big = serde_json::json!({"language": "python", "code": "x".repeat(1_000_000)});
    let response = client
        .post(api.url("/run-code"))
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn an_over_limit_content_length_gets_413_before_any_byte_is_sent() {
    let api = start(Start::default()).await;
    let mut tcp = TcpStream::connect(api.address).await.unwrap();
    tcp.write_all(post_head(100_000_000, "Expect: 100-continue\r\n").as_bytes())
        .await
        .unwrap();
    let head = tokio::time::timeout(Duration::from_secs(5), read_head(&mut tcp))
        .await
        .expect("no answer to a 100 MB Content-Length within 5 s")
        .expect("closed without an answer");
    assert_eq!(
        status_of(&head),
        Some(413),
        "the first answer to a declared 100 MB body:\n{head}"
    );
    assert!(
        closed_within(&mut tcp, Duration::from_secs(3))
            .await
            .is_some(),
        "the connection stays open after the 413"
    );
    // Without `Expect`, the same.
    let mut tcp = TcpStream::connect(api.address).await.unwrap();
    // (Over the default body limit, ~34.6 MB with judge mode's 16 MiB of tests.)
    tcp.write_all(post_head(40_000_000, "").as_bytes())
        .await
        .unwrap();
    let head = read_head(&mut tcp).await.expect("an answer");
    assert_eq!(status_of(&head), Some(413), "{head}");
}

#[tokio::test]
async fn health_answers_while_the_connection_cap_is_reached() {
    // 256 descriptors, as a small container might give; the connections
    // below stay open (until the 30 s head timeout) unless the server closes them.
    let env = vec![("CODE_RUNNER_HEADER_TIMEOUT_SECS", "30".to_owned())];
    let api = start(Start {
        env: &env,
        nofile: Some(256),
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..400 {
        // A server that stopped accepting lets the backlog fill; then
        // connecting hangs: stop there (the checks below then fail).
        match tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(api.address)).await {
            Ok(Ok(tcp)) => idle.push(tcp),
            Ok(Err(err)) => panic!("connect: {err}"),
            Err(_) => break,
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for attempt in 0..3 {
        let asked = Instant::now();
        let status = get_health(api.address, Duration::from_secs(3)).await;
        assert_eq!(
            status,
            Some(200),
            "/health (attempt {attempt}) with 400 idle connections open: no answer in {:?}",
            asked.elapsed()
        );
    }
    // Past the cap, anything but /health is refused at once, not left waiting.
    let mut tcp = TcpStream::connect(api.address).await.unwrap();
    tcp.write_all(b"GET /languages HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let head = tokio::time::timeout(Duration::from_secs(3), read_head(&mut tcp))
        .await
        .expect("no answer within 3 s")
        .expect("closed without an answer");
    assert_eq!(status_of(&head), Some(503), "{head}");
    assert!(head.to_ascii_lowercase().contains("retry-after"), "{head}");
    drop(idle);
    // Once they are gone, everything is served again.
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let response = client.get(api.url("/languages")).send().await.unwrap();
        if response.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still refused after the connections closed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn pages_and_answers_carry_security_headers() {
    let api = start(Start::default()).await;
    let client = reqwest::Client::new();
    for path in ["/", "/docs", "/health", "/openapi.json", "/nope"] {
        let response = client.get(api.url(path)).send().await.unwrap();
        let headers = response.headers();
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_else(|| panic!("{path}: no {name}"))
                .to_owned()
        };
        let policy = header("content-security-policy");
        assert!(
            policy.contains("frame-ancestors 'none'"),
            "{path}: {policy}"
        );
        assert!(policy.contains("default-src 'none'"), "{path}: {policy}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
        if path == "/" || path == "/docs" {
            assert!(policy.contains("script-src 'self'"), "{path}: {policy}");
            assert!(!policy.contains("unsafe-inline"), "{path}: {policy}");
        }
    }
    // The pages run no inline script, which the policy would block.
    for path in ["/", "/docs"] {
        let page = client
            .get(api.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for tag in page.split("<script").skip(1) {
            assert!(
                tag.trim_start().starts_with("src="),
                "{path}: inline script {tag}"
            );
        }
        assert!(!page.contains("<style"), "{path}: inline style");
    }
}

#[tokio::test]
async fn metrics_can_need_a_key_or_move_to_a_port_of_its_own() {
    let key = "metrics-test-key-1234";
    let env = vec![
        ("CODE_RUNNER_API_KEYS", key.to_owned()),
        ("CODE_RUNNER_METRICS_REQUIRE_KEY", "true".to_owned()),
    ];
    let api = start(Start {
        env: &env,
        ..Start::default()
    })
    .await;
    let client = reqwest::Client::new();
    let response = client.get(api.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 401, "/metrics without a key");
    let response = client
        .get(api.url("/metrics"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "/metrics with a key");
    assert!(response.text().await.unwrap().contains("# TYPE"));
    drop(api);

    let metrics_port = free_port();
    let env = vec![(
        "CODE_RUNNER_METRICS_BIND",
        format!("127.0.0.1:{metrics_port}"),
    )];
    let api = start(Start {
        env: &env,
        ..Start::default()
    })
    .await;
    let response = client.get(api.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 404, "/metrics on the API's port");
    let response = client
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .send()
        .await
        .expect("/metrics on its own port");
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("# TYPE"));
}
