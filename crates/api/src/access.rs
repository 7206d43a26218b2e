//! Access control: API keys, rate limits, the per-client cap of unfinished
//! jobs, task ownership, and CORS. Everything but the cap is off by default.
//!
//! - **API keys** (`CODE_RUNNER_API_KEYS`): `POST /run-code`,
//!   `GET|DELETE /results/{id}` and `GET /stats` need one, sent as
//!   `Authorization: Bearer KEY` or `X-API-Key: KEY`; without one the answer
//!   is `401` with a JSON body. Service endpoints (`/health`, `/ready`,
//!   `/metrics`, `/languages`, the docs and the playground) stay open.
//! - **Ownership**: with keys, a task belongs to the key that submitted it.
//!   The job carries the key's *owner tag* (the first 16 bytes of SHA-256
//!   over a fixed label and the key, in hex; never the key), and the queue
//!   answers another key's `GET`, `?wait` and `DELETE` as for an unknown task.
//! - **Clients**: a request counts against its API key or, without keys,
//!   against its peer address: an IPv4 address (an IPv4-mapped IPv6 one
//!   counts as that IPv4 address), or an IPv6 /64, since one host commonly
//!   holds a whole /64 and could otherwise make a fresh client per address.
//! - **Cap of unfinished jobs** (on by default): a client with
//!   `max_unfinished_per_client` jobs queued or running gets `429` with
//!   `Retry-After` for its next submission, counted by the queue (in Redis,
//!   so several API processes share the count).
//! - **Rate limits**: `POST /run-code` is limited per client with a GCRA
//!   bucket (`governor`): `per_minute` refill, `burst` capacity. Every answer
//!   carries `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` and
//!   `RateLimit-Policy`; a refused one is `429` with `Retry-After`.
//!   `GET /results/{id}?wait=N` (N > 0) and `DELETE /results/{id}` count
//!   against a bucket of their own (`wait_rate_limit`), so waiting for and
//!   cancelling tasks neither spends the submission budget nor goes
//!   unlimited; a plain `GET` is not limited.
//! - **CORS** (`tower-http`): the configured origins, or any.
//!
//! When a feature is not configured its layer is not installed at all, so
//! the hot path pays nothing for it.

use std::fmt;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, Extensions, HeaderMap, HeaderName, HeaderValue, Method};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::Router;
use code_runner_queue::ClientQuota;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use sha2::{Digest, Sha256};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::error::ApiError;
use crate::state::AppState;

/// The configured API keys; empty means "no keys needed". Never printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ApiKeys {
    keys: Vec<String>,
    /// Each key's owner tag (see [`owner_tag`]), made once.
    tags: Vec<String>,
}

/// The tag a task submitted with `key` carries: the first 16 bytes of
/// SHA-256 over a fixed label and the key, as 32 hex digits. The same in
/// every API process, so any of them can tell whose a task is; not the
/// key, so what Redis holds does not let anyone submit as its owner.
pub(crate) fn owner_tag(key: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(b"code-runner task owner v1\0");
    hash.update(key.as_bytes());
    hash.finalize()[..16]
        .iter()
        .fold(String::with_capacity(32), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

impl ApiKeys {
    /// Reads a comma-separated list. Each key is 8 to 256 visible ASCII
    /// characters (no spaces or commas), so it fits in a header as is.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut keys = Vec::new();
        for key in text.split(',').map(str::trim).filter(|k| !k.is_empty()) {
            if !(8..=256).contains(&key.len()) || !key.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(
                    "each API key must be 8 to 256 visible ASCII characters, without spaces or commas"
                        .to_owned(),
                );
            }
            keys.push(key.to_owned());
        }
        let tags = keys.iter().map(|key| owner_tag(key)).collect();
        Ok(Self { keys, tags })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The index of `candidate` among the keys, compared in constant time
    /// per key so the answer's timing says nothing about near misses.
    fn find(&self, candidate: &[u8]) -> Option<usize> {
        let mut found = None;
        for (index, key) in self.keys.iter().enumerate() {
            if constant_time_eq(key.as_bytes(), candidate) && found.is_none() {
                found = Some(index);
            }
        }
        found
    }
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeys({} keys)", self.keys.len())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// How many submissions a client may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained rate, per minute.
    pub per_minute: u32,
    /// Submissions allowed at once after a quiet spell.
    pub burst: u32,
}

/// Who may call the API and how much; everything but the cap of unfinished
/// jobs is off by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessConfig {
    pub api_keys: ApiKeys,
    /// Submissions (`POST /run-code`) per client.
    pub rate_limit: Option<RateLimit>,
    /// `GET /results/{id}?wait=N` and `DELETE /results/{id}` per client, in
    /// a bucket of their own.
    pub wait_rate_limit: Option<RateLimit>,
    /// Most jobs one client may have queued or running at once (`429`
    /// beyond it); `None`: no cap.
    pub max_unfinished_per_client: Option<u64>,
    /// Allowed browser origins (`*` for any); empty: no CORS.
    pub cors_origins: Vec<String>,
}

