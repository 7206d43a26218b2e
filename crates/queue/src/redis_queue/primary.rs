//! Where the Redis primary is, and the connections to it: a fixed address
//! (`redis://…`), or the primary that Redis Sentinel names
//! (`redis+sentinel://…`), found again after a failover.
//!
//! URL form of a Sentinel deployment (the `redis` crate has none; this is
//! the `host,host` form Lettuce and go-redis use):
//!
//! ```text
//! redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/master-name[/db]
//! ```
//!
//! The hosts are the Sentinels (port 26379 when omitted); the user and
//! password, and the database number, are the data nodes'.
//!
//! Every connection the queue uses comes from the current [`Node`]: the
//! shared [`ConnectionManager`], the pool of blocking connections, the
//! subscriber's client. The manager reconnects by itself, but only to the
//! address it was made for; after a failover that address is dead (or a
//! replica that answers `READONLY`). So when a command fails in a way that
//! says "this is not the primary any more" ([`looks_like_failover`]), the
//! queue calls [`Primary::suspect`], which (with Sentinel, once at a time)
//! asks the Sentinels every [`SEARCH_PAUSE`] where the primary is, and when
//! it has moved, connects there and swaps the node in. Commands meanwhile
//! fail fast (the API answers 503); the first after the swap goes to the new
//! primary. With a fixed address nothing is searched: the manager's own
//! reconnect is all there is.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::sentinel::{Sentinel, SentinelNodeConnectionInfo};
use redis::{Client, ErrorKind, RedisConnectionInfo, RedisError, RedisResult};

/// The URL scheme of a Sentinel deployment.
pub const SENTINEL_SCHEME: &str = "redis+sentinel://";
/// Sentinel's default port.
const SENTINEL_PORT: u16 = 26379;
/// Pause between two questions to the Sentinels while the primary is lost.
const SEARCH_PAUSE: Duration = Duration::from_millis(200);
/// How long one search goes on before it gives up (the next failed command
/// starts another).
const SEARCH_FOR: Duration = Duration::from_secs(120);

/// A parsed `redis+sentinel://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelUrl {
    /// `redis://host:port/` of each Sentinel.
    pub sentinels: Vec<String>,
    /// The name the Sentinels monitor the primary under.
    pub master: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: i64,
}

/// Why a `redis+sentinel://` URL cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SentinelUrlError {
    #[error("a Sentinel URL starts with {SENTINEL_SCHEME}")]
    Scheme,
    #[error("a Sentinel URL names at least one Sentinel host")]
    NoSentinel,
    #[error("bad Sentinel address `{0}` (host or host:port)")]
    Address(String),
    #[error("a Sentinel URL ends with /master-name (and optionally /db)")]
    NoMaster,
    #[error("bad database number `{0}`")]
    Db(String),
}

impl From<SentinelUrlError> for RedisError {
    fn from(e: SentinelUrlError) -> Self {
        RedisError::from((
            ErrorKind::InvalidClientConfig,
            "bad Sentinel URL",
            e.to_string(),
        ))
    }
}

impl SentinelUrl {
    /// Parses `redis+sentinel://[[user]:password@]h1[:p1],h2[:p2]/master[/db]`.
    pub fn parse(url: &str) -> Result<Self, SentinelUrlError> {
        let rest = url
            .strip_prefix(SENTINEL_SCHEME)
            .ok_or(SentinelUrlError::Scheme)?;
        let (authority, path) = rest.split_once('/').ok_or(SentinelUrlError::NoMaster)?;
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => (Some(userinfo), hosts),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(info) => match info.split_once(':') {
                Some((user, password)) => (
                    (!user.is_empty()).then(|| user.to_owned()),
                    Some(password.to_owned()),
                ),
                None => (Some(info.to_owned()), None),
            },
        };
        let mut sentinels = Vec::new();
        for host in hosts.split(',').filter(|h| !h.is_empty()) {
            let (name, port) = match host.rsplit_once(':') {
                Some((name, port)) => (
                    name,
                    port.parse::<u16>()
                        .map_err(|_| SentinelUrlError::Address(host.to_owned()))?,
                ),
                None => (host, SENTINEL_PORT),
            };
            if name.is_empty() {
                return Err(SentinelUrlError::Address(host.to_owned()));
            }
            sentinels.push(format!("redis://{name}:{port}/"));
        }
        if sentinels.is_empty() {
            return Err(SentinelUrlError::NoSentinel);
        }
        let path = path.trim_end_matches('/');
        let (master, db) = match path.split_once('/') {
            Some((master, db)) => (
                master,
                db.parse::<i64>()
                    .map_err(|_| SentinelUrlError::Db(db.to_owned()))?,
            ),
            None => (path, 0),
        };
        if master.is_empty() {
            return Err(SentinelUrlError::NoMaster);
        }
        Ok(Self {
            sentinels,
            master: master.to_owned(),
            username,
            password,
            db,
        })
    }
}

