//! Test fixtures built from real parts, for the workspace's integration tests.
//!
//! [`RedisServer`] starts a throw-away `redis-server` on a free port with no
//! persistence and stops it when dropped, so a test talks to the same Redis
//! the service uses in production instead of a mock. [`unique_prefix`] gives
//! each test its own key prefix, so tests that share one server cannot see
//! each other's keys.
//!
//! The crate depends on `std` only, so it builds fast and can be used by any
//! crate's tests without pulling in a runtime.

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Where Debian's `redis-server` package installs the server; tried before `PATH`.
const DEBIAN_REDIS_SERVER: &str = "/usr/bin/redis-server";

/// How long a fresh server gets to answer `PING` before the test fails.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How often readiness is polled while waiting.
const READY_POLL: Duration = Duration::from_millis(10);

/// How many fresh ports to try when a server dies at start-up (another
/// process may grab the port between our probe and redis-server's bind).
const START_ATTEMPTS: usize = 3;

/// Distinguishes names made by one process in the same nanosecond.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A `redis-server` child process listening on `127.0.0.1` on a free port,
/// killed (and its scratch directory removed) when this value is dropped.
///
/// It runs with no RDB snapshots and no AOF, in a fresh directory, so tests
/// leave nothing behind and never read a previous run's data.
/// [`RedisServer::start_with_aof`] turns the append-only file on instead, for
/// tests that restart the server ([`RedisServer::restart`]) and expect their
/// data back, as a production deployment with persistence would.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    port: u16,
    /// The server's working directory; owned by this value, removed in `Drop`.
    dir: PathBuf,
    /// `--appendonly yes --appendfsync always`: every write is on disk
    /// before it is acknowledged, so a kill loses nothing.
    aof: bool,
    /// False between [`RedisServer::stop`] and [`RedisServer::start_again`].
    running: bool,
}

impl RedisServer {
    /// Starts a server and waits (at most 10 s) until it answers `PING`.
    ///
    /// # Panics
    ///
    /// When `redis-server` is not installed, or does not come up in time.
    /// Tests that need Redis must fail loudly rather than be skipped, so that a
    /// machine without Redis cannot report a green run that tested nothing.
    pub fn start() -> RedisServer {
        Self::start_persistence(false)
    }

    /// Like [`RedisServer::start`], with the append-only file on and synced
    /// on every write (`--appendonly yes --appendfsync always`).
    pub fn start_with_aof() -> RedisServer {
        Self::start_persistence(true)
    }

    fn start_persistence(aof: bool) -> RedisServer {
        let binary = find_redis_server().unwrap_or_else(|| {
            panic!(
                "redis-server not found at {DEBIAN_REDIS_SERVER} nor on PATH; \
                 install redis-server: run scripts/test.sh"
            )
        });
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(&binary, aof) {
                Ok(server) => return server,
                Err(why) => failures.push(why),
            }
        }
        panic!(
            "redis-server ({}) did not start after {START_ATTEMPTS} attempts:\n{}",
            binary.display(),
            failures.join("\n---\n")
        );
    }

    /// One attempt on one port; the error says why and includes the server's log.
    fn try_start(binary: &Path, aof: bool) -> Result<RedisServer, String> {
        let port = free_port().map_err(|e| format!("no free port: {e}"))?;
        let dir = std::env::temp_dir().join(format!("code-runner-redis-{}", unique_suffix()));
        fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let child = match spawn_server(binary, port, &dir, aof) {
            Ok(child) => child,
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        // From here on `Drop` cleans up the child and the directory on every path.
        let mut server = RedisServer {
            child,
            port,
            dir,
            aof,
            running: true,
        };
        // On an error, dropping `server` kills the child and removes its directory.
        server.wait_ready().map(|()| server)
    }

    /// Waits until the server answers `PING` (with an AOF, once it has loaded
    /// its data: a loading server answers `-LOADING`).
    fn wait_ready(&mut self) -> Result<(), String> {
        let port = self.port;
        let log_path = self.dir.join("redis.log");
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if answers_ping(port) {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "redis-server on port {port} exited with {status} at start-up; log:\n{}",
                    read_log(&log_path)
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "redis-server on port {port} did not answer PING within {READY_TIMEOUT:?}; log:\n{}",
                    read_log(&log_path)
                ));
            }
            thread::sleep(READY_POLL);
        }
    }

    /// Kills the server with SIGKILL (a crash: nothing is flushed but what
    /// the AOF already holds) and waits for it to be gone. Its port and
    /// directory are kept for [`RedisServer::start_again`].
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.running = false;
    }

    /// Starts the server again on the same port and directory (so with an
    /// AOF it reloads its data) and waits until it answers `PING`.
    ///
    /// # Panics
    ///
    /// When it does not come back within 10 s (e.g. the port was taken).
    pub fn start_again(&mut self) {
        assert!(!self.running, "start_again on a running redis-server");
        let binary = find_redis_server().expect("redis-server was found at start");
        self.child = spawn_server(&binary, self.port, &self.dir, self.aof)
            .unwrap_or_else(|e| panic!("restarting redis-server: {e}"));
        self.running = true;
        if let Err(e) = self.wait_ready() {
            panic!("restarting redis-server: {e}");
        }
    }

    /// [`RedisServer::stop`] then [`RedisServer::start_again`]: what a Redis
    /// crash and restart (or a fail-over to a replica) looks like to clients.
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// The TCP port the server listens on (on `127.0.0.1`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection URL for the server, e.g. `redis://127.0.0.1:6390/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // Errors are ignored: the child may already have exited, and a panic in
        // `Drop` during unwinding would abort the test binary.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A key prefix no other test (in this or another process) is using, such as