/// The default cap of unfinished jobs per client: a tenth of the default
/// queue length, so it takes ten clients to fill the queue.
pub const DEFAULT_MAX_UNFINISHED_PER_CLIENT: u64 = 1_000;

impl Default for AccessConfig {
    fn default() -> Self {
        Self {
            api_keys: ApiKeys::default(),
            rate_limit: None,
            wait_rate_limit: None,
            max_unfinished_per_client: Some(DEFAULT_MAX_UNFINISHED_PER_CLIENT),
            cors_origins: Vec::new(),
        }
    }
}

impl AccessConfig {
    /// Whether requests need their peer address: without API keys, the
    /// rate limits and the cap count per address.
    pub(crate) fn needs_peer_address(&self) -> bool {
        self.rate_limit.is_some()
            || self.wait_rate_limit.is_some()
            || (self.max_unfinished_per_client.is_some() && self.api_keys.is_empty())
    }
}

/// Whom a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Client {
    Key(usize),
    /// Always as [`client_address`] keys it.
    Ip(IpAddr),
}

/// The address a peer counts as: IPv4 as it is (also when it comes
/// IPv4-mapped, `::ffff:a.b.c.d`), IPv6 by its /64.
pub(crate) fn client_address(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(bits))
            }
        },
    }
}

impl Client {
    /// Whom the request with these extensions counts against: its key (set
    /// by [`check_key`]), else its peer address; in-process callers (tests),
    /// which have none, share one.
    fn of(extensions: &Extensions) -> Self {
        extensions.get::<Client>().copied().unwrap_or_else(|| {
            let ip = extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
            Client::Ip(client_address(ip))
        })
    }
}

/// Who is asking, as handlers need it: the owner tag of its key (with API
/// keys) and the name of the client it counts against.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    owner: Option<String>,
    client: String,
}

impl Caller {
    /// The owner tag its tasks get and that it may see (`None`: keys off).
    pub(crate) fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    /// The client it counts against (its key's tag, or its address).
    pub(crate) fn client(&self) -> &str {
        &self.client
    }

    /// The cap of unfinished jobs this caller's submissions count against.
    pub(crate) fn quota(&self, config: &AccessConfig) -> Option<ClientQuota<'_>> {
        config
            .max_unfinished_per_client
            .map(|max_unfinished| ClientQuota {
                client: &self.client,
                max_unfinished,
            })
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(match Client::of(&parts.extensions) {
            Client::Key(index) => {
                let tag = state.config().access.api_keys.tags[index].clone();
                Caller {
                    client: format!("key:{tag}"),
                    owner: Some(tag),
                }
            }
            Client::Ip(IpAddr::V6(v6)) => Caller {
                owner: None,
                client: format!("ip:{v6}/64"),
            },
            Client::Ip(IpAddr::V4(v4)) => Caller {
                owner: None,
                client: format!("ip:{v4}"),
            },
        })
    }
}

type Limiter =
    RateLimiter<Client, DefaultKeyedStateStore<Client>, DefaultClock, StateInformationMiddleware>;