/// True when a failed command suggests the primary is gone or demoted:
/// connection failures and timeouts, `READONLY` (a primary that came back
/// as a replica) and `MASTERDOWN` (a replica cut off from its primary).
pub fn looks_like_failover(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(e.code(), Some("READONLY" | "MASTERDOWN" | "LOADING"))
}

/// One primary's connections.
pub struct Node {
    /// `host:port`, for logs and to tell whether the primary moved.
    pub address: String,
    /// Opens dedicated connections (blocking reads, the subscriber).
    pub client: Client,
    /// Shared by every non-blocking command.
    pub shared: ConnectionManager,
    /// Idle dedicated connections for `XREADGROUP ... BLOCK`.
    pub blocking_pool: Mutex<Vec<MultiplexedConnection>>,
}

/// The Sentinels that name the primary, and how to reach it.
struct Sentinels {
    sentinel: tokio::sync::Mutex<Sentinel>,
    master: String,
    node: SentinelNodeConnectionInfo,
}

/// The current primary, and how to find it again.
pub struct Primary {
    /// `None`: a fixed address.
    sentinels: Option<Sentinels>,
    current: RwLock<Arc<Node>>,
    manager_config: ConnectionManagerConfig,
    /// Bounds each question to the Sentinels and each connection attempt.
    deadline: Duration,
    /// A search is under way.
    searching: AtomicBool,
}

impl Primary {
    /// Connects to the primary at `url` (a `redis://` URL, or a
    /// `redis+sentinel://` one whose Sentinels are asked first).
    pub async fn connect(
        url: &str,
        manager_config: ConnectionManagerConfig,
        deadline: Duration,
    ) -> RedisResult<Self> {
        let (sentinels, client) = if url.starts_with(SENTINEL_SCHEME) {
            let parsed = SentinelUrl::parse(url)?;
            let mut redis = RedisConnectionInfo::default().set_db(parsed.db);
            if let Some(user) = &parsed.username {
                redis = redis.set_username(user);
            }
            if let Some(password) = &parsed.password {
                redis = redis.set_password(password);
            }
            let node = SentinelNodeConnectionInfo::default().set_redis_connection_info(redis);
            let mut sentinel = Sentinel::build(parsed.sentinels)?;
            let client = ask(&mut sentinel, &parsed.master, &node, deadline).await?;
            let sentinels = Sentinels {
                sentinel: tokio::sync::Mutex::new(sentinel),
                master: parsed.master,
                node,
            };
            (Some(sentinels), client)
        } else {
            (None, Client::open(url)?)
        };
        let node = open_node(client, &manager_config).await?;
        if sentinels.is_some() {
            tracing::info!(primary = %node.address, "Redis primary found through Sentinel");
        }
        Ok(Self {
            sentinels,
            current: RwLock::new(Arc::new(node)),
            manager_config,
            deadline,
            searching: AtomicBool::new(false),
        })
    }

    /// The current primary's connections.
    pub fn node(&self) -> Arc<Node> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// A command failed with `error`: with Sentinel, when it looks like a
    /// failover, starts looking for the primary in the background (unless a
    /// search is under way). Returns at once.
    pub fn suspect(self: &Arc<Self>, error: &RedisError) {
        if self.sentinels.is_none() || !looks_like_failover(error) {
            return;
        }
        if self.searching.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = Arc::clone(self);
        tokio::spawn(async move {
            this.search().await;
            this.searching.store(false, Ordering::Release);
        });
    }