/// `test-4242-7-1718000000123456789`, so tests sharing a server stay isolated.
pub fn unique_prefix() -> String {
    format!("test-{}", unique_suffix())
}

/// Starts `redis-server` on `port` in `dir`, logging to `dir/redis.log`
/// (appended to, so a restart keeps the earlier log).
fn spawn_server(binary: &Path, port: u16, dir: &Path, aof: bool) -> Result<Child, String> {
    let log_path = dir.join("redis.log");
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("open {}: {e}", log_path.display()))?;
    let log_err = log
        .try_clone()
        .map_err(|e| format!("clone {}: {e}", log_path.display()))?;
    let persistence: &[&str] = if aof {
        &["--appendonly", "yes", "--appendfsync", "always"]
    } else {
        &["--appendonly", "no"]
    };
    Command::new(binary)
        .arg("--port")
        .arg(port.to_string())
        .args(["--bind", "127.0.0.1"])
        .args(["--save", ""])
        .args(persistence)
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", binary.display()))
}

/// `<pid>-<counter>-<nanos since epoch>`: unique across processes and calls.
fn unique_suffix() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}-{n}-{nanos}", std::process::id())
}

/// `/usr/bin/redis-server` if present, else the first `redis-server` on `PATH`.
fn find_redis_server() -> Option<PathBuf> {
    let debian = PathBuf::from(DEBIAN_REDIS_SERVER);
    if debian.is_file() {
        return Some(debian);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("redis-server"))
        .find(|candidate| candidate.is_file())
}

/// Asks the kernel for a free port by binding port 0. The port is released
/// before redis-server binds it, so another process could take it in between;
/// `RedisServer::start` retries on a new port when that happens.
fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// True when a server on `port` answers an inline `PING` with `+PONG`.
fn answers_ping(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    // Bounded so a half-started server cannot hang the poll loop.
    if stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .is_err()
        || stream.write_all(b"PING\r\n").is_err()
    {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).is_ok() && reply == *b"+PONG\r\n"
}

/// The server's log, for failure messages; never fails.
fn read_log(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_answers_and_is_stopped_on_drop() {
        let server = RedisServer::start();
        let port = server.port();
        assert!(answers_ping(port));
        assert_eq!(server.url(), format!("redis://127.0.0.1:{port}/"));
        let dir = server.dir.clone();
        assert!(dir.is_dir());
        drop(server);
        assert!(!answers_ping(port), "server still answers after drop");
        assert!(!dir.exists(), "scratch directory left behind");
    }

    /// Sends one inline command and returns the first line of the reply.
    fn inline(port: u16, command: &str) -> String {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
            .write_all(format!("{command}\r\n").as_bytes())
            .unwrap();
        let mut reply = Vec::new();
        let mut byte = [0u8; 1];
        while stream.read_exact(&mut byte).is_ok() && byte[0] != b'\n' {
            reply.push(byte[0]);
        }
        String::from_utf8_lossy(&reply).trim_end().to_owned()
    }

    #[test]
    fn with_aof_data_survives_a_crash_and_restart_on_the_same_port() {
        let mut server = RedisServer::start_with_aof();
        let port = server.port();
        assert_eq!(inline(port, "SET kept 1"), "+OK");
        server.stop();
        assert!(!answers_ping(port), "still answering after stop");
        server.start_again();
        assert_eq!(server.port(), port);
        assert_eq!(inline(port, "EXISTS kept"), ":1");
        server.restart();
        assert_eq!(inline(port, "EXISTS kept"), ":1");
    }

    #[test]
    fn prefixes_are_unique() {
        let a = unique_prefix();
        let b = unique_prefix();
        assert_ne!(a, b);
        assert!(a.starts_with("test-"));
    }
}