/// A rate limiter and what its headers say.
pub(crate) struct Submissions {
    limiter: Limiter,
    clock: DefaultClock,
    limit: RateLimit,
    /// What it counts, for the `429` message: "submissions".
    what: &'static str,
    /// Checks since start; every [`Self::SWEEP_EVERY`] the limiter forgets
    /// clients whose bucket is full again, so memory follows active clients.
    checks: AtomicU64,
}

impl Submissions {
    const SWEEP_EVERY: u64 = 4096;

    pub(crate) fn new(limit: RateLimit, what: &'static str) -> Self {
        let per_minute = NonZeroU32::new(limit.per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(limit.burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_minute(per_minute).allow_burst(burst);
        let clock = DefaultClock::default();
        Self {
            limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            clock,
            limit,
            what,
            checks: AtomicU64::new(0),
        }
    }

    fn replenish(&self) -> Duration {
        Duration::from_secs(60) / self.limit.per_minute.max(1)
    }

    /// Takes one submission from `client`'s bucket: `Ok(headers)` to add to
    /// the answer, or `Err(wait)` when the bucket is empty.
    fn take(&self, client: Client) -> Result<RateHeaders, Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % Self::SWEEP_EVERY == Self::SWEEP_EVERY - 1
        {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        match self.limiter.check_key(&client) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let refill = self.replenish() * (self.limit.burst.saturating_sub(remaining));
                Ok(RateHeaders {
                    limit: self.limit.burst,
                    remaining,
                    reset_secs: ceil_secs(refill),
                    window_secs: ceil_secs(self.replenish() * self.limit.burst),
                })
            }
            Err(not_until) => Err(not_until.wait_time_from(self.clock.now())),
        }
    }
}

#[derive(Debug)]
struct RateHeaders {
    limit: u32,
    remaining: u32,
    reset_secs: u64,
    window_secs: u64,
}

impl RateHeaders {
    fn apply(&self, headers: &mut HeaderMap) {
        let mut put = |name: &'static str, value: String| {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        };
        put("ratelimit-limit", self.limit.to_string());
        put("ratelimit-remaining", self.remaining.to_string());
        put("ratelimit-reset", self.reset_secs.to_string());
        put(
            "ratelimit-policy",
            format!("{};w={}", self.limit, self.window_secs),
        );
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_nanos().div_ceil(1_000_000_000) as u64
}

/// Requires an API key on `routes` when keys are configured.
pub(crate) fn require_keys(routes: Router<AppState>, state: &AppState) -> Router<AppState> {
    if state.config().access.api_keys.is_empty() {
        routes
    } else {
        routes.route_layer(from_fn_with_state(state.clone(), check_key))
    }
}

/// Rate-limits a route (`POST /run-code`) when a limit is configured.
pub(crate) fn limit_rate(
    route: MethodRouter<AppState>,
    state: &AppState,
) -> MethodRouter<AppState> {
    if state.submissions().is_some() {
        route.route_layer(from_fn_with_state(state.clone(), check_rate))
    } else {
        route
    }
}

/// Rate-limits `?wait=` reads and `DELETE`s of a route
/// (`/results/{task_id}`) in their own bucket, when a limit is configured.
pub(crate) fn limit_waits(
    route: MethodRouter<AppState>,
    state: &AppState,
) -> MethodRouter<AppState> {
    if state.waits().is_some() {
        route.route_layer(from_fn_with_state(state.clone(), check_wait_rate))
    } else {
        route
    }
}

/// Whether a request waits (`?wait=N`, N not 0) or cancels: the requests
/// [`limit_waits`] counts. A plain `GET` is one cheap read.
fn waits_or_cancels(request: &Request) -> bool {
    // A DELETE, or an event stream (which waits as long as the task runs).
    if request.method() == Method::DELETE || request.uri().path().ends_with("/events") {
        return true;
    }
    request.uri().query().is_some_and(|query| {
        form_urlencoded::parse(query.as_bytes())
            .any(|(name, value)| name == "wait" && !matches!(value.trim(), "" | "0"))
    })
}

/// Adds CORS headers (and answers preflights) when origins are configured.
pub(crate) fn cors(router: Router, config: &AccessConfig) -> Router {
    if config.cors_origins.is_empty() {
        return router;
    }
    let origin = if config.cors_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            config
                .cors_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        )
    };
    router.layer(
        CorsLayer::new()
            .allow_origin(origin)
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                HeaderName::from_static("x-api-key"),
                HeaderName::from_static("x-auth-token"),
            ])
            .expose_headers([
                header::RETRY_AFTER,
                HeaderName::from_static("ratelimit-limit"),
                HeaderName::from_static("ratelimit-remaining"),
                HeaderName::from_static("ratelimit-reset"),
                HeaderName::from_static("ratelimit-policy"),
            ])
            .max_age(Duration::from_secs(3600)),
    )
}