    /// Asks the Sentinels until they name a primary other than the current
    /// one (then swaps it in) or the current one answers again.
    async fn search(&self) {
        let Some(Sentinels {
            sentinel,
            master,
            node,
        }) = &self.sentinels
        else {
            return;
        };
        let started = Instant::now();
        loop {
            let current = self.node();
            let found = {
                let mut sentinel = sentinel.lock().await;
                ask(&mut sentinel, master, node, self.deadline).await
            };
            match found {
                Ok(client) if address(&client) != current.address => {
                    match tokio::time::timeout(
                        self.deadline,
                        open_node(client, &self.manager_config),
                    )
                    .await
                    {
                        Ok(Ok(new)) => {
                            tracing::warn!(
                                from = %current.address,
                                to = %new.address,
                                after = ?started.elapsed(),
                                "Redis primary moved (Sentinel failover); now using the new one"
                            );
                            *self
                                .current
                                .write()
                                .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(new);
                            return;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "cannot connect to the new Redis primary yet")
                        }
                        Err(_) => tracing::debug!("no connection to the new Redis primary in time"),
                    }
                }
                Ok(_) => {
                    let mut conn = current.shared.clone();
                    let ping_cmd = redis::cmd("PING");
                    let ping = ping_cmd.query_async::<()>(&mut conn);
                    if matches!(tokio::time::timeout(self.deadline, ping).await, Ok(Ok(()))) {
                        return;
                    }
                }
                Err(e) => tracing::debug!(error = %e, "Sentinels name no reachable primary yet"),
            }
            if started.elapsed() > SEARCH_FOR {
                tracing::warn!(
                    "Sentinels named no new reachable Redis primary for {SEARCH_FOR:?}; \
                     the next failed command searches again"
                );
                return;
            }
            tokio::time::sleep(SEARCH_PAUSE).await;
        }
    }
}

/// The primary the Sentinels name, checked to answer as a primary.
async fn ask(
    sentinel: &mut Sentinel,
    master: &str,
    node: &SentinelNodeConnectionInfo,
    deadline: Duration,
) -> RedisResult<Client> {
    match tokio::time::timeout(deadline, sentinel.async_master_for(master, Some(node))).await {
        Ok(found) => found,
        Err(_) => Err(RedisError::from((
            ErrorKind::Io,
            "Sentinels did not answer in time",
        ))),
    }
}

fn address(client: &Client) -> String {
    client.get_connection_info().addr().to_string()
}

async fn open_node(client: Client, config: &ConnectionManagerConfig) -> RedisResult<Node> {
    let shared = client
        .get_connection_manager_with_config(config.clone())
        .await?;
    Ok(Node {
        address: address(&client),
        client,
        shared,
        blocking_pool: Mutex::new(Vec::new()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_master_auth_and_db() {
        let url =
            SentinelUrl::parse("redis+sentinel://:pw@10.0.0.1:26380,sent-2/mymaster/3").unwrap();
        assert_eq!(
            url,
            SentinelUrl {
                sentinels: vec![
                    "redis://10.0.0.1:26380/".to_owned(),
                    "redis://sent-2:26379/".to_owned()
                ],
                master: "mymaster".to_owned(),
                username: None,
                password: Some("pw".to_owned()),
                db: 3,
            }
        );
        let plain = SentinelUrl::parse("redis+sentinel://127.0.0.1:1/m").unwrap();
        assert_eq!(plain.master, "m");
        assert_eq!(plain.db, 0);
        assert_eq!(plain.password, None);
    }

    #[test]
    fn rejects_what_it_cannot_use() {
        use SentinelUrlError as E;
        assert_eq!(SentinelUrl::parse("redis://h/m"), Err(E::Scheme));
        assert_eq!(SentinelUrl::parse("redis+sentinel://h:1"), Err(E::NoMaster));
        assert_eq!(
            SentinelUrl::parse("redis+sentinel://h:1/"),
            Err(E::NoMaster)
        );
        assert_eq!(
            SentinelUrl::parse("redis+sentinel:///m"),
            Err(E::NoSentinel)
        );
        assert_eq!(
            SentinelUrl::parse("redis+sentinel://h:x/m"),
            Err(E::Address("h:x".to_owned()))
        );
        assert_eq!(
            SentinelUrl::parse("redis+sentinel://h/m/x"),
            Err(E::Db("x".to_owned()))
        );
    }
}
