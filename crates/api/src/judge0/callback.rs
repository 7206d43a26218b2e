//! `callback_url`: when a submission finishes, its 8 default fields
//! (base64-encoded, as Judge0 sends them) are `PUT` to the URL.
//!
//! The delivery is a task of the API process that submitted the job: it
//! waits for the result through the queue (woken when it is stored, never
//! holding a sandbox slot), then tries up to [`MAX_TRIES`] times (Judge0's
//! `CALLBACKS_MAX_TRIES`), each bounded by [`TIMEOUT`]
//! (`CALLBACKS_TIMEOUT`), with a growing pause between tries. A callback is
//! lost if that API process stops first (documented in docs/judge0.md).
//!
//! Targets on loopback, private, link-local and other non-public addresses
//! are refused (at submit, and again when delivering, against what the name
//! resolves to then; the connection goes to the address checked, and
//! redirects are not followed) unless the operator allows them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use code_runner_queue::{TaskId, TaskState};

use super::response::{render, Fields, Meta, Outcome};
use crate::state::AppState;

/// Judge0's `CALLBACKS_MAX_TRIES`.
pub(crate) const MAX_TRIES: u32 = 3;
/// Judge0's `CALLBACKS_TIMEOUT`: the bound of each try.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(5);
/// The pause before the second try; it doubles before each later one.
const FIRST_PAUSE: Duration = Duration::from_millis(500);
/// How long a delivery task waits for its job at most.
pub(crate) const LONGEST_WAIT: Duration = Duration::from_secs(60 * 60);

/// Whether `ip` is an address a callback may reach without the operator's
/// leave: a public unicast address. An IPv6 address that embeds an IPv4
/// one (mapped, compatible, SIIT, NAT64, 6to4) is judged by that address.
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments, 192.0.0.0/24.
        || (a == 192 && b == 0 && c == 0)
        // Benchmarking, 198.18.0.0/15.
        || (a == 198 && (b & 0xfe) == 18)
        // The 6to4 relay anycast, 192.88.99.0/24.
        || (a == 192 && b == 88 && c == 99)
        // Reserved, 240.0.0.0/4.
        || a >= 240)
}

/// The IPv4 address in the last 32 bits of `ip`.
fn low_v4(ip: Ipv6Addr) -> Ipv4Addr {
    let [.., a, b, c, d] = ip.octets();
    Ipv4Addr::new(a, b, c, d)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    // ::/96 (unspecified, loopback, IPv4-compatible), ::ffff:0:0/96
    // (IPv4-mapped) and ::ffff:0:0:0/96 (SIIT): the IPv4 address decides
    // (`::` and `::1` embed 0.0.0.0 and 0.0.0.1, not public).
    if s[..5] == [0; 5] && (s[5] == 0 || s[5] == 0xffff) {
        return is_public_v4(low_v4(ip));
    }
    if s[..4] == [0, 0, 0, 0] && s[4] == 0xffff && s[5] == 0 {
        return is_public_v4(low_v4(ip));
    }
    // NAT64, 64:ff9b::/96: the IPv4 address decides.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(low_v4(ip));
    }
    // Local-use NAT64, 64:ff9b:1::/48: it may embed the IPv4 address
    // anywhere its prefix length puts it; refused.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        return false;
    }
    // 6to4, 2002::/16: the IPv4 address in bits 16..48 decides.
    if s[0] == 0x2002 {
        let [hi_a, hi_b] = s[1].to_be_bytes();
        let [lo_a, lo_b] = s[2].to_be_bytes();
        return is_public_v4(Ipv4Addr::new(hi_a, hi_b, lo_a, lo_b));
    }
    // Only global unicast, 2000::/3 ...
    if (s[0] & 0xe000) != 0x2000 {
        return false;
    }
    // ... without 2001::/23 (IETF protocol assignments: Teredo, ORCHIDs,
    // benchmarking, ...; the global ones in it are not needed for
    // callbacks) and documentation, 2001:db8::/32 and 3fff::/20.
    let ietf_or_documentation = s[0] == 0x2001 && (s[1] < 0x0200 || s[1] == 0x0db8);
    !(ietf_or_documentation || (s[0] == 0x3fff && s[1] < 0x1000))
}