/// The credentials a request presents: `Authorization` (which must use the
/// `Bearer` scheme; any other is an unusable credential, `Some(None)`) and
/// `X-API-Key`.
fn presented_keys(headers: &HeaderMap) -> [Option<Option<&[u8]>>; 2] {
    let bearer = headers.get(header::AUTHORIZATION).map(|value| {
        let value = value.as_bytes();
        (value.len() > 7 && value[..7].eq_ignore_ascii_case(b"bearer "))
            .then(|| value[7..].trim_ascii())
    });
    let api_key = headers
        .get("x-api-key")
        .map(|value| Some(value.as_bytes().trim_ascii()));
    [bearer, api_key]
}

/// Judge0's `X-Auth-Token`, which its clients send: one more way to present
/// an API key.
fn auth_token(headers: &HeaderMap) -> Option<Option<&[u8]>> {
    headers
        .get("x-auth-token")
        .map(|value| Some(value.as_bytes().trim_ascii()))
}

/// Every credential presented must be a valid key (a wrong one next to a
/// right one is still refused), and there must be at least one.
async fn check_key(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let keys = &state.config().access.api_keys;
    let mut client = None;
    let headers = request.headers();
    let presented = presented_keys(headers)
        .into_iter()
        .chain([auth_token(headers)]);
    for presented in presented.flatten() {
        match presented.and_then(|key| keys.find(key)) {
            Some(index) => client = client.or(Some(index)),
            None => return ApiError::InvalidApiKey.into_response(),
        }
    }
    match client {
        Some(index) => {
            request.extensions_mut().insert(Client::Key(index));
            next.run(request).await
        }
        None => ApiError::Unauthenticated.into_response(),
    }
}

async fn check_rate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match state.submissions() {
        Some(submissions) => limit(submissions, request, next).await,
        None => next.run(request).await,
    }
}

async fn check_wait_rate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match state.waits() {
        Some(waits) if waits_or_cancels(&request) => limit(waits, request, next).await,
        _ => next.run(request).await,
    }
}

