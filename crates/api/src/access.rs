//! Access control, all of it optional and off by default: API keys, a rate
//! limit on submissions, and CORS.
//!
//! - **API keys** (`CODE_RUNNER_API_KEYS`): `POST /run-code`,
//!   `GET|DELETE /results/{id}` and `GET /stats` need one, sent as
//!   `Authorization: Bearer KEY` or `X-API-Key: KEY`; without one the answer
//!   is `401` with a JSON body. Service endpoints (`/health`, `/ready`,
//!   `/metrics`, `/languages`, the docs and the playground) stay open.
//! - **Rate limit**: `POST /run-code` is limited per API key (or per client
//!   IP without keys) with a GCRA bucket (`governor`): `per_minute` refill,
//!   `burst` capacity. Every answer carries `RateLimit-Limit`,
//!   `RateLimit-Remaining`, `RateLimit-Reset` and `RateLimit-Policy`; a
//!   refused one is `429` with `Retry-After`.
//! - **CORS** (`tower-http`): the configured origins, or any.
//!
//! When a feature is not configured its layer is not installed at all, so
//! the hot path pays nothing for it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::Router;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::error::ApiError;
use crate::state::AppState;

/// The configured API keys; empty means "no keys needed". Never printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ApiKeys(Vec<String>);

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
        Ok(Self(keys))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The index of `candidate` among the keys, compared in constant time
    /// per key so the answer's timing says nothing about near misses.
    fn find(&self, candidate: &[u8]) -> Option<usize> {
        let mut found = None;
        for (index, key) in self.0.iter().enumerate() {
            if constant_time_eq(key.as_bytes(), candidate) && found.is_none() {
                found = Some(index);
            }
        }
        found
    }
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeys({} keys)", self.0.len())
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

/// Who may call the API and how often; everything off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessConfig {
    pub api_keys: ApiKeys,
    pub rate_limit: Option<RateLimit>,
    /// Allowed browser origins (`*` for any); empty: no CORS.
    pub cors_origins: Vec<String>,
}

/// Whom a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Client {
    Key(usize),
    Ip(IpAddr),
}

type Limiter =
    RateLimiter<Client, DefaultKeyedStateStore<Client>, DefaultClock, StateInformationMiddleware>;

/// The rate limiter and what its headers say.
pub(crate) struct Submissions {
    limiter: Limiter,
    clock: DefaultClock,
    limit: RateLimit,
    /// Checks since start; every [`Self::SWEEP_EVERY`] the limiter forgets
    /// clients whose bucket is full again, so memory follows active clients.
    checks: AtomicU64,
}

impl Submissions {
    const SWEEP_EVERY: u64 = 4096;

    pub(crate) fn new(limit: RateLimit) -> Self {
        let per_minute = NonZeroU32::new(limit.per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(limit.burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_minute(per_minute).allow_burst(burst);
        let clock = DefaultClock::default();
        Self {
            limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            clock,
            limit,
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

/// Every credential presented must be a valid key (a wrong one next to a
/// right one is still refused), and there must be at least one.
async fn check_key(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let keys = &state.config().access.api_keys;
    let mut client = None;
    for presented in presented_keys(request.headers()).into_iter().flatten() {
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
    let Some(submissions) = state.submissions() else {
        return next.run(request).await;
    };
    let client = request
        .extensions()
        .get::<Client>()
        .copied()
        .or_else(|| {
            request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| Client::Ip(info.0.ip()))
        })
        // In-process callers (tests) have no peer address: one shared bucket.
        .unwrap_or(Client::Ip(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
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
        let submissions = Submissions::new(RateLimit {
            per_minute: 60,
            burst: 2,
        });
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
}