/// A callback URL, checked: where to connect and what to send.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    url: reqwest::Url,
    /// The URL's host, without brackets.
    host: String,
    address: SocketAddr,
}

/// Most host-name lookups of callbacks in flight at once, in the whole
/// process. A lookup runs on a blocking thread that cannot be stopped; the
/// thread holds its permit until the lookup returns, so a resolver that
/// never answers cannot pile up threads.
const MAX_LOOKUPS: usize = 32;

fn lookups() -> &'static Arc<Semaphore> {
    static LOOKUPS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    LOOKUPS.get_or_init(|| Arc::new(Semaphore::new(MAX_LOOKUPS)))
}

/// `host`'s addresses, or none when it did not resolve by `deadline`
/// (waiting for a lookup permit counts).
async fn resolve(host: &str, port: u16, deadline: Instant) -> Vec<SocketAddr> {
    let lookup = async {
        let permit = lookups().clone().acquire_owned().await.ok()?;
        let name = host.to_owned();
        let found = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            std::net::ToSocketAddrs::to_socket_addrs(&(name.as_str(), port))
                .map(Iterator::collect::<Vec<SocketAddr>>)
        });
        found.await.ok()?.ok()
    };
    tokio::time::timeout_at(deadline.into(), lookup)
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Checks a callback URL: `http`/`https`, a host that resolves, and (unless
/// `allow_private`) only to public addresses. The error is the message of
/// Judge0's `422` under `callback_url`.
pub(crate) async fn check(url: &str, allow_private: bool) -> Result<Target, String> {
    check_by(url, allow_private, Instant::now() + TIMEOUT).await
}

/// [`check`], its host name resolved by `deadline` (a batch's callbacks
/// share one).
pub(crate) async fn check_by(
    url: &str,
    allow_private: bool,
    deadline: Instant,
) -> Result<Target, String> {
    let parsed = reqwest::Url::parse(url).map_err(|_| "is not a valid URL".to_owned())?;
    // The build has no TLS (see the crate's Cargo.toml).
    if parsed.scheme() != "http" {
        return Err("must be an http:// URL (https callbacks are not supported)".into());
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| "must name a host".to_owned())?
        .to_owned();
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| "must name a port".to_owned())?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addresses: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => resolve(bare, port, deadline).await,
    };
    let Some(&address) = addresses.first() else {
        return Err("host could not be resolved".into());
    };
    if !allow_private && addresses.iter().any(|a| !is_public(a.ip())) {
        return Err("must not point to a loopback, private or link-local address".into());
    }
    Ok(Target {
        url: parsed,
        host: bare.to_owned(),
        address,
    })
}

/// Starts the delivery of `token`'s callback once its task is final (its
/// own, or the shared judge-mode job of [`Meta::shared`]).
pub(crate) fn spawn(state: AppState, token: TaskId, owner: Option<String>, meta: Meta) {
    tokio::spawn(async move {
        let Some(url) = meta.callback_url.clone() else {
            return;
        };
        let (task, test) = match meta.shared {
            Some(shared) => (shared.job, Some(shared.test)),
            None => (token, None),
        };
        let Some(result) = wait_final(&state, task, owner.as_deref()).await else {
            tracing::warn!(%token, "callback not sent: the task never finished in time");
            return;
        };
        let outcome = Outcome::of(&TaskState::Done(result), false, test, Some(&meta));
        let body = render(
            &token.to_string(),
            Some(&meta),
            &outcome,
            &Fields::default_set(),
            true,
        );
        let allow = state.config().judge0.allow_private_callbacks;
        deliver(&url, allow, &serde_json::Value::Object(body)).await;
    });
}