/// Takes one from the client's bucket of `submissions`: the answer with
/// the rate headers, or `429` with `Retry-After`.
async fn limit(submissions: &Submissions, request: Request, next: Next) -> Response {
    let client = Client::of(request.extensions());
    match submissions.take(client) {
        Ok(headers) => {
            let mut response = next.run(request).await;
            headers.apply(response.headers_mut());
            response
        }
        Err(wait) => {
            let retry_after = ceil_secs(wait).max(1);
            let mut response = ApiError::RateLimited {
                per_minute: submissions.limit.per_minute,
                what: submissions.what,
                retry_after_secs: retry_after,
            }
            .into_response();
            let headers = response.headers_mut();
            RateHeaders {
                limit: submissions.limit.burst,
                remaining: 0,
                reset_secs: retry_after,
                window_secs: ceil_secs(submissions.replenish() * submissions.limit.burst),
            }
            .apply(headers);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_parsed_and_checked() {
        let keys = ApiKeys::parse(" first-key-123 ,second-key-456,").unwrap();
        assert_eq!(keys.find(b"second-key-456"), Some(1));
        assert_eq!(keys.find(b"first-key-123"), Some(0));
        assert_eq!(keys.find(b"first-key-12"), None);
        assert_eq!(keys.find(b""), None);
        assert!(ApiKeys::parse("short").is_err());
        assert!(ApiKeys::parse("has a space in it").is_err());
        assert!(ApiKeys::parse("").unwrap().is_empty());
        assert_eq!(format!("{keys:?}"), "ApiKeys(2 keys)");
    }

    #[test]
    fn keys_come_from_either_header() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "bearer  abc ".parse().unwrap());
        assert_eq!(presented_keys(&headers), [Some(Some(&b"abc"[..])), None]);
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", "xyz".parse().unwrap());
        assert_eq!(presented_keys(&headers), [None, Some(Some(&b"xyz"[..]))]);
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(
            presented_keys(&headers),
            [Some(None), Some(Some(&b"xyz"[..]))]
        );
        assert_eq!(presented_keys(&HeaderMap::new()), [None, None]);
    }

    #[test]
    fn the_bucket_empties_and_says_when_to_retry() {
        let submissions = Submissions::new(
            RateLimit {
                per_minute: 60,
                burst: 2,
            },
            "submissions",
        );
        let client = Client::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let first = submissions.take(client).unwrap();
        assert_eq!((first.limit, first.remaining), (2, 1));
        assert_eq!(first.reset_secs, 1);
        let second = submissions.take(client).unwrap();
        assert_eq!(second.remaining, 0);
        let wait = submissions.take(client).unwrap_err();
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        // Another client has its own bucket.
        assert!(submissions.take(Client::Key(0)).is_ok());
    }

    #[test]
    fn ipv4_mapped_addresses_count_as_ipv4_and_ipv6_by_its_64() {
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        assert_eq!(client_address(ip("::ffff:1.2.3.4")), ip("1.2.3.4"));
        assert_eq!(client_address(ip("1.2.3.4")), ip("1.2.3.4"));
        assert_eq!(
            client_address(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(
            client_address(ip("2001:db8:1:2::1")),
            client_address(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            client_address(ip("2001:db8:1:2::1")),
            client_address(ip("2001:db8:1:3::1"))
        );
        assert_eq!(client_address(ip("::1")), ip("::"));

        // Two addresses of one /64 share a rate-limit bucket; the IPv4
        // client and its mapped form share one too.
        let submissions = Submissions::new(
            RateLimit {
                per_minute: 1,
                burst: 1,
            },
            "submissions",
        );
        let client = |text: &str| Client::Ip(client_address(ip(text)));
        assert!(submissions.take(client("2001:db8::1")).is_ok());
        assert!(submissions.take(client("2001:db8::2:3")).is_err());
        assert!(submissions.take(client("2001:db8:0:1::1")).is_ok());
        assert!(submissions.take(client("::ffff:192.0.2.1")).is_ok());
        assert!(submissions.take(client("192.0.2.1")).is_err());
    }

    #[test]
    fn owner_tags_are_hashes_not_keys() {
        let keys = ApiKeys::parse("first-key-123,second-key-456").unwrap();
        assert_eq!(keys.tags.len(), 2);
        assert_eq!(keys.tags[0], owner_tag("first-key-123"));
        assert_ne!(keys.tags[0], keys.tags[1]);
        assert_eq!(keys.tags[0].len(), 32);
        assert!(keys.tags[0].bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!keys.tags[0].contains("first"));
    }

    #[test]
    fn only_waits_and_cancels_count_against_the_wait_bucket() {
        let request = |method: Method, uri: &str| {
            Request::builder()
                .method(method)
                .uri(uri)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        assert!(waits_or_cancels(&request(Method::DELETE, "/results/x")));
        assert!(waits_or_cancels(&request(Method::GET, "/results/x?wait=5")));
        assert!(!waits_or_cancels(&request(Method::GET, "/results/x")));
        assert!(!waits_or_cancels(&request(
            Method::GET,
            "/results/x?wait=0"
        )));
    }
}