async fn wait_final(
    state: &AppState,
    token: TaskId,
    owner: Option<&str>,
) -> Option<code_runner_queue::JobResult> {
    let deadline = Instant::now() + LONGEST_WAIT;
    while Instant::now() < deadline {
        match state
            .queue()
            .wait_for_result_for(&token, owner, Duration::from_secs(60))
            .await
        {
            Ok(Some(TaskState::Done(result))) => return Some(result),
            Ok(Some(TaskState::Pending)) => {}
            Ok(None) => return None,
            Err(error) => {
                tracing::warn!(%token, %error, "callback: queue unavailable; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    None
}

/// Sends `body` to `url`: up to [`MAX_TRIES`] tries, a 2xx or a 4xx
/// answer ends them. Returns how many tries were made and whether one succeeded.
pub(crate) async fn deliver(
    url: &str,
    allow_private: bool,
    body: &serde_json::Value,
) -> (u32, bool) {
    let mut pause = FIRST_PAUSE;
    for attempt in 1..=MAX_TRIES {
        if attempt > 1 {
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
        // Resolved and checked again: the name may point elsewhere now.
        let target = match check(url, allow_private).await {
            Ok(target) => target,
            Err(reason) => {
                tracing::warn!(attempt, %reason, "callback refused");
                continue;
            }
        };
        match put(&target, body).await {
            Ok(status) if status.is_success() => return (attempt, true),
            // The target refused the request itself: trying again would
            // be refused the same way.
            Ok(status) if status.is_client_error() => {
                tracing::warn!(attempt, %status, "callback refused by its target; not retried");
                return (attempt, false);
            }
            Ok(status) => tracing::warn!(attempt, %status, "callback answered with an error"),
            Err(error) => tracing::warn!(attempt, %error, "callback failed"),
        }
    }
    (MAX_TRIES, false)
}

/// The one client of every delivery: no proxy (`HTTP_PROXY` and the like
/// are ignored: the connection must go to the address checked), no
/// redirects, each request within [`TIMEOUT`].
fn client() -> &'static reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .no_proxy()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the callback client builds (no TLS, no proxy)")
    })
}

async fn put(target: &Target, body: &serde_json::Value) -> reqwest::Result<reqwest::StatusCode> {
    // To the address checked, under the URL's own host name.
    let mut url = target.url.clone();
    let _ = url.set_ip_host(target.address.ip());
    let _ = url.set_port(Some(target.address.port()));
    let host = match target.url.port() {
        Some(port) => format!("{}:{port}", target.url.host_str().unwrap_or(&target.host)),
        None => target.url.host_str().unwrap_or(&target.host).to_owned(),
    };
    let response = client()
        .put(url)
        .header(reqwest::header::HOST, host)
        .json(body)
        .send()
        .await?;
    Ok(response.status())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            // IPv4-compatible, SIIT, NAT64 and 6to4 forms of private ones.
            "::127.0.0.1",
            "::a9fe:a9fe",
            "::ffff:0:a9fe:a9fe",
            "::ffff:0:127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::a00:1",
            "64:ff9b:1::1.1.1.1",
            "2002:7f00:1::",
            "2002:a00:1::1",
            // Site-local, discard-only, IETF assignments (Teredo), other
            // non-global unicast, documentation.
            "fec0::1",
            "100::1",
            "2001::1",
            "2001:0:4136:e378::1",
            "2001:10::1",
            "5f00::1",
            "4000::1",
            "2001:db8::1",
            "3fff::1",
            // IPv4: benchmarking, protocol assignments, 6to4 relay.
            "198.18.0.1",
            "198.19.255.255",
            "192.0.0.170",
            "192.0.0.1",
            "192.88.99.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "1.1.1.1",
            "93.184.216.34",
            "198.20.0.1",
            "192.0.1.1",
            "2606:4700::1111",
            "2a00:1450::1",
            "::ffff:1.1.1.1",
            "::1.1.1.1",
            "64:ff9b::1.1.1.1",
            "2002:101:101::1",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn urls_to_private_places_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:9/x",
            "http://localhost/x",
            "http://[::1]:8080/",
            "http://169.254.169.254/latest/meta-data",
            "http://10.0.0.1/",
        ] {
            assert_eq!(
                check(url, false).await.unwrap_err(),
                "must not point to a loopback, private or link-local address",
                "{url}"
            );
        }
        assert!(check("http://127.0.0.1:9/x", true).await.is_ok());
        assert_eq!(
            check("https://1.1.1.1/", false).await.unwrap_err(),
            "must be an http:// URL (https callbacks are not supported)"
        );
        assert_eq!(
            check("not a url", false).await.unwrap_err(),
            "is not a valid URL"
        );
    }

    /// A one-request HTTP server on loopback: answers `status` and sends
    /// what it read.
    async fn one_request(status: u16) -> (u16, tokio::sync::oneshot::Receiver<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut read = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = socket.read(&mut buf).await.unwrap_or(0);
                read.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&read).into_owned();
                if n == 0 || text.contains("\r\n\r\n") && text.ends_with('}') {
                    break;
                }
            }
            let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
            let _ = socket.write_all(answer.as_bytes()).await;
            let _ = tx.send(String::from_utf8_lossy(&read).into_owned());
        });
        (port, rx)
    }

    #[tokio::test]
    async fn callbacks_ignore_proxies_from_the_environment() {
        let (proxy, mut proxied) = one_request(200).await;
        let (target, received) = one_request(204).await;
        // This test runs in a process of its own (nextest), so the
        // environment is its own.
        for name in ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
            std::env::set_var(name, format!("http://127.0.0.1:{proxy}"));
        }
        for name in ["NO_PROXY", "no_proxy"] {
            std::env::remove_var(name);
        }
        let url = format!("http://localhost:{target}/hook?x=1");
        let (tries, delivered) = deliver(&url, true, &serde_json::json!({"a": 1})).await;
        assert_eq!((tries, delivered), (1, true));
        let request = tokio::time::timeout(Duration::from_secs(5), received)
            .await
            .expect("the target received no callback")
            .unwrap();
        assert!(
            request.starts_with("PUT /hook?x=1 HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(
            request
                .to_ascii_lowercase()
                .contains(&format!("host: localhost:{target}\r\n")),
            "{request}"
        );
        assert!(
            proxied.try_recv().is_err(),
            "the proxy received the callback"
        );
    }

    #[tokio::test]
    async fn a_4xx_answer_is_not_retried() {
        let (target, received) = one_request(404).await;
        let url = format!("http://127.0.0.1:{target}/hook");
        let (tries, delivered) = deliver(&url, true, &serde_json::json!({})).await;
        assert_eq!((tries, delivered), (1, false));
        assert!(received.await.unwrap().starts_with("PUT /hook"));
    }

    #[tokio::test]
    async fn lookups_share_a_deadline_and_a_cap_on_those_in_flight() {
        // Every permit taken, as by lookups that never answer.
        let held = lookups()
            .clone()
            .acquire_many_owned(MAX_LOOKUPS as u32)
            .await
            .unwrap();
        let started = Instant::now();
        let deadline = started + Duration::from_millis(300);
        let checks = (0..20).map(|i| {
            check_by(
                "http://localhost/x",
                true,
                deadline + Duration::from_millis(i),
            )
        });
        for checked in futures_util::future::join_all(checks).await {
            assert_eq!(checked.unwrap_err(), "host could not be resolved");
        }
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(2),
            "{took:?}: one deadline for all"
        );
        drop(held);
        assert!(
            check_by("http://localhost/x", true, Instant::now() + TIMEOUT)
                .await
                .is_ok()
        );
    }
}
